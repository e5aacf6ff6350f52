//! Issue 23's promise under the fuzzer: an outer par stream (either version, parameters from the input) whose
//! original is the fuzzer's bytes with a whole inner par stream embedded, damaged in at most `parity` frames of
//! each group (and its stream-header frame), decodes to the outer original or fails with exit 3 after writing only
//! a prefix of it, never to other bytes; a version 2 outer stream always decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zstream_common::exit::{code_of, Code};
use zstream_par::decode::{self, Mode};
use zstream_par::encode::{self, Params};
use zstream_par::testkit::frames;

fn params(b: &[u8]) -> Params {
    Params {
        data: 1 + b[0] % 5,
        parity: 1 + b[1] % 3,
        block_size: 64 << (b[2] % 7),
        interleave: 1 + (b[3] % 3) as u16,
        version: 1 + b[4] % 2,
    }
}

fn enc(original: &[u8], p: Params, id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(original, &mut out, p, 0, id, |_| {}).expect("encoding");
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let (ctl, rest) = data.split_at(24);
    let (outer, inner) = (params(&ctl[0..5]), params(&ctl[5..10]));
    let mut x = u64::from_le_bytes(ctl[10..18].try_into().unwrap()) | 1;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    let k = next(rest.len() + 1);
    let inner_stream = enc(&rest[..k], inner, 0x1111);
    let mut original = rest.to_vec();
    let at = next(original.len() + 1);
    original.splice(at..at, inner_stream);
    // The outer id is random, as an encoder's is: one the input could know would let it forge the outer stream's
    // own frames inside its original, which no real original can hold (par-v2.md, "Which stream").
    let id = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new().build_hasher().finish()
    };
    let clean = enc(&original, outer, id);
    let fs = frames(&clean);
    // Up to `parity` frames of each group, and the stream-header frame when ctl says so.
    let mut victims: Vec<usize> = if ctl[18] & 1 == 1 { vec![0] } else { vec![] };
    let groups = fs.iter().map(|f| f.2.group).max().unwrap() + 1;
    for g in 0..groups {
        let of: Vec<usize> = (1..fs.len()).filter(|&i| fs[i].2.group == g).collect();
        for _ in 0..next(outer.parity as usize + 1) {
            let v = of[next(of.len())];
            if !victims.contains(&v) {
                victims.push(v);
            }
        }
    }
    victims.sort_unstable();
    let mut damaged = clean;
    for &v in victims.iter().rev() {
        let (a, len, _) = fs[v];
        let from = a + next(len);
        let to = (from + 1 + next(len)).min(a + len);
        match next(3) {
            0 => damaged[from..to].fill(0),
            1 => {
                damaged.drain(from..to);
            }
            _ => damaged[from] ^= 1 << next(8),
        }
    }
    let mut out = Vec::new();
    match decode::decode(&damaged[..], &mut out, Mode::Decode, 0, |_| {}) {
        Ok(_) => assert!(out == original, "exit 0 with other bytes than the outer original"),
        Err(e) => {
            assert_eq!(code_of(&e), Code::Integrity, "{e:#}");
            assert!(original.starts_with(&out), "exit 3 after other bytes");
            assert_eq!(outer.version, 1, "a version 2 stream within parity refused: {e:#}");
        }
    }
});
