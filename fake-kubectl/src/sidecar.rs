//! Small JSON files beside the cluster (faults, namespace countdowns) that
//! every call may change, even one that only reads the cluster: each is
//! read, changed and written back under a lock of its own.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `change` on the value in `dir/<name>.json` (its default when the
/// file does not exist) and writes it back if it changed.
pub fn update<V, T>(dir: &Path, name: &str, change: impl FnOnce(&mut V) -> T) -> anyhow::Result<T>
where
    V: Serialize + DeserializeOwned + PartialEq + Clone + Default,
{
    std::fs::create_dir_all(dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{name}.lock")))?;
    lock.lock()?;
    let path = dir.join(format!("{name}.json"));
    let mut value: V = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("fake-kubectl: {name}.json is corrupt"))?,
        Err(_) => V::default(),
    };
    let before = value.clone();
    let out = change(&mut value);
    if value != before {
        std::fs::write(&path, serde_json::to_vec(&value)?)?;
    }
    Ok(out)
}
