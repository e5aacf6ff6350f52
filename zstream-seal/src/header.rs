//! The sealed stream's header: what it needs to be opened (which keys, how many passphrases and their Argon2id
//! cost, the chunk size, the salt), authenticated under a key derived from every key, so a wrong key set and a
//! tampered header are both caught before any output. Layout in docs/formats/seal-v1.md.

use crate::kdf::{Argon2Params, StreamKeys};
use crate::key::{KeyId, ID_LEN};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;

pub const MAGIC: &[u8; 7] = b"ZSTSEAL";
pub const VERSION: u8 = 1;
pub const FIXED_LEN: usize = 60;
pub const MAC_LEN: usize = 32;
pub const TAG_LEN: usize = 16;
pub const MIN_CHUNK: u32 = 64;
pub const MAX_CHUNK: u32 = 64 << 20;
pub const DEFAULT_CHUNK: u32 = 1 << 20;
pub const MAX_KEYS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub chunk_size: u32,
    pub salt: [u8; 32],
    /// Ids of the key files, ascending.
    pub key_ids: Vec<KeyId>,
    /// Ids of the passphrases' key material for this stream, ascending.
    pub passphrase_ids: Vec<KeyId>,
    /// Present exactly when there are passphrases.
    pub argon2: Option<Argon2Params>,
    pub mac: [u8; MAC_LEN],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("not a zstream-seal stream (no ZSTSEAL header)")]
    NotSealed,
    #[error(
        "zstream-seal format version {0} is not supported by this version (it reads version 1)"
    )]
    Version(u8),
    #[error("the stream ends inside its header ({0} bytes)")]
    Truncated(usize),
    #[error("damaged header: {0}")]
    Field(String),
}

impl Header {
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + ID_LEN * (self.key_ids.len() + self.passphrase_ids.len()) + MAC_LEN
    }

    /// Every byte before the MAC.
    pub fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.encoded_len());
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(0); // flags
        b.push(self.key_ids.len() as u8);
        b.push(self.passphrase_ids.len() as u8);
        b.push(0); // reserved
        b.extend_from_slice(&self.chunk_size.to_be_bytes());
        let a = self.argon2.unwrap_or(Argon2Params {
            m_cost_kib: 0,
            t_cost: 0,
            p_cost: 0,
        });
        for v in [a.m_cost_kib, a.t_cost, a.p_cost] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&self.salt);
        for id in self.key_ids.iter().chain(&self.passphrase_ids) {
            b.extend_from_slice(id);
        }
        b
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.body();
        b.extend_from_slice(&self.mac);
        b
    }

    fn compute_mac(&self, keys: &StreamKeys) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&keys.header_mac[..])
            .expect("HMAC takes any key length");
        m.update(&self.body());
        m
    }

    pub fn authenticate(&mut self, keys: &StreamKeys) {
        self.mac = self.compute_mac(keys).finalize().into_bytes().into();
    }

    /// Constant-time check of the MAC.
    pub fn verify(&self, keys: &StreamKeys) -> bool {
        self.compute_mac(keys).verify_slice(&self.mac).is_ok()
    }

    /// Reads and parses a header (its MAC is checked later, once the keys are known).
    pub fn read(r: &mut impl Read) -> Result<Header, HeaderError> {
        let mut fixed = [0u8; FIXED_LEN];
        let n = read_up_to(r, &mut fixed)?;
        if n < MAGIC.len() || &fixed[..7] != MAGIC {
            return Err(if n < MAGIC.len() && fixed[..n] == MAGIC[..n] {
                HeaderError::Truncated(n)
            } else {
                HeaderError::NotSealed
            });
        }
        if n < FIXED_LEN {
            return Err(if n > 7 && fixed[7] != VERSION {
                HeaderError::Version(fixed[7])
            } else {
                HeaderError::Truncated(n)
            });
        }
        if fixed[7] != VERSION {
            return Err(HeaderError::Version(fixed[7]));
        }
        let field = |s: &str| HeaderError::Field(s.to_string());
        if fixed[8] != 0 || fixed[11] != 0 {
            return Err(field("reserved bytes are not zero"));
        }
        let (k, p) = (fixed[9] as usize, fixed[10] as usize);
        if k + p == 0 || k + p > MAX_KEYS {
            return Err(HeaderError::Field(format!(
                "{} keys (1 to {MAX_KEYS} allowed)",
                k + p
            )));
        }
        let be = |at: usize| u32::from_be_bytes(fixed[at..at + 4].try_into().expect("4 bytes"));
        let chunk_size = be(12);
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(HeaderError::Field(format!(
                "chunk size {chunk_size} (allowed {MIN_CHUNK} to {MAX_CHUNK})"
            )));
        }
        let a = Argon2Params {
            m_cost_kib: be(16),
            t_cost: be(20),
            p_cost: be(24),
        };
        let argon2 = if p > 0 {
            a.check().map_err(HeaderError::Field)?;
            Some(a)
        } else if a
            != (Argon2Params {
                m_cost_kib: 0,
                t_cost: 0,
                p_cost: 0,
            })
        {
            return Err(field("Argon2id parameters without passphrases"));
        } else {
            None
        };
        let salt: [u8; 32] = fixed[28..60].try_into().expect("32 bytes");
        let mut rest = vec![0u8; ID_LEN * (k + p) + MAC_LEN];
        let got = read_up_to(r, &mut rest)?;
        if got < rest.len() {
            return Err(HeaderError::Truncated(FIXED_LEN + got));
        }
        let ids: Vec<KeyId> = rest[..ID_LEN * (k + p)]
            .chunks(ID_LEN)
            .map(|c| c.try_into().expect("8 bytes"))
            .collect();
        let (key_ids, passphrase_ids) = (ids[..k].to_vec(), ids[k..].to_vec());
        if !is_ascending(&key_ids) || !is_ascending(&passphrase_ids) {
            return Err(field("key ids out of order"));
        }
        let mac = rest[ID_LEN * (k + p)..].try_into().expect("32 bytes");
        Ok(Header {
            chunk_size,
            salt,
            key_ids,
            passphrase_ids,
            argon2,
            mac,
        })
    }
}

fn is_ascending(ids: &[KeyId]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, HeaderError> {
    zstream_common::pipe::read_full(r, buf)
        .map_err(|e| HeaderError::Field(format!("reading the header: {e}")))
}
