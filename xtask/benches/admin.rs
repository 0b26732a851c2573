//! `admin list`, `admin show` and `admin usage` over 1,000 tenants in the fake cluster.
//! Run with `cargo bench -p xtask --bench admin`. The fake kubectl itself is
//! part of what is timed (a cluster-wide read parses one file per namespace
//! of the resource it lists), so the per-call cost of the fake is measured
//! and reported alongside.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Cluster, seed_tenants};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let tenants = 1000;
    let cluster = Cluster::new();
    let names: Vec<String> = (0..tenants).map(|i| format!("t{i:04}")).collect();
    let seeding = Instant::now();
    seed_tenants(&cluster, &names);
    println!(
        "seed {tenants} tenants into the fake cluster: {:.2?}",
        seeding.elapsed()
    );
    fn size(path: &std::path::Path) -> u64 {
        match std::fs::read_dir(path) {
            Ok(entries) => entries.map(|e| size(&e.unwrap().path())).sum(),
            Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }
    let size = size(&cluster.state.path().join("objects"));
    println!(
        "fake cluster files: {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );

    let whole = timed(5, || {
        cluster.kubectl(&["get", "pods", "--all-namespaces", "-o", "json"]);
    });
    let one = timed(10, || {
        cluster.kubectl(&["get", "pods", "--namespace", "tenant-t0500", "-o", "json"]);
    });
    println!("one fake-kubectl call: {whole:.2?} reading every namespace, {one:.2?} reading one");

    let run = |args: &[&str]| {
        let out = cluster.admin(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let before = cluster.calls().len();
    let list = timed(5, || run(&["list", "-o", "json"]));
    let list_calls = (cluster.calls().len() - before) / 5;
    println!("admin list, {tenants} tenants: {list:.2?} median of 5 ({list_calls} kubectl calls)");

    let before = cluster.calls().len();
    let show = timed(5, || run(&["show", "t0500", "-o", "json"]));
    let show_calls = (cluster.calls().len() - before) / 5;
    println!(
        "admin show t0500, {tenants} tenants: {show:.2?} median of 5 ({show_calls} kubectl calls)"
    );

    let before = cluster.calls().len();
    let usage = timed(1, || run(&["usage", "--jobs", "8", "-o", "json"]));
    let calls: Vec<Vec<String>> = cluster.calls().into_iter().skip(before).collect();
    let reads = calls.iter().filter(|c| c[0] == "exec").count();
    println!(
        "admin usage --jobs 8, {tenants} tenants: {usage:.2?} ({} kubectl calls: {} cluster-wide, {reads} database reads)",
        calls.len(),
        calls.len() - reads
    );
}
