//! Every exit states the truth (issue 12): a SIGTERM at any step of a
//! restore or backup, a failing step late in a restore, a backup that ends
//! early after starting a workbench, an offboard that fails midway. Each
//! test checks what the command says against what the fake cluster holds.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{Cluster, create_bot_database, exits, seed_tenants, stderr, stdout};
use serde_json::Value;

const ANNOTATION: &str = "mla-platform.in/replicas-before-restore";
const LIVE_CREDS: &[u8] = b"{\"me\":\"alpha-after-the-backup\"}";
const ARCHIVED_CREDS: &[u8] = b"{\"me\":\"alpha\"}";

/// Tenant alpha running with a database and a session; charlie stopped.
fn cluster() -> Cluster {
    let cluster = Cluster::new();
    seed_tenants(&cluster, &["alpha".to_owned(), "charlie".to_owned()]);
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        "tenant-charlie",
        "--replicas=0",
    ]);
    for tenant in ["alpha", "charlie"] {
        let db = cluster.volume(tenant, "bot-data").join("bot.sqlite3");
        create_bot_database(&db, &["2026-11-23T10:00:00Z"], &[], 3);
        std::fs::write(
            cluster
                .volume(tenant, "bot-whatsapp-auth")
                .join("creds.json"),
            format!("{{\"me\":\"{tenant}\"}}"),
        )
        .unwrap();
    }
    cluster
}

/// A backup of alpha in `dir`; then alpha's live session changes, so that
/// a volume restored from the archive differs from one left untouched.
fn archive_of_alpha(cluster: &Cluster, dir: &Path) -> PathBuf {
    exits(cluster.admin(&["backup", "alpha", "--out"]).arg(dir), 0);
    let archive = std::fs::read_dir(dir).unwrap().next().unwrap().unwrap();
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("creds.json"),
        LIVE_CREDS,
    )
    .unwrap();
    archive.path()
}

fn calls_of(cluster: &Cluster, verb: &str) -> usize {
    cluster.calls().iter().filter(|c| c[0] == verb).count()
}

/// Starts `cmd` in its own process group, waits until its `n`-th `verb`
/// call (counted from now) has started, and sends SIGTERM to the group, as
/// `timeout`, systemd or a CI runner cancelling a job do.
fn sigterm_at(
    cluster: &Cluster,
    cmd: std::process::Command,
    verb: &str,
    n: usize,
) -> std::process::Output {
    signal_at(cluster, cmd, verb, n, "TERM")
}

/// [`sigterm_at`] with another signal (`HUP`: the terminal closed).
fn signal_at(
    cluster: &Cluster,
    mut cmd: std::process::Command,
    verb: &str,
    n: usize,
    signal: &str,
) -> std::process::Output {
    let target = calls_of(cluster, verb) + n;
    let child = cmd.process_group(0).spawn().unwrap();
    let started = std::time::Instant::now();
    while calls_of(cluster, verb) < target {
        assert!(
            started.elapsed().as_secs() < 30,
            "the command never reached `{verb}` call {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let group = format!("-{}", child.id());
    let status = std::process::Command::new("kill")
        .args(["-s", signal, "--", &group])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 30,
        "SIGTERM did not stop the command in time"
    );
    out
}

/// The `n`-th (from 0) `verb` call hangs for 60 s.
fn hang(cluster: &Cluster, verb: &str, n: u32) {
    cluster.fault(fake_kubectl::Fault {
        skip: n,
        times: Some(1),
        ..fake_kubectl::Fault::slow(verb, 60_000)
    });
}

fn deployment(cluster: &Cluster, tenant: &str) -> Value {
    cluster
        .get("Deployment", Some(&format!("tenant-{tenant}")), "bot")
        .unwrap()
}

fn replicas(cluster: &Cluster) -> u64 {
    deployment(cluster, "alpha")["spec"]["replicas"]
        .as_u64()
        .unwrap()
}

fn annotation(cluster: &Cluster) -> Option<String> {
    deployment(cluster, "alpha")["metadata"]["annotations"][ANNOTATION]
        .as_str()
        .map(str::to_owned)
}

fn workbench(cluster: &Cluster, tenant: &str) -> bool {
    cluster
        .get("Pod", Some(&format!("tenant-{tenant}")), "xtask-workbench")
        .is_some()
}

/// alpha's session file; empty when the volume holds none.
fn creds(cluster: &Cluster) -> Vec<u8> {
    cluster
        .volume_files("alpha")
        .remove("bot-whatsapp-auth/creds.json")
        .unwrap_or_default()
}

/// The error's statement of the tenant's state agrees with the cluster.
#[track_caller]
fn assert_stated_truthfully(cluster: &Cluster, err: &str) {
    assert!(err.contains("State of tenant alpha now:"), "{err}");
    assert!(
        !workbench(cluster, "alpha"),
        "workbench left behind:\n{err}"
    );
    match replicas(cluster) {
        0 => {
            assert!(
                err.contains("the bot is STOPPED (deployment/bot at 0 replicas; it had 1 replica)"),
                "{err}"
            );
            // What brings the bot back on a re-run.
            assert_eq!(annotation(cluster).as_deref(), Some("1"), "{err}");
            assert!(
                err.contains("kubectl --namespace tenant-alpha scale deployment/bot --replicas=1"),
                "{err}"
            );
        }
        1 => {
            assert!(!err.contains("STOPPED"), "{err}");
            assert!(err.contains("(deployment/bot at 1 replica)"), "{err}");
            // A running bot must not keep it: a later deliberate stop
            // followed by a restore would start the bot.
            assert_eq!(annotation(cluster), None, "{err}");
        }
        n => panic!("{n} replicas"),
    }
    let session = creds(cluster);
    if err.contains("WhatsApp session volume: untouched") {
        assert_eq!(session, LIVE_CREDS, "{err}");
    } else if err.contains("WhatsApp session volume: replaced from the archive") {
        assert_eq!(session, ARCHIVED_CREDS, "{err}");
    } else {
        assert!(
            err.contains("WhatsApp session volume: emptied")
                || err.contains("WhatsApp session volume: being written"),
            "{err}"
        );
    }
}

/// The audit log holds one failed restore of alpha.
#[track_caller]
fn assert_audited_failure(cluster: &Cluster) {
    assert_audited_failure_of(cluster, "error: restore of tenant alpha failed");
}

/// The audit log holds one restore of alpha, whose result starts so.
#[track_caller]
fn assert_audited_failure_of(cluster: &Cluster, result: &str) {
    let log = std::fs::read_to_string(cluster.audit_log()).unwrap();
    let restores: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["command"].as_str().unwrap().starts_with("admin restore"))
        .collect();
    assert_eq!(restores.len(), 1, "{log}");
    assert!(
        restores[0]["result"].as_str().unwrap().starts_with(result),
        "{log}"
    );
}

/// After the failure, the same restore brings alpha back from the archive.
#[track_caller]
fn assert_restore_again_recovers(cluster: &Cluster, archive: &Path) {
    let again = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(archive)
            .arg("--yes"),
        0,
    );
    assert!(stdout(&again).contains("the bot is running again"));
    assert_eq!(replicas(cluster), 1);
    assert_eq!(annotation(cluster), None);
    assert_eq!(creds(cluster), ARCHIVED_CREDS);
    assert!(!workbench(cluster, "alpha"));
}

/// SIGTERM at each step of a restore: before the bot is stopped, while it
/// stops, while the workbench starts, while each volume is written, while
/// the bot starts again and while it rolls out. Each leaves a stated state
/// that matches the cluster, an audit line, no plaintext temp copy, and a
/// state the same command recovers from.
#[test]
fn sigterm_at_each_restore_step_leaves_a_stated_recoverable_state() {
    // (verb, which call of it in the restore, from 0)
    let steps = [
        ("annotate", 0), // recording the replicas, before the stop
        ("scale", 0),    // stopping the bot
        ("wait", 0),     // the workbench becoming ready
        ("exec", 0),     // writing the staged database
        ("exec", 2),     // removing the live database files
        ("exec", 5),     // emptying the session volume
        ("exec", 6),     // writing the session volume
        ("scale", 1),    // starting the bot again
        ("annotate", 1), // removing the recorded replicas
        ("rollout", 0),  // waiting for the bot to be ready
    ];
    for (verb, n) in steps {
        let cluster = cluster();
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_of_alpha(&cluster, dir.path());
        let tmp = tempfile::tempdir().unwrap();
        hang(&cluster, verb, n);
        let mut cmd = cluster.admin_process(&["restore", "alpha"]);
        cmd.arg(&archive).arg("--yes").env("TMPDIR", tmp.path());
        let out = sigterm_at(&cluster, cmd, verb, n as usize + 1);
        let err = stderr(&out);
        let at = format!("SIGTERM at {verb} #{n}:\n{err}");
        assert_eq!(out.status.code(), Some(1), "{at}");
        assert!(err.contains("interrupted"), "{at}");
        assert_stated_truthfully(&cluster, &err);
        assert_audited_failure(&cluster);
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "temp data left behind: {left:?}\n{at}");
        assert_restore_again_recovers(&cluster, &archive);
    }
}

/// A signal while the restore still reads the cluster, with the verified
/// archive unpacked: nothing is changed, it says so, and the plaintext
/// copy is removed. SIGHUP (a closed terminal) is handled as SIGTERM.
#[test]
fn a_signal_before_the_restore_changes_anything_removes_its_temp_data() {
    for signal in ["TERM", "HUP"] {
        let cluster = cluster();
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_of_alpha(&cluster, dir.path());
        let tmp = tempfile::tempdir().unwrap();
        // The restore's first call reads the tenants.
        hang(&cluster, "get", 0);
        let mut cmd = cluster.admin_process(&["restore", "alpha"]);
        cmd.arg(&archive).arg("--yes").env("TMPDIR", tmp.path());
        let out = signal_at(&cluster, cmd, "get", 1, signal);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {err}");
        assert!(
            err.contains("interrupted") && err.ends_with("Nothing was changed.\n"),
            "SIG{signal}: {err}"
        );
        assert!(
            entries(tmp.path()).is_empty(),
            "SIG{signal}: {:?}",
            entries(tmp.path())
        );
        assert_eq!(replicas(&cluster), 1);
        assert_eq!(creds(&cluster), LIVE_CREDS);
        assert_audited_failure_of(&cluster, "error: ");
        let log = std::fs::read_to_string(cluster.audit_log()).unwrap();
        assert!(
            log.contains("interrupted (Ctrl-C or a termination signal)"),
            "{log}"
        );
    }
}

/// SIGHUP in the middle of a restore is handled as SIGTERM is.
#[test]
fn sighup_during_a_restore_states_the_tenant_state() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    hang(&cluster, "exec", 6);
    let mut cmd = cluster.admin_process(&["restore", "alpha"]);
    cmd.arg(&archive).arg("--yes");
    let out = signal_at(&cluster, cmd, "exec", 7, "HUP");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("WhatsApp session volume: emptied, not yet restored"),
        "{err}"
    );
    assert_stated_truthfully(&cluster, &err);
    assert_audited_failure(&cluster);
    assert_restore_again_recovers(&cluster, &archive);
}

/// SIGTERM during a batch backup: the tenant in progress leaves no data,
/// the next one is not started.
#[test]
fn sigterm_during_a_batch_backup_leaves_no_data_and_starts_no_other_tenant() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    hang(&cluster, "exec", 1);
    let mut cmd = cluster.admin_process(&["backup", "--all", "--jobs", "1", "--out"]);
    cmd.arg(dir.path());
    let out = sigterm_at(&cluster, cmd, "exec", 2);
    let (err, report) = (stderr(&out), stdout(&out));
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    assert!(!workbench(&cluster, "charlie"), "{report}{err}");
    // charlie's backup would start a workbench: it never did.
    assert_eq!(calls_of(&cluster, "apply"), 0, "{report}{err}");
}

/// Item 7: the annotation's removal fails after the bot was started again.
#[test]
fn a_failing_annotate_after_the_start_does_not_report_a_stopped_bot() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    let refused = fake_kubectl::Fault::fail(
        "annotate",
        1,
        "Error from server (InternalError): Internal error occurred: resource quota evaluation timed out",
    );
    cluster.fault(fake_kubectl::Fault {
        skip: 1,
        times: Some(1),
        ..refused.clone()
    });
    let out = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(&archive)
            .arg("--yes"),
        1,
    );
    let err = stderr(&out);
    assert_stated_truthfully(&cluster, &err);
    assert_eq!(replicas(&cluster), 1);
    assert!(
        err.contains(
            "the bot was started again on the restored data (deployment/bot at 1 replica)"
        ) && !err.contains("not ready"),
        "{err}"
    );
    assert_eq!(creds(&cluster), ARCHIVED_CREDS);

    // When the clean-up cannot remove it either, the report says it is
    // there and how to remove it.
    let cluster = self::cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    cluster.fault(fake_kubectl::Fault {
        skip: 1,
        times: None,
        ..refused
    });
    let out = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(&archive)
            .arg("--yes"),
        1,
    );
    let err = stderr(&out);
    assert_eq!(replicas(&cluster), 1);
    assert_eq!(annotation(&cluster).as_deref(), Some("1"));
    assert!(
        err.contains(&format!("still carries {ANNOTATION}, though the bot runs"))
            && err.contains(&format!(
                "kubectl --namespace tenant-alpha annotate deployment/bot {ANNOTATION}-"
            )),
        "{err}"
    );
}

/// Item 7: the rollout fails after the data was replaced.
#[test]
fn a_failing_rollout_reports_the_restored_data_and_the_started_bot() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    cluster.fault(fake_kubectl::Fault::fail(
        "rollout",
        1,
        "error: timed out waiting for the condition",
    ));
    let out = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(&archive)
            .arg("--yes"),
        1,
    );
    let err = stderr(&out);
    assert!(
        !err.contains("not stopped") && !err.contains("running as before"),
        "{err}"
    );
    assert!(
        err.contains("the bot was started again on the restored data (deployment/bot at 1 replica) but is not ready yet")
            && err.contains("database volume: replaced from the archive and checked")
            && err.contains("kubectl --namespace tenant-alpha rollout status deployment/bot"),
        "{err}"
    );
    assert_stated_truthfully(&cluster, &err);
}

/// A `replicas-before-restore` annotation found on a running bot is a
/// leftover: the restore brings the bot back with the replicas it had.
#[test]
fn a_stale_annotation_on_a_running_bot_is_not_used() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    cluster.kubectl(&[
        "annotate",
        "deployment/bot",
        "--namespace",
        "tenant-alpha",
        "--overwrite",
        &format!("{ANNOTATION}=3"),
    ]);
    exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(&archive)
            .arg("--yes"),
        0,
    );
    assert_eq!(replicas(&cluster), 1);
    assert_eq!(annotation(&cluster), None);
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// SIGTERM while the database is copied out (of the running bot, and of a
/// stopped one through the workbench): no data is left behind, on the
/// machine or in the pod, and no workbench.
#[test]
fn sigterm_during_a_backup_leaves_no_data_behind() {
    for tenant in ["alpha", "charlie"] {
        let cluster = cluster();
        let dir = tempfile::tempdir().unwrap();
        // The backup's execs: .backup, then cat of the copy, which hangs.
        hang(&cluster, "exec", 1);
        let mut cmd = cluster.admin_process(&["backup", tenant, "--out"]);
        cmd.arg(dir.path());
        let out = sigterm_at(&cluster, cmd, "exec", 2);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("interrupted") && err.ends_with("No backup was written.\n"),
            "{err}"
        );
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        let on_volume: Vec<String> = cluster.volume_files(tenant).into_keys().collect();
        assert_eq!(
            on_volume,
            ["bot-data/bot.sqlite3", "bot-whatsapp-auth/creds.json"],
            "the pod's copy was left on the volume"
        );
        assert!(!workbench(&cluster, tenant), "{err}");
    }
}

/// Item 6: a backup of a stopped tenant that ends early does not leave its
/// workbench pod mounting the volumes.
#[test]
fn every_early_return_of_a_backup_removes_the_workbench() {
    // --out is a file: refused before any pod is started.
    let cluster = cluster();
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = exits(
        cluster
            .admin(&["backup", "charlie", "--out"])
            .arg(file.path()),
        1,
    );
    assert!(
        stderr(&out).ends_with("No backup was written.\n"),
        "{}",
        stderr(&out)
    );
    assert!(!workbench(&cluster, "charlie"));
    assert_eq!(calls_of(&cluster, "apply"), 0, "a workbench was started");

    // The workbench never becomes ready.
    let cluster = self::cluster();
    let dir = tempfile::tempdir().unwrap();
    cluster.fault(fake_kubectl::Fault::fail(
        "wait",
        1,
        "error: timed out waiting for the condition on pods/xtask-workbench",
    ));
    let out = exits(
        cluster
            .admin(&["backup", "charlie", "--out"])
            .arg(dir.path()),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains("the workbench pod was deleted again")
            && err.ends_with("No backup was written.\n"),
        "{err}"
    );
    assert_eq!(calls_of(&cluster, "apply"), 1);
    assert!(!workbench(&cluster, "charlie"));
    assert!(entries(dir.path()).is_empty());

    // A step inside fails: the workbench goes too.
    let cluster = self::cluster();
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::fail("exec", 137, "command terminated with exit code 137")
    });
    exits(
        cluster
            .admin(&["backup", "charlie", "--out"])
            .arg(dir.path()),
        1,
    );
    assert!(!workbench(&cluster, "charlie"));
    assert!(entries(dir.path()).is_empty());
}

fn offboard(cluster: &Cluster) -> assert_cmd::Command {
    let mut cmd = cluster.admin(&["offboard", "kalyan", "--yes", "--no-backup"]);
    cmd.arg("--tenants-dir").arg(cluster.tenants.path());
    cmd
}

/// Item 12: a failure midway lists what was deleted and never says
/// "Nothing was changed"; a SIGTERM midway does the same.
#[test]
fn an_offboard_that_stops_midway_lists_what_it_deleted() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster.fault(fake_kubectl::Fault {
        skip: 2,
        times: Some(1),
        ..fake_kubectl::Fault::fail(
            "delete",
            1,
            "Error from server (Forbidden): serviceaccounts \"bot\" is forbidden: User \"u\" cannot delete resource \"serviceaccounts\" in API group \"\" in the namespace \"tenant-kalyan\"",
        )
    });
    let out = exits(offboard(&cluster), 1);
    let err = stderr(&out);
    assert!(!err.contains("Nothing was changed"), "{err}");
    assert!(
        err.contains("Deleted before it stopped:\n  ingress/bot\n  deployment/bot\nStill on the cluster:\n")
            && err.contains("stopped; tenant kalyan is marked offboarded and partly deleted. Run the same command again to finish:\n  cargo xtask admin offboard kalyan --yes --no-backup --tenants-dir"),
        "{err}"
    );
    // What is still there is read back: the ServiceAccount that could not
    // be deleted, the rest and the volumes; not what was deleted.
    let still = err
        .split("Still on the cluster:\n")
        .nth(1)
        .unwrap_or_default();
    assert!(
        still.starts_with("  serviceaccount/bot\n  service/bot\n")
            && still.contains("  persistentvolumeclaim/bot-data\n")
            && still.contains("  namespace/tenant-kalyan\n")
            && !still.contains("ingress/")
            && !still.contains("deployment/"),
        "{err}"
    );
    assert!(
        cluster
            .get("Ingress", Some("tenant-kalyan"), "bot")
            .is_none()
    );
    assert!(
        cluster
            .get("Deployment", Some("tenant-kalyan"), "bot")
            .is_none()
    );
    assert!(
        cluster
            .get("Service", Some("tenant-kalyan"), "bot")
            .is_some()
    );
    // Run again, it finishes and names what this run deleted.
    let again = stdout(&exits(offboard(&cluster), 0));
    for kind_name in ["serviceaccount/bot", "service/bot", "configmap/bot-config"] {
        assert!(
            again.contains(&format!("    {kind_name}\n")),
            "{kind_name}: {again}"
        );
    }
    assert!(again.contains("an earlier run deleted the rest"), "{again}");
    for (kind, name) in [
        ("Service", "bot"),
        ("ServiceAccount", "bot"),
        ("ResourceQuota", "tenant-quota"),
    ] {
        assert!(
            cluster.get(kind, Some("tenant-kalyan"), name).is_none(),
            "{kind} {name} left"
        );
    }
    assert!(
        cluster
            .tenants
            .path()
            .join("offboarded/kalyan.yaml")
            .exists()
    );
    // Once more: nothing left to delete, nothing changed.
    let objects = cluster.objects_but_locks();
    let done = stdout(&exits(offboard(&cluster), 0));
    assert!(
        done.contains("deleted by this run: nothing (already gone)"),
        "{done}"
    );
    assert_eq!(cluster.objects_but_locks(), objects);

    // SIGTERM while the Deployment is deleted.
    let cluster = Cluster::with_tenants(&["kalyan"]);
    hang(&cluster, "delete", 1);
    let mut cmd = cluster.admin_process(&["offboard", "kalyan", "--yes", "--no-backup"]);
    cmd.arg("--tenants-dir").arg(cluster.tenants.path());
    let out = sigterm_at(&cluster, cmd, "delete", 2);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("Nothing was changed"), "{err}");
    assert!(
        err.contains("interrupted")
            && err.contains("Deleted before it stopped:\n  ingress/bot\nStill on the cluster:\n  deployment/bot\n")
            && err.contains("stopped; tenant kalyan is marked offboarded"),
        "{err}"
    );
    let log = std::fs::read_to_string(cluster.audit_log()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("admin offboard kalyan") && l.contains("\"error: ")),
        "{log}"
    );
    exits(offboard(&cluster), 0);
    assert!(
        cluster
            .get("Deployment", Some("tenant-kalyan"), "bot")
            .is_none()
    );
}

/// SIGTERM while `verify --network` probes from its pod: the probe pod is
/// removed and no further tenant is probed.
#[test]
fn sigterm_during_the_network_probe_removes_the_probe_pod() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    // The first tenant's first probe (an exec in its probe pod) hangs.
    hang(&cluster, "exec", 0);
    // Applies that create something (admission is checked by dry runs).
    let creating = |c: &Cluster| {
        c.calls()
            .iter()
            .filter(|c| c[0] == "apply" && !c.iter().any(|a| a.starts_with("--dry-run")))
            .count()
    };
    let applies_before = creating(&cluster);
    // One tenant at a time: with more, the others under way finish their
    // probes (and remove their pods) after the signal.
    let mut cmd = cluster.admin_process(&["verify", "--network", "--jobs", "1", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path());
    let out = sigterm_at(&cluster, cmd, "exec", 1);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    for ns in ["tenant-kalyan", "tenant-mylapore"] {
        assert!(
            cluster.get("Pod", Some(ns), "xtask-netprobe").is_none(),
            "the probe pod was left in {ns}:\n{err}"
        );
    }
    // Only the first tenant's probe pod was ever created.
    assert_eq!(creating(&cluster) - applies_before, 1, "{err}");
}

/// A restore killed hard (`kill -9`: nothing of it runs again) halfway:
/// `list` and `show` do not show a plain `stopped` tenant but what was left
/// unfinished, each with its way out: the lock (held while it lasts, then
/// left behind), the bot stopped by the restore and the workbench pod. The
/// same restore then recovers and nothing is reported any more.
#[test]
fn a_restore_killed_hard_is_shown_unfinished_by_list_and_show() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    // Killed while writing the session volume.
    hang(&cluster, "exec", 6);
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = cluster.admin_process(&["restore", "alpha"]);
    cmd.arg(&archive)
        .arg("--yes")
        .env("XTASK_NOW", "2026-11-24T06:00:00Z")
        .env("TMPDIR", tmp.path());
    let out = signal_at(&cluster, cmd, "exec", 7, "KILL");
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(replicas(&cluster), 0);
    assert!(workbench(&cluster, "alpha"));
    // Nothing of it could remove its plaintext copies of the archive...
    let left = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(left(tmp.path()).len(), 2, "{:?}", left(tmp.path()));
    // ...so the next command that unpacks one removes them, and says so.
    let verify = exits(
        cluster
            .admin(&["verify-backup"])
            .arg(&archive)
            .env("TMPDIR", tmp.path()),
        0,
    );
    assert!(
        stderr(&verify).contains("temporary tenant data left by an earlier run that was killed"),
        "{}",
        stderr(&verify)
    );
    assert_eq!(left(tmp.path()), Vec::<String>::new());

    let lease = cluster
        .get("Lease", Some("xtask-locks"), "tenant-alpha")
        .expect("a command killed hard cannot release its lock");
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    // While the lock lasts, its process on this machine is known gone:
    // left behind, not "running".
    let list = exits(
        cluster
            .admin(&["list"])
            .env("XTASK_NOW", "2026-11-24T06:05:00Z"),
        0,
    );
    let text = stdout(&list);
    let row = text.lines().find(|l| l.starts_with("alpha ")).unwrap();
    assert!(
        row.contains("stopped (by a restore that did not start it again)"),
        "{text}"
    );
    assert!(text.contains("\nUnfinished or under way:\n"), "{text}");
    assert!(
        text.contains(&format!(
            "  alpha: a lock left behind: {holder} ran `admin restore alpha {} --yes`",
            archive.display()
        )) && text.contains(
            "Its process on this machine is gone. `cargo xtask admin unlock alpha` breaks it now"
        ),
        "{text}"
    );
    assert!(
        text.contains("alpha: a restore stopped the bot and did not finish"),
        "{text}"
    );
    assert!(
        !text.contains("charlie:"),
        "charlie has nothing unfinished:\n{text}"
    );

    // An hour later the lock has expired: what the killed restore left.
    let show = exits(
        cluster
            .admin(&["show", "alpha"])
            .env("XTASK_NOW", "2026-11-24T07:00:00Z"),
        0,
    );
    let text = stdout(&show);
    for expected in [
        "State        stopped (by a restore that did not start it again)\n",
        "Unfinished   a lock left behind: ",
        "The next command takes it over; `cargo xtask admin unlock alpha` breaks it now\n",
        "Unfinished   a restore stopped the bot and did not finish: its volumes may be half written. \
         Run the same restore again (`cargo xtask admin restore alpha ARCHIVE --yes`); or, to serve \
         from the volumes as they are: `kubectl --namespace tenant-alpha scale deployment/bot \
         --replicas=1` and `kubectl --namespace tenant-alpha annotate deployment/bot \
         mla-platform.in/replicas-before-restore-`\n",
        "Unfinished   the workbench pod xtask-workbench of a backup or restore that did not finish is \
         still in tenant-alpha, mounting the tenant's volumes: `kubectl --namespace tenant-alpha \
         delete pod xtask-workbench`\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let json = exits(
        cluster
            .admin(&["show", "alpha", "-o", "json"])
            .env("XTASK_NOW", "2026-11-24T07:00:00Z"),
        0,
    );
    let view: Value = serde_json::from_slice(&json.stdout).unwrap();
    let kinds: Vec<&str> = view["unfinished"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["lock", "restore", "workbench"]);
    assert_eq!(view["unfinished"][0]["expired"], true);
    assert_eq!(view["unfinished"][0]["holder_alive"], false);
    assert_eq!(view["unfinished"][1]["replicas_before"], 1);

    // The same restore takes the expired lock over and recovers; nothing
    // is left to report.
    assert_restore_again_recovers(&cluster, &archive);
    let list = exits(cluster.admin(&["list", "-o", "json"]), 0);
    let tenants: Value = serde_json::from_slice(&list.stdout).unwrap();
    for t in tenants["tenants"].as_array().unwrap() {
        assert_eq!(t["unfinished"], serde_json::json!([]), "{t}");
    }
}

/// SIGTERM and SIGHUP while verify-backup unpacks an archive (read from a
/// pipe that stalls halfway, so the signal lands mid-read): it exits 1 as an
/// error, not killed by the signal, and leaves no plaintext copy in $TMPDIR.
#[test]
fn a_signal_during_verify_backup_leaves_no_plaintext() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    let bytes = std::fs::read(&archive).unwrap();
    for signal in ["TERM", "HUP"] {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("archive.tar.gz");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let work = tempfile::tempdir().unwrap();
        let child = cluster
            .admin_process(&["verify-backup"])
            .arg(&fifo)
            .env("TMPDIR", work.path())
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The first half, then the pipe stays open and silent.
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        use std::io::Write as _;
        writer.write_all(&bytes[..bytes.len() / 2]).unwrap();
        writer.flush().unwrap();
        let started = std::time::Instant::now();
        while std::fs::read_dir(work.path()).unwrap().next().is_none() {
            assert!(started.elapsed().as_secs() < 20, "never unpacked");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let status = std::process::Command::new("kill")
            .args(["-s", signal, "--", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The stalled read returns once the writer goes.
        drop(writer);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {}", stderr(&out));
        let left: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "SIG{signal}: plaintext left: {left:?}");
    }
}

/// SIGTERM to the xtask process alone (its kubectl child goes on), while
/// the session volume is written: the restore stops after that step, as it
/// says, instead of going on to start the bot and report success.
#[test]
fn sigterm_to_the_command_alone_stops_the_restore_after_the_step() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_of_alpha(&cluster, dir.path());
    cluster.fault(fake_kubectl::Fault {
        skip: 6,
        times: Some(1),
        ..fake_kubectl::Fault::slow("exec", 2000)
    });
    let target = calls_of(&cluster, "exec") + 7;
    let child = cluster
        .admin_process(&["restore", "alpha"])
        .arg(&archive)
        .arg("--yes")
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while calls_of(&cluster, "exec") < target {
        assert!(
            started.elapsed().as_secs() < 30,
            "never reached the session write"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !stdout(&out).contains("Restored tenant"),
        "{}",
        stdout(&out)
    );
    assert_stated_truthfully(&cluster, &err);
    assert_audited_failure(&cluster);
    assert_restore_again_recovers(&cluster, &archive);
}
