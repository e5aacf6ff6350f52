//! How an S3 object is cut into parts, and the checksums S3 keeps of them. Pure functions, pinned by unit tests
//! (moto, the test server, checks no checksums, so their encoding is tested here against known values).

use aws_smithy_checksums::ChecksumAlgorithm;
use aws_smithy_types::base64;
use sha2::{Digest, Sha256};

/// S3's least part size (except the last part).
pub const MIN_PART: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_PART: u64 = 5 << 30;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// The largest object S3 stores: 5 TiB.
pub const MAX_OBJECT: u64 = 5 << 40;
/// Without a size hint, parts keep one size for this many parts, then double.
const STEP: u64 = 1000;
/// With a size hint, the hinted stream fits in this many parts of one size; the rest double, for a low hint.
const HINTED: u64 = 9000;

/// How an upload cuts its stream: parts of `first` bytes, doubling every `step` parts, at most 5 GiB. Both go
/// into the object's metadata so a reader finds the part boundaries (and so each part's checksum) again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub first: u64,
    pub step: u64,
}

impl Schedule {
    /// Without a hint: `wanted`-byte parts doubling every 1,000, so 10,000 parts reach S3's 5 TiB from 16 MiB
    /// and memory grows only with the stream (16 MiB parts up to 16 GB, 32 MiB up to 48 GB, ...). With a hint
    /// (e.g. `zfs send -nP`): one size for the first 9,000 parts, just large enough for the hinted stream, so
    /// a 500 GiB stream moves in 57 MiB parts instead of growing to 512 MiB ones.
    pub fn new(wanted: u64, size_hint: Option<u64>) -> Schedule {
        match size_hint {
            None => Schedule {
                first: wanted.clamp(MIN_PART, MAX_PART),
                step: STEP,
            },
            Some(hint) => Schedule {
                first: wanted
                    .max(hint.div_ceil(HINTED).next_multiple_of(1 << 20))
                    .clamp(MIN_PART, MAX_PART),
                step: HINTED,
            },
        }
    }

    /// The size of part `n` (from 1).
    pub fn size(&self, n: u64) -> u64 {
        (self.first << ((n - 1) / self.step.max(1)).min(20)).min(MAX_PART)
    }

    /// How many bytes 10,000 parts hold.
    pub fn capacity(&self) -> u64 {
        (1..=MAX_PARTS).map(|n| self.size(n)).sum()
    }

    /// The byte ranges (start, length) of the parts of a `total`-byte object.
    pub fn layout(&self, total: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut n = 1;
        while at < total {
            let len = self.size(n).min(total - at);
            out.push((at, len));
            at += len;
            n += 1;
        }
        out
    }
}

/// Base64 of a SHA-256 digest, as S3's x-amz-checksum-sha256 carries it.
pub fn b64(digest: &[u8]) -> String {
    base64::encode(digest)
}

/// The x-amz-checksum-sha256 of one part (or of a single-part object).
pub fn sha256_b64(data: &[u8]) -> String {
    b64(&Sha256::digest(data))
}

/// A multipart object's composite checksum (S3's COMPOSITE type): the algorithm over its parts' raw checksums one
/// after the other, base64, "-" the part count. zstream-ship's own objects: SHA-256 of the parts' SHA-256s.
pub fn composite(algorithm: ChecksumAlgorithm, part_digests: &[impl AsRef<[u8]>]) -> String {
    let mut h = algorithm.into_impl();
    for d in part_digests {
        h.update(d.as_ref());
    }
    format!("{}-{}", b64(&h.finalize()), part_digests.len())
}

/// Whether a stored checksum matches ours. Services differ in whether a composite carries its "-N" suffix; when
/// it does, the part count must match too.
pub fn same_checksum(stored: &str, ours: &str) -> bool {
    let (s, sn) = stored.split_once('-').unwrap_or((stored, ""));
    let (o, on) = ours.split_once('-').unwrap_or((ours, ""));
    s == o && (sn.is_empty() || sn == on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_checksums_match_known_values() {
        // SHA-256("") and SHA-256("abc") as S3 documents its x-amz-checksum-sha256 (base64 of the raw digest).
        assert_eq!(
            sha256_b64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            sha256_b64(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn composite_checksums_hash_the_part_digests() {
        // Two parts "abc" and "": SHA-256 over the 64 bytes of their two digests (computed independently with
        // `printf abc | sha256sum`, `printf '' | sha256sum`, `xxd -r -p | sha256sum | xxd -r -p | base64`).
        let parts = [Sha256::digest(b"abc"), Sha256::digest(b"")];
        let composite = |p: &[_]| composite(ChecksumAlgorithm::Sha256, p);
        assert_eq!(
            composite(&parts),
            "bxKQiW7oGgNJF00Z9Ec9JnoQKJxASAhh1cQq//+9efk=-2"
        );
        assert!(same_checksum(
            "bxKQiW7oGgNJF00Z9Ec9JnoQKJxASAhh1cQq//+9efk=",
            &composite(&parts)
        ));
        assert!(same_checksum(
            "bxKQiW7oGgNJF00Z9Ec9JnoQKJxASAhh1cQq//+9efk=-2",
            &composite(&parts)
        ));
        assert!(!same_checksum(
            "bxKQiW7oGgNJF00Z9Ec9JnoQKJxASAhh1cQq//+9efk=-3",
            &composite(&parts)
        ));
        assert!(!same_checksum(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=-2",
            &composite(&parts)
        ));
    }

    #[test]
    fn parts_fit_any_stream_in_ten_thousand() {
        let s = Schedule::new(16 << 20, None);
        assert_eq!(s.size(1), 16 << 20);
        assert_eq!(s.size(1000), 16 << 20);
        assert_eq!(s.size(1001), 32 << 20);
        assert!(
            s.capacity() >= 5 << 40,
            "10,000 parts hold {}, less than S3's 5 TiB",
            s.capacity()
        );
        assert_eq!(Schedule::new(1, None).first, MIN_PART);
        // A hint keeps parts small and steady: 500 GiB in 57 MiB parts, with room left for a low hint.
        let h = Schedule::new(16 << 20, Some(500 << 30));
        assert_eq!(h.first, 57 << 20);
        assert_eq!(h.size(9000), h.first);
        assert!(h.capacity() > (500u64 << 30) * 6 / 5);
        assert_eq!(Schedule::new(16 << 20, Some(1 << 30)).first, 16 << 20);
        assert_eq!(Schedule::new(16 << 20, Some(u64::MAX / 2)).first, MAX_PART);
    }

    #[test]
    fn layouts_cover_the_object_exactly() {
        let s = Schedule::new(MIN_PART, None);
        assert!(s.layout(0).is_empty());
        assert_eq!(s.layout(7), vec![(0, 7)]);
        let l = s.layout(3 * MIN_PART + 1);
        assert_eq!(l.len(), 4);
        assert_eq!(l[3], (3 * MIN_PART, 1));
        let big = s.layout(1001 * MIN_PART + 5);
        // Part 1001 is twice as large, so it takes all the rest.
        assert_eq!(big.len(), 1001);
        assert_eq!(big[1000], (1000 * MIN_PART, MIN_PART + 5));
        let sum: u64 = s.layout(2500 * MIN_PART).iter().map(|p| p.1).sum();
        assert_eq!(sum, 2500 * MIN_PART);
    }
}
