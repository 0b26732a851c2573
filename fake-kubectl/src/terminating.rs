//! Namespace deletion as the API server does it: asynchronously. A deleted
//! namespace gets a `deletionTimestamp` and phase `Terminating`, keeps its
//! objects (which stay readable and changeable, but nothing new may be
//! created in it), and disappears with all of them only after its
//! finalizer has run: here, after a number of further kubectl calls
//! ([`State::set_namespace_termination_calls`]). The countdown lives in
//! its own file under its own lock, so that calls which only read tick it too.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::controllers;
use crate::state::State;

fn with_countdowns<T>(
    dir: &Path,
    change: impl FnOnce(&mut Map<String, Value>) -> T,
) -> anyhow::Result<T> {
    crate::sidecar::update(dir, "terminating", change)
}

/// Marks `ns` (already read into `state`) as Terminating for `calls` more calls.
pub fn begin(state: &mut State, ns: &str) -> anyhow::Result<()> {
    let calls = state.namespace_termination_calls();
    let now = state.now();
    if let Some(i) = state.index_of("Namespace", None, ns) {
        let rv = state.next_resource_version();
        let o = &mut state.objects_mut()[i];
        if o.pointer("/metadata/deletionTimestamp").is_none() {
            o["metadata"]["deletionTimestamp"] = json!(now);
        }
        o["spec"]["finalizers"] = json!(["kubernetes"]);
        o["status"] = json!({"phase": "Terminating", "conditions": [
            {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
             "message": "Some resources are remaining"},
        ]});
        o["metadata"]["resourceVersion"] = json!(rv);
    }
    let dir = state.dir().to_path_buf();
    with_countdowns(&dir, |m| {
        m.entry(ns.to_owned()).or_insert(json!(calls));
    })
}

/// Counts one call down; returns the namespaces whose finalizer is done.
pub fn tick(dir: &Path) -> anyhow::Result<Vec<String>> {
    if !dir.join("terminating.json").exists() {
        return Ok(Vec::new());
    }
    with_countdowns(dir, |m| {
        let mut due = Vec::new();
        for (ns, left) in m.iter_mut() {
            match left.as_u64().unwrap_or(0) {
                0 => due.push(ns.clone()),
                n => *left = json!(n - 1),
            }
        }
        for ns in &due {
            m.remove(ns);
        }
        due
    })
}

/// Whether `ns` is still waiting for its finalizer.
pub fn pending(dir: &Path, ns: &str) -> bool {
    with_countdowns(dir, |m| m.contains_key(ns)).unwrap_or(false)
}

/// The finalizer is done: the namespace and everything in it go; each
/// claim's volume follows its reclaim policy.
pub fn finalize(state: &mut State, ns: &str) {
    let claims: Vec<Value> = state
        .objects()
        .iter()
        .filter(|o| o["kind"] == "PersistentVolumeClaim" && o["metadata"]["namespace"] == ns)
        .cloned()
        .collect();
    state.retain_objects(|o| {
        !(o["metadata"]["namespace"] == ns
            || (o["kind"] == "Namespace" && o["metadata"]["name"] == ns))
    });
    for claim in claims {
        controllers::release_volume(state, &claim);
    }
    controllers::reconcile(state);
}
