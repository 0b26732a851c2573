//! The bytes of one volume copied to or from a pod (`admin backup`,
//! `admin restore`), drawn as a progress bar on stderr while the copy runs:
//! with a percentage when the size is known, as bytes and rate otherwise.
//! Drawn only on a terminal and never in CI; the plain step lines are the
//! same either way.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bytes are measured.
const EVERY: Duration = Duration::from_millis(100);

/// Whether progress may be drawn on stderr: it is a terminal, and `CI` is
/// not set (a CI log that happens to run in a pseudo-terminal stays plain).
pub fn progress_shown() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none_or(|v| v.is_empty())
}

/// A copy being watched.
pub struct Transfer {
    bar: ProgressBar,
}

impl Transfer {
    /// A bar for copying `what` (`total` bytes, if known) on stderr, when
    /// `shown` (a single tenant's run, see `selection::Progress`) and
    /// [`progress_shown`].
    pub fn on_terminal(what: &str, total: Option<u64>, shown: bool) -> Transfer {
        let target = if shown && progress_shown() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Transfer::to(target, what, total)
    }

    /// A bar drawn on `target`.
    pub fn to(target: ProgressDrawTarget, what: &str, total: Option<u64>) -> Transfer {
        let template = match total {
            Some(_) => {
                "  {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({percent}%), {binary_bytes_per_sec}"
            }
            None => "  {msg} {spinner} {binary_bytes}, {binary_bytes_per_sec}",
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(style)
            .with_message(what.to_owned());
        Transfer { bar }
    }

    /// Runs `work` (the copy) while `measure` (the bytes copied so far,
    /// None when unknown) is read and drawn ten times a second; the bar is
    /// erased when it ends, so the next line starts on a clean line.
    /// Hidden, it only runs `work`.
    pub fn watch<T>(self, measure: impl Fn() -> Option<u64> + Sync, work: impl FnOnce() -> T) -> T {
        if self.bar.is_hidden() {
            return work();
        }
        let bar = &self.bar;
        let result = std::thread::scope(|s| {
            let (stop, stopped) = mpsc::channel::<()>();
            let measure = &measure;
            s.spawn(move || {
                loop {
                    if let Some(bytes) = measure() {
                        bar.set_position(bytes);
                    }
                    match stopped.recv_timeout(EVERY) {
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            });
            let result = work();
            let _ = stop.send(());
            result
        });
        self.bar.finish_and_clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A terminal that records what is drawn on it: text as written, a
    /// cleared line as `<clear>`.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<String>>);

    impl Recorder {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn push(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl indicatif::TermLike for Recorder {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            self.push("<up>")
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            self.push("<down>")
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(s)?;
            self.push("\n")
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("<clear>")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The last drawing of `label` is followed by an erase.
    fn erased_last(text: &str, label: &str) -> bool {
        text.rfind("<clear>") > text.rfind(label)
    }

    fn on(recorder: &Recorder, what: &str, total: Option<u64>) -> Transfer {
        Transfer::to(
            ProgressDrawTarget::term_like(Box::new(recorder.clone())),
            what,
            total,
        )
    }

    /// A known size: the bytes copied of the total and the percentage;
    /// the line is erased at the end and ends no line of its own.
    #[test]
    fn a_known_size_is_drawn_with_its_percentage_then_erased() {
        let recorder = Recorder::default();
        let answer = on(&recorder, "database", Some(2 << 20)).watch(|| Some(1 << 20), || 42);
        assert_eq!(answer, 42, "the work's own result comes back");
        let text = recorder.text();
        assert!(
            text.contains("  database [") && text.contains("1.00 MiB/2.00 MiB (50%)"),
            "{text:?}"
        );
        assert!(erased_last(&text, "database"), "{text:?}");
        assert!(!text.contains('\n'), "no line left behind: {text:?}");
    }

    /// An unknown size: bytes without a percentage, and the last
    /// measurement is what was drawn last.
    #[test]
    fn an_unknown_size_is_drawn_as_bytes_without_a_percentage() {
        let recorder = Recorder::default();
        let copied = std::sync::atomic::AtomicU64::new(0);
        on(&recorder, "WhatsApp session", None).watch(
            || Some(copied.load(std::sync::atomic::Ordering::SeqCst)),
            || {
                copied.store(3 << 10, std::sync::atomic::Ordering::SeqCst);
                // Long enough for the watcher to read the new count.
                std::thread::sleep(EVERY * 3);
            },
        );
        let text = recorder.text();
        assert!(text.contains("  WhatsApp session "), "{text:?}");
        assert!(text.contains("3.00 KiB"), "{text:?}");
        assert!(!text.contains('%'), "{text:?}");
        assert!(erased_last(&text, "WhatsApp session"), "{text:?}");
    }

    /// Hidden (no terminal): the work runs and nothing is measured.
    #[test]
    fn hidden_it_only_runs_the_work() {
        let measured = std::sync::atomic::AtomicBool::new(false);
        let transfer = Transfer::to(ProgressDrawTarget::hidden(), "database", Some(1));
        let out = transfer.watch(
            || {
                measured.store(true, std::sync::atomic::Ordering::SeqCst);
                Some(1)
            },
            || "done",
        );
        assert_eq!(out, "done");
        assert!(!measured.load(std::sync::atomic::Ordering::SeqCst));
    }
}
