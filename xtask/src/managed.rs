//! Who owns which field of a live object, from its `metadata.managedFields`
//! (server-side apply's record, `fieldsV1`), decoded as structured-merge-diff
//! writes it: every manager's set of field paths, and which fields the
//! tenant's config sets that another field manager owns with another value
//! (a hand edit, `kubectl scale`), named as the API server names them
//! (`.spec.template.spec.containers[name="bot"].image`) with the manager.

use serde_json::{Map, Value};

/// A field the config sets that another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// `.data.RATE_LIMIT_MESSAGES_PER_DAY`.
    pub field: String,
    /// `"kubectl-edit"`, or `"kubectl" with subresource "scale"`.
    pub manager: String,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is set by {}", self.field, self.manager)
    }
}

/// One step of a field path, as `fieldsV1` writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `f:name`: a field of a struct, or a key of a map.
    Field(String),
    /// `k:{"name":"bot"}`: an element of an associative list, by the
    /// values of its key fields.
    Key(Map<String, Value>),
    /// `v:"ALL"`: an element of a set list, by its whole value.
    Value(Value),
    /// `i:0`: an element of a list, by its position.
    Index(usize),
}

pub type FieldPath = Vec<Step>;

/// One path of a manager's set.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    pub path: FieldPath,
    /// Whether the path is a leaf of the set (`{}` in `fieldsV1`): the
    /// manager owns its value. Otherwise (`.` beside fields below it) it
    /// owns a map or list element as such, and its fields one by one.
    pub leaf: bool,
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
pub struct Owner {
    pub manager: String,
    /// `Apply` (server-side apply) or `Update` (any other write).
    pub operation: String,
    /// `scale`, `status`: a write through a subresource.
    pub subresource: Option<String>,
    pub fields: Vec<Owned>,
}

impl Owner {
    /// Whether this is `manager`'s own server-side apply of the object
    /// itself: what an apply by `manager` replaces.
    pub fn is_apply_of(&self, manager: &str) -> bool {
        self.manager == manager && self.operation == "Apply" && self.subresource.is_none()
    }

    /// The manager as the API server names it: `"kubectl-edit"`, or
    /// `"kubectl" with subresource "scale"`.
    pub fn describe(&self) -> String {
        let mut who = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            who.push_str(&format!(" with subresource {sub:?}"));
        }
        who
    }
}

/// Every entry of the object's `metadata.managedFields`.
pub fn owners(object: &Value) -> Vec<Owner> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|entry| Owner {
            manager: entry["manager"].as_str().unwrap_or_default().to_owned(),
            operation: entry["operation"].as_str().unwrap_or_default().to_owned(),
            subresource: entry["subresource"].as_str().map(str::to_owned),
            fields: decode(&entry["fieldsV1"]),
        })
        .collect()
}

/// The set of paths a `fieldsV1` value holds, as structured-merge-diff
/// reads it (`fieldpath.Set.FromJSON`): each key is a path element, `f:`
/// a field or map key, `k:` a list element by its key fields (a JSON
/// object), `v:` a set element by its JSON value, `i:` a list element by
/// position; a node that is empty, or that holds `.`, is itself in the
/// set. Keys of other kinds are skipped, as the API server skips them; a
/// key whose JSON cannot be read is skipped with everything below it.
pub fn decode(fields_v1: &Value) -> Vec<Owned> {
    fn walk(node: &Map<String, Value>, path: &mut FieldPath, out: &mut Vec<Owned>) {
        if !path.is_empty() && (node.is_empty() || node.contains_key(".")) {
            out.push(Owned {
                path: path.clone(),
                leaf: node.is_empty(),
            });
        }
        for (key, child) in node {
            let Some(step) = step(key) else { continue };
            let Some(child) = child.as_object() else {
                continue;
            };
            path.push(step);
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    if let Some(root) = fields_v1.as_object() {
        walk(root, &mut Vec::new(), &mut out);
    }
    out
}

/// One `fieldsV1` key as a path element; None for `.` and for keys this
/// reader cannot take apart.
fn step(key: &str) -> Option<Step> {
    let (kind, rest) = key.split_at_checked(2)?;
    match kind {
        "f:" => Some(Step::Field(rest.to_owned())),
        "k:" => serde_json::from_str(rest).ok().map(Step::Key),
        "v:" => serde_json::from_str(rest).ok().map(Step::Value),
        "i:" => rest.parse().ok().map(Step::Index),
        _ => None,
    }
}

/// The fields of `desired` owned by a manager other than `manager`'s own
/// apply, where `live` has another value than `desired`.
pub fn foreign_fields(desired: &Value, live: &Value, manager: &str) -> Vec<Foreign> {
    let mut out = Vec::new();
    for owner in owners(live) {
        if owner.manager == manager && owner.operation == "Apply" {
            continue;
        }
        // Values only: a list element or map owned as such is not one.
        for owned in owner.fields.iter().filter(|o| o.leaf) {
            let Some(want) = value_at(desired, &owned.path) else {
                continue;
            };
            if value_at(live, &owned.path) != Some(want) {
                out.push(Foreign {
                    field: path_string(&owned.path),
                    manager: owner.describe(),
                });
            }
        }
    }
    out
}

/// The value at `path` in `object`, if it has one.
pub fn value_at<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut v = object;
    for step in path {
        v = match step {
            Step::Field(k) => v.get(k)?,
            Step::Key(key) => v
                .as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, want)| item.get(k) == Some(want)))?,
            Step::Value(want) => v.as_array()?.iter().find(|item| *item == want)?,
            Step::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

/// A path as the API server prints it in conflicts:
/// `.spec.template.spec.containers[name="bot"].image`.
pub fn path_string(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Key(key) => {
                let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Step::Value(v) => out.push_str(&format!("[={v}]")),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_set_by_others_with_other_values() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "xtask-provision", "operation": "Apply",
                 "fieldsV1": {"f:data": {"f:A": {}, "f:B": {}}}},
                {"manager": "kubectl-edit", "operation": "Update",
                 "fieldsV1": {"f:data": {"f:A": {}, "f:EXTRA": {}}}},
                {"manager": "kubectl", "operation": "Update", "subresource": "scale",
                 "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                     "k:{\"name\":\"bot\"}": {".": {}, "f:image": {}}}}}}}},
            ]},
            "data": {"A": "edited", "B": "2", "EXTRA": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": "bot", "image": "old"}]}}},
        });
        let desired = json!({
            "data": {"A": "1", "B": "2"},
            "spec": {"template": {"spec": {"containers": [{"name": "bot", "image": "new"}]}}},
        });
        let found: Vec<String> = foreign_fields(&desired, &live, "xtask-provision")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                ".data.A is set by \"kubectl-edit\"",
                ".spec.template.spec.containers[name=\"bot\"].image is set by \"kubectl\" with subresource \"scale\"",
            ]
        );
    }

    /// `fieldsV1` as a real API server writes it: `.` beside the fields of
    /// a map or element the manager owns as such, `k:` keys with every key
    /// field, `v:` set values, `i:` positions; unknown kinds skipped.
    #[test]
    fn fields_v1_is_decoded_as_structured_merge_diff_reads_it() {
        let v1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {"v:\"x\"": {}}},
            "f:spec": {
                "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                "f:args": {"i:1": {}},
                "f:replicas": {},
                "x:future": {"f:y": {}},
                "k:{not json": {"f:z": {}}
            }
        });
        let mut found: Vec<(String, bool)> = decode(&v1)
            .iter()
            .map(|o| (path_string(&o.path), o.leaf))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                (".metadata.finalizers[=\"x\"]".to_owned(), true),
                (".metadata.labels".to_owned(), false),
                (".metadata.labels.app".to_owned(), true),
                (".spec.args[1]".to_owned(), true),
                (".spec.ports[port=80,protocol=\"TCP\"]".to_owned(), false),
                (
                    ".spec.ports[port=80,protocol=\"TCP\"].port".to_owned(),
                    true
                ),
                (".spec.replicas".to_owned(), true),
            ]
        );
        let object =
            json!({"spec": {"args": ["a", "b"], "ports": [{"port": 80, "protocol": "TCP"}]}});
        let args = decode(&v1)
            .into_iter()
            .find(|o| matches!(o.path.last(), Some(Step::Index(1))))
            .unwrap();
        assert_eq!(value_at(&object, &args.path), Some(&json!("b")));
    }
}
