//! Shared set-up for the integration tests: the real `xtask` binary, a fresh
//! fake cluster per test, and the repository's fixtures.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use fake_kubectl::State;
use serde_json::Value;
use tempfile::TempDir;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// The `fake-kubectl` binary, built once per test run. It belongs to another
/// package of the workspace, so cargo does not build it for xtask's tests.
pub fn fake_kubectl() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let xtask = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
        let profile_dir = xtask.parent().unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "--package",
            "fake-kubectl",
            "--bin",
            "fake-kubectl",
            "--target-dir",
        ]);
        build.arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building fake-kubectl failed");
        profile_dir.join(format!("fake-kubectl{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A fake cluster and a scratch tenants directory for one test.
pub struct Cluster {
    pub state: TempDir,
    pub tenants: TempDir,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster {
            state: tempfile::tempdir().unwrap(),
            tenants: tempfile::tempdir().unwrap(),
        }
    }

    /// `cargo xtask ARGS` against this cluster, with no prompts.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = xtask_bare();
        cmd.env("FAKE_KUBECTL_STATE", self.state.path());
        cmd.args(args);
        cmd
    }

    /// `cargo xtask provision TENANT --values FIXTURE` with the fake kubectl.
    pub fn provision(&self, tenant: &str, values: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.xtask(&["provision", tenant, "--values"]);
        cmd.arg(values);
        cmd.arg("--kubectl").arg(fake_kubectl());
        cmd.arg("--tenants-dir").arg(self.tenants.path());
        cmd.args(extra);
        cmd
    }

    pub fn open(&self) -> State {
        State::open(self.state.path()).unwrap()
    }

    pub fn objects(&self) -> Vec<Value> {
        self.open().objects().clone()
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        State::calls(self.state.path())
    }

    pub fn get(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.open().get(kind, ns, name).cloned()
    }
}

/// The xtask binary with an environment that cannot reach a real cluster or
/// prompt: no KUBECTL, no terminal on stdin.
pub fn xtask_bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env_remove("KUBECTL");
    cmd.write_stdin("");
    cmd
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
