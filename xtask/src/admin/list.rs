//! `admin list`: every tenant and its bot's status, from four cluster-wide
//! reads whatever the number of tenants (namespaces, deployments, pods and
//! the locks).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::clock::{age_seconds, format_age, now, rfc3339};
use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::Scope;
use crate::live::{Tenants, is_bot, pod_ready, pod_restarts, tenant_of};
use crate::names::{
    DOMAINS_ANNOTATION, MLA_NAME_ANNOTATION, TENANT_LABEL, TIER_ANNOTATION,
    WHATSAPP_NUMBER_ANNOTATION,
};
use crate::object::{annotation, str_at};
use crate::output::{OutputFormat, painted_table, print_structured};
use crate::state::TenantState;

/// One row of `admin list`; also its stable JSON form (documented in the README).
#[derive(Debug, Clone, Serialize)]
pub struct TenantStatus {
    pub name: String,
    pub namespace: String,
    /// state, reason, since, by, last_backup, desired (see `state.rs`).
    #[serde(flatten)]
    pub state: TenantState,
    pub tier: Option<String>,
    pub mla_name: Option<String>,
    /// Null once an offboarded tenant's number is released.
    pub whatsapp_number: Option<String>,
    pub ready: u32,
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
        let leases = crate::lock::tenant_leases(kubectl)?.unwrap_or_default();
        let rows = statuses(&tenants, &deployments, &pods, &leases, now);
        match self.output.format {
            OutputFormat::Table => {
                if rows.is_empty() {
                    eprintln!(
                        "No tenants on {}. Create one with `cargo xtask provision TENANT{}`.",
                        cluster.label(),
                        cluster.target().suggested_arg()
                    );
                    return Ok(());
                }
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.state.describe(),
                            r.tier.clone().unwrap_or_else(|| "-".to_owned()),
                            format!("{}/{}", r.ready, r.state.desired),
                            r.restarts.to_string(),
                            format_age(r.age_seconds),
                            r.domains.join(","),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    painted_table(
                        &[
                            "TENANT", "STATE", "TIER", "READY", "RESTARTS", "AGE", "DOMAINS"
                        ],
                        &cells,
                        |row, column, cell| match column {
                            1 => crate::colour::state(cell, rows[row].state.state),
                            _ => cell.to_owned(),
                        }
                    )
                );
                let context = kubectl.context_arg();
                let notes: Vec<String> = rows
                    .iter()
                    .flat_map(|r| {
                        r.state
                            .unfinished_lines(&r.name, &r.namespace, &context)
                            .into_iter()
                            .map(move |line| format!("  {}: {line}", r.name))
                    })
                    .collect();
                if !notes.is_empty() {
                    println!("\nUnfinished or under way:\n{}", notes.join("\n"));
                }
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
    leases: &BTreeMap<String, Value>,
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
            let tenant_pods: Vec<&Value> = pods
                .get(&name)
                .map(|ps| {
                    ps.iter()
                        .filter(|p| str_at(p, "/metadata/namespace") == Some(&namespace))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let bot_pods: Vec<&Value> = tenant_pods.iter().filter(|p| is_bot(p)).copied().collect();
            let created = str_at(ns, "/metadata/creationTimestamp").map(str::to_owned);
            let domains = annotation(ns, DOMAINS_ANNOTATION)
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let state =
                TenantState::of(ns, bot, &bot_pods).noting(leases.get(&name), &tenant_pods, now);
            Some(TenantStatus {
                name,
                namespace,
                state,
                tier: annotation(ns, TIER_ANNOTATION).map(str::to_owned),
                mla_name: annotation(ns, MLA_NAME_ANNOTATION).map(str::to_owned),
                whatsapp_number: annotation(ns, WHATSAPP_NUMBER_ANNOTATION).map(str::to_owned),
                ready: bot_pods.iter().filter(|p| pod_ready(p)).count() as u32,
                restarts: bot_pods.iter().map(|p| pod_restarts(p)).sum(),
                age_seconds: age_seconds(created.as_deref(), now),
                created,
                domains,
            })
        })
        .collect()
}
