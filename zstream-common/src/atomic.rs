//! Files that appear whole or not at all: sidecars (digests, reports) and file:// objects. The temporary file is
//! created when the run starts, exclusively and never through a link (a planted symlink cannot redirect it), in
//! the target's own directory, so an unwritable directory fails before the first byte of input is read. At the
//! end it is fsynced, renamed into place (refusing to replace an existing file unless asked), and the directory
//! is fsynced. Dropped uncommitted, or removed by the interrupt cleanup, it leaves nothing.

use anyhow::Context;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Whether a commit may replace a file already at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    Yes,
    No,
}

/// A file being written under a temporary name beside `path`.
pub struct Pending {
    tmp: NamedTempFile,
    path: PathBuf,
}

/// The commit refused because the target exists (`Replace::No`); found in an error chain by downcasting.
#[derive(Debug, thiserror::Error)]
#[error("{0} exists")]
pub struct Exists(pub PathBuf);

impl Pending {
    /// A temporary file `.NAME.tmp.RANDOM` beside `path`.
    pub fn create(path: &Path) -> anyhow::Result<Pending> {
        let name = file_name(path)?;
        Self::create_with_prefix(path, &format!(".{name}.tmp."))
    }

    /// A temporary file whose name starts with `prefix` (a random suffix follows), beside `path`.
    pub fn create_with_prefix(path: &Path, prefix: &str) -> anyhow::Result<Pending> {
        file_name(path)?;
        let dir = dir_of(path);
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .rand_bytes(8)
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "creating a temporary file in {} for {}",
                    dir.display(),
                    path.display()
                )
            })?;
        Ok(Pending {
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the bytes are until the commit (what an interrupt cleanup removes).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes `contents` (a small file's whole text) and commits.
    pub fn finish(mut self, contents: &[u8], replace: Replace) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.file()
            .write_all(contents)
            .with_context(|| format!("writing {}", path.display()))?;
        self.commit(replace)
    }

    /// Makes the file durable and puts it in place. With `Replace::No` an existing file stays as it was and the
    /// error carries `Exists`; the temporary file is removed either way when the commit fails.
    pub fn commit(self, replace: Replace) -> anyhow::Result<()> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("syncing {}", self.tmp.path().display()))?;
        let placed = match replace {
            Replace::Yes => self.tmp.persist(&path).map(drop),
            Replace::No => self.tmp.persist_noclobber(&path).map(drop),
        };
        if let Err(e) = placed {
            // The PersistError's file drops here, which removes the temporary file.
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                return Err(anyhow::Error::new(Exists(path)));
            }
            return Err(
                anyhow::Error::new(e.error).context(format!("renaming into {}", path.display()))
            );
        }
        sync_dir(dir_of(&path));
        Ok(())
    }
}

/// Writes `contents` to `path` whole or not at all, replacing what was there.
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    Pending::create(path)?.finish(contents, Replace::Yes)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} is not a file name", path.display()))
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A rename is durable only once its directory is synced; a filesystem that cannot sync a directory has nothing
/// more to give, so a failure here does not fail the run.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zstream-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_and_replaces() {
        let d = scratch("replace");
        let p = d.join("x.sha256");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary file is left behind"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_replace_keeps_the_old_file_and_leaves_no_temporary() {
        let d = scratch("noreplace");
        let p = d.join("obj");
        write(&p, b"good").unwrap();
        let mut pending = Pending::create(&p).unwrap();
        pending.file().write_all(b"cut").unwrap();
        let e = pending.commit(Replace::No).unwrap_err();
        assert!(e.downcast_ref::<Exists>().is_some(), "{e:#}");
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let d = scratch("symlink");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // Whatever name an attacker guesses, creation is exclusive: plant links at many names and write.
        for i in 0..16 {
            std::os::unix::fs::symlink(&victim, d.join(format!(".x.sha256.tmp.{i}"))).unwrap();
        }
        write(&d.join("x.sha256"), b"digest").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(d.join("x.sha256")).unwrap(), b"digest");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unwritable_directory_fails_at_create() {
        let e = Pending::create(Path::new("/nonexistent-dir/x.sha256"))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/nonexistent-dir"), "{e:#}");
    }
}
