//! What the pipe's algorithms cost on one core, in memory: the floor that `scripts/bench pipe` sets each pipe's
//! CPU time against. Each kernel runs over 1 GiB of random bytes in the pieces the filters use (1 MiB chunks,
//! 10 x 1 MiB groups), five times; the best run counts (the machine is shared: the best is the least disturbed).
//! Prints one line per kernel: name, CPU-seconds per GiB of its input, GB/s, what it is.
//! `cargo run --release -p zstream-par --example kernels`
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use sha2::{Digest, Sha256};
use std::time::Instant;
use zstream_par::codec::Codec;
use zstream_par::format::payload_sum;

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;
/// Larger than the caches, so memory is read as in the pipe, where every byte arrives fresh from a pipe.
const BUF: usize = 64 * MIB;

fn main() {
    let mut data = vec![0u8; BUF];
    fill_random(&mut data);
    kernel("sha256", "SHA-256 (sha2; zstream-hash)", MIB, || {
        let mut h = Sha256::new();
        for piece in pieces(&data, MIB) {
            h.update(piece);
        }
        std::hint::black_box(h.finalize());
    });
    // In place over the buffer, as zstream-seal seals each chunk in the buffer it was read into.
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut sealed = data.clone();
    kernel(
        "chacha20poly1305",
        "ChaCha20-Poly1305 sealing 1 MiB chunks in place (zstream-seal's cipher crate)",
        MIB,
        || {
            let mut tags = 0u8;
            for pass in 0..GIB / BUF {
                for (i, chunk) in sealed.chunks_exact_mut(MIB).enumerate() {
                    let mut nonce = [0u8; 12];
                    nonce[..8].copy_from_slice(&((pass * BUF / MIB + i) as u64).to_be_bytes());
                    let tag = cipher
                        .encrypt_inout_detached(&Nonce::from(nonce), b"", chunk.into())
                        .expect("1 MiB is within the cipher's limit");
                    tags ^= tag[0];
                }
            }
            std::hint::black_box(tags);
        },
    );
    let codec = Codec::new(10, 2).expect("10+2 is valid");
    let mut parity = vec![vec![0u8; MIB]; 2];
    kernel(
        "rs-10+2",
        "Reed-Solomon 10+2 parity of 1 MiB blocks, per GiB of data (zstream-par)",
        10 * MIB,
        || {
            for group in pieces(&data, 10 * MIB) {
                let shards: Vec<&[u8]> = group.chunks(MIB).collect();
                codec.encode(&shards, &mut parity);
            }
            std::hint::black_box(&parity);
        },
    );
    kernel(
        "xxh3-64",
        "XXH3-64 of 1 MiB frame payloads (zstream-par)",
        MIB,
        || {
            let mut x = 0;
            for piece in pieces(&data, MIB) {
                x ^= payload_sum(piece);
            }
            std::hint::black_box(x);
        },
    );
    // In place, as the encoder masks each payload and the decoder unmasks it.
    let mask = zstream_par::format::Mask::new(7);
    let mut masked = data.clone();
    kernel(
        "mask",
        "par-v2's mask: 64 bytes XORed over 1 MiB payloads in place (zstream-par)",
        MIB,
        || {
            for _ in 0..GIB / BUF {
                for chunk in masked.chunks_exact_mut(MIB) {
                    mask.apply(chunk);
                }
            }
            std::hint::black_box(&masked);
        },
    );
    kernel(
        "mask+xxh3-64",
        "par-v2's mask and the payload checksum in one pass over 1 MiB payloads (zstream-par)",
        MIB,
        || {
            let mut x = 0;
            for _ in 0..GIB / BUF {
                for chunk in masked.chunks_exact_mut(MIB) {
                    x ^= mask.apply_and_sum(chunk);
                }
            }
            std::hint::black_box(x);
        },
    );
    kernel(
        "blake3",
        "BLAKE3, one thread (zstream-par's trailer digest)",
        MIB,
        || {
            let mut h = blake3::Hasher::new();
            for piece in pieces(&data, MIB) {
                h.update(piece);
            }
            std::hint::black_box(h.finalize());
        },
    );
}

/// About 1 GiB of input (`per_run(size)` bytes) as `size`-byte pieces of the buffer, round and round.
fn pieces(data: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks_exact(size).cycle().take(GIB / size)
}

fn per_run(size: usize) -> usize {
    GIB / size * size
}

fn kernel(name: &str, what: &str, size: usize, mut run: impl FnMut()) {
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let bytes = per_run(size) as f64;
    let per_gib = best * GIB as f64 / bytes;
    println!("{name}\t{per_gib:.3}\t{:.0}\t{what}", bytes / best / 1e6);
}

/// Random bytes without another dependency: xorshift is enough to defeat any shortcut on constant input.
fn fill_random(buf: &mut [u8]) {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for w in buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        w.copy_from_slice(&s.to_le_bytes()[..w.len()]);
    }
}
