//! Every kubectl verb the tool uses, dispatched from its words; `apply` and
//! `diff` live in `apply.rs`.

use serde_json::{Value, json};

use crate::invocation::{Failure, Invocation};
use crate::object::{labels, list, namespace_and_name, pretty};
use crate::resources::{self, Resource};
use crate::state::State;
use crate::{apply, controllers};

pub fn dispatch(state: &mut State, inv: &Invocation, input: &[u8]) -> Result<Vec<u8>, Failure> {
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
            text(apply::diff(state, inv, input))
        }
        ["apply", ..] => {
            let input = std::str::from_utf8(input)
                .map_err(|_| Failure::new(1, "error: STDIN is not UTF-8"))?;
            text(apply::apply(state, inv, input))
        }
        ["rollout", "status", ..] => text(rollout_status(state, inv)),
        ["rollout", "restart", target] => text(rollout_restart(state, inv, target)),
        ["scale", target] => text(scale(state, inv, target)),
        ["logs", target] => text(logs(state, inv, target)),
        ["exec", target] => exec(state, inv, target, input),
        ["wait", target] => text(wait(state, inv, target)),
        ["delete", kind, name] => text(delete(state, inv, kind, name)),
        ["annotate", target, change] => text(annotate(state, inv, target, change)),
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
    match names {
        [] => {}
        [name] if kinds.len() == 1 => {
            let r = kinds[0];
            let found = state.objects().iter().find(|o| {
                o["kind"] == r.kind && o["metadata"]["name"] == name.as_str() && in_scope(r, o)
            });
            return match found {
                Some(o) => Ok(pretty(o)),
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
    let mut items = Vec::new();
    for r in kinds {
        let mut found: Vec<Value> = state
            .objects()
            .iter()
            .filter(|o| o["kind"] == r.kind && in_scope(r, o))
            .filter(|o| selector.as_ref().is_none_or(|s| selects(s, o)))
            .cloned()
            .collect();
        found.sort_by_key(namespace_and_name);
        items.extend(found);
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

fn deployment_mut<'s>(
    state: &'s mut State,
    ns: &str,
    name: &str,
) -> Result<&'s mut Value, Failure> {
    let i = state
        .index_of("Deployment", Some(ns), name)
        .ok_or_else(|| {
            Failure::new(
                1,
                format!("Error from server (NotFound): deployments.apps \"{name}\" not found"),
            )
        })?;
    Ok(&mut state.objects_mut()[i])
}

fn bump(
    state: &mut State,
    ns: &str,
    name: &str,
    change: impl FnOnce(&mut Value),
) -> Result<(), Failure> {
    let rv = state.next_resource_version();
    let d = deployment_mut(state, ns, name)?;
    change(d);
    let generation = d["metadata"]["generation"].as_u64().unwrap_or(1) + 1;
    d["metadata"]["generation"] = json!(generation);
    d["metadata"]["resourceVersion"] = json!(rv);
    controllers::reconcile(state);
    Ok(())
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
    if deployment_mut(state, &ns, name)?["spec"]["replicas"] != json!(replicas) {
        bump(state, &ns, name, |d| {
            d["spec"]["replicas"] = json!(replicas)
        })?;
    }
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
    // kubectl writes the current time; the resourceVersion is added so that
    // two restarts under a fixed test clock still differ.
    let stamp = format!("{}#{}", state.now(), state.data["resourceVersion"]);
    bump(state, &ns, name, |d| {
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!(stamp);
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
    let owner = pod
        .pointer("/metadata/annotations/fake-kubectl~1owner")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let logs = &state.data["logs"][owner];
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
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
    let stdin = if inv.has("stdin") { input } else { &[] };
    crate::pod_exec::exec(state, &ns, pod, container, &inv.command, stdin)
}

fn wait(state: &mut State, inv: &Invocation, raw: &str) -> Result<String, Failure> {
    inv.only("wait", &["namespace", "for", "timeout"])?;
    if inv.flag("for") != Some("condition=Ready") {
        return Err(Failure::not_implemented(format!(
            "`wait --for={}`",
            inv.flag("for").unwrap_or_default()
        )));
    }
    let ns = inv.namespace();
    let (r, name) = target(raw, "wait")?;
    if r.kind != "Pod" {
        return Err(Failure::not_implemented(format!("`wait` for {}", r.kind)));
    }
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
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
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
    let r = resources::lookup(kind).ok_or_else(|| {
        Failure::new(
            1,
            format!("error: the server doesn't have a resource type \"{kind}\""),
        )
    })?;
    let ns = r.namespaced.then(|| inv.namespace());
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
    let object = state.objects()[i].clone();
    // A namespace takes everything in it along; a claim's volume follows
    // its reclaim policy.
    let doomed_ns = (r.kind == "Namespace").then(|| name.to_owned());
    let claims: Vec<Value> = state
        .objects()
        .iter()
        .filter(|o| {
            o["kind"] == "PersistentVolumeClaim"
                && (**o == object
                    || doomed_ns
                        .as_deref()
                        .is_some_and(|d| o["metadata"]["namespace"] == d))
        })
        .cloned()
        .collect();
    state.retain_objects(|o| {
        *o != object
            && !doomed_ns
                .as_deref()
                .is_some_and(|d| o["metadata"]["namespace"] == d)
    });
    for claim in claims {
        controllers::release_volume(state, &claim);
    }
    controllers::reconcile(state);
    Ok(format!("{} \"{name}\" deleted\n", r.qualified()))
}

fn annotate(
    state: &mut State,
    inv: &Invocation,
    raw: &str,
    change: &str,
) -> Result<String, Failure> {
    inv.only("annotate", &["namespace", "overwrite"])?;
    let (r, name) = target(raw, "annotate")?;
    let ns = r.namespaced.then(|| inv.namespace());
    let i = state.index_of(r.kind, ns.as_deref(), name).ok_or_else(|| {
        Failure::new(
            1,
            format!(
                "Error from server (NotFound): {} \"{name}\" not found",
                r.qualified()
            ),
        )
    })?;
    let rv = state.next_resource_version();
    let object = &mut state.objects_mut()[i];
    if let Some(key) = change.strip_suffix('-') {
        if let Some(a) = object
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(key);
        }
    } else {
        let (key, value) = change
            .split_once('=')
            .ok_or_else(|| Failure::not_implemented(format!("annotation change `{change}`")))?;
        let existing = object.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")));
        if existing.is_some() && !inv.has("overwrite") {
            return Err(Failure::new(
                1,
                format!(
                    "error: --overwrite is false but found the following declared annotation(s): '{key}' already has a value"
                ),
            ));
        }
        object["metadata"]["annotations"][key] = json!(value);
    }
    object["metadata"]["resourceVersion"] = json!(rv);
    Ok(format!("{}/{name} annotated\n", r.qualified()))
}
