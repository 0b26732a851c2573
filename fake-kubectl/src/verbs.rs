//! Every kubectl verb the tool uses, dispatched from its words; `apply` and
//! `diff` live in `apply.rs`.

use serde_json::{Value, json};

use crate::invocation::{Failure, Invocation};
use crate::object::{labels, list, namespace_and_name, pretty};
use crate::resources::{self, Resource};
use crate::state::State;
use crate::{apply, controllers, fields, rbac, terminating};

/// Runs the verb of `inv`. `objects` are the objects of an `apply` or
/// `diff` stream, when the caller already read them from `input`.
pub fn dispatch(
    state: &mut State,
    inv: &Invocation,
    input: &[u8],
    objects: Option<Result<Vec<Value>, String>>,
) -> Result<Vec<u8>, Failure> {
    let words: Vec<&str> = inv.words.iter().map(String::as_str).collect();
    let text = |r: Result<String, Failure>| r.map(String::into_bytes);
    match words.as_slice() {
        ["get"] if inv.has("raw") => {
            inv.only("get --raw", &["raw"])?;
            text(crate::raw::get_raw(
                state,
                inv.flag("raw").unwrap_or_default(),
            ))
        }
        ["get", ..] => text(get(state, inv)),
        ["diff", ..] => {
            let input = std::str::from_utf8(input)
                .map_err(|_| Failure::new(1, "error: STDIN is not UTF-8"))?;
            let objects = objects.unwrap_or_else(|| apply::objects_of(inv, input));
            text(apply::diff(state, inv, objects))
        }
        ["apply", ..] => {
            let input = std::str::from_utf8(input)
                .map_err(|_| Failure::new(1, "error: STDIN is not UTF-8"))?;
            let objects = objects.unwrap_or_else(|| apply::objects_of(inv, input));
            text(apply::apply(state, inv, objects))
        }
        ["create"] => text(crate::create::create(state, inv, input)),
        ["replace"] => text(crate::create::replace(state, inv, input)),
        ["rollout", "status", ..] => text(rollout_status(state, inv)),
        ["rollout", "restart", target] => text(rollout_restart(state, inv, target)),
        ["scale", target] => text(scale(state, inv, target)),
        ["logs", target] => text(logs(state, inv, target)),
        ["exec", target] => exec(state, inv, target, input),
        ["wait", target] => text(wait(state, inv, target)),
        ["delete", kind, name] => text(delete(state, inv, kind, name)),
        ["delete", kind, names @ ..] if !names.is_empty() => {
            text(delete_each(state, inv, kind, names))
        }
        ["annotate", target, changes @ ..] if !changes.is_empty() => {
            text(annotate(state, inv, target, changes))
        }
        ["patch", target] => text(patch(state, inv, target, None)),
        ["patch", kind, name] => text(patch(state, inv, kind, Some(name))),
        ["auth", "can-i", verb, resource] => text(crate::rbac::can_i(state, inv, verb, resource)),
        [] => Err(Failure::not_implemented("kubectl without a verb")),
        _ => Err(Failure::not_implemented(format!(
            "`kubectl {}`",
            words.join(" ")
        ))),
    }
}

fn get(state: &mut State, inv: &Invocation) -> Result<String, Failure> {
    inv.only(
        "get",
        &[
            "namespace",
            "all-namespaces",
            "selector",
            "output",
            "ignore-not-found",
            "show-managed-fields",
        ],
    )?;
    if inv.flag("output") != Some("json") {
        return Err(Failure::not_implemented("`get` without `-o json`"));
    }
    let Some(types) = inv.words.get(1) else {
        return Err(Failure::new(
            1,
            "error: You must specify the type of resource to get.",
        ));
    };
    let mut kinds: Vec<&Resource> = Vec::new();
    for t in types.split(',') {
        if t.contains('/') {
            return Err(Failure::not_implemented("TYPE/NAME arguments to `get`"));
        }
        match resources::lookup(t) {
            Some(r) => kinds.push(r),
            None => {
                return Err(Failure::new(
                    1,
                    format!("error: the server doesn't have a resource type \"{t}\""),
                ));
            }
        }
    }
    let names = &inv.words[2..];
    let all = inv.has("all-namespaces");
    let ns = inv.namespace();
    let selector = match inv.flag("selector") {
        Some(s) => Some(parse_selector(s)?),
        None => None,
    };
    let in_scope = |r: &Resource, o: &Value| {
        !r.namespaced || all || o["metadata"]["namespace"].as_str() == Some(ns.as_str())
    };
    // kubectl hides managed fields unless asked (--show-managed-fields=false).
    let show_managed = inv.has("show-managed-fields");
    let shown = |mut o: Value| {
        if !show_managed && let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        o
    };
    let scope_ns = |r: &Resource| (r.namespaced && !all).then_some(ns.as_str());
    match names {
        [] => {}
        [name] if kinds.len() == 1 => {
            let r = kinds[0];
            rbac::authorize(state, "get", r, None, scope_ns(r), Some(name))
                .map_err(|e| Failure::new(1, e))?;
            let found = state.take_objects().into_iter().find(|o| {
                o["kind"] == r.kind && o["metadata"]["name"] == name.as_str() && in_scope(r, o)
            });
            return match found {
                Some(o) => Ok(pretty(&shown(o))),
                None if inv.has("ignore-not-found") => Ok(String::new()),
                None => Err(Failure::new(
                    1,
                    format!(
                        "Error from server (NotFound): {} \"{name}\" not found",
                        r.qualified()
                    ),
                )),
            };
        }
        _ => {
            return Err(Failure::not_implemented(
                "`get` with several names or types and a name",
            ));
        }
    }
    for r in &kinds {
        rbac::authorize(state, "list", r, None, scope_ns(r), None)
            .map_err(|e| Failure::new(1, e))?;
    }
    // A read hands its objects over: nothing is written back.
    let mut objects = state.take_objects();
    let mut items = Vec::new();
    for r in kinds {
        let (mut found, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| {
            o["kind"] == r.kind && in_scope(r, o) && selector.as_ref().is_none_or(|s| selects(s, o))
        });
        objects = rest;
        found.sort_by_key(namespace_and_name);
        items.extend(found.into_iter().map(shown));
    }
    Ok(pretty(&list(items)))
}

/// One term of a label selector.
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

fn parse_selector(s: &str) -> Result<Vec<Term>, Failure> {
    s.split(',')
        .map(|term| {
            let term = term.trim();
            if term.contains(" in ") || term.contains("notin") || term.contains('(') {
                Err(Failure::not_implemented("set-based label selectors"))
            } else if let Some((k, v)) = term.split_once("!=") {
                Ok(Term::NotEquals(k.into(), v.into()))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Ok(Term::Equals(k.into(), v.into()))
            } else if let Some(k) = term.strip_prefix('!') {
                Ok(Term::NotExists(k.into()))
            } else if term.is_empty() {
                Err(Failure::new(1, "error: empty label selector term"))
            } else {
                Ok(Term::Exists(term.into()))
            }
        })
        .collect()
}

fn selects(selector: &[Term], o: &Value) -> bool {
    let l = labels(o);
    selector.iter().all(|t| match t {
        Term::Equals(k, v) => l.get(k) == Some(v),
        Term::NotEquals(k, v) => l.get(k) != Some(v),
        Term::Exists(k) => l.contains_key(k),
        Term::NotExists(k) => !l.contains_key(k),
    })
}

fn rollout_status(state: &mut State, inv: &Invocation) -> Result<String, Failure> {
    inv.only("rollout status", &["namespace", "timeout"])?;
    let target = inv.words.get(2).map(String::as_str).unwrap_or_default();
    let Some((kind, name)) = target.split_once('/') else {
        return Err(Failure::not_implemented(
            "`rollout status` without TYPE/NAME",
        ));
    };
    if resources::lookup(kind).map(|r| r.kind) != Some("Deployment") {
        return Err(Failure::not_implemented(format!(
            "`rollout status` of {kind}"
        )));
    }
    let ns = inv.namespace();
    // kubectl reads the Deployment first.
    if let Some(r) = resources::by_kind("Deployment") {
        rbac::authorize(state, "get", r, None, Some(&ns), Some(name))
            .map_err(|e| Failure::new(1, e))?;
    }
    let Some(d) = state.get("Deployment", Some(&ns), name) else {
        return Err(Failure::new(
            1,
            format!("Error from server (NotFound): deployments.apps \"{name}\" not found"),
        ));
    };
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let available = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if available >= want {
        Ok(format!("deployment \"{name}\" successfully rolled out\n"))
    } else {
        let mut f = Failure::new(1, "error: timed out waiting for the condition");
        f.stdout = format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {want} updated replicas are available...\n"
        );
        Err(f)
    }
}

/// Splits `deployment/bot` (or `deploy/bot`) into the resource and name.
fn target<'a>(raw: &'a str, verb: &str) -> Result<(&'static Resource, &'a str), Failure> {
    let Some((kind, name)) = raw.split_once('/') else {
        return Err(Failure::not_implemented(format!(
            "`{verb}` without TYPE/NAME"
        )));
    };
    let r = resources::lookup(kind).ok_or_else(|| {
        Failure::new(
            1,
            format!("error: the server doesn't have a resource type \"{kind}\""),
        )
    })?;
    Ok((r, name))
}

/// A write that is not an apply (an `Update`): `change` edits the stored
/// object, and `manager` becomes the owner of every field it changed.
fn update(
    state: &mut State,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    manager: &str,
    subresource: Option<&str>,
    change: impl FnOnce(&mut Value) -> Result<(), Failure>,
) -> Result<bool, Failure> {
    // kubectl reads the object (or its scale) before it changes it.
    rbac::authorize(state, "get", r, subresource, ns, Some(name))
        .and_then(|()| rbac::authorize(state, "patch", r, subresource, ns, Some(name)))
        .map_err(|e| Failure::new(1, e))?;
    let i = state.index_of(r.kind, ns, name).ok_or_else(|| {
        Failure::new(
            1,
            format!(
                "Error from server (NotFound): {} \"{name}\" not found",
                r.qualified()
            ),
        )
    })?;
    let before = state.objects()[i].clone();
    let mut after = before.clone();
    change(&mut after)?;
    if after == before {
        return Ok(false);
    }
    let now = state.now();
    fields::record_update(
        r.kind,
        Some(&before),
        &mut after,
        manager,
        subresource,
        &now,
    );
    // Validated and stored as every write is (immutable fields, names,
    // generation, resourceVersion).
    crate::apply::store(state, after).map_err(|e| Failure::new(1, e))?;
    controllers::reconcile(state);
    Ok(true)
}

fn scale(state: &mut State, inv: &Invocation, raw: &str) -> Result<String, Failure> {
    inv.only("scale", &["namespace", "replicas"])?;
    let (r, name) = target(raw, "scale")?;
    if r.kind != "Deployment" {
        return Err(Failure::not_implemented(format!("`scale` of {}", r.kind)));
    }
    let replicas: u64 = inv
        .flag("replicas")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Failure::new(1, "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0"))?;
    let ns = inv.namespace();
    // Through the scale subresource, as kubectl's own user agent: the
    // managed-fields entry is `kubectl`, subresource `scale`.
    update(state, r, Some(&ns), name, "kubectl", Some("scale"), |d| {
        d["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(format!("deployment.apps/{name} scaled\n"))
}

fn rollout_restart(state: &mut State, inv: &Invocation, raw: &str) -> Result<String, Failure> {
    inv.only("rollout restart", &["namespace"])?;
    let (r, name) = target(raw, "rollout restart")?;
    if r.kind != "Deployment" {
        return Err(Failure::not_implemented(format!(
            "`rollout restart` of {}",
            r.kind
        )));
    }
    let ns = inv.namespace();
    // kubectl stamps its own clock, to the second; the same stamp twice is
    // no change, which kubectl refuses.
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let key = "kubectl.kubernetes.io/restartedAt";
    if state.get("Deployment", Some(&ns), name).and_then(|d| {
        d.pointer(&format!(
            "/spec/template/metadata/annotations/{}",
            key.replace('/', "~1")
        ))
    }) == Some(&json!(stamp))
    {
        return Err(Failure::new(
            1,
            format!(
                "error: failed to create patch for {name}: if restart has already been triggered within the past second, please wait before attempting to trigger another"
            ),
        ));
    }
    update(state, r, Some(&ns), name, "kubectl-rollout", None, |d| {
        d["spec"]["template"]["metadata"]["annotations"][key] = json!(stamp);
        Ok(())
    })?;
    Ok(format!("deployment.apps/{name} restarted\n"))
}

/// The pods of a `deployment/NAME`, or the one `pod/NAME` (or bare NAME).
fn pods_of<'s>(state: &'s State, ns: &str, raw: &str) -> Result<Vec<&'s Value>, Failure> {
    let owner = |o: &Value| {
        o.pointer("/metadata/annotations/fake-kubectl~1owner")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match raw.split_once('/') {
        Some((kind, name)) if resources::lookup(kind).map(|r| r.kind) == Some("Deployment") => {
            if state.get("Deployment", Some(ns), name).is_none() {
                return Err(Failure::new(
                    1,
                    format!("Error from server (NotFound): deployments.apps \"{name}\" not found"),
                ));
            }
            let key = format!("{ns}/{name}");
            Ok(state
                .objects()
                .iter()
                .filter(|o| o["kind"] == "Pod" && owner(o).as_deref() == Some(key.as_str()))
                .collect())
        }
        Some((kind, _)) if resources::lookup(kind).map(|r| r.kind) != Some("Pod") => {
            Err(Failure::not_implemented(format!("pods of {kind}")))
        }
        _ => {
            let name = raw.rsplit('/').next().unwrap_or(raw);
            state
                .get("Pod", Some(ns), name)
                .map(|p| vec![p])
                .ok_or_else(|| {
                    Failure::new(
                        1,
                        format!("Error from server (NotFound): pods \"{name}\" not found"),
                    )
                })
        }
    }
}

fn container_of<'p>(inv: &Invocation, pod: &'p Value) -> Result<&'p Value, Failure> {
    let containers = pod["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    match inv.flag("container") {
        None => containers.first(),
        Some(c) => containers.iter().find(|x| x["name"] == c),
    }
    .ok_or_else(|| {
        Failure::new(
            1,
            format!(
                "error: container {} is not valid for pod {pod_name}",
                inv.flag("container").unwrap_or_default()
            ),
        )
    })
}

fn logs(state: &mut State, inv: &Invocation, raw: &str) -> Result<String, Failure> {
    inv.only(
        "logs",
        &[
            "namespace",
            "container",
            "tail",
            "since",
            "follow",
            "previous",
        ],
    )?;
    let ns = inv.namespace();
    let pods = pods_of(state, &ns, raw)?;
    let Some(pod) = pods.first() else {
        return Err(Failure::new(
            1,
            "error: timed out waiting for the condition",
        ));
    };
    let container = container_of(inv, pod)?;
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(r) = resources::by_kind("Pod") {
        rbac::authorize(
            state,
            "get",
            r,
            Some("log"),
            pod["metadata"]["namespace"].as_str(),
            Some(pod_name),
        )
        .map_err(|e| Failure::new(1, e))?;
    }
    let owner = pod
        .pointer("/metadata/annotations/fake-kubectl~1owner")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let logs = &state.data["logs"][owner];
    let text = if inv.has("previous") {
        match logs["previous"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => t.to_owned(),
            None => {
                return Err(Failure::new(
                    1,
                    format!(
                        "Error from server (BadRequest): previous terminated container \"{}\" in pod \"{pod_name}\" not found",
                        container["name"].as_str().unwrap_or_default()
                    ),
                ));
            }
        }
    } else {
        logs["current"].as_str().unwrap_or_default().to_owned()
    };
    let lines: Vec<&str> = text.lines().collect();
    let keep = match inv.flag("tail") {
        Some(n) => n.parse::<i64>().map_err(|_| {
            Failure::new(
                1,
                format!("error: invalid argument \"{n}\" for \"--tail\" flag"),
            )
        })?,
        None => -1,
    };
    let start = if keep < 0 {
        0
    } else {
        lines.len().saturating_sub(keep as usize)
    };
    Ok(lines[start..].iter().map(|l| format!("{l}\n")).collect())
}

fn exec(state: &mut State, inv: &Invocation, raw: &str, input: &[u8]) -> Result<Vec<u8>, Failure> {
    inv.only("exec", &["namespace", "container", "stdin"])?;
    if inv.command.is_empty() {
        return Err(Failure::new(
            1,
            "error: you must specify at least one command for the container",
        ));
    }
    let ns = inv.namespace();
    let pods = pods_of(state, &ns, raw)?;
    let Some(pod) = pods.first().copied() else {
        return Err(Failure::new(1, "error: no pods found"));
    };
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if pod["status"]["phase"] != "Running" {
        return Err(Failure::new(
            1,
            format!("error: unable to upgrade connection: pod {pod_name} is not running"),
        ));
    }
    let container = container_of(inv, pod)?;
    let pods = resources::lookup("pods").expect("pods are a resource");
    rbac::authorize(
        state,
        "create",
        pods,
        Some("exec"),
        Some(&ns),
        Some(pod_name),
    )
    .map_err(|e| Failure::new(1, e))?;
    let stdin = if inv.has("stdin") { input } else { &[] };
    crate::pod_exec::exec(state, &ns, pod, container, &inv.command, stdin)
}

fn wait(state: &mut State, inv: &Invocation, raw: &str) -> Result<String, Failure> {
    inv.only("wait", &["namespace", "for", "timeout"])?;
    let condition = match inv.flag("for") {
        Some("condition=Ready") => "Ready",
        Some("condition=ContainersReady") => "ContainersReady",
        other => {
            return Err(Failure::not_implemented(format!(
                "`wait --for={}`",
                other.unwrap_or_default()
            )));
        }
    };
    let ns = inv.namespace();
    let (r, name) = target(raw, "wait")?;
    if r.kind != "Pod" {
        return Err(Failure::not_implemented(format!("`wait` for {}", r.kind)));
    }
    // kubectl wait lists and watches the pod by name.
    rbac::authorize(state, "list", r, None, Some(&ns), None).map_err(|e| Failure::new(1, e))?;
    let pod = state.get("Pod", Some(&ns), name).ok_or_else(|| {
        Failure::new(
            1,
            format!("Error from server (NotFound): pods \"{name}\" not found"),
        )
    })?;
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == condition && c["status"] == "True");
    if ready {
        Ok(format!("pod/{name} condition met\n"))
    } else {
        Err(Failure::new(
            1,
            format!("error: timed out waiting for the condition on pods/{name}"),
        ))
    }
}

fn delete(state: &mut State, inv: &Invocation, kind: &str, name: &str) -> Result<String, Failure> {
    inv.only(
        "delete",
        &["namespace", "ignore-not-found", "wait", "timeout"],
    )?;
    // A flag's value is read before anything is done. Without --timeout
    // (or with 0) kubectl delete waits a week.
    let limit = match inv.flag("timeout") {
        None => None,
        Some(t) => Some(humantime::parse_duration(t).map_err(|_| {
            Failure::new(
                1,
                format!("Error: invalid argument \"{t}\" for \"--timeout\" flag: time: invalid duration \"{t}\"\nSee 'kubectl delete --help' for usage."),
            )
        })?),
    }
    .filter(|d| !d.is_zero())
    .unwrap_or(std::time::Duration::from_secs(168 * 3600));
    let r = resources::lookup(kind).ok_or_else(|| {
        Failure::new(
            1,
            format!("error: the server doesn't have a resource type \"{kind}\""),
        )
    })?;
    let ns = r.namespaced.then(|| inv.namespace());
    // The API server authorizes a request before it looks for the object.
    rbac::authorize(state, "delete", r, None, ns.as_deref(), Some(name))
        .map_err(|e| Failure::new(1, e))?;
    let Some(i) = state.index_of(r.kind, ns.as_deref(), name) else {
        return if inv.has("ignore-not-found") {
            Ok(String::new())
        } else {
            Err(Failure::new(
                1,
                format!(
                    "Error from server (NotFound): {} \"{name}\" not found",
                    r.qualified()
                ),
            ))
        };
    };
    let deleted = format!("{} \"{name}\" deleted\n", r.printed());
    // A namespace is only marked: it terminates over the next calls (see
    // terminating.rs), and kubectl --wait (its default) waits for that.
    if r.kind == "Namespace" {
        // A second delete of a namespace whose finalizer has not finished
        // is refused (the namespace registry's Delete), --ignore-not-found
        // or not.
        if state.objects()[i]
            .pointer("/metadata/deletionTimestamp")
            .is_some()
        {
            return Err(Failure::new(
                1,
                format!(
                    "Error from server (Conflict): Operation cannot be fulfilled on namespaces \"{name}\": \
                     The system is ensuring all content is removed from this namespace.  \
                     Upon completion, this namespace will automatically be purged by the system."
                ),
            ));
        }
        terminating::begin(state, name)
            .map_err(|e| Failure::new(2, format!("fake-kubectl: {e:#}")))?;
        if inv.flag("wait") == Some("false") || !terminating::pending(state.dir(), name) {
            return Ok(deleted);
        }

        let mut f = Failure::new(
            1,
            format!("error: timed out waiting for the condition on namespaces/{name}"),
        );
        f.stdout = deleted;
        f.wait_ms = limit.as_millis() as u64;
        return Err(f);
    }
    let claim = (r.kind == "PersistentVolumeClaim").then(|| state.objects()[i].clone());
    // By position: comparing whole objects costs a deep compare of every
    // object read, for each of a thousand names.
    let mut position = 0;
    state.retain_objects(|_| {
        position += 1;
        position - 1 != i
    });
    if let Some(claim) = claim {
        controllers::release_volume(state, &claim);
    }
    // The cluster was settled before this delete: a namespaced object's
    // going concerns its namespace's controllers alone (a claim's volume is
    // released above); a delete of a thousand leases must not reconcile the
    // cluster a thousand times.
    match ns.as_deref() {
        // No controller of the fake acts on a Lease.
        _ if r.kind == "Lease" => {}
        Some(ns) => controllers::reconcile_namespace(state, ns),
        None => controllers::reconcile(state),
    }
    Ok(deleted)
}

/// `kubectl delete KIND NAME...`: each name on its own, as delete.go's
/// visit of the builder's objects (`ContinueOnError`) does; a line for
/// each one deleted, the errors at the end (`errors.rs`). Namespaces, whose
/// deletion the tool waits for one at a time, are not implemented here.
fn delete_each(
    state: &mut State,
    inv: &Invocation,
    kind: &str,
    names: &[&str],
) -> Result<String, Failure> {
    if resources::lookup(kind).is_some_and(|r| r.kind == "Namespace") {
        return Err(Failure::not_implemented("`delete` of several namespaces"));
    }
    let mut out = String::new();
    let mut errors = Vec::new();
    for name in names {
        match delete(state, inv, kind, name) {
            Ok(deleted) => out.push_str(&deleted),
            // A flag or kind kubectl refuses stops it before any object.
            Err(f) if f.code != 1 || f.message.starts_with("Error: ") => return Err(f),
            Err(f) if f.message.starts_with("error: the server doesn't have") => return Err(f),
            Err(f) => errors.push(f.message),
        }
    }
    if errors.is_empty() {
        return Ok(out);
    }
    let mut f = Failure::new(1, crate::errors::printed(&errors));
    f.stdout = out;
    Err(f)
}

fn annotate(
    state: &mut State,
    inv: &Invocation,
    raw: &str,
    changes: &[&str],
) -> Result<String, Failure> {
    inv.only("annotate", &["namespace", "overwrite"])?;
    let (r, name) = target(raw, "annotate")?;
    let ns = r.namespaced.then(|| inv.namespace());
    let overwrite = inv.has("overwrite");
    // kubectl sends every KEY=VALUE and KEY- of one command as one patch:
    // all of them or none.
    update(
        state,
        r,
        ns.as_deref(),
        name,
        "kubectl-annotate",
        None,
        |object| {
            for change in changes {
                if let Some(key) = change.strip_suffix('-') {
                    if let Some(a) = object
                        .pointer_mut("/metadata/annotations")
                        .and_then(Value::as_object_mut)
                    {
                        a.remove(key);
                    }
                    continue;
                }
                let (key, value) = change.split_once('=').ok_or_else(|| {
                    Failure::not_implemented(format!("annotation change `{change}`"))
                })?;
                let existing =
                    object.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")));
                if existing.is_some() && !overwrite {
                    return Err(Failure::new(
                        1,
                        format!(
                            "error: --overwrite is false but found the following declared annotation(s): '{key}' already has a value"
                        ),
                    ));
                }
                object["metadata"]["annotations"][key] = json!(value);
            }
            Ok(())
        },
    )?;
    Ok(format!("{}/{name} annotated\n", r.printed()))
}

/// `kubectl patch TYPE NAME --type merge -p JSON`: a JSON merge patch
/// (RFC 7386) as an `Update` by `kubectl-patch` (or `--field-manager`).
fn patch(
    state: &mut State,
    inv: &Invocation,
    raw: &str,
    name: Option<&str>,
) -> Result<String, Failure> {
    inv.only("patch", &["namespace", "type", "patch", "field-manager"])?;
    if inv.flag("type") != Some("merge") {
        return Err(Failure::not_implemented("`patch` other than --type merge"));
    }
    let (r, name) = match name {
        Some(n) => (
            resources::lookup(raw).ok_or_else(|| {
                Failure::new(
                    1,
                    format!("error: the server doesn't have a resource type \"{raw}\""),
                )
            })?,
            n,
        ),
        None => target(raw, "patch")?,
    };
    let patch: Value =
        serde_json::from_str(inv.flag("patch").unwrap_or_default()).map_err(|e| {
            Failure::new(
                1,
                format!(
                    "error: unable to parse \"{}\": {e}",
                    inv.flag("patch").unwrap_or_default()
                ),
            )
        })?;
    let ns = r.namespaced.then(|| inv.namespace());
    let manager = inv
        .flag("field-manager")
        .unwrap_or("kubectl-patch")
        .to_owned();
    let changed = update(state, r, ns.as_deref(), name, &manager, None, |object| {
        merge_patch(object, &patch);
        Ok(())
    })?;
    Ok(format!(
        "{}/{name} patched{}\n",
        r.printed(),
        if changed { "" } else { " (no change)" }
    ))
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}
