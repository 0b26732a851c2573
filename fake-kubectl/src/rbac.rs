//! `kubectl auth can-i VERB RESOURCE --as SUBJECT [-n NS | -A]`, answered
//! from the stored Roles, ClusterRoles and their bindings the way the RBAC
//! authorizer does (allow rules only; API groups and resource names are not
//! distinguished).

use serde_json::Value;

use crate::invocation::{Failure, Invocation};
use crate::state::State;

pub fn can_i(
    state: &State,
    inv: &Invocation,
    verb: &str,
    resource: &str,
) -> Result<String, Failure> {
    inv.only(
        "auth can-i",
        &["as", "namespace", "all-namespaces", "quiet"],
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
    let resource = resource.split('.').next().unwrap_or(resource);
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
            has("verbs", verb) && has("resources", resource)
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
