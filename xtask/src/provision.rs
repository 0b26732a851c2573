//! `cargo xtask provision`: tenant config in, manifests out, one server-side
//! apply, then wait for the bot.
//!
//! Order of work, so that bad input never reaches the cluster: validate the
//! name (clap), load platform settings and templates, collect and validate
//! every value, render and check the manifests; only then read the cluster
//! (`plan::prepare` refuses clashes), confirm, save the config, apply once,
//! and wait. `--all` runs the same path for every committed tenant.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use std::collections::BTreeMap;

use crate::cluster::{Change, Cluster, Gated, Target};
use crate::colour::Tone;
use crate::environment::Environment;
use crate::files::write_atomic;
use crate::flags;
use crate::fleet::Fleet;
use crate::kubectl::Scope;
use crate::kubectl::{Conflicts, Kubectl};
use crate::lock::Subject;
use crate::names::{BOT, CONFIG_MAP, MANAGER, TENANT_LABEL};
use crate::object::kind_and_name;
use crate::outcome::{Exit, Left, LeftUnchanged};
use crate::plan::{
    FieldChange, Live, ObjectChange, Prepared, changed_since, changes_to_confirm, diff_plan,
    field_changes, local_plan, prepare, prepare_from, refuse_identity_change, refuse_shrinking,
    refuse_unusable_namespace, unique_kinds, what_changed,
};
use crate::platform::Platform;
use crate::prompt::{Prompter, TerminalPrompter, ask_valid_or, ask_yes_no};
use crate::render::{Manifest, SecretValues, Templates, file_name, to_yaml_stream};
use crate::repo::{RepoPaths, committed_configs, read_values};
use crate::state::{Lifecycle, Offboarding, State};
use crate::tenant::{self, TenantName, TenantSpec, TenantValues, format_problems};

/// What one provision did, object by object.
pub struct Provisioned {
    tenant: TenantName,
    namespace: String,
    applied: Vec<(String, ObjectChange)>,
    /// Each object kept as it is, its note, and whether it is kept as
    /// always (credentials, a volume of its tier's size), which a batch
    /// does not repeat for every tenant.
    kept: Vec<(String, String, bool)>,
    /// The bot's Deployment after the apply: Some(true) rolled out and
    /// ready, Some(false) stopped (scaled to 0 by someone; left so).
    bot_running: Option<bool>,
    /// Restarted because its ConfigMap changed under an unchanged template.
    restarted: bool,
}

impl Provisioned {
    /// A tenant whose every object is as its config says: nothing applied.
    fn unchanged(spec: &TenantSpec, prepared: &Prepared) -> Provisioned {
        Provisioned {
            tenant: spec.name.clone(),
            namespace: spec.namespace.clone(),
            applied: prepared
                .to_apply
                .iter()
                .map(|m| (m.reference(), ObjectChange::Unchanged))
                .collect(),
            kept: kept_lines(prepared),
            bot_running: None,
            restarted: false,
        }
    }

    fn changed(&self) -> usize {
        self.applied
            .iter()
            .filter(|(_, c)| *c != ObjectChange::Unchanged)
            .count()
    }

    /// The first line of the report; all that `--all` prints per tenant.
    fn headline(&self) -> String {
        match self.changed() {
            0 => format!(
                "Tenant {} is up to date in {}: nothing changed ({} objects checked, {} kept).",
                self.tenant,
                self.namespace,
                self.applied.len(),
                self.kept.len()
            ),
            n => format!(
                "Tenant {} provisioned in {} ({n} changed):",
                self.tenant, self.namespace
            ),
        }
    }

    /// What `--all` prints for the tenant: the headline, and under it each
    /// object that changed, each kept otherwise than always, a restart, and
    /// what the run was confirmed to change (`confirmed`).
    fn batch_lines(&self, confirmed: &[String], confirmed_how: &str) -> String {
        let mut lines = vec![self.headline()];
        for (reference, change) in &self.applied {
            if *change != ObjectChange::Unchanged {
                lines.push(format!("  {}{reference}", painted_change(*change)));
            }
        }
        for (reference, note, _) in self.kept.iter().filter(|k| !k.2) {
            lines.push(format!(
                "  {}{reference} ({note})",
                painted_word("kept", Tone::Faint)
            ));
        }
        if self.restarted {
            lines.push(format!(
                "  {}deployment/{BOT} (its ConfigMap changed; the bot reads it when it starts)",
                painted_word("restarted", Tone::Warn)
            ));
        }
        for change in confirmed {
            lines.push(format!(
                "  {}{change} ({confirmed_how})",
                painted_word("changed", Tone::Warn)
            ));
        }
        lines.join("\n")
    }

    fn print(&self) {
        println!("{}", self.headline());
        if self.changed() > 0 {
            for (reference, change) in &self.applied {
                println!("  {}{reference}", painted_change(*change));
            }
            for (reference, note, _) in &self.kept {
                println!(
                    "  {}{reference} ({note})",
                    painted_word("kept", Tone::Faint)
                );
            }
            if self.restarted {
                println!(
                    "  {}deployment/{BOT} (its ConfigMap changed; the bot reads it when it starts)",
                    painted_word("restarted", Tone::Warn)
                );
            }
        }
        match self.bot_running {
            Some(true) => println!("The bot is rolled out and ready."),
            Some(false) => println!(
                "The bot is stopped (scaled to 0 replicas) and stays so: provision never changes the replica count."
            ),
            None => {}
        }
    }
}

/// `word` padded to the column of a report's object lines, in `tone`.
fn painted_word(word: &str, tone: Tone) -> String {
    crate::colour::paint(&format!("{word:<11}"), tone)
}

/// What an apply did to an object, painted: created green, configured
/// yellow, unchanged faint.
fn painted_change(change: ObjectChange) -> String {
    let tone = match change {
        ObjectChange::Created => Tone::Good,
        ObjectChange::Configured => Tone::Warn,
        ObjectChange::Unchanged => Tone::Faint,
    };
    painted_word(change.as_str(), tone)
}

/// A plan's line, painted: creations green, updates yellow, what needs a
/// hand red.
fn painted_plan_change(change: &crate::plan::PlanChange) -> String {
    use crate::plan::PlanChange;
    let tone = match change {
        PlanChange::Create(_) | PlanChange::CreateCredentials { .. } => Tone::Good,
        PlanChange::Update { .. } => Tone::Warn,
        PlanChange::Manual { .. } => Tone::Bad,
    };
    crate::colour::paint(&change.to_string(), tone)
}

/// The objects `prepared` keeps, each with its note and whether it is
/// kept as always.
fn kept_lines(prepared: &Prepared) -> Vec<(String, String, bool)> {
    prepared
        .kept
        .iter()
        .map(|k| (k.manifest.reference(), k.note(), k.routine()))
        .collect()
}

/// The committed tenant configs: each file's name and path.
type Configs = Vec<(String, PathBuf)>;

/// Progress lines on stderr for one tenant; silent under `--all`, whose
/// workers would interleave them.
#[derive(Clone, Copy)]
struct Progress(bool);

impl Progress {
    fn say(self, line: std::fmt::Arguments<'_>) {
        if self.0 {
            eprintln!("{line}");
        }
    }
}

impl flags::Provision {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let paths = RepoPaths::new(root, &self.repo);
        self.saving.check()?;
        let Some(tenant) = self.tenant.clone() else {
            return match self.plan {
                true => self.plan_all(root, &paths),
                false => self.run_all(root, &paths),
            };
        };
        let platform = paths.platform()?;
        let templates = paths.templates()?;
        let target = Target::resolve(&self.cluster, root)?;
        // Where it points, before any question or read.
        target.announce(&if self.plan {
            format!("the plan of provisioning tenant {tenant} (nothing is changed)")
        } else if self.dry_run || self.out.is_some() {
            format!(
                "the manifests of tenant {tenant}, rendered with no cluster (nothing is changed)"
            )
        } else {
            format!("provisioning of tenant {tenant}")
        });
        match [
            (self.plan, "--plan"),
            (self.dry_run, "--dry-run"),
            (self.out.is_some(), "--out"),
        ]
        .into_iter()
        .find(|(given, _)| *given)
        {
            Some((_, form)) => self
                .break_glass
                .refuse(&format!("{form} changes nothing"))?,
            None => target.gate(&Gated::Provision(&tenant), self.break_glass.reason())?,
        }
        let sources = self.sources(&paths, &tenant)?;
        let mut values = sources.values();
        let interactive = !self.non_interactive && std::io::stdin().is_terminal();
        // Asked in a terminal before an apply: the claims are read first, so
        // that a number or domain another tenant has is refused as it is typed.
        let connected = match interactive && !(self.plan || self.dry_run || self.out.is_some()) {
            true => Ok(target.connect()?),
            false => Err(target),
        };
        let target = match &connected {
            Ok(cluster) => cluster.target(),
            Err(target) => target,
        };
        if interactive {
            let claimed = match &connected {
                Ok(cluster) => Some(Claimed::read(cluster, &tenant)?),
                Err(_) => None,
            };
            fill_by_prompt(
                &mut values,
                &sources.given,
                claimed.as_ref(),
                &mut TerminalPrompter,
            )
            .left_unchanged(Left::NothingChanged)?;
        }
        let saved = resolve(&tenant, &values, &platform, !interactive)?;
        // The committed config as it resolves: what the changes are measured against.
        let committed = sources
            .committed
            .as_ref()
            .and_then(|c| resolve(&tenant, c, &platform, false).ok());
        // The config is saved as written; the cluster gets the environment's view of it.
        target.refuse_platform_hosts(&saved)?;
        let spec = target.tenant_view(&saved);

        let connect = || match connected {
            Ok(cluster) => Ok(cluster),
            Err(target) => target.connect(),
        };
        if self.plan {
            return self.plan(
                &connect()?,
                &paths,
                (&platform, &templates),
                (&saved, &spec),
                committed.as_ref(),
            );
        }
        if self.dry_run || self.out.is_some() {
            let manifests = templates.render_tenant(&spec, &platform, &SecretValues::Redacted)?;
            return match &self.out {
                None => {
                    print!("{}", to_yaml_stream(&manifests)?);
                    Ok(())
                }
                Some(dir) => write_out_dir(dir, &manifests),
            };
        }

        let cluster = connect()?;
        Progress(true).say(format_args!(
            "Checking the cluster ({}) for tenant {} ...",
            cluster.kubectl().context_label(),
            spec.name
        ));
        let provisioned = cluster.change_claiming(
            &Change::routine(&tenant, "provisioning", self.yes),
            |kubectl| {
                let prepared = check(kubectl, &platform, &templates, &spec, self.reconfigure)?;
                let changes = changes_to_confirm(
                    &saved,
                    &spec,
                    prepared.own_namespace.as_ref(),
                    committed.as_ref(),
                );
                if interactive {
                    if !confirm(&saved, &spec, &changes, &cluster, &mut TerminalPrompter)? {
                        crate::outcome::bail_unchanged!("cancelled");
                    }
                } else {
                    self.confirmed_without_terminal(&spec, &changes, Progress(true))?;
                }
                Ok(prepared)
            },
            |kubectl, prepared| {
                self.apply(
                    kubectl,
                    &paths,
                    &saved,
                    committed.as_ref(),
                    &spec,
                    prepared,
                    Progress(true),
                )
            },
        )?;
        provisioned.print();
        Ok(())
    }

    /// Without a terminal, a change of tier, MLA name, number or domains needs
    /// `--yes`; the refusal shows the changes and says so.
    fn confirmed_without_terminal(
        &self,
        spec: &TenantSpec,
        changes: &[FieldChange],
        progress: Progress,
    ) -> anyhow::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        if !self.yes {
            crate::outcome::bail_unchanged!(
                "{}\n{}: pass --yes to make these changes, or leave them out \
                 (drop the flag, or put the old value back in the config).",
                format_problems(
                    &format!("provisioning tenant {} would change", spec.name),
                    &lines
                ),
                if self.all {
                    "--all asks nothing per tenant"
                } else {
                    "There is no terminal to ask"
                }
            );
        }
        progress.say(format_args!(
            "Changing tenant {} (confirmed with --yes): {}",
            spec.name,
            lines.join("; ")
        ));
        Ok(())
    }

    /// Where the values come from: the `--values` file, else the tenant's
    /// committed config when it has one; the flags laid over either.
    fn sources(&self, paths: &RepoPaths, tenant: &TenantName) -> anyhow::Result<Sources> {
        let path = paths.tenant_config(tenant);
        let committed = if self.values.is_none() {
            // The committed config is where a re-provision starts: a file
            // that cannot be read stops it rather than being replaced.
            match path.exists() {
                true => {
                    let values = read_values(&path)?;
                    eprintln!(
                        "Starting from the committed config {} (flags change single fields).",
                        path.display()
                    );
                    Some(values)
                }
                false => {
                    let offboarded = path
                        .parent()
                        .map(|dir| dir.join("offboarded").join(format!("{tenant}.yaml")))
                        .filter(|p| p.exists());
                    if let Some(kept) = offboarded {
                        eprintln!(
                            "Tenant {tenant} was offboarded; its config is kept in {}. To bring the tenant \
                             back as it was: `cargo xtask provision {tenant} --values {}{}`.",
                            kept.display(),
                            kept.display(),
                            crate::suggest::target_arg()
                        );
                    }
                    None
                }
            }
        } else {
            // Only compared with: a broken one is replaced by --values.
            match path.exists().then(|| read_values(&path)) {
                Some(Err(e)) => {
                    eprintln!("warning: {e:#}\nIt is not compared with and will be replaced.");
                    None
                }
                other => other.and_then(Result::ok),
            }
        };
        let file = match &self.values {
            Some(path) => read_values(path)?,
            None => TenantValues::default(),
        };
        Ok(Sources {
            given: file.overlay(self.flag_values()),
            from_committed: self.values.is_none(),
            committed,
        })
    }

    /// `--plan`: what an apply would change on the cluster, per object, as
    /// kubectl's server-side diff shows it. Exit 0 when nothing would
    /// change, 2 when something would, 1 on error.
    fn plan(
        &self,
        cluster: &Cluster,
        paths: &RepoPaths,
        (platform, templates): (&Platform, &Templates),
        (saved, spec): (&TenantSpec, &TenantSpec),
        committed: Option<&TenantSpec>,
    ) -> anyhow::Result<()> {
        let kubectl = cluster.kubectl();
        let mut prepared = prepare(kubectl, platform, templates, spec, false)?;
        refuse_unusable_namespace(spec, &prepared)?;
        refuse_identity_change(spec, &prepared, self.reconfigure)?;
        refuse_shrinking(spec, &prepared)?;
        let changes = changes_to_confirm(saved, spec, prepared.own_namespace.as_ref(), committed);
        // A suspended tenant is planned in its suspended form, as drift
        // compares it: its Ingress is left out on purpose.
        let (suspended, stray) = match prepared.own_namespace.as_ref().map(Lifecycle::of) {
            Some(Lifecycle::Suspended { since, .. }) => {
                prepared.suspended_form();
                (
                    Some(since),
                    prepared.ingresses_while_suspended(spec.name.as_str()),
                )
            }
            _ => (None, Vec::new()),
        };
        let plan = diff_plan(kubectl, spec, &prepared)?;
        println!(
            "Plan for tenant {} in {} on {}:",
            spec.name,
            spec.namespace,
            cluster.label()
        );
        if let Some(since) = &suspended {
            println!(
                "  (suspended since {since}: compared with its suspended form, without its Ingress; \
                 an apply refuses until `cargo xtask admin resume {}{}`)",
                spec.name,
                cluster.target().suggested_arg()
            );
        }
        if !changes.is_empty() {
            println!("  changes an apply asks to confirm (--yes without a terminal):");
            for change in &changes {
                println!("    {change}");
            }
        }
        if plan.changes.is_empty() && stray.is_empty() {
            println!("  no changes: the cluster matches the config.");
            if let Some(file) = &self.saving.save_plan {
                println!(
                    "No plan was saved to {}: it would change nothing.",
                    file.display()
                );
            }
            return Ok(());
        }
        for line in &stray {
            println!("  {line}");
        }
        if prepared.own_namespace.is_none() {
            println!(
                "  (namespace {} does not exist yet, so the API server cannot dry-run what goes in it: \
                 every object would be created as rendered; `--dry-run` prints them)",
                spec.namespace
            );
        }
        for change in &plan.changes {
            println!("  {}", painted_plan_change(change));
        }
        if !plan.diff.is_empty() {
            println!("\n{}", crate::colour::diff(plan.diff.trim_end()));
        }
        let changing = plan.applying() + stray.len();
        if changing == 0 {
            println!("\nNothing would change; the notes above need a hand.");
            if let Some(file) = &self.saving.save_plan {
                println!(
                    "No plan was saved to {}: it would change nothing.",
                    file.display()
                );
            }
            return Ok(());
        }
        let foreign = plan.changes.iter().any(
            |c| matches!(c, crate::plan::PlanChange::Update { foreign, .. } if !foreign.is_empty()),
        );
        if let Some(file) = &self.saving.save_plan {
            if let Some(since) = &suspended {
                crate::outcome::bail_unchanged!(
                    "tenant {} is suspended (since {since}), and an apply of its plan would refuse: resume it \
                     first with `cargo xtask admin resume {}{}`, then plan again. No plan was saved.",
                    spec.name,
                    spec.name,
                    cluster.target().suggested_arg()
                );
            }
            if foreign && !self.force_conflicts {
                crate::outcome::bail_unchanged!(
                    "the plan would take back fields that others set (named above), which an apply does only \
                     with --force-conflicts: if the change on the cluster was meant, put it into the tenant's \
                     config and plan again; if not, plan again with --force-conflicts. No plan was saved."
                );
            }
            let planned =
                self.plan_file(cluster, paths, saved, spec, (&prepared, &plan), &changes)?;
            save_new_plan(cluster, file, &planned)?;
            return Err(Exit(2).into());
        }
        if suspended.is_some() {
            println!(
                "\n{changing} object(s) differ from the config. The tenant is suspended, so an apply refuses: \
                 resume it first with `cargo xtask admin resume {}{}`, then {}.",
                spec.name,
                cluster.target().suggested_arg(),
                apply_advice(cluster, "the same command without --plan")
            );
        } else if foreign {
            println!(
                "\n{changing} object(s) would change, some of them fields that others set (named above). \
                 An apply refuses to take those back: if the change on the cluster was meant, put it into \
                 the tenant's config; if not, {}.",
                apply_advice(
                    cluster,
                    "the same command without --plan and with --force-conflicts"
                )
            );
        } else {
            println!(
                "\n{changing} object(s) would change. To make the change, {}.",
                apply_advice(cluster, "the same command without --plan")
            );
        }
        Err(Exit(2).into())
    }

    /// The plan file of this `--plan`: where, who, when, the inputs, and
    /// every object with its render's digest and the live object planned
    /// against. Nothing secret: credentials are named, never valued.
    fn plan_file(
        &self,
        cluster: &Cluster,
        paths: &RepoPaths,
        saved: &TenantSpec,
        spec: &TenantSpec,
        (prepared, plan): (&Prepared, &crate::plan::Plan),
        changes: &[FieldChange],
    ) -> anyhow::Result<crate::planfile::Plan> {
        use crate::planfile::{Options, TenantPlan};
        let tenant = TenantPlan {
            tenant: spec.name.to_string(),
            namespace: spec.namespace.clone(),
            config: paths.config_digest(&spec.name)?,
            values: Some(saved.to_values()),
            options: Options {
                reconfigure: self.reconfigure,
                force_conflicts: self.force_conflicts,
                ..Options::default()
            },
            confirmed: changes.iter().map(ToString::to_string).collect(),
            objects: crate::plan::planned_objects(prepared, plan),
            diff: match prepared.own_namespace {
                Some(_) => plan.diff.clone(),
                // Nothing to compare with: what will be created, as
                // rendered (never the Secret, whose values are made at the
                // apply).
                None => format!(
                    "# A new tenant: every object is created as rendered here (secret/{} is \
                     generated at the apply and never shown).\n{}",
                    crate::names::CREDENTIALS_SECRET,
                    to_yaml_stream(
                        &prepared
                            .to_apply
                            .iter()
                            .filter(|m| m.kind != "Secret")
                            .cloned()
                            .collect::<Vec<_>>()
                    )?
                ),
            },
        };
        self.new_plan(cluster, paths, vec![tenant])
    }

    /// A plan of provisioning `tenants` (of `--all` when `self.all`): where,
    /// who, when, until when, the shared inputs' digests.
    fn new_plan(
        &self,
        cluster: &Cluster,
        paths: &RepoPaths,
        tenants: Vec<crate::planfile::TenantPlan>,
    ) -> anyhow::Result<crate::planfile::Plan> {
        use crate::planfile::{Action, FORMAT, Plan};
        let now = crate::clock::now()?;
        let target = cluster.target();
        Ok(Plan {
            format: FORMAT.to_owned(),
            action: Action::Provision,
            all: self.all,
            environment: target.environment().map(|e| e.name.clone()),
            context: target.context().map(str::to_owned),
            cluster: crate::archive::cluster_uid(cluster.kubectl())?,
            planned_by: crate::audit::operator(),
            planned_at: crate::clock::rfc3339(now),
            expires_at: self.saving.expires_at(now),
            command: crate::audit::command_line(),
            inputs: paths.input_digests()?,
            tenants,
        })
    }

    /// `--all`: every committed `tenants/*.yaml`, under one confirmation,
    /// in a number of kubectl calls that grows only with the tenants that
    /// change (see `batch.rs` and `lock.rs`): their locks and the claims
    /// lock taken in one call; the cluster read once (`fleet.rs`); each
    /// tenant rendered and compared with that read by content (`local_plan`),
    /// refused as one tenant's provision refuses it, or skipped when down on
    /// purpose; the locks of those with nothing to apply released at once;
    /// the objects of the others applied a hundred tenants per call; then
    /// only their changed bots waited for, `--jobs` at a time. One line per
    /// tenant; a failure does not stop the others.
    ///
    /// The locks: every tenant of the batch is locked before the cluster is
    /// read, as a command on one tenant locks it before reading, so that
    /// what is applied was decided on a read no other command could change
    /// under it (a suspend between the read and the apply would otherwise
    /// be undone, a Secret created by another provision overwritten). A
    /// command on one tenant is refused while the batch holds its lock:
    /// for the tenants with nothing to apply, only from the batch's start
    /// to the end of its read; for those it applies, until their bots are
    /// ready. The claims lock is held to the end.
    fn run_all(&self, root: &Path, paths: &RepoPaths) -> anyhow::Result<()> {
        let (configs, platform, templates, cluster) = self.fleet_inputs(root, paths)?;
        cluster.target().announce(&format!(
            "provisioning of the tenants of {} (those that differ from their config)",
            paths.tenants.display()
        ));
        cluster
            .target()
            .gate(&Gated::ProvisionAll, self.break_glass.reason())?;
        let kubectl = cluster.kubectl();
        // Ctrl-C or SIGTERM: no new apply starts, the wait for the bots
        // ends, and every tenant's outcome is still said, recorded and its
        // lock released.
        crate::interrupt::install();
        eprintln!(
            "Provisioning {} tenant{} from {}: the cluster is read once, and only the tenants that differ \
             from their config are applied ...",
            configs.len(),
            if configs.len() == 1 { "" } else { "s" },
            paths.tenants.display(),
        );
        let total = configs.len();
        let mut report = Report::new(&cluster, total);
        // A file whose name is no tenant name cannot be provisioned (nor audited as one).
        let mut items: Vec<(TenantName, PathBuf)> = Vec::new();
        for (name, path) in configs {
            match TenantName::parse(&name) {
                Ok(tenant) => items.push((tenant, path)),
                Err(e) => report.unnamed(&format!(
                    "{name}: FAILED: {} is not a tenant config name: {e}",
                    path.display()
                )),
            }
        }
        // Two configs of the batch that claim one number or domain: the
        // later (by name) is refused before anything is applied.
        let clashes = batch_clashes(&items, |path, tenant| {
            let values = read_values(path)?;
            let saved = resolve(tenant, &values, &platform, true)?;
            Ok(cluster.target().tenant_view(&saved))
        });
        let names: Vec<TenantName> = items.iter().map(|(t, _)| t.clone()).collect();
        cluster.confirm_batch(
            "provisioning",
            &format!("all {} tenants", items.len()),
            self.yes,
            &names,
        )?;
        crate::interrupt::check().left_unchanged(Left::NothingChanged)?;
        // Each config as this environment serves it, rendered: no cluster yet.
        let mut before: Vec<(TenantName, anyhow::Result<Batched>)> = Vec::new();
        let mut ready: Vec<Ready> = Vec::new();
        for (tenant, path) in items {
            match desired(&cluster, &platform, &templates, &clashes, &tenant, &path) {
                Ok(r) => ready.push(r),
                Err(e) => before.push((tenant, Err(e))),
            }
        }
        // Held across the whole batch: no other provision claims a value
        // between this batch's read of the claims and its applies.
        let locked: Vec<TenantName> = ready.iter().map(|r| r.tenant.clone()).collect();
        let (locks, refused) = cluster
            .hold_batch(&locked, true)
            .left_unchanged(Left::NothingChanged)?;
        for (tenant, refusal) in refused {
            ready.retain(|r| r.tenant != tenant);
            before.push((
                tenant,
                Err(crate::outcome::unchanged(refusal, Left::NothingChanged)),
            ));
        }
        let decided = match self.decide_all(kubectl, &platform, &templates, ready) {
            Ok(decided) => decided,
            Err(e) => {
                // Every tenant's outcome is recorded; the reason is said once.
                for tenant in locked
                    .iter()
                    .filter(|t| !before.iter().any(|(b, _)| b == *t))
                {
                    let _ = cluster.record::<()>(tenant.as_str(), Err(anyhow::anyhow!("{e:#}")));
                }
                for (tenant, result) in before {
                    report.tenant(&tenant, result);
                }
                drop(locks);
                return Err(crate::outcome::unchanged(e, Left::NothingChanged));
            }
        };
        // Nothing to apply: their locks go now.
        let mut settled = Vec::new();
        let mut changing = Vec::new();
        let mut unready = Vec::new();
        for (tenant, decision) in decided {
            match decision {
                Ok(Decision::Changing(c)) => changing.push((tenant, *c)),
                Ok(Decision::Unready(p, name)) => unready.push((tenant, p, name)),
                Ok(Decision::Unchanged(p)) => {
                    settled.push((tenant, Ok(Batched::Done(p, Vec::new()))))
                }
                Ok(Decision::Skipped(state, note)) => {
                    settled.push((tenant, Ok(Batched::Skipped(state, note))))
                }
                Err(e) => settled.push((tenant, Err(e))),
            }
        }
        let settled = locks.finish(
            settled
                .into_iter()
                .map(|(t, r)| {
                    let subject = Subject::tenant(&t);
                    (t, subject, r)
                })
                .collect(),
        );
        before.extend(settled);
        before.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (tenant, result) in before {
            report.tenant(&tenant, result);
        }

        let (failed, failed_tenants) =
            self.apply_batch(&cluster, locks, report, &changing, unready, total)?;
        let interrupted = crate::interrupt::interrupted();
        if failed == 0 && !interrupted {
            return Ok(());
        }
        // What to run next, reaching the same cluster and configs.
        let same = format!(
            "{}{}",
            cluster.target().suggested_arg(),
            match &self.repo.tenants_dir {
                Some(dir) => format!(" --tenants-dir {}", dir.display()),
                None => String::new(),
            }
        );
        let alone = if (1..=3).contains(&failed) && failed_tenants.len() == failed {
            failed_tenants
                .iter()
                .map(|t| format!("`cargo xtask provision {t}{same}`"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("`cargo xtask provision <TENANT>{same}`")
        };
        if interrupted {
            anyhow::bail!(
                "the batch was interrupted (Ctrl-C or a termination signal): {failed} of {total} tenants \
                 failed or were not started (the lines above say where each stands); every lock was \
                 released. Run the same command again to finish, or one tenant alone with {alone}"
            );
        }
        anyhow::bail!(
            "{failed} of {total} tenants failed (why is under each){}. Fix those and run the same command \
             again, or {} alone with {alone}",
            if failed < total {
                "; the others were applied or up to date"
            } else {
                ""
            },
            if failed == 1 { "that one" } else { "each" }
        );
    }

    /// What `--all` and its plan start from: the committed configs (none is
    /// an error), the platform settings, the templates, and the cluster.
    fn fleet_inputs(
        &self,
        root: &Path,
        paths: &RepoPaths,
    ) -> anyhow::Result<(Configs, Platform, Templates, Cluster)> {
        let configs = committed_configs(&paths.tenants)?;
        if configs.is_empty() {
            anyhow::bail!("there are no tenant configs in {}", paths.tenants.display());
        }
        Ok((
            configs,
            paths.platform()?,
            paths.templates()?,
            Cluster::connect(&self.cluster, root)?,
        ))
    }

    /// `--all --plan`: what `--all` would apply, tenant by tenant, from the
    /// one read `--all` makes (no lock, no kubectl call per tenant), each
    /// change as compared locally field by field (`compare.rs`), not
    /// kubectl's diff, which would take a call per tenant. Exit 0 when
    /// nothing would change, 2 when something would, 1 when a tenant could
    /// not be planned. With `--save-plan`, one plan file of the tenants
    /// that would change, made to be applied as `--all` applies (`all`);
    /// none when nothing would change or a tenant could not be planned.
    fn plan_all(&self, root: &Path, paths: &RepoPaths) -> anyhow::Result<()> {
        let (configs, platform, templates, cluster) = self.fleet_inputs(root, paths)?;
        cluster.target().announce(&format!(
            "the plan of provisioning the tenants of {} (nothing is changed)",
            paths.tenants.display()
        ));
        let total = configs.len();
        let mut unnamed = Vec::new();
        let mut items: Vec<(TenantName, PathBuf)> = Vec::new();
        for (name, path) in configs {
            match TenantName::parse(&name) {
                Ok(tenant) => items.push((tenant, path)),
                Err(e) => unnamed.push(format!(
                    "{name}: FAILED: {} is not a tenant config name: {e}",
                    path.display()
                )),
            }
        }
        let clashes = batch_clashes(&items, |path, tenant| {
            let values = read_values(path)?;
            let saved = resolve(tenant, &values, &platform, true)?;
            Ok(cluster.target().tenant_view(&saved))
        });
        let mut decided: Vec<(TenantName, anyhow::Result<Decision>)> = Vec::new();
        let mut ready: Vec<Ready> = Vec::new();
        let mut saved = BTreeMap::new();
        for (tenant, path) in items {
            match desired(&cluster, &platform, &templates, &clashes, &tenant, &path) {
                Ok(r) => {
                    saved.insert(tenant, r.saved.clone());
                    ready.push(r);
                }
                Err(e) => decided.push((tenant, Err(e))),
            }
        }
        decided.extend(self.decide_all(cluster.kubectl(), &platform, &templates, ready)?);
        decided.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        println!(
            "Plan for the {total} tenant{} of {} on {} (the cluster read once; each tenant compared \
             with it field by field):",
            if total == 1 { "" } else { "s" },
            paths.tenants.display(),
            cluster.label()
        );
        let (mut up_to_date, mut skipped) = (0, 0);
        let mut failed = unnamed.len();
        for line in &unnamed {
            println!("{line}");
        }
        let mut planned = Vec::new();
        for (tenant, decision) in decided {
            match decision {
                Ok(Decision::Changing(c)) => {
                    println!(
                        "Tenant {tenant} would change in {} ({} object{}):",
                        c.spec.namespace,
                        c.plan.applying(),
                        if c.plan.applying() == 1 { "" } else { "s" }
                    );
                    for line in fleet_plan_lines(&c, true) {
                        println!("  {line}");
                    }
                    planned.push((tenant, c));
                }
                Ok(Decision::Unchanged(p) | Decision::Unready(p, _)) => {
                    up_to_date += 1;
                    println!(
                        "Tenant {tenant} is up to date in {}: nothing would change.",
                        p.namespace
                    );
                }
                Ok(Decision::Skipped(state, note)) => {
                    skipped += 1;
                    println!(
                        "{tenant}: {state} (skipped){}",
                        note.map(|n| format!(": {n}")).unwrap_or_default()
                    );
                }
                Err(e) => {
                    failed += 1;
                    println!(
                        "{tenant}: {}: {}",
                        crate::colour::verdict("FAILED", false),
                        crate::outcome::cause(&e)
                            .lines()
                            .collect::<Vec<_>>()
                            .join("\n    ")
                    );
                }
            }
        }
        println!(
            "{total} tenant{}: {} would change, {up_to_date} up to date, {skipped} skipped, {failed} failed.",
            if total == 1 { "" } else { "s" },
            planned.len()
        );
        let same = format!(
            "{}{}",
            cluster.target().suggested_arg(),
            match &self.repo.tenants_dir {
                Some(dir) => format!(" --tenants-dir {}", dir.display()),
                None => String::new(),
            }
        );
        if failed > 0 {
            if let Some(file) = &self.saving.save_plan {
                println!(
                    "No plan was saved to {}: a plan of --all holds every tenant that would change.",
                    file.display()
                );
            }
            anyhow::bail!(
                "{failed} of {total} tenants could not be planned (why is under each). Fix those and plan \
                 again, or plan tenants one at a time with `cargo xtask provision <TENANT> --plan{same}`"
            );
        }
        if planned.is_empty() {
            println!("Nothing would change: the cluster matches every config.");
            if let Some(file) = &self.saving.save_plan {
                println!(
                    "No plan was saved to {}: it would change nothing.",
                    file.display()
                );
            }
            return Ok(());
        }
        let Some(file) = &self.saving.save_plan else {
            println!(
                "\nTo make the change, {}.",
                apply_advice(&cluster, &format!("`cargo xtask provision --all{same}`"))
            );
            return Err(Exit(2).into());
        };
        let mut tenants = Vec::new();
        for (tenant, c) in &planned {
            tenants.push(crate::planfile::TenantPlan {
                tenant: tenant.to_string(),
                namespace: c.spec.namespace.clone(),
                config: paths.config_digest(tenant)?,
                values: saved.get(tenant).map(TenantSpec::to_values),
                options: crate::planfile::Options {
                    force_conflicts: self.force_conflicts,
                    ..Default::default()
                },
                confirmed: c.confirmed.clone(),
                objects: crate::plan::planned_objects(&c.prepared, &c.plan),
                diff: format!(
                    "{FLEET_DIFF_HEADER}\n{}\n",
                    fleet_plan_lines(c, false).join("\n")
                ),
            });
        }
        let plan = self.new_plan(&cluster, paths, tenants)?;
        save_new_plan(&cluster, file, &plan)?;
        Err(Exit(2).into())
    }

    /// The end of a batch whose every tenant is decided and whose locks of
    /// the tenants with nothing to apply are released: `changing` applied
    /// and `unready` waited for (`apply_changing`), the rest of the locks
    /// and the claims lock released together, each outcome said and
    /// recorded, then the closing line. Returns how many of `total`
    /// failed, and which tenants; a claims lock broken midway is an error.
    fn apply_batch(
        &self,
        cluster: &Cluster,
        locks: crate::lock::Many<'_>,
        mut report: Report<'_>,
        changing: &[(TenantName, Changing)],
        unready: Vec<(TenantName, Provisioned, String)>,
        total: usize,
    ) -> anyhow::Result<(usize, Vec<TenantName>)> {
        let kubectl = cluster.kubectl();
        // The lines that follow (the wait, its own progress) start clean.
        report.progress.clear();
        let applied = self.apply_changing(kubectl, changing, unready);
        // The rest of the locks, and the claims lock, go together.
        let mut finishing: Vec<(Option<TenantName>, Subject, anyhow::Result<Option<Batched>>)> =
            applied
                .into_iter()
                .map(|(t, r)| {
                    let subject = Subject::tenant(&t);
                    (Some(t), subject, r.map(Some))
                })
                .collect();
        finishing.push((None, Subject::Claims, Ok(None)));
        let mut claims = Ok(());
        let mut not_started = Vec::new();
        for (key, result) in locks.finish(finishing) {
            match (key, result) {
                (None, result) => claims = result.map(drop),
                (Some(tenant), Err(e)) if e.downcast_ref::<NotStarted>().is_some() => {
                    not_started.push(tenant)
                }
                (Some(tenant), result) => {
                    report.tenant(&tenant, result.map(|b| b.expect("a tenant's outcome")))
                }
            }
        }
        drop(locks);
        // Not started after an interrupt: nothing was done, nothing recorded.
        for tenant in not_started {
            report.unnamed(&format!("{tenant}: FAILED: {NotStarted}"));
        }
        let (summary, failed, failed_tenants) = report.finish(total);
        println!("{summary}");
        // A claims lock broken midway is said after the summary, as an error.
        claims?;
        Ok((failed, failed_tenants))
    }

    /// Reads the cluster once and decides, for every tenant `ready`, what an
    /// apply would do, as one tenant's provision decides it after its own
    /// reads. Fails as a whole only when the cluster cannot be read.
    fn decide_all(
        &self,
        kubectl: &Kubectl,
        platform: &Platform,
        templates: &Templates,
        ready: Vec<Ready>,
    ) -> anyhow::Result<Vec<(TenantName, anyhow::Result<Decision>)>> {
        let mut kinds: Vec<String> = Vec::new();
        for r in &ready {
            for kind in unique_kinds(&r.rendered, |k| k != "Namespace") {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let mut fleet = Fleet::read(kubectl, &kinds).map_err(|e| {
            if crate::interrupt::interrupted() {
                return anyhow::anyhow!(
                    "interrupted (Ctrl-C or a termination signal) while reading the cluster; nothing was applied"
                );
            }
            e.context(format!(
                "could not read every tenant at once, which `provision --all` needs: rights to list the \
                 tenants' objects (Secrets included) and Ingresses in all namespaces, and namespaces. \
                 Provision tenants one at a time instead: `cargo xtask provision <TENANT>{}`",
                crate::suggest::target_arg()
            ))
        })?;
        let mut lives: Vec<Live> = ready
            .iter()
            .map(|r| fleet.take_live(&r.spec.namespace))
            .collect();
        // A namespace the read by label did not find is a new tenant's, or
        // one of that name that provision did not make (no tenant label),
        // which must be refused as for one tenant: all namespaces, read once.
        if lives.iter().any(|l| l.own_namespace.is_none()) {
            let all = kubectl
                .get_list("namespaces", Scope::Cluster, None)
                .context("could not read the cluster's namespaces")?;
            let by_name: BTreeMap<&str, &serde_json::Value> =
                all.iter().map(|n| (crate::object::name(n), n)).collect();
            for (r, live) in ready.iter().zip(lives.iter_mut()) {
                if live.own_namespace.is_none() {
                    live.own_namespace =
                        by_name.get(r.spec.namespace.as_str()).map(|n| (*n).clone());
                }
            }
        }
        let mut out = Vec::new();
        for (r, mut live) in ready.into_iter().zip(lives) {
            let tenant = r.tenant.clone();
            let decision = keep_what_exists(kubectl, &r, &mut live)
                .and_then(|()| self.decide(&fleet, platform, templates, r, live));
            out.push((tenant, decision));
        }
        Ok(out)
    }

    /// What an apply of one tenant of `--all` would do, from the one read.
    fn decide(
        &self,
        fleet: &Fleet,
        platform: &Platform,
        templates: &Templates,
        ready: Ready,
        live: Live,
    ) -> anyhow::Result<Decision> {
        let Ready {
            tenant,
            saved: _,
            spec,
            rendered,
            planned,
        } = ready;
        // The apply of a plan compares today's render with the planned one.
        let redacted = planned.as_ref().map(|_| rendered.clone());
        // A plan never generates credentials: it only names them.
        let prepared = prepare_from(
            live,
            fleet.claims(),
            platform,
            templates,
            &spec,
            rendered,
            !self.plan,
        )?;
        if let (Some(planned), Some(rendered)) = (&planned, &redacted) {
            let departures = crate::plan::departures(&planned.objects, &prepared, rendered);
            let mut why = Vec::new();
            if !departures.stale.is_empty() {
                why.push(format!(
                    "stale plan: {} since it was planned",
                    departures.stale.join(", ")
                ));
            }
            if !departures.rendered.is_empty() {
                why.push(format!(
                    "today's render is not what was planned: {} (has environments.yaml changed?)",
                    departures.rendered.join(", ")
                ));
            }
            if !why.is_empty() {
                crate::outcome::bail_unchanged!("{}", why.join("; "));
            }
        }
        // A tenant down on purpose stays down: a batch never brings it back.
        let lifecycle = prepared
            .own_namespace
            .as_ref()
            .map_or(Lifecycle::Active, Lifecycle::of);
        if let Some(state) = lifecycle.state() {
            return Ok(Decision::Skipped(state, lifecycle.note(tenant.as_str())));
        }
        let prepared = refuse(&spec, prepared, false)?;
        // The committed config is the source: only the cluster can differ.
        let changes = field_changes(&spec, prepared.own_namespace.as_ref(), None);
        let confirmed: Vec<String> = changes.iter().map(ToString::to_string).collect();
        match &planned {
            // The approvals confirm what the plan listed, and only that.
            Some(planned) if confirmed != planned.confirmed => crate::outcome::bail_unchanged!(
                "the changes to confirm are not the planned ones (now: {}; planned: {})",
                or_none(&confirmed),
                or_none(&planned.confirmed)
            ),
            Some(_) => {}
            // A plan lists them for its review; nothing is asked.
            None if self.plan => {}
            None => self.confirmed_without_terminal(&spec, &changes, Progress(false))?,
        }
        let plan = local_plan(&spec, &prepared)?;
        if plan.applying() == 0 {
            let unchanged = Provisioned::unchanged(&spec, &prepared);
            // Nothing to apply, but its bot has not rolled out (a run
            // before gave up waiting, or was stopped): waited for again.
            if let Some(name) = unready_bot(&prepared) {
                return Ok(Decision::Unready(unchanged, name));
            }
            return Ok(Decision::Unchanged(unchanged));
        }
        Ok(Decision::Changing(Box::new(Changing {
            spec,
            prepared,
            confirmed,
            plan,
        })))
    }

    /// Applies every changing tenant's objects in few calls (`batch.rs`),
    /// says of each failure what it changed before (the cluster read back
    /// once), and settles the others: a bot restarted where only its
    /// ConfigMap changed, the changed bots waited for, `--jobs` at a time.
    /// A tenant not started after an interrupt fails with [`NotStarted`].
    fn apply_changing(
        &self,
        kubectl: &Kubectl,
        changing: &[(TenantName, Changing)],
        unready: Vec<(TenantName, Provisioned, String)>,
    ) -> Vec<(TenantName, anyhow::Result<Batched>)> {
        if changing.is_empty() && unready.is_empty() {
            return Vec::new();
        }
        let parts: Vec<crate::batch::Part<'_>> = changing
            .iter()
            .map(|(_, c)| crate::batch::Part {
                objects: &c.prepared.to_apply,
                secrets: c.prepared.secrets.values(),
            })
            .collect();
        let conflicts = if self.force_conflicts {
            Conflicts::Force
        } else {
            Conflicts::Refuse
        };
        let applied = crate::batch::apply(kubectl, &parts, MANAGER, conflicts, |_, _| {});
        drop(parts);
        let failures = applied.iter().any(|r| matches!(r, Some(Err(_))));
        let after = failures
            .then(|| {
                let mut kinds: Vec<String> = Vec::new();
                for (_, c) in changing {
                    for kind in &c.prepared.kinds {
                        if !kinds.contains(kind) {
                            kinds.push(kind.clone());
                        }
                    }
                }
                Fleet::read(kubectl, &kinds).ok()
            })
            .flatten();
        let work: Vec<_> = changing.iter().zip(applied).collect();
        let settled = crate::pool::run(work, self.jobs.into(), |((tenant, c), applied)| {
            let result = match applied {
                None => Err(anyhow::Error::new(NotStarted)),
                Some(Err(e)) => Err(anyhow::anyhow!(
                    "applying tenant {} failed: {e:#}\n{}\nRe-running the same command is safe.",
                    c.spec.name,
                    changed_since(
                        &c.prepared,
                        after.as_ref().map(|f| f.live(&c.spec.namespace))
                    ),
                )),
                Some(Ok(stored)) => self.settle(
                    kubectl,
                    &c.spec,
                    &c.prepared,
                    &stored,
                    Rollout::IfChanged,
                    Progress(false),
                ),
            };
            (tenant, c, result)
        });
        // Every changed bot, and every unchanged one not yet rolled out,
        // waited for at once: one read of the tenants' Deployments per
        // poll, not one `rollout status` per bot.
        let waiting: Vec<(String, String)> = settled
            .iter()
            .filter_map(|(_, c, r)| {
                let name = r.as_ref().ok()?.1.clone()?;
                Some((c.spec.namespace.to_string(), name))
            })
            .chain(
                unready
                    .iter()
                    .map(|(_, p, name)| (p.namespace.clone(), name.clone())),
            )
            .collect();
        let mut rolled = if waiting.is_empty() {
            Vec::new()
        } else if crate::interrupt::interrupted() {
            // Stopped before the wait: none is waited for.
            waiting
                .iter()
                .map(|_| {
                    Err(anyhow::Error::new(crate::rollout::NotRolledOut::Interrupted(
                        "not waited for: interrupted (Ctrl-C or a termination signal)".to_owned(),
                    )))
                })
                .collect()
        } else {
            eprintln!(
                "Waiting up to {} for {} bot{} to roll out (one read of the tenants' Deployments per poll) ...",
                self.rollout.timeout,
                waiting.len(),
                if waiting.len() == 1 { "" } else { "s" }
            );
            let mut progress = crate::fleet::Progress::on_terminal("rollouts", waiting.len());
            crate::rollout::wait_all(kubectl, &waiting, &self.rollout.timeout, |failed| {
                progress.tenant_done(failed)
            })
        }
        .into_iter();
        let mut outcomes: Vec<(TenantName, anyhow::Result<Batched>)> = settled
            .into_iter()
            .map(|(tenant, c, result)| {
                let result = result.and_then(|(provisioned, wait)| match wait {
                    None => Ok(Batched::Done(provisioned, c.confirmed.clone())),
                    Some(name) => match rolled.next().expect("one outcome per bot waited for") {
                        Ok(()) => Ok(Batched::Done(provisioned, c.confirmed.clone())),
                        Err(e) => Err(self.not_ready(kubectl, &provisioned, true, &name, e)),
                    },
                });
                (tenant.clone(), result)
            })
            .collect();
        for (tenant, provisioned, name) in unready {
            let result = match rolled.next().expect("one outcome per bot waited for") {
                Ok(()) => Ok(Batched::Done(provisioned, Vec::new())),
                Err(e) => Err(self.not_ready(kubectl, &provisioned, false, &name, e)),
            };
            outcomes.push((tenant, result));
        }
        outcomes
    }

    /// The values given as flags.
    fn flag_values(&self) -> TenantValues {
        TenantValues {
            tenant: None,
            mla_name: self.mla_name.clone(),
            constituency: self.constituency.clone(),
            whatsapp_number: self.whatsapp_number.clone(),
            domains: self.domains.clone(),
            tier: self.tier.clone(),
            rate_limits: Default::default(),
            site: Default::default(),
        }
    }

    /// Saves the config, applies, waits for the bot, and says what changed.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        kubectl: &Kubectl,
        paths: &RepoPaths,
        saved: &TenantSpec,
        committed: Option<&TenantSpec>,
        spec: &TenantSpec,
        prepared: Prepared,
        progress: Progress,
    ) -> anyhow::Result<Provisioned> {
        let ns = spec.namespace.as_str();
        // A committed config that already says the same is left as its author wrote it.
        if committed != Some(saved) {
            save_values(&paths.tenant_config(&spec.name), saved, progress)?;
        }
        progress.say(format_args!(
            "Applying {} objects to {ns} with one server-side apply (safe to interrupt and re-run) ...",
            prepared.to_apply.len()
        ));
        let stream = to_yaml_stream(&prepared.to_apply)?;
        let conflicts = if self.force_conflicts {
            Conflicts::Force
        } else {
            Conflicts::Refuse
        };
        let applied = kubectl
            .apply(&stream, MANAGER, conflicts, &prepared.secrets.values())
            .map_err(|e| {
                anyhow::anyhow!(
                    "applying tenant {} failed: {e:#}\n{}\nThe config was saved to {}. Re-running the same command is safe.",
                    spec.name,
                    what_changed(kubectl, ns, &prepared),
                    paths.tenant_config(&spec.name).display()
                )
            })?;
        drop(stream);
        // Provisioned again: an offboarded tenant is an active one once more.
        if let Some(Lifecycle::Offboarded { since, .. }) =
            prepared.own_namespace.as_ref().map(Lifecycle::of)
        {
            Offboarding::clear(kubectl, ns)?;
            progress.say(format_args!(
                "Tenant {} was offboarded (since {since}); it is active again, with the volumes it kept.",
                spec.name
            ));
            // Its config is tenants/<name>.yaml again (saved above).
            let kept = paths
                .tenants
                .join("offboarded")
                .join(format!("{}.yaml", spec.name));
            if kept.exists() && paths.tenant_config(&spec.name).exists() {
                std::fs::remove_file(&kept)
                    .with_context(|| format!("cannot remove {}", kept.display()))?;
                progress.say(format_args!(
                    "Removed {}: the config is {} again (commit the move).",
                    kept.display(),
                    paths.tenant_config(&spec.name).display()
                ));
            }
        }
        let after: crate::batch::Stored = applied
            .into_iter()
            .filter_map(|o| Some((kind_and_name(&o)?, o)))
            .collect();
        let (provisioned, wait) =
            self.settle(kubectl, spec, &prepared, &after, Rollout::Always, progress)?;
        if let Some(name) = wait {
            progress.say(format_args!(
                "Waiting up to {} for deployment/{name} to roll out ...",
                self.rollout.timeout
            ));
            kubectl
                .rollout_status(ns, &name, &self.rollout.timeout)
                .map_err(|e| self.not_ready(kubectl, &provisioned, true, &name, e))?;
        }
        Ok(provisioned)
    }

    /// The error of a bot that did not roll out: after its tenant's apply
    /// (`applied`), or with nothing to apply.
    fn not_ready(
        &self,
        kubectl: &Kubectl,
        tenant: &Provisioned,
        applied: bool,
        deployment: &str,
        e: anyhow::Error,
    ) -> anyhow::Error {
        let ns = &tenant.namespace;
        use crate::rollout::NotRolledOut;
        let objects = if applied {
            "was applied"
        } else {
            "is as its config says (nothing to apply)"
        };
        let ctx = kubectl.context_arg();
        let (what, next) = match e.downcast_ref::<NotRolledOut>() {
            Some(NotRolledOut::Interrupted(_)) => (
                "the wait for the bot to be ready was interrupted".to_owned(),
                match self.approved_plan {
                    // The plan's changes are made; it applies once.
                    true => format!(
                        "The planned change is made; see whether the bot is ready with `cargo xtask admin \
                         show {}{}`",
                        tenant.tenant,
                        crate::suggest::target_arg()
                    ),
                    false => "Run the same command again to wait for it".to_owned(),
                },
            ),
            found => (
                match found {
                    Some(NotRolledOut::Failed(_)) => "the bot's rollout failed".to_owned(),
                    Some(NotRolledOut::Unseen(_)) => {
                        "whether the bot rolled out could not be seen".to_owned()
                    }
                    _ => format!(
                        "the bot did not become ready within {}",
                        self.rollout.timeout
                    ),
                },
                format!(
                    "See why with `cargo xtask admin show {}{}` (or `kubectl{ctx} --namespace {ns} describe \
                     deployment/{deployment}` and its pod's logs); re-run provision once fixed",
                    tenant.tenant,
                    crate::suggest::target_arg()
                ),
            ),
        };
        e.context(format!(
            "every object of tenant {} {objects}, but {what}. {next}",
            tenant.tenant
        ))
    }

    /// After an apply: what it did to each object (by content, against
    /// `prepared`'s read of the cluster before it) and the bot restarted
    /// where only its ConfigMap changed; with the name of the bot's
    /// Deployment if its rollout is to be waited for (`rollout`).
    fn settle(
        &self,
        kubectl: &Kubectl,
        spec: &TenantSpec,
        prepared: &Prepared,
        after: &crate::batch::Stored,
        rollout: Rollout,
        progress: Progress,
    ) -> anyhow::Result<(Provisioned, Option<String>)> {
        let ns = spec.namespace.as_str();
        let applied: Vec<(&Manifest, ObjectChange)> = prepared
            .to_apply
            .iter()
            .map(|m| {
                let change = ObjectChange::between(
                    prepared.live(m),
                    after.get(&(m.kind.clone(), m.name.clone())),
                )
                .unwrap_or(ObjectChange::Configured);
                (m, change)
            })
            .collect();
        let deployment = applied
            .iter()
            .find(|(m, _)| m.kind == "Deployment")
            .map(|(m, c)| (m.name.clone(), *c));
        // The bot reads its ConfigMap when it starts. A change of the
        // rendered config changes the pod template (its checksum), which
        // rolls the bot; a ConfigMap that only changes back (a hand edit
        // taken back with --force-conflicts) needs a restart of its own.
        let config_changed = applied.iter().any(|(m, c)| {
            m.name == CONFIG_MAP && m.kind == "ConfigMap" && *c == ObjectChange::Configured
        });
        let running = |name: &str| {
            after
                .get(&("Deployment".to_owned(), name.to_owned()))
                .and_then(|d| d.pointer("/spec/replicas"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1)
                > 0
        };
        let bot_running = deployment.as_ref().map(|(name, _)| running(name));
        let restarted = match &deployment {
            Some((name, ObjectChange::Unchanged)) if config_changed && running(name) => {
                progress.say(format_args!(
                    "Restarting deployment/{name}: its ConfigMap changed, and the bot reads it when it starts ..."
                ));
                kubectl.rollout_restart(ns, name).map_err(|e| {
                    e.context(format!(
                        "every object of tenant {} was applied, but the bot still runs with the ConfigMap it \
                         started with. Restart it with `cargo xtask admin restart {}{}`",
                        spec.name,
                        spec.name,
                        crate::suggest::target_arg()
                    ))
                })?;
                true
            }
            _ => false,
        };
        let wait = match (&deployment, rollout) {
            (Some(_), Rollout::Always) => true,
            (Some((_, change)), Rollout::IfChanged) => {
                restarted || *change != ObjectChange::Unchanged
            }
            (None, _) => false,
        };
        let applied = applied
            .into_iter()
            .map(|(m, c)| (m.reference(), c))
            .collect();
        let provisioned = Provisioned {
            tenant: spec.name.clone(),
            namespace: ns.to_owned(),
            applied,
            kept: kept_lines(prepared),
            bot_running,
            restarted,
        };
        Ok((
            provisioned,
            deployment.filter(|_| wait).map(|(name, _)| name),
        ))
    }
}

/// The first line of the diff of each tenant of a plan of `--all`: what
/// it is, and where kubectl's diff is.
const FLEET_DIFF_HEADER: &str = "# Compared locally with the cluster as `provision --all --plan` read it \
once, not by `kubectl diff`: each object an apply would change, and under it the fields it would \
change (values are not shown; `cargo xtask provision <TENANT> --plan` shows kubectl's diff of one \
tenant).";

/// What `--all --plan` shows of a tenant that would change (`paint`: in
/// colour), and what its plan file records as its diff: each change, under
/// an update the fields it changes, then the changes an apply confirms.
fn fleet_plan_lines(c: &Changing, paint: bool) -> Vec<String> {
    use crate::plan::PlanChange;
    let mut lines = Vec::new();
    for change in &c.plan.changes {
        lines.push(match paint {
            true => painted_plan_change(change),
            false => change.to_string(),
        });
        // Never a Secret: a plan compares none (`local_plan`).
        if let PlanChange::Update { reference, .. } = change
            && let Some(m) = c
                .prepared
                .to_apply
                .iter()
                .find(|m| m.reference() == *reference)
            && let Some(live) = c.prepared.live(m)
        {
            for drift in crate::compare::drift(&m.object, live, MANAGER) {
                lines.push(format!("    {drift}"));
            }
        }
    }
    for change in &c.confirmed {
        lines.push(format!(
            "changes {change} (confirmed by the plan's approval)"
        ));
    }
    lines
}

/// When [`Provision::settle`] waits for the bot's rollout.
#[derive(Clone, Copy)]
enum Rollout {
    /// Whatever the apply did (one tenant: the report says it is ready).
    Always,
    /// Only when its Deployment changed or was restarted (`--all`: an
    /// untouched bot is not waited for).
    IfChanged,
}

/// The name of the tenant's bot Deployment when it runs (replicas above
/// zero) and has not rolled out, as the cluster was read.
fn unready_bot(prepared: &Prepared) -> Option<String> {
    let manifest = prepared.to_apply.iter().find(|m| m.kind == "Deployment")?;
    let live = prepared.live(manifest)?;
    let replicas = live
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    (replicas > 0 && crate::rollout::status(live) != crate::rollout::Status::Done)
        .then(|| manifest.name.clone())
}

/// Validates every value; without a terminal, says how to give missing ones.
fn resolve(
    tenant: &TenantName,
    values: &TenantValues,
    platform: &Platform,
    explain_flags: bool,
) -> anyhow::Result<TenantSpec> {
    TenantSpec::resolve(
        tenant,
        values,
        &platform.tier_names(),
        &platform.default_tier,
    )
    .map_err(|problems| {
        let mut msg = format_problems(
            &format!("tenant `{tenant}` cannot be provisioned"),
            &problems,
        );
        if explain_flags && problems.iter().any(|p| p.starts_with("missing values")) {
            msg.push_str(
                "\nGive them as flags or in a --values file (see tenants/demo.yaml), \
                     or run in a terminal without --non-interactive to be asked.",
            );
        }
        anyhow::anyhow!(msg)
    })
}

/// Configs of one batch that claim a WhatsApp number or a domain an
/// earlier config of the batch (by name) claims too, each with its
/// refusal. A config that cannot be read is left to fail on its own.
fn batch_clashes(
    items: &[(TenantName, PathBuf)],
    spec_of: impl Fn(&Path, &TenantName) -> anyhow::Result<TenantSpec>,
) -> std::collections::BTreeMap<TenantName, String> {
    let mut sorted: Vec<&(TenantName, PathBuf)> = items.iter().collect();
    sorted.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut kept: Vec<(TenantSpec, &Path)> = Vec::new();
    let mut refused = std::collections::BTreeMap::new();
    for (tenant, path) in sorted {
        let Ok(spec) = spec_of(path, tenant) else {
            continue;
        };
        let mut problems = Vec::new();
        for (other, other_path) in &kept {
            if other.whatsapp_number == spec.whatsapp_number {
                problems.push(format!(
                    "WhatsApp number {} is also in {} (tenant {})",
                    spec.whatsapp_number,
                    other_path.display(),
                    other.name
                ));
            }
            for mine in &spec.domains {
                for theirs in &other.domains {
                    if tenant::domains_overlap(mine, theirs) {
                        problems.push(format!(
                            "domain {mine} is also in {} (tenant {}, as {theirs})",
                            other_path.display(),
                            other.name
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            kept.push((spec, path));
        } else {
            refused.insert(
                tenant.clone(),
                format!(
                    "{}\nNot applied: each number and domain belongs to one tenant. Remove it from one of \
                     the two configs, then run this again.",
                    format_problems(
                        &format!("{} clashes with another config of this batch", path.display()),
                        &problems
                    )
                ),
            );
        }
    }
    refused
}

/// Reads the cluster for one tenant and refuses what must not be applied:
/// a clash, a namespace that is not the tenant's or is being deleted, a
/// live tenant's other identity (without `reconfigure`), a volume that
/// would have to shrink, a suspended tenant.
fn check(
    kubectl: &Kubectl,
    platform: &Platform,
    templates: &Templates,
    spec: &TenantSpec,
    reconfigure: bool,
) -> anyhow::Result<Prepared> {
    refuse(
        spec,
        prepare(kubectl, platform, templates, spec, true)?,
        reconfigure,
    )
}

/// A tenant of `--all` whose config resolved and rendered.
struct Ready {
    tenant: TenantName,
    /// As configured (what a plan records).
    saved: TenantSpec,
    /// As this environment serves it.
    spec: TenantSpec,
    /// With redacted credentials.
    rendered: Vec<Manifest>,
    /// In the apply of a plan of `--all`: the tenant's plan, which the
    /// cluster and today's render must still match.
    planned: Option<Box<crate::planfile::TenantPlan>>,
}

/// The config of one tenant of `--all`, as this environment serves it,
/// and its render; refused when it clashes with another config of the
/// batch or claims a platform host.
fn desired(
    cluster: &Cluster,
    platform: &Platform,
    templates: &Templates,
    clashes: &BTreeMap<TenantName, String>,
    tenant: &TenantName,
    path: &Path,
) -> anyhow::Result<Ready> {
    if let Some(clash) = clashes.get(tenant) {
        crate::outcome::bail_unchanged!("{clash}");
    }
    let values = read_values(path)?;
    let saved = resolve(tenant, &values, platform, true)?;
    cluster.target().refuse_platform_hosts(&saved)?;
    let spec = cluster.target().tenant_view(&saved);
    let rendered = templates.render_tenant(&spec, platform, &SecretValues::Redacted)?;
    Ok(Ready {
        tenant: tenant.clone(),
        saved,
        spec,
        rendered,
        planned: None,
    })
}

/// The read by label misses an object whose tenant label was removed by
/// hand. Before credentials are generated for a Secret, or a volume is
/// applied, that seems missing from an active tenant, its namespace is read
/// itself (a call of its own, only then): an existing Secret is never
/// overwritten, an existing volume never re-applied.
fn keep_what_exists(kubectl: &Kubectl, ready: &Ready, live: &mut Live) -> anyhow::Result<()> {
    let Some(ns) = &live.own_namespace else {
        return Ok(());
    };
    if crate::object::label(ns, TENANT_LABEL) != Some(ready.tenant.as_str())
        || Lifecycle::of(ns).state().is_some()
    {
        return Ok(());
    }
    let kept = |kind: &str| matches!(kind, "Secret" | "PersistentVolumeClaim");
    let missing = ready.rendered.iter().any(|m| {
        kept(&m.kind)
            && !live
                .existing
                .contains_key(&(m.kind.clone(), m.name.clone()))
    });
    if !missing {
        return Ok(());
    }
    let found = kubectl
        .get_list_with_owners(
            "secret,persistentvolumeclaim",
            Scope::Namespace(&ready.spec.namespace),
            None,
        )
        .left_unchanged(Left::NothingChanged)?;
    for mut object in found {
        if object["kind"] == "Secret"
            && let Some(o) = object.as_object_mut()
        {
            o.remove("data");
            o.remove("stringData");
        }
        if let Some(key) = kind_and_name(&object) {
            live.existing.entry(key).or_insert(object);
        }
    }
    Ok(())
}

/// What `--all` does with one tenant, decided from the one read.
enum Decision {
    /// Down on purpose (suspended, offboarded, being deleted): left so.
    Skipped(State, Option<String>),
    /// Nothing would change: nothing is applied.
    Unchanged(Provisioned),
    /// Nothing would change, but the bot (its Deployment named so) has
    /// not rolled out: it is waited for with the changed ones.
    Unready(Provisioned, String),
    Changing(Box<Changing>),
}

/// A tenant `--all` applies.
struct Changing {
    spec: TenantSpec,
    prepared: Prepared,
    /// The changes of identity or tier confirmed with --yes, as lines.
    confirmed: Vec<String>,
    /// What the apply changes, as compared locally (`--all --plan` shows it).
    plan: crate::plan::Plan,
}

/// A tenant of `--all` an interrupt (Ctrl-C) came before: nothing of it
/// was sent.
#[derive(Debug)]
struct NotStarted;

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not started: interrupted (Ctrl-C or a termination signal)")
    }
}

impl std::error::Error for NotStarted {}

/// The lines of `--all`, as each tenant's outcome is final: one line per
/// tenant on stdout (a progress line on stderr, on a terminal, around
/// them), each outcome recorded in the audit log.
struct Report<'c> {
    cluster: &'c Cluster,
    progress: crate::fleet::Progress<std::io::Stderr>,
    failed: usize,
    skipped: usize,
    /// Done with nothing to apply.
    up_to_date: usize,
    /// The tenants that failed (a file that names none is not one).
    failed_tenants: Vec<TenantName>,
}

impl<'c> Report<'c> {
    fn new(cluster: &'c Cluster, total: usize) -> Self {
        Report {
            cluster,
            progress: crate::fleet::Progress::on_terminal("provision", total),
            failed: 0,
            skipped: 0,
            up_to_date: 0,
            failed_tenants: Vec::new(),
        }
    }

    /// A failure that is no tenant's (a file that names none), or not
    /// recorded (not started): its line as given.
    fn unnamed(&mut self, line: &str) {
        self.failed += 1;
        self.progress.println(line);
        self.progress.tenant_done(true);
    }

    /// A tenant's outcome: recorded, then its line.
    fn tenant(&mut self, tenant: &TenantName, result: anyhow::Result<Batched>) {
        let result = self.cluster.record(tenant.as_str(), result);
        let line = match &result {
            Ok(Batched::Done(p, confirmed)) => p.batch_lines(
                confirmed,
                match self.cluster.target().audit().authority().plan {
                    Some(_) => "approved in the plan",
                    None => "with --yes",
                },
            ),
            Ok(Batched::Skipped(state, note)) => format!(
                "{tenant}: {state} (skipped){}",
                note.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
            ),
            // The whole reason, its later lines indented under the tenant's.
            Err(e) => format!(
                "{tenant}: {}: {}",
                crate::colour::verdict("FAILED", false),
                format!("{e:#}").lines().collect::<Vec<_>>().join("\n    ")
            ),
        };
        self.failed += usize::from(result.is_err());
        if result.is_err() {
            self.failed_tenants.push(tenant.clone());
        }
        self.skipped += usize::from(matches!(result, Ok(Batched::Skipped(..))));
        self.up_to_date +=
            usize::from(matches!(&result, Ok(Batched::Done(p, _)) if p.changed() == 0));
        self.progress.println(&line);
        self.progress.tenant_done(result.is_err());
    }

    /// The closing line (how many applied, up to date, skipped, failed),
    /// how many failed and the tenants among them; the progress line ends.
    fn finish(self, total: usize) -> (String, usize, Vec<TenantName>) {
        let applied = total - self.failed - self.skipped - self.up_to_date;
        let line = format!(
            "{total} tenant{}: {applied} applied, {} up to date, {} skipped, {} failed.",
            if total == 1 { "" } else { "s" },
            self.up_to_date,
            self.skipped,
            self.failed
        );
        (line, self.failed, self.failed_tenants)
    }
}

/// What one tenant of `--all` came to.
enum Batched {
    /// Applied (or up to date), with the changes confirmed with --yes.
    Done(Provisioned, Vec<String>),
    /// Suspended, offboarded or being deleted: left as it is.
    Skipped(State, Option<String>),
}

/// Refuses what must not be applied, from what `prepare` read.
fn refuse(spec: &TenantSpec, prepared: Prepared, reconfigure: bool) -> anyhow::Result<Prepared> {
    refuse_unusable_namespace(spec, &prepared).left_unchanged(Left::NothingChanged)?;
    refuse_identity_change(spec, &prepared, reconfigure)?;
    refuse_shrinking(spec, &prepared)?;
    let lifecycle = prepared
        .own_namespace
        .as_ref()
        .map_or(Lifecycle::Active, Lifecycle::of);
    if let Lifecycle::Suspended { since, .. } = &lifecycle {
        crate::outcome::bail_unchanged!(
            "tenant {} is suspended (since {since}); applying would bring it back online. Resume it first with \
             `cargo xtask admin resume {}{}`.",
            spec.name,
            spec.name,
            crate::suggest::target_arg()
        );
    }
    Ok(prepared)
}

/// How a planned change is made: in an environment that requires
/// approvals, by saving the plan (`--save-plan`), approving and applying
/// it; elsewhere by `direct`, or through a saved plan all the same.
fn apply_advice(cluster: &Cluster, direct: &str) -> String {
    match cluster
        .target()
        .environment()
        .filter(|e| !e.approvals.is_empty())
    {
        Some(env) => format!(
            "save the plan with --save-plan FILE (environment {} requires approvals: then `cargo xtask approve \
             FILE --key KEY`, by each of {}, and `cargo xtask apply FILE{}`)",
            env.name,
            env.approvals.join(", "),
            cluster.target().suggested_arg()
        ),
        None => format!(
            "run {direct}, or save a plan for review with --save-plan FILE and apply it with \
             `cargo xtask apply FILE{}`",
            cluster.target().suggested_arg()
        ),
    }
}

/// Writes a new plan file (see [`crate::planfile::save_new`]).
fn save_new_plan(
    cluster: &Cluster,
    file: &Path,
    plan: &crate::planfile::Plan,
) -> anyhow::Result<()> {
    let roles = cluster
        .target()
        .environment()
        .map(|e| e.approvals.clone())
        .unwrap_or_default();
    crate::planfile::save_new(file, plan, &roles)
}

/// Writes the resolved config to `tenants/<name>.yaml` unless it is already so.
fn save_values(path: &Path, spec: &TenantSpec, progress: Progress) -> anyhow::Result<()> {
    let text = spec.to_yaml()?;
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    write_atomic(path, text.as_bytes())
        .with_context(|| {
            format!(
                "cannot save the tenant config to {}; nothing was applied",
                path.display()
            )
        })
        .left_unchanged(Left::NothingChanged)?;
    progress.say(format_args!(
        "Saved the tenant config to {} (commit it).",
        path.display()
    ));
    Ok(())
}

/// Where one provision's values come from.
struct Sources {
    /// What this command gives: the `--values` file with the flags over it.
    given: TenantValues,
    /// The tenant's committed config, when it has a readable one.
    committed: Option<TenantValues>,
    /// No `--values`: the committed config is the starting point.
    from_committed: bool,
}

impl Sources {
    /// The committed config (when it is the start) with what was given over it.
    fn values(&self) -> TenantValues {
        match &self.committed {
            Some(committed) if self.from_committed => committed.clone().overlay(self.given.clone()),
            _ => self.given.clone(),
        }
    }
}

/// What the cluster's other tenants and Ingresses claim (numbers and
/// domains), read once before the questions so that a clash is named as
/// soon as the value is typed. A first look only: the claims are read again
/// under the claims lock before anything is applied.
pub struct Claimed {
    tenant: TenantName,
    environment: Option<Environment>,
    tenants: Vec<serde_json::Value>,
    ingresses: Vec<serde_json::Value>,
}

impl Claimed {
    fn read(cluster: &Cluster, tenant: &TenantName) -> anyhow::Result<Claimed> {
        let kubectl = cluster.kubectl();
        Ok(Claimed {
            tenant: tenant.clone(),
            environment: cluster.target().environment().cloned(),
            tenants: kubectl
                .get_list("namespaces", Scope::Cluster, Some(TENANT_LABEL))
                .left_unchanged(Left::NothingChanged)?,
            ingresses: kubectl
                .get_list("ingresses", Scope::AllNamespaces, None)
                .left_unchanged(Left::NothingChanged)?,
        })
    }

    /// The tenant with only `number` and `domains` (as this environment
    /// serves them), which is all a clash is about.
    fn probe(&self, number: &str, domains: &[String]) -> TenantSpec {
        let spec = self.given(number, domains);
        match (&self.environment, domains.is_empty()) {
            (Some(env), false) => env.tenant_view(&spec),
            _ => spec,
        }
    }

    /// The tenant with only `number` and `domains`, as given.
    fn given(&self, number: &str, domains: &[String]) -> TenantSpec {
        TenantSpec {
            name: self.tenant.clone(),
            namespace: format!("tenant-{}", self.tenant),
            mla_name: String::new(),
            constituency: String::new(),
            whatsapp_number: number.to_owned(),
            domains: domains.to_vec(),
            tier: String::new(),
            rate_limits: Default::default(),
            site: Default::default(),
        }
    }

    fn refuse(&self, spec: &TenantSpec) -> Result<(), String> {
        let clashes = crate::plan::find_conflicts(spec, &self.tenants, &self.ingresses);
        match clashes.is_empty() {
            true => Ok(()),
            false => Err(clashes.join("; ")),
        }
    }

    fn number(&self, number: &str) -> Result<(), String> {
        self.refuse(&self.probe(number, &[]))
    }

    /// No number in the probe: no namespace carries an empty one. A domain
    /// under the environment's `domain_suffix` (another tenant's automatic
    /// host) is refused here too, not after every question.
    fn domains(&self, domains: &[String]) -> Result<(), String> {
        if let Some(env) = &self.environment
            && let Err(e) = env.refuse_platform_hosts(&self.given("", domains))
        {
            // Its first sentence, with the way out a question has.
            let text = e.to_string();
            let why = text.split(" Leave it out of").next().unwrap_or(&text);
            return Err(format!(
                "{}; give another domain (the tenant is served at {}.{} already)",
                why.trim_end_matches('.'),
                self.tenant,
                env.domain_suffix
            ));
        }
        self.refuse(&self.probe("", domains))
    }
}

/// Asks for the values a person should see: every required one that is
/// missing, invalid or (with `claimed`) another tenant's, and every one
/// that comes from the committed config rather than from `given` (flags,
/// `--values`), with the current value as the default that Enter keeps.
pub fn fill_by_prompt(
    values: &mut TenantValues,
    given: &TenantValues,
    claimed: Option<&Claimed>,
    p: &mut dyn Prompter,
) -> anyhow::Result<()> {
    type Field = (
        &'static str,
        fn(&mut TenantValues) -> &mut Option<String>,
        fn(&str) -> Result<String, String>,
        fn(&Claimed, &str) -> Result<(), String>,
    );
    let unclaimed = |_: &Claimed, _: &str| Ok(());
    let fields: [Field; 3] = [
        (
            "MLA name",
            |v| &mut v.mla_name,
            tenant::validate_mla_name,
            unclaimed,
        ),
        (
            "Constituency",
            |v| &mut v.constituency,
            tenant::validate_constituency,
            unclaimed,
        ),
        (
            "WhatsApp number (E.164, e.g. +91 98765-43210)",
            |v| &mut v.whatsapp_number,
            tenant::normalize_whatsapp_number,
            Claimed::number,
        ),
    ];
    let mut given = given.clone();
    for (question, slot, valid, clash) in fields {
        let validate = |answer: &str| {
            let value = valid(answer)?;
            claimed.map_or(Ok(()), |c| clash(c, &value))?;
            Ok(value)
        };
        let current = slot(values).clone();
        let was_given = slot(&mut given).is_some();
        let default = match current.as_deref().map(|v| (v, validate(v))) {
            Some((_, Ok(_))) if was_given => continue,
            Some((v, Ok(_))) => Some(v.to_owned()),
            Some((_, Err(why))) => {
                p.say(&format!("  ✗ {why}"));
                None
            }
            None => None,
        };
        *slot(values) = Some(ask_valid_or(p, question, default.as_deref(), validate)?);
    }
    let validate = |list: &[String]| {
        let list = tenant::validate_domains(list)?;
        claimed.map_or(Ok(()), |c| c.domains(&list).map_err(|e| vec![e]))?;
        Ok::<_, Vec<String>>(list)
    };
    let default = match validate(&values.domains) {
        Ok(list) if !list.is_empty() && !given.domains.is_empty() => return Ok(()),
        Ok(list) if !list.is_empty() => Some(values.domains.join(", ")),
        Ok(_) => None,
        Err(problems) => {
            for why in problems {
                p.say(&format!("  ✗ {why}"));
            }
            None
        }
    };
    values.domains = ask_valid_or(
        p,
        "Domains (separated by spaces or commas)",
        default.as_deref(),
        |answer| {
            let list: Vec<String> = answer
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if list.is_empty() {
                return Err("give at least one domain, e.g. mla-pune.example.in".to_owned());
            }
            validate(&list).map_err(|e| e.join("; "))
        },
    )?;
    Ok(())
}

/// The tenant as configured (`saved`), and as this environment serves it
/// (`spec`), with the changes that need a yes, then `Apply to ...? [y/N]`
/// unless the environment asks for the tenant name typed.
fn confirm(
    saved: &TenantSpec,
    spec: &TenantSpec,
    changes: &[FieldChange],
    cluster: &Cluster,
    p: &mut dyn Prompter,
) -> anyhow::Result<bool> {
    let served_in = (spec.domains != saved.domains).then(|| {
        cluster.target().environment().map_or_else(
            || "this environment".to_owned(),
            |e| format!("environment {}", e.name),
        )
    });
    p.say(&summary(saved, spec, served_in.as_deref(), changes));
    // Where the environment makes every change typed out, that question
    // follows; asking y/N first would ask twice.
    if cluster.target().environment().is_some_and(|e| e.confirm) {
        return Ok(true);
    }
    ask_yes_no(p, &format!("Apply to {}?", cluster.label()))
}

/// What the confirmation shows: the values, where this environment serves
/// other domains (`served_in`), and the changes of identity or tier.
fn summary(
    saved: &TenantSpec,
    spec: &TenantSpec,
    served_in: Option<&str>,
    changes: &[FieldChange],
) -> String {
    let mut summary = format!(
        "\nTenant {} (namespace {}):\n  MLA name:        {}\n  Constituency:    {}\n  WhatsApp number: {}\n  Domains:         {}\n  Tier:            {}",
        spec.name,
        spec.namespace,
        spec.mla_name,
        spec.constituency,
        spec.whatsapp_number,
        saved.domains.join(", "),
        spec.tier
    );
    if let Some(env) = served_in {
        summary.push_str(&format!(
            "\n  Served in {env} as: {}",
            spec.domains.join(", ")
        ));
    }
    if !changes.is_empty() {
        summary.push_str("\nThis changes:");
        for change in changes {
            summary.push_str(&format!("\n  {change}"));
        }
    }
    summary
}

fn write_out_dir(dir: &Path, manifests: &[Manifest]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (i, m) in manifests.iter().enumerate() {
        let path = dir.join(file_name(i, m));
        write_atomic(&path, to_yaml_stream(std::slice::from_ref(m))?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "Wrote {} manifests to {} (the Secret's values are redacted).",
        manifests.len(),
        dir.display()
    );
    Ok(())
}

/// `cargo xtask apply FILE` of a provision plan whose approvals, expiry and
/// cluster were checked: applies the tenant exactly as planned, through
/// the path every provision takes (the tenant's lock and the claims lock,
/// the apply, the wait for the bot, the audit line). Refused, with nothing
/// changed, when the committed config, the platform settings or the
/// templates changed since planning, when any planned object changed on
/// the cluster since (a stale plan), or when today's render of the tenant
/// differs from the planned objects.
pub fn apply_plan(
    cluster: &Cluster,
    paths: &RepoPaths,
    file: &crate::planfile::PlanFile,
    planned: &crate::planfile::TenantPlan,
    timeout: crate::clock::KubeDuration,
) -> anyhow::Result<()> {
    let plan = &file.plan;
    let tenant = planned.tenant_name()?;
    let again = plan.plan_again();
    // The inputs, before the cluster is read.
    let changed = changed_inputs(paths, plan, &[(tenant.clone(), planned)])?;
    if !changed.is_empty() {
        crate::outcome::bail_unchanged!(
            "config changed after planning: {} {} not what plan {} was made from (at {}); {again}",
            changed.join(", "),
            if changed.len() == 1 { "is" } else { "are" },
            file.path.display(),
            plan.planned_at
        );
    }
    let platform = paths.platform()?;
    let templates = paths.templates()?;
    let values = planned
        .values
        .clone()
        .with_context(|| format!("the plan has no values for tenant {tenant}"))?;
    let saved = resolve(&tenant, &values, &platform, false)?;
    cluster.target().refuse_platform_hosts(&saved)?;
    let spec = cluster.target().tenant_view(&saved);
    let committed = paths
        .tenant_config(&tenant)
        .exists()
        .then(|| read_values(&paths.tenant_config(&tenant)))
        .transpose()?
        .and_then(|c| resolve(&tenant, &c, &platform, false).ok());
    let provision = planned_provision(
        paths,
        Some(tenant.clone()),
        planned.options.force_conflicts,
        planned.options.reconfigure,
        timeout,
    )?;
    let provisioned = cluster.change_claiming(
        &Change::routine(&tenant, "provisioning, as planned and approved,", true),
        |kubectl| {
            let prepared = check(kubectl, &platform, &templates, &spec, provision.reconfigure)?;
            let rendered = templates.render_tenant(&spec, &platform, &SecretValues::Redacted)?;
            let departures = crate::plan::departures(&planned.objects, &prepared, &rendered);
            if !departures.stale.is_empty() {
                crate::outcome::bail_unchanged!(
                    "stale plan: {} since {} (when it was planned); {again}",
                    departures.stale.join(", "),
                    plan.planned_at
                );
            }
            if !departures.rendered.is_empty() {
                crate::outcome::bail_unchanged!(
                    "today's render of tenant {tenant} is not what was planned: {} (has environments.yaml \
                     changed?); {again}",
                    departures.rendered.join(", ")
                );
            }
            let changes = changes_to_confirm(
                &saved,
                &spec,
                prepared.own_namespace.as_ref(),
                committed.as_ref(),
            );
            let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
            if lines != planned.confirmed {
                crate::outcome::bail_unchanged!(
                    "the changes to confirm are not the planned ones (now: {}; planned: {}); {again}",
                    or_none(&lines),
                    or_none(&planned.confirmed)
                );
            }
            Ok(prepared)
        },
        |kubectl, prepared| {
            provision.apply(
                kubectl,
                paths,
                &saved,
                committed.as_ref(),
                &spec,
                prepared,
                Progress(true),
            )
        },
    )?;
    provisioned.print();
    Ok(())
}

/// `cargo xtask apply FILE` of a plan of `provision --all --plan` whose
/// approvals, expiry and cluster were checked: applied as `--all` applies
/// (the tenants' locks and the claims lock taken in one call, the cluster
/// read once, the objects applied a hundred tenants per call, the changed
/// bots waited for together, one audit line per tenant), to exactly the
/// planned tenants, all of them or none. Refused as a whole, with nothing
/// changed and each departing tenant named: before any lock, when a
/// planned tenant's committed config, or the platform settings or the
/// templates, changed since planning; under the locks, from the one read,
/// when any planned tenant's objects changed since (a stale plan), its
/// render differs from the planned one, it would no longer change, or its
/// changes to confirm are not the planned ones.
pub fn apply_fleet_plan(
    cluster: &Cluster,
    paths: &RepoPaths,
    file: &crate::planfile::PlanFile,
    timeout: crate::clock::KubeDuration,
) -> anyhow::Result<()> {
    let plan = &file.plan;
    let again = plan.plan_again();
    // The inputs, before the cluster is read.
    let tenants = plan
        .tenants
        .iter()
        .map(|planned| Ok((planned.tenant_name()?, planned)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let changed = changed_inputs(paths, plan, &tenants)?;
    let tenants: Vec<TenantName> = tenants.into_iter().map(|(t, _)| t).collect();
    if !changed.is_empty() {
        crate::outcome::bail_unchanged!(
            "config changed after planning: {} {} not what plan {} was made from (at {}), and a plan of \
             --all is applied whole or not at all; {again}",
            changed.join(", "),
            if changed.len() == 1 { "is" } else { "are" },
            file.path.display(),
            plan.planned_at
        );
    }
    let platform = paths.platform()?;
    let templates = paths.templates()?;
    let mut ready = Vec::new();
    let mut departed = Vec::new();
    for (tenant, planned) in tenants.iter().zip(&plan.tenants) {
        match planned_ready(cluster, &platform, &templates, tenant, planned) {
            Ok(r) => ready.push(r),
            Err(e) => departed.push(format!("{tenant}: {}", crate::outcome::cause(&e))),
        }
    }
    if !departed.is_empty() {
        crate::outcome::bail_unchanged!(
            "{}\n{again}",
            format_problems(
                &format!(
                    "plan {} cannot be applied as planned, and a plan of --all is applied whole or not at all",
                    file.path.display()
                ),
                &departed
            )
        );
    }
    let force_conflicts = plan.tenants.iter().all(|t| t.options.force_conflicts);
    let provision = planned_provision(paths, None, force_conflicts, false, timeout)?;
    let total = tenants.len();
    crate::interrupt::install();
    cluster.confirm_batch(
        "provisioning, as planned and approved,",
        &format!(
            "the {total} tenant{} of plan {}",
            if total == 1 { "" } else { "s" },
            file.path.display()
        ),
        true,
        &tenants,
    )?;
    crate::interrupt::check().left_unchanged(Left::NothingChanged)?;
    eprintln!(
        "Applying plan {} to {total} tenant{}: their locks taken, the cluster read once and every tenant \
         checked against the plan before any is applied ...",
        file.path.display(),
        if total == 1 { "" } else { "s" }
    );
    let (locks, refused) = cluster
        .hold_batch(&tenants, true)
        .left_unchanged(Left::NothingChanged)?;
    // Refused as a whole: each planned tenant's refusal recorded, the locks released.
    let refuse = |locks: crate::lock::Many<'_>, why: Vec<(TenantName, String)>, what: &str| {
        let named: Vec<&str> = why.iter().map(|(t, _)| t.as_str()).collect();
        for tenant in &tenants {
            let reason = match why.iter().find(|(t, _)| t == tenant) {
                Some((_, reason)) => reason.clone(),
                None => format!(
                    "not applied: plan {} is applied whole or not at all, and {} {what}",
                    file.path.display(),
                    named.join(", ")
                ),
            };
            let _ = cluster.record::<()>(tenant.as_str(), Err(anyhow::anyhow!(reason)));
        }
        drop(locks);
        let lines: Vec<String> = why.iter().map(|(t, r)| format!("{t}: {r}")).collect();
        crate::outcome::unchanged(
            anyhow::anyhow!(
                "{}\n{again}",
                format_problems(
                    &format!(
                        "plan {} (planned at {}) is refused as a whole: {} of its {total} tenants {what}",
                        file.path.display(),
                        plan.planned_at,
                        why.len()
                    ),
                    &lines
                )
            ),
            Left::NothingChanged,
        )
    };
    if !refused.is_empty() {
        let why = refused
            .into_iter()
            .map(|(t, e)| (t, crate::outcome::cause(&e)))
            .collect();
        return Err(refuse(locks, why, "are locked by another command"));
    }
    let decided = match provision.decide_all(cluster.kubectl(), &platform, &templates, ready) {
        Ok(decided) => decided,
        Err(e) => {
            for tenant in &tenants {
                let _ = cluster.record::<()>(tenant.as_str(), Err(anyhow::anyhow!("{e:#}")));
            }
            drop(locks);
            return Err(crate::outcome::unchanged(e, Left::NothingChanged));
        }
    };
    let mut changing = Vec::new();
    let mut departed = Vec::new();
    for (tenant, decision) in decided {
        match decision {
            Ok(Decision::Changing(c)) => changing.push((tenant, *c)),
            Ok(Decision::Unchanged(_) | Decision::Unready(..)) => departed.push((
                tenant,
                "it would change nothing now (applied since it was planned?)".to_owned(),
            )),
            Ok(Decision::Skipped(state, _)) => {
                departed.push((tenant, format!("it is {state} now")))
            }
            Err(e) => departed.push((tenant, crate::outcome::cause(&e))),
        }
    }
    if !departed.is_empty() {
        return Err(refuse(
            locks,
            departed,
            "departed from it since it was planned",
        ));
    }
    let report = Report::new(cluster, total);
    let (failed, _) =
        provision.apply_batch(cluster, locks, report, &changing, Vec::new(), total)?;
    if failed == 0 && !crate::interrupt::interrupted() {
        return Ok(());
    }
    anyhow::bail!(
        "{failed} of the {total} tenants of plan {} failed or were not started (why is under each){}. A \
         plan applies once: what it applied stays; for the rest, {}",
        file.path.display(),
        if failed < total {
            "; the others were applied"
        } else {
            ""
        },
        plan.plan_again()
    );
}

/// A tenant of a plan of `--all`, from the values the plan holds, as this
/// environment serves it, rendered with redacted credentials.
fn planned_ready(
    cluster: &Cluster,
    platform: &Platform,
    templates: &Templates,
    tenant: &TenantName,
    planned: &crate::planfile::TenantPlan,
) -> anyhow::Result<Ready> {
    let values = planned
        .values
        .clone()
        .with_context(|| format!("the plan has no values for tenant {tenant}"))?;
    let saved = resolve(tenant, &values, platform, false)?;
    cluster.target().refuse_platform_hosts(&saved)?;
    let spec = cluster.target().tenant_view(&saved);
    let rendered = templates.render_tenant(&spec, platform, &SecretValues::Redacted)?;
    Ok(Ready {
        tenant: tenant.clone(),
        saved,
        spec,
        rendered,
        planned: Some(Box::new(planned.clone())),
    })
}

/// The provision an apply of a plan runs: of `tenant` (None: of `--all`),
/// with no terminal, the plan's options, and `--yes` (the approvals
/// confirm the changes the plan lists, which the apply checks).
fn planned_provision(
    paths: &RepoPaths,
    tenant: Option<TenantName>,
    force_conflicts: bool,
    reconfigure: bool,
    timeout: crate::clock::KubeDuration,
) -> anyhow::Result<flags::Provision> {
    Ok(flags::Provision {
        all: tenant.is_none(),
        tenant,
        jobs: 2,
        values: None,
        mla_name: None,
        constituency: None,
        whatsapp_number: None,
        domains: Vec::new(),
        tier: None,
        non_interactive: true,
        dry_run: false,
        out: None,
        plan: false,
        saving: flags::SavePlanArgs::none(),
        approved_plan: true,
        rollout: flags::RolloutArgs { timeout },
        force_conflicts,
        reconfigure,
        yes: true,
        repo: flags::RepoArgs {
            platform: Some(paths.platform.clone()),
            templates: Some(paths.templates.clone()),
            tenants_dir: Some(paths.tenants.clone()),
        },
        // Approved: no glass to break.
        break_glass: flags::BreakGlassArg { break_glass: None },
        // Not read: the cluster is the one the plan was checked against.
        cluster: flags::ClusterArgs {
            kubectl: None,
            context: None,
            kubectl_timeout: "60s".parse().map_err(anyhow::Error::msg)?,
            audit_log: None,
            env: None,
        },
    })
}

/// What of a plan's inputs is not what it was made from: each planned
/// tenant's committed config (named with its tenant), `platform.yaml` and
/// `templates/`. Read before the cluster is.
fn changed_inputs(
    paths: &RepoPaths,
    plan: &crate::planfile::Plan,
    tenants: &[(TenantName, &crate::planfile::TenantPlan)],
) -> anyhow::Result<Vec<String>> {
    let mut changed = Vec::new();
    let inputs = paths.input_digests()?;
    if inputs.platform != plan.inputs.platform {
        changed.push(paths.platform.display().to_string());
    }
    if inputs.templates != plan.inputs.templates {
        changed.push(format!("{}/", paths.templates.display()));
    }
    for (tenant, planned) in tenants {
        if paths.config_digest(tenant)? != planned.config {
            changed.push(format!(
                "{} (tenant {tenant}{})",
                paths.tenant_config(tenant).display(),
                if planned.config.is_none() {
                    ", none when planned"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(changed)
}

fn or_none(lines: &[String]) -> String {
    match lines.is_empty() {
        true => "none".to_owned(),
        false => lines.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::ScriptedPrompter;

    #[test]
    fn prompts_only_for_missing_or_invalid_values() {
        let mut values = TenantValues {
            mla_name: Some("श्रीकांत शिंदे".into()),
            whatsapp_number: Some("12345".into()),
            ..Default::default()
        };
        let mut p = ScriptedPrompter::new(&[
            "Kalyan",
            "+91 98765 43210",
            "https://x.in",
            "kalyan.example.in, www.kalyan.example.in",
        ]);
        let given = values.clone();
        fill_by_prompt(&mut values, &given, None, &mut p).unwrap();
        assert_eq!(values.mla_name.as_deref(), Some("श्रीकांत शिंदे"));
        assert_eq!(values.whatsapp_number.as_deref(), Some("+919876543210"));
        assert_eq!(
            values.domains,
            ["kalyan.example.in", "www.kalyan.example.in"]
        );
        insta::assert_snapshot!(p.transcript.join("\n"), @r"
        Constituency: Kalyan
          ✗ WhatsApp number `12345` must be in international E.164 form starting with '+' and the country code; example: `+91 98765-43210`
        WhatsApp number (E.164, e.g. +91 98765-43210): +91 98765 43210
        Domains (separated by spaces or commas): https://x.in
          ✗ domain `https://x.in` looks like a URL; give the host name only, example: `mla-pune.example.in`
        Domains (separated by spaces or commas): kalyan.example.in, www.kalyan.example.in
        ");
    }

    fn committed() -> TenantValues {
        TenantValues {
            tenant: Some("kalyan".into()),
            mla_name: Some("श्रीकांत शिंदे".into()),
            constituency: Some("Kalyan".into()),
            whatsapp_number: Some("+919876543210".into()),
            domains: vec!["kalyan.example.in".into(), "www.kalyan.example.in".into()],
            tier: Some("medium".into()),
            rate_limits: tenant::RateLimitOverrides {
                messages_per_day: Some(900),
                ..Default::default()
            },
            site: tenant::SiteContent {
                tagline: Some("सेवा".into()),
                ..Default::default()
            },
        }
    }

    /// Re-provisioning in a terminal: every committed value is offered,
    /// Enter keeps it, an answer replaces it; what was given as a flag is
    /// not asked; tier, site and rate limits stay.
    #[test]
    fn re_provision_prompts_offer_the_committed_values() {
        let given = TenantValues {
            constituency: Some("Kalyan Rural".into()),
            ..Default::default()
        };
        let sources = Sources {
            given: given.clone(),
            committed: Some(committed()),
            from_committed: true,
        };
        let mut values = sources.values();
        let mut p = ScriptedPrompter::new(&["", "+91 98765 00000", "  "]);
        fill_by_prompt(&mut values, &given, None, &mut p).unwrap();
        assert_eq!(
            p.transcript,
            [
                "MLA name [श्रीकांत शिंदे]: ",
                "WhatsApp number (E.164, e.g. +91 98765-43210) [+919876543210]: +91 98765 00000",
                "Domains (separated by spaces or commas) [kalyan.example.in, www.kalyan.example.in]:   ",
            ]
        );
        let want = TenantValues {
            constituency: Some("Kalyan Rural".into()),
            whatsapp_number: Some("+919876500000".into()),
            ..committed()
        };
        assert_eq!(values, want);
    }

    /// A committed value that no longer passes is shown as wrong and asked
    /// for with no default; a `--values` file is a start of its own, and
    /// the committed config then offers nothing.
    #[test]
    fn invalid_or_replaced_committed_values_are_not_offered() {
        let mut broken = committed();
        broken.whatsapp_number = Some("98765".into());
        let sources = Sources {
            given: TenantValues::default(),
            committed: Some(broken),
            from_committed: true,
        };
        let mut values = sources.values();
        let mut p = ScriptedPrompter::new(&["", "", "+919876543210", ""]);
        fill_by_prompt(&mut values, &TenantValues::default(), None, &mut p).unwrap();
        assert_eq!(values.whatsapp_number.as_deref(), Some("+919876543210"));
        assert_eq!(
            p.transcript[3],
            "WhatsApp number (E.164, e.g. +91 98765-43210): +919876543210"
        );
        assert!(p.transcript[2].starts_with("  ✗ WhatsApp number `98765`"));

        let file = TenantValues {
            mla_name: Some("Other".into()),
            ..Default::default()
        };
        let sources = Sources {
            given: file.clone(),
            committed: Some(committed()),
            from_committed: false,
        };
        assert_eq!(sources.values(), file);
    }

    /// With the cluster's claims read, another tenant's number or domain
    /// is refused as it is answered and asked again; a committed value
    /// that now clashes is not offered.
    #[test]
    fn a_clash_is_refused_at_its_question() {
        let pune = |domains: &str| {
            serde_json::json!({"metadata": {
                "name": "tenant-pune",
                "labels": {TENANT_LABEL: "pune"},
                "annotations": {
                    crate::names::WHATSAPP_NUMBER_ANNOTATION: "+919876500000",
                    crate::names::DOMAINS_ANNOTATION: domains,
                },
            }})
        };
        let claimed = Claimed {
            tenant: TenantName::parse("kalyan").unwrap(),
            environment: None,
            tenants: vec![pune("pune.example.in")],
            ingresses: vec![],
        };
        let mut values = committed();
        values.whatsapp_number = Some("+919876500000".into());
        let mut p = ScriptedPrompter::new(&[
            "",
            "",
            "+91 98765 00000",
            "+919876511111",
            "kalyan.example.in pune.example.in",
            "kalyan.example.in",
        ]);
        fill_by_prompt(
            &mut values,
            &TenantValues::default(),
            Some(&claimed),
            &mut p,
        )
        .unwrap();
        assert_eq!(values.whatsapp_number.as_deref(), Some("+919876511111"));
        assert_eq!(values.domains, ["kalyan.example.in"]);
        let number_clash = "  ✗ WhatsApp number +919876500000 is already used by tenant pune \
                            (namespace tenant-pune); each bot needs its own number";
        assert_eq!(
            p.transcript,
            [
                "MLA name [श्रीकांत शिंदे]: ",
                "Constituency [Kalyan]: ",
                number_clash,
                "WhatsApp number (E.164, e.g. +91 98765-43210): +91 98765 00000",
                number_clash,
                "WhatsApp number (E.164, e.g. +91 98765-43210): +919876511111",
                "Domains (separated by spaces or commas) [kalyan.example.in, www.kalyan.example.in]: \
                 kalyan.example.in pune.example.in",
                "  ✗ domain pune.example.in is already used by tenant pune (as pune.example.in); \
                 remove it from this tenant or offboard the other first",
                "Domains (separated by spaces or commas) [kalyan.example.in, www.kalyan.example.in]: \
                 kalyan.example.in",
            ]
        );
    }

    /// Where the environment serves the tenant at `<tenant>.<suffix>` too,
    /// that host is one of its domains: another tenant holding it clashes.
    #[test]
    fn the_environments_host_is_checked_with_the_domains() {
        let namespace = serde_json::json!({"metadata": {
            "name": "tenant-pune",
            "labels": {TENANT_LABEL: "pune"},
            "annotations": {crate::names::DOMAINS_ANNOTATION: "kalyan.dev.example.in"},
        }});
        let mut claimed = Claimed {
            tenant: TenantName::parse("kalyan").unwrap(),
            environment: Some(Environment {
                name: "dev".into(),
                context: "kind-dev".into(),
                domain_suffix: "dev.example.in".into(),
                tenant_domains: false,
                confirm: false,
                approvals: Vec::new(),
            }),
            tenants: vec![namespace],
            ingresses: vec![],
        };
        let domains = ["kalyan.example.in".to_owned()];
        let clash = claimed.domains(&domains).unwrap_err();
        assert!(
            clash.contains("domain kalyan.dev.example.in is already used by tenant pune"),
            "{clash}"
        );
        assert_eq!(claimed.number("+919876500000"), Ok(()));
        claimed.environment = None;
        assert_eq!(claimed.domains(&domains), Ok(()));
        // Another tenant's automatic host under the suffix is refused as typed.
        claimed.environment = Some(Environment {
            name: "prod".into(),
            context: "prod".into(),
            domain_suffix: "mla-bots.example.in".into(),
            tenant_domains: true,
            confirm: true,
            approvals: Vec::new(),
        });
        let squatting = ["foo.mla-bots.example.in".to_owned()];
        let refused = claimed.domains(&squatting).unwrap_err();
        assert!(
            refused.contains("is under environment prod's domain_suffix mla-bots.example.in")
                && !refused.contains("Nothing was changed"),
            "{refused}"
        );
        assert_eq!(claimed.domains(&domains), Ok(()));
    }

    #[test]
    fn the_summary_shows_each_change_as_old_to_new() {
        let spec = |tier: &str, mla: &str| {
            TenantSpec::resolve(
                &TenantName::parse("kalyan").unwrap(),
                &TenantValues {
                    tier: Some(tier.into()),
                    mla_name: Some(mla.into()),
                    ..committed()
                },
                &["small", "medium"],
                "small",
            )
            .unwrap()
        };
        let new = spec("small", "Shrikant Shinde");
        let namespace = serde_json::json!({"metadata": {"annotations": {
            crate::names::MLA_NAME_ANNOTATION: "श्रीकांत शिंदे",
            crate::names::WHATSAPP_NUMBER_ANNOTATION: "+919876543210",
            crate::names::TIER_ANNOTATION: "medium",
        }}});
        let changes = field_changes(&new, Some(&namespace), Some(&spec("small", "श्रीकांत शिंदे")));
        insta::assert_snapshot!(summary(&new, &new, None, &changes), @r"

        Tenant kalyan (namespace tenant-kalyan):
          MLA name:        Shrikant Shinde
          Constituency:    Kalyan
          WhatsApp number: +919876543210
          Domains:         kalyan.example.in, www.kalyan.example.in
          Tier:            small
        This changes:
          mla_name: श्रीकांत शिंदे → Shrikant Shinde
          tier: medium → small
        ");
    }
}
