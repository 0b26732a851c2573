//! Saved plans applied exactly as planned (`provision --plan --save-plan`,
//! then `cargo xtask apply`): every way a plan can stop being the one to
//! apply is refused with its own message, and nothing is changed.

mod common;

use std::path::{Path, PathBuf};

use common::{Cluster, exits, fake_kubectl, stderr, stdout};
use serde_json::Value;

/// Saves the plan of provisioning `tenant` from its committed config into
/// `dir`; the plan says something would change (exit 2).
fn save_plan(cluster: &Cluster, tenant: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let file = dir.join(format!("{tenant}.plan"));
    let mut cmd = cluster.provision_committed(tenant, &["--plan", "--save-plan"]);
    cmd.arg(&file).args(extra);
    let out = exits(cmd, 2);
    assert!(
        stdout(&out).contains(&format!("Plan saved to {}", file.display())),
        "{}",
        stdout(&out)
    );
    file
}

fn apply(cluster: &Cluster, file: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["apply"]);
    cmd.arg(file)
        .arg("--kubectl")
        .arg(fake_kubectl())
        .arg("--tenants-dir")
        .arg(cluster.tenants.path())
        .args(extra);
    cmd
}

fn audit(cluster: &Cluster) -> Vec<Value> {
    std::fs::read_to_string(cluster.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A refused apply: exit 1 with `message` in its error, "Nothing was
/// changed.", and the cluster's objects as they were.
#[track_caller]
fn refused(cluster: &Cluster, cmd: assert_cmd::Command, message: &str) -> String {
    let before = cluster.objects_but_locks();
    let out = exits(cmd, 1);
    let err = stderr(&out);
    assert!(err.contains(message), "expected `{message}` in:\n{err}");
    assert!(err.contains("Nothing was changed."), "{err}");
    assert_eq!(
        cluster.objects_but_locks(),
        before,
        "a refused apply changed the cluster"
    );
    err
}

#[test]
fn a_plan_applies_exactly_what_was_planned_once() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let file = save_plan(&cluster, "kalyan", dir.path(), &[]);
    assert!(cluster.is_pristine(), "saving a plan changed the cluster");

    // The file: the plan as JSON, with no secret in it.
    let text = std::fs::read_to_string(&file).unwrap();
    let plan: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plan["format"], "mla-platform-plan/v1");
    assert_eq!(plan["action"], "provision");
    let objects = plan["tenants"][0]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["action"] == "create" && o["live"].is_null())
    );
    assert!(objects.iter().any(|o| o["kind"] == "Secret"));
    // The new tenant's rendered objects are shown, the Secret never.
    assert!(
        text.contains("kind: Deployment") && !text.contains("kind: Secret"),
        "{text}"
    );

    let applied = exits(apply(&cluster, &file, &[]), 0);
    // The credentials made at the apply appear in no plan and no output.
    let secret = cluster
        .get("Secret", Some("tenant-kalyan"), "bot-credentials")
        .unwrap();
    let values: Vec<String> = secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| common::decode_base64(v.as_str().unwrap()))
        .collect();
    assert!(!values.is_empty());
    for value in &values {
        assert!(value.len() >= 32, "{value}");
        for seen in [&text, &stdout(&applied), &stderr(&applied)] {
            assert!(!seen.contains(value.as_str()), "a credential was shown");
        }
    }
    // What was planned is what is there: a new plan finds nothing to do.
    let out = exits(cluster.provision_committed("kalyan", &["--plan"]), 0);
    assert!(stdout(&out).contains("no changes: the cluster matches the config."));
    let digest = format!("sha256:{}", xtask::digest::sha256_hex(text.as_bytes()));
    let last = audit(&cluster).pop().unwrap();
    assert_eq!(last["plan"], digest.as_str(), "{last}");
    assert_eq!(last["result"], "ok");

    // Once.
    let err = refused(&cluster, apply(&cluster, &file, &[]), "was applied already");
    assert!(err.contains("a plan applies once"), "{err}");
}

#[test]
fn an_expired_plan_is_refused() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let mut cmd =
        cluster.provision_committed("kalyan", &["--plan", "--expires-in", "2h", "--save-plan"]);
    let file = dir.path().join("kalyan.plan");
    cmd.arg(&file).env("XTASK_NOW", "2026-11-24T06:00:00Z");
    exits(cmd, 2);
    let mut late = apply(&cluster, &file, &[]);
    late.env("XTASK_NOW", "2026-11-24T08:00:01Z");
    refused(
        &cluster,
        late,
        "expired at 2026-11-24T08:00:00Z (planned at 2026-11-24T06:00:00Z",
    );
    // The refusal is recorded, with the plan it refused.
    let last = audit(&cluster).pop().unwrap();
    assert!(
        last["result"].as_str().unwrap().starts_with("error: plan "),
        "{last}"
    );
    assert!(
        last["plan"].as_str().unwrap().starts_with("sha256:"),
        "{last}"
    );
    assert_eq!(last["tenant"], "kalyan");
    let mut in_time = apply(&cluster, &file, &[]);
    in_time.env("XTASK_NOW", "2026-11-24T07:59:00Z");
    exits(in_time, 0);
}

#[test]
fn a_plan_expires_within_a_week() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    for (given, message) in [
        ("0s", "would save a plan that has expired already"),
        ("169h", "is longer than a plan may wait (168h, seven days)"),
    ] {
        let file = dir.path().join("kalyan.plan");
        let mut cmd = cluster
            .provision_committed("kalyan", &["--plan", "--expires-in", given, "--save-plan"]);
        cmd.arg(&file);
        let out = exits(cmd, 1);
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
        assert!(!file.exists());
    }
    assert!(
        cluster.calls().is_empty(),
        "refused before the cluster was asked"
    );
}

#[test]
fn apply_reads_the_files_the_plan_was_made_from() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let file = save_plan(&cluster, "kalyan", dir.path(), &[]);
    // No --tenants-dir: the plan's own (a scratch directory here), not the
    // repository's tenants/.
    let mut cmd = cluster.xtask(&["apply"]);
    cmd.arg(&file).arg("--kubectl").arg(fake_kubectl());
    exits(cmd, 0);
    assert!(
        cluster
            .get("Deployment", Some("tenant-kalyan"), "bot")
            .is_some()
    );
}

#[test]
fn a_plan_for_another_cluster_is_refused() {
    let planned_on = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    planned_on.commit_fixture("kalyan");
    let file = save_plan(&planned_on, "kalyan", dir.path(), &[]);
    // Another cluster (its own kube-system UID), the same repository.
    let other = Cluster {
        state: tempfile::tempdir().unwrap(),
        tenants: planned_on.tenants,
    };
    let err = refused(&other, apply(&other, &file, &[]), "is for another cluster");
    assert!(
        err.contains("Apply it where it was planned, or plan again here."),
        "{err}"
    );
    assert!(other.is_pristine());
}

#[test]
fn a_stale_plan_is_refused() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    let config = cluster.commit_fixture("kalyan");
    exits(cluster.provision_committed("kalyan", &[]), 0);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("tier: medium", "tier: large")).unwrap();
    let file = save_plan(&cluster, "kalyan", dir.path(), &["--yes"]);
    // Someone edits the bot after planning.
    cluster.kubectl(&[
        "--namespace",
        "tenant-kalyan",
        "annotate",
        "deployment/bot",
        "example.in/edited=by-hand",
    ]);
    let err = refused(
        &cluster,
        apply(&cluster, &file, &[]),
        "stale plan: deployment/bot changed since ",
    );
    // The command that made the plan, its files and flags included.
    assert!(
        err.contains("plan again with `cargo xtask provision kalyan --kubectl ")
            && err.contains("--plan --save-plan ")
            && err.contains("--yes` (saving to a new file), and have the new plan approved"),
        "{err}"
    );
}

#[test]
fn a_config_changed_after_planning_is_refused() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    let config = cluster.commit_fixture("kalyan");
    let file = save_plan(&cluster, "kalyan", dir.path(), &[]);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("tier: medium", "tier: large")).unwrap();
    refused(
        &cluster,
        apply(&cluster, &file, &[]),
        &format!(
            "config changed after planning: {} (tenant kalyan) is not what plan",
            config.display()
        ),
    );
    // Put back, it applies: the check is of content, not of time.
    std::fs::write(&config, text).unwrap();
    exits(apply(&cluster, &file, &[]), 0);
}

#[test]
fn changed_templates_are_refused() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    for e in std::fs::read_dir(common::repo_root().join("templates")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), templates.join(e.file_name())).unwrap();
    }
    let t = templates.to_str().unwrap();
    let file = save_plan(&cluster, "kalyan", dir.path(), &["--templates", t]);
    let service = templates.join("service.yaml");
    let text = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, format!("{text}\n# edited\n")).unwrap();
    refused(
        &cluster,
        apply(&cluster, &file, &["--templates", t]),
        &format!("config changed after planning: {t}/ is not what plan"),
    );
}

#[test]
fn a_render_that_differs_from_the_plan_is_refused() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let environments = dir.path().join("environments.yaml");
    let text = std::fs::read_to_string(common::repo_root().join("environments.yaml")).unwrap();
    std::fs::write(&environments, &text).unwrap();
    let mut cmd = cluster.provision_committed("kalyan", &["--plan", "--save-plan"]);
    let file = dir.path().join("kalyan.plan");
    cmd.arg(&file).env("XTASK_ENVIRONMENTS", &environments);
    exits(cmd, 2);
    // The environment's host names change: the same config renders otherwise.
    std::fs::write(
        &environments,
        text.replace("dev.mla-bots.example.in", "dev2.mla-bots.example.in"),
    )
    .unwrap();
    let mut cmd = apply(&cluster, &file, &[]);
    cmd.env("XTASK_ENVIRONMENTS", &environments);
    let err = refused(
        &cluster,
        cmd,
        "today's render of tenant kalyan is not what was planned: ",
    );
    assert!(err.contains("ingress/bot renders differently"), "{err}");
}

#[test]
fn the_environment_is_the_plans() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let file = save_plan(&cluster, "kalyan", dir.path(), &[]);
    let out = exits(apply(&cluster, &file, &["--env", "sit"]), 1);
    assert!(
        stderr(&out).contains("was made with no environment, not for sit: drop --env"),
        "{}",
        stderr(&out)
    );
    assert!(cluster.is_pristine());
}

#[test]
fn a_plan_file_is_never_overwritten_and_nothing_to_do_saves_none() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    let file = save_plan(&cluster, "kalyan", dir.path(), &[]);
    let before = std::fs::read(&file).unwrap();
    let mut again = cluster.provision_committed("kalyan", &["--plan", "--save-plan"]);
    again.arg(&file);
    let out = exits(again, 1);
    assert!(stderr(&out).contains("already exists, and a plan file is never overwritten"));
    assert_eq!(std::fs::read(&file).unwrap(), before);

    exits(apply(&cluster, &file, &[]), 0);
    let none = dir.path().join("none.plan");
    let mut cmd = cluster.provision_committed("kalyan", &["--plan", "--save-plan"]);
    cmd.arg(&none);
    let out = exits(cmd, 0);
    assert!(
        stdout(&out).contains("No plan was saved"),
        "{}",
        stdout(&out)
    );
    assert!(!none.exists());
}

/// kalyan provisioned from its committed config, and backed up into the
/// returned directory.
fn provisioned_and_backed_up(cluster: &Cluster) -> tempfile::TempDir {
    cluster.commit_fixture("kalyan");
    exits(cluster.provision_committed("kalyan", &[]), 0);
    let backups = tempfile::tempdir().unwrap();
    exits(
        cluster
            .admin(&["backup", "kalyan", "--out"])
            .arg(backups.path()),
        0,
    );
    backups
}

fn save_offboard_plan(cluster: &Cluster, backups: &Path, file: &Path, extra: &[&str]) -> String {
    let mut cmd = cluster.admin(&["offboard", "kalyan", "--plan", "--save-plan"]);
    cmd.arg(file)
        .arg("--backups")
        .arg(backups)
        .arg("--tenants-dir")
        .arg(cluster.tenants.path())
        .args(extra);
    stdout(&exits(cmd, 2))
}

#[test]
fn an_offboard_plan_deletes_what_it_lists() {
    let cluster = Cluster::new();
    let backups = provisioned_and_backed_up(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("offboard.plan");
    let before = cluster.objects_but_locks();
    let shown = save_offboard_plan(&cluster, backups.path(), &file, &[]);
    assert!(shown.contains("  - ingress/bot\n"), "{shown}");
    assert!(
        shown.contains("  = persistentvolumeclaim/bot-data (kept)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  = namespace/tenant-kalyan (kept)\n"),
        "{shown}"
    );
    assert!(
        !shown.contains("pod/"),
        "pods come and go under their Deployment: {shown}"
    );
    assert_eq!(
        cluster.objects_but_locks(),
        before,
        "a plan changed the cluster"
    );
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(plan["action"], "offboard");
    assert_eq!(plan["tenants"][0]["options"]["delete_data"], false);

    let mut cmd = apply(&cluster, &file, &[]);
    cmd.env("KUBECTL", fake_kubectl());
    let out = exits(cmd, 0);
    assert!(
        stdout(&out).contains("Offboarded tenant kalyan."),
        "{}",
        stdout(&out)
    );
    assert!(
        cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_none()
    );
    assert!(
        cluster
            .get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")
            .is_some()
    );
    assert!(
        cluster
            .tenants
            .path()
            .join("offboarded/kalyan.yaml")
            .exists()
    );
    let last = audit(&cluster).pop().unwrap();
    assert_eq!(last["result"], "ok");
    assert!(
        last["plan"].as_str().unwrap().starts_with("sha256:"),
        "{last}"
    );
}

#[test]
fn a_stale_offboard_plan_is_refused() {
    let cluster = Cluster::new();
    let backups = provisioned_and_backed_up(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("offboard.plan");
    save_offboard_plan(&cluster, backups.path(), &file, &["--delete-data"]);
    // An object of the tenant changes after planning.
    cluster.kubectl(&[
        "--namespace",
        "tenant-kalyan",
        "annotate",
        "service/bot",
        "example.in/edited=by-hand",
    ]);
    let mut cmd = apply(&cluster, &file, &[]);
    cmd.env("KUBECTL", fake_kubectl());
    let err = refused(&cluster, cmd, "stale plan: service/bot changed since ");
    assert!(
        err.contains("plan again with `cargo xtask admin offboard kalyan --plan --save-plan ")
            && err.contains("--delete-data` (saving to a new file)"),
        "{err}"
    );
    assert!(
        cluster
            .get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")
            .is_some()
    );
}

/// Production as `tests/fixtures/environments-gated.yaml` has it (devops-lead
/// and product-owner must approve), the test keys of `tests/fixtures/keys/`
/// as approvers, and a planner: the whole review flow, end to end.
struct Prod {
    cluster: Cluster,
    dir: tempfile::TempDir,
}

impl Prod {
    fn new() -> Prod {
        let cluster = Cluster::new();
        let dir = tempfile::tempdir().unwrap();
        let keys = common::repo_root().join("tests/fixtures/keys");
        let mut approvers = String::new();
        for (who, key, roles) in [
            ("alice", "alice.pub", "devops-lead"),
            ("bob", "bob.pub", "product-owner"),
            ("carol", "carol.pub", "devops-lead,product-owner"),
            ("carol", "carol2.pub", "devops-lead,product-owner"),
            ("planner", "dave.pub", "devops-lead"),
            ("typo", "outsider.pub", "devops-laed"),
        ] {
            let public = std::fs::read_to_string(keys.join(key)).unwrap();
            let mut parts = public.split_whitespace();
            let (kind, data) = (parts.next().unwrap(), parts.next().unwrap());
            approvers.push_str(&format!(
                "{who}@example.in namespaces=\"xtask-plan@mla-platform.in\" {kind} {data} roles={roles}\n"
            ));
        }
        std::fs::write(dir.path().join("approvers"), approvers).unwrap();
        cluster.commit_fixture("kalyan");
        Prod { cluster, dir }
    }

    /// `cmd` as `who` (their git e-mail), in this production.
    fn as_person(&self, mut cmd: assert_cmd::Command, who: &str) -> assert_cmd::Command {
        cmd.env(
            "XTASK_ENVIRONMENTS",
            common::repo_root().join("tests/fixtures/environments-gated.yaml"),
        )
        .env("XTASK_APPROVERS", self.dir.path().join("approvers"))
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "user.email")
        .env("GIT_CONFIG_VALUE_0", format!("{who}@example.in"));
        cmd
    }

    /// The planner saves the plan of provisioning kalyan in prod.
    fn plan(&self, name: &str) -> PathBuf {
        let file = self.dir.path().join(name);
        let mut cmd = self
            .cluster
            .provision_committed("kalyan", &["--env", "prod", "--plan", "--save-plan"]);
        cmd.arg(&file);
        exits(self.as_person(cmd, "planner"), 2);
        file
    }

    fn approve(&self, file: &Path, key: &str, who: &str) -> std::process::Output {
        let mut cmd = self.cluster.xtask(&["approve"]);
        cmd.arg(file)
            .arg("--key")
            .arg(common::repo_root().join("tests/fixtures/keys").join(key));
        self.as_person(cmd, who).output().unwrap()
    }

    fn apply(&self, file: &Path) -> assert_cmd::Command {
        self.as_person(apply(&self.cluster, file, &["--env", "prod"]), "operator")
    }
}

#[test]
fn a_plan_approved_by_both_roles_applies_and_is_audited_with_its_approvers() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    // A direct provision in prod is refused: this is the way in.
    let direct = prod.as_person(
        prod.cluster
            .provision_committed("kalyan", &["--env", "prod", "--yes"]),
        "operator",
    );
    refused(&prod.cluster, direct, "environment prod requires approvals");

    // What the approvers read: the tenant's config, and every object it
    // creates as rendered, with no secret value.
    let mut show = prod.cluster.xtask(&["plan", "show"]);
    show.arg(&file);
    let shown = stdout(&exits(prod.as_person(show, "alice"), 0));
    assert!(
        shown.contains("Config (saved to the tenant's config file by the apply):"),
        "{shown}"
    );
    assert!(
        shown.contains("whatsapp_number: '+919876543210'") || shown.contains("+919876543210"),
        "{shown}"
    );
    assert!(
        shown.contains("# A new tenant: every object is created as rendered here"),
        "{shown}"
    );
    assert!(shown.contains("kind: Deployment"), "{shown}");
    assert!(!shown.contains("kind: Secret"), "{shown}");
    assert!(prod.approve(&file, "alice", "alice").status.success());
    // One role is not enough.
    let err = refused(&prod.cluster, prod.apply(&file), "product-owner");
    assert!(err.contains("has not approved"), "{err}");
    assert!(prod.approve(&file, "bob", "bob").status.success());
    let out = exits(prod.apply(&file), 0);
    assert!(
        stderr(&out).contains(
            "Approved by alice@example.in as devops-lead, bob@example.in as product-owner."
        ),
        "{}",
        stderr(&out)
    );
    // Exactly the planned state: a new plan finds nothing to do.
    let mut again = prod
        .cluster
        .provision_committed("kalyan", &["--env", "prod", "--plan"]);
    again.env(
        "XTASK_ENVIRONMENTS",
        common::repo_root().join("tests/fixtures/environments-gated.yaml"),
    );
    assert!(stdout(&exits(again, 0)).contains("no changes: the cluster matches the config."));
    let last = audit(&prod.cluster).pop().unwrap();
    assert_eq!(last["result"], "ok");
    assert_eq!(last["operator"], "operator@example.in");
    let approvers: Vec<String> = last["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(approvers.len(), 2, "{approvers:?}");
    assert!(
        approvers[0].starts_with("alice@example.in as devops-lead"),
        "{approvers:?}"
    );
    assert!(
        approvers[1].starts_with("bob@example.in as product-owner"),
        "{approvers:?}"
    );
    assert!(last["plan"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn one_person_for_both_roles_is_refused() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    assert!(prod.approve(&file, "carol", "carol").status.success());
    // carol's second key is still carol: approve refuses it, and a
    // signature appended by hand does not count twice at apply.
    let second = prod.approve(&file, "carol2", "carol");
    assert!(!second.status.success());
    let body = xtask::planfile::PlanFile::read(&file).unwrap().body;
    let sig = xtask::signing::sign(
        body.as_bytes(),
        &common::repo_root().join("tests/fixtures/keys/carol2"),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&sig);
    std::fs::write(&file, text).unwrap();
    let err = refused(&prod.cluster, prod.apply(&file), "needs a different person");
    assert!(err.contains("carol"), "{err}");
}

#[test]
fn a_key_of_no_required_role_signs_nothing() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    let before = std::fs::read(&file).unwrap();
    let out = prod.approve(&file, "outsider", "typo");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds devops-laed in ")
            && stderr(&out).contains("none of the roles environment prod requires (devops-lead, product-owner): nothing was signed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn the_planner_cannot_approve_their_own_plan() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    // approve refuses the planner's key; a signature by it added anyway
    // refuses the whole plan at apply.
    assert!(!prod.approve(&file, "dave", "planner").status.success());
    assert!(prod.approve(&file, "bob", "bob").status.success());
    let body = xtask::planfile::PlanFile::read(&file).unwrap().body;
    let sig = xtask::signing::sign(
        body.as_bytes(),
        &common::repo_root().join("tests/fixtures/keys/dave"),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&sig);
    std::fs::write(&file, text).unwrap();
    refused(
        &prod.cluster,
        prod.apply(&file),
        "the planner cannot approve their own plan",
    );
}

#[test]
fn a_plan_changed_after_its_approvals_is_refused() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    assert!(prod.approve(&file, "alice", "alice").status.success());
    assert!(prod.approve(&file, "bob", "bob").status.success());
    // One byte of the body: the tier the approvers read.
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen("\"tier\": \"medium\"", "\"tier\": \"mediun\"", 1);
    assert_ne!(tampered, text);
    assert_eq!(tampered.len(), text.len());
    std::fs::write(&file, tampered).unwrap();
    let err = refused(&prod.cluster, prod.apply(&file), "does not match the plan");
    assert!(err.contains("signed other bytes"), "{err}");
}

/// A plan that would take back a hand edit is saved only with
/// --force-conflicts, which its apply then repeats: an approved plan never
/// fails at the apply for want of a flag.
#[test]
fn a_plan_taking_back_a_hand_edit_needs_force_conflicts_and_applies_with_it() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    cluster.commit_fixture("kalyan");
    exits(cluster.provision_committed("kalyan", &[]), 0);
    cluster.kubectl(&[
        "patch",
        "configmap",
        "bot-config",
        "--namespace",
        "tenant-kalyan",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"RATE_LIMIT_MESSAGES_PER_DAY":"999999"}}"#,
    ]);
    let file = dir.path().join("kalyan.plan");
    let mut without = cluster.provision_committed("kalyan", &["--plan", "--save-plan"]);
    without.arg(&file);
    let out = exits(without, 1);
    assert!(
        stderr(&out).contains("which an apply does only with --force-conflicts"),
        "{}",
        stderr(&out)
    );
    assert!(!file.exists());
    let file = save_plan(&cluster, "kalyan", dir.path(), &["--force-conflicts"]);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(plan["tenants"][0]["options"]["force_conflicts"], true);
    exits(apply(&cluster, &file, &[]), 0);
    let data = cluster
        .get("ConfigMap", Some("tenant-kalyan"), "bot-config")
        .unwrap()["data"]["RATE_LIMIT_MESSAGES_PER_DAY"]
        .clone();
    assert_ne!(data, "999999");
}

/// Offboarding in production through its plan; afterwards, the hint that
/// finishes the job is its plan form too, not a command the gate refuses.
#[test]
fn an_offboarding_in_production_is_planned_and_its_hints_stay_planned() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");
    assert!(prod.approve(&file, "alice", "alice").status.success());
    assert!(prod.approve(&file, "bob", "bob").status.success());
    exits(prod.apply(&file), 0);

    let offboard = prod.dir.path().join("offboard.plan");
    let mut cmd = prod.cluster.admin(&[
        "offboard",
        "kalyan",
        "--no-backup",
        "--env",
        "prod",
        "--plan",
        "--save-plan",
    ]);
    cmd.arg(&offboard)
        .arg("--tenants-dir")
        .arg(prod.cluster.tenants.path());
    let shown = stdout(&exits(prod.as_person(cmd, "planner"), 2));
    assert!(
        shown.contains("Apply the saved plan once it is approved."),
        "{shown}"
    );
    assert!(prod.approve(&offboard, "alice", "alice").status.success());
    assert!(prod.approve(&offboard, "bob", "bob").status.success());
    let mut applying = prod.apply(&offboard);
    applying.env("KUBECTL", fake_kubectl());
    exits(applying, 0);
    assert!(
        prod.cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_none()
    );

    let mut drift = prod.as_person(prod.cluster.admin(&["drift", "--env", "prod"]), "operator");
    let out = drift.output().unwrap();
    assert!(
        stdout(&out).contains(
            "`cargo xtask admin offboard kalyan --delete-data --plan --save-plan kalyan-data.plan --env prod` \
             removes them once the plan is approved and applied"
        ),
        "{}",
        stdout(&out)
    );
}

/// What an approver reads around the approvals: `approve` with neither a
/// key nor a signature says how to give one; a role held only by the
/// planner is said so (not "nobody holds it"); and once applied, `plan
/// show` says the plan was applied already instead of "Ready".
#[test]
fn approvals_say_what_is_missing_and_what_was_done() {
    let prod = Prod::new();
    let file = prod.plan("kalyan.plan");

    let mut bare = prod.cluster.xtask(&["approve"]);
    bare.arg(&file);
    let out = exits(prod.as_person(bare, "alice"), 1);
    assert!(
        stderr(&out).contains("approving needs your signature: give --key PATH")
            && stderr(&out).contains("or --signature FILE"),
        "{}",
        stderr(&out)
    );

    // Only the planner holds devops-lead in this approvers file.
    let keys = common::repo_root().join("tests/fixtures/keys");
    let line = |who: &str, key: &str, roles: &str| {
        let public = std::fs::read_to_string(keys.join(key)).unwrap();
        let mut parts = public.split_whitespace();
        let (kind, data) = (parts.next().unwrap(), parts.next().unwrap());
        format!(
            "{who}@example.in namespaces=\"xtask-plan@mla-platform.in\" {kind} {data} roles={roles}\n"
        )
    };
    let approvers = prod.dir.path().join("approvers");
    let full = std::fs::read_to_string(&approvers).unwrap();
    std::fs::write(
        &approvers,
        line("planner", "dave.pub", "devops-lead") + &line("bob", "bob.pub", "product-owner"),
    )
    .unwrap();
    let mut show = prod.cluster.xtask(&["plan", "show"]);
    show.arg(&file);
    let shown = stdout(&exits(prod.as_person(show, "bob"), 0));
    assert!(
        shown.contains("only the planner, planner@example.in, holds devops-lead"),
        "{shown}"
    );
    std::fs::write(&approvers, full).unwrap();

    assert!(prod.approve(&file, "alice", "alice").status.success());
    assert!(prod.approve(&file, "bob", "bob").status.success());
    let mut show = prod.cluster.xtask(&["plan", "show"]);
    show.arg(&file);
    assert!(stdout(&exits(prod.as_person(show, "bob"), 0)).contains("Ready: `cargo xtask apply "));
    exits(prod.apply(&file), 0);
    let mut show = prod.cluster.xtask(&["plan", "show"]);
    show.arg(&file);
    let shown = stdout(&exits(prod.as_person(show, "bob"), 0));
    assert!(
        shown.contains("- it was applied already, at ") && !shown.contains("Ready:"),
        "{shown}"
    );
}
