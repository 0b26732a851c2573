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
/// Deleted when dropped.
pub fn private_tempdir(prefix: &str, in_dir: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700));
    let dir = match in_dir {
        Some(d) => builder.tempdir_in(d),
        None => builder.tempdir(),
    };
    dir.with_context(|| format!("cannot create a private temporary directory `{prefix}*`"))
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
