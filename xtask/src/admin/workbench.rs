//! The workbench: a short-lived pod that mounts a tenant's volumes while its
//! bot is stopped, so that restore (and backup of a stopped bot) can read
//! and write them.
//!
//! Its spec is the live bot's pod spec (same image, volumes, mounts and
//! restricted security context) with the command replaced by `sleep`,
//! without probes, ports or the bot's config and credentials, and with
//! labels that no Service or NetworkPolicy allowance selects: it can reach
//! nothing and nothing can reach it.

use anyhow::Context;
use serde_json::{Value, json};
use xshell::Shell;

use super::restart::BotDeployment;
use crate::kubectl::{Input, Kubectl, Sink};
use crate::render::{MANAGER, TENANT_LABEL};

pub const WORKBENCH: &str = "xtask-workbench";

/// A container to run commands in: the bot's, or the workbench's.
#[derive(Debug, Clone)]
pub struct PodRef {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

impl PodRef {
    pub fn exec(
        &self,
        sh: &Shell,
        kubectl: &Kubectl,
        command: &[&str],
        input: Input<'_>,
        sink: Sink,
    ) -> anyhow::Result<Vec<u8>> {
        kubectl.exec(
            sh,
            &self.namespace,
            &self.pod,
            &self.container,
            command,
            input,
            sink,
        )
    }
}

pub struct Workbench;

impl Workbench {
    /// The pod object for `bot`'s tenant.
    pub fn manifest(bot: &BotDeployment, tenant: &str) -> anyhow::Result<Value> {
        let mut spec = bot
            .object
            .pointer("/spec/template/spec")
            .cloned()
            .context("the bot Deployment has no pod template")?;
        let container = spec
            .pointer_mut("/containers/0")
            .and_then(Value::as_object_mut)
            .context("the bot Deployment has no container")?;
        for field in [
            "args",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "ports",
            "env",
            "envFrom",
            "lifecycle",
        ] {
            container.remove(field);
        }
        container.insert("command".into(), json!(["sleep", "3600"]));
        let first = spec["containers"][0].clone();
        spec["containers"] = json!([first]);
        spec["restartPolicy"] = json!("Never");
        if let Some(s) = spec.as_object_mut() {
            s.remove("initContainers");
        }
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": WORKBENCH,
                "namespace": bot.namespace,
                "labels": {
                    TENANT_LABEL: tenant,
                    "app.kubernetes.io/name": WORKBENCH,
                    "app.kubernetes.io/managed-by": MANAGER,
                },
            },
            "spec": spec,
        }))
    }

    /// Replaces any workbench left by an interrupted run, starts a fresh
    /// one and waits until it is ready.
    pub fn start(
        sh: &Shell,
        kubectl: &Kubectl,
        bot: &BotDeployment,
        tenant: &str,
        timeout: &str,
    ) -> anyhow::Result<PodRef> {
        let manifest = Workbench::manifest(bot, tenant)?;
        kubectl.delete_pod(sh, &bot.namespace, WORKBENCH)?;
        eprintln!(
            "Starting workbench pod {WORKBENCH} in {} ...",
            bot.namespace
        );
        kubectl.apply_object(sh, &manifest, MANAGER)?;
        kubectl
            .wait_ready(sh, &bot.namespace, WORKBENCH, timeout)
            .context("the workbench pod did not become ready; `kubectl describe pod xtask-workbench` shows why")?;
        Ok(PodRef {
            namespace: bot.namespace.clone(),
            pod: WORKBENCH.to_owned(),
            container: bot.container.clone(),
        })
    }

    pub fn stop(sh: &Shell, kubectl: &Kubectl, namespace: &str) -> anyhow::Result<()> {
        kubectl.delete_pod(sh, namespace, WORKBENCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::render::{SecretValues, Templates};
    use crate::tenant::{TenantName, TenantSpec, TenantValues};

    /// The workbench runs in the tenant's restricted namespace: it must
    /// pass the profile itself, carry no credentials, and match no policy.
    #[test]
    fn the_workbench_is_restricted_and_bare() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let platform = Platform::load(&root.join("platform.yaml").display().to_string()).unwrap();
        let templates = Templates::load(&root.join("templates")).unwrap();
        let text = std::fs::read_to_string(root.join("tenants/demo.yaml")).unwrap();
        let values = TenantValues::from_yaml("demo.yaml", &text).unwrap();
        let spec = TenantSpec::resolve(
            &TenantName::parse("demo").unwrap(),
            &values,
            &platform.tier_names(),
            "small",
        )
        .unwrap();
        let manifests = templates
            .render_tenant(&spec, &platform, &SecretValues::Redacted)
            .unwrap();
        let deployment = manifests
            .into_iter()
            .find(|m| m.kind == "Deployment")
            .unwrap();
        let bot = BotDeployment {
            namespace: "tenant-demo".into(),
            name: "bot".into(),
            replicas: 1,
            container: "bot".into(),
            object: deployment.object,
            suspended: None,
        };
        let pod = Workbench::manifest(&bot, "demo").unwrap();
        assert_eq!(
            crate::pss::restricted_violations(&pod["spec"]),
            Vec::<String>::new()
        );
        let container = &pod["spec"]["containers"][0];
        assert!(container.get("envFrom").is_none() && container.get("env").is_none());
        assert_eq!(container["command"], json!(["sleep", "3600"]));
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/name"],
            WORKBENCH
        );
        assert_eq!(
            pod["spec"]["volumes"],
            bot.object["spec"]["template"]["spec"]["volumes"]
        );
    }
}
