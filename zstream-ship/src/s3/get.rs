//! Download: concurrent ranged GETs, written to stdout in order. Each range is fetched by a task that resumes at
//! the byte where a dropped connection stopped; at most `concurrency` ranges of at most one part (and at most
//! `RANGE` bytes) are held at once. The object is pinned by its ETag, so a concurrent overwrite fails the read
//! instead of splicing two objects. Each part's SHA-256 is computed as it is written and the stored checksum
//! (of the whole object, or S3's composite of the part checksums) is compared at the end: a mismatch exits 3.
//!
//! Reads use part boundaries from the metadata `put` wrote, not GetObject's partNumber: S3-compatible servers
//! differ there (moto returns the whole object for any part number).

use super::parts::{b64, composite, same_checksum, Schedule};
use super::{archive, S3Target, META_PART_SIZE, META_PART_STEP};
use crate::aws::{describe, err, status};
use anyhow::anyhow;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;
use tokio::task::JoinHandle;
use zstream_common::pipe::out_error;
use zstream_common::{integrity, Code, Coded};

/// The most bytes one ranged GET asks for: parts may be up to 5 GiB, memory may not.
const RANGE: u64 = 16 << 20;
/// Resumptions of one range after its connection dropped, each after a growing pause.
const RESUMES: u32 = 10;

/// One ranged read: bytes [start, start+len) of the object, and whether it ends a part.
struct Piece {
    start: u64,
    len: u64,
    ends_part: bool,
}

pub fn get(t: &S3Target, output: &mut dyn Write) -> anyhow::Result<u64> {
    let head = t.rt.block_on(archive::readable(t))?;
    let url = t.url(&t.key);
    let total = head.content_length().unwrap_or(0).max(0) as u64;
    let etag = head.e_tag().map(str::to_string);
    let (parts, stored) = plan(&head, total);
    if stored.is_none() {
        eprintln!("zstream-ship: {url}: the object has no SHA-256 checksum (not written by zstream-ship?); its bytes are passed on unchecked");
    }
    let pieces = pieces(&parts);

    let mut in_flight: VecDeque<(JoinHandle<anyhow::Result<Bytes>>, bool)> = VecDeque::new();
    let mut next = pieces.iter();
    let mut digests: Vec<[u8; 32]> = Vec::new();
    let mut part = Sha256::new();
    let mut whole = Sha256::new();
    let mut written = 0u64;
    loop {
        while in_flight.len() < t.opts.concurrency.max(1) {
            let Some(p) = next.next() else { break };
            in_flight.push_back((
                t.rt.spawn(fetch(t, etag.clone(), p.start, p.len)),
                p.ends_part,
            ));
        }
        let Some((h, ends_part)) = in_flight.pop_front() else {
            break;
        };
        let data =
            t.rt.block_on(h)
                .map_err(|e| anyhow!("a download task failed: {e}"))??;
        part.update(&data);
        if parts.len() <= 1 {
            whole.update(&data);
        }
        output.write_all(&data).map_err(out_error)?;
        written += data.len() as u64;
        if ends_part {
            digests.push(std::mem::take(&mut part).finalize().into());
        }
    }
    if written != total {
        return Err(integrity(format!(
            "{url}: read {written} bytes of the {total} the object holds"
        )));
    }
    if let Some(stored) = stored {
        let full = b64(&whole.finalize());
        let ok =
            (parts.len() <= 1 && stored == full) || same_checksum(&stored, &composite(&digests));
        if !ok {
            return Err(integrity(format!(
                "{url}: the bytes read do not match the SHA-256 checksum the service stored ({stored})"
            )));
        }
    }
    Ok(written)
}

/// The part layout and the stored SHA-256 checksum, when there is one this reader can check.
fn plan(head: &HeadObjectOutput, total: u64) -> (Vec<(u64, u64)>, Option<String>) {
    let meta = |k: &str| {
        head.metadata()
            .and_then(|m| m.get(k))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&v| v > 0)
    };
    let stored = head.checksum_sha256().map(str::to_string);
    match (meta(META_PART_SIZE), meta(META_PART_STEP)) {
        (Some(first), Some(step)) => (Schedule { first, step }.layout(total), stored),
        // Not written by this tool: a whole-object checksum can still be checked, a composite one cannot
        // without the part boundaries.
        _ => {
            let composite = head.checksum_type() == Some(&ChecksumType::Composite)
                || stored.as_deref().is_some_and(|s| s.contains('-'));
            (vec![(0, total)], stored.filter(|_| !composite))
        }
    }
}

/// The ranged reads that cover the parts, none longer than RANGE and none across a part boundary.
fn pieces(parts: &[(u64, u64)]) -> Vec<Piece> {
    let mut out = Vec::new();
    for &(start, len) in parts {
        let mut at = 0;
        while at < len {
            let l = (len - at).min(RANGE);
            out.push(Piece {
                start: start + at,
                len: l,
                ends_part: at + l == len,
            });
            at += l;
        }
    }
    out
}

/// Bytes [start, start+len) of the object, resuming where a dropped connection stopped. The SDK retries the
/// request itself on transient errors; a body cut short is this function's to resume.
fn fetch(
    t: &S3Target,
    etag: Option<String>,
    start: u64,
    len: u64,
) -> impl std::future::Future<Output = anyhow::Result<Bytes>> + Send + 'static {
    let (client, bucket, key, url) = (
        t.client.clone(),
        t.bucket.clone(),
        t.key.clone(),
        t.url(&t.key),
    );
    async move {
        let mut buf = Vec::with_capacity(len as usize);
        let mut resumes = 0;
        while (buf.len() as u64) < len {
            let from = start + buf.len() as u64;
            let resp = client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .range(format!("bytes={from}-{}", start + len - 1))
                .set_if_match(etag.clone())
                .send()
                .await;
            let mut body = match resp {
                Ok(o) => o.body,
                Err(e) if status(&e) == Some(412) => {
                    return Err(anyhow::Error::new(Coded::new(
                        Code::Runtime,
                        anyhow!(
                            "{url} changed while it was being read (its ETag no longer matches)"
                        ),
                    )))
                }
                Err(e) => return Err(err(format!("reading {url}"))(e)),
            };
            let cut = loop {
                match body.try_next().await {
                    Ok(Some(b)) => {
                        if buf.len() + b.len() > len as usize {
                            return Err(anyhow!(
                                "{url}: the service sent more bytes than the range asked for"
                            ));
                        }
                        buf.extend_from_slice(&b);
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if (buf.len() as u64) < len {
                resumes += 1;
                if resumes > RESUMES {
                    let why = cut.map_or("the body ended early".to_string(), |e| e.to_string());
                    return Err(anyhow!(
                        "reading {url} at byte {}: {why} ({RESUMES} resumptions failed)",
                        start + buf.len() as u64
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100 << resumes.min(6))).await;
            }
        }
        Ok(Bytes::from(buf))
    }
}

/// A HEAD with the stored checksum.
pub async fn head(t: &S3Target) -> anyhow::Result<HeadObjectOutput> {
    let url = t.url(&t.key);
    t.client
        .head_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| match status(&e) {
            Some(404) => anyhow!("{url}: no such object"),
            _ => anyhow!("looking up {url}: {}", describe(&e)),
        })
}
