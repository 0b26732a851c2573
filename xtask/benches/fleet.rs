//! The fleet commands over many tenants in the fake cluster: for each, how
//! many kubectl processes it starts, its wall time and its peak memory,
//! printed as a markdown table.
//!
//! ```text
//! cargo bench -p xtask --bench fleet                      # 1,000 tenants, every command
//! FLEET_TENANTS=100 cargo bench -p xtask --bench fleet
//! FLEET_COMMANDS=unchanged,drift cargo bench -p xtask --bench fleet
//! ```
//!
//! `FLEET_TENANTS` is how many tenants are seeded (1,000 unless set).
//! `FLEET_COMMANDS` picks, comma-separated, which of these run (every one
//! unless set), always in this order, since each provision changes what
//! the next command finds:
//! - `unchanged`: `provision --all --yes` with every committed config as
//!   the cluster has it, so nothing to apply;
//! - `one`: `provision --all --yes` after one tenant's config changed;
//! - `plan`: `provision --all --plan --save-plan FILE` after every tenant's
//!   config changed: one plan file of every tenant;
//! - `apply`: `apply FILE` of that plan (no approvals: the tests'
//!   environments require none);
//! - `every`: `provision --all --yes` after every tenant's config changed;
//! - `drift`: `admin drift`;
//! - `verify`: `admin verify` of every tenant, without `--network`;
//! - `usage`: `admin usage`.
//!
//! `FLEET_SHOW=1` also prints what each command printed on stdout.
//!
//! Tenants are seeded straight into the fake cluster as provision would
//! leave them (`seed_tenants`, then credentials of each tenant's own), with
//! their configs committed in a scratch tenants directory and a small bot
//! database in each, so seeding costs seconds, not a provision per tenant. The commands run as built, with their default flags: the table
//! measures whatever they do today. "kubectl processes" counts the fake's
//! call log; "peak RSS" is the largest resident set of the xtask process
//! and any one kubectl it started (`/usr/bin/time -f %M`, which reports
//! the maximum over a process and its waited-for children), or n/a without
//! GNU time. Timings include the fake kubectl's own work, which is small
//! next to a real API server's round trips but not nothing (see the admin
//! bench for its per-call cost).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, create_bot_database, fake_kubectl, repo_root, seed_tenants, seeded_values};
use xtask::platform::Platform;
use xtask::render::{SecretValues, Templates};
use xtask::tenant::{TenantName, TenantSpec, TenantValues};

/// The commands, in the order they run.
const COMMANDS: [&str; 8] = [
    "unchanged",
    "one",
    "plan",
    "apply",
    "every",
    "drift",
    "verify",
    "usage",
];

/// GNU time, which reports a child's peak memory.
const TIME: &str = "/usr/bin/time";

fn main() {
    let tenants: usize = match std::env::var("FLEET_TENANTS") {
        Ok(n) => n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("FLEET_TENANTS={n}: give a number of tenants, e.g. 100")),
        Err(_) => 1000,
    };
    let chosen: Vec<String> = match std::env::var("FLEET_COMMANDS") {
        Ok(list) => list.split(',').map(|c| c.trim().to_owned()).collect(),
        Err(_) => COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
    };
    if let Some(unknown) = chosen.iter().find(|c| !COMMANDS.contains(&c.as_str())) {
        panic!(
            "FLEET_COMMANDS: no command `{unknown}`; choose from {}",
            COMMANDS.join(",")
        );
    }
    let measure_memory = Path::new(TIME).exists();

    let platform = Platform::load(&repo_root().join("platform.yaml").display().to_string())
        .expect("the repository's platform.yaml loads");
    let cluster = Cluster::new();
    let names: Vec<String> = (0..tenants).map(|i| format!("t{i:04}")).collect();
    let seeding = Instant::now();
    seed_tenants(&cluster, &names);
    distinct_credentials(&cluster, &platform, &names);
    // A bot that has been answering: a day's messages to count, the same
    // database copied into every tenant's volume.
    let db = cluster.state.path().join("seed.sqlite3");
    create_bot_database(
        &db,
        &["2026-11-20T10:00:00Z"; 20],
        &["2026-11-19T00:00:00Z"],
        3,
    );
    for (i, name) in names.iter().enumerate() {
        commit_config(&cluster, &platform, name, &seeded_values(i, name));
        std::fs::copy(&db, cluster.volume(name, "bot-data").join("bot.sqlite3")).unwrap();
    }
    eprintln!(
        "seeded {tenants} tenants and committed their configs in {:.1?}",
        seeding.elapsed()
    );

    let plan_file = cluster
        .state
        .path()
        .join("fleet.plan")
        .display()
        .to_string();
    let mut rows = Vec::new();
    for command in COMMANDS {
        if !chosen.iter().any(|c| c == command) {
            continue;
        }
        // What changes before the command runs, and the command itself.
        let (what, args): (&str, Vec<&str>) = match command {
            "unchanged" => ("`provision --all`, nothing changed", provision_all()),
            "one" => {
                change_configs(&cluster, &platform, &names[..1], "one");
                ("`provision --all`, one tenant changed", provision_all())
            }
            "plan" => {
                change_configs(&cluster, &platform, &names, "planned");
                (
                    "`provision --all --plan --save-plan`, every tenant changed",
                    vec![
                        "provision",
                        "--all",
                        "--plan",
                        "--save-plan",
                        &plan_file,
                        "--tenants-dir",
                    ],
                )
            }
            "apply" => (
                "`apply` of that plan (every tenant)",
                vec!["apply", &plan_file, "--tenants-dir"],
            ),
            "every" => {
                change_configs(&cluster, &platform, &names, "every");
                ("`provision --all`, every tenant changed", provision_all())
            }
            "drift" => ("`admin drift`", vec!["admin", "drift", "--tenants-dir"]),
            "verify" => (
                "`admin verify` (every tenant)",
                vec!["admin", "verify", "--tenants-dir"],
            ),
            "usage" => ("`admin usage`", vec!["admin", "usage"]),
            _ => unreachable!("checked against COMMANDS"),
        };
        eprintln!("running {what} ...");
        let run = run(&cluster, &args, measure_memory);
        if std::env::var_os("FLEET_SHOW").is_some() {
            eprintln!("{}", run.stdout);
        }
        if !run.stderr.is_empty() && run.code != Some(0) {
            let tail: Vec<&str> = run.stderr.lines().rev().take(5).collect();
            eprintln!(
                "  exit {:?}; last lines of stderr:\n  {}",
                run.code,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            );
        }
        rows.push((what, run));
    }

    println!();
    println!("Fleet commands against the fake cluster, {tenants} tenants:");
    println!();
    println!("| command | exit | kubectl processes | by verb | wall time | peak RSS |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (what, run) in &rows {
        let verbs: Vec<String> = run
            .verbs
            .iter()
            .map(|(verb, n)| format!("{verb} {n}"))
            .collect();
        println!(
            "| {what} | {} | {} | {} | {} | {} |",
            run.code
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            run.calls,
            verbs.join(", "),
            seconds(run.wall),
            run.peak_kib
                .map_or_else(|| "n/a".to_owned(), |k| format!("{} MiB", k / 1024)),
        );
    }
}

fn provision_all() -> Vec<&'static str> {
    vec!["provision", "--all", "--yes", "--tenants-dir"]
}

fn seconds(d: Duration) -> String {
    if d.as_secs() >= 10 {
        format!("{:.0} s", d.as_secs_f64())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Writes `values` as tenant `name`'s committed config, as provision writes it.
fn commit_config(cluster: &Cluster, platform: &Platform, name: &str, values: &TenantValues) {
    let spec = TenantSpec::resolve(
        &TenantName::parse(name).unwrap(),
        values,
        &platform.tier_names(),
        &platform.default_tier,
    )
    .unwrap();
    std::fs::write(
        cluster.tenants.path().join(format!("{name}.yaml")),
        spec.to_yaml().unwrap(),
    )
    .unwrap();
}

/// Gives each tenant's Secret values of its own, as provision generates
/// them when it creates a tenant (`seed_tenants` renders them redacted, the
/// same for all, which `admin verify` rightly fails as shared credentials).
fn distinct_credentials(cluster: &Cluster, platform: &Platform, names: &[String]) {
    let templates = Templates::load(&repo_root().join("templates")).unwrap();
    let mut secrets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let spec = TenantSpec::resolve(
            &TenantName::parse(name).unwrap(),
            &seeded_values(i, name),
            &platform.tier_names(),
            &platform.default_tier,
        )
        .unwrap();
        let values = SecretValues::generate(&platform.bot.generated_secrets).unwrap();
        let manifests = templates.render_tenant(&spec, platform, &values).unwrap();
        secrets.extend(
            manifests
                .into_iter()
                .filter(|m| m.kind == "Secret")
                .map(|m| m.object),
        );
    }
    cluster
        .open()
        .apply_as(xtask::names::MANAGER, secrets)
        .unwrap();
}

/// Gives each of `names` a new site tagline in its committed config: a
/// change provision applies (the bot's ConfigMap), needing no other flag.
fn change_configs(cluster: &Cluster, platform: &Platform, names: &[String], why: &str) {
    for name in names {
        let i = name[1..].parse::<usize>().unwrap();
        let mut values = seeded_values(i, name);
        values.site.tagline = Some(format!("Changed for the {why} bench"));
        commit_config(cluster, platform, name, &values);
    }
}

/// One command's measurements.
struct Run {
    code: Option<i32>,
    calls: usize,
    verbs: BTreeMap<String, usize>,
    wall: Duration,
    peak_kib: Option<u64>,
    stdout: String,
    stderr: String,
}

/// Runs `cargo xtask ARGS` against `cluster` (under GNU time when
/// `measure_memory`) and counts the kubectl processes it started. ARGS
/// ending in `--tenants-dir` get the scratch tenants directory.
fn run(cluster: &Cluster, args: &[&str], measure_memory: bool) -> Run {
    let before = cluster.calls().len();
    let xtask = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    let peak_file = cluster.state.path().join("peak-rss");
    let mut cmd = if measure_memory {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&peak_file).arg(&xtask);
        c
    } else {
        Command::new(&xtask)
    };
    cmd.args(args);
    if args.last() == Some(&"--tenants-dir") {
        cmd.arg(cluster.tenants.path());
    }
    cmd.env(
        "KUBECTL",
        std::env::var_os("FLEET_KUBECTL")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| fake_kubectl().to_owned()),
    )
    .env("FAKE_KUBECTL_STATE", cluster.state.path())
    .env("XTASK_AUDIT_LOG", cluster.audit_log())
    .env(
        "XTASK_ENVIRONMENTS",
        repo_root().join("tests/fixtures/environments.yaml"),
    )
    .stdin(Stdio::null());
    let started = Instant::now();
    let out = cmd.output().expect("xtask runs");
    let wall = started.elapsed();
    let calls: Vec<Vec<String>> = cluster.calls().into_iter().skip(before).collect();
    let mut verbs = BTreeMap::new();
    for call in &calls {
        // The verb is the first word that is not a flag or a flag's value
        // (the tool may put --context first).
        let verb = first_word(call).unwrap_or("?").to_owned();
        *verbs.entry(verb).or_insert(0) += 1;
    }
    let peak_kib = measure_memory
        .then(|| std::fs::read_to_string(&peak_file).ok())
        .flatten()
        .and_then(|t| t.lines().last()?.trim().parse().ok());
    Run {
        code: out.status.code(),
        calls: calls.len(),
        verbs,
        wall,
        peak_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The kubectl verb of a call: its first word that is neither a flag nor
/// the value of `--context`, `--request-timeout` or `-n`.
fn first_word(call: &[String]) -> Option<&str> {
    let mut words = call.iter();
    while let Some(w) = words.next() {
        if matches!(
            w.as_str(),
            "--context" | "--request-timeout" | "-n" | "--namespace"
        ) {
            words.next();
        } else if !w.starts_with('-') {
            return Some(w);
        }
    }
    None
}
