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
}

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

pub trait Backend {
    /// Stores everything `input` yields as the object; returns its size. The object appears whole or not at all:
    /// any failure leaves the old object (if any) untouched and no new one. With `Replace::No` an object already
    /// at the key is never replaced (checked up front and again, race-free, at the commit): a pipe cannot tell a
    /// clean end of input from a dying upstream, so a run must not be able to destroy what is stored.
    fn put(&self, input: &mut dyn Read, replace: Replace) -> anyhow::Result<u64>;
    /// Writes the object to `output`; returns its size.
    fn get(&self, output: &mut dyn Write) -> anyhow::Result<u64>;
    /// The objects under this prefix.
    fn list(&self) -> anyhow::Result<Vec<Entry>>;
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
