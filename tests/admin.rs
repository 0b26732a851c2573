//! `cargo xtask admin` end to end against the fake kubectl: list and usage
//! over tenants in mixed states, restart, logs, backup and restore.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{Cluster, create_bot_database, exits, seed_tenants, stderr, stdout};
use serde_json::Value;

const NOW: &str = "2026-11-24T06:00:00Z";

/// Five tenants created four days before NOW: one running with data, one
/// crash looping, one with a bad image, one stopped, one unschedulable.
fn mixed_cluster() -> Cluster {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-20T06:00:00Z").unwrap();
    let names: Vec<String> = ["alpha", "bravo", "charlie", "delta", "echo"]
        .map(String::from)
        .to_vec();
    seed_tenants(&cluster, &names);
    let mut state = cluster.open();
    state
        .set_pod_state("tenant-bravo", "bot", "CrashLoopBackOff")
        .unwrap();
    state
        .set_pod_state("tenant-delta", "bot", "ImagePullBackOff")
        .unwrap();
    state
        .set_pod_state("tenant-echo", "bot", "Pending")
        .unwrap();
    drop(state);
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        "tenant-charlie",
        "--replicas=0",
    ]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(
        &db,
        &[
            "2026-11-23T10:00:00Z",
            "2026-11-01T10:00:00Z",
            "2026-10-01T10:00:00Z",
        ],
        &["2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z"],
        3,
    );
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("creds.json"),
        b"{\"me\":\"alpha\"}",
    )
    .unwrap();
    cluster
}

fn run_ok(cmd: &mut assert_cmd::Command) -> String {
    let out = exits(cmd.env("XTASK_NOW", NOW), 0);
    stdout(&out)
}

#[test]
fn list_shows_every_state() {
    let cluster = mixed_cluster();
    let table = run_ok(&mut cluster.admin(&["list"]));
    insta::assert_snapshot!(table, @r"
    TENANT   STATE                                         TIER   READY  RESTARTS  AGE  DOMAINS
    alpha    running                                       small  1/1    0         4d   alpha.example.in
    bravo    error (crash looping)                         small  0/1    5         4d   bravo.example.in
    charlie  stopped                                       small  0/0    0         4d   charlie.example.in
    delta    error (image pull failure: ImagePullBackOff)  small  0/1    0         4d   delta.example.in
    echo     pending (unschedulable)                       small  0/1    0         4d   echo.example.in
    ");
    let json = run_ok(&mut cluster.admin(&["list", "-o", "json"]));
    insta::assert_snapshot!("list-json", json);
    let mut alias = cluster.xtask(&["tenant-admin", "list", "-o", "yaml"]);
    let yaml = run_ok(alias.env("KUBECTL", common::fake_kubectl()));
    let from_yaml: Value = serde_saphyr::from_str(&yaml).unwrap();
    let from_json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(from_yaml, from_json, "YAML and JSON say different things");
}

#[test]
fn usage_rows_and_totals() {
    let cluster = mixed_cluster();
    let out = exits(cluster.admin(&["usage"]).env("XTASK_NOW", NOW), 0);
    insta::assert_snapshot!("usage-table", stdout(&out));
    let json: Value =
        serde_json::from_str(&run_ok(&mut cluster.admin(&["usage", "-o", "json"]))).unwrap();
    insta::assert_snapshot!("usage-json", serde_json::to_string_pretty(&json).unwrap());
    let rows = json["tenants"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let sum = |f: &dyn Fn(&Value) -> u64| rows.iter().map(f).sum::<u64>();
    let field = |k: &'static str| move |r: &Value| r[k].as_u64().unwrap_or(0);
    let total = &json["total"];
    for key in [
        "pods",
        "restarts",
        "cpu_millicores",
        "memory_bytes",
        "messages",
        "bot_runs",
    ] {
        assert_eq!(
            total[key].as_u64().unwrap_or(0),
            sum(&field(key)),
            "total {key}"
        );
    }
    let volumes = |k: &'static str| {
        move |r: &Value| {
            r["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        }
    };
    assert_eq!(
        total["requested_bytes"].as_u64().unwrap(),
        sum(&volumes("requested_bytes"))
    );
    assert_eq!(
        total["used_bytes"].as_u64().unwrap(),
        sum(&volumes("used_bytes"))
    );
    // alpha: two messages and two runs in the last 30 days.
    let alpha = &rows[0];
    assert_eq!(
        (alpha["messages"].as_u64(), alpha["bot_runs"].as_u64()),
        (Some(2), Some(2))
    );
    let week = run_ok(&mut cluster.admin(&["usage", "alpha", "--since", "7d", "-o", "json"]));
    let week: Value = serde_json::from_str(&week).unwrap();
    assert_eq!(week["tenants"][0]["messages"], 1);
    assert_eq!(week["tenants"].as_array().unwrap().len(), 1);
}

#[test]
fn a_tenant_with_no_usage_shows_zeros() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["quiet".to_owned()]);
    let json: Value = serde_json::from_str(&run_ok(
        &mut cluster.admin(&["usage", "quiet", "-o", "json"]),
    ))
    .unwrap();
    let row = &json["tenants"][0];
    assert_eq!(row["messages"], 0);
    assert_eq!(row["bot_runs"], 0);
    assert_eq!(row["restarts"], 0);
    assert_eq!(row["note"], "no database yet");
    for v in row["volumes"].as_array().unwrap() {
        assert_eq!(v["used_bytes"], 0);
    }
}

#[test]
fn usage_without_a_metrics_api_says_so() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["quiet".to_owned()]);
    cluster.open().set_metrics_available(false).unwrap();
    let table = run_ok(&mut cluster.admin(&["usage"]));
    assert!(
        table.contains("CPU and memory: n/a, the cluster serves no metrics API"),
        "{table}"
    );
    let json: Value =
        serde_json::from_str(&run_ok(&mut cluster.admin(&["usage", "-o", "json"]))).unwrap();
    assert_eq!(json["metrics_available"], false);
    assert_eq!(json["tenants"][0]["cpu_millicores"], Value::Null);
    assert_eq!(json["total"]["cpu_millicores"], Value::Null);
}

/// The number of cluster-wide kubectl calls does not grow with tenants.
#[test]
fn list_and_usage_make_the_same_calls_for_3_and_300_tenants() {
    let counts = |n: usize| {
        let cluster = Cluster::new();
        let names: Vec<String> = (0..n).map(|i| format!("t{i:03}")).collect();
        seed_tenants(&cluster, &names);
        run_ok(&mut cluster.admin(&["list", "-o", "json"]));
        let list_calls = cluster.calls().len();
        run_ok(&mut cluster.admin(&["usage", "--jobs", "8", "-o", "json"]));
        let usage: Vec<Vec<String>> = cluster.calls().into_iter().skip(list_calls).collect();
        let execs = usage.iter().filter(|c| c[0] == "exec").count();
        (list_calls, usage.len() - execs, execs)
    };
    let (list3, usage3, execs3) = counts(3);
    let (list300, usage300, execs300) = counts(300);
    // Namespaces, deployments, pods and the locks.
    assert_eq!(list3, 4);
    assert_eq!(list300, list3, "list calls grew with tenants");
    assert_eq!(
        usage300, usage3,
        "usage's cluster-wide calls grew with tenants"
    );
    assert_eq!(
        (execs3, execs300),
        (3, 300),
        "one database read per running tenant"
    );
}

#[test]
fn restart_rolls_the_bot_and_refuses_a_stopped_tenant() {
    let cluster = mixed_cluster();
    let before = cluster
        .get("Deployment", Some("tenant-alpha"), "bot")
        .unwrap();
    let out = exits(cluster.admin(&["restart", "alpha"]), 0);
    assert_eq!(stdout(&out), "Tenant alpha restarted; the bot is ready.\n");
    let after = cluster
        .get("Deployment", Some("tenant-alpha"), "bot")
        .unwrap();
    assert!(
        after
            .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some()
    );
    assert_ne!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );

    let objects = cluster.objects();
    let out = exits(cluster.admin(&["restart", "charlie"]), 1);
    insta::assert_snapshot!(stderr(&out), @r"
    kubectl's current context (no environment: environments.yaml names no default; pick one with --env): a restart of tenant charlie.
    error: tenant charlie is stopped (its bot is scaled to 0 replicas), so there is nothing to restart. Start it with `kubectl --namespace tenant-charlie scale deployment/bot --replicas=1` (provision never changes the replica count).
    Nothing was changed.
    ");
    assert_eq!(cluster.objects(), objects);
}

#[test]
fn logs_tail_and_previous() {
    let cluster = mixed_cluster();
    let current: String = (1..=5).map(|i| format!("line {i}\n")).collect();
    cluster
        .open()
        .set_logs(
            "tenant-bravo",
            "bot",
            &current,
            "panic: database is locked\n",
        )
        .unwrap();
    assert_eq!(
        run_ok(&mut cluster.admin(&["logs", "bravo", "--tail", "2"])),
        "line 4\nline 5\n"
    );
    assert_eq!(
        run_ok(&mut cluster.admin(&["logs", "bravo", "--previous"])),
        "panic: database is locked\n"
    );
    let call = cluster.calls().pop().unwrap();
    assert!(
        call.contains(&"--previous".to_owned()) && call.contains(&"--container=bot".to_owned()),
        "{call:?}"
    );
    let out = cluster.admin(&["logs", "charlie"]).output().unwrap();
    assert!(stderr(&out).contains("tenant charlie is stopped"));
    // A bot that never restarted has no previous container: said so, with
    // the command for its current logs, not "fix the cause and re-run".
    cluster
        .open()
        .set_logs("tenant-bravo", "bot", &current, "")
        .unwrap();
    let out = exits(&mut cluster.admin(&["logs", "bravo", "--previous"]), 1);
    assert_eq!(
        stderr(&out),
        "error: tenant bravo's bot has no previous container: it has not restarted since its pod \
         started, so there are no earlier logs to show. Its current logs: `cargo xtask admin logs bravo`\n"
    );
    // The suggested command reaches the same cluster as the run.
    let out = exits(
        &mut cluster.admin(&["logs", "bravo", "--previous", "--context", "elsewhere"]),
        1,
    );
    assert!(
        stderr(&out)
            .contains("Its current logs: `cargo xtask admin logs bravo --context elsewhere`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_command_names_the_existing_tenants_for_a_missing_one() {
    let cluster = mixed_cluster();
    let archive = tempfile::NamedTempFile::new().unwrap();
    for args in [
        vec!["usage", "zulu"],
        vec!["restart", "zulu"],
        vec!["logs", "zulu"],
        vec!["backup", "zulu"],
    ] {
        let out = cluster.admin(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).lines().any(|l| l
                == "error: tenant zulu does not exist on this cluster; the tenants are: alpha, bravo, charlie, delta, echo"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // restore checks the archive before the cluster.
    let out = cluster
        .admin(&["restore", "zulu"])
        .arg(archive.path())
        .arg("--yes")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("failed verification") || stderr(&out).contains("corrupt"),
        "{}",
        stderr(&out)
    );
    let empty = Cluster::new();
    let out = empty.admin(&["restart", "zulu"]).output().unwrap();
    assert!(
        stderr(&out).contains("there are no tenants on this cluster yet"),
        "{}",
        stderr(&out)
    );
}

fn backup(cluster: &Cluster, tenant: &str, dir: &Path) -> PathBuf {
    exits(cluster.admin(&["backup", tenant, "--out"]).arg(dir), 0);
    let archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    archives.into_iter().next().unwrap()
}

/// `admin restore TENANT ARCHIVE --yes EXTRA...`.
fn restore(
    cluster: &Cluster,
    tenant: &str,
    archive: &Path,
    extra: &[&str],
) -> std::process::Output {
    cluster
        .admin(&["restore", tenant])
        .arg(archive)
        .arg("--yes")
        .args(extra)
        .output()
        .unwrap()
}

fn query(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn backup_then_restore_round_trip() {
    let cluster = mixed_cluster();
    std::fs::create_dir_all(cluster.volume("alpha", "bot-whatsapp-auth").join("keys")).unwrap();
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("keys/pre-key-1.json"),
        [0u8, 159, 146, 150],
    )
    .unwrap();
    // Another tenant with data of its own, which must never change.
    create_bot_database(
        &cluster.volume("bravo", "bot-data").join("bot.sqlite3"),
        &["2026-11-23T00:00:00Z"],
        &[],
        9,
    );
    std::fs::write(
        cluster
            .volume("bravo", "bot-whatsapp-auth")
            .join("creds.json"),
        b"bravo",
    )
    .unwrap();
    let bravo_before = cluster.volume_files("bravo");
    let alpha_auth_before: Vec<(String, Vec<u8>)> = cluster
        .volume_files("alpha")
        .into_iter()
        .filter(|(k, _)| k.starts_with("bot-whatsapp-auth/"))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&cluster, "alpha", dir.path());
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("alpha-") && name.ends_with("Z.tar.gz"),
        "{name}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The pod's temporary copy is gone and the live database untouched.
    assert!(
        !cluster
            .volume("alpha", "bot-data")
            .join(".xtask-backup.sqlite3")
            .exists()
    );

    let verified = exits(
        cluster
            .xtask(&["admin", "verify-backup"])
            .arg(&archive)
            .arg("-o")
            .arg("json"),
        0,
    );
    let manifest: Value = serde_json::from_str(&stdout(&verified)).unwrap();
    assert_eq!(manifest["tenant"], "alpha");
    assert_eq!(manifest["database"]["user_version"], 3);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3);

    // Damage alpha: lose the database, change the session.
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    std::fs::remove_file(&db).unwrap();
    std::fs::write(
        cluster.volume("alpha", "bot-data").join("bot.sqlite3-wal"),
        b"stale wal",
    )
    .unwrap();
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("creds.json"),
        b"someone else",
    )
    .unwrap();
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("stray.json"),
        b"stray",
    )
    .unwrap();

    let out = restore(&cluster, "alpha", &archive, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Restored tenant alpha from"),
        "{}",
        stdout(&out)
    );
    let alpha_after = cluster.volume_files("alpha");
    let auth_after: Vec<(String, Vec<u8>)> = alpha_after
        .iter()
        .filter(|(k, _)| k.starts_with("bot-whatsapp-auth/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        auth_after, alpha_auth_before,
        "the session files are not byte-identical"
    );
    let data_files: Vec<&String> = alpha_after
        .keys()
        .filter(|k| k.starts_with("bot-data/"))
        .collect();
    assert_eq!(
        data_files,
        ["bot-data/bot.sqlite3"],
        "stale or temporary files remain"
    );
    // The database is the archive's, byte for byte, and holds the same rows.
    let extracted = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&db).unwrap(),
        std::fs::read(extracted.path().join("database/bot.sqlite3")).unwrap()
    );
    assert_eq!(query(&db, "SELECT count(*) FROM messages"), 3);
    assert_eq!(query(&db, "PRAGMA user_version"), 3);
    // The bot is back, the workbench gone, the bookkeeping annotation removed.
    let deployment = cluster
        .get("Deployment", Some("tenant-alpha"), "bot")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert!(
        deployment
            .pointer("/metadata/annotations/mla-platform.in~1replicas-before-restore")
            .is_none()
    );
    assert!(
        cluster
            .get("Pod", Some("tenant-alpha"), "xtask-workbench")
            .is_none()
    );
    assert_eq!(
        cluster.volume_files("bravo"),
        bravo_before,
        "restoring alpha touched bravo"
    );
    assert!(
        cluster
            .calls()
            .iter()
            .all(|c| !c.iter().any(|a| a.contains("tenant-bravo"))),
        "a command for alpha addressed bravo's namespace"
    );
}

#[test]
fn a_stopped_tenant_is_backed_up_through_the_workbench_and_stays_stopped_after_restore() {
    let cluster = mixed_cluster();
    create_bot_database(
        &cluster.volume("charlie", "bot-data").join("bot.sqlite3"),
        &["2026-11-23T00:00:00Z"],
        &[],
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&cluster, "charlie", dir.path());
    assert!(
        cluster
            .get("Pod", Some("tenant-charlie"), "xtask-workbench")
            .is_none(),
        "the workbench was left behind"
    );
    let out = restore(&cluster, "charlie", &archive, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("the bot is left stopped, as it was"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        cluster
            .get("Deployment", Some("tenant-charlie"), "bot")
            .unwrap()["spec"]["replicas"],
        0
    );
}

#[test]
fn bad_archives_are_refused_before_anything_changes() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&cluster, "alpha", dir.path());
    let bytes = std::fs::read(&archive).unwrap();
    let bad = tempfile::tempdir().unwrap();
    let truncated = bad.path().join("truncated.tar.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // A corrupted file inside an otherwise valid archive: rebuild it with one byte changed.
    let unpacked = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(unpacked.path())
            .status()
            .unwrap()
            .success()
    );
    let creds = unpacked.path().join("whatsapp-auth/creds.json");
    let mut data = std::fs::read(&creds).unwrap();
    data[0] ^= 1;
    std::fs::write(&creds, data).unwrap();
    let corrupted = bad.path().join("corrupted.tar.gz");
    // Repacked as backup packs: the manifest first, files only, canonical
    // names (a reader refuses `./` and directory entries).
    let mut names = vec!["manifest.json".to_owned()];
    for sub in ["database", "whatsapp-auth"] {
        for e in std::fs::read_dir(unpacked.path().join(sub)).unwrap() {
            names.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    assert!(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&corrupted)
            .arg("-C")
            .arg(unpacked.path())
            .arg("--no-recursion")
            .args(&names)
            .status()
            .unwrap()
            .success()
    );

    let objects = cluster.objects();
    let files = cluster.volume_files("alpha");
    let calls = cluster.calls().len();
    let mut transcript = String::new();
    for (label, path, extra) in [
        ("truncated", &truncated, vec![]),
        ("corrupted", &corrupted, vec![]),
        ("another tenant's", &archive, vec![]),
        (
            "wrong --from-tenant",
            &archive,
            vec!["--from-tenant", "delta"],
        ),
    ] {
        let target = if label.contains("tenant") {
            "bravo"
        } else {
            "alpha"
        };
        let out = restore(&cluster, target, path, &extra);
        assert_eq!(out.status.code(), Some(1), "{label}");
        let err = stderr(&out)
            .replace(&path.display().to_string(), "ARCHIVE")
            .lines()
            .filter(|l| !l.starts_with("Verifying"))
            .collect::<Vec<_>>()
            .join("\n");
        transcript += &format!("# {label}\n{err}\n\n");
    }
    insta::assert_snapshot!(transcript);
    assert_eq!(
        cluster.objects(),
        objects,
        "a refused restore changed the cluster"
    );
    assert_eq!(cluster.volume_files("alpha"), files);
    let later: Vec<Vec<String>> = cluster.calls().into_iter().skip(calls).collect();
    assert!(
        later.iter().all(|c| c[0] == "get"),
        "a refused restore did more than read: {later:?}"
    );
    // verify-backup agrees, offline.
    exits(
        cluster.xtask(&["admin", "verify-backup"]).arg(&corrupted),
        1,
    );
    // Another tenant's data on purpose: refused while alpha is on the
    // cluster (its session would run in two bots), done once it is offboarded.
    let out = restore(&cluster, "charlie", &archive, &["--from-tenant", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "error: the archive holds the WhatsApp session of tenant alpha, which is on this cluster (active): \
             restored here, one WhatsApp session would run in two bots"
        ) && stderr(&out).ends_with("Nothing was changed.\n"),
        "{}",
        stderr(&out)
    );
    exits(
        cluster.admin(&["offboard", "alpha", "--no-backup", "--yes"]),
        0,
    );
    let out = restore(&cluster, "charlie", &archive, &["--from-tenant", "alpha"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_interrupted_backup_leaves_nothing_that_looks_like_a_backup() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    // The backup's execs: .backup, cat, rm, then tar of the session files,
    // which fails as if the pod were killed.
    let killed = fake_kubectl::Fault::fail("exec", 137, "command terminated with exit code 137");
    cluster.fault(fake_kubectl::Fault {
        skip: 3,
        times: Some(1),
        ..killed
    });
    let out = exits(
        cluster.admin(&["backup", "alpha", "--out"]).arg(dir.path()),
        1,
    );
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert!(
        stderr(&out).ends_with("No backup was written.\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ctrl_c_during_a_backup_leaves_no_archive() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    cluster.fault(fake_kubectl::Fault {
        sleep_ms: 30_000,
        times: Some(1),
        ..fake_kubectl::Fault::fail("exec", 1, "")
    });
    let child = cluster
        .admin_process(&["backup", "alpha", "--out"])
        .arg(dir.path())
        .process_group(0)
        .spawn()
        .unwrap();
    // Once the hanging exec (30 s) has started: Ctrl-C.
    let started = std::time::Instant::now();
    let out = common::ctrl_c_after(&cluster, child, "exec", 1);
    assert!(!out.status.success());
    assert!(
        started.elapsed().as_secs() < 20,
        "Ctrl-C did not stop the backup"
    );
    let err = stderr(&out);
    assert!(err.contains("interrupted"), "{err}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn a_restore_that_fails_midway_states_the_tenant_state() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&cluster, "alpha", dir.path());
    // A restore's execs: tar -x of the database, its check, rm of the live
    // files, mv, the check in place, then find -delete on the session
    // volume, which fails here.
    let fault = fake_kubectl::Fault::fail("exec", 1, "find: /whatsapp-auth: Input/output error");
    cluster.fault(fake_kubectl::Fault {
        skip: 5,
        times: Some(1),
        ..fault
    });
    let out = restore(&cluster, "alpha", &archive, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out).replace(&archive.display().to_string(), "ARCHIVE");
    let err: String = err
        .lines()
        .filter(|l| !l.ends_with("..."))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(err);
    let deployment = cluster
        .get("Deployment", Some("tenant-alpha"), "bot")
        .unwrap();
    assert_eq!(
        deployment["spec"]["replicas"], 0,
        "the bot must stay stopped after a failed restore"
    );
    assert!(
        cluster
            .get("Pod", Some("tenant-alpha"), "xtask-workbench")
            .is_none(),
        "the workbench was not cleaned up"
    );
    // Running it again recovers: the bot comes back with its old replica count.
    let again = restore(&cluster, "alpha", &archive, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        cluster
            .get("Deployment", Some("tenant-alpha"), "bot")
            .unwrap()["spec"]["replicas"],
        1
    );
    let auth = cluster.volume_files("alpha");
    assert_eq!(auth["bot-whatsapp-auth/creds.json"], b"{\"me\":\"alpha\"}");
}

/// Run every command against a provisioned tenant and look for its
/// generated credentials (raw and base64) in everything they print.
#[test]
fn no_command_ever_prints_a_secret_value() {
    let cluster = Cluster::new();
    let values = common::fixture("kalyan.yaml");
    let first = exits(cluster.provision("kalyan", &values, &[]), 0);
    let secret = cluster
        .get("Secret", Some("tenant-kalyan"), "bot-credentials")
        .unwrap();
    let encoded: Vec<String> = secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let decoded: Vec<String> = encoded.iter().map(|e| common::decode_base64(e)).collect();
    assert!(decoded.iter().all(|d| d.len() == 64), "{decoded:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut printed = stdout(&first) + &stderr(&first);
    // Every command must do its job: a command that fails early prints
    // nothing worth searching.
    let mut run = |cmd: &mut assert_cmd::Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{:?} failed: {}",
            cmd.get_args().collect::<Vec<_>>(),
            stderr(&out)
        );
        printed += &(stdout(&out) + &stderr(&out));
    };
    run(&mut cluster.provision("kalyan", &values, &[]));
    run(&mut cluster.provision("kalyan", &values, &["--dry-run"]));
    for format in ["table", "json", "yaml"] {
        run(&mut cluster.admin(&["list", "-o", format]));
        run(&mut cluster.admin(&["usage", "-o", format]));
    }
    run(&mut cluster.admin(&["restart", "kalyan"]));
    run(&mut cluster.admin(&["logs", "kalyan"]));
    for format in ["table", "json"] {
        run(cluster
            .admin(&["verify", "--network", "-o", format, "--tenants-dir"])
            .arg(cluster.tenants.path()));
    }
    run(cluster
        .admin(&["backup", "kalyan", "--out"])
        .arg(dir.path()));
    let archive = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    run(cluster
        .xtask(&["admin", "verify-backup", "-o", "json"])
        .arg(&archive));
    run(cluster
        .admin(&["restore", "kalyan"])
        .arg(&archive)
        .arg("--yes"));
    let unpacked = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(unpacked.status.success(), "{}", stderr(&unpacked));
    let archive_text = String::from_utf8_lossy(&unpacked.stdout);
    assert!(
        archive_text.contains("\"tenant\": \"kalyan\""),
        "{archive_text}"
    );
    for value in encoded.iter().chain(&decoded) {
        assert!(
            !printed.contains(value.as_str()),
            "a credential was printed"
        );
        assert!(
            !archive_text.contains(value.as_str()),
            "a credential is in the backup"
        );
    }
}

/// Every change is recorded in the audit log, and no read is.
#[test]
fn changes_are_audited_and_reads_are_not() {
    let cluster = Cluster::new();
    cluster
        .provision(
            "kalyan",
            &common::fixture("kalyan.yaml"),
            &["--context", "prod"],
        )
        .assert()
        .success();
    cluster
        .provision("mylapore", &common::fixture("mylapore.yaml"), &[])
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["list"],
        vec!["usage"],
        vec!["logs", "kalyan"],
        vec!["verify", "kalyan"],
    ] {
        let _ = cluster.admin(&args).output().unwrap();
    }
    cluster
        .admin(&["backup", "kalyan", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    cluster
        .admin(&["restart", "kalyan", "--context", "prod"])
        .assert()
        .success();
    let archive = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    cluster
        .admin(&["restore", "kalyan"])
        .arg(&archive)
        .arg("--yes")
        .assert()
        .success();
    // A failed change is recorded too.
    cluster.admin(&["restart", "nobody"]).assert().failure();
    let out = exits(cluster.xtask(&["admin", "audit", "-o", "json"]), 0);
    let entries: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            let cmd = e["command"].as_str().unwrap();
            let verb = if cmd.starts_with("provision") {
                "provision"
            } else {
                cmd.split(' ').nth(1).unwrap()
            };
            (
                e["tenant"].as_str().unwrap().to_owned(),
                verb.to_owned(),
                e["result"].as_str().unwrap().chars().take(5).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("kalyan".into(), "provision".into(), "ok".into()),
            ("mylapore".into(), "provision".into(), "ok".into()),
            ("kalyan".into(), "restart".into(), "ok".into()),
            ("kalyan".into(), "restore".into(), "ok".into()),
            ("nobody".into(), "restart".into(), "error".into()),
        ]
    );
    assert_eq!(entries[0]["context"], "prod");
    assert_eq!(entries[1]["context"], "current");
    assert!(
        entries
            .iter()
            .all(|e| !e["operator"].as_str().unwrap().is_empty()
                && !e["time"].as_str().unwrap().is_empty())
    );
    let mine = cluster
        .xtask(&["admin", "audit", "mylapore", "-o", "json"])
        .output()
        .unwrap();
    let mine: Vec<Value> = serde_json::from_str(&stdout(&mine)).unwrap();
    assert_eq!(mine.len(), 1);
}

/// `kill -TERM` during a restore is handled like Ctrl-C: the step in
/// progress ends, the workbench is removed, and the tenant's state is stated.
#[test]
fn sigterm_during_a_restore_states_the_tenant_state() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&cluster, "alpha", dir.path());
    // The restore's first exec (writing the database) takes 3 s.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("exec", 3000)
    });
    // Counted before the restore starts, so that its first exec is the one
    // waited for.
    let execs = |c: &Cluster| c.calls().iter().filter(|c| c[0] == "exec").count();
    let before = execs(&cluster);
    let mut child = cluster
        .admin_process(&["restore", "alpha"])
        .arg(&archive)
        .arg("--yes")
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while execs(&cluster) == before {
        if started.elapsed().as_secs() >= 20 {
            let _ = child.kill();
            panic!("the restore never reached exec");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        cluster
            .calls()
            .iter()
            .any(|c| c.iter().any(|a| a.contains("xtask-workbench"))),
        "the restore's exec ran without a workbench"
    );
    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("interrupted (Ctrl-C or a termination signal)")
            && err.contains("State of tenant alpha now:")
            && err.contains("the bot is STOPPED"),
        "{err}"
    );
    assert!(
        cluster
            .get("Pod", Some("tenant-alpha"), "xtask-workbench")
            .is_none(),
        "the workbench was left behind"
    );
}

/// `cargo xtask admin ARGS` in a pseudo-terminal (util-linux's `script`,
/// essential in Debian): stdout and stderr are both the terminal. The
/// environment is [`Cluster::admin_process`]'s without `CI` and
/// `NO_COLOR`, plus `env`. Returns what the terminal showed.
fn on_terminal(cluster: &Cluster, args: &[&str], env: &[(&str, &str)]) -> String {
    let inner = cluster.admin_process(args);
    let words: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|w| w.to_str().unwrap().to_owned())
        .collect();
    let line = shlex::try_join(words.iter().map(String::as_str)).unwrap();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    script
        .env_remove("CI")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied());
    let out = script.stdin(std::process::Stdio::null()).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {shown}");
    shown
}

/// Colour is the terminal's: `admin list` paints states there, and
/// NO_COLOR (any non-empty value) or `--color never` turns it off.
#[test]
fn a_terminal_shows_states_in_colour_unless_told_not_to() {
    let cluster = mixed_cluster();
    let shown = on_terminal(&cluster, &["list"], &[]);
    assert!(shown.contains("\x1b[32mrunning"), "{shown:?}");
    assert!(shown.contains("\x1b[1;31merror"), "{shown:?}");
    for (args, env) in [
        (&["list"][..], &[("NO_COLOR", "1")][..]),
        (&["list", "--color", "never"][..], &[][..]),
    ] {
        let plain = on_terminal(&cluster, args, env);
        assert!(
            plain.contains("running") && !plain.contains('\x1b'),
            "{args:?} {env:?}: {plain:?}"
        );
    }
}

/// Into a pipe nothing is coloured unless `--color always` says so, and
/// never JSON.
#[test]
fn a_pipe_gets_colour_only_with_color_always_and_never_in_json() {
    let cluster = mixed_cluster();
    let plain = stdout(&exits(cluster.admin(&["list"]), 0));
    assert!(
        plain.contains("running") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let painted = stdout(&exits(cluster.admin(&["list", "--color", "always"]), 0));
    assert!(painted.contains("\x1b[32mrunning\x1b[0m"), "{painted:?}");
    assert!(painted.contains("\x1b[1;31merror"), "{painted:?}");
    // Painted or not, the columns stay where the plain table has them.
    let unpainted = painted.replace("\x1b[32m", "").replace("\x1b[1;31m", "");
    let unpainted = unpainted
        .replace("\x1b[33m", "")
        .replace("\x1b[34m", "")
        .replace("\x1b[2m", "")
        .replace("\x1b[0m", "");
    assert_eq!(unpainted, plain);
    let json = stdout(&exits(
        cluster.admin(&["list", "-o", "json", "--color", "always"]),
        0,
    ));
    assert!(!json.contains('\x1b'), "{json}");
    serde_json::from_str::<Value>(&json).unwrap();
}

/// On a terminal, backup and restore draw the bytes of each volume as
/// they go (restore with its percentage: the archive's sizes are known),
/// and erase the bar before the next line; in CI, nothing is drawn.
#[test]
fn backup_and_restore_draw_their_bytes_on_a_terminal_only() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let shown = on_terminal(&cluster, &["backup", "alpha", "--out", out], &[]);
    assert!(shown.contains("  WhatsApp session "), "{shown:?}");
    assert!(shown.contains("B/s"), "{shown:?}");
    let archive = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let restored = on_terminal(
        &cluster,
        &["restore", "alpha", archive.to_str().unwrap(), "--yes"],
        &[],
    );
    for volume in ["  database [", "  WhatsApp session ["] {
        let bar = &restored[restored.find(volume).expect(volume)..];
        let bar = &bar[..bar.find('\r').unwrap()];
        assert!(bar.contains(" KiB (") && bar.contains("%), "), "{bar:?}");
    }
    // Each step line starts a line of its own: the bar before it is erased.
    for shown in [&shown, &restored] {
        for line in shown.split('\n') {
            let last = line.rsplit('\r').next().unwrap();
            assert!(!last.contains("B/s"), "a bar was left standing: {line:?}");
        }
    }
    std::fs::remove_file(&archive).unwrap();
    let in_ci = on_terminal(
        &cluster,
        &["backup", "alpha", "--out", out],
        &[("CI", "true")],
    );
    assert!(
        !in_ci.contains("B/s") && !in_ci.contains('\x1b'),
        "{in_ci:?}"
    );
}

/// Through a pipe (as in CI and cron), backup and restore print their
/// step lines only: no carriage return, no escape sequence.
#[test]
fn backup_and_restore_through_a_pipe_print_no_progress() {
    let cluster = mixed_cluster();
    let dir = tempfile::tempdir().unwrap();
    let backed_up = exits(
        cluster.admin(&["backup", "alpha", "--out"]).arg(dir.path()),
        0,
    );
    let archive = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let restored = restore(&cluster, "alpha", &archive, &[]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    for out in [&backed_up, &restored] {
        let text = stderr(out) + &stdout(out);
        assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
        assert!(!text.contains("B/s"), "{text:?}");
    }
    assert!(stderr(&backed_up).contains("Copying the WhatsApp session files ..."));
    assert!(stderr(&restored).contains("Writing the database ..."));
}

/// `admin audit` filters by tenant, by time (a period or an RFC 3339 time)
/// and keeps the newest N; its table fits 100 columns by cutting long
/// fields with `…`, while JSON keeps them whole.
#[test]
fn audit_filters_and_a_table_that_fits_100_columns() {
    let cluster = Cluster::new();
    let long_command = format!(
        "provision kalyan --mla-name \"{}\" --domain kalyan.example.in --domain seva.kalyan.example.in --yes",
        "Shri Ramchandra Vishwanath Deshmukh-Patil"
    );
    let entry = |time: &str, tenant: &str, command: &str, result: &str| {
        serde_json::json!({
            "time": time,
            "operator": "operations-team-lead@mla-platform.example.in",
            "environment": "prod",
            "context": "arn:aws:eks:ap-south-1:123456789012:cluster/mla-prod",
            "tenant": tenant,
            "command": command,
            "result": result,
        })
        .to_string()
    };
    let lines = [
        entry(
            "2026-11-01T06:00:00Z",
            "kalyan",
            "admin restart kalyan",
            "ok",
        ),
        entry(
            "2026-11-18T06:00:00Z",
            "mylapore",
            "admin restart mylapore",
            "ok",
        ),
        entry(
            "2026-11-20T06:00:00Z",
            "kalyan",
            &long_command,
            "error: `kubectl apply` failed (exit 1) on context `prod`: Error from server (Forbidden): exceeded quota",
        ),
        entry(
            "2026-11-23T06:00:00Z",
            "kalyan",
            "admin suspend kalyan",
            "ok",
        ),
        entry(
            "2026-11-24T05:00:00Z",
            "mylapore",
            "admin resume mylapore",
            "ok",
        ),
    ];
    std::fs::write(cluster.audit_log(), lines.join("\n") + "\n").unwrap();
    let now = ("XTASK_NOW", "2026-11-24T06:00:00Z");
    let json = |args: &[&str]| -> Vec<(String, String)> {
        let mut cmd = cluster.xtask(&["admin", "audit", "-o", "json"]);
        cmd.args(args).env(now.0, now.1);
        let out = exits(cmd, 0);
        let entries: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
        entries
            .iter()
            .map(|e| {
                (
                    e["time"].as_str().unwrap()[..10].to_owned(),
                    e["tenant"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |d: &str, t: &str| (d.to_owned(), t.to_owned());
    assert_eq!(
        json(&["--tenant", "kalyan", "--since", "7d"]),
        [pair("2026-11-20", "kalyan"), pair("2026-11-23", "kalyan")]
    );
    // The positional TENANT is the same filter.
    assert_eq!(
        json(&["kalyan", "--since", "7d"]),
        json(&["--tenant", "kalyan", "--since", "7d"])
    );
    assert_eq!(
        json(&["--since", "2026-11-18T06:00:00Z", "--limit", "2"]),
        [pair("2026-11-23", "kalyan"), pair("2026-11-24", "mylapore")]
    );
    assert_eq!(json(&["--limit", "1"]), [pair("2026-11-24", "mylapore")]);
    assert_eq!(json(&["--limit", "9"]).len(), 5);
    // JSON keeps long fields whole.
    let mut cmd = cluster.xtask(&["admin", "audit", "--since", "5d", "-o", "json"]);
    cmd.env(now.0, now.1);
    assert!(stdout(&exits(cmd, 0)).contains("Deshmukh-Patil"));

    let mut cmd = cluster.xtask(&["admin", "audit"]);
    cmd.env(now.0, now.1);
    let table = stdout(&exits(cmd, 0));
    assert_eq!(table.lines().count(), 6, "{table}");
    for line in table.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 100,
            "{} columns: {line}\n{table}",
            unicode_width::UnicodeWidthStr::width(line)
        );
    }
    assert!(table.starts_with("TIME "), "{table}");
    let long_row = table.lines().find(|l| l.contains("2026-11-20")).unwrap();
    assert!(
        long_row.contains("provision kalyan") && long_row.contains('…'),
        "{long_row}"
    );
    assert!(!long_row.contains("Deshmukh-Patil"), "{long_row}");
    // Times are never cut; short fields are whole.
    assert!(long_row.starts_with("2026-11-20T06:00:00Z  "), "{long_row}");
    assert!(table.contains("kalyan"), "{table}");

    // Refusals: both forms of the tenant, and a --since that is neither.
    let out = exits(
        cluster.xtask(&["admin", "audit", "kalyan", "--tenant", "mylapore"]),
        2,
    );
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = exits(cluster.xtask(&["admin", "audit", "--since", "1w"]), 2);
    assert!(
        stderr(&out).contains("`1w` is not a period or a time; write it like 7d, 12h or 90m"),
        "{}",
        stderr(&out)
    );
    let out = exits(cluster.xtask(&["admin", "audit", "--limit", "0"]), 2);
    assert!(stderr(&out).contains("--limit"), "{}", stderr(&out));
    // Nothing left after the filters: said on stderr, exit 0.
    let mut cmd = cluster.xtask(&["admin", "audit", "--tenant", "nobody"]);
    cmd.env(now.0, now.1);
    let out = exits(cmd, 0);
    assert!(
        stderr(&out).contains("match the filters"),
        "{}",
        stderr(&out)
    );
}
