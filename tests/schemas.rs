//! Offline proof that every rendered manifest would be accepted: strict
//! validation against the official Kubernetes OpenAPI schemas (unknown
//! fields are errors) with `kubernetes-validate`, and the Pod Security
//! `restricted` profile on every pod template.
//!
//! kubernetes-validate comes from PyPI. `$KUBERNETES_VALIDATE` may name a
//! binary; otherwise the test installs the pinned version once into a
//! virtual environment under `target/tools/`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{exits, fixture, repo_root, xtask_bare};
use serde_json::Value;

/// The Kubernetes version the manifests are validated against.
const KUBERNETES: &str = "1.32.0";
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

fn validator() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("KUBERNETES_VALIDATE") {
            return PathBuf::from(p);
        }
        let target = PathBuf::from(env!("CARGO_BIN_EXE_xtask"))
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let venv = target.join("tools").join(VALIDATOR.replace("==", "-"));
        let bin = venv.join("bin/kubernetes-validate");
        if !bin.exists() {
            let ok = std::process::Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status()
                .unwrap()
                .success()
                && std::process::Command::new(venv.join("bin/pip"))
                    .args([
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        VALIDATOR,
                    ])
                    .status()
                    .unwrap()
                    .success();
            assert!(
                ok,
                "installing {VALIDATOR} from PyPI into {} failed",
                venv.display()
            );
        }
        bin
    })
}

fn render_to(dir: &Path, tenant: &str, values: &Path) -> Vec<PathBuf> {
    exits(
        xtask_bare()
            .args(["provision", tenant, "--values"])
            .arg(values)
            .arg("--out")
            .arg(dir),
        0,
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn tenants() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("demo", repo_root().join("tenants/demo.yaml")),
        ("kalyan", fixture("kalyan.yaml")),
        ("mylapore", fixture("mylapore.yaml")),
        ("hostile-text", fixture("hostile-text.yaml")),
    ]
}

#[test]
fn every_manifest_passes_strict_schema_validation() {
    for (tenant, values) in tenants() {
        let dir = tempfile::tempdir().unwrap();
        let files = render_to(dir.path(), tenant, &values);
        assert_eq!(files.len(), 16);
        let out = std::process::Command::new(validator())
            .args(["--strict", "-k", KUBERNETES])
            .args(&files)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{tenant}: {report}");
        assert_eq!(
            report.matches(" passed for resource ").count(),
            16,
            "{report}"
        );
    }
}

/// The validator really rejects what a cluster would: a planted unknown field fails.
#[test]
fn strict_validation_rejects_an_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let files = render_to(dir.path(), "demo", &repo_root().join("tenants/demo.yaml"));
    let deployment = files
        .iter()
        .find(|f| f.to_string_lossy().contains("deployment"))
        .unwrap();
    let text = std::fs::read_to_string(deployment)
        .unwrap()
        .replace("  strategy:", "  replica: 1\n  strategy:");
    std::fs::write(deployment, text).unwrap();
    let out = std::process::Command::new(validator())
        .args(["--strict", "-k", KUBERNETES])
        .arg(deployment)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the planted field was not found");
    assert!(String::from_utf8_lossy(&out.stdout).contains("'replica' was unexpected"));
}

#[test]
fn every_pod_template_meets_the_restricted_profile() {
    for (tenant, values) in tenants() {
        let dir = tempfile::tempdir().unwrap();
        for file in render_to(dir.path(), tenant, &values) {
            let doc: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            if doc["kind"] == "Namespace" {
                assert_eq!(
                    doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
                    "restricted"
                );
            }
            if let Some(spec) = doc.pointer("/spec/template/spec") {
                assert_eq!(
                    xtask::pss::restricted_violations(spec),
                    Vec::<String>::new(),
                    "{tenant} {}",
                    file.display()
                );
            }
        }
    }
}
