//! `cargo xtask approve` and `cargo xtask plan show|body`: signing saved
//! plans and reading them for review.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::flags;
use crate::output::{OutputFormat, escape_controls, table};
use crate::planfile::PlanFile;
use crate::signing::{self, Approver, Approvers, Review, SigningKey};

impl flags::Approve {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let file = PlanFile::read(&self.file)?;
        let approvers = Approvers::load(self.approvers.approvers.as_deref(), root)?;
        let now = crate::clock::now()?;
        let shown = self.file.display();
        if signing::expired(&file.plan, now)? {
            bail!(
                "{shown} expired at {}: an expired plan is neither approved nor applied; plan again \
                 (`{}`, saving to a new file) and have the new plan approved",
                file.plan.expires_at,
                escape_controls(&file.plan.command)
            );
        }
        let required = signing::required_roles(&file.plan)?;
        let (signature, approver) = match (&self.key, &self.signature) {
            (Some(path), _) => {
                let key = SigningKey::open(path)?;
                let Some(approver) = approvers.find(key.public()) else {
                    bail!(
                        "the key {} ({}) is not in the approvers file {}: only listed keys approve. \
                         To become an approver, add a line `YOUR-EMAIL namespaces=\"{}\" <the contents \
                         of {}.pub> roles=ROLE` to it in a reviewed change",
                        path.display(),
                        key.fingerprint(),
                        approvers.path().display(),
                        signing::NAMESPACE,
                        path.display()
                    );
                };
                refuse_signer(&file, &approvers, approver, now)?;
                (
                    key.sign_plan(file.body.as_bytes(), Some(&self.file))?,
                    approver,
                )
            }
            (None, Some(path)) => {
                let armored = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the signature {}", path.display()))?;
                let approver = signing::verify(&armored, file.body.as_bytes(), &approvers, now)
                    .map_err(|why| {
                        let hint = match why.contains("does not match the plan's body") {
                            true => format!(
                                " (a signature made by ssh-keygen must sign exactly the output of \
                                 `cargo xtask plan body {shown}`)"
                            ),
                            false => String::new(),
                        };
                        anyhow::anyhow!(
                            "the signature {} cannot approve {shown}: {why}{hint}",
                            path.display()
                        )
                    })?;
                refuse_signer(&file, &approvers, approver, now)?;
                (armored.trim_end().to_owned() + "\n", approver)
            }
            (None, None) => bail!(
                "approving needs your signature: give --key PATH (your SSH private key, e.g. \
                 ~/.ssh/id_ed25519), or --signature FILE (made by `ssh-keygen -Y sign` over `cargo xtask \
                 plan body {shown}`)"
            ),
        };
        // A key whose roles are none the plan needs would add a signature
        // that approves nothing (a misspelt role in approvers, most often).
        if !required.is_empty() && !approver.roles.iter().any(|r| required.contains(r)) {
            bail!(
                "{} ({}) holds {} in {}, none of the roles environment {} requires ({}): nothing was \
                 signed. If a role is misspelt there, correct the approvers file",
                approver.principal,
                approver.fingerprint,
                approver.roles.join(", "),
                approvers.path().display(),
                file.plan.environment.as_deref().unwrap_or("(none)"),
                required.join(", ")
            );
        }
        // Another approver may have signed meanwhile: keep their signature,
        // and sign only the body that was read.
        let mut current = PlanFile::read(&self.file)?;
        if current.body != file.body {
            bail!(
                "{shown} changed while it was being signed: its plan is no longer the one you \
                 approved. Read it again (`cargo xtask plan show {shown}`) and approve again"
            );
        }
        refuse_signer(&current, &approvers, approver, now)?;
        current.signatures.push(signature);
        crate::files::write_atomic(&self.file, current.text().as_bytes())
            .with_context(|| format!("cannot write {shown}"))?;
        let review = signing::review(&current, &approvers, &required)?;
        let filled = review
            .approvals
            .iter()
            .find(|a| a.principal == approver.principal)
            .map(|a| a.roles.clone())
            .unwrap_or_default();
        let mut out = match filled.as_slice() {
            [] => format!(
                "Approved {shown}: {} ({}), who fills none of the roles the plan needs (their roles: {}).\n",
                approver.principal,
                approver.fingerprint,
                approver.roles.join(", ")
            ),
            roles => format!(
                "Approved {shown}: {} as {} ({}).\n",
                approver.principal,
                roles.join(", "),
                approver.fingerprint
            ),
        };
        out.push_str(&next_steps(&file, &review, &approvers, &self.file));
        std::io::stdout().write_all(out.as_bytes())?;
        Ok(())
    }
}

/// Refuses a signer who may not add a signature to `file`: the planner,
/// one whose key cannot sign now, or one who already approved it.
fn refuse_signer(
    file: &PlanFile,
    approvers: &Approvers,
    approver: &Approver,
    now: std::time::SystemTime,
) -> anyhow::Result<()> {
    if let Some(why) = approver.unusable(approvers, now) {
        bail!("{why}");
    }
    if signing::same_person(&approver.principal, &file.plan.planned_by) {
        bail!(
            "{} planned this plan, and the planner cannot approve their own plan: ask the other \
             approvers to review and approve it",
            approver.principal
        );
    }
    for (i, armored) in file.signatures.iter().enumerate() {
        let Ok(sig) = signing::parse_signature(armored) else {
            continue;
        };
        if sig.fingerprint == approver.fingerprint {
            bail!(
                "the key {} of {} already approved this plan (signature {}): nothing to add",
                approver.fingerprint,
                approver.principal,
                i + 1
            );
        }
        if let Some(other) = approvers.find(sig.sig.public_key())
            && other.principal == approver.principal
        {
            bail!(
                "{} already approved this plan with another key ({}, signature {}): one person \
                 approves once, whichever key they use",
                approver.principal,
                other.fingerprint,
                i + 1
            );
        }
    }
    Ok(())
}

/// What the plan still needs, and the command that comes next.
fn next_steps(file: &PlanFile, review: &Review, approvers: &Approvers, path: &Path) -> String {
    let shown = path.display();
    let env = file.plan.environment.as_deref().unwrap_or("(none)");
    if let Some(why) = review.refusal.as_deref()
        && review.still_needed.is_empty()
    {
        return format!(
            "`cargo xtask apply {shown}{}` will refuse this plan: {why}\n",
            file.plan.suggested_arg()
        );
    }
    if review.still_needed.is_empty() {
        let who = review
            .approvals
            .iter()
            .filter(|a| !a.roles.is_empty())
            .map(|a| format!("{} as {}", a.principal, a.roles.join(", ")))
            .collect::<Vec<_>>();
        let have = match (review.required.is_empty(), who.is_empty()) {
            (true, _) => format!("Environment {env} requires no approvals."),
            (false, _) => format!(
                "The plan has the approvals environment {env} requires: {}.",
                who.join("; ")
            ),
        };
        return format!(
            "{have}\nNext: cargo xtask apply {shown}{}\n",
            file.plan.suggested_arg()
        );
    }
    let mut out = String::new();
    for role in &review.still_needed {
        let holders: Vec<String> = approvers
            .holders(role)
            .into_iter()
            .filter(|p| !signing::same_person(p, &file.plan.planned_by))
            .filter(|p| !review.approvals.iter().any(|a| &a.principal == p))
            .collect();
        out.push_str(&match holders.as_slice() {
            [] => format!(
                "Still needed: {role} (nobody else in {} holds it: add an approver with roles={role}).\n",
                approvers.path().display()
            ),
            people => format!("Still needed: {role} ({}).\n", people.join(" or ")),
        });
    }
    if let Some(why) = review.refusal.as_deref()
        && why.contains("signature")
        && why.contains("is bad")
    {
        out.push_str(&format!("Note: {why}\n"));
    }
    out.push_str(&format!(
        "Next: each of them reads `cargo xtask plan show {shown}` and runs `cargo xtask approve \
         {shown} --key KEY`.\n"
    ));
    out
}

impl flags::PlanCommand {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        match self.command {
            flags::PlanSubcommand::Show(cmd) => cmd.run(root),
            flags::PlanSubcommand::Body(cmd) => {
                let file = PlanFile::read(&cmd.file)?;
                std::io::stdout().write_all(file.body.as_bytes())?;
                Ok(())
            }
        }
    }
}

/// A plan as `plan show -o json` prints it.
#[derive(Debug, Serialize)]
struct PlanReview {
    file: String,
    digest: String,
    action: &'static str,
    environment: Option<String>,
    context: Option<String>,
    cluster: String,
    planned_by: String,
    planned_at: String,
    expires_at: String,
    expired: bool,
    command: String,
    tenants: Vec<TenantReview>,
    /// The roles the plan's environment requires.
    required: Vec<String>,
    signatures: Vec<signing::SignatureReport>,
    /// The good approvals, one per person, with the roles each fills.
    approvals: Vec<signing::Approval>,
    /// Roles nobody fills yet.
    still_needed: Vec<String>,
    /// What stands between the plan and `cargo xtask apply` (expiry, bad
    /// signatures, missing roles); empty when it is ready.
    blocking: Vec<String>,
    ready: bool,
}

#[derive(Debug, Serialize)]
struct TenantReview {
    tenant: String,
    namespace: String,
    /// The config an apply saves and renders (provision plans).
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<crate::tenant::TenantValues>,
    /// The options the apply repeats (offboarding: what it deletes).
    options: crate::planfile::Options,
    objects: Vec<ObjectReview>,
    confirmed: Vec<String>,
    diff: String,
}

#[derive(Debug, Serialize)]
struct ObjectReview {
    action: &'static str,
    kind: String,
    name: String,
    namespace: Option<String>,
}

impl flags::PlanShow {
    fn run(self, root: &Path) -> anyhow::Result<()> {
        let file = PlanFile::read(&self.file)?;
        let approvers = Approvers::load(self.approvers.approvers.as_deref(), root)?;
        let required = signing::required_roles(&file.plan)?;
        let review = signing::review(&file, &approvers, &required)?;
        let now = crate::clock::now()?;
        let expired = signing::expired(&file.plan, now)?;
        let plan = &file.plan;
        let mut blocking = Vec::new();
        if expired {
            blocking.push(format!(
                "the plan expired at {}: plan again",
                plan.expires_at
            ));
        }
        if let Some(why) = &review.refusal {
            blocking.push(why.clone());
        }
        // Applied already, as this repository's audit log says: a plan
        // applies once.
        let digest = file.digest();
        if let Some(done) = crate::audit::AuditLog::at(None, root)
            .read()
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.plan.as_deref() == Some(digest.as_str()) && e.result.starts_with("ok"))
        {
            blocking.push(format!(
                "it was applied already, at {} by {}: a plan applies once",
                done.time, done.operator
            ));
        }
        let data = PlanReview {
            file: self.file.display().to_string(),
            digest,
            action: plan.action.as_str(),
            environment: plan.environment.clone(),
            context: plan.context.clone(),
            cluster: plan.cluster.clone(),
            planned_by: plan.planned_by.clone(),
            planned_at: plan.planned_at.clone(),
            expires_at: plan.expires_at.clone(),
            expired,
            command: plan.command.clone(),
            tenants: plan
                .tenants
                .iter()
                .map(|t| TenantReview {
                    tenant: t.tenant.clone(),
                    namespace: t.namespace.clone(),
                    values: t.values.clone(),
                    options: t.options.clone(),
                    objects: t
                        .objects
                        .iter()
                        .map(|o| ObjectReview {
                            action: o.action.as_str(),
                            kind: o.kind.clone(),
                            name: o.name.clone(),
                            namespace: o.namespace.clone(),
                        })
                        .collect(),
                    confirmed: t.confirmed.clone(),
                    diff: t.diff.clone(),
                })
                .collect(),
            required: review.required.clone(),
            signatures: review.signatures.clone(),
            approvals: review.approvals.clone(),
            still_needed: review.still_needed.clone(),
            ready: blocking.is_empty(),
            blocking,
        };
        match self.output.format {
            OutputFormat::Table => {
                let expires_in = humantime::parse_rfc3339(&plan.expires_at)
                    .ok()
                    .map(|t| match t.duration_since(now) {
                        Ok(left) => {
                            format!("in {}", crate::clock::format_age(Some(left.as_secs())))
                        }
                        Err(past) => format!(
                            "expired {} ago",
                            crate::clock::format_age(Some(past.duration().as_secs()))
                        ),
                    })
                    .unwrap_or_default();
                let text = show_table(&data, &expires_in, &self.file, &plan.suggested_arg());
                std::io::stdout().write_all(text.as_bytes())?;
                Ok(())
            }
            format => crate::output::print_structured(format, &data),
        }
    }
}

/// The review as text. Everything that came from the plan file is escaped:
/// a plan is someone else's file, and must not drive the terminal.
/// The plan shown as text; `apply_arg` is the plan's ` --env NAME` for the
/// suggested apply ([`crate::planfile::Plan::suggested_arg`]).
fn show_table(data: &PlanReview, expires_in: &str, path: &Path, apply_arg: &str) -> String {
    let e = |s: &str| escape_controls(s);
    let shown = path.display();
    let mut out = String::new();
    let mut head = vec![
        ("plan", format!("{} ({})", e(&data.file), data.digest)),
        ("action", data.action.to_owned()),
        (
            "environment",
            e(data.environment.as_deref().unwrap_or("(none)")),
        ),
        ("context", e(data.context.as_deref().unwrap_or("(current)"))),
        (
            "cluster",
            format!("{} (kube-system namespace UID)", e(&data.cluster)),
        ),
        ("planned by", e(&data.planned_by)),
        ("planned at", e(&data.planned_at)),
        (
            "expires at",
            format!("{} ({expires_in})", e(&data.expires_at)),
        ),
        ("command", e(&data.command)),
    ];
    if data.expired {
        head[7].1 = format!("{} (EXPIRED, {expires_in})", e(&data.expires_at));
    }
    for (k, v) in head {
        out.push_str(&format!("{:<12} {v}\n", format!("{k}:")));
    }
    for t in &data.tenants {
        out.push_str(&format!(
            "\nTenant {} (namespace {}):\n",
            e(&t.tenant),
            e(&t.namespace)
        ));
        if let Some(values) = &t.values {
            // What the approvers approve the tenant to be: its MLA, number,
            // domains, tier and site, as the apply saves them.
            out.push_str("  Config (saved to the tenant's config file by the apply):\n");
            let yaml = serde_saphyr::to_string(values).unwrap_or_default();
            for line in yaml.lines() {
                out.push_str(format!("    {}", e(line)).trim_end());
                out.push('\n');
            }
        }
        let options = &t.options;
        let flags: Vec<String> = [
            ("--reconfigure", options.reconfigure),
            ("--force-conflicts", options.force_conflicts),
            ("--delete-data", options.delete_data),
            ("--reserve", options.reserve),
            ("--no-backup", options.no_backup),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(flag, _)| flag.to_owned())
        .chain(
            options
                .backups
                .as_ref()
                .map(|b| format!("--backups {}", e(b))),
        )
        .chain(
            options
                .from_cluster
                .as_ref()
                .map(|c| format!("--from-cluster {}", e(c))),
        )
        .collect();
        if !flags.is_empty() {
            out.push_str(&format!("  Options: {}\n", flags.join(" ")));
        }
        let rows: Vec<Vec<String>> = t
            .objects
            .iter()
            .map(|o| {
                vec![
                    o.action.to_owned(),
                    e(&format!("{}/{}", o.kind.to_lowercase(), o.name)),
                ]
            })
            .collect();
        for line in table(&["ACTION", "OBJECT"], &rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
        if !t.confirmed.is_empty() {
            out.push_str("  Confirmed changes:\n");
            for c in &t.confirmed {
                out.push_str(&format!("    {}\n", e(c)));
            }
        }
        if !t.diff.is_empty() {
            out.push_str("  Diff:\n");
            for line in t.diff.lines() {
                out.push_str(format!("    {}", e(line)).trim_end());
                out.push('\n');
            }
        }
    }
    out.push_str(&match data.required.as_slice() {
        [] => format!(
            "\nApprovals (environment {} requires none):\n",
            e(data.environment.as_deref().unwrap_or("(none)"))
        ),
        roles => format!(
            "\nApprovals (environment {} requires {}, each by a different person, not the planner):\n",
            e(data.environment.as_deref().unwrap_or("(none)")),
            roles.join(", ")
        ),
    });
    if data.signatures.is_empty() {
        out.push_str("  none yet\n");
    } else {
        let rows: Vec<Vec<String>> = data
            .signatures
            .iter()
            .map(|s| {
                vec![
                    s.number.to_string(),
                    s.principal.clone().unwrap_or_else(|| "-".to_owned()),
                    match s.roles.as_slice() {
                        [] => "-".to_owned(),
                        r => r.join(","),
                    },
                    s.fingerprint.clone().unwrap_or_else(|| "-".to_owned()),
                    match &s.problem {
                        None => "good".to_owned(),
                        Some(why) => format!("BAD: {why}"),
                    },
                ]
            })
            .collect();
        for line in table(&["#", "PRINCIPAL", "ROLES", "KEY", "SIGNATURE"], &rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push('\n');
    if data.ready {
        out.push_str(&format!(
            "Ready: `cargo xtask apply {shown}{apply_arg}` checks the cluster and applies it.\n"
        ));
    } else {
        out.push_str("Before it can be applied:\n");
        for b in &data.blocking {
            let mut lines = b.lines();
            if let Some(first) = lines.next() {
                out.push_str(&format!("- {first}\n"));
            }
            for more in lines {
                out.push_str(&format!("  {more}\n"));
            }
        }
    }
    out
}
