//! What of a group's shards is the original, once they are all there: version 1 stores each data block unpadded
//! and the final group's trailer as a block of its own; version 2 fills every shard, and its final group holds the
//! rest of the original, zeros and the trailer (the last 40 bytes), spread over its shards. Also which original
//! bytes a group that cannot be repaired has lost.

use crate::assemble::Group;
use crate::format::{self, Frame, TRAILER_LEN, V1};
use zstream_common::integrity;

/// Sets the group's pieces (and the final group's trailer) from its shards, all present or rebuilt; refuses a
/// final group whose trailer its shape cannot hold.
pub(crate) fn read(f: &Frame, g: &mut Group) -> anyhow::Result<()> {
    g.pieces.clear();
    if f.version == V1 {
        g.pieces
            .extend((0..f.real_blocks()).map(|i| (i, f.block_len(i))));
        if f.is_final_group() {
            g.trailer = format::parse_trailer(&shard(g, f.real_blocks() as usize)[..TRAILER_LEN]);
        }
        return Ok(());
    }
    let l = f.shard_len as u64;
    if !f.is_final_group() {
        g.pieces.extend((0..f.data).map(|i| (i, f.shard_len)));
        return Ok(());
    }
    let content = f.data as u64 * l;
    let bytes = |g: &Group, from: u64, to: u64| -> Vec<u8> {
        (from..to)
            .map(|k| shard(g, (k / l) as usize)[(k % l) as usize])
            .collect()
    };
    let trailer = bytes(g, content - TRAILER_LEN as u64, content);
    let (total, digest) = format::parse_trailer(&trailer).expect("40 bytes");
    let rest = group_start(f, g.number).and_then(|start| total.checked_sub(start));
    let fits = rest
        .filter(|&r| r + TRAILER_LEN as u64 <= content && format::final_shard_len(r, f.data) == l);
    let Some(rest) = fits else {
        return Err(integrity(format!(
            "the trailer says the original is {total} bytes, which final group {} ({} shards of {l} bytes) cannot hold",
            g.number, f.data
        )));
    };
    if (rest..content - TRAILER_LEN as u64)
        .any(|k| shard(g, (k / l) as usize)[(k % l) as usize] != 0)
    {
        return Err(integrity(format!(
            "final group {} holds other bytes than zeros between the original's end and its trailer",
            g.number
        )));
    }
    for i in 0..f.data {
        let len = rest.saturating_sub(i as u64 * l).min(l);
        if len > 0 {
            g.pieces.push((i, len as u32));
        }
    }
    g.trailer = Some((total, digest));
    Ok(())
}

fn shard(g: &Group, i: usize) -> &[u8] {
    g.shards[i].as_deref().expect("present or rebuilt")
}

/// Where group `g` begins in the original: every group before it is full (data x block size bytes).
pub(crate) fn group_start(f: &Frame, g: u64) -> Option<u64> {
    g.checked_mul(f.data as u64 * f.block_size as u64)
}

/// The original byte ranges a group that cannot be repaired has lost (`u64::MAX` as an end: to the original's
/// end, which only the lost trailer could tell). Empty when it lost only its trailer.
pub(crate) fn lost_ranges(f: &Frame, g: &Group) -> Vec<(u64, u64)> {
    let start = group_start(f, g.number).unwrap_or(u64::MAX);
    let at = |k: u64| start.saturating_add(k);
    if f.version == V1 {
        return g
            .lost
            .iter()
            .filter(|&&i| i < f.real_blocks())
            .map(|&i| {
                let from = at(i as u64 * f.block_size as u64);
                (from, from.saturating_add(f.block_len(i) as u64))
            })
            .collect();
    }
    let l = f.shard_len as u64;
    if !f.is_final_group() {
        return g
            .lost
            .iter()
            .map(|&i| (at(i as u64 * l), at((i as u64 + 1) * l)))
            .collect();
    }
    // The rest of the original ends between content - 40 - (data - 1) (the most zeros an encoder puts before the
    // trailer) and content - 40; the trailer, when it survived, says where.
    let content = f.data as u64 * l;
    let most = content - TRAILER_LEN as u64;
    let known = g
        .trailer
        .and_then(|(total, _)| total.checked_sub(start))
        .filter(|&r| r <= most);
    let least = known.unwrap_or(most.saturating_sub(f.data as u64 - 1));
    let most = known.unwrap_or(most);
    g.lost
        .iter()
        .filter(|&&i| (i as u64 * l) < most)
        .map(|&i| {
            let (from, to) = (i as u64 * l, (i as u64 + 1) * l);
            if to <= least {
                (at(from), at(to))
            } else if known.is_some() {
                (at(from), at(to.min(most)))
            } else {
                (at(from), u64::MAX)
            }
        })
        .collect()
}
