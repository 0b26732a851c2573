//! The workbench: a short-lived pod that mounts a tenant's volumes while its
//! bot is stopped, so that restore (and backup of a stopped bot) can read
//! and write them.
//!
//! Its spec is the live bot's pod spec (same image, data volumes, mounts
//! and restricted security context) with the command replaced by `sleep`,
//! without probes, ports, the bot's config or its credentials volume, and
//! with labels that no Service or NetworkPolicy allowance selects (nor the
//! bot's Deployment): it can reach nothing and nothing can reach it.

use anyhow::Context;
use serde_json::{Value, json};

use crate::clock::KubeDuration;
use crate::kubectl::{Conflicts, Container, Kubectl};
use crate::live::BotDeployment;
use crate::names::{
    APP_LABEL, CREDENTIALS_VOLUME, MANAGED_BY_LABEL, MANAGER, TENANT_LABEL, WORKBENCH_POD,
};

pub struct Workbench;

impl Workbench {
    /// The pod object for `bot`'s tenant.
    pub fn manifest(bot: &BotDeployment) -> anyhow::Result<Value> {
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
        if let Some(mounts) = container
            .get_mut("volumeMounts")
            .and_then(Value::as_array_mut)
        {
            mounts.retain(|m| m["name"] != CREDENTIALS_VOLUME);
        }
        let first = spec["containers"][0].clone();
        spec["containers"] = json!([first]);
        spec["restartPolicy"] = json!("Never");
        if let Some(s) = spec.as_object_mut() {
            s.remove("initContainers");
        }
        if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            volumes.retain(|v| v["name"] != CREDENTIALS_VOLUME);
        }
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": WORKBENCH_POD,
                "namespace": bot.namespace,
                "labels": {
                    TENANT_LABEL: bot.tenant.as_str(),
                    APP_LABEL: WORKBENCH_POD,
                    MANAGED_BY_LABEL: MANAGER,
                },
            },
            "spec": spec,
        }))
    }

    /// Replaces any workbench left by an interrupted run, starts a fresh
    /// one and waits until it is ready.
    pub fn start(
        kubectl: &Kubectl,
        bot: &BotDeployment,
        timeout: &KubeDuration,
    ) -> anyhow::Result<Container> {
        let manifest = Workbench::manifest(bot)?;
        Workbench::stop(kubectl, &bot.namespace, timeout)?;
        eprintln!(
            "Starting workbench pod {WORKBENCH_POD} in {} ...",
            bot.namespace
        );
        let started = kubectl
            .apply_object(&manifest, MANAGER, Conflicts::Refuse)
            .and_then(|_| {
                kubectl
                    .wait_for_condition(&bot.namespace, WORKBENCH_POD, "Ready", timeout)
                    .map_err(|e| {
                        if crate::interrupt::interrupted() {
                            return e;
                        }
                        e.context(format!(
                        "the workbench pod did not become ready within {timeout} (its volumes may still be attached elsewhere); \
                         `kubectl --namespace {} describe pod {WORKBENCH_POD}` shows why",
                        bot.namespace
                    ))
                    })
            });
        // A pod that never became ready (or an apply whose answer was
        // lost) is not left mounting the tenant's volumes.
        if let Err(e) = started {
            return Err(match Workbench::stop(kubectl, &bot.namespace, timeout) {
                Ok(()) => anyhow::anyhow!(
                    "{}; the workbench pod was deleted again",
                    format!("{e:#}").trim_end_matches('.')
                ),
                Err(stop) => anyhow::anyhow!(
                    "{e:#}; the workbench pod could not be deleted either ({stop:#}): delete it with \
                     `kubectl --namespace {} delete pod {WORKBENCH_POD}`",
                    bot.namespace
                ),
            });
        }
        Ok(Container {
            namespace: bot.namespace.clone(),
            pod: WORKBENCH_POD.to_owned(),
            name: bot.container.clone(),
        })
    }

    /// Deletes the workbench and waits until it is gone, so that its
    /// volumes are free for the bot.
    pub fn stop(kubectl: &Kubectl, namespace: &str, timeout: &KubeDuration) -> anyhow::Result<()> {
        kubectl.delete(Some(namespace), "pod", WORKBENCH_POD, Some(timeout))
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
            tenant: TenantName::parse("demo").unwrap(),
            namespace: "tenant-demo".into(),
            name: "bot".into(),
            replicas: 1,
            container: "bot".into(),
            object: deployment.object,
            lifecycle: crate::state::Lifecycle::Active,
        };
        let pod = Workbench::manifest(&bot).unwrap();
        assert_eq!(
            crate::pss::restricted_violations(&pod["spec"]),
            Vec::<String>::new()
        );
        let container = &pod["spec"]["containers"][0];
        assert!(container.get("envFrom").is_none() && container.get("env").is_none());
        assert_eq!(container["command"], json!(["sleep", "3600"]));
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/name"],
            WORKBENCH_POD
        );
        // The data volumes, never the credentials.
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(&pod["spec"]["volumes"]),
            ["data", "whatsapp-auth", "tmp"]
        );
        assert!(
            names(&bot.object["spec"]["template"]["spec"]["volumes"])
                .contains(&CREDENTIALS_VOLUME.to_owned())
        );
        assert_eq!(
            names(&container["volumeMounts"]),
            ["data", "whatsapp-auth", "tmp"]
        );
        // Nothing that selects the bot selects the workbench.
        let selector = &bot.object["spec"]["selector"]["matchLabels"];
        let labels = &pod["metadata"]["labels"];
        assert!(
            selector
                .as_object()
                .unwrap()
                .iter()
                .any(|(k, v)| labels.get(k) != Some(v))
        );
        assert!(labels.get(crate::names::NETWORK_ROLE_LABEL).is_none());
    }
}
