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
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use sha2::Digest as _;

pub const FORMAT: &str = "mla-tenant-backup/2";
/// The format before archives recorded where they were taken.
pub const FORMAT_1: &str = "mla-tenant-backup/1";
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
    /// Where it was taken; absent in archives of the first format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
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
    created_from_name(name, tenant).is_some()
}

/// The archives of `tenant` in `dir`, oldest first (their names sort by
/// time); none when the directory does not exist.
pub fn archives_of(dir: &Path, tenant: &str) -> Vec<PathBuf> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
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
    let stamp = name
        .strip_prefix(tenant)?
        .strip_prefix('-')?
        .strip_suffix(".tar.gz")?;
    let shaped = stamp.len() == 16
        && stamp.char_indices().all(|(i, c)| match i {
            8 => c == 'T',
            15 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let s = stamp;
    let time = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    // A real time: month 13 or hour 25 names no backup this tool wrote.
    humantime::parse_rfc3339(&time).is_ok().then_some(time)
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

/// An archive stopped as it expanded past [`MAX_RATIO`] times its size.
#[derive(Debug)]
pub struct ExpandsTooMuch {
    pub expanded: u64,
    pub compressed: u64,
}

impl std::fmt::Display for ExpandsTooMuch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the archive expands to more than {MAX_RATIO} times its compressed size ({} bytes from {}) and \
             was stopped there: it is not an archive admin backup would keep (a decompression bomb, or a \
             database of mostly empty pages, which admin backup refuses to keep)",
            self.expanded, self.compressed
        )
    }
}

impl std::error::Error for ExpandsTooMuch {}

/// The largest `manifest.json` read: about 100 000 file entries.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The most files an archive may hold.
pub const MAX_FILES: usize = 100_000;
/// The largest file, and all files together, an archive may hold: above
/// the largest tier's volumes in platform.yaml (20Gi + 1Gi), fixed so that
/// verify-backup, offline, reaches the verdict restore would.
pub const MAX_TOTAL_BYTES: u64 = 32 << 30;
/// How many times its compressed size an archive may expand to, once past
/// [`RATIO_FLOOR`]; gzip of zeros reaches about 1000.
pub const MAX_RATIO: u64 = 100;
pub const RATIO_FLOOR: u64 = 64 << 20;
/// Longest name of one file in a path, and of a whole path (Linux's limits,
/// which the pod's `tar -x` meets).
const MAX_NAME: usize = 255;
const MAX_PATH: usize = 1024;

/// Where an archive was taken: the cluster's identity is the UID of its
/// `kube-system` namespace, which every cluster has from its creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The environment of environments.yaml, if one was used.
    pub environment: Option<String>,
    /// The kube context, if one was named (else kubectl's current one).
    pub context: Option<String>,
    pub cluster_uid: String,
}

impl Provenance {
    /// Reads the cluster's identity.
    pub fn read(
        kubectl: &crate::kubectl::Kubectl,
        environment: Option<&str>,
        context: Option<&str>,
    ) -> anyhow::Result<Provenance> {
        Ok(Provenance {
            environment: environment.map(str::to_owned),
            context: context.map(str::to_owned),
            cluster_uid: cluster_uid(kubectl)?,
        })
    }
}

/// The UID of the cluster's `kube-system` namespace: its identity.
pub fn cluster_uid(kubectl: &crate::kubectl::Kubectl) -> anyhow::Result<String> {
    let ns = kubectl
        .get_optional("namespace", "kube-system")
        .context("cannot read the cluster's identity (the UID of namespace kube-system)")?
        .with_context(|| {
            format!(
                "{} has no namespace kube-system, so its identity cannot be recorded; is it a Kubernetes cluster?",
                kubectl.context_label()
            )
        })?;
    crate::object::str_at(&ns, "/metadata/uid")
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .context("namespace kube-system has no metadata.uid")
}

/// The word `--from-cluster` takes for an archive that records no cluster.
pub const UNRECORDED: &str = "unrecorded";

/// Whether an archive from `manifest` may be used on the cluster whose
/// identity is `here`; `from` is `--from-cluster`. The refusal names the
/// flag that overrides it.
pub fn check_cluster(
    manifest: &BackupManifest,
    file: &Path,
    here: &str,
    from: Option<&str>,
) -> anyhow::Result<()> {
    let recorded = manifest.provenance.as_ref().map(|p| p.cluster_uid.as_str());
    match (recorded, from) {
        (Some(uid), None) if uid == here => Ok(()),
        (Some(uid), None) => {
            let p = manifest.provenance.as_ref().expect("recorded");
            bail!(
                "{} was taken on another cluster (cluster {}{}), not this one ({here}). To use it here on \
                 purpose, add --from-cluster {shown}",
                file.display(),
                crate::output::escape_controls(uid),
                where_taken(p),
                shown = crate::output::escape_controls(uid)
            )
        }
        (None, None) => bail!(
            "{} records no cluster (it was written before archives did), so nothing shows it was taken on \
             this cluster ({here}). Take a fresh backup with `cargo xtask admin backup {}{}`, or, if you know \
             where it comes from, add --from-cluster {UNRECORDED}",
            file.display(),
            crate::output::escape_controls(&manifest.tenant),
            crate::suggest::target_arg()
        ),
        // UIDs are lowercase; one copied from an upper-casing tool still names it.
        (Some(uid), Some(given)) if uid.eq_ignore_ascii_case(given) => Ok(()),
        (None, Some(UNRECORDED)) => Ok(()),
        (recorded, Some(given)) => bail!(
            "--from-cluster {} was given but {} {}",
            crate::output::escape_controls(given),
            file.display(),
            match recorded {
                Some(uid) => format!(
                    "was taken on cluster {}",
                    crate::output::escape_controls(uid)
                ),
                None => format!("records no cluster (--from-cluster {UNRECORDED} accepts it)"),
            }
        ),
    }
}

fn where_taken(p: &Provenance) -> String {
    let mut s = String::new();
    if let Some(env) = &p.environment {
        s += &format!(", environment {}", crate::output::escape_controls(env));
    }
    if let Some(ctx) = &p.context {
        s += &format!(", context {}", crate::output::escape_controls(ctx));
    }
    s
}

/// Whether `path` is a canonical relative path: `a/b/c`, no `.` or `..`,
/// no empty part (so no leading, trailing or repeated `/`), no control
/// character, no invisible direction or zero-width character (a name that
/// shows as another), no backslash, each part and the whole within Linux's
/// limits.
pub fn is_canonical(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.len() <= MAX_NAME
                && !part
                    .chars()
                    .any(|c| c.is_control() || c == '\\' || crate::tenant::is_refused_invisible(c))
        })
}

/// What is wrong with a manifest's list of files, before any file is read:
/// every path canonical, under `database/` (the one database) or
/// `whatsapp-auth/`, listed once, no file where another needs a directory,
/// and sizes within the caps.
fn manifest_problems(m: &BackupManifest) -> Vec<String> {
    let q = |p: &str| crate::output::escape_controls(p);
    let mut problems = Vec::new();
    if crate::tenant::TenantName::parse(&m.tenant).is_err() {
        problems.push(format!(
            "the tenant `{}` is not a tenant name",
            q(&m.tenant)
        ));
    }
    if humantime::parse_rfc3339(&m.created).is_err() {
        problems.push(format!(
            "the creation time `{}` is not an RFC 3339 time",
            q(&m.created)
        ));
    }
    if m.files.len() > MAX_FILES {
        problems.push(format!(
            "it lists {} files, more than {MAX_FILES}",
            m.files.len()
        ));
        return problems;
    }
    let mut paths = std::collections::BTreeSet::new();
    let mut total = 0u64;
    for f in &m.files {
        let in_db = f.path.strip_prefix(&format!("{DB_DIR}/"));
        let in_auth = f.path.strip_prefix(&format!("{AUTH_DIR}/"));
        if !is_canonical(&f.path) || !(in_db.is_some_and(|r| !r.contains('/')) || in_auth.is_some())
        {
            problems.push(format!(
                "the path `{}` is not a canonical path under {DB_DIR}/ (one file) or {AUTH_DIR}/",
                q(&f.path)
            ));
        } else if in_db.is_some() && m.database.as_ref().is_none_or(|d| d.path != f.path) {
            problems.push(format!("{} is not the manifest's database", q(&f.path)));
        }
        if !paths.insert(f.path.as_str()) {
            problems.push(format!("{} is listed twice", q(&f.path)));
        }
        if f.size > MAX_TOTAL_BYTES {
            problems.push(format!(
                "{} is {} bytes, more than the {MAX_TOTAL_BYTES} an archive may hold",
                q(&f.path),
                f.size
            ));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(format!("{} has no valid SHA-256", q(&f.path)));
        }
        total = total.saturating_add(f.size);
    }
    // A file where another needs a directory cannot be written anywhere.
    for p in &paths {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            at += i;
            if paths.contains(&p[..at]) {
                problems.push(format!(
                    "{} is a file, but {} needs it to be a directory",
                    q(&p[..at]),
                    q(p)
                ));
            }
            at += 1;
        }
    }
    if total > MAX_TOTAL_BYTES {
        problems.push(format!(
            "its files total {total} bytes, more than the {MAX_TOTAL_BYTES} an archive may hold"
        ));
    }
    if let Some(db) = &m.database
        && !m.files.iter().any(|f| f.path == db.path)
    {
        problems.push(format!(
            "the database {} is not among the files",
            q(&db.path)
        ));
    }
    problems
}

/// Counts the bytes read through it: compressed from the file, expanded
/// out of gzip; refuses to expand more than [`MAX_RATIO`] times.
struct Metered<'m, R> {
    inner: R,
    meter: &'m Meter,
    expanded: bool,
}

#[derive(Default)]
struct Meter {
    compressed: std::cell::Cell<u64>,
    expanded: std::cell::Cell<u64>,
    refused: std::cell::Cell<bool>,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let m = self.meter;
        if !self.expanded {
            m.compressed.set(m.compressed.get() + n as u64);
            return Ok(n);
        }
        let expanded = m.expanded.get() + n as u64;
        m.expanded.set(expanded);
        if expanded > RATIO_FLOOR && expanded / MAX_RATIO > m.compressed.get() {
            m.refused.set(true);
            return Err(std::io::Error::other("decompression bomb"));
        }
        Ok(n)
    }
}

/// An archive that passed every check, with its files extracted into a
/// private directory (0700, files 0600).
pub struct VerifiedArchive {
    pub manifest: BackupManifest,
    /// The extracted files, laid out as in the archive.
    pub dir: tempfile::TempDir,
    pub archive_bytes: u64,
}

/// The tar streams restore sends into the pod, built before anything on
/// the cluster changes.
pub struct RestoreTars {
    /// The database under the given staging name, if the archive has one.
    pub database: Option<PathBuf>,
    /// The session files, relative to the session volume.
    pub auth: PathBuf,
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

    /// Builds what restore sends into the pod, in this archive's private
    /// directory: the database as one file named `staged_db`, and the
    /// session files. Done before the bot is stopped, so that nothing the
    /// archive holds can fail a restore midway.
    pub fn restore_tars(&self, staged_db: &str) -> anyhow::Result<RestoreTars> {
        let database = match self.database_file() {
            Some(file) => {
                let tar = self.dir.path().join(".restore-database.tar");
                write_tar(&tar, &[(staged_db.to_owned(), file)])?;
                Some(tar)
            }
            None => None,
        };
        let auth = self.dir.path().join(".restore-auth.tar");
        write_tar(&auth, &self.auth_files())?;
        Ok(RestoreTars { database, auth })
    }
}

/// The name of a tar entry exactly as stored (no `./` trimmed, nothing
/// normalised), or why it cannot be one of ours.
fn raw_name<R: Read>(entry: &tar::Entry<'_, R>) -> anyhow::Result<String> {
    let bytes = entry.path_bytes();
    // Longer than any path a file system takes (PATH_MAX): said in a line,
    // not printed whole.
    if bytes.len() > 4096 {
        let start = String::from_utf8_lossy(&bytes[..80]);
        bail!(
            "the archive holds a path of {} bytes, beginning `{}…`; no file system takes one so long, \
             and admin backup never writes one",
            bytes.len(),
            crate::output::escape_controls(&start)
        );
    }
    let name = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("the archive holds a path that is not UTF-8"))?
        .to_owned();
    Ok(name)
}

/// Checks an archive completely: readable gzip and tar to the end,
/// `manifest.json` first and once, in the right format and within the caps,
/// then every file it lists and nothing else, each under its canonical
/// path, of the recorded size and SHA-256, and a database that passes
/// `PRAGMA integrity_check` with the recorded `user_version`. Sizes are
/// checked from the headers before anything is read, and an archive that
/// expands more than [`MAX_RATIO`] times is stopped as it expands.
pub fn verify_archive(path: &Path) -> anyhow::Result<VerifiedArchive> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let archive_bytes = file.metadata()?.len();
    let dir = crate::files::private_tempdir("xtask-verify-", None)?;
    let meter = Meter::default();
    let compressed = Metered {
        inner: file,
        meter: &meter,
        expanded: false,
    };
    let expanded = Metered {
        inner: flate2::read::GzDecoder::new(BufReader::new(compressed)),
        meter: &meter,
        expanded: true,
    };
    let corrupt = |e: std::io::Error| {
        if meter.refused.get() {
            anyhow::Error::new(ExpandsTooMuch {
                expanded: meter.expanded.get(),
                compressed: meter.compressed.get(),
            })
        } else {
            anyhow::anyhow!("the archive is corrupt or truncated: {e}")
        }
    };
    let not_ours = "it was not made by admin backup";
    let mut tar = tar::Archive::new(expanded);
    let mut entries = tar.entries().map_err(corrupt)?;

    // The manifest leads: everything after it is checked against it.
    let mut first = match entries.next() {
        None => bail!("the archive is empty; {not_ours}"),
        Some(e) => e.map_err(corrupt)?,
    };
    let name = raw_name(&first)?;
    if name != MANIFEST || !first.header().entry_type().is_file() {
        bail!(
            "the archive's first entry is `{}`, not the file {MANIFEST}; {not_ours}",
            crate::output::escape_controls(&name)
        );
    }
    let size = first.header().size().map_err(corrupt)?;
    if size > MAX_MANIFEST_BYTES {
        bail!(
            "the archive's {MANIFEST} is {size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may be; \
             {not_ours}"
        );
    }
    let mut text = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .map_err(corrupt)?;
    let manifest = parse_manifest(&text)?;
    let problems = manifest_problems(&manifest);
    if !problems.is_empty() {
        bail!(crate::tenant::format_problems(
            &format!("{} has an invalid {MANIFEST}", path.display()),
            &problems
        ));
    }

    let mut expected: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for entry in entries {
        // A signal stops the reading here; the unpacked copies go with `dir`.
        crate::interrupt::check()?;
        let mut entry = entry.map_err(corrupt)?;
        let name = raw_name(&entry)?;
        let shown = crate::output::escape_controls(&name);
        if name == MANIFEST {
            bail!("the archive holds {MANIFEST} twice; {not_ours}");
        }
        if !entry.header().entry_type().is_file() {
            bail!("the archive holds `{shown}`, which is not a regular file; {not_ours}");
        }
        let Some(f) = expected.remove(name.as_str()) else {
            if seen.contains(&name) {
                bail!("the archive holds `{shown}` twice; {not_ours}");
            }
            bail!(
                "the archive holds `{shown}`, which its manifest does not list (or not under that exact path); {not_ours}"
            );
        };
        let size = entry.header().size().map_err(corrupt)?;
        if size != f.size {
            bail!(
                "the archive's `{shown}` is {size} bytes, its manifest says {}; {not_ours}",
                f.size
            );
        }
        let out_path = dir.path().join(&name);
        crate::files::create_private_dirs(out_path.parent().expect("a file in a directory"))?;
        let out = crate::files::create_private_file(&out_path)?;
        let (_, sha) = hash_copy(&mut entry, out).map_err(corrupt)?;
        if sha != f.sha256 {
            problems.push(format!(
                "{shown} does not match its checksum in the manifest"
            ));
        }
        seen.insert(name);
    }
    problems.extend(expected.keys().map(|p| {
        format!(
            "{} is listed in the manifest but missing",
            crate::output::escape_controls(p)
        )
    }));
    crate::interrupt::check()?;
    if let Some(db) = &manifest.database
        && problems.is_empty()
    {
        match check_database(&dir.path().join(&db.path)) {
            Ok(v) if v == db.user_version => {}
            Ok(v) => problems.push(format!(
                "the database's user_version is {v}, the manifest says {}",
                db.user_version
            )),
            Err(e) => problems.push(format!("{e:#}")),
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

/// A manifest of this format, or of the first (which records no cluster).
fn parse_manifest(text: &[u8]) -> anyhow::Result<BackupManifest> {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    let format = serde_json::from_slice::<Format>(text)
        .map(|f| f.format)
        .unwrap_or_default();
    let manifest: BackupManifest = match format.as_str() {
        FORMAT | FORMAT_1 => serde_json::from_slice(text)
            .map_err(|e| anyhow::anyhow!("the archive's {MANIFEST} is not valid: {e}"))?,
        _ => bail!(
            "the archive's {MANIFEST} is not in format `{FORMAT}` (it says `{}`); this tool reads \
             `{FORMAT}` and `{FORMAT_1}`",
            crate::output::escape_controls(&format)
        ),
    };
    check_fields(&manifest)?;
    match (manifest.format.as_str(), &manifest.provenance) {
        (FORMAT, None) => {
            bail!("the archive's {MANIFEST} is in format `{FORMAT}` but records no provenance")
        }
        (FORMAT_1, Some(_)) => bail!(
            "the archive's {MANIFEST} is in format `{FORMAT_1}`, which has no provenance, but records one"
        ),
        _ => Ok(manifest),
    }
}

/// The manifest's words as `admin backup` writes them: no control,
/// direction or invisible characters anywhere (they would drive the
/// terminal, or hide what a field says), the tenant a valid name, its
/// namespace that tenant's, the creation time RFC 3339, the cluster UID a
/// Kubernetes UID. Paths are checked where the entries are read.
fn check_fields(m: &BackupManifest) -> anyhow::Result<()> {
    let not_ours = "it was not made by admin backup";
    let provenance = m.provenance.as_ref();
    let fields = [
        ("tenant", Some(m.tenant.as_str())),
        ("namespace", Some(m.namespace.as_str())),
        ("tool", Some(m.tool.as_str())),
        ("created", Some(m.created.as_str())),
        (
            "database.path",
            m.database.as_ref().map(|d| d.path.as_str()),
        ),
        (
            "provenance.environment",
            provenance.and_then(|p| p.environment.as_deref()),
        ),
        (
            "provenance.context",
            provenance.and_then(|p| p.context.as_deref()),
        ),
        (
            "provenance.cluster_uid",
            provenance.map(|p| p.cluster_uid.as_str()),
        ),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if value.len() > 1024 {
            bail!(
                "the archive's {MANIFEST} has a `{field}` of {} bytes; {not_ours}",
                value.len()
            );
        }
        if value
            .chars()
            .any(|c| c.is_control() || crate::tenant::is_refused_invisible(c))
        {
            bail!(
                "the archive's {MANIFEST} has control or invisible characters in `{field}` ({}); {not_ours}",
                crate::output::escape_controls(value)
            );
        }
    }
    let tenant = crate::tenant::TenantName::parse(&m.tenant).map_err(|e| {
        anyhow::anyhow!(
            "the archive's {MANIFEST} names tenant `{}`, not a valid tenant name ({e}); {not_ours}",
            m.tenant
        )
    })?;
    if m.namespace != tenant.namespace() {
        bail!(
            "the archive's {MANIFEST} says tenant {} is in namespace `{}`, not {}; {not_ours}",
            m.tenant,
            m.namespace,
            tenant.namespace()
        );
    }
    if humantime::parse_rfc3339(&m.created).is_err() {
        bail!(
            "the archive's {MANIFEST} says it was created `{}`, not an RFC 3339 time; {not_ours}",
            m.created
        );
    }
    if let Some(p) = provenance
        && !is_uid(&p.cluster_uid)
    {
        bail!(
            "the archive's {MANIFEST} records cluster `{}`, not a Kubernetes UID; {not_ours}",
            p.cluster_uid
        );
    }
    Ok(())
}

/// A Kubernetes object UID as the API server makes them (a lowercase
/// UUID), or any shorter run of lowercase hex and dashes.
fn is_uid(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
}

/// Writes the archive (owner-only) from a database copy and a tar of the
/// session files, and returns its manifest.
pub fn write_archive(
    path: &Path,
    tenant: &str,
    namespace: &str,
    provenance: &Provenance,
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
        provenance: Some(provenance.clone()),
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
    let mut builder = tar::Builder::new(crate::files::create_private_file(path)?);
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
            // Shaped like a time, but none: it would sort as the newest.
            "kalyan-99991399T999999Z.tar.gz",
            "kalyan-20261131T060000Z.tar.gz",
        ] {
            assert!(!is_file_of(other, "kalyan"), "{other}");
        }
    }

    #[test]
    fn only_canonical_relative_paths_pass() {
        for good in [
            "whatsapp-auth/creds.json",
            "whatsapp-auth/keys/pre-key-1.json",
            "a",
        ] {
            assert!(is_canonical(good), "{good}");
        }
        let long = format!("whatsapp-auth/{}", "x".repeat(256));
        for bad in [
            "",
            "/etc/passwd",
            "whatsapp-auth/./x",
            "./whatsapp-auth/x",
            "whatsapp-auth//x",
            "whatsapp-auth/x/",
            "whatsapp-auth/../x",
            "..",
            "whatsapp-auth/a\nb",
            "whatsapp-auth/a\u{202e}b",
            "whatsapp-auth/a\u{200b}b",
            "whatsapp-auth/a\\..\\b",
            long.as_str(),
        ] {
            assert!(!is_canonical(bad), "{bad:?}");
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
