//! `admin list`: every tenant and its bot's status, from three cluster-wide
//! reads whatever the number of tenants.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::clock::{age_seconds, format_age, now, rfc3339};
use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::Scope;
use crate::live::{
    Tenants, is_bot, pod_ready, pod_restarts, suspended_since, tenant_of, terminating_since,
};
use crate::names::{DOMAINS_ANNOTATION, TENANT_LABEL};
use crate::object::{annotation, str_at};
use crate::output::{OutputFormat, print_structured, table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    /// Taken offline on purpose with `admin suspend`.
    Suspended,
    /// Its namespace is being deleted (offboarded with its data).
    Terminating,
    Stopped,
    Pending,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Suspended => "suspended",
            Status::Terminating => "terminating",
            Status::Stopped => "stopped",
            Status::Pending => "pending",
            Status::Error => "error",
        }
    }
}

/// One row of `admin list`; also its stable JSON form (documented in the README).
#[derive(Debug, Clone, Serialize)]
pub struct TenantStatus {
    pub name: String,
    pub namespace: String,
    pub status: Status,
    /// Why the bot is not running, e.g. `crash looping`; null when running.
    pub reason: Option<String>,
    pub ready: u32,
    pub desired: u32,
    pub restarts: u64,
    /// When the tenant's namespace was created (RFC 3339).
    pub created: Option<String>,
    pub age_seconds: Option<u64>,
    pub domains: Vec<String>,
}

#[derive(Serialize)]
struct ListOutput<'a> {
    /// When this was read (RFC 3339).
    time: String,
    tenants: &'a [TenantStatus],
}

impl flags::List {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let now = now()?;
        let tenants = Tenants::discover(kubectl)?;
        let deployments =
            kubectl.get_list("deployments", Scope::AllNamespaces, Some(TENANT_LABEL))?;
        let pods = kubectl.get_list("pods", Scope::AllNamespaces, Some(TENANT_LABEL))?;
        let rows = statuses(&tenants, &deployments, &pods, now);
        match self.output.format {
            OutputFormat::Table => {
                if rows.is_empty() {
                    eprintln!(
                        "No tenants on {}. Create one with `cargo xtask provision`.",
                        cluster.label()
                    );
                    return Ok(());
                }
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let status = match &r.reason {
                            Some(reason) => format!("{} ({reason})", r.status.as_str()),
                            None => r.status.as_str().to_owned(),
                        };
                        vec![
                            r.name.clone(),
                            status,
                            format!("{}/{}", r.ready, r.desired),
                            r.restarts.to_string(),
                            format_age(r.age_seconds),
                            r.domains.join(","),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &["TENANT", "STATUS", "READY", "RESTARTS", "AGE", "DOMAINS"],
                        &cells
                    )
                );
            }
            format => print_structured(
                format,
                &ListOutput {
                    time: rfc3339(now),
                    tenants: &rows,
                },
            )?,
        }
        Ok(())
    }
}

/// Groups objects by the tenant label.
fn by_tenant(objects: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut map: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in objects {
        if let Some(t) = tenant_of(o) {
            map.entry(t).or_default().push(o);
        }
    }
    map
}

fn statuses(
    tenants: &Tenants,
    deployments: &[Value],
    pods: &[Value],
    now: std::time::SystemTime,
) -> Vec<TenantStatus> {
    let deployments = by_tenant(deployments);
    let pods = by_tenant(pods);
    tenants
        .namespaces
        .iter()
        .filter_map(|ns| {
            let name = tenant_of(ns)?;
            let namespace = str_at(ns, "/metadata/name")?.to_owned();
            let bot = deployments
                .get(&name)
                .and_then(|ds| {
                    ds.iter()
                        .find(|d| is_bot(d) && str_at(d, "/metadata/namespace") == Some(&namespace))
                })
                .copied();
            let bot_pods: Vec<&Value> = pods
                .get(&name)
                .map(|ps| {
                    ps.iter()
                        .filter(|p| {
                            is_bot(p) && str_at(p, "/metadata/namespace") == Some(&namespace)
                        })
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let created = str_at(ns, "/metadata/creationTimestamp").map(str::to_owned);
            let domains = annotation(ns, DOMAINS_ANNOTATION)
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let (status, reason, desired) = match (terminating_since(ns), suspended_since(ns)) {
                (Some(since), _) => (
                    Status::Terminating,
                    Some(format!("namespace being deleted since {since}")),
                    0,
                ),
                (None, Some(since)) => (Status::Suspended, Some(format!("since {since}")), 0),
                (None, None) => bot_status(bot, &bot_pods),
            };
            Some(TenantStatus {
                name,
                namespace,
                status,
                reason,
                ready: bot_pods.iter().filter(|p| pod_ready(p)).count() as u32,
                desired,
                restarts: bot_pods.iter().map(|p| pod_restarts(p)).sum(),
                age_seconds: age_seconds(created.as_deref(), now),
                created,
                domains,
            })
        })
        .collect()
}

/// The status of a tenant's bot from its Deployment and pods.
fn bot_status(bot: Option<&Value>, pods: &[&Value]) -> (Status, Option<String>, u32) {
    let Some(bot) = bot else {
        return (
            Status::Error,
            Some("bot deployment missing; re-run provision".into()),
            0,
        );
    };
    let desired = bot
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32;
    if desired == 0 {
        return (Status::Stopped, None, 0);
    }
    let waiting: Vec<&str> = pods
        .iter()
        .flat_map(|p| {
            p.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
        .collect();
    let error = |reason: &str| (Status::Error, Some(reason.to_owned()), desired);
    if waiting.contains(&"CrashLoopBackOff") {
        return error("crash looping");
    }
    if let Some(r) = waiting.iter().find(|r| {
        matches!(
            **r,
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName"
        )
    }) {
        return error(&format!("image pull failure: {r}"));
    }
    if let Some(r) = waiting
        .iter()
        .find(|r| matches!(**r, "CreateContainerConfigError" | "CreateContainerError"))
    {
        return error(&format!("container cannot start: {r}"));
    }
    let failed_rollout = bot
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["status"] == "False");
    if failed_rollout {
        return error("rollout failed: progress deadline exceeded");
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as u32;
    if ready >= desired {
        return (Status::Running, None, desired);
    }
    let unschedulable = pods.iter().any(|p| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "False")
    });
    let reason = if unschedulable {
        "unschedulable".to_owned()
    } else if let Some(r) = waiting.first() {
        (*r).to_owned()
    } else if pods.is_empty() {
        "no pod yet".to_owned()
    } else {
        "starting".to_owned()
    };
    (Status::Pending, Some(reason), desired)
}
