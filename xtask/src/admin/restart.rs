//! `admin restart`: a rolling restart of a tenant's bot, then wait for it;
//! for several tenants, a batch (`selection.rs`) that skips those not
//! meant to be running.

use crate::cluster::{Change, Cluster};
use crate::flags;
use crate::kubectl::Kubectl;
use crate::live::BotDeployment;
use crate::outcome::{Left, LeftUnchanged};
use crate::selection::{Guard, Progress, Work, skip_reason};
use crate::state::State;
use crate::tenant::TenantName;

impl flags::Restart {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        if let Some(tenant) = self.selection.single() {
            self.break_glass
                .refuse("a restart of one tenant needs no approvals")?;
            let cluster = Cluster::connect(&self.cluster, root)?;
            return cluster.change(
                &Change::routine(tenant, "a restart", self.yes),
                |kubectl| {
                    let bot = BotDeployment::find(kubectl, tenant)?;
                    check(kubectl, &bot)?;
                    Ok(bot)
                },
                |kubectl, bot| self.restart(kubectl, bot, Progress(true)),
            );
        }
        let (cluster, batch) = self
            .selection
            .connect_gated(
                &self.cluster,
                root,
                || self.platform.load(root),
                ("restart", "a restart"),
                &self.break_glass,
            )
            .left_unchanged(Left::NothingChanged)?;
        let bots = batch
            .bots(cluster.kubectl())
            .left_unchanged(Left::NothingChanged)?;
        let mut work = Work {
            command: "restart",
            doing: "Restarting",
            todo: Vec::new(),
            skipped: Vec::new(),
            jobs: self.jobs.jobs,
        };
        for selected in &batch.tenants {
            let state = selected.state(bots.get(selected.tenant.as_str()));
            match state.state {
                State::Suspended | State::Offboarded | State::Terminating | State::Stopped => work
                    .skipped
                    .push((selected.tenant.clone(), skip_reason(&state))),
                _ => work
                    .todo
                    .push((selected.tenant.clone(), &selected.namespace)),
            }
        }
        batch.run(
            &cluster,
            Guard::Change {
                action: "a restart",
                yes: self.yes,
            },
            work,
            |kubectl, tenant, namespace| {
                let bot = BotDeployment::in_namespace(kubectl, tenant, namespace)?;
                // It may have changed since the selection read it.
                check(kubectl, &bot)?;
                self.restart(kubectl, bot, Progress(false))?;
                Ok("restarted; the bot is ready".to_owned())
            },
        )
    }

    fn restart(
        &self,
        kubectl: &Kubectl,
        bot: BotDeployment,
        progress: Progress,
    ) -> anyhow::Result<()> {
        let tenant = &bot.tenant;
        progress.say(format_args!(
            "Restarting deployment/{} in {} ...",
            bot.name, bot.namespace
        ));
        kubectl.rollout_restart(&bot.namespace, &bot.name)?;
        progress.say(format_args!(
            "Waiting up to {} for the bot to come back ...",
            self.rollout.timeout
        ));
        kubectl
            .rollout_status(&bot.namespace, &bot.name, &self.rollout.timeout)
            .map_err(|e| {
                if crate::interrupt::interrupted() {
                    return e.context(format!(
                        "the restart of tenant {tenant} was started and goes on without us; \
                         we stopped waiting for the bot: see how it is with `cargo xtask admin list{s}`",
                        s = crate::suggest::target_arg()
                    ));
                }
                e.context(format!(
                    "the restart of tenant {tenant} was started but the bot is not ready after {}; \
                 see why with `cargo xtask admin logs {tenant} --previous{s}` and `cargo xtask admin list{s}`",
                    self.rollout.timeout,
                    s = crate::suggest::target_arg()
                ))
            })?;
        if progress.0 {
            println!("Tenant {tenant} restarted; the bot is ready.");
        }
        Ok(())
    }
}

/// Refuses a tenant that has no running bot to restart.
fn check(kubectl: &Kubectl, bot: &BotDeployment) -> anyhow::Result<()> {
    let tenant: &TenantName = &bot.tenant;
    if let Some(note) = bot.lifecycle.note(tenant.as_str()) {
        crate::outcome::bail_unchanged!(
            "tenant {tenant} is {note}, so there is nothing to restart"
        );
    }
    if bot.replicas == 0 {
        crate::outcome::bail_unchanged!(
            "tenant {t} is stopped (its bot is scaled to 0 replicas), so there is nothing to restart. \
             Start it with `kubectl{c} --namespace {ns} scale deployment/{d} --replicas=1` \
             (provision never changes the replica count).",
            t = tenant,
            c = kubectl.context_arg(),
            ns = bot.namespace,
            d = bot.name
        );
    }
    Ok(())
}
