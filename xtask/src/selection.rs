//! Which tenants a bulk command acts on, and how a batch reports.
//!
//! `restart`, `suspend`, `resume` and `backup` take one or more names,
//! `--all` or `--tier T` (`flags::Selection`). The tenants are read with
//! one kubectl call, their namespaces, which carry each one's lifecycle and
//! tier; a name that is no tenant is an error before anything changes. A
//! single named tenant is not a batch: its command runs as it always has.
//!
//! A batch prints one line per tenant on stdout as it finishes (`<tenant>:
//! ok (…)`, `<tenant>: skipped (why)` or `<tenant>: FAILED: why`), then
//! `N tenants: a done, s skipped, f failed.`, and fails if any tenant
//! failed. A tenant the command does not apply to (a suspended one for a
//! restart) is skipped, not failed. After Ctrl-C no further tenant is
//! started, and the batch ends by saying which were done, which were
//! stopped while running and which were not started.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::bail;
use serde_json::Value;

use crate::cluster::{Cluster, Gated};
use crate::flags::{self, ClusterArgs};
use crate::kubectl::{Kubectl, Scope};
use crate::live::{Tenants, is_bot, tenant_of};
use crate::names::{TENANT_LABEL, TIER_ANNOTATION};
use crate::object::annotation;
use crate::platform::Platform;
use crate::state::{State, TenantState};
use crate::tenant::TenantName;

/// A tenant of a batch and its namespace as the selection read it.
pub struct Selected {
    pub tenant: TenantName,
    pub namespace: Value,
}

impl Selected {
    /// The tenant's state (`state.rs`), from its namespace and, where the
    /// command read it, its bot Deployment. Without the bot's pods, an
    /// active tenant's health is not known; the lifecycle, and whether the
    /// bot is stopped, are.
    pub fn state(&self, bot: Option<&Value>) -> TenantState {
        TenantState::of(&self.namespace, bot, &[])
    }
}

/// How the tenants were chosen, for messages.
enum Chosen {
    All,
    Tier(String),
    Named,
}

/// The tenants a bulk command acts on, in name order.
pub struct Batch {
    chosen: Chosen,
    pub tenants: Vec<Selected>,
}

impl flags::Selection {
    /// The one tenant named alone, whose command keeps its own path and
    /// messages; None for a batch.
    pub fn single(&self) -> Option<&TenantName> {
        match self.tenants.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The batch's preamble: checks `--tier` (`load` reads the platform,
    /// only then), connects, and reads the selected tenants; nothing is
    /// changed yet.
    pub fn connect(
        &self,
        args: &ClusterArgs,
        root: &Path,
        load: impl FnOnce() -> anyhow::Result<Platform>,
    ) -> anyhow::Result<(Cluster, Batch)> {
        self.check_tier(load)?;
        let cluster = Cluster::connect(args, root)?;
        let batch = self.read(cluster.kubectl())?;
        Ok((cluster, batch))
    }

    /// [`flags::Selection::connect`] for a bulk change (`command` as typed,
    /// `restart`; `action` as its confirmation says it, `a restart`):
    /// through the gate of an environment with required approvals
    /// (`cluster::Target::gate`) before the cluster is read.
    pub fn connect_gated(
        &self,
        args: &ClusterArgs,
        root: &Path,
        load: impl FnOnce() -> anyhow::Result<Platform>,
        (command, action): (&str, &str),
        break_glass: &flags::BreakGlassArg,
    ) -> anyhow::Result<(Cluster, Batch)> {
        self.check_tier(load)?;
        let cluster = Cluster::connect(args, root)?;
        cluster.target().gate(
            &Gated::Bulk {
                command,
                action,
                selection: self,
            },
            break_glass.reason(),
        )?;
        let batch = self.read(cluster.kubectl())?;
        Ok((cluster, batch))
    }

    /// Refuses a `--tier` that platform.yaml does not have, before the
    /// cluster is read; `load` reads the platform, only for `--tier`.
    pub fn check_tier(
        &self,
        load: impl FnOnce() -> anyhow::Result<Platform>,
    ) -> anyhow::Result<()> {
        match &self.tier {
            Some(_) => self.check_tier_in(&load()?),
            None => Ok(()),
        }
    }

    /// [`flags::Selection::check_tier`] with the platform already loaded.
    pub fn check_tier_in(&self, platform: &Platform) -> anyhow::Result<()> {
        let Some(tier) = &self.tier else {
            return Ok(());
        };
        let tiers = platform.tier_names();
        if !tiers.contains(&tier.as_str()) {
            bail!(
                "--tier {tier} is not a tier of the platform; the tiers are: {}",
                tiers.join(", ")
            );
        }
        Ok(())
    }

    /// Reads the selected tenants with one kubectl call. Every name must be
    /// a tenant on the cluster; the error lists the tenants that are.
    pub fn read(&self, kubectl: &Kubectl) -> anyhow::Result<Batch> {
        let found = Tenants::discover(kubectl)?;
        let existing = found.names();
        let label = kubectl.context_label();
        if existing.is_empty() {
            bail!(
                "there are no tenants on this cluster ({label}) yet (create one with `cargo xtask provision TENANT{}`); \
                 check --context or --env if you expected some",
                crate::suggest::target_arg()
            );
        }
        let selected = |tenant: &TenantName, namespace: &Value| Selected {
            tenant: tenant.clone(),
            namespace: namespace.clone(),
        };
        let each = || {
            found.namespaces.iter().filter_map(|ns| {
                let name = TenantName::parse(&tenant_of(ns)?).ok()?;
                Some((name, ns))
            })
        };
        let (chosen, tenants) = if self.all {
            (
                Chosen::All,
                each().map(|(t, ns)| selected(&t, ns)).collect(),
            )
        } else if let Some(tier) = &self.tier {
            let tenants: Vec<Selected> = each()
                .filter(|(_, ns)| annotation(ns, TIER_ANNOTATION) == Some(tier.as_str()))
                .map(|(t, ns)| selected(&t, ns))
                .collect();
            if tenants.is_empty() {
                bail!(
                    "no tenant on this cluster ({label}) has tier {tier}; {}",
                    tiers_in_use(&found)
                );
            }
            (Chosen::Tier(tier.clone()), tenants)
        } else {
            let mut names: Vec<&TenantName> = self.tenants.iter().collect();
            names.sort();
            names.dedup();
            let missing: Vec<&str> = names
                .iter()
                .filter(|t| found.find(t.as_str()).is_none())
                .map(|t| t.as_str())
                .collect();
            if !missing.is_empty() {
                bail!(
                    "{} on this cluster; the tenants are: {}",
                    match missing.as_slice() {
                        [one] => format!("tenant {one} does not exist"),
                        many => format!("tenants {} do not exist", many.join(", ")),
                    },
                    existing.join(", ")
                );
            }
            let tenants = names
                .into_iter()
                .filter_map(|t| Some(selected(t, found.find(t.as_str())?)))
                .collect();
            (Chosen::Named, tenants)
        };
        Ok(Batch { chosen, tenants })
    }
}

/// `the tiers in use are: medium (1), small (3)`.
fn tiers_in_use(found: &Tenants) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for ns in &found.namespaces {
        *counts
            .entry(annotation(ns, TIER_ANNOTATION).unwrap_or("none"))
            .or_default() += 1;
    }
    let tiers: Vec<String> = counts.iter().map(|(t, n)| format!("{t} ({n})")).collect();
    format!("the tiers in use are: {}", tiers.join(", "))
}

impl Batch {
    /// The `count` tenants that will be worked on, for the confirmation and
    /// the progress line: `all 5 tenants`, `3 of the 4 tenants of tier
    /// small`, `2 tenants: kalyan, mylapore`.
    pub fn describe(&self, names: &[&TenantName]) -> String {
        let count = names.len();
        let total = self.tenants.len();
        let of = |whole: String| {
            if count == total {
                whole
            } else {
                format!("{count} of {whole} ({} skipped)", total - count)
            }
        };
        match &self.chosen {
            Chosen::All => of(format!("all {}", tenants(total))),
            Chosen::Tier(tier) => of(format!("the {} of tier {tier}", tenants(total))),
            Chosen::Named => {
                let mut listed: Vec<&str> = names.iter().take(10).map(|t| t.as_str()).collect();
                if count > listed.len() {
                    listed.push("…");
                }
                format!("{}: {}", tenants(count), listed.join(", "))
            }
        }
    }

    /// Every selected tenant's bot Deployment, with one cluster-wide read
    /// (for a command that skips stopped bots).
    pub fn bots(&self, kubectl: &Kubectl) -> anyhow::Result<BTreeMap<String, Value>> {
        let deployments =
            kubectl.get_list("deployments", Scope::AllNamespaces, Some(TENANT_LABEL))?;
        Ok(deployments
            .into_iter()
            .filter(is_bot)
            .filter_map(|d| Some((tenant_of(&d)?, d)))
            .collect())
    }
}

/// `1 tenant`, `3 tenants`.
fn tenants(n: usize) -> String {
    if n == 1 {
        "1 tenant".to_owned()
    } else {
        format!("{n} tenants")
    }
}

/// Why a tenant in `state` is skipped: `suspended since … by …`,
/// `stopped: its bot is scaled to 0 replicas`.
pub fn skip_reason(state: &TenantState) -> String {
    match state.state {
        State::Stopped => "stopped: its bot is scaled to 0 replicas".to_owned(),
        _ => state.describe(),
    }
}

/// Progress lines on stderr for one tenant; silent in a batch, whose
/// workers would interleave them.
#[derive(Clone, Copy)]
pub struct Progress(pub bool);

impl Progress {
    pub fn say(self, line: std::fmt::Arguments<'_>) {
        if self.0 {
            eprintln!("{line}");
        }
    }
}

/// What a batch is to the cluster.
pub enum Guard<'a> {
    /// A change: confirmed once for the whole batch as the environment
    /// requires (`action` as in `a restart`), each tenant's outcome
    /// recorded in the audit log.
    Change { action: &'a str, yes: bool },
    /// Reads only (a backup): neither confirmed nor audited, as for one
    /// tenant.
    Read,
}

/// A bulk command's batch: the tenants to work on, those skipped and why.
pub struct Work<I> {
    /// `restart`: the command, for the retry advice.
    pub command: &'static str,
    /// `Restarting`: the progress line's verb.
    pub doing: &'static str,
    pub todo: Vec<(TenantName, I)>,
    pub skipped: Vec<(TenantName, String)>,
    pub jobs: u16,
}

impl Batch {
    /// Runs `work` on every tenant of `batch.todo`, `jobs` at a time, under
    /// `guard`; prints each tenant's line as it finishes, then the summary.
    /// `work` returns the text of the tenant's `ok (…)`. An error if any
    /// tenant failed or the batch was interrupted, saying how to retry.
    pub fn run<I: Send>(
        &self,
        cluster: &Cluster,
        guard: Guard<'_>,
        batch: Work<I>,
        work: impl Fn(&Kubectl, &TenantName, I) -> anyhow::Result<String> + Sync,
    ) -> anyhow::Result<()> {
        crate::interrupt::install();
        let total = self.tenants.len();
        for (tenant, why) in &batch.skipped {
            println!("{tenant}: skipped ({why})");
        }
        let names: Vec<&TenantName> = batch.todo.iter().map(|(t, _)| t).collect();
        let what = self.describe(&names);
        // Those that ended with an error after the interrupt: stopped while running.
        let cut_short: Mutex<Vec<TenantName>> = Mutex::new(Vec::new());
        // On a terminal: tenants done / total and failures so far, kept
        // below the per-tenant lines.
        let progress = Mutex::new(crate::fleet::Progress::on_terminal(
            batch.command,
            batch.todo.len(),
        ));
        let line = |tenant: &TenantName, result: &anyhow::Result<String>| {
            let mut progress = progress.lock().expect("the progress lock");
            progress.clear();
            match result {
                Ok(done) => println!("{tenant}: ok ({done})"),
                // The whole reason, its later lines indented under the tenant's.
                Err(e) => {
                    if crate::interrupt::interrupted() {
                        cut_short.lock().expect("the lock").push(tenant.clone());
                    }
                    println!(
                        "{tenant}: FAILED: {}",
                        format!("{e:#}").lines().collect::<Vec<_>>().join("\n    ")
                    )
                }
            }
            progress.tenant_done(result.is_err());
        };
        let results = if batch.todo.is_empty() {
            Vec::new()
        } else {
            let progress = format!(
                "{} {what} on {}, {} at a time ...",
                batch.doing,
                cluster.label(),
                batch.jobs
            );
            let said = std::sync::Once::new();
            match guard {
                Guard::Change { action, yes } => cluster.change_many(
                    action,
                    &what,
                    yes,
                    batch.todo,
                    batch.jobs.into(),
                    |kubectl, tenant, item| {
                        // Said once the confirmation is through.
                        said.call_once(|| eprintln!("{progress}"));
                        work(kubectl, tenant, item)
                    },
                    line,
                )?,
                Guard::Read => {
                    cluster
                        .target()
                        .announce(&format!("a {} of {what}", batch.command));
                    eprintln!("{progress}");
                    crate::pool::run(batch.todo, batch.jobs.into(), |(tenant, item)| {
                        if crate::interrupt::interrupted() {
                            return (tenant, None);
                        }
                        let result = work(cluster.kubectl(), &tenant, item);
                        line(&tenant, &result);
                        (tenant, Some(result))
                    })
                }
            }
        };
        // Ends the progress line before the summary.
        drop(progress);
        let done: Vec<&TenantName> = results
            .iter()
            .filter(|(_, r)| matches!(r, Some(Ok(_))))
            .map(|(t, _)| t)
            .collect();
        let failed: Vec<&TenantName> = results
            .iter()
            .filter(|(_, r)| matches!(r, Some(Err(_))))
            .map(|(t, _)| t)
            .collect();
        let not_started: Vec<&TenantName> = results
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(t, _)| t)
            .collect();
        let mut summary = format!(
            "{}: {} done, {} skipped, {} failed",
            tenants(total),
            done.len(),
            batch.skipped.len(),
            failed.len()
        );
        if !not_started.is_empty() {
            summary += &format!(", {} not started", not_started.len());
        }
        println!("{summary}.");
        let join = |ts: &[&TenantName]| {
            if ts.is_empty() {
                "none".to_owned()
            } else {
                ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        let command = format!("cargo xtask admin {}", batch.command);
        // The retry advice ends with the run's --env (or --context).
        let target = cluster.target().suggested_arg();
        let names =
            |ts: &[&TenantName]| ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ");
        let cut_short = cut_short.lock().expect("the lock").clone();
        if !not_started.is_empty() || !cut_short.is_empty() {
            let (running, failed_before): (Vec<&TenantName>, Vec<&TenantName>) =
                failed.iter().partition(|t| cut_short.contains(t));
            let again: Vec<&TenantName> = failed.iter().chain(&not_started).copied().collect();
            let mut report = format!(
                "interrupted (Ctrl-C or a termination signal): no further tenant was started.\n\
                 done: {}\n\
                 stopped while running (its line above says what state it is left in): {}\n",
                join(&done),
                join(&running)
            );
            if !failed_before.is_empty() {
                report += &format!("failed before the interrupt: {}\n", join(&failed_before));
            }
            report += &format!(
                "not started: {}\nTo finish, run `{command} {}{target}` with the same options.",
                join(&not_started),
                names(&again)
            );
            bail!(report);
        }
        match failed.as_slice() {
            [] => {}
            [one] => bail!(
                "1 of {} failed (why is under it); the others were done or skipped. \
                 Retry it with `{command} {one}{target}` with the same options.",
                tenants(total)
            ),
            [first, ..] => bail!(
                "{} of {} failed (why is under each); the others were done or skipped. \
                 Retry them with `{command} {}{target}` with the same options, or one alone with `{command} {first}{target}`.",
                failed.len(),
                tenants(total),
                names(&failed)
            ),
        }
        Ok(())
    }
}
