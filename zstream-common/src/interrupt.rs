//! SIGTERM, SIGINT and SIGHUP (a cron timeout, Ctrl-C, a closed terminal) end the process only after the cleanup
//! that an unfinished write registered has run: an aborted upload, a removed temporary file. The default action
//! would leave them behind, for `gc` to find days later or never.
//!
//! One cleanup is armed at a time. `Armed::commit` runs the step that makes the write final (a rename, a
//! CompleteMultipartUpload) while holding the same lock the signal thread takes, so a signal either cleans up
//! before the commit or waits for it and finds nothing left to undo; it never undoes half of a commit. And no
//! commit starts once a signal has arrived: the handler itself sets a flag (before the signal thread runs), and
//! a commit that finds it leaves the cleanup to that thread. A cron timeout signals the whole process group, so
//! the end of input that follows a SIGTERM is most likely the upstream dying, not a clean end.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

type Cleanup = Box<dyn FnOnce() -> String + Send>;

static SLOT: Mutex<Option<Cleanup>> = Mutex::new(None);
static INSTALL: Once = Once::new();
/// Set by the signal handler itself, at delivery.
static SIGNALLED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Arms `cleanup` (it returns what it did, for the message) until the returned guard commits or drops.
pub fn arm(cleanup: impl FnOnce() -> String + Send + 'static) -> Armed {
    INSTALL.call_once(install);
    *lock() = Some(Box::new(cleanup));
    Armed(())
}

/// An armed cleanup. Dropping it disarms it (the caller's own error path cleans up then), unless a signal has
/// arrived: then the signal thread runs it.
pub struct Armed(());

impl Armed {
    /// Disarms the cleanup and runs `commit` with signals held off until it returns. If a signal has already
    /// arrived, the commit never runs: this thread waits for the signal thread to clean up and end the process.
    pub fn commit<T>(self, commit: impl FnOnce() -> T) -> T {
        let mut slot = disarm();
        std::mem::forget(self);
        *slot = None;
        commit()
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        *disarm() = None;
    }
}

/// The slot, locked, for disarming; or, once a signal has arrived, never: this thread waits for the signal
/// thread to run the cleanup and end the process. A signal often ends the caller's work first (the whole process
/// group gets it, so a child dies at once and the caller's error path drops its guard): disarming then would race
/// the signal thread for the lock and could leave the interruption with nothing undone.
fn disarm() -> std::sync::MutexGuard<'static, Option<Cleanup>> {
    let slot = lock();
    if SIGNALLED.get().is_some_and(|f| f.load(Ordering::SeqCst)) {
        drop(slot);
        loop {
            std::thread::park();
        }
    }
    slot
}

fn lock() -> std::sync::MutexGuard<'static, Option<Cleanup>> {
    // A panic while holding the lock cannot leave the slot inconsistent: it is only ever set or taken whole.
    SLOT.lock().unwrap_or_else(|p| p.into_inner())
}

fn install() {
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        // Without the handler the default action stays: the process dies as it would have before.
        Err(_) => return,
    };
    // The flag only with the thread that ends the process: a thread that finds it set waits for that one.
    let flag = SIGNALLED.get_or_init(Arc::default);
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        let _ = signal_hook::flag::register(sig, Arc::clone(flag));
    }
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let mut slot = lock();
            let said = match slot.take() {
                Some(cleanup) => format!("; {}", cleanup()),
                None => String::new(),
            };
            crate::say!("interrupted by {}{said}", signal_name(sig));
            // Die of the signal itself, so the parent (a shell, cron, systemd) sees what happened.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
