//! Faults a test injects (a failing, hanging or garbage-printing kubectl)
//! and the log of every invocation, for tests that count calls.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
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
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({"verb": self.verb, "exit_code": self.exit_code, "stdout": self.stdout,
               "stderr": self.stderr, "sleep_ms": self.sleep_ms, "times": self.times, "skip": self.skip})
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

/// Reads, changes and writes `faults.json` under its own lock, so that
/// faults can be counted down by invocations that otherwise only read.
pub(crate) fn with_faults<T>(
    dir: &Path,
    change: impl FnOnce(&mut Vec<Value>) -> T,
) -> anyhow::Result<T> {
    std::fs::create_dir_all(dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("faults.lock"))?;
    lock.lock()?;
    let path = dir.join("faults.json");
    let mut faults: Vec<Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).context("fake-kubectl: faults.json is corrupt")?,
        Err(_) => Vec::new(),
    };
    let before = faults.clone();
    let out = change(&mut faults);
    if faults != before {
        std::fs::write(&path, serde_json::to_vec(&faults)?)?;
    }
    Ok(out)
}

/// The first fault for `verb`, counting it down.
pub(crate) fn take_fault(dir: &Path, verb: &str) -> anyhow::Result<Option<Fault>> {
    if !dir.join("faults.json").exists() {
        return Ok(None);
    }
    with_faults(dir, |faults| {
        let i = faults
            .iter()
            .position(|f| f["verb"] == verb || f["verb"] == "*")?;
        let fault = Fault::from_json(&faults[i]);
        if fault.skip > 0 {
            faults[i]["skip"] = json!(fault.skip - 1);
            return None;
        }
        match fault.times {
            Some(1) => {
                faults.remove(i);
            }
            Some(n) => faults[i]["times"] = json!(n - 1),
            None => {}
        }
        Some(fault)
    })
}
