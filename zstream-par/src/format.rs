//! The frame: every block of the stream (data, parity, the stream header and the trailer) travels behind a 64-byte
//! header that says where it belongs and carries checksums of itself and of the block. Any surviving frame tells
//! the decoder the stream's parameters and its group's shape, so losing any other frame costs only that block.
//! Layout in docs/formats/par-v1.md.

use xxhash_rust::xxh3::xxh3_64_with_seed;

pub const FRAME_HEADER: usize = 64;
/// Frame sync marker; begins with a non-ASCII byte and carries CR LF, like PNG's, so text mangling shows.
pub const MAGIC: [u8; 8] = *b"\x8fZSPAR\r\n";
pub const VERSION: u8 = 1;
/// Seeds of the two checksums, so that a frame header's checksum never equals a payload checksum by construction.
const SEED_HEADER: u64 = 0x7a73_7061_7268_6472; // "zsparhdr"
const SEED_PAYLOAD: u64 = 0x7a73_7061_7270_6c64; // "zsparpld"

pub const FLAG_FINAL_GROUP: u8 = 1;
pub const FLAG_TRAILER: u8 = 2;
pub const FLAG_STREAM_HEADER: u8 = 4;

/// The index of the stream-header frame (no group holds 255 blocks with it: data + parity <= 255).
pub const STREAM_HEADER_INDEX: u8 = 255;

/// What every frame header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub stream_id: u64,
    pub group: u64,
    /// 0..data are data blocks, data..data+parity parity blocks, 255 the stream header.
    pub index: u8,
    pub data: u8,
    pub parity: u8,
    pub flags: u8,
    /// How many data blocks this group has (data for every group but maybe the final one, whose last data block
    /// is the trailer).
    pub group_blocks: u8,
    pub interleave: u16,
    pub block_size: u32,
    /// Length of every shard of this group: block_size, or less in a final group of short blocks.
    pub shard_len: u32,
    /// Length of the group's last real data block (block_size but at the very end of the stream); the final
    /// group's trailer comes after it.
    pub last_len: u32,
    /// Bytes of payload after this header.
    pub payload_len: u32,
    pub payload_sum: u64,
}

impl Frame {
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
        h[29] = VERSION;
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

    /// Parses a frame header, or None when it is not one (wrong magic, checksum, version or impossible fields).
    pub fn decode(h: &[u8]) -> Option<Frame> {
        if h.len() < FRAME_HEADER || h[0..8] != MAGIC || h[29] != VERSION {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        if u64_at(56) != xxh3_64_with_seed(&h[..56], SEED_HEADER) {
            return None;
        }
        let f = Frame {
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
        let shape = self.data >= 1
            && self.parity >= 1
            && total <= 255
            && self.interleave >= 1
            && (MIN_BLOCK..=MAX_BLOCK).contains(&self.block_size)
            && self.block_size % SHARD_ALIGN == 0
            && self.shard_len <= self.block_size
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
        shape && (self.index as usize) < total && self.flags & FLAG_STREAM_HEADER == 0
    }

    pub fn is_parity(&self) -> bool {
        self.index != STREAM_HEADER_INDEX && self.index >= self.data
    }

    pub fn is_final_group(&self) -> bool {
        self.flags & FLAG_FINAL_GROUP != 0
    }

    /// How many of the group's data blocks hold the stream's bytes (the final group's trailer is not one).
    pub fn real_blocks(&self) -> u8 {
        self.group_blocks - self.is_final_group() as u8
    }

    /// The payload length of block `index` of this frame's group (0 for blocks a final group does not have).
    pub fn block_len(&self, index: u8) -> u32 {
        let real = self.real_blocks();
        if index >= self.data {
            self.shard_len
        } else if index < real {
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
pub fn stream_header_payload() -> [u8; STREAM_HEADER_LEN] {
    let mut p = [0u8; STREAM_HEADER_LEN];
    let text = b"zstream-par v1 parity stream\n";
    p[..text.len()].copy_from_slice(text);
    p
}

/// The trailer block's payload: the original's length and BLAKE3 digest (32 bytes). It is the last data block of
/// the final group, so parity protects it like any data.
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

/// Shards of a final group of short blocks are rounded up to this, which keeps the SIMD kernels on whole vectors.
pub const SHARD_ALIGN: u32 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Frame {
        Frame {
            stream_id: 0x1234,
            group: 7,
            index: 3,
            data: 10,
            parity: 2,
            flags: 0,
            group_blocks: 10,
            interleave: 1,
            block_size: 1 << 20,
            shard_len: 1 << 20,
            last_len: 1 << 20,
            payload_len: 1 << 20,
            payload_sum: 99,
        }
    }

    #[test]
    fn round_trips_and_rejects_any_flipped_bit() {
        let f = sample();
        let h = f.encode();
        assert_eq!(Frame::decode(&h), Some(f));
        for byte in 0..FRAME_HEADER {
            for bit in 0..8 {
                let mut d = h;
                d[byte] ^= 1 << bit;
                assert_eq!(
                    Frame::decode(&d),
                    None,
                    "flip of bit {bit} in byte {byte} accepted"
                );
            }
        }
    }
}
