//! Reading what tenants use from the cluster's own figures: the metrics API
//! (CPU and memory in use), the kubelets' stats summaries (bytes used on
//! each volume), and each ResourceQuota's `status` (what the API server
//! counts against the tier's quota). Shared by `admin usage` and `admin show`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::kubectl::Kubectl;
use crate::object::str_at;
use crate::platform::{QuantityKind, usage_quantity};

/// CPU (millicores) and memory (bytes) in use by a namespace's pods, from a
/// PodMetricsList.
pub fn pod_metrics(metrics: &Value, namespace: &str) -> (Option<u64>, Option<u64>) {
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

/// Bytes used on each mounted volume claim, by (namespace, claim), from the
/// stats summary of each node that runs one of `pods`: one call per node.
/// The kubelet reports only volumes some running pod mounts.
pub fn volume_use(
    kubectl: &Kubectl,
    pods: &[&Value],
) -> anyhow::Result<BTreeMap<(String, String), u64>> {
    let mut nodes: Vec<&str> = pods
        .iter()
        .filter_map(|p| str_at(p, "/spec/nodeName"))
        .collect();
    nodes.sort();
    nodes.dedup();
    let mut used = BTreeMap::new();
    for node in nodes {
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
    Ok(used)
}

/// One resource of a ResourceQuota: its limit, what the API server counts
/// as used, and the share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaUse {
    /// As the quota names it: `requests.cpu`, `pods`, `services.nodeports`.
    pub resource: String,
    pub hard: String,
    /// Null until the API server's quota controller has counted it.
    pub used: Option<String>,
    /// used / hard × 100, one decimal; null when either is unknown, or the
    /// limit is 0 (nothing allowed: any use is over).
    pub percent: Option<f64>,
}

/// Every limit of a ResourceQuota with its use, from `status.used`.
pub fn quota_use(quota: &Value) -> Vec<QuotaUse> {
    let hard = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    hard.iter()
        .map(|(resource, limit)| {
            let hard = limit.as_str().unwrap_or_default().to_owned();
            let used = quota
                .pointer("/status/used")
                .and_then(|u| u.get(resource))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let amount = |q: &str| {
                let kind = if resource.ends_with("cpu") {
                    QuantityKind::Cpu
                } else {
                    QuantityKind::Bytes
                };
                // Thousandths of the unit, whatever the kind.
                crate::platform::parse_quantity(q, kind).ok()
            };
            let percent = match (used.as_deref().and_then(amount), amount(&hard)) {
                (Some(u), Some(h)) if h > 0 => Some(percent(u, h)),
                _ => None,
            };
            QuotaUse {
                resource: resource.clone(),
                hard,
                used,
                percent,
            }
        })
        .collect()
}

/// `part / whole` as a percentage with one decimal.
pub fn percent(part: u128, whole: u128) -> f64 {
    share(part as f64, whole as f64)
}

/// `part / whole` as a percentage with one decimal, as every output shows
/// it (so that what is shown is what thresholds compare).
pub fn share(part: f64, whole: f64) -> f64 {
    (part * 1000.0 / whole).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quota_use_reads_the_servers_count() {
        let quota = json!({
            "spec": {"hard": {"requests.cpu": "1", "requests.memory": "512Mi", "pods": "3", "services.nodeports": "0"}},
            "status": {"used": {"requests.cpu": "100m", "requests.memory": "128Mi", "pods": "1", "services.nodeports": "0"}}
        });
        let uses = quota_use(&quota);
        let get = |r: &str| uses.iter().find(|u| u.resource == r).unwrap().clone();
        assert_eq!(get("requests.cpu").percent, Some(10.0));
        assert_eq!(get("requests.memory").percent, Some(25.0));
        assert_eq!(get("pods").percent, Some(33.3));
        // A limit of 0 has no share to show.
        assert_eq!(get("services.nodeports").percent, None);
        // Not yet counted by the controller: unknown, not 0.
        let fresh = json!({"spec": {"hard": {"pods": "3"}}});
        assert_eq!(quota_use(&fresh)[0].used, None);
        assert_eq!(quota_use(&fresh)[0].percent, None);
    }
}
