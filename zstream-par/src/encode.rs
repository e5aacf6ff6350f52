//! The encoder: reads the stream in groups of `data` blocks, computes `parity` blocks per group on all cores,
//! and writes every block as a frame; with interleaving, the blocks of `depth` groups are written in turn, so that
//! a burst of damage is spread over them. The last data block of the final group is the trailer (length and
//! BLAKE3 digest of the original), protected like any data.

use crate::codec::Codec;
use crate::format::{
    self, Frame, FLAG_FINAL_GROUP, FLAG_STREAM_HEADER, FLAG_TRAILER, SHARD_ALIGN,
    STREAM_HEADER_INDEX, TRAILER_LEN,
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
    /// Set on the final group: the original's length (by the reader) and its trailer block (by a worker).
    total: Option<u64>,
    trailer: Option<[u8; TRAILER_LEN]>,
    parity: Vec<Vec<u8>>,
    /// Padded shards of a final group (its blocks are shorter than block_size).
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
    let bs = p.block_size as usize;
    let group_bytes = bs * p.data as usize;
    let header = Frame {
        stream_id,
        group: 0,
        index: STREAM_HEADER_INDEX,
        data: p.data,
        parity: p.parity,
        flags: FLAG_STREAM_HEADER,
        group_blocks: 1,
        interleave: p.interleave,
        block_size: p.block_size,
        shard_len: p.block_size,
        last_len: 0,
        payload_len: format::STREAM_HEADER_LEN as u32,
        payload_sum: format::payload_sum(&format::stream_header_payload()),
    };
    write_out(output, &header.encode())?;
    write_out(output, &format::stream_header_payload())?;

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
                if g.len.div_ceil(bs) < p.data as usize {
                    // The stream ended in this group with room to spare: it is the final one and carries the
                    // trailer. (A stream that ends in a group's last block leaves that group full-shaped, with a
                    // short last block, and the next read, empty, makes a final group of just the trailer.)
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
                encode_group(&codec, p, g);
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

/// Parity and checksums of one group (on a worker thread).
fn encode_group(codec: &Codec, p: Params, g: &mut Group) {
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
        for par in g.parity.iter_mut() {
            par.clear();
            par.resize(g.shard_len, 0);
        }
        let data: Vec<&[u8]> = g.padded.iter().map(|s| s.as_slice()).collect();
        codec.encode(&data, &mut g.parity);
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

/// The byte ranges (in the group's buffer) of the real data blocks of a final group holding `len` bytes.
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
    let bs = p.block_size as usize;
    let total = p.data as usize + p.parity as usize;
    for index in 0..total {
        for g in &batch.groups {
            let final_group = g.trailer.is_some();
            let real = if final_group {
                g.len.div_ceil(bs)
            } else {
                p.data as usize
            };
            let group_blocks = if final_group { real + 1 } else { real };
            let payload: &[u8] = if index >= p.data as usize {
                &g.parity[index - p.data as usize]
            } else if index < real {
                &g.buf[index * bs..((index + 1) * bs).min(g.len)]
            } else if index == real && final_group {
                &g.padded[index][..TRAILER_LEN]
            } else {
                continue; // a block the final group does not have
            };
            let sum_index = if index >= p.data as usize {
                group_blocks + index - p.data as usize
            } else {
                index
            };
            let mut flags = if final_group { FLAG_FINAL_GROUP } else { 0 };
            if final_group && index == real {
                flags |= FLAG_TRAILER;
            }
            let last_len = if real > 0 { g.len - (real - 1) * bs } else { 0 };
            let f = Frame {
                stream_id,
                group: g.number,
                index: index as u8,
                data: p.data,
                parity: p.parity,
                flags,
                group_blocks: group_blocks as u8,
                interleave: p.interleave,
                block_size: p.block_size,
                shard_len: g.shard_len as u32,
                last_len: last_len as u32,
                payload_len: payload.len() as u32,
                payload_sum: g.sums[sum_index],
            };
            write_out(out, &f.encode())?;
            write_out(out, payload)?;
        }
    }
    Ok(())
}
