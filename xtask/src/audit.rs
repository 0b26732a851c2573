//! The audit log: one JSON line per command that changes the cluster (time,
//! operator, environment, context, tenant, command, result), appended to
//! `audit.jsonl` in the repository, `$XTASK_AUDIT_LOG`, or `--audit-log`.
//! Reads are never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    /// `git config user.email`, else `$USER`.
    pub operator: String,
    /// The `--env` environment, when one was used.
    pub environment: Option<String>,
    /// The kube context, or `current` for kubectl's current context.
    pub context: String,
    pub tenant: String,
    /// The command line, without the program name.
    pub command: String,
    /// `ok`, or `error: ` and the first line of the error.
    pub result: String,
    /// The digest of the signed plan the change applied (`cargo xtask apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Who approved that plan: each signer's principal and roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The reason given with `--break-glass` for a change made without the
    /// environment's approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

/// On whose authority a command changes the cluster, beyond its operator:
/// a signed plan and its approvers, or a break-glass reason. Every entry
/// the command records carries it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authority {
    pub plan: Option<String>,
    pub approvers: Vec<String>,
    pub break_glass: Option<String>,
}

/// Whether this process has recorded any entry: a command that records
/// its own outcome (under a tenant's lock) is not recorded twice.
static RECORDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process has recorded an entry yet.
pub fn recorded_any() -> bool {
    RECORDED.load(std::sync::atomic::Ordering::SeqCst)
}

/// The audit log of one command.
pub struct AuditLog {
    path: PathBuf,
    authority: std::sync::Mutex<Authority>,
}

impl AuditLog {
    /// `--audit-log`, else `$XTASK_AUDIT_LOG`, else `audit.jsonl` at the
    /// repository root.
    pub fn at(flag: Option<&Path>, root: &Path) -> AuditLog {
        AuditLog {
            path: flag
                .map(Path::to_path_buf)
                .or_else(|| std::env::var_os("XTASK_AUDIT_LOG").map(PathBuf::from))
                .unwrap_or_else(|| root.join("audit.jsonl")),
            authority: Default::default(),
        }
    }

    /// On whose authority the command changes the cluster (see [`Authority`]).
    pub fn authority(&self) -> Authority {
        self.authority
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every entry recorded from now on carries `authority`.
    pub fn authorise(&self, authority: Authority) {
        *self.authority.lock().unwrap_or_else(|e| e.into_inner()) = authority;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry for `result` and passes `result` through. A change
    /// that cannot be recorded is reported as an error.
    pub fn record<T>(
        &self,
        context: Option<&str>,
        environment: Option<&str>,
        tenant: &str,
        result: anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.record_noting(context, environment, tenant, result, None)
    }

    /// [`AuditLog::record`], a success recorded as `ok: {note}`.
    pub fn record_noting<T>(
        &self,
        context: Option<&str>,
        environment: Option<&str>,
        tenant: &str,
        result: anyhow::Result<T>,
        note: Option<&str>,
    ) -> anyhow::Result<T> {
        let outcome = match (&result, note) {
            (Ok(_), None) => "ok".to_owned(),
            (Ok(_), Some(note)) => format!("ok: {note}"),
            (Err(e), _) => format!(
                "error: {}",
                format!("{e:#}").lines().next().unwrap_or_default()
            ),
        };
        let entry = Entry {
            time: crate::clock::now()
                .map(crate::clock::rfc3339)
                .unwrap_or_default(),
            operator: operator(),
            environment: environment.map(str::to_owned),
            context: context.unwrap_or("current").to_owned(),
            tenant: tenant.to_owned(),
            command: command_line(),
            result: outcome,
            plan: None,
            approvers: Vec::new(),
            break_glass: None,
        };
        let entry = {
            let authority = self.authority.lock().unwrap_or_else(|e| e.into_inner());
            Entry {
                plan: authority.plan.clone(),
                approvers: authority.approvers.clone(),
                break_glass: authority.break_glass.clone(),
                ..entry
            }
        };
        let written = append(&self.path, &entry);
        RECORDED.store(true, std::sync::atomic::Ordering::SeqCst);
        match (result, written) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e.context(format!(
                "the change was made, but it could not be recorded in the audit log {}",
                self.path.display()
            ))),
            (Err(e), Err(w)) => {
                Err(e.context(format!("(also not recorded in the audit log: {w:#})")))
            }
            (Err(e), Ok(())) => Err(e),
        }
    }

    /// Every entry of the log, oldest first; a missing log is empty.
    pub fn read(&self) -> anyhow::Result<Vec<Entry>> {
        read(&self.path)
    }
}

/// This process's command line without the program name, quoted as a
/// shell needs it: `--break-glass "INC-1: db lost"` reads back as one
/// argument, and a plan's command can be run again as it is.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

/// Who runs the command: `git config user.email`, else `$USER`.
pub fn operator() -> String {
    // Asked once per process: a batch records a line and takes a lock for
    // each of its tenants, and a `git` process each would cost seconds.
    static OPERATOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OPERATOR.get_or_init(ask_operator).clone()
}

fn ask_operator() -> String {
    let git = xshell::Shell::new().ok().and_then(|sh| {
        xshell::cmd!(sh, "git config user.email")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
    });
    git.filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_owned())
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn append(log: &Path, entry: &Entry) -> anyhow::Result<()> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let line = serde_json::to_string(entry)? + "\n";
    file.write_all(line.as_bytes())?;
    Ok(())
}

/// Every entry of the log, oldest first; a missing log is empty.
fn read(log: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", log.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not an audit entry", log.display(), i + 1))
        })
        .collect()
}
