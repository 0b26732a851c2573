//! Re-provisioning a tenant that exists: its committed config is the start,
//! flags change single fields, and what would change who the bot is, its
//! tier or its volumes is shown, confirmed or refused before anything is
//! changed. The real binary against the fake kubectl.

mod common;

use common::{Cluster, exits, stderr, stdout};
use serde_json::Value;

/// Kalyan (tier medium, a site section, a rate-limit override) provisioned
/// from its committed config.
fn kalyan() -> (Cluster, std::path::PathBuf) {
    let cluster = Cluster::new();
    let config = cluster.commit_fixture("kalyan");
    let out = exits(cluster.provision_committed("kalyan", &[]), 0);
    assert!(
        stderr(&out).contains(&format!(
            "Starting from the committed config {}",
            config.display()
        )),
        "{}",
        stderr(&out)
    );
    (cluster, config)
}

fn applies(cluster: &Cluster) -> usize {
    cluster.calls().iter().filter(|c| c[0] == "apply").count()
}

fn quota(cluster: &Cluster) -> Value {
    cluster
        .get("ResourceQuota", Some("tenant-kalyan"), "tenant-quota")
        .unwrap()["spec"]["hard"]
        .clone()
}

/// Runs `cmd`, which must be refused with exit 1 having changed neither the
/// cluster nor the committed config; returns its stderr.
#[track_caller]
fn refused(cluster: &Cluster, config: &std::path::Path, cmd: assert_cmd::Command) -> String {
    let before = cluster.objects();
    let text = std::fs::read(config).ok();
    let applied = applies(cluster);
    let out = exits(cmd, 1);
    let err = stderr(&out);
    assert!(err.ends_with("Nothing was changed.\n"), "{err}");
    assert_eq!(
        cluster.objects(),
        before,
        "a refused provision changed the cluster"
    );
    assert_eq!(applies(cluster), applied, "a refused provision applied");
    assert_eq!(
        std::fs::read(config).ok(),
        text,
        "a refused provision changed the config"
    );
    err
}

/// The operator's report: one flag on a committed tenant used to rewrite its
/// config as tier small with no site, and shrink its quota.
#[test]
fn re_provision_with_flags_keeps_tier_site_and_quota() {
    let (cluster, config) = kalyan();
    let medium = quota(&cluster);
    assert_eq!(medium["requests.cpu"], "2", "{medium}");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.starts_with("# Fixture: Marathi names"),
        "a config that already said the same was rewritten:\n{written}"
    );

    let flags = [
        "--non-interactive",
        "--mla-name",
        "डॉ. श्रीकांत शिंदे",
        "--domain",
        "seva.kalyan.example.in",
    ];
    // A --domain list replaces the live list: that takes websites down, so
    // it is listed and needs a yes.
    let refused = exits(cluster.provision_committed("kalyan", &flags), 1);
    assert!(
        stderr(&refused).contains(
            "  - domains: kalyan-mla.example.in,www.kalyan-mla.example.in,*.seva.kalyan-mla.example.in → seva.kalyan.example.in\n"
        ),
        "{}",
        stderr(&refused)
    );
    let out = exits(
        cluster.provision_committed("kalyan", &[&flags[..], &["--yes"]].concat()),
        0,
    );
    assert!(
        stdout(&out).contains("configured ingress/bot"),
        "{}",
        stdout(&out)
    );
    let saved = std::fs::read_to_string(&config).unwrap();
    let values: Value = serde_saphyr::from_str(&saved).unwrap();
    assert_eq!(values["tier"], "medium", "{saved}");
    assert_eq!(
        values["domains"],
        serde_json::json!(["seva.kalyan.example.in"]),
        "a --domain list replaces the list"
    );
    assert_eq!(values["site"]["tagline"], "कल्याणच्या प्रत्येक गल्लीसाठी");
    assert!(
        values["site"]["about"]
            .as_str()
            .unwrap()
            .contains("{{ not a template }}"),
        "{saved}"
    );
    assert_eq!(
        values["site"]["office_hours"],
        "सोमवार ते शनिवार, 10:00–17:00"
    );
    assert_eq!(values["rate_limits"]["messages_per_minute_per_user"], 15);
    assert_eq!(quota(&cluster), medium, "the quota left tier medium");
    let ns = cluster.get("Namespace", None, "tenant-kalyan").unwrap();
    assert_eq!(
        ns["metadata"]["annotations"]["mla-platform.in/tier"],
        "medium"
    );
    let config_map = cluster
        .get("ConfigMap", Some("tenant-kalyan"), "bot-config")
        .unwrap();
    let site = serde_json::to_string(&config_map["data"]).unwrap();
    assert!(site.contains("कल्याणच्या प्रत्येक गल्लीसाठी"), "{site}");
}

#[test]
fn another_mla_name_or_number_for_a_live_tenant_is_refused() {
    let (cluster, config) = kalyan();
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed("kalyan", &["--mla-name", "Ravi Deshmukh", "--yes"]),
    );
    assert!(
        err.contains(
            "error: tenant kalyan is live in tenant-kalyan as another MLA or number; provisioning would \
             turn that running bot, with its database and WhatsApp session, into this one:\n  \
             - mla_name: डॉ. श्रीकांत शिंदे → Ravi Deshmukh\n\
             If tenant kalyan really changes hands, provision it with --reconfigure \
             (`cargo xtask provision kalyan --reconfigure` and the other flags you gave); its database and \
             WhatsApp session are kept. If this is another tenant, choose another tenant name.\n"
        ),
        "{err}"
    );

    // Another operator, without the committed config, reusing the name:
    // only the cluster knows the tenant, and it is enough to refuse.
    std::fs::remove_file(&config).unwrap();
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed(
            "kalyan",
            &[
                "--mla-name",
                "डॉ. श्रीकांत शिंदे",
                "--constituency",
                "Kalyan",
                "--whatsapp-number",
                "+91 90000 11111",
                "--domain",
                "other.example.in",
            ],
        ),
    );
    assert!(
        err.contains("  - whatsapp_number: +919876543210 → +919000011111\n"),
        "{err}"
    );
    assert!(!err.contains("mla_name:"), "{err}");
    // --plan reads the cluster the same way and says the same.
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed(
            "kalyan",
            &[
                "--plan",
                "--mla-name",
                "Ravi Deshmukh",
                "--constituency",
                "Kalyan",
                "--whatsapp-number",
                "+91 90000 11111",
                "--domain",
                "other.example.in",
            ],
        ),
    );
    assert!(
        err.contains("  - mla_name: डॉ. श्रीकांत शिंदे → Ravi Deshmukh\n  - whatsapp_number: +919876543210 → +919000011111\n"),
        "{err}"
    );
}

#[test]
fn reconfigure_hands_a_tenant_over_and_keeps_its_data() {
    let (cluster, config) = kalyan();
    let secret = cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials");
    let claim_uid = |c: &Cluster| {
        c.get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")
            .unwrap()["metadata"]["uid"]
            .clone()
    };
    let uid = claim_uid(&cluster);
    let change = ["--whatsapp-number", "+91 90000 11111", "--reconfigure"];
    // Without a terminal, the change still needs a yes.
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed("kalyan", &change),
    );
    assert!(
        err.contains(
            "error: provisioning tenant kalyan would change:\n  \
             - whatsapp_number: +919876543210 → +919000011111\n\
             There is no terminal to ask: pass --yes to make these changes"
        ),
        "{err}"
    );

    let mut cmd = cluster.provision_committed("kalyan", &change);
    cmd.arg("--yes");
    exits(cmd, 0);
    let ns = cluster.get("Namespace", None, "tenant-kalyan").unwrap();
    assert_eq!(
        ns["metadata"]["annotations"]["mla-platform.in/whatsapp-number"],
        "+919000011111"
    );
    assert_eq!(
        cluster.get("Secret", Some("tenant-kalyan"), "bot-credentials"),
        secret
    );
    assert_eq!(claim_uid(&cluster), uid);
    let saved: Value = serde_saphyr::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(saved["whatsapp_number"], "+919000011111");
    assert_eq!(saved["tier"], "medium");
    assert_eq!(saved["site"]["tagline"], "कल्याणच्या प्रत्येक गल्लीसाठी");
    // The new number is now the tenant's: the same run again changes nothing.
    let again = exits(cluster.provision_committed("kalyan", &[]), 0);
    assert!(
        stdout(&again).contains("is up to date"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_change_of_tier_needs_a_yes_and_a_bigger_tier_keeps_the_volumes() {
    let (cluster, config) = kalyan();
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed("kalyan", &["--tier", "large"]),
    );
    assert!(err.contains("  - tier: medium → large\n"), "{err}");
    assert!(err.contains("pass --yes"), "{err}");

    // The committed config says large, the cluster medium: still a change.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("tier: medium", "tier: large")).unwrap();
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed("kalyan", &[]),
    );
    assert!(err.contains("  - tier: medium → large\n"), "{err}");

    let out = exits(cluster.provision_committed("kalyan", &["--yes"]), 0);
    assert_eq!(quota(&cluster)["requests.cpu"], "4");
    // The claims are never re-applied: each says it is smaller than the tier.
    assert!(
        stdout(&out).contains(
            "kept       persistentvolumeclaim/bot-data (exists; volumes are never re-applied. It requests 5Gi \
             but the tier now asks for 20Gi: grow it by hand if its StorageClass allows volume expansion"
        ),
        "{}",
        stdout(&out)
    );
    let claim = cluster
        .get("PersistentVolumeClaim", Some("tenant-kalyan"), "bot-data")
        .unwrap();
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
}

#[test]
fn a_tier_with_smaller_volumes_is_refused() {
    let (cluster, config) = kalyan();
    for extra in [
        &["--tier", "small", "--yes"][..],
        &["--tier", "small", "--plan"],
    ] {
        let err = refused(
            &cluster,
            &config,
            cluster.provision_committed("kalyan", extra),
        );
        assert!(
            err.contains(
                "error: tenant kalyan cannot move to tier small: Kubernetes cannot shrink a \
                 PersistentVolumeClaim, and the tier's volumes are smaller than the ones the tenant has:\n  \
                 - persistentvolumeclaim/bot-data requests 5Gi; tier small asks for 1Gi\n  \
                 - persistentvolumeclaim/bot-whatsapp-auth requests 512Mi; tier small asks for 256Mi\n\
                 Keep tier medium (the tenant's tier now), or choose a tier whose volumes are at least as big"
            ),
            "{err}"
        );
        assert!(!err.contains("by hand"), "{err}");
    }
}

/// `--all` applies the committed configs: a tenant whose config names
/// another MLA than the live one fails alone; the others are applied.
#[test]
fn provision_all_reports_an_identity_change_per_tenant() {
    let (cluster, config) = kalyan();
    cluster.commit_fixture("mylapore");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("mla_name: \"डॉ. श्रीकांत शिंदे\"", "mla_name: Ravi Deshmukh"),
    )
    .unwrap();
    let before = cluster.get("Namespace", None, "tenant-kalyan");
    let out = exits(
        cluster
            .xtask(&["provision", "--all", "--tenants-dir"])
            .arg(cluster.tenants.path())
            .env("KUBECTL", common::fake_kubectl()),
        1,
    );
    let text = stdout(&out);
    assert!(
        text.contains(
            "kalyan: FAILED: tenant kalyan is live in tenant-kalyan as another MLA or number; provisioning \
             would turn that running bot, with its database and WhatsApp session, into this one:\n      \
             - mla_name: डॉ. श्रीकांत शिंदे → Ravi Deshmukh\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Tenant mylapore provisioned in tenant-mylapore"),
        "{text}"
    );
    assert_eq!(cluster.get("Namespace", None, "tenant-kalyan"), before);
}

/// Where an environment serves its own host names (dev), a new domain list
/// changes nothing live, but the committed file that production reads
/// would lose its domains: listed and confirmed all the same.
#[test]
fn a_domain_change_is_confirmed_where_the_environment_serves_other_names() {
    let cluster = Cluster::new();
    let config = cluster.commit_fixture("mylapore");
    exits(
        cluster.provision_committed("mylapore", &["--env", "dev"]),
        0,
    );
    let flags = [
        "--env",
        "dev",
        "--non-interactive",
        "--domain",
        "other.example.in",
    ];
    let err = refused(
        &cluster,
        &config,
        cluster.provision_committed("mylapore", &flags),
    );
    assert!(
        err.contains("  - domains: xn--kxae4bafwg.xn--h2brj9c → other.example.in (in the committed config; this environment serves its own host names)\n"),
        "{err}"
    );
    exits(
        cluster.provision_committed("mylapore", &[&flags[..], &["--yes"]].concat()),
        0,
    );
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("- other.example.in"), "{saved}");
}
