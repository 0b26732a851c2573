//! `admin suspend` and `admin resume`: take a tenant offline keeping all
//! its data, and bring back exactly the state it had. What suspend records
//! on the namespace is `state::Suspension`. For several tenants, a batch
//! (`selection.rs`) that skips those already so.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::clock::{now, rfc3339};
use crate::cluster::{Change, Cluster};
use crate::flags;
use crate::kubectl::{Conflicts, Kubectl, Scope};
use crate::live::{BotDeployment, Tenants};
use crate::names::{MANAGER, TENANT_LABEL};
use crate::object::name;
use crate::outcome::{Left, LeftUnchanged};
use crate::selection::{Guard, Progress, Work};
use crate::state::{Lifecycle, Suspension};
use crate::tenant::TenantName;

impl flags::Suspend {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        if let Some(tenant) = self.selection.single() {
            self.break_glass
                .refuse("a suspension of one tenant needs no approvals")?;
            let cluster = Cluster::connect(&self.cluster, root)?;
            return cluster.change(
                &Change::routine(tenant, "a suspension", self.yes),
                |kubectl| {
                    let tenants = Tenants::discover(kubectl)?;
                    let namespace = tenants.require(tenant)?;
                    if let Some(note) = Lifecycle::of(namespace).note(tenant.as_str()) {
                        crate::outcome::bail_unchanged!("tenant {tenant} is already {note}");
                    }
                    BotDeployment::in_namespace(kubectl, tenant, namespace)
                },
                |kubectl, bot| {
                    suspend(kubectl, &bot, Progress(true))?;
                    println!(
                        "Tenant {tenant} is suspended: its website and bot no longer answer; its data is kept. Bring it back with `cargo xtask admin resume {tenant}{}`.",
                        crate::suggest::target_arg()
                    );
                    Ok(())
                },
            );
        }
        let (cluster, batch) = self
            .selection
            .connect_gated(
                &self.cluster,
                root,
                || self.platform.load(root),
                ("suspend", "a suspension"),
                &self.break_glass,
            )
            .left_unchanged(Left::NothingChanged)?;
        let mut work = Work {
            command: "suspend",
            doing: "Suspending",
            todo: Vec::new(),
            skipped: Vec::new(),
            jobs: self.jobs.jobs,
        };
        for selected in &batch.tenants {
            let state = selected.state(None);
            match Lifecycle::of(&selected.namespace) {
                Lifecycle::Active => work
                    .todo
                    .push((selected.tenant.clone(), &selected.namespace)),
                Lifecycle::Suspended { .. } => work.skipped.push((
                    selected.tenant.clone(),
                    format!("already {}", state.describe()),
                )),
                _ => work
                    .skipped
                    .push((selected.tenant.clone(), state.describe())),
            }
        }
        batch.run(
            &cluster,
            Guard::Change {
                action: "a suspension",
                yes: self.yes,
            },
            work,
            |kubectl, tenant, namespace| {
                let bot = BotDeployment::in_namespace(kubectl, tenant, namespace)?;
                suspend(kubectl, &bot, Progress(false))?;
                Ok("suspended: its website and bot no longer answer; its data is kept".to_owned())
            },
        )
    }
}

/// Records the state to come back to, then removes the Ingress and stops
/// the bot. A failure after the record says how to get back.
fn suspend(kubectl: &Kubectl, bot: &BotDeployment, progress: Progress) -> anyhow::Result<()> {
    let tenant = &bot.tenant;
    let ns = bot.namespace.as_str();
    let ingresses = kubectl.get_list("ingresses", Scope::Namespace(ns), Some(TENANT_LABEL))?;
    // Record the state to come back to before changing anything.
    Suspension::record(
        kubectl,
        ns,
        bot.replicas,
        &ingresses,
        &rfc3339(now()?),
        &crate::audit::operator(),
    )?;
    progress.say(format_args!(
        "Removing the Ingress and stopping the bot of {tenant} ..."
    ));
    let rest = || -> anyhow::Result<()> {
        crate::interrupt::check()?;
        for ing in &ingresses {
            kubectl.delete(Some(ns), "ingress", name(ing), None)?;
        }
        crate::interrupt::check()?;
        kubectl.scale(ns, &bot.name, 0)
    };
    rest().with_context(|| {
        format!(
            "tenant {tenant} is only partly suspended: it is marked suspended with its previous state \
             recorded, but its Ingress or its bot may still be up. `cargo xtask admin resume {tenant}{}` \
             brings it back as it was; then suspend it again",
            crate::suggest::target_arg()
        )
    })
}

impl flags::Resume {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        if let Some(tenant) = self.selection.single() {
            self.break_glass
                .refuse("a resumption of one tenant needs no approvals")?;
            let cluster = Cluster::connect(&self.cluster, root)?;
            return cluster.change(
                &Change::routine(tenant, "a resumption", self.yes),
                |kubectl| {
                    let tenants = Tenants::discover(kubectl)?;
                    let namespace = tenants.require(tenant)?;
                    match Lifecycle::of(namespace) {
                        Lifecycle::Suspended { .. } => {}
                        Lifecycle::Active => {
                            crate::outcome::bail_unchanged!("tenant {tenant} is not suspended")
                        }
                        other => crate::outcome::bail_unchanged!(
                            "tenant {tenant} is not suspended: it is {}",
                            other.note(tenant.as_str()).unwrap_or_default()
                        ),
                    }
                    let suspension = Suspension::read(namespace)?;
                    let bot = BotDeployment::in_namespace(kubectl, tenant, namespace)?;
                    Ok((suspension, bot))
                },
                |kubectl, (suspension, bot)| {
                    self.resume(kubectl, suspension, &bot, Progress(true))?;
                    println!("Tenant {tenant} is resumed, as it was before it was suspended.");
                    Ok(())
                },
            );
        }
        let (cluster, batch) = self
            .selection
            .connect_gated(
                &self.cluster,
                root,
                || self.platform.load(root),
                ("resume", "a resumption"),
                &self.break_glass,
            )
            .left_unchanged(Left::NothingChanged)?;
        let mut work: Work<&Value> = Work {
            command: "resume",
            doing: "Resuming",
            todo: Vec::new(),
            skipped: Vec::new(),
            jobs: self.jobs.jobs,
        };
        for selected in &batch.tenants {
            let tenant: TenantName = selected.tenant.clone();
            match Lifecycle::of(&selected.namespace) {
                Lifecycle::Suspended { .. } => work.todo.push((tenant, &selected.namespace)),
                Lifecycle::Active => work.skipped.push((tenant, "not suspended".to_owned())),
                _ => work.skipped.push((
                    tenant,
                    format!("not suspended: {}", selected.state(None).describe()),
                )),
            }
        }
        batch.run(
            &cluster,
            Guard::Change {
                action: "a resumption",
                yes: self.yes,
            },
            work,
            |kubectl, tenant, namespace| {
                let suspension = Suspension::read(namespace)?;
                let bot = BotDeployment::in_namespace(kubectl, tenant, namespace)?;
                self.resume(kubectl, suspension, &bot, Progress(false))?;
                Ok("resumed, as it was before it was suspended".to_owned())
            },
        )
    }

    /// Starts the bot, puts the Ingress back and clears the marker, in
    /// that order: until the last step the tenant is still marked
    /// suspended, and resuming again finishes the job.
    fn resume(
        &self,
        kubectl: &Kubectl,
        suspension: Suspension,
        bot: &BotDeployment,
        progress: Progress,
    ) -> anyhow::Result<()> {
        let tenant = &bot.tenant;
        let ns = bot.namespace.as_str();
        if suspension.replicas > 0 {
            progress.say(format_args!(
                "Starting the bot of {tenant} and restoring its Ingress ..."
            ));
        } else {
            progress.say(format_args!(
                "Restoring the Ingress of {tenant}; its bot stays stopped, as it was before the suspension ..."
            ));
        }
        let steps = || -> anyhow::Result<()> {
            kubectl.scale(ns, &bot.name, suspension.replicas)?;
            if suspension.replicas > 0 {
                kubectl.rollout_status(ns, &bot.name, &self.rollout.timeout)?;
            }
            crate::interrupt::check()?;
            for ing in &suspension.ingresses {
                // Suspend deleted it; a conflict here means someone made another since.
                kubectl.apply_object(ing, MANAGER, Conflicts::Refuse)?;
            }
            crate::interrupt::check()?;
            Suspension::clear(kubectl, ns)
        };
        steps().with_context(|| {
            format!(
                "tenant {tenant} is still marked suspended, and its bot or Ingress may be back in part; \
                 `cargo xtask admin resume {tenant}{}` again finishes the resumption",
                crate::suggest::target_arg()
            )
        })
    }
}
