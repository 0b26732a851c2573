//! `admin verify-backup`: the complete check of an archive, offline, by the
//! same reader restore and offboard use: a pass means restore can apply it.

use crate::archive::verify_archive;
use crate::flags;
use crate::output::{OutputFormat, escape_controls as shown, print_structured};

impl flags::VerifyBackup {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        // The archive is unpacked into a private temporary directory, which
        // a signal must not leave behind.
        crate::interrupt::install();
        let verified = verify_archive(&self.file)?;
        let m = &verified.manifest;
        match self.output.format {
            OutputFormat::Table => {
                // Every field from the archive goes through the sanitiser:
                // an archive is outside input and must not drive the terminal.
                println!("{}: OK", self.file.display());
                println!(
                    "  tenant:   {} (namespace {})",
                    shown(&m.tenant),
                    shown(&m.namespace)
                );
                println!("  created:  {} by {}", shown(&m.created), shown(&m.tool));
                match &m.provenance {
                    Some(p) => println!(
                        "  cluster:  {} (environment {}, context {})",
                        shown(&p.cluster_uid),
                        p.environment.as_deref().map_or("none".into(), shown),
                        p.context.as_deref().map_or("current".into(), shown)
                    ),
                    None => println!(
                        "  cluster:  not recorded (an archive of format {}); restore and offboard need \
                         --from-cluster {} for it",
                        crate::archive::FORMAT_1,
                        crate::archive::UNRECORDED
                    ),
                }
                match &m.database {
                    Some(db) => println!(
                        "  database: {} (user_version {}, integrity ok)",
                        shown(&db.path),
                        db.user_version
                    ),
                    None => println!("  database: none (the tenant had none yet)"),
                }
                println!(
                    "  files:    {} ({} bytes), all checksums match",
                    m.files.len(),
                    m.files.iter().map(|f| f.size).sum::<u64>()
                );
            }
            format => print_structured(format, m)?,
        }
        Ok(())
    }
}
