//! Property tests over every value a tenant config carries: each input is
//! either rejected with a message, or renders to manifests that parse, keep
//! every object in the tenant's namespace, and carry the value back byte for
//! byte. Inputs mix YAML and template metacharacters, control characters,
//! very long strings, several scripts and right-to-left text.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;
use xtask::platform::Platform;
use xtask::render::{SecretValues, Templates, to_yaml_stream};
use xtask::tenant::{
    TenantName, TenantSpec, TenantValues, normalize_domain, normalize_whatsapp_number,
    validate_tenant_name,
};

fn setup() -> &'static (Platform, Templates) {
    static SETUP: OnceLock<(Platform, Templates)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        (
            Platform::load(&root.join("platform.yaml").display().to_string()).unwrap(),
            Templates::load(&root.join("templates")).unwrap(),
        )
    })
}

/// Characters that have broken YAML, templates or terminals somewhere.
fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => proptest::sample::select(vec![
            ':', '{', '}', '[', ']', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '-', '?', ',', '\\',
            '\n', '\r', '\t', '\0', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}', '\u{200d}', '\u{feff}',
            '\u{200c}', '\u{200b}', '\u{2066}',
        ]),
        2 => proptest::char::range('\u{0900}', '\u{097f}'), // Devanagari
        1 => proptest::char::range('\u{0b80}', '\u{0bff}'), // Tamil
        1 => proptest::char::range('\u{0600}', '\u{06ff}'), // Arabic
        1 => proptest::char::range('\u{05d0}', '\u{05ea}'), // Hebrew
        1 => proptest::char::range('\u{1f600}', '\u{1f64f}'), // emoji
    ]
}

fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(nasty_char(), 0..max).prop_map(|v| v.into_iter().collect()),
        proptest::sample::select(vec![
            "{{ tenant.name }}".to_owned(),
            "{% raw %}".to_owned(),
            "&a *a !!binary".to_owned(),
            "yes".to_owned(),
            "---\nkind: Secret".to_owned(),
            "key: value".to_owned(),
            "ख".repeat(121),
        ]),
    ]
}

/// Text with no control characters: always valid when it has 1 to 120
/// characters after trimming, so the render path runs on every case.
fn printable_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        nasty_char().prop_filter("no control or invisible characters", |c| {
            !c.is_control() && !xtask::tenant::is_refused_invisible(*c)
        }),
        1..100,
    )
    .prop_map(|v| v.into_iter().collect::<String>())
    // Blank, or only joiners (ZWNJ, ZWJ) and spaces: nothing visible.
    .prop_filter("a visible character", |s| {
        s.chars()
            .any(|c| !c.is_whitespace() && !matches!(c, '\u{200C}' | '\u{200D}'))
    })
}

fn render(spec: &TenantSpec) -> Vec<Value> {
    let (platform, templates) = setup();
    let manifests = templates
        .render_tenant(spec, platform, &SecretValues::Redacted)
        .unwrap();
    let stream = to_yaml_stream(&manifests).unwrap();
    serde_saphyr::from_multiple(&stream).unwrap()
}

fn spec_with(
    mla_name: String,
    constituency: String,
    tagline: String,
) -> Result<TenantSpec, Vec<String>> {
    let (platform, _) = setup();
    let mut values = TenantValues {
        mla_name: Some(mla_name),
        constituency: Some(constituency),
        whatsapp_number: Some("+919800000001".into()),
        domains: vec!["prop.example.in".into()],
        ..Default::default()
    };
    values.site.tagline = Some(tagline);
    TenantSpec::resolve(
        &TenantName::parse("prop").unwrap(),
        &values,
        &platform.tier_names(),
        &platform.default_tier,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn free_text_is_rejected_or_carried_byte_for_byte(
        mla in nasty_string(140), constituency in nasty_string(40), tagline in nasty_string(40),
    ) {
        match spec_with(mla.clone(), constituency.clone(), tagline.clone()) {
            Err(problems) => prop_assert!(problems.iter().all(|p| !p.trim().is_empty())),
            Ok(spec) => {
                let docs = render(&spec);
                prop_assert_eq!(docs.len(), 16);
                for doc in &docs {
                    if doc["kind"] == "Namespace" {
                        prop_assert_eq!(&doc["metadata"]["name"], "tenant-prop");
                    } else {
                        prop_assert_eq!(&doc["metadata"]["namespace"], "tenant-prop");
                    }
                }
                let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
                prop_assert_eq!(config["data"]["MLA_NAME"].as_str(), Some(mla.trim()));
                prop_assert_eq!(config["data"]["CONSTITUENCY"].as_str(), Some(constituency.trim()));
                prop_assert_eq!(config["data"]["SITE_TAGLINE"].as_str(), Some(tagline.trim()));
                let ns = &docs[0];
                prop_assert_eq!(ns["metadata"]["annotations"]["mla-platform.in/mla-name"].as_str(), Some(mla.trim()));
                // Nothing the values contain adds objects or keys.
                prop_assert_eq!(config["data"].as_object().unwrap().len(), 12);
            }
        }
    }

    #[test]
    fn printable_text_is_accepted_and_round_trips(mla in printable_string(), constituency in printable_string()) {
        let spec = spec_with(mla.clone(), constituency.clone(), "t".into());
        prop_assert!(spec.is_ok(), "{:?}", spec.err());
        let docs = render(&spec.unwrap());
        let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        prop_assert_eq!(config["data"]["MLA_NAME"].as_str(), Some(mla.trim()));
        prop_assert_eq!(config["data"]["CONSTITUENCY"].as_str(), Some(constituency.trim()));
    }

    #[test]
    fn tenant_names_are_rejected_or_fit_a_namespace(raw in nasty_string(70)) {
        match validate_tenant_name(&raw) {
            Err(message) => prop_assert!(message.contains("tenant name")),
            Ok(()) => {
                let ns = TenantName::parse(&raw).unwrap().namespace();
                prop_assert!(ns.len() <= 63);
                prop_assert!(raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(raw.starts_with(|c: char| c.is_ascii_lowercase()) && !raw.ends_with('-'));
            }
        }
    }

    #[test]
    fn valid_tenant_names_are_accepted(raw in "[a-z]([a-z0-9-]{0,54}[a-z0-9])?") {
        prop_assert_eq!(validate_tenant_name(&raw), Ok(()));
    }

    #[test]
    fn domains_are_rejected_or_canonical(raw in prop_oneof![nasty_string(80), "(\\*\\.)?([A-Za-z0-9-]{1,12}\\.){1,4}[A-Za-z]{2,6}"]) {
        if let Ok(domain) = normalize_domain(&raw) {
            prop_assert_eq!(normalize_domain(&domain), Ok(domain.clone()), "not idempotent");
            prop_assert!(domain.len() <= 253);
            let host = domain.strip_prefix("*.").unwrap_or(&domain);
            prop_assert!(host.split('.').count() >= 2);
            for label in host.split('.') {
                prop_assert!(!label.is_empty() && label.len() <= 63);
                prop_assert!(label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(!label.starts_with('-') && !label.ends_with('-'));
            }
        }
    }

    #[test]
    fn whatsapp_numbers_are_rejected_or_e164(raw in prop_oneof![nasty_string(25), "\\+[0-9 -]{5,20}"]) {
        if let Ok(number) = normalize_whatsapp_number(&raw) {
            prop_assert!(number.starts_with('+'));
            let digits = &number[1..];
            prop_assert!(digits.chars().all(|c| c.is_ascii_digit()));
            prop_assert!((7..=15).contains(&digits.len()) && !digits.starts_with('0'));
        }
    }
}
