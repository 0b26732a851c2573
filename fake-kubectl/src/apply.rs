//! `apply --server-side` (and its `--dry-run=server`) and `diff
//! --server-side`: validation as the API server does it, then storing.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

use crate::invocation::{Failure, Invocation};
use crate::object::{key, labels, list, pretty};
use crate::resources;
use crate::state::State;
use crate::{admission, controllers};

pub fn apply(state: &mut State, inv: &Invocation, input: &str) -> Result<String, Failure> {
    inv.only(
        "apply",
        &[
            "server-side",
            "field-manager",
            "force-conflicts",
            "filename",
            "output",
            "namespace",
            "dry-run",
        ],
    )?;
    let dry_run = match inv.flag("dry-run") {
        None | Some("none") => false,
        Some("server") => true,
        Some(other) => return Err(Failure::not_implemented(format!("--dry-run={other}"))),
    };
    if !inv.has("server-side") {
        return Err(Failure::not_implemented(
            "client-side `apply` (the tool uses --server-side)",
        ));
    }
    if inv.flag("filename") != Some("-") {
        return Err(Failure::not_implemented("`apply` from anything but `-f -`"));
    }
    let output = inv.flag("output");
    if !matches!(output, None | Some("json")) {
        return Err(Failure::not_implemented("`apply -o` other than json"));
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(input)
        .map_err(|e| Failure::new(1, format!("error: error parsing STDIN: {e}")))?;
    let mut objects = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                objects.extend(
                    m.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => objects.push(other),
        }
    }
    if objects.is_empty() {
        return Err(Failure::new(1, "error: no objects passed to apply"));
    }
    let default_ns = inv.namespace();
    let mut applied = Vec::new();
    let mut errors = Vec::new();
    for mut object in objects {
        if let Some(ns) = object
            .pointer("/metadata/namespace")
            .cloned()
            .filter(Value::is_string)
        {
            object["metadata"]["namespace"] = ns;
        } else if object.get("metadata").is_some_and(Value::is_object) {
            let namespaced = object["kind"]
                .as_str()
                .and_then(resources::by_kind)
                .is_some_and(|r| r.namespaced);
            if namespaced {
                object["metadata"]["namespace"] = json!(default_ns);
            }
        }
        match store(state, object) {
            Ok(key) => applied.push(key),
            Err(e) => errors.push(e),
        }
    }
    controllers::reconcile(state);
    let fresh: Vec<Value> = applied
        .iter()
        .filter_map(|(kind, ns, name)| state.get(kind, ns.as_deref(), name).cloned())
        .collect();
    let stdout = match output {
        Some(_) if fresh.len() == 1 => pretty(&fresh[0]),
        Some(_) => pretty(&list(fresh)),
        None => fresh
            .iter()
            .map(|o| {
                format!(
                    "{}/{} serverside-applied\n",
                    o["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect(),
    };
    if dry_run {
        // The server validated and admitted everything, and stores nothing.
        state.discard_changes();
    }
    if errors.is_empty() {
        Ok(stdout)
    } else {
        let _ = state.save();
        let mut f = Failure::new(1, errors.join("\n"));
        f.stdout = stdout;
        Err(f)
    }
}

/// Fields the API server owns; ignored when deciding whether an apply changed anything.
const SERVER_FIELDS: [&str; 5] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
];

fn user_content(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_FIELDS {
            m.remove(f);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

/// Validates an object as the API server would and stores it; returns its
/// key. Used by `apply` and by tests' [`State::put`].
pub fn store(
    state: &mut State,
    mut object: Value,
) -> Result<(String, Option<String>, String), String> {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let resource = resources::by_kind(&kind)
        .filter(|r| r.api_version() == api_version)
        .ok_or_else(|| {
            format!(
                "error: resource mapping not found for name: \"{name}\" namespace: \"{}\" from \"STDIN\": no matches for kind \"{kind}\" in version \"{api_version}\"",
                ns.clone().unwrap_or_default()
            )
        })?;
    if name.is_empty() {
        return Err(format!(
            "error: error when retrieving current configuration: {kind} has no metadata.name"
        ));
    }
    let invalid = |field: &str, value: &str, why: &str| {
        format!("The {kind} \"{name}\" is invalid: {field}: Invalid value: \"{value}\": {why}")
    };
    if !is_dns_subdomain(&name) {
        return Err(invalid(
            "metadata.name",
            &name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ));
    }
    for (k, v) in labels(&object) {
        if !is_label_key(&k) {
            return Err(invalid(
                "metadata.labels",
                &k,
                "name part must consist of alphanumeric characters, '-', '_' or '.'",
            ));
        }
        if !(v.is_empty() || is_label_name(&v)) {
            return Err(invalid(
                "metadata.labels",
                &v,
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
    let ns = if resource.namespaced {
        let ns = ns.unwrap_or_else(|| "default".to_owned());
        let Some(namespace) = state.get("Namespace", None, &ns) else {
            return Err(format!(
                "Error from server (NotFound): namespaces \"{ns}\" not found"
            ));
        };
        if kind == "Pod" {
            admission::pod_security(namespace, &object)?;
        }
        Some(ns)
    } else {
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        None
    };
    // What the API server itself writes.
    if kind == "Namespace" {
        object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
    if kind == "Secret"
        && let Some(Value::Object(string_data)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        let data = object["data"].as_object().cloned().unwrap_or_default();
        let mut data: Map<String, Value> = data;
        for (k, v) in string_data {
            data.insert(
                k,
                json!(BASE64_STANDARD.encode(v.as_str().unwrap_or_default().as_bytes())),
            );
        }
        object["data"] = Value::Object(data);
    }
    let key = (kind.clone(), ns.clone(), name.clone());
    match state.index_of(&kind, ns.as_deref(), &name) {
        Some(i) => {
            let old = state.objects()[i].clone();
            // Fields a controller set belong to it, not to the applier.
            if kind == "PersistentVolumeClaim"
                && object.pointer("/spec/volumeName").is_none()
                && let Some(volume) = old.pointer("/spec/volumeName").cloned()
            {
                object["spec"]["volumeName"] = volume;
            }
            if user_content(&old) == user_content(&object) {
                return Ok(key);
            }
            check_immutable(&kind, &name, &old, &object)?;
            let spec_changed = old.get("spec") != object.get("spec");
            let generation =
                old["metadata"]["generation"].as_u64().unwrap_or(1) + u64::from(spec_changed);
            object["metadata"]["uid"] = old["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            object["metadata"]["generation"] = json!(generation);
            object["metadata"]["resourceVersion"] = json!(state.next_resource_version());
            if let Some(status) = old.get("status") {
                object["status"] = status.clone();
            }
            state.objects_mut()[i] = object;
        }
        None => {
            let rv = state.next_resource_version();
            object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:0>12}", rv));
            object["metadata"]["creationTimestamp"] = json!(state.now());
            object["metadata"]["generation"] = json!(1);
            object["metadata"]["resourceVersion"] = json!(rv);
            state.push_object(object);
        }
    }
    Ok(key)
}

fn check_immutable(kind: &str, name: &str, old: &Value, new: &Value) -> Result<(), String> {
    let immutable =
        |field: &str| format!("The {kind} \"{name}\" is invalid: {field}: field is immutable");
    match kind {
        "Deployment" if old.pointer("/spec/selector") != new.pointer("/spec/selector") => {
            Err(immutable("spec.selector"))
        }
        "PersistentVolumeClaim" => {
            let strip = |o: &Value| {
                let mut s = o.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(r) = s
                    .pointer_mut("/resources/requests")
                    .and_then(Value::as_object_mut)
                {
                    r.remove("storage");
                }
                s
            };
            if strip(old) != strip(new) {
                Err(format!(
                    "The PersistentVolumeClaim \"{name}\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

fn is_label_name(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_label_key(k: &str) -> bool {
    match k.rsplit_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(k),
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// `kubectl diff --server-side -f -`: what an apply would change, as a
/// unified diff per object (LIVE against MERGED, as kubectl names them);
/// exit 1 when anything differs, 0 when nothing does. Nothing is stored.
pub fn diff(state: &mut State, inv: &Invocation, input: &str) -> Result<String, Failure> {
    inv.only(
        "diff",
        &[
            "server-side",
            "field-manager",
            "force-conflicts",
            "filename",
        ],
    )?;
    if !inv.has("server-side") || inv.flag("filename") != Some("-") {
        return Err(Failure::not_implemented(
            "`diff` other than `--server-side -f -`",
        ));
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(input)
        .map_err(|e| Failure::new(2, format!("error: error parsing STDIN: {e}")))?;
    let mut out = String::new();
    let mut errors = Vec::new();
    for object in docs.into_iter().filter(|d| !d.is_null()) {
        let (kind, ns, name) = key(&object);
        let ns_opt = (!ns.is_empty()).then_some(ns.as_str());
        let before = state.get(&kind, ns_opt, &name).map(user_content);
        match store(state, object) {
            Ok((k, n, nm)) => {
                let after = state.get(&k, n.as_deref(), &nm).map(user_content);
                if before != after {
                    let r = resources::by_kind(&k)
                        .map(|r| r.api_version().replace('/', "."))
                        .unwrap_or_default();
                    let label = format!("{r}.{k}.{}.{nm}", n.unwrap_or_default());
                    let yaml = |v: &Option<Value>| {
                        v.as_ref()
                            .map(|v| serde_saphyr::to_string(v).unwrap_or_default())
                            .unwrap_or_default()
                    };
                    out.push_str(&unified(&label, &yaml(&before), &yaml(&after)));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    state.discard_changes();
    if !errors.is_empty() {
        return Err(Failure::new(2, errors.join("\n")));
    }
    if out.is_empty() {
        return Ok(out);
    }
    let mut f = Failure::new(1, "");
    f.stdout = out;
    Err(f)
}

/// A unified diff of two texts as `diff -u -N` prints it under kubectl's
/// file names (three lines of context).
fn unified(label: &str, old: &str, new: &str) -> String {
    let live = format!("/tmp/LIVE-fake/{label}");
    let merged = format!("/tmp/MERGED-fake/{label}");
    let body = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&live, &merged)
        .to_string();
    format!("diff -u -N {live} {merged}\n{body}")
}
