//! What a read of an S3 object checks, decided from its HEAD and, for another client's object uploaded in parts,
//! the part listing GetObjectAttributes gives (`plan`); the digests computed as the bytes pass (`Verifier`); the
//! verdict at the end (`verdict`). The decisions are pure functions of what the service said, unit-tested here.
//!
//! - zstream-ship's own objects: the part layout from the metadata put wrote, each part's SHA-256, and the stored
//!   SHA-256 of the whole (one part) or their composite.
//! - Another client's object in one part, or in parts with a full-object checksum: that checksum, of whichever
//!   algorithm (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256).
//! - Another client's object in parts with a composite checksum (what boto3 and the AWS CLI write by default: the
//!   checksum of the parts' checksums): the part sizes and each part's checksum from GetObjectAttributes
//!   (ObjectParts), every part checked, then the composite. Without the part sizes (no s3:GetObjectAttributes
//!   permission, a service that does not list them) it cannot be checked, and the reader says so.
//!
//! S3-compatible services differ in what the HEAD says: AWS gives a composite its `-N` suffix and the checksum
//! type; moto gives neither. An ETag of the form `HEX-N` marks an object uploaded in parts on both, so it is the
//! sign that the part listing is needed.

use super::parts::{b64, composite, same_checksum, Schedule};
use super::{META_PART_SIZE, META_PART_STEP};
use aws_sdk_s3::operation::get_object_attributes::GetObjectAttributesOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumType, ObjectPart};
use aws_smithy_checksums::http::HttpChecksum;
use aws_smithy_checksums::ChecksumAlgorithm;

/// A checksum algorithm S3 stores, with the name messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algo {
    pub name: &'static str,
    pub algorithm: ChecksumAlgorithm,
}

pub const SHA256: Algo = Algo {
    name: "SHA-256",
    algorithm: ChecksumAlgorithm::Sha256,
};
const CRC64NVME: Algo = Algo {
    name: "CRC64NVME",
    algorithm: ChecksumAlgorithm::Crc64Nvme,
};
const CRC32C: Algo = Algo {
    name: "CRC32C",
    algorithm: ChecksumAlgorithm::Crc32c,
};
const CRC32: Algo = Algo {
    name: "CRC32",
    algorithm: ChecksumAlgorithm::Crc32,
};
const SHA1: Algo = Algo {
    name: "SHA-1",
    algorithm: ChecksumAlgorithm::Sha1,
};

/// The checksums S3 stores for an object (HEAD, GetObjectAttributes' Checksum) or a part (ObjectPart), in the
/// order a reader prefers them: strongest first.
fn stored<'a>(
    sha256: Option<&'a str>,
    crc64: Option<&'a str>,
    crc32c: Option<&'a str>,
    crc32: Option<&'a str>,
    sha1: Option<&'a str>,
) -> Option<(Algo, &'a str)> {
    [
        (SHA256, sha256),
        (CRC64NVME, crc64),
        (CRC32C, crc32c),
        (CRC32, crc32),
        (SHA1, sha1),
    ]
    .into_iter()
    .find_map(|(a, v)| v.map(|v| (a, v)))
}

fn head_checksum(h: &HeadObjectOutput) -> Option<(Algo, &str)> {
    stored(
        h.checksum_sha256(),
        h.checksum_crc64_nvme(),
        h.checksum_crc32_c(),
        h.checksum_crc32(),
        h.checksum_sha1(),
    )
}

fn part_checksum(p: &ObjectPart, algo: Algo) -> Option<&str> {
    match algo.name {
        "SHA-256" => p.checksum_sha256(),
        "CRC64NVME" => p.checksum_crc64_nvme(),
        "CRC32C" => p.checksum_crc32_c(),
        "CRC32" => p.checksum_crc32(),
        _ => p.checksum_sha1(),
    }
}

/// How the object's stored checksum covers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Of the whole object's bytes.
    Full,
    /// Of the parts' checksums.
    Composite,
}

/// What a read checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Digest each part of `layout` (start, length) with `algo`, then hold them to `expect`.
    Check {
        algo: Algo,
        layout: Vec<(u64, u64)>,
        expect: Expect,
    },
    /// Nothing can be checked: the bytes pass unchecked, and the reader says why.
    Unchecked(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The stored checksum of the whole object (one part in the layout), or, for zstream-ship's own objects in
    /// several parts, the composite of the parts' (`kind` None: either of the two).
    Object { value: String, kind: Option<Kind> },
    /// Each part's stored checksum, then the object's (of `kind`, or either when the service did not say).
    Parts {
        sums: Vec<String>,
        object: String,
        kind: Option<Kind>,
    },
}

/// What the plan needs before it can be made: the HEAD alone, or the part listing too.
pub enum Need {
    Plan(Plan),
    /// Another client's object in parts with a checksum: ask GetObjectAttributes for ObjectParts.
    Parts,
}

/// An ETag of an object uploaded in parts: `"HEX-N"`.
fn multipart_etag(head: &HeadObjectOutput) -> bool {
    head.e_tag()
        .map(|e| e.trim_matches('"'))
        .and_then(|e| e.rsplit_once('-'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn head_kind(head: &HeadObjectOutput) -> Option<Kind> {
    match head.checksum_type() {
        Some(ChecksumType::Composite) => Some(Kind::Composite),
        Some(ChecksumType::FullObject) => Some(Kind::Full),
        _ => None,
    }
}

/// The plan from the HEAD alone, or that the part listing is needed.
pub fn plan(head: &HeadObjectOutput, total: u64) -> Need {
    let meta = |k: &str| {
        head.metadata()
            .and_then(|m| m.get(k))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&v| v > 0)
    };
    if let (Some(first), Some(step), Some(value)) = (
        meta(META_PART_SIZE),
        meta(META_PART_STEP),
        head.checksum_sha256(),
    ) {
        return Need::Plan(Plan::Check {
            algo: SHA256,
            layout: Schedule { first, step }.layout(total),
            expect: Expect::Object {
                value: value.to_string(),
                kind: None,
            },
        });
    }
    let Some((algo, value)) = head_checksum(head) else {
        return Need::Plan(Plan::Unchecked(
            "the service stored no checksum of it".into(),
        ));
    };
    let kind = head_kind(head);
    let in_parts = multipart_etag(head) || value.contains('-') || kind == Some(Kind::Composite);
    if in_parts {
        return Need::Parts;
    }
    Need::Plan(whole(algo, value, total))
}

fn whole(algo: Algo, value: &str, total: u64) -> Plan {
    Plan::Check {
        algo,
        layout: vec![(0, total)],
        expect: Expect::Object {
            value: value.to_string(),
            kind: Some(Kind::Full),
        },
    }
}

/// The plan for another client's object in parts, from the HEAD and the pages of its part listing (None when
/// the listing was refused or failed: `why`).
pub fn plan_parts(
    head: &HeadObjectOutput,
    total: u64,
    listing: Result<&[GetObjectAttributesOutput], String>,
) -> Plan {
    let Some((algo, value)) = head_checksum(head) else {
        return Plan::Unchecked("the service stored no checksum of it".into());
    };
    let pages = match listing {
        Ok(pages) => pages,
        Err(why) => return without_parts(head, algo, value, total, &why),
    };
    let kind = head_kind(head).or_else(|| {
        pages
            .iter()
            .find_map(|p| p.checksum().and_then(|c| c.checksum_type()))
            .and_then(|t| match t {
                ChecksumType::Composite => Some(Kind::Composite),
                ChecksumType::FullObject => Some(Kind::Full),
                _ => None,
            })
    });
    let parts: Vec<&ObjectPart> = pages
        .iter()
        .filter_map(|p| p.object_parts())
        .flat_map(|p| p.parts())
        .collect();
    let count = pages
        .iter()
        .find_map(|p| p.object_parts().and_then(|o| o.total_parts_count()));
    let mut layout = Vec::with_capacity(parts.len());
    let mut sums = Vec::with_capacity(parts.len());
    let mut at = 0u64;
    for (i, p) in parts.iter().enumerate() {
        let size = p.size().and_then(|s| u64::try_from(s).ok());
        let (Some(size), Some(sum)) = (size, part_checksum(p, algo)) else {
            let why = format!(
                "the listing gives part {} no size or no {}",
                i + 1,
                algo.name
            );
            return without_parts(head, algo, value, total, &why);
        };
        if p.part_number() != Some(i as i32 + 1) {
            let why = format!(
                "the listing's part {} is numbered {:?}",
                i + 1,
                p.part_number()
            );
            return without_parts(head, algo, value, total, &why);
        }
        layout.push((at, size));
        sums.push(sum.to_string());
        at += size;
    }
    let why = if parts.is_empty() {
        Some("the service listed no parts".to_string())
    } else if at != total || count.is_some_and(|c| c as usize != parts.len()) {
        Some(format!(
            "the listed parts ({} of {:?}, {at} bytes) are not the object's {total} bytes",
            parts.len(),
            count
        ))
    } else {
        None
    };
    if let Some(why) = why {
        return without_parts(head, algo, value, total, &why);
    }
    Plan::Check {
        algo,
        layout,
        expect: Expect::Parts {
            sums,
            object: value.to_string(),
            kind,
        },
    }
}

/// No usable part listing: a full-object checksum can still be checked; a composite one, or one of unknown kind,
/// cannot.
fn without_parts(head: &HeadObjectOutput, algo: Algo, value: &str, total: u64, why: &str) -> Plan {
    if head_kind(head) == Some(Kind::Full) {
        return whole(algo, value, total);
    }
    Plan::Unchecked(format!(
        "it was uploaded in parts and its {} checksum {value} covers them, but the part sizes cannot be had ({why})",
        algo.name
    ))
}

/// Each part's digest over the layout, and the whole's when asked, fed the object's bytes in order in pieces of
/// any size.
pub struct Verifier {
    algo: Algo,
    /// Where each part ends.
    ends: Vec<u64>,
    at: u64,
    part: Box<dyn HttpChecksum>,
    whole: Option<Box<dyn HttpChecksum>>,
    digests: Vec<Vec<u8>>,
}

/// What the verifier saw: bytes, the parts' digests, the whole's (when asked for).
pub struct Digests {
    pub bytes: u64,
    pub parts: Vec<Vec<u8>>,
    pub whole: Option<Vec<u8>>,
}

impl Verifier {
    pub fn new(plan: &Plan) -> Verifier {
        let (algo, layout, whole) = match plan {
            Plan::Check {
                algo,
                layout,
                expect,
            } => {
                // The whole's digest is a second pass over every byte: only when a full-object checksum of
                // several parts may be what is stored (with one part, the part's digest is the whole's).
                let whole = layout.len() > 1
                    && matches!(expect, Expect::Parts { kind, .. } if *kind != Some(Kind::Composite));
                (*algo, layout.as_slice(), whole)
            }
            Plan::Unchecked(_) => (SHA256, &[][..], false),
        };
        Verifier {
            algo,
            ends: layout.iter().map(|(s, l)| s + l).collect(),
            at: 0,
            part: algo.algorithm.into_impl(),
            whole: whole.then(|| algo.algorithm.into_impl()),
            digests: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if let Some(w) = self.whole.as_mut() {
            w.update(data);
        }
        while !data.is_empty() {
            let take = ((self.end() - self.at) as usize).min(data.len());
            self.part.update(&data[..take]);
            self.at += take as u64;
            data = &data[take..];
            self.close_parts();
        }
    }

    /// Where the part being read ends.
    fn end(&self) -> u64 {
        self.ends
            .get(self.digests.len())
            .copied()
            .unwrap_or(u64::MAX)
    }

    /// Finishes the parts that end where the bytes read so far do (more than one when parts are empty).
    fn close_parts(&mut self) {
        while self.digests.len() < self.ends.len() && self.at == self.end() {
            let done = std::mem::replace(&mut self.part, self.algo.algorithm.into_impl());
            self.digests.push(done.finalize().to_vec());
        }
    }

    pub fn finish(mut self) -> Digests {
        // An empty object, or empty parts at the end, end where the last bytes did.
        self.close_parts();
        Digests {
            bytes: self.at,
            parts: self.digests,
            whole: self.whole.map(|w| w.finalize().to_vec()),
        }
    }
}

/// Whether what was read holds to the plan; the error says which part or which checksum does not.
pub fn verdict(url: &str, plan: &Plan, got: &Digests) -> Result<(), String> {
    let Plan::Check {
        algo,
        layout,
        expect,
    } = plan
    else {
        return Ok(());
    };
    if got.parts.len() != layout.len() {
        return Err(format!(
            "{url}: read {} of the object's {} parts",
            got.parts.len(),
            layout.len()
        ));
    }
    let name = algo.name;
    let whole = |v: &str| match (&got.whole, got.parts.as_slice()) {
        (Some(w), _) => v == b64(w),
        (None, [only]) => v == b64(only),
        _ => false,
    };
    match expect {
        Expect::Object { value, kind } => {
            let ok = (*kind != Some(Kind::Composite) && whole(value))
                || (*kind != Some(Kind::Full)
                    && same_checksum(value, &composite(algo.algorithm, &got.parts)));
            if !ok {
                return Err(format!(
                    "{url}: the bytes read do not match the {name} checksum the service stored ({value})"
                ));
            }
        }
        Expect::Parts { sums, object, kind } => {
            for (i, (sum, digest)) in sums.iter().zip(&got.parts).enumerate() {
                if *sum != b64(digest) {
                    let (start, len) = layout[i];
                    return Err(format!(
                        "{url}: part {} ({len} bytes at {start}) has {name} {}, but the service stored {sum}",
                        i + 1,
                        b64(digest)
                    ));
                }
            }
            let ok = (*kind != Some(Kind::Full)
                && same_checksum(object, &composite(algo.algorithm, &got.parts)))
                || (*kind != Some(Kind::Composite) && whole(object));
            if !ok {
                return Err(format!(
                    "{url}: every part matches its {name}, but the object's {name} {object} is neither their \
                     composite nor the whole's"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{Checksum, GetObjectAttributesParts};
    use std::collections::HashMap;

    // CRC32 (zlib's) of "abc", of "", and of their two raw checksums one after the other (the composite of the
    // parts "abc" and ""), base64 of the four bytes big-endian, written out from
    // python3 -c 'import zlib, base64; print(base64.b64encode(zlib.crc32(b"abc").to_bytes(4, "big")))' and
    // likewise for b"" and bytes.fromhex("352441c200000000").
    const CRC_ABC: &str = "NSRBwg==";
    const CRC_EMPTY: &str = "AAAAAA==";
    const COMPOSITE_ABC_EMPTY: &str = "xCz9jQ==";
    // zlib.crc32(b"ab") and zlib.crc32(b"c").
    const CRC_AB: u32 = 0x9e83486d;
    const CRC_C: u32 = 0x06b9df6f;

    fn head(etag: &str, crc32: &str, kind: Option<ChecksumType>) -> HeadObjectOutput {
        HeadObjectOutput::builder()
            .e_tag(etag)
            .checksum_crc32(crc32)
            .set_checksum_type(kind)
            .build()
    }

    fn listing(parts: &[(i32, i64, &str)], per_page: usize) -> Vec<GetObjectAttributesOutput> {
        parts
            .chunks(per_page)
            .map(|page| {
                let listed = page
                    .iter()
                    .map(|(n, s, c)| {
                        ObjectPart::builder()
                            .part_number(*n)
                            .size(*s)
                            .checksum_crc32(*c)
                            .build()
                    })
                    .collect::<Vec<_>>();
                GetObjectAttributesOutput::builder()
                    .checksum(
                        Checksum::builder()
                            .checksum_type(ChecksumType::Composite)
                            .build(),
                    )
                    .object_parts(
                        GetObjectAttributesParts::builder()
                            .total_parts_count(parts.len() as i32)
                            .set_parts(Some(listed))
                            .build(),
                    )
                    .build()
            })
            .collect()
    }

    fn read(plan: &Plan, data: &[u8], piece: usize) -> Digests {
        let mut v = Verifier::new(plan);
        for c in data.chunks(piece.max(1)) {
            v.update(c);
        }
        v.finish()
    }

    #[test]
    fn known_crc32_values_and_their_composite() {
        let mut h = ChecksumAlgorithm::Crc32.into_impl();
        h.update(b"abc");
        assert_eq!(b64(&h.finalize()), CRC_ABC);
        let parts = [CRC_ABC, CRC_EMPTY].map(|c| aws_smithy_types::base64::decode(c).unwrap());
        assert_eq!(
            composite(ChecksumAlgorithm::Crc32, &parts),
            format!("{COMPOSITE_ABC_EMPTY}-2")
        );
    }

    #[test]
    fn an_object_of_another_client_in_one_part_is_checked_whole() {
        let h = head("\"900150983cd24fb0d6963f7d28e17f72\"", CRC_ABC, None);
        let Need::Plan(p) = plan(&h, 3) else {
            panic!("a single-part object needs no listing")
        };
        assert_eq!(verdict("u", &p, &read(&p, b"abc", 1)), Ok(()));
        assert!(verdict("u", &p, &read(&p, b"abd", 2))
            .unwrap_err()
            .contains("CRC32"));
        // An empty object: its one (empty) part ends before any byte came.
        let Need::Plan(p) = plan(
            &head("\"d41d8cd98f00b204e9800998ecf8427e\"", CRC_EMPTY, None),
            0,
        ) else {
            panic!("a single-part object needs no listing")
        };
        assert_eq!(verdict("u", &p, &read(&p, b"", 1)), Ok(()));
    }

    #[test]
    fn objects_in_parts_need_the_listing_whatever_the_head_says() {
        // moto: no suffix, no type; only the ETag tells. AWS: the suffix and the type.
        for h in [
            head("\"0e7f-3\"", "gZOo4g==", None),
            head("\"0e7f-3\"", "gZOo4g==-3", Some(ChecksumType::Composite)),
            head("\"abc\"", "gZOo4g==-3", None),
        ] {
            assert!(matches!(plan(&h, 1), Need::Parts), "{h:?}");
        }
    }

    #[test]
    fn every_part_and_the_composite_are_checked() {
        let value = format!("{COMPOSITE_ABC_EMPTY}-2");
        for stored in [value.clone(), value.split('-').next().unwrap().to_string()] {
            let h = head("\"x-2\"", &stored, None);
            let pages = listing(&[(1, 3, CRC_ABC), (2, 0, CRC_EMPTY)], 1);
            let p = plan_parts(&h, 3, Ok(&pages));
            let Plan::Check { layout, .. } = &p else {
                panic!("{p:?}")
            };
            assert_eq!(layout, &[(0, 3), (3, 0)]);
            for piece in [1, 2, 3] {
                assert_eq!(verdict("u", &p, &read(&p, b"abc", piece)), Ok(()));
            }
            let bad = verdict("u", &p, &read(&p, b"abd", 3)).unwrap_err();
            assert!(bad.contains("part 1 (3 bytes at 0)"), "{bad}");
        }
        // Parts that match but a composite that does not: the object's checksum is someone else's.
        let h = head("\"x-2\"", CRC_ABC, Some(ChecksumType::Composite));
        let pages = listing(&[(1, 3, CRC_ABC), (2, 0, CRC_EMPTY)], 2);
        let p = plan_parts(&h, 3, Ok(&pages));
        let bad = verdict("u", &p, &read(&p, b"abc", 3)).unwrap_err();
        assert!(bad.contains("neither their composite"), "{bad}");
    }

    #[test]
    fn a_full_object_checksum_of_parts_is_checked_whole_and_by_part() {
        let h = head("\"x-2\"", CRC_ABC, Some(ChecksumType::FullObject));
        let ab = b64(&CRC_AB.to_be_bytes());
        let c = b64(&CRC_C.to_be_bytes());
        let p = plan_parts(&h, 3, Ok(&listing(&[(1, 2, &ab), (2, 1, &c)], 2)));
        assert_eq!(verdict("u", &p, &read(&p, b"abc", 1)), Ok(()));
        // Part checksums that are not the parts': refused at the first.
        let p = plan_parts(&h, 3, Ok(&listing(&[(1, 2, &c), (2, 1, &ab)], 2)));
        assert!(verdict("u", &p, &read(&p, b"abc", 1))
            .unwrap_err()
            .contains("part 1"));
        // Without the listing, a full-object checksum is still checked whole.
        let p = plan_parts(&h, 3, Err("denied".into()));
        assert_eq!(p, whole(CRC32, CRC_ABC, 3));
    }

    #[test]
    fn without_the_part_sizes_a_composite_is_said_to_be_unchecked() {
        let h = head("\"x-2\"", COMPOSITE_ABC_EMPTY, None);
        for (listing, why) in [
            (Err("AccessDenied".to_string()), "AccessDenied"),
            (Ok(vec![]), "listed no parts"),
            (Ok(listing(&[(1, 2, CRC_ABC)], 1)), "not the object's"),
            (
                Ok(listing(&[(2, 3, CRC_ABC), (1, 0, CRC_EMPTY)], 2)),
                "numbered",
            ),
        ] {
            let p = plan_parts(&h, 3, listing.as_deref().map_err(Clone::clone));
            let Plan::Unchecked(msg) = &p else {
                panic!("{p:?}")
            };
            assert!(
                msg.contains("part sizes cannot be had") && msg.contains(why),
                "{msg}"
            );
        }
    }

    #[test]
    fn own_objects_keep_their_layout_and_sha256() {
        let meta: HashMap<String, String> = [
            (META_PART_SIZE.to_string(), "5242880".to_string()),
            (META_PART_STEP.to_string(), "1000".to_string()),
        ]
        .into();
        let data = vec![7u8; 6 << 20];
        let parts: Vec<Vec<u8>> = data
            .chunks(5 << 20)
            .map(|c| {
                let mut h = ChecksumAlgorithm::Sha256.into_impl();
                h.update(c);
                h.finalize().to_vec()
            })
            .collect();
        let h = HeadObjectOutput::builder()
            .set_metadata(Some(meta))
            .checksum_sha256(composite(ChecksumAlgorithm::Sha256, &parts))
            .e_tag("\"x-2\"")
            .build();
        let Need::Plan(p) = plan(&h, data.len() as u64) else {
            panic!("own objects need no listing")
        };
        assert_eq!(verdict("u", &p, &read(&p, &data, 1 << 20)), Ok(()));
        let mut bad = data.clone();
        bad[1] = 0;
        assert!(verdict("u", &p, &read(&p, &bad, 1 << 20)).is_err());
    }
}
