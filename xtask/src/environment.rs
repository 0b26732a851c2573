//! Environments (`environments.yaml`): which cluster a command talks to,
//! the host names tenants get there, and whether changes need a typed
//! confirmation. `--env NAME` picks one; the file names the default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::tenant::{TenantSpec, normalize_domain};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(skip)]
    pub name: String,
    pub context: String,
    pub domain_suffix: String,
    pub tenant_domains: bool,
    pub confirm: bool,
    /// The roles (from the `approvers` file) that must each approve a
    /// change here, each by a different person: a change is then planned
    /// (`--save-plan`), approved (`cargo xtask approve`) and applied
    /// (`cargo xtask apply`), or made with `--break-glass`.
    #[serde(default)]
    pub approvals: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<String>,
    environments: BTreeMap<String, Environment>,
}

/// `$XTASK_ENVIRONMENTS`, else `environments.yaml` in the repository.
fn path() -> PathBuf {
    std::env::var_os("XTASK_ENVIRONMENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo::project_root().join("environments.yaml"))
}

/// What `--env`/`--context` select: the environment, if any, and whether
/// `environments.yaml` has environments at all (so that a context that
/// matches none of them can be said to).
pub struct Selected {
    pub environment: Option<Environment>,
    pub any: bool,
}

/// The environments file's `text`, read from `path`.
fn parse(path: &std::path::Path, text: &str) -> anyhow::Result<File> {
    serde_saphyr::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid: {}",
            path.display(),
            crate::tenant::yaml_error(&e)
        )
    })
}

/// The environment `--env` (or `--context`, or the file's default) names;
/// None when there is no file, or nothing names one. Called once per
/// command, by `cluster::Target::resolve`.
pub fn select(env: Option<&str>, context: Option<&str>) -> anyhow::Result<Selected> {
    let path = path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(env) = env {
                bail!("--env {env} was given but there is no {}", path.display());
            }
            return Ok(Selected {
                environment: None,
                any: false,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let file = parse(&path, &text)?;
    // --env wins; a bare --context selects the environment with that
    // context (so production's rules follow its context); else the default.
    let name = match (env, context) {
        (Some(env), _) => Some(env.to_owned()),
        (None, Some(context)) => file
            .environments
            .iter()
            .find(|(_, e)| e.context == context)
            .map(|(n, _)| n.clone()),
        (None, None) => file.default.clone(),
    };
    let any = !file.environments.is_empty();
    let Some(name) = name else {
        return Ok(Selected {
            environment: None,
            any,
        });
    };
    let Some(env) = file.environments.get(&name) else {
        bail!(
            "environment `{name}` is not in {}; the environments are: {}",
            path.display(),
            file.environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if let Err(e) = normalize_domain(&env.domain_suffix) {
        bail!("{}: environment {name}: domain_suffix: {e}", path.display());
    }
    if let Some(context) = context
        && context != env.context
    {
        bail!(
            "--context {context} is not the context of environment {name} ({}); drop one of them, or pick the environment with --env",
            env.context
        );
    }
    Ok(Selected {
        environment: Some(Environment {
            name,
            ..env.clone()
        }),
        any,
    })
}

impl Environment {
    /// The tenant as this environment serves it: `<tenant>.<domain_suffix>`,
    /// plus the tenant's own domains where the environment claims them.
    pub fn tenant_view(&self, spec: &TenantSpec) -> TenantSpec {
        let mut out = spec.clone();
        let own = format!("{}.{}", spec.name, self.domain_suffix);
        let mut domains = if self.tenant_domains {
            spec.domains.clone()
        } else {
            Vec::new()
        };
        if !domains.contains(&own) {
            domains.push(own);
        }
        out.domains = domains;
        out
    }

    /// Refuses a tenant's own domain under this environment's
    /// `domain_suffix` other than its own host: `<other>.<suffix>` is tenant
    /// `other`'s automatic host, which it could not claim back (nor remove
    /// from its config), and the suffix itself or `*.<suffix>` covers every
    /// tenant's.
    pub fn refuse_platform_hosts(&self, spec: &TenantSpec) -> anyhow::Result<()> {
        if !self.tenant_domains {
            return Ok(());
        }
        let own = format!("{}.{}", spec.name, self.domain_suffix);
        let suffix = &self.domain_suffix;
        for domain in &spec.domains {
            let under = domain == suffix
                || domain
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|head| head.ends_with('.'));
            if under && *domain != own {
                crate::outcome::bail_unchanged!(
                    "domain {domain} of tenant {} is under environment {}'s domain_suffix {suffix}, where \
                     every tenant is served at <tenant>.{suffix}: it would take {}. Leave it out of the \
                     tenant's domains, in its config or --domain flags (the tenant is served at {own} \
                     already), and run this again.",
                    spec.name,
                    self.name,
                    match domain
                        .strip_suffix(&format!(".{suffix}"))
                        .filter(|h| !h.contains('.') && !h.starts_with('*'))
                    {
                        Some(other) => format!("tenant {other}'s automatic host"),
                        None => "other tenants' automatic hosts".to_owned(),
                    }
                );
            }
        }
        Ok(())
    }
}

/// The names of the environments in the file, for shell completion; none
/// when there is no file.
pub fn names() -> anyhow::Result<Vec<String>> {
    Ok(contexts_in(&path())?
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Each environment's name and kube context in the environments file at
/// `path` (`docs check` holds documented `--context` values against them);
/// None when there is no such file.
pub fn contexts_in(path: &std::path::Path) -> anyhow::Result<Option<Vec<(String, String)>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let file = parse(path, &text)?;
    Ok(Some(
        file.environments
            .into_iter()
            .map(|(name, env)| (name, env.context))
            .collect(),
    ))
}
