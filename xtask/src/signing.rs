//! Placeholder for helper A's signing module (replaced at merge).

use std::path::Path;

pub const NAMESPACE: &str = "xtask-plan@mla-platform.in";

pub struct Approvers;

impl Approvers {
    pub fn load(_flag: Option<&Path>, _root: &Path) -> anyhow::Result<Approvers> {
        Ok(Approvers)
    }
}

pub struct Approval {
    pub principal: String,
    pub roles: Vec<String>,
    pub fingerprint: String,
}

pub fn check(
    file: &crate::planfile::PlanFile,
    _approvers: &Approvers,
    required: &[String],
) -> anyhow::Result<Vec<Approval>> {
    if !required.is_empty() || !file.signatures.is_empty() {
        anyhow::bail!("signatures are not checked by this build yet");
    }
    Ok(Vec::new())
}
