//! How a command ends, as types rather than text: an exit status with no
//! further message, and errors that state what they left unchanged.
//!
//! A changing command's error ends with exactly one statement of what it
//! did not change ("Nothing was changed.", "No backup was written."). The
//! statement is attached where it becomes true, as [`Unchanged`], and a
//! wrapper that finds one already attached leaves it alone; no code looks
//! for the words in a message.

/// Ends a command with this exit status and no further message (its
/// output already said everything), e.g. `provision --plan` with changes.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// What a failed command left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The cluster and the repository are as they were.
    NothingChanged,
    /// No archive exists for this run (the cluster is not changed by a backup).
    NoBackupWritten,
}

impl Left {
    fn sentence(self) -> &'static str {
        match self {
            Left::NothingChanged => "Nothing was changed.",
            Left::NoBackupWritten => "No backup was written.",
        }
    }
}

/// An error that says what it left unchanged, once, on its last line.
#[derive(Debug)]
pub struct Unchanged {
    error: anyhow::Error,
    left: Left,
}

impl Unchanged {
    pub fn left(&self) -> Left {
        self.left
    }
}

impl std::fmt::Display for Unchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}\n{}", self.error, self.left.sentence())
    }
}

impl std::error::Error for Unchanged {}

/// An error after which something was changed: its last lines say what
/// (`Deleted before it stopped: ...`) and how to go on. It drops any
/// "Nothing was changed." an inner step attached, and nothing wrapping it
/// adds one.
#[derive(Debug)]
pub struct Partly {
    /// The cause, without any statement of what it left unchanged.
    cause: String,
    statement: String,
}

impl std::fmt::Display for Partly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.cause, self.statement)
    }
}

impl std::error::Error for Partly {}

/// Marks `error` as having happened after changes, which `statement` lists.
pub fn partly(error: anyhow::Error, statement: String) -> anyhow::Error {
    Partly {
        cause: cause(&error),
        statement,
    }
    .into()
}

/// What `error` says without its statement of what it left unchanged or
/// changed: for a message that gathers the causes of several tenants
/// under one statement of its own.
pub fn cause(error: &anyhow::Error) -> String {
    let mut causes = Vec::new();
    for cause in error.chain() {
        if let Some(inner) = cause.downcast_ref::<Unchanged>() {
            causes.push(format!("{:#}", inner.error));
            break;
        }
        if let Some(inner) = cause.downcast_ref::<Partly>() {
            causes.push(inner.cause.clone());
            break;
        }
        causes.push(cause.to_string());
    }
    causes.join(": ")
}

/// Marks `error` as leaving `left` unchanged, unless it already says what
/// it left (the innermost statement is the precise one), or that it
/// changed something ([`Partly`]).
pub fn unchanged(error: anyhow::Error, left: Left) -> anyhow::Error {
    if error.downcast_ref::<Unchanged>().is_some() || error.downcast_ref::<Partly>().is_some() {
        error
    } else {
        Unchanged { error, left }.into()
    }
}

/// `result.left_unchanged(Left::NothingChanged)`: [`unchanged`] on the error.
pub trait LeftUnchanged<T> {
    fn left_unchanged(self, left: Left) -> anyhow::Result<T>;
}

impl<T> LeftUnchanged<T> for anyhow::Result<T> {
    fn left_unchanged(self, left: Left) -> anyhow::Result<T> {
        self.map_err(|e| unchanged(e, left))
    }
}

/// `bail_unchanged!("...")`: returns an error that changed nothing.
macro_rules! bail_unchanged {
    ($($arg:tt)*) => {
        return Err($crate::outcome::unchanged(
            anyhow::anyhow!($($arg)*),
            $crate::outcome::Left::NothingChanged,
        ))
    };
}
pub(crate) use bail_unchanged;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_made_once_at_the_end() {
        let inner = unchanged(anyhow::anyhow!("tenant x is stopped"), Left::NothingChanged);
        let outer = unchanged(inner.context("restart failed"), Left::NoBackupWritten);
        assert_eq!(
            format!("{outer:#}"),
            "restart failed: tenant x is stopped\nNothing was changed."
        );
        let plain = unchanged(anyhow::anyhow!("no such tenant"), Left::NoBackupWritten);
        assert_eq!(plain.to_string(), "no such tenant\nNo backup was written.");
    }

    /// After a change, an inner "Nothing was changed." is dropped, and no
    /// outer wrapper adds one.
    #[test]
    fn a_partial_change_never_says_nothing_was_changed() {
        let inner = unchanged(anyhow::anyhow!("refused: 409"), Left::NothingChanged);
        let e = partly(
            inner.context("deleting service/bot"),
            "Deleted before it stopped: ingress/bot".into(),
        );
        let e = unchanged(e.context("offboard"), Left::NothingChanged);
        let text = format!("{e:#}");
        assert_eq!(
            text,
            "offboard: deleting service/bot: refused: 409\nDeleted before it stopped: ingress/bot"
        );
        assert!(!text.contains("Nothing was changed"));
    }
}
