//! One invocation end to end: log it, apply any fault, open the cluster,
//! dispatch the verb, write the cluster back.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::faults::{record_call, take_faults};
use crate::invocation::{Failure, NOT_IMPLEMENTED, parse};
use crate::state::State;
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
        Some(dir) => run(&dir, args, stdin, stdout, stderr),
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
            let changed = State::open(dir).and_then(|mut s| s.write_status(kind, ns, name));
            if let Err(e) = changed {
                let _ = writeln!(stderr, "{e:#}");
                return NOT_IMPLEMENTED;
            }
        }
    }
    // Namespaces whose finalizers finished since the last call are gone now.
    match crate::terminating::tick(dir) {
        Ok(due) if !due.is_empty() => {
            let done = State::open(dir).and_then(|mut s| {
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
    let read_only = matches!(verb.as_str(), "get" | "logs" | "exec" | "wait" | "auth")
        || inv.words.get(..2) == Some(&["rollout".to_owned(), "status".to_owned()]);
    // Reads confined to one namespace read only that namespace's file.
    // Network probes look across namespaces, so they read everything.
    let probe = matches!(
        inv.command.first().map(String::as_str),
        Some("nc" | "nslookup")
    );
    let scope = (read_only && !inv.has("all-namespaces") && !inv.has("raw") && !probe)
        .then(|| inv.flag("namespace").unwrap_or("default").to_owned());
    let mut input = Vec::new();
    let wants_stdin = inv.flag("filename") == Some("-") || inv.has("stdin");
    if wants_stdin && stdin.read_to_end(&mut input).is_err() {
        return fail(
            stdout,
            stderr,
            Failure::new(1, "error: reading stdin failed"),
        );
    }
    // A cluster-wide `auth can-i` is answered by ClusterRoleBindings alone.
    let cluster_wide_can_i = inv.words.get(..2) == Some(&["auth".to_owned(), "can-i".to_owned()])
        && inv.has("all-namespaces");
    let opened = if cluster_wide_can_i {
        State::open_cluster_scoped(dir)
    } else if read_only {
        State::open_read_only(dir, scope.as_deref())
    } else {
        let pods_of = pods_dry_run_in(&inv, &input);
        State::open_with(dir, true, pods_of.as_deref())
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
    // What a call changed stays changed even when it then fails (an apply
    // of several objects keeps those before the error).
    let result = verbs::dispatch(&mut state, &inv, &input);
    if let Err(e) = state.save() {
        let _ = writeln!(stderr, "fake-kubectl: cannot save state: {e}");
        return NOT_IMPLEMENTED;
    }
    drop(state);
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

/// The namespace of a server-side dry run of Pods in one namespace (what
/// `admin verify` sends for each tenant): admission reads only that
/// namespace and cluster-scoped objects, and nothing is stored, so only
/// those are read; None for anything else.
fn pods_dry_run_in(inv: &crate::invocation::Invocation, input: &[u8]) -> Option<String> {
    if inv.words.first().map(String::as_str) != Some("apply")
        || inv.flag("dry-run") != Some("server")
    {
        return None;
    }
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(input).ok()?).ok()?;
    let namespaces: std::collections::BTreeSet<&str> = docs
        .iter()
        .map(|d| {
            (d["kind"] == "Pod")
                .then(|| d["metadata"]["namespace"].as_str())
                .flatten()
        })
        .collect::<Option<_>>()?;
    match namespaces.into_iter().collect::<Vec<_>>().as_slice() {
        [ns] => Some((*ns).to_owned()),
        _ => None,
    }
}
