//! Rebuilding a group's lost data blocks from its parity, on a worker thread (the scanner took version 2's mask
//! off every payload it took), then reading the group's original bytes and trailer from its shards.

use crate::assemble::Group;
use crate::codec::Codec;
use crate::content;
use crate::format::{self, TRAILER_LEN, V2};

/// Rebuilds the group's missing data blocks from parity when enough blocks survived, then reads its content (on a
/// worker thread).
pub(crate) fn repair(codec: &Codec, g: &mut Group) -> anyhow::Result<()> {
    let f = g.shape.expect("checked by the caller");
    let (n, total) = (f.data as usize, f.data as usize + f.parity as usize);
    let blocks = f.data_frames() as usize;
    let missing: Vec<u8> = (0..blocks)
        .filter(|&i| g.shards[i].is_none())
        .map(|i| i as u8)
        .collect();
    if missing.is_empty() {
        return content::read(&f, g);
    }
    // Blocks a version 1 final group does not have (between its trailer and the parity) are known zeros: present.
    let present = |i: usize| (blocks..n).contains(&i) || g.shards[i].is_some();
    let have: Vec<bool> = (0..total).map(present).collect();
    if have.iter().filter(|&&h| h).count() < n {
        g.lost = missing;
        if f.version == V2 && f.is_final_group() {
            g.trailer = surviving_trailer(&f, g);
        }
        return Ok(());
    }
    // Shards are as long as the group's parity; shorter blocks (version 1's last block, its trailer) were padded
    // with zeros.
    let mut bufs: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let mut b = g.shards[i].take().unwrap_or_default();
            b.resize(f.shard_len as usize, 0);
            b
        })
        .collect();
    let mut marked: Vec<(&mut [u8], bool)> = bufs
        .iter_mut()
        .zip(&have)
        .map(|(b, &h)| (b.as_mut_slice(), h))
        .collect();
    codec.reconstruct(&mut marked)?;
    for (i, b) in bufs.into_iter().enumerate() {
        g.shards[i] = Some(b);
    }
    g.repaired = missing;
    content::read(&f, g)
}

/// A version 2 final group that cannot be repaired: its trailer, if the shards holding it survived (it tells
/// where the original ends, for the message naming what is lost).
fn surviving_trailer(f: &format::Frame, g: &Group) -> Option<(u64, [u8; 32])> {
    let l = f.shard_len as u64;
    let content = f.data as u64 * l;
    let t: Option<Vec<u8>> = (content - TRAILER_LEN as u64..content)
        .map(|k| {
            g.shards[(k / l) as usize]
                .as_ref()
                .map(|s| s[(k % l) as usize])
        })
        .collect();
    format::parse_trailer(&t?)
}
