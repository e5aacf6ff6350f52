//! A local copy of catalog entries already read and authenticated, so that a night's run reads from the store
//! only the entries that are new to it: a night's cost then follows the nights since the last run, not the
//! catalog's years. Entries are written once, as single-part objects, so S3's ETag is the MD5 of their bytes.
//!
//! The cache is never trusted for what it holds. Cached bytes are taken only while the store lists the same name
//! with an ETag that is their MD5 (so they are the bytes the store holds now), only for entries the listing says
//! are readable now, and they are then opened and checked exactly as bytes read from the store are (signature,
//! shape, name, store); bytes that fail are read from the store again. Verify and the monitoring check do not use
//! it: their job is to prove the store. Only targets whose listing gives ETags (S3) are cached.
//!
//! Nor is it trusted as a place. Its directories are opened one by one without following symlinks, and each
//! must be owned by this user and writable by nobody else; files are opened without following symlinks, read
//! only when regular, created exclusively (mode 0600) and removed by name in the directory opened: whoever can
//! write where the cache is can make the run not use it, never make it write or remove elsewhere, or hang.
//!
//! Where: `$ZSTREAM_CATALOG_CACHE` (`off`: none), else `$CACHE_DIRECTORY` (systemd's CacheDirectory=), else
//! `$XDG_CACHE_HOME/zstream/catalog`, else `~/.cache/zstream/catalog`; below it one directory per store id and
//! dataset, holding only the entries of that dataset's last listing.

use md5::Digest as _;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that places (or, with `off`, disables) the cache.
pub const ENV: &str = "ZSTREAM_CATALOG_CACHE";

/// One dataset's cached entries in one store.
pub struct Cache {
    /// The dataset's directory, opened; None when the cache cannot be used (said once).
    dir: Option<OwnedFd>,
    path: PathBuf,
    /// The files of the entries this load listed: the rest are swept.
    used: HashSet<String>,
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

/// Says once per process that the cache is not used, and why.
fn unusable(path: &Path, why: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        zstream_common::say!(
            "the catalog cache {} is not used ({why}); every entry is read from the store ({ENV}=off says so \
             without this)",
            path.display()
        );
    }
}

/// The MD5 an ETag names (a single-part S3 object's, with its quotes), or None (a multipart or encrypted one).
fn etag_md5(etag: &str) -> Option<String> {
    let e = etag.trim_matches('"').to_ascii_lowercase();
    (e.len() == 32 && e.bytes().all(|c| c.is_ascii_hexdigit())).then_some(e)
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens `root`, then each of `below` in it (made, mode 0700, when missing), never through a symlink; each must
/// be owned by this user and writable by nobody else.
fn open_private(root: &Path, below: &[&str]) -> Result<OwnedFd, String> {
    let private = |fd: &OwnedFd, what: &Path| -> Result<(), String> {
        let st = rustix::fs::fstat(fd).map_err(|e| format!("{}: {e}", what.display()))?;
        let me = rustix::process::geteuid().as_raw();
        if st.st_uid != me {
            return Err(format!(
                "{} is owned by uid {}, not {me}",
                what.display(),
                st.st_uid
            ));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(format!("{} is writable by group or others", what.display()));
        }
        Ok(())
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let open = |at: &dyn rustix::fd::AsFd, name: &Path| {
        rustix::fs::openat(at, name, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => {
                format!("{} is not a directory (a symlink?)", name.display())
            }
            e => format!("{}: {e}", name.display()),
        })
    };
    let mut fd = open(&CWD, root)?;
    private(&fd, root)?;
    let mut path = root.to_path_buf();
    for name in below {
        path.push(name);
        match rustix::fs::mkdirat(&fd, *name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let next = open(&fd, Path::new(name))
            .map_err(|e| e.replace(*name, &path.display().to_string()))?;
        private(&next, &path)?;
        fd = next;
    }
    Ok(fd)
}

/// A cache file's name: an entry's URL and ETag, hashed.
fn file_name(url: &str, etag: &str) -> String {
    hex::encode(Sha256::digest(format!("{url}\n{etag}").as_bytes()))
}

/// A name this cache writes: 64 hex digits, or a file being written, `.` NAME `.` PID.
fn ours(name: &str) -> (bool, bool) {
    let hex64 =
        |s: &str| s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let writing = name
        .strip_prefix('.')
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(h, pid)| {
            hex64(h) && !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit())
        });
    (hex64(name), writing)
}

impl Cache {
    /// The cache of `dataset` in the store `store_id` below `root`.
    pub fn new(root: &Path, store_id: &str, dataset: &str) -> Cache {
        let ds = hex::encode(Sha256::digest(dataset.as_bytes()));
        let ds = &ds[..32];
        let path = root.join(store_id).join(ds);
        let dir = match open_private(root, &[store_id, ds]) {
            Ok(fd) => Some(fd),
            Err(why) => {
                unusable(root, &why);
                None
            }
        };
        Cache {
            dir,
            path,
            used: HashSet::new(),
        }
    }

    /// The bytes kept for `url` at version `etag`, if any: a regular file of at most `max` bytes whose MD5 is the
    /// ETag.
    pub fn get(&mut self, url: &str, etag: &str, max: u64) -> Option<Vec<u8>> {
        let md5 = etag_md5(etag)?;
        let dir = self.dir.as_ref()?;
        let name = file_name(url, etag);
        // Non-blocking, so a FIFO put there cannot hold the run; a regular file reads the same either way.
        let fd = rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > max || md5_hex(&bytes) != md5 {
            return None;
        }
        self.used.insert(name);
        Some(bytes)
    }

    /// Keeps `bytes`, just read from `url` listed at `etag` and authenticated, when they are that ETag's bytes. A
    /// failure is said once and costs only speed.
    pub fn put(&mut self, url: &str, etag: &str, bytes: &[u8]) {
        if etag_md5(etag).is_none_or(|m| m != md5_hex(bytes)) {
            return;
        }
        let Some(dir) = &self.dir else { return };
        let name = file_name(url, etag);
        match write(dir, &name, bytes) {
            Ok(()) => {
                self.used.insert(name);
            }
            Err(e) => {
                unusable(&self.path, &format!("writing: {e}"));
                self.dir = None;
            }
        }
    }

    /// Removes every file of this dataset's cache that the load did not use: entries gone from the store or at
    /// another version. Only names the cache writes are touched; a file being written by another run (a check
    /// beside a backup) is left alone unless a killed run left it over an hour ago.
    pub fn sweep(&self) {
        let Some(dir) = &self.dir else { return };
        let Ok(list) = Dir::read_from(dir) else {
            return;
        };
        let names: Vec<String> = list
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .collect();
        for name in names {
            let (entry, writing) = ours(&name);
            let stale = || {
                rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    now - st.st_mtime > 3600
                })
            };
            if (entry && !self.used.contains(&name)) || (writing && stale()) {
                let _ = rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty());
            }
        }
    }
}

/// Writes `bytes` as `name` in `dir`: a new file of this process (never an existing one, never through a
/// symlink), renamed into place.
fn write(dir: &OwnedFd, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!(".{name}.{}", std::process::id());
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let written = std::fs::File::from(fd).write_all(bytes);
    let done = written.and_then(|()| Ok(rustix::fs::renameat(dir, tmp.as_str(), dir, name)?));
    if done.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const ID: &str = "0123456789abcdef";

    /// A cached body and the ETag S3 gives it.
    fn body(text: &str) -> (Vec<u8>, String) {
        (
            text.as_bytes().to_vec(),
            format!("\"{}\"", md5_hex(text.as_bytes())),
        )
    }

    #[test]
    fn bytes_come_back_only_for_the_same_name_and_etag_and_the_rest_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let (one, e1) = body("one");
        let (two, e2) = body("two");
        let mut c = Cache::new(root.path(), ID, "tank/home");
        c.put("s3://b/x", &e1, &one);
        c.put("s3://b/y", &e2, &two);
        let mut c = Cache::new(root.path(), ID, "tank/home");
        assert_eq!(c.get("s3://b/x", &e1, 16), Some(one.clone()));
        assert_eq!(c.get("s3://b/x", &e2, 16), None, "another version");
        assert_eq!(c.get("s3://b/y", &e2, 2), None, "over the bound");
        assert_eq!(
            Cache::new(root.path(), ID, "tank/other").get("s3://b/x", &e1, 16),
            None,
            "another dataset"
        );
        c.sweep();
        let mut c = Cache::new(root.path(), ID, "tank/home");
        assert!(c.get("s3://b/x", &e1, 16).is_some());
        assert_eq!(
            c.get("s3://b/y", &e2, 16),
            None,
            "swept: not listed by the last load"
        );
    }

    #[test]
    fn only_bytes_whose_md5_is_the_etag_are_kept_or_given() {
        let root = tempfile::tempdir().unwrap();
        let (one, e1) = body("one");
        let mut c = Cache::new(root.path(), ID, "tank/home");
        // Bytes read while the store changed under the listing, and a multipart ETag: not kept.
        c.put("s3://b/x", &e1, b"other");
        c.put("s3://b/z", "\"0123456789abcdef0123456789abcdef-2\"", &one);
        assert_eq!(c.get("s3://b/x", &e1, 16), None);
        // Another genuine body put where the cache keeps this name and ETag: not given.
        c.put("s3://b/x", &e1, &one);
        let file = c.path.join(file_name("s3://b/x", &e1));
        fs::write(&file, b"two").unwrap();
        assert_eq!(c.get("s3://b/x", &e1, 16), None);
    }

    #[test]
    fn a_directory_that_is_not_the_users_own_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        let (one, e1) = body("one");
        // The dataset's directory a symlink to elsewhere: nothing there is written or swept.
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("precious"), b"keep").unwrap();
        let ds = &hex::encode(Sha256::digest(b"tank/home"))[..32];
        fs::create_dir_all(root.path().join(ID)).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join(ID).join(ds)).unwrap();
        let mut c = Cache::new(root.path(), ID, "tank/home");
        assert!(c.dir.is_none());
        c.put("s3://b/x", &e1, &one);
        c.sweep();
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 1);
        // A root others can write: not used.
        let open = tempfile::tempdir().unwrap();
        fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Cache::new(open.path(), ID, "tank/home").dir.is_none());
    }

    #[test]
    fn a_fifo_or_symlink_in_place_of_a_file_is_no_entry_and_nothing_is_written_through_one() {
        let root = tempfile::tempdir().unwrap();
        let (one, e1) = body("one");
        let mut c = Cache::new(root.path(), ID, "tank/home");
        let name = file_name("s3://b/x", &e1);
        rustix::fs::mkfifoat(CWD, c.path.join(&name), Mode::from_raw_mode(0o600)).unwrap();
        assert_eq!(
            c.get("s3://b/x", &e1, 16),
            None,
            "a FIFO: no entry, and no hang"
        );
        // The file being written pre-made as a symlink to a victim: the write fails, the victim is untouched.
        let victim = root.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let (two, e2) = body("two");
        let tmp = format!(".{}.{}", file_name("s3://b/y", &e2), std::process::id());
        std::os::unix::fs::symlink(&victim, c.path.join(tmp)).unwrap();
        c.put("s3://b/y", &e2, &two);
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        let _ = one;
    }
}
