//! `cargo xtask provision` end to end: the real binary, rendering fixtures,
//! and applying to the stateful fake kubectl.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, exits, fixture, repo_root, stderr, stdout, xtask_bare};
use serde_json::Value;

const FIXTURES: [&str; 3] = ["kalyan", "mylapore", "hostile-text"];

fn dry_run(tenant: &str, values: &std::path::Path) -> String {
    let out = exits(
        xtask_bare()
            .args(["provision", tenant, "--dry-run", "--values"])
            .arg(values),
        0,
    );
    stdout(&out)
}

#[test]
fn manifests_of_every_fixture_are_pinned() {
    for tenant in FIXTURES {
        let yaml = dry_run(tenant, &fixture(&format!("{tenant}.yaml")));
        insta::assert_snapshot!(format!("manifests-{tenant}"), yaml);
    }
    let demo = dry_run("demo", &repo_root().join("tenants/demo.yaml"));
    insta::assert_snapshot!("manifests-demo", demo);
}

/// Every rendered object of a tenant lives in its own namespace, and no
/// string anywhere in it names another tenant's namespace.
#[test]
fn rendered_objects_stay_in_their_tenant() {
    for tenant in FIXTURES {
        let yaml = dry_run(tenant, &fixture(&format!("{tenant}.yaml")));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(docs.len(), 16, "{tenant}");
        let own = format!("tenant-{tenant}");
        for doc in &docs {
            let kind = doc["kind"].as_str().unwrap();
            if kind == "Namespace" {
                assert_eq!(doc["metadata"]["name"], own.as_str());
            } else {
                assert_eq!(
                    doc["metadata"]["namespace"],
                    own.as_str(),
                    "{kind} of {tenant}"
                );
            }
            assert_eq!(doc["metadata"]["labels"]["mla-platform.in/tenant"], tenant);
            let mut strings = Vec::new();
            collect_strings(doc, &mut strings);
            for other in FIXTURES.iter().filter(|o| **o != tenant) {
                let theirs = format!("tenant-{other}");
                assert!(
                    !strings.iter().any(|s| s.contains(&theirs)),
                    "{kind} of {tenant} mentions {theirs}"
                );
            }
        }
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

#[test]
fn free_text_reaches_the_manifests_byte_for_byte() {
    for tenant in FIXTURES {
        let text = std::fs::read_to_string(fixture(&format!("{tenant}.yaml"))).unwrap();
        let values: Value = serde_saphyr::from_str(&text).unwrap();
        let yaml = dry_run(tenant, &fixture(&format!("{tenant}.yaml")));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        assert_eq!(config["data"]["MLA_NAME"], values["mla_name"], "{tenant}");
        assert_eq!(
            config["data"]["CONSTITUENCY"], values["constituency"],
            "{tenant}"
        );
        let ns = docs.iter().find(|d| d["kind"] == "Namespace").unwrap();
        assert_eq!(
            ns["metadata"]["annotations"]["mla-platform.in/mla-name"],
            values["mla_name"]
        );
    }
}

#[test]
fn dry_run_needs_no_kubectl_and_writes_nothing() {
    let cluster = Cluster::new();
    let out = exits(
        cluster
            .xtask(&[
                "provision",
                "kalyan",
                "--dry-run",
                "--kubectl",
                "/nonexistent/kubectl",
                "--tenants-dir",
            ])
            .arg(cluster.tenants.path())
            .arg("--values")
            .arg(fixture("kalyan.yaml"))
            .env("PATH", ""),
        0,
    );
    assert!(stdout(&out).contains("<redacted: generated on first apply, never printed>"));
    assert_eq!(
        std::fs::read_dir(cluster.tenants.path()).unwrap().count(),
        0
    );
    assert!(!cluster.state.path().join("calls.jsonl").exists());
}

#[test]
fn out_writes_one_file_per_object() {
    let dir = tempfile::tempdir().unwrap();
    exits(
        xtask_bare()
            .args(["provision", "kalyan", "--values"])
            .arg(fixture("kalyan.yaml"))
            .arg("--out")
            .arg(dir.path()),
        0,
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    insta::assert_snapshot!(names.join("\n"), @r"
    01-namespace-tenant-kalyan.yaml
    02-resourcequota-tenant-quota.yaml
    03-limitrange-tenant-limits.yaml
    04-networkpolicy-default-deny-all.yaml
    05-networkpolicy-allow-ingress-controller.yaml
    06-networkpolicy-allow-acme-http01-solver.yaml
    07-networkpolicy-allow-dns-egress.yaml
    08-networkpolicy-allow-https-egress.yaml
    09-serviceaccount-bot.yaml
    10-configmap-bot-config.yaml
    11-secret-bot-credentials.yaml
    12-persistentvolumeclaim-bot-data.yaml
    13-persistentvolumeclaim-bot-whatsapp-auth.yaml
    14-deployment-bot.yaml
    15-service-bot.yaml
    16-ingress-bot.yaml
    ");
    let joined: String = names
        .iter()
        .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap())
        .collect();
    assert_eq!(joined, dry_run("kalyan", &fixture("kalyan.yaml")));
}

/// Every way provision refuses bad input, with the exact message; none of
/// them may reach kubectl.
#[test]
fn validation_errors() {
    let cluster = Cluster::new();
    let bad_values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad_values.path(),
        "tenant: kalyan\nmla_name: \"\"\nwhatsapp_number: \"98765 43210\"\ndomains: [\"https://kalyan.in\", a.in, A.in, \"bad..in\"]\ntier: huge\nrate_limits: {messages_per_day: 0}\n",
    )
    .unwrap();
    let unknown_field = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(unknown_field.path(), "mla_nmae: x\n").unwrap();
    let bad = bad_values.path().to_str().unwrap();
    let unknown = unknown_field.path().to_str().unwrap();
    let demo = repo_root().join("tenants/demo.yaml");
    let demo = demo.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["provision", "Kalyan"],
        vec!["provision", "1kalyan"],
        vec!["provision", "kalyan-"],
        vec!["provision", "kal_yan"],
        vec![
            "provision",
            "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-xy",
        ],
        vec!["provision", ""],
        vec!["provision", "kalyan"],
        vec![
            "provision",
            "kalyan",
            "--mla-name",
            "A",
            "--constituency",
            "B\nC",
            "--whatsapp-number",
            "+0 123",
            "--domain",
            "kalyan",
        ],
        vec!["provision", "kalyan", "--values", bad],
        vec!["provision", "other", "--values", demo],
        vec!["provision", "kalyan", "--values", unknown],
        vec![
            "provision",
            "kalyan",
            "--values",
            "/nonexistent/kalyan.yaml",
        ],
        vec!["provision", "demo", "--values", demo, "--tier", "gold"],
    ];
    let mut transcript = String::new();
    for args in cases {
        let mut cmd = cluster.xtask(&args);
        cmd.arg("--kubectl").arg(common::fake_kubectl());
        let out = cmd.output().unwrap();
        let err = stderr(&out)
            .replace(bad, "BAD_VALUES.yaml")
            .replace(unknown, "UNKNOWN_FIELD.yaml")
            .replace(demo, "tenants/demo.yaml");
        transcript.push_str(&format!(
            "$ cargo xtask {}\n{}[exit {}]\n\n",
            args.join(" ")
                .replace('\n', "\\n")
                .replace(bad, "BAD_VALUES.yaml")
                .replace(unknown, "UNKNOWN_FIELD.yaml")
                .replace(demo, "tenants/demo.yaml"),
            err,
            out.status.code().unwrap()
        ));
        assert!(!out.status.success());
        assert!(stdout(&out).is_empty());
    }
    insta::assert_snapshot!("validation-errors", transcript);
    assert!(
        cluster.calls().is_empty(),
        "bad input reached kubectl: {:?}",
        cluster.calls()
    );
}

#[test]
fn two_tenants_side_by_side_share_nothing() {
    let cluster = Cluster::new();
    for tenant in ["kalyan", "mylapore"] {
        let out = exits(
            cluster.provision(tenant, &fixture(&format!("{tenant}.yaml")), &[]),
            0,
        );
        assert!(stdout(&out).contains(&format!(
            "Tenant {tenant} provisioned in tenant-{tenant} (16 changed)"
        )));
    }
    let objects = cluster.objects();
    for tenant in ["kalyan", "mylapore"] {
        let ns = format!("tenant-{tenant}");
        let mine: Vec<&Value> = objects
            .iter()
            .filter(|o| o["metadata"]["namespace"] == ns.as_str())
            .collect();
        // 15 namespaced objects from the templates, plus the bot's pod.
        assert_eq!(mine.len(), 16, "{tenant}");
        for o in &mine {
            let instance = o["metadata"]["labels"]["app.kubernetes.io/instance"].as_str();
            assert_eq!(
                instance,
                Some(tenant),
                "{} {}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
        let saved =
            std::fs::read_to_string(cluster.tenants.path().join(format!("{tenant}.yaml"))).unwrap();
        assert!(saved.starts_with("# Tenant config"), "{saved}");
    }
    let secret = |t: &str| {
        cluster
            .get("Secret", Some(&format!("tenant-{t}")), "bot-credentials")
            .unwrap()
    };
    let (a, b) = (secret("kalyan"), secret("mylapore"));
    let values = |s: &Value| -> BTreeSet<String> {
        s["data"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values(&a).len(), 3);
    assert!(
        values(&a).is_disjoint(&values(&b)),
        "two tenants got the same credentials"
    );
    let claims = |t: &str| {
        cluster
            .get(
                "PersistentVolumeClaim",
                Some(&format!("tenant-{t}")),
                "bot-data",
            )
            .unwrap()
    };
    assert_ne!(
        claims("kalyan")["metadata"]["uid"],
        claims("mylapore")["metadata"]["uid"]
    );
}

#[test]
fn re_running_changes_nothing_and_keeps_credentials() {
    let cluster = Cluster::new();
    exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 0);
    let before = cluster.objects();
    let saved = cluster.tenants.path().join("kalyan.yaml");
    // Re-run from the saved config alone: same manifests, nothing changes.
    let again = exits(cluster.provision("kalyan", &saved, &[]), 0);
    insta::assert_snapshot!(stdout(&again), @r"
    Tenant kalyan is up to date in tenant-kalyan: nothing changed (13 objects checked, 3 kept).
    The bot is rolled out and ready.
    ");
    assert_eq!(cluster.objects(), before, "a re-run changed the cluster");
    let applies: Vec<_> = cluster
        .calls()
        .into_iter()
        .filter(|c| c[0] == "apply")
        .collect();
    assert_eq!(applies.len(), 2, "one apply per run");
    // The second apply did not carry the Secret or the volumes at all.
    assert!(stderr(&again).contains("Applying 13 objects"));
}

#[test]
fn changed_config_reconfigures_only_what_changed() {
    let cluster = Cluster::new();
    cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &[])
        .assert()
        .success();
    let secret_before = cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials");
    let out = exits(
        cluster.provision(
            "kalyan",
            &fixture("kalyan.yaml"),
            &[
                "--mla-name",
                "Shrikant Shinde",
                "--tier",
                "large",
                "--reconfigure",
                "--yes",
                "--context",
                "kind-mla-dev",
            ],
        ),
        0,
    );
    let text = stdout(&out);
    assert!(text.contains("configured configmap/bot-config"), "{text}");
    // The command to grow the volume reaches the cluster this run did.
    assert!(
        text.contains(
            "with `kubectl --context kind-mla-dev --namespace tenant-kalyan patch persistentvolumeclaim bot-data"
        ),
        "{text}"
    );
    assert!(text.contains("configured deployment/bot"), "{text}");
    assert!(
        text.contains("unchanged  networkpolicy/default-deny-all"),
        "{text}"
    );
    assert!(
        text.contains(
            "kept       secret/bot-credentials (exists; credentials are never regenerated)"
        ),
        "{text}"
    );
    assert!(text.contains("kept       persistentvolumeclaim/bot-data (exists; volumes are never re-applied. It requests 5Gi but the tier now asks for 20Gi: grow it by hand if its StorageClass allows volume expansion"), "{text}");
    assert!(
        stderr(&out).contains(
            "Changing tenant kalyan (confirmed with --yes): mla_name: डॉ. श्रीकांत शिंदे → Shrikant Shinde; tier: medium → large"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials"),
        secret_before
    );
    let saved = std::fs::read_to_string(cluster.tenants.path().join("kalyan.yaml")).unwrap();
    assert!(
        saved.contains("mla_name: Shrikant Shinde") && saved.contains("tier: large"),
        "{saved}"
    );
}

#[test]
fn a_clashing_domain_or_number_is_refused_before_anything_is_applied() {
    let cluster = Cluster::new();
    cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &[])
        .assert()
        .success();
    let before = cluster.objects();
    let out = exits(
        cluster.provision(
            "mylapore",
            &fixture("mylapore.yaml"),
            &[
                "--domain",
                "new.seva.kalyan-mla.example.in",
                "--domain",
                "mylapore.example.in",
                "--whatsapp-number",
                "+919876543210",
            ],
        ),
        1,
    );
    insta::assert_snapshot!(stderr(&out), @r"
    kubectl's current context (no environment: environments.yaml names no default; pick one with --env): provisioning of tenant mylapore.
    Checking the cluster (the current context) for tenant mylapore ...
    error: tenant mylapore clashes with what is already on the cluster:
      - WhatsApp number +919876543210 is already used by tenant kalyan (namespace tenant-kalyan); each bot needs its own number
      - domain new.seva.kalyan-mla.example.in is already used by tenant kalyan (as *.seva.kalyan-mla.example.in); remove it from this tenant or offboard the other first
    Nothing was changed.
    ");
    assert_eq!(cluster.objects(), before);
    assert_eq!(
        cluster.calls().iter().filter(|c| c[0] == "apply").count(),
        1
    );
    assert!(
        !cluster.tenants.path().join("mylapore.yaml").exists(),
        "a refused tenant's config was saved"
    );
}

#[test]
fn a_namespace_that_is_not_the_tenants_is_never_adopted() {
    let cluster = Cluster::new();
    cluster
        .open()
        .put(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-kalyan"}}))
        .unwrap();
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 1);
    assert!(
        stderr(&out).contains(
            "namespace tenant-kalyan already exists but does not belong to tenant kalyan"
        )
    );
    assert_eq!(
        cluster.calls().iter().filter(|c| c[0] == "apply").count(),
        0
    );
}

#[test]
fn kubectl_is_found_on_path_and_a_missing_one_is_explained() {
    let cluster = Cluster::new();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(common::fake_kubectl(), bin.path().join("kubectl")).unwrap();
    let mut cmd = cluster.xtask(&["provision", "kalyan", "--tenants-dir"]);
    cmd.arg(cluster.tenants.path())
        .arg("--values")
        .arg(fixture("kalyan.yaml"));
    cmd.env("PATH", bin.path());
    exits(cmd, 0);

    let empty = tempfile::tempdir().unwrap();
    let mut cmd = cluster.xtask(&["provision", "kalyan", "--values"]);
    cmd.arg(fixture("kalyan.yaml")).env("PATH", empty.path());
    let out = exits(cmd, 1);
    insta::assert_snapshot!(stderr(&out), @r"
    kubectl's current context (no environment: environments.yaml names no default; pick one with --env): provisioning of tenant kalyan.
    error: kubectl was not found on PATH. Install kubectl, or point to it with --kubectl PATH or the KUBECTL environment variable. (--dry-run and --out need no kubectl and no cluster.)
    ");

    let mut cmd = cluster.xtask(&["provision", "kalyan", "--values"]);
    cmd.arg(fixture("kalyan.yaml"))
        .env("KUBECTL", "/opt/nowhere/kubectl");
    let out = cmd.output().unwrap();
    assert!(
        stderr(&out).contains(
            "kubectl `/opt/nowhere/kubectl` (from the KUBECTL environment variable) does not exist"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreachable_cluster_gives_one_clear_paragraph() {
    let cluster = Cluster::new();
    cluster.fault(fake_kubectl::Fault::unreachable("*"));
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--context", "prod"]),
        1,
    );
    insta::assert_snapshot!(stderr(&out), @r"
    Context prod (it matches no environment in environments.yaml: no environment rules apply): provisioning of tenant kalyan.
    Checking the cluster (context `prod`) for tenant kalyan ...
    error: `kubectl create` failed (exit 1) on context `prod`: The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?
    The cluster could not be reached: check the VPN or network and your kubeconfig with `kubectl --context prod cluster-info`, then run the same command again.
    Nothing was changed.
    ");
    assert!(
        cluster
            .calls()
            .iter()
            .all(|c| c[..2] == ["--context", "prod"])
    );
}

#[test]
fn an_unknown_context_is_explained() {
    let cluster = Cluster::new();
    cluster.open().set_contexts(&["staging"]).unwrap();
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--context", "prd"]),
        1,
    );
    assert!(
        stderr(&out)
            .contains("Error in configuration: context was not found for specified context: prd"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("`kubectl config get-contexts` lists the ones you have"));
}

#[test]
fn a_failed_apply_says_what_state_the_tenant_is_in_and_hides_secrets() {
    let cluster = Cluster::new();
    cluster.fault(fake_kubectl::Fault::fail("apply", 1, "Error from server (Forbidden): secrets is forbidden: User \"dev\" cannot create resource \"secrets\""));
    let out = exits(cluster.provision("kalyan", &fixture("kalyan.yaml"), &[]), 1);
    let err = stderr(&out);
    assert!(
        err.contains("error: applying tenant kalyan failed: "),
        "{err}"
    );
    assert!(err.contains("secrets is forbidden"), "{err}");
    assert!(err.contains("auth whoami"), "{err}");
    assert!(
        err.contains("Nothing was changed: all 16 objects are as they were."),
        "{err}"
    );
    assert!(!cluster.calls().iter().any(|c| c[0] == "rollout"));
}

/// An apply that fails part-way says exactly which objects it changed.
#[test]
fn a_partly_failed_apply_names_exactly_what_changed() {
    let cluster = Cluster::new();
    cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &[])
        .assert()
        .success();
    // The Deployment was recreated (by the tool's field manager) with another
    // selector, which an apply may not change: the apply fails on it, after
    // the objects before it.
    let mut deployment = cluster
        .get("Deployment", Some("tenant-kalyan"), "bot")
        .unwrap();
    assert!(
        cluster
            .open()
            .remove("Deployment", Some("tenant-kalyan"), "bot")
            .unwrap()
    );
    deployment["spec"]["selector"]["matchLabels"]["extra"] = serde_json::json!("x");
    deployment["spec"]["template"]["metadata"]["labels"]["extra"] = serde_json::json!("x");
    let deployment = xtask::object::applyable(deployment);
    cluster
        .open()
        .apply_as(xtask::names::MANAGER, vec![deployment])
        .unwrap();
    let out = exits(
        cluster.provision(
            "kalyan",
            &fixture("kalyan.yaml"),
            &["--mla-name", "Shrikant Shinde", "--reconfigure", "--yes"],
        ),
        1,
    );
    let err = stderr(&out);
    assert!(err.contains("spec.selector: field is immutable"), "{err}");
    assert!(
        err.contains("Changed before the failure: namespace/tenant-kalyan (configured), configmap/bot-config (configured). The other 11 objects are as they were."),
        "{err}"
    );
}

#[test]
fn a_bot_that_does_not_come_up_is_reported_after_apply() {
    let cluster = Cluster::new();
    cluster
        .open()
        .set_pod_state("tenant-kalyan", "bot", "CrashLoopBackOff")
        .unwrap();
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--timeout", "30s"]),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "every object of tenant kalyan was applied, but the bot did not become ready within 30s"
        ),
        "{err}"
    );
    assert!(err.contains("describe deployment/bot"), "{err}");
    assert!(cluster.calls().iter().any(|c| c
        == &[
            "rollout",
            "status",
            "deployment/bot",
            "--namespace",
            "tenant-kalyan",
            "--timeout=30s"
        ]));
}

/// The generated credentials never appear in anything provision prints.
#[test]
fn secret_values_are_never_printed() {
    let cluster = Cluster::new();
    let mut printed = String::new();
    let first = cluster
        .provision("kalyan", &fixture("kalyan.yaml"), &[])
        .output()
        .unwrap();
    printed += &(stdout(&first) + &stderr(&first));
    let secret = cluster
        .get("Secret", Some("tenant-kalyan"), "bot-credentials")
        .unwrap();
    let values: Vec<String> = secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(values.len(), 3);
    for extra in [
        &["--dry-run"][..],
        &[],
        &["--mla-name", "X", "--reconfigure", "--yes"],
    ] {
        let out = cluster
            .provision("kalyan", &fixture("kalyan.yaml"), extra)
            .output()
            .unwrap();
        printed += &(stdout(&out) + &stderr(&out));
    }
    for v in &values {
        let decoded = common::decode_base64(v);
        assert_eq!(decoded.len(), 64);
        assert!(
            !printed.contains(&decoded) && !printed.contains(v.as_str()),
            "a credential was printed"
        );
    }
    let saved = std::fs::read_to_string(cluster.tenants.path().join("kalyan.yaml")).unwrap();
    for v in &values {
        assert!(!saved.contains(&common::decode_base64(v)));
    }
}

#[test]
fn the_compatibility_script_runs_provision() {
    let script = repo_root().join("scripts/provision-tenant.sh");
    let out = exits(
        assert_cmd::Command::new(&script)
            .args(["demo", "--dry-run", "--values"])
            .arg(repo_root().join("tenants/demo.yaml"))
            .env("CARGO", env!("CARGO"))
            .env(
                "XTASK_ENVIRONMENTS",
                repo_root().join("tests/fixtures/environments.yaml"),
            ),
        0,
    );
    assert_eq!(
        stdout(&out),
        dry_run("demo", &repo_root().join("tenants/demo.yaml"))
    );
}
