//! The committed vectors are what the generator makes today and each decodes to its input; the Reed-Solomon
//! parity matches an independent implementation of the field and matrix that the specs describe; and every vector
//! read by the specs' offsets alone (no code of the crate) holds what the specs say: par-v1.md's trailer, and
//! par-v2.md's whole layout (frame order, the mask, the final group's shards, parity and trailer).

use zstream_par::codec::Codec;
use zstream_par::decode::{self, Mode};

const V1: &str = include_str!("../../docs/formats/par-v1-vectors.json");
const V2: &str = include_str!("../../docs/formats/par-v2-vectors.json");

fn committed(version: u8) -> serde_json::Value {
    serde_json::from_str(if version == 1 { V1 } else { V2 }).unwrap()
}

#[test]
fn committed_vectors_have_not_drifted() {
    for version in [1, 2] {
        assert!(
            committed(version) == zstream_par::vectors::generate(version),
            "docs/formats/par-v{version}-vectors.json differs from the generator: the format changed. If that is \
             intended, bump the version and run `cargo run -p zstream-par --example par-vectors {version} > \
             docs/formats/par-v{version}-vectors.json`"
        );
    }
}

#[test]
fn committed_vectors_decode() {
    for version in [1, 2] {
        for vec in committed(version)["vectors"].as_array().unwrap() {
            let encoded = hex::decode(vec["encoded"].as_str().unwrap()).unwrap();
            let mut out = Vec::new();
            let r = decode::decode(&encoded[..], &mut out, Mode::Decode, 0, |_| {}).unwrap();
            assert_eq!(hex::encode(&out), vec["input"].as_str().unwrap());
            assert_eq!(r.version, Some(version));
            assert_eq!(
                zstream_par::probe::version_of(&encoded),
                Some(version),
                "the first frame's version"
            );
        }
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
fn v1_trailer_holds_the_length_and_blake3_of_the_input() {
    assert_eq!(
        blake3::hash(b"").to_hex().as_str(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "BLAKE3 of the empty input (BLAKE3-team/BLAKE3 test_vectors)"
    );
    for vec in committed(1)["vectors"].as_array().unwrap() {
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

/// A frame as par-v2.md's table lays it out, read without the crate.
struct Header {
    id: [u8; 8],
    group: u64,
    index: u8,
    d: usize,
    p: usize,
    flags: u8,
    interleave: u64,
    block: usize,
    shard: usize,
    payload: Vec<u8>,
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| a << 8 | x as u64)
}

/// Every frame of a clean stream, by the spec's offsets; the checksums are checked with the xxhash crate.
fn read_v2(encoded: &[u8]) -> Vec<Header> {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    let mut at = 0;
    let mut v = Vec::new();
    while at < encoded.len() {
        let h = &encoded[at..at + 64];
        assert_eq!(&h[..8], b"\x8fZSPAR\r\n");
        assert_eq!(h[29], 2, "version");
        assert_eq!((h[28], be(&h[40..44])), (0, 0), "reserved fields");
        assert_eq!(
            be(&h[56..64]),
            xxh3_64_with_seed(&h[..56], 0x7a73_7061_7268_6472),
            "header checksum"
        );
        let len = be(&h[44..48]) as usize;
        let payload = encoded[at + 64..at + 64 + len].to_vec();
        assert_eq!(
            be(&h[48..56]),
            xxh3_64_with_seed(&payload, 0x7a73_7061_7270_6c64),
            "payload checksum"
        );
        v.push(Header {
            id: h[8..16].try_into().unwrap(),
            group: be(&h[16..24]),
            index: h[24],
            d: h[25] as usize,
            p: h[26] as usize,
            flags: h[27],
            interleave: be(&h[30..32]),
            block: be(&h[32..36]) as usize,
            shard: be(&h[36..40]) as usize,
            payload,
        });
        at += 64 + len;
    }
    v
}

#[test]
fn v2_vectors_hold_what_the_spec_says() {
    let all = committed(2);
    for vec in all["vectors"].as_array().unwrap() {
        let encoded = hex::decode(vec["encoded"].as_str().unwrap()).unwrap();
        let input = hex::decode(vec["input"].as_str().unwrap()).unwrap();
        let frames = read_v2(&encoded);
        let what = format!("{} bytes, D = {}", input.len(), vec["interleave"]);
        // The stream-header frame first, its text plain.
        let h = &frames[0];
        assert_eq!((h.index, h.flags, h.group), (255, 4, 0), "{what}");
        assert_eq!(
            &h.payload[..29],
            b"zstream-par v2 parity stream\n",
            "{what}"
        );
        let (d, p, b, dd) = (h.d, h.p, h.block, h.interleave);
        // The mask: BLAKE3 of the context and the id, extended to 64 bytes.
        let mut mask = [0u8; 64];
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"zstream-par v2 mask");
        hasher.update(&h.id);
        hasher.finalize_xof().fill(&mut mask);
        assert_eq!(hex::encode(mask), all["mask"].as_str().unwrap());
        let unmask = |x: &[u8]| -> Vec<u8> {
            x.iter()
                .enumerate()
                .map(|(k, &c)| c ^ mask[k % 64])
                .collect()
        };
        // Groups: full ones of d x B bytes, then the final one (flag 1) with the rest.
        let full = input.len() / (d * b);
        let groups = full + 1;
        // Order: batches of D groups; in a batch, index 0 of each group, then index 1, ...; every group has d + p
        // frames.
        let mut want = Vec::new();
        for batch in (0..groups).step_by(dd as usize) {
            for i in 0..d + p {
                for g in batch..(batch + dd as usize).min(groups) {
                    want.push((g as u64, i as u8));
                }
            }
        }
        let got: Vec<(u64, u8)> = frames[1..].iter().map(|f| (f.group, f.index)).collect();
        assert_eq!(got, want, "{what}: frame order");
        let rows = parity_rows(d, p);
        let mut original = Vec::new();
        for g in 0..groups as u64 {
            let fs: Vec<&Header> = frames[1..].iter().filter(|f| f.group == g).collect();
            let last = g as usize == full;
            assert!(
                fs.iter().all(|f| f.flags == last as u8),
                "{what}: group {g}'s flags"
            );
            let rest = input.len() - full * d * b;
            let l = if last { (rest + 40).div_ceil(d) } else { b };
            assert!(
                fs.iter().all(|f| f.shard == l && f.payload.len() == l),
                "{what}: group {g}'s L"
            );
            let shards: Vec<Vec<u8>> = fs.iter().map(|f| unmask(&f.payload)).collect();
            for (j, row) in rows.iter().enumerate() {
                let par: Vec<u8> = (0..l)
                    .map(|k| (0..d).fold(0u8, |a, i| a ^ mul(row[i], shards[i][k])))
                    .collect();
                assert_eq!(par, shards[d + j], "{what}: group {g} parity {j}");
            }
            let content: Vec<u8> = shards[..d].concat();
            if !last {
                original.extend_from_slice(&content);
                continue;
            }
            // The final group: the rest, zeros, then the trailer in the last 40 bytes.
            original.extend_from_slice(&content[..rest]);
            assert!(
                content[rest..d * l - 40].iter().all(|&z| z == 0),
                "{what}: padding"
            );
            let mut trailer = (input.len() as u64).to_be_bytes().to_vec();
            trailer.extend_from_slice(blake3::hash(&input).as_bytes());
            assert_eq!(content[d * l - 40..], trailer[..], "{what}: trailer");
        }
        assert_eq!(original, input, "{what}: the data shards hold the original");
    }
}
