//! The frame: every block of the stream (data, parity, the stream header) travels behind a 64-byte header that says
//! where it belongs and carries checksums of itself and of the block. Any surviving frame tells the decoder the
//! stream's parameters and its group's shape, so losing any other frame costs only that block. Two versions share
//! the layout (docs/formats/par-v1.md, par-v2.md); the encoder writes version 2, the decoder reads both.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

pub const FRAME_HEADER: usize = 64;
/// Frame sync marker; begins with a non-ASCII byte and carries CR LF, like PNG's, so text mangling shows.
pub const MAGIC: [u8; 8] = *b"\x8fZSPAR\r\n";
pub const V1: u8 = 1;
pub const V2: u8 = 2;
/// The version the encoder writes.
pub const VERSION: u8 = V2;
/// Seeds of the two checksums, so that a frame header's checksum never equals a payload checksum by construction.
const SEED_HEADER: u64 = 0x7a73_7061_7268_6472; // "zsparhdr"
pub(crate) const SEED_PAYLOAD: u64 = 0x7a73_7061_7270_6c64; // "zsparpld"

pub const FLAG_FINAL_GROUP: u8 = 1;
/// Version 1 only: this block is the trailer.
pub const FLAG_TRAILER: u8 = 2;
pub const FLAG_STREAM_HEADER: u8 = 4;

/// The index of the stream-header frame (no group holds 255 blocks with it: data + parity <= 255).
pub const STREAM_HEADER_INDEX: u8 = 255;

/// What every frame header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub version: u8,
    pub stream_id: u64,
    pub group: u64,
    /// 0..data are data blocks, data..data+parity parity blocks, 255 the stream header.
    pub index: u8,
    pub data: u8,
    pub parity: u8,
    pub flags: u8,
    /// Version 1: how many data blocks this group has (data for every group but maybe the final one, whose last
    /// data block is the trailer). Version 2: 0 (every group has `data` data blocks).
    pub group_blocks: u8,
    pub interleave: u16,
    pub block_size: u32,
    /// Length of every shard of this group: block_size, or another length in the final group.
    pub shard_len: u32,
    /// Version 1: length of the group's last real data block (block_size but at the very end of the stream); the
    /// final group's trailer comes after it. Version 2: 0.
    pub last_len: u32,
    /// Bytes of payload after this header.
    pub payload_len: u32,
    pub payload_sum: u64,
}

/// The stream a frame belongs to: its version and id. Two streams are told apart by both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    pub version: u8,
    pub id: u64,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x} (v{})", self.id, self.version)
    }
}

impl Frame {
    pub fn key(&self) -> StreamKey {
        StreamKey {
            version: self.version,
            id: self.stream_id,
        }
    }

    pub fn encode(&self) -> [u8; FRAME_HEADER] {
        let mut h = [0u8; FRAME_HEADER];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..16].copy_from_slice(&self.stream_id.to_be_bytes());
        h[16..24].copy_from_slice(&self.group.to_be_bytes());
        h[24] = self.index;
        h[25] = self.data;
        h[26] = self.parity;
        h[27] = self.flags;
        h[28] = self.group_blocks;
        h[29] = self.version;
        h[30..32].copy_from_slice(&self.interleave.to_be_bytes());
        h[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        h[36..40].copy_from_slice(&self.shard_len.to_be_bytes());
        h[40..44].copy_from_slice(&self.last_len.to_be_bytes());
        h[44..48].copy_from_slice(&self.payload_len.to_be_bytes());
        h[48..56].copy_from_slice(&self.payload_sum.to_be_bytes());
        let sum = xxh3_64_with_seed(&h[..56], SEED_HEADER);
        h[56..64].copy_from_slice(&sum.to_be_bytes());
        h
    }

    /// Parses a frame header of either version, or None when it is not one (wrong marker, checksum or version,
    /// or fields that disagree).
    pub fn decode(h: &[u8]) -> Option<Frame> {
        if h.len() < FRAME_HEADER || h[0..8] != MAGIC || !matches!(h[29], V1 | V2) {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        if u64_at(56) != xxh3_64_with_seed(&h[..56], SEED_HEADER) {
            return None;
        }
        let f = Frame {
            version: h[29],
            stream_id: u64_at(8),
            group: u64_at(16),
            index: h[24],
            data: h[25],
            parity: h[26],
            flags: h[27],
            group_blocks: h[28],
            interleave: u16::from_be_bytes([h[30], h[31]]),
            block_size: u32_at(32),
            shard_len: u32_at(36),
            last_len: u32_at(40),
            payload_len: u32_at(44),
            payload_sum: u64_at(48),
        };
        f.is_sane().then_some(f)
    }

    /// Fields that agree with each other. A header that passes its checksum but not this was written by a broken
    /// encoder or forged; either way it is not trusted.
    fn is_sane(&self) -> bool {
        let total = self.data as usize + self.parity as usize;
        let common = self.data >= 1
            && self.parity >= 1
            && total <= 255
            && self.interleave >= 1
            && (MIN_BLOCK..=MAX_BLOCK).contains(&self.block_size)
            && self.block_size % SHARD_ALIGN == 0;
        if !common {
            return false;
        }
        if self.version == V1 {
            let shape = self.shard_len <= self.block_size
                && self.shard_len > 0
                && self.group_blocks >= 1
                && self.group_blocks <= self.data
                && self.last_len <= self.block_size
                && self.payload_len <= self.block_size.max(STREAM_HEADER_LEN as u32);
            if self.index == STREAM_HEADER_INDEX {
                return shape
                    && self.flags == FLAG_STREAM_HEADER
                    && self.payload_len as usize == STREAM_HEADER_LEN;
            }
            return shape && (self.index as usize) < total && self.flags & FLAG_STREAM_HEADER == 0;
        }
        // Version 2: the reserved fields are zero, every group has data + parity frames of its shard length.
        if self.group_blocks != 0 || self.last_len != 0 {
            return false;
        }
        if self.index == STREAM_HEADER_INDEX {
            return self.flags == FLAG_STREAM_HEADER
                && self.group == 0
                && self.shard_len == self.block_size
                && self.payload_len as usize == STREAM_HEADER_LEN;
        }
        let shard = match self.flags {
            0 => self.shard_len == self.block_size,
            FLAG_FINAL_GROUP => {
                (1..=max_final_shard(self.block_size, self.data)).contains(&self.shard_len)
            }
            _ => false,
        };
        shard && (self.index as usize) < total && self.payload_len == self.shard_len
    }

    pub fn is_parity(&self) -> bool {
        self.index != STREAM_HEADER_INDEX && self.index >= self.data
    }

    pub fn is_final_group(&self) -> bool {
        self.flags & FLAG_FINAL_GROUP != 0
    }

    /// How many data blocks the group has: `data`, but in a version 1 final group those it holds (the trailer
    /// included); the others are known all-zero shards.
    pub fn data_frames(&self) -> u8 {
        match self.version {
            V1 => self.group_blocks,
            _ => self.data,
        }
    }

    /// Version 1: how many of the group's data blocks hold the stream's bytes (the final group's trailer is not
    /// one).
    pub fn real_blocks(&self) -> u8 {
        self.group_blocks - self.is_final_group() as u8
    }

    /// The payload length of block `index` of this frame's group (0 for blocks a version 1 final group does not
    /// have).
    pub fn block_len(&self, index: u8) -> u32 {
        if self.version != V1 || index >= self.data {
            return self.shard_len;
        }
        let real = self.real_blocks();
        if index < real {
            if index + 1 == real {
                self.last_len
            } else {
                self.block_size
            }
        } else if index == real && self.is_final_group() {
            TRAILER_LEN as u32
        } else {
            0
        }
    }
}

pub fn payload_sum(payload: &[u8]) -> u64 {
    xxh3_64_with_seed(payload, SEED_PAYLOAD)
}

pub const MIN_BLOCK: u32 = 64;
pub const MAX_BLOCK: u32 = 64 << 20;

/// The stream header frame's payload: what a person reading a hex dump should see first.
pub const STREAM_HEADER_LEN: usize = 32;
pub fn stream_header_payload(version: u8) -> [u8; STREAM_HEADER_LEN] {
    let mut p = [0u8; STREAM_HEADER_LEN];
    let text = format!("zstream-par v{version} parity stream\n");
    p[..text.len()].copy_from_slice(text.as_bytes());
    p
}

/// The trailer: the original's length and BLAKE3 digest (32 bytes). It is data of the final group, so parity
/// protects it like any data.
pub const TRAILER_LEN: usize = 40;

pub fn trailer_payload(total: u64, digest: &[u8; 32]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&total.to_be_bytes());
    t[8..].copy_from_slice(digest);
    t
}

pub fn parse_trailer(p: &[u8]) -> Option<(u64, [u8; 32])> {
    (p.len() == TRAILER_LEN).then(|| {
        (
            u64::from_be_bytes(p[..8].try_into().expect("8")),
            p[8..].try_into().expect("32"),
        )
    })
}

/// Full groups' shards are multiples of this (the SIMD kernels work on whole vectors); so were version 1's final
/// groups'.
pub const SHARD_ALIGN: u32 = 64;

/// Version 2: the shard length of a final group holding `rest` bytes of the original (0 <= rest < data x block
/// size) and the trailer: the rest and the trailer spread over `data` shards.
pub fn final_shard_len(rest: u64, data: u8) -> u64 {
    (rest + TRAILER_LEN as u64).div_ceil(data as u64)
}

/// The longest final-group shard a version 2 encoder writes: rest <= data x B - 1, so the rest and the trailer are
/// at most data x B + 39 bytes, B + ceil(39 / data) per shard.
pub fn max_final_shard(block_size: u32, data: u8) -> u32 {
    block_size + (TRAILER_LEN as u32 - 1).div_ceil(data as u32)
}

/// Masking goes in pieces of this many bytes (a multiple of 64, so each piece starts at mask byte 0).
const PIECE: usize = 16 << 10;

/// Version 2's mask: 64 bytes from the stream id, XORed over every data and parity payload so that nothing the
/// original holds (another parity stream's frames, for one) can be seen in the stream as a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mask(pub [u8; 64]);

impl Mask {
    pub const CONTEXT: &'static [u8] = b"zstream-par v2 mask";

    /// The first 64 bytes of BLAKE3's extended output over the context and the id (8 bytes, big-endian).
    pub fn new(stream_id: u64) -> Mask {
        let mut h = blake3::Hasher::new();
        h.update(Self::CONTEXT);
        h.update(&stream_id.to_be_bytes());
        let mut m = [0u8; 64];
        h.finalize_xof().fill(&mut m);
        Mask(m)
    }

    /// Masks a payload in place and returns the checksum of what it stores (the encoder's last step). In pieces of
    /// 16 KiB, each checksummed while it is still in the first-level cache: one pass over memory, not two.
    pub fn apply_and_sum(&self, payload: &mut [u8]) -> u64 {
        let mut sum = Xxh3::with_seed(SEED_PAYLOAD);
        for piece in payload.chunks_mut(PIECE) {
            self.apply(piece);
            sum.update(piece);
        }
        sum.digest()
    }

    /// Checksums a stored payload and takes the mask off in place (the decoder's first step), in the same single
    /// pass; returns the checksum, which the caller compares (and calls `apply` again on a payload that does not
    /// hold, to have its stored bytes back).
    pub fn sum_and_remove(&self, payload: &mut [u8]) -> u64 {
        let mut sum = Xxh3::with_seed(SEED_PAYLOAD);
        for piece in payload.chunks_mut(PIECE) {
            sum.update(piece);
            self.apply(piece);
        }
        sum.digest()
    }

    /// XORs the mask over `payload` (byte k with mask byte k mod 64); the same call takes it off again.
    pub fn apply(&self, payload: &mut [u8]) {
        let mut chunks = payload.chunks_exact_mut(64);
        for c in &mut chunks {
            // A fixed-size array: the compiler unrolls and vectorizes the XOR (a slice made it byte by byte).
            let c: &mut [u8; 64] = c.try_into().expect("64 bytes");
            for (b, m) in c.iter_mut().zip(&self.0) {
                *b ^= m;
            }
        }
        for (b, m) in chunks.into_remainder().iter_mut().zip(&self.0) {
            *b ^= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u8) -> Frame {
        Frame {
            version,
            stream_id: 0x1234,
            group: 7,
            index: 3,
            data: 10,
            parity: 2,
            flags: 0,
            group_blocks: if version == V1 { 10 } else { 0 },
            interleave: 1,
            block_size: 1 << 20,
            shard_len: 1 << 20,
            last_len: if version == V1 { 1 << 20 } else { 0 },
            payload_len: 1 << 20,
            payload_sum: 99,
        }
    }

    #[test]
    fn round_trips_and_rejects_any_flipped_bit() {
        for version in [V1, V2] {
            let f = sample(version);
            let h = f.encode();
            assert_eq!(Frame::decode(&h), Some(f));
            for byte in 0..FRAME_HEADER {
                for bit in 0..8 {
                    let mut d = h;
                    d[byte] ^= 1 << bit;
                    assert_eq!(
                        Frame::decode(&d),
                        None,
                        "v{version}: flip of bit {bit} in byte {byte} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn version_2_refuses_what_its_encoder_never_writes() {
        let ok = sample(V2);
        let bad = |change: &dyn Fn(&mut Frame)| {
            let mut f = ok;
            change(&mut f);
            Frame::decode(&f.encode()).is_none()
        };
        assert!(bad(&|f| f.group_blocks = 1), "reserved byte 28");
        assert!(bad(&|f| f.last_len = 1), "reserved bytes 40..44");
        assert!(bad(&|f| f.flags = FLAG_TRAILER), "the v1 trailer flag");
        assert!(bad(&|f| f.shard_len = 4096), "a full group's shards are B");
        assert!(bad(&|f| f.payload_len = 4096), "payload = L");
        // A final group's shards: 1 ..= B + ceil(39 / d).
        let fin = |l: u32| {
            let mut f = ok;
            f.flags = FLAG_FINAL_GROUP;
            f.shard_len = l;
            f.payload_len = l;
            Frame::decode(&f.encode()).is_some()
        };
        assert!(fin(1) && fin(5) && fin((1 << 20) + 4));
        assert!(!fin(0) && !fin((1 << 20) + 5));
        assert_eq!(max_final_shard(64, 1), 103);
    }

    #[test]
    fn the_mask_is_its_own_inverse_and_differs_by_stream() {
        let m = Mask::new(1);
        assert_ne!(m, Mask::new(2));
        let orig: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut b = orig.clone();
        m.apply(&mut b);
        assert_ne!(b, orig);
        assert_eq!(b[130], orig[130] ^ m.0[2]);
        m.apply(&mut b);
        assert_eq!(b, orig);
        // In one pass with the checksum, either way, over several pieces and a short last one.
        let orig: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let mut b = orig.clone();
        let sum = m.apply_and_sum(&mut b);
        assert_eq!(sum, payload_sum(&b));
        assert_eq!(m.sum_and_remove(&mut b), sum);
        assert_eq!(b, orig);
    }
}
