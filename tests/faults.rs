//! How every command that talks to the cluster behaves when kubectl does
//! not: it hangs, prints garbage or truncated JSON, fails mid-way, or the
//! tenant disappears under it. Each ends with a clear error and a non-zero
//! exit, and never changes what it says it did not change.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, fixture, seed_tenants, stderr};
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
fn a_hanging_kubectl_is_stopped_by_the_call_timeout() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    for args in [
        vec!["admin", "list"],
        vec!["admin", "usage"],
        vec!["admin", "restart", "alpha"],
    ] {
        cluster.open().clear_faults().unwrap();
        cluster.open().add_fault(hang("get")).unwrap();
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
    cluster.open().add_fault(hang("get")).unwrap();
    let objects = cluster.objects();
    let out = cluster
        .provision(
            "kalyan",
            &fixture("kalyan.yaml"),
            &["--kubectl-timeout", "1s"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
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
    for (fault, args) in [
        (garbage("get", "<html>502 Bad Gateway</html>"), vec!["list"]),
        (
            garbage("get", "{\"kind\":\"List\",\"items\":[{\"metadata\":"),
            vec!["usage"],
        ),
        (
            garbage("get", "{\"kind\":\"List\"}"),
            vec!["restart", "alpha"],
        ),
    ] {
        cluster.open().clear_faults().unwrap();
        cluster.open().add_fault(fault).unwrap();
        let out = cluster.admin(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("not JSON")
                || err.contains("no tenants")
                || err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    cluster.open().clear_faults().unwrap();
    cluster
        .open()
        .add_fault(garbage("apply", "{\"kind\":\"List\",\"items\":["))
        .unwrap();
    let out = cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
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
    cluster
        .open()
        .add_fault(Fault {
            times: Some(1),
            ..gone
        })
        .unwrap();
    let out = cluster.admin(&["restart", "alpha"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
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
    cluster
        .open()
        .add_fault(Fault {
            times: Some(1),
            ..vanished
        })
        .unwrap();
    let out = cluster
        .admin(&["backup", "alpha", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no backup was written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
