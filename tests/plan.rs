//! `provision --plan` and `admin drift`: what would change, before it does,
//! with exit codes CI can gate on (0 nothing, 2 something, 1 error).

mod common;

use common::{Cluster, exits, fixture, stderr, stdout};

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
    assert_eq!(summary, "3 tenants: 2 applied, 0 skipped, 1 failed.");
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
            "1 of 3 tenants failed (why is under each); the others were applied. Fix those and run the same command again, or one alone with `cargo xtask provision <TENANT> --values {}/<TENANT>.yaml`",
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
