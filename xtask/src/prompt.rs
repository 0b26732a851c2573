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
    ask_valid_or(prompter, question, None, validate)
}

/// [`ask_valid`] offering `default`: the question shows it in brackets
/// (`MLA name [Asha Kulkarni]`), and an empty answer (Enter) keeps it. The
/// default is validated like any answer.
pub fn ask_valid_or<T>(
    prompter: &mut dyn Prompter,
    question: &str,
    default: Option<&str>,
    validate: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let shown = match default {
        Some(d) => format!("{question} [{d}]"),
        None => question.to_owned(),
    };
    loop {
        let Some(answer) = prompter.ask(&shown)? else {
            bail!("input ended before `{question}` was answered");
        };
        let answer = match default {
            Some(d) if answer.trim().is_empty() => d,
            _ => answer.as_str(),
        };
        match validate(answer) {
            Ok(value) => return Ok(value),
            Err(why) => prompter.say(&format!("  ✗ {why}")),
        }
    }
}

/// Asks a yes/no question whose answer is no unless `y` or `yes` is typed.
pub fn ask_yes_no(prompter: &mut dyn Prompter, question: &str) -> anyhow::Result<bool> {
    let answer = prompter.ask(&format!("{question} [y/N]"))?;
    Ok(matches!(
        answer.as_deref().map(str::trim),
        Some("y" | "Y" | "yes" | "Yes" | "YES")
    ))
}

/// Shows `explanation` and asks, in the terminal, for `expected` (the
/// tenant name, or `all`) to be typed. When that is needed is decided in
/// one place, `cluster.rs`.
pub fn ask_typed(expected: &str, explanation: &str) -> anyhow::Result<()> {
    let mut p = TerminalPrompter;
    p.say(explanation);
    crate::interrupt::prompting(true);
    let answer = p.ask(&format!("Type {expected} to continue"));
    crate::interrupt::prompting(false);
    crate::interrupt::check()?;
    let answer = answer?;
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

    #[test]
    fn enter_keeps_the_default_and_an_answer_replaces_it() {
        let upper = |s: &str| -> Result<String, String> {
            if s.chars().any(|c| c.is_ascii_digit()) {
                Err(format!("`{s}` has a digit"))
            } else {
                Ok(s.to_uppercase())
            }
        };
        let mut p = ScriptedPrompter::new(&["", "  ", "x1", "new"]);
        assert_eq!(
            ask_valid_or(&mut p, "Name", Some("old"), upper).unwrap(),
            "OLD"
        );
        assert_eq!(
            ask_valid_or(&mut p, "Name", Some("kept"), upper).unwrap(),
            "KEPT"
        );
        assert_eq!(
            ask_valid_or(&mut p, "Name", Some("old"), upper).unwrap(),
            "NEW"
        );
        assert_eq!(
            p.transcript,
            [
                "Name [old]: ",
                "Name [kept]:   ",
                "Name [old]: x1",
                "  ✗ `x1` has a digit",
                "Name [old]: new"
            ]
        );
        // A default that fails validation is not taken: the question is asked again.
        let mut p = ScriptedPrompter::new(&["", "fine"]);
        assert_eq!(
            ask_valid_or(&mut p, "Name", Some("bad9"), upper).unwrap(),
            "FINE"
        );
        assert_eq!(p.transcript[1], "  ✗ `bad9` has a digit");
        // Without a default, Enter is an answer like any other.
        let mut p = ScriptedPrompter::new(&[""]);
        let err = ask_valid_or(&mut p, "Name", None, |s| {
            if s.is_empty() {
                Err("empty".to_owned())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("input ended before `Name`"));
        assert_eq!(p.transcript, ["Name: ", "  ✗ empty", "Name: <EOF>"]);
    }

    #[test]
    fn yes_no_defaults_to_no() {
        let mut p = ScriptedPrompter::new(&["y", " yes ", "", "n", "sure"]);
        let answers: Vec<bool> = (0..6)
            .map(|_| ask_yes_no(&mut p, "Go on?").unwrap())
            .collect();
        assert_eq!(answers, [true, true, false, false, false, false]);
        assert_eq!(p.transcript[0], "Go on? [y/N]: y");
        assert_eq!(p.transcript[5], "Go on? [y/N]: <EOF>");
    }
}
