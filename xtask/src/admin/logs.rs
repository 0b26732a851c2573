//! `admin logs`: the bot's recent logs, straight from kubectl.

use anyhow::bail;

use crate::cluster::Cluster;
use crate::flags;
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
        kubectl.logs(&bot.namespace, &target, &extra)
    }
}
