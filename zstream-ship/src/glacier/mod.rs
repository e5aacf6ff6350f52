//! `glacier://vault`: Amazon Glacier vaults, the legacy archive API (closed to new AWS customers; S3 with an
//! archive storage class is the recommended target). An upload is a multipart upload of power-of-two MiB parts,
//! each with its SHA-256 tree hash, completed with the archive's tree hash, and Glacier assigns the archive id,
//! which `put` prints as the URL to read it back by. Reading is a retrieval job (hours) and then its output,
//! checked against the archive's tree hash; see `jobs`.

mod jobs;
pub mod treehash;

/// How a vault's checksum is written in `Stored::checksum`.
pub const TREE: &str = "sha256-tree:";

use crate::aws;
use crate::backend::{rfc3339, Backend, Entry, Replace, Stale, Stored};
use crate::options::Options;
use crate::pump::{arm_abort, Abort, InFlight, Parts, Upload};
use anyhow::{anyhow, Context};
use aws_sdk_glacier::primitives::ByteStream;
use std::io::{Read, Write};
use tokio::runtime::Runtime;
use zstream_common::interrupt::Armed;
use zstream_common::pipe::{in_error, read_full};
use zstream_common::usage;

/// Glacier's part sizes: a power of two from 1 MiB to 4 GiB, at most 10,000 of them, one size for all but the last.
pub const MIN_PART: u64 = 1 << 20;
pub const MAX_PART: u64 = 4 << 30;
pub const MAX_PARTS: u64 = 10_000;

pub struct GlacierTarget {
    rt: Runtime,
    client: aws_sdk_glacier::Client,
    vault: String,
    archive: Option<String>,
    opts: Options,
}

/// The part size: the wanted size, or large enough for the hinted stream in 10,000 parts, as a power of two.
pub fn part_size(wanted: u64, size_hint: Option<u64>) -> u64 {
    let need = size_hint.map_or(0, |h| h.div_ceil(MAX_PARTS));
    wanted
        .max(need)
        .clamp(MIN_PART, MAX_PART)
        .next_power_of_two()
        .min(MAX_PART)
}

impl GlacierTarget {
    pub fn new(
        vault: String,
        archive: Option<String>,
        opts: Options,
    ) -> anyhow::Result<GlacierTarget> {
        let rt = aws::runtime(opts.transfer.concurrency.into())?;
        let client = rt.block_on(async {
            aws_sdk_glacier::Client::new(&aws::config(&opts.conn.endpoint()).await)
        });
        Ok(GlacierTarget {
            rt,
            client,
            vault,
            archive,
            opts,
        })
    }

    fn url(&self) -> String {
        match &self.archive {
            Some(a) => format!("glacier://{}/{a}", self.vault),
            None => format!("glacier://{}", self.vault),
        }
    }

    fn archive(&self) -> anyhow::Result<&str> {
        self.archive.as_deref().ok_or_else(|| {
            usage(format!(
                "{}: name an archive, glacier://{}/ARCHIVE_ID (put prints it)",
                self.url(),
                self.vault
            ))
        })
    }

    fn description(&self) -> String {
        self.opts
            .upload
            .description
            .clone()
            .unwrap_or_else(|| "zstream-ship".into())
    }

    fn put_single(&self, data: Vec<u8>) -> anyhow::Result<(String, String)> {
        let sum = hex::encode(treehash::of(&data));
        let out = self
            .rt
            .block_on(
                self.client
                    .upload_archive()
                    .vault_name(&self.vault)
                    .archive_description(self.description())
                    .checksum(&sum)
                    .body(ByteStream::from(data))
                    .send(),
            )
            .map_err(aws::err(format!("uploading to {}", self.url())))?;
        let id = out
            .archive_id()
            .map(str::to_string)
            .context("the service returned no archive id")?;
        Ok((id, sum))
    }

    fn put_multipart(
        &self,
        part: u64,
        first: Vec<u8>,
        input: &mut dyn Read,
        (armed, in_flight, upload): (Armed, &InFlight, &Upload),
    ) -> anyhow::Result<(String, String, u64)> {
        let url = self.url();
        upload.starting();
        let id = self
            .rt
            .block_on(
                self.client
                    .initiate_multipart_upload()
                    .vault_name(&self.vault)
                    .archive_description(self.description())
                    .part_size(part.to_string())
                    .send(),
            )
            .map_err(aws::err(format!("starting an upload to {url}")))
            .and_then(|out| {
                out.upload_id()
                    .map(str::to_string)
                    .context("the service returned no upload id")
            });
        let id = match id {
            Ok(id) => {
                upload.started(&id);
                id
            }
            Err(e) => {
                upload.not_started();
                return Err(e);
            }
        };
        let too_long = format!(
            "the stream is longer than 10,000 parts of {part} bytes; give --size-hint (Glacier parts cannot grow)"
        );
        let result = Parts {
            rt: &self.rt,
            concurrency: usize::from(self.opts.transfer.concurrency),
            size: &|_| part,
            max_parts: MAX_PARTS,
            too_long: &too_long,
            in_flight,
        }
        .run(first, input, |_, offset, data| {
            let req = self
                .client
                .upload_multipart_part()
                .vault_name(&self.vault)
                .upload_id(&id);
            let url = url.clone();
            self.rt.spawn(async move {
                let tree = treehash::of(&data);
                let end = offset + data.len() as u64 - 1;
                req.range(format!("bytes {offset}-{end}/*"))
                    .checksum(hex::encode(tree))
                    .body(ByteStream::from(data))
                    .send()
                    .await
                    .map_err(aws::err(format!("uploading bytes {offset}-{end} to {url}")))?;
                Ok(tree)
            })
        })
        .and_then(|(trees, total)| {
            let sum = hex::encode(treehash::reduce(&trees));
            let complete = self
                .client
                .complete_multipart_upload()
                .vault_name(&self.vault)
                .upload_id(&id)
                .archive_size(total.to_string())
                .checksum(&sum);
            let out = armed
                .commit(|| self.rt.block_on(complete.send()).map_err(Box::new))
                .map_err(|e| aws::err(format!("completing the upload to {url}"))(*e))?;
            let archive = out
                .archive_id()
                .map(str::to_string)
                .context("the service returned no archive id")?;
            Ok((archive, sum, total))
        });
        // Nothing half-made may stay behind.
        result.map_err(|e| aws::after_abort(e, self.rt.block_on(self.aborter()(id))))
    }

    /// Aborting an upload by its id, owning what it needs (the interrupt cleanup runs it on its own thread).
    fn aborter(&self) -> impl FnOnce(String) -> Abort + Send + 'static {
        let (client, vault) = (self.client.clone(), self.vault.clone());
        move |id: String| -> Abort {
            Box::pin(async move {
                client
                    .abort_multipart_upload()
                    .vault_name(vault)
                    .upload_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| anyhow::anyhow!("{}", aws::describe(&e)))
            })
        }
    }
}

impl Backend for GlacierTarget {
    /// A vault names every archive itself: a put never replaces anything, whatever `_replace` says.
    /// The tree hash in the answer is the one Glacier checked the archive against before it named it.
    fn put(&self, input: &mut dyn Read, _replace: Replace) -> anyhow::Result<Stored> {
        // Armed before a byte is read or anything started: a signal at any point ends the put saying what it
        // undid.
        let (upload, in_flight) = (Upload::default(), InFlight::default());
        let armed = arm_abort(&self.rt, self.url(), &in_flight, &upload, self.aborter());
        let part = part_size(self.opts.upload.part_size, self.opts.upload.size_hint);
        let mut first = vec![0u8; part as usize];
        let got = read_full(&mut &mut *input, &mut first).map_err(in_error)?;
        first.truncate(got);
        let (archive, sum, total) = if (got as u64) < part {
            // One call makes the archive: the commit, which a signal waits for.
            let (archive, sum) = armed.commit(|| self.put_single(first))?;
            (archive, sum, got as u64)
        } else {
            self.put_multipart(part, first, input, (armed, &in_flight, &upload))?
        };
        Ok(Stored {
            url: format!("glacier://{}/{archive}", self.vault),
            bytes: total,
            checksum: format!("{TREE}{sum}"),
        })
    }

    fn stat(&self) -> anyhow::Result<Entry> {
        Err(usage(format!(
            "{}: a vault cannot look up one archive (only a day-old inventory lists them: ls --wait); put \
             --json prints the tree hash Glacier checked at upload",
            self.url()
        )))
    }

    fn get(&self, output: &mut dyn Write) -> anyhow::Result<u64> {
        let archive = self.archive()?;
        let job = self.rt.block_on(jobs::ready(self, archive))?;
        self.rt.block_on(jobs::output(self, &job, output))
    }

    fn restore(&self, wait: bool) -> anyhow::Result<String> {
        let archive = self.archive()?;
        self.rt.block_on(jobs::restore(self, archive, wait))
    }

    fn list(&self) -> anyhow::Result<Vec<Entry>> {
        self.rt.block_on(jobs::inventory(self))
    }

    fn remove(&self) -> anyhow::Result<()> {
        let archive = self.archive()?;
        self.rt
            .block_on(
                self.client
                    .delete_archive()
                    .vault_name(&self.vault)
                    .archive_id(archive)
                    .send(),
            )
            .map_err(aws::err(format!("removing {}", self.url())))?;
        Ok(())
    }

    fn gc(&self, older_than_secs: u64, dry_run: bool) -> anyhow::Result<Vec<Stale>> {
        let now = crate::backend::now_secs();
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client
                        .list_multipart_uploads()
                        .vault_name(&self.vault)
                        .set_marker(marker.take())
                        .send(),
                )
                .map_err(aws::err(format!(
                    "listing unfinished uploads in {}",
                    self.url()
                )))?;
            for u in page.uploads_list() {
                let started = u
                    .creation_date()
                    .and_then(|d| {
                        aws_smithy_types::DateTime::from_str(
                            d,
                            aws_smithy_types::date_time::Format::DateTime,
                        )
                        .ok()
                    })
                    .map_or(now, |d| d.secs());
                let kept = !crate::backend::is_stale(now, started, older_than_secs);
                let id = u.multipart_upload_id().unwrap_or_default();
                if !dry_run && !kept {
                    self.rt
                        .block_on(
                            self.client
                                .abort_multipart_upload()
                                .vault_name(&self.vault)
                                .upload_id(id)
                                .send(),
                        )
                        .map_err(|e| {
                            anyhow!(
                                "aborting upload {id} in {}: {}",
                                self.url(),
                                aws::describe(&e)
                            )
                        })?;
                }
                out.push(Stale {
                    name: format!("glacier://{}/upload/{id}", self.vault),
                    size: None,
                    date: rfc3339(started),
                    started,
                    kept,
                });
            }
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn part_sizes_are_powers_of_two_that_fit_the_hint() {
        assert_eq!(super::part_size(16 << 20, None), 16 << 20);
        assert_eq!(super::part_size(5 << 20, None), 8 << 20);
        assert_eq!(super::part_size(1, None), 1 << 20);
        assert_eq!(super::part_size(16 << 20, Some(500 << 30)), 64 << 20);
        assert!(super::part_size(16 << 20, Some(500 << 30)) * 10_000 >= 500 << 30);
        assert_eq!(super::part_size(16 << 20, Some(u64::MAX / 4)), 4 << 30);
    }
}
