//! `cargo xtask docs`: prove the documentation right (`check`) and keep the
//! generated command reference (`cli`) in step with the code.

pub mod check;
pub mod cli;
pub mod contexts;
mod zone;

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::flags::{self, DocsCommand};

/// The guide that must show every subcommand.
pub const GUIDE: &str = "docs/tenant-onboarding.md";

impl flags::Docs {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        match self.command {
            DocsCommand::Check(cmd) => cmd.run(root),
            DocsCommand::Cli(cmd) => cmd.run(root),
        }
    }
}

/// README.md and every markdown file under docs/.
pub fn default_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut files);
    files
}

/// All problems in `files`, plus the repository-wide ones when checking
/// the default set: the guide's subcommand coverage and docs/cli.md.
pub fn problems(
    root: &Path,
    files: &[PathBuf],
    repo_wide: bool,
    online: bool,
) -> Vec<check::Problem> {
    let report = check::check_files(root, files);
    let mut problems = report.problems;
    problems.extend(contexts::check_files(root, files));
    problems.sort();
    if repo_wide {
        let used = report.used.get(GUIDE).cloned().unwrap_or_default();
        for sub in check::all_subcommands() {
            if !used.contains(&sub) {
                problems.push(check::Problem {
                    file: GUIDE.to_owned(),
                    line: 1,
                    message: format!(
                        "`cargo xtask {sub}` is never shown in a code block of the guide"
                    ),
                });
            }
        }
        let current = std::fs::read_to_string(root.join(cli::PATH)).unwrap_or_default();
        if current != cli::generate() {
            problems.push(check::Problem {
                file: cli::PATH.to_owned(),
                line: 1,
                message: "out of date with the command definitions; run `cargo xtask docs cli` and commit it".to_owned(),
            });
        }
    }
    if online {
        problems.extend(check::check_online(&report.external));
    }
    problems
}

impl flags::DocsCheck {
    fn run(self, root: &Path) -> anyhow::Result<()> {
        let repo_wide = self.files.is_empty();
        let files = if repo_wide {
            default_files(root)
        } else {
            self.files.clone()
        };
        let problems = problems(root, &files, repo_wide, self.online);
        for p in &problems {
            println!("{p}");
        }
        if !problems.is_empty() {
            bail!("{} problem(s) in the documentation", problems.len());
        }
        eprintln!(
            "{} markdown files checked{}: no problems.",
            files.len(),
            if self.online {
                ", external links fetched"
            } else {
                " (external links for syntax only; --online fetches them)"
            }
        );
        Ok(())
    }
}

impl flags::DocsCli {
    fn run(self, root: &Path) -> anyhow::Result<()> {
        let path = root.join(cli::PATH);
        let fresh = cli::generate();
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if self.check {
            if current != fresh {
                bail!(
                    "{} is out of date; run `cargo xtask docs cli` and commit it",
                    cli::PATH
                );
            }
            eprintln!("{} is up to date.", cli::PATH);
            return Ok(());
        }
        if current == fresh {
            eprintln!("{} is already up to date.", cli::PATH);
        } else {
            crate::files::write_atomic(&path, fresh.as_bytes())?;
            eprintln!("Wrote {}.", cli::PATH);
        }
        Ok(())
    }
}
