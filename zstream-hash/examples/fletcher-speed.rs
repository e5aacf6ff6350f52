//! In-memory speed of the Fletcher-4 used by `--zfs` (a benchmark helper: `cargo run --release --example fletcher-speed`).
use zstream_hash::zfs::fletcher::{Fletcher4, Order};
fn main() {
    let data: Vec<u8> = (0..256u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let mut f = Fletcher4::new(Order::Little);
        for c in data.chunks(1 << 20) {
            f.update(c);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "fletcher-4: {:.0} MB/s ({:x})",
            data.len() as f64 / s / 1e6,
            f.sums()[3]
        );
    }
}
