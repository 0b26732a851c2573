//! Environments: `--env` picks the context and the host names, and in
//! production every change needs the tenant name typed, or `--yes` when
//! there is no terminal.

mod common;

use common::{Cluster, exits, fixture, stderr, stdout, xtask_bare};
use serde_json::Value;

/// `provision kalyan --env ENV --dry-run --values VALUES`, with no cluster.
fn dry_run_kalyan(env: &str, values: impl AsRef<std::path::Path>) -> assert_cmd::Command {
    let mut cmd = xtask_bare();
    cmd.args(["provision", "kalyan", "--env", env, "--dry-run", "--values"])
        .arg(values.as_ref());
    cmd
}

#[test]
fn an_environment_sets_the_context_and_the_host_names() {
    let dev = exits(dry_run_kalyan("dev", fixture("kalyan.yaml")), 0);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout(&dev)).unwrap();
    let ingress = docs.iter().find(|d| d["kind"] == "Ingress").unwrap();
    let hosts: Vec<&str> = ingress["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["kalyan.dev.mla-bots.example.in"],
        "dev must not claim the tenant's real domains"
    );
    let prod = dry_run_kalyan("prod", fixture("kalyan.yaml"))
        .output()
        .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout(&prod)).unwrap();
    let ingress = docs.iter().find(|d| d["kind"] == "Ingress").unwrap();
    assert_eq!(
        ingress["spec"]["rules"].as_array().unwrap().len(),
        4,
        "prod serves the own domains and the platform host"
    );

    for (args, why) in [
        (vec!["--env", "staging"], "environment `staging` is not in"),
        (
            vec!["--env", "prod", "--context", "other"],
            "--context other is not the context of environment prod",
        ),
    ] {
        let out = exits(xtask_bare().args(["admin", "list"]).args(&args), 1);
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn production_changes_need_confirmation_without_a_terminal() {
    let cluster = Cluster::new();
    let refused = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--env", "prod"]),
        1,
    );
    assert!(
        stderr(&refused).contains("environment prod needs confirmation for provisioning"),
        "{}",
        stderr(&refused)
    );
    // Reads, and the tenant's and the claims' locks taken and released.
    let locks = "xtask-locks".to_owned();
    assert!(
        cluster
            .calls()
            .iter()
            .all(|c| c.contains(&"get".to_owned()) || c.contains(&locks) || c[2] == "create"),
        "a refused change did more than read: {:?}",
        cluster.calls()
    );
    // Only the lock namespace is left (and the cluster's own kube-system).
    let left: Vec<Value> = cluster
        .objects()
        .into_iter()
        .filter(|o| o["metadata"]["name"] != "kube-system")
        .collect();
    assert!(
        left.len() == 1 && left[0]["metadata"]["name"] == "xtask-locks",
        "{left:?}"
    );

    exits(
        cluster.provision(
            "kalyan",
            &fixture("kalyan.yaml"),
            &["--env", "prod", "--yes"],
        ),
        0,
    );
    assert!(
        cluster
            .calls()
            .iter()
            .all(|c| c[..2] == ["--context", "prod-cluster"]),
        "not every call went to prod's context"
    );
    for args in [
        vec!["restart", "kalyan"],
        vec!["suspend", "kalyan"],
        vec!["rotate", "kalyan"],
    ] {
        let out = cluster
            .admin(&args)
            .args(["--env", "prod"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("needs confirmation"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    cluster
        .admin(&["restart", "kalyan", "--env", "prod", "--yes"])
        .assert()
        .success();
    // Reads need no confirmation.
    cluster.admin(&["list", "--env", "prod"]).assert().success();
    // Naming production's context directly brings its rules along.
    let direct = cluster
        .admin(&["restart", "kalyan", "--context", "prod-cluster"])
        .output()
        .unwrap();
    assert!(
        stderr(&direct).contains("environment prod needs confirmation"),
        "{}",
        stderr(&direct)
    );
    // Any other context is not an environment: no rules, no error.
    cluster
        .admin(&["list", "--context", "elsewhere"])
        .assert()
        .success();
    let audit = cluster
        .xtask(&["admin", "audit", "-o", "json"])
        .output()
        .unwrap();
    let entries: Vec<Value> = serde_json::from_str(&stdout(&audit)).unwrap();
    let envs: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["environment"].as_str().unwrap_or("-"),
                &e["result"].as_str().unwrap()[..2],
            )
        })
        .collect();
    assert_eq!(
        envs,
        [
            ("prod", "er"),
            ("prod", "ok"),
            ("prod", "er"),
            ("prod", "er"),
            ("prod", "er"),
            ("prod", "ok"),
            ("prod", "er")
        ]
    );
}

/// A tenant provisioned in an environment is in sync when compared in it.
#[test]
fn drift_compares_in_the_environment() {
    let cluster = Cluster::new();
    cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &["--env", "dev"])
        .assert()
        .success();
    let ingress = cluster
        .get("Ingress", Some("tenant-kalyan"), "bot")
        .unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "kalyan.dev.mla-bots.example.in"
    );
    let saved = std::fs::read_to_string(cluster.tenants.path().join("kalyan.yaml")).unwrap();
    assert!(
        saved.contains("kalyan-mla.example.in") && !saved.contains("dev.mla-bots"),
        "the saved config must stay as written"
    );
    let drift = cluster
        .admin(&["drift", "--env", "dev", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .output()
        .unwrap();
    assert!(
        drift.status.success(),
        "{}{}",
        stdout(&drift),
        stderr(&drift)
    );
}

/// A tenant may not take another tenant's automatic host (`<other>.<suffix>`)
/// as one of its own domains, nor the suffix or a wildcard over it: the
/// other tenant could never claim its host back. Its own host is fine.
#[test]
fn a_tenant_cannot_squat_another_tenants_platform_host() {
    let text = std::fs::read_to_string(fixture("kalyan.yaml")).unwrap();
    let mut base: Value = serde_saphyr::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (domain, expected) in [
        (
            "dd.mla-bots.example.in",
            "it would take tenant dd's automatic host",
        ),
        (
            "*.mla-bots.example.in",
            "it would take other tenants' automatic hosts",
        ),
        (
            "mla-bots.example.in",
            "it would take other tenants' automatic hosts",
        ),
        (
            "www.dd.mla-bots.example.in",
            "it would take other tenants' automatic hosts",
        ),
    ] {
        let values = dir.path().join("kalyan.yaml");
        // JSON is YAML.
        base["domains"] = serde_json::json!([domain]);
        std::fs::write(&values, base.to_string()).unwrap();
        let out = dry_run_kalyan("prod", &values).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{domain}: {err}");
        assert!(
            err.contains(&format!(
                "domain {domain} of tenant kalyan is under environment prod's domain_suffix mla-bots.example.in"
            )) && err.contains(expected)
                && err.ends_with("Nothing was changed.\n"),
            "{domain}: {err}"
        );
    }
    base["domains"] = serde_json::json!(["kalyan.mla-bots.example.in", "kalyan-mla.in"]);
    let values = dir.path().join("own.yaml");
    std::fs::write(&values, base.to_string()).unwrap();
    exits(dry_run_kalyan("prod", &values), 0);
}
