//! `admin drift`: which tenants' live objects differ from their committed
//! config, using the same server-side diff as `provision --plan`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use xshell::Shell;

use super::{Tenants, print_structured, table};
use crate::flags::{self, OutputFormat};
use crate::provision::{diff_plan, prepare};
use crate::render::Templates;
use crate::tenant::{TenantName, TenantSpec, TenantValues, format_problems};

#[derive(Debug, Serialize)]
struct TenantDrift {
    name: String,
    /// `in-sync`, `drifted`, `no-config` (on the cluster only),
    /// `not-on-cluster` (config only) or `error`.
    state: &'static str,
    /// The objects that differ, as `provision --plan` lists them, or the error.
    details: Vec<String>,
}

impl flags::Drift {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let templates = Templates::load(&root.join("templates"))?;
        let dir = self
            .tenants_dir
            .clone()
            .unwrap_or_else(|| root.join("tenants"));
        let kubectl = self.cluster.kubectl()?;
        let env = crate::environment::select(&self.cluster)?;
        let tenants = Tenants::discover(sh, &kubectl)?;
        let on_cluster: BTreeSet<String> = tenants.names().into_iter().collect();
        let mut configs = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml")
                && path.is_file()
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                configs.insert(stem.to_owned());
            }
        }
        let mut rows = Vec::new();
        for name in on_cluster.union(&configs) {
            eprintln!("Comparing {name} ...");
            let row = if !configs.contains(name) {
                TenantDrift {
                    name: name.clone(),
                    state: "no-config",
                    details: vec![format!("no {}/{name}.yaml", dir.display())],
                }
            } else if !on_cluster.contains(name) {
                TenantDrift {
                    name: name.clone(),
                    state: "not-on-cluster",
                    details: vec![],
                }
            } else {
                let compared = (|| -> anyhow::Result<Vec<String>> {
                    let path = dir.join(format!("{name}.yaml"));
                    let values = TenantValues::from_yaml(
                        &path.display().to_string(),
                        &std::fs::read_to_string(&path)?,
                    )?;
                    let tenant = TenantName::parse(name).map_err(anyhow::Error::msg)?;
                    let spec = TenantSpec::resolve(
                        &tenant,
                        &values,
                        &platform.tier_names(),
                        &platform.default_tier,
                    )
                    .map_err(|p| {
                        anyhow::anyhow!(format_problems(
                            &format!("{} is invalid", path.display()),
                            &p
                        ))
                    })?;
                    // Compared as this environment serves it, as provision would apply it.
                    let spec = env.as_ref().map_or(spec.clone(), |e| e.tenant_view(&spec));
                    let prepared = prepare(sh, &kubectl, &platform, &templates, &spec, false)?;
                    Ok(diff_plan(sh, &kubectl, &spec, &prepared)?.changes)
                })();
                match compared {
                    Ok(changes) if changes.iter().all(|c| c.starts_with('!')) => TenantDrift {
                        name: name.clone(),
                        state: "in-sync",
                        details: changes,
                    },
                    Ok(changes) => TenantDrift {
                        name: name.clone(),
                        state: "drifted",
                        details: changes,
                    },
                    Err(e) => TenantDrift {
                        name: name.clone(),
                        state: "error",
                        details: vec![format!("{e:#}")],
                    },
                }
            };
            rows.push(row);
        }
        match self.output.format {
            OutputFormat::Table => {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .flat_map(|r| {
                        let mut lines = vec![vec![
                            r.name.clone(),
                            r.state.to_owned(),
                            r.details.first().cloned().unwrap_or_default(),
                        ]];
                        lines.extend(
                            r.details
                                .iter()
                                .skip(1)
                                .map(|d| vec![String::new(), String::new(), d.clone()]),
                        );
                        lines
                    })
                    .collect();
                print!("{}", table(&["TENANT", "STATE", "DETAILS"], &cells));
            }
            format => print_structured(format, &serde_json::json!({"tenants": rows}))?,
        }
        if rows.iter().any(|r| r.state == "error") {
            anyhow::bail!("some tenants could not be compared; see above");
        }
        if rows.iter().any(|r| r.state != "in-sync") {
            return Err(crate::Exit(2).into());
        }
        Ok(())
    }
}
