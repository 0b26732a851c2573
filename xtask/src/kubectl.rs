//! The one place that talks to the cluster. Every kubectl invocation is built
//! here, and every failure is turned into one paragraph that says what failed
//! and what to do.

use std::path::{Path, PathBuf};

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
        })
    }

    pub fn context_label(&self) -> String {
        match &self.context {
            Some(c) => format!("context `{c}`"),
            None => "the current context".to_owned(),
        }
    }

    /// Runs kubectl with `args` (after `--context`), returning stdout. A
    /// non-zero exit becomes an error explaining the failure; any of
    /// `redact` found in kubectl's output is replaced before it is shown.
    fn run(
        &self,
        sh: &Shell,
        args: &[&str],
        stdin: Option<&str>,
        redact: &[&str],
    ) -> anyhow::Result<String> {
        let mut full: Vec<&str> = Vec::new();
        if let Some(c) = &self.context {
            full.extend(["--context", c.as_str()]);
        }
        full.extend_from_slice(args);
        let output = run_process(sh, &self.program, &full, stdin)
            .with_context(|| format!("could not run kubectl `{}`", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        for secret in redact.iter().filter(|s| !s.is_empty()) {
            stderr = stderr.replace(secret, "<redacted>");
        }
        let status = output
            .status
            .code()
            .map_or_else(|| "a signal".to_owned(), |c| format!("exit {c}"));
        bail!(
            "`kubectl {}` failed ({status}) on {}: {}\n{}",
            args.first().copied().unwrap_or_default(),
            self.context_label(),
            if stderr.is_empty() {
                "(no error text)"
            } else {
                &stderr
            },
            advice(&stderr, self)
        )
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

    /// Waits until the deployment's rollout finishes or `timeout` passes.
    pub fn rollout_status(
        &self,
        sh: &Shell,
        namespace: &str,
        deployment: &str,
        timeout: &str,
    ) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let timeout = format!("--timeout={timeout}");
        self.run(
            sh,
            &[
                "rollout",
                "status",
                &target,
                "--namespace",
                namespace,
                &timeout,
            ],
            None,
            &[],
        )
        .map(drop)
    }
}

/// Runs `program` to completion, feeding `stdin` from a thread. kubectl may
/// exit before reading its input (a bad context, an unreachable server): the
/// broken pipe is then ignored so that kubectl's own error is what is shown.
fn run_process(
    sh: &Shell,
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(sh.current_dir())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_owned();
            Some(std::thread::spawn(move || {
                match pipe.write_all(input.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other,
                }
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output()?;
    if let Some(writer) = writer {
        writer
            .join()
            .map_err(|_| std::io::Error::other("the stdin writer thread panicked"))??;
    }
    Ok(output)
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
