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

/// Fences that do not do what they seem are found, each at its own line
/// with the fix: text after a closing fence (CommonMark does not close the
/// block there, and the guide's `### Apply` once rendered as code), a
/// misspelt language and none; a longer fence holding shorter ones and a
/// tilde block holding backticks are content, not mistakes.
#[test]
fn fences_that_do_not_close_or_name_no_known_language_are_found() {
    let (code, out) = check(&["tests/fixtures/docs/fences.md"]);
    assert_eq!(code, 1, "{out}");
    let file = "tests/fixtures/docs/fences.md";
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with(file)).collect();
    let at = |line: usize| {
        problems
            .iter()
            .find(|p| p.starts_with(&format!("{file}:{line}: ")))
            .unwrap_or_else(|| panic!("nothing at line {line} in\n{out}"))
    };
    assert!(
        at(5).contains("\"``` then apply it\" does not close the code block opened at line 3")
            && at(5).contains("put ``` alone on this line and \"then apply it\" on the next"),
        "{}",
        at(5)
    );
    assert!(
        at(13).contains("\"```text\" does not close the code block opened at line 11")
            && at(13).contains("end this one first with ``` alone on a line"),
        "{}",
        at(13)
    );
    assert!(at(17).contains("language `consloe` is not a known one: use one of console, text"));
    assert!(at(21).contains("code block has no language"));
    // Nothing else: one report per swallowed block, and the ```` and ~~~
    // blocks at the end are well-formed.
    assert_eq!(problems.len(), 4, "{out}");
    assert!(out.contains("error: 4 problem(s)"), "{out}");
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
