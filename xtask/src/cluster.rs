//! Where a command points, resolved once from the cluster flags: the
//! environment (`environments.yaml`), the kube context, kubectl, and the
//! audit log. Every change to the cluster goes through [`Cluster::change`]:
//! take the tenant's lock, read what it needs, confirm as the environment
//! and the change's risk require, make it, release the lock and record it
//! in the audit log whatever the outcome.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::audit::AuditLog;
use crate::environment::Environment;
use crate::flags::ClusterArgs;
use crate::kubectl::Kubectl;
use crate::lock::{Held, Subject};
use crate::outcome::{Left, LeftUnchanged};
use crate::tenant::{TenantName, TenantSpec};

/// The environment and context a command targets, before kubectl is needed
/// (a dry run renders for an environment without any cluster).
pub struct Target {
    environment: Option<Environment>,
    /// `--context`, else the environment's.
    context: Option<String>,
    /// Whether environments.yaml has environments (none of which applies
    /// when `environment` is None).
    environments: bool,
    /// Whether the environment line was printed (see [`Target::announce`]).
    announced: std::sync::atomic::AtomicBool,
    audit: AuditLog,
    kubectl_flag: Option<PathBuf>,
    call_timeout: std::time::Duration,
    /// The reason, once [`Target::gate`] let a change through on
    /// `--break-glass`: every confirmation then insists on the name typed.
    break_glass: std::sync::OnceLock<String>,
}

impl Target {
    /// Resolves `--env`/`--context` against `environments.yaml`; the only
    /// place the environment is looked up.
    pub fn resolve(args: &ClusterArgs, root: &Path) -> anyhow::Result<Target> {
        if args.kubectl_timeout.length().is_zero() {
            anyhow::bail!(
                "--kubectl-timeout {} would stop every kubectl call at once; give it a length such as 60s",
                args.kubectl_timeout
            );
        }
        let selected = crate::environment::select(args.env.as_deref(), args.context.as_deref())?;
        let environment = selected.environment;
        let context = args
            .context
            .clone()
            .or_else(|| environment.as_ref().map(|e| e.context.clone()));
        let target = Target {
            environment,
            context,
            environments: selected.any,
            announced: std::sync::atomic::AtomicBool::new(false),
            audit: AuditLog::at(args.audit_log.as_deref(), root),
            kubectl_flag: args.kubectl.clone(),
            call_timeout: args.kubectl_timeout.length(),
            break_glass: std::sync::OnceLock::new(),
        };
        crate::suggest::set_target_arg(target.suggested_arg());
        crate::suggest::set_gated(
            target
                .environment
                .as_ref()
                .is_some_and(|e| !e.approvals.is_empty()),
        );
        Ok(target)
    }

    /// ` --env NAME` when this run has an environment, else ` --context X`
    /// when it has a context, else nothing: what every `cargo xtask`
    /// command suggested to the operator carries, so that it acts where
    /// this run did. (kubectl commands take `--context`, see
    /// [`Kubectl::context_arg`].) `crate::suggest::target_arg` is the same
    /// for code with no Target at hand.
    pub fn suggested_arg(&self) -> String {
        match (&self.environment, &self.context) {
            (Some(env), _) => format!(" --env {}", env.name),
            (None, Some(context)) => format!(" --context {context}"),
            (None, None) => String::new(),
        }
    }

    /// Where this run points, as the environment line says it:
    /// `Environment prod (context prod-mumbai)`, or a context and why no
    /// environment's rules apply to it.
    pub fn describe(&self) -> String {
        match (&self.environment, &self.context) {
            (Some(env), _) => format!("Environment {} (context {})", env.name, env.context),
            (None, Some(context)) if self.environments => format!(
                "Context {context} (it matches no environment in environments.yaml: no environment rules apply)"
            ),
            (None, Some(context)) => format!("Context {context} (no environment)"),
            (None, None) if self.environments => "kubectl's current context (no environment: \
                 environments.yaml names no default; pick one with --env)"
                .to_owned(),
            (None, None) => "kubectl's current context (no environment)".to_owned(),
        }
    }

    /// The environment line, on stderr, before a command changes anything:
    /// `Environment prod (context prod-mumbai): a restart of tenant demo.`
    /// Printed once per command: the first call says it (a command that
    /// knows its change early says it before its reads and prompts), later
    /// calls (from [`Cluster::change`] and the other shared paths) are
    /// silent.
    pub fn announce(&self, what: &str) {
        if !self
            .announced
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            eprintln!("{}: {what}.", self.describe());
        }
    }

    /// The gate of an environment with required approvals
    /// (`environments.yaml` `approvals`): there a direct change (`what`) is
    /// refused, with the plan, approve and apply commands that make it (or
    /// why it has no plan), unless `break_glass` gives a reason. Called by
    /// each gated command's entry point before it reads or changes
    /// anything; never by [`Cluster::change`], which `cargo xtask apply`
    /// runs under an approved plan.
    ///
    /// A refusal is recorded in the audit log (for the tenants it names:
    /// an attempt at a direct production change is worth knowing of). A
    /// change let through prints a banner on stderr, makes every
    /// confirmation of the command insist on the name typed on a terminal
    /// (`--yes` stands in only without one), and has every audit entry of
    /// the command carry the reason.
    pub fn gate(&self, what: &Gated<'_>, break_glass: Option<&str>) -> anyhow::Result<()> {
        let reason = break_glass.map(str::trim);
        if reason == Some("") {
            crate::outcome::bail_unchanged!(
                "--break-glass needs a reason: say why this cannot wait for approvals, \
                 e.g. --break-glass \"INC-4711: bot down, approvers unreachable\""
            );
        }
        let roles = self
            .environment
            .as_ref()
            .map(|e| e.approvals.as_slice())
            .unwrap_or_default();
        let env = match (&self.environment, reason) {
            (Some(env), _) if !roles.is_empty() => env,
            (_, None) => return Ok(()),
            (Some(env), Some(_)) => crate::outcome::bail_unchanged!(
                "--break-glass is for an environment that requires approvals, and environment {} \
                 requires none (its `approvals` in environments.yaml is empty): there is nothing to \
                 break. Drop --break-glass and run the command again.",
                env.name
            ),
            (None, Some(_)) => crate::outcome::bail_unchanged!(
                "--break-glass is for an environment that requires approvals, and this run has no \
                 environment ({}), so none apply. Drop --break-glass and run the command again.",
                self.describe()
            ),
        };
        // The environment line comes first, as for every change; a batch
        // that would say its tenants after its read says what it was asked.
        self.announce(&what.describe());
        let roles = roles.join(", ");
        let Some(reason) = reason else {
            let refusal = anyhow::anyhow!(
                "environment {name} requires approvals ({roles}) for {what}, so it is not made directly.\n{how}\n\
                 In an emergency that cannot wait for approvals, break glass: run this command again with \
                 --break-glass \"REASON\"; you then type {typed} to confirm, and the reason is recorded \
                 in the audit log.",
                name = env.name,
                what = what.describe(),
                how = what.how(&self.suggested_arg(), &roles),
                typed = what.typed(),
            );
            for tenant in what.audit_names() {
                let _ = self.record::<()>(&tenant, Err(anyhow::anyhow!("{refusal:#}")));
            }
            return Err(crate::outcome::unchanged(refusal, Left::NothingChanged));
        };
        let banner = format!(
            "BREAK GLASS: {what} in environment {name}, without the approvals it requires ({roles}). \
             Reason: \"{reason}\". This is recorded in the audit log.",
            what = what.describe(),
            name = env.name,
        );
        eprintln!(
            "{}",
            crate::colour::paint(&banner, crate::colour::Tone::Bad)
        );
        let _ = self.break_glass.set(reason.to_owned());
        self.audit.authorise(crate::audit::Authority {
            break_glass: Some(reason.to_owned()),
            ..Default::default()
        });
        Ok(())
    }

    /// The reason given when [`Target::gate`] let this run's change
    /// through on `--break-glass`.
    pub fn breaking_glass(&self) -> Option<&str> {
        self.break_glass.get().map(String::as_str)
    }

    pub fn environment(&self) -> Option<&Environment> {
        self.environment.as_ref()
    }

    /// `--context`, else the environment's; None for kubectl's current one.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Records the outcome of a change to `tenant` in the audit log, with
    /// this target's environment and context, and passes it through.
    pub fn record<T>(&self, tenant: &str, result: anyhow::Result<T>) -> anyhow::Result<T> {
        self.audit.record(
            self.context.as_deref(),
            self.environment.as_ref().map(|e| e.name.as_str()),
            tenant,
            result,
        )
    }

    /// The audit log changes are recorded in.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The context as the audit log records it: its name, or `current`.
    pub fn audit_context(&self) -> &str {
        self.context.as_deref().unwrap_or("current")
    }

    /// The tenant as this environment serves it (its host names).
    /// See [`Environment::refuse_platform_hosts`]; nothing without an environment.
    pub fn refuse_platform_hosts(&self, spec: &TenantSpec) -> anyhow::Result<()> {
        match &self.environment {
            Some(env) => env.refuse_platform_hosts(spec),
            None => Ok(()),
        }
    }

    pub fn tenant_view(&self, spec: &TenantSpec) -> TenantSpec {
        match &self.environment {
            Some(env) => env.tenant_view(spec),
            None => spec.clone(),
        }
    }

    /// Locates kubectl for this target.
    pub fn connect(self) -> anyhow::Result<Cluster> {
        let kubectl = Kubectl::locate(
            self.kubectl_flag.as_deref(),
            std::env::var_os("KUBECTL").as_deref().map(Path::new),
            self.context.as_deref(),
            self.call_timeout,
        )?;
        Ok(Cluster {
            target: self,
            kubectl,
        })
    }
}

/// A direct change that an environment with required approvals refuses
/// (see [`Target::gate`]). Reads, `--plan`, backups, logs, unlocking and a
/// restart, suspension or resumption of one tenant are not gated.
pub enum Gated<'a> {
    /// `provision TENANT` that applies (not `--plan`, `--dry-run`, `--out`).
    Provision(&'a TenantName),
    /// `provision --all`.
    ProvisionAll,
    /// `admin offboard TENANT`.
    Offboard(&'a TenantName),
    /// `admin restore TENANT ARCHIVE`.
    Restore(&'a TenantName),
    /// `admin rotate TENANT`.
    Rotate(&'a TenantName),
    /// `admin restart|suspend|resume` of more than one tenant, `--all` or
    /// `--tier`: `command` as typed (`restart`), `action` as confirmations
    /// say it (`a restart`).
    Bulk {
        command: &'a str,
        action: &'a str,
        selection: &'a crate::flags::Selection,
    },
}

impl Gated<'_> {
    /// `provisioning of tenant demo`, `a restart of the tenants of tier small`.
    pub fn describe(&self) -> String {
        match self {
            Gated::Provision(t) => format!("provisioning of tenant {t}"),
            Gated::ProvisionAll => "provisioning of every committed tenant (--all)".to_owned(),
            Gated::Offboard(t) => format!("offboarding of tenant {t}"),
            Gated::Restore(t) => format!("a restore of tenant {t}"),
            Gated::Rotate(t) => format!("a credential rotation of tenant {t}"),
            Gated::Bulk {
                action, selection, ..
            } => match (&selection.tier, selection.all) {
                (_, true) => format!("{action} of every tenant (--all)"),
                (Some(tier), false) => format!("{action} of the tenants of tier {tier}"),
                (None, false) => format!(
                    "{action} of tenants {}",
                    selection
                        .tenants
                        .iter()
                        .map(TenantName::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        }
    }

    /// What the operator types to confirm a break-glass change: the
    /// tenant's name, or `all` for a batch (as its confirmation asks).
    fn typed(&self) -> String {
        match self {
            Gated::Provision(t) | Gated::Offboard(t) | Gated::Restore(t) | Gated::Rotate(t) => {
                format!("`{t}`")
            }
            Gated::ProvisionAll | Gated::Bulk { .. } => "`all`".to_owned(),
        }
    }

    /// The names a refusal is recorded under in the audit log: the
    /// tenants named, else `all` or `tier <T>` (nothing was read that
    /// would say which tenants those are).
    fn audit_names(&self) -> Vec<String> {
        match self {
            Gated::Provision(t) | Gated::Offboard(t) | Gated::Restore(t) | Gated::Rotate(t) => {
                vec![t.to_string()]
            }
            Gated::ProvisionAll => vec!["all".to_owned()],
            Gated::Bulk { selection, .. } => match (&selection.tier, selection.all) {
                (_, true) => vec!["all".to_owned()],
                (Some(tier), false) => vec![format!("tier {tier}")],
                (None, false) => {
                    let mut names: Vec<String> = selection
                        .tenants
                        .iter()
                        .map(TenantName::to_string)
                        .collect();
                    names.sort();
                    names.dedup();
                    names
                }
            },
        }
    }

    /// How the change is made instead, for the refusal: the plan, approve
    /// and apply commands (`env` is the run's ` --env NAME`), or why it has
    /// no plan.
    fn how(&self, env: &str, roles: &str) -> String {
        let approve = |file: &str| {
            format!(
                "  cargo xtask approve {file} --key ~/.ssh/id_ed25519    # once by each role: {roles} \
                 (different people, none of them the one who planned it)"
            )
        };
        let planned = |plan: String, file: &str| {
            format!(
                "Plan it, have the plan approved, then apply exactly what was approved:\n  {plan}\n{}\n  \
                 cargo xtask apply {file}{env}",
                approve(file)
            )
        };
        let unplanned = |why: &str| {
            format!("It cannot be planned ({why}): here it is made only by breaking glass.")
        };
        match self {
            Gated::Provision(t) => planned(
                format!(
                    "cargo xtask provision {t} --plan --save-plan {t}.plan{env}    # with this command's other options"
                ),
                &format!("{t}.plan"),
            ),
            Gated::ProvisionAll => planned(
                format!(
                    "cargo xtask provision --all --plan --save-plan fleet.plan{env}    # one plan of every tenant that would change"
                ),
                "fleet.plan",
            ),
            Gated::Offboard(t) => planned(
                format!(
                    "cargo xtask admin offboard {t} --plan --save-plan {t}-offboard.plan{env}    # with this command's other options"
                ),
                &format!("{t}-offboard.plan"),
            ),
            Gated::Restore(_) => {
                unplanned("a plan does not carry the archive's data, which restore writes")
            }
            Gated::Rotate(_) => {
                unplanned("the new credentials are made as it runs, and never shown in a plan")
            }
            Gated::Bulk {
                command, action, ..
            } => format!(
                "{} One tenant at a time needs no approvals: `cargo xtask admin {command} TENANT{env}`.",
                unplanned(&format!("{action} of several tenants has no plan form"))
            ),
        }
    }
}

impl crate::flags::BreakGlassArg {
    /// The `--break-glass` reason, as given.
    pub fn reason(&self) -> Option<&str> {
        self.break_glass.as_deref()
    }

    /// Refuses `--break-glass` on a form of a gated command that is not
    /// gated, where it would mean nothing: `why` says so (`--plan changes
    /// nothing`).
    pub fn refuse(&self, why: &str) -> anyhow::Result<()> {
        if self.break_glass.is_some() {
            crate::outcome::bail_unchanged!(
                "--break-glass means nothing here: {why}. Drop --break-glass and run the command again."
            );
        }
        Ok(())
    }
}

/// A command's connection to the cluster.
pub struct Cluster {
    target: Target,
    kubectl: Kubectl,
}

/// A change to one tenant, as the operator asked for it.
pub struct Change<'a> {
    pub tenant: &'a TenantName,
    /// What it is, for the confirmation: `a restart`, `provisioning`.
    pub action: &'a str,
    /// `--yes`: stands in for typing the name where no terminal can ask.
    pub yes: bool,
    /// Set for changes that destroy data (restore, offboard): they need
    /// the name typed in every environment.
    pub destructive: Option<Destructive>,
}

/// What a destructive change says before it asks, and when it refuses.
pub struct Destructive {
    pub explanation: String,
    pub refusal: String,
}

impl<'a> Change<'a> {
    pub fn routine(tenant: &'a TenantName, action: &'a str, yes: bool) -> Change<'a> {
        Change {
            tenant,
            action,
            yes,
            destructive: None,
        }
    }
}

impl Cluster {
    /// [`Target::resolve`] then [`Target::connect`].
    pub fn connect(args: &ClusterArgs, root: &Path) -> anyhow::Result<Cluster> {
        Target::resolve(args, root)?.connect()
    }

    pub fn kubectl(&self) -> &Kubectl {
        &self.kubectl
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `context \`x\`` or `the current context`, for messages.
    pub fn label(&self) -> String {
        self.kubectl.context_label()
    }

    /// One change: `check` reads what the change needs (and may refuse),
    /// then the confirmation, then `make`. A failure before `make` changed
    /// nothing, and says so. The outcome is recorded in the audit log,
    /// whatever it is.
    ///
    /// The tenant's lock (see `lock.rs`) is taken first and released on
    /// every outcome: a second command on the tenant is refused before it
    /// reads anything.
    pub fn change<P, T>(
        &self,
        change: &Change<'_>,
        check: impl FnOnce(&Kubectl) -> anyhow::Result<P>,
        make: impl FnOnce(&Kubectl, P) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.change_locked(change, false, check, make)
    }

    /// [`Cluster::change`] that also holds the claims lock, from reading
    /// the other tenants' domains and numbers to applying its own
    /// (provision): two provisions can never claim one value twice.
    pub fn change_claiming<P, T>(
        &self,
        change: &Change<'_>,
        check: impl FnOnce(&Kubectl) -> anyhow::Result<P>,
        make: impl FnOnce(&Kubectl, P) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.change_locked(change, true, check, make)
    }

    fn change_locked<P, T>(
        &self,
        change: &Change<'_>,
        claims: bool,
        check: impl FnOnce(&Kubectl) -> anyhow::Result<P>,
        make: impl FnOnce(&Kubectl, P) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.target
            .announce(&format!("{} of tenant {}", change.action, change.tenant));
        let result = self
            .hold_claims_if(claims)
            .and_then(|claims| {
                crate::lock::hold(&self.kubectl, Subject::tenant(change.tenant))
                    .map(|tenant| (claims, tenant))
            })
            .left_unchanged(Left::NothingChanged)
            .and_then(|(claims, tenant)| {
                let result = check(&self.kubectl)
                    .and_then(|p| self.confirm(change).map(|()| p))
                    .left_unchanged(Left::NothingChanged)
                    .and_then(|p| make(&self.kubectl, p));
                let result = tenant.finish(result);
                match claims {
                    Some(claims) => claims.finish(result),
                    None => result,
                }
            });
        self.record(change.tenant.as_str(), result)
    }

    fn hold_claims_if(&self, claims: bool) -> anyhow::Result<Option<Held<'_>>> {
        claims.then(|| self.hold_claims()).transpose()
    }

    /// The claims lock, for a batch that holds it across all its tenants.
    pub fn hold_claims(&self) -> anyhow::Result<Held<'_>> {
        crate::lock::hold(&self.kubectl, Subject::Claims)
    }

    /// The locks of a batch that changes many tenants at once (`provision
    /// --all`): the claims lock, when `claims`, and every one of
    /// `tenants`', taken in one kubectl call ([`crate::lock::Many`]). A
    /// tenant whose lock another command holds is refused on its own,
    /// changing nothing; a claims lock another command holds refuses the
    /// whole batch (the tenants' locks go again at once).
    pub fn hold_batch(
        &self,
        tenants: &[TenantName],
        claims: bool,
    ) -> anyhow::Result<(crate::lock::Many<'_>, Vec<(TenantName, anyhow::Error)>)> {
        let mut subjects: Vec<Subject> = Vec::new();
        if claims {
            subjects.push(Subject::Claims);
        }
        subjects.extend(tenants.iter().map(Subject::tenant));
        let (held, refused) = crate::lock::hold_many(&self.kubectl, subjects)?;
        let mut out = Vec::new();
        for (subject, refusal) in refused {
            match subject {
                Subject::Claims => return Err(refusal),
                Subject::Tenant(name) => {
                    if let Some(tenant) = tenants.iter().find(|t| t.as_str() == name) {
                        out.push((tenant.clone(), refusal));
                    }
                }
            }
        }
        Ok((held, out))
    }

    /// The confirmation of a change to many tenants at once (typing `all`,
    /// see [`Cluster::change_many`]); a refusal is recorded for every one
    /// of `tenants`.
    pub fn confirm_batch(
        &self,
        action: &str,
        what: &str,
        yes: bool,
        tenants: &[TenantName],
    ) -> anyhow::Result<()> {
        self.target.announce(&format!("{action} of {what}"));
        if let Err(refused) = self.confirm_all(action, what, yes) {
            for tenant in tenants {
                let _ = self.record::<()>(tenant.as_str(), Err(anyhow::anyhow!("{refused:#}")));
            }
            return Err(refused);
        }
        Ok(())
    }

    /// The same change to many tenants under one confirmation (typing
    /// `all`), `jobs` at a time; each tenant's outcome is recorded on its
    /// own and passed to `done` as it comes. A refused confirmation is
    /// recorded for every tenant.
    pub fn change_each<I: Send, T: Send>(
        &self,
        action: &str,
        yes: bool,
        items: Vec<(TenantName, I)>,
        jobs: usize,
        run: impl Fn(&Kubectl, &TenantName, I) -> anyhow::Result<T> + Sync,
        done: impl Fn(&TenantName, &anyhow::Result<T>) + Sync,
    ) -> anyhow::Result<Vec<(TenantName, anyhow::Result<T>)>> {
        let what = format!("all {} tenants", items.len());
        let results = self.change_many(action, &what, yes, items, jobs, run, done)?;
        Ok(results
            .into_iter()
            .map(|(tenant, result)| {
                let result = result.unwrap_or_else(|| {
                    Err(anyhow::anyhow!(
                        "not started: interrupted (Ctrl-C or a termination signal)"
                    ))
                });
                (tenant, result)
            })
            .collect())
    }

    /// [`Cluster::change_each`] for any selection of tenants: `what` names
    /// them for the confirmation (`all 12 tenants`, `the 3 tenants of tier
    /// small`, `2 tenants: kalyan, mylapore`). After an interrupt (see
    /// `interrupt.rs`) no further tenant is started: those are None, and
    /// not recorded, as nothing was done to them.
    #[allow(clippy::too_many_arguments)]
    pub fn change_many<I: Send, T: Send>(
        &self,
        action: &str,
        what: &str,
        yes: bool,
        items: Vec<(TenantName, I)>,
        jobs: usize,
        run: impl Fn(&Kubectl, &TenantName, I) -> anyhow::Result<T> + Sync,
        done: impl Fn(&TenantName, &anyhow::Result<T>) + Sync,
    ) -> anyhow::Result<Vec<(TenantName, Option<anyhow::Result<T>>)>> {
        let tenants: Vec<TenantName> = items.iter().map(|(t, _)| t.clone()).collect();
        self.confirm_batch(action, what, yes, &tenants)?;
        Ok(crate::pool::run(items, jobs, |(tenant, item)| {
            if crate::interrupt::interrupted() {
                return (tenant, None);
            }
            let result = crate::lock::hold(&self.kubectl, Subject::tenant(&tenant))
                .left_unchanged(Left::NothingChanged)
                .and_then(|lock| lock.finish(run(&self.kubectl, &tenant, item)));
            let result = self.record(tenant.as_str(), result);
            done(&tenant, &result);
            (tenant, Some(result))
        }))
    }

    /// Breaks a lock (`admin unlock`): the one change made without taking
    /// the lock first. Confirmed as a destructive change (the name typed,
    /// or `--yes` where the environment allows), then `make`; recorded in
    /// the audit log under `audit_name` (the tenant, or `claims`), a
    /// success as `ok: {broken}` (whose lock it broke).
    pub fn break_lock<T>(
        &self,
        audit_name: &str,
        explanation: &str,
        broken: &str,
        yes: bool,
        make: impl FnOnce(&Kubectl) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.target
            .announce(&format!("breaking the lock on {audit_name}"));
        let strict = self.target.environment.as_ref().is_some_and(|e| e.confirm);
        let result = typed(
            audit_name,
            explanation,
            &format!("breaking the lock on {audit_name} needs confirmation"),
            yes,
            strict,
        )
        .and_then(|()| make(&self.kubectl));
        self.target.audit.record_noting(
            self.target.context.as_deref(),
            self.target.environment.as_ref().map(|e| e.name.as_str()),
            audit_name,
            result,
            Some(broken),
        )
    }

    /// Records the outcome of a change to `tenant` in the audit log (a
    /// local file, no kubectl) and passes it through.
    pub fn record<T>(&self, tenant: &str, result: anyhow::Result<T>) -> anyhow::Result<T> {
        self.target.record(tenant, result)
    }

    /// The one confirmation rule. An environment with `confirm: true`
    /// (production) needs the tenant name typed for every change; in a
    /// terminal nothing stands in for typing it, without one `--yes` does.
    /// A change let through the gate on `--break-glass` (see
    /// [`Target::gate`]) insists the same way in any environment. A
    /// destructive change needs the name typed in any environment, and
    /// `--yes` stands in for it wherever neither insists.
    fn confirm(&self, change: &Change<'_>) -> anyhow::Result<()> {
        let env = self.target.environment.as_ref().filter(|e| e.confirm);
        let glass = self.glass();
        if change.destructive.is_none() && env.is_none() && glass.is_none() {
            return Ok(());
        }
        // The environment line (see [`Target::announce`]) said where and
        // what just before.
        let explanation: Vec<String> = [
            change.destructive.as_ref().map(|d| d.explanation.clone()),
            env.map(|env| format!("Environment {} needs every change confirmed.", env.name)),
            glass.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let refusal = match (&change.destructive, env, &glass) {
            (_, _, Some(_)) => format!(
                "breaking glass needs confirmation for {} of tenant {}",
                change.action, change.tenant
            ),
            (_, Some(env), None) => format!(
                "environment {} needs confirmation for {}",
                env.name, change.action
            ),
            (Some(d), None, None) => d.refusal.clone(),
            (None, None, None) => unreachable!("returned above"),
        };
        typed(
            change.tenant.as_str(),
            &explanation.join(" "),
            &refusal,
            change.yes,
            env.is_some() || glass.is_some(),
        )
    }

    /// What a confirmation says when the gate was broken: None otherwise.
    fn glass(&self) -> Option<String> {
        let env = self.target.environment.as_ref()?;
        self.target.breaking_glass().map(|_| {
            format!(
                "You are breaking glass: this change is made without the approvals environment {} requires.",
                env.name
            )
        })
    }

    /// The confirmation of a batch: once, `all` typed, whatever the
    /// selection; the prompt and the refusal say which tenants.
    fn confirm_all(&self, action: &str, what: &str, yes: bool) -> anyhow::Result<()> {
        let env = self.target.environment.as_ref();
        let insists = env.filter(|e| e.confirm);
        let glass = self.glass();
        let (Some(env), true) = (env, insists.is_some() || glass.is_some()) else {
            return Ok(());
        };
        let mut explanation = Vec::new();
        match insists {
            Some(env) => explanation.push(format!(
                "Environment {} needs every change confirmed, once for {what}.",
                env.name
            )),
            None => explanation.push(format!("One confirmation for {what}.")),
        }
        explanation.extend(glass);
        let refusal = match self.target.breaking_glass() {
            Some(_) => format!("breaking glass needs confirmation for {action} of {what}"),
            None => format!(
                "environment {} needs confirmation for {action} of {what}",
                env.name
            ),
        };
        typed("all", &explanation.join(" "), &refusal, yes, true)
    }
}

/// Asks for `expected` typed, or takes `--yes` as allowed (see [`Cluster::confirm`]).
fn typed(
    expected: &str,
    explanation: &str,
    refusal: &str,
    yes: bool,
    strict: bool,
) -> anyhow::Result<()> {
    let terminal = std::io::stdin().is_terminal();
    if yes && !(strict && terminal) {
        return Ok(());
    }
    if !terminal {
        crate::outcome::bail_unchanged!(
            "{refusal}: run it in a terminal to type `{expected}`, or pass --yes"
        );
    }
    crate::prompt::ask_typed(expected, explanation).left_unchanged(Left::NothingChanged)
}
