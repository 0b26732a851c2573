//! The live view of tenants, shared by every command: finding them (by
//! their namespace's label, never by guessing from names), the bot's
//! Deployment and pods, readiness. A tenant's state is `state.rs`.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

use crate::clock::KubeDuration;
use crate::kubectl::{Kubectl, Scope};
use crate::names::{APP_LABEL, BOT_APP, TENANT_LABEL};
use crate::object::{label, str_at};
use crate::tenant::TenantName;

/// Read from objects in `state.rs`; here too, as every command reads them.
pub use crate::state::{pod_ready, terminating_since};

/// The tenants on the cluster: namespaces carrying the tenant label.
pub struct Tenants {
    pub namespaces: Vec<Value>,
}

impl Tenants {
    pub fn discover(kubectl: &Kubectl) -> anyhow::Result<Tenants> {
        let namespaces = kubectl.get_list("namespaces", Scope::Cluster, Some(TENANT_LABEL))?;
        Ok(Tenants::from_namespaces(namespaces))
    }

    /// The tenants of namespaces read with the tenant label, by name.
    pub fn from_namespaces(mut namespaces: Vec<Value>) -> Tenants {
        namespaces.sort_by_key(|ns| tenant_of(ns).unwrap_or_default());
        Tenants { namespaces }
    }

    pub fn names(&self) -> Vec<String> {
        self.namespaces.iter().filter_map(tenant_of).collect()
    }

    pub fn find(&self, tenant: &str) -> Option<&Value> {
        self.namespaces
            .iter()
            .find(|ns| tenant_of(ns).as_deref() == Some(tenant))
    }

    /// The tenant's namespace object, or an error that lists the tenants
    /// that do exist.
    pub fn require(&self, tenant: &TenantName) -> anyhow::Result<&Value> {
        if let Some(ns) = self.find(tenant.as_str()) {
            return Ok(ns);
        }
        let names = self.names();
        if names.is_empty() {
            bail!(
                "tenant {tenant} does not exist: there are no tenants on this cluster yet \
                 (create one with `cargo xtask provision {tenant}{}`); check --env or --context if you expected some",
                crate::suggest::target_arg()
            )
        }
        bail!(
            "tenant {tenant} does not exist on this cluster; the tenants are: {}",
            names.join(", ")
        )
    }
}

/// The tenant an object belongs to, from its label.
pub fn tenant_of(object: &Value) -> Option<String> {
    label(object, TENANT_LABEL).map(str::to_owned)
}

/// Whether an object is (or belongs to) the bot, by its app label.
pub fn is_bot(o: &Value) -> bool {
    label(o, APP_LABEL) == Some(BOT_APP)
}

pub fn pod_restarts(pod: &Value) -> u64 {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["restartCount"].as_u64())
        .sum()
}

/// A tenant's bot Deployment as the cluster has it.
pub struct BotDeployment {
    pub tenant: TenantName,
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    /// The bot's container name.
    pub container: String,
    pub object: Value,
    /// Whether the tenant is active, suspended, offboarded or terminating.
    pub lifecycle: crate::state::Lifecycle,
}

impl BotDeployment {
    /// Checks the tenant exists, then reads its bot Deployment.
    pub fn find(kubectl: &Kubectl, tenant: &TenantName) -> anyhow::Result<BotDeployment> {
        let tenants = Tenants::discover(kubectl)?;
        BotDeployment::in_namespace(kubectl, tenant, tenants.require(tenant)?)
    }

    /// Reads the bot Deployment of a tenant whose namespace (`ns`, from
    /// [`Tenants`]) is already read.
    pub fn in_namespace(
        kubectl: &Kubectl,
        tenant: &TenantName,
        ns: &Value,
    ) -> anyhow::Result<BotDeployment> {
        let lifecycle = crate::state::Lifecycle::of(ns);
        let namespace = str_at(ns, "/metadata/name").unwrap_or_default().to_owned();
        let selector = crate::names::bot_selector_arg(tenant.as_str());
        let deployments =
            kubectl.get_list("deployments", Scope::Namespace(&namespace), Some(&selector))?;
        let Some(object) = deployments.into_iter().next() else {
            if let crate::state::Lifecycle::Offboarded { .. } = lifecycle {
                bail!(
                    "tenant {tenant} is {}: it has no bot. Provision it again first, from its kept config: \
                     `cargo xtask provision {tenant} --values tenants/offboarded/{tenant}.yaml{}`",
                    lifecycle.note(tenant.as_str()).unwrap_or_default(),
                    crate::suggest::target_arg()
                );
            }
            bail!(
                "tenant {tenant} has no bot Deployment in {namespace}; re-create it with \
                 `cargo xtask provision {tenant} --values tenants/{tenant}.yaml{}`",
                crate::suggest::target_arg()
            );
        };
        Ok(BotDeployment {
            tenant: tenant.clone(),
            name: str_at(&object, "/metadata/name")
                .unwrap_or(crate::names::BOT)
                .to_owned(),
            replicas: object
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as u32,
            container: str_at(&object, "/spec/template/spec/containers/0/name")
                .unwrap_or(crate::names::BOT)
                .to_owned(),
            namespace,
            object,
            lifecycle,
        })
    }

    /// The bot's pods now.
    pub fn pods(&self, kubectl: &Kubectl) -> anyhow::Result<Vec<Value>> {
        let selector = crate::names::bot_selector_arg(self.tenant.as_str());
        kubectl.get_list("pods", Scope::Namespace(&self.namespace), Some(&selector))
    }

    /// Polls until the bot has no pods left (`kubectl wait --for=delete`
    /// fails when there is nothing to wait for, so it cannot be used here).
    pub fn wait_for_no_pods(
        &self,
        kubectl: &Kubectl,
        timeout: &KubeDuration,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if self.pods(kubectl)?.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout.length() {
                bail!(
                    "the bot's pod is still there after {timeout}; `kubectl --namespace {} get pods` shows why",
                    self.namespace
                );
            }
            crate::interrupt::check()?;
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}
