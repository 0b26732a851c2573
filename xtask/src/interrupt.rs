//! Ctrl-C (SIGINT), and SIGTERM or SIGHUP, during the long, stateful admin
//! commands (backup, restore, offboard, verify's probes).
//!
//! The first signal does not kill us. After Ctrl-C, kubectl, in the same
//! process group, gets it too and stops; after a SIGTERM sent to us alone,
//! the kubectl call in progress finishes. Either way the command stops
//! before its next step, cleans up and states exactly what state the tenant
//! is in. A second signal quits at once.
//!
//! SIGTERM and SIGHUP (from `timeout`, systemd, a CI runner cancelling a
//! job, a closed terminal) reach the same handler as Ctrl-C: the `ctrlc`
//! crate's `termination` feature installs it for all three. Commands that
//! unpack tenant data into temporary files install it before they do, so
//! that no signal kills the process with plaintext copies on disk.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// A kubectl call was ended by the operator's signal, which can be seen
/// before our handler's thread has run: a batch must not start another
/// tenant in between. Apart from INTERRUPTED, which counts signals.
static SEEN_IN_KUBECTL: AtomicBool = AtomicBool::new(false);
/// A confirmation prompt is waiting for a line: nothing is changed yet,
/// and the read goes on after the signal until Enter.
static PROMPTING: AtomicBool = AtomicBool::new(false);

pub fn install() {
    // Fails only if a handler is already set, which is then ours.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!(
                "\ninterrupted again: quitting at once. What this command was changing was not checked, and \
                 its locks stay until the next command on this machine takes them over; see where things \
                 stand with `cargo xtask admin list{}`",
                crate::suggest::target_arg()
            );
            std::process::exit(130);
        }
        if PROMPTING.load(Ordering::SeqCst) {
            eprintln!(
                "\ninterrupted: nothing was changed; press Enter to stop (or interrupt again to quit at once)"
            );
        } else {
            eprintln!(
                "\ninterrupted: stopping after the current step and cleaning up (interrupt again to quit at once)"
            );
        }
    });
}

/// Marks the time a confirmation prompt waits for its answer.
pub fn prompting(waiting: bool) {
    PROMPTING.store(waiting, Ordering::SeqCst);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst) || SEEN_IN_KUBECTL.load(Ordering::SeqCst)
}

/// Records that a kubectl call died of SIGINT, SIGTERM or SIGHUP.
pub fn seen_in_kubectl() {
    SEEN_IN_KUBECTL.store(true, Ordering::SeqCst);
}

/// An error if Ctrl-C was pressed; call between steps.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        anyhow::bail!("interrupted (Ctrl-C or a termination signal)");
    }
    Ok(())
}
