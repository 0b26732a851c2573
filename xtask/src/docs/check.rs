//! The documentation checker: links and anchors, named paths, `cargo xtask`
//! command lines (parsed by the real clap definitions), `dns` blocks, and
//! external link syntax.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};

use crate::flags::Xtask;

/// One problem, printed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A markdown file, parsed once.
struct Doc {
    /// As shown in problems: relative to the repository root.
    name: String,
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl Doc {
    fn load(root: &Path, path: &Path) -> Result<Doc, Problem> {
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: name.clone(),
            line: 1,
            message: format!("cannot read: {e}"),
        })?;
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ok(Doc {
            name,
            path: path.to_path_buf(),
            text,
            line_starts,
        })
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped except
/// `-` and `_`, spaces to `-`; repeats get `-1`, `-2`, ...
pub fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) if heading.is_some() => {
                heading.as_mut().expect("in a heading").push_str(&t)
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = heading.take().unwrap_or_default();
                let slug: String = text
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let n = seen.entry(slug.clone()).or_insert(0);
                out.insert(if *n == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{n}")
                });
                *n += 1;
            }
            _ => {}
        }
    }
    out
}

/// What the checker found in one run, across files.
#[derive(Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Subcommand paths used by command lines, per file (`admin list`, ...).
    pub used: BTreeMap<String, BTreeSet<String>>,
    /// External links, for `--online`.
    pub external: Vec<(String, usize, String)>,
}

pub fn check_files(root: &Path, files: &[PathBuf]) -> Report {
    let mut report = Report::default();
    for path in files {
        match Doc::load(root, path) {
            Ok(doc) => check_doc(root, &doc, &mut report),
            Err(p) => report.problems.push(p),
        }
    }
    report.problems.sort();
    report
}

fn check_doc(root: &Path, doc: &Doc, report: &mut Report) {
    let mut problem = |offset_line: usize, message: String| {
        report.problems.push(Problem {
            file: doc.name.clone(),
            line: offset_line,
            message,
        })
    };
    let mut used = BTreeSet::new();
    let mut external = Vec::new();
    let mut block: Option<(String, usize, String)> = None;
    for (event, range) in Parser::new(&doc.text).into_offset_iter() {
        let line = doc.line_of(range.start);
        match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => {
                if let Some(msg) = check_link(root, doc, &dest_url, &mut external, line) {
                    problem(line, msg);
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => {
                        for (at, msg) in check_fence(doc, &info, range.clone()) {
                            problem(at, msg);
                        }
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                block = Some((info, line + 1, String::new()));
            }
            Event::Text(t) if block.is_some() => block.as_mut().expect("in a block").2.push_str(&t),
            Event::End(TagEnd::CodeBlock) => {
                let (info, first, text) = block.take().unwrap_or_default();
                for (i, msg) in check_block(root, &info, &text, &mut used) {
                    problem(first + i, msg);
                }
            }
            Event::Code(code) => {
                for msg in check_paths(root, &code) {
                    problem(line, msg);
                }
            }
            _ => {}
        }
    }
    report.used.insert(doc.name.clone(), used);
    report
        .external
        .extend(external.into_iter().map(|(l, u)| (doc.name.clone(), l, u)));
}

/// The languages a fenced block may name: those the docs use, and a few
/// more they may need. A misspelt one (`consloe`) would make the block
/// escape the command check and render without highlighting.
pub const LANGUAGES: &[&str] = &[
    "console", "text", "sh", "bash", "shell", "yaml", "json", "toml", "rust", "dns", "diff",
];

/// A fenced code block's own mistakes, from its source text (`range`, the
/// opening fence to the closing one): a language that is missing or not
/// in [`LANGUAGES`], and a line that looks like a closing fence but has
/// text after it. CommonMark closes a block only with a fence followed by
/// nothing but spaces; "``` text" is a line of code, and the block runs on
/// to the next bare fence, taking the headings and prose between as code.
fn check_fence(doc: &Doc, info: &str, range: std::ops::Range<usize>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let opened = doc.line_of(range.start);
    match info.split_whitespace().next() {
        None => out.push((
            opened,
            format!(
                "code block has no language: name one after the fence, e.g. ```console for commands, \
                 ```text for output (known: {})",
                LANGUAGES.join(", ")
            ),
        )),
        Some(lang) if !LANGUAGES.contains(&lang) => out.push((
            opened,
            format!(
                "code block language `{lang}` is not a known one: use one of {}",
                LANGUAGES.join(", ")
            ),
        )),
        Some(_) => {}
    }
    let source = &doc.text[range.clone()];
    let column = range.start - doc.line_starts[opened - 1];
    let fence_of = |line: &str| -> Option<(char, usize, usize)> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let run = rest.len() - rest.trim_start_matches(c).len();
        (run >= 3).then_some((c, run, indent))
    };
    let Some((marker, length, _)) = source.lines().next().and_then(fence_of) else {
        return out;
    };
    for (i, line) in source.lines().enumerate().skip(1) {
        let Some((c, run, indent)) = fence_of(line) else {
            continue;
        };
        let after = line.trim_start_matches(' ')[run..].trim();
        // Fences of another kind or shorter are the block's content (a
        // ```` block may show ``` lines); so is one indented as code.
        if c != marker || run < length || indent > column + 3 || after.is_empty() {
            continue;
        }
        let fence = c.to_string().repeat(run);
        let fix = if LANGUAGES.contains(&after) {
            format!(
                "to start a new {after} block here, end this one first with {fence} alone on a line"
            )
        } else {
            format!("put {fence} alone on this line and \"{after}\" on the next")
        };
        out.push((
            opened + i,
            format!(
                "\"{}\" does not close the code block opened at line {opened}: a closing fence may be \
                 followed only by spaces, so everything up to the next bare {fence} renders as code; {fix}",
                line.trim()
            ),
        ));
        // The rest of this block is what the mistake swallowed.
        break;
    }
    out
}

fn check_link(
    root: &Path,
    doc: &Doc,
    dest: &str,
    external: &mut Vec<(usize, String)>,
    line: usize,
) -> Option<String> {
    if dest.starts_with("http://") || dest.starts_with("https://") {
        external.push((line, dest.to_owned()));
        return check_url(dest).err();
    }
    if dest.starts_with("mailto:") {
        return None;
    }
    if dest.contains("://") {
        return Some(format!("link `{dest}` uses a scheme other than http(s)"));
    }
    let (file, anchor) = dest.split_once('#').unwrap_or((dest, ""));
    let target = if file.is_empty() {
        doc.path.clone()
    } else {
        doc.path.parent().unwrap_or(root).join(file)
    };
    if !target.exists() {
        return Some(format!(
            "link `{dest}`: {} does not exist",
            target.strip_prefix(root).unwrap_or(&target).display()
        ));
    }
    if !anchor.is_empty() {
        if target.extension().is_none_or(|e| e != "md") {
            return Some(format!(
                "link `{dest}`: anchors only resolve in markdown files"
            ));
        }
        let text = std::fs::read_to_string(&target).unwrap_or_default();
        if !anchors(&text).contains(anchor) {
            return Some(format!(
                "link `{dest}`: no heading in {} has the anchor #{anchor}",
                target.strip_prefix(root).unwrap_or(&target).display()
            ));
        }
    }
    None
}

/// Syntax of an external URL: scheme, a valid host, no spaces.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host_port
        }
    });
    let valid_host = !host.is_empty()
        && host.contains('.')
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid_host || url.contains(char::is_whitespace) {
        return Err(format!("external link `{url}` is not a well-formed URL"));
    }
    Ok(())
}

/// The repository paths a piece of code names, checked to exist (and
/// scripts to be executable). Placeholders (`<name>`, `*`) are skipped.
fn check_paths(root: &Path, code: &str) -> Vec<String> {
    const DIRS: [&str; 8] = [
        "docs/",
        "scripts/",
        "templates/",
        "tenants/",
        "tests/",
        "xtask/",
        "fake-kubectl/",
        ".ci/",
    ];
    const FILES: [&str; 4] = ["README.md", "platform.yaml", "Cargo.toml", "Cargo.lock"];
    let mut out = Vec::new();
    for token in code
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | '`' | '(' | ')' | ','))
    {
        let token = token
            .trim_start_matches("./")
            .trim_end_matches(['.', ':', ';']);
        let named = DIRS
            .iter()
            .any(|d| token.starts_with(d) && token.len() > d.len())
            || FILES.contains(&token);
        if !named || token.contains(['<', '>', '*', '{', '$']) {
            continue;
        }
        let path = root.join(token);
        if !path.exists() {
            out.push(format!("`{token}` does not exist in the repository"));
            continue;
        }
        let script = token.starts_with("scripts/") || token.ends_with(".sh") || token == ".ci/run";
        if script && path.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o111 == 0 {
                out.push(format!(
                    "script `{token}` is not executable (chmod +x {token})"
                ));
            }
        }
    }
    out
}

/// A code block: its paths, its `cargo xtask` lines, and `dns` records.
fn check_block(
    root: &Path,
    info: &str,
    text: &str,
    used: &mut BTreeSet<String>,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if info == "dns" {
        return super::zone::check(text);
    }
    // Commands are read from shell and console blocks; `text` blocks hold
    // program output and usage synopses, other languages hold data.
    if !matches!(info, "" | "console" | "sh" | "bash" | "shell") {
        return out;
    }
    let lines: Vec<&str> = text.lines().collect();
    let console = info == "console";
    let mut i = 0;
    while i < lines.len() {
        let first = i;
        let mut line = lines[i].trim_start().to_owned();
        i += 1;
        let is_command = if console {
            line.starts_with("$ ")
        } else {
            true
        };
        if console && is_command {
            line = line[2..].to_owned();
        }
        if !is_command {
            continue;
        }
        while line.ends_with('\\') && i < lines.len() {
            line.pop();
            line.push(' ');
            line.push_str(lines[i].trim());
            i += 1;
        }
        for msg in check_paths(root, &line) {
            out.push((first, msg));
        }
        if let Some(rest) = line.strip_prefix("cargo xtask ") {
            match parse_command(rest) {
                Ok(path) => {
                    used.insert(path);
                }
                Err(e) => out.push((first, e)),
            }
        }
    }
    out
}

/// Splits a shell command line into words as a POSIX shell would, up to the
/// first unquoted comment, pipe, redirection or command separator.
pub fn shell_words(line: &str) -> Result<Vec<String>, String> {
    // The command ends at the first operator outside quotes.
    let mut end = line.len();
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '|' | '>' | '<' | ';' | '&' if !single && !double => {
                end = i;
                break;
            }
            '#' if !single && !double && prev.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
        prev = c;
    }
    shlex::split(&line[..end]).ok_or_else(|| "a quote is not closed".to_owned())
}

/// Parses `cargo xtask` arguments with the real definitions; returns the
/// subcommand path, e.g. `admin list`.
pub fn parse_command(args: &str) -> Result<String, String> {
    let words = shell_words(args).map_err(|e| format!("`cargo xtask {args}`: {e}"))?;
    let matches = Xtask::command()
        .try_get_matches_from(std::iter::once("cargo xtask".to_owned()).chain(words))
        .map_err(|e| {
            let first = e.render().to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_owned();
            format!("`cargo xtask {args}` does not parse: {first}")
        })?;
    let mut path = Vec::new();
    let mut m = &matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_owned());
        m = sub;
    }
    Ok(path.join(" "))
}

/// Every leaf subcommand of the tool, e.g. `provision`, `admin list`.
pub fn all_subcommands() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let path = if prefix.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            if sub.has_subcommands() {
                walk(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Xtask::command(), "", &mut out);
    out
}

/// Fetches each external link with curl (HEAD, falling back to GET).
pub fn check_online(external: &[(String, usize, String)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let sh = match xshell::Shell::new() {
        Ok(sh) => sh,
        Err(e) => {
            return vec![Problem {
                file: "README.md".to_owned(),
                line: 1,
                message: format!("cannot start a shell to run curl: {e}"),
            }];
        }
    };
    for (file, line, url) in external {
        if !seen.insert(url.clone()) {
            continue;
        }
        // HEAD first; some servers refuse it, so GET before calling a link broken.
        let fetch = |head: &[&str]| {
            xshell::cmd!(
                sh,
                "curl --silent --show-error --fail --location --max-time 15 --output /dev/null {head...} {url}"
            )
            .quiet()
            .ignore_status()
            .output()
        };
        match fetch(&["--head"]).and_then(|o| {
            if o.status.success() {
                Ok(o)
            } else {
                fetch(&[])
            }
        }) {
            Ok(o) if o.status.success() => {}
            Ok(o) => problems.push(Problem {
                file: file.clone(),
                line: *line,
                message: format!(
                    "external link `{url}` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            }),
            Err(e) => problems.push(Problem {
                file: file.clone(),
                line: *line,
                message: format!("cannot run curl to check `{url}`: {e}"),
            }),
        }
    }
    problems
}

/// Headings of level 1 or 2, for tests of the guide's coverage.
pub fn headings(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1 | HeadingLevel::H2,
                ..
            }) => current = Some(String::new()),
            Event::Text(t) | Event::Code(t) if current.is_some() => {
                current.as_mut().expect("heading").push_str(&t)
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = current.take() {
                    out.push(h);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_anchors() {
        let a = anchors("# Set up\n## DNS & TLS: records\n## `cargo xtask admin`\n## Set up\n");
        assert!(a.contains("set-up") && a.contains("set-up-1"), "{a:?}");
        assert!(a.contains("dns--tls-records"), "{a:?}");
        assert!(a.contains("cargo-xtask-admin"), "{a:?}");
    }

    #[test]
    fn shell_words_split_like_a_shell() {
        assert_eq!(
            shell_words(r#"provision x --mla-name "Asha K" --domain 'a.in' # note"#).unwrap(),
            ["provision", "x", "--mla-name", "Asha K", "--domain", "a.in"]
        );
        assert_eq!(
            shell_words("admin list -o json | jq .").unwrap(),
            ["admin", "list", "-o", "json"]
        );
        assert!(shell_words("a \"b").is_err());
    }

    #[test]
    fn commands_parse_with_the_real_definitions() {
        assert_eq!(parse_command("admin list -o json").unwrap(), "admin list");
        assert_eq!(
            parse_command("tenant-admin usage --since 7d").unwrap(),
            "admin usage"
        );
        assert!(
            parse_command("admin lsit")
                .unwrap_err()
                .contains("does not parse")
        );
        assert!(
            parse_command("provision Pune --dry-run").is_err(),
            "an invalid tenant name must not parse"
        );
        assert!(all_subcommands().contains(&"admin verify-backup".to_owned()));
    }
}
