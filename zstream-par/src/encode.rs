//! The encoder: reads the stream in groups of `data` blocks, computes `parity` blocks per group on all cores,
//! and writes every block as a frame; with interleaving, the blocks of `depth` groups are written in turn, so that
//! a burst of damage is spread over them. The final group carries the trailer (length and BLAKE3 digest of the
//! original), protected like any data. Version 2 (the default) spreads the final group's bytes over all its
//! shards, so its parity is sized to them, and masks every payload; version 1 is kept for its vectors and testkit.

use crate::codec::Codec;
use crate::format::{
    self, Frame, Mask, FLAG_FINAL_GROUP, FLAG_STREAM_HEADER, FLAG_TRAILER, SHARD_ALIGN,
    STREAM_HEADER_INDEX, TRAILER_LEN, V1, V2,
};
use std::io::{Read, Write};
use zstream_common::ordered::{self, Chunk};
use zstream_common::pipe::{in_error, read_full, write_out};

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub data: u8,
    pub parity: u8,
    pub block_size: u32,
    pub interleave: u16,
    /// The format version to write: format::VERSION, or 1 for the vectors and testkit of version 1.
    pub version: u8,
}

impl Params {
    pub fn check(&self) -> Result<(), String> {
        if self.data == 0 || self.parity == 0 || self.data as usize + self.parity as usize > 255 {
            return Err("--data and --parity must be at least 1 and at most 255 together".into());
        }
        if !(format::MIN_BLOCK..=format::MAX_BLOCK).contains(&self.block_size)
            || self.block_size % SHARD_ALIGN != 0
        {
            return Err(format!(
                "--block-size must be a multiple of {SHARD_ALIGN} from {} to {} bytes",
                format::MIN_BLOCK,
                format::MAX_BLOCK
            ));
        }
        if self.interleave == 0 {
            return Err("--interleave must be at least 1".into());
        }
        if !matches!(self.version, V1 | V2) {
            return Err(format!("no format version {}", self.version));
        }
        Ok(())
    }
}

/// One group as it passes through the encoder.
#[derive(Default)]
pub struct Group {
    number: u64,
    /// data x block_size bytes as read; only the first `len` are the stream's.
    buf: Vec<u8>,
    len: usize,
    /// Set on the final group: the original's length (by the reader) and its trailer (by a worker).
    total: Option<u64>,
    trailer: Option<[u8; TRAILER_LEN]>,
    parity: Vec<Vec<u8>>,
    /// The data shards of a final group (its blocks are not block_size long).
    padded: Vec<Vec<u8>>,
    shard_len: usize,
    sums: Vec<u64>,
}

/// `interleave` groups travel together, so that their blocks can be written in turn.
#[derive(Default)]
pub struct Batch {
    groups: Vec<Group>,
}

/// Encodes `input` to `output`; returns the number of original bytes.
pub fn encode<R: Read, W: Write + Send>(
    mut input: R,
    output: &mut W,
    p: Params,
    threads: usize,
    stream_id: u64,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<u64> {
    p.check().map_err(zstream_common::usage)?;
    let codec = Codec::new(p.data, p.parity)?;
    let mask = (p.version == V2).then(|| Mask::new(stream_id));
    let bs = p.block_size as usize;
    let group_bytes = bs * p.data as usize;
    let header = Frame {
        version: p.version,
        stream_id,
        group: 0,
        index: STREAM_HEADER_INDEX,
        data: p.data,
        parity: p.parity,
        flags: FLAG_STREAM_HEADER,
        group_blocks: (p.version == V1) as u8,
        interleave: p.interleave,
        block_size: p.block_size,
        shard_len: p.block_size,
        last_len: 0,
        payload_len: format::STREAM_HEADER_LEN as u32,
        payload_sum: format::payload_sum(&format::stream_header_payload(p.version)),
    };
    write_out(output, &header.encode())?;
    write_out(output, &format::stream_header_payload(p.version))?;

    // The original's digest for the trailer, on the workers in stream order (reading stays a plain copy). It is
    // the one serial step here: BLAKE3 keeps it several times faster than a core's SHA-256 (examples/kernels.rs).
    let digest = ordered::InOrder::new(blake3::Hasher::new());
    let mut total = 0u64;
    let mut next_group = 0u64;
    let mut ended = false;
    ordered::map_in_order(
        threads,
        &digest,
        |mut batch: Batch, index| {
            if ended {
                return Ok(None);
            }
            // Reuse the recycled batch's groups (and their buffers) for the new ones.
            let mut spare = std::mem::take(&mut batch.groups);
            for _ in 0..p.interleave {
                let mut g = spare.pop().unwrap_or_default();
                g.buf.resize(group_bytes, 0);
                g.len = read_full(&mut input, &mut g.buf).map_err(in_error)?;
                total += g.len as u64;
                g.number = next_group;
                g.total = None;
                g.trailer = None;
                next_group += 1;
                // The stream ended in this group: it is the final one and carries the trailer. Version 2: when
                // fewer than data x block_size bytes came. Version 1: when fewer than `data` blocks did (a
                // stream that ends in a group's last block leaves that group full-shaped, with a short last
                // block, and the next read, empty, makes a final group of just the trailer).
                let last = match p.version {
                    V1 => g.len.div_ceil(bs) < p.data as usize,
                    _ => g.len < group_bytes,
                };
                if last {
                    g.total = Some(total);
                    ended = true;
                }
                batch.groups.push(g);
                if ended {
                    break;
                }
            }
            Ok(Some(Chunk {
                index,
                data: batch,
                last: ended,
            }))
        },
        |c, turn| {
            turn.with(|h| {
                for g in &mut c.data.groups {
                    h.update(&g.buf[..g.len]);
                    if let Some(total) = g.total {
                        g.trailer = Some(format::trailer_payload(total, h.finalize().as_bytes()));
                    }
                }
            });
            for g in &mut c.data.groups {
                match mask {
                    Some(m) => encode_group_v2(&codec, p, &m, g),
                    None => encode_group_v1(&codec, p, g),
                }
            }
            Ok(())
        },
        |c| {
            write_batch(output, p, stream_id, &c.data)?;
            progress(c.data.groups.iter().map(|g| g.len as u64).sum());
            Ok(())
        },
    )?;
    Ok(total)
}

/// Version 2: parity of one group over its unmasked shards, then every payload masked and checksummed (on a worker
/// thread). A final group's shards hold the rest of the original, zeros, and the trailer at the very end, spread
/// over all `data` shards: the shard length, and so the parity, follows the bytes the group holds.
fn encode_group_v2(codec: &Codec, p: Params, mask: &Mask, g: &mut Group) {
    let n = p.data as usize;
    g.parity.resize_with(p.parity as usize, Vec::new);
    g.sums.clear();
    if let Some(trailer) = g.trailer {
        g.shard_len = format::final_shard_len(g.len as u64, p.data) as usize;
        let l = g.shard_len;
        g.padded.resize_with(n, Vec::new);
        let content = n * l;
        for (i, shard) in g.padded.iter_mut().enumerate() {
            shard.clear();
            shard.resize(l, 0);
            // Content byte k: the original's rest below len, the trailer in the last 40 bytes, zeros between.
            let (from, to) = (i * l, (i + 1) * l);
            let rest = from.min(g.len)..to.min(g.len);
            shard[..rest.len()].copy_from_slice(&g.buf[rest]);
            let t = content - TRAILER_LEN;
            if to > t {
                let a = from.max(t);
                shard[a - from..].copy_from_slice(&trailer[a - t..to - t]);
            }
        }
        parity_of(codec, &g.padded, &mut g.parity, l);
        for s in g.padded.iter_mut() {
            g.sums.push(mask.apply_and_sum(s));
        }
    } else {
        let bs = p.block_size as usize;
        g.shard_len = bs;
        let data: Vec<&[u8]> = g.buf.chunks(bs).collect();
        for par in g.parity.iter_mut() {
            par.resize(bs, 0);
        }
        codec.encode(&data, &mut g.parity);
        for block in g.buf.chunks_mut(bs) {
            g.sums.push(mask.apply_and_sum(block));
        }
    }
    for par in g.parity.iter_mut() {
        g.sums.push(mask.apply_and_sum(par));
    }
}

/// Parity blocks of `len` bytes over `shards`.
fn parity_of(codec: &Codec, shards: &[Vec<u8>], parity: &mut [Vec<u8>], len: usize) {
    for par in parity.iter_mut() {
        par.clear();
        par.resize(len, 0);
    }
    let data: Vec<&[u8]> = shards.iter().map(|s| s.as_slice()).collect();
    codec.encode(&data, parity);
}

/// Version 1: parity and checksums of one group (on a worker thread).
fn encode_group_v1(codec: &Codec, p: Params, g: &mut Group) {
    let bs = p.block_size as usize;
    let n = p.data as usize;
    g.parity.resize_with(p.parity as usize, Vec::new);
    g.sums.clear();
    if let Some(trailer) = g.trailer {
        // Final group: real blocks (the last maybe short), then the trailer; shards padded with zeros to a common
        // length rounded up to SHARD_ALIGN, and blocks after the trailer are all-zero shards.
        let blocks = blocks_of_final(g.len, bs);
        let longest = blocks
            .iter()
            .map(|r| r.len())
            .max()
            .unwrap_or(0)
            .max(TRAILER_LEN);
        g.shard_len = (longest.div_ceil(SHARD_ALIGN as usize) * SHARD_ALIGN as usize).min(bs);
        g.padded.resize_with(n, Vec::new);
        for (i, shard) in g.padded.iter_mut().enumerate() {
            shard.clear();
            shard.resize(g.shard_len, 0);
            if let Some(r) = blocks.get(i) {
                shard[..r.len()].copy_from_slice(&g.buf[r.clone()]);
                g.sums.push(format::payload_sum(&g.buf[r.clone()]));
            } else if i == blocks.len() {
                shard[..TRAILER_LEN].copy_from_slice(&trailer);
                g.sums.push(format::payload_sum(&trailer));
            }
        }
        parity_of(codec, &g.padded, &mut g.parity, g.shard_len);
    } else {
        g.shard_len = bs;
        // A short last block is padded with zeros (the buffer is recycled, so clear what an earlier group left).
        let len = g.len;
        g.buf[len..].fill(0);
        for par in g.parity.iter_mut() {
            par.resize(bs, 0);
        }
        let data: Vec<&[u8]> = g.buf.chunks(bs).collect();
        g.sums
            .extend((0..n).map(|i| format::payload_sum(&g.buf[i * bs..((i + 1) * bs).min(len)])));
        codec.encode(&data, &mut g.parity);
    }
    g.sums
        .extend(g.parity.iter().map(|s| format::payload_sum(s)));
}

/// The byte ranges (in the group's buffer) of the real data blocks of a version 1 final group holding `len` bytes.
fn blocks_of_final(len: usize, bs: usize) -> Vec<std::ops::Range<usize>> {
    (0..len.div_ceil(bs))
        .map(|i| i * bs..((i + 1) * bs).min(len))
        .collect()
}

/// Writes the frames of a batch: block 0 of each group, then block 1 of each, and so on.
fn write_batch<W: Write>(
    out: &mut W,
    p: Params,
    stream_id: u64,
    batch: &Batch,
) -> anyhow::Result<()> {
    let total = p.data as usize + p.parity as usize;
    for index in 0..total {
        for g in &batch.groups {
            let Some((f, payload)) = frame_of(p, stream_id, g, index) else {
                continue; // a block a version 1 final group does not have
            };
            write_out(out, &f.encode())?;
            write_out(out, payload)?;
        }
    }
    Ok(())
}

/// The header and payload of block `index` of group `g`, if the group has that block.
fn frame_of(p: Params, stream_id: u64, g: &Group, index: usize) -> Option<(Frame, &[u8])> {
    let bs = p.block_size as usize;
    let d = p.data as usize;
    let final_group = g.trailer.is_some();
    let mut flags = if final_group { FLAG_FINAL_GROUP } else { 0 };
    // Version 1 says the group's shape in every header: its data blocks (the trailer included) and the length of
    // its last real one; its final group has only those, and a sum for each.
    let real = if final_group { g.len.div_ceil(bs) } else { d };
    let (group_blocks, last_len, sum) = match p.version {
        V1 => {
            let blocks = real + final_group as usize;
            let last = if real > 0 { g.len - (real - 1) * bs } else { 0 };
            let sum = if index >= d {
                blocks + index - d
            } else {
                index
            };
            (blocks as u8, last as u32, sum)
        }
        _ => (0, 0, index),
    };
    let payload: &[u8] = if index >= d {
        &g.parity[index - d]
    } else if p.version == V2 && final_group {
        &g.padded[index]
    } else if p.version == V2 || index < real {
        &g.buf[index * bs..((index + 1) * bs).min(g.len.max(index * bs))]
    } else if final_group && index == real {
        flags |= FLAG_TRAILER;
        &g.padded[index][..TRAILER_LEN]
    } else {
        return None;
    };
    let f = Frame {
        version: p.version,
        stream_id,
        group: g.number,
        index: index as u8,
        data: p.data,
        parity: p.parity,
        flags,
        group_blocks,
        interleave: p.interleave,
        block_size: p.block_size,
        shard_len: g.shard_len as u32,
        last_len,
        payload_len: payload.len() as u32,
        payload_sum: g.sums[sum],
    };
    Some((f, payload))
}
