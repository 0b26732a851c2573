//! `admin audit`: the audit log, all of it or one tenant's.

use std::path::Path;

use crate::audit::{AuditLog, Entry};
use crate::flags;
use crate::output::{OutputFormat, print_structured, table};

impl flags::Audit {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let log = AuditLog::at(self.audit_log.as_deref(), root);
        let entries: Vec<Entry> = log
            .read()?
            .into_iter()
            .filter(|e| self.tenant.as_ref().is_none_or(|t| e.tenant == t.as_str()))
            .collect();
        match self.output.format {
            OutputFormat::Table => {
                if entries.is_empty() {
                    eprintln!("No entries in {}.", log.path().display());
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.time.clone(),
                            e.operator.clone(),
                            e.environment.clone().unwrap_or_else(|| "-".into()),
                            e.context.clone(),
                            e.tenant.clone(),
                            e.command.clone(),
                            e.result.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "TIME", "OPERATOR", "ENV", "CONTEXT", "TENANT", "COMMAND", "RESULT"
                        ],
                        &rows
                    )
                );
            }
            format => print_structured(format, &entries)?,
        }
        Ok(())
    }
}
