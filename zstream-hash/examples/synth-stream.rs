//! Writes a valid synthetic ZFS send stream of about N MiB to stdout, for benchmarks of `zstream-hash --zfs`
//! that need more data than a test pool holds: `cargo run --release --features synth --example synth-stream 2048`.

use std::io::Write;
use zstream_hash::zfs::fletcher::Order;
use zstream_hash::zfs::synth::Synth;

fn main() -> std::io::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let mut out = std::io::stdout().lock();
    let mut s = Synth::new(Order::Little, true);
    s.begin(1, 42, 0, "bench/fs@snap", &[]);
    // 128 KiB records of pseudo-random bytes (incompressible, like sealed or compressed data).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 128 << 10];
    for i in 0..mib * 8 {
        for w in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        s.write(8, i * block.len() as u64, &block);
        out.write_all(&s.out)?;
        s.out.clear();
    }
    s.end(42);
    out.write_all(&s.out)
}
