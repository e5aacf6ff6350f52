//! `s3://bucket/key`: any S3-compatible service through the AWS SDK for Rust, run on a runtime this backend owns
//! (the `Backend` interface is blocking, like stdin and stdout). `put` is a multipart upload straight from stdin,
//! `get` concurrent ranged reads written in order, `archive` the restore of GLACIER and DEEP_ARCHIVE objects, and
//! `admin` ls, rm and gc.

mod admin;
mod archive;
mod checks;
mod get;
pub mod parts;
mod put;
mod small;

use crate::aws::{self, describe, status};
use crate::backend::{Backend, Entry, Replace, Stale, Stored};
use crate::options::Options;
use anyhow::anyhow;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ChecksumMode;
use std::io::{Read, Write};
use tokio::runtime::Runtime;

/// Metadata keys this tool writes (S3 sends them as x-amz-meta-*).
pub const META_PART_SIZE: &str = "zstream-part-size";
pub const META_PART_STEP: &str = "zstream-part-step";
/// A single PUT's byte count (a multipart object's length is its own; nothing is written after it exists).
pub const META_BYTES: &str = "zstream-bytes";

pub struct S3Target {
    rt: Runtime,
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    opts: Options,
}

impl S3Target {
    pub fn new(bucket: String, key: String, opts: Options) -> anyhow::Result<S3Target> {
        let rt = aws::runtime(opts.transfer.concurrency.into())?;
        let client = rt.block_on(async {
            let conf = aws::config(&opts.conn.endpoint()).await;
            // Path-style addressing works with every S3-compatible service, and with a loopback endpoint, where
            // virtual-host names do not resolve.
            // Checksums are this tool's business: put sends each part's SHA-256 itself and get checks the
            // stored ones itself, so the SDK computes and validates none of its own (a second pass over every
            // byte otherwise).
            let s3 = aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                .build();
            aws_sdk_s3::Client::from_conf(s3)
        });
        Ok(S3Target {
            rt,
            client,
            bucket,
            key,
            opts,
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The object's HEAD with its stored checksum, or None when there is no object at the key.
    async fn lookup(&self) -> anyhow::Result<Option<HeadObjectOutput>> {
        let res = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match res {
            Ok(h) => Ok(Some(h)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(anyhow!(
                "looking up {}: {}",
                self.url(&self.key),
                describe(&e)
            )),
        }
    }

    /// The object's HEAD; a missing object is an error.
    async fn head(&self) -> anyhow::Result<HeadObjectOutput> {
        self.lookup()
            .await?
            .ok_or_else(|| anyhow!("{}: no such object", self.url(&self.key)))
    }
}

impl Backend for S3Target {
    fn put(&self, input: &mut dyn Read, replace: Replace) -> anyhow::Result<Stored> {
        put::put(self, input, replace)
    }

    fn stat(&self) -> anyhow::Result<Entry> {
        self.rt.block_on(admin::stat(self))
    }

    fn get(&self, output: &mut dyn Write) -> anyhow::Result<u64> {
        get::get(self, output)
    }

    fn restore(&self, wait: bool) -> anyhow::Result<String> {
        self.rt.block_on(archive::restore(self, wait))
    }

    fn list(&self) -> anyhow::Result<Vec<Entry>> {
        self.rt
            .block_on(admin::list(self, usize::MAX, admin::Heads::Each))
    }

    fn list_groups_at_most(
        &self,
        _prefix: &str,
        delim: char,
        max: usize,
    ) -> anyhow::Result<Vec<String>> {
        self.rt.block_on(admin::list_groups(self, delim, max))
    }

    fn list_at_most(&self, max: usize) -> anyhow::Result<Vec<Entry>> {
        self.rt.block_on(admin::list(self, max, admin::Heads::None))
    }

    fn remove(&self) -> anyhow::Result<()> {
        self.rt.block_on(admin::remove(self))
    }

    fn gc(&self, older_than_secs: u64, dry_run: bool) -> anyhow::Result<Vec<Stale>> {
        self.rt.block_on(admin::gc(self, older_than_secs, dry_run))
    }

    fn read_many(
        &self,
        urls: &[String],
        max_bytes: u64,
    ) -> anyhow::Result<Vec<anyhow::Result<Vec<u8>>>> {
        let prefix = format!("s3://{}/", self.bucket);
        let keys = urls
            .iter()
            .map(|u| {
                u.strip_prefix(&prefix)
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("{u} is not in the bucket {}", self.bucket))
            })
            .collect::<anyhow::Result<Vec<String>>>()?;
        Ok(self.rt.block_on(small::read_many(self, &keys, max_bytes)))
    }
}
