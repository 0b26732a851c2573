//! How long rendering takes: one tenant, and 1,000 tenants in a row (what
//! `provision --all` or a drift check over a large cluster would do).
//! Run with `cargo bench -p xtask --bench render`; it prints a table and
//! asserts nothing about time (speed targets live here, not in tests).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use xtask::platform::Platform;
use xtask::render::{SecretValues, Templates, to_yaml_stream};
use xtask::tenant::{TenantName, TenantSpec, TenantValues};

fn spec(i: usize) -> TenantSpec {
    let name = TenantName::parse(&format!("tenant{i:04}")).unwrap();
    let values = TenantValues {
        mla_name: Some(format!("डॉ. श्रीकांत शिंदे {i}")),
        constituency: Some("कल्याण ग्रामीण".into()),
        whatsapp_number: Some(format!("+9198{i:08}")),
        domains: vec![format!("t{i}.example.in"), format!("www.t{i}.example.in")],
        ..Default::default()
    };
    TenantSpec::resolve(&name, &values, &["small", "medium", "large"], "small").unwrap()
}

/// Runs `f` `runs` times and returns the sorted durations.
fn measure(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(what: &str, times: &[Duration]) {
    let median = times[times.len() / 2];
    println!(
        "{what:<46} runs {:>4}  min {:>10.3?}  median {:>10.3?}  max {:>10.3?}",
        times.len(),
        times[0],
        median,
        times[times.len() - 1]
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let platform = Platform::load(&root.join("platform.yaml").display().to_string()).unwrap();
    let templates = Templates::load(&root.join("templates")).unwrap();
    let one = spec(1);
    let thousand: Vec<TenantSpec> = (0..1000).map(spec).collect();

    let load = measure(50, || {
        black_box(Templates::load(&root.join("templates")).unwrap());
    });
    report("load templates", &load);
    let render_only = measure(500, || {
        black_box(
            templates
                .render_tenant(&one, &platform, &SecretValues::Redacted)
                .unwrap(),
        );
    });
    report("render + parse + check 1 tenant (no output)", &render_only);
    let single = measure(500, || {
        let m = templates
            .render_tenant(&one, &platform, &SecretValues::Redacted)
            .unwrap();
        black_box(to_yaml_stream(&m).unwrap());
    });
    report("render + serialise 1 tenant (16 objects)", &single);
    let many = measure(5, || {
        for s in &thousand {
            let m = templates
                .render_tenant(s, &platform, &SecretValues::Redacted)
                .unwrap();
            black_box(to_yaml_stream(&m).unwrap());
        }
    });
    report("render + serialise 1,000 tenants", &many);
}
