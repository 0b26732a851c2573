//! Plan files: what `provision --save-plan` (and `admin offboard
//! --save-plan`) decided to change, written for review, signed by the
//! approvers (`cargo xtask approve`) and applied exactly as planned
//! (`cargo xtask apply`).
//!
//! The file is text: the plan as pretty JSON (the *body*, the exact bytes
//! every approval signs), then zero or more OpenSSH signatures (`-----BEGIN
//! SSH SIGNATURE-----` blocks, as `ssh-keygen -Y sign` writes them), one per
//! approval. The body never holds a secret: a Secret to be created is named,
//! its values are not.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::tenant::TenantValues;

/// The `format` of the plans this build writes and reads.
pub const FORMAT: &str = "mla-platform-plan/v1";

/// The first line of an armored SSH signature.
pub const SIGNATURE_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
/// The last line of an armored SSH signature.
pub const SIGNATURE_END: &str = "-----END SSH SIGNATURE-----";

/// A plan: everything an apply checks before it changes anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// [`FORMAT`].
    pub format: String,
    /// What the plan does to its tenants.
    pub action: Action,
    /// Made by `provision --all --plan`: applied as `--all` applies, every
    /// planned tenant checked under the batch's locks, from one read of the
    /// cluster, before any is applied; all of them or none. Its tenants'
    /// `diff` is a local comparison, not kubectl's.
    #[serde(default)]
    pub all: bool,
    /// The environment planned for (its name in environments.yaml), if any.
    pub environment: Option<String>,
    /// The kube context planned with, if one was named.
    pub context: Option<String>,
    /// The cluster's identity: the UID of its `kube-system` namespace.
    pub cluster: String,
    /// Who planned it (`git config user.email`, else `$USER`).
    pub planned_by: String,
    /// When, RFC 3339 UTC.
    pub planned_at: String,
    /// After this, the plan is refused: plan again.
    pub expires_at: String,
    /// The command line that made the plan, for the reader.
    pub command: String,
    /// Digests of the inputs shared by every tenant.
    pub inputs: Inputs,
    /// One entry per tenant changed.
    pub tenants: Vec<TenantPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Provision,
    Offboard,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Provision => "provision",
            Action::Offboard => "offboard",
        }
    }
}

/// SHA-256 digests (lowercase hex) of the files every tenant's render uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// `platform.yaml`.
    pub platform: String,
    /// Every file under `templates/`, by path and content.
    pub templates: String,
    /// Where the inputs were read when planned, as absolute paths, so that
    /// `apply` reads the same ones without the flags repeated (where they
    /// still exist: a plan applied from another checkout reads its own).
    #[serde(default, skip_serializing_if = "InputFiles::is_empty")]
    pub files: InputFiles,
}

/// The directories and files a plan was made from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputFiles {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<String>,
}

impl InputFiles {
    pub fn is_empty(&self) -> bool {
        *self == InputFiles::default()
    }

    /// `path` made absolute (against the current directory), as text.
    pub fn absolute(path: &Path) -> Option<String> {
        std::path::absolute(path)
            .ok()
            .map(|p| p.display().to_string())
    }

    /// The recorded path, when it still exists here.
    pub fn existing(recorded: &Option<String>) -> Option<PathBuf> {
        recorded
            .as_deref()
            .map(PathBuf::from)
            .filter(|p| p.exists())
    }
}

/// What the plan does to one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPlan {
    pub tenant: String,
    pub namespace: String,
    /// SHA-256 of the committed `tenants/<tenant>.yaml` when planned; None
    /// when there was none.
    pub config: Option<String>,
    /// The tenant's values as an apply saves them (provision only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<TenantValues>,
    /// The flags the plan was made with that an apply repeats.
    #[serde(default)]
    pub options: Options,
    /// Changes of tier, MLA name, number or domains the approvals confirm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmed: Vec<String>,
    /// Every object the plan applies, keeps or deletes.
    pub objects: Vec<PlannedObject>,
    /// The diff a reviewer reads, secrets masked: kubectl's server-side
    /// diff, or in a plan of `--all` the fields an apply would change, as
    /// compared locally from the one read of the cluster (its first line
    /// says so).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

impl TenantPlan {
    /// The planned tenant's name, checked as every tenant name is.
    pub fn tenant_name(&self) -> anyhow::Result<crate::tenant::TenantName> {
        crate::tenant::TenantName::parse(&self.tenant)
            .map_err(|e| anyhow::anyhow!("the plan names tenant `{}`: {e}", self.tenant))
    }
}

/// Flags of the planning command that an apply of the plan repeats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    pub reconfigure: bool,
    pub force_conflicts: bool,
    pub delete_data: bool,
    pub reserve: bool,
    pub no_backup: bool,
    /// Offboarding: `--backups`, `--max-backup-age`, `--from-cluster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backup_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_cluster: Option<String>,
}

/// One object of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedObject {
    pub kind: String,
    pub name: String,
    /// None for cluster-scoped objects (the Namespace).
    pub namespace: Option<String>,
    pub action: ObjectAction,
    /// SHA-256 of the rendered object (None for a Secret, whose values are
    /// generated when it is created, and for deletions).
    pub digest: Option<String>,
    /// The object on the cluster when planned; None when there was none.
    pub live: Option<LiveRef>,
}

impl PlannedObject {
    /// `kind/name`, lowercase kind, as kubectl names objects.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectAction {
    /// Created as rendered.
    Create,
    /// Applied over the live object, which changes.
    Update,
    /// Applied, but the live object already matches.
    Unchanged,
    /// Never re-applied once it exists (credentials, volumes).
    Keep,
    /// Deleted.
    Delete,
}

impl ObjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectAction::Create => "create",
            ObjectAction::Update => "update",
            ObjectAction::Unchanged => "unchanged",
            ObjectAction::Keep => "keep",
            ObjectAction::Delete => "delete",
        }
    }
}

/// A live object as the plan saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveRef {
    pub uid: String,
    pub resource_version: String,
    /// SHA-256 of what an apply depends on: the object without its status
    /// and bookkeeping (resourceVersion, managedFields' times), so that a
    /// status update does not make a plan stale but any edit does.
    pub digest: String,
}

/// A plan file as read: its body (the signed bytes), the plan in it, and
/// its signatures, armored, in the order they were added.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub path: PathBuf,
    pub body: String,
    pub plan: Plan,
    pub signatures: Vec<String>,
}

impl PlanFile {
    /// Reads and parses `path`; every problem names the file.
    pub fn read(path: &Path) -> anyhow::Result<PlanFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the plan file {}", path.display()))?;
        let (body, signatures) =
            split(&text).with_context(|| format!("{} is not a plan file", path.display()))?;
        let plan =
            parse_body(body).with_context(|| format!("{} is not a plan file", path.display()))?;
        Ok(PlanFile {
            path: path.to_path_buf(),
            body: body.to_owned(),
            plan,
            signatures,
        })
    }

    /// The plan's digest: SHA-256 of its body, as the audit log records it.
    pub fn digest(&self) -> String {
        digest(&self.body)
    }

    /// The file's text: the body, then each signature.
    pub fn text(&self) -> String {
        let mut text = self.body.clone();
        for s in &self.signatures {
            text.push_str(s.trim_end());
            text.push('\n');
        }
        text
    }
}

impl Plan {
    /// How to plan again: the command that made this plan (its files and
    /// flags included), to a new file, and new approvals.
    pub fn plan_again(&self) -> String {
        format!(
            "plan again with `cargo xtask {}` (saving to a new file), and have the new plan approved",
            crate::output::escape_controls(&self.command)
        )
    }

    /// ` --env NAME` (or ` --context X`) of the run that planned it: what a
    /// suggested `cargo xtask apply` carries, as every suggested command
    /// carries its run's target. `apply` takes the plan's environment
    /// anyway, and refuses another.
    pub fn suggested_arg(&self) -> String {
        match (&self.environment, &self.context) {
            (Some(env), _) => format!(" --env {env}"),
            (None, Some(context)) => format!(" --context {context}"),
            (None, None) => String::new(),
        }
    }
}

/// The longest a plan may wait for its approvals and apply: seven days. A
/// plan older than that describes a cluster that has moved on.
pub const MAX_EXPIRY: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl crate::flags::SavePlanArgs {
    /// Refuses an `--expires-in` of nothing, or of more than
    /// [`MAX_EXPIRY`], before anything is read; nothing without
    /// `--save-plan`.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.save_plan.is_none() {
            return Ok(());
        }
        let (length, given) = (self.expires_in.length(), &self.expires_in);
        if length.is_zero() {
            bail!(
                "--expires-in {given} would save a plan that has expired already; give the time the \
                 approvals may take, such as 24h"
            );
        }
        if length > MAX_EXPIRY {
            bail!(
                "--expires-in {given} is longer than a plan may wait (168h, seven days): a plan that old \
                 describes a cluster that has moved on. Plan again when the approvers are ready"
            );
        }
        Ok(())
    }

    /// When a plan made `now` expires.
    pub fn expires_at(&self, now: std::time::SystemTime) -> String {
        crate::clock::rfc3339(now + self.expires_in.length())
    }

    /// None: what an apply's own flags say (it saves no plan).
    pub fn none() -> crate::flags::SavePlanArgs {
        crate::flags::SavePlanArgs {
            save_plan: None,
            expires_in: "24h".parse().expect("24h is a duration"),
        }
    }
}

/// `sha256:` and the SHA-256 of a plan's body.
pub fn digest(body: &str) -> String {
    format!("sha256:{}", crate::digest::sha256_hex(body.as_bytes()))
}

/// The text of a new plan file (unsigned).
pub fn render(plan: &Plan) -> anyhow::Result<String> {
    let mut body = serde_json::to_string_pretty(plan)?;
    body.push('\n');
    Ok(body)
}

/// Writes a new plan file; one that exists is never overwritten (its
/// approvals would be lost). Says what comes next.
pub fn save_new(file: &Path, plan: &Plan, roles: &[String]) -> anyhow::Result<()> {
    let body = render(plan)?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    let mut out = match open.open(file) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists, and a plan file is never overwritten (its approvals would be lost): \
             choose another name, or remove it first",
            file.display()
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot write the plan file {}", file.display()));
        }
    };
    std::io::Write::write_all(&mut out, body.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write the plan file {}", file.display()))?;
    println!(
        "\nPlan saved to {} ({}, expires {}).",
        file.display(),
        digest(&body),
        plan.expires_at
    );
    if roles.is_empty() {
        println!(
            "Apply it with `cargo xtask apply {}{}` (this environment needs no approvals; approving is \
             optional: `cargo xtask approve {} --key ~/.ssh/id_ed25519`).",
            file.display(),
            plan.suggested_arg(),
            file.display()
        );
    } else {
        println!(
            "Next: review with `cargo xtask plan show {f}`; approve with `cargo xtask approve {f} --key \
             ~/.ssh/id_ed25519`, by {} (each a different person, not the planner); then \
             `cargo xtask apply {f}{}`.",
            roles.join(" and "),
            plan.suggested_arg(),
            f = file.display()
        );
    }
    Ok(())
}

/// Splits a plan file's text into its body and armored signatures.
pub fn split(text: &str) -> anyhow::Result<(&str, Vec<String>)> {
    let start = text
        .match_indices(SIGNATURE_BEGIN)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (body, rest) = text.split_at(start);
    let mut signatures = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for (n, line) in rest.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, SIGNATURE_BEGIN) => current = Some(vec![SIGNATURE_BEGIN]),
            (None, "") => {}
            (None, other) => bail!(
                "line {} after the plan is `{}`, not part of an SSH signature",
                body.lines().count() + n + 1,
                other.chars().take(40).collect::<String>()
            ),
            (Some(lines), SIGNATURE_END) => {
                lines.push(SIGNATURE_END);
                signatures.push(lines.join("\n") + "\n");
                current = None;
            }
            (Some(lines), line) => lines.push(line),
        }
    }
    if current.is_some() {
        bail!("its last SSH signature has no `{SIGNATURE_END}` line: the file was cut short");
    }
    Ok((body, signatures))
}

/// The plan in a body, checked for its format.
pub fn parse_body(body: &str) -> anyhow::Result<Plan> {
    let value: serde_json::Value =
        serde_json::from_str(body).context("its plan is not valid JSON")?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => bail!(
            "its format is `{other}`, and this build reads `{FORMAT}`: plan again with this build"
        ),
        None => bail!("it has no `format` field"),
    }
    serde_json::from_value(value).context("its plan does not have the fields of a plan")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            format: FORMAT.to_owned(),
            action: Action::Provision,
            all: false,
            environment: Some("prod".to_owned()),
            context: Some("prod-mumbai".to_owned()),
            cluster: "uid-1".to_owned(),
            planned_by: "ops@example.in".to_owned(),
            planned_at: "2026-11-24T06:00:00Z".to_owned(),
            expires_at: "2026-11-25T06:00:00Z".to_owned(),
            command: "provision demo --plan --save-plan demo.plan".to_owned(),
            inputs: Inputs {
                platform: "a".repeat(64),
                templates: "b".repeat(64),
                files: InputFiles::default(),
            },
            tenants: Vec::new(),
        }
    }

    #[test]
    fn a_body_and_its_signatures_split_apart_and_back() {
        let body = render(&plan()).unwrap();
        let sig = format!("{SIGNATURE_BEGIN}\nAAAA\nBBBB\n{SIGNATURE_END}\n");
        let text = format!("{body}{sig}{sig}");
        let (b, sigs) = split(&text).unwrap();
        assert_eq!(b, body);
        assert_eq!(sigs, vec![sig.clone(), sig]);
        assert_eq!(parse_body(b).unwrap(), plan());
    }

    #[test]
    fn a_cut_signature_or_stray_text_is_refused() {
        let body = render(&plan()).unwrap();
        let cut = format!("{body}{SIGNATURE_BEGIN}\nAAAA\n");
        assert!(format!("{:#}", split(&cut).unwrap_err()).contains("cut short"));
        let stray = format!("{body}{SIGNATURE_BEGIN}\nAAAA\n{SIGNATURE_END}\nhello\n");
        assert!(format!("{:#}", split(&stray).unwrap_err()).contains("`hello`"));
    }

    #[test]
    fn another_format_is_named() {
        let body = render(&plan())
            .unwrap()
            .replace(FORMAT, "mla-platform-plan/v9");
        let e = format!("{:#}", parse_body(&body).unwrap_err());
        assert!(e.contains("mla-platform-plan/v9"), "{e}");
    }
}
