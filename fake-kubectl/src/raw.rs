//! `kubectl get --raw PATH` for the two API paths the tool reads: the
//! metrics API (metrics-server) and each node's kubelet stats summary.

use std::path::Path;

use serde_json::{Value, json};

use crate::invocation::Failure;
use crate::object::{fnv, labels, namespace_and_name};
use crate::state::State;

pub fn get_raw(state: &State, path: &str) -> Result<String, Failure> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = match segments.as_slice() {
        ["apis", "metrics.k8s.io", "v1beta1", "pods"] => pod_metrics(state, None, query)?,
        [
            "apis",
            "metrics.k8s.io",
            "v1beta1",
            "namespaces",
            ns,
            "pods",
        ] => pod_metrics(state, Some(ns), query)?,
        ["api", "v1", "nodes", node, "proxy", "stats", "summary"] => stats_summary(state, node)?,
        _ => return Err(Failure::not_implemented(format!("`get --raw {path}`"))),
    };
    Ok(format!(
        "{}\n",
        serde_json::to_string(&body).unwrap_or_default()
    ))
}

fn not_found() -> Failure {
    Failure::new(
        1,
        "Error from server (NotFound): the server could not find the requested resource",
    )
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

/// Decodes `labelSelector=` from a query string (only `key` and `key=value`
/// terms, as the tool sends).
fn selector(query: &str) -> Result<Vec<(String, Option<String>)>, Failure> {
    let Some(raw) = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("labelSelector="))
    else {
        return Ok(Vec::new());
    };
    let decoded = raw
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%3D", "=")
        .replace("%3d", "=")
        .replace("%2C", ",")
        .replace("%2c", ",");
    if decoded.contains('%') || decoded.contains('!') {
        return Err(Failure::not_implemented(format!(
            "label selector `{decoded}` in a raw path"
        )));
    }
    Ok(decoded
        .split(',')
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (t.to_owned(), None),
        })
        .collect())
}

fn pod_metrics(state: &State, ns: Option<&str>, query: &str) -> Result<Value, Failure> {
    if !state.data["metrics"].as_bool().unwrap_or(true) {
        return Err(not_found());
    }
    let terms = selector(query)?;
    let now = state.now();
    let items: Vec<Value> = state
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Pod" && running(o))
        .filter(|o| ns.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .filter(|o| {
            let l = labels(o);
            terms.iter().all(|(k, v)| match v {
                Some(v) => l.get(k) == Some(v),
                None => l.contains_key(k),
            })
        })
        .map(|pod| {
            let (ns, name) = namespace_and_name(pod);
            // From the namespace only, so that values survive template changes.
            let h = fnv(&ns);
            let containers: Vec<Value> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"name": c["name"], "usage": {
                        "cpu": format!("{}n", (h % 40 + 2) * 1_000_000),
                        "memory": format!("{}Ki", ((h >> 16) % 80 + 40) * 1024),
                    }})
                })
                .collect();
            json!({"metadata": {"name": name, "namespace": ns, "labels": pod["metadata"]["labels"]},
                   "timestamp": now, "window": "30s", "containers": containers})
        })
        .collect();
    Ok(
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
    )
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn stats_summary(state: &State, node: &str) -> Result<Value, Failure> {
    if !state.nodes().iter().any(|n| n == node) {
        return Err(Failure::new(
            1,
            format!("Error from server (NotFound): nodes \"{node}\" not found"),
        ));
    }
    let pods: Vec<Value> = state
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Pod" && running(o) && o["spec"]["nodeName"] == node)
        .map(|pod| {
            let (ns, name) = namespace_and_name(pod);
            let volumes: Vec<Value> = pod["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let claim = v.pointer("/persistentVolumeClaim/claimName")?.as_str()?;
                    let used = dir_size(&state.volume_dir(&ns, claim));
                    Some(json!({"name": v["name"], "usedBytes": used,
                                "pvcRef": {"name": claim, "namespace": ns}}))
                })
                .collect();
            json!({"podRef": {"name": name, "namespace": ns, "uid": pod["metadata"]["uid"]}, "volume": volumes})
        })
        .collect();
    Ok(json!({"node": {"nodeName": node}, "pods": pods}))
}
