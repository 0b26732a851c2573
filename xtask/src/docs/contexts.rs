//! The `--context` rule of `docs check`: a documented command (a code
//! block's line or an inline code span that runs `cargo xtask`, the help
//! examples in docs/cli.md included) may name with `--context` only the
//! context of an environment in environments.yaml. (kubectl has no
//! environments: its `--context` is not held to them.)
//! Any other context gets no environment's rules (production's typed
//! confirmation among them), so an example with one teaches a command that
//! skips them: `--env NAME` says what is meant.

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use super::check::Problem;

/// The problems of `files` against the repository's environments.yaml;
/// none when the repository has no such file.
pub fn check_files(root: &Path, files: &[PathBuf]) -> Vec<Problem> {
    let path = root.join("environments.yaml");
    let environments = match crate::environment::contexts_in(&path) {
        Ok(Some(e)) => e,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![Problem {
                file: "environments.yaml".to_owned(),
                line: 1,
                message: format!("{e:#}"),
            }];
        }
    };
    let mut out = Vec::new();
    for file in files {
        // Unreadable files are reported by the main checker.
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let name = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (line, context) in documented_contexts(&text) {
            if environments.iter().any(|(_, c)| *c == context) {
                continue;
            }
            out.push(Problem {
                file: name.clone(),
                line,
                message: refusal(&name, &context, &environments),
            });
        }
    }
    out
}

fn refusal(file: &str, context: &str, environments: &[(String, String)]) -> String {
    let known: Vec<String> = environments
        .iter()
        .map(|(n, c)| format!("{n}: {c}"))
        .collect();
    let names: Vec<&str> = environments.iter().map(|(n, _)| n.as_str()).collect();
    let generated = if file.ends_with("docs/cli.md") || file == super::cli::PATH {
        " (docs/cli.md is generated: fix the example in xtask/src/flags.rs, then run `cargo xtask docs cli`)"
    } else {
        ""
    };
    format!(
        "`--context {context}` matches no environment's context in environments.yaml ({}), so the \
         command would run with no environment's rules (production's confirmation among them): \
         write `--env NAME` ({}) instead, or an environment's context{generated}",
        known.join(", "),
        names.join(", ")
    )
}

/// Every `--context VALUE` of a command in `markdown`, with its line:
/// in code blocks (any language) and inline code, on lines that run
/// `cargo xtask`. Placeholders (`NAME`, `<context>`, `$CTX`)
/// are left out.
pub fn documented_contexts(markdown: &str) -> Vec<(usize, String)> {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (event, range) in Parser::new(markdown).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => {
                block = Some((line_of(range.start) + 1, String::new()))
            }
            Event::Text(t) if block.is_some() => block.as_mut().expect("in a block").1.push_str(&t),
            Event::End(TagEnd::CodeBlock) => {
                let (first, text) = block.take().unwrap_or_default();
                // A line continued with `\` belongs to the command above.
                let mut command = false;
                for (i, line) in text.lines().enumerate() {
                    command = command || runs_a_command(line);
                    if command {
                        out.extend(contexts_in_line(line).into_iter().map(|c| (first + i, c)));
                    }
                    command = command && line.trim_end().ends_with('\\');
                }
            }
            Event::Code(code) if runs_a_command(&code) => {
                let line = line_of(range.start);
                out.extend(contexts_in_line(&code).into_iter().map(|c| (line, c)));
            }
            _ => {}
        }
    }
    out
}

fn runs_a_command(line: &str) -> bool {
    line.contains("cargo xtask")
}

/// The `--context` values of a command line.
fn contexts_in_line(line: &str) -> Vec<String> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '`')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let value = match word.strip_prefix("--context") {
            Some("") => words.get(i + 1).copied(),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        let Some(value) = value else { continue };
        let value = value
            .trim_matches(|c: char| matches!(c, '"' | '\''))
            .trim_end_matches(['.', ',', ';', ':', ')']);
        let placeholder = value.is_empty()
            || value.starts_with('-')
            || value.contains(['<', '>', '$', '{', '*', '…'])
            || value.contains("...")
            || value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !placeholder {
            out.push(value.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_give_their_contexts_and_placeholders_none() {
        let page = "Run `cargo xtask admin list --context prod` or\n\
                    `cargo xtask admin list --context=kind-mla-dev`, not `kubectl --context nope`.\n\n\
                    ```console\n\
                    $ cargo xtask provision demo \\\n    --context mla-sit\n\
                    $ cargo xtask admin list --context NAME\n\
                    $ cargo xtask admin list --context <context>\n\
                    ```\n\n\
                    Prose about --context foo is no command, nor is `--context X`.\n";
        assert_eq!(
            documented_contexts(page),
            [
                (1, "prod".to_owned()),
                (2, "kind-mla-dev".to_owned()),
                (6, "mla-sit".to_owned()),
            ]
        );
    }
}
