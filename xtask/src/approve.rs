//! `cargo xtask approve` and `cargo xtask plan show|body`: signing saved
//! plans and reading them for review.

use std::path::Path;

use crate::flags;

impl flags::Approve {
    pub(crate) fn run(self, _root: &Path) -> anyhow::Result<()> {
        anyhow::bail!("not built yet")
    }
}

impl flags::PlanCommand {
    pub(crate) fn run(self, _root: &Path) -> anyhow::Result<()> {
        anyhow::bail!("not built yet")
    }
}
