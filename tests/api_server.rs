//! What a real API server does that the tool has to live with, tested
//! against the faithful fake (see `fake-kubectl/src/lib.rs`): field
//! ownership under server-side apply, dry runs that need the namespace,
//! asynchronous namespace deletion, admission refusals of every kind, and
//! kubectl's own texts. Each test names the item of the issue it proves.

mod common;

use std::path::Path;

use common::{Cluster, create_bot_database, exits, fixture, stderr, stdout};
use fake_kubectl::Fault;
use serde_json::{Value, json};

/// Who owns fields of an object: (manager, operation, subresource).
fn managers(o: &Value) -> Vec<(String, String, Option<String>)> {
    o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
                e["subresource"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn verify(cluster: &Cluster, args: &[&str]) -> (i32, Value) {
    let out = cluster
        .admin(&["verify", "-o", "json", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap(), report)
}

/// The problems of one check of one tenant in a verify report.
fn problems(report: &Value, tenant: &str, check: &str) -> Vec<String> {
    report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

fn patch_rate_limit(cluster: &Cluster, tenant: &str, value: &str) {
    cluster.kubectl(&[
        "patch",
        "configmap",
        "bot-config",
        "--namespace",
        &format!("tenant-{tenant}"),
        "--type",
        "merge",
        "-p",
        &format!(r#"{{"data":{{"RATE_LIMIT_MESSAGES_PER_DAY":"{value}"}}}}"#),
    ]);
}

/// 1: the server cannot dry-run objects in a namespace that does not exist,
/// so a new tenant's plan asks for no server diff and lists every object.
#[test]
fn a_plan_for_a_new_tenant_lists_every_object_without_a_server_diff() {
    let cluster = Cluster::new();
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--plan"]),
        2,
    );
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  + ")).count(),
        16,
        "15 objects and the credentials: {text}"
    );
    assert!(
        text.contains("namespace tenant-kalyan does not exist yet"),
        "{text}"
    );
    assert!(
        cluster
            .calls()
            .iter()
            .all(|c| !c.contains(&"diff".to_owned())),
        "a server diff of a new tenant fails on a real API server"
    );
    assert!(cluster.is_pristine());
}

/// 2: `kubectl scale` (suspend, restore, an operator) owns `.spec.replicas`;
/// provision never sets it, so it neither conflicts nor starts a stopped bot.
#[test]
fn the_replica_count_belongs_to_whoever_scales() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        "tenant-kalyan",
        "--replicas=0",
    ]);
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 0);
    assert!(
        stdout(&out).contains(
            "The bot is stopped (scaled to 0 replicas) and stays so: provision never changes the replica count."
        ) && !stdout(&out).contains("rolled out and ready"),
        "{}",
        stdout(&out)
    );
    let d = cluster
        .get("Deployment", Some("tenant-kalyan"), "bot")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 0, "provision started a stopped bot");
    assert!(
        managers(&d).contains(&("kubectl".into(), "Update".into(), Some("scale".into()))),
        "{:?}",
        managers(&d)
    );
}

/// 2: a field another manager set survives provision unless the operator
/// takes it back on purpose, and the refusal names the field and manager.
#[test]
fn a_hand_edit_is_taken_back_only_with_force() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let rendered = cluster
        .get("ConfigMap", Some("tenant-kalyan"), "bot-config")
        .unwrap()["data"]["RATE_LIMIT_MESSAGES_PER_DAY"]
        .clone();
    patch_rate_limit(&cluster, "kalyan", "999999");
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 1);
    let err = stderr(&out);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.RATE_LIMIT_MESSAGES_PER_DAY"),
        "{err}"
    );
    assert!(err.contains("re-run with --force-conflicts"), "{err}");
    let data = |c: &Cluster| {
        c.get("ConfigMap", Some("tenant-kalyan"), "bot-config")
            .unwrap()["data"]["RATE_LIMIT_MESSAGES_PER_DAY"]
            .clone()
    };
    assert_eq!(
        data(&cluster),
        "999999",
        "a refused apply changed the field"
    );
    // The plan says the same, and does not suggest an apply that is refused.
    let plan = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--plan"]),
        2,
    );
    assert!(
        stdout(&plan).contains(
            "~ configmap/bot-config (.data.RATE_LIMIT_MESSAGES_PER_DAY is set by \"kubectl-patch\""
        ) && stdout(&plan)
            .contains("run the same command without --plan and with --force-conflicts")
            && !stdout(&plan).contains("would change. To make the change"),
        "{}",
        stdout(&plan)
    );
    // A bot restarted after the edit runs with the edited value.
    cluster.admin(&["restart", "kalyan"]).assert().success();
    let pod = |c: &Cluster| -> Vec<String> {
        c.objects()
            .iter()
            .filter(|o| o["kind"] == "Pod")
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let edited = pod(&cluster);
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--force-conflicts"]),
        0,
    );
    assert_eq!(data(&cluster), rendered);
    // The pod template is unchanged, but the bot reads the ConfigMap at
    // start: taking the value back restarts it.
    assert!(
        stdout(&out).contains(
            "  restarted  deployment/bot (its ConfigMap changed; the bot reads it when it starts)"
        ),
        "{}",
        stdout(&out)
    );
    assert_ne!(
        pod(&cluster),
        edited,
        "the bot still runs with the edited value"
    );
}

/// 3: a status write between the read and the apply changes the
/// resourceVersion but nothing provision set: still "nothing changed".
#[test]
fn unchanged_is_decided_by_content_not_resource_version() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster.fault(Fault::status_write_before(
        "apply",
        "Deployment",
        "tenant-kalyan",
        "bot",
    ));
    let before = cluster
        .get("Deployment", Some("tenant-kalyan"), "bot")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 0);
    let after = cluster
        .get("Deployment", Some("tenant-kalyan"), "bot")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    assert_ne!(before, after, "the status write did not happen");
    assert!(
        stdout(&out).starts_with("Tenant kalyan is up to date in tenant-kalyan: nothing changed"),
        "{}",
        stdout(&out)
    );
}

/// 4: a deleted namespace stays Terminating until its finalizers are done;
/// offboard waits for it (no `kubectl delete --wait` cut off by the call
/// timeout and blamed on the network).
#[test]
fn offboard_waits_for_the_namespace_to_terminate() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster.open().set_namespace_termination_calls(3).unwrap();
    let out = exits(
        cluster.admin(&[
            "offboard",
            "kalyan",
            "--yes",
            "--no-backup",
            "--delete-data",
            "--kubectl-timeout=3s",
        ]),
        0,
    );
    assert!(
        stderr(&out)
            .contains("Waiting up to 10m for namespace tenant-kalyan to finish terminating"),
        "{}",
        stderr(&out)
    );
    assert!(cluster.get("Namespace", None, "tenant-kalyan").is_none());
}

/// 4: while a namespace terminates, nothing may be created in it: list,
/// provision and plan say so, and the advice is about the deletion, not
/// about credentials or the network.
#[test]
fn a_terminating_namespace_gets_accurate_advice() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster
        .open()
        .set_namespace_termination_calls(1000)
        .unwrap();
    let out = exits(
        cluster.admin(&[
            "offboard",
            "kalyan",
            "--yes",
            "--no-backup",
            "--delete-data",
            "--delete-timeout=1s",
        ]),
        1,
    );
    assert!(
        stderr(&out)
            .contains("namespace tenant-kalyan is still Terminating after --delete-timeout 1s"),
        "{}",
        stderr(&out)
    );
    // Run again, as the message advises: it waits again, and is not refused
    // for deleting a namespace that is already being deleted.
    let again = exits(
        cluster.admin(&[
            "offboard",
            "kalyan",
            "--yes",
            "--no-backup",
            "--delete-data",
            "--delete-timeout=1s",
        ]),
        1,
    );
    assert!(
        stderr(&again)
            .contains("namespace tenant-kalyan is still Terminating after --delete-timeout 1s")
            && !stderr(&again).contains("Conflict"),
        "{}",
        stderr(&again)
    );
    let list = cluster.admin(&["list", "-o", "json"]).output().unwrap();
    let list: Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(list["tenants"][0]["state"], "terminating");
    for extra in [&[][..], &["--plan"][..]] {
        let out = cluster
            .provision("kalyan", &fixture("kalyan.yaml"), extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = stderr(&out);
        assert!(
            err.contains("namespace tenant-kalyan is being deleted (Terminating since")
                && err.trim_end().ends_with("Nothing was changed."),
            "{extra:?}: {err}"
        );
        assert!(
            !err.contains("credentials") && !err.contains("reached"),
            "{err}"
        );
    }
}

/// The bot's pods are admitted like any pod: when the quota no longer
/// holds the bot, a restart says that the pod cannot be created and why,
/// not only that the bot is not ready.
#[test]
fn a_bot_the_quota_refuses_is_named_as_refused() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    cluster
        .open()
        .edit(
            "ResourceQuota",
            Some("tenant-kalyan"),
            "tenant-quota",
            "kubectl-edit",
            |q| q["spec"]["hard"]["limits.cpu"] = json!("200m"),
        )
        .unwrap();
    let out = exits(cluster.admin(&["restart", "kalyan"]), 1);
    let err = stderr(&out);
    assert!(
        err.contains("deployment/bot cannot create its pod: pods \"bot-")
            && err.contains("is forbidden: exceeded quota: tenant-quota, requested: limits.cpu=1, used: limits.cpu=0, limited: limits.cpu=200m"),
        "{err}"
    );
}

/// 5: `can-i create pods/exec` asks about the pod named `exec`; a grant of
/// the exec subresource is found only with `--subresource=exec`.
#[test]
fn exec_granted_as_a_subresource_is_found() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster
        .open()
        .put_many(vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "exec-only", "namespace": "tenant-mylapore"},
                   "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "kalyan-execs", "namespace": "tenant-mylapore"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exec-only"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "tenant-kalyan"}]}),
        ])
        .unwrap();
    let (code, report) = verify(&cluster, &["kalyan"]);
    assert_eq!(code, 1);
    assert!(
        problems(&report, "kalyan", "rbac").contains(
            &"the bot may create pods/exec in tenant-mylapore: rolebinding tenant-mylapore/kalyan-execs \
              gives role exec-only to serviceaccount tenant-kalyan/bot"
                .to_owned()
        ),
        "{report:#}"
    );
    // The right to exec is no right to create pods.
    assert!(
        !problems(&report, "kalyan", "rbac")
            .iter()
            .any(|p| p.contains("may create pods ")),
        "{report:#}"
    );
}

/// 6: only Pod Security's own refusal proves admission; a quota or RBAC
/// refusal of the privileged pod proves nothing about it.
#[test]
fn admission_is_proven_only_by_pod_security() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    // A namespace whose Pod Security labels were removed by hand ...
    cluster
        .open()
        .edit("Namespace", None, "tenant-kalyan", "kubectl-edit", |ns| {
            let labels = ns["metadata"]["labels"].as_object_mut().unwrap();
            labels.retain(|k, _| !k.starts_with("pod-security.kubernetes.io/"));
        })
        .unwrap();
    // ... and whose quota has room for no other pod.
    cluster
        .open()
        .edit(
            "ResourceQuota",
            Some("tenant-kalyan"),
            "tenant-quota",
            "kubectl-edit",
            |q| q["spec"]["hard"]["pods"] = json!("1"),
        )
        .unwrap();
    let (code, report) = verify(&cluster, &["kalyan"]);
    assert_eq!(code, 1);
    let admission = problems(&report, "kalyan", "admission");
    assert!(
        admission.len() == 1
            && admission[0].starts_with("not proven:")
            && admission[0].contains(
                "exceeded quota: tenant-quota, requested: pods=1, used: pods=1, limited: pods=1"
            ),
        "{admission:?}"
    );
    // Room in the quota, but no right to create pods: not proven either.
    cluster
        .open()
        .edit(
            "ResourceQuota",
            Some("tenant-kalyan"),
            "tenant-quota",
            "kubectl-edit",
            |q| q["spec"]["hard"]["pods"] = json!("3"),
        )
        .unwrap();
    cluster
        .open()
        .deny("patch", "pods", Some("tenant-kalyan"))
        .unwrap();
    let (code, report) = verify(&cluster, &["kalyan"]);
    assert_eq!(code, 1);
    let admission = problems(&report, "kalyan", "admission");
    assert!(
        admission.len() == 1
            && admission[0].starts_with("not proven:")
            && admission[0].contains("cannot patch resource \"pods\" in API group \"\" in the namespace \"tenant-kalyan\""),
        "{admission:?}"
    );
}

/// 7: with an aggregated API down, every kubectl call prints discovery
/// warnings on stderr; answers are still read from stdout, and verify passes.
#[test]
fn verify_passes_with_discovery_warnings_on_every_call() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster.fault(Fault::discovery_warnings());
    let (code, report) = verify(&cluster, &["--network"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
}

/// 7: a probe kubectl could not run is an error, not a blocked connection,
/// even when warnings come first on stderr.
#[test]
fn a_probe_that_could_not_run_is_not_a_blocked_connection() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster.fault(Fault::discovery_warnings());
    // The network check's first exec is its first probe.
    cluster.fault(Fault {
        times: Some(1),
        ..Fault::fail(
            "exec",
            1,
            "Error from server (NotFound): pods \"xtask-netprobe\" not found",
        )
    });
    let (code, report) = verify(&cluster, &["kalyan", "--network"]);
    assert_eq!(code, 1);
    let network = problems(&report, "kalyan", "network");
    assert!(
        network
            .iter()
            .any(|p| p.starts_with("could not probe tenant mylapore's bot:")),
        "{network:?}"
    );
}

/// 8: SQLite's online backup of a large database is not cut off by the
/// call timeout; it has its own limit, named in --help.
#[test]
fn a_slow_database_backup_has_its_own_limit() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let db = cluster.volume("kalyan", "bot-data").join("bot.sqlite3");
    create_bot_database(&db, &["2026-11-01T00:00:00Z"], &[], 4);
    let dir = tempfile::tempdir().unwrap();
    // The backup's first exec, `sqlite3 .backup`, takes 2.5 s.
    cluster.fault(Fault {
        times: Some(1),
        ..Fault::slow("exec", 2500)
    });
    exits(
        cluster
            .admin(&["backup", "kalyan", "--kubectl-timeout=1s", "--out"])
            .arg(dir.path()),
        0,
    );
    cluster.fault(Fault {
        times: Some(1),
        ..Fault::slow("exec", 2500)
    });
    let out = exits(
        cluster
            .admin(&["backup", "kalyan", "--db-timeout=1s", "--out"])
            .arg(dir.path()),
        1,
    );
    assert!(
        stderr(&out).contains("did not finish within 1s on the current context and was stopped: it was stopped at its own limit"),
        "{}",
        stderr(&out)
    );
}

/// 9: a command that fails in a pod is reported by kubectl with its exit
/// status; the tool reads that, not the command's own words.
#[test]
fn a_failing_command_in_a_pod_is_read_from_kubectls_exit_text() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    // What kubectl prints: the command's stderr, then its own line.
    let out = cluster.kubectl_output(&[
        "exec",
        "deployment/bot",
        "--namespace",
        "tenant-kalyan",
        "--",
        "cat",
        "/data/missing",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "cat: /data/missing: No such file or directory\ncommand terminated with exit code 1\n"
    );
    // Every probe command fails in words unlike nc's or nslookup's: each is
    // read as a connection that failed, none as a probe that could not run.
    cluster.fault(Fault::fail(
        "exec",
        1,
        "probe: no route\ncommand terminated with exit code 1",
    ));
    let (code, report) = verify(&cluster, &["kalyan", "--network"]);
    assert_eq!(code, 1);
    assert_eq!(
        problems(&report, "kalyan", "network"),
        ["the probe could not resolve names: DNS egress is blocked"]
    );
}

/// 10: cert-manager's HTTP-01 solver in the tenant's namespace is reachable
/// from the ingress controller (default deny would drop it).
#[test]
fn the_http01_solver_answers_the_ingress_controller() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let restricted = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    cluster
        .open()
        .put_many(vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "controller", "namespace": "ingress-nginx",
                                "labels": {"app.kubernetes.io/name": "ingress-nginx"}},
                   "spec": {"containers": [{"name": "controller", "image": "ingress-nginx:1"}]}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "cm-acme-http-solver-x", "namespace": "tenant-kalyan",
                                "labels": {"acme.cert-manager.io/http01-solver": "true"}},
                   "spec": {"containers": [{"name": "acmesolver", "image": "cert-manager-acmesolver:v1.16",
                                            "ports": [{"name": "http", "containerPort": 8089}],
                                            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                                                          "limits": {"cpu": "100m", "memory": "64Mi"}},
                                            "securityContext": restricted}]}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "cm-acme-http-solver-x", "namespace": "tenant-kalyan"},
                   "spec": {"type": "ClusterIP", "selector": {"acme.cert-manager.io/http01-solver": "true"},
                            "ports": [{"port": 8089, "targetPort": 8089, "protocol": "TCP"}]}}),
        ])
        .unwrap();
    let out = cluster.kubectl_output(&[
        "exec",
        "pod/controller",
        "--namespace",
        "ingress-nginx",
        "--",
        "nc",
        "-z",
        "-w",
        "3",
        "cm-acme-http-solver-x.tenant-kalyan.svc.cluster.local",
        "8089",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// 10: the bot runs a pinned image with an explicit pull policy, and its
/// credentials are files, never environment variables.
#[test]
fn the_bot_runs_a_pinned_image_and_reads_credentials_from_files() {
    let out = exits(
        common::xtask_bare()
            .args(["provision", "kalyan", "--dry-run", "--values"])
            .arg(fixture("kalyan.yaml")),
        0,
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout(&out)).unwrap();
    let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert!(c["image"].as_str().unwrap().contains("@sha256:"));
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    let text = serde_json::to_string(&c).unwrap();
    assert!(
        !text.contains("secretRef") && !text.contains("secretKeyRef"),
        "credentials reach the bot as environment variables: {text}"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == "bot-credentials")
        .unwrap();
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap();
    assert_eq!(mount["readOnly"], true);
    assert!(
        d["spec"].get("replicas").is_none(),
        "provision must not own replicas"
    );
}

/// 10: with NodeLocal DNSCache, pods ask a link-local address; the DNS
/// allowance names it when the platform says so.
#[test]
fn node_local_dns_is_allowed_when_configured() {
    let platform = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(common::repo_root().join("platform.yaml"))
        .unwrap()
        .replace("node_local_dns: null", "node_local_dns: 169.254.20.10");
    std::fs::write(platform.path(), text).unwrap();
    let cluster = Cluster::new();
    cluster
        .open()
        .set_node_local_dns(Some("169.254.20.10"))
        .unwrap();
    let platform_arg = platform.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        cluster
            .provision("kalyan", &fixture("kalyan.yaml"), extra)
            .output()
            .unwrap()
    };
    // Without the setting, the bot cannot resolve names on such a cluster.
    assert!(run(&[]).status.success());
    let (code, report) = verify(&cluster, &["kalyan", "--network"]);
    assert_eq!(code, 1);
    assert!(
        problems(&report, "kalyan", "network")
            .contains(&"the probe could not resolve names: DNS egress is blocked".to_owned()),
        "{report:#}"
    );
    let out = run(&["--platform", platform_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, report) = verify(
        &cluster,
        &["kalyan", "--network", "--platform", platform_arg],
    );
    assert_eq!(code, 0, "{report:#}");
}

/// 11: the probe carries the bot's network role, so a loosened bot egress
/// rule is what it catches.
#[test]
fn the_probe_is_held_to_the_bots_egress_rules() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster
        .open()
        .edit(
            "NetworkPolicy",
            Some("tenant-kalyan"),
            "allow-https-egress",
            "kubectl-edit",
            |p| {
                p["spec"]["egress"][0]["to"][0]["ipBlock"]
                    .as_object_mut()
                    .unwrap()
                    .remove("except");
            },
        )
        .unwrap();
    let (code, report) = verify(&cluster, &["kalyan", "--network"]);
    assert_eq!(code, 1);
    assert!(
        problems(&report, "kalyan", "network").contains(
            &"the probe reached the API server: NetworkPolicy is not enforced for tenant-kalyan"
                .to_owned()
        ),
        "{report:#}"
    );
}

/// The whole life of a tenant as a real API server would serve it.
#[test]
fn a_tenant_from_plan_to_offboard_on_a_real_api_server() {
    let cluster = Cluster::new();
    let values = fixture("kalyan.yaml");
    let provision = |extra: &[&str]| {
        cluster
            .provision("kalyan", &values, extra)
            .output()
            .unwrap()
    };
    let drift = || {
        cluster
            .admin(&["drift", "-o", "json", "--tenants-dir"])
            .arg(cluster.tenants.path())
            .output()
            .unwrap()
    };
    // A plan of the new tenant: everything new, nothing changed.
    let out = provision(&["--plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(cluster.is_pristine());
    let out = provision(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(drift().status.code(), Some(0));

    // A hand edit by another manager: drift names it, provision refuses,
    // a forced provision takes it back.
    patch_rate_limit(&cluster, "kalyan", "1");
    let out = drift();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["tenants"][0]["state"], "drifted");
    assert_eq!(
        report["tenants"][0]["details"],
        json!([
            "~ configmap/bot-config (.data.RATE_LIMIT_MESSAGES_PER_DAY is set by \"kubectl-patch\"; provision takes it back only with --force-conflicts)"
        ])
    );
    let refused = provision(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.RATE_LIMIT_MESSAGES_PER_DAY"
        ),
        "{}",
        stderr(&refused)
    );
    assert!(provision(&["--force-conflicts"]).status.success());
    assert_eq!(drift().status.code(), Some(0));

    // A restart's annotation belongs to kubectl-rollout: provision keeps it
    // and the bot keeps running (no new rollout).
    cluster.admin(&["restart", "kalyan"]).assert().success();
    let pods = |c: &Cluster| -> Vec<String> {
        c.objects()
            .iter()
            .filter(|o| o["kind"] == "Pod")
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let running = pods(&cluster);
    let out = provision(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Tenant kalyan is up to date"),
        "{}",
        stdout(&out)
    );
    assert_eq!(pods(&cluster), running, "provision restarted the bot");
    assert_eq!(drift().status.code(), Some(0), "a restart is not drift");

    // Suspended: provision refuses (it would bring the website back).
    cluster.admin(&["suspend", "kalyan"]).assert().success();
    let out = provision(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is suspended"), "{}", stderr(&out));
    cluster.admin(&["resume", "kalyan"]).assert().success();
    assert!(provision(&[]).status.success());

    // Offboard with the data, through a namespace that terminates slowly.
    cluster.open().set_namespace_termination_calls(4).unwrap();
    exits(
        cluster
            .admin(&[
                "offboard",
                "kalyan",
                "--yes",
                "--no-backup",
                "--delete-data",
                "--tenants-dir",
            ])
            .arg(cluster.tenants.path()),
        0,
    );
    assert!(cluster.get("Namespace", None, "tenant-kalyan").is_none());
    assert!(Path::new(&cluster.tenants.path().join("offboarded/kalyan.yaml")).exists());
}
