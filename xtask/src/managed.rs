//! Who owns which field of a live object, from its `metadata.managedFields`
//! (server-side apply's record, `fieldsV1`): enough to say which fields the
//! tenant's config sets that another field manager owns with another value
//! (a hand edit, `kubectl scale`), naming the field as the API server does
//! (`.spec.template.spec.containers[name="bot"].image`) and the manager.

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

/// One step of a `fieldsV1` path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    /// An associative list's element by its key fields.
    Key(Map<String, Value>),
    /// A set list's element by value.
    Value(Value),
}

/// The fields of `desired` owned by a manager other than `manager`'s own
/// apply, where `live` has another value than `desired`.
pub fn foreign_fields(desired: &Value, live: &Value, manager: &str) -> Vec<Foreign> {
    let mut out = Vec::new();
    for entry in live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = entry["manager"].as_str().unwrap_or_default();
        let operation = entry["operation"].as_str().unwrap_or_default();
        if name == manager && operation == "Apply" {
            continue;
        }
        let mut who = format!("{name:?}");
        if let Some(sub) = entry["subresource"].as_str() {
            who.push_str(&format!(" with subresource {sub:?}"));
        }
        let mut paths = Vec::new();
        leaves(&entry["fieldsV1"], &mut Vec::new(), &mut paths);
        for path in paths {
            let Some(want) = value_at(desired, &path) else {
                continue;
            };
            if value_at(live, &path) != Some(want) {
                out.push(Foreign {
                    field: path_string(&path),
                    manager: who.clone(),
                });
            }
        }
    }
    out
}

/// Every owned leaf of a `fieldsV1` tree (elements' own `.` entries are
/// not values, so they are left out).
fn leaves(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let Some(map) = v.as_object() else { return };
    if map.is_empty() {
        if !path.is_empty() {
            out.push(path.clone());
        }
        return;
    }
    for (k, child) in map {
        let step = if let Some(f) = k.strip_prefix("f:") {
            Step::Field(f.to_owned())
        } else if let Some(key) = k.strip_prefix("k:") {
            match serde_json::from_str(key) {
                Ok(m) => Step::Key(m),
                Err(_) => continue,
            }
        } else if let Some(val) = k.strip_prefix("v:") {
            match serde_json::from_str(val) {
                Ok(v) => Step::Value(v),
                Err(_) => continue,
            }
        } else {
            continue; // "." : the element itself
        };
        path.push(step);
        leaves(child, path, out);
        path.pop();
    }
}

fn value_at<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut v = object;
    for step in path {
        v = match step {
            Step::Field(k) => v.get(k)?,
            Step::Key(key) => v
                .as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, want)| item.get(k) == Some(want)))?,
            Step::Value(want) => v.as_array()?.iter().find(|item| *item == want)?,
        };
    }
    Some(v)
}

fn path_string(path: &[Step]) -> String {
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
}
