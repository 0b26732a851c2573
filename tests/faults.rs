//! How every command that talks to the cluster behaves when kubectl does
//! not: it hangs, prints garbage or truncated JSON, fails mid-way, or the
//! tenant disappears under it. Each ends with a clear error and a non-zero
//! exit, and never changes what it says it did not change.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, exits, fixture, seed_tenants, stderr};
use fake_kubectl::Fault;

fn hang(verb: &str) -> Fault {
    Fault {
        sleep_ms: 20_000,
        times: Some(1),
        ..Fault::fail(verb, 0, "")
    }
}

fn garbage(verb: &str, stdout: &str) -> Fault {
    Fault {
        stdout: stdout.to_owned(),
        times: Some(1),
        ..Fault::fail(verb, 0, "")
    }
}

#[test]
fn a_zero_call_timeout_is_refused_before_any_call() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let out = exits(cluster.admin(&["list", "--kubectl-timeout", "0s"]), 1);
    assert!(
        stderr(&out).contains(
            "--kubectl-timeout 0s would stop every kubectl call at once; give it a length such as 60s"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        cluster.calls().is_empty(),
        "kubectl was called with a zero timeout"
    );
}

#[test]
fn a_hanging_kubectl_is_stopped_by_the_call_timeout() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    for args in [
        vec!["admin", "list"],
        vec!["admin", "usage"],
        vec!["admin", "restart", "alpha"],
    ] {
        cluster.open().clear_faults().unwrap();
        cluster.fault(hang("get"));
        let start = Instant::now();
        let out = cluster
            .admin(&args[1..])
            .arg("--kubectl-timeout=1s")
            .output()
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{args:?} waited for the hanging kubectl"
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("did not finish within 1s"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    cluster.open().clear_faults().unwrap();
    cluster.fault(hang("get"));
    let objects = cluster.objects();
    let out = exits(
        cluster.provision(
            "kalyan",
            &fixture("kalyan.yaml"),
            &["--kubectl-timeout", "1s"],
        ),
        1,
    );
    assert!(
        stderr(&out).contains("`kubectl get namespace` did not finish within 1s"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cluster.objects(),
        objects,
        "provision changed the cluster after a timeout"
    );
}

#[test]
fn garbage_or_truncated_json_is_an_error_not_a_panic() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    for (fault, args, expected) in [
        (
            garbage("get", "<html>502 Bad Gateway</html>"),
            vec!["list"],
            "error: `kubectl get namespaces --selector mla-platform.in/tenant --output json` printed something that is not JSON",
        ),
        (
            garbage("get", "{\"kind\":\"List\",\"items\":[{\"metadata\":"),
            vec!["usage"],
            "error: `kubectl get namespaces --selector mla-platform.in/tenant --output json` printed something that is not JSON",
        ),
        // A list with no items reads as no tenants at all.
        (
            garbage("get", "{\"kind\":\"List\"}"),
            vec!["restart", "alpha"],
            "error: tenant alpha does not exist: there are no tenants on this cluster yet",
        ),
    ] {
        cluster.open().clear_faults().unwrap();
        cluster.fault(fault);
        let out = cluster.admin(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        // After the environment line, for a command that changes the cluster.
        assert!(
            err.lines().any(|l| l.starts_with(expected)),
            "{args:?}: {err}"
        );
    }
    cluster.open().clear_faults().unwrap();
    cluster.fault(garbage("apply", "{\"kind\":\"List\",\"items\":["));
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 1);
    assert!(
        stderr(&out).contains("`kubectl apply` succeeded but its output is not JSON"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_tenant_deleted_while_a_command_runs_gives_a_clear_error() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    // The tenant is found, then its Deployment is gone by the next call.
    let gone = Fault::fail(
        "rollout",
        1,
        "Error from server (NotFound): deployments.apps \"bot\" not found",
    );
    cluster.fault(Fault {
        times: Some(1),
        ..gone
    });
    let out = exits(cluster.admin(&["restart", "alpha"]), 1);
    assert!(
        stderr(&out).contains("deployments.apps \"bot\" not found"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let vanished = Fault::fail(
        "exec",
        1,
        "Error from server (NotFound): pods \"bot-x\" not found",
    );
    cluster.fault(Fault {
        times: Some(1),
        ..vanished
    });
    let out = exits(
        cluster.admin(&["backup", "alpha", "--out"]).arg(dir.path()),
        1,
    );
    assert!(
        stderr(&out).contains("the online backup of the database failed: `kubectl exec pod/bot-")
            && stderr(&out).contains("Error from server (NotFound): pods \"bot-x\" not found")
            && stderr(&out).ends_with("\nNo backup was written.\n"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Every command that talks to the cluster, against every way kubectl can
/// fail on its second call: a clear error, exit 1, never a panic, and for
/// the commands that change things a statement of what did not change.
#[test]
fn every_command_survives_every_fault() {
    let cluster = Cluster::new();
    let tenants = tempfile::tempdir().unwrap();
    for t in ["alpha", "bravo"] {
        let values = tenants.path().join(format!("{t}.yaml"));
        std::fs::write(
            &values,
            format!("tenant: {t}\nmla_name: M {t}\nconstituency: C {t}\nwhatsapp_number: \"+9198000000{}\"\ndomains: [{t}.example.in]\n", if t == "alpha" { 1 } else { 2 }),
        )
        .unwrap();
        exits(
            cluster
                .xtask(&["provision", t, "--values"])
                .arg(&values)
                .arg("--tenants-dir")
                .arg(tenants.path())
                .env("KUBECTL", common::fake_kubectl()),
            0,
        );
    }
    let backups = tempfile::tempdir().unwrap();
    exits(
        cluster
            .admin(&["backup", "alpha", "--out"])
            .arg(backups.path()),
        0,
    );
    let archive = std::fs::read_dir(backups.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let archive = archive.to_str().unwrap().to_owned();
    let out_dir = tempfile::tempdir().unwrap();
    let out_dir = out_dir.path().to_str().unwrap().to_owned();
    let tenants_dir = tenants.path().to_str().unwrap().to_owned();
    let values = format!("{tenants_dir}/alpha.yaml");
    let commands: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec![
                "provision",
                "alpha",
                "--values",
                &values,
                "--tenants-dir",
                &tenants_dir,
            ],
            Some("Nothing was changed."),
        ),
        (vec!["admin", "list"], None),
        (vec!["admin", "usage"], None),
        (
            vec!["admin", "restart", "alpha"],
            Some("Nothing was changed."),
        ),
        (vec!["admin", "logs", "alpha"], None),
        (
            vec!["admin", "backup", "alpha", "--out", &out_dir],
            Some("No backup was written."),
        ),
        (
            vec!["admin", "restore", "alpha", &archive, "--yes"],
            Some("Nothing was changed."),
        ),
        (vec!["admin", "verify", "--tenants-dir", &tenants_dir], None),
    ];
    // Each fault, and the cause every command must name for it.
    let faults: Vec<(&str, Fault, &str)> = vec![
        (
            "failing",
            Fault {
                skip: 1,
                times: Some(1),
                ..Fault::fail(
                    "get",
                    1,
                    "Error from server (InternalError): etcdserver: request timed out",
                )
            },
            "failed (exit 1) on the current context: Error from server (InternalError): etcdserver: request timed out",
        ),
        (
            "hanging",
            Fault {
                skip: 1,
                times: Some(1),
                sleep_ms: 20_000,
                ..Fault::fail("get", 0, "")
            },
            "did not finish within 2s on the current context and was stopped",
        ),
        (
            "garbage",
            Fault {
                skip: 1,
                times: Some(1),
                stdout: "{\"kind\": \"List\", \"items\": [".into(),
                ..Fault::fail("get", 0, "")
            },
            "printed something that is not JSON",
        ),
    ];
    for (args, statement) in &commands {
        // No kubectl at all.
        let empty = tempfile::tempdir().unwrap();
        let out = cluster
            .xtask(args)
            .env("PATH", empty.path())
            .env_remove("KUBECTL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?} without kubectl");
        assert!(
            stderr(&out).contains("kubectl was not found on PATH"),
            "{args:?}: {}",
            stderr(&out)
        );
        for (name, fault, cause) in &faults {
            cluster.open().clear_faults().unwrap();
            cluster.fault(fault.clone());
            let start = Instant::now();
            let out = cluster
                .xtask(args)
                .env("KUBECTL", common::fake_kubectl())
                .arg("--kubectl-timeout=2s")
                .output()
                .unwrap();
            let err = stderr(&out);
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{args:?} {name}: too slow"
            );
            assert_eq!(out.status.code(), Some(1), "{args:?} {name}: {err}");
            assert!(
                err.contains("error: ") && !err.contains("panicked"),
                "{args:?} {name}: {err}"
            );
            assert!(
                err.contains(cause),
                "{args:?} {name} does not name the cause: {err}"
            );
            if let Some(statement) = statement {
                assert!(
                    err.trim_end().ends_with(statement),
                    "{args:?} {name} does not end by saying what changed: {err}"
                );
            }
        }
    }
    cluster.open().clear_faults().unwrap();
    // After all that, the tenants are intact.
    exits(
        cluster
            .admin(&["verify", "--tenants-dir"])
            .arg(tenants.path()),
        0,
    );
}
