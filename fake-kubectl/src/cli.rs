//! One invocation end to end: log it, apply any fault, open the cluster,
//! dispatch the verb, write the cluster back.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::faults::{record_call, take_faults};
use crate::invocation::{Failure, Invocation, NOT_IMPLEMENTED, parse};
use crate::state::{Scope, State};
use crate::verbs;

/// The name of the environment variable that points at the state directory.
pub const STATE_ENV: &str = "FAKE_KUBECTL_STATE";

/// Runs one invocation against the cluster in `$FAKE_KUBECTL_STATE`.
pub fn main_with(
    args: Vec<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    match std::env::var_os(STATE_ENV).map(PathBuf::from) {
        Some(dir) => run_call(&dir, args, stdin, stdout, stderr, true),
        None => {
            let _ = writeln!(
                stderr,
                "fake-kubectl: {STATE_ENV} is not set; point it at a directory for the fake cluster"
            );
            NOT_IMPLEMENTED
        }
    }
}

/// Runs one invocation against the cluster in `dir`; returns the exit code.
pub fn run(
    dir: &Path,
    args: Vec<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_call(dir, args, stdin, stdout, stderr, false)
}

/// [`run`]; with `exiting` (the binary, which exits next) the objects read
/// are left to the exit to free.
fn run_call(
    dir: &Path,
    args: Vec<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    exiting: bool,
) -> i32 {
    if let Err(e) = record_call(dir, &args) {
        let _ = writeln!(stderr, "fake-kubectl: cannot log the call: {e}");
        return NOT_IMPLEMENTED;
    }
    let inv = match parse(&args) {
        Ok(inv) => inv,
        Err(f) => return fail(stdout, stderr, f),
    };
    let verb = inv.words.first().cloned().unwrap_or_default();
    let faults = match take_faults(dir, &verb) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(stderr, "{e:#}");
            return NOT_IMPLEMENTED;
        }
    };
    for fault in faults {
        std::thread::sleep(std::time::Duration::from_millis(fault.sleep_ms));
        let _ = stdout.write_all(fault.stdout.as_bytes());
        if !fault.passthrough {
            return fail(
                stdout,
                stderr,
                Failure::new(fault.exit_code, fault.stderr.trim_end()),
            );
        }
        let _ = stderr.write_all(fault.stderr.as_bytes());
        if let Some((kind, ns, name)) = &fault.status_write {
            let changed = State::open_scoped(dir, Scope::namespaces([ns]))
                .and_then(|mut s| s.write_status(kind, ns, name));
            if let Err(e) = changed {
                let _ = writeln!(stderr, "{e:#}");
                return NOT_IMPLEMENTED;
            }
        }
    }
    // Namespaces whose finalizers finished since the last call are gone now.
    match crate::terminating::tick(dir) {
        Ok(due) if !due.is_empty() => {
            let done = State::open_scoped(dir, Scope::namespaces(&due)).and_then(|mut s| {
                for ns in &due {
                    crate::terminating::finalize(&mut s, ns);
                }
                s.save()
            });
            if let Err(e) = done {
                let _ = writeln!(stderr, "{e:#}");
                return NOT_IMPLEMENTED;
            }
        }
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(stderr, "{e:#}");
            return NOT_IMPLEMENTED;
        }
    }
    // Stdin is read first: what an apply or diff sends says which
    // namespaces the call reads.
    let mut input = Vec::new();
    let wants_stdin = inv.flag("filename") == Some("-") || inv.has("stdin");
    let stdin_failed = wants_stdin && stdin.read_to_end(&mut input).is_err();
    let objects = (matches!(verb.as_str(), "apply" | "diff") && !stdin_failed)
        .then(|| std::str::from_utf8(&input).ok())
        .flatten()
        .map(|text| crate::apply::objects_of(&inv, text));
    let (read_only, scope) = scope_of(&inv, &input, objects.as_ref());
    let opened = if read_only {
        State::open_read_only(dir, scope)
    } else {
        State::open_scoped(dir, scope)
    };
    let mut state = match opened {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(stderr, "{e:#}");
            return NOT_IMPLEMENTED;
        }
    };
    if let Some(ctx) = inv.flag("context") {
        let known = state.contexts();
        if !known.is_empty() && !known.iter().any(|k| k == ctx) {
            return fail(
                stdout,
                stderr,
                Failure::new(
                    1,
                    format!(
                        "Error in configuration: context was not found for specified context: {ctx}"
                    ),
                ),
            );
        }
    }
    if stdin_failed {
        return fail(
            stdout,
            stderr,
            Failure::new(1, "error: reading stdin failed"),
        );
    }
    // What a call changed stays changed even when it then fails (an apply
    // of several objects keeps those before the error).
    let result = verbs::dispatch(&mut state, &inv, &input, objects);
    if let Err(e) = state.save() {
        let _ = writeln!(stderr, "fake-kubectl: cannot save state: {e}");
        return NOT_IMPLEMENTED;
    }
    if exiting {
        state.close();
    } else {
        drop(state);
    }
    match result {
        Ok(out) => {
            let _ = stdout.write_all(&out);
            0
        }
        Err(f) => {
            // A call that waits for something that does not happen (kubectl
            // delete --wait) waits without holding the cluster.
            std::thread::sleep(std::time::Duration::from_millis(f.wait_ms));
            fail(stdout, stderr, f)
        }
    }
}

fn fail(stdout: &mut dyn Write, stderr: &mut dyn Write, f: Failure) -> i32 {
    let _ = stdout.write_all(f.stdout.as_bytes());
    if !f.message.is_empty() {
        let _ = writeln!(stderr, "{}", f.message);
    }
    f.code
}

/// Whether a call only reads, and which part of the cluster it reads: a
/// read the resources it names in its namespace (or in every one with
/// `--all-namespaces`); a change every resource of the namespaces it may
/// touch, which is all a change needs (each namespace's controllers work
/// from that namespace and the cluster-scoped objects alone). Naming a
/// namespace too many costs a read; a verb not listed reads everything.
fn scope_of(
    inv: &Invocation,
    input: &[u8],
    objects: Option<&Result<Vec<Value>, String>>,
) -> (bool, Scope) {
    let words: Vec<&str> = inv.words.iter().map(String::as_str).collect();
    let ns = inv.namespace();
    let all = inv.has("all-namespaces");
    let in_namespace = || {
        if all {
            Scope::everything()
        } else {
            Scope::namespaces([ns.as_str()])
        }
    };
    let plurals = |types: &str| -> Option<Vec<&'static str>> {
        types
            .split(',')
            .map(|t| crate::resources::lookup(t).map(|r| r.plural))
            .collect()
    };
    match words.as_slice() {
        ["get"] if inv.has("raw") => {
            // The metrics API and the kubelet's summary read only pods.
            let raw = inv.flag("raw").unwrap_or_default();
            let path = raw.split('?').next().unwrap_or_default();
            let one = path
                .strip_prefix("/apis/metrics.k8s.io/v1beta1/namespaces/")
                .and_then(|rest| rest.strip_suffix("/pods"))
                .filter(|n| !n.contains('/'));
            let scope = match one {
                Some(n) => Scope::namespaces([n]),
                None => Scope::everything(),
            };
            (true, scope.only(["pods"]))
        }
        ["get", types, ..] => match plurals(types) {
            Some(p) => (true, in_namespace().only(p)),
            // An unknown type fails before anything is read.
            None => (true, in_namespace()),
        },
        // A cluster-wide question is answered by ClusterRoleBindings alone
        // (what a RoleBinding grants holds in its namespace only).
        ["auth", "can-i", ..] if all => (
            true,
            Scope::namespaces(std::iter::empty::<&str>())
                .only(["clusterroles", "clusterrolebindings"]),
        ),
        // RBAC is decided from the roles and bindings alone.
        ["auth", ..] => (
            true,
            in_namespace().only([
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            ]),
        ),
        // A network probe looks at pods and policies in every namespace.
        ["exec", ..]
            if matches!(
                inv.command.first().map(String::as_str),
                Some("nc" | "nslookup")
            ) =>
        {
            (true, Scope::everything())
        }
        ["get" | "logs" | "exec" | "wait", ..] | ["rollout", "status", ..] => {
            (true, in_namespace())
        }
        ["apply" | "diff", ..] => {
            let mut namespaces = vec![ns.clone()];
            for o in objects.into_iter().flatten().flatten() {
                namespaces.extend(
                    o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                );
                // A Namespace's own objects: its controllers see it change.
                if o["kind"] == "Namespace" {
                    namespaces.extend(
                        o.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    );
                }
            }
            (false, Scope::namespaces(namespaces))
        }
        ["create" | "replace"] => {
            let object: Value = serde_json::from_slice(input).unwrap_or_default();
            let mut namespaces = vec![ns.clone()];
            for field in ["/metadata/namespace", "/metadata/name"] {
                namespaces.extend(
                    object
                        .pointer(field)
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                );
            }
            (false, Scope::namespaces(namespaces))
        }
        // The target's namespace, and the targets themselves where they
        // are Namespaces (`delete namespace X`, `annotate namespace/X`):
        // only then, so that a delete of a thousand leases named like the
        // tenants' namespaces does not read every tenant.
        ["rollout", "restart", ..] | ["scale" | "delete" | "annotate" | "patch", ..] => {
            let targets = if words[0] == "rollout" {
                &words[2..]
            } else {
                &words[1..]
            };
            let is_namespace =
                |t: &str| crate::resources::lookup(t).is_some_and(|r| r.kind == "Namespace");
            let mut namespaces = vec![ns.clone()];
            match targets.split_first() {
                Some((first, names)) if !first.contains('/') => {
                    if is_namespace(first) {
                        namespaces.extend(names.iter().map(|n| (*n).to_owned()));
                    }
                }
                _ => namespaces.extend(targets.iter().filter_map(|w| {
                    let (kind, name) = w.split_once('/')?;
                    is_namespace(kind).then(|| name.to_owned())
                })),
            }
            (false, Scope::namespaces(namespaces))
        }
        _ => (false, Scope::everything()),
    }
}
