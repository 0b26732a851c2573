//! `cargo xtask`: the task runner that provisions and operates MLA
//! WhatsApp-bot tenants on the shared Kubernetes cluster.
//!
//! One module per command, each a `run` method on its flags struct:
//! - `provision`: render `templates/` for a tenant and apply them (provision.rs)
//! - `admin …`: list, usage, restart, logs, backup, restore (admin/)
//! - `docs check`, `docs cli`: prove the docs right, generate the CLI reference (docs/)
//!
//! Shared pieces: `tenant` (config and validation), `platform` (platform
//! settings), `render` (templates to checked manifests), `kubectl` (the only
//! code that talks to the cluster), `prompt` (interactive questions).

pub mod admin;
pub mod audit;
pub mod docs;
pub mod environment;
pub mod flags;
pub mod interrupt;
pub mod kubectl;
pub mod platform;
pub mod prompt;
pub mod provision;
pub mod pss;
pub mod render;
pub mod tenant;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

/// Runs the task named by `args` (the program name first), printing any
/// error to stderr; the binary is just this.
pub fn main_with(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // `cargo xtask provision` runs this binary as `xtask provision`; a
    // leading `xtask` (as when it is registered as `cargo` in doc tests) is
    // accepted too.
    let args = args
        .into_iter()
        .enumerate()
        .filter(|(i, a)| !(*i == 1 && a == "xtask"))
        .map(|(_, a)| a);
    let flags = flags::Xtask::parse_from(args);
    let result = xshell::Shell::new()
        .map_err(anyhow::Error::from)
        .and_then(|sh| match flags.command {
            flags::Command::Provision(cmd) => cmd.run(&sh, &project_root()),
            flags::Command::Admin(cmd) => cmd.run(&sh, &project_root()),
            flags::Command::Docs(cmd) => cmd.run(&project_root()),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<Exit>().is_some() => {
            ExitCode::from(err.downcast_ref::<Exit>().map_or(1, |e| e.0))
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 of `bytes`, in lowercase hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Ends a command with this exit status and no further message (its
/// output already said everything), e.g. `provision --plan` with changes.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The repository root: the parent of the `xtask` crate.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}
