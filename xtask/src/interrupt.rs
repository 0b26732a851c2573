//! Ctrl-C during the long, stateful admin commands (backup, restore).
//!
//! The first Ctrl-C does not kill us: kubectl, in the same process group,
//! gets it and stops, the step in progress fails, and the command cleans up
//! and states exactly what state the tenant is in. A second Ctrl-C quits at
//! once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn install() {
    // Fails only if a handler is already set, which is then ours.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: quitting at once; the tenant's state was not checked");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: stopping after the current step and cleaning up (Ctrl-C again quits at once)"
        );
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error if Ctrl-C was pressed; call between steps.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        anyhow::bail!("interrupted by Ctrl-C");
    }
    Ok(())
}
