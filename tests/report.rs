//! `admin usage --report FILE.html` end to end: the page made from a fleet
//! of the fake (a stopped bot whose database is not read, a tenant whose
//! tier text is Devanagari with markup in it) opens in headless Chromium
//! with no console message and is not blank; its table rows and charts for
//! a small fleet; its size at 1,000 tenants, and their paging, search and
//! sorting in the browser; every outside text escaped.
//!
//! Chromium is Debian's package (`.ci/run` installs it when absent). These
//! tests skip without it only outside CI; with CI set, its absence fails.
//! `XTASK_UPDATE_SCREENSHOT=1` also saves the fleet's screenshot as
//! docs/images/usage-report.png (the README shows it).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Cluster, create_bot_database, exits, repo_root, stderr, stdout};
use serde_json::{Value, json};
use wait_timeout::ChildExt;

const NOW: &str = "2026-11-24T06:00:00Z";
/// The page's root once its script has run to its end.
const READY: &str = "<html lang=\"en\" data-ready=\"\">";
const CHROMIUM: &str = "/usr/bin/chromium";
/// A tier annotation no tier has: Devanagari, quotes and markup, which
/// `admin usage` repeats in the tenant's tier and note.
const PLANTED: &str = "ठाणे \"शहर\" <script>alert('x')</script>";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Debian's chromium, or None (and the test skips) outside CI.
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "{CHROMIUM} is missing and CI is set: .ci/run installs Debian's chromium \
         (apt-get install -y --no-install-recommends chromium)"
    );
    eprintln!("skipped: no {CHROMIUM}; run .ci/run or apt-get install chromium");
    None
}

/// What headless Chromium made of a page.
struct Rendered {
    /// The DOM after the page's script ran (`--dump-dom`).
    dom: String,
    /// The page's console messages: every `console.*` call and every
    /// uncaught error or failed load, as Chromium logs them to stderr
    /// (`[...:INFO:CONSOLE:12] "Uncaught ReferenceError: ...", source: ...`).
    console: Vec<String>,
}

/// Runs Chromium headless on `url` with a fresh profile and no network
/// services; `extra` picks what it does (dump the DOM, take a screenshot).
fn run_chromium(bin: &Path, extra: &[&str], url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes while it runs, so that neither fills and blocks it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let Some(status) = child.wait_timeout(Duration::from_secs(120)).unwrap() else {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("chromium did not finish {url} within 120 s");
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium {url}: {status}\n{err}");
    (out, err)
}

fn url(file: &Path) -> String {
    format!("file://{}", file.display())
}

fn render(bin: &Path, url: &str) -> Rendered {
    let (dom, err) = run_chromium(
        bin,
        &["--enable-logging=stderr", "--v=0", "--dump-dom"],
        url,
    );
    let console = err
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Rendered { dom, console }
}

/// A screenshot of `file` at 1280×1600, as PNG bytes.
fn screenshot(bin: &Path, file: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    run_chromium(
        bin,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1600",
        ],
        &url(file),
    );
    std::fs::read(&png).unwrap()
}

/// The share of pixels that are not (near) white, and how many distinct
/// colours the image has.
fn ink(png_bytes: &[u8]) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{info:?}");
    assert!(channels >= 3, "a colour screenshot: {info:?}");
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let mut colours = std::collections::HashSet::new();
    let (mut inked, mut all) = (0usize, 0usize);
    for p in pixels {
        all += 1;
        colours.insert((p[0], p[1], p[2]));
        if p[..3].iter().any(|c| *c < 235) {
            inked += 1;
        }
    }
    (inked as f64 / all as f64, colours.len())
}

/// The body rows of the tenants table in a DOM: (class attribute, tenant).
fn body_rows(dom: &str) -> Vec<(String, String)> {
    let start = dom.find("<tbody>").expect("a tbody");
    let end = dom.find("</tbody>").expect("a tbody's end");
    dom[start..end]
        .split("<tr")
        .skip(1)
        .map(|tr| {
            let tag = &tr[..tr.find('>').unwrap()];
            let class = tag
                .split("class=\"")
                .nth(1)
                .map(|c| c[..c.find('"').unwrap()].to_owned())
                .unwrap_or_default();
            let name = tr.split("<th scope=\"row\">").nth(1).unwrap();
            (class, name[..name.find("</th>").unwrap()].to_owned())
        })
        .collect()
}

/// The rows a reader sees: neither filtered out nor on another page.
fn visible(dom: &str) -> Vec<String> {
    body_rows(dom)
        .into_iter()
        .filter(|(class, _)| !class.split(' ').any(|c| c == "out" || c == "off"))
        .map(|(_, name)| name)
        .collect()
}

const FLEET: [&str; 12] = [
    "pune-central",
    "kalyan",
    "nagpur-south",
    "thane",
    "nashik-east",
    "kolhapur",
    "aurangabad",
    "solapur",
    "amravati",
    "latur",
    "satara",
    "sangli",
];
/// Its bot is scaled to 0: no database is read, messages are unknown.
const STOPPED: &str = "kalyan";
/// Its namespace's tier annotation is [`PLANTED`].
const ODD: &str = "thane";

/// The messages of the `i`th tenant of [`FLEET`]: on days of November
/// 2026 that differ from tenant to tenant, more for the first ones.
fn message_times(i: usize) -> Vec<String> {
    (0..(60 - i * 4))
        .map(|m| {
            let day = 1 + (m * 7 + i * 3) % 23;
            format!("2026-11-{day:02}T{:02}:00:00Z", m % 24)
        })
        .collect()
}

/// A fleet of the fake, as provision leaves it: small, medium and large
/// tiers, every running bot with its database.
fn fleet() -> Cluster {
    let cluster = Cluster::new();
    cluster.open().set_clock("2026-10-20T06:00:00Z").unwrap();
    let names: Vec<String> = FLEET.iter().map(|n| n.to_string()).collect();
    common::seed_tenants_with(&cluster, &names, |i, values| {
        values.tier = Some(["small", "medium", "large"][i % 3].to_owned());
    });
    cluster.kubectl(&[
        "scale",
        "deployment/bot",
        "--namespace",
        &format!("tenant-{STOPPED}"),
        "--replicas=0",
    ]);
    cluster.kubectl(&[
        "annotate",
        &format!("namespace/tenant-{ODD}"),
        &format!("mla-platform.in/tier={PLANTED}"),
        "--overwrite",
    ]);
    for (i, name) in FLEET.iter().enumerate() {
        let times = message_times(i);
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        let db = cluster.volume(name, "bot-data").join("bot.sqlite3");
        create_bot_database(&db, &times, &["2026-11-03T00:00:00Z"], 3);
    }
    cluster
}

fn usage(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    let mut cmd = cluster.admin(&["usage"]);
    cmd.args(args).env("XTASK_NOW", NOW);
    exits(cmd, 0)
}

/// The CLI writes the page from the same data it prints, leaves stdout as
/// it was, says where the page is; the page opens in Chromium without a
/// console message, its script ran, and the planted text is only text.
#[test]
fn the_fleets_report_opens_in_chromium_without_errors() {
    let cluster = fleet();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usage.html");
    let plain = usage(&cluster, &["-o", "json"]);
    let out = usage(
        &cluster,
        &["-o", "json", "--report", file.to_str().unwrap()],
    );
    assert_eq!(stdout(&out), stdout(&plain), "stdout does not change");
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(
        stderr(&out).contains(&format!(
            "Report written to {} ({} bytes).",
            file.display(),
            page.len()
        )),
        "{}",
        stderr(&out)
    );
    // A page to share: others may read it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{mode:o}");
    }
    let stopped = json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == STOPPED)
        .unwrap();
    assert_eq!(
        (stopped["name"].as_str(), &stopped["messages"]),
        (Some(STOPPED), &Value::Null)
    );
    assert!(page.contains(&format!(
        "<tr><th scope=\"row\">{STOPPED}</th><td>medium</td><td><span class=\"state stopped\">stopped</span></td><td data-v=\"\">—</td>"
    )));
    assert!(!page.contains(PLANTED), "the planted markup is escaped");
    assert!(page.contains("ठाणे &quot;शहर&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_eq!(page.matches("<script").count(), 1, "only the page's own");
    // With -o table (no stdout JSON), the page is the same but its time.
    let table_file = dir.path().join("table.html");
    usage(&cluster, &["--report", table_file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&table_file).unwrap(), page);

    let Some(bin) = chromium() else { return };
    let rendered = render(bin, &url(&file));
    assert!(
        rendered.console.is_empty(),
        "console messages:\n{}",
        rendered.console.join("\n")
    );
    assert!(rendered.dom.contains(READY), "the script ran to its end");
    assert_eq!(visible(&rendered.dom).len(), FLEET.len(), "one page");
    assert!(
        rendered.dom.contains(&format!(
            "Tenants 1–{n} of {n}, page 1 of 1",
            n = FLEET.len()
        )),
        "the pager says what it shows"
    );
}

/// The same page with a planted script error, and a page with a console
/// error: the console check sees both (so its silence above means something).
#[test]
fn the_console_check_catches_a_planted_error() {
    let Some(bin) = chromium() else { return };
    let page = xtask::report::html(&three_tenants()).unwrap();
    let broken = page.replacen("\"use strict\";", "\"use strict\"; notAFunction();", 1);
    assert_ne!(broken, page);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.html");
    std::fs::write(&file, broken).unwrap();
    let rendered = render(bin, &url(&file));
    assert!(
        rendered
            .console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError: notAFunction is not defined")),
        "{:?}",
        rendered.console
    );
    assert!(!rendered.dom.contains(READY), "the script stopped");
    let logged = dir.path().join("logged.html");
    std::fs::write(
        &logged,
        "<!DOCTYPE html><title>t</title><script>console.error('planted')</script>",
    )
    .unwrap();
    let rendered = render(bin, &url(&logged));
    assert!(
        rendered.console.iter().any(|l| l.contains("\"planted\"")),
        "{:?}",
        rendered.console
    );
}

/// With the real figures of `admin usage -o json --env dev` (cost, daily
/// series, currency, environment), the fleet's page has its charts and
/// lines, shows the environment, and its screenshot is not blank; a blank
/// page's screenshot is.
#[test]
fn the_full_report_is_drawn() {
    let cluster = fleet();
    // The real figures: platform.yaml's cost model, the daily series read
    // with the counts, the run's environment and context.
    let full: Value =
        serde_json::from_str(&stdout(&usage(&cluster, &["-o", "json", "--env", "dev"]))).unwrap();
    assert_eq!(full["currency"], "INR");
    let page = xtask::report::html(&full).unwrap();
    assert!(page.contains("<div><dt>Environment</dt><dd>dev</dd></div>"));
    assert!(page.contains("<div><dt>Context</dt><dd>kind-mla-dev</dd></div>"));
    let cost = format!("{:.2} INR", full["total"]["cost"].as_f64().unwrap());
    assert!(
        page.contains(&format!("<dt>Cost</dt><dd>{cost}</dd>")),
        "{cost}"
    );
    assert_eq!(
        page.matches("<svg class=\"spark\"").count(),
        FLEET.len() - 1
    );
    assert_eq!(
        page.matches("<rect ").count(),
        10 + 10 + 10,
        "ten bars in each chart"
    );
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("full.html");
    std::fs::write(&file, &page).unwrap();
    let rendered = render(bin, &url(&file));
    assert!(rendered.console.is_empty(), "{:?}", rendered.console);
    let shot = screenshot(bin, &file);
    let (share, colours) = ink(&shot);
    assert!(
        share > 0.05 && colours > 100,
        "a drawn page: {share:.3} of the pixels inked, {colours} colours"
    );
    if std::env::var_os("XTASK_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(repo_root().join("docs/images/usage-report.png"), &shot).unwrap();
    }

    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><title>blank</title>").unwrap();
    let (share, colours) = ink(&screenshot(bin, &blank));
    assert!(share < 0.01 && colours < 5, "{share} {colours}");
}

/// Three tenants as `admin usage -o json` with the contract's fields would
/// give them: a busy one, a stopped one (nothing known) and one with
/// planted text everywhere a text can be.
fn three_tenants() -> Value {
    let quota = |cpu: Value, messages: Value| {
        json!({"cpu": {"percent": cpu}, "memory": {"percent": 40.0}, "database": {"percent": 1.5},
               "whatsapp_auth": {"percent": null}, "messages": {"percent": messages}})
    };
    json!({
        "time": NOW, "since": "2026-11-21T06:00:00Z", "period_days": 3.0,
        "environment": "prod", "context": "prod-mumbai", "currency": "INR", "warn_at": 80,
        "tenants": [
            {"name": "pune-central", "state": "running", "tier": "medium", "messages": 1200,
             "bot_runs": 3, "cost": {"total": 1059.0}, "quota": quota(json!(12.5), json!(90.0)),
             "warnings": ["messages"], "note": null,
             "daily": [{"date": "2026-11-21", "messages": 200, "bot_runs": 1},
                       {"date": "2026-11-22", "messages": 600, "bot_runs": 1},
                       {"date": "2026-11-24", "messages": 400, "bot_runs": 1}]},
            {"name": "kalyan", "state": "stopped", "tier": "small", "messages": null,
             "bot_runs": null, "cost": null, "quota": quota(Value::Null, Value::Null),
             "warnings": [], "note": "stopped; database not read", "daily": []},
            {"name": "thane", "state": "running", "tier": PLANTED, "messages": 7,
             "bot_runs": 0, "cost": {"total": 499.35}, "quota": quota(json!(3.0), json!(0.1)),
             "warnings": [], "note": format!("tier `{PLANTED}` is not in platform.yaml"),
             "daily": [{"date": "2026-11-23", "messages": 7, "bot_runs": 0}]}
        ],
        "total": {"tenants": 3, "messages": 1207, "bot_runs": 3, "cost": 1558.35},
        "errors": []
    })
}

/// The table rows and the charts of a small fleet, pinned: a change to
/// what a row shows, or to how many bars and lines are drawn, is reviewed.
#[test]
fn a_small_fleets_rows_and_charts() {
    let page = xtask::report::html(&three_tenants()).unwrap();
    let rows: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("<tr><th scope=\"row\">"))
        .collect();
    let count = |s: &str| page.matches(s).count();
    let summary = format!(
        "{}\n\nsvg: {}, rect: {}, polyline: {}, figure: {}, th: {}, script: {}\n{}",
        rows.join("\n"),
        count("<svg"),
        count("<rect "),
        count("<polyline "),
        count("<figure>"),
        count("<th "),
        count("<script"),
        page.lines()
            .filter(|l| l.starts_with("<figcaption") || l.starts_with("<svg role"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    insta::assert_snapshot!(summary);
}

/// Everything from the data is text: no planted markup reaches the page
/// unescaped, wherever it is planted.
#[test]
fn every_outside_text_is_escaped() {
    let planted = "<img src=x onerror=alert(1)>\"'&";
    let mut usage = three_tenants();
    usage["environment"] = json!(planted);
    usage["context"] = json!(planted);
    usage["currency"] = json!(planted);
    usage["since"] = json!(planted);
    usage["errors"] = json!([planted]);
    let t = &mut usage["tenants"][0];
    t["name"] = json!(planted);
    t["state"] = json!(planted);
    t["note"] = json!(planted);
    t["warnings"] = json!([planted]);
    let page = xtask::report::html(&usage).unwrap();
    assert!(!page.contains("<img"), "markup planted as data");
    assert!(!page.contains("\"'&"), "quotes and ampersands");
    let escaped = "&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;";
    // The title, the header (twice), the currency (three times), the
    // error, the row (name, state class and text, warnings, note), the
    // bar charts' labels and titles, the sparkline's title.
    assert!(
        page.matches(escaped).count() >= 15,
        "{}",
        page.matches(escaped).count()
    );
    assert!(page.contains(&format!("<li>{escaped}</li>")));
}

/// 1,000 tenants with 30 days each make a page well under 3 MiB whose
/// table shows 50 rows a page; a link's `#q=` searches and `#sort=`
/// sorts it in the browser.
#[test]
fn a_thousand_tenants_stay_small_and_paged() {
    let tiers = ["small", "medium", "large"];
    let tenants: Vec<Value> = (0..1000u64)
        .map(|i| {
            let daily: Vec<Value> = (1..=30)
                .map(|d| json!({"date": format!("2026-11-{d:02}"), "messages": (i * d) % 97, "bot_runs": 1}))
                .collect();
            json!({"name": format!("tenant-{i:04}"), "namespace": format!("tenant-tenant-{i:04}"),
                   "state": if i % 50 == 7 { "stopped" } else { "running" },
                   "tier": tiers[(i % 3) as usize],
                   "messages": (i * 7919) % 10_007, "bot_runs": 30,
                   "cost": {"total": 499.0 + (i % 13) as f64 * 10.25},
                   "quota": {"cpu": {"percent": (i % 100) as f64}, "messages": {"percent": (i % 83) as f64}},
                   "warnings": if i % 100 >= 80 { json!(["cpu"]) } else { json!([]) },
                   "note": if i % 10 == 0 { json!("a note: पुणे") } else { Value::Null },
                   "daily": daily})
        })
        .collect();
    let usage = json!({"time": "2026-12-01T00:00:00Z", "since": "2026-11-01T00:00:00Z",
        "period_days": 30.0, "environment": "prod", "currency": "INR", "warn_at": 80,
        "tenants": tenants, "total": {"tenants": 1000}});
    let page = xtask::report::html(&usage).unwrap();
    eprintln!("1,000 tenants: {} bytes", page.len());
    assert!(page.len() < 3 << 20, "{} bytes", page.len());
    assert_eq!(page.matches("<svg class=\"spark\"").count(), 1000);

    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.html");
    std::fs::write(&file, &page).unwrap();
    let rendered = render(bin, &url(&file));
    assert!(rendered.console.is_empty(), "{:?}", rendered.console);
    assert_eq!(body_rows(&rendered.dom).len(), 1000);
    let first: Vec<String> = (0..50).map(|i| format!("tenant-{i:04}")).collect();
    assert_eq!(visible(&rendered.dom), first, "page 1 in the data's order");
    assert!(rendered.dom.contains("Tenants 1–50 of 1000, page 1 of 20"));

    // The most messages first: (i * 7919) % 10007 is largest at i = 139 (10006)...
    let most = (0..1000u64).max_by_key(|i| (i * 7919) % 10_007).unwrap();
    let sorted = render(bin, &format!("{}#sort=-Messages", url(&file)));
    assert!(sorted.console.is_empty(), "{:?}", sorted.console);
    let shown = visible(&sorted.dom);
    assert_eq!(shown.len(), 50);
    assert_eq!(shown[0], format!("tenant-{most:04}"));
    assert!(sorted.dom.contains("aria-sort=\"descending\""));
    // Searching "पुणे stopped" finds the tenants with both: i % 10 == 0
    // and i % 50 == 7 never meet, so none; "पुणे large" finds 34.
    let none = render(bin, &format!("{}#q=पुणे%20stopped", url(&file)));
    assert!(visible(&none.dom).is_empty());
    assert!(none.dom.contains("No tenant matches."));
    let some = render(bin, &format!("{}#q=पुणे%20large", url(&file)));
    let expected = (0..1000).filter(|i| i % 10 == 0 && i % 3 == 2).count();
    assert!(
        some.dom.contains(&format!(
            "Tenants 1–{expected} of {expected} (of 1000), page 1 of 1"
        )),
        "{expected}"
    );
}

/// A directory as the report's file is refused before any cluster call,
/// with the way out.
#[test]
fn a_directory_is_not_a_report_file() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = cluster.admin(&["usage", "--report"]);
    cmd.arg(dir.path());
    let out = exits(cmd, 1);
    assert!(
        stderr(&out)
            .contains("is a directory; name the file to write, e.g. --report usage-2026-11.html"),
        "{}",
        stderr(&out)
    );
    assert!(cluster.calls().is_empty(), "{:?}", cluster.calls());

    // Never a link, a device or a pipe: the report would replace it.
    let target = dir.path().join("target.html");
    std::fs::write(&target, "kept").unwrap();
    let link = dir.path().join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for not_a_file in [link.as_path(), Path::new("/dev/null")] {
        let mut cmd = cluster.admin(&["usage", "--report"]);
        cmd.arg(not_a_file);
        let out = exits(cmd, 1);
        assert!(
            stderr(&out).contains("exists and is not a regular file"),
            "{}",
            stderr(&out)
        );
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
    // A directory that does not exist is not made.
    let mut cmd = cluster.admin(&["usage", "--report"]);
    cmd.arg(dir.path().join("missing/usage.html"));
    let out = exits(cmd, 1);
    assert!(
        stderr(&out).contains("does not exist; create it first"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("missing").exists());
    assert!(
        cluster.calls().is_empty(),
        "refused before the cluster was read"
    );
}

/// Nothing in the page loads from elsewhere: no source, link, import or
/// address, so it opens offline and leaks nothing when opened.
#[test]
fn the_page_is_self_contained() {
    let page = xtask::report::html(&three_tenants()).unwrap();
    for outside in [
        "src=", "href=", "url(", "@import", "<link", "http:", "https:",
    ] {
        assert!(!page.contains(outside), "{outside}");
    }
}

/// Without JavaScript every row shows (no paging: only the script marks
/// rows off a page) and the controls that need the script stay hidden;
/// with it, the same page shows 50 rows.
#[test]
fn without_javascript_every_row_shows() {
    let mut usage = three_tenants();
    let tenants = usage["tenants"].as_array_mut().unwrap();
    let first = tenants[0].clone();
    for i in 0..120 {
        let mut t = first.clone();
        t["name"] = json!(format!("t{i:03}"));
        tenants.push(t);
    }
    let page = xtask::report::html(&usage).unwrap();
    // Chromium's --dump-dom needs JavaScript; the page as written is what
    // a browser without it shows.
    assert_eq!(visible(&page).len(), 123);
    assert!(page.contains("<div id=\"controls\" class=\"controls\" hidden>"));
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("static.html");
    std::fs::write(&file, &page).unwrap();
    let dom = render(bin, &url(&file)).dom;
    assert_eq!(visible(&dom).len(), 50);
    assert!(dom.contains("<div id=\"controls\" class=\"controls\">"));
}
