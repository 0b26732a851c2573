//! `admin verify` against the fake cluster: a healthy pair passes, and each
//! way of breaking isolation fails with the right check named.

mod common;

use common::{Cluster, exits, stderr, stdout};
use serde_json::{Value, json};

fn verify(cluster: &Cluster, extra: &[&str]) -> (i32, String, Value) {
    let table = cluster
        .admin(&["verify", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .args(extra)
        .output()
        .unwrap();
    let json = cluster
        .admin(&["verify", "-o", "json", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(table.status.code(), json.status.code());
    (
        table.status.code().unwrap(),
        stdout(&table) + &stderr(&table),
        serde_json::from_str(&stdout(&json)).unwrap(),
    )
}

/// The failed checks as (tenant, check) pairs.
fn failures(report: &Value) -> Vec<(String, String)> {
    common::failed_checks(report)
        .into_iter()
        .map(|(tenant, check, _)| (tenant, check))
        .collect()
}

#[test]
fn a_healthy_pair_passes() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["tenants"].as_array().unwrap().len(), 2);
    assert_eq!(report["tenants"][0]["checks"].as_array().unwrap().len(), 4);
    // Nothing was created by the checks (the privileged pod was a dry run).
    assert!(
        cluster
            .get("Pod", Some("tenant-kalyan"), "xtask-verify-privileged")
            .is_none()
    );
}

#[test]
fn a_deleted_network_policy_fails_objects() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    assert!(
        cluster
            .open()
            .remove("NetworkPolicy", Some("tenant-kalyan"), "default-deny-all")
            .unwrap()
    );
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [("kalyan".to_owned(), "objects".to_owned())]
    );
    assert!(
        out.contains("networkpolicy/default-deny-all is missing"),
        "{out}"
    );
}

#[test]
fn a_loosened_policy_or_quota_fails_objects() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let mut policy = cluster
        .get(
            "NetworkPolicy",
            Some("tenant-mylapore"),
            "allow-https-egress",
        )
        .unwrap();
    policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = json!([]);
    cluster.open().put(policy).unwrap();
    let (code, out, report) = verify(&cluster, &["mylapore"]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [("mylapore".to_owned(), "objects".to_owned())]
    );
    assert!(
        out.contains("networkpolicy/allow-https-egress spec differs from the config"),
        "{out}"
    );
}

#[test]
fn a_cross_namespace_role_fails_rbac() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster
        .open()
        .put_many(vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "read-secrets", "namespace": "tenant-mylapore"},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "kalyan-reads", "namespace": "tenant-mylapore"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "tenant-kalyan"}]}),
        ])
        .unwrap();
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    // Both fail: kalyan's bot reaches out, mylapore's namespace is open.
    assert_eq!(
        failures(&report),
        [
            ("kalyan".to_owned(), "rbac".to_owned()),
            ("mylapore".to_owned(), "rbac".to_owned())
        ]
    );
    let grant = "rolebinding tenant-mylapore/kalyan-reads gives role read-secrets to serviceaccount tenant-kalyan/bot";
    for line in [
        "rolebinding tenant-mylapore/kalyan-reads grants tenant-kalyan's service accounts a role in another namespace".to_owned(),
        format!("the bot may get secrets in tenant-mylapore: {grant}"),
        format!("tenant kalyan's bot may get secrets in tenant-mylapore: {grant}"),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }
}

#[test]
fn a_cluster_wide_grant_fails_rbac() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster
        .open()
        .put_many(vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "view-all"},
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "mylapore-views"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view-all"},
                   "subjects": [{"kind": "Group", "name": "system:serviceaccounts:tenant-mylapore"}]}),
        ])
        .unwrap();
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [
            ("kalyan".to_owned(), "rbac".to_owned()),
            ("mylapore".to_owned(), "rbac".to_owned())
        ]
    );
    let grant = "clusterrolebinding mylapore-views gives clusterrole view-all to group system:serviceaccounts:tenant-mylapore";
    for line in [
        format!("the bot may list namespaces cluster-wide: {grant}"),
        format!("the bot may list secrets cluster-wide: {grant}"),
        format!("the bot may list configmaps in every other tenant's namespace: {grant}"),
        format!("tenant mylapore's bot may list configmaps in tenant-kalyan: {grant}"),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }
}

#[test]
fn a_namespace_without_pod_security_fails_admission_and_objects() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let mut ns = cluster.get("Namespace", None, "tenant-kalyan").unwrap();
    ns["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-security.kubernetes.io/enforce");
    cluster.open().put(ns).unwrap();
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [
            ("kalyan".to_owned(), "objects".to_owned()),
            ("kalyan".to_owned(), "admission".to_owned())
        ]
    );
    assert!(
        out.contains("a privileged pod was admitted in tenant-kalyan"),
        "{out}"
    );
}

#[test]
fn a_shared_domain_fails_sharing_for_both() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let mut ns = cluster.get("Namespace", None, "tenant-mylapore").unwrap();
    ns["metadata"]["annotations"]["mla-platform.in/domains"] =
        json!("xn--kxae4bafwg.xn--h2brj9c,kalyan-mla.example.in");
    cluster.open().put(ns).unwrap();
    let (code, out, report) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [
            ("kalyan".to_owned(), "sharing".to_owned()),
            ("mylapore".to_owned(), "sharing".to_owned())
        ]
    );
    assert!(
        out.contains("domain kalyan-mla.example.in is also tenant mylapore's"),
        "{out}"
    );
    insta::assert_snapshot!(out.lines().filter(|l| l.contains("sharing") || l.starts_with("error")).collect::<Vec<_>>().join("\n"), @r"
    kalyan    sharing    FAIL    domain kalyan-mla.example.in is also tenant mylapore's
    mylapore  sharing    FAIL    domain kalyan-mla.example.in is also served by Ingress tenant-kalyan/bot
    error: 2 check(s) failed; the tenants above are not proven isolated
    ");
}

#[test]
fn a_copied_credential_fails_sharing_without_printing_it() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let kalyan = cluster
        .get("Secret", Some("tenant-kalyan"), "bot-credentials")
        .unwrap();
    let mut mylapore = cluster
        .get("Secret", Some("tenant-mylapore"), "bot-credentials")
        .unwrap();
    mylapore["data"]["ADMIN_API_TOKEN"] = kalyan["data"]["ADMIN_API_TOKEN"].clone();
    cluster.open().put(mylapore).unwrap();
    let (code, out, _) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("holds a credential value identical to one of this tenant's"),
        "{out}"
    );
    let value = kalyan["data"]["ADMIN_API_TOKEN"].as_str().unwrap();
    assert!(!out.contains(value) && !out.contains(&common::decode_base64(value)));
}

#[test]
fn the_network_probe_passes_on_enforced_policies_and_is_removed() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let (code, out, report) = verify(&cluster, &["--network"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["tenants"][0]["checks"][4]["check"], "network");
    let probes: Vec<Vec<String>> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.contains(&"nc".to_owned()))
        .collect();
    assert!(
        probes
            .iter()
            .any(|c| c.contains(&"bot.tenant-mylapore.svc.cluster.local".to_owned())),
        "{probes:?}"
    );
    assert!(
        probes
            .iter()
            .any(|c| c.contains(&"169.254.169.254".to_owned()))
    );
    assert!(
        cluster
            .get("Pod", Some("tenant-kalyan"), "xtask-netprobe")
            .is_none(),
        "the probe pod was left behind"
    );
}

#[test]
fn a_cni_that_ignores_network_policy_fails_the_network_check() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    cluster.open().set_network_policy_enforced(false).unwrap();
    let (code, out, report) = verify(&cluster, &["kalyan", "--network"]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [("kalyan".to_owned(), "network".to_owned())]
    );
    for what in [
        "tenant mylapore's bot",
        "the cloud metadata address",
        "the API server",
    ] {
        assert!(
            out.contains(&format!(
                "the probe reached {what}: NetworkPolicy is not enforced for tenant-kalyan"
            )),
            "{out}"
        );
    }
    assert!(
        cluster
            .get("Pod", Some("tenant-kalyan"), "xtask-netprobe")
            .is_none()
    );
}

#[test]
fn a_missing_dns_policy_fails_the_network_check() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    assert!(
        cluster
            .open()
            .remove("NetworkPolicy", Some("tenant-mylapore"), "allow-dns-egress")
            .unwrap()
    );
    let (code, out, report) = verify(&cluster, &["mylapore", "--network"]);
    assert_eq!(code, 1);
    assert_eq!(
        failures(&report),
        [
            ("mylapore".to_owned(), "objects".to_owned()),
            ("mylapore".to_owned(), "network".to_owned())
        ]
    );
    assert!(
        out.contains("the probe could not resolve names: DNS egress is blocked"),
        "{out}"
    );
}

#[test]
fn the_probe_pod_is_deleted_even_when_probing_fails() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let broken = fake_kubectl::Fault::fail(
        "exec",
        1,
        "error: unable to upgrade connection: container not found (\"probe\")",
    );
    cluster.fault(broken);
    let out = exits(
        cluster
            .admin(&["verify", "kalyan", "--network", "--tenants-dir"])
            .arg(cluster.tenants.path()),
        1,
    );
    assert!(stdout(&out).contains("could not probe"), "{}", stdout(&out));
    assert!(
        cluster
            .get("Pod", Some("tenant-kalyan"), "xtask-netprobe")
            .is_none()
    );
}

/// `--color always` paints the verdicts, even into a pipe; by default a
/// pipe gets plain words.
#[test]
fn color_always_paints_pass_and_fail() {
    let cluster = Cluster::with_tenants(&["kalyan", "mylapore"]);
    let run = |extra: &[&str]| {
        stdout(
            &cluster
                .admin(&["verify", "--tenants-dir"])
                .arg(cluster.tenants.path())
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let painted = run(&["--color", "always"]);
    assert!(painted.contains("\x1b[32mpass\x1b[0m"), "{painted}");
    assert!(!painted.contains("FAIL"), "{painted}");
    let plain = run(&[]);
    assert!(plain.contains("pass") && !plain.contains('\x1b'), "{plain}");
    assert_eq!(
        painted.replace("\x1b[32m", "").replace("\x1b[0m", ""),
        plain
    );
    cluster
        .open()
        .remove("NetworkPolicy", Some("tenant-kalyan"), "default-deny-all")
        .unwrap();
    let failed = run(&["--color", "always"]);
    assert!(failed.contains("\x1b[1;31mFAIL\x1b[0m"), "{failed}");
    assert!(failed.contains("\x1b[32mpass\x1b[0m"), "{failed}");
}
