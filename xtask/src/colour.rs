//! Colour on stdout: whether to use it (decided once, from `--color`,
//! `NO_COLOR` and whether stdout is a terminal) and the painting of states,
//! pass/fail words and diff lines. Commands ask this module to paint; JSON,
//! YAML and CSV are never painted, so never pass through it.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::state::State;

/// `--color`: when to colour what goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set to a non-empty value or TERM is dumb
    #[default]
    Auto,
    /// Always, even into a pipe or a file
    Always,
    /// Never
    Never,
}

/// Off until [`init`] decides otherwise: a library caller (a test) gets
/// plain text.
static ON: AtomicBool = AtomicBool::new(false);

/// Decides, once per run, whether stdout is coloured.
pub fn init(choice: ColorChoice) {
    let on = decide(
        choice,
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    ON.store(on, Ordering::Relaxed);
}

/// Whether to colour: `--color always` and `never` are the operator's word
/// (over NO_COLOR, as no-color.org asks of a command-line flag); `auto`
/// colours a terminal unless NO_COLOR holds anything or TERM is `dumb`.
pub fn decide(
    choice: ColorChoice,
    stdout_is_terminal: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            stdout_is_terminal
                && no_color.is_none_or(OsStr::is_empty)
                && term != Some(OsStr::new("dumb"))
        }
    }
}

/// Whether this run colours stdout.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// What a piece of text means, and so its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Passed, running, in sync, added: green.
    Good,
    /// Failed, error, removed: red.
    Bad,
    /// Pending, stopped, changed, drifted: yellow.
    Warn,
    /// Taken offline on purpose: blue.
    Calm,
    /// Gone or going (offboarded, terminating), unchanged, skipped: dim.
    Faint,
    /// A diff's hunk header: cyan.
    Marker,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Good => "32",
            Tone::Bad => "1;31",
            Tone::Warn => "33",
            Tone::Calm => "34",
            Tone::Faint => "2",
            Tone::Marker => "36",
        }
    }
}

/// `text` in `tone`'s colour when this run colours, else as it is.
pub fn paint(text: &str, tone: Tone) -> String {
    paint_if(enabled(), text, tone)
}

fn paint_if(on: bool, text: &str, tone: Tone) -> String {
    if on && !text.is_empty() {
        format!("\x1b[{}m{text}\x1b[0m", tone.code())
    } else {
        text.to_owned()
    }
}

/// The tone of a tenant's state.
pub fn state_tone(state: State) -> Tone {
    match state {
        State::Running => Tone::Good,
        State::Error => Tone::Bad,
        State::Pending | State::Stopped => Tone::Warn,
        State::Suspended => Tone::Calm,
        State::Offboarded | State::Terminating => Tone::Faint,
    }
}

/// `text` (a state's description) in the colour of `state`.
pub fn state(text: &str, state: State) -> String {
    paint(text, state_tone(state))
}

/// `text` green when `passed`, red otherwise.
pub fn verdict(text: &str, passed: bool) -> String {
    paint(text, if passed { Tone::Good } else { Tone::Bad })
}

/// A unified diff with its added lines green, removed ones red and hunk
/// headers cyan; the `---`/`+++` file headers stay plain.
pub fn diff(text: &str) -> String {
    diff_if(enabled(), text)
}

fn diff_if(on: bool, text: &str) -> String {
    if !on {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let tone = if line.starts_with("+++") || line.starts_with("---") {
            None
        } else if line.starts_with('+') {
            Some(Tone::Good)
        } else if line.starts_with('-') {
            Some(Tone::Bad)
        } else if line.starts_with("@@") {
            Some(Tone::Marker)
        } else {
            None
        };
        match tone {
            Some(tone) => out.push_str(&paint_if(true, line, tone)),
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        let auto = |terminal, no_color: Option<&str>, term: Option<&str>| {
            decide(
                ColorChoice::Auto,
                terminal,
                no_color.map(OsStr::new),
                term.map(OsStr::new),
            )
        };
        assert!(auto(true, None, Some("xterm-256color")));
        assert!(!auto(false, None, Some("xterm-256color")), "a pipe");
        assert!(!auto(true, Some("1"), None), "NO_COLOR=1");
        assert!(!auto(true, Some("false"), None), "any non-empty value");
        assert!(auto(true, Some(""), None), "an empty NO_COLOR is unset");
        assert!(!auto(true, None, Some("dumb")));
        // The flag is the operator's word, over the environment.
        assert!(decide(
            ColorChoice::Always,
            false,
            Some(OsStr::new("1")),
            None
        ));
        assert!(!decide(ColorChoice::Never, true, None, None));
    }

    #[test]
    fn painting_wraps_text_in_one_sgr_pair_or_leaves_it() {
        assert_eq!(paint_if(true, "pass", Tone::Good), "\x1b[32mpass\x1b[0m");
        assert_eq!(paint_if(true, "FAIL", Tone::Bad), "\x1b[1;31mFAIL\x1b[0m");
        assert_eq!(paint_if(false, "FAIL", Tone::Bad), "FAIL");
        assert_eq!(paint_if(true, "", Tone::Bad), "", "nothing to paint");
        // Off unless init said otherwise (tests never call it).
        assert_eq!(verdict("pass", true), "pass");
        assert_eq!(state("running", State::Running), "running");
    }

    #[test]
    fn every_state_has_a_tone_that_tells_trouble_apart() {
        assert_eq!(state_tone(State::Running), Tone::Good);
        assert_eq!(state_tone(State::Error), Tone::Bad);
        assert_eq!(state_tone(State::Suspended), Tone::Calm);
        assert_ne!(state_tone(State::Pending), Tone::Good);
        assert_ne!(state_tone(State::Stopped), Tone::Good);
    }

    #[test]
    fn diffs_paint_added_removed_and_hunks_not_file_headers() {
        let text = "--- a\n+++ b\n@@ -1 +1 @@\n-old: 1\n+new: 2\n same";
        let painted = diff_if(true, text);
        assert_eq!(
            painted,
            "--- a\n+++ b\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[1;31m-old: 1\x1b[0m\n\x1b[32m+new: 2\x1b[0m\n same"
        );
        assert_eq!(diff_if(false, text), text);
    }
}
