//! Every command agrees on a tenant's state (`state.rs`): a suspended or
//! offboarded tenant is down on purpose, not broken, for list, drift,
//! verify and `provision --all`, end to end against the fake cluster.

mod common;

use common::{Cluster, exits, fake_kubectl, fixture, stderr, stdout};
use serde_json::Value;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// `admin ARGS --tenants-dir <the cluster's tenants>`.
fn with_dir(cluster: &Cluster, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = cluster.admin(args);
    cmd.arg("--tenants-dir").arg(cluster.tenants.path());
    cmd
}

fn provision_all(cluster: &Cluster) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["provision", "--all", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path())
        .arg("--kubectl")
        .arg(fake_kubectl());
    cmd
}

/// A values file for another tenant with kalyan's domains and number.
fn kalyans_values_for(cluster: &Cluster, tenant: &str) -> std::path::PathBuf {
    let values = cluster.state.path().join(format!("{tenant}.yaml"));
    std::fs::write(
        &values,
        std::fs::read_to_string(fixture("kalyan.yaml"))
            .unwrap()
            .replace("tenant: kalyan", &format!("tenant: {tenant}")),
    )
    .unwrap();
    values
}

#[test]
fn a_suspended_tenant_is_down_on_purpose_for_every_command() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    exits(cluster.admin(&["suspend", "kalyan"]), 0);

    let list = json(&exits(cluster.admin(&["list", "-o", "json"]), 0));
    let kalyan = &list["tenants"][0];
    assert_eq!(kalyan["state"], "suspended");
    assert!(kalyan["since"].is_string(), "{kalyan}");
    assert!(kalyan["by"].is_string(), "who suspended it: {kalyan}");

    // Compared with its suspended form: nothing differs.
    let drift = exits(with_dir(&cluster, &["drift"]), 0);
    let table = stdout(&drift);
    assert!(table.contains("kalyan    in-sync"), "{table}");
    assert!(
        table.contains("compared with its suspended form"),
        "{table}"
    );

    // Isolation is still proven; only the Ingress is left out, with a note.
    let verify = exits(with_dir(&cluster, &["verify", "-o", "json"]), 0);
    let verify = json(&verify);
    let report = &verify["tenants"][0];
    assert_eq!(report["tenant"], "kalyan");
    assert_eq!(report["state"], "suspended");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["objects", "rbac", "admission", "sharing"]);
    assert!(
        report["checks"][0]["notes"][0]
            .as_str()
            .unwrap()
            .contains("ingress/bot is not on the cluster: the tenant is suspended"),
        "{report}"
    );

    // A plan compares it the same way, and says an apply waits for resume.
    let mut plan = cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--plan"]);
    let plan = stdout(&exits(&mut plan, 0));
    assert!(plan.contains("compared with its suspended form"), "{plan}");
    assert!(plan.contains("no changes"), "{plan}");
    assert!(!plan.contains("ingress/bot"), "{plan}");

    let all = exits(provision_all(&cluster), 0);
    let out = stdout(&all);
    assert!(
        out.contains("kalyan: suspended (skipped): suspended since"),
        "{out}"
    );
    assert!(
        out.contains("2 tenants: 0 applied, 1 up to date, 1 skipped, 0 failed."),
        "{out}"
    );
    assert!(
        cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_none(),
        "provision --all brought a suspended tenant back online"
    );
}

#[test]
fn drift_still_sees_real_changes_to_a_suspended_tenant() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    exits(cluster.admin(&["suspend", "kalyan"]), 0);
    // A hand edit of an isolation object is drift, suspended or not.
    cluster.kubectl(&[
        "patch",
        "resourcequota",
        "tenant-quota",
        "--namespace",
        "tenant-kalyan",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"hard":{"pods":"50"}}}"#,
    ]);
    let drift = exits(with_dir(&cluster, &["drift"]), 2);
    assert!(
        stdout(&drift).contains("resourcequota/tenant-quota"),
        "{}",
        stdout(&drift)
    );

    // An Ingress back on the cluster (applied by someone since) puts the
    // website of a suspended tenant back online: drift.
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let ingress = cluster
        .get("Ingress", Some("tenant-kalyan"), "bot")
        .unwrap();
    exits(cluster.admin(&["suspend", "kalyan"]), 0);
    cluster
        .open()
        .apply_as("kubectl", vec![xtask::object::applyable(ingress)])
        .unwrap();
    let drift = stdout(&exits(with_dir(&cluster, &["drift"]), 2));
    assert!(
        drift.contains("ingress/bot: on the cluster although the tenant is suspended"),
        "{drift}"
    );
    // The plan says so too, and verify notes it.
    let mut plan = cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--plan"]);
    let plan = stdout(&exits(&mut plan, 2));
    assert!(
        plan.contains("ingress/bot: on the cluster although the tenant is suspended"),
        "{plan}"
    );
    let verify = stdout(&exits(
        with_dir(&cluster, &["verify", "kalyan", "-o", "json"]),
        0,
    ));
    assert!(
        verify.contains("ingress/bot is on the cluster although the tenant is suspended"),
        "{verify}"
    );

    // A config whose Ingress is not the one resume would bring back.
    let cluster = Cluster::with_tenants(&["kalyan"]);
    exits(cluster.admin(&["suspend", "kalyan"]), 0);
    let config = cluster.tenants.path().join("kalyan.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("- kalyan-mla.example.in", "- kalyan-seva.example.in"),
    )
    .unwrap();
    let drift = exits(with_dir(&cluster, &["drift", "-o", "json"]), 2);
    let rows = json(&drift);
    let details = rows["tenants"][0]["details"].to_string();
    assert!(
        details.contains("the Ingress recorded at suspension differs from the config"),
        "{details}"
    );
}

#[test]
fn an_offboarded_tenant_is_listed_skipped_and_releases_its_claims() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let out = exits(
        with_dir(&cluster, &["offboard", "kalyan", "--yes", "--no-backup"]),
        0,
    );
    assert!(
        stdout(&out).contains("its domains and WhatsApp number are released"),
        "{}",
        stdout(&out)
    );

    let list = json(&exits(cluster.admin(&["list", "-o", "json"]), 0));
    let kalyan = &list["tenants"][0];
    assert_eq!(kalyan["state"], "offboarded", "{kalyan}");
    assert_eq!(kalyan["last_backup"], "none");
    assert_eq!(kalyan["reserved"], false);
    assert_eq!(kalyan["whatsapp_number"], Value::Null);
    let table = stdout(&exits(cluster.admin(&["list"]), 0));
    assert!(table.contains("kalyan    offboarded since"), "{table}");

    let drift = stdout(&exits(with_dir(&cluster, &["drift"]), 0));
    assert!(drift.contains("kalyan    skipped"), "{drift}");
    let verify = exits(with_dir(&cluster, &["verify", "kalyan"]), 0);
    assert!(
        stdout(&verify).contains("not checked: offboarded since"),
        "{}",
        stdout(&verify)
    );

    // Its domains and number may go to a new tenant now.
    let values = kalyans_values_for(&cluster, "kalyan-2");
    let claimed = exits(cluster.provision("kalyan-2", &values, &[]), 0);
    assert!(
        stdout(&claimed).contains("Tenant kalyan-2 provisioned"),
        "{}",
        stdout(&claimed)
    );
}

#[test]
fn an_offboarded_tenant_provisioned_again_is_active_with_its_data_and_keys() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let secret = cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials");
    let claim = cluster.get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data");
    exits(
        with_dir(&cluster, &["offboard", "kalyan", "--yes", "--no-backup"]),
        0,
    );
    let back = cluster.tenants.path().join("offboarded/kalyan.yaml");
    let out = exits(cluster.provision("kalyan", &back, &[]), 0);
    assert!(
        stderr(&out).contains("was offboarded (since"),
        "{}",
        stderr(&out)
    );
    let list = json(&exits(cluster.admin(&["list", "-o", "json"]), 0));
    assert_eq!(list["tenants"][0]["state"], "running");
    assert_eq!(list["tenants"][0]["since"], Value::Null);
    // Its config is tenants/kalyan.yaml again, not in two places.
    assert!(cluster.tenants.path().join("kalyan.yaml").exists());
    assert!(!back.exists(), "the offboarded copy stayed");
    // The same credentials (the key of its WhatsApp session) and volume.
    let uid = |o: Option<Value>| o.unwrap()["metadata"]["uid"].clone();
    assert_eq!(
        uid(cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials")),
        uid(secret)
    );
    assert_eq!(
        uid(cluster.get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")),
        uid(claim)
    );
}

#[test]
fn a_reserved_offboarding_keeps_the_claims() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    exits(
        with_dir(
            &cluster,
            &["offboard", "kalyan", "--yes", "--no-backup", "--reserve"],
        ),
        0,
    );
    let list = json(&exits(cluster.admin(&["list", "-o", "json"]), 0));
    assert_eq!(list["tenants"][0]["reserved"], true);
    let values = kalyans_values_for(&cluster, "kalyan-2");
    let refused = exits(cluster.provision("kalyan-2", &values, &[]), 1);
    assert!(
        stderr(&refused).contains("is already used by tenant kalyan"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn delete_data_finishes_an_offboarding_and_names_what_it_deleted() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let backups = tempfile::tempdir().unwrap();
    cluster
        .admin(&["backup", "kalyan", "--out"])
        .arg(backups.path())
        .env("XTASK_NOW", "2026-11-24T06:00:00Z")
        .assert()
        .success();
    let dir = backups.path().to_str().unwrap();
    let mut offboard = with_dir(&cluster, &["offboard", "kalyan", "--yes", "--backups", dir]);
    offboard.env("XTASK_NOW", "2026-11-24T07:00:00Z");
    exits(offboard, 0);

    // Three days later the backup is older than 24h, but not older than
    // 24h before the offboarding: the data has not changed since.
    let mut finish = with_dir(
        &cluster,
        &[
            "offboard",
            "kalyan",
            "--yes",
            "--delete-data",
            "--backups",
            dir,
        ],
    );
    finish.env("XTASK_NOW", "2026-11-27T07:00:00Z");
    let out = exits(finish, 0);
    let report = stdout(&out);
    for deleted in [
        "    persistentvolumeclaim/bot-data (the tenant's data)\n",
        "    persistentvolumeclaim/bot-whatsapp-auth (the tenant's data)\n",
        "    namespace/tenant-kalyan\n",
    ] {
        assert!(
            report.contains(deleted),
            "{deleted} missing from:\n{report}"
        );
    }
    assert!(!report.contains("deleted: nothing"), "{report}");
    assert!(cluster.get("Namespace", None, "tenant-kalyan").is_none());
}

#[test]
fn a_reservation_is_released_by_offboarding_again_without_reserve() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    exits(
        with_dir(
            &cluster,
            &["offboard", "kalyan", "--yes", "--no-backup", "--reserve"],
        ),
        0,
    );
    // Reserving after a release is refused: another tenant may hold them now.
    let cluster2 = Cluster::with_tenants(&["kalyan"]);
    exits(
        with_dir(&cluster2, &["offboard", "kalyan", "--yes", "--no-backup"]),
        0,
    );
    let refused = exits(
        with_dir(
            &cluster2,
            &["offboard", "kalyan", "--yes", "--no-backup", "--reserve"],
        ),
        1,
    );
    assert!(
        stderr(&refused).contains("were released then"),
        "{}",
        stderr(&refused)
    );

    let values = kalyans_values_for(&cluster, "kalyan-2");
    exits(cluster.provision("kalyan-2", &values, &[]), 1);
    let released = exits(
        with_dir(&cluster, &["offboard", "kalyan", "--yes", "--no-backup"]),
        0,
    );
    assert!(
        stdout(&released).contains("its domains and WhatsApp number are released"),
        "{}",
        stdout(&released)
    );
    exits(cluster.provision("kalyan-2", &values, &[]), 0);
}

/// Who the audit log and the state markers name: git's `user.email`,
/// pinned (git reads `GIT_CONFIG_*` over every config file), so that
/// snapshots do not depend on the machine.
fn as_ops(cmd: &mut assert_cmd::Command, time: &str) {
    cmd.env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "user.email")
        .env("GIT_CONFIG_VALUE_0", "ops@mla-platform.example.in")
        .env("XTASK_NOW", time);
}

/// `admin show` of one tenant, with the test's temporary paths made stable
/// for the snapshots (only the last audit entry, which names none).
fn show(cluster: &Cluster, backups: &std::path::Path, format: &str) -> String {
    let mut cmd = cluster.admin(&[
        "show",
        "kalyan",
        "--audit-entries",
        "1",
        "-o",
        format,
        "--backups",
    ]);
    cmd.arg(backups);
    as_ops(&mut cmd, "2026-11-24T09:00:00Z");
    stdout(&exits(cmd, 0)).replace(backups.to_str().unwrap(), "BACKUPS")
}

#[test]
fn show_puts_one_tenant_on_one_page() {
    let cluster = Cluster::new();
    let mut provision = cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]);
    as_ops(&mut provision, "2026-11-24T06:00:00Z");
    exits(provision, 0);
    let backups = tempfile::tempdir().unwrap();
    let mut backup = cluster.admin(&["backup", "kalyan", "--out"]);
    backup.arg(backups.path());
    as_ops(&mut backup, "2026-11-24T07:00:00Z");
    exits(backup, 0);
    let mut restart = cluster.admin(&["restart", "kalyan"]);
    as_ops(&mut restart, "2026-11-24T07:30:00Z");
    exits(restart, 0);
    insta::assert_snapshot!("show-table", show(&cluster, backups.path(), "table"));
    let json_text = show(&cluster, backups.path(), "json");
    insta::assert_snapshot!("show-json", json_text);
    let yaml = show(&cluster, backups.path(), "yaml");
    insta::assert_snapshot!("show-yaml", yaml);
    let from_yaml: Value = serde_saphyr::from_str(&yaml).unwrap();
    let from_json: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(from_yaml, from_json, "YAML and JSON say different things");

    // What the API server counts against the tier's quota: the bot's
    // requests (medium: 250m of 2 CPUs) and its two volume claims.
    let quota = from_json["quota"].as_array().unwrap();
    let find = |r: &str| {
        quota
            .iter()
            .find(|q| q["resource"] == r)
            .unwrap_or_else(|| panic!("no {r} in {quota:?}"))
            .clone()
    };
    assert_eq!(find("requests.cpu")["used"], "250m");
    assert_eq!(find("requests.cpu")["percent"], 12.5);
    assert_eq!(find("persistentvolumeclaims")["used"], "2");
    assert_eq!(find("persistentvolumeclaims")["percent"], 100.0);
    assert_eq!(
        from_json["newest_backup"]["file"],
        "kalyan-20261124T070000Z.tar.gz"
    );
    assert_eq!(from_json["newest_backup"]["age_seconds"], 7200);

    // Suspended: the state says since when and by whom, and the bot's
    // requests no longer count.
    let mut suspend = cluster.admin(&["suspend", "kalyan"]);
    as_ops(&mut suspend, "2026-11-24T08:00:00Z");
    exits(suspend, 0);
    let suspended: Value = serde_json::from_str(&show(&cluster, backups.path(), "json")).unwrap();
    assert_eq!(suspended["state"], "suspended");
    assert_eq!(suspended["since"], "2026-11-24T08:00:00Z");
    assert_eq!(suspended["by"], "ops@mla-platform.example.in");
    let table = show(&cluster, backups.path(), "table");
    assert!(
        table.contains(
            "State        suspended since 2026-11-24T08:00:00Z by ops@mla-platform.example.in\n"
        ),
        "{table}"
    );
    assert!(table.contains("requests.cpu "), "{table}");
    let cpu = suspended["quota"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["resource"] == "requests.cpu")
        .unwrap()
        .clone();
    assert_eq!(cpu["used"], "0", "{cpu}");
}
