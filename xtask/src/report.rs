//! The usage report (`admin usage --report FILE.html`): one self-contained
//! HTML page made from the value `admin usage -o json` prints. No network:
//! no external script, style, font or image; the charts are inline SVG
//! drawn here, and the table's sorting, search and paging are a small
//! inline script of our own over rows that are all in the page, so that
//! the page reads (and prints) whole without JavaScript.
//!
//! Every text from the data is escaped; a missing value (a bot whose
//! database could not be read, a tier without a price) is shown as `—`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// How many tenants each "top" chart shows.
const TOP: usize = 10;
/// Rows per page of the table when the script runs (all rows without it).
const PAGE_ROWS: usize = 50;
/// What a missing value is shown as.
const MISSING: &str = "—";
/// The quota limits of a tenant's `quota`, as `admin usage` names them.
const LIMITS: [&str; 5] = ["cpu", "memory", "database", "whatsapp_auth", "messages"];

/// Refuses a report path that cannot be written as a file, before any
/// cluster call: an existing directory, or one with no file name.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() || path.file_name().is_none() {
        anyhow::bail!(
            "--report {}: is a directory; name the file to write, e.g. --report usage-2026-11.html",
            path.display()
        );
    }
    // Only a regular file is replaced: never a device, a FIFO or a
    // symlink (whose target would stay and the link become a file).
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_file()
    {
        anyhow::bail!(
            "--report {}: exists and is not a regular file (a link, a device or a pipe), which the report \
             would replace; name another file",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "--report {}: the directory {} does not exist; create it first, or name a file in one that does",
            path.display(),
            dir.display()
        );
    }
    // Found now, before the databases are read, not after.
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        anyhow::anyhow!(
            "--report {}: cannot write in {} ({e}); name a file in a directory you may write to",
            path.display(),
            dir.display()
        )
    })?;
    Ok(())
}

/// Renders the report of `usage` and writes it to `path` atomically (a
/// reader never sees half a page); returns its size in bytes.
pub fn write(path: &Path, usage: &Value) -> anyhow::Result<usize> {
    let page = html(usage)?;
    crate::files::write_atomic(path, page.as_bytes())
        .with_context(|| format!("cannot write the report to {}", path.display()))?;
    // A page to share: readable by others, as a file saved by a browser is.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot make {} readable", path.display()))?;
    }
    Ok(page.len())
}

/// One tenant as the report shows it, read leniently from its JSON.
struct Row<'a> {
    name: &'a str,
    tier: Option<&'a str>,
    state: Option<&'a str>,
    messages: Option<u64>,
    bot_runs: Option<u64>,
    cost: Option<f64>,
    /// The highest known percentage of a limit, and that limit's name.
    quota: Option<(f64, &'static str)>,
    warnings: Vec<&'a str>,
    note: Option<&'a str>,
    /// (day number since 1970, messages) of the days with activity.
    daily: Vec<(i64, u64)>,
}

impl<'a> Row<'a> {
    fn read(t: &'a Value) -> Row<'a> {
        let quota = LIMITS
            .iter()
            .filter_map(|l| t["quota"][*l]["percent"].as_f64().map(|p| (p, *l)))
            .fold(None, |best: Option<(f64, &str)>, (p, l)| match best {
                Some((b, _)) if b >= p => best,
                _ => Some((p, l)),
            });
        let daily = t["daily"]
            .as_array()
            .map(|days| {
                days.iter()
                    .filter_map(|d| {
                        Some((day_number(d["date"].as_str()?)?, d["messages"].as_u64()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Row {
            name: t["name"].as_str().unwrap_or(MISSING),
            tier: t["tier"].as_str(),
            state: t["state"].as_str(),
            messages: t["messages"].as_u64(),
            bot_runs: t["bot_runs"].as_u64(),
            cost: t["cost"]["total"].as_f64(),
            quota,
            warnings: t["warnings"]
                .as_array()
                .map(|w| w.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
            note: t["note"].as_str().filter(|n| !n.is_empty()),
            daily,
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (or the date of an RFC
/// 3339 time).
fn day_number(date: &str) -> Option<i64> {
    let date = date.get(..10)?;
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some((secs / 86_400) as i64)
}

/// Text made safe inside HTML and SVG, in element content and in quoted
/// attributes alike; control characters other than tab and newline (which
/// HTML does not allow) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` when cut (chart labels).
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some(_) => text.chars().take(max - 1).chain(['…']).collect(),
        None => text.to_owned(),
    }
}

fn count(v: Option<u64>) -> String {
    v.map_or_else(|| MISSING.to_owned(), |v| v.to_string())
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| MISSING.to_owned(), |v| format!("{v:.2}"))
}

/// The raw value a table cell sorts by (empty for a missing value, which
/// sorts last either way).
fn sort_key(v: Option<impl std::fmt::Display>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The report of `usage` (the value of `admin usage -o json`) as one HTML page.
pub fn html(usage: &Value) -> anyhow::Result<String> {
    let tenants = usage["tenants"].as_array().context(
        "the usage data has no `tenants` list: make the report from `admin usage -o json`'s output",
    )?;
    let rows: Vec<Row> = tenants.iter().map(Row::read).collect();
    let text = |key: &str| usage[key].as_str().map(escape);
    let currency = text("currency").unwrap_or_default();
    let environment = text("environment").unwrap_or_else(|| MISSING.to_owned());
    let context = text("context").unwrap_or_else(|| MISSING.to_owned());
    let time = text("time").unwrap_or_else(|| MISSING.to_owned());
    let since = text("since").unwrap_or_else(|| MISSING.to_owned());
    let days = usage["period_days"].as_f64().map_or_else(
        || MISSING.to_owned(),
        |d| format!("{d} day{}", if d == 1.0 { "" } else { "s" }),
    );
    let warn_at = usage["warn_at"].as_f64();
    // The days the sparklines span: the period's first to its last date.
    let first_day = usage["since"].as_str().and_then(day_number);
    let last_day = usage["time"].as_str().and_then(day_number);
    let span = match (first_day, last_day) {
        (Some(a), Some(b)) if b >= a => Some((a, b)),
        _ => {
            let all = rows.iter().flat_map(|r| r.daily.iter().map(|d| d.0));
            all.clone().min().zip(all.max())
        }
    };

    let mut page = String::with_capacity(4096 + rows.len() * 1024);
    let title = format!("Tenant usage, {environment}, {since} to {time}");
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"cargo xtask admin usage --report\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1>Tenant usage</h1>\n<dl class=\"meta\">\
         <div><dt>Period</dt><dd><time>{since}</time> to <time>{time}</time> ({days})</dd></div>\
         <div><dt>Environment</dt><dd>{environment}</dd></div>\
         <div><dt>Context</dt><dd>{context}</dd></div>\
         <div><dt>Made</dt><dd><time>{time}</time></dd></div></dl>\n</header>\n<main>\n"
    );

    // Fleet totals.
    let total = &usage["total"];
    let total_cost = total["cost"].as_f64().map(|c| format!("{c:.2} {currency}"));
    let _ = write!(
        page,
        "<section aria-labelledby=\"totals\">\n<h2 id=\"totals\">Fleet totals</h2>\n<dl class=\"totals\">\
         <div><dt>Tenants</dt><dd>{}</dd></div><div><dt>Messages</dt><dd>{}</dd></div>\
         <div><dt>Bot runs</dt><dd>{}</dd></div><div><dt>Cost</dt><dd>{}</dd></div></dl>\n",
        total["tenants"].as_u64().unwrap_or(rows.len() as u64),
        count(total["messages"].as_u64()),
        count(total["bot_runs"].as_u64()),
        total_cost.as_deref().unwrap_or(MISSING),
    );
    if let Some(errors) = usage["errors"].as_array().filter(|e| !e.is_empty()) {
        page.push_str(
            "<div class=\"errors\" role=\"note\"><p>Databases that could not be read \
             (their messages and bot runs are shown as —):</p><ul>",
        );
        for e in errors.iter().filter_map(Value::as_str) {
            let _ = write!(page, "<li>{}</li>", escape(e));
        }
        page.push_str("</ul></div>\n");
    }
    page.push_str("</section>\n");

    // The top tenants.
    page.push_str(
        "<section aria-labelledby=\"top\">\n<h2 id=\"top\">Top tenants</h2>\n<div class=\"charts\">\n",
    );
    let by = |value: &dyn Fn(&Row) -> Option<f64>| {
        let mut top: Vec<(&Row, f64)> = rows
            .iter()
            .filter_map(|r| value(r).filter(|v| *v > 0.0).map(|v| (r, v)))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.name.cmp(b.0.name)));
        top.truncate(TOP);
        top
    };
    let messages = by(&|r| r.messages.map(|m| m as f64));
    page.push_str(&bar_chart(
        "chart-messages",
        "Messages",
        &messages
            .iter()
            .map(|(r, v)| (r.name, *v, format!("{v}")))
            .collect::<Vec<_>>(),
        None,
    ));
    let cost = by(&|r| r.cost);
    page.push_str(&bar_chart(
        "chart-cost",
        &format!("Cost ({currency})"),
        &cost
            .iter()
            .map(|(r, v)| (r.name, *v, format!("{v:.2}")))
            .collect::<Vec<_>>(),
        None,
    ));
    let quota = by(&|r| r.quota.map(|q| q.0));
    page.push_str(&bar_chart(
        "chart-quota",
        "Highest use of a limit (%)",
        &quota
            .iter()
            .map(|(r, v)| {
                let limit = r.quota.map_or("", |q| q.1);
                (r.name, *v, format!("{v:.1}% {limit}"))
            })
            .collect::<Vec<_>>(),
        warn_at,
    ));
    page.push_str("</div>\n</section>\n");

    // Every tenant.
    let _ = write!(
        page,
        "<section aria-labelledby=\"all\">\n<h2 id=\"all\">Every tenant</h2>\n\
         <div id=\"controls\" class=\"controls\" hidden><label>Search \
         <input id=\"search\" type=\"search\" placeholder=\"name, tier, state, note\"></label> \
         <button type=\"button\" id=\"prev\">Previous</button> <span id=\"status\" \
         aria-live=\"polite\"></span> <button type=\"button\" id=\"next\">Next</button></div>\n\
         <table id=\"tenants\" data-page-rows=\"{PAGE_ROWS}\">\n<caption>{} tenants; click a \
         heading to sort. Daily messages span {}.</caption>\n<thead><tr>\
         <th scope=\"col\">Tenant</th><th scope=\"col\">Tier</th><th scope=\"col\">State</th>\
         <th scope=\"col\" data-type=\"num\">Messages</th><th scope=\"col\" data-type=\"num\">Bot runs</th>\
         <th scope=\"col\" data-type=\"num\">Cost{}</th><th scope=\"col\" data-type=\"num\">Max quota</th>\
         <th scope=\"col\">Warnings</th><th scope=\"col\" data-type=\"none\">Daily messages</th>\
         <th scope=\"col\">Note</th></tr></thead>\n<tbody>\n",
        rows.len(),
        match span {
            Some((a, b)) => format!("{} days", b - a + 1),
            None => "no days".to_owned(),
        },
        if currency.is_empty() {
            String::new()
        } else {
            format!(" ({currency})")
        },
    );
    for r in &rows {
        let warned = if r.warnings.is_empty() {
            ""
        } else {
            " class=\"warn\""
        };
        let _ = writeln!(
            page,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td><span class=\"state {}\">{}</span></td>\
             <td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td>\
             <td data-v=\"{}\"{warned}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(r.name),
            r.tier.map_or_else(|| MISSING.to_owned(), escape),
            r.state.map_or_else(String::new, escape),
            r.state.map_or_else(|| MISSING.to_owned(), escape),
            sort_key(r.messages),
            count(r.messages),
            sort_key(r.bot_runs),
            count(r.bot_runs),
            sort_key(r.cost),
            money(r.cost),
            sort_key(r.quota.map(|q| q.0)),
            r.quota.map_or_else(
                || MISSING.to_owned(),
                |(p, l)| format!("{p:.1}% <small>{l}</small>")
            ),
            match r.warnings.as_slice() {
                [] => String::new(),
                w => escape(&w.join(", ")),
            },
            sparkline(r, span),
            r.note.map_or_else(String::new, escape),
        );
    }
    let _ = write!(
        page,
        "</tbody>\n</table>\n</section>\n</main>\n<footer><p>Made by <code>cargo xtask admin \
         usage --report</code> at <time>{time}</time>. Figures as in <code>admin usage -o json</code>; \
         — marks a value that is not known.</p></footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Ok(page)
}

/// A horizontal bar chart of (tenant, value, label) rows, largest first;
/// with `mark`, a dashed line at that value (the warning threshold).
fn bar_chart(id: &str, title: &str, bars: &[(&str, f64, String)], mark: Option<f64>) -> String {
    const LABEL: f64 = 150.0;
    const BAR: f64 = 230.0;
    const ROW: f64 = 22.0;
    const WIDTH: f64 = LABEL + BAR + 110.0;
    let mut svg = format!(
        "<figure>\n<figcaption id=\"{id}-t\">{}</figcaption>\n",
        escape(title)
    );
    if bars.is_empty() {
        svg.push_str("<p class=\"empty\">No tenant has a value above 0 here.</p>\n</figure>\n");
        return svg;
    }
    let max = bars.iter().map(|b| b.1).chain(mark).fold(0.0_f64, f64::max);
    let height = ROW * bars.len() as f64 + 4.0;
    let summary = bars
        .iter()
        .map(|(name, _, label)| format!("{name} {label}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        svg,
        "<svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\"><title id=\"{id}-d\">{}: {}</title>",
        escape(title),
        escape(&summary)
    );
    for (i, (name, value, label)) in bars.iter().enumerate() {
        let y = ROW * i as f64 + 2.0;
        let w = (value / max * BAR).max(1.0);
        let over = mark.is_some_and(|m| *value >= m);
        let _ = write!(
            svg,
            "<g><title>{name}: {label}</title><text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{short}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" class=\"{class}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{label}</text></g>",
            name = escape(name),
            label = escape(label),
            x = LABEL - 6.0,
            ty = y + 14.0,
            short = escape(&shorten(name, 20)),
            h = ROW - 6.0,
            class = if over { "bar over" } else { "bar" },
            vx = LABEL + w + 5.0,
        );
    }
    if let Some(m) = mark {
        let x = LABEL + m / max * BAR;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{height}\" class=\"mark\"><title>--warn-at {m}%</title></line>"
        );
    }
    svg.push_str("</svg>\n</figure>\n");
    svg
}

/// A tenant's messages per day over `span` as a small line (days without
/// an entry had none); `—` when its messages are unknown or there are no days.
fn sparkline(r: &Row, span: Option<(i64, i64)>) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let (Some(_), Some((first, last))) = (r.messages, span) else {
        return MISSING.to_owned();
    };
    if r.daily.is_empty() {
        return MISSING.to_owned();
    }
    let days = (last - first + 1) as usize;
    let mut per_day = vec![0u64; days];
    for (day, n) in &r.daily {
        if let Some(slot) = usize::try_from(day - first)
            .ok()
            .and_then(|i| per_day.get_mut(i))
        {
            *slot += n;
        }
    }
    let peak = per_day.iter().copied().max().unwrap_or(0).max(1);
    let step = if days > 1 { W / (days - 1) as f64 } else { 0.0 };
    let mut points = String::with_capacity(days * 9);
    for (i, n) in per_day.iter().enumerate() {
        let y = H - 2.0 - (*n as f64 / peak as f64) * (H - 4.0);
        let _ = write!(points, "{:.1},{:.1} ", i as f64 * step, y);
    }
    let sum: u64 = per_day.iter().sum();
    format!(
        "<svg class=\"spark\" role=\"img\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\">\
         <title>{}: {sum} messages over {days} days, at most {peak} a day</title>\
         <polyline points=\"{}\"/></svg>",
        escape(r.name),
        points.trim_end()
    )
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans Devanagari",sans-serif;margin:0;color:#1b1f24;background:#fff}
header,main,footer{padding:0 24px}
header{background:#0f3d5e;color:#fff;padding-top:12px;padding-bottom:12px}
h1{margin:0 0 6px;font-size:22px}
h2{font-size:17px;margin:22px 0 10px;border-bottom:2px solid #d7dee6;padding-bottom:4px}
dl{margin:0}
.meta{display:flex;flex-wrap:wrap;gap:4px 24px}
.meta div{display:flex;gap:6px}.meta dt{color:#b7d3ea}.meta dd{margin:0}
.totals{display:flex;flex-wrap:wrap;gap:12px}
.totals div{border:1px solid #d7dee6;border-radius:6px;padding:8px 16px;min-width:130px;background:#f5f8fb}
.totals dt{color:#52606d;font-size:12px;text-transform:uppercase}.totals dd{margin:0;font-size:22px;font-weight:600}
.errors{border-left:4px solid #c0392b;background:#fdf0ee;padding:4px 12px;margin-top:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #d7dee6;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:12px;fill:#1b1f24}
.bar{fill:#2e86c1}.bar.over{fill:#d35400}
.mark{stroke:#c0392b;stroke-dasharray:4 3}
.spark polyline{fill:none;stroke:#2e86c1;stroke-width:1.5}
.empty{color:#52606d}
.controls{display:flex;gap:8px;align-items:center;margin-bottom:8px}
.controls input{padding:4px 6px;min-width:240px}
table{border-collapse:collapse;width:100%}
caption{text-align:left;color:#52606d;padding-bottom:4px}
th,td{border-bottom:1px solid #e3e8ee;padding:3px 8px;text-align:left;vertical-align:middle}
thead th{background:#eef3f8;position:sticky;top:0}
thead button{font:inherit;font-weight:600;border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \25B2"}th[aria-sort=descending] button::after{content:" \25BC"}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
tbody th{font-weight:600;white-space:nowrap}
td[data-v]{white-space:nowrap}
td.warn{color:#a04000;font-weight:600}
.state{padding:1px 6px;border-radius:8px;background:#e3e8ee}
.state.running{background:#d4efdf}.state.stopped,.state.suspended{background:#fcf3cf}
.state.error,.state.terminating{background:#f5b7b1}
.out,.off{display:none}
footer{color:#52606d;margin:24px 0}
@media print{header{background:none;color:#000}.meta dt{color:#52606d}.controls{display:none}
.off{display:table-row}thead th{position:static}figure{break-inside:avoid}}
"#;

/// Sorting, search and paging of the tenants table, on rows already in
/// the page (no data is embedded in the script). A link may open the table
/// searched and sorted: `report.html#q=pune&sort=-Cost` (a column's
/// heading; `-` for descending).
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var table = document.getElementById("tenants");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  var rows = Array.prototype.slice.call(body.rows);
  var size = Number(table.getAttribute("data-page-rows")) || 50;
  var search = document.getElementById("search");
  var status = document.getElementById("status");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var page = 0;
  var shown = rows;
  // What a search looks in: the row's text without the charts' titles.
  var text = rows.map(function (r) {
    return Array.prototype.map.call(r.cells, function (c) {
      return c.querySelector("svg") ? "" : c.textContent;
    }).join(" ").toLowerCase();
  });
  rows.forEach(function (r, i) { r.setAttribute("data-i", i); });

  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / size));
    page = Math.min(Math.max(page, 0), pages - 1);
    var from = page * size;
    var visible = new Set(shown);
    rows.forEach(function (r) {
      r.classList.toggle("out", !visible.has(r));
      r.classList.remove("off");
    });
    shown.forEach(function (r, i) {
      r.classList.toggle("off", i < from || i >= from + size);
    });
    status.textContent = shown.length === 0 ? "No tenant matches." :
      "Tenants " + (from + 1) + "–" + Math.min(from + size, shown.length) + " of " +
      shown.length + (shown.length < rows.length ? " (of " + rows.length + ")" : "") +
      ", page " + (page + 1) + " of " + pages;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  function filter() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    shown = rows.filter(function (r) {
      var t = text[Number(r.getAttribute("data-i"))];
      return words.every(function (w) { return t.indexOf(w) >= 0; });
    });
    page = 0;
    render();
  }

  function sortBy(col, descending) {
    var numeric = heads[col].getAttribute("data-type") === "num";
    var key = function (r) {
      var c = r.cells[col];
      var v = c.getAttribute("data-v");
      if (numeric) { return v === null || v === "" ? null : Number(v); }
      return c.textContent === "—" ? null : c.textContent.toLowerCase();
    };
    var keyed = rows.map(function (r) { return [key(r), r]; });
    keyed.sort(function (a, b) {
      if (a[0] === b[0]) { return Number(a[1].getAttribute("data-i")) - Number(b[1].getAttribute("data-i")); }
      if (a[0] === null) { return 1; }
      if (b[0] === null) { return -1; }
      var d = a[0] < b[0] ? -1 : 1;
      return descending ? -d : d;
    });
    rows = keyed.map(function (k) { return k[1]; });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(heads, function (h, i) {
      if (i === col) { h.setAttribute("aria-sort", descending ? "descending" : "ascending"); }
      else { h.removeAttribute("aria-sort"); }
    });
    filter();
  }

  Array.prototype.forEach.call(heads, function (h, i) {
    if (h.getAttribute("data-type") === "none") { return; }
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = h.textContent;
    h.textContent = "";
    h.appendChild(b);
    b.addEventListener("click", function () {
      sortBy(i, h.getAttribute("aria-sort") === "ascending");
    });
  });
  search.addEventListener("input", filter);
  prev.addEventListener("click", function () { page -= 1; render(); });
  next.addEventListener("click", function () { page += 1; render(); });
  document.getElementById("controls").hidden = false;

  var hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("q")) { search.value = hash.get("q"); }
  var sort = hash.get("sort");
  var col = -1;
  if (sort) {
    var name = sort.replace(/^-/, "").toLowerCase();
    col = Array.prototype.findIndex.call(heads, function (h) {
      return h.textContent.toLowerCase().indexOf(name) === 0;
    });
  }
  if (col >= 0) { sortBy(col, sort.charAt(0) === "-"); } else { filter(); }
  document.documentElement.setAttribute("data-ready", "");
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\u{0}\u{1b}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}\u{FFFD}"
        );
        assert_eq!(escape("श्री राम\tनगर"), "श्री राम\tनगर");
    }

    #[test]
    fn shortens_by_characters_not_bytes() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
        assert_eq!(shorten("नमस्ते", 3), "नम…");
    }

    #[test]
    fn dates_are_day_numbers() {
        assert_eq!(day_number("1970-01-02"), Some(1));
        assert_eq!(
            day_number("2026-11-24T06:00:00Z"),
            Some(day_number("2026-11-24").unwrap())
        );
        assert_eq!(day_number("2026-11-2"), None);
        assert_eq!(day_number("yesterday"), None);
    }

    /// Every missing value is `—`, not an error: no cost, no messages, no
    /// days, no quota, no tier, no environment.
    #[test]
    fn missing_values_are_dashes() {
        let usage = json!({"tenants": [{"name": "a", "state": "stopped", "messages": null,
            "bot_runs": null, "cost": null, "daily": [], "quota": {}, "warnings": [], "note": null}],
            "total": {}});
        let page = html(&usage).unwrap();
        let row = page
            .lines()
            .find(|l| l.starts_with("<tr><th scope=\"row\">a<"))
            .unwrap();
        assert_eq!(row.matches(MISSING).count(), 6, "{row}");
        assert!(page.contains("<div><dt>Environment</dt><dd>—</dd></div>"));
        assert!(html(&json!({"tenants": {}})).is_err());
    }

    /// The highest known percentage wins, whichever limit it is.
    #[test]
    fn max_quota_is_the_highest_known_limit() {
        let t = json!({"name": "a", "quota": {"cpu": {"percent": 12.5}, "memory": {"percent": null},
            "messages": {"percent": 91.0}, "database": {"percent": 3.0}}});
        assert_eq!(Row::read(&t).quota, Some((91.0, "messages")));
        assert_eq!(Row::read(&json!({"name": "b", "quota": {}})).quota, None);
    }

    /// Days without an entry are zeros on the line, and the line spans
    /// the whole period whichever days have entries.
    #[test]
    fn sparklines_span_the_period() {
        let t = json!({"name": "a", "messages": 5, "daily": [
            {"date": "2026-11-02", "messages": 4, "bot_runs": 0},
            {"date": "2026-11-04", "messages": 1, "bot_runs": 1}]});
        let first = day_number("2026-11-01").unwrap();
        let line = sparkline(&Row::read(&t), Some((first, first + 4)));
        assert!(
            line.contains("points=\"0.0,22.0 30.0,2.0 60.0,22.0 90.0,17.0 120.0,22.0\""),
            "{line}"
        );
        assert!(
            line.contains("5 messages over 5 days, at most 4 a day"),
            "{line}"
        );
    }
}
