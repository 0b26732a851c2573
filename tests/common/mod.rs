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
        cmd.env("XTASK_AUDIT_LOG", self.audit_log());
        cmd.args(args);
        cmd
    }

    /// A fresh cluster with each of `tenants` provisioned from its fixture
    /// (`tests/fixtures/<tenant>.yaml`).
    #[track_caller]
    pub fn with_tenants(tenants: &[&str]) -> Cluster {
        let cluster = Cluster::new();
        for t in tenants {
            exits(cluster.provision(t, &fixture(&format!("{t}.yaml")), &[]), 0);
        }
        cluster
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

    /// This cluster's audit log (kept beside its state).
    pub fn audit_log(&self) -> PathBuf {
        self.state.path().join("audit.jsonl")
    }

    /// Makes the fake kubectl fail as `fault` says.
    pub fn fault(&self, fault: fake_kubectl::Fault) {
        self.open().add_fault(fault).unwrap();
    }

    pub fn open(&self) -> State {
        State::open(self.state.path()).unwrap()
    }

    pub fn objects(&self) -> Vec<Value> {
        self.open().objects().clone()
    }

    /// Whether the cluster holds only what every cluster has from its
    /// creation (the namespace kube-system): nothing was created.
    pub fn is_pristine(&self) -> bool {
        self.objects()
            .iter()
            .all(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == "kube-system")
    }

    /// The cluster's objects but the tool's locks (the `xtask-locks`
    /// namespace, made on first use, and its Leases): what a refused
    /// command must leave as it was.
    pub fn objects_but_locks(&self) -> Vec<Value> {
        self.objects()
            .into_iter()
            .filter(|o| {
                o["kind"] != "Lease"
                    && !(o["kind"] == "Namespace" && o["metadata"]["name"] == "xtask-locks")
            })
            .collect()
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
    // The test environments have no default, so commands without --env
    // behave as they would with no environments at all.
    cmd.env(
        "XTASK_ENVIRONMENTS",
        repo_root().join("tests/fixtures/environments.yaml"),
    );
    // Tests never write the repository's own audit log.
    cmd.env(
        "XTASK_AUDIT_LOG",
        std::env::temp_dir().join("xtask-test-audit.jsonl"),
    );
    cmd.write_stdin("");
    cmd
}

/// Runs `cmd`, which must exit with `code`; when it does not, the failure
/// shows its arguments, stdout and stderr. Returns its output.
#[track_caller]
pub fn exits(mut cmd: impl std::borrow::BorrowMut<Command>, code: i32) -> std::process::Output {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\n--- stdout\n{}--- stderr\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Renders `names` as tenants with the repository's templates and puts them
/// straight into the fake cluster: what provision would apply, without a
/// kubectl round trip per tenant (for tests and benchmarks with hundreds).
pub fn seed_tenants(cluster: &Cluster, names: &[String]) {
    seed_tenants_with(cluster, names, |_, _| {});
}

/// [`seed_tenants`], with `adjust` setting more of each tenant's values
/// (its tier, rate limits) from its index and name.
pub fn seed_tenants_with(
    cluster: &Cluster,
    names: &[String],
    adjust: impl Fn(usize, &mut xtask::tenant::TenantValues),
) {
    seed(cluster, names, adjust, false);
}

/// [`seed_tenants`], each tenant with credentials of its own and its
/// config committed in the cluster's tenants directory, as provision leaves
/// them (what `admin verify` compares).
pub fn seed_committed_tenants(cluster: &Cluster, names: &[String]) {
    seed(cluster, names, |_, _| {}, true);
}

fn seed(
    cluster: &Cluster,
    names: &[String],
    adjust: impl Fn(usize, &mut xtask::tenant::TenantValues),
    commit: bool,
) {
    use xtask::platform::Platform;
    use xtask::render::{SecretValues, Templates};
    use xtask::tenant::{TenantName, TenantSpec};
    let root = repo_root();
    let platform = Platform::load(&root.join("platform.yaml").display().to_string()).unwrap();
    let templates = Templates::load(&root.join("templates")).unwrap();
    let mut objects = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut values = seeded_values(i, name);
        adjust(i, &mut values);
        let spec = TenantSpec::resolve(
            &TenantName::parse(name).unwrap(),
            &values,
            &platform.tier_names(),
            &platform.default_tier,
        )
        .unwrap();
        if commit {
            std::fs::write(
                cluster.tenants.path().join(format!("{name}.yaml")),
                spec.to_yaml().unwrap(),
            )
            .unwrap();
        }
        // Committed tenants get credentials of their own, as provision
        // makes them; the others share the redacted placeholders.
        let secrets = if commit {
            SecretValues::generate(&platform.bot.generated_secrets).unwrap()
        } else {
            SecretValues::Redacted
        };
        let manifests = templates.render_tenant(&spec, &platform, &secrets).unwrap();
        objects.extend(manifests.into_iter().map(|m| m.object));
    }
    // As provision applies them: server-side, as its field manager.
    cluster
        .open()
        .apply_as(xtask::names::MANAGER, objects)
        .unwrap();
}

/// The values [`seed_tenants`] gives the tenant `name`, the `i`th seeded.
pub fn seeded_values(i: usize, name: &str) -> xtask::tenant::TenantValues {
    xtask::tenant::TenantValues {
        tenant: Some(name.to_owned()),
        mla_name: Some(format!("MLA {name}")),
        constituency: Some(format!("Constituency {name}")),
        whatsapp_number: Some(format!("+9170{i:08}")),
        domains: vec![format!("{name}.example.in")],
        ..Default::default()
    }
}

impl Cluster {
    /// Writes `values` as the tenant's committed config in this cluster's
    /// tenants directory.
    pub fn commit_values(&self, tenant: &str, values: &xtask::tenant::TenantValues) {
        let text = serde_saphyr::to_string(values).unwrap();
        std::fs::write(self.tenants.path().join(format!("{tenant}.yaml")), text).unwrap();
    }
}

/// Waits (up to 20 s) until `n` of the fake's `kubectl VERB` calls have
/// started, then presses Ctrl-C: SIGINT to the child's process group, as a
/// terminal sends it. Returns what the child printed and its status.
pub fn ctrl_c_after(
    cluster: &Cluster,
    child: std::process::Child,
    verb: &str,
    n: usize,
) -> std::process::Output {
    let started = std::time::Instant::now();
    let count = || cluster.calls().iter().filter(|c| c[0] == verb).count();
    while count() < n {
        assert!(
            started.elapsed().as_secs() < 20,
            "only {} of {n} `{verb}` calls came",
            count()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let group = format!("-{}", child.id());
    let status = std::process::Command::new("kill")
        .args(["-s", "INT", "--", &group])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

impl Cluster {
    /// Runs the fake kubectl directly, as an operator's hand edit would.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let out = self.kubectl_output(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        out
    }

    /// The fake kubectl's output, whatever its exit status.
    pub fn kubectl_output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(fake_kubectl())
            .args(args)
            .env("FAKE_KUBECTL_STATE", self.state.path())
            .output()
            .unwrap()
    }

    /// `cargo xtask admin ARGS` with the fake kubectl (through `$KUBECTL`,
    /// so that callers can append more arguments).
    pub fn admin(&self, args: &[&str]) -> Command {
        let mut cmd = self.xtask(&["admin"]);
        cmd.args(args);
        cmd.env("KUBECTL", fake_kubectl());
        cmd
    }

    /// [`Cluster::admin`] as a process to start and signal (assert_cmd's
    /// commands only run to their end): the same environment, no stdin,
    /// stdout and stderr captured.
    pub fn admin_process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("admin")
            .args(args)
            .env("KUBECTL", fake_kubectl())
            .env("FAKE_KUBECTL_STATE", self.state.path())
            .env(
                "XTASK_ENVIRONMENTS",
                repo_root().join("tests/fixtures/environments.yaml"),
            )
            .env("XTASK_AUDIT_LOG", self.audit_log())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// The directory standing in for a tenant's volume.
    pub fn volume(&self, tenant: &str, claim: &str) -> PathBuf {
        let dir = self
            .state
            .path()
            .join("volumes")
            .join(format!("tenant-{tenant}"))
            .join(claim);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Every file under the fake cluster's volumes of `tenant`, with its bytes.
    pub fn volume_files(&self, tenant: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        fn walk(dir: &Path, base: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.insert(
                        p.strip_prefix(base).unwrap().display().to_string(),
                        std::fs::read(&p).unwrap(),
                    );
                }
            }
        }
        let base = self
            .state
            .path()
            .join("volumes")
            .join(format!("tenant-{tenant}"));
        let mut out = std::collections::BTreeMap::new();
        walk(&base, &base, &mut out);
        out
    }
}

/// Creates the bot's database with the tables the platform's usage query reads.
pub fn create_bot_database(path: &Path, messages: &[&str], runs: &[&str], user_version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE messages(id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, body TEXT);
         CREATE TABLE bot_runs(id INTEGER PRIMARY KEY, started_at TEXT NOT NULL);",
    )
    .unwrap();
    for (i, at) in messages.iter().enumerate() {
        conn.execute(
            "INSERT INTO messages(created_at, body) VALUES (?1, ?2)",
            (at, format!("संदेश {i}")),
        )
        .unwrap();
    }
    for at in runs {
        conn.execute("INSERT INTO bot_runs(started_at) VALUES (?1)", [at])
            .unwrap();
    }
    conn.pragma_update(None, "user_version", user_version)
        .unwrap();
}

/// Decodes standard base64 (as Secret data is stored).
pub fn decode_base64(s: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl Cluster {
    /// `cargo xtask provision TENANT EXTRA` with no `--values`: the tenant
    /// starts from its config in this cluster's tenants directory.
    pub fn provision_committed(&self, tenant: &str, extra: &[&str]) -> Command {
        let mut cmd = self.xtask(&["provision", tenant]);
        cmd.arg("--kubectl").arg(fake_kubectl());
        cmd.arg("--tenants-dir").arg(self.tenants.path());
        cmd.args(extra);
        cmd
    }

    /// Commits `tests/fixtures/<tenant>.yaml` as the tenant's config in
    /// this cluster's tenants directory; returns its path.
    pub fn commit_fixture(&self, tenant: &str) -> PathBuf {
        let path = self.tenants.path().join(format!("{tenant}.yaml"));
        std::fs::copy(fixture(&format!("{tenant}.yaml")), &path).unwrap();
        path
    }
}

/// The problems of each tenant's failed checks in `admin verify -o json`, as (tenant, check, problems).
pub fn failed_checks(report: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for t in report["tenants"].as_array().unwrap() {
        for c in t["checks"].as_array().unwrap() {
            if c["passed"] == false {
                out.push((
                    t["tenant"].as_str().unwrap().to_owned(),
                    c["check"].as_str().unwrap().to_owned(),
                    c["problems"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect(),
                ));
            }
        }
    }
    out
}

/// A command run to its end: its exit status, output, and the kubectl
/// calls it made.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub calls: Vec<Vec<String>>,
}

impl Run {
    /// The calls as `verb words...`, up to the first flag.
    pub fn verbs(&self) -> Vec<String> {
        self.calls
            .iter()
            .map(|c| {
                c.iter()
                    .take_while(|a| !a.starts_with('-'))
                    .take(2)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

impl Cluster {
    /// Runs `cmd` to its end against this cluster and keeps what it did.
    pub fn run_of(&self, mut cmd: Command) -> Run {
        let before = self.calls().len();
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: stdout(&out),
            stderr: stderr(&out),
            calls: self.calls().split_off(before),
        }
    }
}

/// The name of the `i`th tenant of a seeded fleet: `t0000`, `t0001`, ...
pub fn fleet_name(i: usize) -> String {
    format!("t{i:04}")
}

impl Cluster {
    /// A fresh cluster with `n` tenants seeded as provision applies them,
    /// each with its committed config: nothing to change.
    pub fn fleet(n: usize) -> Cluster {
        let cluster = Cluster::new();
        let names: Vec<String> = (0..n).map(fleet_name).collect();
        seed_tenants_with(&cluster, &names, |_, _| {});
        for (i, name) in names.iter().enumerate() {
            cluster.commit_values(name, &seeded_values(i, name));
        }
        cluster
    }

    /// Commits a new site tagline for fleet tenant `i`: its ConfigMap, and
    /// so its bot's pod template, differ from the cluster.
    pub fn change_tagline(&self, i: usize, tagline: &str) {
        let mut values = seeded_values(i, &fleet_name(i));
        values.site.tagline = Some(tagline.to_owned());
        self.commit_values(&fleet_name(i), &values);
    }
}
