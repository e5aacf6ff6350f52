//! In-memory speed of the chacha20poly1305 crate on the chunks zstream-seal uses (1 MiB, one thread): the
//! reference the benchmark compares the single-threaded filter with. `cargo run --release --example seal-speed`
use zstream_seal::stream::PayloadCipher;
fn main() {
    let chunk = 1 << 20;
    let total = 512usize << 20;
    let cipher = PayloadCipher::new(&[7u8; 32]);
    let mut buf = vec![0u8; chunk];
    buf.reserve(16);
    let mut best = 0f64;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for i in 0..(total / chunk) as u64 {
            buf.truncate(chunk);
            cipher.seal(i, false, &mut buf);
        }
        best = best.max(total as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    println!("{best:.0}");
}
