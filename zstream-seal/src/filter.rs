//! Sealing and opening whole streams: the header, then the chunks through the ordered parallel map. Opening
//! checks every key against the header before it writes a byte, and writes a chunk only after its tag holds.

use crate::header::{Header, DEFAULT_CHUNK, MAX_CHUNK, MAX_KEYS, MIN_CHUNK, TAG_LEN};
use crate::kdf::KdfLimit;
use crate::kdf::{self, Argon2Params};
use crate::key::{Key, KeyId};
use crate::stream::PayloadCipher;
use std::io::{Read, Write};
use zeroize::Zeroizing;
use zstream_common::cli::ThreadsArg;
use zstream_common::ordered;
use zstream_common::pipe::{write_out, ChunkReader};
use zstream_common::{integrity, usage};

/// A key file's key, or a passphrase, with the name to use in messages (its file name).
pub enum Secret {
    KeyFile {
        name: String,
        key: Key,
    },
    Passphrase {
        name: String,
        passphrase: Zeroizing<Vec<u8>>,
    },
}

pub struct SealOptions {
    pub chunk_size: u32,
    pub threads: usize,
    pub argon2: Argon2Params,
    /// Only for test vectors: a fixed salt gives a fixed payload key, which must never protect two streams.
    pub fixed_salt: Option<[u8; 32]>,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            chunk_size: DEFAULT_CHUNK,
            threads: 1,
            argon2: Argon2Params::DEFAULT,
            fixed_salt: None,
        }
    }
}

/// Seals `input` to `output`; returns the number of plaintext bytes.
pub fn seal<R: Read, W: Write + Send>(
    input: R,
    output: &mut W,
    secrets: &[Secret],
    opts: &SealOptions,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<u64> {
    if secrets.is_empty() {
        return Err(usage(
            "sealing needs at least one --key-file or --passphrase-file",
        ));
    }
    if secrets.len() > MAX_KEYS {
        return Err(usage(format!(
            "at most {MAX_KEYS} keys and passphrases together"
        )));
    }
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&opts.chunk_size) {
        return Err(usage(format!(
            "--chunk-size must be {MIN_CHUNK} to {MAX_CHUNK} bytes"
        )));
    }
    let salt = match opts.fixed_salt {
        Some(s) => s,
        None => {
            let mut s = [0u8; 32];
            zstream_common::random(&mut s)?;
            s
        }
    };
    let mut keys = Vec::new();
    let (mut key_ids, mut passphrase_ids) = (Vec::new(), Vec::new());
    for s in secrets {
        let (key, ids) = match s {
            Secret::KeyFile { key, .. } => (key.clone(), &mut key_ids),
            Secret::Passphrase { passphrase, .. } => (
                kdf::passphrase_key(passphrase, &salt, opts.argon2)?,
                &mut passphrase_ids,
            ),
        };
        ids.push(key.id());
        keys.push(key);
    }
    let mut all: Vec<KeyId> = keys.iter().map(Key::id).collect();
    all.sort();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(usage(
            "the same key or passphrase is given twice; each must be different",
        ));
    }
    key_ids.sort();
    passphrase_ids.sort();
    let argon2 = (!passphrase_ids.is_empty()).then_some(opts.argon2);
    let mut header = Header {
        chunk_size: opts.chunk_size,
        salt,
        key_ids,
        passphrase_ids,
        argon2,
        mac: [0; 32],
    };
    let stream_keys = kdf::stream_keys(&keys, &salt);
    header.authenticate(&stream_keys);
    write_out(output, &header.encode())?;

    let cipher = PayloadCipher::new(&stream_keys.payload);
    let mut reader = ChunkReader::new(input, opts.chunk_size as usize, TAG_LEN);
    let mut total = 0u64;
    ordered::map(
        opts.threads,
        |buf, index| reader.chunk(buf, index),
        |c| {
            cipher.seal(c.index, c.last, &mut c.data);
            Ok(())
        },
        |c| {
            let plain = (c.data.len() - TAG_LEN) as u64;
            total += plain;
            progress(plain);
            write_out(output, &c.data)
        },
    )?;
    Ok(total)
}

/// What opening may be asked to spend, beyond the stream itself.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Workers (the default is sized by the header's chunk size).
    pub threads: ThreadsArg,
    /// The most Argon2id work a header may ask for before anything is authenticated.
    pub kdf_limit: KdfLimit,
}

impl OpenOptions {
    /// `n` workers (0: the default) and the default Argon2id limit.
    pub fn threads(n: usize) -> OpenOptions {
        OpenOptions {
            threads: ThreadsArg {
                threads: u16::try_from(n).ok().filter(|&n| n > 0),
            },
            kdf_limit: KdfLimit::DEFAULT,
        }
    }
}

/// Reads the header, checks every key against it, and opens the stream; returns the number of plaintext bytes.
pub fn open<R: Read, W: Write + Send>(
    mut input: R,
    output: &mut W,
    secrets: &[Secret],
    opts: &OpenOptions,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<u64> {
    let header = Header::read(&mut input).map_err(integrity)?;
    if let Some(a) = header.argon2 {
        opts.kdf_limit.allows(a).map_err(integrity)?;
    }
    let keys = check_keys(&header, secrets)?;
    let stream_keys = kdf::stream_keys(&keys, &header.salt);
    if !header.verify(&stream_keys) {
        return Err(integrity(
            "the keys match the header's list, but the header fails authentication: it is damaged or forged",
        ));
    }
    let cipher = PayloadCipher::new(&stream_keys.payload);
    let sealed_chunk = header.chunk_size as u64 + TAG_LEN as u64;
    let start = header.encoded_len() as u64;
    let mut reader = ChunkReader::new(input, sealed_chunk as usize, 0);
    let mut total = 0u64;
    ordered::map(
        opts.threads.get(sealed_chunk),
        |buf, index| reader.chunk(buf, index),
        |c| {
            cipher
                .open(c.index, c.last, start + c.index * sealed_chunk, &mut c.data)
                .map_err(integrity)
        },
        |c| {
            total += c.data.len() as u64;
            progress(c.data.len() as u64);
            write_out(output, &c.data)
        },
    )?;
    Ok(total)
}

/// The key materials that open this header, in any order, or an exit-3 error that names what is missing,
/// extra or wrong.
fn check_keys(h: &Header, secrets: &[Secret]) -> anyhow::Result<Vec<Key>> {
    let mut problems = Vec::new();
    let mut keys = Vec::new();
    let mut file_ids = Vec::new();
    let n_pass = secrets
        .iter()
        .filter(|s| matches!(s, Secret::Passphrase { .. }))
        .count();
    if n_pass != h.passphrase_ids.len() {
        problems.push(format!(
            "it was sealed with {} passphrase(s), {n_pass} given",
            h.passphrase_ids.len()
        ));
    }
    for s in secrets {
        match s {
            Secret::KeyFile { name, key } => {
                let id = key.id();
                if file_ids.contains(&id) {
                    problems.push(format!("key file {name} is given twice"));
                    continue;
                }
                file_ids.push(id);
                if !h.key_ids.contains(&id) {
                    problems.push(format!(
                        "key file {name} (id {}) is not one of its keys",
                        hex::encode(id)
                    ));
                }
                keys.push(key.clone());
            }
            Secret::Passphrase { name, passphrase } => {
                if let Some(params) = h.argon2.filter(|_| n_pass == h.passphrase_ids.len()) {
                    let key = kdf::passphrase_key(passphrase, &h.salt, params)?;
                    if !h.passphrase_ids.contains(&key.id()) {
                        problems.push(format!("the passphrase in {name} is wrong"));
                    }
                    keys.push(key);
                }
            }
        }
    }
    for id in &h.key_ids {
        if !file_ids.contains(id) {
            problems.push(format!("key {} is missing", hex::encode(id)));
        }
    }
    // Two equal ids (a key file whose material equals a passphrase's) are not allowed (seal-v1.md).
    let mut all: Vec<KeyId> = keys.iter().map(Key::id).collect();
    all.sort();
    if all.windows(2).any(|w| w[0] == w[1]) {
        problems.push("two of the keys given have the same id".into());
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(integrity(format!(
            "these keys do not open this stream (or its header is damaged): {}",
            problems.join("; ")
        )))
    }
}
