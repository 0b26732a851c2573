//! Writing files so that no reader ever sees half of one, and directories
//! only their owner can read.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context;

/// Writes to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` owner-only (0700) if it does not exist; an existing
/// directory keeps its permissions.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A new temporary directory only its owner can enter (0700), for tenant
/// data: in `$TMPDIR` (`in_dir` None) or beside where its result goes.
/// Deleted when dropped, and on a signal by the command's own exit path.
///
/// Its name carries this process's id (`{prefix}{pid}-XXXXXX`): a process
/// killed hard (`kill -9`, power lost) cannot remove its directory, so each
/// new one first removes those of the same prefix whose process is gone,
/// saying so on stderr. Plaintext tenant data does not outlive the next run.
pub fn private_tempdir(prefix: &str, in_dir: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    let named = format!("{prefix}{}-", std::process::id());
    builder
        .prefix(&named)
        .permissions(std::fs::Permissions::from_mode(0o700));
    let dir = match in_dir {
        Some(d) => builder.tempdir_in(d),
        None => builder.tempdir(),
    }
    .with_context(|| format!("cannot create a private temporary directory `{prefix}*`"))?;
    sweep_left_behind(&dir, prefix);
    Ok(dir)
}

/// The prefixes of the tool's directories in `$TMPDIR`: any run that makes
/// one there removes those of every kind that a killed run left.
const TMPDIR_PREFIXES: [&str; 2] = ["xtask-verify-", "xtask-restore-"];
/// What names a backup's work directory, `.<tenant>-backup-<pid>-XXXXXX`.
pub const BACKUP_INFIX: &str = "-backup-";

/// Removes the directories beside `ours` named `{prefix}{pid}-…` (or with
/// one of [`TMPDIR_PREFIXES`]), owned by the same user, whose process no
/// longer runs as an xtask.
fn sweep_left_behind(ours: &tempfile::TempDir, prefix: &str) {
    use std::os::unix::fs::MetadataExt as _;
    let Some(parent) = ours.path().parent() else {
        return;
    };
    let Ok(me) = std::fs::symlink_metadata(ours.path()).map(|m| m.uid()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A backup's work directory is `.<tenant>-backup-<pid>-…` beside
        // the archives: any tenant's is swept by a backup into that directory.
        let backup_dir = || {
            let rest = name.strip_prefix('.')?;
            let at = rest.rfind(BACKUP_INFIX)?;
            Some(&rest[at + BACKUP_INFIX.len()..])
        };
        let Some(pid) = std::iter::once(prefix)
            .chain(TMPDIR_PREFIXES)
            .find_map(|p| name.strip_prefix(p))
            .or_else(|| backup_dir().filter(|_| prefix.ends_with(BACKUP_INFIX)))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me || running_xtask(pid).is_some() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => eprintln!(
                "Removed {}: temporary tenant data left by an earlier run that was killed.",
                entry.path().display()
            ),
            Err(e) => eprintln!(
                "warning: {} holds temporary tenant data left by an earlier run that was killed, \
                 and could not be removed ({e}); delete it by hand",
                entry.path().display()
            ),
        }
    }
}

/// The command line of process `pid` on this machine if it runs this tool
/// (its program is named `xtask…`); None if it is gone or is another
/// program that reused the id.
pub fn running_xtask(pid: u32) -> Option<String> {
    if pid == std::process::id() {
        return Some("this command".to_owned());
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = Path::new(args.first()?).file_name()?.to_string_lossy();
    program
        .starts_with("xtask")
        .then(|| crate::output::escape_controls(&args.join(" ")))
}

/// Creates a new file only its owner can read (0600), whatever the umask;
/// refuses to open one that exists (it could be a link planted there).
pub fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Creates `dir` and its missing parents owner-only (0700).
pub fn create_private_dirs(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_temp_data_is_owner_only_whatever_the_umask() {
        // The umask of a process that would otherwise give 0755 and 0644.
        let parent = tempfile::tempdir().unwrap();
        let dir = super::private_tempdir("xtask-test-", Some(parent.path())).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        let sub = dir.path().join("a/b");
        super::create_private_dirs(&sub).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&sub), 0o700);
        let file = sub.join("creds.json");
        super::create_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(
            super::create_private_file(&file).is_err(),
            "an existing file is not reused"
        );
    }

    /// A directory of a process killed hard is removed by the next one;
    /// one of a live xtask process (this test's, named `xtask-…`) and one
    /// of another user's prefix are kept.
    #[test]
    fn temp_data_of_a_killed_run_is_removed_by_the_next() {
        let parent = tempfile::tempdir().unwrap();
        // No process has this id (above the kernel's pid_max limit).
        let dead = parent.path().join("xtask-verify-4194305-abcdef");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("creds.json"), b"secret").unwrap();
        let restore = parent.path().join("xtask-restore-4194305-abcdef");
        std::fs::create_dir(&restore).unwrap();
        let backup = parent.path().join(".alpha-backup-4194305-abcdef");
        std::fs::create_dir(&backup).unwrap();
        let not_ours = parent.path().join("xtask-verify-notapid");
        std::fs::create_dir(&not_ours).unwrap();
        let dir = super::private_tempdir("xtask-verify-", Some(parent.path())).unwrap();
        assert!(!dead.exists(), "left behind by a killed run");
        assert!(!restore.exists(), "every kind the tool makes in $TMPDIR");
        assert!(
            backup.exists(),
            "a backup's work directory is swept by backups only"
        );
        // A backup of another tenant into the same directory sweeps it.
        let _work = super::private_tempdir(".beta-backup-", Some(parent.path())).unwrap();
        assert!(
            !backup.exists(),
            "any tenant's backup directory of a killed run"
        );
        assert!(not_ours.exists());
        assert!(
            dir.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("xtask-verify-{}-", std::process::id()))
        );
        // A second directory of this (live) process does not remove the first.
        let second = super::private_tempdir("xtask-verify-", Some(parent.path())).unwrap();
        assert!(dir.path().exists() && second.path().exists());
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.yaml");
        super::write_atomic(&path, b"one").unwrap();
        super::write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
