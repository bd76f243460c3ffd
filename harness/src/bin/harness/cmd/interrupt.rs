//! Ctrl-C for sweeps: SIGINT sets a flag that the sweep's workers check before each seed, so a
//! sweep stops between runs, keeps every artifact already written and prints what it has.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Only async-signal-safe work here: an atomic store, and restoring the default disposition so
/// a second Ctrl-C ends the process at once if the sweep does not stop fast enough.
extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Installs the handler (once) and returns the flag it sets.
pub fn flag() -> &'static AtomicBool {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let handler: extern "C" fn(libc::c_int) = on_sigint;
        // SAFETY: the handler only stores to an atomic and calls signal(2).
        unsafe {
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        }
    });
    &INTERRUPTED
}
