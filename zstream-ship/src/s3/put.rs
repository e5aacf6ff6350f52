//! Upload: stdin straight into a multipart upload. The calling thread reads the next part while up to
//! `concurrency` parts upload on the runtime, so memory stays within part size x (concurrency + 1). Every part
//! carries its SHA-256, which S3 checks before it accepts the part. Any failure aborts the upload, so no object
//! appears at the key and an older object there stays as it was; a SIGTERM or SIGINT aborts it too.
//!
//! Unless told to replace, a put never replaces an object: it looks before reading a byte (so a refused put
//! fails at once, not after 300 GiB), and the request that creates the object (PutObject, or
//! CompleteMultipartUpload) carries `If-None-Match: *`, so an object that appeared meanwhile is not replaced
//! either (412, and the upload is aborted). Nothing runs after the object exists: its length is its own.

use super::parts::{composite, same_checksum, sha256_b64, Schedule, MAX_PARTS};
use super::{S3Target, META_BYTES, META_PART_SIZE, META_PART_STEP};
use crate::aws::{after_abort, describe, err, status};
use crate::backend::{exists, Replace, Stored, S3_SHA256};
use crate::options::{Class, Sse};
use crate::pump::{arm_abort, Abort, InFlight, Parts, Upload};
use anyhow::{anyhow, Context};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use std::collections::HashMap;
use std::io::Read;
use zstream_common::interrupt::Armed;
use zstream_common::pipe::{in_error, read_full};

/// What was stored: the checksum is the one S3 checked (each part's SHA-256, and their composite).
pub fn put(t: &S3Target, input: &mut dyn Read, replace: Replace) -> anyhow::Result<Stored> {
    if replace == Replace::No && t.rt.block_on(t.lookup())?.is_some() {
        return Err(exists(&t.url(&t.key)));
    }
    // Armed before a byte is read or anything started: a signal at any point ends the put saying what it undid.
    let upload = Upload::default();
    let in_flight = InFlight::default();
    let armed = arm_abort(&t.rt, t.url(&t.key), &in_flight, &upload, {
        let (client, bucket, key) = (t.client.clone(), t.bucket.clone(), t.key.clone());
        move |id: String| -> Abort { Box::pin(abort(client, bucket, key, id)) }
    });
    let schedule = Schedule::new(t.opts.upload.part_size, t.opts.upload.size_hint);
    let mut first = vec![0u8; schedule.first as usize];
    let got = read_full(&mut &mut *input, &mut first).map_err(in_error)?;
    first.truncate(got);
    if (got as u64) < schedule.first {
        // The whole stream fits in one part: one PUT with its checksum and byte count (an empty stream is a
        // valid, empty object). It is the commit: a signal waits for it.
        return armed.commit(|| t.rt.block_on(put_single(t, first, replace)));
    }
    upload.starting();
    let id = match t.rt.block_on(create(t, schedule)) {
        Ok(id) => {
            upload.started(&id);
            id
        }
        Err(e) => {
            upload.not_started();
            return Err(e);
        }
    };
    match upload_parts(t, &id, schedule, first, input, replace, (armed, &in_flight)) {
        Ok(stored) => Ok(stored),
        // Nothing half-made may stay behind looking like a backup.
        Err(e) => Err(after_abort(
            e,
            t.rt.block_on(abort(t.client.clone(), t.bucket.clone(), t.key.clone(), id)),
        )),
    }
}

/// Aborting the upload `id` (the interrupt cleanup runs it on its own thread, so it owns what it needs).
async fn abort(client: Client, bucket: String, key: String, id: String) -> anyhow::Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await
        .map(drop)
        .map_err(|e| anyhow!("{}", describe(&e)))
}

/// A refused conditional write (412) means an object is at the key. It may be our own: when the answer to the
/// write that stored it was lost, the SDK sent it again and that second try was refused. The stored checksum
/// tells which (identical bytes from another writer are as good).
async fn settle(t: &S3Target, ours: &str) -> anyhow::Result<()> {
    match t.lookup().await? {
        Some(h) if h.checksum_sha256().is_some_and(|s| same_checksum(s, ours)) => Ok(()),
        _ => Err(exists(&t.url(&t.key))),
    }
}

fn metadata(t: &S3Target, schedule: Schedule) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = t.opts.upload.meta.iter().cloned().collect();
    m.insert(META_PART_SIZE.into(), schedule.first.to_string());
    m.insert(META_PART_STEP.into(), schedule.step.to_string());
    m
}

fn stored(t: &S3Target, bytes: u64, sum: &str) -> Stored {
    Stored {
        url: t.url(&t.key),
        bytes,
        checksum: format!("{S3_SHA256}{sum}"),
    }
}

async fn put_single(t: &S3Target, data: Vec<u8>, replace: Replace) -> anyhow::Result<Stored> {
    let len = data.len() as u64;
    // One part as long as the object: the reader's layout of a single-part object whatever the schedule.
    let mut meta = metadata(
        t,
        Schedule {
            first: len.max(1),
            step: 1,
        },
    );
    meta.insert(META_BYTES.into(), len.to_string());
    let sum = sha256_b64(&data);
    let req = t
        .client
        .put_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&sum)
        .set_metadata(Some(meta))
        .set_storage_class(t.opts.upload.storage_class.map(Class::sdk))
        .set_server_side_encryption(t.opts.upload.sse.map(Sse::sdk))
        .set_ssekms_key_id(t.opts.upload.sse_kms_key_id.clone())
        .set_if_none_match((replace == Replace::No).then(|| "*".to_string()))
        .body(ByteStream::from(data));
    // The signed x-amz-checksum-sha256 header already binds the body (S3 checks it), so SigV4 need not hash
    // the payload a second time: one SHA-256 pass per byte instead of two.
    match req.customize().disable_payload_signing().send().await {
        Ok(_) => Ok(stored(t, len, &sum)),
        Err(e) if status(&e) == Some(412) => settle(t, &sum).await.map(|()| stored(t, len, &sum)),
        Err(e) => Err(anyhow!("uploading {}: {}", t.url(&t.key), describe(&e))),
    }
}

async fn create(t: &S3Target, schedule: Schedule) -> anyhow::Result<String> {
    let out = t
        .client
        .create_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .set_metadata(Some(metadata(t, schedule)))
        .set_storage_class(t.opts.upload.storage_class.map(Class::sdk))
        .set_server_side_encryption(t.opts.upload.sse.map(Sse::sdk))
        .set_ssekms_key_id(t.opts.upload.sse_kms_key_id.clone())
        .send()
        .await
        .map_err(err(format!("starting the upload of {}", t.url(&t.key))))?;
    out.upload_id()
        .map(str::to_string)
        .context("the service returned no upload id")
}

fn upload_parts(
    t: &S3Target,
    id: &str,
    schedule: Schedule,
    first: Vec<u8>,
    input: &mut dyn Read,
    replace: Replace,
    (armed, in_flight): (Armed, &InFlight),
) -> anyhow::Result<Stored> {
    let url = t.url(&t.key);
    let too_long = format!(
        "the stream is longer than 10,000 parts of this schedule hold ({} bytes); give --size-hint or a \
         larger --part-size",
        schedule.capacity()
    );
    let (parts, total) = Parts {
        rt: &t.rt,
        concurrency: usize::from(t.opts.transfer.concurrency),
        size: &|n| schedule.size(n),
        max_parts: MAX_PARTS,
        too_long: &too_long,
        in_flight,
    }
    .run(first, input, |n, _, data| {
        t.rt.spawn(upload_part(t, id, n as i32, data))
    })?;
    let ours = composite(
        aws_smithy_checksums::ChecksumAlgorithm::Sha256,
        &parts
            .iter()
            .map(|p| part_digest(p.checksum_sha256()))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let complete = t
        .client
        .complete_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(id)
        .set_if_none_match((replace == Replace::No).then(|| "*".to_string()))
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        );
    match armed.commit(|| t.rt.block_on(complete.send()).map_err(Box::new)) {
        Ok(_) => Ok(stored(t, total, &ours)),
        Err(e) if status(&*e) == Some(412) => {
            t.rt.block_on(settle(t, &ours))
                .map(|()| stored(t, total, &ours))
        }
        Err(e) => Err(anyhow!("completing {url}: {}", describe(&e))),
    }
}

/// The raw SHA-256 of a part from the base64 checksum it was sent with.
fn part_digest(b64: Option<&str>) -> anyhow::Result<[u8; 32]> {
    aws_smithy_types::base64::decode(b64.context("a part without its checksum")?)
        .ok()
        .and_then(|v| v.try_into().ok())
        .context("a part checksum that is not a SHA-256")
}

/// One part. The SDK retries it on transient failures, resending the same bytes; S3 checks its SHA-256.
fn upload_part(
    t: &S3Target,
    id: &str,
    n: i32,
    data: Vec<u8>,
) -> impl std::future::Future<Output = anyhow::Result<CompletedPart>> + Send + 'static {
    let req = t
        .client
        .upload_part()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(id)
        .part_number(n);
    let url = t.url(&t.key);
    async move {
        let sum = sha256_b64(&data);
        let out = req
            .checksum_sha256(&sum)
            .body(ByteStream::from(data))
            .customize()
            .disable_payload_signing() // as in put_single: the signed checksum header binds the body
            .send()
            .await
            .map_err(err(format!("uploading part {n} of {url}")))?;
        Ok(CompletedPart::builder()
            .part_number(n)
            .set_e_tag(out.e_tag().map(str::to_string))
            .checksum_sha256(sum)
            .build())
    }
}
