//! The Pod Security Standards' `restricted` profile, checked offline on a
//! pod spec. The test suite runs it on every rendered pod template and on
//! the workbench pod (`tests/schemas.rs`), so a template the cluster would
//! reject fails CI; `admin verify` runs it on the live bot Deployment.
//! Provision itself does not: on the cluster, the namespace's
//! `pod-security.kubernetes.io/enforce` label makes admission refuse such pods.

use serde_json::Value;

/// Volume types the restricted profile allows.
const ALLOWED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every violation of the restricted profile in `spec` (a PodSpec), each
/// naming the field and the rule.
pub fn restricted_violations(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod_sc = spec.get("securityContext").cloned().unwrap_or(Value::Null);
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(field) == Some(&Value::Bool(true)) {
            out.push(format!("spec.{field} must not be true"));
        }
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
        let kinds: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "name").collect())
            .unwrap_or_default();
        for kind in kinds {
            if !ALLOWED_VOLUMES.contains(&kind.as_str()) {
                out.push(format!("volume {name}: type {kind} is not allowed"));
            }
        }
    }
    if pod_sc
        .get("sysctls")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        out.push("spec.securityContext.sysctls must be empty".into());
    }
    let pod_non_root = pod_sc.get("runAsNonRoot") == Some(&Value::Bool(true));
    let pod_seccomp = seccomp_ok(pod_sc.pointer("/seccompProfile/type"));
    if pod_sc.get("runAsUser").and_then(Value::as_u64) == Some(0) {
        out.push("spec.securityContext.runAsUser must not be 0".into());
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|k| spec.get(k).and_then(Value::as_array).into_iter().flatten());
    for c in containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        let sc = c.get("securityContext").cloned().unwrap_or(Value::Null);
        let mut bad = |rule: &str| out.push(format!("container {name}: {rule}"));
        if sc.get("privileged") == Some(&Value::Bool(true)) {
            bad("privileged must not be true");
        }
        if sc.get("allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
            bad("securityContext.allowPrivilegeEscalation must be false");
        }
        let non_root = match sc.get("runAsNonRoot") {
            Some(Value::Bool(v)) => *v,
            _ => pod_non_root,
        };
        if !non_root {
            bad("runAsNonRoot must be true (in the container or the pod)");
        }
        if sc.get("runAsUser").and_then(Value::as_u64) == Some(0) {
            bad("securityContext.runAsUser must not be 0");
        }
        let seccomp = match sc.pointer("/seccompProfile/type") {
            Some(t) => seccomp_ok(Some(t)),
            None => pod_seccomp,
        };
        if !seccomp {
            bad(
                "seccompProfile.type must be RuntimeDefault or Localhost (in the container or the pod)",
            );
        }
        let drops_all = sc
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            bad("securityContext.capabilities.drop must include ALL");
        }
        for add in sc
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if add != "NET_BIND_SERVICE" {
                bad(&format!(
                    "capability {add} may not be added (only NET_BIND_SERVICE)"
                ));
            }
        }
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("hostPort")
                .and_then(Value::as_u64)
                .is_some_and(|h| h != 0)
            {
                bad("hostPort must not be set");
            }
        }
        if sc
            .get("procMount")
            .and_then(Value::as_str)
            .is_some_and(|p| p != "Default")
        {
            bad("procMount must be Default");
        }
    }
    out
}

fn seccomp_ok(t: Option<&Value>) -> bool {
    matches!(
        t.and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "bot", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}, {"name": "tmp", "emptyDir": {}}],
        })
    }

    #[test]
    fn a_restricted_spec_passes() {
        assert_eq!(restricted_violations(&good()), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_named() {
        let mut bad = good();
        bad["hostNetwork"] = json!(true);
        bad["volumes"][0] = json!({"name": "host", "hostPath": {"path": "/"}});
        bad["securityContext"] = json!({"runAsUser": 0});
        bad["containers"][0]["securityContext"] =
            json!({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}});
        bad["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 80}]);
        let found = restricted_violations(&bad);
        for rule in [
            "spec.hostNetwork",
            "type hostPath",
            "runAsUser must not be 0",
            "privileged must not be true",
            "allowPrivilegeEscalation must be false",
            "runAsNonRoot must be true",
            "seccompProfile.type",
            "drop must include ALL",
            "capability \"SYS_ADMIN\"",
            "hostPort",
        ] {
            assert!(
                found.iter().any(|f| f.contains(rule)),
                "{rule} not in {found:#?}"
            );
        }
    }
}
