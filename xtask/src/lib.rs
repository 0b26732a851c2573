//! `cargo xtask`: the task runner that provisions and operates MLA
//! WhatsApp-bot tenants on the shared Kubernetes cluster.
//!
//! Layers, each using only those below it (`tests/tidy.rs` checks that no
//! module refers back to one that refers to it):
//! - dispatch: this file, `admin/mod.rs`, `docs/mod.rs`;
//! - commands: `provision`, `admin/<command>`, `docs/<command>`,
//!   `completions` (completion scripts and the man page), one module each,
//!   never using one another;
//! - shared views: `live` (tenants on the cluster), `fleet` (every tenant
//!   read from the cluster at once), `plan` (what an apply would do),
//!   `batch` (many tenants' objects applied in few kubectl calls),
//!   `archive` (the backup format), `workbench`, `selection` (the tenants a
//!   bulk command acts on, and its report), `rbac` (who may do what,
//!   decided from the cluster's roles and bindings);
//! - `cluster`: environment, confirmation, locks and audit around kubectl;
//! - `lock`: the tenant and claims Leases on the cluster;
//! - `kubectl`: the only door to the cluster;
//! - pure pieces: `flags`, `tenant`, `platform`, `environment`, `render`,
//!   `names`, `pss`, `clock`, `audit`, `prompt`, `output`, `files`, `pool`,
//!   `digest`, `object`, `managed`, `compare`, `outcome`, `interrupt`,
//!   `repo`, `suggest`, `signing` (plan approvals: SSH signatures and
//!   the approvers file), `report` (the usage report as an HTML page).

pub mod admin;
pub mod apply;
pub mod approve;
pub mod archive;
pub mod audit;
pub mod batch;
pub mod clock;
pub mod cluster;
pub mod colour;
pub mod compare;
pub mod completions;
pub mod digest;
pub mod docs;
pub mod environment;
pub mod files;
pub mod flags;
pub mod fleet;
pub mod interrupt;
pub mod kubectl;
pub mod live;
pub mod lock;
pub mod managed;
pub mod measure;
pub mod names;
pub mod object;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod planfile;
pub mod platform;
pub mod pool;
pub mod prompt;
pub mod provision;
pub mod pss;
pub mod rbac;
pub mod render;
pub mod repo;
pub mod report;
pub mod rollout;
pub mod selection;
pub mod signing;
pub mod state;
pub mod suggest;
pub mod tenant;
pub mod transfer;
pub mod workbench;

use std::ffi::OsString;
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
    colour::init(flags.color);
    let root = repo::project_root();
    let result = match flags.command {
        flags::Command::Provision(cmd) => cmd.run(&root),
        flags::Command::Admin(cmd) => cmd.run(&root),
        flags::Command::Approve(cmd) => cmd.run(&root),
        flags::Command::Apply(cmd) => cmd.run(&root),
        flags::Command::Plan(cmd) => cmd.run(&root),
        flags::Command::Docs(cmd) => cmd.run(&root),
        flags::Command::Completions(cmd) => cmd.run(&root),
        flags::Command::Man(cmd) => cmd.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<outcome::Exit>() {
            Some(exit) => ExitCode::from(exit.0),
            None => {
                eprintln!("error: {err:#}");
                // Ctrl-C or Esc at a question: 130, as for a command
                // ended by Ctrl-C, so that scripts tell it from a failure.
                match prompt::cancelled() {
                    true => ExitCode::from(130),
                    false => ExitCode::FAILURE,
                }
            }
        },
    }
}
