//! The backup archive format: how an archive is written, and how it is
//! checked completely before anything trusts it.
//!
//! An archive is a gzip'd tar of `manifest.json`, `database/<file>` (an
//! online SQLite backup, never a copy of the live file) and
//! `whatsapp-auth/...` (the session files). The manifest records the size
//! and SHA-256 of every other file; verification re-reads everything and
//! runs `PRAGMA integrity_check` on the database.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use sha2::Digest as _;

pub const FORMAT: &str = "mla-tenant-backup/1";
pub const MANIFEST: &str = "manifest.json";
pub const DB_DIR: &str = "database";
pub const AUTH_DIR: &str = "whatsapp-auth";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format: String,
    pub tenant: String,
    pub namespace: String,
    /// The tool that wrote it, e.g. `xtask 0.1.0`.
    pub tool: String,
    /// When the backup was taken (RFC 3339, UTC).
    pub created: String,
    /// None when the tenant had no database yet.
    pub database: Option<DatabaseEntry>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    /// Path inside the archive.
    pub path: String,
    /// SQLite's `PRAGMA user_version`, the bot's schema version.
    pub user_version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The file name of a backup of `tenant` taken at `created` (RFC 3339,
/// UTC): `kalyan-20261124T060000Z.tar.gz`.
pub fn file_name(tenant: &str, created: &str) -> String {
    format!("{tenant}-{}.tar.gz", created.replace(['-', ':'], ""))
}

/// Whether `name` is what [`file_name`] gives for `tenant` at some time;
/// a backup of `kalyan-east` is not one of `kalyan`. Names of one tenant
/// sort by time.
pub fn is_file_of(name: &str, tenant: &str) -> bool {
    name.strip_prefix(tenant)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".tar.gz"))
        .is_some_and(|stamp| {
            stamp.len() == 16
                && stamp.char_indices().all(|(i, c)| match i {
                    8 => c == 'T',
                    15 => c == 'Z',
                    _ => c.is_ascii_digit(),
                })
        })
}

/// The archives of `tenant` in `dir`, oldest first (their names sort by
/// time); none when the directory does not exist.
pub fn archives_of(dir: &Path, tenant: &str) -> Vec<PathBuf> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| is_file_of(n, tenant))
        })
        .collect();
    archives.sort();
    archives
}

/// When an archive was taken, from its name (RFC 3339), as [`file_name`]
/// wrote it: `kalyan-20261124T060000Z.tar.gz` → `2026-11-24T06:00:00Z`.
pub fn created_from_name(name: &str, tenant: &str) -> Option<String> {
    if !is_file_of(name, tenant) {
        return None;
    }
    let s = &name[tenant.len() + 1..tenant.len() + 17];
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    ))
}

/// After `newest`, a backup of `tenant` just written and verified in
/// `dir`, deletes that tenant's other archives there beyond the newest
/// `keep - 1`, so that `keep` remain, `newest` always among them (even if
/// another's name sorts after it, from a clock that ran ahead). Only
/// regular files named as [`file_name`] names this tenant's backups are
/// touched; another tenant's (`kalyan-east` for `kalyan`), temporary work
/// directories and anything else are left alone. Returns what it deleted,
/// oldest first.
pub fn prune(dir: &Path, tenant: &str, newest: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        keep >= 1,
        "keeping {keep} archives would delete the new one"
    );
    // Oldest first: names of one tenant sort by time. Not following
    // links: a link named like a backup is not one we wrote.
    let others: Vec<PathBuf> = archives_of(dir, tenant)
        .into_iter()
        .filter(|p| p.file_name() != newest.file_name())
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    let surplus = others.len().saturating_sub(keep - 1);
    let old: Vec<PathBuf> = others.into_iter().take(surplus).collect();
    for path in &old {
        std::fs::remove_file(path)
            .with_context(|| format!("cannot delete the older backup {}", path.display()))?;
    }
    if !old.is_empty() {
        File::open(dir)?.sync_all()?;
    }
    Ok(old)
}

/// Size and SHA-256 of everything `reader` yields, copying it to `out`.
pub fn hash_copy(mut reader: impl Read, mut out: impl Write) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, crate::digest::finish(hasher)))
}

/// `PRAGMA integrity_check` and `user_version` of a database file.
pub fn check_database(path: &Path) -> anyhow::Result<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .context("cannot open the database copy")?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .context("the database copy is not a readable SQLite database")?;
    if verdict != "ok" {
        bail!("the database copy failed PRAGMA integrity_check: {verdict}");
    }
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// An archive that passed every check, with its files extracted.
pub struct VerifiedArchive {
    pub manifest: BackupManifest,
    /// The extracted files, laid out as in the archive.
    pub dir: tempfile::TempDir,
    pub archive_bytes: u64,
}

impl VerifiedArchive {
    /// The session files: (path relative to the volume, extracted file).
    pub fn auth_files(&self) -> Vec<(String, PathBuf)> {
        self.manifest
            .files
            .iter()
            .filter_map(|f| {
                let rel = f.path.strip_prefix(&format!("{AUTH_DIR}/"))?;
                Some((rel.to_owned(), self.dir.path().join(&f.path)))
            })
            .collect()
    }

    pub fn database_file(&self) -> Option<PathBuf> {
        self.manifest
            .database
            .as_ref()
            .map(|d| self.dir.path().join(&d.path))
    }
}

/// Checks an archive completely: readable gzip and tar to the end, a
/// manifest of the right format, every file present with its recorded size
/// and SHA-256 and nothing else, safe paths, and a database that passes
/// `PRAGMA integrity_check` with the recorded `user_version`.
pub fn verify_archive(path: &Path) -> anyhow::Result<VerifiedArchive> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let archive_bytes = file.metadata()?.len();
    let dir = tempfile::Builder::new().prefix("xtask-verify-").tempdir()?;
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest_text = None;
    let corrupt = |e: std::io::Error| anyhow::anyhow!("the archive is corrupt or truncated: {e}");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry
            .path()
            .map_err(corrupt)?
            .to_string_lossy()
            .into_owned();
        let name = name.trim_start_matches("./").to_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            bail!(
                "the archive holds `{name}`, which is not a regular file; it was not made by admin backup"
            );
        }
        let safe = Path::new(&name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let known = name == MANIFEST
            || name.starts_with(&format!("{DB_DIR}/"))
            || name.starts_with(&format!("{AUTH_DIR}/"));
        if !safe || !known {
            bail!("the archive holds an unexpected path `{name}`; it was not made by admin backup");
        }
        if name == MANIFEST {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(corrupt)?;
            manifest_text = Some(text);
            continue;
        }
        let out_path = dir.path().join(&name);
        std::fs::create_dir_all(out_path.parent().expect("a file in a directory"))?;
        let out = File::create(&out_path)?;
        let digest = hash_copy(&mut entry, out).map_err(corrupt)?;
        if seen.insert(name.clone(), digest).is_some() {
            bail!("the archive holds `{name}` twice");
        }
    }
    let text = manifest_text
        .context("the archive has no manifest.json; it was not made by admin backup")?;
    let manifest: BackupManifest =
        serde_json::from_str(&text).context("the archive's manifest.json is not valid")?;
    if manifest.format != FORMAT {
        bail!(
            "the archive is in format `{}`, this tool reads `{FORMAT}`",
            manifest.format
        );
    }
    let mut problems = Vec::new();
    for f in &manifest.files {
        match seen.remove(&f.path) {
            None => problems.push(format!("{} is listed in the manifest but missing", f.path)),
            Some((size, sha)) if size != f.size || sha != f.sha256 => problems.push(format!(
                "{} does not match the manifest (size {size}, expected {}; checksum {})",
                f.path,
                f.size,
                if sha == f.sha256 {
                    "matches"
                } else {
                    "differs"
                }
            )),
            Some(_) => {}
        }
    }
    problems.extend(
        seen.keys()
            .map(|p| format!("{p} is not listed in the manifest")),
    );
    if let Some(db) = &manifest.database {
        if !manifest.files.iter().any(|f| f.path == db.path) {
            problems.push(format!("the database {} is not among the files", db.path));
        } else if problems.is_empty() {
            match check_database(&dir.path().join(&db.path)) {
                Ok(v) if v == db.user_version => {}
                Ok(v) => problems.push(format!(
                    "the database's user_version is {v}, the manifest says {}",
                    db.user_version
                )),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
    }
    if !problems.is_empty() {
        bail!(crate::tenant::format_problems(
            &format!("{} failed verification", path.display()),
            &problems
        ));
    }
    Ok(VerifiedArchive {
        manifest,
        dir,
        archive_bytes,
    })
}

/// Writes the archive (owner-only) from a database copy and a tar of the
/// session files, and returns its manifest.
pub fn write_archive(
    path: &Path,
    tenant: &str,
    namespace: &str,
    created: std::time::SystemTime,
    database: Option<(&Path, &str, i64)>,
    auth_tar: &Path,
) -> anyhow::Result<BackupManifest> {
    // First pass: checksums, so that the manifest can lead the archive.
    let mut files = Vec::new();
    if let Some((db, name, _)) = database {
        let (size, sha256) = hash_copy(File::open(db)?, std::io::sink())?;
        files.push(FileEntry {
            path: format!("{DB_DIR}/{name}"),
            size,
            sha256,
        });
    }
    let mut auth = tar::Archive::new(File::open(auth_tar)?);
    for entry in auth
        .entries()
        .context("the session files' tar stream is unreadable")?
    {
        let entry = entry?;
        let kind = entry.header().entry_type();
        let rel = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if kind.is_dir() || rel.is_empty() {
            continue;
        }
        if !kind.is_file() {
            eprintln!("warning: skipping {AUTH_DIR}/{rel}: not a regular file");
            continue;
        }
        let (size, sha256) = hash_copy(entry, std::io::sink())?;
        files.push(FileEntry {
            path: format!("{AUTH_DIR}/{rel}"),
            size,
            sha256,
        });
    }
    let manifest = BackupManifest {
        format: FORMAT.to_owned(),
        tenant: tenant.to_owned(),
        namespace: namespace.to_owned(),
        tool: format!("xtask {}", env!("CARGO_PKG_VERSION")),
        created: crate::clock::rfc3339(created),
        database: database.map(|(_, name, v)| DatabaseEntry {
            path: format!("{DB_DIR}/{name}"),
            user_version: v,
        }),
        files,
    };

    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        out,
        flate2::Compression::default(),
    ));
    let mtime = created
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = |size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)?;
    builder.append_data(
        &mut header(manifest_json.len() as u64),
        MANIFEST,
        manifest_json.as_slice(),
    )?;
    if let Some((db, name, _)) = database {
        let f = File::open(db)?;
        builder.append_data(
            &mut header(f.metadata()?.len()),
            format!("{DB_DIR}/{name}"),
            f,
        )?;
    }
    let mut auth = tar::Archive::new(File::open(auth_tar)?);
    for entry in auth.entries()? {
        let entry = entry?;
        let rel = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if !entry.header().entry_type().is_file() || rel.is_empty() {
            continue;
        }
        let size = entry.header().size()?;
        builder.append_data(&mut header(size), format!("{AUTH_DIR}/{rel}"), entry)?;
    }
    let gz = builder.into_inner()?;
    let file = gz.finish()?;
    file.sync_all()?;
    Ok(manifest)
}

/// A plain tar of `(name in the tar, file)` pairs, owner-only modes.
pub fn write_tar(path: &Path, files: &[(String, std::path::PathBuf)]) -> anyhow::Result<()> {
    let mut builder = tar::Builder::new(File::create(path)?);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (name, file) in files {
        let f = File::open(file)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(f.metadata()?.len());
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, f)?;
    }
    builder.into_inner()?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_belong_to_one_tenant() {
        let name = file_name("kalyan", "2026-11-24T06:00:00Z");
        assert_eq!(name, "kalyan-20261124T060000Z.tar.gz");
        assert!(is_file_of(&name, "kalyan"));
        assert_eq!(
            created_from_name(&name, "kalyan").as_deref(),
            Some("2026-11-24T06:00:00Z")
        );
        // Another tenant whose name starts with this one's, sorting after it.
        let east = file_name("kalyan-east", "2026-11-24T05:00:00Z");
        assert!(!is_file_of(&east, "kalyan"));
        assert!(is_file_of(&east, "kalyan-east"));
        for other in [
            "kalyan-20261124T060000Z.tar",
            "kalyan-latest.tar.gz",
            "kalyan20261124T060000Z.tar.gz",
            "kalyan-20261124060000ZZ.tar.gz",
        ] {
            assert!(!is_file_of(other, "kalyan"), "{other}");
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_touches_only_this_tenants_archives() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            path
        };
        let at = |h: u32| format!("2026-11-24T{h:02}:00:00Z");
        let old: Vec<PathBuf> = (1..=3)
            .map(|h| touch(&file_name("kalyan", &at(h))))
            .collect();
        let new = touch(&file_name("kalyan", &at(5)));
        // Another tenant's, whose name starts with this one's, and strays.
        let east = touch(&file_name("kalyan-east", &at(1)));
        let stray = touch("kalyan-latest.tar.gz");
        std::fs::create_dir(dir.path().join(file_name("kalyan", &at(0)))).unwrap();
        std::fs::create_dir(dir.path().join(".kalyan-backup-x")).unwrap();

        let pruned = prune(dir.path(), "kalyan", &new, 2).unwrap();
        assert_eq!(pruned, old[..2].to_vec(), "the two oldest go, oldest first");
        for kept in [&old[2], &new, &east, &stray] {
            assert!(kept.exists(), "{} was deleted", kept.display());
        }
        assert!(dir.path().join(file_name("kalyan", &at(0))).is_dir());
        assert!(prune(dir.path(), "kalyan", &new, 2).unwrap().is_empty());

        // A name from a clock that ran ahead sorts after the new archive:
        // the new one stays all the same.
        let ahead = touch(&file_name("kalyan", &at(9)));
        assert_eq!(
            prune(dir.path(), "kalyan", &new, 1).unwrap(),
            vec![old[2].clone(), ahead]
        );
        assert!(new.exists() && east.exists());
        assert!(prune(dir.path(), "kalyan", &new, 0).is_err());
    }
}
