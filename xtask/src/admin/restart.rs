//! `admin restart`: a rolling restart of a tenant's bot, then wait for it.

use anyhow::bail;
use serde_json::Value;
use xshell::Shell;

use super::{Tenants, str_at};
use crate::flags;
use crate::kubectl::{Kubectl, Scope};
use crate::tenant::TenantName;

impl flags::Restart {
    pub(crate) fn run(self, sh: &Shell, root: &std::path::Path) -> anyhow::Result<()> {
        let restarted = crate::environment::select(&self.cluster)
            .and_then(|env| {
                crate::environment::confirm_change(
                    env.as_ref(),
                    &self.tenant,
                    self.yes,
                    "a restart",
                )
            })
            .and_then(|()| self.restart(sh));
        self.cluster.record(root, self.tenant.as_str(), restarted)
    }

    fn restart(&self, sh: &Shell) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)?;
        if let Some(since) = &bot.suspended {
            bail!(
                "tenant {t} is suspended (since {since}), so there is nothing to restart; nothing was changed. \
                 Bring it back with `cargo xtask admin resume {t}`.",
                t = self.tenant
            );
        }
        if bot.replicas == 0 {
            bail!(
                "tenant {t} is stopped (its bot is scaled to 0 replicas), so there is nothing to restart; \
                 nothing was changed. Start it with `cargo xtask provision {t} --values tenants/{t}.yaml`, \
                 which sets one replica again.",
                t = self.tenant
            );
        }
        eprintln!(
            "Restarting deployment/{} in {} ...",
            bot.name, bot.namespace
        );
        kubectl.rollout_restart(sh, &bot.namespace, &bot.name)?;
        eprintln!(
            "Waiting up to {} for the bot to come back ...",
            self.rollout.timeout
        );
        kubectl
            .rollout_status(sh, &bot.namespace, &bot.name, &self.rollout.timeout)
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

/// A tenant's bot Deployment as the cluster has it.
pub struct BotDeployment {
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    /// The bot's container name.
    pub container: String,
    pub object: Value,
    /// When the tenant was suspended, if it is.
    pub suspended: Option<String>,
}

impl BotDeployment {
    /// Checks the tenant exists, then reads its bot Deployment.
    pub fn find(
        sh: &Shell,
        kubectl: &Kubectl,
        tenant: &TenantName,
    ) -> anyhow::Result<BotDeployment> {
        let tenants = Tenants::discover(sh, kubectl)?;
        let ns = tenants.require(tenant)?;
        let suspended = super::lifecycle::suspended_since(ns);
        let namespace = str_at(ns, "/metadata/name").unwrap_or_default().to_owned();
        let selector = format!("app.kubernetes.io/name={}", super::list::BOT_NAME);
        let deployments = kubectl.get_list(
            sh,
            "deployments",
            Scope::Namespace(&namespace),
            Some(&selector),
        )?;
        let Some(object) = deployments.into_iter().next() else {
            bail!(
                "tenant {tenant} has no bot Deployment in {namespace}; re-create it with \
                 `cargo xtask provision {tenant} --values tenants/{tenant}.yaml`"
            );
        };
        Ok(BotDeployment {
            name: str_at(&object, "/metadata/name")
                .unwrap_or("bot")
                .to_owned(),
            replicas: object
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as u32,
            container: str_at(&object, "/spec/template/spec/containers/0/name")
                .unwrap_or("bot")
                .to_owned(),
            namespace,
            object,
            suspended,
        })
    }
}
