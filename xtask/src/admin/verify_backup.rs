//! `admin verify-backup`: the complete check of an archive, offline.

use crate::archive::verify_archive;
use crate::flags;
use crate::output::{OutputFormat, print_structured};

impl flags::VerifyBackup {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let verified = verify_archive(&self.file)?;
        let m = &verified.manifest;
        match self.output.format {
            OutputFormat::Table => {
                println!("{}: OK", self.file.display());
                println!("  tenant:   {} (namespace {})", m.tenant, m.namespace);
                println!("  created:  {} by {}", m.created, m.tool);
                match &m.database {
                    Some(db) => println!(
                        "  database: {} (user_version {}, integrity ok)",
                        db.path, db.user_version
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
