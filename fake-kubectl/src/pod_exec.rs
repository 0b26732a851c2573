//! `kubectl exec` into a fake pod: the handful of commands the tool runs in
//! the bot's container, carried out on the directories that stand in for
//! the pod's volumes, so that bytes really move through stdin and stdout.
//!
//! Commands (exactly these shapes; anything else fails loudly):
//! `sqlite3 [-readonly] [-json] DB SQL[;SQL...]|.backup PATH` (statements run in turn,
//! stopping at the first error, as the sqlite3 shell does), `cat FILE`,
//! `rm -f FILE...`, `mv FROM TO`, `tar -C DIR -cf - .`, `tar -C DIR -xf -`,
//! `find DIR -mindepth 1 -delete`, and for network probes
//! `nc -z -w SECONDS HOST PORT` and `nslookup HOST` (see `network.rs`).

use std::path::{Component, Path, PathBuf};

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::{Connection, OpenFlags, types::ValueRef};
use serde_json::{Map, Value, json};

use crate::invocation::Failure;
use crate::state::State;

/// Where each mount path of the container lives on this machine.
struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    fn of(state: &State, ns: &str, pod: &Value, container: &Value) -> Mounts {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let volumes = pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut list = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let (Some(name), Some(path)) = (mount["name"].as_str(), mount["mountPath"].as_str())
            else {
                continue;
            };
            let Some(volume) = volumes.iter().find(|v| v["name"] == name) else {
                continue;
            };
            let dir = match volume
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                Some(claim) => state.volume_dir(ns, claim),
                None => state
                    .dir()
                    .join("emptydir")
                    .join(ns)
                    .join(pod_name)
                    .join(name),
            };
            let _ = std::fs::create_dir_all(&dir);
            list.push((path.trim_end_matches('/').to_owned(), dir));
        }
        list.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Mounts(list)
    }

    /// The host path of an absolute path in the container; paths outside
    /// every volume are on the read-only root filesystem.
    fn resolve(&self, path: &str) -> Result<PathBuf, Failure> {
        let p = Path::new(path);
        if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(Failure::new(
                1,
                format!("fake-kubectl: not implemented: relative or `..` path {path} in a pod"),
            ));
        }
        for (mount, dir) in &self.0 {
            if path == mount {
                return Ok(dir.clone());
            }
            if let Some(rest) = path.strip_prefix(&format!("{mount}/")) {
                return Ok(dir.join(rest));
            }
        }
        Err(Failure::new(1, format!("{path}: Read-only file system")))
    }
}

/// Runs `command`; when it fails, kubectl reports its exit status after
/// the command's own stderr, and exits with it.
pub fn exec(
    state: &State,
    ns: &str,
    pod: &Value,
    container: &Value,
    command: &[String],
    stdin: &[u8],
) -> Result<Vec<u8>, Failure> {
    run(state, ns, pod, container, command, stdin).map_err(|f| {
        if f.message.starts_with("fake-kubectl:") {
            return f;
        }
        let trailer = format!("command terminated with exit code {}", f.code);
        let message = if f.message.is_empty() {
            trailer
        } else {
            format!("{}\n{trailer}", f.message)
        };
        // What the command printed before it failed still reaches stdout.
        let mut failed = Failure::new(f.code, message);
        failed.stdout = f.stdout;
        failed
    })
}

fn run(
    state: &State,
    ns: &str,
    pod: &Value,
    container: &Value,
    command: &[String],
    stdin: &[u8],
) -> Result<Vec<u8>, Failure> {
    let mounts = Mounts::of(state, ns, pod, container);
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["sqlite3", rest @ ..] => sqlite3(&mounts, rest),
        ["nc", "-z", "-w", _seconds, host, port] => crate::network::nc(state, pod, host, port),
        ["nslookup", host] => crate::network::nslookup(state, pod, host),
        ["cat", path] => {
            let host = mounts.resolve(path)?;
            std::fs::read(&host)
                .map_err(|_| Failure::new(1, format!("cat: {path}: No such file or directory")))
        }
        ["rm", "-f", paths @ ..] => {
            for path in paths {
                let host = mounts.resolve(path)?;
                if host.is_dir() {
                    return Err(Failure::new(
                        1,
                        format!("rm: cannot remove '{path}': Is a directory"),
                    ));
                }
                let _ = std::fs::remove_file(host);
            }
            Ok(Vec::new())
        }
        ["mv", from, to] => {
            let (a, b) = (mounts.resolve(from)?, mounts.resolve(to)?);
            std::fs::rename(&a, &b)
                .map(|()| Vec::new())
                .map_err(|e| Failure::new(1, format!("mv: cannot move '{from}' to '{to}': {e}")))
        }
        ["tar", "-C", dir, "-cf", "-", "."] => {
            let host = mounts.resolve(dir)?;
            let mut builder = tar::Builder::new(Vec::new());
            builder.follow_symlinks(false);
            builder
                .append_dir_all(".", &host)
                .and_then(|()| builder.into_inner())
                .map_err(|e| Failure::new(2, format!("tar: {dir}: {e}")))
        }
        ["tar", "-C", dir, "-xf", "-"] => {
            let host = mounts.resolve(dir)?;
            tar::Archive::new(stdin)
                .unpack(&host)
                .map(|()| Vec::new())
                .map_err(|e| Failure::new(2, format!("tar: {e}")))
        }
        ["find", dir, "-mindepth", "1", "-delete"] => {
            let host = mounts.resolve(dir)?;
            for entry in std::fs::read_dir(&host).into_iter().flatten().flatten() {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|e| {
                    Failure::new(1, format!("find: cannot delete {}: {e}", path.display()))
                })?;
            }
            Ok(Vec::new())
        }
        _ => Err(Failure::new(
            crate::invocation::NOT_IMPLEMENTED,
            format!(
                "fake-kubectl: not implemented: command `{}` in a pod",
                command.join(" ")
            ),
        )),
    }
}

fn sqlite3(mounts: &Mounts, args: &[&str]) -> Result<Vec<u8>, Failure> {
    let mut readonly = false;
    let mut as_json = false;
    let mut rest = args;
    while let [flag, tail @ ..] = rest {
        match *flag {
            "-readonly" => readonly = true,
            "-json" => as_json = true,
            _ => break,
        }
        rest = tail;
    }
    let [db, command] = rest else {
        return Err(Failure::not_implemented(format!(
            "sqlite3 {}",
            args.join(" ")
        )));
    };
    let host = mounts.resolve(db)?;
    let flags = if readonly {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    };
    let conn = Connection::open_with_flags(&host, flags).map_err(|_| {
        Failure::new(
            1,
            format!("Error: unable to open database \"{db}\": unable to open database file"),
        )
    })?;
    let sql_error = |e: rusqlite::Error| Failure::new(1, format!("Error: in prepare, {e}"));
    if let Some(target) = command.strip_prefix(".backup ") {
        let dest = mounts.resolve(target.trim())?;
        conn.backup(
            rusqlite::MAIN_DB,
            &dest,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(sql_error)?;
        return Ok(Vec::new());
    }
    if command.starts_with('.') {
        return Err(Failure::not_implemented(format!(
            "sqlite3 dot-command {command}"
        )));
    }
    // Like the sqlite3 shell: each statement in turn, each one's rows
    // printed as it ends (none for no rows), stopping at the first error
    // with what was printed so far.
    let mut out = String::new();
    let mut batch = rusqlite::Batch::new(&conn, command);
    loop {
        let stmt = match batch.next() {
            Ok(Some(stmt)) => stmt,
            Ok(None) => break,
            Err(e) => return Err(with_stdout(sql_error(e), out)),
        };
        match statement_output(stmt, as_json) {
            Ok(text) => out.push_str(&text),
            Err(e) => return Err(with_stdout(sql_error(e), out)),
        }
    }
    Ok(out.into_bytes())
}

fn with_stdout(mut failure: Failure, stdout: String) -> Failure {
    failure.stdout = stdout;
    failure
}

/// One statement's rows as the sqlite3 shell prints them: `-json` as one
/// array of objects (nothing for no rows), else `|`-separated lines.
fn statement_output(mut stmt: rusqlite::Statement<'_>, as_json: bool) -> rusqlite::Result<String> {
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query([])?;
    let mut out_rows: Vec<Vec<Value>> = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| match row.get_ref(i) {
                Ok(ValueRef::Integer(n)) => json!(n),
                Ok(ValueRef::Real(f)) => json!(f),
                Ok(ValueRef::Text(t)) => json!(String::from_utf8_lossy(t)),
                Ok(ValueRef::Blob(b)) => json!(String::from_utf8_lossy(b)),
                _ => Value::Null,
            })
            .collect();
        out_rows.push(values);
    }
    let mut out = String::new();
    if as_json {
        if !out_rows.is_empty() {
            let objects: Vec<String> = out_rows
                .iter()
                .map(|r| {
                    let map: Map<String, Value> =
                        columns.iter().cloned().zip(r.iter().cloned()).collect();
                    serde_json::to_string(&map).unwrap_or_default()
                })
                .collect();
            out = format!("[{}]\n", objects.join(",\n"));
        }
    } else {
        for r in out_rows {
            let cells: Vec<String> = r
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            out.push_str(&cells.join("|"));
            out.push('\n');
        }
    }
    Ok(out)
}
