//! Reading a vault takes a job: an archive retrieval (hours on AWS; by tier) or an inventory retrieval (the
//! list of archives, as of the vault's last daily inventory). A get finds the job already running for its
//! archive or starts one, then exits 75 saying when to come back, or with `--wait` polls with backoff, and
//! finally streams the job's output, checking it against the archive's tree hash. Running again never starts
//! a second job while one is running or its output is still there (24 hours).

use super::{treehash, GlacierTarget, TREE};
use crate::aws::{self, expected, later, Ready, Resuming};
use crate::backend::Entry;
use anyhow::{anyhow, Context};
use aws_sdk_glacier::types::{ActionCode, JobParameters, StatusCode};
use std::io::Write;
use zstream_common::integrity;
use zstream_common::pipe::out_error;

/// What a job is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Archive(&'a str),
    Inventory,
}

/// A job's id and what describes it.
pub struct Job {
    pub id: String,
    /// An inventory's output has no tree hash to check.
    pub inventory: bool,
    pub size: Option<u64>,
    pub tree_hash: Option<String>,
}

/// A job from either of the SDK's two shapes of it (ListJobs' and DescribeJob's), which have the same fields.
macro_rules! job_of {
    ($d:expr) => {{
        let d = $d;
        (
            Job {
                id: d.job_id().unwrap_or_default().to_string(),
                inventory: d.action() == Some(&ActionCode::InventoryRetrieval),
                size: d
                    .archive_size_in_bytes()
                    .filter(|&s| s > 0)
                    .map(|s| s as u64),
                tree_hash: d.archive_sha256_tree_hash().map(str::to_string),
            },
            d.status_code().cloned(),
        )
    }};
}

/// The newest usable job for `kind`: one that succeeded, else one in progress.
async fn find(t: &GlacierTarget, kind: Kind<'_>) -> anyhow::Result<Option<(Job, StatusCode)>> {
    let mut best: Option<(Job, StatusCode)> = None;
    let mut marker = None;
    loop {
        let page = t
            .client
            .list_jobs()
            .vault_name(&t.vault)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(aws::err(format!(
                "listing the jobs of glacier://{}",
                t.vault
            )))?;
        for j in page.job_list() {
            let fits = match kind {
                Kind::Archive(a) => {
                    j.action() == Some(&ActionCode::ArchiveRetrieval) && j.archive_id() == Some(a)
                }
                Kind::Inventory => j.action() == Some(&ActionCode::InventoryRetrieval),
            };
            let rank = |s: &StatusCode| match s {
                StatusCode::Succeeded => 2,
                StatusCode::InProgress => 1,
                _ => 0,
            };
            let (job, status) = job_of!(j);
            let Some(status) = status else { continue };
            if fits && rank(&status) > 0 && best.as_ref().is_none_or(|b| rank(&status) > rank(&b.1))
            {
                best = Some((job, status));
            }
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(best),
        }
    }
}

/// Finds or starts the job; with `wait` waits until it is done.
async fn ensure(t: &GlacierTarget, kind: Kind<'_>, wait: bool) -> anyhow::Result<Ready<Job>> {
    let (a, what) = match kind {
        Kind::Archive(_) => ("a", "retrieval"),
        Kind::Inventory => ("an", "inventory"),
    };
    let url = t.url();
    let job = match find(t, kind).await? {
        Some((j, StatusCode::Succeeded)) => return Ok(Ready::Now(j)),
        Some((j, _)) => {
            zstream_common::say!("{url}: {a} {what} job is already under way");
            j
        }
        None => {
            let params = match kind {
                Kind::Archive(a) => JobParameters::builder()
                    .r#type("archive-retrieval")
                    .archive_id(a)
                    .tier(t.opts.thaw.tier.as_str()),
                Kind::Inventory => JobParameters::builder().r#type("inventory-retrieval"),
            };
            let out = t
                .client
                .initiate_job()
                .vault_name(&t.vault)
                .job_parameters(params.build())
                .send()
                .await
                .map_err(aws::err(format!("starting a {what} job for {url}")))?;
            zstream_common::say!(
                "{url}: {what} job started ({} tier)",
                t.opts.thaw.tier.as_str()
            );
            Job {
                id: out
                    .job_id()
                    .context("the service returned no job id")?
                    .to_string(),
                inventory: kind == Kind::Inventory,
                size: None,
                tree_hash: None,
            }
        }
    };
    let come_back = format!(
        "the {what} job is under way; run this again in {} or pass --wait",
        expected(aws::Archive::Vault, t.opts.thaw.tier.as_str())
    );
    aws::ready(
        wait,
        &format!("{url}: {what} job under way"),
        come_back,
        async || {
            let d = t
                .client
                .describe_job()
                .vault_name(&t.vault)
                .job_id(&job.id)
                .send()
                .await
                .map_err(aws::err(format!("looking up the {what} job for {url}")))?;
            match d.status_code() {
                Some(StatusCode::Succeeded) => Ok(Some(job_of!(&d).0)),
                Some(StatusCode::Failed) => Err(anyhow!(
                    "{url}: the {what} job failed: {}",
                    d.status_message().unwrap_or("no reason given")
                )),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// The finished retrieval job of `archive`, or exit 75 / waiting as the options say.
pub async fn ready(t: &GlacierTarget, archive: &str) -> anyhow::Result<Job> {
    match ensure(t, Kind::Archive(archive), t.opts.thaw.wait).await? {
        Ready::Now(j) => Ok(j),
        Ready::Later(why) => Err(later(&t.url(), why)),
    }
}

/// The restore command: a retrieval job started or found; with `wait`, finished.
pub async fn restore(t: &GlacierTarget, archive: &str, wait: bool) -> anyhow::Result<String> {
    Ok(match ensure(t, Kind::Archive(archive), wait).await? {
        Ready::Now(_) => "retrieved, readable now (for 24 hours)".into(),
        Ready::Later(why) => why,
    })
}

/// Streams a finished retrieval job's output to `output`, resuming after dropped connections, and checks its
/// tree hash. Servers that ignore the Range header (moto) answer with the whole output; the part already written
/// is then skipped.
pub async fn output(t: &GlacierTarget, job: &Job, output: &mut dyn Write) -> anyhow::Result<u64> {
    let url = t.url();
    let mut tree = treehash::Hasher::default();
    let mut written;
    let mut header_hash: Option<String> = None;
    let mut resuming = Resuming::new(&url, job.size);
    let mut from = 0;
    loop {
        let mut req = t
            .client
            .get_job_output()
            .vault_name(&t.vault)
            .job_id(&job.id);
        if from > 0 {
            req = req.range(format!("bytes={from}-"));
        }
        let resp = req
            .send()
            .await
            .map_err(aws::err(format!("reading {url}")))?;
        if from == 0 {
            header_hash = resp.checksum().map(str::to_string);
        }
        // A server that ignores Range sends the whole output again: skip what was written.
        let mut skip = if from > 0 && resp.content_range().is_none() {
            from
        } else {
            0
        };
        let mut body = resp.body;
        let mut at = from;
        let cut = loop {
            match body.try_next().await {
                Ok(Some(mut b)) => {
                    let s = skip.min(b.len() as u64);
                    skip -= s;
                    let b = b.split_off(s as usize);
                    tree.update(&b);
                    output.write_all(&b).map_err(out_error)?;
                    at += b.len() as u64;
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        written = at;
        if !resuming.again(at, cut).await? {
            break;
        }
        from = at;
    }
    if let Some(size) = job.size {
        if written != size {
            return Err(integrity(format!(
                "{url}: read {written} bytes of the archive's {size}"
            )));
        }
    }
    let ours = hex::encode(tree.finish());
    match job.tree_hash.as_ref().or(header_hash.as_ref()) {
        Some(stored) if !stored.eq_ignore_ascii_case(&ours) => Err(integrity(format!(
            "{url}: the bytes read do not match the archive's SHA-256 tree hash ({stored})"
        ))),
        Some(_) => Ok(written),
        None => {
            if !job.inventory {
                zstream_common::say!(
                    "{url}: the service gave no tree hash to check the archive against"
                );
            }
            Ok(written)
        }
    }
}

/// `ls` of a vault: its archives as of the last inventory, which itself takes a job.
pub async fn inventory(t: &GlacierTarget) -> anyhow::Result<Vec<Entry>> {
    let job = match ensure(t, Kind::Inventory, t.opts.thaw.wait).await? {
        Ready::Now(j) => j,
        Ready::Later(why) => return Err(later(&t.url(), why)),
    };
    let mut body = Vec::new();
    // The inventory is the job's output; there is no archive tree hash to check it against.
    output(t, &job, &mut body).await?;
    let inv: Inventory = serde_json::from_slice(&body)
        .with_context(|| format!("the inventory of {} cannot be read", t.url()))?;
    zstream_common::say!("{}: inventory of {}", t.url(), inv.date);
    Ok(inv
        .archives
        .into_iter()
        .map(|a| Entry {
            name: format!("glacier://{}/{}", t.vault, a.id),
            size: a.size,
            storage_class: "GLACIER_VAULT".into(),
            restore: "archived".into(),
            date: a.date,
            checksum: a.tree.map(|h| format!("{TREE}{}", h.to_ascii_lowercase())),
            etag: None,
        })
        .collect())
}

/// A vault inventory (the JSON of an inventory-retrieval job's output). A field that is missing is an error, not
/// a zero.
#[derive(serde::Deserialize)]
struct Inventory {
    #[serde(rename = "InventoryDate")]
    date: String,
    #[serde(rename = "ArchiveList")]
    archives: Vec<Archive>,
}

#[derive(serde::Deserialize)]
struct Archive {
    #[serde(rename = "ArchiveId")]
    id: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "CreationDate")]
    date: String,
    #[serde(rename = "SHA256TreeHash", default)]
    tree: Option<String>,
}
