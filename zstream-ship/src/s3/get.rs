//! Download: concurrent ranged GETs, written to stdout in order. Each range is fetched by a task that resumes at
//! the byte where a dropped connection stopped; at most `concurrency` ranges of `RANGE` bytes are held at once.
//! With `--concurrency 1` it is one GET streamed straight through, which is what a server that reads the whole
//! object for every range (moto) or a slow link wants. The object is pinned by its ETag, so a concurrent overwrite fails the read
//! instead of splicing two objects. Each part's SHA-256 is computed as it is written and the stored checksum
//! (of the whole object, or S3's composite of the part checksums) is compared at the end: a mismatch exits 3.
//!
//! Reads use part boundaries from the metadata `put` wrote, not GetObject's partNumber: S3-compatible servers
//! differ there (moto returns the whole object for any part number).

use super::parts::{b64, composite, same_checksum, Schedule};
use super::{archive, S3Target, META_PART_SIZE, META_PART_STEP};
use crate::aws::{err, status, Resuming};
use anyhow::anyhow;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ChecksumType;
use aws_smithy_checksums::http::HttpChecksum;
use aws_smithy_checksums::ChecksumAlgorithm;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zstream_common::pipe::out_error;
use zstream_common::{integrity, Code, Coded};

/// The bytes one ranged GET asks for when several run at once; each is held whole until its turn.
const RANGE: u64 = 16 << 20;
/// Chunks a range task may queue: enough for a whole range; and for the single stream, a few MiB.
const RANGE_DEPTH: usize = 32;
const STREAM_DEPTH: usize = 8;
/// Bytes gathered before they are handed to the writing thread.
const BATCH: usize = 1 << 20;
/// Batches written but not yet hashed: the hash runs beside the writes, at most this far behind.
const HASH_DEPTH: usize = 8;

pub fn get(t: &S3Target, output: &mut dyn Write) -> anyhow::Result<u64> {
    let head = t.rt.block_on(archive::readable(t))?;
    let url = t.url(&t.key);
    let total = head.content_length().unwrap_or(0).max(0) as u64;
    let (parts, stored, other) = plan(&head, total);
    if stored.is_none() && other.is_none() {
        zstream_common::say!(
            "{url}: the object has no checksum this reader can check (a composite one without the \
             part boundaries, or none at all); its bytes are passed on unchecked"
        );
    }
    let src = Source {
        client: t.client.clone(),
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        url: url.clone(),
        etag: head.e_tag().map(str::to_string),
    };
    let check = Verifier::new(&parts, other.as_ref().map(|w| w.algorithm.into_impl()));
    // Tasks stream their ranges into channels; this thread writes, in order, while they receive, and a thread of
    // its own hashes what was written: hashing on the writing thread made one stream's read as slow as receive +
    // hash + write in turn. The hashed batch goes back to the pool.
    // Several ranges of RANGE bytes at once, each buffered whole, so that they really move in parallel; with
    // `--concurrency 1` one GET of the whole object, streamed straight through a short channel (the cheapest
    // read for the service, and nothing held).
    let (range, depth) = if usize::from(t.opts.transfer.concurrency) <= 1 {
        (total.max(1), STREAM_DEPTH)
    } else {
        (RANGE, RANGE_DEPTH)
    };
    let pool = Pool::default();
    let (to_hash, hashing) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_DEPTH);
    let (written, digests, full, other_sum) = std::thread::scope(|s| -> anyhow::Result<_> {
        let returned = pool.clone();
        let hasher = s.spawn(move || {
            let mut check = check;
            for data in hashing {
                check.update(&data);
                returned.give(data);
            }
            check.finish()
        });
        // The tasks hand over batches of BATCH bytes (the service's own chunks are tens of KiB), so each write
        // already fills the next stage's pipe: no buffering here.
        let written: anyhow::Result<()> = (|| {
            let mut in_flight = VecDeque::new();
            let mut next = (0..total).step_by(range as usize);
            loop {
                while in_flight.len() < usize::from(t.opts.transfer.concurrency).max(1) {
                    let Some(start) = next.next() else { break };
                    let len = range.min(total - start);
                    let (tx, rx) = mpsc::channel::<Vec<u8>>(depth);
                    let src = src.clone();
                    let pool = pool.clone();
                    let task: JoinHandle<anyhow::Result<()>> =
                        t.rt.spawn(async move { stream(&src, start, len, &tx, &pool).await });
                    in_flight.push_back((task, rx));
                }
                let Some((task, mut rx)) = in_flight.pop_front() else {
                    return Ok(());
                };
                while let Some(data) = rx.blocking_recv() {
                    output.write_all(&data).map_err(out_error)?;
                    to_hash
                        .send(data)
                        .map_err(|_| anyhow!("the hashing thread stopped"))?;
                }
                t.rt.block_on(task)
                    .map_err(|e| anyhow!("a download task failed: {e}"))??;
            }
        })();
        drop(to_hash);
        let sums = hasher
            .join()
            .map_err(|_| anyhow!("the hashing thread panicked"))?;
        written.map(|()| sums)
    })?;
    output.flush().map_err(out_error)?;
    if written != total {
        return Err(integrity(format!(
            "{url}: read {written} bytes of the {total} the object holds"
        )));
    }
    if let Some(stored) = stored {
        let ok = (parts.len() <= 1 && stored == b64(&full))
            || same_checksum(&stored, &composite(&digests));
        if !ok {
            return Err(integrity(format!(
                "{url}: the bytes read do not match the SHA-256 checksum the service stored ({stored})"
            )));
        }
    } else if let (Some(w), Some(got)) = (other, other_sum) {
        if w.value != got {
            return Err(integrity(format!(
                "{url}: the bytes read have {} {got}, but the service stored {}",
                w.name, w.value
            )));
        }
    }
    Ok(written)
}

/// Batches of BATCH bytes going round: filled by a download task, written, hashed, and given back. Allocating
/// each afresh cost page faults and the kernel's zeroing of every page: a tenth of a one-stream read's CPU. The
/// channels bound how many are out at once, so the pool never holds more than that.
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        // Room for a batch and the service's chunk that completes it.
        spare.unwrap_or_else(|| Vec::with_capacity(2 * BATCH))
    }

    fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
    }
}

/// SHA-256 of each part and of the whole, fed the object's bytes in order in pieces of any size.
struct Verifier {
    /// Where each part ends.
    ends: Vec<u64>,
    at: u64,
    part: Sha256,
    whole: Sha256,
    digests: Vec<[u8; 32]>,
    /// Another tool's whole-object checksum (CRC32, CRC32C, CRC64NVME, SHA-1), when that is what is stored.
    other: Option<Box<dyn HttpChecksum>>,
}

impl Verifier {
    fn new(parts: &[(u64, u64)], other: Option<Box<dyn HttpChecksum>>) -> Verifier {
        Verifier {
            ends: parts.iter().map(|(s, l)| s + l).collect(),
            at: 0,
            part: Sha256::new(),
            whole: Sha256::new(),
            digests: Vec::new(),
            other,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        // Another tool's checksum is the one checked then: the SHA-256s below would be computed for nothing.
        if let Some(o) = self.other.as_mut() {
            o.update(data);
            self.at += data.len() as u64;
            return;
        }
        // The whole-object digest only matters for single-part objects; it costs a second pass otherwise.
        if self.ends.len() <= 1 {
            self.whole.update(data);
        }
        while !data.is_empty() {
            let end = self
                .ends
                .get(self.digests.len())
                .copied()
                .unwrap_or(u64::MAX);
            let take = ((end - self.at) as usize).min(data.len());
            self.part.update(&data[..take]);
            self.at += take as u64;
            data = &data[take..];
            if self.at == end {
                self.digests
                    .push(std::mem::take(&mut self.part).finalize().into());
            }
        }
    }

    /// Bytes seen, the parts' digests, the whole's digest, and the other checksum as S3 writes it (base64).
    fn finish(self) -> (u64, Vec<[u8; 32]>, [u8; 32], Option<String>) {
        let other = self
            .other
            .map(|o| String::from_utf8_lossy(o.header_value().as_bytes()).into_owned());
        (self.at, self.digests, self.whole.finalize().into(), other)
    }
}

/// A whole-object checksum another tool had S3 store (current AWS clients write CRCs by default).
struct Whole {
    name: &'static str,
    algorithm: ChecksumAlgorithm,
    value: String,
}

/// The first whole-object checksum the HEAD carries, strongest first. A composite one (`-N`, or checksum type
/// COMPOSITE) is the checksum of the parts' checksums and needs the part boundaries, which only zstream-ship's
/// own metadata gives.
fn whole_checksum(head: &HeadObjectOutput) -> Option<Whole> {
    if head.checksum_type() == Some(&ChecksumType::Composite) {
        return None;
    }
    [
        ("SHA-256", ChecksumAlgorithm::Sha256, head.checksum_sha256()),
        (
            "CRC64NVME",
            ChecksumAlgorithm::Crc64Nvme,
            head.checksum_crc64_nvme(),
        ),
        ("CRC32C", ChecksumAlgorithm::Crc32c, head.checksum_crc32_c()),
        ("CRC32", ChecksumAlgorithm::Crc32, head.checksum_crc32()),
        ("SHA-1", ChecksumAlgorithm::Sha1, head.checksum_sha1()),
    ]
    .into_iter()
    .find_map(|(name, algorithm, v)| {
        v.filter(|v| !v.contains('-')).map(|v| Whole {
            name,
            algorithm,
            value: v.to_string(),
        })
    })
}

/// The part layout and the stored checksum to check: zstream-ship's own SHA-256 (whole or composite over the
/// layout it recorded), or else another tool's whole-object checksum.
fn plan(head: &HeadObjectOutput, total: u64) -> (Vec<(u64, u64)>, Option<String>, Option<Whole>) {
    let meta = |k: &str| {
        head.metadata()
            .and_then(|m| m.get(k))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&v| v > 0)
    };
    let stored = head.checksum_sha256().map(str::to_string);
    match (meta(META_PART_SIZE), meta(META_PART_STEP), stored) {
        (Some(first), Some(step), Some(stored)) => {
            (Schedule { first, step }.layout(total), Some(stored), None)
        }
        // Not written by this tool (or its checksum is gone): a whole-object checksum can still be checked, of
        // whichever algorithm; a composite one cannot without the part boundaries.
        _ => (vec![(0, total)], None, whole_checksum(head)),
    }
}

/// What a read needs, cheap to clone into a task: the client, the object, and the ETag that pins it.
#[derive(Clone)]
struct Source {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    url: String,
    etag: Option<String>,
}

/// Feeds bytes [start, start+len) of the object to `sink` in order, resuming where a dropped connection
/// stopped. The SDK retries the request itself on transient errors; a body cut short is this function's to
/// resume.
async fn stream(
    src: &Source,
    start: u64,
    len: u64,
    sink: &mpsc::Sender<Vec<u8>>,
    pool: &Pool,
) -> anyhow::Result<()> {
    let url = &src.url;
    // The service's chunks are small; handing them over one by one costs a wakeup each.
    let mut pending = pool.take();
    let end = start + len;
    let mut resuming = Resuming::new(url, Some(end));
    let mut from = start;
    loop {
        let resp = src
            .client
            .get_object()
            .bucket(&src.bucket)
            .key(&src.key)
            .range(format!("bytes={from}-{}", end - 1))
            .set_if_match(src.etag.clone())
            .send()
            .await;
        let mut body = match resp {
            Ok(o) => o.body,
            Err(e) if status(&e) == Some(412) => {
                return Err(anyhow::Error::new(Coded::new(
                    Code::Runtime,
                    anyhow!("{url} changed while it was being read (its ETag no longer matches)"),
                )))
            }
            Err(e) => return Err(err(format!("reading {url}"))(e)),
        };
        let mut at = from;
        let cut = loop {
            match body.try_next().await {
                Ok(Some(b)) => {
                    if at + b.len() as u64 > end {
                        return Err(anyhow!(
                            "{url}: the service sent more bytes than the range asked for"
                        ));
                    }
                    at += b.len() as u64;
                    pending.extend_from_slice(&b);
                    if pending.len() >= BATCH
                        && sink
                            .send(std::mem::replace(&mut pending, pool.take()))
                            .await
                            .is_err()
                    {
                        // The writer stopped (its error is the one to report).
                        return Ok(());
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        // What arrived before a cut is good: pass it on, then resume after it.
        if !pending.is_empty()
            && sink
                .send(std::mem::replace(&mut pending, pool.take()))
                .await
                .is_err()
        {
            return Ok(());
        }
        if !resuming.again(at, cut).await? {
            return Ok(());
        }
        from = at;
    }
}
