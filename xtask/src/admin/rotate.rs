//! `admin rotate`: new random credentials in the bot's Secret, then a
//! rolling restart so that the bot uses them.

use std::path::Path;

use serde_json::{Value, json};

use crate::cluster::{Change, Cluster, Gated};
use crate::flags;
use crate::kubectl::{Conflicts, Kubectl, Scope};
use crate::live::BotDeployment;
use crate::names::{CREDENTIALS_SECRET, MANAGER, TENANT_LABEL};
use crate::object::name;
use crate::platform::Platform;
use crate::render::SecretValues;

impl flags::Rotate {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let cluster = Cluster::connect(&self.cluster, root)?;
        // The line `change` would say, said before the gate.
        cluster
            .target()
            .announce(&format!("a credential rotation of tenant {}", self.tenant));
        cluster
            .target()
            .gate(&Gated::Rotate(&self.tenant), self.break_glass.reason())?;
        cluster.change(
            &Change::routine(&self.tenant, "a credential rotation", self.yes),
            |kubectl| {
                let bot = BotDeployment::find(kubectl, &self.tenant)?;
                let secrets =
                    kubectl.get_list("secrets", Scope::Namespace(&bot.namespace), Some(TENANT_LABEL))?;
                let Some(live) = secrets
                    .into_iter()
                    .find(|s| name(s) == CREDENTIALS_SECRET)
                else {
                    crate::outcome::bail_unchanged!(
                        "secret/{CREDENTIALS_SECRET} is missing in {}; provision the tenant again to create it",
                        bot.namespace
                    );
                };
                Ok((bot, live))
            },
            |kubectl, (bot, live)| self.rotate(kubectl, &platform, bot, &live),
        )
    }

    fn rotate(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        bot: BotDeployment,
        live: &Value,
    ) -> anyhow::Result<()> {
        let ns = bot.namespace.as_str();
        let secret_name = CREDENTIALS_SECRET;
        let values = SecretValues::fresh(&platform.bot.generated_secrets)?;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": ns, "labels": live.pointer("/metadata/labels").cloned().unwrap_or(json!({}))},
            "type": "Opaque",
            "stringData": values,
        });
        let redact: Vec<&str> = values.values().map(String::as_str).collect();
        eprintln!("Writing new credentials to secret/{secret_name} ...");
        // The Secret is ours alone: take any field another manager set.
        kubectl.apply(
            &serde_json::to_string(&secret)?,
            MANAGER,
            Conflicts::Force,
            &redact,
        )?;
        if bot.replicas > 0 {
            eprintln!("Restarting the bot so that it uses them ...");
            kubectl.rollout_restart(ns, &bot.name)?;
            kubectl
                .rollout_status(ns, &bot.name, &self.rollout.timeout)
                .map_err(|e| {
                    e.context(
                        "the new credentials are stored, but the bot is not ready with them yet",
                    )
                })?;
        }
        println!(
            "Rotated the credentials of tenant {} ({} keys).",
            self.tenant,
            values.len()
        );
        if self.show {
            println!("New values, shown this once; store them now:");
            for (k, v) in &values {
                println!("  {k}={v}");
            }
        }
        Ok(())
    }
}
