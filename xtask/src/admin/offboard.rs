//! `admin offboard`: the safe delete. It refuses without a fresh verified
//! backup, deletes traffic first, then the bot, then the rest, keeps the
//! volumes unless told otherwise, and waits for a deleted namespace to be
//! gone (deletion is asynchronous on a real API server).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::archive::verify_archive;
use crate::clock::{KubeDuration, now, rfc3339};
use crate::cluster::{Change, Cluster, Destructive, Gated};
use crate::flags;
use crate::kubectl::{Kubectl, Scope};
use crate::live::{Tenants, terminating_since};
use crate::names::{CREDENTIALS_SECRET, TENANT_LABEL};
use crate::object::{name, str_at};
use crate::outcome::{Left, LeftUnchanged};
use crate::planfile::ObjectAction;
use crate::repo::tenants_dir;
use crate::state::{Lifecycle, Offboarding};
use serde_json::Value;

impl flags::Offboard {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        // From the start: the backup's check unpacks it in a temporary
        // directory, which a signal must not leave behind.
        crate::interrupt::install();
        let cluster = Cluster::connect(&self.cluster, root)?;
        if self.plan {
            self.saving.check()?;
            return self.plan(&cluster, root);
        }
        // The line `change` would say, said before the gate.
        cluster
            .target()
            .announce(&format!("offboarding of tenant {}", self.tenant));
        cluster
            .target()
            .gate(&Gated::Offboard(&self.tenant), self.break_glass.reason())?;
        cluster.change(
            &self.change(),
            |kubectl| self.check(kubectl, root),
            |kubectl, (lifecycle, backup)| self.offboard(kubectl, root, &lifecycle, backup),
        )
    }

    /// The change as the operator confirms it: the name typed (or --yes).
    fn change(&self) -> Change<'_> {
        Change {
            tenant: &self.tenant,
            action: "offboarding",
            yes: self.yes,
            destructive: Some(Destructive {
                explanation: format!(
                    "This removes tenant {} from the cluster{}.",
                    self.tenant,
                    if self.delete_data {
                        ", its database and WhatsApp session included"
                    } else {
                        "; its volumes are kept"
                    }
                ),
                refusal: format!(
                    "offboarding deletes tenant {} and needs confirmation",
                    self.tenant
                ),
            }),
        }
    }

    /// What the offboarding needs before it deletes anything: the tenant's
    /// state (and the refusals it implies) and its fresh verified backup.
    fn check(&self, kubectl: &Kubectl, root: &Path) -> anyhow::Result<(Lifecycle, Option<String>)> {
        let tenants = Tenants::discover(kubectl)?;
        let lifecycle = Lifecycle::of(tenants.require(&self.tenant)?);
        let offboarded_since = match &lifecycle {
            Lifecycle::Offboarded {
                reserved: false, ..
            } if self.reserve => {
                crate::outcome::bail_unchanged!(
                    "tenant {t} is already {note}; its domains and WhatsApp number were released then, \
                     and another tenant may have claimed them since. To hold them for this tenant again, \
                     provision it again (`cargo xtask provision {t} --values tenants/offboarded/{t}.yaml{s}`); \
                     to finish its offboarding, run this command without --reserve",
                    t = self.tenant,
                    s = crate::suggest::target_arg(),
                    note = lifecycle.note(self.tenant.as_str()).unwrap_or_default()
                );
            }
            // Run again: finishes an interrupted offboarding, or
            // releases a reservation, or deletes the data.
            Lifecycle::Offboarded { since, .. } => Some(since.clone()),
            _ => None,
        };
        let backup = if self.no_backup {
            None
        } else {
            Some(self.fresh_backup(kubectl, root, offboarded_since.as_deref())?)
        };
        Ok((lifecycle, backup))
    }

    /// The tenant's objects as an offboarding with these options meets
    /// them, but its pods: each with whether it is deleted, in deletion
    /// order, the volumes next and the namespace last.
    fn objects(&self, kubectl: &Kubectl) -> anyhow::Result<Vec<(Value, ObjectAction)>> {
        let ns = self.tenant.namespace();
        let mut objects = Vec::new();
        // Pods go with their Deployment, and come and go under it (a
        // restart replaces one): a plan that named them would be stale
        // for no change of anyone's.
        for kind in DELETION_ORDER.into_iter().filter(|k| *k != "pod") {
            for o in kubectl.get_list(kind, Scope::Namespace(&ns), Some(TENANT_LABEL))? {
                let kept = kind == "secret" && name(&o) == CREDENTIALS_SECRET && !self.delete_data;
                objects.push((
                    o,
                    if kept {
                        ObjectAction::Keep
                    } else {
                        ObjectAction::Delete
                    },
                ));
            }
        }
        let data = if self.delete_data {
            ObjectAction::Delete
        } else {
            ObjectAction::Keep
        };
        for o in kubectl.get_list("persistentvolumeclaims", Scope::Namespace(&ns), None)? {
            objects.push((o, data));
        }
        if let Some(namespace) = kubectl.get_optional("namespace", &ns)? {
            objects.push((namespace, data));
        }
        Ok(objects)
    }

    /// `--plan`: what an offboarding would delete and keep, read without
    /// the tenant's lock, and (`--save-plan`) the plan file for approval.
    /// Exit 2 when it would delete something, 0 when nothing.
    fn plan(&self, cluster: &Cluster, root: &Path) -> anyhow::Result<()> {
        cluster.target().announce(&format!(
            "the plan of offboarding tenant {} (nothing is changed)",
            self.tenant
        ));
        let kubectl = cluster.kubectl();
        let (lifecycle, backup) = self.check(kubectl, root)?;
        let objects = self.objects(kubectl)?;
        println!(
            "Plan for offboarding tenant {} on {}:",
            self.tenant,
            cluster.label()
        );
        if let Some(note) = lifecycle.note(self.tenant.as_str()) {
            println!("  (tenant {} is {note})", self.tenant);
        }
        match &backup {
            Some(b) => println!("  backup it relies on: {b} (verified)"),
            None => println!("  backup it relies on: none (--no-backup)"),
        }
        let reference = |o: &Value| {
            format!(
                "{}/{}",
                str_at(o, "/kind").unwrap_or_default().to_lowercase(),
                name(o)
            )
        };
        let deleting = objects
            .iter()
            .filter(|(_, a)| *a == ObjectAction::Delete)
            .count();
        for (o, action) in &objects {
            match action {
                ObjectAction::Delete => println!("  - {}", reference(o)),
                _ => println!("  = {} (kept)", reference(o)),
            }
        }
        if deleting == 0 {
            println!("  nothing to delete.");
            if let Some(file) = &self.saving.save_plan {
                println!(
                    "No plan was saved to {}: it would change nothing.",
                    file.display()
                );
            }
            return Ok(());
        }
        let gated = cluster
            .target()
            .environment()
            .filter(|e| !e.approvals.is_empty());
        println!(
            "\n{deleting} object(s) would be deleted. {}",
            match (gated, &self.saving.save_plan) {
                (_, Some(_)) => "Apply the saved plan once it is approved.".to_owned(),
                (Some(env), None) => format!(
                    "Environment {} requires approvals ({}): save the plan with --save-plan FILE, have it \
                     approved (`cargo xtask approve FILE --key KEY`) and apply it (`cargo xtask apply FILE{}`).",
                    env.name,
                    env.approvals.join(", "),
                    cluster.target().suggested_arg()
                ),
                (None, None) => "Offboard with the same command without --plan.".to_owned(),
            }
        );
        if let Some(file) = &self.saving.save_plan {
            let mut plan = self.plan_file(cluster, root, &objects)?;
            // What the reviewer reads: the backup it relies on, and each
            // object deleted or kept.
            plan.tenants[0].diff = std::iter::once(format!(
                "backup it relies on now: {} (an apply checks again for a fresh verified one)",
                backup.as_deref().unwrap_or("none (--no-backup)")
            ))
            .chain(objects.iter().map(|(o, action)| match action {
                ObjectAction::Delete => format!("- {}", reference(o)),
                _ => format!("= {} (kept)", reference(o)),
            }))
            .collect::<Vec<_>>()
            .join("\n")
                + "\n";
            crate::planfile::save_new(
                file,
                &plan,
                cluster
                    .target()
                    .environment()
                    .map(|e| e.approvals.as_slice())
                    .unwrap_or_default(),
            )?;
        }
        Err(crate::outcome::Exit(2).into())
    }

    fn plan_file(
        &self,
        cluster: &Cluster,
        root: &Path,
        objects: &[(Value, ObjectAction)],
    ) -> anyhow::Result<crate::planfile::Plan> {
        use crate::planfile::{Action, FORMAT, Inputs, Options, Plan, PlannedObject, TenantPlan};
        let now = now()?;
        let target = cluster.target();
        let config =
            tenants_dir(root, self.tenants_dir.as_deref()).join(format!("{}.yaml", self.tenant));
        let config = match std::fs::read(&config) {
            Ok(bytes) => Some(crate::digest::sha256_hex(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", config.display())),
        };
        Ok(Plan {
            format: FORMAT.to_owned(),
            action: Action::Offboard,
            all: false,
            environment: target.environment().map(|e| e.name.clone()),
            context: target.context().map(str::to_owned),
            cluster: crate::archive::cluster_uid(cluster.kubectl())?,
            planned_by: crate::audit::operator(),
            planned_at: rfc3339(now),
            expires_at: self.saving.expires_at(now),
            command: crate::audit::command_line(),
            // An offboarding renders nothing.
            inputs: Inputs {
                platform: String::new(),
                templates: String::new(),
                files: crate::planfile::InputFiles {
                    tenants: crate::planfile::InputFiles::absolute(&tenants_dir(
                        root,
                        self.tenants_dir.as_deref(),
                    )),
                    ..Default::default()
                },
            },
            tenants: vec![TenantPlan {
                tenant: self.tenant.to_string(),
                namespace: self.tenant.namespace(),
                config,
                values: None,
                options: Options {
                    delete_data: self.delete_data,
                    reserve: self.reserve,
                    no_backup: self.no_backup,
                    // Absolute: an apply may run from another directory.
                    backups: crate::planfile::InputFiles::absolute(
                        &self.backups.clone().unwrap_or_else(|| root.join("backups")),
                    ),
                    max_backup_age: Some(self.max_backup_age.to_string()),
                    from_cluster: self.from_cluster.clone(),
                    ..Options::default()
                },
                confirmed: Vec::new(),
                objects: objects
                    .iter()
                    .map(|(o, action)| PlannedObject {
                        kind: str_at(o, "/kind").unwrap_or_default().to_owned(),
                        name: name(o).to_owned(),
                        namespace: str_at(o, "/metadata/namespace").map(str::to_owned),
                        action: *action,
                        digest: None,
                        live: Some(crate::plan::live_ref(o)),
                    })
                    .collect(),
                diff: String::new(),
            }],
        })
    }

    /// The newest archive of the tenant, verified and fresh enough: no
    /// older than --max-backup-age now, or, for a tenant already offboarded
    /// (whose data has not changed since its bot was deleted), than
    /// --max-backup-age before it was offboarded.
    /// It must also have been taken on this cluster (or --from-cluster).
    fn fresh_backup(
        &self,
        kubectl: &Kubectl,
        root: &Path,
        offboarded_since: Option<&str>,
    ) -> anyhow::Result<String> {
        let dir = self.backups.clone().unwrap_or_else(|| root.join("backups"));
        let mut archives = crate::archive::archives_of(&dir, self.tenant.as_str());
        let advice = format!(
            "take one with `cargo xtask admin backup {t}{s}`, or name the directory that holds it with \
             --backups DIR (or pass --no-backup to offboard without one)",
            t = self.tenant,
            s = crate::suggest::target_arg()
        );
        let Some(newest) = archives.pop() else {
            crate::outcome::bail_unchanged!(
                "there is no backup of tenant {} in {}: {advice}",
                self.tenant,
                dir.display()
            );
        };
        let verified = verify_archive(&newest)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the newest backup {} does not verify: {e:#}\n{advice}",
                    newest.display()
                )
            })
            .left_unchanged(Left::NothingChanged)?;
        let created = humantime::parse_rfc3339(&verified.manifest.created)
            .with_context(|| format!("{} has an unreadable creation time", newest.display()))?;
        let limit = self.max_backup_age.length();
        let reference = match offboarded_since {
            Some(since) => humantime::parse_rfc3339(since).with_context(|| {
                format!("the tenant's offboarding time `{since}` on its namespace is unreadable")
            })?,
            None => now()?,
        };
        let age = reference.duration_since(created).unwrap_or_default();
        if verified.manifest.tenant != self.tenant.as_str() {
            crate::outcome::bail_unchanged!(
                "the newest backup {} is named for tenant {} but holds tenant {}'s data: {advice}",
                newest.display(),
                self.tenant,
                verified.manifest.tenant
            );
        }
        let here = crate::archive::cluster_uid(kubectl)?;
        crate::archive::check_cluster(
            &verified.manifest,
            &newest,
            &here,
            self.from_cluster.as_deref(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{e:#}. The backup that lets offboard delete must be of this cluster's tenant: {advice}"
            )
        })
        .left_unchanged(Left::NothingChanged)?;
        if age > limit {
            match offboarded_since {
                Some(since) => crate::outcome::bail_unchanged!(
                    "the newest backup {} was taken {} before the tenant was offboarded ({since}), more than \
                     --max-backup-age {}: its data may have changed after it. Restore a fresher archive if \
                     you have one, or pass --no-backup to delete the volumes without one",
                    newest.display(),
                    crate::clock::format_age(Some(age.as_secs())),
                    self.max_backup_age
                ),
                None => crate::outcome::bail_unchanged!(
                    "the newest backup {} is {} old, more than --max-backup-age {}: {advice}",
                    newest.display(),
                    crate::clock::format_age(Some(age.as_secs())),
                    self.max_backup_age
                ),
            }
        }
        Ok(newest.display().to_string())
    }

    fn offboard(
        &self,
        kubectl: &Kubectl,
        root: &Path,
        lifecycle: &Lifecycle,
        backup: Option<String>,
    ) -> anyhow::Result<()> {
        crate::interrupt::check().left_unchanged(Left::NothingChanged)?;
        let ns = self.tenant.namespace();
        let mut deleted = Vec::new();
        // Marked first: from here on every command treats the tenant as
        // offboarded, and an interrupted offboard is finished by running it
        // again. Its domains and number are released unless --reserve.
        if !matches!(
            lifecycle,
            Lifecycle::Offboarded { .. } | Lifecycle::Terminating { .. }
        ) {
            let backup_file = backup.as_deref().map(|b| {
                Path::new(b)
                    .file_name()
                    .map_or(b.to_owned(), |f| f.to_string_lossy().into_owned())
            });
            Offboarding {
                since: &rfc3339(now()?),
                by: &crate::audit::operator(),
                last_backup: backup_file.as_deref(),
                reserve: self.reserve,
            }
            .record(kubectl, &ns)?;
        }
        // Every deletion is listed as it happens, so that a failure or a
        // signal midway says exactly what is gone.
        let deletion = (|| -> anyhow::Result<()> {
            for kind in DELETION_ORDER {
                for o in kubectl.get_list(kind, Scope::Namespace(&ns), Some(TENANT_LABEL))? {
                    let name = name(&o).to_owned();
                    // The credentials hold the key of the WhatsApp session on
                    // the kept volume: they go with the data, not before it.
                    if kind == "secret" && name == CREDENTIALS_SECRET && !self.delete_data {
                        continue;
                    }
                    crate::interrupt::check()?;
                    eprintln!("Deleting {kind}/{name} ...");
                    kubectl.delete(Some(&ns), kind, &name, Some(&self.delete_timeout))?;
                    deleted.push(format!("{kind}/{name}"));
                }
            }
            // A reservation the operator no longer asks for is released.
            if matches!(lifecycle, Lifecycle::Offboarded { reserved: true, .. })
                && !self.reserve
                && !self.delete_data
            {
                Offboarding::release(kubectl, &ns)?;
            }
            if self.delete_data {
                for o in kubectl.get_list("persistentvolumeclaims", Scope::Namespace(&ns), None)? {
                    let name = name(&o).to_owned();
                    crate::interrupt::check()?;
                    eprintln!("Deleting persistentvolumeclaim/{name} ...");
                    kubectl.delete(
                        Some(&ns),
                        "persistentvolumeclaim",
                        &name,
                        Some(&self.delete_timeout),
                    )?;
                    deleted.push(format!("persistentvolumeclaim/{name} (the tenant's data)"));
                }
                // A namespace already Terminating (an offboard run again after
                // --delete-timeout) is only waited for: the API server refuses
                // a second delete while its finalizer runs.
                let terminating = kubectl
                    .get_optional("namespace", &ns)?
                    .is_some_and(|n| terminating_since(&n).is_some());
                if !terminating {
                    eprintln!("Deleting namespace/{ns} ...");
                    kubectl.delete(None, "namespace", &ns, None)?;
                }
                deleted.push(format!("namespace/{ns} (its deletion is under way)"));
                wait_until_gone(kubectl, &ns, &self.delete_timeout)?;
                deleted.pop();
                deleted.push(format!("namespace/{ns}"));
            }
            Ok(())
        })();
        if let Err(e) = deletion {
            let mut list = if deleted.is_empty() {
                "Deleted before it stopped: nothing".to_owned()
            } else {
                format!("Deleted before it stopped:\n  {}", deleted.join("\n  "))
            };
            // What is still there, as the cluster says (new kubectl
            // calls: they run after a signal too).
            list += &match remaining(kubectl, &ns) {
                Ok(r) if r.is_empty() => "\nStill on the cluster: nothing of the tenant".to_owned(),
                Ok(r) => format!("\nStill on the cluster:\n  {}", r.join("\n  ")),
                Err(e) => format!("\nWhat is still on the cluster could not be read: {e:#}"),
            };
            return Err(crate::outcome::partly(
                e,
                format!(
                    "{list}\nstopped; tenant {t} is marked offboarded and partly deleted. Run the same command again \
                     to finish:\n  cargo xtask {again}",
                    t = self.tenant,
                    again = same_command()
                ),
            ));
        }
        // What is left of the tenant, whatever the options.
        let mut left = Vec::new();
        if !self.delete_data {
            let secrets = kubectl.get_list("secrets", Scope::Namespace(&ns), Some(TENANT_LABEL))?;
            if secrets.iter().any(|s| name(s) == CREDENTIALS_SECRET) {
                left.push(format!(
                    "secret/{CREDENTIALS_SECRET} in {ns} (kept: the key of the WhatsApp session on its volume)"
                ));
            }
            for o in kubectl.get_list("persistentvolumeclaims", Scope::Namespace(&ns), None)? {
                left.push(format!(
                    "persistentvolumeclaim/{} in {ns} (kept: its data)",
                    name(&o)
                ));
            }
            left.push(format!("namespace/{ns} (kept: it holds the volumes)"));
        }
        for pv in kubectl.get_list("persistentvolumes", Scope::Cluster, None)? {
            if str_at(&pv, "/spec/claimRef/namespace") == Some(ns.as_str()) {
                left.push(format!(
                    "persistentvolume/{} ({}, reclaim policy {})",
                    name(&pv),
                    str_at(&pv, "/status/phase").unwrap_or("unknown"),
                    str_at(&pv, "/spec/persistentVolumeReclaimPolicy").unwrap_or("unknown")
                ));
            }
        }
        // The config goes to tenants/offboarded/, not away.
        let tenants_dir = tenants_dir(root, self.tenants_dir.as_deref());
        let config = tenants_dir.join(format!("{}.yaml", self.tenant));
        let moved = if config.exists() {
            let to = tenants_dir
                .join("offboarded")
                .join(format!("{}.yaml", self.tenant));
            std::fs::create_dir_all(tenants_dir.join("offboarded"))?;
            std::fs::rename(&config, &to)
                .with_context(|| format!("cannot move {} to {}", config.display(), to.display()))?;
            Some(to)
        } else {
            None
        };
        println!("Offboarded tenant {}.", self.tenant);
        match backup {
            Some(b) => println!("  last backup: {b}"),
            None => println!("  last backup: none (--no-backup)"),
        }
        // Run again: an earlier run deleted the rest.
        let again = matches!(
            lifecycle,
            Lifecycle::Offboarded { .. } | Lifecycle::Terminating { .. }
        );
        let heading = if again {
            "deleted by this run"
        } else {
            "deleted"
        };
        if deleted.is_empty() {
            println!("  {heading}: nothing (already gone)");
        } else {
            println!("  {heading}:");
            for d in &deleted {
                println!("    {d}");
            }
        }
        if again {
            println!(
                "  (the offboarding began {}: an earlier run deleted the rest)",
                lifecycle.since().unwrap_or("earlier")
            );
        }
        if !self.delete_data {
            if self.reserve {
                println!(
                    "  its domains and WhatsApp number stay reserved: no other tenant can claim them"
                );
            } else {
                println!(
                    "  its domains and WhatsApp number are released: another tenant may claim them"
                );
            }
        }
        match moved {
            Some(to) => println!("  config moved to {} (commit the move)", to.display()),
            None => {
                let kept = tenants_dir
                    .join("offboarded")
                    .join(format!("{}.yaml", self.tenant));
                if kept.exists() {
                    println!("  config already in {}", kept.display());
                } else {
                    println!("  no config at {} to move", config.display());
                }
            }
        }
        if left.is_empty() {
            println!("  nothing of the tenant is left on the cluster");
        } else {
            println!("  still on the cluster:");
            for l in left {
                println!("    {l}");
            }
        }
        Ok(())
    }
}

/// The tenant's objects still in `ns`, as `kind/name`, in deletion order,
/// its volumes last.
fn remaining(kubectl: &Kubectl, ns: &str) -> anyhow::Result<Vec<String>> {
    if kubectl.get_optional("namespace", ns)?.is_none() {
        return Ok(Vec::new());
    }
    let mut left = Vec::new();
    for kind in DELETION_ORDER {
        for o in kubectl.get_list(kind, Scope::Namespace(ns), Some(TENANT_LABEL))? {
            left.push(format!("{kind}/{}", name(&o)));
        }
    }
    for o in kubectl.get_list("persistentvolumeclaims", Scope::Namespace(ns), None)? {
        left.push(format!("persistentvolumeclaim/{}", name(&o)));
    }
    left.push(format!("namespace/{ns}"));
    Ok(left)
}

/// Traffic first, then the bot, then everything else.
const DELETION_ORDER: [&str; 10] = [
    "ingress",
    "deployment",
    "pod",
    "serviceaccount",
    "service",
    "configmap",
    "secret",
    "networkpolicy",
    "limitrange",
    "resourcequota",
];

/// This process's own command line, quoted for a shell, without the
/// program name: what "run the same command again" means.
/// This command as it was run, with the run's `--env`/`--context` added
/// when it came from environments.yaml's default.
fn same_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line =
        shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "));
    let pointed = args.iter().any(|a| {
        ["--env", "--context"]
            .iter()
            .any(|f| a == f || a.starts_with(&format!("{f}=")))
    });
    if !pointed {
        line += &crate::suggest::target_arg();
    }
    line
}

/// Waits until a deleted namespace is gone: the API server removes it only
/// after its finalizers have run and every pod's grace period has passed.
fn wait_until_gone(kubectl: &Kubectl, ns: &str, timeout: &KubeDuration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut said = false;
    // Quick at first (a namespace with nothing left goes in a moment), then every 2 s.
    let mut pause = Duration::from_millis(250);
    loop {
        let Some(namespace) = kubectl.get_optional("namespace", ns)? else {
            return Ok(());
        };
        if start.elapsed() >= timeout.length() {
            bail!(
                "namespace {ns} is still Terminating after --delete-timeout {timeout}: the API server is still \
                 deleting what it held (finalizers, pods in their grace period). Its phase and conditions: \
                 `kubectl get namespace {ns} -o yaml`; what is left in it: `kubectl api-resources --verbs=list \
                 --namespaced -o name | xargs -n1 kubectl get -n {ns} --ignore-not-found`. The rest of the \
                 tenant is deleted; run the same offboard again to wait longer."
            );
        }
        if !said {
            eprintln!(
                "Waiting up to {timeout} for namespace {ns} to finish terminating (since {}) ...",
                terminating_since(&namespace).unwrap_or("now")
            );
            said = true;
        }
        crate::interrupt::check().map_err(|e| {
            e.context(format!(
                "stopped waiting; namespace {ns} goes on terminating on the cluster"
            ))
        })?;
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// `cargo xtask apply FILE` of an offboard plan whose approvals, expiry
/// and cluster were checked: the offboarding the plan describes, with its
/// options, through the path every offboarding takes (the tenant's lock,
/// the name typed on a terminal, the backup checked again, the audit
/// line). Refused, with nothing changed, when any of the tenant's objects
/// was created, deleted or changed since planning.
pub fn apply_plan(
    cluster: &Cluster,
    root: &Path,
    file: &crate::planfile::PlanFile,
    planned: &crate::planfile::TenantPlan,
    tenants_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let tenant = planned.tenant_name()?;
    let options = &planned.options;
    let parse = |d: Option<&str>, default: &str| -> anyhow::Result<KubeDuration> {
        d.unwrap_or(default).parse().map_err(anyhow::Error::msg)
    };
    let offboard = flags::Offboard {
        tenant: tenant.clone(),
        delete_data: options.delete_data,
        reserve: options.reserve,
        no_backup: options.no_backup,
        backups: options.backups.as_ref().map(std::path::PathBuf::from),
        max_backup_age: parse(options.max_backup_age.as_deref(), "24h")?,
        from_cluster: options.from_cluster.clone(),
        delete_timeout: parse(None, "10m")?,
        // The approvals stand for --yes; a terminal still asks the name.
        yes: true,
        plan: false,
        saving: flags::SavePlanArgs::none(),
        // Approved: no glass to break.
        break_glass: flags::BreakGlassArg { break_glass: None },
        tenants_dir: tenants_dir.map(Path::to_path_buf),
        cluster: flags::ClusterArgs {
            kubectl: None,
            context: None,
            kubectl_timeout: parse(None, "60s")?,
            audit_log: None,
            env: None,
        },
    };
    crate::interrupt::install();
    cluster.change(
        &offboard.change(),
        |kubectl| {
            let checked = offboard.check(kubectl, root)?;
            let now = offboard.objects(kubectl)?;
            let mut stale = crate::plan::stale_objects(&planned.objects, |kind, name_of| {
                now.iter()
                    .map(|(o, _)| o)
                    .find(|o| str_at(o, "/kind") == Some(kind) && name(o) == name_of)
            });
            for (o, _) in &now {
                let kind = str_at(o, "/kind").unwrap_or_default();
                if !planned
                    .objects
                    .iter()
                    .any(|p| p.kind == kind && p.name == name(o))
                {
                    stale.push(format!("{}/{} was created", kind.to_lowercase(), name(o)));
                }
            }
            if !stale.is_empty() {
                crate::outcome::bail_unchanged!(
                    "stale plan: {} since {} (when it was planned); {}",
                    stale.join(", "),
                    file.plan.planned_at,
                    file.plan.plan_again()
                );
            }
            Ok(checked)
        },
        |kubectl, (lifecycle, backup)| offboard.offboard(kubectl, root, &lifecycle, backup),
    )
}
