//! Operators always know where they are pointed (issue 14): every command
//! that changes a cluster says first, on stderr, the environment, the
//! context, the tenants and what it will do; every `cargo xtask` command
//! it suggests carries the run's `--env` (or its `--context` when it had no
//! environment); a `--context` of no environment says that no
//! environment's rules apply.

mod common;

use common::{Cluster, exits, fake_kubectl, fixture, stderr, stdout};
use serde_json::json;

const PROD: &str = "Environment prod (context prod-cluster): ";

/// Every `cargo xtask ...` command suggested in `text`: from `cargo xtask`
/// to the closing backtick or the end of the line.
fn suggestions(text: &str) -> Vec<String> {
    text.match_indices("cargo xtask ")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest.find(['`', '\n']).unwrap_or(rest.len());
            rest[..end].trim_end_matches(['.', ',', ';']).to_owned()
        })
        .collect()
}

/// Asserts that `out`'s stderr starts with the environment line `first`,
/// and that every suggested command carries `carried`; returns how many
/// suggestions there were.
#[track_caller]
fn pointed(what: &str, out: &std::process::Output, first: &str, carried: &str) -> usize {
    let err = stderr(out);
    assert!(
        err.starts_with(first),
        "{what}: stderr does not start with `{first}`:\n{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with(PROD)).count(),
        usize::from(first == PROD || first.starts_with(PROD)),
        "{what}: the environment line is said once:\n{err}"
    );
    let all = stdout(out) + &err;
    // `approve` and `plan` read a plan file and take no environment: the
    // plan names its own.
    let found: Vec<String> = suggestions(&all)
        .into_iter()
        .filter(|s| !s.starts_with("cargo xtask approve ") && !s.starts_with("cargo xtask plan "))
        .collect();
    for s in &found {
        assert!(
            s.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w.join(" ") == carried),
            "{what}: the suggestion `{s}` does not carry `{carried}`:\n{all}"
        );
    }
    found.len()
}

/// A lease on tenant `tenant`'s lock as a command on another machine holds
/// it (unexpired), put straight into the fake cluster.
fn hold_lock(cluster: &Cluster, tenant: &str) {
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": format!("tenant-{tenant}"),
            "namespace": "xtask-locks",
            "annotations": {
                "xtask.mla-platform.io/command": format!("admin restart {tenant}"),
                "xtask.mla-platform.io/process": "laptop-7:4242",
            },
        },
        "spec": {
            "holderIdentity": "other@example.org",
            "acquireTime": "2099-01-01T00:00:00.000000Z",
            "leaseDurationSeconds": 10800,
        },
    });
    // Planted as a running command's, straight into the fake's state (its
    // lock on the state released at the end of this block).
    {
        let mut state = cluster.open();
        if state.get("Namespace", None, "xtask-locks").is_none() {
            state
                .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "xtask-locks"}}))
                .unwrap();
        }
        state.put(lease).unwrap();
    }
    assert!(
        cluster
            .get("Lease", Some("xtask-locks"), &format!("tenant-{tenant}"))
            .is_some()
    );
}

#[test]
fn every_changing_command_says_where_first_and_suggests_the_same_env() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let backups = tempfile::tempdir().unwrap();
    let out_dir = backups.path().to_str().unwrap();
    let kalyan = fixture("kalyan.yaml");
    let kalyan = kalyan.to_str().unwrap();
    cluster.commit_fixture("kalyan");
    cluster.commit_fixture("mylapore");
    let tenants_dir = cluster.tenants.path().to_str().unwrap().to_owned();
    let mut suggested = 0;

    // Dry forms: they change nothing, and say so.
    for (args, code, first) in [
        (
            vec!["--values", kalyan, "--plan"],
            2,
            "the plan of provisioning tenant kalyan (nothing is changed).",
        ),
        (
            vec!["--values", kalyan, "--dry-run"],
            0,
            "the manifests of tenant kalyan, rendered with no cluster (nothing is changed).",
        ),
    ] {
        let mut cmd = cluster.provision_committed("kalyan", &["--env", "prod"]);
        cmd.args(&args);
        let out = cmd.output().unwrap();
        assert!(
            out.status.code() == Some(code) || out.status.code() == Some(0),
            "{args:?}: {}",
            stderr(&out)
        );
        suggested += pointed(
            &format!("provision {args:?}"),
            &out,
            &format!("{PROD}{first}"),
            "--env prod",
        );
    }

    // A backup (reads; a workbench pod at most) is said too, and needs no
    // confirmation; its archive feeds the restore below.
    let out = exits(
        cluster.admin(&["backup", "kalyan", "--env", "prod", "--out", out_dir]),
        0,
    );
    suggested += pointed(
        "backup",
        &out,
        &format!("{PROD}a backup of tenant kalyan."),
        "--env prod",
    );
    let archive = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("an archive");
    let archive = archive.to_str().unwrap();
    let nightly = tempfile::tempdir().unwrap();
    let out = exits(
        cluster.admin(&[
            "backup",
            "--all",
            "--env",
            "prod",
            "--out",
            nightly.path().to_str().unwrap(),
        ]),
        0,
    );
    suggested += pointed(
        "backup --all",
        &out,
        &format!("{PROD}a backup of all 2 tenants."),
        "--env prod",
    );

    // Refused forms: production needs the name typed, and there is no
    // terminal; nothing changes.
    let before = cluster.objects_but_locks();
    let refused: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["provision", "kalyan", "--values", kalyan],
            "provisioning of tenant kalyan.".into(),
        ),
        (
            vec!["provision", "--all", "--tenants-dir", &tenants_dir],
            format!(
                "provisioning of the tenants of {tenants_dir} (those that differ from their config)."
            ),
        ),
        (
            vec!["admin", "restart", "kalyan"],
            "a restart of tenant kalyan.".into(),
        ),
        (
            vec!["admin", "restart", "--all"],
            "a restart of all 2 tenants.".into(),
        ),
        (
            vec!["admin", "restart", "kalyan", "mylapore"],
            "a restart of 2 tenants: kalyan, mylapore.".into(),
        ),
        (
            vec!["admin", "suspend", "kalyan"],
            "a suspension of tenant kalyan.".into(),
        ),
        (
            vec!["admin", "suspend", "--all"],
            "a suspension of all 2 tenants.".into(),
        ),
        (
            vec!["admin", "rotate", "kalyan"],
            "a credential rotation of tenant kalyan.".into(),
        ),
        (
            vec!["admin", "restore", "kalyan", archive],
            "a restore of tenant kalyan.".into(),
        ),
        (
            vec!["admin", "offboard", "kalyan", "--backups", out_dir],
            "offboarding of tenant kalyan.".into(),
        ),
        // No backup where it looks: refused, with the backup to take.
        (
            vec!["admin", "offboard", "mylapore"],
            "offboarding of tenant mylapore.".into(),
        ),
    ];
    for (args, first) in &refused {
        let mut cmd = if args[0] == "admin" {
            cluster.admin(&args[1..])
        } else {
            let mut cmd = cluster.xtask(args);
            cmd.arg("--kubectl").arg(fake_kubectl());
            cmd
        };
        cmd.args(["--env", "prod"]);
        let out = exits(&mut cmd, 1);
        suggested += pointed(
            &args.join(" "),
            &out,
            &format!("{PROD}{first}"),
            "--env prod",
        );
    }
    assert_eq!(
        cluster.objects_but_locks(),
        before,
        "a refused command changed the cluster"
    );

    // Done with --yes (no terminal): the suggestions of a success.
    for (args, first) in [
        (vec!["suspend", "kalyan"], "a suspension of tenant kalyan."),
        (
            vec!["resume", "--all"],
            "a resumption of 1 of all 2 tenants (1 skipped).",
        ),
    ] {
        let mut cmd = cluster.admin(&args);
        cmd.args(["--env", "prod", "--yes"]);
        let out = exits(&mut cmd, 0);
        suggested += pointed(
            &args.join(" "),
            &out,
            &format!("{PROD}{first}"),
            "--env prod",
        );
        if args[0] == "suspend" {
            assert!(
                stdout(&out).contains("`cargo xtask admin resume kalyan --env prod`"),
                "{}",
                stdout(&out)
            );
        }
    }

    // A lock held by another command: refused, the unlock hint carries the
    // environment; unlock itself says where first (and is refused without
    // a terminal in production).
    hold_lock(&cluster, "kalyan");
    let out = exits(
        cluster.admin(&["restart", "kalyan", "--env", "prod", "--yes"]),
        1,
    );
    assert!(
        stderr(&out).contains("`cargo xtask admin unlock kalyan --env prod`"),
        "{}",
        stderr(&out)
    );
    suggested += pointed("restart of a locked tenant", &out, PROD, "--env prod");
    let out = exits(cluster.admin(&["unlock", "kalyan", "--env", "prod"]), 1);
    suggested += pointed(
        "unlock",
        &out,
        &format!("{PROD}breaking the lock on tenant kalyan."),
        "--env prod",
    );

    // The test would prove nothing if no command suggested anything.
    // (the suspension's way back, the offboard's backup to take, the
    // unlock hint).
    assert!(suggested >= 3, "only {suggested} suggestions were seen");
}

#[test]
fn a_context_is_held_to_the_environments() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    // Production's context: production's rules, and its --env suggested.
    let out = exits(
        cluster.admin(&["suspend", "kalyan", "--context", "prod-cluster"]),
        1,
    );
    pointed(
        "suspend --context prod-cluster",
        &out,
        &format!("{PROD}a suspension of tenant kalyan."),
        "--env prod",
    );
    assert!(
        stderr(&out).contains("environment prod needs confirmation"),
        "{}",
        stderr(&out)
    );
    // Another context: said to get no environment's rules; the suggestions
    // carry that context.
    let out = exits(
        cluster.admin(&["suspend", "kalyan", "--context", "elsewhere"]),
        0,
    );
    let n = pointed(
        "suspend --context elsewhere",
        &out,
        "Context elsewhere (it matches no environment in environments.yaml: no environment rules \
         apply): a suspension of tenant kalyan.",
        "--context elsewhere",
    );
    assert!(n >= 1, "{}", stdout(&out));
    assert!(
        cluster
            .calls()
            .iter()
            .any(|c| c[..2] == ["--context", "elsewhere"]),
        "kubectl was not pointed at the context given"
    );
}
