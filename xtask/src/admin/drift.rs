//! `admin drift`: which tenants' live objects differ from their committed
//! config, in the lines of `provision --plan`: every tenant compared from
//! one read of the cluster (`fleet.rs`, `compare.rs`), or named tenants
//! with the API server's own dry run (`--server`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::colour::Tone;
use crate::flags;
use crate::fleet::{Fleet, Progress};
use crate::kubectl::Kubectl;
use crate::live::Tenants;
use crate::object::applyable;
use crate::output::{OutputFormat, painted_table, print_structured};
use crate::plan::{diff_plan, local_plan, prepare, unique_kinds};
use crate::platform::Platform;
use crate::render::{Manifest, SecretValues, Templates};
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

    /// Its colour in the table: in sync passes, an error fails, the rest
    /// needs a look.
    fn tone(self) -> Tone {
        match self {
            DriftState::InSync => Tone::Good,
            DriftState::Error => Tone::Bad,
            DriftState::Skipped => Tone::Faint,
            DriftState::Drifted | DriftState::NoConfig | DriftState::NotOnCluster => Tone::Warn,
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

/// Where the comparison of each tenant comes from.
enum Source<'a> {
    /// The one read of the whole fleet, compared locally.
    Fleet(&'a Fleet),
    /// A server-side dry run per tenant (`--server`).
    Server(&'a Kubectl),
}

/// What every tenant is compared with.
struct Setting<'a> {
    platform: &'a Platform,
    templates: &'a Templates,
    dir: &'a Path,
    cluster: &'a Cluster,
}

/// A committed config as this environment serves it, and its render.
struct Desired {
    spec: TenantSpec,
    rendered: Vec<Manifest>,
}

impl Setting<'_> {
    fn desired(&self, name: &str) -> anyhow::Result<Desired> {
        let path = self.dir.join(format!("{name}.yaml"));
        let values = read_values(&path)?;
        let tenant = TenantName::parse(name).map_err(anyhow::Error::msg)?;
        let spec = TenantSpec::resolve(
            &tenant,
            &values,
            &self.platform.tier_names(),
            &self.platform.default_tier,
        )
        .map_err(|p| {
            anyhow::anyhow!(format_problems(
                &format!("{} is invalid", path.display()),
                &p
            ))
        })?;
        // Compared as this environment serves it, as provision would apply it.
        let spec = self.cluster.target().tenant_view(&spec);
        let rendered =
            self.templates
                .render_tenant(&spec, self.platform, &SecretValues::Redacted)?;
        Ok(Desired { spec, rendered })
    }

    /// Whether the tenant drifted, and the lines that say how.
    fn compare(
        &self,
        source: &Source<'_>,
        name: &str,
        lifecycle: &Lifecycle,
        desired: Desired,
    ) -> anyhow::Result<(bool, Vec<String>)> {
        let Desired { spec, rendered } = desired;
        let mut prepared = match source {
            Source::Fleet(fleet) => {
                fleet.prepare(self.platform, self.templates, &spec, rendered, false)?
            }
            Source::Server(kubectl) => {
                prepare(kubectl, self.platform, self.templates, &spec, false)?
            }
        };
        // A suspended tenant is compared with its suspended form.
        let recorded = match (lifecycle, prepared.own_namespace.clone()) {
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
        let plan = match source {
            Source::Fleet(_) => local_plan(&spec, &prepared)?,
            Source::Server(kubectl) => diff_plan(kubectl, &spec, &prepared)?,
        };
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
    }
}

impl flags::Drift {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        if self.server && self.tenants.is_empty() {
            anyhow::bail!(
                "--server compares named tenants, with a server-side dry run each: name them \
                 (`cargo xtask admin drift --server TENANT...{}`), or leave out --server to compare \
                 every tenant from one read of the cluster",
                crate::suggest::target_arg()
            );
        }
        let platform = self.platform.load(root)?;
        let templates = Templates::load(&root.join("templates"))?;
        let dir = tenants_dir(root, self.tenants_dir.as_deref());
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let setting = Setting {
            platform: &platform,
            templates: &templates,
            dir: &dir,
            cluster: &cluster,
        };
        let asked: BTreeSet<&str> = self.tenants.iter().map(TenantName::as_str).collect();
        let wanted = |name: &str| asked.is_empty() || asked.contains(name);
        let configs: BTreeSet<String> = committed_configs(&dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| wanted(name))
            .collect();
        // The fleet is read once, for the kinds the configs render; with
        // --server, each tenant is read (and dry-run) on its own.
        let mut desired: BTreeMap<String, anyhow::Result<Desired>> = BTreeMap::new();
        let (fleet, discovered);
        let (tenants, source) = if self.server {
            discovered = Tenants::discover(kubectl)?;
            (&discovered, Source::Server(kubectl))
        } else {
            for name in &configs {
                desired.insert(name.clone(), setting.desired(name));
            }
            let mut kinds: Vec<String> = Vec::new();
            for d in desired.values().flatten() {
                for kind in unique_kinds(&d.rendered, |k| k != "Namespace") {
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
            }
            fleet = Fleet::read(kubectl, &kinds).with_context(|| {
                format!(
                    "could not read every tenant at once, which needs rights to list the tenants' \
                     objects (Secrets included) in all namespaces; `cargo xtask admin drift --server \
                     TENANT...{}` reads one tenant's namespace at a time",
                    crate::suggest::target_arg()
                )
            })?;
            (fleet.tenants(), Source::Fleet(&fleet))
        };
        let on_cluster: BTreeSet<String> =
            tenants.names().into_iter().filter(|n| wanted(n)).collect();
        let unknown: Vec<&str> = asked
            .iter()
            .filter(|n| !on_cluster.contains(**n) && !configs.contains(**n))
            .copied()
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "{} neither on the cluster nor in {}: check the name{}; `cargo xtask admin list{}` shows the tenants on the cluster",
                match unknown.as_slice() {
                    [one] => format!("tenant {one} is"),
                    many => format!("tenants {} are", many.join(", ")),
                },
                dir.display(),
                if unknown.len() == 1 { "" } else { "s" },
                crate::suggest::target_arg()
            );
        }
        let names: Vec<&String> = on_cluster.union(&configs).collect();
        let mut progress = Progress::on_terminal("drift", names.len());
        let mut rows = Vec::new();
        for name in names {
            crate::interrupt::check()?;
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
                let compared = desired
                    .remove(name)
                    .unwrap_or_else(|| setting.desired(name))
                    .and_then(|d| setting.compare(&source, name, &lifecycle, d));
                match compared {
                    Ok((true, details)) => row(DriftState::Drifted, details),
                    Ok((false, details)) => row(DriftState::InSync, details),
                    // One detail per line: a table row each, the columns kept.
                    Err(e) => row(
                        DriftState::Error,
                        format!("{e:#}").lines().map(str::to_owned).collect(),
                    ),
                }
            };
            progress.tenant_done(row.state == DriftState::Error);
            rows.push(row);
        }
        drop(progress);
        match self.output.format {
            OutputFormat::Table => {
                // Each table row's state, for its colour.
                let mut states = Vec::new();
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .flat_map(|r| {
                        states.extend(std::iter::repeat_n(r.state, r.details.len().max(1)));
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
                print!(
                    "{}",
                    painted_table(
                        &["TENANT", "STATE", "DETAILS"],
                        &cells,
                        |row, column, cell| {
                            match column {
                                1 => crate::colour::paint(cell, states[row].tone()),
                                _ => cell.to_owned(),
                            }
                        }
                    )
                );
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
