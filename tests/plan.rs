//! `provision --plan` and `admin drift`: what would change, before it does,
//! with exit codes CI can gate on (0 nothing, 2 something, 1 error).

mod common;

use common::{Cluster, exits, fixture, seed_tenants_with, seeded_values, stderr, stdout};
use serde_json::Value;

#[test]
fn plan_exit_codes_and_nothing_is_changed() {
    let cluster = Cluster::new();
    let values = fixture("kalyan.yaml");
    // A new tenant: everything would be created.
    let out = exits(cluster.provision("kalyan", &values, &["--plan"]), 2);
    let text = stdout(&out);
    assert!(
        text.contains("  + deployment/bot") && text.contains("  + namespace/tenant-kalyan"),
        "{text}"
    );
    assert!(text.contains(
        "+ secret/bot-credentials in tenant-kalyan (credentials generated at apply, never shown)"
    ));
    assert!(text.contains("16 object(s) would change."), "{text}");
    assert!(cluster.is_pristine(), "a plan changed the cluster");
    assert_eq!(
        std::fs::read_dir(cluster.tenants.path()).unwrap().count(),
        0,
        "a plan saved the config"
    );

    cluster.provision("kalyan", &values, &[]).assert().success();
    let before = cluster.objects();
    let out = exits(cluster.provision("kalyan", &values, &["--plan"]), 0);
    assert!(stdout(&out).contains("no changes: the cluster matches the config."));

    // Another MLA name for a live tenant: refused, as the apply would be.
    let out = exits(
        cluster.provision(
            "kalyan",
            &values,
            &["--plan", "--mla-name", "Shrikant Shinde"],
        ),
        1,
    );
    assert!(
        stderr(&out).contains("  - mla_name: डॉ. श्रीकांत शिंदे → Shrikant Shinde\nIf tenant kalyan really changes hands, provision it with --reconfigure"),
        "{}",
        stderr(&out)
    );
    // A change of name: only what depends on it, and the change itself.
    let out = exits(
        cluster.provision(
            "kalyan",
            &values,
            &["--plan", "--mla-name", "Shrikant Shinde", "--reconfigure"],
        ),
        2,
    );
    let text = stdout(&out);
    assert!(
        text.contains("  changes an apply asks to confirm (--yes without a terminal):\n    mla_name: डॉ. श्रीकांत शिंदे → Shrikant Shinde\n"),
        "{text}"
    );
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  ~ ") || l.starts_with("  + "))
        .collect();
    assert_eq!(
        summary,
        [
            "  ~ namespace/tenant-kalyan",
            "  ~ configmap/bot-config",
            "  ~ deployment/bot"
        ],
        "{text}"
    );
    assert!(text.contains("+  MLA_NAME: Shrikant Shinde"), "{text}");
    assert_eq!(cluster.objects(), before, "a plan changed the cluster");
    // The Secret's values appear nowhere.
    let secret = cluster
        .get("Secret", Some("tenant-kalyan"), "bot-credentials")
        .unwrap();
    for v in secret["data"].as_object().unwrap().values() {
        let v = v.as_str().unwrap();
        assert!(!text.contains(v) && !text.contains(&common::decode_base64(v)));
    }
}

/// The operator's own diff program (`KUBECTL_EXTERNAL_DIFF`, which kubectl
/// runs instead of `diff -u -N`) must not hide a change from the plan, and a
/// diff the tool cannot read is an error, never "no changes".
#[test]
fn a_plan_reads_kubectls_own_diff_whatever_the_operator_prefers() {
    let cluster = Cluster::new();
    let values = fixture("kalyan.yaml");
    cluster.provision("kalyan", &values, &[]).assert().success();
    let out = exits(
        cluster
            .provision(
                "kalyan",
                &values,
                &["--plan", "--mla-name", "Shrikant Shinde", "--reconfigure"],
            )
            // `true` prints nothing and exits 0: kubectl would report no difference.
            .env("KUBECTL_EXTERNAL_DIFF", "true"),
        2,
    );
    assert!(
        stdout(&out).contains("  ~ configmap/bot-config")
            && stdout(&out).contains("+  MLA_NAME: Shrikant Shinde"),
        "{}",
        stdout(&out)
    );

    cluster.fault(fake_kubectl::Fault {
        stdout: "Only in /tmp/LIVE-1: v1.ConfigMap.tenant-kalyan.bot-config\n".to_owned(),
        ..fake_kubectl::Fault::fail("diff", 1, "")
    });
    let out = exits(cluster.provision("kalyan", &values, &["--plan"]), 1);
    assert!(
        stderr(&out).contains(
            "`kubectl diff` reported differences in a form this tool cannot read (0 file header(s), 0 of them for the tenant's objects)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_errors_exit_1() {
    let cluster = Cluster::new();
    cluster.fault(fake_kubectl::Fault::unreachable("*"));
    let out = exits(
        cluster.provision("kalyan", &fixture("kalyan.yaml"), &["--plan"]),
        1,
    );
    assert!(
        stderr(&out).contains("could not be reached"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn drift_finds_a_hand_edit_and_configs_without_tenants() {
    let cluster = Cluster::new();
    for t in ["kalyan", "mylapore"] {
        cluster
            .provision(t, &fixture(&format!("{t}.yaml")), &[])
            .assert()
            .success();
    }
    let drift = || {
        cluster
            .admin(&["drift", "-o", "json", "--tenants-dir"])
            .arg(cluster.tenants.path())
            .output()
            .unwrap()
    };
    let out = drift();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A hand edit through kubectl, by another field manager (an Update, as
    // `kubectl edit` or `patch` make: an apply as another manager would be
    // refused with a conflict on a real server).
    cluster.kubectl(&[
        "patch",
        "configmap",
        "bot-config",
        "--namespace",
        "tenant-mylapore",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"RATE_LIMIT_MESSAGES_PER_DAY":"999999"}}"#,
    ]);
    std::fs::copy(
        common::repo_root().join("tenants/demo.yaml"),
        cluster.tenants.path().join("demo.yaml"),
    )
    .unwrap();
    let out = drift();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let states: Vec<(String, String)> = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("demo".into(), "not-on-cluster".into()),
            ("kalyan".into(), "in-sync".into()),
            ("mylapore".into(), "drifted".into())
        ]
    );
    assert_eq!(
        report["tenants"][2]["details"],
        serde_json::json!([
            "~ configmap/bot-config (.data.RATE_LIMIT_MESSAGES_PER_DAY is set by \"kubectl-patch\"; provision takes it back only with --force-conflicts)"
        ])
    );
}

/// `n` tenants seeded into a fake cluster, each with its committed config;
/// the second one (`t0001`) was applied with a site tagline its config no
/// longer has.
fn fleet(n: usize) -> Cluster {
    let cluster = Cluster::new();
    let names: Vec<String> = (0..n).map(|i| format!("t{i:04}")).collect();
    seed_tenants_with(&cluster, &names, |i, values| {
        if i == 1 {
            values.site.tagline = Some("Applied once, since dropped from the config".into());
        }
    });
    for (i, name) in names.iter().enumerate() {
        cluster.commit_values(name, &seeded_values(i, name));
    }
    cluster
}

/// One tenant's row of `admin drift -o json`: name, state, details.
type DriftRow = (String, String, Value);

/// `admin drift ARGS -o json` on `cluster`: its exit code, each tenant's
/// row, and the kubectl calls it made.
fn drift_report(cluster: &Cluster, args: &[&str]) -> (i32, Vec<DriftRow>, Vec<Vec<String>>) {
    let before = cluster.calls().len();
    let out = cluster
        .admin(&["drift", "-o", "json", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .args(args)
        .output()
        .unwrap();
    // No terminal: no progress, nothing at all on stderr.
    assert_eq!(stderr(&out), "", "{}", stdout(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
                t["details"].clone(),
            )
        })
        .collect();
    let calls = cluster.calls().split_off(before);
    (out.status.code().unwrap(), rows, calls)
}

/// `admin drift` reads the cluster once, whatever the fleet's size, and
/// finds each kind of change on exactly the tenant that has it.
#[test]
fn drift_reads_the_cluster_once_and_finds_each_change_on_its_tenant() {
    let small = fleet(3);
    let cluster = fleet(300);
    let (code, rows, small_calls) = drift_report(&small, &[]);
    // t0001's dropped tagline is drift at any size.
    assert_eq!(code, 2);
    assert_eq!(rows.len(), 3);
    let (code, rows, calls) = drift_report(&cluster, &[]);
    assert_eq!(code, 2);
    assert_eq!(rows.len(), 300);
    // The same reads at 3 tenants and at 300: three `get`s.
    let verbs =
        |calls: &[Vec<String>]| -> Vec<String> { calls.iter().map(|c| c[..2].join(" ")).collect() };
    assert_eq!(verbs(&calls), verbs(&small_calls));
    assert_eq!(
        verbs(&calls),
        [
            "get namespaces",
            "get resourcequota,limitrange,networkpolicy,serviceaccount,configmap,secret,persistentvolumeclaim,deployment,service",
            "get ingresses"
        ]
    );

    // A hand edit of a field provision set (it is kubectl-patch's now), on t0100.
    cluster.kubectl(&[
        "patch",
        "configmap",
        "bot-config",
        "--namespace",
        "tenant-t0100",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"RATE_LIMIT_MESSAGES_PER_DAY":"1"}}"#,
    ]);
    // Fields of other managers on t0200: the replica count (the scale
    // subresource) and an annotation of someone else's. Not drift.
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        "tenant-t0200",
        "--replicas=0",
    ]);
    cluster.kubectl(&[
        "annotate",
        "configmap/bot-config",
        "--namespace",
        "tenant-t0200",
        "--overwrite",
        "example.org/reviewed=yes",
    ]);
    let (code, rows, again) = drift_report(&cluster, &[]);
    assert_eq!(code, 2);
    assert_eq!(verbs(&again), verbs(&calls));
    let drifted: Vec<(&str, &Value)> = rows
        .iter()
        .filter(|(_, state, _)| state != "in-sync")
        .map(|(name, state, details)| {
            assert_eq!(state, "drifted", "{name}: {details}");
            (name.as_str(), details)
        })
        .collect();
    let hand_edit = serde_json::json!([
        "~ configmap/bot-config (.data.RATE_LIMIT_MESSAGES_PER_DAY is set by \"kubectl-patch\"; provision takes it back only with --force-conflicts)"
    ]);
    // The bot's template carries the config's checksum: it changes too.
    let dropped = serde_json::json!(["~ configmap/bot-config", "~ deployment/bot"]);
    assert_eq!(
        drifted,
        [("t0001", &dropped), ("t0100", &hand_edit)],
        "only t0001 and t0100 drifted"
    );
    assert!(
        rows.iter()
            .any(|(name, state, _)| name == "t0200" && state == "in-sync")
    );

    // The API server's own dry run says the same of each of them.
    let (code, server_rows, server_calls) =
        drift_report(&cluster, &["--server", "t0001", "t0100", "t0200"]);
    assert_eq!(code, 2);
    let picked: Vec<_> = rows
        .iter()
        .filter(|(name, _, _)| ["t0001", "t0100", "t0200"].contains(&name.as_str()))
        .cloned()
        .collect();
    assert_eq!(server_rows, picked);
    assert_eq!(
        server_calls.iter().filter(|c| c[0] == "diff").count(),
        3,
        "one server-side diff per named tenant"
    );
    // Named tenants alone, from the one read.
    let (_, named, named_calls) = drift_report(&cluster, &["t0100"]);
    assert_eq!(named, picked[1..2]);
    assert_eq!(verbs(&named_calls), verbs(&calls));
}

#[test]
fn drift_refuses_unknown_tenants_and_server_without_names() {
    let cluster = fleet(2);
    let out = exits(
        cluster
            .admin(&["drift", "t0000", "nobody", "--tenants-dir"])
            .arg(cluster.tenants.path()),
        1,
    );
    assert!(
        stderr(&out).contains("tenant nobody is neither on the cluster nor in"),
        "{}",
        stderr(&out)
    );
    // Exit 1, not 2: 2 would read as "drift found".
    let calls = cluster.calls().len();
    let out = exits(cluster.admin(&["drift", "--server"]), 1);
    assert!(
        stderr(&out).contains(
            "--server compares named tenants, with a server-side dry run each: name them"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cluster.calls().len(),
        calls,
        "refused before any kubectl call"
    );

    // The one read needs to list every tenant's objects in all namespaces.
    cluster.open().deny("list", "secrets", None).unwrap();
    let out = exits(
        cluster
            .admin(&["drift", "--tenants-dir"])
            .arg(cluster.tenants.path()),
        1,
    );
    let text = stderr(&out);
    assert!(
        text.contains("could not read every tenant at once")
            && text.contains("admin drift --server TENANT...")
            && text.contains("cannot list resource \"secrets\""),
        "{text}"
    );
}

/// `provision --all`: every committed tenant, one line each; a bad one
/// fails alone and the exit status says so.
#[test]
fn provision_all_applies_the_good_and_reports_the_bad() {
    let cluster = Cluster::new();
    let dir = cluster.tenants.path();
    for t in ["kalyan", "mylapore"] {
        std::fs::copy(fixture(&format!("{t}.yaml")), dir.join(format!("{t}.yaml"))).unwrap();
    }
    std::fs::write(
        dir.join("broken.yaml"),
        "tenant: broken\nmla_name: X\nconstituency: Y\nwhatsapp_number: \"12345\"\ndomains: [broken.example.in]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("offboarded")).unwrap();
    std::fs::write(dir.join("offboarded/old.yaml"), "tenant: old\n").unwrap();
    let out = exits(
        cluster
            .xtask(&["provision", "--all", "--jobs", "2", "--tenants-dir"])
            .arg(dir)
            .env("KUBECTL", common::fake_kubectl()),
        1,
    );
    // One line per tenant; a failure's reasons are indented under it.
    let text = stdout(&out);
    assert!(
        text.contains("broken: FAILED: tenant `broken` cannot be provisioned:\n      - whatsapp_number: WhatsApp number `12345` must be in international E.164 form"),
        "{text}"
    );
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(str::to_owned)
        .collect();
    let summary = lines.pop().unwrap();
    lines.sort();
    assert_eq!(
        summary,
        "3 tenants: 2 applied, 0 up to date, 0 skipped, 1 failed."
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("Tenant kalyan provisioned in tenant-kalyan"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("Tenant mylapore provisioned in tenant-mylapore"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("broken: FAILED: tenant `broken` cannot be provisioned"),
        "{lines:?}"
    );
    assert!(
        stderr(&out).contains(&format!(
            "1 of 3 tenants failed (why is under each); the others were applied or up to date. Fix those and run the same command again, or that one alone with `cargo xtask provision broken --tenants-dir {}`",
            dir.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        cluster
            .get("Deployment", Some("tenant-kalyan"), "bot")
            .is_some()
    );
    assert!(
        cluster
            .get("Deployment", Some("tenant-mylapore"), "bot")
            .is_some()
    );
    assert!(
        cluster.get("Namespace", None, "tenant-old").is_none(),
        "offboarded configs must be skipped"
    );
    // Running it again changes nothing.
    std::fs::remove_file(dir.join("broken.yaml")).unwrap();
    let again = exits(
        cluster
            .xtask(&["provision", "--all", "--tenants-dir"])
            .arg(dir)
            .env("KUBECTL", common::fake_kubectl()),
        0,
    );
    assert!(
        stdout(&again)
            .lines()
            .filter(|l| l.contains("is up to date"))
            .count()
            == 2,
        "{}",
        stdout(&again)
    );
}
