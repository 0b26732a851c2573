//! Authorization. `kubectl auth can-i VERB RESOURCE [--subresource S]
//! --as SUBJECT [-n NS | -A]` is answered from the stored Roles,
//! ClusterRoles and their bindings the way the RBAC authorizer does (allow
//! rules: verbs, API groups, resources with subresources, resource names;
//! `plugin/pkg/auth/authorizer/rbac`, `pkg/registry/rbac/validation`).
//! Aggregated ClusterRoles are filled by [`aggregate`], the aggregation
//! controller, after every write; the authorizer reads stored rules only.
//! The operator's own requests are allowed unless a test denied them
//! ([`State::deny`]); a denied request fails with the API server's text.

use serde_json::{Value, json};

use crate::invocation::{Failure, Invocation};
use crate::resources::{self, Resource};
use crate::state::State;

/// The user kubectl authenticates as (a kind cluster's admin).
const DEFAULT_USER: &str = "kubernetes-admin";

impl State {
    /// Refuses the operator `verb` on `resource` (`pods`, `pods/exec`), in
    /// `namespace` or everywhere, as an RBAC rule the operator lacks would.
    pub fn deny(
        &mut self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut denied = self.data["denied"].as_array().cloned().unwrap_or_default();
        denied.push(json!({"verb": verb, "resource": resource, "namespace": namespace}));
        self.data["denied"] = Value::Array(denied);
        self.dirty = true;
        self.save()
    }
}

impl State {
    /// Stops (false) or starts the ClusterRole aggregation controller, as a
    /// kube-controller-manager that is down or behind would: aggregated
    /// ClusterRoles keep their stored rules until it runs again.
    pub fn set_aggregation_controller(&mut self, running: bool) -> anyhow::Result<()> {
        self.data["aggregationController"] = json!(running);
        self.dirty = true;
        if running {
            aggregate(self);
        }
        self.save()
    }
}

/// Whether the operator may `verb` the `resource` (with `subresource`);
/// the API server's Forbidden error as kubectl prints it if not.
pub fn authorize(
    state: &State,
    verb: &str,
    resource: &Resource,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(), String> {
    let full = match subresource {
        Some(s) => format!("{}/{s}", resource.plural),
        None => resource.plural.to_owned(),
    };
    let denied = state.data["denied"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| {
            (d["verb"] == verb || d["verb"] == "*")
                && d["resource"] == full.as_str()
                && (d["namespace"].is_null() || d["namespace"].as_str() == namespace)
        });
    if !denied {
        return Ok(());
    }
    let user = state.data["user"].as_str().unwrap_or(DEFAULT_USER);
    let what = match name {
        Some(n) => format!("{} \"{n}\"", resource.qualified()),
        None => resource.qualified(),
    };
    let scope = match namespace.filter(|_| resource.namespaced) {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    Err(format!(
        "Error from server (Forbidden): {what} is forbidden: User \"{user}\" cannot {verb} resource \"{full}\" in API group \"{}\" {scope}",
        resource.group
    ))
}

pub fn can_i(
    state: &State,
    inv: &Invocation,
    verb: &str,
    resource: &str,
) -> Result<String, Failure> {
    inv.only(
        "auth can-i",
        &["as", "namespace", "all-namespaces", "quiet", "subresource"],
    )?;
    let Some(subject) = inv.flag("as") else {
        return Err(Failure::not_implemented(
            "`auth can-i` without --as (the tool always names the subject)",
        ));
    };
    let Some(rest) = subject.strip_prefix("system:serviceaccount:") else {
        return Err(Failure::not_implemented(format!(
            "`auth can-i --as {subject}`: only service accounts"
        )));
    };
    let Some((sa_ns, sa_name)) = rest.split_once(':') else {
        return Err(Failure::new(
            1,
            format!("error: invalid service account {subject}"),
        ));
    };
    // TYPE or TYPE/NAME, as kubectl reads it: `pods/exec` is the pod named `exec`.
    let (resource, resource_name) = match resource.split_once('/') {
        Some((r, n)) => (r, Some(n)),
        None => (resource, None),
    };
    let Some(res) = resources::lookup(resource) else {
        let mut f = Failure::new(
            1,
            format!("Warning: the server doesn't have a resource type '{resource}'"),
        );
        f.stdout = "no\n".to_owned();
        return Err(f);
    };
    let wanted = match inv.flag("subresource") {
        Some(sub) => format!("{}/{sub}", res.plural),
        None => res.plural.to_owned(),
    };
    let namespace =
        (!inv.has("all-namespaces")).then(|| inv.flag("namespace").unwrap_or("default"));
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{sa_ns}"),
        "system:authenticated".to_owned(),
    ];
    // A service account subject without a namespace is the RoleBinding's
    // (a ClusterRoleBinding's then matches no one): `appliesToUser`.
    let matches_subject = |binding: &Value, s: &Value| match s["kind"].as_str() {
        Some("ServiceAccount") => {
            let ns = match s["namespace"].as_str().filter(|n| !n.is_empty()) {
                Some(ns) => Some(ns),
                None if binding["kind"] == "RoleBinding" => {
                    binding["metadata"]["namespace"].as_str()
                }
                None => None,
            };
            s["name"] == sa_name && ns == Some(sa_ns)
        }
        Some("Group") => groups.iter().any(|g| s["name"] == g.as_str()),
        Some("User") => s["name"] == subject,
        _ => false,
    };
    let allows = |rules: &Value| {
        rules.as_array().into_iter().flatten().any(|r| {
            let has = |key: &str, want: &str| {
                r[key]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "*" || x == want))
            };
            let names_ok = match (r["resourceNames"].as_array(), resource_name) {
                (None, _) => true,
                (Some(names), _) if names.is_empty() => true,
                (Some(names), Some(n)) => names.iter().any(|x| x == n),
                (Some(_), None) => false,
            };
            // `*/exec` is any resource's exec subresource (`ResourceMatches`).
            let any_resource = inv.flag("subresource").is_some_and(|sub| {
                r["resources"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().and_then(|x| x.strip_prefix("*/")) == Some(sub))
                })
            });
            has("verbs", verb)
                && has("apiGroups", res.group)
                && (has("resources", &wanted) || any_resource)
                && names_ok
        })
    };
    // A missing role is an error the authorizer collects and goes on past
    // (`GetRoleReferenceRules`: the lister's NotFound).
    let role_rules = |binding: &Value| -> Result<Value, String> {
        let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        let (kind, ns) = match binding["roleRef"]["kind"].as_str() {
            Some("ClusterRole") => ("ClusterRole", None),
            Some("Role") => ("Role", binding["metadata"]["namespace"].as_str()),
            other => {
                return Err(format!(
                    "unsupported role reference kind: \"{}\"",
                    other.unwrap_or_default()
                ));
            }
        };
        state
            .get(kind, ns, name)
            .map(|r| r["rules"].clone())
            .ok_or_else(|| {
                format!(
                    "{}.rbac.authorization.k8s.io \"{name}\" not found",
                    kind.to_ascii_lowercase()
                )
            })
    };
    // ClusterRoleBindings first, then the namespace's RoleBindings, as the
    // authorizer visits them; it stops at the first rule that allows.
    let bindings = state
        .objects()
        .iter()
        .filter(|b| b["kind"] == "ClusterRoleBinding")
        .chain(state.objects().iter().filter(|b| {
            b["kind"] == "RoleBinding"
                && namespace.is_some_and(|ns| b["metadata"]["namespace"] == ns)
        }));
    let mut errors: Vec<String> = Vec::new();
    let mut granted = false;
    for b in bindings {
        let applies = b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| matches_subject(b, s));
        if !applies {
            continue;
        }
        match role_rules(b) {
            Ok(rules) if allows(&rules) => {
                granted = true;
                break;
            }
            Ok(_) => {}
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    if granted {
        Ok(if inv.has("quiet") {
            String::new()
        } else {
            "yes\n".to_owned()
        })
    } else {
        // kubectl prints the review's reason after `no - `: the RBAC
        // authorizer's `RBAC: ` and its errors (an aggregate of several is
        // bracketed and comma-separated).
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!(" - RBAC: {one}"),
            many => format!(" - RBAC: [{}]", many.join(", ")),
        };
        let mut f = Failure::new(1, "");
        if !inv.has("quiet") {
            f.stdout = format!("no{reason}\n");
        }
        Err(f)
    }
}

/// The field manager of the ClusterRole aggregation controller.
const AGGREGATION_MANAGER: &str = "clusterrole-aggregation-controller";

/// The ClusterRole aggregation controller
/// (`pkg/controller/clusterroleaggregation`): a ClusterRole with an
/// `aggregationRule` gets as its `rules` those of every other ClusterRole
/// its `clusterRoleSelectors` select, selector by selector and by name
/// within each, every rule once; a role with an invalid selector is left
/// as it is. It writes them by a forced server-side apply as its own field
/// manager. A real controller runs moments after each change and, as every
/// change requeues every aggregated role, goes on until nothing changes;
/// here that happens within the write. The authorizer (`can_i`) reads the
/// stored rules only.
pub fn aggregate(state: &mut State) {
    if state.data["aggregationController"] == false {
        return;
    }
    let name = |o: &Value| {
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let aggregated: Vec<String> = state
        .objects()
        .iter()
        .filter(|o| {
            o["kind"] == "ClusterRole" && o.get("aggregationRule").is_some_and(|a| !a.is_null())
        })
        .map(name)
        .collect();
    // Each round passes rules one level further down a chain of
    // aggregations; a cycle that never settles is cut off.
    for _ in 0..=aggregated.len() {
        let mut changed = false;
        for role in &aggregated {
            let Some(i) = state.index_of("ClusterRole", None, role) else {
                continue;
            };
            let live = state.objects()[i].clone();
            let selectors = live["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut others: Vec<&Value> = state
                .objects()
                .iter()
                .filter(|o| o["kind"] == "ClusterRole" && name(o) != *role)
                .collect();
            others.sort_by_key(|o| name(o));
            let mut rules: Vec<Value> = Vec::new();
            let mut valid = true;
            for selector in &selectors {
                for other in &others {
                    match selects(selector, &other["metadata"]["labels"]) {
                        Some(true) => {
                            for r in other["rules"].as_array().into_iter().flatten() {
                                if !rules.contains(r) {
                                    rules.push(r.clone());
                                }
                            }
                        }
                        Some(false) => {}
                        None => valid = false,
                    }
                }
            }
            let stored = live["rules"].as_array().cloned().unwrap_or_default();
            if !valid || stored == rules {
                continue;
            }
            let applied = json!({"apiVersion": live["apiVersion"], "kind": "ClusterRole",
                                 "metadata": {"name": role}, "rules": rules});
            let now = state.now();
            let Ok(merged) = crate::fields::apply(
                "ClusterRole",
                Some(&live),
                &applied,
                AGGREGATION_MANAGER,
                true,
                &now,
            ) else {
                continue;
            };
            // Stored as a write to an existing object is: a new resourceVersion.
            let mut merged = merged;
            merged["metadata"]["resourceVersion"] = json!(state.next_resource_version());
            state.objects_mut()[i] = merged;
            changed = true;
        }
        if !changed {
            break;
        }
    }
}

/// Whether a label selector selects `labels` (`LabelSelectorAsSelector`):
/// an empty one selects everything; None for an operator it does not know.
fn selects(selector: &Value, labels: &Value) -> Option<bool> {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let mut by_expressions = true;
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let value = label(e["key"].as_str().unwrap_or_default());
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        by_expressions &= match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => return None,
        };
    }
    Some(by_labels && by_expressions)
}
