//! Plans of the whole fleet (`provision --all --plan --save-plan`, then
//! `cargo xtask apply`): one plan file of the tenants that would change,
//! made from the one read `--all` makes, applied through `--all`'s batch
//! path to exactly those tenants, all of them or none.

mod common;

use std::path::{Path, PathBuf};

use common::{Cluster, Run, decode_base64, exits, fake_kubectl, seeded_values, stderr, stdout};
use serde_json::Value;

fn fleet(n: usize) -> Cluster {
    Cluster::fleet(n)
}

fn name(i: usize) -> String {
    common::fleet_name(i)
}

fn change(cluster: &Cluster, i: usize, tagline: &str) {
    cluster.change_tagline(i, tagline)
}

fn plan_all(cluster: &Cluster, save: Option<&Path>) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["provision", "--all", "--plan", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path())
        .arg("--kubectl")
        .arg(fake_kubectl());
    if let Some(file) = save {
        cmd.arg("--save-plan").arg(file);
    }
    cmd
}

fn apply(cluster: &Cluster, file: &Path) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["apply"]);
    cmd.arg(file)
        .arg("--kubectl")
        .arg(fake_kubectl())
        .arg("--tenants-dir")
        .arg(cluster.tenants.path());
    cmd
}

fn run_of(cluster: &Cluster, cmd: assert_cmd::Command) -> Run {
    cluster.run_of(cmd)
}

fn audit(cluster: &Cluster) -> Vec<Value> {
    std::fs::read_to_string(cluster.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The objects of one tenant's namespace as the cluster has them.
fn tenant_objects(cluster: &Cluster, tenant: &str) -> Vec<Value> {
    let ns = format!("tenant-{tenant}");
    cluster
        .objects()
        .into_iter()
        .filter(|o| {
            o["metadata"]["namespace"] == ns.as_str() || o["metadata"]["name"] == ns.as_str()
        })
        .collect()
}

fn leases(cluster: &Cluster) -> usize {
    cluster
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Lease")
        .count()
}

/// Saves the plan of `--all` of `cluster` into `dir`; something would change (exit 2).
#[track_caller]
fn save_plan(cluster: &Cluster, dir: &Path) -> (PathBuf, Run) {
    let file = dir.join("fleet.plan");
    let run = run_of(cluster, plan_all(cluster, Some(&file)));
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(file.exists(), "{}", run.stdout);
    (file, run)
}

const READ: [&str; 3] = [
    "get namespaces",
    "get resourcequota,limitrange,networkpolicy,serviceaccount,configmap,secret,persistentvolumeclaim,deployment,service",
    "get ingresses",
];

/// A fleet with two of its tenants changed: `--all --plan --save-plan`
/// saves a plan of exactly those two, from the one read of `--all`, and
/// changes nothing (not even a lock); `apply` applies them through the
/// batch path, each with its audit line carrying the plan's digest, after
/// which nothing is left to change. The calls of both are the same at 3
/// tenants and at 150: they do not grow with the fleet.
#[test]
fn a_fleet_plan_holds_the_changed_tenants_and_applies_them_in_constant_calls() {
    let mut calls = Vec::new();
    for n in [3, 150] {
        let cluster = fleet(n);
        let dir = tempfile::tempdir().unwrap();
        // The lock namespace is made on the first lock in a cluster's life.
        exits(
            {
                let mut cmd = cluster.xtask(&["provision", "--all", "--tenants-dir"]);
                cmd.arg(cluster.tenants.path())
                    .arg("--kubectl")
                    .arg(fake_kubectl());
                cmd
            },
            0,
        );
        change(&cluster, 1, "Tagline one");
        change(&cluster, 2, "Tagline two");
        let before = cluster.objects();
        let (file, planned) = save_plan(&cluster, dir.path());
        assert_eq!(cluster.objects(), before, "planning changed the cluster");
        // The one read of `--all`, then the cluster's identity for the plan.
        let mut want = READ.to_vec();
        want.push("get namespace");
        assert_eq!(planned.verbs(), want, "{n} tenants");
        assert!(
            planned.stdout.contains(
                "Tenant t0001 would change in tenant-t0001 (2 objects):\n  ~ configmap/bot-config\n      \
                 .data.SITE_TAGLINE differs\n  ~ deployment/bot\n"
            ),
            "{}",
            planned.stdout
        );
        assert!(
            planned.stdout.contains(&format!(
                "{n} tenants: 2 would change, {} up to date, 0 skipped, 0 failed.\n",
                n - 2
            )),
            "{}",
            planned.stdout
        );

        let text = std::fs::read_to_string(&file).unwrap();
        let plan: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(plan["all"], true);
        assert_eq!(plan["action"], "provision");
        let tenants: Vec<&str> = plan["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["t0001", "t0002"]);
        let diff = plan["tenants"][0]["diff"].as_str().unwrap();
        assert!(
            diff.starts_with("# Compared locally with the cluster as `provision --all --plan` read it once, not by `kubectl diff`")
                && diff.contains("~ configmap/bot-config\n    .data.SITE_TAGLINE differs\n"),
            "{diff}"
        );

        let applied = run_of(&cluster, apply(&cluster, &file));
        assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
        let mut want = vec![
            // The cluster's identity, checked against the plan's.
            "get namespace",
            // The claims lock and both tenants', in one call.
            "create",
        ];
        want.extend(READ);
        want.extend([
            // Both tenants in one apply, both bots waited for in one read.
            "apply",
            "get deployments",
            // Every lock released: read, then delete ours.
            "get leases",
            "delete lease",
        ]);
        assert_eq!(applied.verbs(), want, "{n} tenants");
        calls.push(applied.calls.len());
        assert!(
            applied
                .stdout
                .ends_with("2 tenants: 2 applied, 0 up to date, 0 skipped, 0 failed.\n"),
            "{}",
            applied.stdout
        );
        let configmap = cluster
            .get("ConfigMap", Some("tenant-t0002"), "bot-config")
            .unwrap();
        assert!(configmap.to_string().contains("Tagline two"), "{configmap}");
        assert_eq!(leases(&cluster), 0);
        let digest = format!("sha256:{}", xtask::digest::sha256_hex(text.as_bytes()));
        let recorded: Vec<(String, String)> = audit(&cluster)
            .into_iter()
            .filter(|e| e["plan"] == digest.as_str())
            .map(|e| {
                (
                    e["tenant"].as_str().unwrap().to_owned(),
                    e["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            recorded,
            [("t0001".into(), "ok".into()), ("t0002".into(), "ok".into())]
        );

        // Once.
        let again = refused(&cluster, apply(&cluster, &file), &["was applied already"]);
        assert!(
            again.stderr.contains("a plan applies once"),
            "{}",
            again.stderr
        );

        // As planned: nothing is left to change.
        let out = exits(plan_all(&cluster, None), 0);
        assert!(
            stdout(&out).contains("Nothing would change: the cluster matches every config."),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(calls[0], calls[1], "3 tenants and 150");
}

/// Only the planned tenants are applied: a config changed after planning
/// whose tenant is not in the plan is left for the next plan.
#[test]
fn a_fleet_plan_applies_exactly_its_tenants() {
    let cluster = fleet(3);
    let dir = tempfile::tempdir().unwrap();
    change(&cluster, 1, "Tagline one");
    let (file, _) = save_plan(&cluster, dir.path());
    change(&cluster, 0, "Not planned");
    let t0000 = tenant_objects(&cluster, "t0000");
    let out = exits(apply(&cluster, &file), 0);
    assert!(
        stdout(&out).ends_with("1 tenant: 1 applied, 0 up to date, 0 skipped, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(tenant_objects(&cluster, "t0000"), t0000);
    let configmap = cluster
        .get("ConfigMap", Some("tenant-t0001"), "bot-config")
        .unwrap();
    assert!(configmap.to_string().contains("Tagline one"));
    // The tenant left out still differs, and the next plan says so.
    let out = exits(plan_all(&cluster, None), 2);
    assert!(
        stdout(&out).contains("Tenant t0000 would change in tenant-t0000"),
        "{}",
        stdout(&out)
    );
}

/// A refused apply: exit 1 with each of `messages` in its error, "Nothing
/// was changed.", the cluster as it was, no lock left and nothing applied.
#[track_caller]
fn refused(cluster: &Cluster, cmd: assert_cmd::Command, messages: &[&str]) -> Run {
    let before = cluster.objects_but_locks();
    let run = run_of(cluster, cmd);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    for message in messages {
        assert!(
            run.stderr.contains(message),
            "expected `{message}` in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("Nothing was changed."),
        "{}",
        run.stderr
    );
    assert_eq!(
        cluster.objects_but_locks(),
        before,
        "a refused apply changed the cluster"
    );
    assert_eq!(leases(cluster), 0, "a refused apply left a lock");
    assert!(
        !run.verbs().contains(&"apply".to_owned()),
        "{:?}",
        run.verbs()
    );
    run
}

/// One tenant's object edited after planning: the whole plan is refused,
/// that tenant named with what changed, the other planned tenant not
/// applied either; each planned tenant's refusal is in the audit log.
#[test]
fn an_object_edited_after_planning_refuses_the_whole_plan() {
    let cluster = fleet(3);
    let dir = tempfile::tempdir().unwrap();
    change(&cluster, 1, "Tagline one");
    change(&cluster, 2, "Tagline two");
    let (file, _) = save_plan(&cluster, dir.path());
    cluster.kubectl(&[
        "--namespace",
        "tenant-t0001",
        "annotate",
        "deployment/bot",
        "example.in/edited=by-hand",
    ]);
    let run = refused(
        &cluster,
        apply(&cluster, &file),
        &[
            "is refused as a whole: 1 of its 2 tenants departed from it since it was planned",
            "t0001: stale plan: deployment/bot changed since it was planned",
            "plan again with `cargo xtask provision --all ",
        ],
    );
    assert!(!run.stderr.contains("t0002: "), "{}", run.stderr);
    let entries = audit(&cluster);
    let result = |tenant: &str| {
        entries
            .iter()
            .rfind(|e| e["tenant"] == tenant)
            .map(|e| e["result"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(
        result("t0001").contains("stale plan: deployment/bot changed"),
        "{}",
        result("t0001")
    );
    assert!(
        result("t0002").contains("not applied: plan") && result("t0002").contains("t0001 departed"),
        "{}",
        result("t0002")
    );
}

/// A planned tenant's config changed after planning: refused before any
/// lock is taken or the cluster read, that config named; put back, the
/// plan applies (the check is of content).
#[test]
fn a_config_changed_after_planning_refuses_the_whole_plan() {
    let cluster = fleet(3);
    let dir = tempfile::tempdir().unwrap();
    change(&cluster, 1, "Tagline one");
    change(&cluster, 2, "Tagline two");
    let (file, _) = save_plan(&cluster, dir.path());
    let config = cluster.tenants.path().join("t0002.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    change(&cluster, 2, "Tagline changed again");
    let run = refused(
        &cluster,
        apply(&cluster, &file),
        &[&format!(
            "config changed after planning: {} (tenant t0002) is not what plan {} was made from",
            config.display(),
            file.display()
        )],
    );
    assert_eq!(run.verbs(), ["get namespace"], "no lock, no read");
    std::fs::write(&config, text).unwrap();
    exits(apply(&cluster, &file), 0);
}

/// Nothing would change: exit 0, and no plan file.
#[test]
fn nothing_to_change_saves_no_plan() {
    let cluster = fleet(3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.plan");
    let out = exits(plan_all(&cluster, Some(&file)), 0);
    assert!(
        stdout(&out).contains(&format!(
            "3 tenants: 0 would change, 3 up to date, 0 skipped, 0 failed.\nNothing would change: the \
             cluster matches every config.\nNo plan was saved to {}: it would change nothing.",
            file.display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(!file.exists());
}

/// A tenant that cannot be planned (its config claims another's number):
/// named with why, exit 1, and no plan saved of the others.
#[test]
fn a_tenant_that_cannot_be_planned_saves_no_plan() {
    let cluster = fleet(3);
    let dir = tempfile::tempdir().unwrap();
    change(&cluster, 1, "Tagline one");
    let mut values = seeded_values(2, &name(2));
    values.whatsapp_number = seeded_values(0, &name(0)).whatsapp_number;
    cluster.commit_values(&name(2), &values);
    let file = dir.path().join("fleet.plan");
    let out = exits(plan_all(&cluster, Some(&file)), 1);
    let (out, err) = (stdout(&out), stderr(&out));
    assert!(
        out.contains("t0002: FAILED: ") && out.contains("WhatsApp number +917000000000 is also in"),
        "{out}"
    );
    assert!(out.contains("Tenant t0001 would change"), "{out}");
    assert!(
        out.contains(&format!("No plan was saved to {}", file.display())),
        "{out}"
    );
    assert!(err.contains("1 of 3 tenants could not be planned"), "{err}");
    assert!(!file.exists());
}

/// A new tenant in a fleet plan: planned with its credentials named, never
/// valued; created at the apply with fresh ones, which appear nowhere.
#[test]
fn a_new_tenant_of_a_fleet_plan_gets_fresh_credentials_at_the_apply() {
    let cluster = fleet(2);
    cluster.commit_values("t0002", &seeded_values(2, "t0002"));
    let dir = tempfile::tempdir().unwrap();
    let (file, planned) = save_plan(&cluster, dir.path());
    assert!(
        planned.stdout.contains(
            "+ secret/bot-credentials in tenant-t0002 (credentials generated at apply, never shown)"
        ),
        "{}",
        planned.stdout
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let plan: Value = serde_json::from_str(&text).unwrap();
    let objects = plan["tenants"][0]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["action"] == "create" && o["live"].is_null()),
        "{text}"
    );
    let applied = run_of(&cluster, apply(&cluster, &file));
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let secret = cluster
        .get("Secret", Some("tenant-t0002"), "bot-credentials")
        .unwrap();
    let values: Vec<String> = secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| decode_base64(v.as_str().unwrap()))
        .collect();
    assert!(!values.is_empty(), "{secret}");
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    for value in &values {
        assert!(value.len() >= 32 && !value.contains("redacted"), "{value}");
        for seen in [&text, &applied.stdout, &applied.stderr, &audit] {
            assert!(!seen.contains(value.as_str()));
        }
    }
    exits(plan_all(&cluster, None), 0);
}

/// SIGTERM while the apply of a fleet plan waits for its bots: the planned
/// changes stay made, the tenant whose wait was cut says so and where to
/// look (not "run the same command again", which a plan refuses), the
/// error says what the plan applied, and no lock is left.
#[test]
fn a_fleet_apply_stopped_while_waiting_says_the_change_is_made() {
    let cluster = fleet(3);
    change(&cluster, 0, "Applied before the signal");
    change(&cluster, 1, "Applied, then waited for");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.plan");
    exits(plan_all(&cluster, Some(&file)), 2);
    cluster
        .open()
        .set_pod_state("tenant-t0001", "bot", "Pending")
        .unwrap();
    let before = cluster.calls().len();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("apply")
        .arg(&file)
        .arg("--kubectl")
        .arg(fake_kubectl())
        .args(["--timeout", "60s"])
        .env("FAKE_KUBECTL_STATE", cluster.state.path())
        .env(
            "XTASK_ENVIRONMENTS",
            common::repo_root().join("tests/fixtures/environments.yaml"),
        )
        .env("XTASK_AUDIT_LOG", cluster.audit_log())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !cluster.calls()[before..]
        .iter()
        .any(|c| c[..2] == ["get", "deployments"])
    {
        assert!(started.elapsed().as_secs() < 30, "never waited");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let (text, said) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{said}");
    assert!(
        text.contains(
            "t0001: FAILED: every object of tenant t0001 was applied, but the wait for the bot to be ready \
             was interrupted. The planned change is made; see whether the bot is ready with `cargo xtask \
             admin show t0001"
        ),
        "{text}"
    );
    assert!(!text.contains("Run the same command again"), "{text}");
    assert!(
        said.contains("A plan applies once: what it applied stays; for the rest, plan again with"),
        "{said}"
    );
    assert!(
        cluster.objects().iter().all(|o| o["kind"] != "Lease"),
        "a lock was left behind"
    );
}
