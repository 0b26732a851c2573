//! Interactive questions, behind a trait so that the ask-validate-re-ask loop
//! is the same code in a terminal and in tests.

#[cfg(test)]
use std::collections::VecDeque;
use std::io::{BufRead, Write};

use anyhow::bail;

pub trait Prompter {
    /// Shows `question` and returns the answer line, or None at end of input.
    fn ask(&mut self, question: &str) -> anyhow::Result<Option<String>>;
    /// Shows a line to the person answering.
    fn say(&mut self, line: &str);
}

/// Asks until `validate` accepts the answer, showing each rejection.
pub fn ask_valid<T>(
    prompter: &mut dyn Prompter,
    question: &str,
    validate: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    loop {
        let Some(answer) = prompter.ask(question)? else {
            bail!("input ended before `{question}` was answered");
        };
        match validate(&answer) {
            Ok(value) => return Ok(value),
            Err(why) => prompter.say(&format!("  ✗ {why}")),
        }
    }
}

/// Shows `explanation` and asks, in the terminal, for `expected` (the
/// tenant name, or `all`) to be typed. When that is needed is decided in
/// one place, `cluster.rs`.
pub fn ask_typed(expected: &str, explanation: &str) -> anyhow::Result<()> {
    let mut p = TerminalPrompter;
    p.say(explanation);
    let answer = p.ask(&format!("Type {expected} to continue"))?;
    if answer.as_deref().map(str::trim) != Some(expected) {
        bail!("that was not `{expected}`");
    }
    Ok(())
}

/// Prompts on stderr and reads lines from stdin (a terminal).
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&mut self, question: &str) -> anyhow::Result<Option<String>> {
        let mut stderr = std::io::stderr();
        write!(stderr, "{question}: ")?;
        stderr.flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            eprintln!();
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
    }

    fn say(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

/// Answers from a fixed list and records the whole conversation.
#[cfg(test)]
#[derive(Default)]
pub struct ScriptedPrompter {
    pub answers: VecDeque<String>,
    pub transcript: Vec<String>,
}

#[cfg(test)]
impl ScriptedPrompter {
    pub fn new(answers: &[&str]) -> Self {
        ScriptedPrompter {
            answers: answers.iter().map(|s| s.to_string()).collect(),
            transcript: Vec::new(),
        }
    }
}

#[cfg(test)]
impl Prompter for ScriptedPrompter {
    fn ask(&mut self, question: &str) -> anyhow::Result<Option<String>> {
        let answer = self.answers.pop_front();
        self.transcript.push(format!(
            "{question}: {}",
            answer.as_deref().unwrap_or("<EOF>")
        ));
        Ok(answer)
    }

    fn say(&mut self, line: &str) {
        self.transcript.push(line.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_asks_until_valid_and_stops_at_end_of_input() {
        let mut p = ScriptedPrompter::new(&["x", "12"]);
        let n: u32 = ask_valid(&mut p, "Number", |s| {
            s.parse().map_err(|_| format!("`{s}` is not a number"))
        })
        .unwrap();
        assert_eq!(n, 12);
        assert_eq!(
            p.transcript,
            ["Number: x", "  ✗ `x` is not a number", "Number: 12"]
        );
        let err = ask_valid(&mut p, "Again", |s| Ok::<_, String>(s.to_owned())).unwrap_err();
        assert!(err.to_string().contains("input ended"));
    }
}
