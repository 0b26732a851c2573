//! The part of admission the tool relies on: Pod Security `restricted`
//! enforcement on Pods in a namespace labelled for it (the checks a
//! privileged probe pod trips). Quotas and other profiles are not simulated.

use serde_json::Value;

pub fn pod_security(namespace: &Value, pod: &Value) -> Result<(), String> {
    let level = namespace
        .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
        .and_then(Value::as_str);
    if level != Some("restricted") {
        return Ok(());
    }
    let spec = &pod["spec"];
    let pod_sc = &spec["securityContext"];
    let mut violations = Vec::new();
    if spec["hostNetwork"] == true || spec["hostPID"] == true || spec["hostIPC"] == true {
        violations.push("host namespaces (hostNetwork=true)".to_owned());
    }
    for c in spec["containers"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or_default();
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            violations.push(format!(
                "privileged (container \"{name}\" must not set securityContext.privileged=true)"
            ));
        }
        if sc["allowPrivilegeEscalation"] != false {
            violations.push(format!(
                "allowPrivilegeEscalation != false (container \"{name}\" must set securityContext.allowPrivilegeEscalation=false)"
            ));
        }
        let drops_all = sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            violations.push(format!(
                "unrestricted capabilities (container \"{name}\" must set securityContext.capabilities.drop=[\"ALL\"])"
            ));
        }
        if sc["runAsNonRoot"] != true && pod_sc["runAsNonRoot"] != true {
            violations.push(format!(
                "runAsNonRoot != true (container \"{name}\" must not set runAsNonRoot=false)"
            ));
        }
        let seccomp = |v: &Value| {
            matches!(
                v["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault" | "Localhost")
            )
        };
        if !seccomp(sc) && !seccomp(pod_sc) {
            violations.push(format!(
                "seccompProfile (pod or container \"{name}\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
            ));
        }
    }
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!(
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"{}\" is forbidden: violates PodSecurity \"restricted:latest\": {}",
        pod["metadata"]["name"].as_str().unwrap_or_default(),
        violations.join(", ")
    ))
}
