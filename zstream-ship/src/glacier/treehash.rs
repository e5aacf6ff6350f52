//! Glacier's SHA-256 tree hash: SHA-256 of each 1 MiB of the data, then the digests hashed in pairs, level by
//! level, an odd one out carried up unchanged, until one is left. Parts of an upload are power-of-two MiB and
//! aligned, so each part's tree hash is a node of the archive's tree and the archive's is the same reduction
//! over the parts' hashes: the whole archive never needs to be held or hashed twice.

use sha2::{Digest, Sha256};

pub const MIB: usize = 1 << 20;

/// The tree hash of `data`.
pub fn of(data: &[u8]) -> [u8; 32] {
    if data.is_empty() {
        return Sha256::digest(b"").into();
    }
    let leaves: Vec<[u8; 32]> = data.chunks(MIB).map(|c| Sha256::digest(c).into()).collect();
    reduce(&leaves)
}

/// Combines tree hashes of consecutive aligned power-of-two MiB pieces (leaves, or whole parts) into one.
pub fn reduce(nodes: &[[u8; 32]]) -> [u8; 32] {
    if nodes.is_empty() {
        return Sha256::digest(b"").into();
    }
    let mut level = nodes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [a, b] => {
                    let mut h = Sha256::new();
                    h.update(a);
                    h.update(b);
                    h.finalize().into()
                }
                [a] => *a,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    level[0]
}

/// Builds a tree hash from a stream of any-sized writes, holding one leaf digest per MiB.
#[derive(Default)]
pub struct Hasher {
    leaf: Sha256,
    in_leaf: usize,
    leaves: Vec<[u8; 32]>,
    any: bool,
}

impl Hasher {
    pub fn update(&mut self, mut data: &[u8]) {
        self.any |= !data.is_empty();
        while !data.is_empty() {
            let take = (MIB - self.in_leaf).min(data.len());
            self.leaf.update(&data[..take]);
            self.in_leaf += take;
            data = &data[take..];
            if self.in_leaf == MIB {
                self.leaves
                    .push(std::mem::take(&mut self.leaf).finalize().into());
                self.in_leaf = 0;
            }
        }
    }

    pub fn finish(mut self) -> [u8; 32] {
        if self.in_leaf > 0 || !self.any {
            self.leaves.push(self.leaf.finalize().into());
        }
        reduce(&self.leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31 + 7) % 251) as u8).collect()
    }

    #[test]
    fn tree_hashes_match_botocore() {
        // moto checks no tree hashes, so they are pinned to botocore.utils.calculate_tree_hash over the same bytes.
        for (n, want) in [
            (
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                1,
                "ca358758f6d27e6cf45272937977a748fd88391db679ceda7dc7bf1f005ee879",
            ),
            (
                MIB,
                "1c59b8670027384143781a8a8bff2f3b44bd8818d0f53b13b064c2375a1afe38",
            ),
            (
                MIB + 1,
                "bdbb3466665ed8cbe8fc26d6cd3ee2d7c88f427bef2982246317b76917649519",
            ),
            (
                3 * MIB,
                "81a3077073609f2b1b874527a1643f699ea522b188a05975fbf0a07009ddd50e",
            ),
            (
                5 * MIB + 7,
                "ded82c2c79b481f870c303c539699ec74ae628eea29a7cc08a4575780227df96",
            ),
        ] {
            let data = gen(n);
            assert_eq!(hex::encode(of(&data)), want, "{n} bytes");
            let mut h = Hasher::default();
            for c in data.chunks(333_333) {
                h.update(c);
            }
            assert_eq!(hex::encode(h.finish()), want, "{n} bytes, streamed");
        }
    }

    #[test]
    fn parts_combine_into_the_archive_hash() {
        let data = gen(5 * MIB + 7);
        for part in [MIB, 2 * MIB, 4 * MIB] {
            let parts: Vec<[u8; 32]> = data.chunks(part).map(of).collect();
            assert_eq!(reduce(&parts), of(&data), "parts of {part}");
        }
    }
}
