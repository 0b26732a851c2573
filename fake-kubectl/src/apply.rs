//! `apply --server-side` (and its `--dry-run=server`) and `diff
//! --server-side`: field ownership as the API server keeps it (`fields.rs`),
//! then validation, admission and storing as the API server does them.
//!
//! A dry run, and each object of a diff, is evaluated on its own against
//! the cluster as it is: a Namespace earlier in the same stream is not
//! there for the objects after it (kubernetes/kubernetes#114141).

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

use crate::invocation::{Failure, Invocation};
use crate::object::{key, labels, pretty, without_managed_fields};
use crate::resources;
use crate::state::State;
use crate::{admission, controllers, fields, rbac};

/// kubectl's help after a field-manager conflict (apply.go).
const CONFLICT_HELP: &str =
    "Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts";

/// Why one object was not applied.
enum Refused {
    /// A field-manager conflict (409): its message.
    Conflict(String),
    /// Any other error, as kubectl prints it.
    Error(String),
}

/// The objects of a `-f -` stream, each with its namespace filled in, or
/// kubectl's error for a stream it cannot parse. Read before the cluster
/// is opened: their namespaces are what the call reads (cli.rs).
pub(crate) fn objects_of(inv: &Invocation, input: &str) -> Result<Vec<Value>, String> {
    // kubectl decodes a stream one document at a time, however many there
    // are (a hundred tenants' objects are over a thousand): no budget.
    let options = serde_saphyr::options! { budget: None };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(input, options)
        .map_err(|e| format!("error: error parsing STDIN: {e}"))?;
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
    let default_ns = inv.namespace();
    for object in &mut objects {
        if object
            .pointer("/metadata/namespace")
            .is_some_and(Value::is_string)
        {
            continue;
        }
        let namespaced = object["kind"]
            .as_str()
            .and_then(resources::by_kind)
            .is_some_and(|r| r.namespaced);
        if namespaced && object.get("metadata").is_some_and(Value::is_object) {
            object["metadata"]["namespace"] = json!(default_ns);
        }
    }
    Ok(objects)
}

/// One object applied by `manager`: authorization, field ownership, then
/// storing. Returns the object as stored, which is what the API server
/// answers: controllers act on it afterwards, so their work (a
/// Deployment's status) is not in the answer. A dry run's controllers
/// would act on a copy that is thrown away, so they do not run at all.
/// `settled` says whether this call already reconciled every object it
/// read: then only the changed object's namespace needs it.
fn apply_one(
    state: &mut State,
    object: Value,
    manager: &str,
    force: bool,
    settled: &mut bool,
) -> Result<Value, Refused> {
    let (kind, ns, name) = key(&object);
    let ns = (!ns.is_empty()).then_some(ns);
    if let Some(r) = resources::by_kind(&kind) {
        rbac::authorize(state, "patch", r, None, ns.as_deref(), Some(&name))
            .map_err(Refused::Error)?;
    }
    let live = state.get(&kind, ns.as_deref(), &name).cloned();
    let now = state.now();
    let merged = fields::apply(&kind, live.as_ref(), &object, manager, force, &now)
        .map_err(|c| Refused::Conflict(fields::conflict_message(&c)))?;
    let (kind, ns, name) = store(state, merged).map_err(Refused::Error)?;
    let stored = state
        .get(&kind, ns.as_deref(), &name)
        .cloned()
        .unwrap_or_default();
    if !state.dry_running {
        // The namespace the object belongs to (a Namespace's is itself).
        let unit = ns.or_else(|| (kind == "Namespace").then_some(name));
        match unit {
            Some(unit) if *settled => controllers::reconcile_namespace(state, &unit),
            _ => {
                controllers::reconcile(state);
                *settled = true;
            }
        }
    }
    Ok(stored)
}

pub fn apply(
    state: &mut State,
    inv: &Invocation,
    objects: Result<Vec<Value>, String>,
) -> Result<String, Failure> {
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
            "show-managed-fields",
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
    // kubectl's default manager for server-side apply.
    let manager = inv.flag("field-manager").unwrap_or("kubectl").to_owned();
    let force = inv.flag("force-conflicts") == Some("true");
    let objects = objects.map_err(|e| Failure::new(1, e))?;
    if objects.is_empty() {
        return Err(Failure::new(1, "error: no objects passed to apply"));
    }
    let mut applied = Vec::new();
    let mut errors = Vec::new();
    let mut settled = false;
    for object in objects {
        let result = if dry_run {
            state.dry_run(|s| apply_one(s, object, &manager, force, &mut settled))
        } else {
            apply_one(state, object, &manager, force, &mut settled)
        };
        match result {
            Ok(stored) => applied.push(stored),
            Err(Refused::Conflict(m)) => errors.push(format!("error: {m}\n{CONFLICT_HELP}")),
            Err(Refused::Error(e)) => errors.push(e),
        }
    }
    let shown: Vec<Value> = if inv.has("show-managed-fields") {
        applied
    } else {
        applied.iter().map(without_managed_fields).collect()
    };
    // With -o, kubectl prints the objects only after every one was applied
    // (apply.go's post-processor, which an error skips); without it, a
    // line as each is applied.
    let stdout = match output {
        Some(_) if !errors.is_empty() || shown.is_empty() => String::new(),
        Some(_) if shown.len() == 1 => pretty(&shown[0]),
        // apply.go's own List, whose ListMeta is empty.
        Some(_) => {
            pretty(&json!({"apiVersion": "v1", "items": shown, "kind": "List", "metadata": {}}))
        }
        None => shown
            .iter()
            .map(|o| {
                let kind = o["kind"].as_str().unwrap_or_default();
                format!(
                    "{}/{} serverside-applied{}\n",
                    resources::by_kind(kind)
                        .map(|r| r.printed())
                        .unwrap_or_else(|| kind.to_ascii_lowercase()),
                    o["metadata"]["name"].as_str().unwrap_or_default(),
                    if dry_run { " (server dry run)" } else { "" }
                )
            })
            .collect(),
    };
    if errors.is_empty() {
        Ok(stdout)
    } else {
        let mut f = Failure::new(1, crate::errors::printed(&errors));
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

/// Who owns what, without the times of the entries.
fn ownership(o: &Value) -> Value {
    let mut m = o
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(Value::Null);
    for e in m.as_array_mut().into_iter().flatten() {
        if let Some(e) = e.as_object_mut() {
            e.remove("time");
        }
    }
    m
}

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
    let exists = state
        .index_of(&kind, ns.as_deref().filter(|_| resource.namespaced), &name)
        .is_some();
    let ns = if resource.namespaced {
        let ns = ns.unwrap_or_else(|| "default".to_owned());
        let Some(namespace) = state.get("Namespace", None, &ns).cloned() else {
            return Err(format!(
                "Error from server (NotFound): namespaces \"{ns}\" not found"
            ));
        };
        // The NamespaceLifecycle admission plugin.
        if !exists && namespace.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(format!(
                "Error from server (Forbidden): {} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                resource.qualified()
            ));
        }
        if kind == "Pod" && !exists {
            object = admission::admit_pod(state, &namespace, object)?;
        }
        Some(ns)
    } else {
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        None
    };
    // What the API server itself writes: labels and defaults.
    if kind == "Namespace" {
        object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
    if kind == "Deployment" && object.pointer("/spec/replicas").is_none() {
        object["spec"]["replicas"] = json!(1);
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
            // A write that changes nothing (managed fields compared without
            // their times) is not made: the resourceVersion stays.
            if user_content(&old) == user_content(&object) && ownership(&old) == ownership(&object)
            {
                return Ok(key);
            }
            check_immutable(&kind, &name, &old, &object)?;
            object["metadata"]["uid"] = old["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            if resource.has_generation() {
                // The strategies' PrepareForUpdate: a change of the spec (and
                // for a Deployment, of its annotations) is a new generation.
                let bumped = old.get("spec") != object.get("spec")
                    || (kind == "Deployment"
                        && old.pointer("/metadata/annotations")
                            != object.pointer("/metadata/annotations"));
                let generation =
                    old["metadata"]["generation"].as_u64().unwrap_or(1) + u64::from(bumped);
                object["metadata"]["generation"] = json!(generation);
            }
            // A dry run answers with the stored version: nothing new is stored.
            object["metadata"]["resourceVersion"] = if state.dry_running {
                old["metadata"]["resourceVersion"].clone()
            } else {
                json!(state.next_resource_version())
            };
            if let Some(status) = old.get("status") {
                object["status"] = status.clone();
            }
            if let Some(deleting) = old.pointer("/metadata/deletionTimestamp").cloned() {
                object["metadata"]["deletionTimestamp"] = deleting;
            }
            state.replace_object(i, object);
        }
        None => {
            let rv = state.next_resource_version();
            object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:0>12}", rv));
            object["metadata"]["creationTimestamp"] = json!(state.now());
            if resource.has_generation() {
                object["metadata"]["generation"] = json!(1);
            }
            // A dry run's create is answered without a resourceVersion.
            if !state.dry_running {
                object["metadata"]["resourceVersion"] = json!(rv);
            }
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
/// unified diff per object (LIVE against MERGED, as kubectl names them),
/// or as the program in `KUBECTL_EXTERNAL_DIFF` prints it; exit 1 when
/// anything differs, 0 when nothing does, and 2 (kubectl's 1 plus one) on
/// the first error, printing no diff at all. Nothing is stored.
pub fn diff(
    state: &mut State,
    inv: &Invocation,
    objects: Result<Vec<Value>, String>,
) -> Result<String, Failure> {
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
    // kubectl's default manager with --server-side (GetApplyFieldManagerFlag).
    let manager = inv.flag("field-manager").unwrap_or("kubectl").to_owned();
    let force = inv.flag("force-conflicts") == Some("true");
    // Every object, LIVE and MERGED, under kubectl's file name for it.
    let mut files: Vec<(String, String, String)> = Vec::new();
    for object in objects.map_err(|e| Failure::new(2, e))? {
        let (kind, ns, name) = key(&object);
        let ns_opt = (!ns.is_empty()).then_some(ns.as_str());
        let before = state.get(&kind, ns_opt, &name).cloned();
        match state.dry_run(|s| apply_one(s, object, &manager, force, &mut false)) {
            Ok(after) => {
                // kubectl diff leaves out managed fields.
                let shown = |v: Option<&Value>| v.map(without_managed_fields);
                let (old, new) = mask_secret(&kind, shown(before.as_ref()), shown(Some(&after)));
                let group = resources::by_kind(&kind)
                    .map(|r| r.api_version().replace('/', "."))
                    .unwrap_or_default();
                let yaml = |v: &Option<Value>| {
                    v.as_ref()
                        .map(|v| serde_saphyr::to_string(v).unwrap_or_default())
                        .unwrap_or_default()
                };
                files.push((
                    format!("{group}.{kind}.{ns}.{name}"),
                    yaml(&old),
                    yaml(&new),
                ));
            }
            // kubectl retries a 409 (it might be a stale read) and says so on its last try.
            Err(Refused::Conflict(m)) => {
                let group = resources::by_kind(&kind)
                    .map(|r| r.api_version())
                    .unwrap_or_default();
                let version = group.rsplit('/').next().unwrap_or_default().to_owned();
                let group = group
                    .strip_suffix(&format!("/{version}"))
                    .unwrap_or_default();
                return Err(Failure::new(
                    2,
                    format!(
                        "{} diff.go:364] Object ({group}/{version}, Kind={kind}: {name}) keeps changing, diffing without lock\nError from server (Conflict): {m}",
                        klog_prefix(state, 'W')
                    ),
                ));
            }
            Err(Refused::Error(e)) => return Err(Failure::new(2, e)),
        }
    }
    let (out, status) = match std::env::var("KUBECTL_EXTERNAL_DIFF") {
        Ok(program) if !program.is_empty() => external_diff(&program, &files)?,
        _ => {
            let out: String = files
                .iter()
                .filter(|(_, old, new)| old != new)
                .map(|(label, old, new)| unified(label, old, new))
                .collect();
            let status = i32::from(!out.is_empty());
            (out, status)
        }
    };
    if status == 0 {
        return Ok(out);
    }
    let mut f = Failure::new(status, "");
    f.stdout = out;
    Err(f)
}

/// What kubectl does with `KUBECTL_EXTERNAL_DIFF` (diff.go): the first
/// space-separated word is the program; later words made only of letters,
/// digits, `-` and `=` are passed after the LIVE and MERGED directories,
/// which hold every object. Its output and an exit status of 0 or 1 are
/// kubectl's; any other failure is kubectl's error (exit 2).
fn external_diff(
    command: &str,
    files: &[(String, String, String)],
) -> Result<(String, i32), Failure> {
    let mut words = command.split(' ');
    let program = words.next().unwrap_or_default();
    let extra = words.filter(|w| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '=')
    });
    let failed =
        |why: String| Failure::new(2, format!("error: failed to run \"{program}\": {why}"));
    let base = std::env::temp_dir().join(format!("fake-kubectl-diff-{}", std::process::id()));
    let (live, merged) = (base.join("LIVE"), base.join("MERGED"));
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&live)?;
        std::fs::create_dir_all(&merged)?;
        for (label, old, new) in files {
            std::fs::write(live.join(label), old)?;
            std::fs::write(merged.join(label), new)?;
        }
        Ok(())
    })();
    let result = written.and_then(|()| {
        std::process::Command::new(program)
            .arg(&live)
            .arg(&merged)
            .args(extra)
            .stderr(std::process::Stdio::inherit())
            .output()
    });
    let _ = std::fs::remove_dir_all(&base);
    let output = result.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => failed("executable file not found in $PATH".to_owned()),
        _ => failed(e.to_string()),
    })?;
    match output.status.code() {
        Some(code @ (0 | 1)) => Ok((String::from_utf8_lossy(&output.stdout).into_owned(), code)),
        Some(code) => Err(failed(format!("exit status {code}"))),
        None => Err(failed("signal: killed".to_owned())),
    }
}

/// A klog line's prefix as kubectl writes it (`W1124 06:00:00.000000   4242`).
pub fn klog_prefix(state: &State, level: char) -> String {
    let now = state.now();
    // 2026-11-24T06:00:00Z -> 1124 06:00:00
    let (date, time) = now.split_once('T').unwrap_or(("2026-01-01", "00:00:00Z"));
    let mmdd: String = date.split('-').skip(1).collect();
    format!(
        "{level}{mmdd} {}.000000   {}",
        time.trim_end_matches('Z'),
        std::process::id()
    )
}

/// kubectl diff never shows a Secret's values: `***`, and `*** (before)` /
/// `*** (after)` where a key on both sides changes its value.
fn mask_secret(
    kind: &str,
    old: Option<Value>,
    new: Option<Value>,
) -> (Option<Value>, Option<Value>) {
    if kind != "Secret" {
        return (old, new);
    }
    let data = |v: &Option<Value>| {
        v.as_ref()
            .and_then(|v| v.get("data"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (od, nd) = (data(&old), data(&new));
    let mask =
        |v: Option<Value>, mine: &Map<String, Value>, theirs: &Map<String, Value>, when: &str| {
            v.map(|mut v| {
                if let Some(m) = v.get_mut("data").and_then(Value::as_object_mut) {
                    for (k, value) in m.iter_mut() {
                        // diff.go's Masker: a suffix only where the key is on
                        // both sides with different values.
                        let changed = theirs.get(k).is_some_and(|t| Some(t) != mine.get(k));
                        *value = json!(if changed {
                            format!("*** ({when})")
                        } else {
                            "***".to_owned()
                        });
                    }
                }
                v
            })
        };
    (mask(old, &od, &nd, "before"), mask(new, &nd, &od, "after"))
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
