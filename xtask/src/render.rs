//! Renders a tenant's Kubernetes manifests from the minijinja templates in
//! `templates/`, then parses and checks every document before anything can
//! print or apply it.
//!
//! Every template is rendered with JSON auto-escaping: `{{ value }}` always
//! comes out as a JSON scalar, list or map, and JSON is YAML, so no tenant
//! value can change the structure of a manifest whatever it contains.
//! Composed strings are written as one expression: `{{ "tenant-" ~ name }}`.
//! Undefined variables are errors, including ones hidden behind a filter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, value::Serde};
use serde::Serialize;
use serde_json::Value;

use crate::names::{
    MANAGED_BY_LABEL, MANAGER, PART_OF, PART_OF_LABEL, TEMPLATE_NAMES, TENANT_LABEL, TemplateNames,
    VERSION_LABEL,
};
use crate::platform::{Platform, RateLimits, Tier};
use crate::tenant::TenantSpec;

/// What the Secret shows in dry-run output and snapshots.
pub const REDACTED: &str = "<redacted: generated on first apply, never printed>";

/// Kinds in the order they are applied: a namespace before what lives in
/// it, policies and quotas before workloads, the workload's inputs (service
/// account, config, secret, volumes) before the workload.
pub const APPLY_ORDER: [&str; 11] = [
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "Ingress",
];

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The template file it came from, e.g. `networkpolicy.yaml`.
    pub source: String,
    pub kind: String,
    pub name: String,
    /// None for cluster-scoped objects (only the Namespace).
    pub namespace: Option<String>,
    pub object: Value,
}

impl Manifest {
    /// `kind/name` as kubectl prints it, e.g. `deployment/bot`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.to_ascii_lowercase(), self.name)
    }
}

/// The values of the bot's generated credentials in a render.
pub enum SecretValues {
    /// Dry runs, snapshots, and applies to a tenant whose Secret exists.
    Redacted,
    /// Fresh values for a Secret that does not exist yet.
    Generated(BTreeMap<String, String>),
}

impl SecretValues {
    /// 32 bytes from the operating system's CSPRNG per key, hex-encoded.
    pub fn generate(keys: &[String]) -> anyhow::Result<SecretValues> {
        SecretValues::fresh(keys).map(SecretValues::Generated)
    }

    /// Fresh values for every key, as [`SecretValues::generate`] makes them.
    pub fn fresh(keys: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        for key in keys {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("cannot get random bytes from the OS: {e}"))?;
            values.insert(key.clone(), crate::digest::hex(&bytes));
        }
        Ok(values)
    }

    pub fn is_generated(&self) -> bool {
        matches!(self, SecretValues::Generated(_))
    }

    pub fn values(&self) -> Vec<&str> {
        match self {
            SecretValues::Redacted => Vec::new(),
            SecretValues::Generated(map) => map.values().map(String::as_str).collect(),
        }
    }
}

/// The loaded templates, ready to render any number of tenants.
pub struct Templates {
    env: Environment<'static>,
    names: Vec<String>,
}

impl Templates {
    /// Loads every `*.yaml` file of `dir` as a manifest template; files that
    /// start with `_` are helpers to import, not rendered on their own.
    pub fn load(dir: &Path) -> anyhow::Result<Templates> {
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!(
                "cannot read the templates directory {}; run from the repository or pass --templates DIR",
                dir.display()
            )
        })?;
        let mut sources = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if path.is_file() && (name.ends_with(".yaml") || name.ends_with(".j2")) {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read template {}", path.display()))?;
                sources.push((name, text));
            }
        }
        Templates::from_sources(sources)
    }

    pub fn from_sources(sources: Vec<(String, String)>) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        // The `debug` feature is off: its error dumps would print the context, secrets included.
        env.set_formatter(|out, state, value| {
            if value.is_undefined() || value.is_none() {
                return Err(Error::new(
                    ErrorKind::UndefinedError,
                    "a template printed an undefined or none value",
                ));
            }
            minijinja::escape_formatter(out, state, value)
        });
        let mut names = Vec::new();
        for (name, text) in sources {
            if name.ends_with(".yaml") && !name.starts_with('_') {
                names.push(name.clone());
            }
            env.add_template_owned(name.clone(), text)
                .map_err(|e| anyhow::anyhow!("template {name} does not parse: {e}"))?;
        }
        if names.is_empty() {
            bail!("no manifest templates (*.yaml) found in the templates directory");
        }
        names.sort();
        Ok(Templates { env, names })
    }

    /// Renders, parses and checks every manifest of one tenant, sorted in
    /// [`APPLY_ORDER`].
    pub fn render_tenant(
        &self,
        spec: &TenantSpec,
        platform: &Platform,
        secrets: &SecretValues,
    ) -> anyhow::Result<Vec<Manifest>> {
        let tier = platform
            .tiers
            .get(&spec.tier)
            .with_context(|| format!("tier `{}` is not in the platform settings", spec.tier))?;
        // Converted once, not once per template.
        let context =
            minijinja::Value::from(Serde(&RenderContext::new(spec, platform, tier, secrets)));
        let mut manifests = Vec::new();
        for name in &self.names {
            let text = self
                .env
                .get_template(name)
                .and_then(|t| t.render(&context))
                .map_err(|e| anyhow::anyhow!("template {name} failed to render: {e}"))?;
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .map_err(|e| anyhow::anyhow!("template {name} rendered invalid YAML: {e}"))?;
            for doc in docs.into_iter().filter(|d| !d.is_null()) {
                manifests.push(check_object(name, doc, &spec.namespace)?);
            }
        }
        manifests.sort_by_key(|m| APPLY_ORDER.iter().position(|k| *k == m.kind));
        let mut seen = std::collections::BTreeSet::new();
        for m in &manifests {
            if !seen.insert((m.kind.clone(), m.name.clone())) {
                bail!(
                    "two templates render {} {}; names must be unique per kind",
                    m.kind,
                    m.name
                );
            }
        }
        Ok(manifests)
    }
}

/// The checks every rendered object must pass: a known kind, a name, and for
/// namespaced kinds the tenant's own namespace. A template can therefore
/// never create something outside the tenant.
fn check_object(source: &str, object: Value, namespace: &str) -> anyhow::Result<Manifest> {
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(&object, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let kind = field(&["kind"]).with_context(|| format!("{source}: a document has no kind"))?;
    if !APPLY_ORDER.contains(&kind.as_str()) {
        bail!(
            "{source}: kind {kind} is not one provision knows how to order; add it to APPLY_ORDER in xtask/src/render.rs"
        );
    }
    let name = field(&["metadata", "name"])
        .with_context(|| format!("{source}: a {kind} has no metadata.name"))?;
    let object_ns = field(&["metadata", "namespace"]);
    let namespace_out = if kind == "Namespace" {
        if name != namespace || object_ns.is_some() {
            bail!("{source}: the Namespace must be `{namespace}`, found `{name}`");
        }
        None
    } else {
        if object_ns.as_deref() != Some(namespace) {
            bail!(
                "{source}: {kind} {name} is in namespace {:?}, not the tenant's `{namespace}`",
                object_ns.unwrap_or_default()
            );
        }
        object_ns
    };
    Ok(Manifest {
        source: source.to_owned(),
        kind,
        name,
        namespace: namespace_out,
        object,
    })
}

/// Everything a template sees.
#[derive(Serialize)]
struct RenderContext<'a> {
    tenant: &'a TenantSpec,
    platform: &'a Platform,
    tier: &'a Tier,
    /// The tier's rate limits with the tenant's overrides applied.
    rate_limits: RateLimits,
    labels: Labels,
    /// Object names shared with the tool (`names.rs`).
    names: TemplateNames,
    /// The platform's annotation keys.
    keys: BTreeMap<&'static str, &'static str>,
    /// Changes whenever the config the bot reads changes, to restart it.
    config_checksum: String,
    secret: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Labels {
    /// On every object.
    common: BTreeMap<String, String>,
    /// The stable subset that selects the bot's pods (Deployment, Service).
    selector: BTreeMap<String, String>,
    /// What the bot's NetworkPolicies select.
    network_role: BTreeMap<String, String>,
    /// On the bot's pods: `common` and the network role.
    pod: BTreeMap<String, String>,
}

impl<'a> RenderContext<'a> {
    fn new(
        spec: &'a TenantSpec,
        platform: &'a Platform,
        tier: &'a Tier,
        secrets: &SecretValues,
    ) -> RenderContext<'a> {
        let rate_limits = RateLimits {
            messages_per_minute_per_user: spec
                .rate_limits
                .messages_per_minute_per_user
                .unwrap_or(tier.rate_limits.messages_per_minute_per_user),
            messages_per_day: spec
                .rate_limits
                .messages_per_day
                .unwrap_or(tier.rate_limits.messages_per_day),
        };
        let selector = crate::names::bot_selector(spec.name.as_str());
        let mut common = selector.clone();
        common.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
        common.insert(PART_OF_LABEL.into(), PART_OF.into());
        common.insert(TENANT_LABEL.into(), spec.name.to_string());
        if let Some(version) = image_version_label(&platform.bot.image) {
            common.insert(VERSION_LABEL.into(), version);
        }
        let keys = crate::names::template_keys();
        let config_checksum = {
            let inputs = serde_json::json!({
                "tenant": spec, "rate_limits": &rate_limits, "bot": &platform.bot,
            });
            crate::digest::sha256_hex(inputs.to_string().as_bytes())
        };
        let secret = platform
            .bot
            .generated_secrets
            .iter()
            .map(|key| {
                let value = match secrets {
                    SecretValues::Redacted => REDACTED.to_owned(),
                    SecretValues::Generated(map) => map.get(key).cloned().unwrap_or_default(),
                };
                (key.clone(), value)
            })
            .collect();
        RenderContext {
            tenant: spec,
            platform,
            tier,
            rate_limits,
            labels: {
                let network_role = crate::names::bot_network_role();
                let mut pod = common.clone();
                pod.extend(network_role.clone());
                Labels {
                    common,
                    selector,
                    network_role,
                    pod,
                }
            },
            names: TEMPLATE_NAMES,
            keys,
            config_checksum,
            secret,
        }
    }
}

/// The image tag, when it is a valid label value (a digest is not).
fn image_version_label(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let last = without_digest.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    let valid = !tag.is_empty()
        && tag.len() <= 63
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric())
        && tag.ends_with(|c: char| c.is_ascii_alphanumeric());
    valid.then(|| tag.to_owned())
}

/// The manifests as one multi-document YAML stream, each document preceded
/// by the template it came from. This exact text is what `--dry-run` prints
/// and what `kubectl apply` reads.
pub fn to_yaml_stream(manifests: &[Manifest]) -> anyhow::Result<String> {
    let mut out = String::new();
    for m in manifests {
        let body = serde_saphyr::to_string(&m.object)
            .with_context(|| format!("cannot serialise {}", m.reference()))?;
        let _ = write!(out, "---\n# Source: templates/{}\n{body}", m.source);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// A file name for `--out`: apply order, kind and name, e.g. `08-deployment-bot.yaml`.
pub fn file_name(index: usize, manifest: &Manifest) -> String {
    format!(
        "{:02}-{}-{}.yaml",
        index + 1,
        manifest.kind.to_ascii_lowercase(),
        manifest.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(body: &str) -> Templates {
        Templates::from_sources(vec![("t.yaml".into(), body.into())]).unwrap()
    }

    fn render(t: &Templates, ctx: Value) -> Result<String, Error> {
        t.env.get_template("t.yaml").unwrap().render(Serde(&ctx))
    }

    #[test]
    fn undefined_values_are_errors_even_through_filters() {
        let t = templates("a: {{ x.nope|lower }}\nb: {{ x.nope|default(none) }}\n");
        let err = render(&t, serde_json::json!({"x": {}})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
        let t = templates("b: {{ x.nope|default(none) }}\n");
        assert!(render(&t, serde_json::json!({"x": {}})).is_err());
        let t = templates("c: {{ missing }}\n");
        assert!(render(&t, serde_json::json!({})).is_err());
    }

    #[test]
    fn hostile_strings_stay_string_data() {
        let hostile = "x\"\n  injected: true\n---\nkind: Secret # {{ y }} &a *a !!binary ' : - [";
        let t = templates("name: {{ v }}\ncomposed: {{ 'tenant-' ~ v }}\n");
        let text = render(&t, serde_json::json!({"v": hostile})).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        assert_eq!(docs.len(), 1, "{text}");
        assert_eq!(docs[0]["name"], hostile);
        assert_eq!(docs[0]["composed"], format!("tenant-{hostile}"));
        assert_eq!(docs[0].as_object().unwrap().len(), 2);
    }

    #[test]
    fn objects_outside_the_tenant_namespace_are_refused() {
        let ok = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "tenant-a"}});
        assert!(check_object("t", ok, "tenant-a").is_ok());
        for (object, why) in [
            (
                serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "tenant-b"}}),
                "not the tenant's",
            ),
            (
                serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
                "not the tenant's",
            ),
            (
                serde_json::json!({"kind": "Namespace", "metadata": {"name": "tenant-b"}}),
                "must be `tenant-a`",
            ),
            (
                serde_json::json!({"kind": "ClusterRole", "metadata": {"name": "x"}}),
                "APPLY_ORDER",
            ),
            (serde_json::json!({"metadata": {"name": "x"}}), "no kind"),
        ] {
            let err = check_object("t", object, "tenant-a")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn version_label_from_image() {
        assert_eq!(
            image_version_label("ghcr.io/a/bot:1.4.2").as_deref(),
            Some("1.4.2")
        );
        assert_eq!(
            image_version_label("localhost:5000/bot:v2").as_deref(),
            Some("v2")
        );
        assert_eq!(image_version_label("localhost:5000/bot"), None);
        assert_eq!(image_version_label("bot@sha256:abc"), None);
        assert_eq!(
            image_version_label("bot:1.2@sha256:abc").as_deref(),
            Some("1.2")
        );
    }

    #[test]
    fn generated_secrets_are_distinct_and_strong() {
        let keys = vec!["A".to_owned(), "B".to_owned()];
        let SecretValues::Generated(a) = SecretValues::generate(&keys).unwrap() else {
            panic!()
        };
        assert_eq!(a.len(), 2);
        assert_ne!(a["A"], a["B"]);
        assert!(
            a.values()
                .all(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
