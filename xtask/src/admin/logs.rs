//! `admin logs`: the bot's recent logs, straight from kubectl.

use anyhow::bail;

use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::KubectlFailure;
use crate::live::BotDeployment;

impl flags::Logs {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let bot = BotDeployment::find(kubectl, &self.tenant)?;
        if bot.replicas == 0 {
            bail!(
                "tenant {} is stopped (scaled to 0), so there is no bot to read logs from",
                self.tenant
            );
        }
        let tail = format!("--tail={}", self.tail);
        let container = format!("--container={}", bot.container);
        let mut extra = vec![container.as_str(), tail.as_str()];
        let since = self.since.as_ref().map(|s| format!("--since={s}"));
        if let Some(s) = &since {
            extra.push(s);
        }
        if self.follow {
            extra.push("--follow");
        }
        if self.previous {
            extra.push("--previous");
        }
        let target = format!("deployment/{}", bot.name);
        let result = kubectl.logs(&bot.namespace, &target, &extra);
        // The kubelet keeps the logs of one terminated container, the one
        // before the last restart; a bot that never restarted has none,
        // which is not a failure to fix and retry.
        if self.previous
            && let Err(e) = &result
            && e.downcast_ref::<KubectlFailure>()
                .is_some_and(|f| f.stderr.contains("previous terminated container"))
        {
            bail!(
                "tenant {}'s bot has no previous container: it has not restarted since its pod started, so \
                 there are no earlier logs to show. Its current logs: `cargo xtask admin logs {}{}`",
                self.tenant,
                self.tenant,
                crate::suggest::target_arg()
            );
        }
        result
    }
}
