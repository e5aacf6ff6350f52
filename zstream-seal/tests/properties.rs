//! Properties of seal and open, in-process: round trips at chunk boundaries with any key order and thread count,
//! and random damage that is always caught, with only whole verified chunks written before the failure.

use proptest::prelude::*;
use zstream_seal::filter::{self, SealOptions, Secret};
use zstream_seal::key::Key;

const CHUNK: u32 = 64;

fn secrets(seeds: &[u8]) -> Vec<Secret> {
    seeds
        .iter()
        .map(|&s| Secret::KeyFile {
            name: format!("k{s}"),
            key: Key::from_bytes([s; 32]),
        })
        .collect()
}

fn seal(plain: &[u8], keys: &[u8], threads: usize) -> Vec<u8> {
    let opts = SealOptions {
        chunk_size: CHUNK,
        threads,
        ..SealOptions::default()
    };
    let mut out = Vec::new();
    filter::seal(plain, &mut out, &secrets(keys), &opts, |_| {}).unwrap();
    out
}

fn open(sealed: &[u8], keys: &[u8], threads: usize) -> (Vec<u8>, anyhow::Result<u64>) {
    let mut out = Vec::new();
    let r = filter::open(
        sealed,
        &mut out,
        &secrets(keys),
        &filter::OpenOptions::threads(threads),
        |_| {},
    );
    (out, r)
}

fn sizes() -> impl Strategy<Value = usize> {
    let c = CHUNK as usize;
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(c - 1),
        Just(c),
        Just(c + 1),
        Just(3 * c - 1),
        Just(3 * c),
        Just(3 * c + 1),
        0..10 * c
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn round_trip(len in sizes(), seed in any::<u8>(), k1 in 1u8..100, k2 in 100u8..200, threads in 0usize..4) {
        let plain: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let sealed = seal(&plain, &[k1, k2], threads);
        prop_assert_eq!(sealed.len(), 92 + 16 + plain.len() + 16 * plain.len().div_ceil(CHUNK as usize).max(1));
        let (out, r) = open(&sealed, &[k2, k1], threads);
        prop_assert!(r.is_ok(), "{:?}", r);
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn any_damage_is_caught(len in sizes(), at in any::<prop::sample::Index>(), bit in 0u8..8, threads in 0usize..4) {
        let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut sealed = seal(&plain, &[1, 2], 1);
        let at = at.index(sealed.len());
        sealed[at] ^= 1 << bit;
        let (out, r) = open(&sealed, &[1, 2], threads);
        prop_assert!(r.is_err(), "damage at byte {} of {} was not caught", at, sealed.len());
        prop_assert_eq!(zstream_common::exit::code_of(&r.unwrap_err()), zstream_common::Code::Integrity);
        // What was written is a prefix of the plaintext made of whole chunks.
        prop_assert!(out.len() % CHUNK as usize == 0 && plain.starts_with(&out));
    }

    #[test]
    fn any_cut_is_caught(len in sizes(), cut in any::<prop::sample::Index>()) {
        let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&plain, &[1, 2], 1);
        let cut = cut.index(sealed.len());
        let (out, r) = open(&sealed[..cut], &[1, 2], 2);
        prop_assert!(r.is_err(), "cut at {} of {} was not caught", cut, sealed.len());
        prop_assert!(out.len() % CHUNK as usize == 0 && plain.starts_with(&out));
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = open(&data, &[1, 2], 2);
        let mut with_magic = b"ZSTSEAL\x01".to_vec();
        with_magic.extend_from_slice(&data);
        let _ = open(&with_magic, &[1, 2], 1);
    }
}
