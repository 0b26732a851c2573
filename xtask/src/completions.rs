//! `completions` and `man`: shell completion scripts and the manual page,
//! both made from the same clap definitions as `--help`.
//!
//! The completion scripts are static: the tenant and environment names they
//! offer are read when the script is made (clap_complete's dynamic
//! completion is still unstable).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap::builder::PossibleValuesParser;

use crate::flags::{self, CompletionShell};

/// The command the scripts complete: a space in a command name cannot be
/// completed, so operators define `xtask` as a function running `cargo xtask`.
pub const COMMAND: &str = "xtask";

impl flags::Completions {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let dir = crate::repo::tenants_dir(root, self.tenants_dir.as_deref());
        let tenants = tenant_names(&dir);
        let environments = crate::environment::names()?;
        let script = script(self.shell, &tenants, &environments);
        to_stdout(&script, "the script")
    }
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is
/// not an error, as for other Unix tools.
fn to_stdout(bytes: &[u8], what: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.with_context(|| format!("cannot write {what} to stdout")),
    }
}

impl flags::Man {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let cmd = flags::Xtask::command().name(COMMAND);
        match self.out {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                clap_mangen::generate_to(cmd, &dir)
                    .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
                eprintln!("Wrote the manual pages into {}.", dir.display());
                Ok(())
            }
            None => {
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd).render(&mut page)?;
                to_stdout(&page, "the page")
            }
        }
    }
}

/// The names of the committed tenant configs in `dir` that are valid
/// tenant names; none when the directory cannot be read (a script without
/// names still completes everything else).
pub fn tenant_names(dir: &Path) -> Vec<String> {
    crate::repo::committed_configs(dir)
        .map(|configs| {
            configs
                .into_iter()
                .map(|(name, _)| name)
                .filter(|name| crate::tenant::validate_tenant_name(name).is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The completion script for `shell`, offering `tenants` for every TENANT
/// argument and `environments` for --env.
pub fn script(shell: CompletionShell, tenants: &[String], environments: &[String]) -> Vec<u8> {
    let mut cmd = with_values(
        flags::Xtask::command().name(COMMAND).bin_name(COMMAND),
        tenants,
        environments,
    );
    let mut out = Vec::new();
    match shell {
        CompletionShell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, COMMAND, &mut out)
        }
        CompletionShell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, COMMAND, &mut out)
        }
        CompletionShell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, COMMAND, &mut out)
        }
    }
    out
}

/// `cmd` with the names as the possible values of every tenant argument
/// (a positional TENANT, --tenant, --from-tenant) and of --env, in every
/// subcommand. Only for completion: parsing keeps the real validators.
fn with_values(cmd: clap::Command, tenants: &[String], environments: &[String]) -> clap::Command {
    // clap takes owned names only with its `string` feature; the process
    // makes one script and ends, so the names are leaked, once, instead.
    let leak = |names: &[String]| -> Vec<&'static str> {
        names
            .iter()
            .map(|n| &*Box::leak(n.clone().into_boxed_str()))
            .collect()
    };
    set_values(cmd, &leak(tenants), &leak(environments))
}

fn set_values(
    cmd: clap::Command,
    tenants: &[&'static str],
    environments: &[&'static str],
) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let is_tenant = arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|n| n.as_str() == "TENANT"))
            || ["tenant", "tenants"].contains(&arg.get_id().as_str());
        if is_tenant && !tenants.is_empty() {
            arg.value_parser(PossibleValuesParser::new(tenants.to_vec()))
        } else if arg.get_id() == "env" && !environments.is_empty() {
            arg.value_parser(PossibleValuesParser::new(environments.to_vec()))
        } else {
            arg
        }
    });
    cmd.mut_subcommands(|sub| set_values(sub, tenants, environments))
}
