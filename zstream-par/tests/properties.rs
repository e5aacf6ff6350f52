//! Properties, in-process: any parameters round-trip with any thread count; damage confined to `parity` blocks
//! of a group is always repaired exactly; arbitrary input never panics the decoder and never yields output that
//! is not a prefix of whole groups of the original.

use proptest::prelude::*;
use zstream_par::decode::{self, Mode};
use zstream_par::encode::{self, Params};
use zstream_par::format::{Frame, FRAME_HEADER};

fn enc(input: &[u8], p: Params, threads: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(input, &mut out, p, threads, 42, |_| {}).unwrap();
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
    )
        .prop_map(|(data, parity, block_size, interleave)| Params {
            data,
            parity,
            block_size,
            interleave,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn round_trip(p in params(), len in 0usize..4000, threads in 0usize..4) {
        let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let (out, r) = dec(&enc(&input, p, threads), threads);
        prop_assert!(r.is_ok(), "{:?}", r.err());
        prop_assert_eq!(out, input);
    }

    #[test]
    fn damage_within_parity_blocks_of_a_group_is_repaired(p in params(), len in 1usize..4000, pick in any::<prop::sample::Index>(), junk in any::<u8>()) {
        let input: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let mut e = enc(&input, p, 1);
        // Overwrite the payloads of up to `parity` frames of one group with junk.
        let mut frames = Vec::new();
        let mut at = 0;
        while at < e.len() {
            let f = Frame::decode(&e[at..]).unwrap();
            frames.push((at, f));
            at += FRAME_HEADER + f.payload_len as usize;
        }
        let (_, target) = frames[1 + pick.index(frames.len() - 1)];
        let victims: Vec<_> = frames.iter().filter(|(_, f)| f.group == target.group && f.index != 255).take(p.parity as usize).copied().collect();
        for (at, f) in victims {
            for b in &mut e[at + FRAME_HEADER..at + FRAME_HEADER + f.payload_len as usize] {
                *b ^= junk | 1;
            }
        }
        let (out, r) = dec(&e, 2);
        prop_assert!(r.is_ok(), "{:?}", r.err());
        prop_assert_eq!(out, input);
    }

    #[test]
    fn arbitrary_input_never_panics_or_lies(data in prop::collection::vec(any::<u8>(), 0..3000), cut in any::<prop::sample::Index>()) {
        let (out, _) = dec(&data, 1);
        prop_assert!(out.is_empty(), "output from noise");
        // A real stream cut anywhere and followed by noise: output is always a prefix of the original.
        let input: Vec<u8> = (0..2000).map(|i| (i % 251) as u8).collect();
        let mut e = enc(&input, Params { data: 3, parity: 1, block_size: 128, interleave: 1 }, 1);
        e.truncate(cut.index(e.len()));
        e.extend_from_slice(&data);
        let (out, _) = dec(&e, 2);
        prop_assert!(input.starts_with(&out));
    }
}
