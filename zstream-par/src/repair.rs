//! Rebuilding a group's lost data blocks from its parity, on a worker thread.

use crate::assemble::Group;
use crate::codec::Codec;

/// Rebuilds the group's missing data blocks from parity when enough blocks survived (on a worker thread).
pub(crate) fn repair(codec: &Codec, g: &mut Group) -> anyhow::Result<()> {
    let f = g.shape.expect("checked by the caller");
    let (n, total) = (f.data as usize, f.data as usize + f.parity as usize);
    let blocks = f.group_blocks as usize;
    let missing: Vec<u8> = (0..blocks)
        .filter(|&i| g.shards[i].is_none())
        .map(|i| i as u8)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Blocks a final group does not have (between its trailer and the parity) are known zeros: present.
    let present = |i: usize| (blocks..n).contains(&i) || g.shards[i].is_some();
    let have: Vec<bool> = (0..total).map(present).collect();
    if have.iter().filter(|&&h| h).count() < n {
        g.lost = missing;
        return Ok(());
    }
    // Shards are as long as the group's parity; shorter blocks (a last block, the trailer) were padded with zeros.
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
    Ok(())
}
