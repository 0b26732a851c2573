//! `cargo xtask docs check` and `docs cli`: each kind of planted mistake is
//! reported with its file and line, a clean page passes, and the real
//! documentation passes.

mod common;

use common::{repo_root, stderr, stdout, xtask_bare};

fn check(files: &[&str]) -> (i32, String) {
    let mut cmd = xtask_bare();
    cmd.args(["docs", "check"]);
    for f in files {
        cmd.arg(repo_root().join(f));
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap(), stdout(&out) + &stderr(&out))
}

#[test]
fn every_planted_mistake_is_found_with_its_line() {
    let (code, out) = check(&["tests/fixtures/docs/broken.md"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn a_clean_page_passes() {
    let (code, out) = check(&["tests/fixtures/docs/clean.md"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_real_docs_pass_and_cover_every_subcommand() {
    let out = xtask_bare().args(["docs", "check"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let guide = std::fs::read_to_string(repo_root().join("docs/tenant-onboarding.md")).unwrap();
    for topic in [
        "Before you start",
        "The WhatsApp number",
        "DNS and TLS",
        "Website content",
        "Provision the tenant",
        "Set up backups",
        "Day-2 operations",
        "Offboarding",
        "Troubleshooting",
    ] {
        assert!(
            guide.contains(&format!("## {topic}")),
            "the guide has no section {topic}"
        );
    }
    for failure in [
        "Invalid name",
        "Domain already in use",
        "Pod not starting",
        "Certificate not issued",
        "QR code expired",
        "PVC pending",
        "Restore refused",
    ] {
        assert!(
            guide.contains(&format!("### {failure}")),
            "troubleshooting misses {failure}"
        );
    }
}

/// docs/cli.md is generated; a stale copy fails with the command that fixes it.
#[test]
fn the_cli_reference_is_up_to_date() {
    let out = xtask_bare()
        .args(["docs", "cli", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\ndocs/cli.md is stale: run `cargo xtask docs cli` and commit it",
        stderr(&out)
    );
}

/// A documented `--context` that is no environment's context teaches a
/// command without the environment's rules: refused with its line and the
/// fix; an environment's context, kubectl's own contexts and placeholders
/// pass.
#[test]
fn a_context_of_no_environment_is_refused() {
    let (code, out) = check(&["tests/fixtures/docs/contexts.md"]);
    assert_eq!(code, 1, "{out}");
    let problems: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("tests/fixtures/docs/contexts.md:"))
        .collect();
    assert_eq!(problems.len(), 2, "{out}");
    assert!(
        problems[0].starts_with(
            "tests/fixtures/docs/contexts.md:5: `--context prod` matches no environment's context \
             in environments.yaml (dev: kind-mla-dev, prod: prod-mumbai, sit: mla-sit)"
        ) && problems[0].contains("write `--env NAME` (dev, prod, sit) instead"),
        "{out}"
    );
    assert!(
        problems[1].starts_with("tests/fixtures/docs/contexts.md:9: `--context staging`"),
        "{out}"
    );
}
