//! `cargo xtask admin usage` against quota, end to end with the fake
//! kubectl: percentages against each tenant's own tier and limit, the
//! --warn-at marks, --fail-at's exit status, the CSV report, and tenants
//! whose tier platform.yaml does not know.

mod common;

use common::{Cluster, create_bot_database, exits, repo_root, stderr, stdout};
use serde_json::Value;
use xtask::platform::{Platform, QuantityKind, usage_quantity};

const NOW: &str = "2026-11-24T06:00:00Z";
/// An annotation value no tier has, with CSV's special characters in it.
const ODD_TIER: &str = "platinum \"plus\", 2027";

fn platform() -> Platform {
    Platform::load(&repo_root().join("platform.yaml").display().to_string()).unwrap()
}

/// Puts tenants into the fake cluster as provision renders them, each with
/// its tier and an optional messages_per_day override.
fn seed(cluster: &Cluster, tenants: &[(&str, &str, Option<u32>)]) {
    let names: Vec<String> = tenants.iter().map(|t| t.0.to_owned()).collect();
    common::seed_tenants_with(cluster, &names, |i, values| {
        let (_, tier, per_day) = tenants[i];
        values.tier = Some(tier.to_owned());
        values.rate_limits.messages_per_day = per_day;
    });
}

/// alpha: small tier with its own limit of 10 messages a day, 9 of them
/// in the last day (90%); bravo: medium tier, the same 9 messages (0.0%);
/// gamma: a namespace whose tier annotation names no tier in platform.yaml.
fn tiered_cluster() -> Cluster {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-20T06:00:00Z").unwrap();
    seed(
        &cluster,
        &[
            ("alpha", "small", Some(10)),
            ("bravo", "medium", None),
            ("gamma", "small", None),
        ],
    );
    cluster.kubectl(&[
        "annotate",
        "namespace/tenant-gamma",
        &format!("mla-platform.in/tier={ODD_TIER}"),
        "--overwrite",
    ]);
    // Nine messages in the day before NOW, one older than a day.
    let mut messages = vec!["2026-11-23T10:00:00Z"; 9];
    messages.push("2026-11-20T10:00:00Z");
    for tenant in ["alpha", "bravo"] {
        let db = cluster.volume(tenant, "bot-data").join("bot.sqlite3");
        create_bot_database(&db, &messages, &["2026-11-23T00:00:00Z"], 3);
    }
    cluster
}

/// `673.39` as 67339: an amount with exactly two decimals (an empty field,
/// an unpriced tenant, is 0).
fn paise_of(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let (whole, cents) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("{text} has no decimals"));
    assert_eq!(cents.len(), 2, "{text}");
    whole.parse::<u64>().unwrap() * 100 + cents.parse::<u64>().unwrap()
}

/// A JSON amount (e.g. 550.75) as hundredths; it must be one exactly.
fn paise(v: &Value) -> u64 {
    let f = v.as_f64().unwrap_or_else(|| panic!("{v} is not an amount"));
    let p = (f * 100.0).round();
    assert!((f * 100.0 - p).abs() < 1e-6, "{v} has more than 2 decimals");
    p as u64
}

fn usage(cluster: &Cluster, args: &[&str], code: i32) -> std::process::Output {
    let mut cmd = cluster.admin(&["usage"]);
    cmd.args(args).env("XTASK_NOW", NOW);
    exits(cmd, code)
}

fn usage_json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&stdout(&usage(cluster, &all, 0))).unwrap()
}

fn tenant<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tenant {name} in {json:#}"))
}

/// The line of a table that starts with `first`.
fn table_row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"))
}

fn warnings(t: &Value) -> Vec<&str> {
    t["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect()
}

/// Each tenant's uses are divided by its own tier's quota and its own
/// daily limit: the small and medium tiers differ in both.
#[test]
fn percentages_are_against_each_tenants_own_tier() {
    let cluster = tiered_cluster();
    let json = usage_json(&cluster, &["--since", "1d"]);
    let platform = platform();
    let one_decimal = |used: u64, limit: u64| (used as f64 * 1000.0 / limit as f64).round() / 10.0;
    for (name, tier) in [("alpha", "small"), ("bravo", "medium")] {
        let t = tenant(&json, name);
        assert_eq!(t["tier"], tier);
        let quota = &platform.tiers[tier].quota;
        let cpu_limit = usage_quantity(&quota.cpu, QuantityKind::Cpu).unwrap() as u64;
        let memory_limit = usage_quantity(&quota.memory, QuantityKind::Bytes).unwrap() as u64;
        let cpu = &t["quota"]["cpu"];
        assert_eq!(cpu["used_millicores"], t["cpu_millicores"]);
        assert_eq!(cpu["limit_millicores"], cpu_limit, "{name}");
        let used = cpu["used_millicores"].as_u64().unwrap();
        assert!(
            used > 0,
            "the fake's metrics give every running pod some CPU"
        );
        assert_eq!(cpu["percent"], one_decimal(used, cpu_limit), "{name}");
        let memory = &t["quota"]["memory"];
        assert_eq!(memory["limit_bytes"], memory_limit, "{name}");
        let used = memory["used_bytes"].as_u64().unwrap();
        assert_eq!(memory["percent"], one_decimal(used, memory_limit), "{name}");
        for (key, purpose) in [
            ("database", "sqlite-database"),
            ("whatsapp_auth", "whatsapp-auth-session"),
        ] {
            let volume = t["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["purpose"] == purpose)
                .unwrap();
            let q = &t["quota"][key];
            assert_eq!(q["limit_bytes"], volume["requested_bytes"], "{name} {key}");
            assert_eq!(q["used_bytes"], volume["used_bytes"], "{name} {key}");
        }
        assert_eq!(t["messages"], 9, "{name}: one message is older than a day");
    }
    // The small tier's database is 1Gi and the medium's 5Gi.
    assert_ne!(
        tenant(&json, "alpha")["quota"]["database"]["limit_bytes"],
        tenant(&json, "bravo")["quota"]["database"]["limit_bytes"]
    );
    let alpha = &tenant(&json, "alpha")["quota"]["messages"];
    assert_eq!(alpha["limit_per_day"], 10, "alpha's own override");
    assert_eq!(alpha["limit_source"], "config_map");
    assert_eq!(alpha["per_day_average"], 9.0);
    assert_eq!(alpha["percent"], 90.0);
    let bravo = &tenant(&json, "bravo")["quota"]["messages"];
    assert_eq!(
        bravo["limit_per_day"],
        platform.tiers["medium"].rate_limits.messages_per_day
    );
    assert_eq!(bravo["percent"], 0.0);
    // Over 30 days the same ten messages are a third of one a day.
    let month = usage_json(&cluster, &[]);
    let alpha = &tenant(&month, "alpha")["quota"]["messages"];
    assert_eq!(
        (alpha["per_day_average"].as_f64(), alpha["percent"].as_f64()),
        (Some(0.3), Some(3.3))
    );
    assert_eq!(month["period_days"], 30.0);
}

/// Without the bot's ConfigMap the tier's limit is used, and says so.
#[test]
fn without_its_config_map_the_tiers_daily_limit_counts() {
    let cluster = tiered_cluster();
    cluster.kubectl(&[
        "delete",
        "configmap",
        "bot-config",
        "--namespace",
        "tenant-alpha",
    ]);
    let json = usage_json(&cluster, &["--since", "1d"]);
    let alpha = &tenant(&json, "alpha")["quota"]["messages"];
    assert_eq!(
        alpha["limit_per_day"],
        platform().tiers["small"].rate_limits.messages_per_day
    );
    assert_eq!(alpha["limit_source"], "tier");
    assert_eq!(alpha["percent"], 0.2);
}

#[test]
fn warn_at_marks_the_tenants_at_or_above_it() {
    let cluster = tiered_cluster();
    let json = usage_json(&cluster, &["--since", "1d"]);
    assert_eq!(json["warn_at"], 80);
    assert_eq!(warnings(tenant(&json, "alpha")), ["messages"]);
    assert!(warnings(tenant(&json, "bravo")).is_empty());
    assert!(warnings(tenant(&json, "gamma")).is_empty());
    let table = stdout(&usage(&cluster, &["--since", "1d"], 0));
    assert!(
        table.lines().next().unwrap().ends_with("WARN (>=80%)"),
        "{table}"
    );
    assert!(table_row(&table, "alpha").ends_with(" messages"), "{table}");
    assert!(!table_row(&table, "bravo").contains("messages"), "{table}");
    // At exactly the threshold, marked; just above it, not.
    let at = usage_json(&cluster, &["--since", "1d", "--warn-at", "90"]);
    assert_eq!(warnings(tenant(&at, "alpha")), ["messages"]);
    let above = usage_json(&cluster, &["--since", "1d", "--warn-at", "91"]);
    assert!(warnings(tenant(&above, "alpha")).is_empty());
    assert_eq!(above["warn_at"], 91);
    // Memory of the fake's metrics is at least 40Mi of a 512Mi quota.
    let low = usage_json(&cluster, &["--since", "1d", "--warn-at", "1"]);
    assert!(
        warnings(tenant(&low, "bravo")).contains(&"memory"),
        "{low:#}"
    );
    assert!(
        !warnings(tenant(&low, "gamma")).contains(&"memory"),
        "gamma's memory limit is unknown: {low:#}"
    );
}

#[test]
fn fail_at_exits_1_after_the_report_when_a_tenant_reaches_it() {
    let cluster = tiered_cluster();
    let out = usage(&cluster, &["--since", "1d", "--fail-at", "90"], 1);
    let table = stdout(&out);
    for t in ["alpha", "bravo", "gamma", "TOTAL"] {
        table_row(&table, t);
    }
    let err = stderr(&out);
    assert!(
        err.contains("tenants at or above --fail-at 90% of a limit:\n  - alpha: messages at 90.0%"),
        "{err}"
    );
    assert!(!err.contains("bravo") && !err.contains("gamma"), "{err}");
    assert!(
        !err.contains("error:"),
        "a threshold is not an error: {err}"
    );

    let out = usage(&cluster, &["--since", "1d", "--fail-at", "91"], 0);
    assert!(!stderr(&out).contains("fail-at"), "{}", stderr(&out));

    // JSON is printed whole, then the exit status says it.
    let out = usage(
        &cluster,
        &["--since", "1d", "--fail-at", "90", "-o", "json"],
        1,
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["fail_at"], 90);
    assert_eq!(json["tenants"].as_array().unwrap().len(), 3);

    // --fail-at below --warn-at is allowed.
    usage(
        &cluster,
        &["--since", "1d", "--warn-at", "95", "--fail-at", "90"],
        1,
    );
}

/// Unknown percentages never reach a threshold, however low.
#[test]
fn unknown_values_never_fail() {
    let cluster = tiered_cluster();
    cluster.open().set_metrics_available(false).unwrap();
    let out = usage(&cluster, &["--since", "1d", "--fail-at", "1"], 1);
    let err = stderr(&out);
    // alpha's messages are known and over; no CPU or memory is known.
    assert!(err.contains("alpha: messages at 90.0%"), "{err}");
    assert!(!err.contains("cpu") && !err.contains("memory"), "{err}");
    assert!(!err.contains("gamma"), "{err}");
    let json = usage_json(&cluster, &["--since", "1d"]);
    let cpu = &tenant(&json, "bravo")["quota"]["cpu"];
    assert_eq!(cpu["percent"], Value::Null, "unknown is null, not 0");
    assert_eq!(cpu["limit_millicores"], 2000);
}

#[test]
fn thresholds_out_of_range_are_refused() {
    let cluster = tiered_cluster();
    let calls = cluster.calls().len();
    for (flag, value) in [
        ("--fail-at", "0"),
        ("--warn-at", "1001"),
        ("--fail-at", "90%"),
    ] {
        let out = exits(cluster.admin(&["usage", flag, value]), 2);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag} <PCT>'")),
            "{err}"
        );
        assert_eq!(
            cluster.calls().len(),
            calls,
            "refused before any kubectl call"
        );
    }
    // Other commands do not offer csv.
    let out = exits(cluster.admin(&["list", "-o", "csv"]), 2);
    assert!(
        stderr(&out).contains("[possible values: table, json, yaml]"),
        "{}",
        stderr(&out)
    );
}

/// The CSV report has one row per tenant and no total row; its columns sum
/// to the JSON totals and to the table's TOTAL row.
#[test]
fn csv_rows_sum_to_the_totals() {
    let cluster = tiered_cluster();
    let text = stdout(&usage(&cluster, &["-o", "csv"], 0));
    let json = usage_json(&cluster, &[]);
    let table = stdout(&usage(&cluster, &[], 0));

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3, "one row per tenant:\n{text}");
    let column = |name: &str| {
        let i = headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {headers:?}"));
        records.iter().map(move |r| r[i].to_owned())
    };
    let sum = |name: &str| -> u64 { column(name).map(|v| v.parse::<u64>().unwrap_or(0)).sum() };
    let total = &json["total"];
    for (csv_column, key) in [
        ("pods", "pods"),
        ("restarts", "restarts"),
        ("cpu_millicores", "cpu_millicores"),
        ("memory_bytes", "memory_bytes"),
        ("messages", "messages"),
        ("bot_runs", "bot_runs"),
    ] {
        assert_eq!(
            sum(csv_column),
            total[key].as_u64().unwrap(),
            "{csv_column}"
        );
    }
    assert_eq!(
        sum("database_used_bytes") + sum("whatsapp_auth_used_bytes"),
        total["used_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        sum("database_requested_bytes") + sum("whatsapp_auth_requested_bytes"),
        total["requested_bytes"].as_u64().unwrap()
    );
    // Costs are exact hundredths: summed as integers.
    let cost_sum: u64 = column("cost_total").map(|v| paise_of(&v)).sum();
    assert!(column("currency").all(|c| c == "INR"));
    let row = table_row(&table, "TOTAL");
    let cells: Vec<&str> = row.split_whitespace().collect();
    let storage = format!(
        "{}/{}",
        xtask::output::format_bytes(u128::from(
            sum("database_used_bytes") + sum("whatsapp_auth_used_bytes")
        )),
        xtask::output::format_bytes(u128::from(
            sum("database_requested_bytes") + sum("whatsapp_auth_requested_bytes")
        ))
    );
    assert_eq!(
        cells[2..],
        [
            sum("pods").to_string(),
            sum("restarts").to_string(),
            format!("{}m", sum("cpu_millicores")),
            xtask::output::format_bytes(u128::from(sum("memory_bytes"))),
            storage,
            sum("messages").to_string(),
            sum("bot_runs").to_string(),
            format!("{}.{:02}", cost_sum / 100, cost_sum % 100),
        ],
        "{table}"
    );
    assert_eq!(
        paise(&total["cost"]),
        cost_sum,
        "JSON's total cost is the CSV's sum"
    );

    // Self-describing: the period in every row, the odd tier as it was.
    assert!(column("period_start").all(|v| v == json["since"]));
    assert!(column("period_end").all(|v| v == json["time"]));
    assert_eq!(
        column("tier").collect::<Vec<_>>(),
        ["small", "medium", ODD_TIER]
    );
    assert!(text.contains("\"platinum \"\"plus\"\", 2027\""), "{text}");
    // Unknown is an empty field, not 0; percentages have one decimal.
    let gamma = records.iter().find(|r| &r[2] == "gamma").unwrap();
    let at = |name: &str| gamma[headers.iter().position(|h| h == name).unwrap()].to_owned();
    assert_eq!(
        (at("cpu_limit_millicores"), at("cpu_percent")),
        (String::new(), String::new())
    );
    assert_eq!(at("database_percent"), "0.0");
    assert_eq!(
        column("messages_percent").collect::<Vec<_>>(),
        ["3.3", "0.0", "0.0"]
    );
}

#[test]
fn a_tenant_whose_tier_is_unknown_gets_unknown_percentages() {
    let cluster = tiered_cluster();
    let json = usage_json(&cluster, &[]);
    let gamma = tenant(&json, "gamma");
    assert_eq!(gamma["tier"], ODD_TIER);
    for key in ["cpu", "memory"] {
        assert_eq!(gamma["quota"][key]["percent"], Value::Null, "{key}");
    }
    assert_eq!(gamma["quota"]["cpu"]["limit_millicores"], Value::Null);
    // Its volumes have their own sizes and its bot its own daily limit.
    assert_eq!(gamma["quota"]["database"]["percent"], 0.0);
    assert_eq!(gamma["quota"]["messages"]["limit_source"], "config_map");
    let note = gamma["note"].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "tier `{ODD_TIER}` is not in platform.yaml (it has large, medium, small)"
        )),
        "{note}"
    );
    let table = stdout(&usage(&cluster, &[], 0));
    let row = table_row(&table, "gamma");
    assert!(row.contains("m ?%"), "CPU known, its percentage not: {row}");
    assert!(table.contains("gamma: tier `platinum"), "{table}");
    // Its cost is unknown, and the TOTAL says it leaves it out.
    assert_eq!(gamma["cost"], Value::Null);
    assert!(
        table.contains(
            "The TOTAL cost leaves out 1 tenant whose tier platform.yaml does not price (cost ?)."
        ),
        "{table}"
    );

    // No tier annotation at all: the same, with its own note.
    cluster.kubectl(&[
        "annotate",
        "namespace/tenant-gamma",
        "mla-platform.in/tier-",
    ]);
    let json = usage_json(&cluster, &["gamma"]);
    let gamma = tenant(&json, "gamma");
    assert_eq!(gamma["tier"], Value::Null);
    assert_eq!(gamma["quota"]["memory"]["percent"], Value::Null);
    assert!(
        gamma["note"]
            .as_str()
            .unwrap()
            .contains("no mla-platform.in/tier annotation"),
        "{gamma:#}"
    );
}

/// The shape of `usage -o json` with limits and percentages, pinned.
#[test]
fn usage_json_shape() {
    let cluster = tiered_cluster();
    let json = usage_json(&cluster, &["--since", "1d", "--fail-at", "95"]);
    insta::assert_snapshot!(
        "usage-quota-json",
        serde_json::to_string_pretty(&json).unwrap()
    );
}

/// The CSV report's columns, cost per part and total included, pinned
/// (CRLF line ends shown as they are).
#[test]
fn usage_csv_shape() {
    let cluster = tiered_cluster();
    let text = stdout(&usage(&cluster, &["--since", "1d", "-o", "csv"], 0));
    insta::assert_snapshot!("usage-csv", text.replace("\r\n", "\\r\\n\n"));
}

/// The kubectl calls of `admin usage` grow by one per running bot (its
/// database is read inside its pod) and by nothing else: the same
/// cluster-wide reads at 3 tenants and at 300, and every database read.
#[test]
fn usage_reads_the_cluster_once_and_each_database_once() {
    for n in [3, 300] {
        let cluster = Cluster::new();
        let names: Vec<String> = (0..n).map(|i| format!("t{i:04}")).collect();
        common::seed_tenants(&cluster, &names);
        let db = cluster.state.path().join("seed.sqlite3");
        create_bot_database(&db, &["2026-11-20T10:00:00Z"; 3], &[], 3);
        for name in &names {
            std::fs::copy(&db, cluster.volume(name, "bot-data").join("bot.sqlite3")).unwrap();
        }
        let before = cluster.calls().len();
        let json = usage_json(&cluster, &["--since", "30d"]);
        let calls: Vec<Vec<String>> = cluster.calls().split_off(before);
        let execs = calls.iter().filter(|c| c[0] == "exec").count();
        let others: Vec<&Vec<String>> = calls.iter().filter(|c| c[0] != "exec").collect();
        assert_eq!(execs, n, "one database read per bot at {n} tenants");
        assert_eq!(others.len(), 7, "{n} tenants: {others:?}");
        assert!(
            others.iter().all(|c| c[0] == "get"),
            "{n} tenants: {others:?}"
        );
        let tenants = json["tenants"].as_array().unwrap();
        assert_eq!(tenants.len(), n);
        // Every database was read: each tenant's three messages counted.
        assert!(tenants.iter().all(|t| t["messages"] == 3), "{}", tenants[0]);
    }
}

/// The progress line counts the databases it reads, in the singular for
/// one (the issue saw "Reading 1 tenant databases").
#[test]
fn the_reading_line_counts_databases_in_words_that_agree() {
    let cluster = tiered_cluster();
    let one = stderr(&usage(&cluster, &["alpha"], 0));
    assert!(
        one.contains("Reading 1 tenant database, 1 at a time ...\n"),
        "{one}"
    );
    let all = stderr(&usage(&cluster, &[], 0));
    let line = all
        .lines()
        .find(|l| l.starts_with("Reading "))
        .unwrap_or_else(|| panic!("{all}"));
    let count: usize = line["Reading ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(count > 1, "{line}");
    assert!(
        line.starts_with(&format!("Reading {count} tenant databases, ")),
        "{line}"
    );
}

/// The daily series comes from the same single exec per bot as the counts
/// (one sqlite3 call, two queries): messages and bot runs per UTC day of
/// the period, oldest first, days without use left out, summing to the
/// period's counts. A tenant with no database has an empty series, no
/// message cost and its base cost, not an error.
#[test]
fn the_daily_series_comes_from_the_same_exec_as_the_counts() {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-20T06:00:00Z").unwrap();
    seed(
        &cluster,
        &[("alpha", "small", None), ("quiet", "small", None)],
    );
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(
        &db,
        &[
            "2026-11-21T10:00:00Z",
            "2026-11-21T23:59:59Z",
            // 22:30 UTC on the 21st, written with India's offset.
            "2026-11-22T04:00:00+05:30",
            "2026-11-23T00:00:00Z",
            // Before the period (NOW less 7 days is 2026-11-17T06:00:00Z).
            "2026-11-10T00:00:00Z",
        ],
        &["2026-11-22T12:00:00Z", "2026-11-01T00:00:00Z"],
        3,
    );
    let before = cluster.calls().len();
    let json = usage_json(&cluster, &["--since", "7d"]);
    let calls = cluster.calls().split_off(before);
    assert_eq!(
        calls.iter().filter(|c| c[0] == "exec").count(),
        2,
        "one exec per bot, the daily series included: {calls:?}"
    );
    let alpha = tenant(&json, "alpha");
    assert_eq!(
        (&alpha["messages"], &alpha["bot_runs"]),
        (&4.into(), &1.into())
    );
    let day = |date: &str, messages: u64, runs: u64| serde_json::json!({"date": date, "messages": messages, "bot_runs": runs});
    assert_eq!(
        alpha["daily"],
        Value::Array(vec![
            day("2026-11-21", 3, 0),
            day("2026-11-22", 0, 1),
            day("2026-11-23", 1, 0),
        ])
    );

    let quiet = tenant(&json, "quiet");
    assert_eq!(quiet["daily"], Value::Array(vec![]));
    assert_eq!(
        (&quiet["messages"], &quiet["note"]),
        (&0.into(), &"no database yet".into())
    );
    let cost = &quiet["cost"];
    // 499 a month for 7 days of 30: 116.4333... -> 116.43.
    assert_eq!(paise(&cost["base"]), 11643);
    assert_eq!(paise(&cost["messages"]), 0);
    assert_eq!(
        paise(&cost["total"]),
        ["base", "storage", "cpu", "memory", "messages"]
            .iter()
            .map(|k| paise(&cost[k]))
            .sum::<u64>()
    );
    let table = stdout(&usage(&cluster, &["quiet", "--since", "7d"], 0));
    assert!(
        table_row(&table, "quiet").ends_with(&format!(" {}", cost["total"])),
        "{table}"
    );
}

/// What the fake's sqlite3 prints for the tool's two queries is what the
/// real sqlite3 shell prints for them on the same database (when the
/// machine has one; CI's image does).
#[test]
fn the_fakes_sqlite3_prints_what_the_real_shell_prints() {
    let real = std::path::Path::new("/usr/bin/sqlite3");
    if !real.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs /usr/bin/sqlite3"
        );
        eprintln!("skipped: no /usr/bin/sqlite3");
        return;
    }
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-20T06:00:00Z").unwrap();
    seed(&cluster, &[("alpha", "small", None)]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    create_bot_database(
        &db,
        &[
            "2026-11-21T10:00:00Z",
            "2026-11-23T10:00:00Z",
            "2026-11-23T11:00:00Z",
        ],
        &["2026-11-22T12:00:00Z"],
        3,
    );
    let before = cluster.calls().len();
    usage_json(&cluster, &["--since", "30d"]);
    let calls = cluster.calls().split_off(before);
    let exec = calls.iter().find(|c| c[0] == "exec").unwrap();
    let args: Vec<&str> = exec.iter().map(String::as_str).collect();
    let fake = cluster.kubectl(&args).stdout;
    let sql = exec.last().unwrap();
    let out = std::process::Command::new(real)
        .args(["-readonly", "-json"])
        .arg(&db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&fake),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&fake).contains("\"date\":\"2026-11-23\",\"messages\":2"));
    // A failing statement: the real shell prints what came before, then
    // fails; so does the fake, through kubectl exec's exit status.
    let mut broken = args.clone();
    let bad = "SELECT 1 AS a; SELECT * FROM nope";
    *broken.last_mut().unwrap() = bad;
    let fake = cluster.kubectl_output(&broken);
    let real = std::process::Command::new(real)
        .args(["-readonly", "-json"])
        .arg(&db)
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(fake.stdout, real.stdout);
    assert_eq!(fake.status.code(), Some(1));
    assert_eq!(real.status.code(), Some(1));
    let (fake_err, real_err) = (
        stderr(&fake),
        String::from_utf8_lossy(&real.stderr).to_string(),
    );
    assert!(
        fake_err.starts_with(real_err.trim_end()),
        "{fake_err}\n{real_err}"
    );
    assert!(
        fake_err.contains("command terminated with exit code 1"),
        "{fake_err}"
    );
}

/// Costs sum exactly: every tenant's total is the sum of its parts, and
/// the fleet's total the sum of the tenants' totals, in the JSON, the
/// table, the CSV and the Prometheus metrics alike; on prices and a period
/// where summing unrounded costs would give another answer.
#[test]
fn costs_sum_exactly_across_tenants() {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-11-01T06:00:00Z").unwrap();
    let tenants = [
        ("t1", "small", None),
        ("t2", "small", None),
        ("t3", "medium", None),
        ("t4", "small", None),
        ("t5", "large", None),
        ("t6", "small", None),
    ];
    seed(&cluster, &tenants);
    for (i, (name, _, _)) in tenants.iter().enumerate() {
        let db = cluster.volume(name, "bot-data").join("bot.sqlite3");
        let messages = vec!["2026-11-23T10:00:00Z"; 1 + 333 * i];
        create_bot_database(&db, &messages, &[], 3);
    }
    let text = std::fs::read_to_string(repo_root().join("platform.yaml"))
        .unwrap()
        .replace("small: {monthly: 499}", "small: {monthly: 333.33}")
        .replace("medium: {monthly: 1499}", "medium: {monthly: 1111.1111}")
        .replace(
            "per_gib_storage_requested_month: 8.5",
            "per_gib_storage_requested_month: 7.7777",
        )
        .replace("per_1000_messages: 0.5", "per_1000_messages: 1.0049");
    let dir = tempfile::tempdir().unwrap();
    let platform_file = dir.path().join("platform.yaml");
    std::fs::write(&platform_file, &text).unwrap();
    let platform_arg = platform_file.to_str().unwrap();
    let args = ["--since", "7d", "--platform", platform_arg];

    let json = usage_json(&cluster, &args);
    let rows = json["tenants"].as_array().unwrap();
    assert_eq!(rows.len(), tenants.len());
    let mut sum = 0;
    let mut unrounded = 0.0;
    let platform = Platform::parse("p", &text).unwrap();
    for row in rows {
        let cost = &row["cost"];
        let parts: u64 = ["base", "storage", "cpu", "memory", "messages"]
            .iter()
            .map(|k| paise(&cost[k]))
            .sum();
        assert_eq!(paise(&cost["total"]), parts, "{row:#}");
        sum += paise(&cost["total"]);
        // The same cost without rounding, in paise.
        let tier = &platform.tiers[row["tier"].as_str().unwrap()];
        let c = &platform.cost;
        let gib = (1u64 << 30) as f64;
        let requested: u64 = row["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["requested_bytes"].as_u64().unwrap())
            .sum();
        let cpu = usage_quantity(&tier.bot.cpu_request, QuantityKind::Cpu).unwrap() as f64 / 1000.0;
        let memory = usage_quantity(&tier.bot.memory_request, QuantityKind::Bytes).unwrap() as f64;
        let monthly = c.tiers[row["tier"].as_str().unwrap()].monthly
            + c.per_gib_storage_requested_month * requested as f64 / gib
            + c.per_cpu_core_requested_month * cpu
            + c.per_gib_memory_requested_month * memory / gib;
        unrounded += 100.0
            * (monthly * 7.0 / 30.0
                + c.per_1000_messages * row["messages"].as_u64().unwrap() as f64 / 1000.0);
    }
    assert_eq!(paise(&json["total"]["cost"]), sum);
    assert_ne!(
        unrounded.round() as u64,
        sum,
        "the numbers are awkward enough that a total of unrounded costs would differ"
    );
    let shown = format!("{}.{:02}", sum / 100, sum % 100);

    let table = stdout(&usage(&cluster, &args, 0));
    assert!(
        table_row(&table, "TOTAL").ends_with(&format!(" {shown}")),
        "{table}"
    );
    let csv = stdout(&usage(&cluster, &[&args[..], &["-o", "csv"]].concat(), 0));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let i = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "cost_total")
        .unwrap();
    let csv_sum: u64 = reader.records().map(|r| paise_of(&r.unwrap()[i])).sum();
    assert_eq!(csv_sum, sum, "{csv}");
    let metrics = stdout(&usage(
        &cluster,
        &[&args[..], &["-o", "prometheus"]].concat(),
        0,
    ));
    let samples = |name: &str| -> Vec<u64> {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(|l| paise(&l.rsplit(' ').next().unwrap().parse::<f64>().unwrap().into()))
            .collect()
    };
    assert_eq!(
        samples("mla_tenant_cost").iter().sum::<u64>(),
        sum,
        "{metrics}"
    );
    assert_eq!(samples("mla_fleet_cost"), [sum], "{metrics}");
}
