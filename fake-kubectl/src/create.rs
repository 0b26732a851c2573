//! `kubectl create -f -` and `kubectl replace -f -` of one JSON object, as
//! the tool uses them for Leases (its locks) and the Namespace that holds
//! them. Create is atomic: an object that exists is refused with the API
//! server's `AlreadyExists`; replace is an update with optimistic
//! concurrency: a `metadata.resourceVersion` that is not the stored one is
//! refused with its `Conflict` (apimachinery's `NewAlreadyExists`,
//! `NewConflict` and the registry's optimistic-lock message).

use serde_json::Value;

use crate::apply;
use crate::invocation::{Failure, Invocation};
use crate::object::{pretty, without_managed_fields};
use crate::rbac;
use crate::resources;
use crate::state::State;

/// The kinds the tool creates or replaces; anything else is not implemented.
const KINDS: &[&str] = &["Lease", "Namespace"];

/// The one object on stdin, its resource, namespace and name.
fn object_of(
    state: &State,
    inv: &Invocation,
    verb: &str,
    input: &[u8],
) -> Result<(Value, &'static resources::Resource, Option<String>, String), Failure> {
    inv.only(verb, &["filename", "output", "namespace"])?;
    if inv.flag("filename") != Some("-") {
        return Err(Failure::not_implemented(format!("`{verb}` without `-f -`")));
    }
    if inv.flag("output") != Some("json") {
        return Err(Failure::not_implemented(format!(
            "`{verb}` without `-o json`"
        )));
    }
    let mut object: Value = serde_json::from_slice(input).map_err(|_| {
        Failure::not_implemented(format!("`{verb}` of anything but one JSON object"))
    })?;
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    if !KINDS.contains(&kind.as_str()) {
        return Err(Failure::not_implemented(format!("`{verb}` of a {kind}")));
    }
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
        return Err(Failure::new(
            1,
            format!(
                "error: the namespace from the provided object \"{given}\" does not match the namespace \"{flag}\". You must pass '--namespace={given}' to perform this operation."
            ),
        ));
    }
    let ns = r
        .namespaced
        .then(|| given.map(str::to_owned).unwrap_or_else(|| inv.namespace()));
    if let Some(ns) = &ns {
        object["metadata"]["namespace"] = Value::String(ns.clone());
    }
    // The API server authorizes a request before it looks at the object.
    rbac::authorize(state, verb_of(verb), r, None, ns.as_deref(), Some(&name))
        .map_err(|e| Failure::new(1, e))?;
    Ok((object, r, ns, name))
}

fn verb_of(verb: &str) -> &'static str {
    if verb == "create" { "create" } else { "update" }
}

fn stored(state: &State, kind: &str, ns: Option<&str>, name: &str) -> String {
    let o = state.get(kind, ns, name).cloned().unwrap_or_default();
    pretty(&without_managed_fields(&o))
}

pub fn create(state: &mut State, inv: &Invocation, input: &[u8]) -> Result<String, Failure> {
    let (mut object, r, ns, name) = object_of(state, inv, "create", input)?;
    if state.get(r.kind, ns.as_deref(), &name).is_some() {
        return Err(Failure::new(
            1,
            format!(
                "Error from server (AlreadyExists): {} \"{name}\" already exists",
                r.qualified()
            ),
        ));
    }
    // A real server refuses a create that names a resourceVersion; its
    // exact reply (the status code varies by version) is not modelled, and
    // the tool never sends one: fail loudly rather than in other words.
    if object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty())
    {
        return Err(Failure::not_implemented(
            "`create` of an object that names a resourceVersion",
        ));
    }
    if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    apply::store(state, object).map_err(|e| Failure::new(1, e))?;
    Ok(stored(state, r.kind, ns.as_deref(), &name))
}

pub fn replace(state: &mut State, inv: &Invocation, input: &[u8]) -> Result<String, Failure> {
    let (object, r, ns, name) = object_of(state, inv, "replace", input)?;
    let Some(live) = state.get(r.kind, ns.as_deref(), &name).cloned() else {
        return Err(Failure::new(
            1,
            format!(
                "Error from server (NotFound): {} \"{name}\" not found",
                r.qualified()
            ),
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
        return Err(Failure::new(
            1,
            format!(
                "Error from server (Conflict): Operation cannot be fulfilled on {} \"{name}\": \
                 the object has been modified; please apply your changes to the latest version and try again",
                r.qualified()
            ),
        ));
    }
    apply::store(state, object).map_err(|e| Failure::new(1, e))?;
    Ok(stored(state, r.kind, ns.as_deref(), &name))
}
