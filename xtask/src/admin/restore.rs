//! `admin restore`: put a verified archive back into a tenant's volumes.
//!
//! Order: verify the archive offline, check it belongs to the tenant,
//! confirm, then stop the bot (one WhatsApp session must never run twice),
//! write both volumes through the workbench pod, check the result in place,
//! and start the bot again. Every step is recorded in [`Progress`], so a
//! failure or Ctrl-C ends with an exact statement of the tenant's state.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};

use crate::archive::{
    AUTH_DIR, RestoreTars, VerifiedArchive, check_cluster, cluster_uid, verify_archive,
};
use crate::clock::KubeDuration;
use crate::cluster::{Change, Cluster, Destructive};
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, Sink, Wait};
use crate::live::BotDeployment;
use crate::names::{REPLICAS_BEFORE_RESTORE_ANNOTATION, WORKBENCH_POD};
use crate::object::annotation;
use crate::outcome::{Left, LeftUnchanged};
use crate::platform::Platform;
use crate::workbench::Workbench;

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
            s += &format!("  - the workbench pod {WORKBENCH_POD} is still in {ns}\n");
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
                s += &format!("\n  kubectl --namespace {ns} delete pod {WORKBENCH_POD}");
            }
        }
        s
    }
}

impl flags::Restore {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        eprintln!("Verifying {} ...", self.file.display());
        let archive = verify_archive(&self.file).left_unchanged(Left::NothingChanged)?;
        // Everything sent into the pod is built now: nothing in the
        // archive can fail the restore once the bot is stopped.
        let tars = archive
            .restore_tars(STAGED_DB)
            .context("cannot prepare the archive's files for the restore")
            .left_unchanged(Left::NothingChanged)?;
        let from = archive.manifest.tenant.as_str();
        match &self.from_tenant {
            None if from != self.tenant.as_str() => crate::outcome::bail_unchanged!(
                "{} is a backup of tenant {from}, not {}. To restore another tenant's data \
                 on purpose, add --from-tenant {from}",
                self.file.display(),
                self.tenant
            ),
            Some(other) if other.as_str() != from => crate::outcome::bail_unchanged!(
                "--from-tenant {other} was given but {} is a backup of tenant {from}",
                self.file.display()
            ),
            _ => {}
        }
        let cluster = Cluster::connect(&self.cluster, root).left_unchanged(Left::NothingChanged)?;
        cluster_uid(cluster.kubectl())
            .and_then(|here| {
                check_cluster(
                    &archive.manifest,
                    &self.file,
                    &here,
                    self.from_cluster.as_deref(),
                )
            })
            .left_unchanged(Left::NothingChanged)?;
        let change = Change {
            tenant: &self.tenant,
            action: "a restore",
            yes: self.yes,
            destructive: Some(Destructive {
                explanation: format!(
                    "This stops tenant {}'s bot and replaces its database and WhatsApp session with the backup \
                     of tenant {} taken {}.",
                    self.tenant, archive.manifest.tenant, archive.manifest.created
                ),
                refusal: format!(
                    "restore replaces all of tenant {}'s data and needs confirmation",
                    self.tenant
                ),
            }),
        };
        cluster.change(
            &change,
            |kubectl| BotDeployment::find(kubectl, &self.tenant),
            |kubectl, bot| self.restore(kubectl, &platform, &archive, &tars, bot),
        )
    }

    fn restore(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        archive: &VerifiedArchive,
        tars: &RestoreTars,
        bot: BotDeployment,
    ) -> anyhow::Result<()> {
        crate::interrupt::install();
        let previous = annotation(&bot.object, REPLICAS_BEFORE_RESTORE_ANNOTATION)
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
        let result = self.steps(kubectl, platform, &bot, archive, tars, &mut progress);
        if let Err(e) = result {
            if progress.workbench
                && Workbench::stop(kubectl, &bot.namespace, &platform.admin.pod_timeout).is_ok()
            {
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

    fn steps(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        bot: &BotDeployment,
        archive: &VerifiedArchive,
        tars: &RestoreTars,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        let ns = bot.namespace.as_str();
        let timeout = &platform.admin.pod_timeout;
        let deployment = format!("deployment/{}", bot.name);
        if progress.replicas > 0 {
            kubectl.annotate(
                ns,
                &deployment,
                &[(
                    REPLICAS_BEFORE_RESTORE_ANNOTATION,
                    Some(&progress.replicas.to_string()),
                )],
            )?;
        }
        eprintln!("Stopping the bot ...");
        kubectl.scale(ns, &bot.name, 0)?;
        progress.bot_stopped = true;
        bot.wait_for_no_pods(kubectl, timeout)?;
        crate::interrupt::check()?;

        let pod = Workbench::start(kubectl, bot, timeout)?;
        progress.workbench = true;
        crate::interrupt::check()?;

        // The session read back from the pod is tenant data: owner-only.
        let work = crate::files::private_tempdir("xtask-restore-", None)?;
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
        let staged_ok = match &tars.database {
            Some(tar) => {
                // Staged beside the live file and checked before anything is removed.
                kubectl
                    .exec(&pod, &["tar", "-C", data_dir, "-xf", "-"], Input::File(tar))
                    .wait(Wait::Unbounded)
                    .run()?;
                expect_ok(kubectl, &pod, sqlite, &staged, &self.long.db_timeout)?;
                true
            }
            None => false,
        };
        progress.database = Volume::Changing;
        let mut rm = vec!["rm", "-f"];
        rm.extend(live_files.iter().map(String::as_str));
        kubectl.exec(&pod, &rm, Input::None).run()?;
        if staged_ok {
            kubectl
                .exec(&pod, &["mv", &staged, &db], Input::None)
                .run()?;
            expect_ok(kubectl, &pod, sqlite, &db, &self.long.db_timeout)?;
        }
        progress.database = Volume::Replaced;
        crate::interrupt::check()?;

        eprintln!("Writing the WhatsApp session ...");
        let auth_dir = platform.bot.whatsapp_auth_dir.as_str();
        progress.auth = Volume::Changing;
        kubectl
            .exec(
                &pod,
                &["find", auth_dir, "-mindepth", "1", "-delete"],
                Input::None,
            )
            .run()?;
        progress.auth = Volume::Emptied;
        kubectl
            .exec(
                &pod,
                &["tar", "-C", auth_dir, "-xf", "-"],
                Input::File(&tars.auth),
            )
            .wait(Wait::Unbounded)
            .run()?;
        progress.auth = Volume::Changing;
        check_session_files(kubectl, &pod, auth_dir, archive, work.path())?;
        progress.auth = Volume::Replaced;

        Workbench::stop(kubectl, ns, timeout)?;
        progress.workbench = false;
        if progress.replicas > 0 {
            eprintln!("Starting the bot ...");
            kubectl.scale(ns, &bot.name, progress.replicas)?;
            kubectl.annotate(
                ns,
                &deployment,
                &[(REPLICAS_BEFORE_RESTORE_ANNOTATION, None)],
            )?;
            progress.bot_stopped = false;
            kubectl
                .rollout_status(ns, &bot.name, &self.rollout.timeout)
                .context("the data is restored and the bot was started, but it is not ready yet")?;
        }
        Ok(())
    }
}

/// Runs `PRAGMA integrity_check` on a database in the pod.
fn expect_ok(
    kubectl: &Kubectl,
    pod: &Container,
    sqlite: &str,
    db: &str,
    limit: &KubeDuration,
) -> anyhow::Result<()> {
    let out = kubectl
        .exec(
            pod,
            &[sqlite, "-readonly", db, "PRAGMA integrity_check"],
            Input::None,
        )
        .wait(Wait::Within(limit.length()))
        .run()?;
    let verdict = String::from_utf8_lossy(&out).trim().to_owned();
    if verdict != "ok" {
        bail!("the restored database {db} failed PRAGMA integrity_check in the pod: {verdict}");
    }
    Ok(())
}

/// Reads the session volume back and compares it with the archive.
fn check_session_files(
    kubectl: &Kubectl,
    pod: &Container,
    auth_dir: &str,
    archive: &VerifiedArchive,
    work: &Path,
) -> anyhow::Result<()> {
    let back = work.join("auth-back.tar");
    kubectl
        .exec(pod, &["tar", "-C", auth_dir, "-cf", "-", "."], Input::None)
        .sink(Sink::File(crate::files::create_private_file(&back)?))
        .wait(Wait::Unbounded)
        .run()?;
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
        found.insert(
            format!("{AUTH_DIR}/{rel}"),
            crate::digest::sha256_hex(&bytes),
        );
    }
    let expected: std::collections::BTreeMap<String, String> = archive
        .manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with(&format!("{AUTH_DIR}/")))
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    if found != expected {
        bail!("the WhatsApp session volume does not match the archive after writing it");
    }
    Ok(())
}
