//! Properties, in-process: any parameters round-trip in either format version with any thread count; damage
//! confined to `parity` blocks of a group is always repaired exactly; arbitrary input never panics the decoder and
//! never yields output that is not a prefix of whole groups of the original; and a par stream nested in another's
//! original never comes out in its place (issue 23).

use proptest::prelude::*;
use zstream_common::exit::{code_of, Code};
use zstream_par::decode::{self, Mode};
use zstream_par::encode::{self, Params};
use zstream_par::format::{Frame, FRAME_HEADER, MAGIC, V1, V2};
use zstream_par::testkit::frames;
use zstream_tests::data::Gen;

fn enc(input: &[u8], p: Params, threads: usize, id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(input, &mut out, p, threads, id, |_| {}).unwrap();
    out
}

fn dec(data: &[u8], threads: usize) -> (Vec<u8>, anyhow::Result<decode::Report>) {
    let mut out = Vec::new();
    let r = decode::decode(data, &mut out, Mode::Decode, threads, |_| {});
    (out, r)
}

fn params() -> impl Strategy<Value = Params> {
    (
        1u8..6,
        1u8..4,
        prop_oneof![Just(64u32), Just(128), Just(256)],
        1u16..4,
        prop_oneof![Just(V1), Just(V2)],
    )
        .prop_map(|(data, parity, block_size, interleave, version)| Params {
            data,
            parity,
            block_size,
            interleave,
            version,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn round_trip(p in params(), len in 0usize..4000, threads in 0usize..4) {
        let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let (out, r) = dec(&enc(&input, p, threads, 42), threads);
        prop_assert!(r.is_ok(), "{:?}", r.err());
        prop_assert_eq!(r.unwrap().version, Some(p.version));
        prop_assert_eq!(out, input);
    }

    #[test]
    fn damage_within_parity_blocks_of_a_group_is_repaired(p in params(), len in 1usize..4000, pick in any::<prop::sample::Index>(), junk in any::<u8>()) {
        let input: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let mut e = enc(&input, p, 1, 42);
        // Overwrite the payloads of up to `parity` frames of one group with junk.
        let frames = frames(&e);
        let (_, _, target) = frames[1 + pick.index(frames.len() - 1)];
        let victims: Vec<_> = frames.iter().filter(|(_, _, f)| f.group == target.group && f.index != 255).take(p.parity as usize).copied().collect();
        for (at, len, _) in victims {
            for b in &mut e[at + FRAME_HEADER..at + len] {
                *b ^= junk | 1;
            }
        }
        let (out, r) = dec(&e, 2);
        prop_assert!(r.is_ok(), "{:?}", r.err());
        prop_assert_eq!(out, input);
    }

    #[test]
    fn arbitrary_input_never_panics_or_lies(data in prop::collection::vec(any::<u8>(), 0..3000), cut in any::<prop::sample::Index>(), version in prop_oneof![Just(V1), Just(V2)]) {
        let (out, _) = dec(&data, 1);
        prop_assert!(out.is_empty(), "output from noise");
        // A real stream cut anywhere and followed by noise: output is always a prefix of the original.
        let input: Vec<u8> = (0..2000).map(|i| (i % 251) as u8).collect();
        let mut e = enc(&input, Params { data: 3, parity: 1, block_size: 128, interleave: 1, version }, 1, 42);
        e.truncate(cut.index(e.len()));
        e.extend_from_slice(&data);
        let (out, _) = dec(&e, 2);
        prop_assert!(input.starts_with(&out));
    }
}

/// An outer stream's original: random bytes with whole par streams embedded at random offsets (of random
/// parameters and versions, some holding a stream of their own).
fn nested_original(g: &mut Gen, p_inner: &[Params]) -> Vec<u8> {
    let mut o = Gen::bytes(g.next_u64(), g.below(3000) as usize);
    for (k, &p) in p_inner.iter().enumerate() {
        let mut inner_original = Gen::bytes(g.next_u64(), g.below(1500) as usize);
        if k == 0 && g.below(3) == 0 {
            // Two levels: a stream holding a stream.
            let deepest = enc(&Gen::bytes(g.next_u64(), 300), p, 0, g.next_u64());
            let at = g.below(inner_original.len() as u64 + 1) as usize;
            inner_original.splice(at..at, deepest);
        }
        let inner = enc(&inner_original, p, 0, g.next_u64());
        let at = g.below(o.len() as u64 + 1) as usize;
        o.splice(at..at, inner);
    }
    o
}

/// Damage confined to one frame `(at, len)` of `s`: flipped bits, a zeroed or overwritten range, a deleted range,
/// or bytes inserted inside it (random bytes: no intact frame can be among them).
fn damage_frame(s: &mut Vec<u8>, at: usize, len: usize, g: &mut Gen) {
    let a = at + g.below(len as u64) as usize;
    let b = (a + 1 + g.below((at + len - a) as u64) as usize).min(at + len);
    match g.below(5) {
        0 => {
            for _ in 0..1 + g.below(3) {
                let i = at + g.below(len as u64) as usize;
                s[i] ^= 1 << g.below(8);
            }
        }
        1 => s[a..b].fill(0),
        2 => g.fill(&mut s[a..b]),
        3 => {
            s.drain(a..b);
        }
        _ => {
            // Inside the frame: after its first byte, so the frame it belongs to is unmistakable.
            let i = (a + 1).min(at + len - 1).max(at + 1);
            let junk = Gen::bytes(g.next_u64(), 1 + g.below(600) as usize);
            s.splice(i..i, junk);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Issue 23: par streams embedded at random offsets in a random outer stream's original, random damage that
    /// leaves every group of the outer stream at most `parity` frames short (the stream-header frame anyhow):
    /// the outer stream's original with exit 0, or exit 3; never other bytes with exit 0. A version 2 outer
    /// stream masks what its original holds, so it is always repaired (par-v2.md, "Which stream").
    #[test]
    fn a_nested_stream_never_comes_out_for_the_outer_one(
        outer in params(),
        big_blocks in any::<bool>(),
        inners in prop::collection::vec(params(), 1..3),
        seed in any::<u64>(),
    ) {
        // Outer blocks of 4096 bytes can hold a whole inner stream, and losing one can hide it.
        let outer = Params { block_size: if big_blocks { 4096 } else { outer.block_size }, ..outer };
        if let Err(e) = nested_case(outer, &inners, seed) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// One case of the property: Ok(true) when decoded to the outer original, Ok(false) when refused (exit 3, only
/// outer bytes written, a version 1 outer stream), Err when the property fails.
fn nested_case(outer: Params, inners: &[Params], seed: u64) -> Result<bool, String> {
    let mut g = Gen::new(seed);
    let original = nested_original(&mut g, inners);
    let clean = enc(&original, outer, 0, g.next_u64());
    let fs = frames(&clean);
    // Which frames to damage: the stream-header frame half the time, p frames of group 0 (often its first, the
    // shape of the cases), and up to p frames of every other group.
    let mut victims: Vec<usize> = Vec::new();
    if g.below(2) == 0 {
        victims.push(0);
    }
    let groups = fs.iter().map(|(_, _, f)| f.group).max().unwrap() + 1;
    for grp in 0..groups {
        let of: Vec<usize> = (1..fs.len()).filter(|&k| fs[k].2.group == grp).collect();
        let n = if grp == 0 {
            outer.parity as u64
        } else {
            g.below(outer.parity as u64 + 1)
        };
        for _ in 0..n {
            let k = of[if grp == 0 && g.below(2) == 0 {
                0
            } else {
                g.below(of.len() as u64) as usize
            }];
            if !victims.contains(&k) {
                victims.push(k);
            }
        }
    }
    victims.sort_unstable();
    let mut damaged = clean.clone();
    for &k in victims.iter().rev() {
        let (at, len, _) = fs[k];
        damage_frame(&mut damaged, at, len, &mut g);
    }
    let (out, r) = dec(&damaged, 1);
    match r {
        Ok(_) if out == original => Ok(true),
        Ok(_) => Err(format!(
            "exit 0 with {} bytes that are not the outer original's {}",
            out.len(),
            original.len()
        )),
        Err(e) if code_of(&e) != Code::Integrity => Err(format!("not an integrity failure: {e:#}")),
        Err(_) if !original.starts_with(&out) => {
            Err("exit 3 after bytes that are not the outer original's".into())
        }
        Err(e) if outer.version == V2 => Err(format!(
            "a version 2 outer stream within parity was refused: {e:#}"
        )),
        Err(_) => Ok(false),
    }
}

#[test]
fn the_nested_property_meets_both_outcomes() {
    // A property that only ever saw repairs (or refusals) would prove little: with version 1 outer streams and
    // the inner streams' frames in them, both happen.
    let outer = Params {
        data: 4,
        parity: 2,
        block_size: 4096,
        interleave: 2,
        version: V1,
    };
    let inner = Params {
        data: 3,
        parity: 2,
        block_size: 64,
        interleave: 1,
        version: V1,
    };
    let (mut decoded, mut refused) = (0, 0);
    for seed in 0..200 {
        match nested_case(outer, &[inner], seed) {
            Ok(true) => decoded += 1,
            Ok(false) => refused += 1,
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    assert!(
        decoded > 20 && refused > 0,
        "{decoded} decoded, {refused} refused"
    );
}

#[test]
fn the_property_generator_embeds_visible_frames() {
    // The nested property is only worth something if the inner streams' markers are in the outer original (and,
    // in a version 1 outer stream, in its bytes as stored).
    let mut g = Gen::new(7);
    let p = Params {
        data: 3,
        parity: 2,
        block_size: 64,
        interleave: 1,
        version: V1,
    };
    let o = nested_original(&mut g, &[p]);
    assert!(memchr::memmem::find(&o, &MAGIC).is_some());
    let outer = enc(
        &o,
        Params {
            block_size: 256,
            ..p
        },
        0,
        9,
    );
    let inside = memchr::memmem::find_iter(&outer, &MAGIC)
        .filter_map(|at| Frame::decode(&outer[at..]))
        .filter(|f| f.stream_id != 9)
        .count();
    assert!(inside > 0);
    let masked = enc(
        &o,
        Params {
            block_size: 256,
            version: V2,
            ..p
        },
        0,
        9,
    );
    let seen = memchr::memmem::find_iter(&masked, &MAGIC)
        .filter_map(|at| Frame::decode(&masked[at..]))
        .filter(|f| f.stream_id != 9)
        .count();
    assert_eq!(seen, 0, "version 2 shows no frame of its original");
}
