//! `cargo xtask admin`: operate tenants that `provision` created.
//!
//! One module per command. Shared here: finding the tenants on the cluster
//! (by label, never by guessing from namespace names), the error for a tenant
//! that does not exist, the clock, and table/JSON/YAML output.

mod backup;
mod drift;
pub(crate) mod lifecycle;
mod list;
mod logs;
mod restart;
mod restore;
mod usage;
mod verify;
mod workbench;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use xshell::Shell;

use crate::flags::{self, AdminCommand, OutputFormat};
use crate::kubectl::{Kubectl, Scope};
use crate::platform::Platform;
use crate::render::TENANT_LABEL;
use crate::tenant::TenantName;

pub use crate::kubectl::str_at;
pub use backup::{BackupManifest, verify_archive};

impl flags::Admin {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        match self.command {
            AdminCommand::List(cmd) => cmd.run(sh),
            AdminCommand::Usage(cmd) => cmd.run(sh, root),
            AdminCommand::Restart(cmd) => cmd.run(sh, root),
            AdminCommand::Logs(cmd) => cmd.run(sh),
            AdminCommand::Backup(cmd) => cmd.run(sh, root),
            AdminCommand::Restore(cmd) => cmd.run(sh, root),
            AdminCommand::VerifyBackup(cmd) => cmd.run(),
            AdminCommand::Verify(cmd) => cmd.run(sh, root),
            AdminCommand::Drift(cmd) => cmd.run(sh, root),
            AdminCommand::Audit(cmd) => cmd.run(root),
            AdminCommand::Suspend(cmd) => cmd.run(sh, root),
            AdminCommand::Resume(cmd) => cmd.run(sh, root),
            AdminCommand::Rotate(cmd) => cmd.run(sh, root),
            AdminCommand::Offboard(cmd) => cmd.run(sh, root),
        }
    }
}

impl flags::PlatformArg {
    pub fn load(&self, root: &Path) -> anyhow::Result<Platform> {
        let path = self
            .platform
            .clone()
            .unwrap_or_else(|| root.join("platform.yaml"));
        Platform::load(&path.display().to_string())
    }
}

impl flags::Audit {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let log = crate::audit::path(self.audit_log.as_deref(), root);
        let entries: Vec<crate::audit::Entry> = crate::audit::read(&log)?
            .into_iter()
            .filter(|e| self.tenant.as_ref().is_none_or(|t| e.tenant == t.as_str()))
            .collect();
        match self.output.format {
            OutputFormat::Table => {
                if entries.is_empty() {
                    eprintln!("No entries in {}.", log.display());
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.time.clone(),
                            e.operator.clone(),
                            e.environment.clone().unwrap_or_else(|| "-".into()),
                            e.context.clone(),
                            e.tenant.clone(),
                            e.command.clone(),
                            e.result.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "TIME", "OPERATOR", "ENV", "CONTEXT", "TENANT", "COMMAND", "RESULT"
                        ],
                        &rows
                    )
                );
            }
            format => print_structured(format, &entries)?,
        }
        Ok(())
    }
}

/// Adds `statement` (what was and was not changed) to an error that does
/// not say it already.
pub fn stating(e: anyhow::Error, statement: &str) -> anyhow::Error {
    let text = format!("{e:#}");
    let key = statement.trim_end_matches('.').to_lowercase();
    if text.to_lowercase().contains(&key) {
        e
    } else {
        anyhow::anyhow!("{text}\n{statement}")
    }
}

/// The tenants on the cluster: namespaces carrying the tenant label.
pub struct Tenants {
    pub namespaces: Vec<Value>,
}

impl Tenants {
    pub fn discover(sh: &Shell, kubectl: &Kubectl) -> anyhow::Result<Tenants> {
        let mut namespaces =
            kubectl.get_list(sh, "namespaces", Scope::Cluster, Some(TENANT_LABEL))?;
        namespaces.sort_by_key(|ns| tenant_of(ns).unwrap_or_default());
        Ok(Tenants { namespaces })
    }

    pub fn names(&self) -> Vec<String> {
        self.namespaces.iter().filter_map(tenant_of).collect()
    }

    /// The tenant's namespace object, or an error that lists the tenants
    /// that do exist.
    pub fn require(&self, tenant: &TenantName) -> anyhow::Result<&Value> {
        if let Some(ns) = self
            .namespaces
            .iter()
            .find(|ns| tenant_of(ns).as_deref() == Some(tenant.as_str()))
        {
            return Ok(ns);
        }
        let names = self.names();
        if names.is_empty() {
            bail!(
                "tenant {tenant} does not exist: there are no tenants on this cluster yet \
                 (create one with `cargo xtask provision`); check --context if you expected some"
            )
        }
        bail!(
            "tenant {tenant} does not exist on this cluster; the tenants are: {}",
            names.join(", ")
        )
    }
}

/// The tenant an object belongs to, from its label.
pub fn tenant_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/labels")?
        .get(TENANT_LABEL)?
        .as_str()
        .map(str::to_owned)
}

/// Now, or the instant in `XTASK_NOW` (RFC 3339), which makes ages and
/// backup names reproducible in tests and documentation.
pub fn now() -> anyhow::Result<SystemTime> {
    match std::env::var("XTASK_NOW") {
        Ok(t) => humantime::parse_rfc3339(&t).with_context(|| {
            format!("XTASK_NOW `{t}` is not an RFC 3339 time such as 2026-11-24T06:00:00Z")
        }),
        Err(_) => Ok(SystemTime::now()),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds between an object's creation and `now`.
pub fn age_seconds(created: Option<&str>, now: SystemTime) -> Option<u64> {
    let created = humantime::parse_rfc3339(created?).ok()?;
    Some(
        now.duration_since(created)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
    )
}

/// kubectl-style age: `45s`, `12m`, `5h`, `3d`.
pub fn format_age(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7_200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3_600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// An aligned table: a header row, then rows, columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Prints `value` as JSON or YAML; tables are each command's own.
pub fn print_structured(format: OutputFormat, value: &impl Serialize) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(value)?,
        OutputFormat::Table => unreachable!("tables are printed by each command"),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// Parses a Kubernetes quantity to a whole number of base units (bytes, or
/// millicores for CPU).
pub fn quantity(raw: &str, kind: crate::platform::QuantityKind) -> Option<u128> {
    use crate::platform::{QuantityKind, parse_quantity};
    // metrics-server reports CPU in nanocores (`n`) and microcores (`u`).
    if kind == QuantityKind::Cpu {
        if let Some(n) = raw.strip_suffix('n') {
            return n.parse::<u128>().ok().map(|n| n / 1_000_000);
        }
        if let Some(u) = raw.strip_suffix('u') {
            return u.parse::<u128>().ok().map(|u| u / 1_000);
        }
        return parse_quantity(raw, kind).ok();
    }
    parse_quantity(raw, kind).ok().map(|milli| milli / 1000)
}

/// `1.2Gi`, `340Mi`, `12Ki`, `512B`.
pub fn format_bytes(bytes: u128) -> String {
    const UNITS: [(&str, u128); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = bytes * 10 / size;
            return if tenths.is_multiple_of(10) || tenths >= 1000 {
                format!("{}{unit}", tenths / 10)
            } else {
                format!("{}.{}{unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::QuantityKind;

    #[test]
    fn ages_and_sizes() {
        assert_eq!(format_age(Some(59)), "59s");
        assert_eq!(format_age(Some(3_600)), "60m");
        assert_eq!(format_age(Some(7_200)), "2h");
        assert_eq!(format_age(Some(3 * 86_400 + 5)), "3d");
        assert_eq!(format_age(None), "-");
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(1536), "1.5Ki");
        assert_eq!(format_bytes(5 << 30), "5Gi");
        assert_eq!(quantity("12000000n", QuantityKind::Cpu), Some(12));
        assert_eq!(quantity("250m", QuantityKind::Cpu), Some(250));
        assert_eq!(quantity("81920Ki", QuantityKind::Bytes), Some(80 << 20));
    }

    #[test]
    fn tables_align_unicode() {
        let t = table(
            &["A", "B"],
            &[
                vec!["कल्याण".into(), "1".into()],
                vec!["x".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A       B\nकल्याण  1\nx       22\n");
    }
}
