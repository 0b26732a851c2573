//! The one place that talks to the cluster. Every kubectl invocation is built
//! here, and every failure is turned into one paragraph that says what failed
//! and what to do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

/// How the binary was found, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Env,
    Path,
}

#[derive(Debug, Clone)]
pub struct Kubectl {
    program: PathBuf,
    context: Option<String>,
    /// How long one call may take before it is stopped.
    call_timeout: Duration,
}

/// How long a call may run.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// The call timeout.
    Call,
    /// A call that itself waits this long (rollout status, wait), plus the call timeout.
    Longer(Duration),
    /// Data transfers and log streams: until done or interrupted.
    Unbounded,
}

impl crate::flags::ClusterArgs {
    /// The kubectl these flags (or `$KUBECTL`, or PATH) select, talking to
    /// `--context`, or to the environment's context.
    pub fn kubectl(&self) -> anyhow::Result<Kubectl> {
        let env = crate::environment::select(self)?;
        let context = self.context.clone().or(env.map(|e| e.context));
        let mut kubectl = Kubectl::locate(
            self.kubectl.as_deref(),
            std::env::var_os("KUBECTL").as_deref().map(Path::new),
            context.as_deref(),
        )?;
        let millis =
            crate::flags::duration_millis(&self.kubectl_timeout).map_err(anyhow::Error::msg)?;
        kubectl.call_timeout = Duration::from_millis(millis);
        Ok(kubectl)
    }

    /// Records a change (its outcome) in the audit log.
    pub fn record<T>(
        &self,
        root: &Path,
        tenant: &str,
        result: anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let log = crate::audit::path(self.audit_log.as_deref(), root);
        let env = crate::environment::select(self).ok().flatten();
        let context = self
            .context
            .clone()
            .or(env.as_ref().map(|e| e.context.clone()));
        crate::audit::record(
            &log,
            context.as_deref(),
            env.as_ref().map(|e| e.name.as_str()),
            tenant,
            result,
        )
    }
}

/// The string at a JSON pointer (`/metadata/name`) of an object kubectl returned.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// A live object reduced to what an apply would send back.
pub fn applyable(mut o: Value) -> Value {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

/// Where a read looks.
pub enum Scope<'a> {
    Namespace(&'a str),
    AllNamespaces,
    Cluster,
}

impl Kubectl {
    /// `--kubectl PATH`, else `$KUBECTL`, else `kubectl` on `PATH`.
    pub fn locate(
        flag: Option<&Path>,
        env: Option<&Path>,
        context: Option<&str>,
    ) -> anyhow::Result<Kubectl> {
        let (program, source) = match (flag, env) {
            (Some(p), _) => (p.to_path_buf(), Source::Flag),
            (None, Some(p)) => (p.to_path_buf(), Source::Env),
            (None, None) => match which::which("kubectl") {
                Ok(p) => (p, Source::Path),
                Err(_) => bail!(
                    "kubectl was not found on PATH. Install kubectl, or point to it with \
                     --kubectl PATH or the KUBECTL environment variable. (--dry-run and --out \
                     need no kubectl and no cluster.)"
                ),
            },
        };
        if source != Source::Path && which::which(&program).is_err() {
            let origin = match source {
                Source::Flag => "--kubectl",
                _ => "the KUBECTL environment variable",
            };
            bail!(
                "kubectl `{}` (from {origin}) does not exist or is not executable; fix the path \
                 or unset it to use kubectl from PATH",
                program.display()
            );
        }
        Ok(Kubectl {
            program,
            context: context.map(str::to_owned),
            call_timeout: Duration::from_secs(60),
        })
    }

    pub fn context_label(&self) -> String {
        match &self.context {
            Some(c) => format!("context `{c}`"),
            None => "the current context".to_owned(),
        }
    }

    /// Runs kubectl with `args` (after `--context`), returning stdout as
    /// text. A non-zero exit becomes a [`KubectlFailure`] explaining it; any
    /// of `redact` found in kubectl's error text is replaced before it is shown.
    fn run(
        &self,
        sh: &Shell,
        args: &[&str],
        stdin: Option<&str>,
        redact: &[&str],
    ) -> anyhow::Result<String> {
        let input = stdin.map_or(Input::None, |s| Input::Bytes(s.as_bytes()));
        let out = self.run_with(sh, args, input, Sink::Capture, redact, Wait::Call)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The general form: stdin from nothing, bytes or a file; stdout captured,
    /// written to a file, or passed through to ours.
    pub fn run_with(
        &self,
        sh: &Shell,
        args: &[&str],
        input: Input<'_>,
        sink: Sink,
        redact: &[&str],
        wait: Wait,
    ) -> anyhow::Result<Vec<u8>> {
        let mut full: Vec<&str> = Vec::new();
        if let Some(c) = &self.context {
            full.extend(["--context", c.as_str()]);
        }
        full.extend_from_slice(args);
        let limit = match wait {
            Wait::Call => Some(self.call_timeout),
            Wait::Longer(d) => Some(d + self.call_timeout),
            Wait::Unbounded => None,
        };
        let verb = args
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .take(2)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let output = match run_process(sh, &self.program, &full, input, sink, limit)
            .with_context(|| format!("could not run kubectl `{}`", self.program.display()))?
        {
            Some(output) => output,
            None => bail!(
                "`kubectl {verb}` did not finish within {} on {} and was stopped. The cluster may be \
                 unreachable or overloaded: check `kubectl cluster-info`, and raise --kubectl-timeout if it is only slow.",
                humantime::format_duration(limit.unwrap_or_default()),
                self.context_label()
            ),
        };
        if output.status.success() {
            return Ok(output.stdout);
        }
        if crate::interrupt::interrupted() {
            bail!("interrupted by Ctrl-C while `kubectl {verb}` ran");
        }
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        for secret in redact.iter().filter(|s| !s.is_empty()) {
            stderr = stderr.replace(secret, "<redacted>");
        }
        Err(KubectlFailure {
            verb,
            status: output.status.code(),
            advice: advice(&stderr, self),
            context: self.context_label(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        }
        .into())
    }

    fn run_json(&self, sh: &Shell, args: &[&str]) -> anyhow::Result<Value> {
        let out = self.run(sh, args, None, &[])?;
        serde_json::from_str(&out).with_context(|| {
            format!(
                "`kubectl {}` printed something that is not JSON; is `{}` really kubectl?",
                args.join(" "),
                self.program.display()
            )
        })
    }

    /// `kubectl get RESOURCES -o json`: the `items` of the returned list.
    pub fn get_list(
        &self,
        sh: &Shell,
        resources: &str,
        scope: Scope<'_>,
        selector: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut args = vec!["get", resources];
        match scope {
            Scope::Namespace(ns) => args.extend(["--namespace", ns]),
            Scope::AllNamespaces => args.push("--all-namespaces"),
            Scope::Cluster => {}
        }
        if let Some(sel) = selector {
            args.extend(["--selector", sel]);
        }
        args.extend(["--output", "json"]);
        let list = self.run_json(sh, &args)?;
        items(list, &args)
    }

    /// `kubectl get KIND NAME --ignore-not-found -o json` for a cluster-scoped
    /// object: None when it does not exist.
    pub fn get_optional(
        &self,
        sh: &Shell,
        kind: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let args = ["get", kind, name, "--ignore-not-found", "--output", "json"];
        let out = self.run(sh, &args, None, &[])?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&out).map(Some).with_context(|| {
            format!(
                "`kubectl {}` printed something that is not JSON",
                args.join(" ")
            )
        })
    }

    /// One `kubectl apply --server-side` of the whole stream on stdin; returns
    /// the objects as the server stored them.
    pub fn apply_server_side(
        &self,
        sh: &Shell,
        stream: &str,
        field_manager: &str,
        force_conflicts: bool,
        redact: &[&str],
    ) -> anyhow::Result<Vec<Value>> {
        let manager = format!("--field-manager={field_manager}");
        let mut args = vec!["apply", "--server-side", manager.as_str()];
        if force_conflicts {
            args.push("--force-conflicts");
        }
        args.extend(["--filename", "-", "--output", "json"]);
        let out = self.run(sh, &args, Some(stream), redact)?;
        let value: Value = serde_json::from_str(&out)
            .context("`kubectl apply` succeeded but its output is not JSON; check the cluster with `kubectl get`")?;
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            items(value, &args)
        } else {
            Ok(vec![value])
        }
    }

    /// `kubectl get --raw PATH`, or None when the API behind the path is
    /// not served (e.g. no metrics-server): a missing optional API is not an error.
    pub fn get_raw_optional(&self, sh: &Shell, path: &str) -> anyhow::Result<Option<Value>> {
        match self.run(sh, &["get", "--raw", path], None, &[]) {
            Ok(out) => serde_json::from_str(&out).map(Some).with_context(|| {
                format!("`kubectl get --raw {path}` printed something that is not JSON")
            }),
            Err(e) => match e.downcast_ref::<KubectlFailure>() {
                Some(f)
                    if f.stderr.contains("could not find the requested resource")
                        || f.stderr.contains("unable to handle the request") =>
                {
                    Ok(None)
                }
                _ => Err(e),
            },
        }
    }

    /// `kubectl get --raw PATH` of a path that must exist.
    pub fn get_raw(&self, sh: &Shell, path: &str) -> anyhow::Result<Value> {
        self.run_json(sh, &["get", "--raw", path])
    }

    /// Runs `command` in a container; returns its stdout unless `sink` takes it.
    #[allow(clippy::too_many_arguments)]
    pub fn exec(
        &self,
        sh: &Shell,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[&str],
        input: Input<'_>,
        sink: Sink,
    ) -> anyhow::Result<Vec<u8>> {
        let target = format!("pod/{pod}");
        let mut args = vec![
            "exec",
            target.as_str(),
            "--namespace",
            namespace,
            "--container",
            container,
        ];
        if !matches!(input, Input::None) {
            args.push("--stdin");
        }
        args.push("--");
        args.extend_from_slice(command);
        // A data transfer takes as long as the data; a query is a call.
        let wait = if matches!(input, Input::File(_)) || matches!(sink, Sink::File(_)) {
            Wait::Unbounded
        } else {
            Wait::Call
        };
        self.run_with(sh, &args, input, sink, &[], wait)
    }

    pub fn scale(
        &self,
        sh: &Shell,
        namespace: &str,
        deployment: &str,
        replicas: u32,
    ) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let replicas = format!("--replicas={replicas}");
        self.run(
            sh,
            &["scale", &target, "--namespace", namespace, &replicas],
            None,
            &[],
        )
        .map(drop)
    }

    pub fn rollout_restart(
        &self,
        sh: &Shell,
        namespace: &str,
        deployment: &str,
    ) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        self.run(
            sh,
            &["rollout", "restart", &target, "--namespace", namespace],
            None,
            &[],
        )
        .map(drop)
    }

    /// `kubectl logs`, streamed straight to our stdout.
    pub fn logs(
        &self,
        sh: &Shell,
        namespace: &str,
        target: &str,
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let mut args = vec!["logs", target, "--namespace", namespace];
        args.extend_from_slice(extra);
        self.run_with(sh, &args, Input::None, Sink::Inherit, &[], Wait::Unbounded)
            .map(drop)
    }

    /// Sets (`Some`) or removes (`None`) one annotation of `target` (TYPE/NAME).
    pub fn annotate(
        &self,
        sh: &Shell,
        namespace: &str,
        target: &str,
        key: &str,
        value: Option<&str>,
    ) -> anyhow::Result<()> {
        let change = match value {
            Some(v) => format!("{key}={v}"),
            None => format!("{key}-"),
        };
        self.run(
            sh,
            &[
                "annotate",
                target,
                "--namespace",
                namespace,
                "--overwrite",
                &change,
            ],
            None,
            &[],
        )
        .map(drop)
    }

    /// Waits for a pod to be Ready.
    pub fn wait_ready(
        &self,
        sh: &Shell,
        namespace: &str,
        pod: &str,
        timeout: &str,
    ) -> anyhow::Result<()> {
        self.wait_for(
            sh,
            &["wait", "--for=condition=Ready"],
            &format!("pod/{pod}"),
            namespace,
            timeout,
        )
    }

    /// `kubectl VERB... TARGET --namespace NS --timeout=T`, for the verbs that
    /// wait; the call may take that long plus the call timeout.
    fn wait_for(
        &self,
        sh: &Shell,
        verb: &[&str],
        target: &str,
        namespace: &str,
        timeout: &str,
    ) -> anyhow::Result<()> {
        let waits = crate::flags::duration_millis(timeout).map_err(anyhow::Error::msg)?;
        let timeout = format!("--timeout={timeout}");
        let mut args = verb.to_vec();
        args.extend([target, "--namespace", namespace, &timeout]);
        let wait = Wait::Longer(Duration::from_millis(waits));
        self.run_with(sh, &args, Input::None, Sink::Capture, &[], wait)
            .map(drop)
    }

    /// Deletes one object (`namespace` None for cluster-scoped kinds); a
    /// missing object is not an error.
    pub fn delete(
        &self,
        sh: &Shell,
        namespace: Option<&str>,
        kind: &str,
        name: &str,
    ) -> anyhow::Result<()> {
        let mut args = vec!["delete", kind, name, "--ignore-not-found", "--wait=true"];
        if let Some(ns) = namespace {
            args.extend(["--namespace", ns]);
        }
        self.run(sh, &args, None, &[]).map(drop)
    }

    pub fn delete_pod(&self, sh: &Shell, namespace: &str, pod: &str) -> anyhow::Result<()> {
        self.run(
            sh,
            &[
                "delete",
                "pod",
                pod,
                "--namespace",
                namespace,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
            &[],
        )
        .map(drop)
    }

    /// `kubectl diff --server-side -f -`: None when an apply would change
    /// nothing, else the unified diff (kubectl exits 1 for "differences").
    pub fn diff_server_side(
        &self,
        sh: &Shell,
        stream: &str,
        field_manager: &str,
    ) -> anyhow::Result<Option<String>> {
        let manager = format!("--field-manager={field_manager}");
        let args = ["diff", "--server-side", manager.as_str(), "--filename", "-"];
        match self.run(sh, &args, Some(stream), &[]) {
            Ok(_) => Ok(None),
            Err(e) => match e.downcast_ref::<KubectlFailure>() {
                Some(f) if f.status == Some(1) && !f.stdout.is_empty() => {
                    Ok(Some(f.stdout.clone()))
                }
                _ => Err(e),
            },
        }
    }

    /// A server-side dry run of one object: what admission says, nothing stored.
    pub fn apply_dry_run(
        &self,
        sh: &Shell,
        object: &Value,
        field_manager: &str,
    ) -> anyhow::Result<()> {
        let text = serde_json::to_string(object)?;
        let manager = format!("--field-manager={field_manager}");
        let args = [
            "apply",
            "--server-side",
            "--dry-run=server",
            manager.as_str(),
            "--filename",
            "-",
            "--output",
            "json",
        ];
        self.run(sh, &args, Some(&text), &[]).map(drop)
    }

    /// `kubectl auth can-i VERB RESOURCE --as SUBJECT` in a namespace, or
    /// across all of them with None.
    pub fn can_i(
        &self,
        sh: &Shell,
        subject: &str,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> anyhow::Result<bool> {
        let as_subject = format!("--as={subject}");
        let mut args = vec!["auth", "can-i", verb, resource, as_subject.as_str()];
        match namespace {
            Some(ns) => args.extend(["--namespace", ns]),
            None => args.push("--all-namespaces"),
        }
        // `can-i` answers no with exit status 1 and `no` on stdout.
        match self.run_with(sh, &args, Input::None, Sink::Capture, &[], Wait::Call) {
            Ok(out) => Ok(String::from_utf8_lossy(&out).trim() == "yes"),
            Err(e) => match e.downcast_ref::<KubectlFailure>() {
                Some(f) if f.status == Some(1) && f.stderr.is_empty() => Ok(false),
                _ => Err(e),
            },
        }
    }

    /// Server-side applies one object (the workbench pod) from JSON.
    pub fn apply_object(
        &self,
        sh: &Shell,
        object: &Value,
        field_manager: &str,
    ) -> anyhow::Result<()> {
        let text = serde_json::to_string(object)?;
        self.apply_server_side(sh, &text, field_manager, true, &[])
            .map(drop)
    }

    /// Waits until the deployment's rollout finishes or `timeout` passes.
    pub fn rollout_status(
        &self,
        sh: &Shell,
        namespace: &str,
        deployment: &str,
        timeout: &str,
    ) -> anyhow::Result<()> {
        self.wait_for(
            sh,
            &["rollout", "status"],
            &format!("deployment/{deployment}"),
            namespace,
            timeout,
        )
    }
}

/// A kubectl call that exited non-zero (or was killed).
#[derive(Debug)]
pub struct KubectlFailure {
    /// The verb, e.g. `get` or `rollout status`.
    pub verb: String,
    pub status: Option<i32>,
    /// kubectl's error text, secrets redacted.
    pub stderr: String,
    /// What kubectl printed before failing (e.g. `diff`'s differences).
    pub stdout: String,
    context: String,
    advice: String,
}

impl std::fmt::Display for KubectlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        let text = if self.stderr.is_empty() {
            "(no error text)"
        } else {
            &self.stderr
        };
        write!(
            f,
            "`kubectl {}` failed ({status}) on {}: {text}\n{}",
            self.verb, self.context, self.advice
        )
    }
}

impl std::error::Error for KubectlFailure {}

/// Where a kubectl call's stdin comes from.
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Where a kubectl call's stdout goes.
pub enum Sink {
    /// Returned to the caller.
    Capture,
    /// Written to this file (large downloads never sit in memory).
    File(std::fs::File),
    /// Straight to our own stdout (logs).
    Inherit,
}

/// Runs `program` to completion, feeding stdin bytes from a thread. kubectl
/// may exit before reading its input (a bad context, an unreachable server):
/// the broken pipe is then ignored so that kubectl's own error is what is shown.
fn run_process(
    sh: &Shell,
    program: &Path,
    args: &[&str],
    input: Input<'_>,
    sink: Sink,
    limit: Option<Duration>,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let stdin = match &input {
        Input::None => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
        Input::File(path) => Stdio::from(std::fs::File::open(path)?),
    };
    let stdout = match sink {
        Sink::Capture => Stdio::piped(),
        Sink::File(f) => Stdio::from(f),
        Sink::Inherit => Stdio::inherit(),
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(sh.current_dir())
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    let writer = match (input, child.stdin.take()) {
        (Input::Bytes(bytes), Some(mut pipe)) => {
            let input = bytes.to_vec();
            Some(std::thread::spawn(move || match pipe.write_all(&input) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }))
        }
        _ => None,
    };
    // Read both pipes while waiting, so that a full pipe never blocks kubectl.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        pipe.map(|mut p| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                p.read_to_end(&mut buf).map(|_| buf)
            })
        })
    };
    let out_reader = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_reader = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let collect =
        |r: Option<std::thread::JoinHandle<std::io::Result<Vec<u8>>>>| -> std::io::Result<Vec<u8>> {
            match r {
                Some(h) => h
                    .join()
                    .map_err(|_| std::io::Error::other("a pipe reader thread panicked"))?,
                None => Ok(Vec::new()),
            }
        };
    let stdout = collect(out_reader)?;
    let stderr = collect(err_reader)?;
    if let Some(writer) = writer {
        writer
            .join()
            .map_err(|_| std::io::Error::other("the stdin writer thread panicked"))??;
    }
    Ok(status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

fn items(list: Value, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    match list {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) | None if map.get("kind").and_then(Value::as_str) == Some("List") => {
                Ok(Vec::new())
            }
            _ => bail!(
                "`kubectl {}` returned JSON without an `items` list",
                args.join(" ")
            ),
        },
        _ => bail!(
            "`kubectl {}` returned JSON that is not a list",
            args.join(" ")
        ),
    }
}

/// What to do about a kubectl failure, from the shape of its error text.
fn advice(stderr: &str, kubectl: &Kubectl) -> String {
    let context_arg = kubectl
        .context
        .as_deref()
        .map(|c| format!(" --context {c}"))
        .unwrap_or_default();
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("context") && lower.contains("does not exist") {
        "The kube context does not exist: `kubectl config get-contexts` lists the ones you have; pass one with --context.".to_owned()
    } else if [
        "unable to connect to the server",
        "connection refused",
        "no such host",
        "i/o timeout",
        "was refused",
        "tls handshake timeout",
    ]
    .iter()
    .any(|s| lower.contains(s))
    {
        format!(
            "The cluster could not be reached: check the VPN or network and your kubeconfig with `kubectl{context_arg} cluster-info`, then run the same command again. Nothing was changed by this step."
        )
    } else if lower.contains("forbidden") || lower.contains("unauthorized") {
        format!(
            "Your credentials are not allowed to do this: check who you are with `kubectl{context_arg} auth whoami` and ask a cluster admin for the platform operator role."
        )
    } else if lower.contains("conflict") {
        "Another field manager owns some of these fields (a hand edit?). Review it with `kubectl get -o yaml`, then re-run with --force-conflicts to take them back.".to_owned()
    } else {
        "Fix the cause above and run the same command again; it is safe to re-run.".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kubectl that exits without reading a large input must still be
    /// reported by its own exit status, not by the broken pipe.
    #[test]
    fn early_exit_is_reported_as_kubectl_failure() {
        let sh = Shell::new().unwrap();
        let kubectl = Kubectl::locate(Some(Path::new("false")), None, None).unwrap();
        let big = "x".repeat(1 << 20);
        let err = kubectl
            .apply_server_side(&sh, &big, "test", false, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed (exit 1)"), "{err}");
        assert!(!err.contains("Broken pipe"), "{err}");
    }

    #[test]
    fn secrets_are_scrubbed_from_kubectl_errors() {
        let sh = Shell::new().unwrap();
        let kubectl = Kubectl::locate(Some(Path::new("sh")), None, None).unwrap();
        let err = kubectl
            .run(
                &sh,
                &["-c", "echo 'bad value s3cr3t' >&2; exit 3"],
                None,
                &["s3cr3t"],
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad value <redacted>") && err.contains("exit 3"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"));
    }
}
