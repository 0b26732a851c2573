//! Argument parsing with kubectl's syntax, the call log, faults, and dispatch.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{STATE_ENV, State, verbs};

/// Exit code for anything the fake does not implement.
pub const NOT_IMPLEMENTED: i32 = 2;

/// (long name, short name, takes a value)
const FLAGS: &[(&str, Option<char>, bool)] = &[
    ("context", None, true),
    ("namespace", Some('n'), true),
    ("all-namespaces", Some('A'), false),
    ("selector", Some('l'), true),
    ("output", Some('o'), true),
    ("filename", Some('f'), true),
    ("server-side", None, false),
    ("field-manager", None, true),
    ("force-conflicts", None, false),
    ("ignore-not-found", None, false),
    ("timeout", None, true),
    ("raw", None, true),
    ("replicas", None, true),
    ("container", Some('c'), true),
    ("stdin", Some('i'), false),
    ("tail", None, true),
    ("since", None, true),
    ("follow", None, false),
    ("previous", Some('p'), false),
    ("for", None, true),
    ("wait", None, false),
    ("overwrite", None, false),
    ("as", None, true),
    ("quiet", Some('q'), false),
    ("dry-run", None, true),
];

/// A parsed command line: positional words and flags by long name.
pub struct Invocation {
    pub words: Vec<String>,
    /// Everything after `--` (the command of `exec`).
    pub command: Vec<String>,
    pub flags: BTreeMap<&'static str, String>,
}

impl Invocation {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }
    /// Fails unless every flag given is one of `allowed` (plus --context).
    pub fn only(&self, verb: &str, allowed: &[&str]) -> Result<(), Failure> {
        match self
            .flags
            .keys()
            .find(|f| **f != "context" && !allowed.contains(f))
        {
            Some(f) => Err(Failure::not_implemented(format!(
                "flag --{f} with `{verb}`"
            ))),
            None => Ok(()),
        }
    }
}

/// How an invocation ends when it does not succeed.
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// What was printed to stdout before failing (kubectl apply prints the
    /// objects it did apply, then the errors).
    pub stdout: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            stdout: String::new(),
        }
    }
    pub fn not_implemented(what: impl std::fmt::Display) -> Failure {
        Failure::new(
            NOT_IMPLEMENTED,
            format!(
                "fake-kubectl: not implemented: {what} (see fake-kubectl/src/lib.rs for what it supports)"
            ),
        )
    }
}

pub fn parse(args: &[String]) -> Result<Invocation, Failure> {
    let mut words = Vec::new();
    let mut flags = BTreeMap::new();
    let mut command = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            command = args[i..].to_vec();
            break;
        }
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap_or('-');
            let rest = &short[c.len_utf8()..];
            let Some((long, _, _)) = FLAGS.iter().find(|(_, s, _)| *s == Some(c)) else {
                return Err(Failure::new(
                    1,
                    format!("error: unknown shorthand flag: '{c}' in {arg}"),
                ));
            };
            let inline = rest.strip_prefix('=').unwrap_or(rest);
            (
                (*long).to_owned(),
                (!inline.is_empty()).then(|| inline.to_owned()),
            )
        } else {
            words.push(arg.clone());
            continue;
        };
        let Some((long, _, takes_value)) = FLAGS.iter().find(|(l, _, _)| *l == name) else {
            return Err(Failure::new(1, format!("error: unknown flag: --{name}")));
        };
        let value = if *takes_value {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(Failure::new(
                        1,
                        format!("error: flag needs an argument: --{name}"),
                    ));
                }
            }
        } else {
            inline.unwrap_or_else(|| "true".to_owned())
        };
        flags.insert(*long, value);
    }
    Ok(Invocation {
        words,
        command,
        flags,
    })
}

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
    if let Err(e) = crate::record_call(dir, &args) {
        let _ = writeln!(stderr, "fake-kubectl: cannot log the call: {e}");
        return NOT_IMPLEMENTED;
    }
    let inv = match parse(&args) {
        Ok(inv) => inv,
        Err(f) => return fail(stdout, stderr, f),
    };
    let verb = inv.words.first().cloned().unwrap_or_default();
    match crate::take_fault(dir, &verb) {
        Ok(Some(fault)) => {
            std::thread::sleep(std::time::Duration::from_millis(fault.sleep_ms));
            let _ = stdout.write_all(fault.stdout.as_bytes());
            return fail(
                stdout,
                stderr,
                Failure::new(fault.exit_code, fault.stderr.trim_end()),
            );
        }
        Ok(None) => {}
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
    let opened = if read_only {
        State::open_read_only(dir, scope.as_deref())
    } else {
        State::open(dir)
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
                Failure::new(1, format!("error: context \"{ctx}\" does not exist")),
            );
        }
    }
    let mut input = Vec::new();
    let wants_stdin = inv.flag("filename") == Some("-") || inv.has("stdin");
    if wants_stdin && stdin.read_to_end(&mut input).is_err() {
        return fail(
            stdout,
            stderr,
            Failure::new(1, "error: reading stdin failed"),
        );
    }
    let result = verbs::dispatch(&mut state, &inv, &input).and_then(|out| {
        state.save().map_err(|e| {
            Failure::new(
                NOT_IMPLEMENTED,
                format!("fake-kubectl: cannot save state: {e}"),
            )
        })?;
        Ok(out)
    });
    match result {
        Ok(out) => {
            let _ = stdout.write_all(&out);
            0
        }
        Err(f) => fail(stdout, stderr, f),
    }
}

fn fail(stdout: &mut dyn Write, stderr: &mut dyn Write, f: Failure) -> i32 {
    let _ = stdout.write_all(f.stdout.as_bytes());
    if !f.message.is_empty() {
        let _ = writeln!(stderr, "{}", f.message);
    }
    f.code
}
