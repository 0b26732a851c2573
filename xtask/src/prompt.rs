//! Interactive questions, behind a trait so that the ask-validate-re-ask loop
//! is the same code in a terminal and in tests.
//!
//! In a terminal the questions are inquire's prompts: a refused answer is
//! named under the question at once and the question stays open. Ctrl-C or
//! Esc at any question ends the command with [`Cancelled`]: nothing was
//! changed, and the binary exits 130 (see [`cancelled`]).

#[cfg(test)]
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;

/// How many answers a confirmation takes before it stops: a mistyped one
/// is asked again, the answers given before it kept.
pub const TRIES: usize = 3;

/// Checks one answer: `Err` is what is wrong with it, shown to the person
/// answering.
pub type Check<'a> = &'a dyn Fn(&str) -> Result<(), String>;

pub trait Prompter {
    /// Shows `question` (offering `default`, which an empty answer keeps)
    /// and returns the first answer `check` accepts, showing each refusal
    /// and asking again; None at end of input.
    fn ask(
        &mut self,
        question: &str,
        default: Option<&str>,
        check: Check<'_>,
    ) -> anyhow::Result<Option<String>>;
    /// Shows a line to the person answering.
    fn say(&mut self, line: &str);
}

/// Ctrl-C or Esc at a question: the command stops there.
#[derive(Debug)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled at the prompt (Ctrl-C or Esc)")
    }
}

impl std::error::Error for Cancelled {}

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Whether a question was cancelled in this process: the binary then exits
/// 130, as a shell reports a command ended by Ctrl-C. (The error that says
/// so is wrapped by the statement of what was left unchanged, so the flag,
/// not the error's type, carries it to `main`.)
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Asks until `validate` accepts the answer, showing each rejection.
pub fn ask_valid<T>(
    prompter: &mut dyn Prompter,
    question: &str,
    validate: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    ask_valid_or(prompter, question, None, validate)
}

/// [`ask_valid`] offering `default`: an empty answer (Enter) keeps it. The
/// default is validated like any answer: one refused is shown as wrong and
/// the question asked again without it.
pub fn ask_valid_or<T>(
    prompter: &mut dyn Prompter,
    question: &str,
    default: Option<&str>,
    validate: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let check = |answer: &str| validate(answer).map(drop);
    let mut default = default;
    loop {
        let Some(answer) = prompter.ask(question, default, &check)? else {
            bail!("input ended before `{question}` was answered");
        };
        match validate(&answer) {
            Ok(value) => return Ok(value),
            Err(why) => {
                prompter.say(&format!("  ✗ {why}"));
                default = None;
            }
        }
    }
}

/// Asks a yes/no question whose answer is no unless `y` or `yes` is typed;
/// Enter (or the end of input) is no. Anything else is asked again, up to
/// [`TRIES`] answers in all, then the question stops with an error.
pub fn ask_yes_no(prompter: &mut dyn Prompter, question: &str) -> anyhow::Result<bool> {
    let question = format!("{question} [y/N]");
    for left in (0..TRIES).rev() {
        let answer = prompter.ask(&question, None, &|_| Ok(()))?;
        match answer
            .as_deref()
            .map(|a| a.trim().to_lowercase())
            .as_deref()
        {
            Some("y" | "yes") => return Ok(true),
            None | Some("" | "n" | "no") => return Ok(false),
            Some(_) if left > 0 => prompter.say(&format!(
                "  ✗ `{}` is neither yes nor no: type y to go on, n (or Enter) to stop ({})",
                answer.as_deref().unwrap_or_default().trim(),
                tries_left(left)
            )),
            Some(_) => {}
        }
    }
    bail!("no yes or no in {TRIES} answers")
}

/// Shows `explanation` and asks, in the terminal, for `expected` (the
/// tenant name, or `all`) to be typed; a mistyped answer is asked again, up
/// to [`TRIES`] answers in all. When that is needed is decided in one
/// place, `cluster.rs`.
pub fn ask_typed(expected: &str, explanation: &str) -> anyhow::Result<()> {
    typed_by(&mut TerminalPrompter, expected, explanation)
}

fn typed_by(p: &mut dyn Prompter, expected: &str, explanation: &str) -> anyhow::Result<()> {
    p.say(explanation);
    let question = format!("Type {expected} to continue");
    for left in (0..TRIES).rev() {
        crate::interrupt::prompting(true);
        let answer = p.ask(&question, None, &|_| Ok(()));
        crate::interrupt::prompting(false);
        crate::interrupt::check()?;
        let Some(answer) = answer? else {
            bail!("input ended before `{expected}` was typed");
        };
        if answer.trim() == expected {
            return Ok(());
        }
        if left > 0 {
            p.say(&format!(
                "  ✗ that was not `{expected}` ({})",
                tries_left(left)
            ));
        }
    }
    bail!("that was not `{expected}`, {TRIES} times")
}

fn tries_left(left: usize) -> String {
    match left {
        1 => "1 try left".to_owned(),
        n => format!("{n} tries left"),
    }
}

/// Asks with inquire on the terminal (stderr), reading keys from it.
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(
        &mut self,
        question: &str,
        default: Option<&str>,
        check: Check<'_>,
    ) -> anyhow::Result<Option<String>> {
        use inquire::error::InquireError;
        use inquire::validator::Validation;
        // Blanks alone keep the default, as Enter does.
        let keeps_default = move |answer: &str| default.is_some() && answer.trim().is_empty();
        let validator = move |answer: &str| {
            Ok(match check(answer) {
                _ if keeps_default(answer) => Validation::Valid,
                Ok(()) => Validation::Valid,
                Err(why) => Validation::Invalid(why.into()),
            })
        };
        let mut text = inquire::Text::new(question).with_validator(validator);
        if let Some(default) = default {
            text = text.with_default(default);
        }
        match text.prompt() {
            Ok(answer) if keeps_default(&answer) => Ok(default.map(str::to_owned)),
            Ok(answer) => Ok(Some(answer)),
            Err(InquireError::OperationInterrupted | InquireError::OperationCanceled) => {
                CANCELLED.store(true, Ordering::SeqCst);
                Err(Cancelled.into())
            }
            Err(InquireError::NotTTY) => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context("cannot read the answer from the terminal"))
            }
        }
    }

    fn say(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

/// Answers from a fixed list and records the whole conversation; a refused
/// answer is recorded with its refusal and the next one taken, as a
/// terminal shows the refusal and keeps asking.
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
    fn ask(
        &mut self,
        question: &str,
        default: Option<&str>,
        check: Check<'_>,
    ) -> anyhow::Result<Option<String>> {
        let shown = match default {
            Some(d) => format!("{question} [{d}]"),
            None => question.to_owned(),
        };
        loop {
            let answer = self.answers.pop_front();
            self.transcript
                .push(format!("{shown}: {}", answer.as_deref().unwrap_or("<EOF>")));
            let Some(answer) = answer else {
                return Ok(None);
            };
            // As inquire does: Enter takes the default unchecked.
            if let Some(d) = default.filter(|_| answer.trim().is_empty()) {
                return Ok(Some(d.to_owned()));
            }
            match check(&answer) {
                Ok(()) => return Ok(Some(answer)),
                Err(why) => self.transcript.push(format!("  ✗ {why}")),
            }
        }
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
    fn yes_no_defaults_to_no_and_asks_again_when_mistyped() {
        let mut p = ScriptedPrompter::new(&["y", " YES ", "", "n", "sure", "y"]);
        let answers: Vec<bool> = (0..6)
            .map_while(|_| ask_yes_no(&mut p, "Go on?").ok())
            .collect();
        // The fifth question took two answers: `sure`, then `y`; the sixth
        // found the input at its end, which is no.
        assert_eq!(answers, [true, true, false, false, true, false]);
        assert_eq!(p.transcript[0], "Go on? [y/N]: y");
        assert_eq!(
            p.transcript[5],
            "  ✗ `sure` is neither yes nor no: type y to go on, n (or Enter) to stop (2 tries left)"
        );
        assert_eq!(p.transcript[7], "Go on? [y/N]: <EOF>");

        // Three mistyped answers stop it; a fourth is never read.
        let mut p = ScriptedPrompter::new(&["yy", "sí", "oui", "y"]);
        let err = ask_yes_no(&mut p, "Go on?").unwrap_err();
        assert_eq!(err.to_string(), "no yes or no in 3 answers");
        insta::assert_snapshot!(p.transcript.join("\n"), @r"
        Go on? [y/N]: yy
          ✗ `yy` is neither yes nor no: type y to go on, n (or Enter) to stop (2 tries left)
        Go on? [y/N]: sí
          ✗ `sí` is neither yes nor no: type y to go on, n (or Enter) to stop (1 try left)
        Go on? [y/N]: oui
        ");
        assert_eq!(p.answers, ["y"]);
    }

    #[test]
    fn a_mistyped_name_is_asked_again_three_times_in_all() {
        let mut p = ScriptedPrompter::new(&["kalyn", " kalyan "]);
        typed_by(
            &mut p,
            "kalyan",
            "Environment prod: provisioning of tenant kalyan.",
        )
        .unwrap();
        assert_eq!(
            p.transcript,
            [
                "Environment prod: provisioning of tenant kalyan.",
                "Type kalyan to continue: kalyn",
                "  ✗ that was not `kalyan` (2 tries left)",
                "Type kalyan to continue:  kalyan ",
            ]
        );
        let mut p = ScriptedPrompter::new(&["a", "b", "c", "kalyan"]);
        let err = typed_by(&mut p, "kalyan", "Sure?").unwrap_err();
        assert_eq!(err.to_string(), "that was not `kalyan`, 3 times");
        assert_eq!(p.transcript[5], "Type kalyan to continue: c");
        assert_eq!(p.transcript.len(), 6);
        let mut p = ScriptedPrompter::new(&[]);
        let err = typed_by(&mut p, "kalyan", "Sure?").unwrap_err();
        assert!(err.to_string().contains("input ended"), "{err}");
    }
}
