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

/// Marks `error` as leaving `left` unchanged, unless it already says what
/// it left (the innermost statement is the precise one).
pub fn unchanged(error: anyhow::Error, left: Left) -> anyhow::Error {
    if error.downcast_ref::<Unchanged>().is_some() {
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
}
