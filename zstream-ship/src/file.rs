//! `file://`: a local or mounted directory (an off-site disk, a NAS). An object is written under a temporary
//! name beside its final one, fsynced, and renamed into place, then the directory is fsynced: a crash or a failed
//! put leaves no complete-looking object, an existing object is replaced only with --overwrite and then only by
//! a whole new one, and a SIGTERM or SIGINT removes the temporary file before the process dies. Temporary files
//! left by a SIGKILLed put are what `gc` finds.

use crate::backend::{exists, group_of, rfc3339, within, Backend, Entry, Replace, Stale, Stored};
use anyhow::Context;
use rustix::fs::{fgetxattr, fsetxattr, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zstream_common::atomic::{self, sync_dir, Pending};
use zstream_common::interrupt;
use zstream_common::pipe::{in_error, out_error, read_full};

/// The extended attribute that holds a file's SHA-256 (hex), and how `Stored::checksum` writes it.
const XATTR: &str = "user.zstream.sha256";
const SHA256: &str = "sha256:";

/// Marks a file as an unfinished upload: `.NAME.zstream-partial.PID.RANDOM`.
const PARTIAL: &str = ".zstream-partial.";

pub struct FileTarget {
    /// The object's path, or for ls and gc the prefix (a directory, or a directory and the start of names).
    pub path: PathBuf,
}

impl FileTarget {
    /// The object, opened for reading, and its URL; a missing one is "no such object".
    fn open(&self) -> anyhow::Result<(File, String)> {
        let url = format!("file://{}", self.path.display());
        open_regular(&self.path).map(|f| (f, url))
    }

    /// The directory to walk and the name prefix within it.
    fn prefix(&self) -> (PathBuf, String) {
        let s = self.path.to_string_lossy();
        if s.ends_with('/') || self.path.is_dir() {
            (self.path.clone(), String::new())
        } else {
            let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
            (
                dir,
                self.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        }
    }

    /// Every file below the prefix, with its path relative to the prefix's directory.
    fn walk(&self) -> anyhow::Result<Vec<(String, PathBuf, fs::Metadata)>> {
        let mut out = Vec::new();
        self.walk_each(|name, path, meta| {
            out.push((name, path, meta));
            Ok(())
        })?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Each file under the prefix (its name below the prefix's directory, its path, its metadata), in no order,
    /// holding none of them: `walk` collects, `list_groups_at_most` keeps one name per group.
    fn walk_each(
        &self,
        mut f: impl FnMut(String, PathBuf, fs::Metadata) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (dir, start) = self.prefix();
        let mut todo = vec![(dir.clone(), String::new())];
        while let Some((d, rel)) = todo.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_empty() => {
                    return Ok(())
                }
                Err(e) => return Err(e).with_context(|| format!("listing {}", d.display())),
            };
            for entry in rd {
                let entry = entry.with_context(|| format!("listing {}", d.display()))?;
                let name = format!("{rel}{}", entry.file_name().to_string_lossy());
                let meta = entry
                    .metadata()
                    .with_context(|| format!("reading {}", entry.path().display()))?;
                if meta.is_dir() {
                    if name.starts_with(&start) || start.starts_with(&format!("{name}/")) {
                        todo.push((entry.path(), format!("{name}/")));
                    }
                } else if meta.is_file() && meant(&name).starts_with(&start) {
                    f(name, entry.path(), meta)?;
                }
            }
        }
        Ok(())
    }
}

/// The name a file stands for: an unfinished upload's is the object's it was to become, so `gc` of a prefix
/// finds the leftovers of exactly the puts under that prefix.
fn meant(name: &str) -> std::borrow::Cow<'_, str> {
    let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
    match file.strip_prefix('.').and_then(|f| f.split_once(PARTIAL)) {
        Some((object, _)) if !dir.is_empty() => format!("{dir}/{object}").into(),
        Some((object, _)) => object.to_string().into(),
        None => name.into(),
    }
}

/// A file's name as a listing gives it.
fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A file as `ls` and `stat` show it.
fn entry(path: &Path, m: &fs::Metadata, checksum: Option<String>) -> Entry {
    Entry {
        name: url_of(path),
        size: m.len(),
        storage_class: "FILE".into(),
        restore: "available".into(),
        date: rfc3339(m.mtime()),
        checksum,
        etag: None,
    }
}

/// Removes this process's unfinished files (named with `prefix`) in `dir`; says what it did.
fn remove_unfinished(dir: &Path, prefix: &str) -> String {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        return "nothing was written".into();
    }
    found
        .iter()
        .map(|tmp| match fs::remove_file(tmp) {
            Ok(()) => format!("removed the unfinished {}", tmp.display()),
            Err(e) => format!("removing the unfinished {} failed: {e}", tmp.display()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_partial(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('.') && n.contains(PARTIAL))
}

/// An object's file opened for reading: a regular file, never through a symlink and never a FIFO or device
/// (someone who can write the directory could otherwise make a read hang, or read a file outside it). A missing
/// one is "no such object".
pub fn open_regular(path: &Path) -> anyhow::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let url = format!("file://{}", path.display());
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{url}: no such object"),
            _ if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                anyhow::anyhow!("{url}: a symbolic link, not an object")
            }
            _ => anyhow::Error::new(e).context(format!("opening {url}")),
        })?;
    let m = f.metadata().with_context(|| format!("reading {url}"))?;
    if !m.is_file() {
        anyhow::bail!("{url}: not a regular file");
    }
    // Reads of a regular file never block; the flag only kept the open itself from waiting on a FIFO.
    rustix::fs::fcntl_setfl(&f, OFlags::empty()).with_context(|| format!("opening {url}"))?;
    Ok(f)
}

impl Backend for FileTarget {
    fn put(&self, input: &mut dyn Read, replace: Replace) -> anyhow::Result<Stored> {
        let url = format!("file://{}", self.path.display());
        if replace == Replace::No && self.path.exists() {
            return Err(exists(&url));
        }
        let dir = self.path.parent().context("no directory")?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = self
            .path
            .file_name()
            .context("no object name")?
            .to_string_lossy();
        let prefix = format!(".{name}{PARTIAL}{}.", std::process::id());
        // Armed before the temporary file exists, and finding it by this process's prefix: a signal at any point,
        // even while it is being created, leaves no unfinished file behind.
        let armed = interrupt::arm({
            let (dir, prefix) = (dir.to_path_buf(), prefix.clone());
            move || remove_unfinished(&dir, &prefix)
        });
        let mut pending = Pending::create_with_prefix(&self.path, &prefix)?;
        let mut buf = vec![0u8; zstream_common::BUF_SIZE];
        let mut total = 0u64;
        let mut sha = Sha256::new();
        loop {
            let n = read_full(&mut &mut *input, &mut buf).map_err(in_error)?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            pending
                .file()
                .write_all(&buf[..n])
                .with_context(|| format!("writing {}", pending.temp_path().display()))?;
            total += n as u64;
        }
        let sum = hex::encode(sha.finalize());
        // The digest travels with the file, set before it gets its name, so `stat` reads it back without reading
        // the object. A filesystem without user attributes only makes `stat` read the whole file instead.
        match fsetxattr(pending.file(), XATTR, sum.as_bytes(), XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if e == Errno::NOTSUP || e == Errno::PERM => {}
            Err(e) => {
                return Err(std::io::Error::from(e)).with_context(|| {
                    format!("setting {XATTR} on {}", pending.temp_path().display())
                })
            }
        }
        armed.commit(|| pending.commit(replace)).map_err(|e| {
            match e.downcast_ref::<atomic::Exists>() {
                Some(_) => exists(&url),
                None => e,
            }
        })?;
        Ok(Stored {
            url,
            bytes: total,
            checksum: format!("{SHA256}{sum}"),
        })
    }

    fn stat(&self) -> anyhow::Result<Entry> {
        let (f, url) = self.open()?;
        let m = f.metadata().with_context(|| format!("reading {url}"))?;
        let mut value = [0u8; 64];
        let sum = match fgetxattr(&f, XATTR, &mut value[..]) {
            Ok(64) if value.iter().all(u8::is_ascii_hexdigit) => {
                String::from_utf8_lossy(&value).into_owned()
            }
            // No digest beside the file (another tool's, or a filesystem without attributes): read it.
            _ => {
                let mut sha = Sha256::new();
                std::io::copy(&mut &f, &mut sha).with_context(|| format!("reading {url}"))?;
                hex::encode(sha.finalize())
            }
        };
        Ok(entry(&self.path, &m, Some(format!("{SHA256}{sum}"))))
    }

    fn get(&self, output: &mut dyn Write) -> anyhow::Result<u64> {
        let (mut f, _) = self.open()?;
        let mut buf = vec![0u8; zstream_common::BUF_SIZE];
        let mut total = 0u64;
        loop {
            let n = read_full(&mut f, &mut buf)
                .with_context(|| format!("reading {}", self.path.display()))?;
            if n == 0 {
                return Ok(total);
            }
            output.write_all(&buf[..n]).map_err(out_error)?;
            total += n as u64;
        }
    }

    fn list(&self) -> anyhow::Result<Vec<Entry>> {
        Ok(self
            .walk()?
            .into_iter()
            .filter(|(name, _, _)| !is_partial(name))
            .map(|(_, path, m)| entry(&path, &m, None))
            .collect())
    }

    fn list_groups_at_most(
        &self,
        prefix: &str,
        delim: char,
        max: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut groups = std::collections::BTreeSet::new();
        self.walk_each(|name, path, _| {
            if !is_partial(&name) {
                groups.insert(group_of(url_of(&path), prefix, delim));
                within(groups.len(), max)?;
            }
            Ok(())
        })?;
        Ok(groups.into_iter().collect())
    }

    fn read_many(
        &self,
        urls: &[String],
        max_bytes: u64,
    ) -> anyhow::Result<Vec<anyhow::Result<Vec<u8>>>> {
        Ok(urls
            .iter()
            .map(|u| {
                let path = u
                    .strip_prefix("file://")
                    .ok_or_else(|| anyhow::anyhow!("{u} is not a file:// URL"))?;
                let f = open_regular(Path::new(path))?;
                let mut bytes = Vec::new();
                f.take(max_bytes + 1)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {u}"))?;
                if bytes.len() as u64 > max_bytes {
                    anyhow::bail!("{u}: more than the {max_bytes} bytes such an object may hold");
                }
                Ok(bytes)
            })
            .collect())
    }

    fn remove(&self) -> anyhow::Result<()> {
        let url = format!("file://{}", self.path.display());
        fs::remove_file(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{url}: no such object"),
            _ => anyhow::Error::new(e).context(format!("removing {url}")),
        })?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir);
        }
        Ok(())
    }

    fn gc(&self, older_than_secs: u64, dry_run: bool) -> anyhow::Result<Vec<Stale>> {
        let now = crate::backend::now_secs();
        let mut stale = Vec::new();
        for (name, path, m) in self.walk()? {
            if !is_partial(&name) {
                continue;
            }
            let kept = !crate::backend::is_stale(now, m.mtime(), older_than_secs);
            if !dry_run && !kept {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
            stale.push(Stale {
                name: format!("file://{}", path.display()),
                size: Some(m.len()),
                date: rfc3339(m.mtime()),
                started: m.mtime(),
                kept,
            });
        }
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn leftovers_stand_for_their_objects() {
        assert_eq!(
            super::meant("fs@a.zstream-partial.12.x"),
            "fs@a.zstream-partial.12.x"
        );
        assert_eq!(super::meant(".fs@a.zstream-partial.12.x"), "fs@a");
        assert_eq!(super::meant("pool/.fs@a.zstream-partial.12.x"), "pool/fs@a");
        assert_eq!(super::meant("pool/fs@a"), "pool/fs@a");
        assert_eq!(super::meant(".hidden"), ".hidden");
    }

    #[test]
    fn groups_are_one_name_each_cut_after_the_delimiter() {
        use crate::backend::Backend;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("catalog");
        std::fs::create_dir_all(root.join("tank/home")).unwrap();
        for f in [
            "tank/home@a.json",
            "tank/home@b.json",
            "tank/home/x@c.json",
            "tank/homework@d.json",
            "stray",
        ] {
            std::fs::write(root.join(f), b"{}").unwrap();
        }
        let prefix = format!("file://{}/", root.display());
        let t = super::FileTarget {
            path: root.join(""),
        };
        let groups = t.list_groups_at_most(&prefix, '@', 4).unwrap();
        let want: Vec<String> = ["stray", "tank/home/x@", "tank/home@", "tank/homework@"]
            .iter()
            .map(|g| format!("{prefix}{g}"))
            .collect();
        assert_eq!(groups, want);
        let err = t.list_groups_at_most(&prefix, '@', 3).unwrap_err();
        assert_eq!(
            zstream_common::exit::code_of(&err),
            zstream_common::Code::Integrity
        );
    }
}
