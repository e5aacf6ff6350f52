//! A local copy of catalog entries already read and authenticated, so that a night's run reads from the store
//! only the entries that are new to it: a night's cost then follows the nights since the last run, not the
//! catalog's years. Entries are written once and never replaced, and the store's listing says each one's ETag,
//! so a name and ETag seen before name bytes seen before.
//!
//! The cache is never trusted. Cached bytes are opened and checked exactly as bytes read from the store are
//! (signature, shape, name, store) and used only while the store lists the same name with the same ETag; bytes
//! that fail are read from the store again. Whoever can write the cache can at most make a run read more.
//! Only targets whose listing names versions (S3's ETag) are cached: a directory's listing has none, and reading
//! a file costs what reading the cache would.
//!
//! Where: `$ZSTREAM_CATALOG_CACHE` (`off`: none), else `$CACHE_DIRECTORY` (systemd's CacheDirectory=), else
//! `$XDG_CACHE_HOME/zstream/catalog`, else `~/.cache/zstream/catalog`; below it one directory per store id and
//! dataset, holding only the entries of that dataset's last listing.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The environment variable that places (or, with `off`, disables) the cache.
pub const ENV: &str = "ZSTREAM_CATALOG_CACHE";

/// One dataset's cached entries in one store.
pub struct Cache {
    dir: PathBuf,
    /// The files of the entries this load listed: the rest are swept.
    used: HashSet<String>,
    /// Set once a write failed: said once, then the cache is left alone for the run.
    broken: bool,
}

/// The cache's root from the environment, as the module says; None when it is off or no place is known.
pub fn root() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = var(ENV) {
        return (v != "off").then(|| PathBuf::from(v));
    }
    if let Some(d) = var("CACHE_DIRECTORY") {
        // systemd may give several, colon-separated: the first is this unit's.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Some(Path::new(&first).join("catalog"));
    }
    if let Some(x) = var("XDG_CACHE_HOME") {
        return Some(Path::new(&x).join("zstream/catalog"));
    }
    var("HOME").map(|h| Path::new(&h).join(".cache/zstream/catalog"))
}

impl Cache {
    /// The cache of `dataset` in the store `store_id` below `root`.
    pub fn new(root: &Path, store_id: &str, dataset: &str) -> Cache {
        let ds = hex::encode(Sha256::digest(dataset.as_bytes()));
        Cache {
            dir: root.join(store_id).join(&ds[..32]),
            used: HashSet::new(),
            broken: false,
        }
    }

    fn file(url: &str, etag: &str) -> String {
        hex::encode(Sha256::digest(format!("{url}\n{etag}").as_bytes()))
    }

    /// The bytes kept for `url` at version `etag`, if any (at most `max` bytes are read).
    pub fn get(&mut self, url: &str, etag: &str, max: u64) -> Option<Vec<u8>> {
        let name = Self::file(url, etag);
        let mut bytes = Vec::new();
        fs::File::open(self.dir.join(&name))
            .ok()?
            .take(max + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > max {
            return None;
        }
        self.used.insert(name);
        Some(bytes)
    }

    /// Keeps `bytes`, just read from `url` at `etag` and authenticated. A failure is said once and costs only
    /// speed.
    pub fn put(&mut self, url: &str, etag: &str, bytes: &[u8]) {
        let name = Self::file(url, etag);
        if self.broken {
            return;
        }
        match self.write(&name, bytes) {
            Ok(()) => {
                self.used.insert(name);
            }
            Err(e) => {
                self.broken = true;
                zstream_common::say!(
                    "the catalog cache {} cannot be written ({e}); entries are read from the store ({ENV}=off \
                     says so without this)",
                    self.dir.display()
                );
            }
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let tmp = self.dir.join(format!(".{name}.{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        fs::rename(&tmp, self.dir.join(name))
    }

    /// Removes every file of this dataset's cache that the load did not use: entries gone from the store, and
    /// anything else. The cache holds no more than the catalog's last listing.
    pub fn sweep(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for f in dir.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            // Another run's file being written (a monitoring check beside a backup) is left alone, unless a
            // killed run left it long ago.
            let writing = name.starts_with('.')
                && f.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() < 3600));
            if !self.used.contains(&name) && !writing {
                let _ = fs::remove_file(f.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_only_for_the_same_name_and_etag_and_the_rest_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let mut c = Cache::new(root.path(), "0123456789abcdef", "tank/home");
        c.put("s3://b/x", "\"e1\"", b"one");
        c.put("s3://b/y", "\"e2\"", b"two");
        let mut c = Cache::new(root.path(), "0123456789abcdef", "tank/home");
        assert_eq!(
            c.get("s3://b/x", "\"e1\"", 16).as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(c.get("s3://b/x", "\"e9\"", 16), None, "another version");
        assert_eq!(c.get("s3://b/y", "\"e2\"", 2), None, "over the bound");
        assert_eq!(
            Cache::new(root.path(), "0123456789abcdef", "tank/other").get("s3://b/x", "\"e1\"", 16),
            None,
            "another dataset"
        );
        c.sweep();
        let mut c = Cache::new(root.path(), "0123456789abcdef", "tank/home");
        assert!(c.get("s3://b/x", "\"e1\"", 16).is_some());
        assert_eq!(
            c.get("s3://b/y", "\"e2\"", 16),
            None,
            "swept: not listed by the last load"
        );
    }

    #[test]
    fn an_unwritable_cache_is_said_once_and_costs_only_speed() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-directory");
        fs::write(&file, b"").unwrap();
        let mut c = Cache::new(&file, "0123456789abcdef", "tank/home");
        c.put("s3://b/x", "\"e1\"", b"one");
        assert!(c.broken);
        assert_eq!(c.get("s3://b/x", "\"e1\"", 16), None);
    }
}
