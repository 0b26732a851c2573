//! Authorization. `kubectl auth can-i VERB RESOURCE [--subresource S]
//! --as SUBJECT [-n NS | -A]` is answered from the stored Roles,
//! ClusterRoles and their bindings the way the RBAC authorizer does (allow
//! rules: verbs, API groups, resources with subresources, resource names).
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
    let matches_subject = |s: &Value| match s["kind"].as_str() {
        Some("ServiceAccount") => s["name"] == sa_name && s["namespace"] == sa_ns,
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
            has("verbs", verb)
                && has("apiGroups", res.group)
                && has("resources", &wanted)
                && names_ok
        })
    };
    let role_rules = |binding: &Value| -> Value {
        let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        match binding["roleRef"]["kind"].as_str() {
            Some("ClusterRole") => state
                .get("ClusterRole", None, name)
                .map(|r| r["rules"].clone())
                .unwrap_or(Value::Null),
            Some("Role") => {
                let ns = binding["metadata"]["namespace"].as_str();
                state
                    .get("Role", ns, name)
                    .map(|r| r["rules"].clone())
                    .unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    };
    let granted = state.objects().iter().any(|b| {
        let applies = match b["kind"].as_str() {
            Some("ClusterRoleBinding") => true,
            Some("RoleBinding") => namespace.is_some_and(|ns| b["metadata"]["namespace"] == ns),
            _ => false,
        };
        applies
            && b["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(matches_subject)
            && allows(&role_rules(b))
    });
    if granted {
        Ok(if inv.has("quiet") {
            String::new()
        } else {
            "yes\n".to_owned()
        })
    } else {
        let mut f = Failure::new(1, "");
        if !inv.has("quiet") {
            f.stdout = "no\n".to_owned();
        }
        Err(f)
    }
}
