//! `admin backup`: one verified archive of a tenant's two volumes. The
//! format itself is `archive.rs`.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};

use crate::archive::{check_database, verify_archive, write_archive};
use crate::clock::{now, rfc3339};
use crate::cluster::Cluster;
use crate::files::create_private_dir;
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, KubectlFailure, Sink, Wait};
use crate::live::{BotDeployment, pod_ready};
use crate::object::str_at;
use crate::outcome::{Left, LeftUnchanged};
use crate::platform::Platform;
use crate::workbench::Workbench;

/// The online backup's temporary file on the data volume.
const POD_BACKUP_FILE: &str = ".xtask-backup.sqlite3";

impl flags::Backup {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        self.backup(root).left_unchanged(Left::NoBackupWritten)
    }

    fn backup(&self, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let created = now()?;
        let bot = BotDeployment::find(kubectl, &self.tenant)?;
        let out_dir = self.out.clone().unwrap_or_else(|| root.join("backups"));
        create_private_dir(&out_dir)?;
        let final_path = out_dir.join(crate::archive::file_name(
            self.tenant.as_str(),
            &rfc3339(created),
        ));
        if final_path.exists() {
            bail!(
                "{} already exists; wait a second and run again",
                final_path.display()
            );
        }
        crate::interrupt::install();

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
                Workbench::start(kubectl, &bot, &platform.admin.pod_timeout)?,
                true,
            ),
            (None, _) => bail!(
                "tenant {t}'s bot is not ready, so it cannot be backed up through it, and it is not stopped, \
                 so a workbench pod may not mount its volumes beside it. Look at `cargo xtask admin list`; \
                 to back up anyway, stop it first with `kubectl --namespace {ns} scale deployment/{d} --replicas=0`, \
                 then run this again.",
                t = self.tenant,
                ns = bot.namespace,
                d = bot.name
            ),
        };
        // Work in a hidden directory beside the final archive, so that the
        // last step is a rename on one filesystem; it is removed on any error.
        let work = tempfile::Builder::new()
            .prefix(&format!(".{}-backup-", self.tenant))
            .tempdir_in(&out_dir)?;
        let result = self.collect(
            kubectl,
            &platform,
            &pod,
            &bot,
            created,
            work.path(),
            &final_path,
        );
        if workbench
            && let Err(e) = Workbench::stop(kubectl, &bot.namespace, &platform.admin.pod_timeout)
        {
            eprintln!("warning: could not delete the workbench pod: {e:#}");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn collect(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        pod: &Container,
        bot: &BotDeployment,
        created: std::time::SystemTime,
        work: &Path,
        final_path: &Path,
    ) -> anyhow::Result<()> {
        let db_path = platform.bot.database_path();
        let pod_copy = format!(
            "{}/{POD_BACKUP_FILE}",
            platform.bot.data_dir.trim_end_matches('/')
        );
        let sqlite = platform.admin.sqlite3.as_str();

        eprintln!(
            "Backing up the database of {} with SQLite's online backup ...",
            self.tenant
        );
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
                eprintln!("  the tenant has no database yet; the archive will hold none");
                false
            }
            Err(e) => {
                return Err(e.context("the online backup of the database failed"));
            }
        };
        let local_db = work.join("database.sqlite3");
        if has_db {
            let copied = File::create(&local_db)
                .map_err(anyhow::Error::from)
                .and_then(|f| {
                    kubectl
                        .exec(pod, &["cat", &pod_copy], Input::None)
                        .sink(Sink::File(f))
                        .wait(Wait::Unbounded)
                        .run()
                });
            let removed = kubectl
                .exec(pod, &["rm", "-f", &pod_copy], Input::None)
                .run();
            copied.context("copying the database backup out of the pod failed")?;
            if let Err(e) = removed {
                eprintln!("warning: could not remove {pod_copy} in the pod: {e:#}");
            }
        }
        crate::interrupt::check()?;
        eprintln!("Copying the WhatsApp session files ...");
        let auth_tar = work.join("whatsapp-auth.tar");
        let auth_dir = platform.bot.whatsapp_auth_dir.as_str();
        kubectl
            .exec(pod, &["tar", "-C", auth_dir, "-cf", "-", "."], Input::None)
            .sink(Sink::File(File::create(&auth_tar)?))
            .wait(Wait::Unbounded)
            .run()
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
            self.tenant.as_str(),
            &bot.namespace,
            created,
            has_db.then_some((
                &local_db,
                platform.bot.database_file.as_str(),
                user_version.unwrap_or(0),
            )),
            &auth_tar,
        )?;
        crate::interrupt::check()?;
        let verified =
            verify_archive(&partial).context("the archive just written does not verify")?;
        std::fs::rename(&partial, final_path)?;
        if let Some(dir) = final_path.parent() {
            File::open(dir)?.sync_all()?;
        }
        println!(
            "Backed up tenant {} to {} ({} bytes, {} files{}); verified.",
            self.tenant,
            final_path.display(),
            verified.archive_bytes,
            manifest.files.len(),
            user_version
                .map(|v| format!(", database user_version {v}"))
                .unwrap_or_default()
        );
        Ok(())
    }
}
