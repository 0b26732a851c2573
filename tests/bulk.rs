//! Bulk commands end to end against the fake cluster: `restart`, `suspend`,
//! `resume` and `backup` over several names, `--all` or `--tier`; one line
//! per tenant, skipped tenants, failures that do not stop the others, one
//! confirmation, and `backup --keep`.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{Cluster, create_bot_database, exits, seed_tenants, stderr, stdout};
use serde_json::Value;

fn seeded(names: &[&str]) -> Cluster {
    let cluster = Cluster::new();
    seed_tenants(
        &cluster,
        &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    );
    cluster
}

/// The bot's restart stamp, which `rollout restart` sets.
fn restarted_at(cluster: &Cluster, tenant: &str) -> Option<Value> {
    cluster
        .get("Deployment", Some(&format!("tenant-{tenant}")), "bot")?
        .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
        .cloned()
}

/// (tenant, result) of every audit entry, oldest first.
fn audited(cluster: &Cluster) -> Vec<(String, String)> {
    let out = exits(cluster.xtask(&["admin", "audit", "-o", "json"]), 0);
    let entries: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    entries
        .iter()
        .map(|e| {
            (
                e["tenant"].as_str().unwrap().to_owned(),
                e["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn namespace_reads(cluster: &Cluster) -> usize {
    cluster
        .calls()
        .iter()
        .filter(|c| c.iter().any(|w| w == "namespaces"))
        .count()
}

#[test]
fn restart_of_several_names_and_of_all_skips_a_suspended_tenant() {
    let cluster = seeded(&["alpha", "bravo", "charlie"]);
    exits(cluster.admin(&["suspend", "bravo"]), 0);
    let bravo = cluster.get("Deployment", Some("tenant-bravo"), "bot");
    let reads = namespace_reads(&cluster);

    let out = exits(cluster.admin(&["restart", "bravo", "alpha"]), 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("bravo: skipped (suspended since ") && lines[0].contains(" by "),
        "{text}"
    );
    assert_eq!(lines[1], "alpha: ok (restarted; the bot is ready)");
    assert_eq!(lines[2], "2 tenants: 1 done, 1 skipped, 0 failed.");
    assert!(restarted_at(&cluster, "alpha").is_some());
    assert!(restarted_at(&cluster, "charlie").is_none(), "not named");
    assert_eq!(
        cluster.get("Deployment", Some("tenant-bravo"), "bot"),
        bravo,
        "a skipped tenant was touched"
    );
    assert_eq!(
        namespace_reads(&cluster) - reads,
        1,
        "the selection reads the namespaces once"
    );
    // The single-tenant progress lines stay silent in a batch.
    assert!(!stderr(&out).contains("Waiting up to"), "{}", stderr(&out));

    // kubectl refuses a second restart of one bot within the same second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let alpha = restarted_at(&cluster, "alpha");
    let out = exits(cluster.admin(&["restart", "--all"]), 0);
    assert!(
        stdout(&out).ends_with("3 tenants: 2 done, 1 skipped, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
    assert_ne!(restarted_at(&cluster, "alpha"), alpha);
    assert!(restarted_at(&cluster, "charlie").is_some());
    assert!(restarted_at(&cluster, "bravo").is_none());
    // Skipped tenants are not changed, so not audited.
    let mut restarts: Vec<(String, String)> = audited(&cluster).into_iter().skip(1).collect();
    restarts.sort();
    assert_eq!(
        restarts,
        [("alpha", "ok"), ("alpha", "ok"), ("charlie", "ok")].map(|(t, r)| (t.into(), r.into())),
        "{restarts:?}"
    );
}

#[test]
fn a_failing_tenant_does_not_stop_the_others_and_the_exit_status_is_1() {
    let cluster = seeded(&["alpha", "bravo", "charlie"]);
    // bravo's bot crash loops: its restart never becomes ready.
    cluster
        .open()
        .set_pod_state("tenant-bravo", "bot", "CrashLoopBackOff")
        .unwrap();
    let out = exits(cluster.admin(&["restart", "--all", "--jobs", "1"]), 1);
    let text = stdout(&out);
    assert!(
        text.contains("alpha: ok (restarted; the bot is ready)\n"),
        "{text}"
    );
    assert!(
        text.contains("charlie: ok (restarted; the bot is ready)\n"),
        "{text}"
    );
    assert!(
        text.contains("bravo: FAILED: the restart of tenant bravo was started but the bot is not ready after 5m"),
        "{text}"
    );
    // The later lines of the reason are indented under the tenant's.
    let failed: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("bravo: FAILED"))
        .skip(1)
        .take_while(|l| !l.starts_with("charlie:"))
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l.starts_with("    ")),
        "{text}"
    );
    assert!(
        text.ends_with("3 tenants: 2 done, 0 skipped, 1 failed.\n"),
        "{text}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("1 of 3 tenants failed")
            && err
                .contains("Retry it with `cargo xtask admin restart bravo` with the same options."),
        "{err}"
    );
    assert!(restarted_at(&cluster, "charlie").is_some());
    let results = audited(&cluster);
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|(t, r)| (t == "bravo") == r.starts_with("error: the restart of tenant bravo")),
        "{results:?}"
    );
}

#[test]
fn tier_selects_only_that_tiers_tenants() {
    // kalyan's config says tier medium; mylapore's names none (small).
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let mylapore = cluster.get("Deployment", Some("tenant-mylapore"), "bot");
    let out = exits(cluster.admin(&["restart", "--tier", "medium"]), 0);
    assert_eq!(
        stdout(&out),
        "kalyan: ok (restarted; the bot is ready)\n1 tenant: 1 done, 0 skipped, 0 failed.\n"
    );
    assert!(restarted_at(&cluster, "kalyan").is_some());
    assert_eq!(
        cluster.get("Deployment", Some("tenant-mylapore"), "bot"),
        mylapore
    );

    // A tier the platform does not have is refused before the cluster is asked.
    let calls = cluster.calls().len();
    let out = exits(cluster.admin(&["suspend", "--tier", "huge"]), 1);
    assert_eq!(
        stderr(&out),
        "error: --tier huge is not a tier of the platform; the tiers are: large, medium, small\nNothing was changed.\n"
    );
    assert_eq!(cluster.calls().len(), calls);
    // A tier no tenant has says which tiers are in use.
    let out = exits(cluster.admin(&["suspend", "--tier", "large"]), 1);
    assert!(
        stderr(&out).contains("has tier large; the tiers in use are: medium (1), small (1)"),
        "{}",
        stderr(&out)
    );
    assert!(
        cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_some()
    );
}

#[test]
fn an_unknown_name_is_refused_before_anything_changes() {
    let cluster = seeded(&["alpha", "bravo"]);
    let objects = cluster.objects();
    for command in ["restart", "suspend", "resume", "backup"] {
        let out = exits(cluster.admin(&[command, "alpha", "zulu", "bravo"]), 1);
        assert!(
            stderr(&out).starts_with(
                "error: tenant zulu does not exist on this cluster; the tenants are: alpha, bravo\n"
            ),
            "{command}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{command}");
    }
    assert_eq!(cluster.objects(), objects, "the cluster changed");
    assert!(!cluster.audit_log().exists(), "something was audited");
    // A name and a selection together are a usage error.
    let out = exits(cluster.admin(&["restart", "alpha", "--all"]), 2);
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    exits(cluster.admin(&["backup", "--all", "--keep", "0"]), 2);
}

#[test]
fn suspend_all_then_resume_all_round_trips() {
    let cluster = seeded(&["alpha", "bravo"]);
    let snapshot = |c: &Cluster| {
        ["alpha", "bravo"].map(|t| {
            let ns = format!("tenant-{t}");
            (
                c.get("Deployment", Some(&ns), "bot")
                    .map(xtask::object::applyable),
                c.get("Ingress", Some(&ns), "bot")
                    .map(xtask::object::applyable),
                c.get("Namespace", None, &ns).map(xtask::object::applyable),
            )
        })
    };
    let before = snapshot(&cluster);
    let out = exits(cluster.admin(&["suspend", "--all"]), 0);
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.ends_with(
                ": ok (suspended: its website and bot no longer answer; its data is kept)"
            ))
            .count(),
        2,
        "{}",
        stdout(&out)
    );
    for t in ["alpha", "bravo"] {
        let ns = format!("tenant-{t}");
        assert!(cluster.get("Ingress", Some(&ns), "bot").is_none());
        assert_eq!(
            cluster.get("Deployment", Some(&ns), "bot").unwrap()["spec"]["replicas"],
            0
        );
    }
    let again = exits(cluster.admin(&["suspend", "--all"]), 0);
    assert!(
        stdout(&again).contains("alpha: skipped (already suspended since ")
            && stdout(&again).ends_with("2 tenants: 0 done, 2 skipped, 0 failed.\n"),
        "{}",
        stdout(&again)
    );

    let out = exits(cluster.admin(&["resume", "--all"]), 0);
    assert!(
        stdout(&out).contains("bravo: ok (resumed, as it was before it was suspended)\n")
            && stdout(&out).ends_with("2 tenants: 2 done, 0 skipped, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        snapshot(&cluster),
        before,
        "resume did not restore the state"
    );
    let again = exits(cluster.admin(&["resume", "alpha", "bravo"]), 0);
    assert_eq!(
        stdout(&again),
        "alpha: skipped (not suspended)\nbravo: skipped (not suspended)\n2 tenants: 0 done, 2 skipped, 0 failed.\n"
    );
}

#[test]
fn production_asks_once_for_the_batch_and_refuses_without_a_terminal() {
    let cluster = seeded(&["alpha", "bravo", "charlie"]);
    let objects = cluster.objects();
    let out = exits(
        cluster.admin(&["restart", "alpha", "charlie", "--env", "prod"]),
        1,
    );
    assert_eq!(
        stderr(&out),
        "Environment prod (context prod-cluster): a restart of 2 tenants: alpha, charlie.\n\
         error: environment prod needs confirmation for a restart of 2 tenants: alpha, charlie: \
         run it in a terminal to type `all`, or pass --yes\nNothing was changed.\n"
    );
    let out = exits(cluster.admin(&["suspend", "--all", "--env", "prod"]), 1);
    assert!(
        stderr(&out).contains("needs confirmation for a suspension of all 3 tenants"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cluster.objects(),
        objects,
        "a refused batch changed the cluster"
    );
    assert!(
        audited(&cluster)
            .iter()
            .all(|(_, r)| r.starts_with("error: environment prod needs confirmation")),
        "refusals are recorded as such"
    );
    let out = exits(
        cluster.admin(&["restart", "--all", "--env", "prod", "--yes"]),
        0,
    );
    assert!(
        stdout(&out).ends_with("3 tenants: 3 done, 0 skipped, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
}

/// The archive names in `dir` that `prefix` starts, sorted.
fn archives(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".tar.gz"))
        .collect();
    names.sort();
    names
}

#[test]
fn backup_all_keep_2_leaves_exactly_two_verified_archives_per_tenant() {
    let cluster = seeded(&["kalyan", "kalyan-east", "mylapore"]);
    create_bot_database(
        &cluster.volume("kalyan", "bot-data").join("bot.sqlite3"),
        &["2026-11-23T10:00:00Z"],
        &[],
        4,
    );
    let dir = tempfile::tempdir().unwrap();
    let backup = |now: &str, args: &[&str]| {
        let mut cmd = cluster.admin(&["backup"]);
        cmd.args(args)
            .arg("--out")
            .arg(dir.path())
            .env("XTASK_NOW", now);
        cmd
    };
    // kalyan-east, whose name starts with kalyan's, has archives of its own,
    // then is offboarded: its archives must outlive every pruning of kalyan's.
    for now in ["2026-11-20T01:00:00Z", "2026-11-21T01:00:00Z"] {
        exits(backup(now, &["kalyan-east"]), 0);
    }
    let east: Vec<(PathBuf, Vec<u8>)> = archives(dir.path(), "kalyan-east-")
        .iter()
        .map(|n| {
            (
                dir.path().join(n),
                std::fs::read(dir.path().join(n)).unwrap(),
            )
        })
        .collect();
    exits(
        cluster
            .admin(&[
                "offboard",
                "kalyan-east",
                "--no-backup",
                "--yes",
                "--tenants-dir",
            ])
            .arg(cluster.tenants.path()),
        0,
    );
    assert!(
        cluster
            .get("Namespace", None, "tenant-kalyan-east")
            .unwrap()["metadata"]["annotations"][xtask::names::OFFBOARDED_ANNOTATION]
            .is_string(),
        "offboard marks the namespace it keeps"
    );

    for (run, hour) in ["06", "07", "08"].iter().enumerate() {
        let out = exits(
            backup(
                &format!("2026-11-24T{hour}:00:00Z"),
                &["--all", "--keep", "2"],
            ),
            0,
        );
        let text = stdout(&out);
        assert!(
            text.contains("kalyan-east: skipped (offboarded since "),
            "{text}"
        );
        assert!(
            text.ends_with("3 tenants: 2 done, 1 skipped, 0 failed.\n"),
            "{text}"
        );
        for tenant in ["kalyan", "mylapore"] {
            let pruned = format!("; deleted 1 older: {tenant}-20261124T060000Z.tar.gz)\n");
            assert_eq!(text.contains(&pruned), run == 2, "run {run}: {text}");
        }
    }
    for tenant in ["kalyan", "mylapore"] {
        let kept = archives(dir.path(), &format!("{tenant}-2026"));
        assert_eq!(
            kept,
            [
                format!("{tenant}-20261124T070000Z.tar.gz"),
                format!("{tenant}-20261124T080000Z.tar.gz")
            ],
            "the newest two are kept"
        );
        for name in kept {
            let out = exits(
                cluster
                    .xtask(&["admin", "verify-backup", "-o", "json"])
                    .arg(dir.path().join(&name)),
                0,
            );
            let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(report["tenant"], tenant, "{name}: {report}");
        }
    }
    for (path, bytes) in &east {
        assert_eq!(
            std::fs::read(path).ok().as_ref(),
            Some(bytes),
            "{} was touched",
            path.display()
        );
    }

    // A backup that fails prunes nothing of its tenant; the others go on.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::fail(
            "exec",
            1,
            "error: unable to upgrade connection: pod not ready",
        )
    });
    let out = exits(
        backup(
            "2026-11-24T09:00:00Z",
            &["kalyan", "mylapore", "--keep", "1", "--jobs", "1"],
        ),
        1,
    );
    let text = stdout(&out);
    assert!(
        text.contains("kalyan: FAILED: the online backup of the database failed")
            && text.contains("No backup was written."),
        "{text}"
    );
    assert!(
        text.ends_with("2 tenants: 1 done, 0 skipped, 1 failed.\n"),
        "{text}"
    );
    assert_eq!(
        archives(dir.path(), "kalyan-2026"),
        [
            "kalyan-20261124T070000Z.tar.gz",
            "kalyan-20261124T080000Z.tar.gz"
        ]
    );
    assert_eq!(
        archives(dir.path(), "mylapore-2026"),
        ["mylapore-20261124T090000Z.tar.gz"]
    );

    // One tenant alone prunes the same way, and says what it deleted.
    let out = exits(
        backup("2026-11-24T10:00:00Z", &["kalyan", "--keep", "1"]),
        0,
    );
    let text = stdout(&out);
    let newest = dir.path().join("kalyan-20261124T100000Z.tar.gz");
    assert!(
        text.starts_with(&format!(
            "Backed up tenant kalyan to {} (",
            newest.display()
        )),
        "{text}"
    );
    for old in ["070000Z", "080000Z"] {
        let line = format!(
            "Deleted the older backup {} (--keep 1).\n",
            dir.path()
                .join(format!("kalyan-20261124T{old}.tar.gz"))
                .display()
        );
        assert!(text.contains(&line), "{text}");
    }
    assert_eq!(
        archives(dir.path(), "kalyan-2026"),
        ["kalyan-20261124T100000Z.tar.gz"]
    );
    assert_eq!(archives(dir.path(), "kalyan-east-").len(), east.len());
}

#[test]
fn ctrl_c_stops_a_batch_and_says_which_tenants_were_done_running_and_not_started() {
    let cluster = seeded(&["alpha", "bravo", "charlie"]);
    let dir = tempfile::tempdir().unwrap();
    // alpha's backup is done; bravo's first exec hangs until Ctrl-C.
    cluster.fault(fake_kubectl::Fault {
        sleep_ms: 30_000,
        skip: 2,
        times: Some(1),
        ..fake_kubectl::Fault::fail("exec", 1, "")
    });
    let child = cluster
        .admin_process(&["backup", "--all", "--jobs", "1", "--out"])
        .arg(dir.path())
        .process_group(0)
        .spawn()
        .unwrap();
    // alpha's three execs done, bravo's first hanging (30 s): Ctrl-C.
    let started = std::time::Instant::now();
    let out = common::ctrl_c_after(&cluster, child, "exec", 3);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed().as_secs() < 20,
        "Ctrl-C did not stop the batch"
    );
    let text = stdout(&out);
    assert!(text.starts_with("alpha: ok ("), "{text}");
    assert!(
        text.contains("bravo: FAILED: ") && text.contains("No backup was written."),
        "{text}"
    );
    assert!(!text.contains("charlie:"), "charlie was started: {text}");
    assert!(
        text.ends_with("3 tenants: 1 done, 0 skipped, 1 failed, 1 not started.\n"),
        "{text}"
    );
    let err = stderr(&out);
    for line in [
        "done: alpha",
        "stopped while running (its line above says what state it is left in): bravo",
        "not started: charlie",
        "`cargo xtask admin backup bravo charlie`",
    ] {
        assert!(err.contains(line), "{line}: {err}");
    }
    assert_eq!(archives(dir.path(), ""), archives(dir.path(), "alpha-"));
    assert_eq!(archives(dir.path(), "alpha-").len(), 1);
}
