//! `cargo xtask completions` and `cargo xtask man`: the scripts for bash,
//! zsh and fish name the subcommands and offer the committed tenants and
//! the environments as values; bash's really completes them; the man page
//! renders.

mod common;

use std::path::Path;

use common::{exits, stdout, xtask_bare};

/// A tenants directory with two configs and a file whose name is not a
/// valid tenant name.
fn tenants_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "alpha.yaml",
        "bravo-two.yaml",
        "Not_A_Tenant.yaml",
        "notes.txt",
    ] {
        std::fs::write(dir.path().join(file), "").unwrap();
    }
    dir
}

fn script(shell: &str, dir: &Path) -> String {
    let mut cmd = xtask_bare();
    cmd.args(["completions", shell, "--tenants-dir"]).arg(dir);
    stdout(&exits(cmd, 0))
}

#[test]
fn scripts_name_the_subcommands_tenants_and_environments() {
    let dir = tenants_dir();
    for shell in ["bash", "zsh", "fish"] {
        let text = script(shell, dir.path());
        for word in [
            "provision",
            "admin",
            "list",
            "restart",
            "audit",
            "backup",
            "restore",
            "offboard",
            "docs",
            "completions",
            // Values: the tenants directory's configs, and the test
            // environments (tests/fixtures/environments.yaml).
            "alpha",
            "bravo-two",
            "prod",
        ] {
            assert!(text.contains(word), "{shell}: no {word}");
        }
        // Fish names a long flag without its dashes.
        for flag in ["env", "tenant", "since", "limit"] {
            let written = if shell == "fish" {
                format!("-l {flag} ")
            } else {
                format!("--{flag}")
            };
            assert!(text.contains(&written), "{shell}: no {written}");
        }
        assert!(
            !text.contains("Not_A_Tenant"),
            "{shell}: offers an invalid name"
        );
        assert!(
            !text.contains("notes"),
            "{shell}: offers a file that is no config"
        );
    }
    // zsh and fish tie the names to the tenant arguments, not just anywhere.
    assert!(
        script("zsh", dir.path()).contains(":tenant -- The tenant to show:(alpha bravo-two)"),
        "zsh"
    );
    assert!(
        script("fish", dir.path()).contains(
            "__fish_seen_subcommand_from audit\" -l tenant -d 'Only this tenant\\'s entries' -r -f -a \"alpha"
        ),
        "fish"
    );
}

/// The bash script, sourced into a real bash, completes subcommands, a
/// tenant argument and --env as an operator pressing Tab would see.
#[test]
fn bash_completes_tenants_and_environments() {
    let dir = tenants_dir();
    let file = dir.path().join("xtask.bash");
    std::fs::write(&file, script("bash", dir.path())).unwrap();
    let complete = |words: &[&str]| -> Vec<String> {
        let line = words.join(" ");
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             _xtask xtask '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let admin = complete(&["xtask", "admin", ""]);
    for sub in ["list", "restart", "audit", "offboard"] {
        assert!(admin.contains(&sub.to_owned()), "{admin:?}");
    }
    let restart = complete(&["xtask", "admin", "restart", ""]);
    assert!(
        restart.contains(&"alpha".to_owned()) && restart.contains(&"bravo-two".to_owned()),
        "{restart:?}"
    );
    assert_eq!(complete(&["xtask", "admin", "show", "br"]), ["bravo-two"]);
    assert_eq!(
        complete(&["xtask", "admin", "list", "--env", ""]),
        ["dev", "prod"]
    );
    assert_eq!(
        complete(&["xtask", "admin", "audit", "--tenant", ""]),
        ["alpha", "bravo-two"]
    );
}

/// Without a tenants directory the script still completes everything else.
#[test]
fn a_missing_tenants_directory_leaves_tenant_arguments_free() {
    let dir = tempfile::tempdir().unwrap();
    let text = script("fish", &dir.path().join("none"));
    assert!(text.contains("restart") && !text.contains("alpha"));
}

#[test]
fn the_man_page_renders_and_one_per_command_can_be_written() {
    let page = stdout(&exits(xtask_bare().arg("man"), 0));
    assert!(page.contains(".TH xtask 1"), "{page}");
    assert!(page.contains("cargo xtask"), "{page}");
    assert!(
        page.contains("provision") && page.contains("admin"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let mut cmd = xtask_bare();
    cmd.args(["man", "--out"]).arg(&out);
    exits(cmd, 0);
    for page in [
        "xtask.1",
        "xtask-provision.1",
        "xtask-admin-audit.1",
        "xtask-completions.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{page}");
    }
    let audit = std::fs::read_to_string(out.join("xtask-admin-audit.1")).unwrap();
    assert!(audit.contains("\\-\\-since"), "{audit}");
}
