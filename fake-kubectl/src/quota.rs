//! The quota controller: every ResourceQuota's `status.hard` and
//! `status.used`, as the API server keeps them (admission adds each new
//! pod's usage at once; the controller recounts everything). `used` has an
//! entry for each resource in `hard`, in canonical quantity form, e.g.
//! `requests.cpu: 100m`, `pods: "1"`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::admission::{format_quantity, milli, pod_usage};
use crate::state::State;

/// Recounts the quotas among the objects at the positions `scope` (one
/// namespace's, after a write there; or all), counting those objects.
pub fn reconcile_in(state: &mut State, scope: &[usize]) {
    // One pass to group what quotas count, by namespace.
    let mut counted: HashMap<String, Vec<usize>> = HashMap::new();
    let mut quotas = Vec::new();
    for &i in scope {
        let o = &state.objects()[i];
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        match o["kind"].as_str() {
            Some("ResourceQuota") => quotas.push(i),
            Some("Pod" | "PersistentVolumeClaim" | "Service") => {
                counted.entry(ns.to_owned()).or_default().push(i)
            }
            _ => {}
        }
    }
    for i in quotas {
        let quota = &state.objects()[i];
        let ns = quota["metadata"]["namespace"].as_str().unwrap_or_default();
        let objects: Vec<&Value> = counted
            .get(ns)
            .into_iter()
            .flatten()
            .map(|&j| &state.objects()[j])
            .collect();
        let hard = quota["spec"]["hard"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut used = Map::new();
        for resource in hard.keys() {
            used.insert(resource.clone(), json!(usage(resource, &objects)));
        }
        let status = json!({"hard": hard, "used": used});
        state.set_status(i, status);
    }
}

/// What the namespace's objects use of one quota'd resource.
fn usage(resource: &str, objects: &[&Value]) -> String {
    let of = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
    // Pods in a terminal phase no longer count.
    let pods = || {
        of("Pod").filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    };
    let services_of = |kind: &'static str| {
        of("Service").filter(move |s| s["spec"]["type"].as_str() == Some(kind))
    };
    let count = |n: usize| n.to_string();
    match resource {
        "pods" => count(pods().count()),
        "persistentvolumeclaims" => count(of("PersistentVolumeClaim").count()),
        "services" => count(of("Service").count()),
        "services.loadbalancers" => count(services_of("LoadBalancer").count()),
        "services.nodeports" => count(
            services_of("NodePort")
                .chain(services_of("LoadBalancer"))
                .map(|s| s["spec"]["ports"].as_array().map_or(0, Vec::len))
                .sum(),
        ),
        "requests.storage" => format_quantity(
            resource,
            of("PersistentVolumeClaim")
                .filter_map(|c| c.pointer("/spec/resources/requests/storage")?.as_str())
                .filter_map(milli)
                .sum(),
        ),
        "cpu" | "memory" | "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory" => {
            format_quantity(resource, pods().map(|p| pod_usage(p, resource)).sum())
        }
        // Object counts (`count/deployments.apps`) and the rest: not kept by the fake.
        _ => "0".to_owned(),
    }
}
