//! Whether a server-side apply of a rendered object would change the live
//! one, decided locally from the live object's `metadata.managedFields`
//! instead of a server dry run (`kubectl diff --server-side`), so that a
//! whole fleet is compared from one read of the cluster.
//!
//! What an apply by the tool's field manager changes, as structured-merge-
//! diff does it (and `kubectl diff --server-side --force-conflicts` shows):
//! - every field the render sets takes the rendered value, whoever owns it
//!   now: a live value that differs is drift (a hand edit takes the field
//!   over, so it is drift whether or not the tool still owns it);
//! - a field the tool's last apply set, that the render no longer sets and
//!   no other manager owns (nor anything below it), is removed: drift;
//! - everything else is left as it is: fields set by controllers, by the
//!   API server's defaults and by other managers are not drift.
//!
//! Lists are compared as the API types them, which the managed fields
//! record: an associative list (`k:` in `fieldsV1`) element by element by
//! its keys, a set (`v:`) by membership, any other list whole. Quantities
//! are compared by amount (`1Gi` is `1024Mi`), as the API server stores
//! them in its own canonical form.

use serde_json::{Map, Value};

use crate::managed::{FieldPath, Owned, Step, owners, path_string, value_at};
use crate::platform::{QuantityKind, parse_quantity};

/// One way the live object differs from what an apply would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// As the API server names fields: `.data.RATE_LIMIT_MESSAGES_PER_DAY`.
    pub field: String,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The render sets another value, or the live object lacks the field.
    Differs,
    /// The tool set it before; the render no longer does, so an apply
    /// would remove it.
    Removed,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.change {
            Change::Differs => write!(f, "{} differs", self.field),
            Change::Removed => write!(f, "{} is no longer in the config", self.field),
        }
    }
}

/// How `live` differs from what a server-side apply of `desired` by
/// `manager` would leave; empty when the apply would change nothing.
pub fn drift(desired: &Value, live: &Value, manager: &str) -> Vec<Drift> {
    let owners = owners(live);
    let owned: Vec<&Owned> = owners.iter().flat_map(|o| o.fields.iter()).collect();
    let mut walk = Walk {
        owned: &owned,
        out: Vec::new(),
    };
    walk.value(&mut Vec::new(), &mut Vec::new(), desired, Some(live));

    // What the tool's last apply set and the render no longer sets.
    let others: Vec<&FieldPath> = owners
        .iter()
        .filter(|o| !o.is_apply_of(manager))
        .flat_map(|o| o.fields.iter().map(|f| &f.path))
        .collect();
    let mut mine: Vec<&FieldPath> = owners
        .iter()
        .filter(|o| o.is_apply_of(manager))
        .flat_map(|o| o.fields.iter().map(|f| &f.path))
        .collect();
    // Ancestors first, so that what is below a removed one is not listed again.
    mine.sort_by_key(|p| p.len());
    let mut removed: Vec<&FieldPath> = Vec::new();
    for path in mine {
        let gone = !ignored(&field_names(path))
            && value_at(desired, path).is_none()
            && value_at(live, path).is_some()
            && !others.iter().any(|o| o.starts_with(path))
            && !removed.iter().any(|r| path.starts_with(r));
        if gone {
            removed.push(path);
            walk.out.push(Drift {
                field: path_string(path),
                change: Change::Removed,
            });
        }
    }
    walk.out
}

/// How the API types a list.
#[derive(Debug, PartialEq)]
enum ListType {
    /// Elements are told apart by these key fields.
    Map(Vec<String>),
    /// Elements are told apart by their whole value.
    Set,
    /// The list is one value.
    Atomic,
}

struct Walk<'a> {
    /// Every path any manager owns: where the list types are read from.
    owned: &'a [&'a Owned],
    out: Vec<Drift>,
}

impl Walk<'_> {
    /// Compares what the render sets at `path` (`names` are its field
    /// names alone) with the live value there.
    fn value(
        &mut self,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        want: &Value,
        have: Option<&Value>,
    ) {
        if ignored(names) {
            return;
        }
        match want {
            Value::Object(fields) if !fields.is_empty() => self.fields(names, path, fields, have),
            Value::Array(items) => match self.list_type(path, names) {
                ListType::Map(keys) => {
                    for item in items {
                        let key: Map<String, Value> = keys
                            .iter()
                            .filter_map(|k| Some((k.clone(), item.get(k)?.clone())))
                            .collect();
                        let found = have.and_then(Value::as_array).and_then(|live| {
                            live.iter()
                                .find(|l| keys.iter().all(|k| l.get(k) == item.get(k)))
                        });
                        path.push(Step::Key(key));
                        match (item, found) {
                            (_, None) => self.differs(path),
                            (Value::Object(fields), Some(l)) if !fields.is_empty() => {
                                self.fields(names, path, fields, Some(l));
                            }
                            (_, Some(l)) => self.leaf(names, path, item, Some(l)),
                        }
                        path.pop();
                    }
                }
                ListType::Set => {
                    for item in items {
                        let found = have
                            .and_then(Value::as_array)
                            .is_some_and(|live| live.contains(item));
                        if !found {
                            path.push(Step::Value(item.clone()));
                            self.differs(path);
                            path.pop();
                        }
                    }
                }
                ListType::Atomic => self.leaf(names, path, want, have),
            },
            _ => self.leaf(names, path, want, have),
        }
    }

    fn fields(
        &mut self,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        fields: &Map<String, Value>,
        have: Option<&Value>,
    ) {
        for (k, child) in fields {
            names.push(k.clone());
            path.push(Step::Field(k.clone()));
            self.value(names, path, child, have.and_then(|h| h.get(k)));
            path.pop();
            names.pop();
        }
    }

    fn leaf(
        &mut self,
        names: &mut Vec<String>,
        path: &FieldPath,
        want: &Value,
        have: Option<&Value>,
    ) {
        if !have.is_some_and(|have| same(names, want, have)) {
            self.differs(path);
        }
    }

    fn differs(&mut self, path: &FieldPath) {
        self.out.push(Drift {
            field: path_string(path),
            change: Change::Differs,
        });
    }

    /// The type of the list at `path`, as the managed fields show it
    /// (any manager's elements below it), else as the API defines the
    /// few associative lists of the kinds the tool renders.
    fn list_type(&self, path: &FieldPath, names: &[String]) -> ListType {
        for owned in self.owned {
            if owned.path.len() > path.len() && owned.path.starts_with(path) {
                match &owned.path[path.len()] {
                    Step::Key(key) => return ListType::Map(key.keys().cloned().collect()),
                    Step::Value(_) => return ListType::Set,
                    // By position: no element is told apart by its content.
                    Step::Index(_) => return ListType::Atomic,
                    Step::Field(_) => {}
                }
            }
        }
        known_list_type(names)
    }
}

/// The associative and set lists of the kinds the tool renders
/// (`+listType=map` with `+listMapKey`, `+listType=set` in the Kubernetes
/// API), for a list no manager owns elements of yet.
fn known_list_type(names: &[String]) -> ListType {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let map = |keys: &[&str]| ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect());
    match names.as_slice() {
        ["metadata", "finalizers"] => ListType::Set,
        ["metadata", "ownerReferences"] => map(&["uid"]),
        ["spec", "ports"] => map(&["port", "protocol"]),
        [
            ..,
            "spec",
            "containers" | "initContainers" | "volumes" | "imagePullSecrets",
        ] => map(&["name"]),
        [.., "containers" | "initContainers", "ports"] => map(&["containerPort", "protocol"]),
        [.., "containers" | "initContainers", "env"] => map(&["name"]),
        [.., "containers" | "initContainers", "volumeMounts"] => map(&["mountPath"]),
        _ => ListType::Atomic,
    }
}

/// The field names of a path (its list elements left out).
fn field_names(path: &[Step]) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            Step::Field(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// Fields nobody applies: the object's identity and what the API server
/// writes itself.
fn ignored(names: &[String]) -> bool {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    matches!(
        names.as_slice(),
        ["apiVersion" | "kind" | "status"]
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

/// Whether two values are the same to the API server: equal, or the same
/// quantity where the field holds one.
fn same(names: &mut Vec<String>, want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(a), Value::String(b)) => {
            a == b || (holds_quantity(names) && same_amount(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, v)| {
                    b.get(k).is_some_and(|other| {
                        names.push(k.clone());
                        let same = same(names, v, other);
                        names.pop();
                        same
                    })
                })
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(names, x, y))
        }
        _ => want == have,
    }
}

/// Whether the field at `names` is a resource quantity: compute resources
/// and their limits (`resources.limits.cpu`, a quota's `hard`, a limit
/// range's bounds) and sizes.
fn holds_quantity(names: &[String]) -> bool {
    let parent = names.len().checked_sub(2).map(|i| names[i].as_str());
    let last = names.last().map(String::as_str);
    matches!(
        parent,
        Some(
            "limits"
                | "requests"
                | "hard"
                | "default"
                | "defaultRequest"
                | "max"
                | "min"
                | "maxLimitRequestRatio"
                | "capacity"
        )
    ) || matches!(last, Some("sizeLimit" | "storage"))
}

/// Whether two quantities are the same amount: `1` and `1000m`, `1Gi`
/// and `1024Mi`.
fn same_amount(a: &str, b: &str) -> bool {
    [QuantityKind::Cpu, QuantityKind::Bytes]
        .into_iter()
        .any(|kind| {
            matches!(
                (parse_quantity(a, kind), parse_quantity(b, kind)),
                (Ok(x), Ok(y)) if x == y
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOOL: &str = "xtask-provision";

    fn shown(drift: &[Drift]) -> Vec<String> {
        drift.iter().map(ToString::to_string).collect()
    }

    /// A Deployment as a real API server returns it after the tool's apply:
    /// defaults filled in (owned by nobody), `.` beside the fields of list
    /// elements, keys with every key field.
    fn deployment() -> (Value, Value) {
        let desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bot", "namespace": "tenant-a", "labels": {"app": "bot"}},
            "spec": {
                "strategy": {"type": "Recreate"},
                "template": {"spec": {
                    "containers": [{
                        "name": "bot", "image": "bot@sha256:1",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                        "securityContext": {"capabilities": {"drop": ["ALL"]}}
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
                }}
            }
        });
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "bot", "namespace": "tenant-a", "labels": {"app": "bot"},
                "uid": "u", "resourceVersion": "7", "generation": 2,
                "managedFields": [
                    {"manager": TOOL, "operation": "Apply", "apiVersion": "apps/v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:strategy": {"f:type": {}},
                            "f:template": {"f:spec": {
                                "f:containers": {"k:{\"name\":\"bot\"}": {
                                    ".": {}, "f:name": {}, "f:image": {},
                                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                                        ".": {}, "f:name": {}, "f:containerPort": {}, "f:protocol": {}}},
                                    "f:resources": {"f:limits": {"f:cpu": {}, "f:memory": {}}},
                                    "f:securityContext": {"f:capabilities": {"f:drop": {}}}
                                }},
                                "f:volumes": {"k:{\"name\":\"tmp\"}": {
                                    ".": {}, "f:name": {}, "f:emptyDir": {"f:sizeLimit": {}}}}
                            }}
                        }
                     }},
                    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                     "subresource": "status", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:replicas": {}}}}
                ]
            },
            "spec": {
                "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "Recreate"},
                "template": {"spec": {
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                    "containers": [{
                        "name": "bot", "image": "bot@sha256:1",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        // The API server's own form of the same amounts.
                        "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}},
                        "securityContext": {"capabilities": {"drop": ["ALL"]}},
                        "terminationMessagePath": "/dev/termination-log",
                        "imagePullPolicy": "IfNotPresent"
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
                }}
            },
            "status": {"replicas": 1}
        });
        (desired, live)
    }

    #[test]
    fn defaults_and_other_managers_fields_are_not_drift() {
        let (desired, live) = deployment();
        assert_eq!(drift(&desired, &live, TOOL), []);
    }

    #[test]
    fn a_hand_edit_of_a_field_the_tool_set_is_drift() {
        let (desired, mut live) = deployment();
        // `kubectl edit` takes the image over.
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("bot@sha256:2");
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"bot\"}": {"f:image": {}}}}}}}}),
            );
        assert_eq!(
            shown(&drift(&desired, &live, TOOL)),
            [".spec.template.spec.containers[name=\"bot\"].image differs"]
        );
    }

    #[test]
    fn a_field_the_render_no_longer_sets_is_drift_unless_another_manager_owns_it() {
        let (mut desired, live) = deployment();
        desired["spec"].as_object_mut().unwrap().remove("strategy");
        desired["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("volumes");
        assert_eq!(
            shown(&drift(&desired, &live, TOOL)),
            [
                ".spec.strategy.type is no longer in the config",
                ".spec.template.spec.volumes[name=\"tmp\"] is no longer in the config",
            ]
        );
        // Also set by someone else: an apply leaves it.
        let mut shared = live.clone();
        shared["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": "kubectl-patch", "operation": "Update",
                "fieldsV1": {"f:spec": {"f:strategy": {"f:type": {}}}}}));
        assert_eq!(
            shown(&drift(&desired, &shared, TOOL)),
            [".spec.template.spec.volumes[name=\"tmp\"] is no longer in the config"]
        );
    }

    #[test]
    fn lists_are_compared_as_the_api_types_them() {
        let (desired, live) = deployment();
        // An associative list: another manager's element is not drift, a
        // missing one of ours is, in whatever order.
        let mut more = live.clone();
        let containers = more["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        containers.insert(0, json!({"name": "sidecar", "image": "mesh"}));
        assert_eq!(drift(&desired, &more, TOOL), []);
        let mut renamed = live.clone();
        renamed["spec"]["template"]["spec"]["containers"][0]["name"] = json!("other");
        assert_eq!(
            shown(&drift(&desired, &renamed, TOOL)),
            [".spec.template.spec.containers[name=\"bot\"] differs"]
        );
        // An atomic list is one value: one more element differs.
        let mut added = live.clone();
        added["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] =
            json!(["ALL", "NET_RAW"]);
        assert_eq!(
            shown(&drift(&desired, &added, TOOL)),
            [
                ".spec.template.spec.containers[name=\"bot\"].securityContext.capabilities.drop differs"
            ]
        );
        // Another amount is drift; the same amount in other units is not.
        let mut bigger = live.clone();
        bigger["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("2Gi");
        assert_eq!(
            shown(&drift(&desired, &bigger, TOOL)),
            [".spec.template.spec.containers[name=\"bot\"].resources.limits.memory differs"]
        );
    }

    #[test]
    fn set_lists_and_unowned_lists() {
        // No managed fields at all: the API's own list types still apply.
        let desired = json!({"metadata": {"name": "x", "finalizers": ["a"]},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}});
        let live = json!({"metadata": {"name": "x", "finalizers": ["b", "a"]},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http", "targetPort": 8080}]}});
        assert_eq!(drift(&desired, &live, TOOL), []);
        let live = json!({"metadata": {"name": "x", "finalizers": ["b"]},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "web"}]}});
        assert_eq!(
            shown(&drift(&desired, &live, TOOL)),
            [
                ".metadata.finalizers[=\"a\"] differs",
                ".spec.ports[port=80,protocol=\"TCP\"].name differs"
            ]
        );
    }

    #[test]
    fn quantities_are_compared_by_amount_only_where_the_field_holds_one() {
        let mut names = vec![
            "spec".to_owned(),
            "hard".to_owned(),
            "requests.cpu".to_owned(),
        ];
        assert!(same(&mut names, &json!("1"), &json!("1000m")));
        assert!(same(&mut names, &json!("0.5"), &json!("500m")));
        assert!(!same(&mut names, &json!("1"), &json!("2")));
        let mut names = vec!["data".to_owned(), "PORT".to_owned()];
        assert!(!same(&mut names, &json!("1"), &json!("1000m")));
    }
}
