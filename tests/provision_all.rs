//! `provision --all` at fleet size (issue 13): the cluster read once, only
//! the tenants that differ applied, a hundred tenants per `kubectl apply`,
//! each failing object traced to its own tenant, the locks taken and
//! released in a few calls, a single-tenant command refused while the
//! batch changes its tenant.

mod common;

use common::{
    Cluster, Run, decode_base64, exits, fake_kubectl, repo_root, seeded_values, stderr, stdout,
};
use serde_json::{Value, json};

fn fleet(n: usize) -> Cluster {
    Cluster::fleet(n)
}

fn name(i: usize) -> String {
    common::fleet_name(i)
}

fn change(cluster: &Cluster, i: usize, tagline: &str) {
    cluster.change_tagline(i, tagline)
}

fn provision_all(cluster: &Cluster) -> assert_cmd::Command {
    let mut cmd = cluster.xtask(&["provision", "--all", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path())
        .arg("--kubectl")
        .arg(fake_kubectl());
    cmd
}

/// What a run of `provision --all` did, read from its calls.
impl Run {
    fn count(&self, verb: &str) -> usize {
        self.verbs().iter().filter(|v| v.starts_with(verb)).count()
    }

    /// The reads of every tenant Deployment that wait for the bots'
    /// rollouts (one per poll, whatever the number of bots).
    fn rollout_polls(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| {
                c[..2] == ["get", "deployments"] && c.contains(&"--all-namespaces".to_owned())
            })
            .count()
    }

    fn line_of(&self, tenant: &str) -> &str {
        let headline = format!("Tenant {tenant} ");
        let failed = format!("{tenant}: ");
        self.stdout
            .lines()
            .find(|l| l.starts_with(&headline) || l.starts_with(&failed))
            .unwrap_or_else(|| panic!("no line for {tenant}:\n{}", self.stdout))
    }
}

fn run(cluster: &Cluster) -> Run {
    run_of(cluster, provision_all(cluster))
}

/// `cmd` (a `provision --all` with more flags) run to its end.
fn run_of(cluster: &Cluster, cmd: assert_cmd::Command) -> Run {
    cluster.run_of(cmd)
}

/// Nothing changed, one tenant changed, every tenant changed: the number
/// of kubectl calls does not grow with the fleet but for one `apply` per
/// hundred changed tenants; the changed bots' rollouts are waited for with
/// one read of every tenant Deployment, not one `rollout status` each.
/// The same calls at 3 tenants and at 300.
#[test]
fn provision_all_reads_once_and_applies_only_what_changed_in_batches() {
    for n in [3, 300] {
        let cluster = fleet(n);

        // The very first lock on a cluster also makes the lock namespace
        // (two more calls, once in the cluster's life).
        let first = run(&cluster);
        assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
        assert_eq!(first.verbs()[..3], ["create", "create", "create"]);

        // Nothing changed: nothing applied, nothing waited for.
        let quiet = run(&cluster);
        assert_eq!(quiet.code, 0, "{}{}", quiet.stdout, quiet.stderr);
        assert_eq!(
            quiet.verbs(),
            [
                // The claims lock and every tenant's, in one call.
                "create",
                // The one read: tenant namespaces, their objects, every Ingress.
                "get namespaces",
                "get resourcequota,limitrange,networkpolicy,serviceaccount,configmap,secret,persistentvolumeclaim,deployment,service",
                "get ingresses",
                // Every tenant's lock released: read, then delete ours.
                "get leases",
                "delete lease",
                // The claims lock, at the end.
                "get leases",
                "delete lease",
            ],
            "{n} tenants"
        );
        assert!(quiet.calls.len() <= 10);
        let up_to_date = quiet
            .stdout
            .lines()
            .filter(|l| l.contains("is up to date in") && l.contains(": nothing changed ("))
            .count();
        assert_eq!(up_to_date, n, "{}", quiet.stdout);
        assert!(
            quiet.stdout.ends_with(&format!(
                "{n} tenants: 0 applied, {n} up to date, 0 skipped, 0 failed.\n"
            )),
            "{}",
            quiet.stdout
        );
        // No terminal: no progress line.
        assert!(!quiet.stderr.contains("provision: "), "{}", quiet.stderr);

        // One tenant changed: one apply of that tenant, one read for its rollout.
        change(&cluster, 1, "One tenant's new tagline");
        let one = run(&cluster);
        assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
        assert_eq!(one.count("apply"), 1);
        assert_eq!(one.count("rollout"), 0, "{:?}", one.verbs());
        assert_eq!(one.rollout_polls(), 1, "{:?}", one.verbs());
        assert!(
            one.stderr
                .contains("Waiting up to 5m for 1 bot to roll out"),
            "{}",
            one.stderr
        );
        // The unchanged tenants' locks go before the apply, the changed
        // one's with the claims lock at the end.
        assert_eq!(one.calls.len(), quiet.calls.len() + 2);
        assert!(
            one.line_of("t0001")
                .starts_with("Tenant t0001 provisioned in tenant-t0001 ("),
            "{}",
            one.stdout
        );
        assert!(one.line_of("t0000").contains("is up to date"));
        let configmap = cluster
            .get("ConfigMap", Some("tenant-t0001"), "bot-config")
            .unwrap();
        assert!(
            configmap.to_string().contains("One tenant's new tagline"),
            "{configmap}"
        );

        // Every tenant changed: one apply per hundred tenants.
        for i in 0..n {
            change(&cluster, i, "Everyone's new tagline");
        }
        let all = run(&cluster);
        assert_eq!(all.code, 0, "{}{}", all.stdout, all.stderr);
        assert_eq!(all.count("apply"), n.div_ceil(100), "{n} tenants");
        assert_eq!(all.count("rollout"), 0, "{:?}", all.verbs());
        assert_eq!(all.rollout_polls(), 1, "{:?}", all.verbs());
        assert!(
            all.calls.len() <= 10 + n / 100,
            "{} calls: {:?}",
            all.calls.len(),
            all.verbs()
        );
        assert_eq!(
            all.stdout
                .lines()
                .filter(|l| l.contains(" provisioned in "))
                .count(),
            n
        );
        // Applied again: nothing left to change.
        let again = run(&cluster);
        assert_eq!(again.count("apply"), 0, "{}", again.stdout);
        assert_eq!(again.calls.len(), quiet.calls.len());
    }
}

/// A batch apply in which objects of two tenants fail: exactly those two
/// tenants fail, each with its own object's error and what of it changed
/// before; every other tenant is applied.
#[test]
fn a_failing_object_fails_its_own_tenant_alone() {
    let cluster = fleet(6);
    for i in 0..6 {
        change(&cluster, i, "A new tagline");
    }
    // t0002 may not patch ConfigMaps; t0004's ConfigMap carries a hand
    // edit of a field the config sets (a conflict without --force-conflicts).
    cluster
        .open()
        .deny("patch", "configmaps", Some("tenant-t0002"))
        .unwrap();
    cluster
        .open()
        .edit(
            "ConfigMap",
            Some("tenant-t0004"),
            "bot-config",
            "kubectl-edit",
            |c| c["data"]["SITE_TAGLINE"] = Value::from("By hand"),
        )
        .unwrap();
    let before: Vec<Value> = (0..6)
        .map(|i| {
            cluster
                .get(
                    "ConfigMap",
                    Some(&format!("tenant-{}", name(i))),
                    "bot-config",
                )
                .unwrap()
        })
        .collect();
    let out = run(&cluster);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("6 tenants: 4 applied, 0 up to date, 0 skipped, 2 failed.\n"),
        "{}",
        out.stdout
    );
    let two = out.line_of("t0002");
    assert!(
        two.starts_with(
            "t0002: FAILED: applying tenant t0002 failed: `kubectl apply` failed (exit 1)"
        ),
        "{two}"
    );
    let two_block = block_of(&out.stdout, "t0002");
    assert!(
        two_block.contains("configmaps \"bot-config\" is forbidden: User \"kubernetes-admin\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"tenant-t0002\"")
            && !two_block.contains("conflict"),
        "{two_block}"
    );
    // Its other objects went through in the batch: said, not hidden.
    assert!(
        two_block.contains("Changed before the failure: deployment/bot (configured)."),
        "{two_block}"
    );
    let four_block = block_of(&out.stdout, "t0004");
    assert!(
        four_block.contains("Apply failed with 1 conflict: conflict with \"kubectl-edit\"")
            && !four_block.contains("forbidden"),
        "{four_block}"
    );
    for i in [0, 1, 3, 5] {
        assert!(
            out.line_of(&name(i)).contains(" provisioned in "),
            "{}",
            out.stdout
        );
    }
    for (i, old) in before.iter().enumerate() {
        let now = cluster
            .get(
                "ConfigMap",
                Some(&format!("tenant-{}", name(i))),
                "bot-config",
            )
            .unwrap();
        let applied = now["data"]["SITE_TAGLINE"] == "A new tagline";
        assert_eq!(applied, ![2, 4].contains(&i), "{}: {now}", name(i));
        if [2, 4].contains(&i) {
            assert_eq!(&now["data"], &old["data"]);
        }
    }
    // One call for the six, then halves down to each failing tenant alone:
    // [0 1 2] [3 4 5], [0] [1 2], [1] [2], [3] [4 5], [4] [5].
    assert_eq!(out.count("apply"), 11, "{:?}", out.verbs());
    // The cluster read back once, for both failures.
    assert_eq!(out.count("get namespaces"), 2);
}

/// A bot that does not come up after the batch fails its own tenant
/// alone, with what its rollout still waited for when the time was up;
/// the other bots' rollouts are seen done by the same reads.
#[test]
fn a_bot_that_does_not_roll_out_fails_its_own_tenant_alone() {
    let cluster = fleet(4);
    for i in 0..4 {
        change(&cluster, i, "A new tagline");
    }
    cluster
        .open()
        .set_pod_state("tenant-t0002", "bot", "CrashLoopBackOff")
        .unwrap();
    let mut cmd = provision_all(&cluster);
    cmd.args(["--timeout", "2s"]);
    let Run {
        code,
        stdout,
        stderr,
        calls,
    } = run_of(&cluster, cmd);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("Waiting up to 2s for 4 bots to roll out"),
        "{stderr}"
    );
    let block = block_of(&stdout, "t0002");
    assert!(
        block.starts_with(
            "t0002: FAILED: every object of tenant t0002 was applied, but the bot did not become ready within 2s."
        ),
        "{block}"
    );
    assert!(
        block.contains(
            "Waiting for deployment \"bot\" rollout to finish: 0 of 1 updated replicas are available..."
        ) && block.contains("error: timed out waiting for the condition"),
        "{block}"
    );
    assert!(
        stdout.contains("4 tenants: 3 applied, 0 up to date, 0 skipped, 1 failed.\n"),
        "{stdout}"
    );
    for i in [0, 1, 3] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("Tenant {} provisioned in ", name(i)))),
            "{stdout}"
        );
    }
    // Its objects were applied all the same.
    let configmap = cluster
        .get("ConfigMap", Some("tenant-t0002"), "bot-config")
        .unwrap();
    assert_eq!(configmap["data"]["SITE_TAGLINE"], "A new tagline");
    // Two seconds of polls: at once, after one second, at the deadline
    // (fewer on a loaded machine), never one per bot.
    let polls = calls
        .iter()
        .filter(|c| c[..2] == ["get", "deployments"])
        .count();
    assert!((1..=4).contains(&polls), "{polls} polls: {calls:?}");
    assert!(!calls.iter().any(|c| c[0] == "rollout"), "{calls:?}");

    // Run again as advised: nothing left to apply, but the bot is still
    // not ready, which is said again, not reported as up to date.
    let mut cmd = provision_all(&cluster);
    cmd.args(["--timeout", "1s"]);
    let again = run_of(&cluster, cmd);
    let (text, said) = (again.stdout, again.stderr);
    assert_eq!(again.code, 1, "{text}");
    assert!(
        block_of(&text, "t0002").starts_with(
            "t0002: FAILED: every object of tenant t0002 is as its config says (nothing to apply), but the \
             bot did not become ready within 1s."
        ),
        "{text}"
    );
    assert!(text.contains("Tenant t0000 is up to date"), "{text}");
    assert!(
        said.contains("Waiting up to 1s for 1 bot to roll out"),
        "{said}"
    );
    // Fixed: the next run finds it rolled out.
    cluster
        .open()
        .set_pod_state("tenant-t0002", "bot", "Running")
        .unwrap();
    let fixed = run(&cluster);
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert!(fixed.line_of("t0002").contains("is up to date"));
    assert_eq!(fixed.rollout_polls(), 0, "{:?}", fixed.verbs());
}

/// The lines of `tenant`'s FAILED report: its line and those indented under it.
fn block_of(stdout: &str, tenant: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{tenant}: FAILED: ")));
    let first = lines.next().unwrap_or_default().to_owned();
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with(' ')).map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `provision --all` as a process to start and wait for.
fn provision_all_process(cluster: &Cluster) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["provision", "--all", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .arg("--kubectl")
        .arg(fake_kubectl())
        .env("FAKE_KUBECTL_STATE", cluster.state.path())
        .env(
            "XTASK_ENVIRONMENTS",
            repo_root().join("tests/fixtures/environments.yaml"),
        )
        .env("XTASK_AUDIT_LOG", cluster.audit_log())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// While the batch applies a tenant, a command on that tenant is refused
/// by the tenant's lock, which names the batch; a tenant the batch found
/// unchanged was released before the apply, and a command on it goes
/// ahead; a provision of another tenant is refused by the claims lock the
/// batch holds to its end. The batch then finishes as if alone.
#[test]
fn a_command_on_a_tenant_the_batch_applies_is_refused() {
    let cluster = fleet(3);
    change(&cluster, 1, "Changed while others wait");
    // The batch's apply takes 4 s.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("apply", 4000)
    });
    let applies = |c: &Cluster| c.calls().iter().filter(|c| c[0] == "apply").count();
    let child = provision_all_process(&cluster).spawn().unwrap();
    let started = std::time::Instant::now();
    while applies(&cluster) == 0 {
        assert!(started.elapsed().as_secs() < 20, "the batch never applied");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refused = exits(cluster.admin(&["restart", "t0001", "--yes"]), 1);
    let why = stderr(&refused);
    assert!(
        why.contains("another command holds the lock on tenant t0001: ")
            && why.contains("ran `provision --all --tenants-dir"),
        "{why}"
    );
    exits(cluster.admin(&["restart", "t0000", "--yes"]), 0);
    let refused = exits(cluster.provision_committed("t0002", &[]), 1);
    assert!(
        stderr(&refused).contains("another command holds the lock on the domain and number claims"),
        "{}",
        stderr(&refused)
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Tenant t0001 provisioned in tenant-t0001 ("),
        "{}",
        stdout(&out)
    );
    assert!(
        cluster
            .get("Lease", Some("xtask-locks"), "tenant-t0001")
            .is_none()
            && cluster
                .get("Lease", Some("xtask-locks"), "claims")
                .is_none(),
        "a lock was left behind"
    );
}

/// A tenant another command holds locked when the batch starts fails on
/// its own line, changing nothing; its lock stays its holder's.
#[test]
fn a_tenant_locked_by_another_command_fails_alone() {
    let cluster = fleet(3);
    for i in 0..3 {
        change(&cluster, i, "New");
    }
    run(&cluster); // makes the lock namespace
    for i in 0..3 {
        change(&cluster, i, "Newer");
    }
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "tenant-t0002", "namespace": "xtask-locks",
            "annotations": {"xtask.mla-platform.io/command": "admin restore t0002 backups/t0002.tar.gz",
                            "xtask.mla-platform.io/process": "laptop-7:4242"}},
        "spec": {"holderIdentity": "ops@example.org", "acquireTime": "2026-11-24T06:00:00.000000Z",
                 "leaseDurationSeconds": 10800},
    });
    cluster.open().put(lease.clone()).unwrap();
    let before = run_at(&cluster, "2026-11-24T06:05:00Z");
    assert_eq!(before.code, 1, "{}", before.stdout);
    assert!(
        before
            .line_of("t0002")
            .starts_with("t0002: FAILED: another command holds the lock on tenant t0002: ops@example.org ran `admin restore t0002 backups/t0002.tar.gz`"),
        "{}",
        before.stdout
    );
    assert!(
        before
            .stdout
            .contains("3 tenants: 2 applied, 0 up to date, 0 skipped, 1 failed.")
    );
    let configmap = cluster
        .get("ConfigMap", Some("tenant-t0002"), "bot-config")
        .unwrap();
    assert_eq!(configmap["data"]["SITE_TAGLINE"], "New");
    assert!(
        cluster
            .get("Lease", Some("xtask-locks"), "tenant-t0002")
            .is_some()
    );
    // The others' locks and the claims lock are gone.
    let leases: Vec<String> = cluster
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Lease")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(leases, ["tenant-t0002"]);
}

fn run_at(cluster: &Cluster, now: &str) -> Run {
    let mut cmd = provision_all(cluster);
    cmd.env("XTASK_NOW", now);
    run_of(cluster, cmd)
}

/// Credentials: a new tenant's Secret is created with generated values,
/// never printed; an existing Secret is never overwritten, even one whose
/// tenant label was removed by hand (the read by label misses it, so its
/// namespace is read itself). A namespace of a tenant's name that
/// provision did not make is refused, as for one tenant.
#[test]
fn secrets_are_created_once_and_foreign_namespaces_refused() {
    let cluster = fleet(2);
    cluster.commit_values("t0002", &seeded_values(2, "t0002"));
    cluster.commit_values("t0003", &seeded_values(3, "t0003"));
    cluster
        .open()
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-t0003"}}))
        .unwrap();
    cluster
        .open()
        .edit(
            "Secret",
            Some("tenant-t0000"),
            "bot-credentials",
            "kubectl-label",
            |s| {
                s["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("mla-platform.in/tenant");
            },
        )
        .unwrap();
    let kept = cluster
        .get("Secret", Some("tenant-t0000"), "bot-credentials")
        .unwrap();
    let out = run(&cluster);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.line_of("t0000").contains("is up to date"),
        "{}",
        out.stdout
    );
    assert_eq!(
        cluster
            .get("Secret", Some("tenant-t0000"), "bot-credentials")
            .unwrap()["data"],
        kept["data"]
    );
    // Read for t0000 only: t0001's Secret was in the read by label.
    let own_reads: Vec<&Vec<String>> = out
        .calls
        .iter()
        .filter(|c| c[..2] == ["get".to_owned(), "secret,persistentvolumeclaim".to_owned()])
        .collect();
    assert_eq!(own_reads.len(), 1, "{:?}", out.verbs());
    assert!(own_reads[0].contains(&"tenant-t0000".to_owned()));

    assert!(
        out.line_of("t0002")
            .starts_with("Tenant t0002 provisioned in tenant-t0002 ("),
        "{}",
        out.stdout
    );
    let secret = cluster
        .get("Secret", Some("tenant-t0002"), "bot-credentials")
        .unwrap();
    let values: Vec<String> = secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| decode_base64(v.as_str().unwrap()))
        .collect();
    assert_eq!(values.len(), 3, "{secret}");
    for value in &values {
        assert!(value.len() >= 32 && !value.contains("redacted"), "{value}");
        assert!(!out.stdout.contains(value.as_str()) && !out.stderr.contains(value.as_str()));
    }
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    assert!(values.iter().all(|v| !audit.contains(v.as_str())));

    assert!(
        block_of(&out.stdout, "t0003")
            .contains("namespace tenant-t0003 already exists but does not belong to tenant t0003"),
        "{}",
        out.stdout
    );
    assert!(
        cluster
            .objects()
            .iter()
            .all(|o| o["metadata"]["namespace"] != "tenant-t0003"),
        "something was applied into a namespace provision did not make"
    );
    assert!(
        out.stdout
            .contains("4 tenants: 1 applied, 2 up to date, 0 skipped, 1 failed."),
        "{}",
        out.stdout
    );
    // The namespaces not found by label, read once.
    assert_eq!(
        out.calls
            .iter()
            .filter(|c| c[..2] == ["get".to_owned(), "namespaces".to_owned()]
                && !c.contains(&"--selector".to_owned()))
            .count(),
        1
    );
}

/// The batch renews all its leases together, in one call each time (they
/// carry one renewal time); a lease broken while it runs (`admin unlock`)
/// is found at the next renewal, said, and that tenant's success is not
/// reported as plain success.
#[test]
fn the_batch_renews_its_leases_together_and_sees_one_broken() {
    let cluster = fleet(2);
    run(&cluster); // makes the lock namespace
    for i in 0..2 {
        change(&cluster, i, "Renewed");
    }
    // The batch's apply takes 4 s; the leases are renewed every second.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("apply", 4000)
    });
    let child = provision_all_process(&cluster)
        .env("XTASK_LEASE_RENEW_SECONDS", "1")
        .spawn()
        .unwrap();
    let lease = |name: &str| cluster.get("Lease", Some("xtask-locks"), name);
    let started = std::time::Instant::now();
    let (tenant, claims) = loop {
        if let (Some(t), Some(c)) = (lease("tenant-t0000"), lease("claims"))
            && t["spec"]["renewTime"] != t["spec"]["acquireTime"]
        {
            break (t, c);
        }
        assert!(started.elapsed().as_secs() < 20, "never renewed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Renewed in one call: one renewal time for all.
    assert_eq!(tenant["spec"]["renewTime"], claims["spec"]["renewTime"]);
    // Broken by hand, as `admin unlock` breaks it.
    cluster.kubectl(&[
        "delete",
        "lease",
        "tenant-t0001",
        "--namespace",
        "xtask-locks",
    ]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: the lock on tenant t0001 was taken from this command"),
        "{err}"
    );
    let text = stdout(&out);
    assert!(
        text.contains("t0001: FAILED: this command did all its work, but the lock on tenant t0001 was broken while this command ran"),
        "{text}"
    );
    assert!(
        text.contains("Tenant t0000 provisioned in tenant-t0000 ("),
        "{text}"
    );
    assert!(text.contains("2 tenants: 1 applied, 0 up to date, 0 skipped, 1 failed."));
    let replaces = cluster.calls().iter().filter(|c| c[0] == "replace").count();
    assert!(replaces >= 2, "{replaces}");
    assert!(lease("tenant-t0000").is_none() && lease("claims").is_none());
}

/// SIGTERM (or Ctrl-C) while the batch waits for its bots: the wait ends,
/// every tenant's outcome is still said and audited, and every lock goes.
#[test]
fn a_batch_stopped_by_a_signal_says_each_outcome_and_releases_its_locks() {
    let cluster = fleet(3);
    run(&cluster); // makes the lock namespace
    for i in 0..3 {
        change(&cluster, i, "Stopped midway");
    }
    cluster
        .open()
        .set_pod_state("tenant-t0001", "bot", "Pending")
        .unwrap();
    let audited = std::fs::read_to_string(cluster.audit_log())
        .unwrap_or_default()
        .lines()
        .count();
    let before = cluster.calls().len();
    let child = provision_all_process(&cluster)
        .args(["--timeout", "60s"])
        .spawn()
        .unwrap();
    // Once the wait has read the Deployments, the bot is being waited for.
    let started = std::time::Instant::now();
    while !cluster.calls()[before..]
        .iter()
        .any(|c| c[..2] == ["get", "deployments"])
    {
        assert!(started.elapsed().as_secs() < 30, "never waited");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 20,
        "the signal did not end the wait"
    );
    let (text, said) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{said}");
    assert!(
        block_of(&text, "t0001").starts_with(
            "t0001: FAILED: every object of tenant t0001 was applied, but the wait for the bot to be ready \
             was interrupted. Run the same command again to wait for it"
        ),
        "{text}"
    );
    assert!(
        said.contains(
            "error: the batch was interrupted (Ctrl-C or a termination signal): 1 of 3 tenants failed or \
             were not started (the lines above say where each stands); every lock was released. Run the \
             same command again to finish, or one tenant alone with `cargo xtask provision t0001 --tenants-dir"
        ),
        "{said}"
    );
    assert!(
        text.contains("Tenant t0000 provisioned in ")
            && text.contains("Tenant t0002 provisioned in "),
        "{text}"
    );
    assert!(
        text.contains("3 tenants: 2 applied, 0 up to date, 0 skipped, 1 failed."),
        "{text}"
    );
    // No lock left behind, and each tenant's outcome recorded.
    let lease = |name: &str| cluster.get("Lease", Some("xtask-locks"), name);
    assert!((0..3).all(|i| lease(&format!("tenant-{}", name(i))).is_none()));
    assert!(lease("claims").is_none());
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    assert_eq!(audit.lines().count(), audited + 3, "{audit}");
}

/// A batch killed outright (SIGKILL) leaves its locks; the next batch on
/// this machine takes over those whose process is gone, in one call, and
/// says so once. (A lock whose holder still runs is not taken: locks.rs.)
#[test]
fn locks_left_by_a_killed_batch_are_taken_over_at_once() {
    let cluster = fleet(3);
    run(&cluster); // makes the lock namespace
    for i in 0..3 {
        change(&cluster, i, "After the kill");
    }
    // Killed while applying: the leases stay, their process is gone.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("apply", 30_000)
    });
    let before = cluster.calls().len();
    let mut child = provision_all_process(&cluster).spawn().unwrap();
    let started = std::time::Instant::now();
    while !cluster.calls()[before..].iter().any(|c| c[0] == "apply") {
        assert!(started.elapsed().as_secs() < 30, "never applied");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lease = |name: &str| cluster.get("Lease", Some("xtask-locks"), name);
    assert!(lease("tenant-t0000").is_some() && lease("claims").is_some());

    let before = cluster.calls().len();
    let again = run(&cluster);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("Took over 4 locks (the domain and number claims, ...)")
            && again
                .stderr
                .contains("on this machine is gone: killed or crashed"),
        "{}",
        again.stderr
    );
    let replaces = cluster.calls()[before..]
        .iter()
        .filter(|c| c[0] == "replace")
        .count();
    assert_eq!(replaces, 1, "{:?}", again.verbs());
    assert!(lease("tenant-t0000").is_none() && lease("claims").is_none());
}

/// A config saved as `.yml` is not a tenant config; it is named, not
/// silently left out.
#[test]
fn a_config_named_yml_is_warned_about() {
    let cluster = fleet(1);
    let stray = cluster.tenants.path().join("t0009.yml");
    std::fs::write(&stray, "mla_name: Someone\n").unwrap();
    let out = run(&cluster);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: {} is not read: tenant configs are named <TENANT>.yaml; rename it to {}",
            stray.display(),
            stray.with_extension("yaml").display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .ends_with("1 tenant: 0 applied, 1 up to date, 0 skipped, 0 failed.\n")
    );
}

/// Ctrl-C while the batch reads the cluster (the signal reaches kubectl
/// too, as a terminal sends it to the whole process group): it says it
/// was interrupted, not that rights are missing, and applies nothing.
#[test]
fn an_interrupt_during_the_read_applies_nothing_and_says_so() {
    use std::os::unix::process::CommandExt as _;
    let cluster = fleet(2);
    run(&cluster); // makes the lock namespace
    change(&cluster, 0, "Never applied");
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        ..fake_kubectl::Fault::slow("get", 30_000)
    });
    let before = cluster.calls().len();
    let gets = cluster.calls().iter().filter(|c| c[0] == "get").count();
    let child = provision_all_process(&cluster)
        .process_group(0)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let out = common::ctrl_c_after(&cluster, child, "get", gets + 1);
    assert!(
        started.elapsed().as_secs() < 20,
        "the interrupt was not seen"
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "interrupted (Ctrl-C or a termination signal) while reading the cluster; nothing was applied"
        ) && !said.contains("rights to list"),
        "{said}"
    );
    assert!(!cluster.calls()[before..].iter().any(|c| c[0] == "apply"));
    let lease = |name: &str| cluster.get("Lease", Some("xtask-locks"), name);
    assert!(lease("tenant-t0000").is_none() && lease("claims").is_none());
}

/// A read of the Deployments that fails once during the wait (a dropped
/// connection) is tried again; three in a row fail the bots still waited
/// for, each on its own tenant's line.
#[test]
fn the_wait_tries_a_failed_read_again_then_gives_up() {
    let cluster = fleet(2);
    for i in 0..2 {
        change(&cluster, i, "Read again");
    }
    // The batch's first three reads are the cluster's; the fourth is the wait's.
    cluster.fault(fake_kubectl::Fault {
        times: Some(1),
        skip: 3,
        ..fake_kubectl::Fault::unreachable("get")
    });
    let once = run(&cluster);
    assert_eq!(once.code, 0, "{}{}", once.stdout, once.stderr);
    assert_eq!(once.rollout_polls(), 2, "{:?}", once.verbs());

    for i in 0..2 {
        change(&cluster, i, "Never seen rolled out");
    }
    cluster.fault(fake_kubectl::Fault {
        times: Some(3),
        skip: 3,
        ..fake_kubectl::Fault::unreachable("get")
    });
    let out = run(&cluster);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for i in 0..2 {
        let block = block_of(&out.stdout, &name(i));
        assert!(
            block.contains("was applied, but whether the bot rolled out could not be seen.")
                && block
                    .contains("could not read the Deployments to see whether the bot rolled out")
                && block.contains("The connection to the server 127.0.0.1:6443 was refused"),
            "{block}"
        );
    }
    assert_eq!(out.rollout_polls(), 3, "{:?}", out.verbs());
}
