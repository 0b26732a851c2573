//! The only door to the cluster. Every kubectl invocation is built here as
//! a typed call; `runner` runs the process, `failure` explains a failure.
//! Nothing here knows about tenants, environments or the audit log.

mod failure;
mod runner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::clock::KubeDuration;

pub use failure::{Cause, KubectlFailure};
pub use runner::{Input, Sink};

/// The signals an operator stops a command with (Linux numbering).
const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// kubectl runs without the operator's preferences that change what the
/// tool reads from it: an external diff program (`kubectl diff` then prints
/// that program's output, not the `diff -u -N` the plan reads), and kuberc
/// defaults and aliases (kubectl 1.33 and later; `KUBERC=off` turns them
/// off).
const ENVIRONMENT: [(&str, Option<&str>); 2] =
    [("KUBECTL_EXTERNAL_DIFF", None), ("KUBERC", Some("off"))];

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
    /// The call timeout (`--kubectl-timeout`).
    Call,
    /// A verb that itself waits this long (`rollout status`, `wait`), plus the call timeout.
    Longer(Duration),
    /// A long operation with its own limit (a database backup in a pod).
    Within(Duration),
    /// Data transfers and log streams: until done or interrupted.
    Unbounded,
}

/// Where a read looks.
/// The ` --context x` of the command's kubectl (the last one located).
static SUGGESTED_CONTEXT: std::sync::RwLock<String> = std::sync::RwLock::new(String::new());

/// ` --context x` for a kubectl command suggested to the operator by code
/// that holds no [`Kubectl`] (a note built from a plan), the same as the
/// command's own [`Kubectl::context_arg`]; nothing before one is located.
pub fn suggested_context_arg() -> String {
    SUGGESTED_CONTEXT
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

pub enum Scope<'a> {
    Namespace(&'a str),
    AllNamespaces,
    Cluster,
}

/// What an apply does with fields another field manager owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicts {
    /// Fail with the server's conflict error (the default for kubectl too).
    Refuse,
    /// `--force-conflicts`: take the fields over.
    Force,
}

/// What a call on several objects did ([`Kubectl::create_each`]).
pub struct Each {
    /// The objects it printed as done, in its order.
    pub done: Vec<Value>,
    /// Its failure, if some object failed; its text names each one.
    pub failure: Option<anyhow::Error>,
}

/// A container to run commands in.
#[derive(Debug, Clone)]
pub struct Container {
    pub namespace: String,
    pub pod: String,
    pub name: String,
}

/// One kubectl invocation being built; `run` runs it.
#[must_use]
pub struct Call<'a> {
    kubectl: &'a Kubectl,
    args: Vec<String>,
    input: Input<'a>,
    sink: Sink,
    redact: Vec<String>,
    wait: Wait,
}

impl<'a> Call<'a> {
    fn input(mut self, input: Input<'a>) -> Self {
        self.input = input;
        self
    }

    pub fn stdin(self, bytes: &'a [u8]) -> Self {
        self.input(Input::Bytes(bytes))
    }

    pub fn sink(mut self, sink: Sink) -> Self {
        self.sink = sink;
        self
    }

    /// Replaces each of `secrets` found in kubectl's error text.
    pub fn redact(mut self, secrets: &[&str]) -> Self {
        self.redact = secrets.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// Runs the call; stdout unless the sink took it. A non-zero exit is a
    /// [`KubectlFailure`] that says what failed and what to do.
    pub fn run(self) -> anyhow::Result<Vec<u8>> {
        let k = self.kubectl;
        let mut full: Vec<String> = Vec::new();
        if let Some(c) = &k.context {
            full.extend(["--context".to_owned(), c.clone()]);
        }
        full.extend(self.args.iter().cloned());
        let limit = match self.wait {
            Wait::Call => Some(k.call_timeout),
            Wait::Longer(d) => Some(d + k.call_timeout),
            Wait::Within(d) => Some(d),
            Wait::Unbounded => None,
        };
        let verb = verb_of(&self.args);
        let finished = runner::run(
            &k.program,
            &full,
            &ENVIRONMENT,
            self.input,
            self.sink,
            limit,
        )
        .with_context(|| format!("could not run kubectl `{}`", k.program.display()))?;
        let Some(out) = finished else {
            let why = match self.wait {
                Wait::Within(_) => "it was stopped at its own limit; raise that limit if the work is only slow (see --help)".to_owned(),
                Wait::Longer(_) => format!(
                    "what it waited for did not happen in time; the cluster may be overloaded (check `kubectl{} get events`)",
                    k.context_arg()
                ),
                _ => format!(
                    "the cluster may be unreachable or overloaded: check `kubectl{} cluster-info`, and raise --kubectl-timeout if it is only slow",
                    k.context_arg()
                ),
            };
            bail!(
                "`kubectl {verb}` did not finish within {} on {} and was stopped: {why}.",
                humantime::format_duration(limit.unwrap_or_default()),
                k.context_label()
            )
        };
        if out.status.success() {
            return Ok(out.stdout);
        }
        // kubectl killed by the operator's signal is an interruption even
        // before our own handler thread has recorded it.
        let by_signal = std::os::unix::process::ExitStatusExt::signal(&out.status);
        if matches!(by_signal, Some(SIGHUP | SIGINT | SIGTERM)) {
            crate::interrupt::seen_in_kubectl();
        }
        if crate::interrupt::interrupted() {
            bail!("interrupted (Ctrl-C or a termination signal) while `kubectl {verb}` ran");
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for secret in self.redact.iter().filter(|s| !s.is_empty()) {
            stderr = stderr.replace(secret.as_str(), "<redacted>");
        }
        let cause = failure::classify(&stderr);
        Err(KubectlFailure {
            verb,
            status: out.status.code(),
            advice: failure::advice(cause, &k.context_arg()),
            cause,
            context: k.context_label(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
        .into())
    }

    pub fn text(self) -> anyhow::Result<String> {
        // Without a copy where it is UTF-8 already (a fleet's read is tens of MB).
        self.run().map(|b| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
    }

    pub fn json(self) -> anyhow::Result<Value> {
        let args = self.args.join(" ");
        let program = self.kubectl.program.display().to_string();
        let out = self.text()?;
        serde_json::from_str(&out).with_context(|| {
            format!("`kubectl {args}` printed something that is not JSON; is `{program}` really kubectl?")
        })
    }
}

/// The verb of a command line, for messages: up to two words before a flag.
fn verb_of(args: &[String]) -> String {
    args.iter()
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Kubectl {
    /// `--kubectl PATH`, else `$KUBECTL`, else `kubectl` on `PATH`.
    pub fn locate(
        flag: Option<&Path>,
        env: Option<&Path>,
        context: Option<&str>,
        call_timeout: Duration,
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
        let kubectl = Kubectl {
            program,
            context: context.map(str::to_owned),
            call_timeout,
        };
        *SUGGESTED_CONTEXT
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = kubectl.context_arg();
        Ok(kubectl)
    }

    /// `context \`x\``, or `the current context`.
    /// The context named with `--context`, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    pub fn context_label(&self) -> String {
        match &self.context {
            Some(c) => format!("context `{c}`"),
            None => "the current context".to_owned(),
        }
    }

    /// How long one call may take (`--kubectl-timeout`).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// ` --context x` for commands the operator may copy, or nothing.
    /// ([`suggested_context_arg`] is the same, where no Kubectl is at hand.)
    pub fn context_arg(&self) -> String {
        self.context
            .as_deref()
            .map(|c| format!(" --context {c}"))
            .unwrap_or_default()
    }

    /// A call with `args` (after `--context`), within the call timeout,
    /// capturing stdout.
    pub fn call<S: AsRef<str>>(&self, args: &[S]) -> Call<'_> {
        Call {
            kubectl: self,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            input: Input::None,
            sink: Sink::Capture,
            redact: Vec::new(),
            wait: Wait::Call,
        }
    }

    /// `kubectl get RESOURCES -o json`: the `items` of the returned list.
    pub fn get_list(
        &self,
        resources: &str,
        scope: Scope<'_>,
        selector: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        self.list(resources, scope, selector, false)
    }

    /// [`Kubectl::get_list`] with each object's `managedFields` (who owns
    /// which field), which kubectl leaves out unless asked.
    pub fn get_list_with_owners(
        &self,
        resources: &str,
        scope: Scope<'_>,
        selector: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        self.list(resources, scope, selector, true)
    }

    fn list(
        &self,
        resources: &str,
        scope: Scope<'_>,
        selector: Option<&str>,
        owners: bool,
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
        if owners {
            args.push("--show-managed-fields");
        }
        args.extend(["--output", "json"]);
        let list = self.call(&args).json()?;
        items(list, &args)
    }

    /// `kubectl get KIND NAME --ignore-not-found -o json` for a cluster-scoped
    /// object, with its managed fields: None when it does not exist.
    pub fn get_optional(&self, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
        self.optional(&[
            "get",
            kind,
            name,
            "--ignore-not-found",
            "--show-managed-fields",
            "--output",
            "json",
        ])
    }

    /// `kubectl get KIND NAME --namespace NS --ignore-not-found -o json`:
    /// None when it does not exist.
    pub fn get_in_optional(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        self.optional(&[
            "get",
            kind,
            name,
            "--namespace",
            namespace,
            "--ignore-not-found",
            "--output",
            "json",
        ])
    }

    /// A `get --ignore-not-found -o json`: None when it printed nothing.
    fn optional(&self, args: &[&str]) -> anyhow::Result<Option<Value>> {
        let out = self.call(args).text()?;
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

    /// `kubectl create -f -` of one object: atomic, it fails with the
    /// server's `AlreadyExists` when the object exists (an apply would
    /// take it over). Returns the object as stored.
    /// `namespace` for a namespaced object (it must be the object's own).
    pub fn create(&self, namespace: Option<&str>, object: &Value) -> anyhow::Result<Value> {
        let text = serde_json::to_string(object)?;
        let mut args = vec!["create"];
        if let Some(ns) = namespace {
            args.extend(["--namespace", ns]);
        }
        args.extend(["--filename", "-", "--output", "json"]);
        self.call(&args).stdin(text.as_bytes()).json()
    }

    /// `kubectl create --namespace NS -f - -o json` of `objects`, as one
    /// List, in one call. kubectl creates each on its own and goes on past
    /// one that fails (create.go: a builder with `ContinueOnError`, then a
    /// visit of each object), printing each created object as it is
    /// created (one JSON document after another); the errors come at the
    /// end, each naming its object. [`Each`] has both.
    pub fn create_each(&self, namespace: &str, objects: &[Value]) -> anyhow::Result<Each> {
        self.each_by("create", namespace, objects)
    }

    /// [`Kubectl::replace`] of every one of `objects` in one call, each on
    /// its own as [`Kubectl::create_each`] (replace.go visits them alike).
    pub fn replace_each(&self, namespace: &str, objects: &[Value]) -> anyhow::Result<Each> {
        self.each_by("replace", namespace, objects)
    }

    /// `kubectl VERB --namespace NS -f - -o json` of a List of `objects`.
    fn each_by(&self, verb: &str, namespace: &str, objects: &[Value]) -> anyhow::Result<Each> {
        let args = [
            verb,
            "--namespace",
            namespace,
            "--filename",
            "-",
            "--output",
            "json",
        ];
        self.each(&args, objects)
    }

    /// One call on a List of `objects` that prints each object it did:
    /// what it printed, and its failure if some object failed. An error
    /// that is not kubectl's own (it could not run, or was stopped at its
    /// limit) is returned as it is: nothing can be said of the objects.
    fn each(&self, args: &[&str], objects: &[Value]) -> anyhow::Result<Each> {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let text = serde_json::to_string(&list)?;
        let (stdout, failure) = match self.call(args).stdin(text.as_bytes()).text() {
            Ok(out) => (out, None),
            Err(e) => match e.downcast_ref::<KubectlFailure>() {
                Some(f) => (f.stdout.clone(), Some(e)),
                None => return Err(e),
            },
        };
        let done = serde_json::Deserializer::from_str(&stdout)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!(
                    "`kubectl {}` printed something that is not JSON",
                    args.join(" ")
                )
            })?;
        Ok(Each { done, failure })
    }

    /// `kubectl delete KIND NAME... --ignore-not-found`, in one call: each
    /// name on its own (delete.go visits them with `ContinueOnError`), a
    /// missing one no error.
    pub fn delete_each(&self, namespace: &str, kind: &str, names: &[String]) -> anyhow::Result<()> {
        let mut args = vec!["delete", kind];
        args.extend(names.iter().map(String::as_str));
        args.extend([
            "--ignore-not-found",
            "--namespace",
            namespace,
            "--wait=false",
        ]);
        self.call(&args).run().map(drop)
    }

    /// `kubectl replace -f -` of one object carrying the resourceVersion it
    /// was read at: fails with the server's `Conflict` if it changed since.
    pub fn replace(&self, namespace: &str, object: &Value) -> anyhow::Result<Value> {
        let text = serde_json::to_string(object)?;
        let args = [
            "replace",
            "--namespace",
            namespace,
            "--filename",
            "-",
            "--output",
            "json",
        ];
        self.call(&args).stdin(text.as_bytes()).json()
    }

    /// One `kubectl apply --server-side` of the whole stream on stdin; returns
    /// the objects as the server stored them.
    pub fn apply(
        &self,
        stream: &str,
        field_manager: &str,
        conflicts: Conflicts,
        redact: &[&str],
    ) -> anyhow::Result<Vec<Value>> {
        self.apply_within(stream, field_manager, conflicts, redact, Wait::Call)
    }

    /// [`Kubectl::apply`] of a stream that may take longer than one call:
    /// kubectl applies its objects one after another, one request each.
    ///
    /// kubectl goes on past an object that fails and returns every error
    /// at the end (apply.go, `Run`: the loop over the objects, then
    /// `utilerrors.NewAggregate`); with `-o json` it prints the objects only
    /// when none failed (its post-processor, which an error skips). So a
    /// failure says that some object failed, not which one: the errors
    /// name objects without their namespace (`configmaps "bot-config" is
    /// forbidden`), a conflict names no object at all.
    pub fn apply_within(
        &self,
        stream: &str,
        field_manager: &str,
        conflicts: Conflicts,
        redact: &[&str],
        wait: Wait,
    ) -> anyhow::Result<Vec<Value>> {
        let manager = format!("--field-manager={field_manager}");
        let mut args = vec!["apply", "--server-side", manager.as_str()];
        if conflicts == Conflicts::Force {
            args.push("--force-conflicts");
        }
        args.extend(["--filename", "-", "--output", "json"]);
        let out = self
            .call(&args)
            .stdin(stream.as_bytes())
            .redact(redact)
            .wait(wait)
            .text()?;
        let value: Value = serde_json::from_str(&out)
            .context("`kubectl apply` succeeded but its output is not JSON; check the cluster with `kubectl get`")?;
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            items(value, &args)
        } else {
            Ok(vec![value])
        }
    }

    /// Server-side applies one object from JSON.
    pub fn apply_object(
        &self,
        object: &Value,
        field_manager: &str,
        conflicts: Conflicts,
    ) -> anyhow::Result<()> {
        let text = serde_json::to_string(object)?;
        self.apply(&text, field_manager, conflicts, &[]).map(drop)
    }

    /// A server-side dry run of one object: what admission says, nothing stored.
    pub fn apply_dry_run(&self, object: &Value, field_manager: &str) -> anyhow::Result<()> {
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
        self.call(&args).stdin(text.as_bytes()).run().map(drop)
    }

    /// `kubectl diff --server-side -f -`: None when an apply would change
    /// nothing, else the unified diff (kubectl exits 1 for "differences",
    /// above 1 for an error).
    pub fn diff(
        &self,
        stream: &str,
        field_manager: &str,
        conflicts: Conflicts,
    ) -> anyhow::Result<Option<String>> {
        let manager = format!("--field-manager={field_manager}");
        let mut args = vec!["diff", "--server-side", manager.as_str()];
        if conflicts == Conflicts::Force {
            args.push("--force-conflicts");
        }
        args.extend(["--filename", "-"]);
        match self.call(&args).stdin(stream.as_bytes()).run() {
            Ok(_) => Ok(None),
            Err(e) => match e.downcast_ref::<KubectlFailure>() {
                Some(f) if f.status == Some(1) && !f.stdout.is_empty() => {
                    Ok(Some(f.stdout.clone()))
                }
                _ => Err(e),
            },
        }
    }

    /// `kubectl get --raw PATH`, or None when the API behind the path is
    /// not served (e.g. no metrics-server): a missing optional API is not an error.
    pub fn get_raw_optional(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.call(&["get", "--raw", path]).text() {
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
    pub fn get_raw(&self, path: &str) -> anyhow::Result<Value> {
        self.call(&["get", "--raw", path]).json()
    }

    /// `kubectl exec` of `command` in `container`, with `input` on its
    /// stdin; a call to finish with its sink and wait. A query is a call;
    /// give data transfers [`Wait::Unbounded`] and long work [`Wait::Within`].
    pub fn exec<'a>(
        &'a self,
        container: &Container,
        command: &[&str],
        input: Input<'a>,
    ) -> Call<'a> {
        let mut args = vec![
            "exec".to_owned(),
            format!("pod/{}", container.pod),
            "--namespace".to_owned(),
            container.namespace.clone(),
            "--container".to_owned(),
            container.name.clone(),
        ];
        // Only with input: kubectl would otherwise keep stdin open for it.
        if !matches!(input, Input::None) {
            args.push("--stdin".to_owned());
        }
        args.push("--".to_owned());
        args.extend(command.iter().map(|c| (*c).to_owned()));
        self.call(&args).input(input)
    }

    pub fn scale(&self, namespace: &str, deployment: &str, replicas: u32) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let replicas = format!("--replicas={replicas}");
        self.call(&["scale", &target, "--namespace", namespace, &replicas])
            .run()
            .map(drop)
    }

    /// `kubectl rollout restart`. kubectl stamps the restart to the second
    /// and refuses a second one within the same second; that one is tried
    /// again once the second has passed.
    pub fn rollout_restart(&self, namespace: &str, deployment: &str) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let args = ["rollout", "restart", &target, "--namespace", namespace];
        match self.call(&args).run() {
            Err(e)
                if e.downcast_ref::<KubectlFailure>().is_some_and(|f| {
                    f.stderr
                        .contains("has already been triggered within the past second")
                }) =>
            {
                std::thread::sleep(Duration::from_millis(1100));
                self.call(&args).run().map(drop)
            }
            other => other.map(drop),
        }
    }

    /// Waits until the deployment's rollout finishes or `timeout` passes.
    pub fn rollout_status(
        &self,
        namespace: &str,
        deployment: &str,
        timeout: &KubeDuration,
    ) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let limit = format!("--timeout={timeout}");
        self.call(&[
            "rollout",
            "status",
            &target,
            "--namespace",
            namespace,
            &limit,
        ])
        .wait(Wait::Longer(timeout.length()))
        .run()
        .map(drop)
        .map_err(|e| {
            if crate::interrupt::interrupted() {
                return e;
            }
            // A pod that admission refused never appears; the Deployment's
            // ReplicaFailure condition is the only place that says why.
            let args = [
                "get",
                "deployment",
                deployment,
                "--namespace",
                namespace,
                "--output",
                "json",
            ];
            let refused = self.call(&args).json().ok().and_then(|d| {
                d.pointer("/status/conditions")?
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
                    .and_then(|c| c["message"].as_str().map(str::to_owned))
            });
            match refused {
                Some(why) => e.context(format!(
                    "deployment/{deployment} cannot create its pod: {why}"
                )),
                None => e,
            }
        })
    }

    /// Waits for a pod's condition (`Ready`, `ContainersReady`).
    pub fn wait_for_condition(
        &self,
        namespace: &str,
        pod: &str,
        condition: &str,
        timeout: &KubeDuration,
    ) -> anyhow::Result<()> {
        let target = format!("pod/{pod}");
        let cond = format!("--for=condition={condition}");
        let limit = format!("--timeout={timeout}");
        self.call(&["wait", &cond, &target, "--namespace", namespace, &limit])
            .wait(Wait::Longer(timeout.length()))
            .run()
            .map(drop)
    }

    /// `kubectl logs`, streamed straight to our stdout.
    pub fn logs(&self, namespace: &str, target: &str, extra: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["logs", target, "--namespace", namespace];
        args.extend_from_slice(extra);
        self.call(&args)
            .sink(Sink::Inherit)
            .wait(Wait::Unbounded)
            .run()
            .map(drop)
    }

    /// Sets (`Some`) or removes (`None`) annotations of `target`
    /// (TYPE/NAME), all in one call: kubectl sends them as one patch, so
    /// either all of them take or none does.
    pub fn annotate(
        &self,
        namespace: &str,
        target: &str,
        changes: &[(&str, Option<&str>)],
    ) -> anyhow::Result<()> {
        let changes: Vec<String> = changes
            .iter()
            .map(|(key, value)| match value {
                Some(v) => format!("{key}={v}"),
                None => format!("{key}-"),
            })
            .collect();
        let mut args = vec!["annotate", target, "--namespace", namespace, "--overwrite"];
        args.extend(changes.iter().map(String::as_str));
        self.call(&args).run().map(drop)
    }

    /// Deletes one object (`namespace` None for cluster-scoped kinds); a
    /// missing object is not an error. With `wait`, kubectl waits up to that
    /// long for it to be gone (finalizers, a pod's grace period).
    pub fn delete(
        &self,
        namespace: Option<&str>,
        kind: &str,
        name: &str,
        wait: Option<&KubeDuration>,
    ) -> anyhow::Result<()> {
        let mut args = vec![
            "delete".to_owned(),
            kind.to_owned(),
            name.to_owned(),
            "--ignore-not-found".to_owned(),
        ];
        if let Some(ns) = namespace {
            args.extend(["--namespace".to_owned(), ns.to_owned()]);
        }
        let call = match wait {
            Some(limit) => {
                args.extend(["--wait=true".to_owned(), format!("--timeout={limit}")]);
                self.call(&args).wait(Wait::Longer(limit.length()))
            }
            None => {
                args.push("--wait=false".to_owned());
                self.call(&args)
            }
        };
        call.run().map(drop)
    }

    /// `kubectl auth can-i VERB RESOURCE [--subresource=S] --as SUBJECT` in
    /// a namespace, or across all of them with None. The answer is kubectl's
    /// stdout (`yes`/`no`), whatever warnings stderr carries.
    pub fn can_i(
        &self,
        subject: &str,
        verb: &str,
        resource: &str,
        subresource: Option<&str>,
        namespace: Option<&str>,
    ) -> anyhow::Result<bool> {
        let as_subject = format!("--as={subject}");
        let mut args = vec![
            "auth".to_owned(),
            "can-i".to_owned(),
            verb.to_owned(),
            resource.to_owned(),
        ];
        if let Some(sub) = subresource {
            args.push(format!("--subresource={sub}"));
        }
        args.push(as_subject);
        match namespace {
            Some(ns) => args.extend(["--namespace".to_owned(), ns.to_owned()]),
            None => args.push("--all-namespaces".to_owned()),
        }
        // A no may carry the review's reason: `no - RBAC: role.rbac.authorization.k8s.io
        // "x" not found` when a binding names a missing role.
        let answer = |stdout: &str| match stdout.trim() {
            "yes" => Some(true),
            "no" => Some(false),
            other if other.starts_with("no - ") => Some(false),
            _ => None,
        };
        // `can-i` answers no with exit status 1 and `no` on stdout.
        match self.call(&args).text() {
            Ok(out) => answer(&out).with_context(|| {
                format!(
                    "`kubectl auth can-i` answered neither yes nor no: {}",
                    out.trim()
                )
            }),
            Err(e) => match e
                .downcast_ref::<KubectlFailure>()
                .filter(|f| f.status == Some(1))
                .and_then(|f| answer(&f.stdout))
            {
                Some(no) => Ok(no),
                None => Err(e),
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kubectl(program: &str) -> Kubectl {
        Kubectl::locate(
            Some(Path::new(program)),
            None,
            None,
            Duration::from_secs(10),
        )
        .unwrap()
    }

    /// A kubectl that exits without reading a large input must still be
    /// reported by its own exit status, not by the broken pipe.
    #[test]
    fn early_exit_is_reported_as_kubectl_failure() {
        let big = "x".repeat(1 << 20);
        let err = kubectl("false")
            .apply(&big, "test", Conflicts::Refuse, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed (exit 1)"), "{err}");
        assert!(!err.contains("Broken pipe"), "{err}");
    }

    #[test]
    fn secrets_are_scrubbed_from_kubectl_errors() {
        let err = kubectl("sh")
            .call(&["-c", "echo 'bad value s3cr3t' >&2; exit 3"])
            .redact(&["s3cr3t"])
            .run()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad value <redacted>") && err.contains("exit 3"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"));
    }

    #[test]
    fn a_call_is_stopped_at_its_limit() {
        let start = std::time::Instant::now();
        let err = kubectl("sleep")
            .call(&["5"])
            .wait(Wait::Within(Duration::from_millis(200)))
            .run()
            .unwrap_err()
            .to_string();
        assert!(start.elapsed() < Duration::from_secs(3), "{err}");
        assert!(err.contains("did not finish within 200ms"), "{err}");
    }
}
