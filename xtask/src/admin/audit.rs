//! `admin audit`: the audit log, filtered by tenant, time and count, as a
//! table that fits 100 columns or as data.

use std::path::Path;

use unicode_width::UnicodeWidthStr as _;

use crate::audit::{AuditLog, Entry};
use crate::flags;
use crate::output::{OutputFormat, escape_controls, print_structured, table};

/// The table's width: a standard terminal's 80 is too narrow for a
/// timestamp, a command and its result; 100 is the most the issue allows.
const WIDTH: usize = 100;

const HEADERS: [&str; 7] = [
    "TIME", "OPERATOR", "ENV", "CONTEXT", "TENANT", "COMMAND", "RESULT",
];

/// Each column's width when every field is long: with two spaces between
/// columns they add up to [`WIDTH`]. The command line gets the most room.
const SHARES: [usize; 7] = [20, 10, 4, 10, 10, 22, 12];

impl flags::Audit {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let log = AuditLog::at(self.audit_log.as_deref(), root);
        let tenant = self.tenant.as_ref().or(self.tenant_flag.as_ref());
        let start = match self.since {
            Some(since) => Some(since.start(crate::clock::now()?)),
            None => None,
        };
        let mut unreadable = 0;
        let mut entries: Vec<Entry> = log
            .read()?
            .into_iter()
            .filter(|e| tenant.is_none_or(|t| e.tenant == t.as_str()))
            .filter(|e| {
                let Some(start) = start else { return true };
                match humantime::parse_rfc3339_weak(&e.time) {
                    Ok(t) => t >= start,
                    Err(_) => {
                        unreadable += 1;
                        false
                    }
                }
            })
            .collect();
        if unreadable > 0 {
            eprintln!(
                "{unreadable} entr{} with an unreadable time left out by --since.",
                if unreadable == 1 { "y" } else { "ies" }
            );
        }
        if let Some(limit) = self.limit {
            let keep = entries.len().saturating_sub(limit as usize);
            entries.drain(..keep);
        }
        match self.output.format {
            OutputFormat::Table => {
                if entries.is_empty() {
                    let filtered = tenant.is_some() || start.is_some();
                    eprintln!(
                        "No entries in {}{}.",
                        log.path().display(),
                        if filtered { " match the filters" } else { "" }
                    );
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        let result = result_cell(e);
                        [
                            e.time.as_str(),
                            e.operator.as_str(),
                            e.environment.as_deref().unwrap_or("-"),
                            e.context.as_str(),
                            e.tenant.as_str(),
                            e.command.as_str(),
                            result.as_str(),
                        ]
                        .map(escape_controls)
                        .to_vec()
                    })
                    .collect();
                print!("{}", table(&HEADERS, &fit(&rows, WIDTH)));
            }
            format => print_structured(format, &entries)?,
        }
        Ok(())
    }
}

/// The RESULT cell: the result, first marked `BREAK GLASS: ` for a change
/// made without its environment's approvals (`--break-glass`; the reason
/// is the entry's `break_glass` in -o json and -o yaml), where a cut cell
/// still shows it.
fn result_cell(entry: &Entry) -> String {
    match &entry.break_glass {
        Some(_) => format!("BREAK GLASS: {}", entry.result),
        None => entry.result.clone(),
    }
}

/// The rows with their cells cut so that the table, two spaces between
/// columns, is at most `width` columns wide. While it is too wide, the
/// column furthest above its share gives up a column: each column's share
/// ([`SHARES`]) is what it keeps when every field is long, and a column
/// whose fields are short lends what it does not use to the others. TIME
/// is never cut, nor any column below its header.
fn fit(rows: &[Vec<String>], width: usize) -> Vec<Vec<String>> {
    let natural = |i: usize| {
        rows.iter()
            .map(|r| r[i].width())
            .chain([HEADERS[i].width()])
            .max()
            .unwrap_or(0)
    };
    let mut widths: Vec<usize> = (0..HEADERS.len()).map(natural).collect();
    let gaps = 2 * (HEADERS.len() - 1);
    while widths.iter().sum::<usize>() + gaps > width {
        let Some(i) = (1..widths.len())
            .filter(|&i| widths[i] > HEADERS[i].width())
            .max_by_key(|&i| widths[i] as isize - SHARES[i] as isize)
        else {
            break;
        };
        widths[i] -= 1;
    }
    rows.iter()
        .map(|r| r.iter().zip(&widths).map(|(c, &w)| elide(c, w)).collect())
        .collect()
}

/// `text` in at most `width` terminal columns, ending in `…` when cut.
fn elide(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    for c in text.chars() {
        if out.width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) + 1 > width {
            break;
        }
        out.push(c);
    }
    out + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_fill_the_width() {
        assert_eq!(SHARES.iter().sum::<usize>() + 2 * (SHARES.len() - 1), WIDTH);
        assert_eq!(SHARES[0], "2026-11-24T06:00:00Z".len());
    }

    #[test]
    fn a_break_glass_entry_is_marked_in_its_result() {
        let entry = Entry {
            time: "2026-11-24T06:00:00Z".to_owned(),
            operator: "ops@example.in".to_owned(),
            environment: Some("prod".to_owned()),
            context: "prod-mumbai".to_owned(),
            tenant: "demo".to_owned(),
            command: "admin rotate demo --break-glass leak".to_owned(),
            result: "ok".to_owned(),
            plan: None,
            approvers: Vec::new(),
            break_glass: Some("leak".to_owned()),
        };
        assert_eq!(result_cell(&entry), "BREAK GLASS: ok");
        let plain = Entry {
            break_glass: None,
            ..entry
        };
        assert_eq!(result_cell(&plain), "ok");
    }

    #[test]
    fn elide_cuts_to_terminal_columns() {
        assert_eq!(elide("admin restore kalyan", 40), "admin restore kalyan");
        assert_eq!(elide("admin restore kalyan", 10), "admin res…");
        assert_eq!(elide("admin restore kalyan", 10).width(), 10);
        // Wide characters count two columns each.
        assert!(elide("पुणे सेंट्रल ऑफिस", 6).width() <= 6);
        assert_eq!(elide("漢字漢字", 5), "漢字…");
    }
}
