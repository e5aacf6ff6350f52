//! Writes a valid synthetic ZFS send stream of about N MiB to stdout, for benchmarks of `zstream-hash --zfs`
//! that need more data than a test pool holds: `cargo run --release --example synth-stream 2048`.

use zstream_hash::zfs::synth::Synth;

fn main() -> std::io::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    Synth::random_writes(mib, &mut std::io::stdout().lock())
}
