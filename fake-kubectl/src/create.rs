//! `kubectl create -f -` and `kubectl replace -f -` of a JSON object, or of
//! a `List` of them, as the tool uses them for Leases (its locks) and the
//! Namespace that holds them. Create is atomic: an object that exists is
//! refused with the API server's `AlreadyExists`; replace is an update with
//! optimistic concurrency: a `metadata.resourceVersion` that is not the
//! stored one is refused with its `Conflict` (apimachinery's
//! `NewAlreadyExists`, `NewConflict` and the registry's optimistic-lock
//! message).
//!
//! As kubectl's create.go and replace.go do (a builder with
//! `ContinueOnError`, then a visit of each object): every object is tried
//! on its own, each one done is printed as it is done (`-o json`: one JSON
//! document after another, not a List), an API error names its source
//! (`cmdutil.AddSourceToErr`: `error when creating "STDIN": ...`), and the
//! errors are printed at the end (`errors.rs`).

use serde_json::Value;

use crate::apply;
use crate::invocation::{Failure, Invocation};
use crate::object::{pretty, without_managed_fields};
use crate::rbac;
use crate::resources;
use crate::state::State;

/// The kinds the tool creates or replaces; anything else is not implemented.
const KINDS: &[&str] = &["Lease", "Namespace"];

/// The objects on stdin: one JSON object, or the items of a JSON `List`
/// (the builder's `Flatten`). Anything else is not implemented.
fn objects_of(inv: &Invocation, verb: &str, input: &[u8]) -> Result<Vec<Value>, Failure> {
    inv.only(verb, &["filename", "output", "namespace"])?;
    if inv.flag("filename") != Some("-") {
        return Err(Failure::not_implemented(format!("`{verb}` without `-f -`")));
    }
    if inv.flag("output") != Some("json") {
        return Err(Failure::not_implemented(format!(
            "`{verb}` without `-o json`"
        )));
    }
    let document: Value = serde_json::from_slice(input)
        .map_err(|_| Failure::not_implemented(format!("`{verb}` of anything but JSON objects")))?;
    let objects = if document["kind"] == "List" {
        document["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![document]
    };
    for object in &objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !KINDS.contains(&kind) {
            return Err(Failure::not_implemented(format!("`{verb}` of a {kind}")));
        }
        // A real server refuses a create that names a resourceVersion; its
        // exact reply (the status code varies by version) is not modelled,
        // and the tool never sends one: fail loudly rather than in other words.
        if verb == "create"
            && object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        {
            return Err(Failure::not_implemented(
                "`create` of an object that names a resourceVersion",
            ));
        }
    }
    if objects.is_empty() {
        return Err(Failure::new(
            1,
            format!("error: no objects passed to {verb}"),
        ));
    }
    Ok(objects)
}

/// One object's resource, namespace and name, checked as kubectl and the
/// API server check it before acting; the error as kubectl prints it.
fn target(
    state: &State,
    inv: &Invocation,
    verb: &str,
    mut object: Value,
) -> Result<(Value, &'static resources::Resource, Option<String>, String), String> {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let r = resources::by_kind(&kind).expect("known kinds");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let given = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    // kubectl itself refuses an object whose namespace is not --namespace.
    if let (true, Some(given), Some(flag)) = (r.namespaced, given, inv.flag("namespace"))
        && given != flag
    {
        return Err(format!(
            "error: the namespace from the provided object \"{given}\" does not match the namespace \"{flag}\". You must pass '--namespace={given}' to perform this operation."
        ));
    }
    let ns = r
        .namespaced
        .then(|| given.map(str::to_owned).unwrap_or_else(|| inv.namespace()));
    if let Some(ns) = &ns {
        object["metadata"]["namespace"] = Value::String(ns.clone());
    }
    // The API server authorizes a request before it looks at the object.
    let request = if verb == "create" { "create" } else { "update" };
    rbac::authorize(state, request, r, None, ns.as_deref(), Some(&name))
        .map_err(|e| with_source(&e, verb))?;
    Ok((object, r, ns, name))
}

/// `cmdutil.AddSourceToErr(verb, "STDIN", err)`: an API status error's
/// message names the source; kubectl then prints it as usual.
fn with_source(error: &str, verb: &str) -> String {
    let doing = if verb == "create" {
        "creating"
    } else {
        "replacing"
    };
    match error.split_once("): ") {
        Some((status, message)) if error.starts_with("Error from server (") => {
            format!("{status}): error when {doing} \"STDIN\": {message}")
        }
        _ => error.to_owned(),
    }
}

fn stored(state: &State, kind: &str, ns: Option<&str>, name: &str) -> String {
    let o = state.get(kind, ns, name).cloned().unwrap_or_default();
    pretty(&without_managed_fields(&o))
}

/// What a verb does to one object that passed [`target`]: its printed
/// form, or its error as kubectl prints it.
type OneObject = fn(
    &mut State,
    Value,
    &'static resources::Resource,
    Option<String>,
    String,
) -> Result<String, String>;

/// Each object in turn; what was done printed, the errors at the end.
fn each(
    state: &mut State,
    inv: &Invocation,
    verb: &str,
    input: &[u8],
    one: OneObject,
) -> Result<String, Failure> {
    let mut out = String::new();
    let mut errors = Vec::new();
    for object in objects_of(inv, verb, input)? {
        let done = target(state, inv, verb, object)
            .and_then(|(object, r, ns, name)| one(state, object, r, ns, name));
        match done {
            Ok(printed) => out.push_str(&printed),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(out);
    }
    let mut f = Failure::new(1, crate::errors::printed(&errors));
    f.stdout = out;
    Err(f)
}

pub fn create(state: &mut State, inv: &Invocation, input: &[u8]) -> Result<String, Failure> {
    each(state, inv, "create", input, create_one)
}

fn create_one(
    state: &mut State,
    mut object: Value,
    r: &'static resources::Resource,
    ns: Option<String>,
    name: String,
) -> Result<String, String> {
    if state.get(r.kind, ns.as_deref(), &name).is_some() {
        return Err(with_source(
            &format!(
                "Error from server (AlreadyExists): {} \"{name}\" already exists",
                r.qualified()
            ),
            "create",
        ));
    }
    if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    apply::store(state, object).map_err(|e| with_source(&e, "create"))?;
    Ok(stored(state, r.kind, ns.as_deref(), &name))
}

pub fn replace(state: &mut State, inv: &Invocation, input: &[u8]) -> Result<String, Failure> {
    each(state, inv, "replace", input, replace_one)
}

fn replace_one(
    state: &mut State,
    object: Value,
    r: &'static resources::Resource,
    ns: Option<String>,
    name: String,
) -> Result<String, String> {
    let Some(live) = state.get(r.kind, ns.as_deref(), &name).cloned() else {
        return Err(with_source(
            &format!(
                "Error from server (NotFound): {} \"{name}\" not found",
                r.qualified()
            ),
            "replace",
        ));
    };
    let given = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if let Some(given) = given.filter(|v| !v.is_empty())
        && Some(given)
            != live
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    {
        return Err(with_source(
            &format!(
                "Error from server (Conflict): Operation cannot be fulfilled on {} \"{name}\": \
                 the object has been modified; please apply your changes to the latest version and try again",
                r.qualified()
            ),
            "replace",
        ));
    }
    apply::store(state, object).map_err(|e| with_source(&e, "replace"))?;
    Ok(stored(state, r.kind, ns.as_deref(), &name))
}
