//! How read commands print: tables aligned by terminal columns, JSON and
//! YAML for scripts, CSV for reports and Prometheus metrics (only where a
//! command offers them); and human sizes.

use std::io::Write as _;

use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// How read commands print: an aligned table, or stable JSON/YAML for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// `-o` of a command that also prints CSV, e.g. `admin usage`'s monthly
/// report: a type of its own, so that `--help` offers csv exactly where it
/// works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Yaml,
    /// RFC 4180: a header row, then one row per record
    Csv,
    /// Prometheus text exposition format 0.0.4 (for node-exporter's textfile collector)
    Prometheus,
}

/// A Prometheus metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Gauge,
    Counter,
}

/// Text in the Prometheus exposition format, version 0.0.4: each family's
/// `# HELP` and `# TYPE` lines, then its samples, one family after the
/// other; label values and help escaped as the format requires.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// One family. Its name and label names must be valid (they are the
    /// caller's constants); values are written as Rust prints f64, which
    /// Prometheus parses (integers without a fraction).
    pub fn family(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        samples: &[(Vec<(&str, &str)>, f64)],
    ) {
        debug_assert!(valid_metric_name(name), "{name}");
        let kind = match kind {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
        };
        self.text
            .push_str(&format!("# HELP {name} {}\n", escape_help(help)));
        self.text.push_str(&format!("# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            self.text.push_str(name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                    .collect();
                self.text.push_str(&format!("{{{}}}", pairs.join(",")));
            }
            self.text.push_str(&format!(" {}\n", sample_value(*value)));
        }
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label value: backslash, double quote and line feed escaped, as the
/// exposition format requires; anything else (Devanagari too) as it is.
pub fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Help text: backslash and line feed escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// RFC 4180 text: `headers`, then `rows`, each field quoted when it holds a
/// comma, a quote or a line break, lines ending in CRLF.
pub fn csv_text(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(headers)?;
    for row in rows {
        anyhow::ensure!(
            row.len() == headers.len(),
            "a CSV row has {} fields for {} columns",
            row.len(),
            headers.len()
        );
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// An aligned table: a header row, then rows, columns separated by two
/// spaces. Widths are terminal columns, so Devanagari or Tamil cells (whose
/// combining marks take no column) line up with Latin ones.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    painted_table(headers, rows, |_, _, cell| cell.to_owned())
}

/// [`table`] with cells painted by `paint(row, column, cell)` (see
/// `colour.rs`): columns are aligned by the plain text, so colour codes
/// take no width. The header row is not painted.
pub fn painted_table(
    headers: &[&str],
    rows: &[Vec<String>],
    paint: impl Fn(usize, usize, &str) -> String,
) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].width())
            .chain([headers[i].width()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let line = |cells: Vec<&str>, row: Option<usize>| {
        let mut out = String::new();
        // No whitespace at the end of a line: blank cells at the end are
        // left out and the last one is trimmed.
        let last = cells
            .iter()
            .rposition(|c| !c.trim_end().is_empty())
            .unwrap_or(0);
        for (i, cell) in cells.iter().enumerate().take(last + 1) {
            let cell = if i == last { cell.trim_end() } else { cell };
            match row {
                Some(r) => out.push_str(&paint(r, i, cell)),
                None => out.push_str(cell),
            }
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        out + "\n"
    };
    let mut out = line(headers.to_vec(), None);
    for (r, cells) in rows.iter().enumerate() {
        out.push_str(&line(cells.iter().map(String::as_str).collect(), Some(r)));
    }
    out
}

/// Prints `value` as JSON or YAML; tables are each command's own.
pub fn print_structured(format: OutputFormat, value: &impl Serialize) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(value)?,
        OutputFormat::Table => anyhow::bail!("a table is printed by its command, not as data"),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// `1.2Gi`, `340Mi`, `12Ki`, `512B`.
pub fn format_bytes(bytes: u128) -> String {
    const UNITS: [(&str, u128); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = bytes * 10 / size;
            return if tenths.is_multiple_of(10) || tenths >= 1000 {
                format!("{}{unit}", tenths / 10)
            } else {
                format!("{}.{}{unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes}B")
}

/// Text from outside (an archive's manifest) made safe to print: control
/// characters (escape sequences, line breaks), bidirectional controls and
/// zero-width spaces are shown as `\u{..}` escapes, a backslash as `\\`;
/// everything else, Indic joiners (ZWJ, ZWNJ) included, is kept.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}');
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || hidden {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn outside_text_cannot_drive_the_terminal() {
        use super::escape_controls;
        assert_eq!(
            escape_controls("a\u{1b}[2J\ndatabase: forged"),
            "a\\u{1b}[2J\\u{a}database: forged"
        );
        assert_eq!(
            escape_controls("x\u{202e}y\u{200b}z"),
            "x\\u{202e}y\\u{200b}z"
        );
        assert_eq!(
            escape_controls("a\\u{1b}"),
            "a\\\\u{1b}",
            "an escape cannot be forged"
        );
        // Marathi needs ZWJ and ZWNJ; they stay.
        let marathi = "र\u{200d}य क\u{200c}ष";
        assert_eq!(escape_controls(marathi), marathi);
    }

    use super::*;

    /// The three characters the format escapes in label values, and only
    /// those; help escapes backslash and line feed but not quotes.
    #[test]
    fn exposition_escapes_label_values_and_help() {
        assert_eq!(
            escape_label_value("a\\b\"c\nd कल्याण"),
            "a\\\\b\\\"c\\nd कल्याण"
        );
        let mut e = Exposition::default();
        e.family(
            "mla_x_bytes",
            MetricType::Gauge,
            "Bytes \"used\"\nby C:\\",
            &[
                (vec![("tenant", "a"), ("tier", "say \"hi\"")], 1.5),
                (vec![], 3.0),
            ],
        );
        assert_eq!(
            e.into_text(),
            "# HELP mla_x_bytes Bytes \"used\"\\nby C:\\\\\n\
             # TYPE mla_x_bytes gauge\n\
             mla_x_bytes{tenant=\"a\",tier=\"say \\\"hi\\\"\"} 1.5\n\
             mla_x_bytes 3\n"
        );
        assert_eq!(sample_value(1e21), "1000000000000000000000");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert!(valid_metric_name("mla_tenant_cost"));
        assert!(!valid_metric_name("9mla") && !valid_metric_name("mla-x"));
    }

    #[test]
    fn sizes() {
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(1536), "1.5Ki");
        assert_eq!(format_bytes(5 << 30), "5Gi");
    }

    /// Fields with commas, quotes, line breaks or non-ASCII text come back
    /// as they were from a standard reader, and plain ones are not quoted.
    #[test]
    fn csv_quotes_what_needs_it() {
        let rows = vec![
            vec!["Shri \"Raju\", MLA".to_owned(), "12".to_owned()],
            vec!["कल्याण\nपश्चिम".to_owned(), String::new()],
        ];
        let text = csv_text(&["name", "count"], &rows).unwrap();
        assert!(text.starts_with("name,count\r\n"), "{text:?}");
        assert!(
            text.contains("\"Shri \"\"Raju\"\", MLA\",12\r\n"),
            "{text:?}"
        );
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(back, rows);
        assert!(csv_text(&["one"], &[vec![]]).is_err());
    }

    /// Painted cells line up as plain ones: colour codes take no column,
    /// and a line ends without trailing blanks either way.
    #[test]
    fn painted_tables_align_by_the_plain_text() {
        let rows = vec![
            vec!["a".to_owned(), "running".to_owned(), "x".to_owned()],
            vec!["bb".to_owned(), "error".to_owned(), String::new()],
        ];
        let headers = ["TENANT", "STATE", "NOTE"];
        let painted = painted_table(&headers, &rows, |_, column, cell| match column {
            1 => format!("\x1b[32m{cell}\x1b[0m"),
            _ => cell.to_owned(),
        });
        assert_eq!(
            painted,
            "TENANT  STATE    NOTE\n\
             a       \x1b[32mrunning\x1b[0m  x\n\
             bb      \x1b[32merror\x1b[0m\n"
        );
        let unpainted = painted.replace("\x1b[32m", "").replace("\x1b[0m", "");
        assert_eq!(unpainted, table(&headers, &rows));
        let blank_end = table(&["A", "B"], &[vec!["x ".to_owned(), " ".to_owned()]]);
        assert_eq!(blank_end.lines().nth(1), Some("x"), "{blank_end:?}");
    }

    /// Each column starts at the same terminal column on every row: what
    /// comes before it is as wide as the header's, whatever the script.
    #[test]
    fn tables_align_by_terminal_columns() {
        let rows = vec![
            vec!["कल्याण".to_owned(), "running".to_owned(), "1".to_owned()],
            vec!["மயிலாப்பூர்".to_owned(), "stopped".to_owned(), "22".to_owned()],
            vec!["demo".to_owned(), "pending".to_owned(), "333".to_owned()],
        ];
        let text = table(&["TENANT", "STATUS", "COUNT"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        let column_of = |line: &str, cell: &str| line[..line.find(cell).unwrap()].width();
        let status = column_of(lines[0], "STATUS");
        let count = column_of(lines[0], "COUNT");
        for (line, row) in lines[1..].iter().zip(&rows) {
            assert_eq!(column_of(line, &row[1]), status, "{text}");
            assert_eq!(column_of(line, &row[2]), count, "{text}");
        }
        // Fewer columns than chars: viramas and some vowel signs take none
        // (Unicode's East Asian Width and general categories, as the
        // unicode-width crate reads them; glibc's wcwidth(3) agrees on the
        // Marathi name and counts one column more for the Tamil one).
        assert_eq!(("कल्याण".chars().count(), "कल्याण".width()), (6, 5));
        assert_eq!(("மயிலாப்பூர்".chars().count(), "மயிலாப்பூர்".width()), (11, 8));
    }
}
