//! The testkit (docs/formats/testkit/seal/): malformed and valid sealed streams, one file each with what opening
//! it must do, for this implementation's tests and for any other's (as age's testkit is). Each file is a text
//! header, a blank line, then the stream's bytes:
//!
//! ```text
//! expect: success | header failure | payload failure
//! key: <64 hex>          (a key file's raw key; one line per key, in any order)
//! passphrase: <text>     (one line per passphrase)
//! output: <bytes> <sha256 hex>   (what opening writes before it stops: whole verified chunks only)
//! comment: <what the case is>
//! ```
//!
//! "header failure" writes nothing; "payload failure" writes the `output` prefix and exits 3. Argon2id in the
//! passphrase cases costs 256 KiB and 1 pass. A test fails when the committed files and this generator disagree;
//! `cargo run -p zstream-seal --example seal-testkit docs/formats/testkit/seal` rewrites them.

use crate::filter::{self, SealOptions, Secret};
use crate::header::Header;
use crate::kdf::{self, Argon2Params};
use crate::key::Key;
use crate::vectors::{plaintext, CHUNK, VECTOR_ARGON2};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const HEADER_2: usize = 60 + 2 * 8 + 32;
const SEALED: usize = CHUNK as usize + 16;

fn key(label: &str) -> Key {
    Key::from_bytes(Sha256::digest(label.as_bytes()).into())
}

fn seal(keys: &[&str], passphrases: &[&str], len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut secrets: Vec<Secret> = keys
        .iter()
        .map(|k| Secret::KeyFile {
            name: k.to_string(),
            key: key(k),
        })
        .collect();
    for p in passphrases {
        secrets.push(Secret::Passphrase {
            name: "passphrase".into(),
            passphrase: Zeroizing::new(p.as_bytes().to_vec()),
        });
    }
    let salt: [u8; 32] = Sha256::digest(b"testkit salt").into();
    let opts = SealOptions {
        chunk_size: CHUNK,
        threads: 0,
        argon2: VECTOR_ARGON2,
        fixed_salt: Some(salt),
    };
    let plain = plaintext(len);
    let mut sealed = Vec::new();
    filter::seal(&plain[..], &mut sealed, &secrets, &opts, |_| {}).expect("sealing a testkit case");
    (plain, sealed)
}

/// The header re-authenticated after `edit` (a forgery by someone who holds the keys, or a broken sealer).
fn reheader(sealed: &[u8], keys: &[&str], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = Header::read(&mut &sealed[..]).expect("a fresh header");
    let rest = &sealed[h.encoded_len()..];
    let material: Vec<Key> = keys.iter().map(|k| key(k)).collect();
    edit(&mut h);
    h.authenticate(&kdf::stream_keys(&material, &h.salt));
    let mut out = h.encode();
    out.extend_from_slice(rest);
    out
}

struct Case {
    name: &'static str,
    expect: &'static str,
    keys: &'static [&'static str],
    passphrases: &'static [&'static str],
    /// Bytes of the plaintext opening writes.
    output: usize,
    comment: &'static str,
    stream: Vec<u8>,
    plain: Vec<u8>,
}

/// Every case: (file name, file contents).
pub fn generate() -> Vec<(String, Vec<u8>)> {
    const AB: &[&str] = &["key A", "key B"];
    let ab = AB;
    let (plain, good) = seal(ab, &[], 3 * CHUNK as usize + 10);
    let full = 3 * CHUNK as usize;
    let (exact_plain, exact) = seal(ab, &[], full);
    let (pw_plain, pw) = seal(&["key A"], &["correct horse battery staple"], 100);
    let c = |name, expect, keys, output, comment, stream: Vec<u8>| Case {
        name,
        expect,
        keys,
        passphrases: &[],
        output,
        comment,
        stream,
        plain: plain.clone(),
    };
    let at = |k: usize| HEADER_2 + k * SEALED;
    let mut flipped = good.clone();
    flipped[at(1) + 5] ^= 1;
    let mut swapped = good[..at(1)].to_vec();
    swapped.extend_from_slice(&good[at(2)..at(3)]);
    swapped.extend_from_slice(&good[at(1)..at(2)]);
    swapped.extend_from_slice(&good[at(3)..]);
    let mut duplicated = good[..at(2)].to_vec();
    duplicated.extend_from_slice(&good[at(1)..]);
    let mut salt_flipped = good.clone();
    salt_flipped[30] ^= 0x80;
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    let mut version2 = good.clone();
    version2[7] = 2;
    let mut trailing_full = exact.clone();
    trailing_full.extend_from_slice(b"more");
    let mut trailing_short = good.clone();
    trailing_short.extend_from_slice(b"more");
    let forged_cost = {
        let mut v = pw.clone();
        v[16..20].copy_from_slice(&(4u32 << 20).to_be_bytes());
        v[20..24].copy_from_slice(&64u32.to_be_bytes());
        v
    };
    let empty_final = {
        // Three full chunks, then an empty chunk flagged final: a sealer that should have flagged chunk 2.
        let mut v = exact[..at(2)].to_vec();
        let material: Vec<Key> = ab.iter().map(|k| key(k)).collect();
        let h = Header::read(&mut &exact[..]).expect("header");
        let sk = kdf::stream_keys(&material, &h.salt);
        let cipher = crate::stream::PayloadCipher::new(&sk.payload);
        let mut c2 = plaintext(full)[2 * CHUNK as usize..].to_vec();
        cipher.seal(2, false, &mut c2);
        v.extend_from_slice(&c2);
        let mut last = Vec::new();
        cipher.seal(3, true, &mut last);
        v.extend_from_slice(&last);
        v
    };
    let unsorted_ids = reheader(&good, ab, |h| h.key_ids.reverse());
    // A key file whose material equals the passphrase's (seal-v1 forbids equal ids): seal refuses to make
    // one, so it is forged, header and payload, with the keys an opener that allowed it would derive.
    let (equal_ids, equal_key) = {
        let salt: [u8; 32] = Sha256::digest(b"testkit salt").into();
        let k = kdf::passphrase_key(b"correct horse battery staple", &salt, VECTOR_ARGON2)
            .expect("argon2");
        let sk = kdf::stream_keys(&[k.clone(), k.clone()], &salt);
        let mut h = Header {
            chunk_size: CHUNK,
            salt,
            key_ids: vec![k.id()],
            passphrase_ids: vec![k.id()],
            argon2: Some(VECTOR_ARGON2),
            mac: [0; 32],
        };
        h.authenticate(&sk);
        let mut v = h.encode();
        let mut chunk = plaintext(10);
        crate::stream::PayloadCipher::new(&sk.payload).seal(0, true, &mut chunk);
        v.extend_from_slice(&chunk);
        (v, hex::encode(k.bytes()))
    };
    let mut cases = vec![
        c(
            "success-two-keys",
            "success",
            ab,
            plain.len(),
            "sealed with two keys, opened with both",
            good.clone(),
        ),
        c(
            "header-wrong-key",
            "header failure",
            &["key A", "key C"],
            0,
            "key B is replaced by another key",
            good.clone(),
        ),
        c(
            "header-missing-key",
            "header failure",
            &["key A"],
            0,
            "one of the two keys",
            good.clone(),
        ),
        c(
            "header-extra-key",
            "header failure",
            &["key A", "key B", "key C"],
            0,
            "a third key it was not sealed with",
            good.clone(),
        ),
        c(
            "header-salt-flipped",
            "header failure",
            ab,
            0,
            "one bit of the salt flipped: the header MAC fails",
            salt_flipped,
        ),
        c(
            "header-truncated",
            "header failure",
            ab,
            0,
            "the stream ends inside its header",
            good[..HEADER_2 - 1].to_vec(),
        ),
        c(
            "header-bad-magic",
            "header failure",
            ab,
            0,
            "not a zstream-seal stream",
            bad_magic,
        ),
        c(
            "header-version-2",
            "header failure",
            ab,
            0,
            "a version this reader does not know",
            version2,
        ),
        c(
            "header-ids-unsorted",
            "header failure",
            ab,
            0,
            "key ids not ascending, with a valid MAC",
            unsorted_ids,
        ),
        c(
            "payload-chunk-flipped",
            "payload failure",
            ab,
            CHUNK as usize,
            "a bit of chunk 1 flipped",
            flipped,
        ),
        c(
            "payload-chunks-swapped",
            "payload failure",
            ab,
            CHUNK as usize,
            "chunks 1 and 2 swapped",
            swapped,
        ),
        c(
            "payload-chunk-duplicated",
            "payload failure",
            ab,
            2 * CHUNK as usize,
            "chunk 1 twice",
            duplicated,
        ),
        c(
            "payload-cut-at-boundary",
            "payload failure",
            ab,
            CHUNK as usize,
            "cut after chunk 1: no final chunk",
            good[..at(2)].to_vec(),
        ),
        c(
            "payload-cut-mid-chunk",
            "payload failure",
            ab,
            2 * CHUNK as usize,
            "cut 20 bytes into chunk 2",
            good[..at(2) + 20].to_vec(),
        ),
        c(
            "payload-cut-in-tag",
            "payload failure",
            ab,
            3 * CHUNK as usize,
            "less than a tag of chunk 3",
            good[..at(3) + 3].to_vec(),
        ),
        c(
            "payload-trailing-short",
            "payload failure",
            ab,
            3 * CHUNK as usize,
            "bytes after a short final chunk",
            trailing_short,
        ),
    ];
    let exact_cases = [
        (
            "success-exact-chunks",
            "success",
            full,
            "three full chunks, the last flagged final",
            exact.clone(),
        ),
        (
            "payload-trailing-full",
            "payload failure",
            2 * CHUNK as usize,
            "bytes after a full final chunk: it is refused as not final",
            trailing_full,
        ),
        (
            "payload-empty-final",
            "payload failure",
            full,
            "an empty final chunk after three full ones",
            empty_final,
        ),
    ];
    for (name, expect, output, comment, stream) in exact_cases {
        cases.push(Case {
            name,
            expect,
            keys: &["key A", "key B"],
            passphrases: &[],
            output,
            comment,
            stream,
            plain: exact_plain.clone(),
        });
    }
    for (name, expect, phrase, output, comment, stream) in [
        ("success-passphrase", "success", "correct horse battery staple", 100, "a key file and a passphrase", pw.clone()),
        ("header-wrong-passphrase", "header failure", "correct horse battery stapler", 0, "the wrong passphrase", pw.clone()),
        ("header-argon2-over-limit", "header failure", "correct horse battery staple", 0, "Argon2id 4 GiB and 64 passes asked for: over the opener's default limit, refused before any work", forged_cost),
    ] {
        let phrases: &'static [&'static str] = match phrase {
            "correct horse battery staple" => &["correct horse battery staple"],
            _ => &["correct horse battery stapler"],
        };
        cases.push(Case { name, expect, keys: &["key A"], passphrases: phrases, output, comment, stream, plain: pw_plain.clone() });
    }
    cases.push(Case {
        name: "header-equal-ids",
        expect: "header failure",
        keys: &[],
        passphrases: &["correct horse battery staple"],
        output: 0,
        comment: "the key file's material equals the passphrase's: two equal ids, not allowed",
        stream: equal_ids,
        plain: Vec::new(),
    });
    cases
        .into_iter()
        .map(|c| {
            let mut f = format!("expect: {}\n", c.expect);
            for k in c.keys {
                f.push_str(&format!("key: {}\n", hex::encode(key(k).bytes())));
            }
            if c.name == "header-equal-ids" {
                f.push_str(&format!("key: {equal_key}\n"));
            }
            for p in c.passphrases {
                f.push_str(&format!("passphrase: {p}\n"));
            }
            let out = &c.plain[..c.output];
            f.push_str(&format!(
                "output: {} {}\n",
                out.len(),
                hex::encode(Sha256::digest(out))
            ));
            f.push_str(&format!("comment: {}\n\n", c.comment));
            let mut bytes = f.into_bytes();
            bytes.extend_from_slice(&c.stream);
            (c.name.to_string(), bytes)
        })
        .collect()
}

/// One testkit file, read back: (expect, key files' raw keys, passphrases, output length, output SHA-256, stream).
pub struct Parsed {
    pub expect: String,
    pub keys: Vec<[u8; 32]>,
    pub passphrases: Vec<String>,
    pub output_len: usize,
    pub output_sha256: String,
    pub stream: Vec<u8>,
}

pub fn parse(file: &[u8]) -> Parsed {
    let split = file
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a header and a blank line");
    let header = std::str::from_utf8(&file[..split]).expect("a text header");
    let mut p = Parsed {
        expect: String::new(),
        keys: Vec::new(),
        passphrases: Vec::new(),
        output_len: 0,
        output_sha256: String::new(),
        stream: file[split + 2..].to_vec(),
    };
    for line in header.lines() {
        let (k, v) = line.split_once(": ").expect("key: value");
        match k {
            "expect" => p.expect = v.into(),
            "key" => p
                .keys
                .push(hex::decode(v).expect("hex").try_into().expect("32 bytes")),
            "passphrase" => p.passphrases.push(v.into()),
            "output" => {
                let (n, h) = v.split_once(' ').expect("length and digest");
                p.output_len = n.parse().expect("a length");
                p.output_sha256 = h.into();
            }
            _ => {}
        }
    }
    p
}

/// What the testkit's Argon2id costs (the passphrase cases).
pub const ARGON2: Argon2Params = VECTOR_ARGON2;
