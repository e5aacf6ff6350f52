//! The committed vectors are what the generator makes today, each decodes to its input, and the Reed-Solomon
//! parity matches an independent implementation of the field and matrix that docs/formats/par-v1.md describes.

use zstream_par::codec::Codec;
use zstream_par::decode::{self, Mode};

const COMMITTED: &str = include_str!("../../docs/formats/par-v1-vectors.json");

#[test]
fn committed_vectors_have_not_drifted() {
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(
        committed == zstream_par::vectors::generate(),
        "docs/formats/par-v1-vectors.json differs from the generator: the format changed. If that is intended, bump \
         the version and run `cargo run -p zstream-par --example par-vectors > docs/formats/par-v1-vectors.json`"
    );
}

#[test]
fn committed_vectors_decode() {
    let v: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    for vec in v["vectors"].as_array().unwrap() {
        let encoded = hex::decode(vec["encoded"].as_str().unwrap()).unwrap();
        let mut out = Vec::new();
        decode::decode(&encoded[..], &mut out, Mode::Decode, 0, |_| {}).unwrap();
        assert_eq!(hex::encode(&out), vec["input"].as_str().unwrap());
    }
}

/// GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), by shift-and-add: no tables, nothing shared
/// with the crate.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    r
}

fn pow(a: u8, n: usize) -> u8 {
    (0..n).fold(1u8, |acc, _| mul(acc, a))
}

fn inv(a: u8) -> u8 {
    (1..=255u8)
        .find(|&x| mul(a, x) == 1)
        .expect("non-zero elements have inverses")
}

/// The k x k inverse by Gauss-Jordan elimination.
fn invert(mut m: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let k = m.len();
    let mut r: Vec<Vec<u8>> = (0..k)
        .map(|i| (0..k).map(|j| (i == j) as u8).collect())
        .collect();
    for c in 0..k {
        let p = (c..k).find(|&i| m[i][c] != 0).expect("invertible");
        m.swap(c, p);
        r.swap(c, p);
        let s = inv(m[c][c]);
        for j in 0..k {
            m[c][j] = mul(m[c][j], s);
            r[c][j] = mul(r[c][j], s);
        }
        for i in 0..k {
            if i != c && m[i][c] != 0 {
                let f = m[i][c];
                for j in 0..k {
                    m[i][j] ^= mul(f, m[c][j]);
                    r[i][j] ^= mul(f, r[c][j]);
                }
            }
        }
    }
    r
}

/// Parity rows: rows k..k+p of V x inverse(top k rows of V), V[r][c] = r^c (0^0 = 1).
fn parity_rows(k: usize, p: usize) -> Vec<Vec<u8>> {
    let v: Vec<Vec<u8>> = (0..k + p)
        .map(|r| (0..k).map(|c| pow(r as u8, c)).collect())
        .collect();
    let top_inv = invert(v[..k].to_vec());
    (k..k + p)
        .map(|r| {
            (0..k)
                .map(|c| (0..k).fold(0u8, |acc, j| acc ^ mul(v[r][j], top_inv[j][c])))
                .collect()
        })
        .collect()
}

#[test]
fn parity_matches_the_documented_field_and_matrix() {
    for (k, p) in [(3usize, 2usize), (10, 2), (10, 4), (1, 1), (20, 5)] {
        let data: Vec<Vec<u8>> = (0..k)
            .map(|i| {
                (0..97)
                    .map(|j| ((i * 131 + j * 7 + 3) % 256) as u8)
                    .collect()
            })
            .collect();
        let mut got = vec![vec![0u8; 97]; p];
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        Codec::new(k as u8, p as u8)
            .unwrap()
            .encode(&refs, &mut got);
        let rows = parity_rows(k, p);
        for (pi, row) in rows.iter().enumerate() {
            let want: Vec<u8> = (0..97)
                .map(|b| (0..k).fold(0u8, |acc, i| acc ^ mul(row[i], data[i][b])))
                .collect();
            assert_eq!(got[pi], want, "parity {pi} of {k}+{p}");
        }
    }
}

/// The trailer of every committed vector, found by the spec's header offsets alone (flags at 27, payload length
/// at 44, payload after the 64-byte header), holds the input's length and its BLAKE3 digest. BLAKE3's own
/// published vector pins the mode: plain hash, no key, 32 bytes.
#[test]
fn trailer_holds_the_length_and_blake3_of_the_input() {
    assert_eq!(
        blake3::hash(b"").to_hex().as_str(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "BLAKE3 of the empty input (BLAKE3-team/BLAKE3 test_vectors)"
    );
    let v: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    for vec in v["vectors"].as_array().unwrap() {
        let encoded = hex::decode(vec["encoded"].as_str().unwrap()).unwrap();
        let input = hex::decode(vec["input"].as_str().unwrap()).unwrap();
        let mut at = 0;
        let mut trailers = Vec::new();
        while at + 64 <= encoded.len() {
            let h = &encoded[at..at + 64];
            assert_eq!(
                &h[..8],
                b"\x8fZSPAR\r\n",
                "a vector is a clean run of frames"
            );
            let len = u32::from_be_bytes(h[44..48].try_into().unwrap()) as usize;
            if h[27] & 2 != 0 {
                trailers.push(encoded[at + 64..at + 64 + len].to_vec());
            }
            at += 64 + len;
        }
        let mut want = (input.len() as u64).to_be_bytes().to_vec();
        want.extend_from_slice(blake3::hash(&input).as_bytes());
        assert_eq!(
            trailers,
            vec![want],
            "the trailer of a {}-byte input",
            input.len()
        );
    }
}
