//! A kubectl command line parsed with kubectl's syntax, and how an
//! invocation fails.

use std::collections::BTreeMap;

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
    ("show-managed-fields", None, false),
    ("subresource", None, true),
    ("type", None, true),
    ("patch", Some('p'), true),
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
    /// `--namespace`, else `default`, as kubectl resolves it without a kubeconfig namespace.
    pub fn namespace(&self) -> String {
        self.flag("namespace").unwrap_or("default").to_owned()
    }
    /// Whether a flag is given, and for a boolean one, given as true
    /// (`--ignore-not-found=false` is not).
    pub fn has(&self, name: &str) -> bool {
        self.flags.get(name).is_some_and(|v| v != "false")
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
    /// How long kubectl waited before giving up (after the cluster is saved).
    pub wait_ms: u64,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            stdout: String::new(),
            wait_ms: 0,
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

/// A flag error as cobra prints it for kubectl, with its pointer to help.
fn usage_error(words: &[String], what: String) -> Failure {
    let command = words
        .first()
        .map(|w| format!("kubectl {w}"))
        .unwrap_or_else(|| "kubectl".to_owned());
    Failure::new(
        1,
        format!("Error: {what}\nSee '{command} --help' for usage."),
    )
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
            // Short flags are per command in kubectl: -p is --patch for `patch`.
            let patching = words.first().is_some_and(|w: &String| w == "patch");
            let Some((long, _, _)) = FLAGS
                .iter()
                .filter(|(l, _, _)| *l != if patching { "previous" } else { "patch" })
                .find(|(_, s, _)| *s == Some(c))
            else {
                return Err(usage_error(
                    &words,
                    format!("unknown shorthand flag: '{c}' in {arg}"),
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
            return Err(usage_error(&words, format!("unknown flag: --{name}")));
        };
        let value = if *takes_value {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(usage_error(
                        &words,
                        format!("flag needs an argument: --{name}"),
                    ));
                }
            }
        } else {
            // pflag's boolean values (strconv.ParseBool), kept as true/false.
            match inline.as_deref() {
                None | Some("1" | "t" | "T" | "TRUE" | "true" | "True") => "true".to_owned(),
                Some("0" | "f" | "F" | "FALSE" | "false" | "False") => "false".to_owned(),
                Some(v) => {
                    return Err(usage_error(
                        &words,
                        format!(
                            "invalid argument \"{v}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                        ),
                    ));
                }
            }
        };
        flags.insert(*long, value);
    }
    Ok(Invocation {
        words,
        command,
        flags,
    })
}
