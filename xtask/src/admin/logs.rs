//! `admin logs`: the bot's recent logs, straight from kubectl.

use anyhow::bail;
use xshell::Shell;

use super::restart::BotDeployment;
use crate::flags;

impl flags::Logs {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)?;
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
        kubectl.logs(sh, &bot.namespace, &target, &extra)
    }
}
