//! The gate of an environment with required approvals (environments.yaml
//! `approvals`): a direct provision, offboard, restore, rotate or bulk
//! change is refused there before anything is read or changed, with the
//! commands that make it instead, unless `--break-glass REASON` (a banner,
//! a typed confirmation, the reason on every audit entry). The environments
//! are tests/fixtures/environments-gated.yaml: prod requires devops-lead and
//! product-owner, staging team-lead, dev nothing.

mod common;

use assert_cmd::Command;
use common::{Cluster, exits, fake_kubectl, fixture, stderr, stdout};
use serde_json::Value;

fn gated(mut cmd: Command) -> Command {
    cmd.env("XTASK_ENVIRONMENTS", fixture("environments-gated.yaml"));
    cmd
}

/// `cargo xtask admin ARGS` in the gated environments.
fn admin(cluster: &Cluster, args: &[&str]) -> Command {
    gated(cluster.admin(args))
}

/// `cargo xtask provision TENANT --values tests/fixtures/TENANT.yaml EXTRA`
/// in the gated environments.
fn provision(cluster: &Cluster, tenant: &str, extra: &[&str]) -> Command {
    gated(cluster.provision(tenant, &fixture(&format!("{tenant}.yaml")), extra))
}

/// `cargo xtask provision --all EXTRA` of the cluster's committed configs.
fn provision_all(cluster: &Cluster, extra: &[&str]) -> Command {
    let mut cmd = gated(cluster.xtask(&["provision", "--all", "--kubectl"]));
    cmd.arg(fake_kubectl());
    cmd.arg("--tenants-dir").arg(cluster.tenants.path());
    cmd.args(extra);
    cmd
}

fn audit(cluster: &Cluster) -> Vec<Value> {
    std::fs::read_to_string(cluster.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What the cluster is, and how many kubectl calls were made: what a
/// refusal must leave exactly as it was.
fn snapshot(cluster: &Cluster) -> (Vec<Value>, usize) {
    (cluster.objects(), cluster.calls().len())
}

/// Every gated command in prod: exit 1, the way to make the change shown
/// with the run's --env, how to break glass, no kubectl call, nothing
/// changed, and the refusal recorded in the audit log under the tenants it
/// names.
#[test]
fn every_gated_command_in_prod_is_refused_before_anything_is_read() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let before = snapshot(&cluster);
    let audited = audit(&cluster).len();
    let plan = [
        "cargo xtask approve kalyan.plan --key ~/.ssh/id_ed25519    # once by each role: devops-lead, product-owner",
        "cargo xtask apply kalyan.plan",
    ];
    let offboard_plan = [
        "cargo xtask admin offboard kalyan --plan --save-plan kalyan-offboard.plan --env prod",
        "cargo xtask approve kalyan-offboard.plan --key ~/.ssh/id_ed25519",
        "cargo xtask apply kalyan-offboard.plan",
    ];
    let cases: Vec<(Command, &str, Vec<&str>, Vec<&str>)> = vec![
        (
            provision(&cluster, "kalyan", &["--yes", "--env", "prod"]),
            "provisioning of tenant kalyan",
            [
                &["cargo xtask provision kalyan --plan --save-plan kalyan.plan --env prod"][..],
                &plan[..],
            ]
            .concat(),
            vec!["kalyan"],
        ),
        (
            provision_all(&cluster, &["--yes", "--env", "prod"]),
            "provisioning of every committed tenant (--all)",
            vec![
                "cargo xtask provision --all --plan --save-plan fleet.plan --env prod",
                "cargo xtask approve fleet.plan --key ~/.ssh/id_ed25519",
                "cargo xtask apply fleet.plan",
            ],
            vec!["all"],
        ),
        (
            admin(
                &cluster,
                &[
                    "offboard",
                    "kalyan",
                    "--no-backup",
                    "--yes",
                    "--env",
                    "prod",
                ],
            ),
            "offboarding of tenant kalyan",
            offboard_plan.to_vec(),
            vec!["kalyan"],
        ),
        (
            // The archive does not exist: the gate comes before it is read.
            admin(
                &cluster,
                &[
                    "restore",
                    "kalyan",
                    "missing.tar.gz",
                    "--yes",
                    "--env",
                    "prod",
                ],
            ),
            "a restore of tenant kalyan",
            vec!["It cannot be planned"],
            vec!["kalyan"],
        ),
        (
            admin(&cluster, &["rotate", "kalyan", "--yes", "--env", "prod"]),
            "a credential rotation of tenant kalyan",
            vec!["It cannot be planned"],
            vec!["kalyan"],
        ),
        (
            admin(
                &cluster,
                &["restart", "mylapore", "kalyan", "--yes", "--env", "prod"],
            ),
            "a restart of tenants mylapore, kalyan",
            vec![
                "It cannot be planned",
                "One tenant at a time needs no approvals: `cargo xtask admin restart TENANT --env prod`",
            ],
            vec!["kalyan", "mylapore"],
        ),
        (
            admin(&cluster, &["suspend", "--all", "--yes", "--env", "prod"]),
            "a suspension of every tenant (--all)",
            vec!["`cargo xtask admin suspend TENANT --env prod`"],
            vec!["all"],
        ),
        (
            admin(
                &cluster,
                &["resume", "--tier", "small", "--yes", "--env", "prod"],
            ),
            "a resumption of the tenants of tier small",
            vec!["`cargo xtask admin resume TENANT --env prod`"],
            vec!["tier small"],
        ),
    ];
    let mut expected_audit = audited;
    for (cmd, what, shown, recorded) in cases {
        let out = exits(cmd, 1);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "environment prod requires approvals (devops-lead, product-owner) for {what}, so it is not made directly."
            )),
            "{what}: {err}"
        );
        for line in shown {
            assert!(err.contains(line), "{what}: no {line:?} in\n{err}");
        }
        assert!(
            err.contains("run this command again with --break-glass \"REASON\""),
            "{what}: {err}"
        );
        assert!(err.trim_end().ends_with("Nothing was changed."), "{err}");
        assert_eq!(
            snapshot(&cluster),
            before,
            "{what} changed or read the cluster"
        );
        let entries = audit(&cluster);
        let new: Vec<(&str, &str)> = entries[expected_audit..]
            .iter()
            .map(|e| (e["tenant"].as_str().unwrap(), e["result"].as_str().unwrap()))
            .collect();
        assert_eq!(new.len(), recorded.len(), "{what}: {new:?}");
        for ((tenant, result), expected) in new.iter().zip(&recorded) {
            assert_eq!(tenant, expected, "{what}");
            assert!(
                result.starts_with("error: environment prod requires approvals"),
                "{what}: {result}"
            );
        }
        expected_audit = entries.len();
        assert!(entries.iter().all(|e| e.get("break_glass").is_none()));
    }
    // The committed configs are as they were (provision saves a config
    // only after it applied).
    assert!(
        std::fs::read_to_string(cluster.tenants.path().join("kalyan.yaml"))
            .unwrap()
            .contains("kalyan")
    );
}

/// What the gate does not stop: `--plan` (it reads, and changes nothing),
/// a restart, suspension or resumption of one tenant, and any change in an
/// environment that requires no approvals.
#[test]
fn plans_single_tenant_changes_and_dev_are_not_gated() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    // prod serves the tenant on its own host too: the plan shows a change.
    let before = snapshot(&cluster).0;
    let out = exits(
        provision(&cluster, "kalyan", &["--plan", "--env", "prod"]),
        2,
    );
    assert!(
        !stderr(&out).contains("requires approvals"),
        "{}",
        stderr(&out)
    );
    assert!(cluster.objects() == before, "a plan changed the cluster");

    let out = exits(
        admin(&cluster, &["restart", "kalyan", "--yes", "--env", "prod"]),
        0,
    );
    assert!(
        stdout(&out).contains("Tenant kalyan restarted"),
        "{}",
        stdout(&out)
    );
    exits(
        admin(&cluster, &["suspend", "kalyan", "--yes", "--env", "prod"]),
        0,
    );
    exits(
        admin(&cluster, &["resume", "kalyan", "--yes", "--env", "prod"]),
        0,
    );

    // dev requires no approvals: bulk changes, rotation and provision go ahead.
    let out = exits(admin(&cluster, &["restart", "--all", "--env", "dev"]), 0);
    assert!(
        stdout(&out).contains("kalyan: ok (restarted; the bot is ready)")
            && stdout(&out).contains("2 tenants: 2 done, 0 skipped, 0 failed."),
        "{}",
        stdout(&out)
    );
    exits(admin(&cluster, &["rotate", "mylapore", "--env", "dev"]), 0);
    exits(provision(&cluster, "kalyan", &["--yes", "--env", "dev"]), 0);
    assert!(
        audit(&cluster)
            .iter()
            .all(|e| e.get("break_glass").is_none() && e["result"] == "ok"),
        "{:#?}",
        audit(&cluster)
    );
}

/// `--break-glass` without a terminal: `--yes` stands in for the typed
/// name (as for the environment's own confirmation); the banner is on
/// stderr before anything is done; the change is made; every audit entry
/// of the command carries the reason, and `admin audit` marks it.
/// Without `--yes` it is refused, audited with the reason, nothing changed.
#[test]
fn break_glass_makes_the_change_loudly_and_audits_the_reason() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let reason = "INC-4711: bot down, approvers unreachable";
    let audited = audit(&cluster).len();

    let before = cluster.objects_but_locks();
    let out = exits(
        admin(
            &cluster,
            &["rotate", "kalyan", "--env", "prod", "--break-glass", reason],
        ),
        1,
    );
    assert!(
        stderr(&out).contains(
            "breaking glass needs confirmation for a credential rotation of tenant kalyan: \
             run it in a terminal to type `kalyan`, or pass --yes"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        cluster.objects_but_locks() == before,
        "the refused rotation changed the cluster"
    );

    let secret = |c: &Cluster| c.get("Secret", Some("tenant-kalyan"), "bot-credentials");
    let old = secret(&cluster);
    let out = exits(
        admin(
            &cluster,
            &[
                "rotate",
                "kalyan",
                "--yes",
                "--env",
                "prod",
                "--break-glass",
                reason,
            ],
        ),
        0,
    );
    let err = stderr(&out);
    let banner = format!(
        "BREAK GLASS: a credential rotation of tenant kalyan in environment prod, without the approvals \
         it requires (devops-lead, product-owner). Reason: \"{reason}\". This is recorded in the audit log."
    );
    let at = err
        .find(&banner)
        .unwrap_or_else(|| panic!("no banner in\n{err}"));
    assert!(
        at < err.find("Writing new credentials").unwrap(),
        "the banner comes after the change started:\n{err}"
    );
    assert_ne!(secret(&cluster), old, "the credentials were not rotated");

    // A bulk change: one banner, every tenant's entry carries the reason.
    let out = exits(
        admin(
            &cluster,
            &[
                "restart",
                "--all",
                "--yes",
                "--env",
                "prod",
                "--break-glass",
                reason,
            ],
        ),
        0,
    );
    assert!(
        stderr(&out).contains(
            "BREAK GLASS: a restart of every tenant (--all) in environment prod, without the approvals"
        ),
        "{}",
        stderr(&out)
    );
    // Provision, through the same gate and the same audit.
    exits(
        provision(
            &cluster,
            "mylapore",
            &["--yes", "--env", "prod", "--break-glass", reason],
        ),
        0,
    );

    let entries = audit(&cluster);
    // Sorted: the batch's tenants finish in any order.
    let mut new: Vec<(&str, &str, &str)> = entries[audited..]
        .iter()
        .map(|e| {
            (
                e["tenant"].as_str().unwrap(),
                e["result"].as_str().unwrap(),
                e["break_glass"].as_str().unwrap_or("(none)"),
            )
        })
        .collect();
    new.sort();
    assert_eq!(
        new,
        [
            (
                "kalyan",
                "error: breaking glass needs confirmation for a credential rotation of tenant kalyan: \
                 run it in a terminal to type `kalyan`, or pass --yes",
                reason
            ),
            ("kalyan", "ok", reason),
            ("kalyan", "ok", reason),
            ("mylapore", "ok", reason),
            ("mylapore", "ok", reason),
        ]
    );
    let table = stdout(&exits(
        gated(cluster.xtask(&["admin", "audit", "--limit", "1"])),
        0,
    ));
    // The table may cut the result short, never the mark.
    assert!(table.contains("BREAK GLASS"), "{table}");
}

/// `--break-glass` where it means nothing, or with no reason: refused
/// before anything is read, nothing changed.
#[test]
fn break_glass_needs_a_reason_and_a_gate_to_break() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let before = snapshot(&cluster);
    let refused = |cmd: Command, says: &str| {
        let out = exits(cmd, 1);
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert!(stderr(&out).trim_end().ends_with("Nothing was changed."));
        assert!(
            snapshot(&cluster) == before,
            "{says}: the cluster was read or changed"
        );
        assert!(!stderr(&out).contains("BREAK GLASS"), "{}", stderr(&out));
    };
    for blank in ["", "   "] {
        refused(
            admin(
                &cluster,
                &[
                    "rotate",
                    "kalyan",
                    "--yes",
                    "--env",
                    "prod",
                    "--break-glass",
                    blank,
                ],
            ),
            "--break-glass needs a reason: say why this cannot wait for approvals",
        );
    }
    refused(
        admin(
            &cluster,
            &[
                "rotate",
                "kalyan",
                "--yes",
                "--env",
                "dev",
                "--break-glass",
                "why not",
            ],
        ),
        "environment dev requires none (its `approvals` in environments.yaml is empty): there is \
         nothing to break. Drop --break-glass",
    );
    refused(
        admin(
            &cluster,
            &["restart", "--all", "--yes", "--break-glass", "why not"],
        ),
        "this run has no environment",
    );
    refused(
        admin(
            &cluster,
            &[
                "restart",
                "kalyan",
                "--yes",
                "--env",
                "prod",
                "--break-glass",
                "why not",
            ],
        ),
        "--break-glass means nothing here: a restart of one tenant needs no approvals",
    );
    refused(
        provision(
            &cluster,
            "kalyan",
            &["--plan", "--env", "prod", "--break-glass", "why not"],
        ),
        "--break-glass means nothing here: --plan changes nothing",
    );
}
