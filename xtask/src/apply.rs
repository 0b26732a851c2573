//! `cargo xtask apply FILE`: a saved plan, checked against its approvals,
//! its expiry and the cluster it was made for, then applied exactly as
//! planned by the command that planned it (`provision::apply_plan`), which
//! also checks, under the tenant's lock, that nothing changed since; a plan
//! of `provision --all` through the batch path (`provision::apply_fleet_plan`),
//! every planned tenant checked under the batch's locks before any is applied.

use std::path::Path;

use anyhow::Context;

use crate::audit::Authority;
use crate::cluster::Target;
use crate::flags;
use crate::outcome::{Left, LeftUnchanged};
use crate::planfile::{Action, PlanFile};
use crate::repo::RepoPaths;

impl flags::Apply {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let file = PlanFile::read(&self.file)?;
        let args = self.where_planned(&file)?;
        let result = self.apply(&file, &args, root);
        // A refusal before any tenant's lock (a bad signature, an expired
        // plan, another cluster, changed inputs) is recorded too, with the
        // plan's digest: an attempt to apply a tampered plan leaves a trace.
        if let Err(e) = &result
            && !crate::audit::recorded_any()
            && let Ok(target) = Target::resolve(&args, root)
        {
            target.audit().authorise(Authority {
                plan: Some(file.digest()),
                ..Authority::default()
            });
            for planned in &file.plan.tenants {
                let _ = target.record::<()>(&planned.tenant, Err(anyhow::anyhow!("{e:#}")));
            }
        }
        result
    }

    fn apply(&self, file: &PlanFile, args: &flags::ClusterArgs, root: &Path) -> anyhow::Result<()> {
        let plan = &file.plan;
        let target = Target::resolve(args, root)?;
        let tenants: Vec<&str> = plan.tenants.iter().map(|t| t.tenant.as_str()).collect();
        target.announce(&match plan.all {
            // A fleet's plan may hold a thousand tenants: counted, not named.
            true => format!(
                "the apply of plan {} ({} --all: {} tenant{})",
                file.path.display(),
                plan.action.as_str(),
                tenants.len(),
                if tenants.len() == 1 { "" } else { "s" }
            ),
            false => format!(
                "the apply of plan {} ({} of tenant {})",
                file.path.display(),
                plan.action.as_str(),
                tenants.join(", ")
            ),
        });
        if tenants.is_empty() {
            anyhow::bail!("{} plans no tenant: nothing to apply", file.path.display());
        }
        // Applied before (as this audit log says): its objects have moved on.
        let digest = file.digest();
        if let Some(done) = target
            .audit()
            .read()?
            .into_iter()
            .find(|e| e.plan.as_deref() == Some(digest.as_str()) && e.result.starts_with("ok"))
        {
            crate::outcome::bail_unchanged!(
                "plan {} was applied already, at {} by {} (tenant {}): a plan applies once. For a further \
                 change, plan again.",
                file.path.display(),
                done.time,
                done.operator,
                done.tenant
            );
        }
        // Expiry, then the approvals: both before the cluster is asked anything.
        let now = crate::clock::now()?;
        let expires = humantime::parse_rfc3339(&plan.expires_at).with_context(|| {
            format!(
                "{}: expires_at `{}` is not an RFC 3339 time",
                file.path.display(),
                plan.expires_at
            )
        })?;
        if now > expires {
            crate::outcome::bail_unchanged!(
                "plan {} expired at {} (planned at {} by {}): plan again, and have the new plan approved",
                file.path.display(),
                plan.expires_at,
                plan.planned_at,
                plan.planned_by
            );
        }
        let required = target
            .environment()
            .map(|e| e.approvals.clone())
            .unwrap_or_default();
        let approvals = if required.is_empty() && file.signatures.is_empty() {
            Vec::new()
        } else {
            let approvers =
                crate::signing::Approvers::load(self.approvers.approvers.as_deref(), root)?;
            crate::signing::check(file, &approvers, &required)
                .left_unchanged(Left::NothingChanged)?
        };
        let cluster = target.connect()?;
        let here = crate::archive::cluster_uid(cluster.kubectl())?;
        if here != plan.cluster {
            crate::outcome::bail_unchanged!(
                "plan {} is for another cluster: it was made on cluster {} ({}), and {} is cluster {here}. \
                 Apply it where it was planned, or plan again here.",
                file.path.display(),
                plan.cluster,
                plan.context
                    .as_deref()
                    .unwrap_or("kubectl's current context"),
                cluster.label()
            );
        }
        cluster.target().audit().authorise(Authority {
            plan: Some(digest),
            approvers: approvals.iter().map(|a| a.describe()).collect(),
            break_glass: None,
        });
        if !approvals.is_empty() {
            eprintln!(
                "Approved by {}.",
                approvals
                    .iter()
                    .map(|a| format!("{} as {}", a.principal, a.roles.join(" and ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let paths = RepoPaths::new(root, &self.repo_args(plan));
        match plan.action {
            // Made by `provision --all --plan`: applied as `--all` applies.
            Action::Provision if plan.all => crate::provision::apply_fleet_plan(
                &cluster,
                &paths,
                file,
                self.rollout.timeout.clone(),
            ),
            Action::Provision => {
                for planned in &plan.tenants {
                    crate::provision::apply_plan(
                        &cluster,
                        &paths,
                        file,
                        planned,
                        self.rollout.timeout.clone(),
                    )?;
                }
                Ok(())
            }
            Action::Offboard => {
                for planned in &plan.tenants {
                    crate::admin::apply_offboard_plan(
                        &cluster,
                        root,
                        file,
                        planned,
                        Some(paths.tenants.as_path()),
                    )?;
                }
                Ok(())
            }
        }
    }

    /// The repository's files as the plan was made from them: `--platform`,
    /// `--templates`, `--tenants-dir` when given, else where the plan read
    /// them (when they still exist), else the repository's own.
    fn repo_args(&self, plan: &crate::planfile::Plan) -> flags::RepoArgs {
        use crate::planfile::InputFiles;
        let files = &plan.inputs.files;
        flags::RepoArgs {
            platform: self
                .repo
                .platform
                .clone()
                .or_else(|| InputFiles::existing(&files.platform)),
            templates: self
                .repo
                .templates
                .clone()
                .or_else(|| InputFiles::existing(&files.templates)),
            tenants_dir: self
                .repo
                .tenants_dir
                .clone()
                .or_else(|| InputFiles::existing(&files.tenants)),
        }
    }

    /// The cluster arguments of the apply: the plan's environment (or
    /// context). `--env`/`--context` may only repeat them.
    fn where_planned(&self, file: &PlanFile) -> anyhow::Result<flags::ClusterArgs> {
        let plan = &file.plan;
        let mut args = flags::ClusterArgs {
            kubectl: self.cluster.kubectl.clone(),
            context: self.cluster.context.clone(),
            kubectl_timeout: self.cluster.kubectl_timeout.clone(),
            audit_log: self.cluster.audit_log.clone(),
            env: self.cluster.env.clone(),
        };
        match (&plan.environment, &args.env) {
            (Some(planned), Some(given)) if planned != given => anyhow::bail!(
                "plan {} is for environment {planned}, not {given}: drop --env (the plan's environment is \
                 used), or plan again for {given}",
                file.path.display()
            ),
            (Some(planned), _) => args.env = Some(planned.clone()),
            (None, Some(given)) => anyhow::bail!(
                "plan {} was made with no environment, not for {given}: drop --env, or plan again with \
                 --env {given}",
                file.path.display()
            ),
            (None, None) => {}
        }
        match (&plan.context, &args.context) {
            (Some(planned), Some(given)) if planned != given => anyhow::bail!(
                "plan {} was made with context {planned}, not {given}: drop --context, or plan again",
                file.path.display()
            ),
            (Some(planned), None) if plan.environment.is_none() => {
                args.context = Some(planned.clone())
            }
            _ => {}
        }
        Ok(args)
    }
}
