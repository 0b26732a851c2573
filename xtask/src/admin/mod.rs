//! `cargo xtask admin`: operate tenants that `provision` created. One
//! module per command; what they share lives in the crate's shared modules
//! (`live`, `archive`, `workbench`, `plan`, `cluster`, `output`), never here.

mod audit;
mod backup;
mod drift;
mod list;
mod logs;
mod offboard;
mod restart;
mod restore;
mod rotate;
mod show;
mod suspend;
mod unlock;
mod usage;
mod verify;
mod verify_backup;

use std::path::Path;

use crate::flags::{self, AdminCommand};

impl flags::Admin {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        match self.command {
            AdminCommand::List(cmd) => cmd.run(root),
            AdminCommand::Show(cmd) => cmd.run(root),
            AdminCommand::Usage(cmd) => cmd.run(root),
            AdminCommand::Restart(cmd) => cmd.run(root),
            AdminCommand::Logs(cmd) => cmd.run(root),
            AdminCommand::Backup(cmd) => cmd.run(root),
            AdminCommand::Restore(cmd) => cmd.run(root),
            AdminCommand::VerifyBackup(cmd) => cmd.run(),
            AdminCommand::Verify(cmd) => cmd.run(root),
            AdminCommand::Drift(cmd) => cmd.run(root),
            AdminCommand::Audit(cmd) => cmd.run(root),
            AdminCommand::Suspend(cmd) => cmd.run(root),
            AdminCommand::Resume(cmd) => cmd.run(root),
            AdminCommand::Rotate(cmd) => cmd.run(root),
            AdminCommand::Offboard(cmd) => cmd.run(root),
            AdminCommand::Unlock(cmd) => cmd.run(root),
        }
    }
}

/// `cargo xtask apply` of an offboard plan (see `offboard::apply_plan`).
pub fn apply_offboard_plan(
    cluster: &crate::cluster::Cluster,
    root: &Path,
    file: &crate::planfile::PlanFile,
    planned: &crate::planfile::TenantPlan,
    tenants_dir: Option<&Path>,
) -> anyhow::Result<()> {
    offboard::apply_plan(cluster, root, file, planned, tenants_dir)
}
