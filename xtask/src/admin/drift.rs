//! `admin drift`: which tenants' live objects differ from their committed
//! config, using the same plan as `provision --plan`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::cluster::Cluster;
use crate::flags;
use crate::live::Tenants;
use crate::object::applyable;
use crate::output::{OutputFormat, print_structured, table};
use crate::plan::{diff_plan, prepare};
use crate::render::{Manifest, Templates};
use crate::repo::{committed_configs, read_values, tenants_dir};
use crate::state::{Lifecycle, Suspension};
use crate::tenant::{TenantName, TenantSpec, format_problems};

/// How a tenant compares with its committed config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum DriftState {
    InSync,
    Drifted,
    /// On the cluster, with no committed config.
    NoConfig,
    /// A committed config with no tenant on the cluster.
    NotOnCluster,
    /// Offboarded or being deleted: nothing to compare.
    Skipped,
    Error,
}

impl DriftState {
    fn as_str(self) -> &'static str {
        match self {
            DriftState::InSync => "in-sync",
            DriftState::Drifted => "drifted",
            DriftState::NoConfig => "no-config",
            DriftState::NotOnCluster => "not-on-cluster",
            DriftState::Skipped => "skipped",
            DriftState::Error => "error",
        }
    }
}

#[derive(Debug, Serialize)]
struct TenantDrift {
    name: String,
    state: DriftState,
    /// The objects that differ, as `provision --plan` lists them, or the error.
    details: Vec<String>,
}

impl flags::Drift {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let templates = Templates::load(&root.join("templates"))?;
        let dir = tenants_dir(root, self.tenants_dir.as_deref());
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let tenants = Tenants::discover(kubectl)?;
        let on_cluster: BTreeSet<String> = tenants.names().into_iter().collect();
        let configs: BTreeSet<String> = committed_configs(&dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut rows = Vec::new();
        for name in on_cluster.union(&configs) {
            eprintln!("Comparing {name} ...");
            let row = |state, details| TenantDrift {
                name: name.clone(),
                state,
                details,
            };
            let lifecycle = tenants.find(name).map_or(Lifecycle::Active, Lifecycle::of);
            let row = if matches!(
                lifecycle,
                Lifecycle::Offboarded { .. } | Lifecycle::Terminating { .. }
            ) {
                row(
                    DriftState::Skipped,
                    vec![lifecycle.note(name).unwrap_or_default()],
                )
            } else if !configs.contains(name) {
                row(
                    DriftState::NoConfig,
                    vec![format!("no {}/{name}.yaml", dir.display())],
                )
            } else if !on_cluster.contains(name) {
                row(DriftState::NotOnCluster, vec![])
            } else {
                // Whether it drifted, and the lines that say how.
                let compared = (|| -> anyhow::Result<(bool, Vec<String>)> {
                    let path = dir.join(format!("{name}.yaml"));
                    let values = read_values(&path)?;
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
                    let spec = cluster.target().tenant_view(&spec);
                    let mut prepared = prepare(kubectl, &platform, &templates, &spec, false)?;
                    // A suspended tenant is compared with its suspended form.
                    let recorded = match (&lifecycle, prepared.own_namespace.clone()) {
                        (Lifecycle::Suspended { .. }, Some(ns)) => {
                            let rendered = prepared.suspended_form();
                            Some(suspension_drift(
                                name,
                                &rendered,
                                &Suspension::read(&ns)?,
                                &prepared,
                            ))
                        }
                        _ => None,
                    };
                    let plan = diff_plan(kubectl, &spec, &prepared)?;
                    let mut details: Vec<String> = plan
                        .changes
                        .iter()
                        .filter(|c| c.applies())
                        .map(ToString::to_string)
                        .collect();
                    let drifted = !details.is_empty();
                    details.extend(recorded.iter().flatten().cloned());
                    let drifted = drifted || recorded.as_ref().is_some_and(|r| !r.is_empty());
                    // Notes (what an apply would leave alone) follow the changes.
                    details.extend(
                        plan.changes
                            .iter()
                            .filter(|c| !c.applies())
                            .map(ToString::to_string),
                    );
                    if let Some(note) = lifecycle.note(name) {
                        details.push(format!("{note} (compared with its suspended form)"));
                    }
                    Ok((drifted, details))
                })();
                match compared {
                    Ok((true, details)) => row(DriftState::Drifted, details),
                    Ok((false, details)) => row(DriftState::InSync, details),
                    Err(e) => row(DriftState::Error, vec![format!("{e:#}")]),
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
                            r.state.as_str().to_owned(),
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
        if rows.iter().any(|r| r.state == DriftState::Error) {
            anyhow::bail!("some tenants could not be compared; see above");
        }
        if rows
            .iter()
            .any(|r| !matches!(r.state, DriftState::InSync | DriftState::Skipped))
        {
            return Err(crate::outcome::Exit(2).into());
        }
        Ok(())
    }
}

/// How the Ingress a suspension recorded (what `admin resume` brings back)
/// differs from the one the config renders; empty when they agree.
fn suspension_drift(
    tenant: &str,
    rendered: &[Manifest],
    recorded: &Suspension,
    prepared: &crate::plan::Prepared,
) -> Vec<String> {
    let mut out = prepared.ingresses_while_suspended(tenant);
    for m in rendered {
        let found = recorded.ingresses.iter().find(|i| {
            i.pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                == Some(m.name.as_str())
        });
        match found {
            None => out.push(format!(
                "~ {}: not recorded at suspension; `admin resume` will not bring it back (provision after resuming does)",
                m.reference()
            )),
            Some(i) if applyable(i.clone()).get("spec") != m.object.get("spec") => out.push(format!(
                "~ {}: the Ingress recorded at suspension differs from the config; `admin resume` brings back the recorded one",
                m.reference()
            )),
            Some(_) => {}
        }
    }
    out
}
