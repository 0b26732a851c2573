//! What a `cargo xtask` command suggested to the operator carries so that
//! it acts where the run that printed it did: ` --env NAME` when the run
//! had an environment, else ` --context X` when it had a context, else
//! nothing. Set once per command by `cluster::Target::resolve` (see
//! `Target::suggested_arg`); read here by code with no Target at hand.
//! A leaf module, so that every module may use it.

use std::sync::RwLock;

static TARGET_ARG: RwLock<String> = RwLock::new(String::new());

/// Records the run's ` --env NAME` / ` --context X` (or nothing).
pub fn set_target_arg(arg: String) {
    *TARGET_ARG
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = arg;
}

/// ` --env NAME`, ` --context X` or nothing, for the end of a suggested
/// `cargo xtask` command; nothing before a target is resolved.
pub fn target_arg() -> String {
    TARGET_ARG
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

static GATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records whether the run's environment requires approvals, so that a
/// suggested change there is its plan form, not a command the gate refuses.
pub fn set_gated(gated: bool) {
    GATED.store(gated, std::sync::atomic::Ordering::SeqCst);
}

/// Whether the run's environment requires approvals (see `set_gated`).
pub fn gated() -> bool {
    GATED.load(std::sync::atomic::Ordering::SeqCst)
}
