//! Checks of the repository itself, run by plain `cargo test`: each failure
//! is `path:line: what is wrong`, so it can be fixed without reading this file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // A folder that moved must fail the checks, not leave them nothing to check.
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "snapshots") {
                out.extend(files(&path, exts));
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn report(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut problems = Vec::new();
    for dir in ["xtask", "fake-kubectl", "tests"] {
        for path in files(&root().join(dir), &[".rs"]) {
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.starts_with("//!") {
                problems.push(format!(
                    "{}:1: start the file with a `//!` line saying what it is for",
                    rel(&path)
                ));
            }
        }
    }
    report(problems);
}

#[test]
fn every_template_starts_with_a_comment() {
    let mut problems = Vec::new();
    for path in files(&root().join("templates"), &[".yaml"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.starts_with("{#") {
            problems.push(format!("{}:1: start the template with a `{{#- ... -#}}` comment saying what the object is for", rel(&path)));
        }
    }
    report(problems);
}

#[test]
fn no_trailing_whitespace() {
    let mut problems = Vec::new();
    for path in files(&root(), &[".rs", ".md", ".yaml", ".toml", ".sh"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!(
                    "{}:{}: remove the trailing whitespace",
                    rel(&path),
                    i + 1
                ));
            }
        }
    }
    report(problems);
}

#[test]
fn scripts_are_executable() {
    let mut problems = Vec::new();
    for path in files(&root().join("scripts"), &[".sh"])
        .into_iter()
        .chain([root().join(".ci/run")])
    {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        if mode & 0o111 == 0 {
            problems.push(format!(
                "{}:1: not executable; run `chmod +x {}` and commit",
                rel(&path),
                rel(&path)
            ));
        }
    }
    report(problems);
}

/// The modules of one crate (`src/`), each with the files it refers to
/// through `crate::…`, `super::…` or a `mod` declaration.
struct ModuleGraph {
    /// Module path (`admin::restart`; empty for the crate root) to its file.
    files: std::collections::BTreeMap<Vec<String>, PathBuf>,
    /// File to the files it refers to, each with the first line that does.
    edges: std::collections::BTreeMap<PathBuf, std::collections::BTreeMap<PathBuf, usize>>,
}

impl ModuleGraph {
    fn read(src: &Path) -> ModuleGraph {
        let mut files = std::collections::BTreeMap::new();
        for path in files_under(src) {
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            if module == ["main"] {
                continue; // the binary uses the library by its crate name
            }
            files.insert(module, path);
        }
        let mut graph = ModuleGraph {
            files,
            edges: Default::default(),
        };
        let modules: Vec<(Vec<String>, PathBuf)> = graph
            .files
            .iter()
            .map(|(m, p)| (m.clone(), p.clone()))
            .collect();
        for (module, path) in modules {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut out = std::collections::BTreeMap::new();
            for (line, target) in references(&text, &module) {
                if let Some(file) = graph.resolve(&target)
                    && file != path
                {
                    out.entry(file).or_insert(line);
                }
            }
            graph.edges.insert(path, out);
        }
        graph
    }

    /// The file of the longest module prefix of `path`.
    fn resolve(&self, path: &[String]) -> Option<PathBuf> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.files.get(&path[..n]).cloned())
    }

    /// Every cycle, as a list of files that lead back to the first.
    fn cycles(&self) -> Vec<Vec<PathBuf>> {
        let mut found = Vec::new();
        for start in self.edges.keys() {
            // Depth-first search for a way back to `start` through files
            // that sort after it, so that each cycle is reported once.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = std::collections::BTreeSet::new();
            while let Some((file, trail)) = stack.pop() {
                for next in self.edges[&file].keys() {
                    if next == start {
                        found.push(trail.clone());
                    } else if next > start && seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
        found
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    files(dir, &[".rs"])
}

/// Rust source with comments and string literals blanked out (lines kept).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                    }
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                out.push(' ');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                    }
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
            }
            // A char literal holding a quote would open a string otherwise.
            '\'' if chars.clone().nth(1) == Some('\'') => {
                chars.next();
                chars.next();
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// The module paths a file refers to, with the line of each: `crate::a::b`,
/// `super::x` (from the file's module; inside an inline `mod` block,
/// `super` is the file itself), `use` trees with braces, and `mod a;`.
fn references(text: &str, module: &[String]) -> Vec<(usize, Vec<String>)> {
    let code = code_only(text);
    let mut out = Vec::new();
    let mut inline_mod_from = usize::MAX;
    for (i, line) in code.lines().enumerate() {
        let trimmed = line.trim_start();
        let bare = trimmed.strip_prefix("pub ").unwrap_or(trimmed);
        if let Some(rest) = bare.strip_prefix("mod ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if rest[name.len()..].trim_start().starts_with(';') {
                let mut child = module.to_vec();
                child.push(name);
                out.push((i + 1, child));
            } else if inline_mod_from == usize::MAX {
                inline_mod_from = i;
            }
        }
    }
    for (i, line) in code.lines().enumerate() {
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", {
                let mut parent = module.to_vec();
                if i < inline_mod_from {
                    parent.pop();
                }
                parent
            }),
        ] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().last();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // e.g. `fake_kubectl::` is not `crate::`
                }
                for path in use_tree(rest) {
                    let mut full = base.clone();
                    full.extend(path);
                    out.push((i + 1, full));
                }
            }
        }
    }
    out
}

/// The paths of a `use` tree (`a::{b, c::d}` → `a::b`, `a::c::d`), read up
/// to the end of the tree.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    fn tree(chars: &mut std::iter::Peekable<std::str::Chars>) -> Vec<Vec<String>> {
        let mut prefix = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'{') {
                chars.next();
                let mut paths = Vec::new();
                loop {
                    for p in tree(chars) {
                        let mut full = prefix.clone();
                        full.extend(p);
                        paths.push(full);
                    }
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                    match chars.next() {
                        Some(',') => continue,
                        _ => return paths,
                    }
                }
            }
            let ident: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_'))
                    .collect();
            if ident.is_empty() || ident == "self" {
                return vec![prefix];
            }
            prefix.push(ident);
            if chars.clone().take(2).collect::<String>() == "::" {
                chars.next();
                chars.next();
            } else {
                return vec![prefix];
            }
        }
    }
    tree(&mut text.chars().peekable())
}

/// No module refers, through any chain, back to itself: shared behaviour
/// lives below the commands that use it, and a newcomer can read the code
/// from the bottom up.
#[test]
fn no_import_cycles() {
    let mut problems = Vec::new();
    for krate in ["xtask", "fake-kubectl"] {
        let graph = ModuleGraph::read(&root().join(krate).join("src"));
        for cycle in graph.cycles() {
            let mut steps = Vec::new();
            for (i, file) in cycle.iter().enumerate() {
                let next = &cycle[(i + 1) % cycle.len()];
                steps.push(format!(
                    "{}:{} uses {}",
                    rel(file),
                    graph.edges[file][next],
                    rel(next)
                ));
            }
            problems.push(format!(
                "import cycle: {}; move what both need into a module below them",
                steps.join(", ")
            ));
        }
    }
    report(problems);
}

/// Command modules (`provision.rs`, each `admin/<command>.rs`) use shared
/// modules only: one command never reaches into another.
#[test]
fn commands_use_shared_modules_only() {
    let src = root().join("xtask/src");
    let graph = ModuleGraph::read(&src);
    let admin = src.join("admin");
    let is_command = |p: &Path| {
        p == src.join("provision.rs") || (p.parent() == Some(&admin) && !p.ends_with("mod.rs"))
    };
    let mut problems = Vec::new();
    for (file, targets) in &graph.edges {
        if !is_command(file) {
            continue;
        }
        for (target, line) in targets {
            if is_command(target) || target == &admin.join("mod.rs") {
                problems.push(format!(
                    "{}:{line}: a command module uses {}; move what it needs into a shared module",
                    rel(file),
                    rel(target)
                ));
            }
        }
    }
    report(problems);
}

/// The checker itself finds what it must.
#[test]
fn the_import_checker_reads_use_trees_and_cycles() {
    let paths = use_tree("{a::{b, c::d}, e} + 1");
    assert_eq!(
        paths,
        [vec!["a", "b"], vec!["a", "c", "d"], vec!["e"]]
            .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
    );
    let refs = references(
        "use super::x;\nfn f() { crate::y::z(); other_crate::w(); \"crate::q\"; }\nmod inner;\n#[cfg(test)]\nmod tests { use super::*; }\n",
        &["admin".to_owned(), "list".to_owned()],
    );
    let refs: Vec<(usize, String)> = refs.into_iter().map(|(l, p)| (l, p.join("::"))).collect();
    assert_eq!(
        refs,
        [
            (3, "admin::list::inner".to_owned()),
            (1, "admin::x".to_owned()),
            (2, "y::z".to_owned()),
            (5, "admin::list".to_owned()),
        ]
    );
    // A planted cycle between two files is found, and only that one.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::f;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::g;\nuse crate::c::h;\n").unwrap();
    std::fs::write(src.join("c.rs"), "pub fn h() {}\n").unwrap();
    let cycles = ModuleGraph::read(src).cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    let mut files: Vec<String> = cycles[0]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files.dedup();
    assert_eq!(files, ["a.rs", "b.rs"]);
}
