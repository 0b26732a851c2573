//! `admin restart`: a rolling restart of a tenant's bot, then wait for it.

use crate::cluster::{Change, Cluster};
use crate::flags;
use crate::kubectl::Kubectl;
use crate::live::BotDeployment;

impl flags::Restart {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        cluster.change(
            &Change::routine(&self.tenant, "a restart", self.yes),
            |kubectl| self.check(kubectl),
            |kubectl, bot| self.restart(kubectl, bot),
        )
    }

    /// The bot, if there is one running to restart.
    fn check(&self, kubectl: &Kubectl) -> anyhow::Result<BotDeployment> {
        let bot = BotDeployment::find(kubectl, &self.tenant)?;
        if let Some(note) = bot.lifecycle.note(self.tenant.as_str()) {
            crate::outcome::bail_unchanged!(
                "tenant {t} is {note}, so there is nothing to restart",
                t = self.tenant
            );
        }
        if bot.replicas == 0 {
            crate::outcome::bail_unchanged!(
                "tenant {t} is stopped (its bot is scaled to 0 replicas), so there is nothing to restart. \
                 Start it with `kubectl{c} --namespace {ns} scale deployment/{d} --replicas=1` \
                 (provision never changes the replica count).",
                t = self.tenant,
                c = kubectl.context_arg(),
                ns = bot.namespace,
                d = bot.name
            );
        }
        Ok(bot)
    }

    fn restart(&self, kubectl: &Kubectl, bot: BotDeployment) -> anyhow::Result<()> {
        eprintln!(
            "Restarting deployment/{} in {} ...",
            bot.name, bot.namespace
        );
        kubectl.rollout_restart(&bot.namespace, &bot.name)?;
        eprintln!(
            "Waiting up to {} for the bot to come back ...",
            self.rollout.timeout
        );
        kubectl
            .rollout_status(&bot.namespace, &bot.name, &self.rollout.timeout)
            .map_err(|e| {
                e.context(format!(
                    "the restart of tenant {} was started but the bot is not ready after {}; \
                 see why with `cargo xtask admin logs {} --previous` and `cargo xtask admin list`",
                    self.tenant, self.rollout.timeout, self.tenant
                ))
            })?;
        println!("Tenant {} restarted; the bot is ready.", self.tenant);
        Ok(())
    }
}
