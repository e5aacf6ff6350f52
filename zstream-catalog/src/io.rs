//! The catalog's reads and writes, through zstream-ship's library: one listing of a dataset's entries, then all of
//! them read at once (a batch of small GETs on one client), each checked (signature, shape, name) before anything
//! is built from it. The store is read only here; every decision is made elsewhere, on what this returns.

use crate::cache::{self, Cache};
use crate::layout::{Kind as Name, Store};
use crate::plan::Listed;
use crate::record::{self, Backup, Entry, MAX_ENTRY_BYTES};
use crate::sign::{PublicKey, Secrets};
use crate::verify::Seen;
use crate::view::{Catalog, ListedName, Problem};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;
use zstream_ship::app::{backend, Use};
use zstream_ship::backend::{same_checksum, Backend, Entry as ShipEntry, Replace};
use zstream_ship::options::Options;

/// Entries read at once: memory holds at most this many bodies, whatever the catalog holds.
const BATCH: usize = 256;
/// Unusable entries described one by one; the rest are counted in one more.
const MAX_PROBLEMS: usize = 1000;

/// The problems of a load, bounded: planted names cannot fill memory with descriptions of themselves.
#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    more: usize,
}

impl Problems {
    fn push(&mut self, name: &str, why: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                name: crate::layout::printable(name),
                why: crate::layout::printable(&why),
            });
        } else {
            self.more += 1;
        }
    }

    fn done(mut self) -> Vec<Problem> {
        if self.more > 0 {
            self.list.push(Problem {
                name: format!("{} more entries", self.more),
                why: "not used either (not described one by one)".into(),
            });
        }
        self.list
    }
}

/// The most names one dataset's listing (its catalog entries, or its objects) is read for. Each night writes at
/// most an intent and a record (and one object), so 100,000 is over a century of nightly backups: a listing
/// longer than that was planted, and is refused rather than held, so that whoever can write the bucket cannot
/// choose how much memory a run takes (about 300 bytes a name).
pub const MAX_LISTED: usize = 100_000;
/// The most names the whole catalog's listing of datasets (`datasets`: one name per dataset, and any stray name) is
/// read for: a thousand times the thousands of datasets a large site has.
pub const MAX_CATALOG_LISTED: usize = 2_000_000;

pub struct Io {
    pub store: Store,
    opts: Options,
    /// The root of the cache of authenticated entries (see `cache`); None: every entry is read each time.
    cache: Option<PathBuf>,
}

/// One entry's bytes, opened.
enum Opened {
    Entry(Entry),
    V1(Backup),
    Problem(String),
}

impl Io {
    /// The store's reads and writes, with the entry cache the environment places (`cache::root`).
    pub fn new(store: Store) -> Io {
        Io {
            store,
            opts: Options::default(),
            cache: cache::root(),
        }
    }

    /// The store's reads and writes with every entry read from the store: for verify and the monitoring check,
    /// whose job is to prove what the store holds now.
    pub fn uncached(store: Store) -> Io {
        Io {
            cache: None,
            ..Io::new(store)
        }
    }

    fn target(&self, url: &str, how: Use) -> anyhow::Result<Box<dyn Backend>> {
        backend(url, how, &self.opts)
    }

    /// Every entry of DATASET, checked with `key`, of the store `store` (its id; None: of any store, for a restore
    /// that must find out whose records a copied store holds). A listing that fails is an error (the caller must
    /// not take "could not read" for "nothing there"); an entry that cannot be read, or fails its checks, or is
    /// another store's, is a problem, kept apart. Entries are read in batches and opened as they come: memory
    /// holds the valid entries and a bounded list of problems, whatever was planted under the prefix, and a
    /// listing of more than MAX_LISTED names is refused (on S3 at the page that passes it, before it is held).
    pub fn load(
        &self,
        dataset: &str,
        key: &PublicKey,
        store: Option<&str>,
    ) -> anyhow::Result<Catalog> {
        let prefix = self.store.catalog_prefix(dataset);
        let listed = self
            .target(&prefix, Use::Prefix)?
            .list_at_most(MAX_LISTED)
            .with_context(|| format!("listing the catalog {prefix}"))?;
        let mut problems = Problems::default();
        let mut named = Vec::new();
        // Every name the listing holds, as what it names: what a new snapshot's name must not be, and where a
        // record stands that is no valid record (`Catalog::with_listed`).
        let mut names = Vec::with_capacity(listed.len());
        for e in listed {
            let parsed = self.store.parse_entry(&e.name);
            names.push(match &parsed {
                Some((ds, snap, kind)) if ds == dataset => ListedName::Entry(snap.clone(), *kind),
                _ => ListedName::Other(e.name.rsplit_once('@').map_or("", |(_, t)| t).to_string()),
            });
            match parsed {
                Some((ds, snap, kind)) if ds == dataset && e.size <= MAX_ENTRY_BYTES => {
                    // Only an entry readable now is taken from the cache: one moved to an archive class keeps its
                    // ETag, and must fail here as it would for a host without the cache.
                    let etag = e.etag.filter(|_| e.restore == "available");
                    named.push((e.name, etag, snap, kind))
                }
                Some((ds, _, _)) if ds == dataset => problems.push(
                    &e.name,
                    format!(
                        "{} bytes: larger than any entry ({MAX_ENTRY_BYTES}); not read",
                        e.size
                    ),
                ),
                _ => problems.push(
                    &e.name,
                    "not the name of a catalog entry of this dataset".into(),
                ),
            }
        }
        let target = self.target(&prefix, Use::Prefix)?;
        let mut cache = self
            .cache
            .as_deref()
            .map(|root| Cache::new(root, &self.store.id(), dataset));
        let (mut backups, mut intents, mut accepts, mut v1) = (vec![], vec![], vec![], vec![]);
        let open = |bytes: &[u8], snap: &str, kind: Name| -> Opened {
            match record::open(bytes, key, (dataset, snap, kind)) {
                Ok(e) if store.is_some_and(|id| e.store() != id) => Opened::Problem(format!(
                    "an entry of another store (id {}, this one is {}): copied in, not this store's history",
                    e.store(),
                    store.unwrap_or_default()
                )),
                Ok(e) => Opened::Entry(e),
                Err(why) => match (kind, record::open_v1(bytes, (dataset, snap))) {
                    (Name::Backup, Ok(b)) => Opened::V1(b),
                    _ => Opened::Problem(why),
                },
            }
        };
        for batch in named.chunks(BATCH) {
            // What the cache holds and still opens as this store's entry; the rest is read from the store.
            let mut opened: Vec<Option<Opened>> = batch
                .iter()
                .map(|(url, etag, snap, kind)| {
                    let bytes = cache
                        .as_mut()?
                        .get(url, etag.as_deref()?, MAX_ENTRY_BYTES)?;
                    match open(&bytes, snap, *kind) {
                        e @ Opened::Entry(_) => Some(e),
                        _ => None,
                    }
                })
                .collect();
            let missed: Vec<usize> = (0..batch.len()).filter(|&i| opened[i].is_none()).collect();
            let urls: Vec<String> = missed.iter().map(|&i| batch[i].0.clone()).collect();
            let bodies = target
                .read_many(&urls, MAX_ENTRY_BYTES)
                .with_context(|| format!("reading the catalog {prefix}"))?;
            for (&i, body) in missed.iter().zip(bodies) {
                let (url, etag, snap, kind) = &batch[i];
                opened[i] = Some(match body {
                    Ok(bytes) => {
                        let e = open(&bytes, snap, *kind);
                        if let (Opened::Entry(_), Some(c), Some(etag)) = (&e, cache.as_mut(), etag)
                        {
                            c.put(url, etag, &bytes);
                        }
                        e
                    }
                    Err(e) => Opened::Problem(format!("could not be read: {e:#}")),
                });
            }
            for ((url, ..), o) in batch.iter().zip(opened) {
                match o {
                    Some(Opened::Entry(Entry::Backup(b))) => backups.push(b),
                    Some(Opened::Entry(Entry::Intent(i))) => intents.push(i),
                    Some(Opened::Entry(Entry::AcceptShrink(a))) => accepts.push(a),
                    Some(Opened::V1(b)) => v1.push(b),
                    Some(Opened::Problem(why)) => problems.push(url, why),
                    None => unreachable!("every entry of the batch was opened or read"),
                }
            }
        }
        if let Some(c) = &cache {
            c.sweep();
        }
        let old = !v1.is_empty() && backups.is_empty();
        if old {
            backups = number_v1(v1);
        } else {
            for b in v1 {
                problems.push(
                    &self.store.entry_url(dataset, &b.snapshot, Name::Backup),
                    "an unsigned version 1 record beside signed ones: not used".into(),
                );
            }
        }
        Ok(
            Catalog::new(dataset, backups, intents, accepts, problems.done(), old)
                .with_listed(names),
        )
    }

    /// The dataset's objects in DEST; None for a vault, whose inventory is a day old.
    pub fn objects(&self, dataset: &str) -> anyhow::Result<Option<Vec<Listed>>> {
        if self.store.is_vault() {
            return Ok(None);
        }
        let prefix = self.store.data_prefix(dataset);
        let listed = self
            .target(&prefix, Use::Prefix)?
            .list_at_most(MAX_LISTED)
            .with_context(|| format!("listing {prefix}"))?;
        Ok(Some(
            listed
                .into_iter()
                .map(|e| Listed {
                    snapshot: self.store.parse_object(dataset, &e.name),
                    url: e.name,
                    size: e.size,
                    storage_class: e.storage_class,
                })
                .collect(),
        ))
    }

    /// The datasets below DATASET that CATALOG holds entries of: one listing of `DATASET/`, not the whole catalog.
    /// (Not of `…/catalog/DATASET` to take DATASET's own entries too: file:// takes a prefix that stops inside a
    /// name for the directory of that name when it exists, and would not see `DATASET@…` beside it.)
    pub fn datasets_below(&self, dataset: &str) -> anyhow::Result<Vec<String>> {
        self.datasets_in(&format!("{}/catalog/{dataset}/", self.store.catalog))
    }

    /// The datasets CATALOG holds entries of.
    pub fn datasets(&self) -> anyhow::Result<Vec<String>> {
        self.datasets_in(&format!("{}/catalog/", self.store.catalog))
    }

    /// The datasets with entries under PREFIX (a part of the catalog): one name per dataset from the listing (S3
    /// lists them so: the bound, MAX_CATALOG_LISTED, counts datasets and stray names, not entries).
    fn datasets_in(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let catalog = format!("{}/catalog/", self.store.catalog);
        let mut out: Vec<String> = self
            .groups(prefix, MAX_CATALOG_LISTED)?
            .into_iter()
            .filter_map(|g| {
                let ds = g.strip_prefix(&catalog)?.strip_suffix('@')?;
                crate::layout::check_dataset(ds)
                    .is_ok()
                    .then(|| ds.to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The names under PREFIX grouped at `@` (`Backend::list_groups_at_most`).
    fn groups(&self, prefix: &str, max: usize) -> anyhow::Result<Vec<String>> {
        self.target(prefix, Use::Prefix)?
            .list_groups_at_most(prefix, '@', max)
            .with_context(|| format!("listing the catalog {prefix}"))
    }

    pub fn stat(&self, url: &str) -> anyhow::Result<ShipEntry> {
        self.target(url, Use::Object)?.stat()
    }

    /// A backup's object as the store holds it now. On file:// the bytes themselves are hashed: the checksum kept
    /// beside the file is what put computed, and would still match a file overwritten in place.
    pub fn seen(&self, b: &Backup) -> Result<Seen, String> {
        let url = self.store.url_of(&b.object.name);
        let e = self.stat(&url).map_err(|e| format!("{e:#}"))?;
        let checksum = match url.strip_prefix("file://") {
            Some(path) => file_sha256(path).map_err(|e| format!("{e:#}"))?,
            None => e.checksum.clone().unwrap_or_default(),
        };
        Ok(Seen {
            size: e.size,
            checksum_matches: same_checksum(&checksum, &b.object.checksum),
            checksum,
            restore: e.restore,
        })
    }

    /// Writes a signed entry at its name (never over another); returns its URL. A put that failed is checked:
    /// when its answer was lost after the store took it (a retry then finds the name taken), the store holds this
    /// very entry (signatures are deterministic), and that is success: a caller that took the error for "not
    /// written" would discard what the record names. When the store cannot be read to tell: exit 75.
    pub fn put(&self, entry: &Entry, secrets: &Secrets) -> anyhow::Result<String> {
        let url = self
            .store
            .entry_url(entry.dataset(), entry.snapshot(), entry.name_kind());
        let text = entry.signed(secrets);
        let put = self
            .target(&url, Use::Upload)?
            .put(&mut text.as_bytes(), Replace::No)
            .with_context(|| format!("writing {url}"));
        let Err(e) = put else { return Ok(url) };
        match self.holds(entry.dataset(), &url, text.as_bytes()) {
            Ok(true) => {
                zstream_common::say!("{url}: {e:#}; the store holds the entry as written: done");
                Ok(url)
            }
            Ok(false) => Err(e),
            // Neither known written nor known not: the caller must not act as if it were not (the run's intent
            // lets the next run decide).
            Err(why) => Err(zstream_common::Coded::new(
                zstream_common::Code::TempFail,
                anyhow::anyhow!("{e:#}; whether the store holds {url} is not known ({why:#})"),
            )
            .into()),
        }
    }

    /// Whether the store holds exactly `bytes` at `url`, an entry of `dataset` (read as entries are, bounded); an
    /// error when it cannot tell.
    fn holds(&self, dataset: &str, url: &str, bytes: &[u8]) -> anyhow::Result<bool> {
        let read = self
            .target(&self.store.catalog_prefix(dataset), Use::Prefix)?
            .read_many(&[url.to_string()], MAX_ENTRY_BYTES)?;
        match read.into_iter().next() {
            Some(Ok(got)) => Ok(got == bytes),
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    /// Writes a signed entry over the one at its name (adopt's v1 records, replaced by their signed form).
    pub fn replace(&self, entry: &Entry, secrets: &Secrets) -> anyhow::Result<()> {
        let url = self
            .store
            .entry_url(entry.dataset(), entry.snapshot(), entry.name_kind());
        let text = entry.signed(secrets);
        self.target(&url, Use::Upload)?
            .put(&mut text.as_bytes(), Replace::Yes)
            .with_context(|| format!("writing {url}"))?;
        Ok(())
    }

    pub fn remove(&self, url: &str) -> anyhow::Result<()> {
        self.target(url, Use::Object)?.remove()
    }
}

/// v1 records numbered in their own order (time, then name), which is all v1 had.
fn number_v1(mut v1: Vec<Backup>) -> Vec<Backup> {
    v1.sort_by(|a, b| a.time.cmp(&b.time).then(a.snapshot.cmp(&b.snapshot)));
    for (n, b) in v1.iter_mut().enumerate() {
        b.seq = n as u64 + 1;
    }
    v1
}

fn file_sha256(path: &str) -> anyhow::Result<String> {
    let mut f = zstream_ship::file::open_regular(std::path::Path::new(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; zstream_common::BUF_SIZE];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading file://{path}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}
