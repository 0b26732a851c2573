//! A tenant's life after onboarding, end to end against the fake cluster:
//! suspend and resume, rotate, and offboard.

mod common;

use common::{Cluster, exits, fixture, stderr, stdout};
use serde_json::Value;

/// An object as an apply would send it: no server-written fields.
fn applyable(o: Option<Value>) -> Option<Value> {
    o.map(xtask::object::applyable)
}

#[test]
fn suspend_then_resume_restores_the_exact_previous_state() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let snapshot = |c: &Cluster| {
        (
            applyable(c.get("Deployment", Some("tenant-kalyan"), "bot")),
            applyable(c.get("Ingress", Some("tenant-kalyan"), "bot")),
            applyable(c.get("Namespace", None, "tenant-kalyan")),
        )
    };
    let before = snapshot(&cluster);
    exits(cluster.admin(&["suspend", "kalyan"]), 0);
    assert!(
        cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_none(),
        "the website still answers"
    );
    assert_eq!(
        cluster
            .get("Deployment", Some("tenant-kalyan"), "bot")
            .unwrap()["spec"]["replicas"],
        0
    );
    assert!(
        cluster
            .get("Secret", Some("tenant-kalyan"), "bot-credentials")
            .is_some(),
        "data must be kept"
    );
    let list = cluster.admin(&["list", "-o", "json"]).output().unwrap();
    let list: Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(list["tenants"][0]["state"], "suspended");
    // Nothing brings a suspended tenant back by accident.
    let again = cluster.admin(&["suspend", "kalyan"]).output().unwrap();
    assert!(stderr(&again).contains("already suspended"));
    let restart = cluster.admin(&["restart", "kalyan"]).output().unwrap();
    assert!(
        stderr(&restart).contains("is suspended"),
        "{}",
        stderr(&restart)
    );
    let provision = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 1);
    assert!(
        stderr(&provision).contains("is suspended"),
        "{}",
        stderr(&provision)
    );

    exits(cluster.admin(&["resume", "kalyan"]), 0);
    assert_eq!(
        snapshot(&cluster),
        before,
        "resume did not restore the previous state"
    );
    let again = cluster.admin(&["resume", "kalyan"]).output().unwrap();
    assert!(stderr(&again).contains("is not suspended"));
}

#[test]
fn rotate_replaces_every_credential_and_shows_them_only_when_asked() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let values = |c: &Cluster| -> Vec<String> {
        let s = c
            .get("Secret", Some("tenant-kalyan"), "bot-credentials")
            .unwrap();
        s["data"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| common::decode_base64(v.as_str().unwrap()))
            .collect()
    };
    let old = values(&cluster);
    let out = exits(cluster.admin(&["rotate", "kalyan"]), 0);
    let new = values(&cluster);
    assert_eq!(new.len(), 3);
    assert!(
        new.iter().all(|v| !old.contains(v) && v.len() == 64),
        "not every value changed"
    );
    let printed = stdout(&out) + &stderr(&out);
    assert!(
        new.iter()
            .chain(&old)
            .all(|v| !printed.contains(v.as_str())),
        "a credential was printed"
    );
    let deployment = cluster
        .get("Deployment", Some("tenant-kalyan"), "bot")
        .unwrap();
    assert!(
        deployment
            .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some()
    );
    let shown = cluster
        .admin(&["rotate", "kalyan", "--show"])
        .output()
        .unwrap();
    let newest = values(&cluster);
    for v in &newest {
        assert!(
            stdout(&shown).contains(v.as_str()),
            "--show did not show the new values"
        );
    }
}

#[test]
fn offboard_refuses_without_a_fresh_backup_and_keeps_data_by_default() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let backups = tempfile::tempdir().unwrap();
    let objects = cluster.objects();
    let refused = exits(
        cluster
            .admin(&["offboard", "kalyan", "--yes", "--backups"])
            .arg(backups.path()),
        1,
    );
    assert!(
        stderr(&refused).contains("there is no backup of tenant kalyan"),
        "{}",
        stderr(&refused)
    );
    cluster
        .admin(&["backup", "kalyan", "--out"])
        .arg(backups.path())
        .assert()
        .success();
    // Too old a backup is refused too.
    let stale = cluster
        .admin(&[
            "offboard",
            "kalyan",
            "--yes",
            "--max-backup-age",
            "1h",
            "--backups",
        ])
        .arg(backups.path())
        .env("XTASK_NOW", "2099-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(
        stderr(&stale).contains("more than --max-backup-age 1h"),
        "{}",
        stderr(&stale)
    );
    // Without a terminal, --yes is required.
    let unconfirmed = cluster
        .admin(&["offboard", "kalyan", "--backups"])
        .arg(backups.path())
        .output()
        .unwrap();
    assert!(
        stderr(&unconfirmed).contains("needs confirmation"),
        "{}",
        stderr(&unconfirmed)
    );
    assert_eq!(
        cluster.objects(),
        objects,
        "a refused offboard changed the cluster"
    );

    let out = exits(
        cluster
            .admin(&["offboard", "kalyan", "--yes", "--tenants-dir"])
            .arg(cluster.tenants.path())
            .arg("--backups")
            .arg(backups.path()),
        0,
    );
    let report = stdout(&out);
    assert!(report.contains("  deleted:\n    ingress/bot\n"), "{report}");
    assert!(
        report.contains("persistentvolumeclaim/bot-data in tenant-kalyan (kept: its data)"),
        "{report}"
    );
    assert!(
        report.contains("namespace/tenant-kalyan (kept: it holds the volumes)"),
        "{report}"
    );
    for (kind, name) in [
        ("Ingress", "bot"),
        ("Deployment", "bot"),
        ("ConfigMap", "bot-config"),
        ("NetworkPolicy", "default-deny-all"),
    ] {
        assert!(
            cluster.get(kind, Some("tenant-kalyan"), name).is_none(),
            "{kind} {name} survived"
        );
    }
    assert!(
        cluster
            .get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")
            .is_some()
    );
    // The key of the WhatsApp session on the kept volume stays with it.
    assert!(
        report.contains("secret/bot-credentials in tenant-kalyan (kept: the key of the WhatsApp session on its volume)"),
        "{report}"
    );
    assert!(
        cluster
            .get("Secret", Some("tenant-kalyan"), "bot-credentials")
            .is_some()
    );
    assert!(
        cluster
            .tenants
            .path()
            .join("offboarded/kalyan.yaml")
            .exists()
    );
    assert!(!cluster.tenants.path().join("kalyan.yaml").exists());
}

#[test]
fn offboard_with_delete_data_reports_retained_volumes() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let out = exits(
        cluster.admin(&[
            "offboard",
            "kalyan",
            "--yes",
            "--no-backup",
            "--delete-data",
        ]),
        0,
    );
    assert!(cluster.get("Namespace", None, "tenant-kalyan").is_none());
    let report = stdout(&out);
    assert_eq!(
        report.matches("(Released, reclaim policy Retain)").count(),
        2,
        "{report}"
    );
    let list = cluster.admin(&["list", "-o", "json"]).output().unwrap();
    let list: Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(list["tenants"], serde_json::json!([]));
    let audit = cluster
        .xtask(&["admin", "audit", "kalyan", "-o", "json"])
        .output()
        .unwrap();
    let audit: Vec<Value> = serde_json::from_str(&stdout(&audit)).unwrap();
    assert!(
        audit.last().unwrap()["command"]
            .as_str()
            .unwrap()
            .contains("offboard")
    );
}
