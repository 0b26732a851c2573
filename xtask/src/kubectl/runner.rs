//! Running one process to completion: stdin from nothing, bytes or a file;
//! stdout captured, written to a file or passed through; stderr captured;
//! killed when a deadline passes (`wait-timeout`, no polling).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::ScopedJoinHandle;
use std::time::Duration;

use wait_timeout::ChildExt as _;

/// Where a call's stdin comes from.
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    File(&'a Path),
    /// This open file from its offset; the caller's handle shares the
    /// offset, so it shows how much the process has read (a progress bar).
    Open(&'a std::fs::File),
}

/// Where a call's stdout goes.
pub enum Sink {
    /// Returned to the caller.
    Capture,
    /// Written to this file (large downloads never sit in memory).
    File(std::fs::File),
    /// Straight to our own stdout (logs).
    Inherit,
}

/// A process that ran to its end.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `program` with `args`, its environment changed by `env` (a
/// variable set, or removed where the value is None); None when `limit`
/// passed first and the process was killed. A process that exits before
/// reading all of its input (a bad context, an unreachable server) is
/// reported by its own exit status, not by the broken pipe.
pub fn run(
    program: &Path,
    args: &[String],
    env: &[(&str, Option<&str>)],
    input: Input<'_>,
    sink: Sink,
    limit: Option<Duration>,
) -> std::io::Result<Option<Finished>> {
    let stdin = match &input {
        Input::None => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
        Input::File(path) => Stdio::from(std::fs::File::open(path)?),
        Input::Open(file) => Stdio::from(file.try_clone()?),
    };
    let stdout = match sink {
        Sink::Capture => Stdio::piped(),
        Sink::File(f) => Stdio::from(f),
        Sink::Inherit => Stdio::inherit(),
    };
    let mut command = Command::new(program);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    // Input is written, and both outputs read, while the process runs, so
    // that a full pipe never blocks it.
    std::thread::scope(|s| {
        let writer = match (input, child.stdin.take()) {
            (Input::Bytes(bytes), Some(mut pipe)) => {
                Some(s.spawn(move || match pipe.write_all(bytes) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other,
                }))
            }
            _ => None,
        };
        let out = child.stdout.take().map(|p| s.spawn(move || read_all(p)));
        let err = child.stderr.take().map(|p| s.spawn(move || read_all(p)));
        let status = match limit {
            Some(limit) => match child.wait_timeout(limit)? {
                Some(status) => Some(status),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    None
                }
            },
            None => Some(child.wait()?),
        };
        let stdout = joined(out)?;
        let stderr = joined(err)?;
        if let Some(writer) = writer {
            writer
                .join()
                .map_err(|_| std::io::Error::other("the stdin writer thread panicked"))??;
        }
        Ok(status.map(|status| Finished {
            status,
            stdout,
            stderr,
        }))
    })
}

fn read_all(mut pipe: impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    pipe.read_to_end(&mut buf).map(|_| buf)
}

fn joined(
    reader: Option<ScopedJoinHandle<'_, std::io::Result<Vec<u8>>>>,
) -> std::io::Result<Vec<u8>> {
    match reader {
        Some(h) => h
            .join()
            .map_err(|_| std::io::Error::other("a pipe reader thread panicked"))?,
        None => Ok(Vec::new()),
    }
}
