//! `admin unlock`: breaks a tenant's lock (or the claims lock) that a
//! command killed hard left behind, after showing who held it; audited.

use crate::cluster::Cluster;
use crate::flags;
use crate::lock::{Holder, Subject};
use crate::outcome::{Left, LeftUnchanged};

impl flags::Unlock {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        let (subject, name) = match &self.tenant {
            Some(t) => (Subject::tenant(t), t.as_str().to_owned()),
            None => (Subject::Claims, crate::lock::CLAIMS.to_owned()),
        };
        let what = subject.describe();
        let cluster = Cluster::connect(&self.cluster, root)?;
        cluster
            .target()
            .announce(&format!("breaking the lock on {what}"));
        let kubectl = cluster.kubectl();
        let Some(lease) =
            crate::lock::read(kubectl, &subject).left_unchanged(Left::NothingChanged)?
        else {
            println!(
                "No lock is held on {what} on {}; nothing to do.",
                cluster.label()
            );
            return Ok(());
        };
        let now = crate::clock::now()?;
        let holder = Holder::of(&lease, now);
        let state = if holder.expired() {
            "It has expired".to_owned()
        } else {
            format!(
                "It expires in {}",
                crate::clock::format_age(holder.expires_in_seconds.map(|s| s.max(0) as u64))
            )
        };
        let process = holder.process_shown();
        // Its process on this machine, still running: refused, whatever
        // the lease's age (a command waiting on a slow step is alive).
        if let Some(cmdline) = crate::lock::still_running_here(&holder) {
            let pid = holder.pid().unwrap_or_default();
            crate::outcome::bail_unchanged!(
                "the lock on {what} is held by a command that still runs on this machine: {}, process \
                 {process} (`{cmdline}`). Breaking it would let another command change the tenant beside \
                 it. Stop that command instead (Ctrl-C in its terminal, or `kill {pid}`): it releases its \
                 lock as it stops.",
                holder.summary()
            );
        }
        let elsewhere = holder
            .on_another_host()
            .map(|h| {
                format!(
                    " It was taken on {}: make sure that command is no longer running there.",
                    crate::output::escape_controls(h)
                )
            })
            .unwrap_or_default();
        let explanation = format!(
            "The lock on {what} ({}): {}, process {process}. {state}.{elsewhere} Break it only if that \
             command is no longer running: a running one would go on unguarded beside the next.",
            cluster.label(),
            holder.summary(),
        );
        eprintln!("{explanation}");
        let version = lease.pointer("/metadata/resourceVersion").cloned();
        let broken = format!("broke the lock of {}, process {process}", holder.summary());
        cluster.break_lock(&name, &explanation, &broken, self.yes, |kubectl| {
            // The lock the operator saw, not one taken since.
            match crate::lock::read(kubectl, &subject)? {
                None => return Ok(()),
                Some(now) if now.pointer("/metadata/resourceVersion").cloned() != version => {
                    crate::outcome::bail_unchanged!(
                        "the lock on {what} changed while you confirmed (released, renewed or taken by \
                         another command); nothing was changed. Run this again to see who holds it now."
                    );
                }
                Some(_) => {}
            }
            crate::lock::delete(kubectl, &subject)
        })?;
        println!(
            "Broke the lock on {what}. The command that held it may have stopped halfway: check {} before \
             changing it again.",
            match &self.tenant {
                Some(t) => format!(
                    "`cargo xtask admin show {t}{}`",
                    cluster.target().suggested_arg()
                ),
                None => format!(
                    "the last provision's tenant with `cargo xtask admin show TENANT{}`",
                    cluster.target().suggested_arg()
                ),
            }
        );
        Ok(())
    }
}
