//! Faults a test injects (a failing, hanging or garbage-printing kubectl,
//! or one that only adds noise or a delay, or lets the cluster change
//! under a call) and the log of every invocation, for tests that count calls.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::state::State;

/// A way for an invocation to fail, chosen by a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The kubectl verb it applies to (`get`, `apply`, `rollout`, ...), or `*`.
    pub verb: String,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Sleep this long first (a hanging kubectl).
    pub sleep_ms: u64,
    /// How many invocations it applies to; None for all.
    pub times: Option<u32>,
    /// How many matching invocations to let through first (to fail mid-way).
    pub skip: u32,
    /// After the sleep and the output above, the call goes on as usual
    /// (warnings on stderr, a slow but working kubectl).
    pub passthrough: bool,
    /// With `passthrough`: before the call goes on, a controller writes the
    /// status of this object (kind, namespace, name), as the Deployment
    /// controller refreshes a condition: its resourceVersion changes and
    /// nothing an apply sets does.
    pub status_write: Option<(String, String, String)>,
}

impl Fault {
    /// kubectl's error when the API server cannot be reached.
    pub fn unreachable(verb: &str) -> Fault {
        Fault {
            verb: verb.to_owned(),
            exit_code: 1,
            stdout: String::new(),
            stderr: "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n".to_owned(),
            sleep_ms: 0,
            times: None,
            skip: 0,
            passthrough: false,
            status_write: None,
        }
    }

    /// kubectl 1.32's discovery warnings when an aggregated API (here
    /// metrics-server) is down, on stderr of every call; the calls work.
    pub fn discovery_warnings() -> Fault {
        let line = "E1124 06:00:00.000000   4242 memcache.go:265] \"Unhandled Error\" err=\"couldn't get resource list for metrics.k8s.io/v1beta1: the server is currently unable to handle the request\"\n";
        Fault {
            stderr: line.repeat(2),
            passthrough: true,
            ..Fault::fail("*", 0, "")
        }
    }

    /// A call that takes `ms` longer than usual, then works.
    pub fn slow(verb: &str, ms: u64) -> Fault {
        Fault {
            sleep_ms: ms,
            passthrough: true,
            ..Fault::fail(verb, 0, "")
        }
    }

    /// The next `verb` call sees a status write to an object first (between
    /// the tool's read and its write).
    pub fn status_write_before(verb: &str, kind: &str, namespace: &str, name: &str) -> Fault {
        Fault {
            passthrough: true,
            times: Some(1),
            status_write: Some((kind.into(), namespace.into(), name.into())),
            ..Fault::fail(verb, 0, "")
        }
    }

    pub fn fail(verb: &str, exit_code: i32, stderr: &str) -> Fault {
        Fault {
            verb: verb.to_owned(),
            exit_code,
            stdout: String::new(),
            stderr: stderr.to_owned(),
            sleep_ms: 0,
            times: None,
            skip: 0,
            passthrough: false,
            status_write: None,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({"verb": self.verb, "exit_code": self.exit_code, "stdout": self.stdout,
               "stderr": self.stderr, "sleep_ms": self.sleep_ms, "times": self.times, "skip": self.skip,
               "passthrough": self.passthrough, "status_write": self.status_write})
    }

    pub(crate) fn from_json(v: &Value) -> Fault {
        Fault {
            verb: v["verb"].as_str().unwrap_or("*").to_owned(),
            exit_code: v["exit_code"].as_i64().unwrap_or(1) as i32,
            stdout: v["stdout"].as_str().unwrap_or_default().to_owned(),
            stderr: v["stderr"].as_str().unwrap_or_default().to_owned(),
            sleep_ms: v["sleep_ms"].as_u64().unwrap_or(0),
            times: v["times"].as_u64().map(|t| t as u32),
            skip: v["skip"].as_u64().unwrap_or(0) as u32,
            passthrough: v["passthrough"].as_bool().unwrap_or(false),
            status_write: serde_json::from_value(v["status_write"].clone())
                .ok()
                .flatten(),
        }
    }
}

impl State {
    /// Makes matching invocations fail (see [`Fault`]).
    pub fn add_fault(&mut self, fault: Fault) -> anyhow::Result<()> {
        with_faults(&self.dir, |faults| faults.push(fault.to_json()))
    }

    pub fn clear_faults(&mut self) -> anyhow::Result<()> {
        with_faults(&self.dir, Vec::clear)
    }

    /// Every recorded invocation's arguments, oldest first.
    pub fn calls(dir: &Path) -> Vec<Vec<String>> {
        std::fs::read_to_string(dir.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Appends one invocation to `calls.jsonl` (one short append per line).
pub(crate) fn record_call(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("calls.jsonl"))?;
    log.write_all(format!("{}\n", serde_json::to_string(args)?).as_bytes())?;
    Ok(())
}

/// Reads, changes and writes `faults.json` (see `sidecar.rs`), so that
/// faults can be counted down by invocations that otherwise only read.
pub(crate) fn with_faults<T>(
    dir: &Path,
    change: impl FnOnce(&mut Vec<Value>) -> T,
) -> anyhow::Result<T> {
    crate::sidecar::update(dir, "faults", change)
}

/// The faults that apply to this call of `verb`, counting each down: every
/// pass-through fault in order, up to the first fault that ends the call.
pub(crate) fn take_faults(dir: &Path, verb: &str) -> anyhow::Result<Vec<Fault>> {
    if !dir.join("faults.json").exists() {
        return Ok(Vec::new());
    }
    with_faults(dir, |faults| {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < faults.len() {
            if !(faults[i]["verb"] == verb || faults[i]["verb"] == "*") {
                i += 1;
                continue;
            }
            let fault = Fault::from_json(&faults[i]);
            if fault.skip > 0 {
                faults[i]["skip"] = json!(fault.skip - 1);
                i += 1;
                continue;
            }
            match fault.times {
                Some(1) => {
                    faults.remove(i);
                }
                Some(n) => {
                    faults[i]["times"] = json!(n - 1);
                    i += 1;
                }
                None => i += 1,
            }
            let ends = !fault.passthrough;
            taken.push(fault);
            if ends {
                break;
            }
        }
        taken
    })
}
