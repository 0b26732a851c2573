//! `cargo xtask apply FILE`: a saved plan, checked against its approvals,
//! the cluster and today's render, then applied exactly as planned.

use std::path::Path;

use crate::flags;

impl flags::Apply {
    pub(crate) fn run(self, _root: &Path) -> anyhow::Result<()> {
        anyhow::bail!("not built yet")
    }
}
