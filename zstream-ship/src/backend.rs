//! What every storage target does. The interface is blocking: stdin and stdout are, and a backend that speaks a
//! network protocol runs its own runtime inside. Every backend passes the same conformance suite
//! (tests/tests/ship_conformance.rs in the workspace).

use serde::Serialize;
use std::io::{Read, Write};
pub use zstream_common::atomic::Replace;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// The object's full URL, as `get` and `rm` take it.
    pub name: String,
    pub size: u64,
    pub storage_class: String,
    /// Whether the object can be read now: "available", or an archive restore state.
    pub restore: String,
    /// Last modified, RFC 3339, UTC.
    pub date: String,
    /// The whole object's checksum as the target keeps it (see `Stored::checksum`): `stat` always says it, `ls`
    /// only where the listing carries it (a vault's inventory).
    pub checksum: Option<String>,
    /// The object's version as the target names it (S3's ETag): new bytes under the name give a new one. Where a
    /// target has none (file://, a vault), None. Not a checksum to trust: a reader that keeps bytes by it (the
    /// catalog's cache) checks them again. Not part of `ls --json`.
    #[serde(skip)]
    pub etag: Option<String>,
}

/// What a put stored: what `put --json` prints, and what a reader compares `stat` with.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Stored {
    /// The object's URL (for a vault, with the archive id Glacier gave it).
    pub url: String,
    pub bytes: u64,
    /// The whole object's checksum in the form its target keeps and checks: `sha256:HEX` (file://, kept in
    /// the file's `user.zstream.sha256` attribute), `s3-sha256:BASE64[-PARTS]` (S3's x-amz-checksum-sha256, the
    /// composite for a multipart object), `sha256-tree:HEX` (a vault's tree hash).
    pub checksum: String,
}

/// Whether two checksums in `Stored::checksum` form name the same bytes. S3-compatible services differ in whether
/// a composite carries its "-PARTS" suffix; when both do, the part counts must match too.
pub fn same_checksum(a: &str, b: &str) -> bool {
    match (a.strip_prefix(S3_SHA256), b.strip_prefix(S3_SHA256)) {
        (Some(a), Some(b)) => crate::s3::parts::same_checksum(a, b),
        _ => a == b,
    }
}

pub const S3_SHA256: &str = "s3-sha256:";

/// An upload that never finished (a killed put, or one still running): what `gc` lists, and removes when it is
/// old enough.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Stale {
    pub name: String,
    /// The bytes it holds, when the service says.
    pub size: Option<u64>,
    pub date: String,
    /// When it began, epoch seconds.
    pub started: i64,
    /// Younger than `--older-than`: listed, never removed (it may still be running).
    pub kept: bool,
}

/// The error of a listing of more than `max` names (`Backend::list_at_most`): an integrity error (exit 3), since
/// no honest writer of the store makes so many.
pub fn within(n: usize, max: usize) -> anyhow::Result<()> {
    if n > max {
        return Err(zstream_common::integrity(format!(
            "more than {max} names, more than it is read for (were names planted there?); not read further"
        )));
    }
    Ok(())
}

/// NAME cut after the first DELIM that follows PREFIX (whole when there is none).
pub fn group_of(name: String, prefix: &str, delim: char) -> String {
    match name.strip_prefix(prefix).and_then(|rest| rest.find(delim)) {
        Some(i) => name[..prefix.len() + i + delim.len_utf8()].to_string(),
        None => name,
    }
}

pub trait Backend {
    /// Stores everything `input` yields as the object; returns its size. The object appears whole or not at all:
    /// any failure leaves the old object (if any) untouched and no new one. With `Replace::No` an object already
    /// at the key is never replaced (checked up front and again, race-free, at the commit): a pipe cannot tell a
    /// clean end of input from a dying upstream, so a run must not be able to destroy what is stored.
    fn put(&self, input: &mut dyn Read, replace: Replace) -> anyhow::Result<Stored>;
    /// Writes the object to `output`; returns its size.
    fn get(&self, output: &mut dyn Write) -> anyhow::Result<u64>;
    /// The object as the target holds it now, its stored checksum included (read back, not remembered).
    fn stat(&self) -> anyhow::Result<Entry>;
    /// The objects under this prefix.
    fn list(&self) -> anyhow::Result<Vec<Entry>>;
    /// The objects under this prefix, or an error once there are more than `max`: for a reader that must hold
    /// the listing and must not let whoever can write the prefix decide how much memory that takes. A service
    /// that lists in pages stops at the page that passes `max`, and sends no request per object (an archived
    /// object's state is "archived" whether or not a restore of it is under way: `stat` tells).
    fn list_at_most(&self, max: usize) -> anyhow::Result<Vec<Entry>> {
        let all = self.list()?;
        within(all.len(), max)?;
        Ok(all)
    }
    /// The names under `prefix` (the URL this target was opened with) cut after the first `delim` that follows
    /// it, each once (S3's common prefixes: `…/catalog/tank/home@` for every entry of that dataset), and the
    /// names without one whole; an error once there are more than `max`. For a reader that needs the groups, not
    /// every object: S3 groups as it lists, so memory and pages go by groups, not objects.
    fn list_groups_at_most(
        &self,
        prefix: &str,
        delim: char,
        max: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list()?
            .into_iter()
            .map(|e| group_of(e.name, prefix, delim))
            .collect();
        out.sort();
        out.dedup();
        within(out.len(), max)?;
        Ok(out)
    }
    fn remove(&self) -> anyhow::Result<()>;
    /// Makes an archived object readable: asks for a restore unless one is under way or done, and with `wait`
    /// waits until it is. Returns what it found or did, for stderr.
    fn restore(&self, wait: bool) -> anyhow::Result<String> {
        let _ = wait;
        Ok("always readable; nothing to restore".into())
    }
    /// Unfinished uploads under this prefix: those older than `older_than_secs` removed unless `dry_run`, the
    /// younger ones listed as kept.
    fn gc(&self, older_than_secs: u64, dry_run: bool) -> anyhow::Result<Vec<Stale>>;
    /// Reads many small objects at once (`urls` as `list` names them, under this prefix), each refused when it
    /// holds more than `max_bytes`, so that nothing planted under the prefix can fill memory. One result per
    /// URL, in order. Checks no checksum: for objects that authenticate themselves (a catalog's signed records).
    fn read_many(
        &self,
        urls: &[String],
        max_bytes: u64,
    ) -> anyhow::Result<Vec<anyhow::Result<Vec<u8>>>> {
        let _ = (urls, max_bytes);
        anyhow::bail!("this target cannot read objects in a batch")
    }
}

/// The refusal of a put that would replace an object.
pub fn exists(url: &str) -> anyhow::Error {
    anyhow::anyhow!("{url} exists; put never replaces an object (give --overwrite to replace it)")
}

/// Whether an upload begun at `started` is at least `older_than_secs` old at `now` (epoch seconds). A start in
/// the future (a skewed clock) is young, except that 0 takes every upload, whatever its date says.
pub fn is_stale(now: i64, started: i64, older_than_secs: u64) -> bool {
    older_than_secs == 0
        || now
            .checked_sub(started)
            .and_then(|age| u64::try_from(age).ok())
            .is_some_and(|age| age >= older_than_secs)
}

/// Seconds since the epoch, now (what gc measures ages against).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch as RFC 3339 UTC (the SDK's own formatter, already built).
pub fn rfc3339(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_never_wrap() {
        assert!(super::is_stale(100, 40, 60));
        assert!(!super::is_stale(100, 41, 60));
        assert!(
            !super::is_stale(100, 200, 1),
            "a start in the future is young"
        );
        assert!(super::is_stale(100, 200, 0), "0 takes every upload");
        assert!(
            !super::is_stale(i64::MAX, i64::MIN, 1),
            "an overflowing age is not taken"
        );
        assert!(!super::is_stale(100, 0, u64::MAX));
    }

    #[test]
    fn dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_789_296), "2026-11-27T14:21:36Z");
    }
}
