//! Admission of a new Pod, as the API server's plugins do it and in their
//! order: LimitRanger (container defaults, then its bounds), PodSecurity
//! (the `restricted` profile where the namespace enforces it), then
//! ResourceQuota (pod count, CPU and memory against the namespace's
//! quotas). Each refusal has the server's own wording; only Pod Security's
//! says `violates PodSecurity`. The pod's own defaults come first
//! (requests default to limits). Pods that a Deployment's controller makes
//! are admitted the same way (controllers.rs).

use serde_json::Value;

use crate::state::State;

/// The API server's Forbidden error for a pod, as kubectl prints it for a
/// server-side apply.
fn forbidden(pod: &Value, why: &str) -> String {
    format!(
        "Error from server (Forbidden): pods \"{}\" is forbidden: {why}",
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Admits a new pod into `namespace`, returning it with the LimitRange's
/// defaults filled in, or the refusal.
pub fn admit_pod(state: &State, namespace: &Value, mut pod: Value) -> Result<Value, String> {
    let ns = namespace["metadata"]["name"].as_str().unwrap_or_default();
    let in_ns = |kind: &str| -> Vec<Value> {
        state
            .objects()
            .iter()
            .filter(|o| o["kind"] == kind && o["metadata"]["namespace"] == ns)
            .cloned()
            .collect()
    };
    default_requests_to_limits(&mut pod);
    for range in in_ns("LimitRange") {
        limit_range(&range, &mut pod)?;
    }
    pod_security(namespace, &pod)?;
    let running: Vec<Value> = in_ns("Pod")
        .into_iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .collect();
    for quota in in_ns("ResourceQuota") {
        resource_quota(&quota, &running, &pod)?;
    }
    Ok(pod)
}

/// A quantity in thousandths of its unit (millicores, or bytes × 1000).
pub(crate) fn milli(q: &str) -> Option<u128> {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let scale: u128 = match suffix {
        "" => 1000,
        "m" => 1,
        "k" => 1000 * 1000,
        "M" => 1000 * 1000u128.pow(2),
        "G" => 1000 * 1000u128.pow(3),
        "Ki" => 1000 << 10,
        "Mi" => 1000 << 20,
        "Gi" => 1000 << 30,
        "Ti" => 1000 << 40,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let mut value = whole.parse::<u128>().ok()? * scale;
    let mut unit = scale;
    for d in frac.bytes() {
        unit /= 10;
        value += u128::from(d.checked_sub(b'0')?) * unit;
    }
    Some(value)
}

/// A quantity in canonical form, as the server prints it.
pub(crate) fn format_quantity(resource: &str, milli: u128) -> String {
    if resource.ends_with("cpu") {
        return if milli.is_multiple_of(1000) {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    let bytes = milli / 1000;
    for (unit, size) in [("Gi", 1u128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes > 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// What one pod counts against a quota'd resource (`requests.cpu`,
/// `memory`, `pods`), in thousandths.
pub(crate) fn pod_usage(p: &Value, resource: &str) -> u128 {
    if resource == "pods" {
        return 1000;
    }
    let (field, res) = match resource.split_once('.') {
        Some((f, r)) => (f, r),
        None => ("requests", resource),
    };
    containers(p)
        .iter()
        .filter_map(|c| c.pointer(&format!("/resources/{field}/{res}")))
        .filter_map(Value::as_str)
        .filter_map(milli)
        .sum()
}

/// A pod's containers and init containers: admission checks both.
fn containers(pod: &Value) -> Vec<&Value> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .collect()
}

fn containers_mut(pod: &mut Value) -> Vec<&mut Value> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    spec.iter_mut()
        .filter(|(k, _)| *k == "containers" || *k == "initContainers")
        .flat_map(|(_, v)| v.as_array_mut().into_iter().flatten())
        .collect()
}

/// The pod's own defaults, before any admission plugin (SetDefaults_Pod):
/// a container with a limit but no request of a resource requests its limit.
fn default_requests_to_limits(pod: &mut Value) {
    for c in containers_mut(pod) {
        let limits = c["resources"]["limits"].clone();
        for (res, value) in limits.as_object().into_iter().flatten() {
            if c.pointer(&format!("/resources/requests/{res}")).is_none() {
                c["resources"]["requests"][res] = value.clone();
            }
        }
    }
}

/// A Container item of a LimitRange as the API server stored it
/// (SetDefaults_LimitRangeItem): `default` from `max`, then
/// `defaultRequest` from `default`, else from `min`.
fn defaulted_item(item: &Value) -> Value {
    let mut item = item.clone();
    for (from, to) in [
        ("max", "default"),
        ("default", "defaultRequest"),
        ("min", "defaultRequest"),
    ] {
        for (res, value) in item[from].as_object().cloned().into_iter().flatten() {
            if item[to].get(&res).is_none() {
                item[to][&res] = value;
            }
        }
    }
    item
}

/// LimitRanger: a container without a limit or request of a resource gets
/// the range's default, then every container must be within the range's
/// min and max (minConstraint and maxConstraint, with their texts).
fn limit_range(range: &Value, pod: &mut Value) -> Result<(), String> {
    let mut problems = Vec::new();
    for item in range["spec"]["limits"].as_array().into_iter().flatten() {
        if item["type"] != "Container" {
            continue;
        }
        let item = defaulted_item(item);
        for c in containers_mut(pod) {
            for (field, default_key) in [("limits", "default"), ("requests", "defaultRequest")] {
                for (res, value) in item[default_key].as_object().into_iter().flatten() {
                    if c.pointer(&format!("/resources/{field}/{res}")).is_none() {
                        c["resources"][field][res] = value.clone();
                    }
                }
            }
        }
        for c in containers(pod) {
            let quantity = |field: &str, res: &str| -> Result<Option<(String, u128)>, String> {
                let Some(q) = c
                    .pointer(&format!("/resources/{field}/{res}"))
                    .and_then(Value::as_str)
                else {
                    return Ok(None);
                };
                milli(q)
                    .map(|m| Some((q.to_owned(), m)))
                    .ok_or_else(|| format!("fake-kubectl: not implemented: the quantity {q}"))
            };
            let bound = |v: &Value| -> Result<(String, u128), String> {
                let q = v.as_str().unwrap_or_default();
                milli(q)
                    .map(|m| (q.to_owned(), m))
                    .ok_or_else(|| format!("fake-kubectl: not implemented: the quantity {q}"))
            };
            for (res, min) in item["min"].as_object().into_iter().flatten() {
                let (min, enforced) = bound(min)?;
                match (quantity("requests", res)?, quantity("limits", res)?) {
                    (None, _) => problems.push(format!(
                        "minimum {res} usage per Container is {min}.  No request is specified"
                    )),
                    (Some((q, m)), _) if m < enforced => problems.push(format!(
                        "minimum {res} usage per Container is {min}, but request is {q}"
                    )),
                    (_, Some((q, m))) if m < enforced => problems.push(format!(
                        "minimum {res} usage per Container is {min}, but limit is {q}"
                    )),
                    _ => {}
                }
            }
            for (res, max) in item["max"].as_object().into_iter().flatten() {
                let (max, enforced) = bound(max)?;
                match (quantity("limits", res)?, quantity("requests", res)?) {
                    (None, _) => problems.push(format!(
                        "maximum {res} usage per Container is {max}.  No limit is specified"
                    )),
                    (Some((q, m)), _) if m > enforced => problems.push(format!(
                        "maximum {res} usage per Container is {max}, but limit is {q}"
                    )),
                    (_, Some((q, m))) if m > enforced => problems.push(format!(
                        "maximum {res} usage per Container is {max}, but request is {q}"
                    )),
                    _ => {}
                }
            }
        }
    }
    match problems.as_slice() {
        [] => Ok(()),
        [one] => Err(forbidden(pod, one)),
        many => Err(forbidden(pod, &format!("[{}]", many.join(", ")))),
    }
}

/// ResourceQuota: the new pod's requests and limits, plus the namespace's
/// pods', within every hard limit; compute limits must be set to count.
fn resource_quota(quota: &Value, running: &[Value], pod: &Value) -> Result<(), String> {
    let name = quota["metadata"]["name"].as_str().unwrap_or_default();
    let hard = quota["spec"]["hard"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let usage = pod_usage;
    let compute = [
        "requests.cpu",
        "limits.cpu",
        "requests.memory",
        "limits.memory",
        "cpu",
        "memory",
    ];
    // podEvaluator.Constraints: each quota'd compute resource, as the quota
    // names it, with the containers (and init containers) that do not set it.
    let mut missing: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for resource in hard.keys().filter(|r| compute.contains(&r.as_str())) {
        let (field, res) = resource.split_once('.').unwrap_or(("requests", resource));
        for c in containers(pod) {
            if c.pointer(&format!("/resources/{field}/{res}")).is_none() {
                missing
                    .entry(resource.as_str())
                    .or_default()
                    .insert(c["name"].as_str().unwrap_or_default());
            }
        }
    }
    if !missing.is_empty() {
        let parts: Vec<String> = missing
            .iter()
            .map(|(resource, names)| {
                format!(
                    "{resource} for: {}",
                    names.iter().copied().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        return Err(forbidden(
            pod,
            &format!("failed quota: {name}: must specify {}", parts.join("; ")),
        ));
    }
    let mut failed: Vec<(String, String, String, String)> = Vec::new();
    for (resource, limit) in &hard {
        if !(resource == "pods" || compute.contains(&resource.as_str())) {
            continue;
        }
        let Some(limit_milli) = limit.as_str().and_then(milli) else {
            continue;
        };
        let used: u128 = running.iter().map(|p| usage(p, resource)).sum();
        let requested = usage(pod, resource);
        if used + requested > limit_milli {
            let show = |m: u128| {
                if resource == "pods" {
                    (m / 1000).to_string()
                } else {
                    format_quantity(resource, m)
                }
            };
            failed.push((
                resource.clone(),
                show(requested),
                show(used),
                limit.as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort();
    let list = |pick: fn(&(String, String, String, String)) -> &String| {
        failed
            .iter()
            .map(|f| format!("{}={}", f.0, pick(f)))
            .collect::<Vec<_>>()
            .join(",")
    };
    Err(forbidden(
        pod,
        &format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            list(|f| &f.1),
            list(|f| &f.2),
            list(|f| &f.3)
        ),
    ))
}

fn pod_security(namespace: &Value, pod: &Value) -> Result<(), String> {
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
    Err(forbidden(
        pod,
        &format!(
            "violates PodSecurity \"restricted:latest\": {}",
            violations.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli("256Mi"), Some(256_000 << 20));
        assert_eq!(format_quantity("limits.cpu", 1500), "1500m");
        assert_eq!(format_quantity("requests.memory", 512_000 << 20), "512Mi");
    }
}
