//! The payload: fixed-size chunks, each sealed with ChaCha20-Poly1305 under a nonce made of the chunk's number and
//! a last-chunk flag (the STREAM construction, as in age), so truncation, reordering, duplication and data after
//! the last chunk all fail authentication.

use crate::header::TAG_LEN;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

/// Nonce: an 11-byte big-endian chunk counter, then 0x01 for the last chunk or 0x00.
pub fn nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = last as u8;
    Nonce::from(n)
}

pub struct PayloadCipher(ChaCha20Poly1305);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk {index} at byte {offset} fails authentication: the stream is damaged, or its chunks were reordered or duplicated")]
    Forged { index: u64, offset: u64 },
    #[error("the stream is cut short: it ends at byte {end}, after chunk {index}, which is not the final chunk")]
    MissingFinal { index: u64, end: u64 },
    #[error("the final chunk {index} at byte {offset} fails authentication: the stream is cut short inside it, has bytes added after it, or is damaged")]
    CutOrForged { index: u64, offset: u64 },
    #[error("chunk {index} at byte {offset} is the final chunk, but more data follows it")]
    Trailing { index: u64, offset: u64 },
    #[error("the stream is cut short inside chunk {index} at byte {offset}: {len} bytes, less than a tag")]
    Short { index: u64, offset: u64, len: usize },
    #[error("chunk {index} at byte {offset} is an empty final chunk, which only an empty stream may have")]
    EmptyFinal { index: u64, offset: u64 },
}

impl PayloadCipher {
    pub fn new(key: &[u8; 32]) -> Self {
        PayloadCipher(ChaCha20Poly1305::new(&(*key).into()))
    }

    /// Encrypts `buf` (a plaintext chunk) in place and appends its tag.
    pub fn seal(&self, index: u64, last: bool, buf: &mut Vec<u8>) {
        let tag = self
            .0
            .encrypt_inout_detached(&nonce(index, last), b"", buf.as_mut_slice().into())
            .expect("chunks are far below ChaCha20-Poly1305's length limit");
        buf.extend_from_slice(&tag);
    }

    /// Checks and decrypts `buf` (a sealed chunk) in place, leaving the plaintext. On failure `buf` is cleared, so
    /// no unauthenticated byte can be used by mistake, and the error says what went wrong.
    pub fn open(
        &self,
        index: u64,
        last: bool,
        offset: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), ChunkError> {
        if buf.len() < TAG_LEN {
            let len = buf.len();
            buf.clear();
            return Err(ChunkError::Short { index, offset, len });
        }
        if last && index > 0 && buf.len() == TAG_LEN {
            buf.clear();
            return Err(ChunkError::EmptyFinal { index, offset });
        }
        let split = buf.len() - TAG_LEN;
        let tag = Tag::try_from(&buf[split..]).expect("16 bytes");
        let (data, _) = buf.split_at_mut(split);
        if self
            .0
            .decrypt_inout_detached(&nonce(index, last), b"", data.into(), &tag)
            .is_ok()
        {
            buf.truncate(split);
            return Ok(());
        }
        // Only on failure: would the chunk open with the other last-chunk flag? That tells a cut at a chunk
        // boundary and data after the final chunk apart from damage. The cipher checks the tag before it
        // decrypts, so the buffer still holds the ciphertext here.
        let end = offset + buf.len() as u64;
        let (data, _) = buf.split_at_mut(split);
        let flipped = self
            .0
            .decrypt_inout_detached(&nonce(index, !last), b"", data.into(), &tag)
            .is_ok();
        buf.clear();
        Err(match (flipped, last) {
            (true, true) => ChunkError::MissingFinal { index, end },
            (true, false) => ChunkError::Trailing { index, offset },
            (false, true) => ChunkError::CutOrForged { index, offset },
            (false, false) => ChunkError::Forged { index, offset },
        })
    }
}
