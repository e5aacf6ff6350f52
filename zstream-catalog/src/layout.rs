//! Where a store keeps what: DEST holds the streams, CATALOG (DEST, or another prefix for a vault) the signed
//! entries. Names are made from the dataset and the snapshot only, never taken from what the store lists, and the
//! store's URL is made canonical first, so that one store spelled two ways (`file:///x//`, a symlink, a trailing
//! slash) is one store: its lock, its hold tag and its names are the same.
//!
//!   DEST/data/DATASET@SNAPSHOT.zstream           the stream (zfs send | hash | seal | par)
//!   CATALOG/catalog/DATASET@SNAPSHOT.json        its backup record: the commit point
//!   CATALOG/catalog/DATASET@SNAPSHOT.intent      a put under way (written before it, removed after the commit)
//!   CATALOG/catalog/DATASET@SNAPSHOT.accept-shrink   the user's acceptance of a full that shrank

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// The streams' prefix, canonical, without a trailing slash.
    pub dest: String,
    /// The catalog's prefix, canonical, without a trailing slash.
    pub catalog: String,
}

/// What a catalog name holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Backup,
    Intent,
    AcceptShrink,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Backup, Kind::Intent, Kind::AcceptShrink];

    pub fn ext(self) -> &'static str {
        match self {
            Kind::Backup => ".json",
            Kind::Intent => ".intent",
            Kind::AcceptShrink => ".accept-shrink",
        }
    }
}

impl Store {
    pub fn new(dest: &str, catalog: Option<&str>) -> Result<Store, String> {
        let dest = canonical(dest)?;
        let catalog = match catalog {
            Some(c) => canonical(c)?,
            None if dest.starts_with("glacier://") => {
                return Err(
                    "a vault has no place for records: give --catalog s3://bucket/prefix or file:///dir".into(),
                )
            }
            None => dest.clone(),
        };
        if catalog.starts_with("glacier://") {
            return Err(format!(
                "--catalog {catalog}: a vault cannot hold records; give s3://bucket/prefix or file:///dir"
            ));
        }
        Ok(Store { dest, catalog })
    }

    pub fn is_vault(&self) -> bool {
        self.dest.starts_with("glacier://")
    }

    /// Where the object of DATASET@SNAPSHOT goes (a vault names its archives itself: the vault).
    pub fn object_url(&self, dataset: &str, snapshot: &str) -> String {
        if self.is_vault() {
            self.dest.clone()
        } else {
            format!("{}/{}", self.dest, object_name(dataset, snapshot))
        }
    }

    /// An object's URL from its record's name for it (a vault's records name the archive id).
    pub fn url_of(&self, object: &str) -> String {
        format!("{}/{object}", self.dest)
    }

    pub fn entry_url(&self, dataset: &str, snapshot: &str, kind: Kind) -> String {
        format!(
            "{}/catalog/{dataset}@{snapshot}{}",
            self.catalog,
            kind.ext()
        )
    }

    /// The prefix under which every catalog entry of DATASET is, and no other dataset's: `@` cannot occur in a
    /// dataset's name, so `tank/home@` holds neither `tank/home/x@…` nor `tank/homework@…`.
    pub fn catalog_prefix(&self, dataset: &str) -> String {
        format!("{}/catalog/{dataset}@", self.catalog)
    }

    pub fn data_prefix(&self, dataset: &str) -> String {
        format!("{}/data/{dataset}@", self.dest)
    }

    /// DATASET, SNAPSHOT and what it is, of a listed catalog URL; None for a name that is not an entry's.
    pub fn parse_entry(&self, url: &str) -> Option<(String, String, Kind)> {
        let rest = url.strip_prefix(&format!("{}/catalog/", self.catalog))?;
        let (dataset, tail) = rest.rsplit_once('@')?;
        Kind::ALL.iter().find_map(|&k| {
            let snap = tail.strip_suffix(k.ext())?;
            (check_dataset(dataset).is_ok() && check_snapshot(snap).is_ok())
                .then(|| (dataset.to_string(), snap.to_string(), k))
        })
    }

    /// SNAPSHOT of a listed object URL of DATASET; None for a name that is not one of ours.
    pub fn parse_object(&self, dataset: &str, url: &str) -> Option<String> {
        let snap = url
            .strip_prefix(&self.data_prefix(dataset))?
            .strip_suffix(".zstream")?;
        check_snapshot(snap).is_ok().then(|| snap.to_string())
    }

    /// The store's id, signed into every entry it holds: 16 hex digits of SHA-256 of the canonical DEST. Entries
    /// of another store (copied in by someone who can write this one) are not this store's history.
    pub fn id(&self) -> String {
        let h = Sha256::digest(format!("zstream-catalog store\n{}", self.dest));
        hex::encode(h)[..16].to_string()
    }

    /// The tag of the `zfs hold` this store keeps on its base snapshot: one per store, so that two stores backing
    /// up one dataset do not release each other's holds.
    pub fn hold_tag(&self) -> String {
        format!("zstream-{}", &hex::encode(Sha256::digest(&self.dest))[..12])
    }

    /// The name of the lock file of DATASET -> this store.
    pub fn lock_name(&self, dataset: &str) -> String {
        let h = Sha256::digest(format!("{dataset}\n{}", self.dest));
        format!("{}.lock", &hex::encode(h)[..16])
    }
}

/// A name or message as it may be printed: control characters (a newline, an escape sequence in a planted name)
/// written as `\xNN`, so nothing listed from a store can forge a line of a run's output or drive a terminal.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out += &format!("\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The object's name under DEST (what a record binds, so a store can move or be copied whole).
pub fn object_name(dataset: &str, snapshot: &str) -> String {
    format!("data/{dataset}@{snapshot}.zstream")
}

/// A store's URL, canonical: no trailing slash, no empty, `.` or `..` component; a file:// directory through its
/// real path (symlinks resolved), as far as it exists.
pub fn canonical(url: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{url}: {why}");
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected s3://bucket/prefix, file:///dir or glacier://vault"))?;
    let rest = rest.trim_end_matches('/');
    match scheme {
        "s3" => {
            let (bucket, prefix) = rest
                .split_once('/')
                .ok_or_else(|| bad("give a prefix in the bucket, s3://bucket/prefix"))?;
            if bucket.is_empty() || prefix.is_empty() {
                return Err(bad("give a bucket and a prefix, s3://bucket/prefix"));
            }
            if prefix
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad("an empty, '.' or '..' component in the prefix"));
            }
            Ok(format!("s3://{bucket}/{prefix}"))
        }
        "glacier" => {
            if rest.is_empty() || rest.contains('/') {
                return Err(bad("a vault's URL is glacier://vault"));
            }
            Ok(format!("glacier://{rest}"))
        }
        "file" => {
            if !rest.starts_with('/') || rest.len() < 2 {
                return Err(bad("file:// takes an absolute directory, file:///dir"));
            }
            Ok(format!("file://{}", real_dir(Path::new(rest)).display()))
        }
        _ => Err(bad(
            "expected s3://bucket/prefix, file:///dir or glacier://vault",
        )),
    }
}

/// `dir` with its longest existing ancestor resolved (symlinks, `.`, `..`, repeated slashes), the rest appended.
fn real_dir(dir: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut p = dir.to_path_buf();
    loop {
        if let Ok(real) = std::fs::canonicalize(&p) {
            return missing.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (p.file_name().map(|c| c.to_os_string()), p.parent()) {
            (Some(c), Some(parent)) => {
                missing.push(c);
                p = parent.to_path_buf();
            }
            _ => return dir.to_path_buf(),
        }
    }
}

/// ZFS's characters for a name component: alphanumerics and `_ - : . ` and space.
fn zfs_chars(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-:. ".contains(c))
        && s != "."
        && s != ".."
}

/// A dataset's name as ZFS allows it (`pool/fs/child`), which also makes it safe as part of an object key.
pub fn check_dataset(name: &str) -> Result<(), String> {
    if name.len() <= 255 && name.split('/').all(zfs_chars) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a dataset name (pool/fs, of letters, digits and _-:. )"
        ))
    }
}

/// A snapshot's name after the `@`.
pub fn check_snapshot(name: &str) -> Result<(), String> {
    if name.len() <= 255 && zfs_chars(name) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a snapshot name (letters, digits and _-:. )"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_store_one_spelling() {
        let d = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(d.path()).unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        let want = format!("file://{}", real.display());
        for spelling in [
            format!("file://{}", real.display()),
            format!("file://{}//", real.display()),
            format!("file://{}/./", real.display()),
            format!("file://{}/link", real.display()),
            format!("file://{}/link/./", real.display()),
        ] {
            assert_eq!(
                canonical(&spelling).as_deref(),
                Ok(want.as_str()),
                "{spelling}"
            );
        }
        assert_eq!(
            canonical(&format!("file://{}/link/new/dir/", real.display())).unwrap(),
            format!("{want}/new/dir"),
            "a directory that does not exist yet is resolved as far as it exists"
        );
        assert_eq!(canonical("s3://b/p/q/").unwrap(), "s3://b/p/q");
        assert_eq!(canonical("glacier://v/").unwrap(), "glacier://v");
        for bad in [
            "s3://b",
            "s3://b/",
            "s3://b/p//q",
            "s3://b/./p",
            "file://x",
            "./x",
            "x",
            "ftp://h/p",
            "glacier://v/a",
        ] {
            assert!(canonical(bad).is_err(), "{bad}");
        }
        let a = Store::new(&format!("file://{}//", real.display()), None).unwrap();
        let b = Store::new(&format!("file://{}/link", real.display()), None).unwrap();
        assert_eq!(a.hold_tag(), b.hold_tag());
        assert_eq!(a.lock_name("p/fs"), b.lock_name("p/fs"));
    }

    #[test]
    fn names_round_trip_and_keep_datasets_apart() {
        let s = Store::new("s3://b/site", None).unwrap();
        let u = s.entry_url("tank/home", "zstream-20270101T020000Z", Kind::Backup);
        assert_eq!(
            u,
            "s3://b/site/catalog/tank/home@zstream-20270101T020000Z.json"
        );
        assert_eq!(
            s.parse_entry(&u),
            Some((
                "tank/home".into(),
                "zstream-20270101T020000Z".into(),
                Kind::Backup
            ))
        );
        let i = s.entry_url("tank/home", "x", Kind::Intent);
        assert_eq!(s.parse_entry(&i).unwrap().2, Kind::Intent);
        assert_eq!(s.parse_entry("s3://b/site/catalog/tank/home@x.txt"), None);
        assert_eq!(s.parse_entry("s3://b/other/catalog/tank/home@x.json"), None);
        let o = s.object_url("tank/home", "x");
        assert_eq!(s.parse_object("tank/home", &o).as_deref(), Some("x"));
        assert_eq!(s.parse_object("tank/hom", &o), None);
        assert_eq!(s.parse_object("tank", &o), None);
        assert!(Store::new("glacier://v", None).is_err());
        let v = Store::new("glacier://v", Some("s3://b/cat")).unwrap();
        assert!(v.is_vault());
        assert_eq!(v.object_url("p/fs", "x"), "glacier://v");
    }

    #[test]
    fn names_as_zfs_allows() {
        assert!(check_dataset("tank/home").is_ok());
        assert!(check_dataset("tank/my data:x.y_z-1").is_ok());
        for bad in [
            "",
            "tank//home",
            "tank/",
            "/tank",
            "tank/../x",
            "tank/./x",
            "tank@x",
            "tank/h\nx",
            "tank/é",
        ] {
            assert!(check_dataset(bad).is_err(), "{bad:?}");
        }
        assert!(check_snapshot("zstream-20270101T020000Z").is_ok());
        for bad in ["", "a/b", "a@b", ".", ".."] {
            assert!(check_snapshot(bad).is_err(), "{bad:?}");
        }
    }
}
