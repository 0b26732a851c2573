//! The repository's own files: where they are (relative to the repository
//! root, whatever the current directory) and loading them.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::flags;
use crate::platform::Platform;
use crate::render::Templates;
use crate::tenant::{TenantName, TenantValues};

/// The repository root: the parent of the `xtask` crate.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// Repository paths, defaulting to the repository root.
pub struct RepoPaths {
    pub platform: PathBuf,
    pub templates: PathBuf,
    pub tenants: PathBuf,
}

impl RepoPaths {
    pub fn new(root: &Path, args: &flags::RepoArgs) -> RepoPaths {
        RepoPaths {
            platform: args
                .platform
                .clone()
                .unwrap_or_else(|| root.join("platform.yaml")),
            templates: args
                .templates
                .clone()
                .unwrap_or_else(|| root.join("templates")),
            tenants: tenants_dir(root, args.tenants_dir.as_deref()),
        }
    }

    pub fn platform(&self) -> anyhow::Result<Platform> {
        Platform::load(&self.platform.display().to_string())
    }

    pub fn templates(&self) -> anyhow::Result<Templates> {
        Templates::load(&self.templates)
    }

    /// `tenants/<name>.yaml`.
    pub fn tenant_config(&self, tenant: &TenantName) -> PathBuf {
        self.tenants.join(format!("{tenant}.yaml"))
    }
}

/// `--tenants-dir`, else `tenants/`.
pub fn tenants_dir(root: &Path, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("tenants"))
}

/// The committed tenant configs in `dir` (`*.yaml`, not `offboarded/`), by name.
pub fn committed_configs(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    // A config saved as .yml would silently never be provisioned.
    for p in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
    {
        eprintln!(
            "warning: {} is not read: tenant configs are named <TENANT>.yaml; rename it to {}",
            p.display(),
            p.with_extension("yaml").display()
        );
    }
    let mut configs: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p)))
        .collect();
    configs.sort();
    Ok(configs)
}

/// Reads a tenant config file.
pub fn read_values(path: &Path) -> anyhow::Result<TenantValues> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the values file {}; check the path (tenant configs live in tenants/)",
            path.display()
        )
    })?;
    TenantValues::from_yaml(&path.display().to_string(), &text)
}

impl flags::PlatformArg {
    pub fn load(&self, root: &Path) -> anyhow::Result<Platform> {
        let path = self
            .platform
            .clone()
            .unwrap_or_else(|| root.join("platform.yaml"));
        Platform::load(&path.display().to_string())
    }
}

impl RepoPaths {
    /// Digests of the platform settings and every template file, as a plan
    /// records them.
    pub fn input_digests(&self) -> anyhow::Result<crate::planfile::Inputs> {
        let platform = std::fs::read(&self.platform)
            .with_context(|| format!("cannot read {}", self.platform.display()))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.templates)
            .with_context(|| format!("cannot read {}", self.templates.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut hasher = crate::digest::Sha256::default();
        for file in files {
            use sha2::Digest as _;
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        Ok(crate::planfile::Inputs {
            platform: crate::digest::sha256_hex(&platform),
            templates: crate::digest::finish(hasher),
            files: crate::planfile::InputFiles {
                platform: crate::planfile::InputFiles::absolute(&self.platform),
                templates: crate::planfile::InputFiles::absolute(&self.templates),
                tenants: crate::planfile::InputFiles::absolute(&self.tenants),
            },
        })
    }

    /// SHA-256 of the tenant's committed config; None when it has none.
    pub fn config_digest(&self, tenant: &TenantName) -> anyhow::Result<Option<String>> {
        let path = self.tenant_config(tenant);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(crate::digest::sha256_hex(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}
