//! `admin restore`: put a verified archive back into a tenant's volumes.
//!
//! Order: verify the archive offline, check it belongs to the tenant,
//! confirm, then stop the bot (one WhatsApp session must never run twice),
//! write both volumes through the workbench pod, check the result in place,
//! and start the bot again. Every step is recorded in [`Progress`], so a
//! failure or Ctrl-C ends with an exact statement of the tenant's state.

use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

use super::backup::{VerifiedArchive, verify_archive};
use super::restart::BotDeployment;
use super::workbench::{PodRef, WORKBENCH, Workbench};
use crate::flags::{self, duration_millis};
use crate::kubectl::{Input, Kubectl, Scope, Sink};
use crate::platform::Platform;
use crate::render::LABEL_DOMAIN;

/// Where the replica count the bot had before a restore is kept while the
/// bot is stopped, so that a re-run after a failure restores it too.
fn replicas_annotation() -> String {
    format!("{LABEL_DOMAIN}/replicas-before-restore")
}

/// The name the database is written under before it replaces the live one.
const STAGED_DB: &str = ".xtask-restore.sqlite3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Volume {
    Untouched,
    /// Being changed when the failure happened: contents unknown.
    Changing,
    Emptied,
    Replaced,
}

/// What a restore has done so far.
struct Progress {
    tenant: String,
    namespace: String,
    deployment: String,
    replicas: u32,
    bot_stopped: bool,
    workbench: bool,
    database: Volume,
    auth: Volume,
}

impl Progress {
    fn describe(&self, archive: &Path) -> String {
        let volume = |v: Volume| match v {
            Volume::Untouched => "untouched, as before the restore",
            Volume::Changing => "being written when it stopped: its contents are incomplete",
            Volume::Emptied => "emptied, not yet restored",
            Volume::Replaced => "replaced from the archive and checked",
        };
        let ns = &self.namespace;
        let mut s = format!("State of tenant {} now:\n", self.tenant);
        if self.bot_stopped {
            s += &format!(
                "  - the bot is STOPPED (deployment/{} scaled to 0; it had {} {})\n",
                self.deployment,
                self.replicas,
                if self.replicas == 1 {
                    "replica"
                } else {
                    "replicas"
                }
            );
        } else {
            s += "  - the bot was not stopped and is running as before\n";
        }
        s += &format!("  - database volume: {}\n", volume(self.database));
        s += &format!("  - WhatsApp session volume: {}\n", volume(self.auth));
        if self.workbench {
            s += &format!("  - the workbench pod {WORKBENCH} is still in {ns}\n");
        }
        if self.bot_stopped {
            s += &format!(
                "To recover, run the same restore again (the archive is verified; it starts over safely):\n  \
                 cargo xtask admin restore {} {} --yes\n\
                 or, to go back to service with the volumes as they are now:\n  \
                 kubectl --namespace {ns} scale deployment/{} --replicas={}",
                self.tenant,
                archive.display(),
                self.deployment,
                self.replicas.max(1)
            );
            if self.workbench {
                s += &format!("\n  kubectl --namespace {ns} delete pod {WORKBENCH}");
            }
        }
        s
    }
}

impl flags::Restore {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let restored = self.restore(sh, root);
        self.cluster.record(root, self.tenant.as_str(), restored)
    }

    fn restore(&self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        eprintln!("Verifying {} ...", self.file.display());
        let archive = verify_archive(&self.file)
            .map_err(|e| anyhow::anyhow!("{e:#}\nNothing was changed."))?;
        let from = archive.manifest.tenant.as_str();
        match &self.from_tenant {
            None if from != self.tenant.as_str() => bail!(
                "{} is a backup of tenant {from}, not {}; nothing was changed. To restore another tenant's data \
                 on purpose, add --from-tenant {from}",
                self.file.display(),
                self.tenant
            ),
            Some(other) if other.as_str() != from => bail!(
                "--from-tenant {other} was given but {} is a backup of tenant {from}; nothing was changed",
                self.file.display()
            ),
            _ => {}
        }
        let kubectl = self
            .cluster
            .kubectl()
            .map_err(|e| super::stating(e, "Nothing was changed."))?;
        let bot = BotDeployment::find(sh, &kubectl, &self.tenant)
            .map_err(|e| super::stating(e, "Nothing was changed."))?;
        self.confirm(&archive)?;
        crate::interrupt::install();

        let previous = bot
            .object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(replicas_annotation()))
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok());
        let mut progress = Progress {
            tenant: self.tenant.to_string(),
            namespace: bot.namespace.clone(),
            deployment: bot.name.clone(),
            // A re-run after a failed restore finds the bot already at 0.
            replicas: previous.unwrap_or(bot.replicas),
            bot_stopped: bot.replicas == 0,
            workbench: false,
            database: Volume::Untouched,
            auth: Volume::Untouched,
        };
        let result = self.steps(sh, &kubectl, &platform, &bot, &archive, &mut progress);
        if let Err(e) = result {
            if progress.workbench && Workbench::stop(sh, &kubectl, &bot.namespace).is_ok() {
                progress.workbench = false;
            }
            return Err(anyhow::anyhow!(
                "restore of tenant {} failed: {e:#}\n\n{}",
                self.tenant,
                progress.describe(&self.file)
            ));
        }
        println!(
            "Restored tenant {} from {} (taken {}); the bot is {}.",
            self.tenant,
            self.file.display(),
            archive.manifest.created,
            if progress.replicas == 0 {
                "left stopped, as it was"
            } else {
                "running again"
            }
        );
        Ok(())
    }

    fn confirm(&self, archive: &VerifiedArchive) -> anyhow::Result<()> {
        // In an environment that requires it, a terminal always asks.
        let strict = crate::environment::select(&self.cluster)?.is_some_and(|e| e.confirm);
        if self.yes && !(strict && std::io::stdin().is_terminal()) {
            return Ok(());
        }
        crate::prompt::confirm_typed(
            self.tenant.as_str(),
            &format!(
                "This stops tenant {}'s bot and replaces its database and WhatsApp session with the backup \
                 of tenant {} taken {}.",
                self.tenant, archive.manifest.tenant, archive.manifest.created
            ),
            false,
            &format!(
                "restore replaces all of tenant {}'s data and needs confirmation",
                self.tenant
            ),
        )
    }

    fn steps(
        &self,
        sh: &Shell,
        kubectl: &Kubectl,
        platform: &Platform,
        bot: &BotDeployment,
        archive: &VerifiedArchive,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        let ns = bot.namespace.as_str();
        let timeout = platform.admin.pod_timeout.as_str();
        if progress.replicas > 0 {
            kubectl.annotate(
                sh,
                ns,
                &format!("deployment/{}", bot.name),
                &replicas_annotation(),
                Some(&progress.replicas.to_string()),
            )?;
        }
        eprintln!("Stopping the bot ...");
        kubectl.scale(sh, ns, &bot.name, 0)?;
        progress.bot_stopped = true;
        wait_for_no_bot_pods(sh, kubectl, ns, timeout)?;
        crate::interrupt::check()?;

        let pod = Workbench::start(sh, kubectl, bot, &progress.tenant, timeout)?;
        progress.workbench = true;
        crate::interrupt::check()?;

        let work = tempfile::Builder::new()
            .prefix("xtask-restore-")
            .tempdir()?;
        let sqlite = platform.admin.sqlite3.as_str();
        let data_dir = platform.bot.data_dir.trim_end_matches('/');
        let db = platform.bot.database_path();
        let staged = format!("{data_dir}/{STAGED_DB}");
        let live_files = [
            db.clone(),
            format!("{db}-wal"),
            format!("{db}-shm"),
            format!("{db}-journal"),
        ];
        eprintln!("Writing the database ...");
        let staged_ok = match archive.database_file() {
            Some(file) => {
                // Staged beside the live file and checked before anything is removed.
                let tar = work.path().join("database.tar");
                write_tar(&tar, &[(STAGED_DB.to_owned(), file)])?;
                let untar = ["tar", "-C", data_dir, "-xf", "-"];
                pod.exec(sh, kubectl, &untar, Input::File(&tar), Sink::Capture)?;
                expect_ok(sh, kubectl, &pod, sqlite, &staged)?;
                true
            }
            None => false,
        };
        progress.database = Volume::Changing;
        let mut rm = vec!["rm", "-f"];
        rm.extend(live_files.iter().map(String::as_str));
        pod.exec(sh, kubectl, &rm, Input::None, Sink::Capture)?;
        if staged_ok {
            pod.exec(
                sh,
                kubectl,
                &["mv", &staged, &db],
                Input::None,
                Sink::Capture,
            )?;
            expect_ok(sh, kubectl, &pod, sqlite, &db)?;
        }
        progress.database = Volume::Replaced;
        crate::interrupt::check()?;

        eprintln!("Writing the WhatsApp session ...");
        let auth_dir = platform.bot.whatsapp_auth_dir.as_str();
        let tar = work.path().join("auth.tar");
        write_tar(&tar, &archive.auth_files())?;
        progress.auth = Volume::Changing;
        pod.exec(
            sh,
            kubectl,
            &["find", auth_dir, "-mindepth", "1", "-delete"],
            Input::None,
            Sink::Capture,
        )?;
        progress.auth = Volume::Emptied;
        pod.exec(
            sh,
            kubectl,
            &["tar", "-C", auth_dir, "-xf", "-"],
            Input::File(&tar),
            Sink::Capture,
        )?;
        progress.auth = Volume::Changing;
        check_session_files(sh, kubectl, &pod, auth_dir, archive, work.path())?;
        progress.auth = Volume::Replaced;

        Workbench::stop(sh, kubectl, ns)?;
        progress.workbench = false;
        if progress.replicas > 0 {
            eprintln!("Starting the bot ...");
            kubectl.scale(sh, ns, &bot.name, progress.replicas)?;
            kubectl.annotate(
                sh,
                ns,
                &format!("deployment/{}", bot.name),
                &replicas_annotation(),
                None,
            )?;
            progress.bot_stopped = false;
            kubectl
                .rollout_status(sh, ns, &bot.name, &self.rollout.timeout)
                .context("the data is restored and the bot was started, but it is not ready yet")?;
        }
        Ok(())
    }
}

/// Polls until the bot has no pods left (kubectl wait --for=delete fails
/// when there is nothing to wait for, so it cannot be used here).
fn wait_for_no_bot_pods(
    sh: &Shell,
    kubectl: &Kubectl,
    ns: &str,
    timeout: &str,
) -> anyhow::Result<()> {
    let limit = Duration::from_millis(duration_millis(timeout).map_err(anyhow::Error::msg)?);
    let start = Instant::now();
    let selector = format!("app.kubernetes.io/name={}", super::list::BOT_NAME);
    loop {
        let pods = kubectl.get_list(sh, "pods", Scope::Namespace(ns), Some(&selector))?;
        if pods.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            bail!(
                "the bot's pod is still there after {timeout}; `kubectl --namespace {ns} get pods` shows why"
            );
        }
        crate::interrupt::check()?;
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Runs `PRAGMA integrity_check` on a database in the pod.
fn expect_ok(
    sh: &Shell,
    kubectl: &Kubectl,
    pod: &PodRef,
    sqlite: &str,
    db: &str,
) -> anyhow::Result<()> {
    let out = pod.exec(
        sh,
        kubectl,
        &[sqlite, "-readonly", db, "PRAGMA integrity_check"],
        Input::None,
        Sink::Capture,
    )?;
    let verdict = String::from_utf8_lossy(&out).trim().to_owned();
    if verdict != "ok" {
        bail!("the restored database {db} failed PRAGMA integrity_check in the pod: {verdict}");
    }
    Ok(())
}

/// Reads the session volume back and compares it with the archive.
fn check_session_files(
    sh: &Shell,
    kubectl: &Kubectl,
    pod: &PodRef,
    auth_dir: &str,
    archive: &VerifiedArchive,
    work: &Path,
) -> anyhow::Result<()> {
    let back = work.join("auth-back.tar");
    pod.exec(
        sh,
        kubectl,
        &["tar", "-C", auth_dir, "-cf", "-", "."],
        Input::None,
        Sink::File(File::create(&back)?),
    )?;
    let mut found = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(File::open(&back)?).entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let rel = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        found.insert(format!("whatsapp-auth/{rel}"), crate::sha256_hex(&bytes));
    }
    let expected: std::collections::BTreeMap<String, String> = archive
        .manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("whatsapp-auth/"))
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    if found != expected {
        bail!("the WhatsApp session volume does not match the archive after writing it");
    }
    Ok(())
}

/// A plain tar of `(name in the tar, file)` pairs, owner-only modes.
fn write_tar(path: &Path, files: &[(String, std::path::PathBuf)]) -> anyhow::Result<()> {
    let mut builder = tar::Builder::new(File::create(path)?);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (name, file) in files {
        let f = File::open(file)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(f.metadata()?.len());
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, f)?;
    }
    builder.into_inner()?.sync_all()?;
    Ok(())
}
