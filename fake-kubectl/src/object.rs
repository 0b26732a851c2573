//! Small helpers over stored objects: identity, labels, stable hashes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The identity of an object: kind, namespace (empty when cluster-scoped), name.
pub(crate) fn key(o: &Value) -> (String, String, String) {
    let (ns, name) = namespace_and_name(o);
    (o["kind"].as_str().unwrap_or_default().to_owned(), ns, name)
}

/// FNV-1a: stable hashes for pod names, node placement, addresses and metrics.
pub(crate) fn fnv(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An object's namespace (empty when cluster-scoped) and name.
pub(crate) fn namespace_and_name(o: &Value) -> (String, String) {
    let field = |k: &str| o["metadata"][k].as_str().unwrap_or_default().to_owned();
    (field("namespace"), field("name"))
}

/// Labels of an object as a map.
pub(crate) fn labels(o: &Value) -> BTreeMap<String, String> {
    o["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// An object as `kubectl get -o json` prints it.
pub(crate) fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// kubectl's `-o json` shape for several objects.
pub(crate) fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

/// An object as kubectl prints it by default: without `managedFields`.
pub(crate) fn without_managed_fields(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}
