//! Server-side apply's field ownership, as the API server keeps it in
//! `metadata.managedFields` (structured-merge-diff):
//!
//! - every field of an object is owned by the managers that set it: an
//!   `Apply` manager owns exactly what its last applied configuration set;
//!   an `Update` manager (`kubectl edit`, `patch`, `scale`, `annotate`,
//!   `rollout restart`) takes over every field its write changed;
//! - an apply that sets a field another manager owns to a different value
//!   is refused with a conflict, unless forced, which moves the field to
//!   the applier; equal values are owned by both;
//! - an apply removes what the applier owned before and no longer sets,
//!   unless another manager owns it too; fields of other managers survive.
//!
//! Lists are atomic (owned whole) unless the API marks them associative,
//! keyed by some of their fields (containers by `name`, ports by
//! `containerPort` and `protocol`, ...) or sets (`finalizers`); the few
//! lists of the kinds the tool applies are listed in [`list_type`].

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Field(String),
    /// An element of an associative list, by its key fields (compact JSON,
    /// keys sorted: `{"name":"bot"}`).
    Key(String),
    /// An element of a set list, by its value (compact JSON).
    Value(String),
}

pub type FieldPath = Vec<Step>;
pub type FieldSet = BTreeSet<FieldPath>;

enum ListType {
    Atomic,
    Map(&'static [&'static str]),
    Set,
}

/// How the API types the list at `names` (field names from the root) of `kind`.
fn list_type(kind: &str, names: &[String]) -> ListType {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if names == ["metadata", "finalizers"] {
        return ListType::Set;
    }
    if names == ["metadata", "ownerReferences"] {
        return ListType::Map(&["uid"]);
    }
    if kind == "Service" && names == ["spec", "ports"] {
        return ListType::Map(&["port", "protocol"]);
    }
    let pod_spec: &[&str] = match kind {
        "Pod" => &["spec"],
        "Deployment" => &["spec", "template", "spec"],
        _ => return ListType::Atomic,
    };
    let Some(rest) = names.strip_prefix(pod_spec) else {
        return ListType::Atomic;
    };
    match rest {
        ["containers"]
        | ["initContainers"]
        | ["ephemeralContainers"]
        | ["volumes"]
        | ["imagePullSecrets"] => ListType::Map(&["name"]),
        [c, "ports"] if c.ends_with("ontainers") => ListType::Map(&["containerPort", "protocol"]),
        [c, "env"] if c.ends_with("ontainers") => ListType::Map(&["name"]),
        [c, "volumeMounts"] if c.ends_with("ontainers") => ListType::Map(&["mountPath"]),
        _ => ListType::Atomic,
    }
}

/// Top-level and metadata fields nobody owns: identity and what the server writes.
fn ignored(path: &[String]) -> bool {
    matches!(
        path.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["apiVersion"]
            | ["kind"]
            | ["status"]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields"
                    | "selfLink"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
            ]
    )
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn key_of(item: &Value, keys: &[&str]) -> String {
    let map: Map<String, Value> = keys
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), item.get(*k)?.clone())))
        .collect();
    // serde_json keeps insertion order (preserve_order); sort for a canonical key.
    let mut sorted: Vec<(String, Value)> = map.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    compact(&Value::Object(sorted.into_iter().collect()))
}

/// Every field `object` sets: leaves, atomic lists and empty maps, and
/// the elements of associative and set lists.
pub fn field_set(kind: &str, object: &Value) -> FieldSet {
    fn walk(
        kind: &str,
        v: &Value,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        out: &mut FieldSet,
    ) {
        if ignored(names) {
            return;
        }
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    names.push(k.clone());
                    path.push(Step::Field(k.clone()));
                    walk(kind, child, names, path, out);
                    path.pop();
                    names.pop();
                }
            }
            Value::Array(items) => match list_type(kind, names) {
                ListType::Map(keys) => {
                    for item in items {
                        path.push(Step::Key(key_of(item, keys)));
                        out.insert(path.clone());
                        if let Value::Object(fields) = item {
                            for (k, child) in fields {
                                names.push(k.clone());
                                path.push(Step::Field(k.clone()));
                                walk(kind, child, names, path, out);
                                path.pop();
                                names.pop();
                            }
                        }
                        path.pop();
                    }
                }
                ListType::Set => {
                    for item in items {
                        path.push(Step::Value(compact(item)));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                ListType::Atomic => {
                    out.insert(path.clone());
                }
            },
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(kind, object, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

/// The value at `path`, if the object has it.
pub fn value_at<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut v = object;
    for step in path {
        v = match step {
            Step::Field(k) => v.get(k)?,
            Step::Key(key) => {
                let key: Map<String, Value> = serde_json::from_str(key).ok()?;
                v.as_array()?
                    .iter()
                    .find(|item| key.iter().all(|(k, want)| item.get(k) == Some(want)))?
            }
            Step::Value(json) => {
                let want: Value = serde_json::from_str(json).ok()?;
                v.as_array()?.iter().find(|item| **item == want)?
            }
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
                let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Step::Value(v) => out.push_str(&format!("[={v}]")),
        }
    }
    out
}

/// A set as `fieldsV1`: `{"f:spec":{"f:replicas":{}}}`, an element's own
/// entry as `".": {}`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for step in path {
            let key = match step {
                Step::Field(k) => format!("f:{k}"),
                Step::Key(k) => format!("k:{k}"),
                Step::Value(v) => format!("v:{v}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are maps");
        }
        if matches!(path.last(), Some(Step::Key(_))) {
            node.insert(".".to_owned(), json!({}));
        }
    }
    Value::Object(root)
}

/// The set a `fieldsV1` value describes.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = v.as_object() else { return };
        if map.is_empty() && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, child) in map {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            let step = if let Some(f) = k.strip_prefix("f:") {
                Step::Field(f.to_owned())
            } else if let Some(key) = k.strip_prefix("k:") {
                Step::Key(key.to_owned())
            } else if let Some(val) = k.strip_prefix("v:") {
                Step::Value(val.to_owned())
            } else {
                continue;
            };
            path.push(step);
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How a conflict names this manager, as the API server prints it.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

pub fn entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_owned(),
            operation: e["operation"].as_str().unwrap_or_default().to_owned(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: e["time"].as_str().unwrap_or_default().to_owned(),
            subresource: e["subresource"].as_str().map(str::to_owned),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

pub fn set_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".to_owned(), Value::Array(list));
    }
}

/// A field another manager owns with another value than the apply's.
#[derive(Debug)]
pub struct Conflict {
    pub manager: String,
    pub path: FieldPath,
}

/// The API server's 409 message for `conflicts`, as kubectl shows it.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager,
            path_string(&one.path)
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", path_string(&c.path)));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// A server-side apply of `applied` by `manager` onto `live`: the merged
/// object with its managed fields, or the conflicts (unless `force`).
pub fn apply(
    kind: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    time: &str,
) -> Result<Value, Vec<Conflict>> {
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let new = field_set(kind, applied);
    let Some(live) = live else {
        let mut created = applied.clone();
        set_entries(
            &mut created,
            &[Entry {
                manager: manager.to_owned(),
                operation: "Apply".to_owned(),
                api_version,
                time: time.to_owned(),
                subresource: None,
                fields: new,
            }],
        );
        return Ok(created);
    };
    let mut entries = entries(live);
    let mine = |e: &Entry| e.same_owner(manager, "Apply", None);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for path in e.fields.intersection(&new) {
            let element = matches!(path.last(), Some(Step::Key(_) | Step::Value(_)));
            if !element && value_at(live, path) != value_at(applied, path) {
                conflicts.push(Conflict {
                    manager: e.describe(),
                    path: path.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        for e in entries.iter_mut().filter(|e| !mine(e)) {
            if e.describe() == c.manager {
                e.fields.remove(&c.path);
            }
        }
    }
    let others: FieldSet = entries
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let before: FieldSet = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut merged = live.clone();
    // What only this manager set, and no longer sets, goes; deepest first.
    let mut gone: Vec<&FieldPath> = before
        .iter()
        .filter(|p| !new.contains(*p) && !others.contains(*p))
        .filter(|p| !others.iter().any(|o| o.starts_with(p)))
        .collect();
    gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in gone {
        remove_at(&mut merged, path);
    }
    merge_into(kind, &mut merged, applied, &mut Vec::new());
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.fields = new;
            e.time = time.to_owned();
            e.api_version = api_version;
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Apply".to_owned(),
            api_version,
            time: time.to_owned(),
            subresource: None,
            fields: new,
        }),
    }
    set_entries(&mut merged, &entries);
    Ok(merged)
}

/// After a write by `manager` (an `Update`, optionally through a
/// subresource such as `scale`): it owns every field the write changed,
/// which no other manager owns any more; removed fields belong to nobody.
pub fn record_update(
    kind: &str,
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    time: &str,
) {
    let api_version = after["apiVersion"].as_str().unwrap_or_default().to_owned();
    let old = before.map(|b| field_set(kind, b)).unwrap_or_default();
    let new = field_set(kind, after);
    let changed: FieldSet = new
        .iter()
        .filter(|p| before.and_then(|b| value_at(b, p)) != value_at(after, p))
        .cloned()
        .collect();
    let removed: FieldSet = old.difference(&new).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    let mut entries = before.map(entries).unwrap_or_default();
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Update", subresource))
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = time.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Update".to_owned(),
            api_version,
            time: time.to_owned(),
            subresource: subresource.map(str::to_owned),
            fields: changed,
        }),
    }
    set_entries(after, &entries);
}

fn remove_at(object: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut v = object;
    for step in parent {
        let next = match step {
            Step::Field(k) => v.get_mut(k),
            Step::Key(_) | Step::Value(_) => {
                let found = value_at(v, std::slice::from_ref(step)).cloned();
                v.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|i| Some(&**i) == found.as_ref()))
            }
        };
        match next {
            Some(n) => v = n,
            None => return,
        }
    }
    match last {
        Step::Field(k) => {
            if let Some(m) = v.as_object_mut() {
                m.remove(k);
            }
        }
        Step::Key(_) | Step::Value(_) => {
            let found = value_at(v, std::slice::from_ref(last)).cloned();
            if let Some(a) = v.as_array_mut() {
                a.retain(|i| Some(i) != found.as_ref());
            }
        }
    }
}

/// Lays `applied` over `target`: maps merge, associative lists merge by
/// key, set lists unite, everything else is replaced.
fn merge_into(kind: &str, target: &mut Value, applied: &Value, names: &mut Vec<String>) {
    match (target.as_object_mut(), applied.as_object()) {
        (Some(t), Some(a)) if !a.is_empty() => {
            for (k, v) in a {
                names.push(k.clone());
                match t.get_mut(k) {
                    Some(existing) => merge_into(kind, existing, v, names),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
                names.pop();
            }
            return;
        }
        _ => {}
    }
    if let (Some(t), Some(a)) = (target.as_array_mut(), applied.as_array()) {
        match list_type(kind, names) {
            ListType::Map(keys) => {
                for item in a {
                    let key = key_of(item, keys);
                    match t.iter_mut().find(|i| key_of(i, keys) == key) {
                        Some(existing) => merge_into(kind, existing, item, names),
                        None => t.push(item.clone()),
                    }
                }
                return;
            }
            ListType::Set => {
                for item in a {
                    if !t.contains(item) {
                        t.push(item.clone());
                    }
                }
                return;
            }
            ListType::Atomic => {}
        }
    }
    *target = applied.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: Option<u64>, image: &str) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bot", "namespace": "t", "labels": {"app": "bot"}},
            "spec": {"template": {"spec": {"containers": [{"name": "bot", "image": image,
                "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn fields_v1_round_trips_with_element_markers() {
        let set = field_set("Deployment", &deployment(Some(1), "a"));
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"bot\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&v1), set);
        let image: FieldPath = vec![
            Step::Field("spec".into()),
            Step::Field("template".into()),
            Step::Field("spec".into()),
            Step::Field("containers".into()),
            Step::Key("{\"name\":\"bot\"}".into()),
            Step::Field("image".into()),
        ];
        assert!(set.contains(&image));
        assert_eq!(
            path_string(&image),
            ".spec.template.spec.containers[name=\"bot\"].image"
        );
    }

    #[test]
    fn conflicts_forcing_and_surviving_fields() {
        let live = apply(
            "Deployment",
            None,
            &deployment(Some(1), "a"),
            "tool",
            false,
            "t0",
        )
        .unwrap();
        // `kubectl scale` takes .spec.replicas through the scale subresource.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(0);
        record_update(
            "Deployment",
            Some(&live),
            &mut scaled,
            "kubectl",
            Some("scale"),
            "t1",
        );
        let err = apply(
            "Deployment",
            Some(&scaled),
            &deployment(Some(1), "a"),
            "tool",
            false,
            "t2",
        )
        .err()
        .unwrap();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
        );
        // Not setting the field any more: it stays as the other manager left it.
        let kept = apply(
            "Deployment",
            Some(&scaled),
            &deployment(None, "a"),
            "tool",
            false,
            "t2",
        )
        .unwrap();
        assert_eq!(kept["spec"]["replicas"], 0);
        // Forcing takes it over.
        let forced = apply(
            "Deployment",
            Some(&scaled),
            &deployment(Some(1), "a"),
            "tool",
            true,
            "t3",
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 1);
        assert!(entries(&forced).iter().all(|e| e.manager == "tool"));
        // An annotation added by another manager survives an apply that does not set it.
        let mut annotated = live.clone();
        annotated["metadata"]["annotations"] = json!({"x": "1"});
        record_update(
            "Deployment",
            Some(&live),
            &mut annotated,
            "kubectl-annotate",
            None,
            "t4",
        );
        let again = apply(
            "Deployment",
            Some(&annotated),
            &deployment(Some(1), "b"),
            "tool",
            false,
            "t5",
        )
        .unwrap();
        assert_eq!(again["metadata"]["annotations"]["x"], "1");
        assert_eq!(
            again["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
    }
}
