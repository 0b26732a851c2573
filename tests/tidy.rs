//! Checks of the repository itself, run by plain `cargo test`: each failure
//! is `path:line: what is wrong`, so it can be fixed without reading this file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "snapshots") {
                out.extend(files(&path, exts));
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn report(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut problems = Vec::new();
    for dir in ["xtask", "fake-kubectl", "tests"] {
        for path in files(&root().join(dir), &[".rs"]) {
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.starts_with("//!") {
                problems.push(format!(
                    "{}:1: start the file with a `//!` line saying what it is for",
                    rel(&path)
                ));
            }
        }
    }
    report(problems);
}

#[test]
fn every_template_starts_with_a_comment() {
    let mut problems = Vec::new();
    for path in files(&root().join("templates"), &[".yaml"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.starts_with("{#") {
            problems.push(format!("{}:1: start the template with a `{{#- ... -#}}` comment saying what the object is for", rel(&path)));
        }
    }
    report(problems);
}

#[test]
fn no_trailing_whitespace() {
    let mut problems = Vec::new();
    for path in files(&root(), &[".rs", ".md", ".yaml", ".toml", ".sh"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!(
                    "{}:{}: remove the trailing whitespace",
                    rel(&path),
                    i + 1
                ));
            }
        }
    }
    report(problems);
}

#[test]
fn scripts_are_executable() {
    let mut problems = Vec::new();
    for path in files(&root().join("scripts"), &[".sh"])
        .into_iter()
        .chain([root().join(".ci/run")])
    {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        if mode & 0o111 == 0 {
            problems.push(format!(
                "{}:1: not executable; run `chmod +x {}` and commit",
                rel(&path),
                rel(&path)
            ));
        }
    }
    report(problems);
}
