//! The interrupt cleanup when the caller's work ends before the signal thread runs: a cron timeout signals the
//! whole process group, so a child (ssh, zfs) dies at once and the caller's error path drops its guard while the
//! signal thread may not have woken yet. The cleanup must still run and the process die of the signal.
//!
//! The test runs itself again as the child (a signal ends a process; it cannot be tried in the test's own).

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CHILD: &str = "ZSTREAM_INTERRUPT_CHILD";

#[test]
fn a_guard_dropped_after_the_signal_leaves_the_cleanup_to_the_signal_thread() {
    if let Some(marker) = std::env::var_os(CHILD) {
        let guard = zstream_common::interrupt::arm(move || {
            std::fs::write(&marker, "cleaned").unwrap();
            "cleaned up".to_string()
        });
        // The handler sets the flag at delivery, here, in this thread; the signal thread runs later.
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        drop(guard);
        std::thread::sleep(std::time::Duration::from_secs(30));
        unreachable!("the signal thread should have ended the process");
    }
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("cleaned");
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_guard_dropped_after_the_signal_leaves_the_cleanup_to_the_signal_thread",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, &marker)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(15), "{}: {err}", out.status);
        assert!(marker.exists(), "the cleanup did not run: {err}");
        assert!(err.contains("interrupted by SIGTERM; cleaned up"), "{err}");
    }
}
