//! `admin usage -o prometheus` end to end with the fake kubectl: the
//! exposition text of a small fleet pinned, checked by Prometheus's own
//! `promtool check metrics`, and every metric the Grafana dashboard in
//! dashboards/ queries present in it.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, create_bot_database, exits, repo_root, stdout};
use serde_json::Value;

const NOW: &str = "2026-11-24T06:00:00Z";
/// A tier annotation with every character the format escapes in label
/// values: backslash, double quote and line feed.
const ODD_TIER: &str = "platinum \"plus\"\\2027\nbeta";

/// alpha (small, messages on two days), bravo (medium, a stopped bot),
/// gamma (a tier platform.yaml does not price, no database yet).
fn fleet() -> Cluster {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-20T06:00:00Z").unwrap();
    let names: Vec<String> = ["alpha", "bravo", "gamma"].map(str::to_owned).to_vec();
    common::seed_tenants_with(&cluster, &names, |i, values| {
        values.tier = Some(["small", "medium", "small"][i].to_owned());
    });
    cluster.kubectl(&[
        "annotate",
        "namespace/tenant-gamma",
        &format!("mla-platform.in/tier={ODD_TIER}"),
        "--overwrite",
    ]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(
        &db,
        &[
            "2026-11-22T10:00:00Z",
            "2026-11-23T10:00:00Z",
            "2026-11-23T11:00:00Z",
        ],
        &["2026-11-22T00:00:00Z"],
        3,
    );
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        "tenant-bravo",
        "--replicas=0",
    ]);
    cluster
}

fn exposition(cluster: &Cluster) -> String {
    let mut cmd = cluster.admin(&["usage", "--since", "7d", "-o", "prometheus"]);
    cmd.env("XTASK_NOW", NOW);
    stdout(&exits(cmd, 0))
}

/// The families of an exposition that have at least one sample.
fn sampled_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap()].to_owned())
        .collect()
}

/// The exposition text of a small fleet, pinned: HELP and TYPE for every
/// family, `tenant` and `tier` labels, the odd tier escaped, no sample for
/// what is unknown (bravo's stopped bot has no messages, gamma's unpriced
/// tier no cost), and the fleet's cost the sum of the tenants'.
#[test]
fn exposition_of_a_small_fleet() {
    let text = exposition(&fleet());
    assert!(
        text.contains(r#"tier="platinum \"plus\"\\2027\nbeta""#),
        "{text}"
    );
    assert!(
        !text.contains("mla_tenant_messages{tenant=\"bravo\""),
        "{text}"
    );
    assert!(!text.contains("mla_tenant_cost{tenant=\"gamma\""), "{text}");
    insta::assert_snapshot!("usage-prometheus", text);
}

/// Prometheus's own checker accepts the exposition: its parser (syntax,
/// escaping) and its linter (HELP text, _total only on counters, base
/// units). promtool is Debian's `prometheus` package, which .ci/run
/// installs when absent; only outside CI may it be missing.
#[test]
fn promtool_accepts_the_exposition() {
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs promtool: .ci/run installs Debian's prometheus package"
        );
        eprintln!("skipped: no promtool (apt-get install prometheus)");
        return;
    };
    let check = |text: &str| {
        use std::io::Write as _;
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let text = exposition(&fleet());
    let out = check(&text);
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker does catch what we might get wrong: an unescaped quote,
    // and a count named like a counter that is a gauge.
    let broken = text.replacen(r#"\"plus\""#, r#""plus""#, 1);
    assert!(!check(&broken).status.success());
    let misnamed = text.replace("mla_tenant_messages", "mla_tenant_messages_total");
    assert!(!check(&misnamed).status.success());
}

/// PromQL's binary operators, modifiers and aggregation operators.
const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Metric names in a PromQL expression: identifiers that are not
/// functions, keywords, label names (in `{}` or grouping lists) or
/// durations.
fn promql_metrics(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_to = |i: usize, close: char| {
        let mut j = i + 1;
        while j < chars.len() && chars[j] != close {
            j += if chars[j] == '\\' { 2 } else { 1 };
        }
        j + 1
    };
    let next_non_space = |mut j: usize| {
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        chars.get(j).copied()
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_to(i, c),
            '{' => i = skip_to(i, '}'),
            '[' => i = skip_to(i, ']'),
            '$' => {
                i += 1;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let grouping = [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ];
                if grouping.contains(&word.as_str()) {
                    if next_non_space(i) == Some('(') {
                        i = skip_to(i + chars[i..].iter().position(|c| *c == '(').unwrap(), ')');
                    }
                } else if next_non_space(i) == Some('(') || KEYWORDS.contains(&word.as_str()) {
                    // A function, an aggregation (`sum by (x) (...)`) or
                    // another keyword.
                } else {
                    names.push(word);
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_metric_names_are_found() {
    assert_eq!(
        promql_metrics(
            r#"topk(10, sum by (tier, currency) (mla_a{tier=~"$tier"}) / on(tenant) mla_b[5m] offset 1h) > 0.8 or vector(0)"#
        ),
        ["mla_a", "mla_b"]
    );
    assert_eq!(promql_metrics("count(x_y == 0) or vector(0)"), ["x_y"]);
}

/// Every expression of every panel (and the tier variable's query)
/// queries only metrics the exposition emits with samples.
#[test]
fn the_dashboard_queries_only_metrics_the_exposition_emits() {
    let path = repo_root().join("dashboards/mla-tenants.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut exprs = Vec::new();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 5, "a dashboard of a few panels");
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = variable["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.split_once(','))
                .map(|(metric, _)| metric.trim().to_owned())
                .unwrap_or_else(|| panic!("unexpected variable query {q}"));
            exprs.push(inner);
        }
    }
    let emitted = sampled_families(&exposition(&fleet()));
    let mut queried = BTreeSet::new();
    for expr in &exprs {
        let names = promql_metrics(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        queried.extend(names);
    }
    let missing: Vec<&String> = queried.difference(&emitted).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which `admin usage -o prometheus` does not emit"
    );
    for key in ["title", "uid", "schemaVersion"] {
        assert!(dashboard.get(key).is_some(), "{key}");
    }
}
