//! The catalog's entries (docs/formats/catalog-v2.md): a backup record, the commit point of one stored snapshot;
//! an intent, written before a put and removed after its commit, which is what lets a later run remove an object
//! as its own leftover; an acceptance of a full that shrank. Each is one line of JSON, signed (`sign`), and binds
//! everything a decision reads: a reader never acts on a field nobody signed.
//!
//! Version 1 records (unsigned, docs/formats/catalog-v1.md) are still read, marked unauthenticated, for restores and
//! for `adopt`; nothing else acts on them.

use crate::layout::{check_dataset, check_snapshot, object_name, Kind as Name};
use crate::sign::{PublicKey, Secrets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: &str = "zstream-catalog";
pub const VERSION: u32 = 2;
/// The most an entry may hold (a record is about 1.5 KB); an object under the catalog prefix that is larger is
/// refused unread, so that planted entries cost a reader little memory each.
pub const MAX_ENTRY_BYTES: u64 = 16 << 10;

/// A 64-bit guid (or txg), written as a decimal string: JSON readers such as jq round large numbers.
pub mod dec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .ok()
            .filter(|_| !(s.starts_with('+') || s.len() > 1 && s.starts_with('0')))
            .ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not a decimal u64")))
    }

    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => {
                    super::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&s))
                        .map(Some)
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Incremental,
}

/// The stream as `zfs send` wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    pub bytes: u64,
    /// SHA-256, lowercase hex: restore checks it with `zstream-hash --check`.
    pub sha256: String,
}

/// The stored object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Its name under DEST (`data/DATASET@SNAPSHOT.zstream`), or a vault's archive id: never a whole URL, so a
    /// store can be moved or copied and stay valid, and never a name some other dataset's object has.
    pub name: String,
    pub bytes: u64,
    /// As its target keeps it (`zstream-ship put --json`'s checksum, what `stat` reads back).
    pub checksum: String,
    /// `STANDARD`, `DEEP_ARCHIVE`, ... for S3; `FILE`; `GLACIER_VAULT`.
    pub storage_class: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    pub key_ids: Vec<String>,
    pub passphrases: u32,
    pub chunk_size: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Par {
    /// The par format version the stream was written in.
    pub version: u32,
    pub data: u32,
    pub parity: u32,
    pub block_size: u64,
    pub interleave: u32,
}

/// The retention the run that wrote the record was told: verify judges the store by the newest record's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Seconds.
    pub full_every: u64,
    pub keep_cycles: u32,
    pub min_full_ratio: f64,
}

/// How `zfs send` made the stream, where a chain depends on it. A record without `send` was a plain send.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendForm {
    /// `zfs send -w`: an encrypted dataset's blocks as the pool stores them, under the dataset's own key. A raw
    /// stream and a plain one never share a chain (a raw incremental is received only onto a raw-received base).
    #[serde(default)]
    pub raw: bool,
}

impl SendForm {
    /// A plain send: written as no `send` member at all, as records before it were.
    pub fn is_plain(&self) -> bool {
        !self.raw
    }
}

/// A recursive run's word on the dataset's direct children at the snapshot (those `zfs snapshot -r` took below
/// it): how many, and the SHA-256 of their full names sorted bytewise, each followed by a newline. A recursive
/// restore compares it with the children the catalog holds valid records of at that snapshot, so that a child
/// whose records were all deleted is an error rather than a tree restored without it, exit 0. A digest, not the
/// names: an entry stays small (MAX_ENTRY_BYTES) however wide the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Children {
    pub count: u64,
    pub sha256: String,
}

impl Children {
    /// Of these names, in any order (each once).
    pub fn of<S: AsRef<str>>(names: &[S]) -> Children {
        use sha2::{Digest, Sha256};
        let mut sorted: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        let mut h = Sha256::new();
        for n in &sorted {
            h.update(n.as_bytes());
            h.update(b"\n");
        }
        Children {
            count: sorted.len() as u64,
            sha256: hex::encode(h.finalize()),
        }
    }
}

/// A stored snapshot: the commit point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// The store it belongs to (`Store::id`: from the canonical DEST): another store's records, copied in by
    /// someone with write access, are not this store's history.
    pub store: String,
    pub dataset: String,
    pub snapshot: String,
    #[serde(with = "dec")]
    pub guid: u64,
    /// The snapshot's createtxg at the source: the source's own order of its snapshots.
    #[serde(with = "dec")]
    pub createtxg: u64,
    pub kind: Kind,
    pub from_snapshot: Option<String>,
    #[serde(with = "dec::opt")]
    pub from_guid: Option<u64>,
    /// The snapshot name of the full this record's chain starts from.
    pub cycle: String,
    /// 1 for a dataset's first record, then one more than the newest before it: the catalog's order, which no
    /// clock decides.
    pub seq: u64,
    pub raw: Raw,
    #[serde(default, skip_serializing_if = "SendForm::is_plain")]
    pub send: SendForm,
    /// Written by a recursive run only (`None`: not part of a tree, or a record from before; nothing to compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Children>,
    pub object: Object,
    pub seal: Seal,
    pub par: Par,
    pub policy: Policy,
    pub tools: BTreeMap<String, String>,
    /// When the run began, by its clock: ages (of fulls, for billing) are measured from it.
    pub time: String,
    pub host: String,
}

/// A put under way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub store: String,
    pub dataset: String,
    pub snapshot: String,
    /// The snapshot's guid and createtxg at the source (the intent is written once the snapshot exists): a later
    /// run destroys a snapshot only when it is this one, and newer than every committed backup (a replayed old
    /// intent names an old snapshot, which is left alone).
    #[serde(with = "dec")]
    pub guid: u64,
    #[serde(with = "dec")]
    pub createtxg: u64,
    /// The object the put writes (as `Object::name`; for a vault, the vault: its archive id is not known yet).
    pub object: String,
    pub time: String,
    pub host: String,
    /// A random id of the run, so a run can tell its own intent from a replayed one.
    pub run: String,
    /// The run took the snapshot itself (not `--snapshot`'s): if it never commits, the snapshot is its to destroy.
    pub taken: bool,
}

/// The user's word that the full SNAPSHOT is smaller than earlier fulls on purpose: from it on, fulls before it no
/// longer hold pruning back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accept {
    pub store: String,
    pub dataset: String,
    pub snapshot: String,
    pub time: String,
    pub host: String,
}

// Entries are few and short-lived (read, checked, moved into a view): their size does not matter, and boxing
// the backup would only add a layer to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Entry {
    Backup(Backup),
    Intent(Intent),
    AcceptShrink(Accept),
}

impl Entry {
    pub fn dataset(&self) -> &str {
        match self {
            Entry::Backup(b) => &b.dataset,
            Entry::Intent(i) => &i.dataset,
            Entry::AcceptShrink(a) => &a.dataset,
        }
    }

    pub fn snapshot(&self) -> &str {
        match self {
            Entry::Backup(b) => &b.snapshot,
            Entry::Intent(i) => &i.snapshot,
            Entry::AcceptShrink(a) => &a.snapshot,
        }
    }

    pub fn store(&self) -> &str {
        match self {
            Entry::Backup(b) => &b.store,
            Entry::Intent(i) => &i.store,
            Entry::AcceptShrink(a) => &a.store,
        }
    }

    pub fn name_kind(&self) -> Name {
        match self {
            Entry::Backup(_) => Name::Backup,
            Entry::Intent(_) => Name::Intent,
            Entry::AcceptShrink(_) => Name::AcceptShrink,
        }
    }

    /// The signed line of this entry, in the order the spec lists the fields.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Head<'a> {
            format: &'a str,
            version: u32,
            #[serde(flatten)]
            entry: &'a Entry,
        }
        serde_json::to_string(&Head {
            format: FORMAT,
            version: VERSION,
            entry: self,
        })
        .expect("an entry serializes")
    }

    /// What is stored: the line and its signature.
    pub fn signed(&self, secrets: &Secrets) -> String {
        secrets.sign(&self.body())
    }
}

/// An entry read from the store and checked: its signature, its shape, and that it is what its name says.
pub fn open(stored: &[u8], key: &PublicKey, name: (&str, &str, Name)) -> Result<Entry, String> {
    if stored.len() as u64 > MAX_ENTRY_BYTES {
        return Err(format!("larger than {MAX_ENTRY_BYTES} bytes"));
    }
    let body = key.open(stored)?;
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err("not a zstream-catalog entry".into());
    }
    if v.get("version").and_then(|f| f.as_u64()) != Some(u64::from(VERSION)) {
        return Err(format!(
            "version {} (this reader knows {VERSION})",
            v.get("version")
                .map_or("none".to_string(), |x| x.to_string())
        ));
    }
    let e: Entry = serde_json::from_value(v).map_err(|e| format!("its fields: {e}"))?;
    check(&e, name)?;
    if e.store().len() != 16
        || !e
            .store()
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("its store is not 16 lowercase hex digits".into());
    }
    Ok(e)
}

/// What a signed entry must also say of itself to be used: the name it is stored under (so a valid record copied
/// under another dataset's or snapshot's name is refused), and fields that agree with each other.
fn check(e: &Entry, (dataset, snapshot, kind): (&str, &str, Name)) -> Result<(), String> {
    if e.name_kind() != kind {
        return Err(format!(
            "stored under a {:?} name but is a {:?}",
            kind,
            e.name_kind()
        ));
    }
    if e.dataset() != dataset || e.snapshot() != snapshot {
        return Err(format!(
            "it is {}@{}'s, stored under {dataset}@{snapshot}'s name",
            e.dataset(),
            e.snapshot()
        ));
    }
    check_dataset(e.dataset())?;
    check_snapshot(e.snapshot())?;
    match e {
        Entry::Backup(b) => {
            crate::clock::parse(&b.time)?;
            check_snapshot(&b.cycle)?;
            let base_ok = match b.kind {
                Kind::Full => {
                    b.from_guid.is_none() && b.from_snapshot.is_none() && b.cycle == b.snapshot
                }
                Kind::Incremental => {
                    b.from_guid.is_some_and(|g| g != b.guid) && b.from_snapshot.is_some()
                }
            };
            if !base_ok {
                return Err("its kind, base and cycle disagree".into());
            }
            if b.seq == 0 || b.guid == 0 {
                return Err("seq and guid start at 1".into());
            }
            let vault_archive = !b.object.name.starts_with("data/");
            if !vault_archive && b.object.name != object_name(&b.dataset, &b.snapshot) {
                return Err(format!(
                    "it names the object {}, not its own",
                    b.object.name
                ));
            }
            if !is_sha256_hex(&b.raw.sha256) {
                return Err("raw.sha256 is not 64 hex digits".into());
            }
            if b.children
                .as_ref()
                .is_some_and(|c| !is_sha256_hex(&c.sha256))
            {
                return Err("children.sha256 is not 64 hex digits".into());
            }
        }
        Entry::Intent(i) => {
            crate::clock::parse(&i.time)?;
        }
        Entry::AcceptShrink(a) => {
            crate::clock::parse(&a.time)?;
        }
    }
    Ok(())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

impl Backup {
    pub fn time(&self) -> i64 {
        crate::clock::parse(&self.time).unwrap_or(0)
    }
}

/// A version 1 record (docs/formats/catalog-v1.md), as a backup without a signature: its `seq` is its place in
/// the v1 order (time, then name), its createtxg unknown (0), its policy the v1 defaults.
pub fn open_v1(stored: &[u8], name: (&str, &str)) -> Result<Backup, String> {
    #[derive(Deserialize)]
    struct V1 {
        format: String,
        version: u32,
        dataset: String,
        snapshot: String,
        #[serde(with = "dec")]
        guid: u64,
        kind: Kind,
        from_snapshot: Option<String>,
        #[serde(with = "dec::opt")]
        from_guid: Option<u64>,
        cycle: String,
        raw: Raw,
        stored: V1Stored,
        seal: Seal,
        par: V1Par,
        #[serde(default)]
        tools: BTreeMap<String, String>,
        time: String,
        #[serde(default)]
        host: String,
    }
    #[derive(Deserialize)]
    struct V1Stored {
        url: String,
        bytes: u64,
        checksum: String,
        storage_class: String,
    }
    #[derive(Deserialize)]
    struct V1Par {
        data: u32,
        parity: u32,
        block_size: u64,
        interleave: u32,
    }
    if stored.len() as u64 > MAX_ENTRY_BYTES {
        return Err(format!("larger than {MAX_ENTRY_BYTES} bytes"));
    }
    let r: V1 = serde_json::from_slice(stored).map_err(|e| format!("not a v1 record: {e}"))?;
    if r.format != FORMAT || r.version != 1 {
        return Err("not a zstream-catalog v1 record".into());
    }
    let object = match r.stored.url.split_once("/data/") {
        Some((_, tail)) if !r.stored.url.starts_with("glacier://") => format!("data/{tail}"),
        _ => r
            .stored
            .url
            .rsplit_once('/')
            .map(|(_, id)| id.to_string())
            .unwrap_or_default(),
    };
    let b = Backup {
        store: String::new(),
        dataset: r.dataset,
        snapshot: r.snapshot,
        guid: r.guid,
        createtxg: 0,
        kind: r.kind,
        from_snapshot: r.from_snapshot,
        from_guid: r.from_guid,
        cycle: r.cycle,
        seq: 1,
        raw: r.raw,
        send: SendForm::default(),
        children: None,
        object: Object {
            name: object,
            bytes: r.stored.bytes,
            checksum: r.stored.checksum,
            storage_class: r.stored.storage_class,
        },
        seal: r.seal,
        par: Par {
            version: 1,
            data: r.par.data,
            parity: r.par.parity,
            block_size: r.par.block_size,
            interleave: r.par.interleave,
        },
        policy: Policy {
            full_every: 30 * 86_400,
            keep_cycles: 2,
            min_full_ratio: 0.9,
        },
        tools: r.tools,
        time: r.time,
        host: r.host,
    };
    check(&Entry::Backup(b.clone()), (name.0, name.1, Name::Backup))?;
    Ok(b)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use zstream_seal::key::Key;

    pub fn example() -> Backup {
        crate::testkit::example()
    }

    fn secrets() -> Secrets {
        Secrets::derive(&[Key::from_bytes([1; 32]), Key::from_bytes([2; 32])], &[]).unwrap()
    }

    const NAME: (&str, &str, Name) = ("tank/home", "zstream-20270131T020000Z", Name::Backup);

    #[test]
    fn a_signed_record_opens_as_written() {
        let s = secrets();
        let e = Entry::Backup(example());
        let stored = e.signed(&s);
        assert_eq!(open(stored.as_bytes(), &s.public(), NAME), Ok(e.clone()));
        let body = e.body();
        assert!(
            body.starts_with(
                r#"{"format":"zstream-catalog","version":2,"type":"backup","store":""#
            ),
            "{body}"
        );
        assert!(
            body.contains(r#""guid":"924954103637443553""#),
            "guids are strings: {body}"
        );
    }

    #[test]
    fn a_valid_record_under_another_name_is_refused() {
        let s = secrets();
        let stored = Entry::Backup(example()).signed(&s);
        let why = open(
            stored.as_bytes(),
            &s.public(),
            ("tank/secret", NAME.1, Name::Backup),
        )
        .unwrap_err();
        assert!(why.contains("tank/home@"), "{why}");
        assert!(open(
            stored.as_bytes(),
            &s.public(),
            (NAME.0, "zstream-x", Name::Backup)
        )
        .is_err());
        assert!(open(
            stored.as_bytes(),
            &s.public(),
            (NAME.0, NAME.1, Name::Intent)
        )
        .is_err());
    }

    #[test]
    fn signed_nonsense_is_still_refused() {
        // What the keys' holder could sign by mistake (a bug in a writer) must not be acted on either.
        let s = secrets();
        let mut b = example();
        b.kind = Kind::Full;
        let stored = Entry::Backup(b.clone()).signed(&s);
        assert!(open(stored.as_bytes(), &s.public(), NAME)
            .unwrap_err()
            .contains("disagree"));
        b = example();
        b.object.name = "data/tank/secret@zstream-20270131T020000Z.zstream".into();
        let stored = Entry::Backup(b).signed(&s);
        assert!(open(stored.as_bytes(), &s.public(), NAME)
            .unwrap_err()
            .contains("names the object"));
        let other_version = s.sign(
            &Entry::Backup(example())
                .body()
                .replace(r#""version":2"#, r#""version":3"#),
        );
        assert!(open(other_version.as_bytes(), &s.public(), NAME)
            .unwrap_err()
            .contains("version 3"));
    }

    #[test]
    fn v1_records_read_unauthenticated() {
        let v1 = include_str!("../../docs/formats/catalog-v1-example.json");
        let b = open_v1(v1.as_bytes(), (NAME.0, NAME.1)).unwrap();
        assert_eq!(b.guid, 924_954_103_637_443_553);
        assert_eq!(
            b.object.name,
            "data/tank/home@zstream-20270131T020000Z.zstream"
        );
        assert_eq!(b.par.version, 1);
        assert!(open_v1(v1.as_bytes(), ("tank/secret", NAME.1)).is_err());
    }
}
