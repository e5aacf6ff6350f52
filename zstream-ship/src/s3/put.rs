//! Upload: stdin straight into a multipart upload. The calling thread reads the next part while up to
//! `concurrency` parts upload on the runtime, so memory stays within part size x (concurrency + 1). Every part
//! carries its SHA-256, which S3 checks before it accepts the part. Any failure aborts the upload, so no object
//! appears at the key and an older object there stays as it was.

use super::parts::{sha256_b64, Schedule, MAX_PARTS};
use super::{S3Target, META_BYTES, META_PART_SIZE, META_PART_STEP, TAG_BYTES};
use crate::aws::{after_abort, err};
use crate::pump::Parts;
use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
    Tag, Tagging,
};
use std::collections::HashMap;
use std::io::Read;
use zstream_common::pipe::{in_error, read_full};

pub fn put(t: &S3Target, input: &mut dyn Read) -> anyhow::Result<u64> {
    let schedule = Schedule::new(t.opts.part_size, t.opts.size_hint);
    let mut first = vec![0u8; schedule.first as usize];
    let got = read_full(&mut &mut *input, &mut first).map_err(in_error)?;
    first.truncate(got);
    if (got as u64) < schedule.first {
        // The whole stream fits in one part: one PUT with its checksum and byte count (an empty stream is a
        // valid, empty object).
        return t.rt.block_on(put_single(t, first));
    }
    let id = t.rt.block_on(create(t, schedule))?;
    match upload(t, &id, schedule, first, input) {
        Ok(total) => Ok(total),
        Err(e) => {
            // Nothing half-made may stay behind looking like a backup.
            let abort = t.rt.block_on(
                t.client
                    .abort_multipart_upload()
                    .bucket(&t.bucket)
                    .key(&t.key)
                    .upload_id(&id)
                    .send(),
            );
            Err(after_abort(e, abort.map(|_| ())))
        }
    }
}

fn metadata(t: &S3Target, schedule: Schedule) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = t.opts.meta.iter().cloned().collect();
    m.insert(META_PART_SIZE.into(), schedule.first.to_string());
    m.insert(META_PART_STEP.into(), schedule.step.to_string());
    m
}

async fn put_single(t: &S3Target, data: Vec<u8>) -> anyhow::Result<u64> {
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
    let req = t
        .client
        .put_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(sha256_b64(&data))
        .set_metadata(Some(meta))
        .set_storage_class(t.opts.storage_class.as_deref().map(StorageClass::from))
        .set_server_side_encryption(t.opts.sse.as_deref().map(ServerSideEncryption::from))
        .set_ssekms_key_id(t.opts.sse_kms_key_id.clone())
        .body(ByteStream::from(data));
    // The signed x-amz-checksum-sha256 header already binds the body (S3 checks it), so SigV4 need not hash
    // the payload a second time: one SHA-256 pass per byte instead of two.
    req.customize()
        .disable_payload_signing()
        .send()
        .await
        .map_err(err(format!("uploading {}", t.url(&t.key))))?;
    Ok(len)
}

async fn create(t: &S3Target, schedule: Schedule) -> anyhow::Result<String> {
    let out = t
        .client
        .create_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .set_metadata(Some(metadata(t, schedule)))
        .set_storage_class(t.opts.storage_class.as_deref().map(StorageClass::from))
        .set_server_side_encryption(t.opts.sse.as_deref().map(ServerSideEncryption::from))
        .set_ssekms_key_id(t.opts.sse_kms_key_id.clone())
        .send()
        .await
        .map_err(err(format!("starting the upload of {}", t.url(&t.key))))?;
    out.upload_id()
        .map(str::to_string)
        .context("the service returned no upload id")
}

fn upload(
    t: &S3Target,
    id: &str,
    schedule: Schedule,
    first: Vec<u8>,
    input: &mut dyn Read,
) -> anyhow::Result<u64> {
    let too_long = format!(
        "the stream is longer than 10,000 parts of this schedule hold ({} bytes); give --size-hint or a \
         larger --part-size",
        schedule.capacity()
    );
    let (parts, total) = Parts {
        rt: &t.rt,
        concurrency: t.opts.concurrency,
        size: &|n| schedule.size(n),
        max_parts: MAX_PARTS,
        too_long: &too_long,
    }
    .run(first, input, |n, _, data| {
        t.rt.spawn(upload_part(t, id, n as i32, data))
    })?;
    let url = t.url(&t.key);
    t.rt.block_on(
        t.client
            .complete_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send(),
    )
    .map_err(err(format!("completing {url}")))?;
    t.rt.block_on(tag_bytes(t, total))?;
    Ok(total)
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

/// The byte count of a multipart object goes on as a tag, since its metadata was fixed before the length was
/// known. The object is complete by now; a failure here still fails the put, so a cron job hears of it.
async fn tag_bytes(t: &S3Target, total: u64) -> anyhow::Result<()> {
    let tag = Tag::builder()
        .key(TAG_BYTES)
        .value(total.to_string())
        .build()?;
    t.client
        .put_object_tagging()
        .bucket(&t.bucket)
        .key(&t.key)
        .tagging(Tagging::builder().tag_set(tag).build()?)
        .send()
        .await
        .map_err(err(format!(
            "{} is stored whole, but tagging it with its byte count failed",
            t.url(&t.key)
        )))?;
    Ok(())
}
