//! A tenant's configuration: the committed `tenants/<name>.yaml` file, the
//! rules every value must follow, and the validated [`TenantSpec`] that the
//! templates render from.
//!
//! Every validator returns a message that names the rule that failed and shows
//! a valid example, because the operator reading it is usually in the middle of
//! onboarding and has no other documentation open.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Longest tenant name: `tenant-` (7) + 56 = 63, Kubernetes' namespace limit.
pub const MAX_TENANT_NAME: usize = 56;
/// Longest MLA name or constituency, in characters (not bytes).
pub const MAX_FREE_TEXT: usize = 120;
/// The prefix of every tenant namespace.
pub const NAMESPACE_PREFIX: &str = "tenant-";

/// A tenant name that passed [`validate_tenant_name`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        validate_tenant_name(raw).map(|()| TenantName(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn namespace(&self) -> String {
        format!("{NAMESPACE_PREFIX}{}", self.0)
    }
}

impl std::fmt::Display for TenantName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant config file as written by operators (and by `provision`).
/// Every field is optional here so that flags and prompts can fill the gaps;
/// [`TenantSpec::resolve`] decides what is missing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantValues {
    /// The tenant this file belongs to; checked against the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constituency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_number: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// A tier from the platform settings; the platform's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Per-tenant overrides of the tier's rate limits.
    #[serde(default, skip_serializing_if = "RateLimitOverrides::is_empty")]
    pub rate_limits: RateLimitOverrides,
    /// The website's text; the bot renders its pages from it.
    #[serde(default, skip_serializing_if = "SiteContent::is_empty")]
    pub site: SiteContent,
}

/// The tenant website's content. The bot builds its pages from these texts
/// and the MLA's name and constituency; a change is applied by provision.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteContent {
    /// One line under the MLA's name on the home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagline: Option<String>,
    /// The "about" text: paragraphs separated by blank lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_hours: Option<String>,
}

/// Longest site `about` text, in characters.
pub const MAX_ABOUT: usize = 4000;

impl SiteContent {
    pub fn is_empty(&self) -> bool {
        self.tagline.is_none()
            && self.about.is_none()
            && self.office_address.is_none()
            && self.office_hours.is_none()
    }

    /// Validates and normalises every text; problems are prefixed by field.
    fn resolve(&self, problems: &mut Vec<String>) -> SiteContent {
        // Each text has its own name in messages and its own example.
        let mut line = |key: &str, what: &str, example: &str, v: &Option<String>| {
            v.as_deref().and_then(|raw| {
                validate_free_text(what, example, raw)
                    .map_err(|e| problems.push(format!("site.{key}: {e}")))
                    .ok()
            })
        };
        let tagline = line(
            "tagline",
            "the tagline",
            "Sevak of Pune Central",
            &self.tagline,
        );
        let office_hours = line(
            "office_hours",
            "the office hours line",
            "Mon-Sat 10:00-17:00",
            &self.office_hours,
        );
        let office_address = line(
            "office_address",
            "the office address",
            "MLA Office, Shivaji Nagar, Pune 411005",
            &self.office_address,
        );
        let about = self.about.as_deref().and_then(|raw| {
            let text = raw.trim().replace("\r\n", "\n");
            let chars = text.chars().count();
            if text.is_empty() {
                problems.push("site.about: is empty; remove it or write a paragraph".into());
                None
            } else if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
                problems.push(format!(
                    "site.about: contains {}; use plain text and blank lines between paragraphs",
                    describe_char(c)
                ));
                None
            } else if let Err(e) = check_invisible("the about text", &text) {
                problems.push(format!("site.about: {e}"));
                None
            } else if chars > MAX_ABOUT {
                problems.push(format!(
                    "site.about: is {chars} characters long; at most {MAX_ABOUT} are allowed"
                ));
                None
            } else {
                Some(text)
            }
        });
        SiteContent {
            tagline,
            about,
            office_address,
            office_hours,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_minute_per_user: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_day: Option<u32>,
}

impl RateLimitOverrides {
    pub fn is_empty(&self) -> bool {
        self.messages_per_minute_per_user.is_none() && self.messages_per_day.is_none()
    }
}

impl TenantValues {
    /// Reads a tenant config file; a syntax error, a duplicate key or an
    /// unknown field is an error that names the file and the line.
    pub fn from_yaml(path: &str, text: &str) -> anyhow::Result<TenantValues> {
        serde_saphyr::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{path} is not a valid tenant config: {}\n\
                 The fields are: tenant, mla_name, constituency, whatsapp_number, domains, tier, rate_limits, site \
                 (see tenants/demo.yaml).",
                yaml_error(&err)
            )
        })
    }

    /// Values set in `over` win, field by field (in `rate_limits` and `site`
    /// too); domains given in `over` replace the file's list. Nothing set
    /// here is lost unless `over` sets it.
    pub fn overlay(mut self, over: TenantValues) -> TenantValues {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(tenant, mla_name, constituency, whatsapp_number, tier);
        if !over.domains.is_empty() {
            self.domains = over.domains;
        }
        if over.rate_limits.messages_per_minute_per_user.is_some() {
            self.rate_limits.messages_per_minute_per_user =
                over.rate_limits.messages_per_minute_per_user;
        }
        if over.rate_limits.messages_per_day.is_some() {
            self.rate_limits.messages_per_day = over.rate_limits.messages_per_day;
        }
        let site = over.site;
        for (mine, theirs) in [
            (&mut self.site.tagline, site.tagline),
            (&mut self.site.about, site.about),
            (&mut self.site.office_address, site.office_address),
            (&mut self.site.office_hours, site.office_hours),
        ] {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        self
    }
}

/// A fully validated tenant: what the templates see as `tenant`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantSpec {
    pub name: TenantName,
    pub namespace: String,
    pub mla_name: String,
    pub constituency: String,
    pub whatsapp_number: String,
    pub domains: Vec<String>,
    pub tier: String,
    pub rate_limits: RateLimitOverrides,
    pub site: SiteContent,
}

/// The fields a tenant needs, with the flag that sets each; used to name
/// what is missing when there is no terminal to ask on.
pub const REQUIRED_FIELDS: [(&str, &str); 4] = [
    ("mla_name", "--mla-name"),
    ("constituency", "--constituency"),
    ("whatsapp_number", "--whatsapp-number"),
    ("domains", "--domain"),
];

impl TenantSpec {
    /// Validates every value and reports all problems at once, each prefixed
    /// by the field it concerns.
    pub fn resolve(
        name: &TenantName,
        values: &TenantValues,
        tiers: &[&str],
        default_tier: &str,
    ) -> Result<TenantSpec, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(file_tenant) = &values.tenant
            && file_tenant != name.as_str()
        {
            problems.push(format!(
                "tenant: the config is for tenant `{file_tenant}` but the command is for `{name}`; \
                 use tenants/{name}.yaml or fix the `tenant:` field"
            ));
        }
        let mut missing = Vec::new();
        let mut field = |key: &'static str,
                         value: &Option<String>,
                         check: fn(&str) -> Result<String, String>,
                         problems: &mut Vec<String>| {
            match value {
                None => {
                    missing.push(key);
                    String::new()
                }
                Some(v) => check(v).unwrap_or_else(|e| {
                    problems.push(format!("{key}: {e}"));
                    String::new()
                }),
            }
        };
        let mla_name = field(
            "mla_name",
            &values.mla_name,
            validate_mla_name,
            &mut problems,
        );
        let constituency = field(
            "constituency",
            &values.constituency,
            validate_constituency,
            &mut problems,
        );
        let whatsapp_number = field(
            "whatsapp_number",
            &values.whatsapp_number,
            normalize_whatsapp_number,
            &mut problems,
        );
        if values.domains.is_empty() {
            missing.push("domains");
        }
        let domains = match validate_domains(&values.domains) {
            Ok(d) => d,
            Err(errs) => {
                problems.extend(errs.into_iter().map(|e| format!("domains: {e}")));
                Vec::new()
            }
        };
        let tier = values
            .tier
            .clone()
            .unwrap_or_else(|| default_tier.to_owned());
        if !tiers.contains(&tier.as_str()) {
            problems.push(format!(
                "tier: `{tier}` is not a tier of the platform settings; choose one of: {}",
                tiers.join(", ")
            ));
        }
        for (key, value) in [
            (
                "messages_per_minute_per_user",
                values.rate_limits.messages_per_minute_per_user,
            ),
            ("messages_per_day", values.rate_limits.messages_per_day),
        ] {
            if value == Some(0) {
                problems.push(format!(
                    "rate_limits.{key}: 0 would silence the bot; give a positive number or remove the override"
                ));
            }
        }
        let site = values.site.resolve(&mut problems);
        if !missing.is_empty() {
            let flags: Vec<String> = REQUIRED_FIELDS
                .iter()
                .filter(|(k, _)| missing.contains(k))
                .map(|(k, flag)| format!("{flag} (`{k}`)"))
                .collect();
            problems.insert(0, format!("missing values: {}", flags.join(", ")));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(TenantSpec {
            name: name.clone(),
            namespace: name.namespace(),
            mla_name,
            constituency,
            whatsapp_number,
            domains,
            tier,
            rate_limits: values.rate_limits.clone(),
            site,
        })
    }

    /// The normalised values, for writing back to `tenants/<name>.yaml`.
    pub fn to_values(&self) -> TenantValues {
        TenantValues {
            tenant: Some(self.name.to_string()),
            mla_name: Some(self.mla_name.clone()),
            constituency: Some(self.constituency.clone()),
            whatsapp_number: Some(self.whatsapp_number.clone()),
            domains: self.domains.clone(),
            tier: Some(self.tier.clone()),
            rate_limits: self.rate_limits.clone(),
            site: self.site.clone(),
        }
    }

    /// The committed file's text: a short header, then the values.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        let body = serde_saphyr::to_string(&self.to_values())?;
        Ok(format!(
            "# Tenant config of {name}: `cargo xtask provision {name} --env ENV` applies it from here.\n\
             # Written by `cargo xtask provision`; the source of truth for this tenant, commit it.\n\
             {body}",
            name = self.name
        ))
    }
}

/// A YAML file's error as an operator should read it: serde-saphyr's own
/// text (its `Display`) carries advice for the programmer calling it, such
/// as "set DuplicateKeyPolicy in Options", which an operator cannot act on.
/// Its user-facing wording is kept, with the position; a duplicate key is
/// said plainly.
pub fn yaml_error(err: &serde_saphyr::Error) -> String {
    struct Plain;
    impl serde_saphyr::MessageFormatter for Plain {
        fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> std::borrow::Cow<'a, str> {
            match err {
                serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                    format!("duplicate key `{key}` (each key may appear once)").into()
                }
                serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
                    "duplicate key (each key may appear once)".into()
                }
                _ => serde_saphyr::UserMessageFormatter.format_message(err),
            }
        }
    }
    // The caller names the file: no second `error:`, no `<input>` for it.
    let rendered = err.render_with_formatter(&Plain);
    rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .lines()
        .filter(|l| !l.trim_start().starts_with("--> <input>"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn validate_tenant_name(raw: &str) -> Result<(), String> {
    const EXAMPLE: &str = "valid example: `pune-central`";
    if raw.is_empty() {
        return Err(format!("tenant name is empty; {EXAMPLE}"));
    }
    let chars = raw.chars().count();
    if chars > MAX_TENANT_NAME {
        return Err(format!(
            "tenant name `{raw}` is {chars} characters long; at most {MAX_TENANT_NAME} are allowed so that \
             the namespace `{NAMESPACE_PREFIX}<name>` fits in 63; {EXAMPLE}"
        ));
    }
    if raw.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "tenant name `{raw}` has uppercase letters; names are lowercase DNS labels: {}",
            suggestion(raw).unwrap_or_else(|| EXAMPLE.to_owned())
        ));
    }
    if let Some((pos, bad)) = raw
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "tenant name `{}` has {} at position {}; only a-z, 0-9 and '-' are allowed; {}",
            raw.escape_debug(),
            describe_char(bad),
            pos + 1,
            suggestion(raw).unwrap_or_else(|| EXAMPLE.to_owned())
        ));
    }
    if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "tenant name `{raw}` must start with a letter a-z; {EXAMPLE}"
        ));
    }
    if raw.ends_with('-') {
        return Err(format!(
            "tenant name `{raw}` must not end with '-'; {}",
            suggestion(raw).unwrap_or_else(|| EXAMPLE.to_owned())
        ));
    }
    Ok(())
}

/// `try `name``, for a name close to `raw` that is itself valid, or `None`:
/// a suggestion that the validator would refuse again is worse than none.
/// Lowercases, turns spaces, `_` and `.` into '-', drops anything else
/// outside a-z, 0-9 and '-', and trims '-' from both ends.
fn suggestion(raw: &str) -> Option<String> {
    let mut name = String::new();
    for c in raw.chars() {
        let c = match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            '-' | ' ' | '_' | '.' => '-',
            _ => continue,
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('-');
    (name != raw && validate_tenant_name(name).is_ok()).then(|| format!("try `{name}`"))
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// The invisible characters free text refuses, by name: direction
/// controls, which make text display in another order than it is stored
/// (Trojan Source, CVE-2021-42574), and zero-width characters, which make
/// two texts that look the same differ. The zero-width joiner and
/// non-joiner (U+200D, U+200C) are not among them: Devanagari, Tamil and
/// other Indic scripts need them to spell words.
fn invisible_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{200B}' => "zero-width space",
        '\u{00AD}' => "soft hyphen (invisible)",
        '\u{180E}' => "Mongolian vowel separator (invisible)",
        '\u{3164}' | '\u{115F}' | '\u{1160}' | '\u{FFA0}' => "Hangul filler (a blank letter)",
        '\u{2060}' => "word joiner (an invisible character)",
        '\u{FEFF}' => "zero-width no-break space (byte order mark)",
        '\u{2061}'..='\u{2064}' => "invisible mathematical operator",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{061C}' => "Arabic letter mark",
        '\u{202A}' => "left-to-right embedding",
        '\u{202B}' => "right-to-left embedding",
        '\u{202C}' => "pop directional formatting",
        '\u{202D}' => "left-to-right override",
        '\u{202E}' => "right-to-left override",
        '\u{2066}' => "left-to-right isolate",
        '\u{2067}' => "right-to-left isolate",
        '\u{2068}' => "first strong isolate",
        '\u{2069}' => "pop directional isolate",
        '\u{E0000}'..='\u{E007F}' => "tag character (invisible)",
        '\u{2028}' => "line separator (a line break)",
        '\u{2029}' => "paragraph separator (a line break)",
        _ => return None,
    })
}

/// Whether free text refuses `c` as invisible (see [`invisible_name`]).
pub fn is_refused_invisible(c: char) -> bool {
    invisible_name(c).is_some()
}

/// Refuses the invisible characters of [`invisible_name`], naming the
/// first one and its position (counted in characters from 1).
fn check_invisible(what: &str, text: &str) -> Result<(), String> {
    if let Some((i, c, name)) = text
        .chars()
        .enumerate()
        .find_map(|(i, c)| invisible_name(c).map(|n| (i, c, n)))
    {
        let before: String = text.chars().take(i).collect();
        let before = before
            .chars()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>();
        return Err(format!(
            "{what} contains the {name} U+{:04X} at character {} (after `{}`); it is invisible and can make the \
             text read differently from what is stored. Delete it and type the text again (the zero-width \
             joiner and non-joiner that Indic scripts need are accepted)",
            c as u32,
            i + 1,
            before.escape_debug()
        ));
    }
    Ok(())
}

fn validate_free_text(what: &str, example: &str, raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(format!("{what} is empty; example: `{example}`"));
    }
    // Joiners alone, or with spaces, show as nothing.
    if value
        .chars()
        .all(|c| c.is_whitespace() || matches!(c, '\u{200C}' | '\u{200D}'))
    {
        return Err(format!(
            "{what} has no visible character (only joiners or spaces); example: `{example}`"
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} contains {} (a line break or other control character); write it on one line",
            describe_char(c)
        ));
    }
    check_invisible(what, value)?;
    let chars = value.chars().count();
    if chars > MAX_FREE_TEXT {
        return Err(format!(
            "{what} is {chars} characters long; at most {MAX_FREE_TEXT} are allowed, shorten it"
        ));
    }
    Ok(value.to_owned())
}

pub fn validate_mla_name(raw: &str) -> Result<String, String> {
    validate_free_text("MLA name", "Smt. Asha Kulkarni", raw)
}

pub fn validate_constituency(raw: &str) -> Result<String, String> {
    validate_free_text("constituency", "Pune Cantonment", raw)
}

/// E.164: `+`, a country code that does not start with 0, at most 15 digits.
/// Spaces and dashes are accepted for readability and removed.
pub fn normalize_whatsapp_number(raw: &str) -> Result<String, String> {
    const EXAMPLE: &str = "example: `+91 98765-43210`";
    let compact: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return Err(format!(
            "WhatsApp number `{raw}` must be in international E.164 form starting with '+' and the country code; {EXAMPLE}"
        ));
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!(
            "WhatsApp number `{}` has {}; only digits, spaces and dashes may follow the '+'; {EXAMPLE}",
            raw.escape_debug(),
            describe_char(c)
        ));
    }
    if digits.starts_with('0') {
        return Err(format!(
            "WhatsApp number `{raw}`: a country code never starts with 0 (drop the trunk prefix); {EXAMPLE}"
        ));
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(format!(
            "WhatsApp number `{raw}` has {} digits; E.164 numbers have 7 to 15 including the country code; {EXAMPLE}",
            digits.len()
        ));
    }
    Ok(compact)
}

/// A DNS host name for an Ingress rule: lowercased, LDH labels (punycode
/// `xn--` labels are plain LDH), at least two labels, an optional leading `*.`.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    const EXAMPLE: &str = "example: `mla-pune.example.in`";
    let domain = raw.trim().to_ascii_lowercase();
    if domain.is_empty() {
        return Err(format!("domain is empty; {EXAMPLE}"));
    }
    if domain.contains("://") || domain.contains('/') || domain.contains(':') {
        return Err(format!(
            "domain `{raw}` looks like a URL; give the host name only, {EXAMPLE}"
        ));
    }
    if domain.ends_with('.') {
        return Err(format!(
            "domain `{raw}` ends with a dot; write it without the trailing dot: `{}`",
            domain.trim_end_matches('.')
        ));
    }
    if domain.len() > 253 {
        return Err(format!(
            "domain `{raw}` is {} characters long; DNS names are at most 253",
            domain.len()
        ));
    }
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')))
    {
        let hint = if c.is_ascii() {
            String::new()
        } else {
            " (write internationalised names in punycode, `xn--...`)".to_owned()
        };
        return Err(format!(
            "domain `{}` has {}{hint}; {EXAMPLE}",
            raw.escape_debug(),
            describe_char(c)
        ));
    }
    let (wildcard, host) = match domain.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, domain.as_str()),
    };
    if host.contains('*') {
        return Err(format!(
            "domain `{raw}`: a wildcard is only allowed as the whole first label, as in `*.example.in`"
        ));
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "domain `{raw}` is a bare word; a domain needs at least two labels, {EXAMPLE}"
        ));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(format!(
                "domain `{raw}` has an empty label (`..`); {EXAMPLE}"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "domain `{raw}` has a label of {} characters; DNS labels are at most 63",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "domain `{raw}`: label `{label}` starts or ends with '-'"
            ));
        }
    }
    let tld = labels[labels.len() - 1];
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{raw}` is an IP address or ends in a numeric label; Ingress rules need a DNS name, {EXAMPLE}"
        ));
    }
    Ok(if wildcard {
        format!("*.{host}")
    } else {
        host.to_owned()
    })
}

/// Normalises every domain and rejects duplicates (after lowercasing).
pub fn validate_domains(raw: &[String]) -> Result<Vec<String>, Vec<String>> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        match normalize_domain(d) {
            Ok(domain) => {
                if let Some(first) = seen.insert(domain.clone(), i) {
                    errors.push(format!(
                        "`{domain}` is listed twice (entries {} and {}); keep one",
                        first + 1,
                        i + 1
                    ));
                } else {
                    out.push(domain);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Whether two Ingress hosts would compete for the same requests: equal, or a
/// wildcard that matches the other (Ingress wildcards match exactly one label).
pub fn domains_overlap(a: &str, b: &str) -> bool {
    fn covers(wild: &str, host: &str) -> bool {
        match wild.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(first, rest)| first != "*" && rest == suffix),
            None => false,
        }
    }
    a == b || covers(a, b) || covers(b, a)
}

/// Formats a list of problems as an indented block.
pub fn format_problems(header: &str, problems: &[String]) -> String {
    let mut out = format!("{header}:");
    for p in problems {
        let _ = write!(out, "\n  - {p}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        for ok in ["a", "demo", "pune-central", "a1", "x-1-y", &"a".repeat(56)] {
            assert_eq!(validate_tenant_name(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "is empty"),
            ("Demo", "uppercase"),
            ("1abc", "must start with a letter"),
            ("-abc", "must start with a letter"),
            ("abc-", "must not end with '-'"),
            ("ab_c", "`_` at position 3"),
            ("ab c", "a space at position 3"),
            ("ab.c", "`.` at position 3"),
            ("पुणे", "position 1"),
            ("ab\nc", "control character U+000A"),
        ];
        for (bad, why) in cases {
            let err = validate_tenant_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = "a".repeat(57);
        assert!(
            validate_tenant_name(&long)
                .unwrap_err()
                .contains("57 characters")
        );
    }

    #[test]
    fn whatsapp_numbers() {
        assert_eq!(
            normalize_whatsapp_number("+91 98765-43210").unwrap(),
            "+919876543210"
        );
        assert_eq!(
            normalize_whatsapp_number("+1-202-555-0100").unwrap(),
            "+12025550100"
        );
        assert_eq!(normalize_whatsapp_number("+6834002").unwrap(), "+6834002");
        for (bad, why) in [
            ("9876543210", "starting with '+'"),
            ("+91 (98765) 43210", "`(`"),
            ("+0919876543210", "never starts with 0"),
            ("+91", "2 digits"),
            ("+1234567890123456", "16 digits"),
            ("+91 98765\t43210", "control character"),
            ("", "starting with '+'"),
            ("++919876543210", "`+`"),
        ] {
            let err = normalize_whatsapp_number(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn domains() {
        for (raw, want) in [
            ("Example.IN", "example.in"),
            ("mla.example.in", "mla.example.in"),
            ("*.mla.example.in", "*.mla.example.in"),
            (
                "xn--p1b6ci4b4b3a.xn--h2brj9c",
                "xn--p1b6ci4b4b3a.xn--h2brj9c",
            ),
            ("a-b.c0.in", "a-b.c0.in"),
        ] {
            assert_eq!(normalize_domain(raw).as_deref(), Ok(want));
        }
        let long_label = format!("{}.in", "a".repeat(64));
        for (bad, why) in [
            ("https://example.in", "looks like a URL"),
            ("example.in/path", "looks like a URL"),
            ("example", "bare word"),
            ("10.0.0.1", "IP address"),
            ("a..in", "empty label"),
            (".example.in", "empty label"),
            ("example.in.", "trailing dot"),
            (long_label.as_str(), "label of 64"),
            ("-a.in", "starts or ends with '-'"),
            ("a_b.in", "`_`"),
            ("पुणे.भारत", "punycode"),
            ("a.*.in", "wildcard"),
            ("*", "wildcard"),
            ("*.in", "bare word"),
            ("", "empty"),
            ("exa mple.in", "a space"),
        ] {
            let err = normalize_domain(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let dup = validate_domains(&["a.in".into(), "b.in".into(), "A.IN".into()]).unwrap_err();
        assert_eq!(dup.len(), 1);
        assert!(dup[0].contains("listed twice (entries 1 and 3)"), "{dup:?}");
    }

    /// A name the validator suggests is one it accepts; where none is close,
    /// none is suggested (the issue's `Bad_Name!` was told to try
    /// `bad_name!`, itself refused).
    #[test]
    fn suggested_names_are_valid() {
        for (raw, suggested) in [
            ("Bad_Name!", Some("bad-name")),
            ("Pune", Some("pune")),
            ("pune_c", Some("pune-c")),
            ("pune c", Some("pune-c")),
            ("pune.central", Some("pune-central")),
            ("pune-", Some("pune")),
            ("Pune--", Some("pune")),
            ("1-", None),
            ("Ü", None),
            ("1PUNE", None),
            ("!!", None),
        ] {
            let err = validate_tenant_name(raw).unwrap_err();
            let got = err
                .split_once("try `")
                .map(|(_, rest)| rest.split('`').next().unwrap().to_owned());
            assert_eq!(got.as_deref(), suggested, "{raw}: {err}");
            if let Some(name) = got {
                assert!(validate_tenant_name(&name).is_ok(), "{raw}: {err}");
            }
        }
    }

    /// Every message a validator can give, pinned so that a reword is reviewed.
    #[test]
    fn every_validation_message() {
        let long = "a".repeat(57);
        let long_label = format!("{}.in", "a".repeat(64));
        let long_domain = format!("{}.in", ["abcdefghij"; 24].join("."));
        let long_text = "क".repeat(121);
        let mut out = String::new();
        let mut show = |what: &str, input: &str, result: Result<String, String>| {
            let _ = writeln!(out, "{what} {input:?}\n  {}", result.unwrap_err());
        };
        for name in [
            "",
            &long,
            "Pune",
            "pune_c",
            "pune c",
            "1pune",
            "pune-",
            "Bad_Name!",
            "1-",
            "Ü",
        ] {
            show(
                "name",
                name,
                validate_tenant_name(name).map(|()| String::new()),
            );
        }
        for number in [
            "9876543210",
            "+91 (98765) 43210",
            "+0919876543210",
            "+91",
            "+1234567890123456",
        ] {
            show("number", number, normalize_whatsapp_number(number));
        }
        for domain in [
            "",
            "https://a.in",
            "a.in.",
            &long_domain,
            "a_b.in",
            "पुणे.in",
            "a.*.in",
            "pune",
            "a..in",
            &long_label,
            "-a.in",
            "10.0.0.1",
        ] {
            show("domain", domain, normalize_domain(domain));
        }
        for text in ["", "a\tb", &long_text] {
            show("mla_name", text, validate_mla_name(text));
        }
        show(
            "domains",
            "a.in a.in",
            validate_domains(&["a.in".into(), "a.in".into()])
                .map(|_| String::new())
                .map_err(|e| e.join("; ")),
        );
        insta::assert_snapshot!(out);
    }

    #[test]
    fn overlap() {
        assert!(domains_overlap("a.in", "a.in"));
        assert!(domains_overlap("*.x.in", "a.x.in"));
        assert!(domains_overlap("a.x.in", "*.x.in"));
        assert!(domains_overlap("*.x.in", "*.x.in"));
        assert!(!domains_overlap("*.x.in", "x.in"));
        assert!(!domains_overlap("*.x.in", "a.b.x.in"));
        assert!(!domains_overlap("a.in", "b.in"));
    }

    #[test]
    fn free_text_keeps_unicode_and_symbols() {
        for raw in [
            "श्रीकांत शिंदे",
            "திருவள்ளூர்",
            "Dr. O'Brien: \"Bob\" #1 {{ x }} &a *a !!str",
            "אבג عربى",
        ] {
            assert_eq!(validate_mla_name(raw).unwrap(), raw);
        }
        assert_eq!(validate_constituency("  Pune  ").unwrap(), "Pune");
        assert!(
            validate_mla_name("a\nb")
                .unwrap_err()
                .contains("line break")
        );
        assert!(validate_mla_name("   ").unwrap_err().contains("empty"));
        let long = "क".repeat(121);
        assert!(
            validate_constituency(&long)
                .unwrap_err()
                .contains("121 characters")
        );
        assert!(validate_constituency(&"क".repeat(120)).is_ok());
    }

    /// Direction controls and zero-width characters are refused with their
    /// name and position; the joiners that Indic words are spelled with pass.
    #[test]
    fn free_text_refuses_invisible_characters_but_keeps_indic_joiners() {
        // Marathi क्‍ष (half form with ZWJ), Hindi/Marathi र्‍ (eyelash ra),
        // a ZWNJ that keeps क्‌ष from forming a conjunct, Tamil with ZWNJ;
        // and Malayalam chillu-style ZWJ.
        for raw in [
            "श्रीकांत क्\u{200D}ष शिंदे",
            "सर्\u{200D}व्हे रोड",
            "क्\u{200C}ष नगर",
            "திரு\u{200C}வள்ளூர்",
            "ന്\u{200D} കോട്ടയം",
        ] {
            assert_eq!(validate_mla_name(raw).unwrap(), raw, "{raw:?}");
            assert_eq!(validate_constituency(raw).unwrap(), raw);
        }
        let cases = [
            (
                "Asha \u{202E}ihsaK",
                "right-to-left override U+202E at character 6 (after `Asha `)",
            ),
            (
                "Pune\u{200B}",
                "zero-width space U+200B at character 5 (after `Pune`)",
            ),
            (
                "\u{2066}Pune\u{2069}",
                "left-to-right isolate U+2066 at character 1 (after ``)",
            ),
            ("\u{202A}x", "left-to-right embedding U+202A"),
            ("x\u{202D}y", "left-to-right override U+202D"),
            ("x\u{2067}y", "right-to-left isolate U+2067"),
            ("x\u{2068}y", "first strong isolate U+2068"),
            ("x\u{202C}y", "pop directional formatting U+202C"),
            ("\u{FEFF}Pune", "byte order mark) U+FEFF at character 1"),
            (
                "Pu\u{2060}ne",
                "word joiner (an invisible character) U+2060 at character 3",
            ),
            ("मुंबई\u{200F}", "right-to-left mark U+200F at character 6"),
            (
                "Asha\u{00AD}K",
                "soft hyphen (invisible) U+00AD at character 5",
            ),
            ("A\u{3164}", "Hangul filler (a blank letter) U+3164"),
            ("A\u{180E}B", "Mongolian vowel separator (invisible) U+180E"),
        ];
        for (raw, expected) in cases {
            let e = validate_mla_name(raw).unwrap_err();
            assert!(e.starts_with("MLA name contains the "), "{e}");
            assert!(e.contains(expected), "{raw:?}: {e}");
        }
        // Joiners alone show as nothing.
        let e = validate_mla_name("\u{200D}\u{200C} \u{200D}").unwrap_err();
        assert!(e.contains("has no visible character"), "{e}");
        // Site texts, the about paragraph included, are checked the same way.
        let mut values = minimal_values();
        values.site.tagline = Some("सेवा\u{200D}".into());
        values.site.about = Some("Para one.\n\nPara \u{202E}two.".into());
        values.site.office_address = Some("Shivaji\u{200B}Nagar".into());
        let problems = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| {
                p.starts_with(
            "site.about: the about text contains the right-to-left override U+202E at character 17"
        )
            }),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.starts_with(
            "site.office_address: the office address contains the zero-width space U+200B at character 8"
        )), "{problems:?}");
    }

    fn name() -> TenantName {
        TenantName::parse("demo").unwrap()
    }

    /// The fewest values that resolve, for tests that set the rest.
    fn minimal_values() -> TenantValues {
        TenantValues {
            mla_name: Some("A".into()),
            constituency: Some("B".into()),
            whatsapp_number: Some("+919800000001".into()),
            domains: vec!["a.in".into()],
            ..Default::default()
        }
    }

    #[test]
    fn resolve_reports_every_problem_and_missing_flags() {
        let values = TenantValues {
            tenant: Some("other".into()),
            whatsapp_number: Some("12345".into()),
            tier: Some("huge".into()),
            rate_limits: RateLimitOverrides {
                messages_per_day: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        let problems = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap_err();
        insta::assert_snapshot!(format_problems("tenant `demo` config is invalid", &problems), @r"
        tenant `demo` config is invalid:
          - missing values: --mla-name (`mla_name`), --constituency (`constituency`), --domain (`domains`)
          - tenant: the config is for tenant `other` but the command is for `demo`; use tenants/demo.yaml or fix the `tenant:` field
          - whatsapp_number: WhatsApp number `12345` must be in international E.164 form starting with '+' and the country code; example: `+91 98765-43210`
          - tier: `huge` is not a tier of the platform settings; choose one of: small
          - rate_limits.messages_per_day: 0 would silence the bot; give a positive number or remove the override
        ");
    }

    #[test]
    fn values_file_round_trips_and_rejects_unknown_fields() {
        let values = TenantValues {
            mla_name: Some("श्रीकांत \"यस\": yes".into()),
            constituency: Some("on".into()),
            whatsapp_number: Some("+91 98765 43210".into()),
            domains: vec!["A.example.in".into()],
            ..Default::default()
        };
        let spec = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap();
        let text = spec.to_yaml().unwrap();
        let back = TenantValues::from_yaml("x.yaml", &text).unwrap();
        assert_eq!(back, spec.to_values());
        assert_eq!(back.constituency.as_deref(), Some("on"));
        let err = TenantValues::from_yaml("x.yaml", "mla_nmae: x\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `mla_nmae`"),
            "{err}"
        );
        let err = TenantValues::from_yaml("x.yaml", "tier: a\ntier: b\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("duplicate key `tier`"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("DuplicateKeyPolicy"), "{text}");
        assert!(!text.contains("Options"), "{text}");
    }

    #[test]
    fn site_texts_are_checked() {
        let mut values = minimal_values();
        values.site.about = Some("Para one.\r\n\r\nPara two.\n".into());
        values.site.tagline = Some("  सेवा  ".into());
        let spec = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap();
        assert_eq!(spec.site.about.as_deref(), Some("Para one.\n\nPara two."));
        assert_eq!(spec.site.tagline.as_deref(), Some("सेवा"));
        values.site.about = Some("bell\u{7}".into());
        values.site.office_hours = Some("a\nb".into());
        let problems = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("site.about: contains the control character U+0007"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("site.office_hours: "))
        );
        // Each field is named once, with an example of its own.
        values.site.about = None;
        values.site.office_hours = Some(" ".into());
        values.site.tagline = Some("".into());
        values.site.office_address = Some("\t".into());
        let problems = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap_err();
        assert_eq!(
            problems,
            [
                "site.tagline: the tagline is empty; example: `Sevak of Pune Central`",
                "site.office_hours: the office hours line is empty; example: `Mon-Sat 10:00-17:00`",
                "site.office_address: the office address is empty; example: `MLA Office, Shivaji Nagar, Pune 411005`",
            ]
        );
        values.site = Default::default();
        values.site.about = Some("x".repeat(MAX_ABOUT + 1));
        let problems = TenantSpec::resolve(&name(), &values, &["small"], "small").unwrap_err();
        assert!(problems[0].contains("4001 characters"), "{problems:?}");
    }

    #[test]
    fn overlay_prefers_flags() {
        let file = TenantValues {
            mla_name: Some("File".into()),
            domains: vec!["a.in".into()],
            ..Default::default()
        };
        let flags = TenantValues {
            domains: vec!["b.in".into()],
            ..Default::default()
        };
        let merged = file.overlay(flags);
        assert_eq!(merged.mla_name.as_deref(), Some("File"));
        assert_eq!(merged.domains, vec!["b.in".to_owned()]);
    }

    /// A committed config with every section, overlaid with one field,
    /// keeps everything else, and its saved text reads back the same.
    #[test]
    fn overlay_and_save_keep_every_field() {
        let committed = TenantValues {
            tenant: Some("demo".into()),
            mla_name: Some("Asha".into()),
            constituency: Some("Demo Nagar".into()),
            whatsapp_number: Some("+919800000001".into()),
            domains: vec!["a.in".into()],
            tier: Some("medium".into()),
            rate_limits: RateLimitOverrides {
                messages_per_minute_per_user: Some(7),
                messages_per_day: Some(700),
            },
            site: SiteContent {
                tagline: Some("Seva".into()),
                about: Some("About.".into()),
                office_address: Some("Ward Office".into()),
                office_hours: Some("10-17".into()),
            },
        };
        let over = TenantValues {
            rate_limits: RateLimitOverrides {
                messages_per_day: Some(900),
                ..Default::default()
            },
            site: SiteContent {
                tagline: Some("New".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let merged = committed.clone().overlay(over);
        let mut want = committed.clone();
        want.rate_limits.messages_per_day = Some(900);
        want.site.tagline = Some("New".into());
        assert_eq!(merged, want);
        assert_eq!(
            committed.clone().overlay(TenantValues::default()),
            committed
        );

        let spec = TenantSpec::resolve(&name(), &merged, &["small", "medium"], "small").unwrap();
        let text = spec.to_yaml().unwrap();
        assert_eq!(TenantValues::from_yaml("x.yaml", &text).unwrap(), want);
    }
}
