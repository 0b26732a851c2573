//! A tenant's life after onboarding: `suspend` and `resume`, `rotate`
//! (new credentials), and `offboard` (the safe delete). Each changes the
//! cluster, so each is recorded in the audit log.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use xshell::Shell;

use super::backup::verify_archive;
use super::restart::BotDeployment;
use super::{Tenants, now, rfc3339, str_at};
use crate::flags::{self, duration_millis};
use crate::kubectl::{Kubectl, Scope, applyable};
use crate::render::{LABEL_DOMAIN, MANAGER, SecretValues, TENANT_LABEL};
use crate::tenant::TenantName;

fn key(name: &str) -> String {
    format!("{LABEL_DOMAIN}/{name}")
}

/// When the tenant was suspended, if it is.
pub fn suspended_since(namespace: &Value) -> Option<String> {
    namespace
        .pointer("/metadata/annotations")?
        .get(key("suspended"))?
        .as_str()
        .map(str::to_owned)
}

fn audited<T>(
    root: &Path,
    cluster: &flags::ClusterArgs,
    tenant: &TenantName,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    cluster.record(root, tenant.as_str(), result)
}

/// The environment's confirmation, then the change.
fn confirmed<T>(
    cluster: &flags::ClusterArgs,
    tenant: &TenantName,
    yes: bool,
    what: &str,
    change: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let env = crate::environment::select(cluster)?;
    crate::environment::confirm_change(env.as_ref(), tenant, yes, what)?;
    change()
}

/// The tenant's namespace object, checked to exist.
fn namespace_of(sh: &Shell, kubectl: &Kubectl, tenant: &TenantName) -> anyhow::Result<Value> {
    Ok(Tenants::discover(sh, kubectl)?.require(tenant)?.clone())
}

impl flags::Suspend {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let result = confirmed(
            &self.cluster,
            &self.tenant,
            self.yes,
            "a suspension",
            || self.suspend(sh),
        );
        audited(root, &self.cluster, &self.tenant, result)
    }

    fn suspend(&self, sh: &Shell) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        let namespace = namespace_of(sh, &kubectl, &self.tenant)?;
        if let Some(since) = suspended_since(&namespace) {
            bail!(
                "tenant {} is already suspended (since {since}); nothing was changed",
                self.tenant
            );
        }
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)?;
        let ns = bot.namespace.as_str();
        let ingresses =
            kubectl.get_list(sh, "ingresses", Scope::Namespace(ns), Some(TENANT_LABEL))?;
        // Record the state to come back to before changing anything.
        let ingress_json =
            serde_json::to_string(&ingresses.iter().cloned().map(applyable).collect::<Vec<_>>())?;
        let target = format!("namespace/{ns}");
        kubectl.annotate(
            sh,
            ns,
            &target,
            &key("suspended-replicas"),
            Some(&bot.replicas.to_string()),
        )?;
        kubectl.annotate(
            sh,
            ns,
            &target,
            &key("suspended-ingresses"),
            Some(&ingress_json),
        )?;
        kubectl.annotate(sh, ns, &target, &key("suspended"), Some(&rfc3339(now()?)))?;
        eprintln!(
            "Removing the Ingress and stopping the bot of {} ...",
            self.tenant
        );
        for ing in &ingresses {
            kubectl.delete(
                sh,
                Some(ns),
                "ingress",
                str_at(ing, "/metadata/name").unwrap_or_default(),
            )?;
        }
        kubectl.scale(sh, ns, &bot.name, 0)?;
        println!(
            "Tenant {} is suspended: its website and bot no longer answer; its data is kept. Bring it back with `cargo xtask admin resume {}`.",
            self.tenant, self.tenant
        );
        Ok(())
    }
}

impl flags::Resume {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let result = confirmed(
            &self.cluster,
            &self.tenant,
            self.yes,
            "a resumption",
            || self.resume(sh),
        );
        audited(root, &self.cluster, &self.tenant, result)
    }

    fn resume(&self, sh: &Shell) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        let namespace = namespace_of(sh, &kubectl, &self.tenant)?;
        if suspended_since(&namespace).is_none() {
            bail!(
                "tenant {} is not suspended; nothing was changed",
                self.tenant
            );
        }
        let annotation = |k: &str| {
            namespace
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key(k)))
                .and_then(Value::as_str)
        };
        let replicas: u32 = annotation("suspended-replicas")
            .and_then(|r| r.parse().ok())
            .unwrap_or(1);
        let ingresses: Vec<Value> =
            serde_json::from_str(annotation("suspended-ingresses").unwrap_or("[]"))
                .context("the recorded Ingress of the suspended tenant is unreadable")?;
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)?;
        let ns = bot.namespace.as_str();
        eprintln!(
            "Starting the bot of {} and restoring its Ingress ...",
            self.tenant
        );
        kubectl.scale(sh, ns, &bot.name, replicas)?;
        if replicas > 0 {
            kubectl.rollout_status(sh, ns, &bot.name, &self.rollout.timeout)?;
        }
        for ing in &ingresses {
            kubectl.apply_object(sh, ing, MANAGER)?;
        }
        let target = format!("namespace/{ns}");
        for k in ["suspended", "suspended-replicas", "suspended-ingresses"] {
            kubectl.annotate(sh, ns, &target, &key(k), None)?;
        }
        println!(
            "Tenant {} is resumed, as it was before it was suspended.",
            self.tenant
        );
        Ok(())
    }
}

impl flags::Rotate {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let result = confirmed(
            &self.cluster,
            &self.tenant,
            self.yes,
            "a credential rotation",
            || self.rotate(sh, root),
        );
        audited(root, &self.cluster, &self.tenant, result)
    }

    fn rotate(&self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let kubectl = self.cluster.kubectl()?;
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)?;
        let ns = bot.namespace.as_str();
        let secret_name = bot
            .object
            .pointer("/spec/template/spec/containers/0/envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|e| e.pointer("/secretRef/name").and_then(Value::as_str))
            .context("the bot reads no Secret; there is nothing to rotate")?
            .to_owned();
        let secrets = kubectl.get_list(sh, "secrets", Scope::Namespace(ns), Some(TENANT_LABEL))?;
        let live = secrets
            .iter()
            .find(|s| str_at(s, "/metadata/name") == Some(secret_name.as_str()))
            .with_context(|| format!("secret/{secret_name} is missing in {ns}; provision the tenant again to create it"))?;
        let SecretValues::Generated(values) =
            SecretValues::generate(&platform.bot.generated_secrets)?
        else {
            unreachable!("generate always generates");
        };
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": ns, "labels": live.pointer("/metadata/labels").cloned().unwrap_or(json!({}))},
            "type": "Opaque",
            "stringData": values,
        });
        let redact: Vec<&str> = values.values().map(String::as_str).collect();
        eprintln!("Writing new credentials to secret/{secret_name} ...");
        kubectl.apply_server_side(sh, &serde_json::to_string(&secret)?, MANAGER, true, &redact)?;
        if bot.replicas > 0 {
            eprintln!("Restarting the bot so that it uses them ...");
            kubectl.rollout_restart(sh, ns, &bot.name)?;
            kubectl
                .rollout_status(sh, ns, &bot.name, &self.rollout.timeout)
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

impl flags::Offboard {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let result = self.offboard(sh, root);
        audited(root, &self.cluster, &self.tenant, result)
    }

    /// The newest archive of the tenant, verified and fresh enough.
    fn fresh_backup(&self, root: &Path) -> anyhow::Result<String> {
        let dir = self.backups.clone().unwrap_or_else(|| root.join("backups"));
        let prefix = format!("{}-", self.tenant);
        let mut archives: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tar.gz"))
            })
            .collect();
        archives.sort();
        let advice = format!(
            "take one with `cargo xtask admin backup {t}` (or pass --no-backup to offboard without one); nothing was changed",
            t = self.tenant
        );
        let Some(newest) = archives.pop() else {
            bail!(
                "there is no backup of tenant {} in {}: {advice}",
                self.tenant,
                dir.display()
            );
        };
        let verified = verify_archive(&newest).map_err(|e| {
            anyhow::anyhow!(
                "the newest backup {} does not verify: {e:#}\n{advice}",
                newest.display()
            )
        })?;
        let created = humantime::parse_rfc3339(&verified.manifest.created)
            .with_context(|| format!("{} has an unreadable creation time", newest.display()))?;
        let limit = Duration::from_millis(
            duration_millis(&self.max_backup_age).map_err(anyhow::Error::msg)?,
        );
        let age = now()?.duration_since(created).unwrap_or_default();
        if age > limit || verified.manifest.tenant != self.tenant.as_str() {
            bail!(
                "the newest backup {} is {} old, more than --max-backup-age {}: {advice}",
                newest.display(),
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                self.max_backup_age
            );
        }
        Ok(newest.display().to_string())
    }

    fn confirm(&self) -> anyhow::Result<()> {
        crate::prompt::confirm_typed(
            self.tenant.as_str(),
            &format!(
                "This removes tenant {} from the cluster{}.",
                self.tenant,
                if self.delete_data {
                    ", its database and WhatsApp session included"
                } else {
                    "; its volumes are kept"
                }
            ),
            self.yes,
            &format!(
                "offboarding deletes tenant {} and needs confirmation",
                self.tenant
            ),
        )
    }

    fn offboard(&self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        namespace_of(sh, &kubectl, &self.tenant)?;
        let backup = if self.no_backup {
            None
        } else {
            Some(self.fresh_backup(root)?)
        };
        self.confirm()?;
        let ns = self.tenant.namespace();
        let mut deleted = Vec::new();
        // Traffic first, then the bot, then everything else.
        let order = [
            "ingress",
            "deployment",
            "pod",
            "service",
            "configmap",
            "secret",
            "networkpolicy",
            "limitrange",
            "resourcequota",
        ];
        for kind in order {
            for o in kubectl.get_list(sh, kind, Scope::Namespace(&ns), Some(TENANT_LABEL))? {
                let name = str_at(&o, "/metadata/name").unwrap_or_default().to_owned();
                eprintln!("Deleting {kind}/{name} ...");
                kubectl.delete(sh, Some(&ns), kind, &name)?;
                deleted.push(format!("{kind}/{name}"));
            }
        }
        kubectl.delete(sh, Some(&ns), "serviceaccount", "bot")?;
        if self.delete_data {
            for o in kubectl.get_list(sh, "persistentvolumeclaims", Scope::Namespace(&ns), None)? {
                let name = str_at(&o, "/metadata/name").unwrap_or_default().to_owned();
                eprintln!("Deleting persistentvolumeclaim/{name} ...");
                kubectl.delete(sh, Some(&ns), "persistentvolumeclaim", &name)?;
            }
            eprintln!("Deleting namespace/{ns} ...");
            kubectl.delete(sh, None, "namespace", &ns)?;
        }
        // What is left of the tenant, whatever the options.
        let mut left = Vec::new();
        if !self.delete_data {
            for o in kubectl.get_list(sh, "persistentvolumeclaims", Scope::Namespace(&ns), None)? {
                left.push(format!(
                    "persistentvolumeclaim/{} in {ns} (kept: its data)",
                    str_at(&o, "/metadata/name").unwrap_or_default()
                ));
            }
            left.push(format!("namespace/{ns} (kept: it holds the volumes)"));
        }
        for pv in kubectl.get_list(sh, "persistentvolumes", Scope::Cluster, None)? {
            if str_at(&pv, "/spec/claimRef/namespace") == Some(ns.as_str()) {
                left.push(format!(
                    "persistentvolume/{} ({}, reclaim policy {})",
                    str_at(&pv, "/metadata/name").unwrap_or_default(),
                    str_at(&pv, "/status/phase").unwrap_or("unknown"),
                    str_at(&pv, "/spec/persistentVolumeReclaimPolicy").unwrap_or("unknown")
                ));
            }
        }
        // The config goes to tenants/offboarded/, not away.
        let tenants_dir = self
            .tenants_dir
            .clone()
            .unwrap_or_else(|| root.join("tenants"));
        let config = tenants_dir.join(format!("{}.yaml", self.tenant));
        let moved = if config.exists() {
            let to = tenants_dir
                .join("offboarded")
                .join(format!("{}.yaml", self.tenant));
            std::fs::create_dir_all(to.parent().expect("a parent"))?;
            std::fs::rename(&config, &to)
                .with_context(|| format!("cannot move {} to {}", config.display(), to.display()))?;
            Some(to)
        } else {
            None
        };
        println!("Offboarded tenant {}.", self.tenant);
        if let Some(b) = backup {
            println!("  last backup: {b}");
        }
        println!(
            "  deleted: {}",
            if deleted.is_empty() {
                "nothing".to_owned()
            } else {
                deleted.join(", ")
            }
        );
        match moved {
            Some(to) => println!("  config moved to {} (commit the move)", to.display()),
            None => println!("  no config at {} to move", config.display()),
        }
        if left.is_empty() {
            println!("  nothing of the tenant is left on the cluster");
        } else {
            println!("  still on the cluster:");
            for l in left {
                println!("    {l}");
            }
        }
        Ok(())
    }
}
