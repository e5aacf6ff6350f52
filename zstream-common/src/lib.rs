//! What every zstream filter repeats, kept in one small place so that each tool behaves the same at its edges:
//! exit codes (`exit`), the main wrapper that prints one-line errors (`cli`), pipe set-up and full-buffer reads
//! (`pipe`), progress on stderr (`progress`), byte sizes on the command line (`size`), files written whole or not at all
//! (`atomic`) and the cleanup of unfinished writes when a signal arrives (`interrupt`).

pub mod atomic;
pub mod cli;
pub mod exit;
pub mod interrupt;
pub mod ordered;
pub mod pipe;
pub mod progress;
pub mod size;

pub use exit::{integrity, usage, Code, Coded};

/// What every tool's `--version` says: the workspace's version and the commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ZSTREAM_COMMIT"),
    ")"
);

/// Fills `buf` from the system's random generator (keys, salts, stream ids), with the one message its rare
/// failure gets.
pub fn random(buf: &mut [u8]) -> anyhow::Result<()> {
    getrandom::fill(buf).map_err(|e| anyhow::anyhow!("the system random generator failed: {e}"))
}

/// The buffer size every stage reads and writes with. 1 MiB matches the grown pipe size, so one read drains a full
/// pipe and one write fills an empty one; smaller buffers cost measurably more syscalls (see docs/BENCHMARKS.md).
pub const BUF_SIZE: usize = 1 << 20;
