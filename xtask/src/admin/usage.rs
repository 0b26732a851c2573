//! `admin usage`: what each tenant uses, and the total.
//!
//! Cluster-wide reads, a fixed number whatever the number of tenants: the
//! tenant namespaces, their pods, their volume claims, the metrics API (if
//! served), and one kubelet stats summary per node that runs tenant pods.
//! The only per-tenant calls are the read-only queries inside each bot's
//! pod, run `--jobs` at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::clock::{now, rfc3339};
use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, KubectlFailure, Scope};
use crate::live::{Tenants, is_bot, pod_ready, pod_restarts, tenant_of};
use crate::names::{TENANT_LABEL, VOLUME_PURPOSE_ANNOTATION};
use crate::object::{annotation, str_at};
use crate::output::{OutputFormat, format_bytes, print_structured, table};
use crate::platform::{Platform, QuantityKind, usage_quantity};

#[derive(Debug, Clone, Serialize)]
pub struct VolumeUsage {
    pub name: String,
    /// `sqlite-database` or `whatsapp-auth-session`.
    pub purpose: Option<String>,
    pub requested_bytes: u64,
    /// Null when no running pod mounts the volume (the kubelet reports
    /// usage only for mounted volumes).
    pub used_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantUsage {
    pub name: String,
    pub namespace: String,
    pub pods: u32,
    pub restarts: u64,
    /// Null when the cluster serves no metrics API.
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub volumes: Vec<VolumeUsage>,
    /// Null when the database could not be read (bot stopped, or an error).
    pub messages: Option<u64>,
    pub bot_runs: Option<u64>,
    /// Why a value is zero or null, when it is not simply no usage.
    pub note: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub tenants: u32,
    pub pods: u32,
    pub restarts: u64,
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub requested_bytes: u64,
    pub used_bytes: Option<u64>,
    pub messages: Option<u64>,
    pub bot_runs: Option<u64>,
}

#[derive(Serialize)]
struct UsageOutput {
    time: String,
    /// Start of the period for messages and bot runs (RFC 3339).
    since: String,
    metrics_available: bool,
    tenants: Vec<TenantUsage>,
    total: Totals,
    /// Tenants whose database read failed, with the reason.
    errors: Vec<String>,
}

impl flags::Usage {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let now = now()?;
        let since = rfc3339(now - Duration::from_secs(self.since.seconds));
        let tenants = Tenants::discover(kubectl)?;
        let only_ns = match &self.tenant {
            Some(t) => Some(
                str_at(tenants.require(t)?, "/metadata/name")
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => None,
        };
        let scope = || match &only_ns {
            Some(ns) => Scope::Namespace(ns),
            None => Scope::AllNamespaces,
        };
        let pods = kubectl.get_list("pods", scope(), Some(TENANT_LABEL))?;
        let claims = kubectl.get_list("persistentvolumeclaims", scope(), Some(TENANT_LABEL))?;
        let selector = TENANT_LABEL.replace('/', "%2F");
        let metrics_path = match &only_ns {
            Some(ns) => format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={selector}"
            ),
            None => format!("/apis/metrics.k8s.io/v1beta1/pods?labelSelector={selector}"),
        };
        let metrics = kubectl.get_raw_optional(&metrics_path)?;
        let mut nodes: Vec<&str> = pods
            .iter()
            .filter_map(|p| str_at(p, "/spec/nodeName"))
            .collect();
        nodes.sort();
        nodes.dedup();
        let mut used: BTreeMap<(String, String), u64> = BTreeMap::new();
        for node in &nodes {
            let summary = kubectl.get_raw(&format!("/api/v1/nodes/{node}/proxy/stats/summary"))?;
            for volume in summary
                .pointer("/pods")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|p| {
                    p.pointer("/volume")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
            {
                if let (Some(ns), Some(name), Some(bytes)) = (
                    str_at(volume, "/pvcRef/namespace"),
                    str_at(volume, "/pvcRef/name"),
                    volume.pointer("/usedBytes").and_then(Value::as_u64),
                ) {
                    used.insert((ns.to_owned(), name.to_owned()), bytes);
                }
            }
        }

        let mut rows = Vec::new();
        for ns in &tenants.namespaces {
            let (Some(name), Some(namespace)) = (tenant_of(ns), str_at(ns, "/metadata/name"))
            else {
                continue;
            };
            if only_ns.as_deref().is_some_and(|o| o != namespace) {
                continue;
            }
            let in_ns = |o: &&Value| str_at(o, "/metadata/namespace") == Some(namespace);
            let tenant_pods: Vec<&Value> = pods.iter().filter(in_ns).collect();
            let (cpu, memory) = match &metrics {
                None => (None, None),
                Some(m) => pod_metrics(m, namespace),
            };
            let volumes = claims
                .iter()
                .filter(in_ns)
                .map(|c| {
                    let claim = str_at(c, "/metadata/name").unwrap_or_default().to_owned();
                    VolumeUsage {
                        purpose: annotation(c, VOLUME_PURPOSE_ANNOTATION).map(str::to_owned),
                        requested_bytes: str_at(c, "/spec/resources/requests/storage")
                            .and_then(|q| usage_quantity(q, QuantityKind::Bytes))
                            .unwrap_or(0) as u64,
                        used_bytes: used.get(&(namespace.to_owned(), claim.clone())).copied(),
                        name: claim,
                    }
                })
                .collect();
            rows.push(TenantUsage {
                name,
                namespace: namespace.to_owned(),
                pods: tenant_pods.len() as u32,
                restarts: tenant_pods.iter().map(|p| pod_restarts(p)).sum(),
                cpu_millicores: cpu,
                memory_bytes: memory,
                volumes,
                messages: None,
                bot_runs: None,
                note: None,
            });
        }

        let errors = read_databases(
            kubectl,
            &platform,
            &since,
            &pods,
            &mut rows,
            self.jobs.into(),
        );
        let total = totals(&rows);
        match self.output.format {
            OutputFormat::Table => print_table(&rows, &total, metrics.is_some(), &since),
            format => print_structured(
                format,
                &UsageOutput {
                    time: rfc3339(now),
                    since,
                    metrics_available: metrics.is_some(),
                    tenants: rows,
                    total,
                    errors: errors.clone(),
                },
            )?,
        }
        if !errors.is_empty() {
            anyhow::bail!(crate::tenant::format_problems(
                "some tenant databases could not be read; their messages and bot runs are shown as n/a",
                &errors
            ));
        }
        Ok(())
    }
}

/// CPU (millicores) and memory (bytes) of a namespace's pods from a PodMetricsList.
fn pod_metrics(metrics: &Value, namespace: &str) -> (Option<u64>, Option<u64>) {
    let mut cpu = 0;
    let mut memory = 0;
    for item in metrics
        .pointer("/items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_at(item, "/metadata/namespace") != Some(namespace) {
            continue;
        }
        for c in item
            .pointer("/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            cpu += str_at(c, "/usage/cpu")
                .and_then(|q| usage_quantity(q, QuantityKind::Cpu))
                .unwrap_or(0);
            memory += str_at(c, "/usage/memory")
                .and_then(|q| usage_quantity(q, QuantityKind::Bytes))
                .unwrap_or(0);
        }
    }
    (Some(cpu as u64), Some(memory as u64))
}

/// Runs the usage query in every running bot, `jobs` at a time; fills in
/// the rows and returns the failures.
fn read_databases(
    kubectl: &Kubectl,
    platform: &Platform,
    since: &str,
    pods: &[Value],
    rows: &mut [TenantUsage],
    jobs: usize,
) -> Vec<String> {
    let sql = platform
        .admin
        .usage_query
        .replace(":since", &format!("'{since}'"));
    let db = platform.bot.database_path();
    let mut queue = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        let pod = pods.iter().find(|p| {
            str_at(p, "/metadata/namespace") == Some(row.namespace.as_str())
                && is_bot(p)
                && pod_ready(p)
        });
        let name = pod.and_then(|p| str_at(p, "/metadata/name"));
        let container = pod.and_then(|p| str_at(p, "/spec/containers/0/name"));
        match name.zip(container) {
            Some((pod, container)) => queue.push((
                i,
                Container {
                    namespace: row.namespace.clone(),
                    pod: pod.to_owned(),
                    name: container.to_owned(),
                },
            )),
            None => row.note = Some("bot not running; database not read".into()),
        }
    }
    if queue.is_empty() {
        return Vec::new();
    }
    eprintln!(
        "Reading {} tenant databases, {} at a time ...",
        queue.len(),
        jobs.min(queue.len())
    );
    let command = [
        platform.admin.sqlite3.as_str(),
        "-readonly",
        "-json",
        db.as_str(),
        sql.as_str(),
    ];
    let results = crate::pool::run(queue, jobs, |(i, container)| {
        (i, kubectl.exec(&container, &command, Input::None).run())
    });
    let mut errors = Vec::new();
    for (i, out) in results {
        let row = &mut rows[i];
        match out {
            Ok(bytes) => match parse_counts(&bytes) {
                Ok((messages, runs)) => {
                    row.messages = Some(messages);
                    row.bot_runs = Some(runs);
                }
                Err(e) => errors.push(format!("{}: {e}", row.name)),
            },
            Err(e) => match classify(&e) {
                Some(note) => {
                    row.messages = Some(0);
                    row.bot_runs = Some(0);
                    row.note = Some(note);
                }
                None => errors.push(format!(
                    "{}: the usage query failed: {}",
                    row.name,
                    format!("{e:#}").lines().next().unwrap_or_default()
                )),
            },
        }
    }
    errors.sort();
    errors
}

/// A query failure that just means no usage yet, as a note; None otherwise.
fn classify(e: &anyhow::Error) -> Option<String> {
    let f = e.downcast_ref::<KubectlFailure>()?;
    if f.stderr.contains("unable to open database") {
        Some("no database yet".into())
    } else if f.stderr.contains("no such table") {
        Some("database has no message tables yet".into())
    } else {
        None
    }
}

/// The first row of `sqlite3 -json` output: `messages` and `bot_runs`.
fn parse_counts(out: &[u8]) -> Result<(u64, u64), String> {
    let text = String::from_utf8_lossy(out);
    if text.trim().is_empty() {
        return Ok((0, 0));
    }
    let rows: Value = serde_json::from_str(&text).map_err(|_| {
        "the usage query did not print JSON rows; check admin.sqlite3 in platform.yaml".to_owned()
    })?;
    let first = rows.get(0).cloned().unwrap_or(Value::Null);
    let count = |key: &str| match first.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("column `{key}` of the usage query is not a count: {v}")),
    };
    Ok((count("messages")?, count("bot_runs")?))
}

fn sum_known(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    })
}

/// Totals are exact sums of the rows; a column no row knows stays unknown.
pub fn totals(rows: &[TenantUsage]) -> Totals {
    Totals {
        tenants: rows.len() as u32,
        pods: rows.iter().map(|r| r.pods).sum(),
        restarts: rows.iter().map(|r| r.restarts).sum(),
        cpu_millicores: sum_known(rows.iter().map(|r| r.cpu_millicores)),
        memory_bytes: sum_known(rows.iter().map(|r| r.memory_bytes)),
        requested_bytes: rows
            .iter()
            .flat_map(|r| &r.volumes)
            .map(|v| v.requested_bytes)
            .sum(),
        used_bytes: sum_known(rows.iter().flat_map(|r| &r.volumes).map(|v| v.used_bytes)),
        messages: sum_known(rows.iter().map(|r| r.messages)),
        bot_runs: sum_known(rows.iter().map(|r| r.bot_runs)),
    }
}

fn print_table(rows: &[TenantUsage], total: &Totals, metrics: bool, since: &str) {
    let opt = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or_else(|| "n/a".to_owned(), f);
    let cpu = |m: u64| format!("{m}m");
    let bytes = |b: u64| format_bytes(u128::from(b));
    let volume = |r: &TenantUsage, purpose: &str| {
        r.volumes
            .iter()
            .find(|v| v.purpose.as_deref() == Some(purpose))
            .map_or_else(
                || "-".to_owned(),
                |v| {
                    format!(
                        "{}/{}",
                        v.used_bytes.map_or_else(|| "?".to_owned(), bytes),
                        bytes(v.requested_bytes)
                    )
                },
            )
    };
    let mut cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.pods.to_string(),
                r.restarts.to_string(),
                opt(r.cpu_millicores, &cpu),
                opt(r.memory_bytes, &bytes),
                volume(r, "sqlite-database"),
                volume(r, "whatsapp-auth-session"),
                opt(r.messages, &|n| n.to_string()),
                opt(r.bot_runs, &|n| n.to_string()),
            ]
        })
        .collect();
    cells.push(vec![
        format!("TOTAL ({})", total.tenants),
        total.pods.to_string(),
        total.restarts.to_string(),
        opt(total.cpu_millicores, &cpu),
        opt(total.memory_bytes, &bytes),
        format!(
            "{}/{}",
            total.used_bytes.map_or_else(|| "?".to_owned(), bytes),
            bytes(total.requested_bytes)
        ),
        String::new(),
        opt(total.messages, &|n| n.to_string()),
        opt(total.bot_runs, &|n| n.to_string()),
    ]);
    print!(
        "{}",
        table(
            &[
                "TENANT",
                "PODS",
                "RESTARTS",
                "CPU",
                "MEMORY",
                "DATABASE USED/REQ",
                "WHATSAPP USED/REQ",
                "MESSAGES",
                "BOT RUNS"
            ],
            &cells
        )
    );
    println!("Messages and bot runs since {since}. The TOTAL storage column covers both volumes.");
    if !metrics {
        println!(
            "CPU and memory: n/a, the cluster serves no metrics API (metrics-server is not installed)."
        );
    }
    for r in rows {
        if let Some(note) = &r.note {
            println!("{}: {note}", r.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_sqlite_json() {
        assert_eq!(parse_counts(b""), Ok((0, 0)));
        assert_eq!(
            parse_counts(b"[{\"messages\":12,\"bot_runs\":3}]\n"),
            Ok((12, 3))
        );
        assert_eq!(
            parse_counts(b"[{\"messages\":null,\"bot_runs\":\"4\"}]"),
            Ok((0, 4))
        );
        assert!(parse_counts(b"12|3").is_err());
        assert!(parse_counts(b"[{\"messages\":\"many\"}]").is_err());
    }

    #[test]
    fn totals_sum_known_values() {
        assert_eq!(sum_known([None, None].into_iter()), None);
        assert_eq!(sum_known([Some(2), None, Some(3)].into_iter()), Some(5));
    }
}
