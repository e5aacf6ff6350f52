//! ls, rm and gc on a bucket.

use super::archive::State;
use super::S3Target;
use crate::aws::err;
use crate::backend::{rfc3339, Entry, Stale, S3_SHA256};

/// How much a listing says of an archived object's restore.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Heads {
    /// A HEAD of each archived object (the listing does not say whether a restore is under way): `ls`.
    Each,
    /// Its class alone ("archived"): a bounded reader's listing (`list_at_most`), which must not let whoever
    /// can write the prefix make it send a request per planted object.
    None,
}

/// A ListObjectsV2 of the target's prefix.
fn listing(
    t: &S3Target,
) -> aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder {
    t.client.list_objects_v2().bucket(&t.bucket).prefix(&t.key)
}

/// The objects under the target's prefix; an error once there are more than `max` (`Backend::list_at_most`),
/// checked at each page before its objects are looked at, so memory and requests stay bounded.
pub async fn list(t: &S3Target, max: usize, heads: Heads) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut pages = listing(t).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(err(format!("listing {}", t.url(&t.key))))?;
        crate::backend::within(out.len().saturating_add(page.contents().len()), max)?;
        for o in page.contents() {
            let key = o.key().unwrap_or_default();
            let mut state =
                State::from_parts(o.storage_class().map(|c| c.as_str().into()).as_ref(), None);
            if state != State::Available && heads == Heads::Each {
                // The listing does not say whether a restore is under way; a HEAD does.
                let h = t
                    .client
                    .head_object()
                    .bucket(&t.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(err(format!("looking up {}", t.url(key))))?;
                state = State::of(&h);
            }
            out.push(Entry {
                name: t.url(key),
                size: o.size().unwrap_or(0).max(0) as u64,
                storage_class: o
                    .storage_class()
                    .map_or("STANDARD".into(), |c| c.as_str().into()),
                restore: state.name().into(),
                date: o
                    .last_modified()
                    .map(|d| rfc3339(d.secs()))
                    .unwrap_or_default(),
                // A listing carries no checksum values; stat's HEAD does.
                checksum: None,
                etag: o.e_tag().map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// The groups of names under the target's prefix (`Backend::list_groups_at_most`): S3's common prefixes for
/// `delim`, and the keys without it, as URLs; an error once there are more than `max`, checked at each page.
pub async fn list_groups(t: &S3Target, delim: char, max: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pages = listing(t)
        .delimiter(delim.to_string())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(err(format!("listing {}", t.url(&t.key))))?;
        let n = page.common_prefixes().len() + page.contents().len();
        crate::backend::within(out.len().saturating_add(n), max)?;
        out.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(|p| t.url(p)),
        );
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| t.url(k)),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One object by its HEAD, with the checksum S3 stored for it.
pub async fn stat(t: &S3Target) -> anyhow::Result<Entry> {
    let h = t.head().await?;
    Ok(Entry {
        name: t.url(&t.key),
        size: h.content_length().unwrap_or(0).max(0) as u64,
        storage_class: h
            .storage_class()
            .map_or("STANDARD".into(), |c| c.as_str().into()),
        restore: State::of(&h).name().into(),
        date: h
            .last_modified()
            .map(|d| rfc3339(d.secs()))
            .unwrap_or_default(),
        checksum: h.checksum_sha256().map(|c| format!("{S3_SHA256}{c}")),
        etag: h.e_tag().map(str::to_string),
    })
}

pub async fn remove(t: &S3Target) -> anyhow::Result<()> {
    let url = t.url(&t.key);
    // S3 deletes of a missing key succeed; say so instead, as rm(1) would.
    t.head().await?;
    t.client
        .delete_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .send()
        .await
        .map_err(err(format!("removing {url}")))?;
    Ok(())
}

/// Unfinished multipart uploads (killed puts) under the prefix: their parts cost storage until aborted.
pub async fn gc(t: &S3Target, older_than_secs: u64, dry_run: bool) -> anyhow::Result<Vec<Stale>> {
    let now = crate::backend::now_secs();
    let mut out = Vec::new();
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let list = t
            .client
            .list_multipart_uploads()
            .bucket(&t.bucket)
            .prefix(&t.key)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .map_err(err(format!(
                "listing unfinished uploads under {}",
                t.url(&t.key)
            )))?;
        for u in list.uploads() {
            let started = u.initiated().map_or(now, |d| d.secs());
            let kept = !crate::backend::is_stale(now, started, older_than_secs);
            let (key, id) = (
                u.key().unwrap_or_default(),
                u.upload_id().unwrap_or_default(),
            );
            // Informational only, and some services' answers are not parseable (moto's ListParts): no size
            // then, rather than no gc.
            let size = uploaded(t, key, id).await.ok();
            if !dry_run && !kept {
                t.client
                    .abort_multipart_upload()
                    .bucket(&t.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(err(format!("aborting the upload of {}", t.url(key))))?;
            }
            out.push(Stale {
                name: t.url(key),
                size,
                date: rfc3339(started),
                started,
                kept,
            });
        }
        if list.is_truncated() != Some(true) {
            break;
        }
        key_marker = list.next_key_marker().map(str::to_string);
        id_marker = list.next_upload_id_marker().map(str::to_string);
    }
    Ok(out)
}

/// The bytes an unfinished upload holds.
async fn uploaded(t: &S3Target, key: &str, id: &str) -> anyhow::Result<u64> {
    let mut size = 0;
    let mut marker = None;
    loop {
        let parts = t
            .client
            .list_parts()
            .bucket(&t.bucket)
            .key(key)
            .upload_id(id)
            .set_part_number_marker(marker.take())
            .send()
            .await
            .map_err(err(format!(
                "listing the parts of an upload of {}",
                t.url(key)
            )))?;
        size += parts
            .parts()
            .iter()
            .map(|p| p.size().unwrap_or(0).max(0) as u64)
            .sum::<u64>();
        if parts.is_truncated() != Some(true) {
            return Ok(size);
        }
        marker = parts.next_part_number_marker().map(str::to_string);
    }
}
