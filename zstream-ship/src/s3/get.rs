//! Download: concurrent ranged GETs, written to stdout in order. Each range is fetched by a task that resumes at
//! the byte where a dropped connection stopped; at most `concurrency` ranges of `RANGE` bytes are held at once.
//! With `--concurrency 1` it is one GET streamed straight through, which is what a server that reads the whole
//! object for every range (moto) or a slow link wants. The object is pinned by its ETag, so a concurrent overwrite fails the read
//! instead of splicing two objects. What is checked (checks.rs) is decided before the first byte: each part's
//! checksum is computed as it is written and the stored ones compared at the end: a mismatch exits 3.
//!
//! Reads use part boundaries from the metadata `put` wrote, or for another client's object the part listing
//! (GetObjectAttributes), not GetObject's partNumber: S3-compatible servers differ there (moto returns the whole
//! object for any part number).

use super::checks::{self, Need, Plan, Verifier};
use super::{archive, S3Target};
use crate::aws::{describe, err, status, Resuming};
use anyhow::anyhow;
use aws_sdk_s3::operation::get_object_attributes::GetObjectAttributesOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ObjectAttributes;
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
    let plan = match checks::plan(&head, total) {
        Need::Plan(p) => p,
        Need::Parts => {
            let listing = t.rt.block_on(list_parts(t, &head))?;
            checks::plan_parts(&head, total, listing.as_deref().map_err(Clone::clone))
        }
    };
    if let Plan::Unchecked(why) = &plan {
        zstream_common::say!("{url}: {why}; its bytes are passed on unchecked");
    }
    let src = Source {
        client: t.client.clone(),
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        url: url.clone(),
        etag: head.e_tag().map(str::to_string),
    };
    let check = Verifier::new(&plan);
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
    let digests = std::thread::scope(|s| -> anyhow::Result<_> {
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
    if digests.bytes != total {
        return Err(integrity(format!(
            "{url}: read {} bytes of the {total} the object holds",
            digests.bytes
        )));
    }
    checks::verdict(&url, &plan, &digests).map_err(integrity)?;
    Ok(digests.bytes)
}

/// The pages of GetObjectAttributes' part listing (ObjectParts, with the object's checksum and ETag). Ok(Err(why))
/// when the service refuses it (no s3:GetObjectAttributes permission, an S3-compatible service without it): the
/// read goes on, unchecked where the parts were needed. The listing must be of the object the read is pinned to.
async fn list_parts(
    t: &S3Target,
    head: &HeadObjectOutput,
) -> anyhow::Result<Result<Vec<GetObjectAttributesOutput>, String>> {
    let url = t.url(&t.key);
    let etag = |e: Option<&str>| e.map(|e| e.trim_matches('"').to_string());
    let mut pages: Vec<GetObjectAttributesOutput> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let res = t
            .client
            .get_object_attributes()
            .bucket(&t.bucket)
            .key(&t.key)
            .object_attributes(ObjectAttributes::ObjectParts)
            .object_attributes(ObjectAttributes::Checksum)
            .object_attributes(ObjectAttributes::Etag)
            .max_parts(1000)
            .set_part_number_marker(marker.clone())
            .send()
            .await;
        let page = match res {
            Ok(p) => p,
            Err(e) if status(&e).is_some_and(|s| (400..500).contains(&s)) => {
                return Ok(Err(format!("GetObjectAttributes: {}", describe(&e))))
            }
            Err(e) => return Err(err(format!("listing the parts of {url}"))(e)),
        };
        if etag(page.e_tag()) != etag(head.e_tag()) {
            return Err(changed(&url));
        }
        let next = page
            .object_parts()
            .filter(|o| o.is_truncated() == Some(true))
            .and_then(|o| o.next_part_number_marker())
            .map(str::to_string);
        pages.push(page);
        match next {
            None => return Ok(Ok(pages)),
            Some(n) if marker.as_ref() != Some(&n) && pages.len() <= 10_000 => marker = Some(n),
            Some(n) => {
                return Ok(Err(format!(
                    "GetObjectAttributes: its part listing does not advance past marker {n}"
                )))
            }
        }
    }
}

/// The error of a read whose object was replaced under it.
fn changed(url: &str) -> anyhow::Error {
    anyhow::Error::new(Coded::new(
        Code::Runtime,
        anyhow!("{url} changed while it was being read (its ETag no longer matches)"),
    ))
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
            Err(e) if status(&e) == Some(412) => return Err(changed(url)),
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
