//! Command-line flags of every task, in one place so that `--help`, the docs
//! checker and the generated reference all read the same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::tenant::TenantName;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Provision and operate MLA WhatsApp-bot tenants on the shared Kubernetes cluster",
    after_help = "Start with: cargo xtask provision demo --values tenants/demo.yaml --dry-run",
    disable_help_subcommand = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Provision(Provision),
}

/// Where the repository's files are; the defaults are relative to the
/// repository root, whatever the current directory.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Platform settings file [default: platform.yaml]
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Directory of manifest templates [default: templates/]
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Directory of tenant configs, where <TENANT>.yaml is saved [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// kubectl binary to use [default: $KUBECTL, else `kubectl` on PATH]
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// Kube context to use [default: kubectl's current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Render a tenant's manifests and apply them to the cluster.
#[derive(Debug, Args)]
#[command(
    long_about = "Render a tenant's Kubernetes manifests from templates/ and apply them with one \
`kubectl apply --server-side`, then wait for the bot to roll out.\n\n\
Values come from --values, then flags (which win), then prompts when stdin is a terminal. \
Everything is validated before any cluster call. A real apply saves the resolved config to \
tenants/<TENANT>.yaml first, so re-running with only --values reproduces the same manifests. \
The bot's credentials are generated once, when its Secret does not exist, and never printed; \
existing volumes and credentials are never re-applied. Re-running is safe: an interrupted \
apply is finished by running the same command again.",
    after_help = "Examples:\n  \
  # Review what would be applied, with no cluster and no kubectl:\n  \
  cargo xtask provision demo --values tenants/demo.yaml --dry-run\n\n  \
  # Onboard interactively (prompts for anything missing):\n  \
  cargo xtask provision pune-central --context prod\n\n  \
  # Onboard from flags only, e.g. in a script:\n  \
  cargo xtask provision pune-central --non-interactive --mla-name \"Asha Kulkarni\" \\\n      \
  --constituency \"Pune Central\" --whatsapp-number \"+91 98765-43210\" --domain pune-central.example.in\n\n  \
  # Re-apply a committed tenant:\n  \
  cargo xtask provision pune-central --values tenants/pune-central.yaml --context prod"
)]
pub struct Provision {
    /// Tenant name: a lowercase DNS label of 1 to 56 characters (namespace `tenant-<TENANT>`)
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// Tenant config file (YAML, as in tenants/demo.yaml); flags override its values
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// Full name of the MLA (any script, at most 120 characters)
    #[arg(long, value_name = "TEXT")]
    pub mla_name: Option<String>,
    /// Constituency name (any script, at most 120 characters)
    #[arg(long, value_name = "TEXT")]
    pub constituency: Option<String>,
    /// The bot's WhatsApp number in E.164 form; spaces and dashes are removed
    #[arg(long, value_name = "NUMBER")]
    pub whatsapp_number: Option<String>,
    /// A domain the tenant's website answers on; repeat for several (replaces the file's list)
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Size tier from the platform settings [default: the platform's default_tier]
    #[arg(long, value_name = "NAME")]
    pub tier: Option<String>,
    /// Never prompt; missing values are an error (implied when stdin is not a terminal)
    #[arg(long)]
    pub non_interactive: bool,
    /// Print the manifests to stdout and stop: no cluster, no kubectl, no file written
    #[arg(long, conflicts_with = "out")]
    pub dry_run: bool,
    /// Write one file per object into DIR and stop: no cluster, no kubectl
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How long to wait for the bot to roll out (kubectl duration)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: String,
    /// Take over fields that another field manager (e.g. a hand edit) owns
    #[arg(long)]
    pub force_conflicts: bool,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// A kubectl (Go) duration such as `90s`, `5m` or `1h30m`, checked here so
/// that a typo fails before anything is applied rather than after.
pub fn parse_duration(raw: &str) -> Result<String, String> {
    let err = || format!("`{raw}` is not a duration; write it like 90s, 5m or 1h30m");
    let mut rest = raw;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err());
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u))
            .ok_or_else(err)?;
        rest = &rest[unit.len()..];
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn durations() {
        for ok in ["90s", "5m", "1h30m", "250ms"] {
            assert_eq!(super::parse_duration(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "5", "5 minutes", "m5", "1.5h", "-1s"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_well_formed() {
        super::Xtask::command().debug_assert();
    }
}
