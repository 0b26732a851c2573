//! Locks on the cluster (issue 12, items 1 and 2): the tenant Lease every
//! change holds, the claims Lease of provision, the batch check of
//! `provision --all`, stale leases and `admin unlock`.

mod common;

use std::path::{Path, PathBuf};

use common::{Cluster, create_bot_database, exits, fake_kubectl, seed_tenants, stderr, stdout};
use serde_json::{Value, json};

const LOCKS: &str = "xtask-locks";

/// A config of `tenant` with kalyan's number and domains, in the cluster's
/// tenants directory.
fn kalyan_twin(cluster: &Cluster, tenant: &str) -> PathBuf {
    let path = cluster.tenants.path().join(format!("{tenant}.yaml"));
    let text = std::fs::read_to_string(common::fixture("kalyan.yaml"))
        .unwrap()
        .replace("tenant: kalyan", &format!("tenant: {tenant}"));
    std::fs::write(&path, text).unwrap();
    path
}

fn provision_all(cluster: &Cluster) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["provision", "--all", "--yes", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path())
        .arg("--kubectl")
        .arg(fake_kubectl());
    cmd
}

fn namespaces(cluster: &Cluster) -> Vec<String> {
    cluster
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .filter(|n| n.starts_with("tenant-"))
        .collect()
}

fn lease(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster.get("Lease", Some(LOCKS), name)
}

/// Puts a lease on the cluster as a command on another machine left it.
fn plant_lease(cluster: &Cluster, name: &str, acquired: &str) {
    plant_lease_of(cluster, name, acquired, "laptop-7:4242", None);
}

/// [`plant_lease`] by process `host:pid`, with the holder machine's boot id.
fn plant_lease_of(
    cluster: &Cluster,
    name: &str,
    acquired: &str,
    process: &str,
    boot: Option<&str>,
) {
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LOCKS,
            "annotations": {
                "xtask.mla-platform.io/command": "admin restore alpha backups/alpha-old.tar.gz --yes",
                "xtask.mla-platform.io/process": process,
            },
        },
        "spec": {
            "holderIdentity": "gone@example.org",
            "acquireTime": acquired,
            "leaseDurationSeconds": 10800,
        },
    });
    if let Some(boot) = boot {
        lease["metadata"]["annotations"]["xtask.mla-platform.io/boot"] = json!(boot);
    }
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCKS}}),
        lease,
    ] {
        let mut child = std::process::Command::new(fake_kubectl())
            .args(["create", "--filename", "-", "--output", "json"])
            .env("FAKE_KUBECTL_STATE", cluster.state.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(object.to_string().as_bytes())
            .unwrap();
        child.wait().unwrap();
    }
    assert!(lease_exists(cluster, name));
}

fn lease_exists(cluster: &Cluster, name: &str) -> bool {
    lease(cluster, name).is_some()
}

/// Item 1: two configs of one batch with one number and domains: the later
/// (by name) is refused by name before anything is applied, the other applied.
#[test]
fn provision_all_applies_one_of_two_configs_with_one_number() {
    let cluster = Cluster::new();
    cluster.commit_fixture("kalyan");
    kalyan_twin(&cluster, "kalyan-two");
    let out = exits(provision_all(&cluster), 1);
    let text = stdout(&out);
    assert!(
        text.contains("kalyan-two: FAILED: ")
            && text.contains("kalyan-two.yaml clashes with another config of this batch")
            && text.contains("WhatsApp number +919876543210 is also in")
            && text.contains("kalyan.yaml (tenant kalyan)")
            && text.contains("domain kalyan-mla.example.in is also in"),
        "{text}"
    );
    assert!(
        text.contains("2 tenants: 1 applied, 0 up to date, 0 skipped, 1 failed."),
        "{text}"
    );
    assert_eq!(namespaces(&cluster), ["tenant-kalyan"]);
    // Nothing of the refused tenant reached the cluster.
    assert!(
        !cluster
            .calls()
            .iter()
            .filter(|c| !c.iter().any(|a| a == LOCKS))
            .any(|c| c.iter().any(|a| a.contains("tenant-kalyan-two"))),
        "the refused config was read or applied beyond its lock"
    );
    // Both locks released.
    assert!(!lease_exists(&cluster, "claims"));
    assert!(!lease_exists(&cluster, "tenant-kalyan"));
}

/// Item 1: two provisions of configs with one number, started together:
/// exactly one is applied, the other refused (by the claims lock, or, if
/// it came second, by the clash it then sees).
#[test]
fn two_provisions_started_together_apply_one() {
    let cluster = Cluster::new();
    let first = kalyan_twin(&cluster, "kalyan");
    let second = kalyan_twin(&cluster, "kalyan-two");
    // Each apply is slow, so the two runs overlap.
    cluster.fault(fake_kubectl::Fault::slow("apply", 1500));
    let spawn = |tenant: &str, values: &Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args([
            "provision",
            tenant,
            "--yes",
            "--non-interactive",
            "--values",
        ])
        .arg(values)
        .arg("--kubectl")
        .arg(fake_kubectl())
        .arg("--tenants-dir")
        .arg(cluster.tenants.path())
        .env("FAKE_KUBECTL_STATE", cluster.state.path())
        .env("XTASK_AUDIT_LOG", cluster.audit_log())
        .env_remove("KUBECTL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let a = spawn("kalyan", &first);
    let b = spawn("kalyan-two", &second);
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{}\n---\n{}", stderr(&outs[0]), stderr(&outs[1]));
    let refused = outs.iter().find(|o| !o.status.success()).unwrap();
    let err = stderr(refused);
    assert!(
        err.contains("another command holds the lock on the domain and number claims: ")
            || err.contains("WhatsApp number +919876543210 is already used by tenant"),
        "{err}"
    );
    assert!(err.contains("Nothing was changed"), "{err}");
    let live = namespaces(&cluster);
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(!lease_exists(&cluster, "claims"));
}

fn backup(cluster: &Cluster, tenant: &str, dir: &Path, now: &str) -> PathBuf {
    let listed = || -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    let before = listed();
    exits(
        cluster
            .admin(&["backup", tenant, "--out"])
            .arg(dir)
            .env("XTASK_NOW", now),
        0,
    );
    let new: Vec<PathBuf> = listed()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new.into_iter().next().unwrap()
}

fn auth_files(cluster: &Cluster, tenant: &str) -> Vec<(String, Vec<u8>)> {
    cluster
        .volume_files(tenant)
        .into_iter()
        .filter(|(k, _)| k.starts_with("bot-whatsapp-auth/"))
        .collect()
}

fn messages(cluster: &Cluster, tenant: &str) -> i64 {
    rusqlite::Connection::open(cluster.volume(tenant, "bot-data").join("bot.sqlite3"))
        .unwrap()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap()
}

/// Spawns `cmd` with its first exec made to take `millis`, and returns it
/// once that exec runs (the command holds its locks by then).
fn spawn_until_exec(
    cluster: &Cluster,
    cmd: &mut std::process::Command,
    millis: u64,
) -> std::process::Child {
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("exec", millis)
    });
    let execs = |c: &Cluster| c.calls().iter().filter(|c| c[0] == "exec").count();
    let before = execs(cluster);
    let child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while execs(cluster) == before {
        assert!(
            started.elapsed().as_secs() < 20,
            "{cmd:?} never reached exec"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// Item 2: two restores of one tenant at once: the second is refused by the
/// lease, naming the holder and the command, before it changes anything;
/// the first restores exactly its own archive.
#[test]
fn a_second_restore_of_a_tenant_is_refused_by_the_lease() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    let auth = cluster.volume("alpha", "bot-whatsapp-auth");
    let dir = tempfile::tempdir().unwrap();
    // Archive X: three messages, session X.
    create_bot_database(
        &db,
        &[
            "2026-11-20T10:00:00Z",
            "2026-11-21T10:00:00Z",
            "2026-11-22T10:00:00Z",
        ],
        &[],
        3,
    );
    std::fs::write(auth.join("creds.json"), b"{\"me\":\"X\"}").unwrap();
    let x_auth = auth_files(&cluster, "alpha");
    let x = backup(&cluster, "alpha", dir.path(), "2026-11-24T06:00:00Z");
    // Archive Y: one message, session Y.
    std::fs::remove_file(&db).unwrap();
    create_bot_database(&db, &["2026-11-23T10:00:00Z"], &[], 3);
    std::fs::write(auth.join("creds.json"), b"{\"me\":\"Y\"}").unwrap();
    let y = backup(&cluster, "alpha", dir.path(), "2026-11-24T07:00:00Z");
    assert_ne!(x, y);

    // The first restore's first exec (writing the database) takes 3 s.
    let first = spawn_until_exec(
        &cluster,
        cluster
            .admin_process(&["restore", "alpha"])
            .arg(&x)
            .arg("--yes"),
        3000,
    );
    let held = lease(&cluster, "tenant-alpha").expect("the first restore holds the lease");
    let holder = held["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    let calls_before = cluster.calls().len();

    let second = exits(cluster.admin(&["restore", "alpha"]).arg(&y).arg("--yes"), 1);
    let err = stderr(&second);
    assert!(
        err.contains(&format!(
            "error: another command holds the lock on tenant alpha: {holder} ran `admin restore alpha {} --yes`",
            x.display()
        )) && err.contains("cargo xtask admin unlock alpha")
            && err.contains("Nothing was changed"),
        "{err}"
    );
    // The refused restore only read (the cluster's identity, the lease) and
    // tried to take the lease.
    let its_calls: Vec<Vec<String>> = cluster.calls()[calls_before..].to_vec();
    assert!(
        its_calls
            .iter()
            .all(|c| c[0] == "create" || c[0] == "get" || c[0] == "exec"),
        "{its_calls:?}"
    );

    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Restored tenant alpha from"),
        "{}",
        stdout(&out)
    );
    assert_eq!(auth_files(&cluster, "alpha"), x_auth);
    assert_eq!(messages(&cluster, "alpha"), 3);
    assert!(!lease_exists(&cluster, "tenant-alpha"));
}

/// A backup through the running bot holds the tenant's lock too: a restore
/// started while it reads is refused, instead of stopping the bot under it
/// (the backup then failed with "pods not found" and the archive, had it
/// been written, would mix the states before and after the restore).
#[test]
fn a_restore_during_a_backup_is_refused_and_the_backup_completes() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(&db, &["2026-11-20T10:00:00Z"], &[], 3);
    let dir = tempfile::tempdir().unwrap();
    let old = backup(&cluster, "alpha", dir.path(), "2026-11-24T06:00:00Z");

    // The next backup's first exec (reading the database) takes 3 s.
    let running = spawn_until_exec(
        &cluster,
        cluster
            .admin_process(&["backup", "alpha", "--out"])
            .arg(dir.path())
            .env("XTASK_NOW", "2026-11-24T07:00:00Z"),
        3000,
    );
    let held = lease(&cluster, "tenant-alpha").expect("the backup holds the tenant's lease");
    assert!(
        held["metadata"]["annotations"]["xtask.mla-platform.io/command"]
            .as_str()
            .unwrap()
            .starts_with("admin backup alpha"),
        "{held}"
    );
    let restore = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(&old)
            .arg("--yes")
            .env("XTASK_NOW", "2026-11-24T07:00:30Z"),
        1,
    );
    let err = stderr(&restore);
    assert!(
        err.contains("error: another command holds the lock on tenant alpha: ")
            && err.contains("ran `admin backup alpha --out")
            && err.contains("Nothing was changed"),
        "{err}"
    );
    // The restore stopped nothing.
    assert!(!cluster.calls().iter().any(|c| c[0] == "scale"));

    let out = running.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Backed up tenant alpha to"),
        "{}",
        stdout(&out)
    );
    assert!(!lease_exists(&cluster, "tenant-alpha"));
}

/// A lease left by a command killed hard: refused while it lasts (with the
/// holder, the command, its age and the way out), taken over once expired.
#[test]
fn a_stale_lease_is_reported_then_taken_over_when_expired() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    plant_lease(&cluster, "tenant-alpha", "2026-11-24T06:00:00.000000Z");
    let out = exits(
        cluster
            .admin(&["restart", "alpha", "--yes"])
            .env("XTASK_NOW", "2026-11-24T07:00:00Z"),
        1,
    );
    assert_eq!(
        stderr(&out),
        "kubectl's current context (no environment: environments.yaml names no default; pick one \
         with --env): a restart of tenant alpha.\n\
         error: another command holds the lock on tenant alpha: gone@example.org ran \
         `admin restore alpha backups/alpha-old.tar.gz --yes` 1h ago (since 2026-11-24T06:00:00.000000Z) \
         (process laptop-7:4242; lease xtask-locks/tenant-alpha expires in 2h). \
         Wait for it to finish and run this again. If that command is no longer running (killed, or its \
         machine gone), break the lock with `cargo xtask admin unlock alpha`.\nNothing was changed.\n"
    );
    assert!(lease_exists(&cluster, "tenant-alpha"));
    assert!(!cluster.calls().iter().any(|c| c[0] == "rollout"));

    // Three hours after it was taken, it has expired: taken over, and said so.
    let out = exits(
        cluster
            .admin(&["restart", "alpha", "--yes"])
            .env("XTASK_NOW", "2026-11-24T09:00:01Z"),
        0,
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "Took over the lock on tenant alpha: gone@example.org ran `admin restore alpha \
             backups/alpha-old.tar.gz --yes` 3h ago"
        ) && err.contains(
            "its lock was left behind (it expired without being released: its process was probably killed)"
        ),
        "{err}"
    );
    assert!(!lease_exists(&cluster, "tenant-alpha"), "not released");
}

/// A lease whose process on this machine is gone (killed with SIGKILL,
/// crashed) is taken over at once, long before it expires; one recorded
/// under this host name but another boot (another machine of the same
/// name, or before a reboot) is not.
#[test]
fn a_lease_of_a_process_gone_from_this_machine_is_taken_over_at_once() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_owned();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let process = format!("{host}:{pid}");
    let now = "2026-11-24T06:05:00Z";

    plant_lease_of(
        &cluster,
        "tenant-alpha",
        "2026-11-24T06:00:00.000000Z",
        &process,
        Some("00000000-0000-4000-8000-000000000000"),
    );
    let out = exits(
        cluster
            .admin(&["restart", "alpha", "--yes"])
            .env("XTASK_NOW", now),
        1,
    );
    assert!(
        stderr(&out).contains("another command holds the lock on tenant alpha"),
        "{}",
        stderr(&out)
    );

    cluster.kubectl(&["delete", "lease", "tenant-alpha", "--namespace", LOCKS]);
    plant_lease_of(
        &cluster,
        "tenant-alpha",
        "2026-11-24T06:00:00.000000Z",
        &process,
        Some(&boot),
    );
    let out = exits(
        cluster
            .admin(&["restart", "alpha", "--yes"])
            .env("XTASK_NOW", now),
        0,
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "its lock was left behind (its process {process} on this machine is gone: killed or crashed)"
        )),
        "{err}"
    );
    assert!(!lease_exists(&cluster, "tenant-alpha"), "not released");
}

/// `admin unlock`: shows the holder, needs confirmation, breaks the lock,
/// is audited; with no lock it says so.
#[test]
fn admin_unlock_breaks_a_lock_and_is_audited() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    plant_lease(&cluster, "tenant-alpha", "2026-11-24T06:00:00.000000Z");
    let now = ("XTASK_NOW", "2026-11-24T06:10:00Z");
    // No terminal and no --yes: refused, the lock stays.
    let out = exits(cluster.admin(&["unlock", "alpha"]).env(now.0, now.1), 1);
    let err = stderr(&out);
    assert!(
        err.contains("The lock on tenant alpha (the current context): gone@example.org ran")
            && err.contains("It expires in 2h 50m. It was taken on laptop-7: make sure that command is no longer running there.")
            && err.contains("breaking the lock on alpha needs confirmation: run it in a terminal"),
        "{err}"
    );
    assert!(lease_exists(&cluster, "tenant-alpha"));

    let out = exits(
        cluster
            .admin(&["unlock", "alpha", "--yes"])
            .env(now.0, now.1),
        0,
    );
    assert!(
        stdout(&out).starts_with("Broke the lock on tenant alpha."),
        "{}",
        stdout(&out)
    );
    assert!(!lease_exists(&cluster, "tenant-alpha"));
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["tenant"], "alpha");
    assert_eq!(last["command"], "admin unlock alpha --yes");
    // Whose lock it broke, for whoever reads the log later.
    assert_eq!(
        last["result"],
        "ok: broke the lock of gone@example.org ran `admin restore alpha backups/alpha-old.tar.gz --yes` \
         10m ago (since 2026-11-24T06:00:00.000000Z), process laptop-7:4242"
    );
    let refused: Value = serde_json::from_str(audit.lines().rev().nth(1).unwrap()).unwrap();
    assert!(
        refused["result"]
            .as_str()
            .unwrap()
            .starts_with("error: breaking the lock")
    );

    // The tenant can be changed again; a second unlock finds nothing.
    exits(cluster.admin(&["restart", "alpha", "--yes"]), 0);
    let out = exits(cluster.admin(&["unlock", "alpha", "--yes"]), 0);
    assert_eq!(
        stdout(&out),
        "No lock is held on tenant alpha on the current context; nothing to do.\n"
    );
}

/// The lease goes on every outcome: after an error and after Ctrl-C.
#[test]
fn the_lease_is_released_after_an_error_and_after_ctrl_c() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::fail("rollout", 1, "error: deployments.apps \"bot\" not found\n")
    });
    exits(cluster.admin(&["restart", "alpha", "--yes"]), 1);
    assert!(
        !lease_exists(&cluster, "tenant-alpha"),
        "kept after an error"
    );

    let dir = tempfile::tempdir().unwrap();
    create_bot_database(
        &cluster.volume("alpha", "bot-data").join("bot.sqlite3"),
        &["2026-11-20T10:00:00Z"],
        &[],
        3,
    );
    let archive = backup(&cluster, "alpha", dir.path(), "2026-11-24T06:00:00Z");
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("exec", 3000)
    });
    let mut cmd = cluster.admin_process(&["restore", "alpha"]);
    cmd.arg(&archive).arg("--yes");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let execs = cluster.calls().iter().filter(|c| c[0] == "exec").count();
    let child = cmd.spawn().unwrap();
    let out = common::ctrl_c_after(&cluster, child, "exec", execs + 1);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(!lease_exists(&cluster, "tenant-alpha"), "kept after Ctrl-C");
}

/// An operator without rights on leases gets a refusal that says which.
#[test]
fn without_rights_on_leases_the_refusal_says_which() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    plant_lease(&cluster, "unrelated", "2026-11-24T06:00:00.000000Z");
    cluster
        .open()
        .deny("create", "leases", Some(LOCKS))
        .unwrap();
    let out = exits(cluster.admin(&["restart", "alpha", "--yes"]), 1);
    let err = stderr(&out);
    assert!(
        err.contains("could not create the lock on tenant alpha (Lease xtask-locks/tenant-alpha on the current context); nothing was changed. Your user may not create leases (coordination.k8s.io) in namespace xtask-locks")
            && err.contains("cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"xtask-locks\""),
        "{err}"
    );
    assert!(!cluster.calls().iter().any(|c| c[0] == "rollout"));
}

/// A batch takes each tenant's lock: a locked tenant fails on its own
/// line, the others go on.
#[test]
fn a_batch_refuses_a_locked_tenant_and_goes_on() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned(), "bravo".to_owned()]);
    plant_lease(&cluster, "tenant-alpha", "2026-11-24T06:00:00.000000Z");
    let out = exits(
        cluster
            .admin(&["restart", "--all", "--yes"])
            .env("XTASK_NOW", "2026-11-24T06:05:00Z"),
        1,
    );
    let text = stdout(&out);
    assert!(
        text.contains(
            "alpha: FAILED: another command holds the lock on tenant alpha: gone@example.org ran"
        ),
        "{text}"
    );
    let restarted: Vec<Vec<String>> = cluster
        .calls()
        .into_iter()
        .filter(|c| c[0] == "rollout" && c[1] == "restart")
        .collect();
    assert_eq!(restarted.len(), 1, "{restarted:?}");
    assert!(restarted[0].contains(&"tenant-bravo".to_owned()));
    assert!(
        lease_exists(&cluster, "tenant-alpha"),
        "another's lock was released"
    );
    assert!(!lease_exists(&cluster, "tenant-bravo"));
}

/// A running command renews its lease, so a long one is never taken over.
#[test]
fn a_running_command_renews_its_lease() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    // The rollout wait takes 4 s; the lease is renewed every second.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("rollout", 4000)
    });
    let child = cluster
        .admin_process(&["restart", "alpha", "--yes"])
        .env("XTASK_LEASE_RENEW_SECONDS", "1")
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let renewed = loop {
        // Taken with renewTime = acquireTime; a renewal moves it on.
        if let Some(renewed) = lease(&cluster, "tenant-alpha")
            .filter(|l| l["spec"]["renewTime"] != l["spec"]["acquireTime"])
            .and_then(|l| l["spec"]["renewTime"].as_str().map(str::to_owned))
        {
            break renewed;
        }
        assert!(started.elapsed().as_secs() < 20, "never renewed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(renewed.ends_with('Z') && renewed.len() == 27, "{renewed}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cluster.calls().iter().any(|c| c[0] == "replace"));
    assert!(!lease_exists(&cluster, "tenant-alpha"));
}

/// A renewal that fails once (the API server out of reach) is tried again:
/// the lease is renewed after it, not left to expire under a running
/// command.
#[test]
fn a_failed_renewal_is_tried_again() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    // The rollout wait takes 5 s; the first renewal fails.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("rollout", 5000)
    });
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::fail(
            "replace",
            1,
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
        )
    });
    let out = cluster
        .admin_process(&["restart", "alpha", "--yes"])
        .env("XTASK_LEASE_RENEW_SECONDS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not be renewed") && err.contains("trying again"),
        "{err}"
    );
    let replaces = cluster.calls().iter().filter(|c| c[0] == "replace").count();
    assert!(
        replaces >= 2,
        "renewed only {replaces} time(s) after the failure:\n{err}"
    );
}

/// Starts a restore of alpha whose first exec takes `millis`, and returns
/// it once it holds the lock and runs that exec.
fn restore_in_flight(cluster: &Cluster, millis: u64) -> std::process::Child {
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(&db, &["2026-11-20T10:00:00Z"], &[], 3);
    let dir = tempfile::tempdir().unwrap().keep();
    let archive = backup(cluster, "alpha", &dir, "2026-11-24T06:00:00Z");
    spawn_until_exec(
        cluster,
        cluster
            .admin_process(&["restore", "alpha"])
            .arg(&archive)
            .arg("--yes"),
        millis,
    )
}

/// `admin unlock` of a lock whose command still runs on this machine is
/// refused, naming the process, however old the lease: breaking it would
/// let a second command run beside a live one.
#[test]
fn admin_unlock_refuses_while_the_holding_command_runs_here() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let running = restore_in_flight(&cluster, 4000);
    let pid = running.id();
    // `list` shows it under way, the restore's stop as its doing.
    let list = stdout(&exits(cluster.admin(&["list"]), 0));
    assert!(
        list.contains("stopped (by a restore under way)")
            && list.contains("  alpha: locked: ")
            && list.contains("runs `admin restore alpha ")
            && list.contains(
                "alpha: a restore has stopped the bot; the command holding the lock brings it back"
            ),
        "{list}"
    );
    let out = exits(cluster.admin(&["unlock", "alpha", "--yes"]), 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "error: the lock on tenant alpha is held by a command that still runs on this machine: "
        ) && err.contains(&format!("kill {pid}"))
            && err.contains("Nothing was changed."),
        "{err}"
    );
    assert!(lease_exists(&cluster, "tenant-alpha"));
    let out = running.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!lease_exists(&cluster, "tenant-alpha"));
}

/// A command whose lock is broken while it runs (`admin unlock` from
/// another machine) does not report plain success: it finishes its work
/// and exits 1 saying the lock was broken and how to check the tenant; the
/// audit line says so too.
#[test]
fn a_command_whose_lock_was_broken_does_not_report_success() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let running = restore_in_flight(&cluster, 3000);
    // As `admin unlock` on another machine does.
    cluster.kubectl(&["delete", "lease", "tenant-alpha", "--namespace", LOCKS]);
    let out = running.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "error: this command did all its work, but the lock on tenant alpha was broken while this \
             command ran (deleted, e.g. by `admin unlock`): another command may have changed the tenant \
             beside it. Check it with `cargo xtask admin show alpha` and `cargo xtask admin drift alpha`"
        ) && err.ends_with(
            "Its work was done (changes made, archives written), but not guarded by the lock to its end.\n"
        ),
        "{err}"
    );
    // What it did is said (the restore did finish), then that it was unguarded.
    assert!(
        stdout(&out).contains("Restored tenant alpha"),
        "{}",
        stdout(&out)
    );
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert!(
        last["result"].as_str().unwrap().starts_with(
            "error: this command did all its work, but the lock on tenant alpha was broken"
        ),
        "{last}"
    );
}

/// An expired lock whose command still runs on this machine (stopped with
/// Ctrl-Z, or a laptop that slept past the lease) is not taken over: that
/// command would go on beside the next when it resumes.
#[test]
fn an_expired_lock_of_a_live_process_here_is_not_taken_over() {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned()]);
    let running = restore_in_flight(&cluster, 4000);
    let later = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3 * 3600),
    )
    .to_string();
    let out = exits(
        cluster
            .admin(&["restart", "alpha", "--yes"])
            .env("XTASK_NOW", &later),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "error: the lock on tenant alpha expired without being renewed, but the command that holds it \
             still runs on this machine: "
        ) && err.contains(&format!("kill -CONT {}", running.id()))
            && err.ends_with("Nothing was changed.\n"),
        "{err}"
    );
    assert!(!cluster.calls().iter().any(|c| c[0] == "rollout"));
    let out = running.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
