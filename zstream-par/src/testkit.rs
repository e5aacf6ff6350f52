//! The testkit (docs/formats/testkit/par/): damaged, crafted and clean parity streams, one file each with what
//! decoding it must do, for this implementation's tests and for any other's. Each file is a text header, a blank
//! line, then the stream's bytes:
//!
//! ```text
//! expect: success | failure
//! output: <bytes> <sha256 hex>   (what `zstream-par -d` writes: the whole original, or the groups before the
//!                                 first one that cannot be repaired; on a trailer mismatch, everything)
//! comment: <what the case is>
//! ```
//!
//! "failure" exits 3. The streams use the vectors' parameters (3 data + 2 parity blocks of 64 bytes), so each
//! is a few KiB. A test fails when the committed files and this generator disagree;
//! `cargo run -p zstream-par --example par-testkit docs/formats/testkit/par` rewrites them.

use crate::encode;
use crate::format::{self, Frame, FRAME_HEADER};
use crate::vectors::{input, PARAMS, STREAM_ID};
use sha2::{Digest, Sha256};

fn encoded(len: usize, stream_id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(&input(len)[..], &mut out, PARAMS, 0, stream_id, |_| {})
        .expect("encoding a testkit case");
    out
}

/// (offset, length, header) of every frame of a fresh (undamaged) stream; for tests that damage frames.
pub fn frames(s: &[u8]) -> Vec<(usize, usize, Frame)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let f = Frame::decode(&s[at..]).expect("a fresh stream is all frames");
        let len = FRAME_HEADER + f.payload_len as usize;
        v.push((at, len, f));
        at += len;
    }
    v
}

/// The stream without the frames for which `drop(frame)` holds.
fn without(s: &[u8], drop: impl Fn(&Frame) -> bool) -> Vec<u8> {
    frames(s)
        .into_iter()
        .filter(|(_, _, f)| !drop(f))
        .flat_map(|(at, len, _)| s[at..at + len].to_vec())
        .collect()
}

/// Every case: (file name, file contents).
pub fn generate() -> Vec<(String, Vec<u8>)> {
    // 500 bytes: groups 0 and 1 of three 64-byte blocks (192 bytes each), then the final group 2 with 116
    // bytes (blocks of 64 and 52) and the trailer.
    const LEN: usize = 500;
    let good = encoded(LEN, STREAM_ID);
    let fs = frames(&good);
    let frame_of = |g: u64, i: u8| {
        fs.iter()
            .find(|(_, _, f)| f.group == g && f.index == i)
            .copied()
            .expect("frame")
    };
    let mut zeroed = good.clone();
    let (at, len, _) = frame_of(0, 1);
    zeroed[at..at + len].fill(0);
    let mut header_flipped = good.clone();
    header_flipped[frame_of(1, 0).0 + 20] ^= 0x40;
    let mut inserted = good.clone();
    let (at, _, _) = frame_of(1, 0);
    inserted.splice(at..at, (0..100u8).map(|i| i.wrapping_mul(37)));
    let mut deleted = good.clone();
    let (at, _, _) = frame_of(1, 2);
    deleted.drain(at + 80..at + 100);
    let mut duplicated = good.clone();
    let (at, len, _) = frame_of(0, 2);
    let copy = good[at..at + len].to_vec();
    duplicated.splice(at + len..at + len, copy);
    let mut foreign = good.clone();
    let other = encoded(300, STREAM_ID ^ 0xffff);
    let (at, _, _) = frame_of(1, 0);
    foreign.splice(at..at, other);
    // The trailer's digest replaced (its payload and header checksums made to hold again): every block is
    // intact, so nothing is repaired, and only the trailer check can tell.
    let mut forged_trailer = good.clone();
    let (at, _, f) = fs
        .iter()
        .copied()
        .find(|(_, _, f)| f.flags & format::FLAG_TRAILER != 0)
        .expect("a trailer");
    let fake = format::trailer_payload(LEN as u64, &[0x5a; 32]);
    let mut h = f;
    h.payload_sum = format::payload_sum(&fake);
    forged_trailer[at..at + FRAME_HEADER].copy_from_slice(&h.encode());
    forged_trailer[at + FRAME_HEADER..at + FRAME_HEADER + fake.len()].copy_from_slice(&fake);
    // Every frame says B = 100 (not a multiple of 64), with valid checksums: no frame is usable.
    let odd_block: Vec<u8> = fs
        .iter()
        .flat_map(|&(at, len, f)| {
            let mut h = f;
            h.block_size = 100;
            let mut v = h.encode().to_vec();
            v.extend_from_slice(&good[at + FRAME_HEADER..at + len]);
            v
        })
        .collect();
    let cases: Vec<(&str, &str, usize, &str, Vec<u8>)> = vec![
        (
            "success-clean",
            "success",
            LEN,
            "an intact stream",
            good.clone(),
        ),
        (
            "success-frame-zeroed",
            "success",
            LEN,
            "group 0's data block 1 zeroed, header and all",
            zeroed,
        ),
        (
            "success-two-lost",
            "success",
            LEN,
            "two data blocks of group 1 missing (its parity is 2)",
            without(&good, |f| f.group == 1 && f.index < 2),
        ),
        (
            "failure-three-lost",
            "failure",
            192,
            "three blocks of group 1 missing: output stops after group 0",
            without(&good, |f| f.group == 1 && f.index < 3),
        ),
        (
            "success-header-damaged",
            "success",
            LEN,
            "a bit of group 1 block 0's header flipped",
            header_flipped,
        ),
        (
            "success-bytes-inserted",
            "success",
            LEN,
            "100 bytes inserted before group 1",
            inserted,
        ),
        (
            "success-bytes-deleted",
            "success",
            LEN,
            "20 bytes deleted inside group 1 block 2",
            deleted,
        ),
        (
            "success-frame-duplicated",
            "success",
            LEN,
            "group 0 block 2 twice",
            duplicated,
        ),
        (
            "success-foreign-frames",
            "success",
            LEN,
            "another stream's frames pasted in before group 1",
            foreign,
        ),
        (
            "success-stream-header-lost",
            "success",
            LEN,
            "the stream-header frame missing",
            without(&good, |f| f.index == 255),
        ),
        (
            "failure-cut-tail",
            "failure",
            384,
            "the final group missing: the tail is lost, output stops after group 1",
            without(&good, |f| f.group == 2),
        ),
        (
            "failure-trailer-forged",
            "failure",
            LEN,
            "the trailer's digest replaced: everything is written, then the check fails",
            forged_trailer,
        ),
        (
            "failure-block-size-100",
            "failure",
            0,
            "every frame says a block size that is not a multiple of 64",
            odd_block,
        ),
        (
            "failure-not-a-stream",
            "failure",
            0,
            "no frame at all",
            input(LEN),
        ),
    ];
    let original = input(LEN);
    cases
        .into_iter()
        .map(|(name, expect, output, comment, stream)| {
            let out = &original[..output];
            let mut bytes = format!(
                "expect: {expect}\noutput: {} {}\ncomment: {comment}\n\n",
                out.len(),
                hex::encode(Sha256::digest(out))
            )
            .into_bytes();
            bytes.extend_from_slice(&stream);
            (name.to_string(), bytes)
        })
        .collect()
}

/// One testkit file, read back: (expect, output length, output SHA-256, stream).
pub fn parse(file: &[u8]) -> (String, usize, String, Vec<u8>) {
    let split = file
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a header and a blank line");
    let header = std::str::from_utf8(&file[..split]).expect("a text header");
    let (mut expect, mut len, mut sha) = (String::new(), 0, String::new());
    for line in header.lines() {
        match line.split_once(": ").expect("key: value") {
            ("expect", v) => expect = v.into(),
            ("output", v) => {
                let (n, h) = v.split_once(' ').expect("length and digest");
                len = n.parse().expect("a length");
                sha = h.into();
            }
            _ => {}
        }
    }
    (expect, len, sha, file[split + 2..].to_vec())
}
