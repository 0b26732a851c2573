//! `admin restore`: put a verified archive back into a tenant's volumes.
//!
//! Order: verify the archive offline, check it belongs to the tenant,
//! confirm, then stop the bot (one WhatsApp session must never run twice),
//! write both volumes through the workbench pod, check the result in place,
//! and start the bot again. Every step is recorded in [`Progress`], so a
//! failure or Ctrl-C ends with an exact statement of the tenant's state.

use std::fs::File;
use std::io::Seek as _;
use std::path::Path;

use anyhow::{Context, bail};

use crate::archive::{
    AUTH_DIR, RestoreTars, VerifiedArchive, check_cluster, cluster_uid, verify_archive,
};
use crate::clock::KubeDuration;
use crate::cluster::{Change, Destructive, Gated, Target};
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, Scope, Sink, Wait};
use crate::live::BotDeployment;
use crate::names::{REPLICAS_BEFORE_RESTORE_ANNOTATION, WORKBENCH_POD};
use crate::object::annotation;
use crate::outcome::{Left, LeftUnchanged};
use crate::platform::Platform;
use crate::tenant::TenantName;
use crate::transfer::Transfer;
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

/// What a restore has done so far. The volumes' states are this run's
/// record (only it knows what it wrote); the bot's state and what exists
/// are read back from the cluster when it fails ([`Seen`]).
struct Progress {
    tenant: String,
    namespace: String,
    deployment: String,
    /// The replicas the bot had before the restore (0: it was stopped).
    replicas: u32,
    /// This run scaled the bot to 0 (or found it at 0).
    stopped_by_us: bool,
    /// This run scaled the bot up again after writing the data.
    started_again: bool,
    /// The annotation is removed; waiting for the bot to be ready.
    rolling_out: bool,
    database: Volume,
    auth: Volume,
}

/// The tenant as the cluster shows it after a failure.
struct Seen {
    replicas: u32,
    /// The `replicas-before-restore` annotation, if it is still there.
    annotation: Option<String>,
    workbench: bool,
}

impl Seen {
    fn read(kubectl: &Kubectl, bot: &BotDeployment) -> anyhow::Result<Seen> {
        let ns = Scope::Namespace(&bot.namespace);
        let selector = crate::names::bot_selector_arg(bot.tenant.as_str());
        let deployment = kubectl
            .get_list("deployments", ns, Some(&selector))?
            .into_iter()
            .find(|d| crate::object::name(d) == bot.name)
            .with_context(|| format!("deployment/{} is gone from {}", bot.name, bot.namespace))?;
        let workbench = kubectl
            .get_list("pods", Scope::Namespace(&bot.namespace), None)?
            .iter()
            .any(|p| crate::object::name(p) == WORKBENCH_POD);
        Ok(Seen {
            replicas: deployment
                .pointer("/spec/replicas")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1) as u32,
            annotation: annotation(&deployment, REPLICAS_BEFORE_RESTORE_ANNOTATION)
                .map(str::to_owned),
            workbench,
        })
    }
}

impl Progress {
    fn data_changed(&self) -> bool {
        self.database != Volume::Untouched || self.auth != Volume::Untouched
    }

    /// The tenant's state: the bot's from `seen` (read back from the
    /// cluster), or, when that could not be read, from this run's record,
    /// saying so.
    fn describe(&self, archive: &Path, seen: Result<&Seen, &anyhow::Error>) -> String {
        let volume = |v: Volume| match v {
            Volume::Untouched => "untouched, as before the restore",
            Volume::Changing => "being written when it stopped: its contents are incomplete",
            Volume::Emptied => "emptied, not yet restored",
            Volume::Replaced => "replaced from the archive and checked",
        };
        let ns = &self.namespace;
        let d = &self.deployment;
        let plural = |n: u32| if n == 1 { "replica" } else { "replicas" };
        let mut s = format!("State of tenant {} now:\n", self.tenant);
        let (replicas, annotation, workbench) = match seen {
            Ok(seen) => (seen.replicas, seen.annotation.clone(), seen.workbench),
            Err(e) => {
                s += &format!(
                    "  (could not read it back from the cluster: {e:#}; this is what this run last did)\n"
                );
                let replicas = if self.started_again || !self.stopped_by_us {
                    self.replicas
                } else {
                    0
                };
                // This run recorded the replicas before stopping the bot and
                // removes them only after starting it again.
                let annotation = (self.stopped_by_us && self.replicas > 0 && !self.started_again)
                    .then(|| self.replicas.to_string());
                (replicas, annotation, false)
            }
        };
        // The replicas to go back to: the annotation's, else the record's.
        let before = annotation
            .as_deref()
            .and_then(|a| a.parse::<u32>().ok())
            .unwrap_or(self.replicas);
        if replicas == 0 {
            if before == 0 {
                s += &format!(
                    "  - the bot is stopped (deployment/{d} at 0 replicas), as it was before the restore\n"
                );
            } else {
                s += &format!(
                    "  - the bot is STOPPED (deployment/{d} at 0 replicas; it had {before} {})\n",
                    plural(before)
                );
            }
        } else if self.started_again {
            s += &format!(
                "  - the bot was started again on the restored data (deployment/{d} at {replicas} {}){}\n",
                plural(replicas),
                if self.rolling_out {
                    " but is not ready yet"
                } else {
                    ""
                }
            );
        } else if self.data_changed() {
            s += &format!(
                "  - the bot is RUNNING (deployment/{d} at {replicas} {}) on volumes this restore changed\n",
                plural(replicas)
            );
        } else if self.stopped_by_us {
            s += &format!(
                "  - the bot is RUNNING (deployment/{d} at {replicas} {}): it was stopped during this restore \
                 and something else started it since\n",
                plural(replicas)
            );
        } else {
            s += &format!(
                "  - the bot was not stopped and is running as before (deployment/{d} at {replicas} {})\n",
                plural(replicas)
            );
        }
        s += &format!("  - database volume: {}\n", volume(self.database));
        s += &format!("  - WhatsApp session volume: {}\n", volume(self.auth));
        let stale = replicas > 0 && annotation.is_some();
        if stale {
            s += &format!(
                "  - deployment/{d} still carries {REPLICAS_BEFORE_RESTORE_ANNOTATION}, though the bot runs: a later \
                 restore of a stopped bot would start it. Remove it:\n    \
                 kubectl --namespace {ns} annotate deployment/{d} {REPLICAS_BEFORE_RESTORE_ANNOTATION}-\n"
            );
        }
        if workbench {
            s += &format!("  - the workbench pod {WORKBENCH_POD} is still in {ns}\n");
        }
        let again = format!(
            "cargo xtask admin restore {} {} --yes{}",
            self.tenant,
            archive.display(),
            crate::suggest::target_arg()
        );
        if replicas == 0 && (before > 0 || self.data_changed()) {
            s += &format!(
                "To recover, run the same restore again (the archive is verified; it starts over safely):\n  {again}"
            );
            if before > 0 {
                s += &format!(
                    "\nor, to go back to service with the volumes as they are now:\n  \
                     kubectl --namespace {ns} scale deployment/{d} --replicas={before}"
                );
                if annotation.is_some() {
                    s += &format!(
                        "\n  kubectl --namespace {ns} annotate deployment/{d} {REPLICAS_BEFORE_RESTORE_ANNOTATION}-"
                    );
                }
            }
        } else if self.started_again && !self.rolling_out {
            s += if stale {
                "The data is restored and the bot runs again; remove the annotation as shown above."
            } else {
                "The data is restored and the bot runs again; nothing more is needed."
            };
        } else if self.started_again {
            s += &format!(
                "The data is restored. Why the bot is not ready: `kubectl --namespace {ns} rollout status \
                 deployment/{d}` and `cargo xtask admin logs {t}{s}`. Running the same restore again also starts \
                 over safely:\n  {again}",
                t = self.tenant,
                s = crate::suggest::target_arg()
            );
        } else if self.data_changed() {
            s += &format!(
                "To recover, stop the bot and run the same restore again:\n  \
                 kubectl --namespace {ns} scale deployment/{d} --replicas=0\n  {again}"
            );
        } else {
            s += &format!(
                "Nothing of the tenant's data was changed; once the cause is fixed, run the same restore again:\n  \
                 {again}"
            );
        }
        if workbench {
            s += &format!("\n  kubectl --namespace {ns} delete pod {WORKBENCH_POD}");
        }
        s
    }
}

impl flags::Restore {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        // From the start: the verified archive is unpacked in a temporary
        // directory, which a signal must not leave behind.
        crate::interrupt::install();
        let platform = self.platform.load(root)?;
        let target = Target::resolve(&self.cluster, root).left_unchanged(Left::NothingChanged)?;
        target.announce(&format!("a restore of tenant {}", self.tenant));
        target.gate(&Gated::Restore(&self.tenant), self.break_glass.reason())?;
        eprintln!("Verifying {} ...", self.file.display());
        let archive = verify_archive(&self.file).left_unchanged(Left::NothingChanged)?;
        // Everything sent into the pod is built now: nothing in the
        // archive can fail the restore once the bot is stopped.
        let tars = archive
            .restore_tars(STAGED_DB)
            .context("cannot prepare the archive's files for the restore")
            .left_unchanged(Left::NothingChanged)?;
        crate::interrupt::check().left_unchanged(Left::NothingChanged)?;
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
        let cluster = target.connect().left_unchanged(Left::NothingChanged)?;
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
            |kubectl| {
                // Read under the tenant's lock, so that a refusal is audited.
                let here = cluster_uid(kubectl)?;
                check_cluster(
                    &archive.manifest,
                    &self.file,
                    &here,
                    self.from_cluster.as_deref(),
                )?;
                let tenants = crate::live::Tenants::discover(kubectl)?;
                if let Some(other) = &self.from_tenant {
                    refuse_a_second_session(&tenants, other)?;
                }
                BotDeployment::in_namespace(kubectl, &self.tenant, tenants.require(&self.tenant)?)
            },
            |kubectl, bot| self.restore(kubectl, &platform, &archive, &tars, bot),
        )
    }
}

/// Another tenant's archive brings its WhatsApp session: while that tenant
/// is on this cluster and not offboarded, its bot runs (or may run again)
/// on the same session, and one session must never run in two bots.
fn refuse_a_second_session(
    tenants: &crate::live::Tenants,
    other: &TenantName,
) -> anyhow::Result<()> {
    let Some(ns) = tenants.find(other.as_str()) else {
        return Ok(());
    };
    let lifecycle = crate::state::Lifecycle::of(ns);
    if matches!(
        lifecycle,
        crate::state::Lifecycle::Offboarded { .. } | crate::state::Lifecycle::Terminating { .. }
    ) {
        return Ok(());
    }
    anyhow::bail!(
        "the archive holds the WhatsApp session of tenant {other}, which is on this cluster ({}): restored \
         here, one WhatsApp session would run in two bots, which WhatsApp treats as a takeover and which \
         mixes both tenants' messages. Offboard {other} first (`cargo xtask admin offboard {other}{}`), or \
         restore into a tenant of another cluster.",
        lifecycle
            .note(other.as_str())
            .unwrap_or_else(|| "active".to_owned()),
        crate::suggest::target_arg()
    )
}

impl flags::Restore {
    fn restore(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        archive: &VerifiedArchive,
        tars: &RestoreTars,
        bot: BotDeployment,
    ) -> anyhow::Result<()> {
        // A re-run after a failed restore finds the bot at 0 and its
        // replicas in the annotation; on a running bot the annotation is a
        // stale leftover and does not count.
        let previous = annotation(&bot.object, REPLICAS_BEFORE_RESTORE_ANNOTATION)
            .and_then(|r| r.parse().ok());
        let mut progress = Progress {
            tenant: self.tenant.to_string(),
            namespace: bot.namespace.clone(),
            deployment: bot.name.clone(),
            replicas: if bot.replicas == 0 {
                previous.unwrap_or(0)
            } else {
                bot.replicas
            },
            stopped_by_us: bot.replicas == 0,
            started_again: false,
            rolling_out: false,
            database: Volume::Untouched,
            auth: Volume::Untouched,
        };
        let result = self.steps(kubectl, platform, &bot, archive, tars, &mut progress);
        if let Err(e) = result {
            let seen = self.clean_up(kubectl, platform, &bot);
            return Err(anyhow::anyhow!(
                "restore of tenant {} failed: {e:#}\n\n{}",
                self.tenant,
                progress.describe(&self.file, seen.as_ref())
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

    /// After a failure: removes the workbench if it is there and a
    /// `replicas-before-restore` annotation the running bot no longer
    /// needs, then reads the tenant's state back (after a signal too: the
    /// calls here are new kubectl processes).
    fn clean_up(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        bot: &BotDeployment,
    ) -> anyhow::Result<Seen> {
        let seen = Seen::read(kubectl, bot).inspect_err(|_| {
            // Unreadable: the workbench may be there; deleting a missing
            // pod is no error.
            let _ = Workbench::stop(kubectl, &bot.namespace, &platform.admin.pod_timeout);
        })?;
        if seen.workbench
            && let Err(e) = Workbench::stop(kubectl, &bot.namespace, &platform.admin.pod_timeout)
        {
            eprintln!("warning: could not delete the workbench pod: {e:#}");
        }
        if seen.replicas > 0 && seen.annotation.is_some() {
            let target = format!("deployment/{}", bot.name);
            if let Err(e) = kubectl.annotate(
                &bot.namespace,
                &target,
                &[(REPLICAS_BEFORE_RESTORE_ANNOTATION, None)],
            ) {
                eprintln!("warning: could not remove {REPLICAS_BEFORE_RESTORE_ANNOTATION}: {e:#}");
            }
        }
        Seen::read(kubectl, bot)
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
        crate::interrupt::check()?;
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
        progress.stopped_by_us = true;
        bot.wait_for_no_pods(kubectl, timeout)?;
        crate::interrupt::check()?;

        let pod = Workbench::start(kubectl, bot, timeout)?;
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
                send(kubectl, &pod, data_dir, tar, "database")?;
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
        send(kubectl, &pod, auth_dir, &tars.auth, "WhatsApp session")?;
        progress.auth = Volume::Changing;
        check_session_files(kubectl, &pod, auth_dir, archive, work.path())?;
        progress.auth = Volume::Replaced;
        crate::interrupt::check()?;

        Workbench::stop(kubectl, ns, timeout)?;
        if progress.replicas > 0 {
            eprintln!("Starting the bot ...");
            kubectl.scale(ns, &bot.name, progress.replicas)?;
            progress.started_again = true;
            kubectl.annotate(
                ns,
                &deployment,
                &[(REPLICAS_BEFORE_RESTORE_ANNOTATION, None)],
            )?;
            progress.rolling_out = true;
            crate::interrupt::check()?;
            kubectl
                .rollout_status(ns, &bot.name, &self.rollout.timeout)
                .context("the data is restored and the bot was started, but it is not ready yet")?;
        }
        Ok(())
    }
}

/// Unpacks the tar `file` into `dir` in the pod, its bytes sent drawn as
/// `what`'s progress on a terminal (how far kubectl has read the file).
fn send(
    kubectl: &Kubectl,
    pod: &Container,
    dir: &str,
    file: &Path,
    what: &str,
) -> anyhow::Result<()> {
    let tar = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = tar.metadata()?.len();
    Transfer::on_terminal(what, Some(size), true).watch(
        || (&tar).stream_position().ok(),
        || {
            kubectl
                .exec(pod, &["tar", "-C", dir, "-xf", "-"], Input::Open(&tar))
                .wait(Wait::Unbounded)
                .run()
        },
    )?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            tenant: "alpha".into(),
            namespace: "tenant-alpha".into(),
            deployment: "bot".into(),
            replicas: 2,
            stopped_by_us: true,
            started_again: false,
            rolling_out: false,
            database: Volume::Untouched,
            auth: Volume::Untouched,
        }
    }

    /// The bot's line follows what the cluster shows, whatever step ran.
    #[test]
    fn the_bot_is_described_as_the_cluster_shows_it() {
        let archive = Path::new("a.tar.gz");
        let seen = |replicas, annotation: Option<&str>| Seen {
            replicas,
            annotation: annotation.map(str::to_owned),
            workbench: false,
        };
        // Stopped by this run, started by someone else since.
        let text = progress().describe(archive, Ok(&seen(2, None)));
        assert!(
            text.contains(
                "RUNNING (deployment/bot at 2 replicas): it was stopped during this restore"
            ),
            "{text}"
        );
        assert!(
            !text.contains("STOPPED") && !text.contains("running as before"),
            "{text}"
        );
        // Stopped, with the annotation giving the replicas to go back to.
        let text = progress().describe(archive, Ok(&seen(0, Some("3"))));
        assert!(
            text.contains("it had 3 replicas)") && text.contains("--replicas=3"),
            "{text}"
        );
        // A running bot still carrying the annotation is told to drop it.
        let mut p = progress();
        p.started_again = true;
        let text = p.describe(archive, Ok(&seen(2, Some("2"))));
        assert!(
            text.contains(&format!(
                "still carries {REPLICAS_BEFORE_RESTORE_ANNOTATION}"
            )),
            "{text}"
        );
        // Unreadable: says so, and falls back on this run's record.
        let e = anyhow::anyhow!("connection refused");
        let text = progress().describe(archive, Err(&e));
        assert!(
            text.contains("could not read it back from the cluster: connection refused")
                && text.contains(
                    "the bot is STOPPED (deployment/bot at 0 replicas; it had 2 replicas)"
                ),
            "{text}"
        );
    }
}
