//! `admin backup`: one verified archive of a tenant's two volumes, and
//! with `--keep` the pruning of its older ones; for several tenants, a
//! batch (`selection.rs`). The format itself is `archive.rs`.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::archive::{Provenance, check_database, verify_archive, write_archive};
use crate::clock::{now, rfc3339};
use crate::cluster::Cluster;
use crate::files::{create_private_dir, create_private_file, private_tempdir};
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, KubectlFailure, Sink, Wait};
use crate::live::{BotDeployment, pod_ready};
use crate::object::str_at;
use crate::outcome::{Left, LeftUnchanged};
use crate::platform::Platform;
use crate::selection::{Guard, Progress, Work};
use crate::state::Lifecycle;
use crate::tenant::TenantName;
use crate::transfer::Transfer;
use crate::workbench::Workbench;

/// The online backup's temporary file on the data volume.
const POD_BACKUP_FILE: &str = ".xtask-backup.sqlite3";

/// An archive written and verified.
struct Written {
    tenant: TenantName,
    path: PathBuf,
    bytes: u64,
    files: usize,
    /// None when the tenant had no database yet.
    user_version: Option<i64>,
}

impl Written {
    /// `backups/x.tar.gz (1234 bytes, 3 files, database user_version 3)`.
    fn describe(&self) -> String {
        format!(
            "{} ({} bytes, {} files{})",
            self.path.display(),
            self.bytes,
            self.files,
            self.user_version
                .map(|v| format!(", database user_version {v}"))
                .unwrap_or_default()
        )
    }
}

impl flags::Backup {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        crate::interrupt::install();
        let out_dir = self.out.clone().unwrap_or_else(|| root.join("backups"));
        if let Some(tenant) = self.selection.single() {
            let written = (|| {
                let platform = self.platform.load(root)?;
                let cluster = Cluster::connect(&self.cluster, root)?;
                cluster
                    .target()
                    .announce(&format!("a backup of tenant {tenant}"));
                let kubectl = cluster.kubectl();
                let provenance = provenance(&cluster)?;
                let tenants = crate::live::Tenants::discover(kubectl)?;
                self.backup(
                    kubectl,
                    &platform,
                    &out_dir,
                    (tenant, tenants.require(tenant)?),
                    &provenance,
                    Progress(true),
                )
            })()
            .left_unchanged(Left::NoBackupWritten)?;
            println!(
                "Backed up tenant {tenant} to {}; verified.",
                written.describe()
            );
            for old in self.prune(&out_dir, &written)? {
                println!(
                    "Deleted the older backup {} (--keep {}).",
                    old.display(),
                    self.keep.unwrap_or_default()
                );
            }
            return Ok(());
        }
        let (platform, cluster, batch, provenance) = (|| {
            let platform = self.platform.load(root)?;
            let (cluster, batch) = self
                .selection
                .connect(&self.cluster, root, || Ok(platform.clone()))?;
            let provenance = provenance(&cluster)?;
            Ok((platform, cluster, batch, provenance))
        })()
        .left_unchanged(Left::NoBackupWritten)?;
        let mut work = Work {
            command: "backup",
            doing: "Backing up",
            todo: Vec::new(),
            skipped: Vec::new(),
            jobs: self.jobs.jobs,
        };
        for selected in &batch.tenants {
            match Lifecycle::of(&selected.namespace) {
                Lifecycle::Offboarded { .. } | Lifecycle::Terminating { .. } => {
                    work.skipped.push((
                        selected.tenant.clone(),
                        format!(
                            "{}: it has no bot to back up through",
                            selected.state(None).describe()
                        ),
                    ))
                }
                // A suspended tenant's bot is stopped: the workbench reads its volumes.
                _ => work
                    .todo
                    .push((selected.tenant.clone(), &selected.namespace)),
            }
        }
        batch.run(&cluster, Guard::Read, work, |kubectl, tenant, namespace| {
            let written = self
                .backup(
                    kubectl,
                    &platform,
                    &out_dir,
                    (tenant, namespace),
                    &provenance,
                    Progress(false),
                )
                .left_unchanged(Left::NoBackupWritten)?;
            let pruned = self.prune(&out_dir, &written)?;
            let mut line = format!("{}; verified", written.describe());
            if written.user_version.is_none() {
                line += "; the tenant has no database yet";
            }
            if !pruned.is_empty() {
                let names: Vec<String> = pruned
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                line += &format!("; deleted {} older: {}", names.len(), names.join(", "));
            }
            Ok(line)
        })
    }

    /// With `--keep N`, after `written` is verified: the tenant's archives
    /// in `dir` beyond the newest N are deleted (see `archive::prune`).
    fn prune(&self, dir: &Path, written: &Written) -> anyhow::Result<Vec<PathBuf>> {
        let Some(keep) = self.keep else {
            return Ok(Vec::new());
        };
        crate::archive::prune(dir, written.tenant.as_str(), &written.path, keep as usize).with_context(|| {
            format!(
                "the backup {} was written and verified, but deleting the older ones (--keep {keep}) failed",
                written.path.display()
            )
        })
    }

    /// One archive of a tenant (its name and Namespace object) in
    /// `out_dir`, written and verified, under the tenant's lock.
    fn backup(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        out_dir: &Path,
        (tenant, namespace): (&TenantName, &serde_json::Value),
        provenance: &Provenance,
        progress: Progress,
    ) -> anyhow::Result<Written> {
        let created = now()?;
        create_private_dir(out_dir)?;
        let final_path = out_dir.join(crate::archive::file_name(
            tenant.as_str(),
            &rfc3339(created),
        ));
        if final_path.exists() {
            bail!(
                "{} already exists; wait a second and run again",
                final_path.display()
            );
        }
        // Work in a hidden directory beside the final archive, so that the
        // last step is a rename on one filesystem; it is removed on any
        // error. Made before any pod is started: an `--out` that cannot
        // hold it ends the backup with nothing to clean up on the cluster.
        // It holds the tenant's data: owner-only, as are its files.
        let work = private_tempdir(
            &format!(".{tenant}{}", crate::files::BACKUP_INFIX),
            Some(out_dir),
        )?;

        // The tenant's lock first, whichever way the data is read: a
        // restore, rotate or offboard beside a backup would hand it a mix
        // of two states (or pull the pod from under it), and a workbench
        // mounts the volumes a restore's workbench would write.
        let lock = crate::lock::hold(kubectl, crate::lock::Subject::tenant(tenant))?;
        // Read under the lock: what it shows stays so until the backup ends.
        let bot = &BotDeployment::in_namespace(kubectl, tenant, namespace)?;
        let pods = bot.pods(kubectl)?;
        let ready = pods.iter().find(|p| pod_ready(p));
        let (pod, workbench) = match (ready, bot.replicas) {
            (Some(p), _) => (
                Container {
                    namespace: bot.namespace.clone(),
                    pod: str_at(p, "/metadata/name").unwrap_or_default().to_owned(),
                    name: bot.container.clone(),
                },
                false,
            ),
            (None, 0) => (
                Workbench::start(kubectl, bot, &platform.admin.pod_timeout)?,
                true,
            ),
            (None, _) => bail!(
                "tenant {t}'s bot is not ready, so it cannot be backed up through it, and it is not stopped, \
                 so a workbench pod may not mount its volumes beside it. Look at `cargo xtask admin list{s}`; \
                 to back up anyway, stop it first with `kubectl{c} --namespace {ns} scale deployment/{d} --replicas=0`, \
                 then run this again.",
                s = crate::suggest::target_arg(),
                c = crate::kubectl::suggested_context_arg(),
                t = tenant,
                ns = bot.namespace,
                d = bot.name
            ),
        };
        // From here every return goes through the workbench's removal.
        let result = self.collect(
            kubectl,
            platform,
            &pod,
            bot,
            provenance,
            created,
            work.path(),
            &final_path,
            progress,
        );
        if workbench
            && let Err(e) = Workbench::stop(kubectl, &bot.namespace, &platform.admin.pod_timeout)
        {
            eprintln!("warning: could not delete the workbench pod of {tenant}: {e:#}");
        }
        lock.finish(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn collect(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        pod: &Container,
        bot: &BotDeployment,
        provenance: &Provenance,
        created: std::time::SystemTime,
        work: &Path,
        final_path: &Path,
        progress: Progress,
    ) -> anyhow::Result<Written> {
        let tenant = &bot.tenant;
        let db_path = platform.bot.database_path();
        let pod_copy = format!(
            "{}/{POD_BACKUP_FILE}",
            platform.bot.data_dir.trim_end_matches('/')
        );
        let sqlite = platform.admin.sqlite3.as_str();

        progress.say(format_args!(
            "Backing up the database of {tenant} with SQLite's online backup ..."
        ));
        let backup_cmd = format!(".backup {pod_copy}");
        let has_db = match kubectl
            .exec(
                pod,
                &[sqlite, "-readonly", &db_path, &backup_cmd],
                Input::None,
            )
            .wait(Wait::Within(self.long.db_timeout.length()))
            .run()
        {
            Ok(_) => true,
            Err(e)
                if e.downcast_ref::<KubectlFailure>()
                    .is_some_and(|f| f.stderr.contains("unable to open database")) =>
            {
                progress.say(format_args!(
                    "  the tenant has no database yet; the archive will hold none"
                ));
                false
            }
            Err(e) => {
                return Err(e.context("the online backup of the database failed"));
            }
        };
        let local_db = work.join("database.sqlite3");
        if has_db {
            let copied = create_private_file(&local_db).and_then(|f| {
                let written = f.try_clone()?;
                Transfer::on_terminal("database", None, progress.0).watch(
                    || written.metadata().ok().map(|m| m.len()),
                    || {
                        kubectl
                            .exec(pod, &["cat", &pod_copy], Input::None)
                            .sink(Sink::File(f))
                            .wait(Wait::Unbounded)
                            .run()
                    },
                )
            });
            let removed = kubectl
                .exec(pod, &["rm", "-f", &pod_copy], Input::None)
                .run();
            copied.context("copying the database backup out of the pod failed")?;
            if let Err(e) = removed {
                // Only the cause: the generic "run the same command again"
                // advice of a failed call does not fit a backup that goes on.
                let cause = e
                    .downcast_ref::<crate::kubectl::KubectlFailure>()
                    .map(|f| f.stderr.trim().to_owned())
                    .unwrap_or_else(|| {
                        format!("{e:#}")
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    });
                eprintln!(
                    "warning: could not remove the copy {pod_copy} in the pod of {tenant} ({cause}); the \
                     backup goes on. Remove it with `kubectl --namespace {} exec {} -- rm -f {pod_copy}`",
                    pod.namespace, pod.pod
                );
            }
        }
        crate::interrupt::check()?;
        progress.say(format_args!("Copying the WhatsApp session files ..."));
        let auth_tar = work.join("whatsapp-auth.tar");
        let auth_dir = platform.bot.whatsapp_auth_dir.as_str();
        let file = create_private_file(&auth_tar)?;
        let written = file.try_clone()?;
        Transfer::on_terminal("WhatsApp session", None, progress.0)
            .watch(
                || written.metadata().ok().map(|m| m.len()),
                || {
                    kubectl
                        .exec(pod, &["tar", "-C", auth_dir, "-cf", "-", "."], Input::None)
                        .sink(Sink::File(file))
                        .wait(Wait::Unbounded)
                        .run()
                },
            )
            .context("copying the WhatsApp session files failed")?;
        crate::interrupt::check()?;

        let user_version = if has_db {
            Some(check_database(&local_db)?)
        } else {
            None
        };
        let partial = work.join("archive.tar.gz");
        let manifest = write_archive(
            &partial,
            tenant.as_str(),
            &bot.namespace,
            provenance,
            created,
            has_db.then_some((
                &local_db,
                platform.bot.database_file.as_str(),
                user_version.unwrap_or(0),
            )),
            &auth_tar,
        )?;
        crate::interrupt::check()?;
        let verified = verify_archive(&partial).map_err(|e| {
            // Our own archive, refused for its ratio: the database is mostly
            // empty pages, which compacting removes.
            if e.downcast_ref::<crate::archive::ExpandsTooMuch>().is_some() {
                e.context(format!(
                    "the archive just written expands too much to be verified: tenant {tenant}'s database \
                     is mostly empty pages. Compact it, then back up again: `kubectl --namespace {ns} exec \
                     deployment/{d} -- {sqlite} {db} 'VACUUM'` (it rewrites the file; the bot may pause \
                     for as long)",
                    ns = bot.namespace,
                    d = bot.name,
                    sqlite = platform.admin.sqlite3,
                    db = platform.bot.database_path(),
                ))
            } else {
                e.context("the archive just written does not verify")
            }
        })?;
        std::fs::rename(&partial, final_path)?;
        if let Some(dir) = final_path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(Written {
            tenant: tenant.clone(),
            path: final_path.to_owned(),
            bytes: verified.archive_bytes,
            files: manifest.files.len(),
            user_version,
        })
    }
}

/// Where this run's archives are taken: the environment, the context and
/// the cluster's identity.
fn provenance(cluster: &Cluster) -> anyhow::Result<Provenance> {
    Provenance::read(
        cluster.kubectl(),
        cluster.target().environment().map(|e| e.name.as_str()),
        cluster.kubectl().context(),
    )
}
