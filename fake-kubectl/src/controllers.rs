//! Just enough of the cluster's controllers for the tool's reads to see what
//! a real cluster would show: Deployments own Pods and report a status,
//! Namespaces are Active, PersistentVolumeClaims are Bound, ResourceQuotas
//! count what they limit (`quota.rs`).

use serde_json::{Value, json};

use crate::object::{fnv, namespace_and_name};
use crate::state::State;

pub const POD_STATES: [&str; 4] = ["Running", "CrashLoopBackOff", "ImagePullBackOff", "Pending"];

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn name_chars(mut n: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

pub fn reconcile(state: &mut State) {
    reconcile_in(state, None);
}

/// What the controllers do after a write to an object in `namespace` (or
/// to the Namespace itself): they act on that namespace alone, as a
/// Deployment's pods, a quota's count and a claim's volume are all the
/// namespace's own. None: every namespace. A write to one object of a
/// stream of many then costs what its namespace holds, not the cluster.
pub fn reconcile_in(state: &mut State, namespace: Option<&str>) {
    // The positions the controllers look at, as they are now.
    let scope = |state: &State| match namespace {
        None => (0..state.objects().len()).collect(),
        Some(ns) => state.positions_in(ns),
    };
    for i in scope(state) {
        let o = &state.objects()[i];
        match o["kind"].as_str() {
            // A deleted namespace stays Terminating until it is gone.
            Some("Namespace") if o.pointer("/metadata/deletionTimestamp").is_none() => {
                state.set_status(i, json!({"phase": "Active"}))
            }
            Some("PersistentVolumeClaim") => {
                if o.pointer("/spec/volumeName").is_none() {
                    bind_volume(state, i);
                }
                let o = &state.objects()[i];
                let size = o
                    .pointer("/spec/resources/requests/storage")
                    .cloned()
                    .unwrap_or(json!("0"));
                let modes = o.pointer("/spec/accessModes").cloned().unwrap_or(json!([]));
                state.set_status(
                    i,
                    json!({"phase": "Bound", "capacity": {"storage": size}, "accessModes": modes}),
                );
            }
            _ => {}
        }
    }
    let deployments: Vec<(String, String)> = scope(state)
        .into_iter()
        .map(|i| &state.objects()[i])
        .filter(|o| o["kind"] == "Deployment")
        .map(namespace_and_name)
        .collect();
    // The pods each Deployment wants now; every other pod a Deployment
    // owned goes (Recreate: an older template's pods, surplus replicas, and
    // the pods of a deleted Deployment), in one pass over the objects.
    let wanted: Vec<Vec<String>> = deployments
        .iter()
        .map(|(ns, name)| wanted_pods(state, ns, name))
        .collect();
    let keep: std::collections::HashSet<String> = deployments
        .iter()
        .zip(&wanted)
        .flat_map(|((ns, _), pods)| pods.iter().map(move |p| format!("{ns}/{p}")))
        .collect();
    let goes = |o: &Value| {
        o["kind"] == "Pod"
            && o.pointer("/metadata/annotations/fake-kubectl~1owner")
                .is_some()
            && !keep.contains(&format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            ))
    };
    let mut going: Vec<usize> = scope(state)
        .into_iter()
        .filter(|&i| goes(&state.objects()[i]))
        .collect();
    going.sort_unstable();
    for i in going.into_iter().rev() {
        state.remove_object(i);
    }
    for ((ns, name), pods) in deployments.iter().zip(&wanted) {
        reconcile_deployment(state, ns, name, pods);
    }
    reconcile_standalone_pods(state, &scope(state));
    crate::quota::reconcile_in(state, &scope(state));
}

/// Provisions a PersistentVolume for a new claim (reclaim policy from the
/// state, `Retain` unless a test says otherwise) and binds them.
fn bind_volume(state: &mut State, i: usize) {
    let claim = state.objects()[i].clone();
    let (ns, name) = namespace_and_name(&claim);
    let pv = format!("pvc-{}", claim["metadata"]["uid"].as_str().unwrap_or(&name));
    let size = claim
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or(json!("0"));
    let policy = state.data["reclaimPolicy"]
        .as_str()
        .unwrap_or("Retain")
        .to_owned();
    state.objects_mut()[i]["spec"]["volumeName"] = json!(pv);
    let rv = state.next_resource_version();
    state.push_object(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv, "resourceVersion": rv, "creationTimestamp": state.now()},
        "spec": {"capacity": {"storage": size}, "persistentVolumeReclaimPolicy": policy,
                 "claimRef": {"namespace": ns, "name": name}},
        "status": {"phase": "Bound"},
    }));
}

/// What happens to a deleted claim's volume: deleted, or kept as Released.
pub fn release_volume(state: &mut State, claim: &Value) {
    let Some(pv) = claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(i) = state.index_of("PersistentVolume", None, &pv) else {
        return;
    };
    if state.objects()[i]["spec"]["persistentVolumeReclaimPolicy"] == "Retain" {
        state.set_status(i, json!({"phase": "Released"}));
    } else {
        let volume = state.objects()[i].clone();
        state.retain_objects(|o| *o != volume);
    }
}

/// The node a pod runs on: a stable spread over the cluster's nodes.
fn node_for(state: &State, ns: &str, pod: &str) -> String {
    let nodes = state.nodes();
    let i = (fnv(&format!("{ns}/{pod}")) % nodes.len().max(1) as u64) as usize;
    nodes.get(i).cloned().unwrap_or_else(|| "node-1".to_owned())
}

/// Pods applied directly (not owned by a Deployment) run at once, in the
/// state a test chose for `namespace/pod-name`.
fn reconcile_standalone_pods(state: &mut State, scope: &[usize]) {
    for &i in scope {
        let o = &state.objects()[i];
        if o["kind"] != "Pod"
            || o.pointer("/metadata/annotations/fake-kubectl~1owner")
                .is_some()
        {
            continue;
        }
        let (ns, name) = namespace_and_name(o);
        let started = o["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pod_state = state.pod_state(&ns, &name);
        let status = pod_status(&pod_state, &started, o);
        if o.pointer("/spec/nodeName").is_none() {
            let node = node_for(state, &ns, &name);
            state.objects_mut()[i]["spec"]["nodeName"] = json!(node);
        }
        state.set_status(i, status);
    }
}

/// The pod template's hash, as the `pod-template-hash` label.
fn template_hash(d: &Value) -> String {
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    name_chars(fnv(&template.to_string()), 10)
}

/// The names of the pods a Deployment should have now.
fn wanted_pods(state: &State, ns: &str, name: &str) -> Vec<String> {
    let Some(d) = state.get("Deployment", Some(ns), name) else {
        return Vec::new();
    };
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let hash = template_hash(d);
    (0..replicas)
        .map(|i| {
            format!(
                "{name}-{hash}-{}",
                name_chars(fnv(&format!("{hash}{i}")), 5)
            )
        })
        .collect()
}

fn reconcile_deployment(state: &mut State, ns: &str, name: &str, wanted: &[String]) {
    let Some(d) = state.get("Deployment", Some(ns), name).cloned() else {
        return;
    };
    let owner = format!("{ns}/{name}");
    let replicas = wanted.len() as u64;
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&d);
    let pod_state = state.pod_state(ns, name);
    let now = state.now();
    let mut ready = 0;
    let mut created = 0;
    // The ReplicaSet's create refused by admission, as its condition says it.
    let mut failure: Option<String> = None;
    for pod_name in wanted {
        let existing = state.index_of("Pod", Some(ns), pod_name);
        // Times come from the pod's creation, so a steady pod's status is steady.
        let started = existing
            .and_then(|i| state.objects()[i]["metadata"]["creationTimestamp"].as_str())
            .map_or_else(|| now.clone(), str::to_owned);
        let status = pod_status(&pod_state, &started, &template);
        match existing {
            Some(i) => {
                created += 1;
                if status["conditions"][0]["status"] == "True" {
                    ready += 1;
                }
                state.set_status(i, status);
            }
            None if failure.is_some() => {}
            None => {
                let mut labels = template
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({}));
                labels["pod-template-hash"] = json!(hash);
                let rv = state.next_resource_version();
                let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
                spec["nodeName"] = json!(node_for(state, ns, pod_name));
                let pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {"fake-kubectl/owner": owner},
                        "uid": format!("00000000-0000-4000-9000-{:0>12}", rv),
                        "resourceVersion": rv,
                        "creationTimestamp": now,
                    },
                    "spec": spec,
                    "status": status,
                });
                // The ReplicaSet's create goes through admission like any:
                // a namespace being deleted, LimitRange, Pod Security, quota.
                let admitted = match state.get("Namespace", None, ns).cloned() {
                    Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(format!(
                        "pods \"{pod_name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
                    )),
                    Some(n) => crate::admission::admit_pod(state, &n, pod).map_err(|e| {
                        e.trim_start_matches("Error from server (Forbidden): ")
                            .to_owned()
                    }),
                    None => Err(format!("namespaces \"{ns}\" not found")),
                };
                match admitted {
                    Ok(pod) => {
                        if pod["status"]["conditions"][0]["status"] == "True" {
                            ready += 1;
                        }
                        created += 1;
                        state.push_object(pod);
                    }
                    Err(why) => failure = Some(why),
                }
            }
        }
    }
    let generation = d
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let available = ready >= replicas;
    let mut conditions = vec![
        json!({"type": "Available", "status": if available { "True" } else { "False" },
               "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}),
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}),
    ];
    if let Some(why) = failure {
        conditions.push(
            json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": why}),
        );
    }
    let status = json!({
        "observedGeneration": generation,
        "replicas": created,
        "updatedReplicas": created,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas - ready.min(replicas),
        "conditions": conditions,
    });
    if let Some(i) = state.index_of("Deployment", Some(ns), name) {
        state.set_status(i, status);
    }
}

fn pod_status(state: &str, now: &str, template: &Value) -> Value {
    let container = template
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or("main");
    let image = template
        .pointer("/spec/containers/0/image")
        .cloned()
        .unwrap_or(json!(""));
    let waiting = |reason: &str, message: &str, restarts: u32| {
        json!([{"name": container, "image": image, "ready": false, "restartCount": restarts,
                "state": {"waiting": {"reason": reason, "message": message}}}])
    };
    let (phase, ready, containers) = match state {
        "CrashLoopBackOff" => {
            let mut c = waiting(
                "CrashLoopBackOff",
                "back-off 5m0s restarting failed container",
                5,
            );
            c[0]["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
            ("Running", false, c)
        }
        "ImagePullBackOff" => (
            "Pending",
            false,
            waiting("ImagePullBackOff", "Back-off pulling image", 0),
        ),
        "Pending" => ("Pending", false, json!([])),
        _ => (
            "Running",
            true,
            json!([{"name": container, "image": image, "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now}}}]),
        ),
    };
    // A readiness gate nobody sets keeps the pod out of Ready (and out of
    // every Service's endpoints), whatever its containers do.
    let gated = template
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    let mut status = json!({
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": if ready && !gated { "True" } else { "False" }},
            {"type": "ContainersReady", "status": if ready { "True" } else { "False" }},
        ],
        "containerStatuses": containers,
        "startTime": now,
    });
    if state == "Pending" {
        status["conditions"] = json!([
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 3 Insufficient memory."},
        ]);
    }
    status
}
