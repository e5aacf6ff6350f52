//! Issue 23's cases, in-process, each with the outcome the specs (par-v1.md, par-v2.md) give: streams nested in
//! the original, the burst bounds at the stream's end (swept over every position), F', the search after a
//! foreign frame, and the size of small streams. The testkit holds the same cases as files for the binary.

use zstream_common::exit::{code_of, Code};
use zstream_par::decode::{self, Mode};
use zstream_par::encode::{self, Params};
use zstream_par::format::{Frame, FRAME_HEADER, V1, V2};
use zstream_par::testkit::frames;
use zstream_tests::data::Gen;

fn enc(input: &[u8], p: Params, id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(input, &mut out, p, 0, id, |_| {}).unwrap();
    out
}

/// Decodes in-process: Ok(output) or the exit code and what was written before it.
fn dec(data: &[u8], stream: Option<u64>) -> Result<Vec<u8>, (Code, Vec<u8>, String)> {
    let mut out = Vec::new();
    match decode::decode_stream(data, &mut out, Mode::Decode, 0, stream, |_| {}) {
        Ok(_) => Ok(out),
        Err(e) => Err((code_of(&e), out, format!("{e:#}"))),
    }
}

fn p(data: u8, parity: u8, block_size: u32, interleave: u16, version: u8) -> Params {
    Params {
        data,
        parity,
        block_size,
        interleave,
        version,
    }
}

/// (offset, length) of frame `index` of `group`.
fn at(s: &[u8], group: u64, index: u8) -> (usize, usize) {
    frames(s)
        .into_iter()
        .find(|(_, _, f)| f.group == group && f.index == index)
        .map(|(a, l, _)| (a, l))
        .unwrap()
}

fn break_headers(s: &mut [u8], which: &[(u64, u8)]) {
    let at: Vec<usize> = which.iter().map(|&(g, i)| at(s, g, i).0).collect();
    for a in at {
        s[a + 20] ^= 0x40;
    }
}

/// An original with a whole par stream (of `inner`) at `offset`, `len` bytes in all.
fn nesting(inner: Params, offset: usize, len: usize) -> Vec<u8> {
    let s = enc(&Gen::bytes(1, 300), inner, 0xaaaa);
    let mut o = Gen::bytes(2, offset);
    o.extend_from_slice(&s);
    o.extend(Gen::bytes(3, len - o.len()));
    o
}

#[test]
fn nested_streams_in_the_issues_four_shapes() {
    for v in [V1, V2] {
        let inner = p(3, 2, 64, 1, v);
        // 1 and 2: D = 2, one final group, the first two headers damaged; the inner stream runs into an intact
        // block (1024-byte blocks) or lies wholly inside the damaged one (4096). The outer stream has d = 4: no
        // parity row of it is 1 for a data block, so no parity payload repeats the inner stream's frames.
        for (b, len, inner_at_damaged_block_only) in [(1024, 1800, false), (4096, 5400, true)] {
            let o = nesting(inner, 200, len);
            let mut s = enc(&o, p(4, 2, b, 2, v), 9);
            break_headers(&mut s, &[(0, 255), (0, 0)]);
            check_nested(
                v,
                &o,
                &s,
                inner_at_damaged_block_only,
                &format!("v{v} B = {b}, D = 2"),
            );
        }
        // 3 and 4: the first 160 bytes deleted, the inner stream at input byte 0.
        for (b, len, inner_at_damaged_block_only) in [(512, 3300, false), (4096, 5300, true)] {
            let o = nesting(inner, 0, len);
            let mut s = enc(&o, p(4, 2, b, 1, v), 9);
            s.drain(..160);
            if v == V1 {
                let first = Frame::decode(&s).expect("the inner stream's first frame at byte 0");
                assert_eq!(first.stream_id, 0xaaaa);
            }
            check_nested(
                v,
                &o,
                &s,
                inner_at_damaged_block_only,
                &format!("v{v} B = {b}, 160 bytes deleted"),
            );
        }
    }
}

/// Version 2 hides the inner stream: always repaired. Version 1: repaired when an inner frame lies inside an
/// intact outer payload, refused with nothing written when none does; never the inner stream's bytes.
#[track_caller]
fn check_nested(v: u8, o: &[u8], s: &[u8], hidden_in_damaged_block: bool, what: &str) {
    match dec(s, None) {
        Ok(out) => {
            assert!(out == o, "{what}: other bytes than the outer original");
            assert!(
                v == V2 || !hidden_in_damaged_block,
                "{what}: decoded without evidence"
            );
        }
        Err((code, out, msg)) => {
            assert_eq!(code, Code::Integrity, "{what}: {msg}");
            assert!(out.is_empty(), "{what}: wrote before refusing");
            assert!(v == V1 && hidden_in_damaged_block, "{what}: refused: {msg}");
            assert!(
                msg.contains("cannot be told") && msg.contains("000000000000aaaa"),
                "{what}: {msg}"
            );
        }
    }
}

#[test]
fn nested_streams_with_interleaving_and_p_frames_lost_per_group_are_repaired() {
    // The issue's "8 more": D > 1, the outer stream losing at most p frames per group at its start.
    for v in [V1, V2] {
        for d in [2u16, 3] {
            let inner = enc(&Gen::bytes(4, 3000), p(3, 2, 64, d, v), 0xbbbb);
            let mut o = Gen::bytes(5, 700);
            o.extend_from_slice(&inner);
            o.extend(Gen::bytes(6, 4000));
            let mut s = enc(&o, p(4, 2, 256, d, v), 9);
            let mut which = vec![(0, 255)];
            for g in 0..d as u64 {
                which.extend([(g, 0), (g, 1)]);
            }
            break_headers(&mut s, &which);
            assert!(dec(&s, None).unwrap() == o, "v{v} D = {d}");
        }
    }
}

/// Frames (offset, length, header) and the shortest frame of the last batch, and where that batch begins.
fn last_batch(s: &[u8]) -> (usize, usize, usize) {
    let fs = frames(s);
    let fin = fs.iter().find(|(_, _, f)| f.is_final_group()).unwrap().2;
    let first = fin.group / fin.interleave as u64 * fin.interleave as u64;
    let start = fs
        .iter()
        .find(|(_, _, f)| f.index != 255 && f.group >= first)
        .unwrap()
        .0;
    let shortest = fs
        .iter()
        .filter(|(_, _, f)| f.group >= first && f.index != 255)
        .map(|x| x.1)
        .min()
        .unwrap();
    let groups = (fin.group - first + 1) as usize;
    (start, shortest, groups)
}

/// Every burst of `len` bytes (0xAA) starting in `from..to` is repaired exactly.
#[track_caller]
fn bursts_repaired(s: &[u8], o: &[u8], len: usize, from: usize, to: usize, what: &str) {
    for a in from..to.min(s.len() - len + 1) {
        let mut d = s.to_vec();
        d[a..a + len].fill(0xAA);
        match dec(&d, None) {
            Ok(out) => assert!(out == o, "{what}: burst of {len} at {a}: wrong bytes"),
            Err((_, _, msg)) => panic!("{what}: burst of {len} at {a}: {msg}"),
        }
    }
}

type Shape = (u8, u8, u32, u16, usize);

/// For each (d, p, B, D, length): the shape, an original of that length, its stream in `version`, and a name.
fn streams(version: u8, shapes: &[Shape]) -> Vec<(Shape, Vec<u8>, Vec<u8>, String)> {
    shapes
        .iter()
        .map(|&(d, par, b, dd, n)| {
            let o = Gen::bytes(n as u64, n);
            let s = enc(&o, p(d, par, b, dd, version), 9);
            let what = format!("v{version} d = {d}, p = {par}, B = {b}, D = {dd}, {n} bytes");
            ((d, par, b, dd, n), o, s, what)
        })
        .collect()
}

#[test]
fn v2_bursts_within_the_stated_bounds_are_repaired_at_every_position() {
    // par-v2.md: any burst of (p x D' - 1) x F' + 1 bytes, F' = 64 + min(B, L) of the last batch's D' groups; and
    // of (p x D - 1) x (B + 64) + 1 bytes that ends before the last batch.
    for ((d, par, b, dd, n), o, s, what) in streams(
        V2,
        &[
            (4, 2, 64, 2, 256),
            (3, 2, 64, 3, 1000),
            (2, 1, 128, 1, 700),
            (5, 3, 64, 2, 1500),
        ],
    ) {
        let groups = n / (d as usize * b as usize) + 1;
        let rest = n - (groups - 1) * d as usize * b as usize;
        let l = (rest + 40).div_ceil(d as usize);
        let d_last = (groups - 1) % dd as usize + 1;
        let (start, shortest, in_last) = last_batch(&s);
        assert_eq!(
            (shortest, in_last),
            (64 + l.min(b as usize), d_last),
            "the spec's F' and D'"
        );
        let end = (par as usize * d_last - 1) * shortest + 1;
        bursts_repaired(&s, &o, end, 0, s.len(), &what);
        let full = (par as usize * dd as usize - 1) * (b as usize + 64) + 1;
        if start > full {
            bursts_repaired(&s, &o, full, 0, start - full + 1, &what);
        }
    }
}

#[test]
fn v1_bursts_within_the_corrected_bounds_are_repaired_at_every_position() {
    // par-v1.md, corrected: the last batch is not round-robin where the final group lacks blocks, so there a burst
    // is repaired when it touches at most p x max(1, D' - 1) frames: any burst of (p x max(1, D' - 1) - 1) x F' + 1
    // bytes, F' the stream's shortest frame (at most 104 bytes: 69 here, a 5-byte block).
    for ((_, par, _, _, _), o, s, what) in streams(
        V1,
        &[
            (4, 2, 64, 2, 256),
            (3, 2, 64, 1, 261),
            (3, 2, 64, 3, 1000),
            (4, 2, 64, 2, 261),
        ],
    ) {
        let fs = frames(&s);
        let shortest = fs
            .iter()
            .filter(|(_, _, f)| f.index != 255)
            .map(|x| x.1)
            .min()
            .unwrap();
        assert!(shortest <= 104);
        let (_, _, d_last) = last_batch(&s);
        let k = par as usize * (d_last.max(2) - 1);
        bursts_repaired(&s, &o, (k - 1) * shortest + 1, 0, s.len(), &what);
    }
}

#[test]
fn the_old_end_of_stream_bound_and_f_prime_were_wrong_for_v1() {
    // d = 4, p = 2, B = 64, D = 2, 256 bytes: the old bound, (p x D' - 1) x 104 = 312 bytes, from byte 145
    // touches 0.0, 1.0, 0.1 and 0.2.
    let o = Gen::bytes(1, 256);
    let s = enc(&o, p(4, 2, 64, 2, V1), 9);
    let mut d = s.clone();
    d[145..457].fill(0xAA);
    assert_eq!(dec(&d, None).unwrap_err().0, Code::Integrity);
    // A 5-byte last block makes a 69-byte frame: 104 bytes from the last byte of the frame before touch three.
    let o = Gen::bytes(2, 261);
    let s = enc(&o, p(3, 2, 64, 1, V1), 9);
    let (a, len) = at(&s, 1, 1);
    assert_eq!(len, 69);
    let mut d = s.clone();
    d[a - 1..a + 103].fill(0xAA);
    let (code, out, _) = dec(&d, None).unwrap_err();
    assert_eq!((code, out.len()), (Code::Integrity, 192));
}

#[test]
fn the_search_goes_on_inside_another_streams_frame() {
    for v in [V1, V2] {
        let o = Gen::bytes(3, 500);
        let s = enc(&o, p(3, 2, 64, 1, v), 9);
        // Frames 1.0..1.2 wrapped in the intact payload of another stream's 4096-byte frame.
        let (a, _) = at(&s, 1, 0);
        let (b, len) = at(&s, 1, 2);
        let mut body = s[a..b + len].to_vec();
        body.resize(4096, 7);
        let mut h = frames(&s)[1].2;
        (h.stream_id, h.block_size, h.shard_len, h.payload_len) = (5, 4096, 4096, 4096);
        if v == V1 {
            (h.group_blocks, h.last_len) = (3, 4096);
        }
        h.payload_sum = zstream_par::format::payload_sum(&body);
        let mut w = s.clone();
        w.splice(a..b + len, h.encode().into_iter().chain(body));
        assert!(dec(&w, Some(9)).unwrap() == o, "v{v}: searched inside");
        // Not told which stream: this one is shown nested in the other, which cannot be decoded.
        let (code, out, _) = dec(&w, None).unwrap_err();
        assert_eq!((code, out.len()), (Code::Integrity, 0));
        // The other's header alone, its claimed payload over this stream's frames.
        let mut w = s.clone();
        w.splice(a..a, h.encode());
        assert!(dec(&w, Some(9)).unwrap() == o, "v{v}: a header alone");
    }
}

/// par-v2.md's size: 96 + G x (d + p) x (B + 64) + (d + p) x (L + 64), G = floor(N / (d x B)) full groups,
/// L = ceil((N - G x d x B + 40) / d).
fn v2_size(n: u64, d: u64, par: u64, b: u64) -> u64 {
    let g = n / (d * b);
    let l = (n - g * d * b + 40).div_ceil(d);
    96 + g * (d + par) * (b + 64) + (d + par) * (l + 64)
}

#[test]
fn small_streams_pay_parity_over_data_plus_a_fixed_few_hundred_bytes() {
    let (d, par, b) = (10u64, 2u64, 1u64 << 20);
    for n in [
        0u64,
        1,
        4096,
        65_536,
        1_880_000,
        10 << 20,
        (10 << 20) + 1,
        (23 << 20) + 12345,
    ] {
        let o = Gen::bytes(n, n as usize);
        let s = enc(&o, p(10, 2, 1 << 20, 1, V2), 9);
        assert_eq!(s.len() as u64, v2_size(n, d, par, b), "{n} bytes");
        // README: at most N x (1 + p/d) x (1 + 64/B) + 96 + (d + p) x (65 + 40/d) bytes: 924 at the defaults.
        let bound = n as f64 * 1.2 * (1.0 + 64.0 / b as f64) + 924.0;
        assert!(
            (s.len() as f64) <= bound,
            "{n} bytes: {} > {bound}",
            s.len()
        );
        if n >= 65_536 {
            assert!(
                s.len() as f64 / n as f64 <= 1.2 + 924.0 / 65_536.0,
                "{n} bytes"
            );
        }
    }
    // The issue's incremental: 1.88 MB stored as 3.90 MB (2.07x) in version 1; 1.2005x now.
    let v1 = enc(&Gen::bytes(1, 1_880_000), p(10, 2, 1 << 20, 1, V1), 9).len();
    assert!(v1 > 3_900_000 - 100_000, "{v1}");
    assert_eq!(v2_size(1_880_000, d, par, b), 2_256_912);
}

#[test]
fn version_of_reads_the_first_intact_header() {
    let s = enc(b"x", p(3, 2, 64, 1, V2), 9);
    assert_eq!(zstream_par::probe::version_of(&s[..FRAME_HEADER]), Some(2));
    let s1 = enc(b"x", p(3, 2, 64, 1, V1), 9);
    assert_eq!(zstream_par::probe::version_of(&s1), Some(1));
    let mut damaged = s.clone();
    damaged[20] ^= 1;
    assert_eq!(
        zstream_par::probe::version_of(&damaged),
        Some(2),
        "the next intact header"
    );
    assert_eq!(zstream_par::probe::version_of(b"nothing"), None);
}

#[test]
fn the_window_is_64_mib_from_the_first_usable_header() {
    // par-v2.md: the candidates are the streams with a usable header beginning less than W = 64 MiB after the
    // first one. Stream a at byte 0, stream b's first header at W - 1 (refused: two candidates) or at W (b is not
    // a candidate: a is decoded, and what follows it read and skipped).
    use std::io::Read;
    const W: usize = 64 << 20;
    assert_eq!(zstream_par::probe::WINDOW, W as u64);
    let a = enc(b"the first stream", p(3, 2, 64, 1, V2), 1);
    let b = enc(b"the second", p(3, 2, 64, 1, V2), 2);
    for (at, decoded) in [(W - 1, false), (W, true)] {
        let input = (&a[..])
            .chain(std::io::repeat(0).take((at - a.len()) as u64))
            .chain(&b[..]);
        let mut out = Vec::new();
        let r = decode::decode_stream(input, &mut out, Mode::Decode, 0, None, |_| {});
        match r {
            Ok(_) => assert!(decoded && out == b"the first stream", "b at {at}"),
            Err(e) => {
                assert!(!decoded && out.is_empty(), "b at {at}: {e:#}");
                assert!(format!("{e:#}").contains("2 parity streams"), "{e:#}");
            }
        }
    }
}
