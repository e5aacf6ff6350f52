//! The vectors and the testkit (docs/formats/catalog-v2-vectors.json, catalog-v2-example.json, testkit/catalog/),
//! made from fixed keys so any implementation can check itself against them. Each testkit file is a text header,
//! a blank line, then what the case stores:
//!
//! ```text
//! expect: valid | refused | view
//! key: <64 hex>          (a key file's material; one line per key)
//! name: catalog/DATASET@SNAPSHOT.EXT   (single-entry cases: the name it is stored under)
//! why: <words the refusal names>       (refused cases)
//! newest: SNAPSHOT | none               (view cases: the newest valid backup)
//! problems: N                           (view cases: entries left out)
//! comment: <what the case is>
//! ```
//!
//! A single-entry case's body is the stored entry's bytes. A view case's body is several entries, each
//! introduced by a line `=== NAME` and ending with its own two lines. A test fails when the committed files and
//! this generator disagree; `cargo run -p zstream-catalog --example catalog-testkit docs/formats` rewrites them.

use crate::layout::Store;
use crate::record::{self, Backup, Children, Entry, Intent, Kind};
use crate::sign::{PublicKey, Secrets};
use crate::view::{Catalog, Problem};
use zstream_seal::key::Key;

/// The store of the example and the cases: `s3://offsite/site`.
pub fn store() -> Store {
    Store::new("s3://offsite/site", None).expect("a store")
}

/// The vectors' key materials: 0x01 x 32 and 0x02 x 32.
pub fn keys() -> Vec<Key> {
    vec![Key::from_bytes([1; 32]), Key::from_bytes([2; 32])]
}

pub fn secrets() -> Secrets {
    Secrets::derive(&keys(), &[]).expect("two different keys")
}

/// The example record (docs/formats/catalog-v2-example.json): an incremental of tank/home in DEEP_ARCHIVE.
pub fn example() -> Backup {
    use crate::record::{Object, Par, Policy, Raw, Seal, SendForm};
    Backup {
        store: store().id(),
        dataset: "tank/home".into(),
        snapshot: "zstream-20270131T020000Z".into(),
        guid: 924_954_103_637_443_553,
        createtxg: 4_711,
        kind: Kind::Incremental,
        from_snapshot: Some("zstream-20270130T020000Z".into()),
        from_guid: Some(17_213_279_473_953_479_510),
        cycle: "zstream-20270101T020000Z".into(),
        seq: 31,
        raw: Raw {
            bytes: 13_631_488,
            sha256: "9ef701dcbb891b4ff7e94baeb64b26f912a2419305ea1efc484f412e0d69baad".into(),
        },
        send: SendForm::default(),
        children: None,
        object: Object {
            name: "data/tank/home@zstream-20270131T020000Z.zstream".into(),
            bytes: 13_639_890,
            checksum: "s3-sha256:2oiJ9MWeMLQJEFXCgAbg8oZ0ZHLQ0G7qBxJzLYO0ZDM=-3".into(),
            storage_class: "DEEP_ARCHIVE".into(),
        },
        seal: Seal {
            key_ids: secrets().key_ids,
            passphrases: 0,
            chunk_size: 1 << 20,
        },
        par: Par {
            version: 2,
            data: 10,
            parity: 2,
            block_size: 1 << 20,
            interleave: 1,
        },
        policy: Policy {
            full_every: 30 * 86_400,
            keep_cycles: 2,
            min_full_ratio: 0.9,
        },
        tools: [(
            "zstream".to_string(),
            "0.1.0 (commit 0123456789ab)".to_string(),
        )]
        .into(),
        time: "2027-01-31T02:00:00Z".into(),
        host: "backup1".into(),
    }
}

pub struct Case {
    pub file: String,
    pub text: Vec<u8>,
}

fn key_lines() -> String {
    keys()
        .iter()
        .map(|k| format!("key: {}\n", hex::encode(k.bytes())))
        .collect()
}

fn single(
    file: &str,
    expect: &str,
    name: &str,
    why: Option<&str>,
    comment: &str,
    stored: &[u8],
) -> Case {
    let mut text = format!("expect: {expect}\n{}name: {name}\n", key_lines());
    if let Some(w) = why {
        text += &format!("why: {w}\n");
    }
    text += &format!("comment: {comment}\n\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(stored);
    Case {
        file: file.into(),
        text: bytes,
    }
}

const DS: &str = "tank/home";

fn name_of(e: &Entry) -> String {
    format!(
        "catalog/{}@{}{}",
        e.dataset(),
        e.snapshot(),
        e.name_kind().ext()
    )
}

/// The children of the vectors' recursive example: tank/home's, as `zfs snapshot -r` took them.
pub const CHILDREN: [&str; 2] = ["tank/home/bob", "tank/home/alice"];

fn recursive(b: &Backup) -> Backup {
    Backup {
        children: Some(Children::of(&CHILDREN)),
        ..b.clone()
    }
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let s = secrets();
    let b = example();
    let rec = Entry::Backup(b.clone());
    let good = rec.signed(&s);
    let name = name_of(&rec);
    let other = Secrets::derive(&[Key::from_bytes([3; 32])], &[]).expect("a key");
    let mut out = vec![
        single("valid-backup", "valid", &name, None, "the example record, signed", good.as_bytes()),
        {
            let mut raw = b.clone();
            raw.send.raw = true;
            single(
                "valid-raw-backup",
                "valid",
                &name,
                None,
                "the example record of a raw send (zfs send -w: \"send\":{\"raw\":true} after \"raw\"), signed",
                Entry::Backup(raw).signed(&s).as_bytes(),
            )
        },
        single(
            "valid-recursive-backup",
            "valid",
            &name,
            None,
            "the example record of a recursive run, which counts its direct children tank/home/alice and \
             tank/home/bob (\"children\" after \"raw\"; the vectors' children_example), signed",
            Entry::Backup(recursive(&b)).signed(&s).as_bytes(),
        ),
        single(
            "refused-children-not-hex",
            "refused",
            &name,
            Some("children.sha256 is not 64 hex digits"),
            "the recursive example with its children digest cut short, signed",
            Entry::Backup(Backup {
                children: Some(Children {
                    count: 2,
                    sha256: "0".repeat(63),
                }),
                ..b.clone()
            })
            .signed(&s)
            .as_bytes(),
        ),
        single(
            "refused-edited",
            "refused",
            &name,
            Some("does not hold"),
            "the example with its raw.sha256 changed after signing",
            good.replacen(&b.raw.sha256, &"0".repeat(64), 1).as_bytes(),
        ),
        single(
            "refused-forged",
            "refused",
            &name,
            Some("another key set"),
            "a record signed with another key (an attacker's own)",
            rec.signed(&other).as_bytes(),
        ),
        single(
            "refused-forged-claiming-our-key",
            "refused",
            &name,
            Some("does not hold"),
            "a record signed with another key whose signature line names our public key",
            rec.signed(&other)
                .replace(&other.public().hex(), &s.public().hex())
                .as_bytes(),
        ),
        single(
            "refused-other-dataset",
            "refused",
            &format!("catalog/tank/secret@{}.json", b.snapshot),
            Some("stored under"),
            "a valid record of tank/home copied under tank/secret's name: restoring tank/secret must not give tank/home",
            good.as_bytes(),
        ),
        single(
            "refused-other-snapshot",
            "refused",
            &format!("catalog/{DS}@zstream-20270201T020000Z.json"),
            Some("stored under"),
            "a valid record copied under a newer snapshot's name",
            good.as_bytes(),
        ),
        single(
            "refused-intent-name",
            "refused",
            &format!("catalog/{DS}@{}.intent", b.snapshot),
            Some("stored under"),
            "a valid record stored under its snapshot's intent name",
            good.as_bytes(),
        ),
        single(
            "refused-crlf",
            "refused",
            &name,
            Some("does not hold"),
            "the record with CRLF line ends",
            good.replace('\n', "\r\n").as_bytes(),
        ),
        single(
            "refused-no-signature",
            "refused",
            &name,
            Some("two lines"),
            "the body alone",
            format!("{}\n", rec.body()).as_bytes(),
        ),
        single(
            "refused-version-3",
            "refused",
            &name,
            Some("version 3"),
            "signed, but version 3",
            s.sign(&rec.body().replace("\"version\":2", "\"version\":3")).as_bytes(),
        ),
        single(
            "refused-full-with-base",
            "refused",
            &name,
            Some("disagree"),
            "signed, but a full that names a base",
            {
                let mut f = b.clone();
                f.kind = Kind::Full;
                Entry::Backup(f).signed(&s).into_bytes()
            }
            .as_slice(),
        ),
        single(
            "refused-other-object",
            "refused",
            &name,
            Some("names the object"),
            "signed, but naming another dataset's object",
            {
                let mut f = b.clone();
                f.object.name = format!("data/tank/secret@{}.zstream", b.snapshot);
                Entry::Backup(f).signed(&s).into_bytes()
            }
            .as_slice(),
        ),
        single(
            "refused-oversized",
            "refused",
            &name,
            Some("larger than"),
            "more than 65,536 bytes",
            &vec![b'{'; 70_000],
        ),
        {
            let i = Entry::Intent(Intent {
                store: store().id(),
                guid: 924_954_103_637_443_553,
                createtxg: 4_711,
                dataset: DS.into(),
                snapshot: b.snapshot.clone(),
                object: format!("data/{DS}@{}.zstream", b.snapshot),
                time: b.time.clone(),
                host: "backup1".into(),
                run: "00112233445566ff".into(),
                taken: true,
            });
            single("valid-intent", "valid", &name_of(&i), None, "an intent, signed", i.signed(&s).as_bytes())
        },
    ];
    out.extend(views(&s));
    out
}

/// Catalogs whose order a reader must get right.
fn views(s: &Secrets) -> Vec<Case> {
    let rec = |seq: u64, snap: &str, guid: u64, from: Option<u64>, time: &str| {
        let mut b = example();
        b.seq = seq;
        b.snapshot = snap.into();
        b.object.name = format!("data/{DS}@{snap}.zstream");
        b.guid = guid;
        b.from_guid = from;
        b.from_snapshot = from.map(|g| format!("s{g}"));
        b.kind = if from.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        };
        b.cycle = if from.is_some() {
            "a".into()
        } else {
            snap.into()
        };
        b.time = time.into();
        Entry::Backup(b)
    };
    let view = |file: &str,
                newest: &str,
                problems: usize,
                comment: &str,
                entries: Vec<(String, String)>| {
        let mut text = format!(
            "expect: view\n{}newest: {newest}\nproblems: {problems}\ncomment: {comment}\n\n",
            key_lines()
        );
        for (n, e) in entries {
            text += &format!("=== {n}\n{e}");
        }
        Case {
            file: file.into(),
            text: text.into_bytes(),
        }
    };
    let a = rec(1, "a", 10, None, "2027-01-01T02:00:00Z");
    let b = rec(2, "b", 20, Some(10), "2027-01-02T02:00:00Z");
    let c = rec(3, "c", 30, Some(20), "2027-01-03T02:00:00Z");
    let signed = |e: &Entry| (name_of(e), e.signed(s));
    let ahead = rec(2, "b", 20, Some(10), "2030-01-02T02:00:00Z");
    let twin = rec(3, "x", 31, Some(20), "2027-01-03T03:00:00Z");
    let forged = rec(4, "z", 40, Some(30), "2027-01-04T02:00:00Z");
    let other = Secrets::derive(&[Key::from_bytes([3; 32])], &[]).expect("a key");
    // Another store's genuine records (same keys, same dataset name: another host's store), copied in.
    let foreign = |e: Entry| match e {
        Entry::Backup(mut b) => {
            b.store = Store::new("s3://other-host/site", None)
                .expect("a store")
                .id();
            Entry::Backup(b)
        }
        e => e,
    };
    let f4 = foreign(rec(4, "y", 41, Some(30), "2027-01-04T02:00:00Z"));
    let f5 = foreign(rec(5, "z", 51, Some(41), "2027-01-05T02:00:00Z"));
    vec![
        view(
            "view-foreign-store",
            "c",
            2,
            "two genuine records of another store (same keys, same dataset name) with higher seq: not this store's",
            vec![signed(&a), signed(&b), signed(&c), signed(&f4), signed(&f5)],
        ),
        view(
            "view-order-by-seq",
            "c",
            0,
            "three records listed newest first: the newest is the highest seq, whatever the listing order",
            vec![signed(&c), signed(&a), signed(&b)],
        ),
        view(
            "view-clock-ahead",
            "c",
            0,
            "the middle record's clock was three years ahead: it is not the newest",
            vec![signed(&a), signed(&ahead), signed(&c)],
        ),
        view(
            "view-two-writers",
            "b",
            2,
            "two valid records with seq 3: neither is used, the newest certain one is b",
            vec![signed(&a), signed(&b), signed(&c), signed(&twin)],
        ),
        view(
            "view-forged-newest",
            "c",
            1,
            "a record with seq 4 signed by another key: refused, the newest stays c",
            vec![signed(&a), signed(&b), signed(&c), (name_of(&forged), forged.signed(&other))],
        ),
        view(
            "view-replayed",
            "c",
            0,
            "a genuine record written again under its own name after a prune deleted it: valid, and old by seq",
            vec![signed(&c), signed(&b), signed(&a)],
        ),
        view("view-empty", "none", 0, "no entry: no backup", Vec::new()),
    ]
}

/// What a reader does with a single-entry case: the entry, or why not.
pub fn open_single(stored: &[u8], name: &str, key: &PublicKey) -> Result<Entry, String> {
    let store = Store::new("s3://b/site", None).expect("a store");
    let (ds, snap, kind) = store
        .parse_entry(&format!("{}/{name}", store.catalog))
        .ok_or("not an entry's name")?;
    record::open(stored, key, (&ds, &snap, kind))
}

/// A view case's catalog, built as `io::load` builds one.
pub fn open_view(body: &[u8], key: &PublicKey) -> Catalog {
    let text = String::from_utf8_lossy(body);
    let (mut backups, mut problems) = (Vec::new(), Vec::new());
    for part in text.split("=== ").filter(|p| !p.is_empty()) {
        let (name, entry) = part.split_once('\n').unwrap_or((part, ""));
        match open_single(entry.as_bytes(), name, key) {
            Ok(e) if e.store() != store().id() => problems.push(Problem {
                name: name.to_string(),
                why: format!("an entry of another store (id {})", e.store()),
            }),
            Ok(Entry::Backup(b)) => backups.push(b),
            Ok(_) => {}
            Err(why) => problems.push(Problem {
                name: name.to_string(),
                why,
            }),
        }
    }
    Catalog::new(DS, backups, vec![], vec![], problems, false)
}

/// The vectors: the keys, the public key, the example body and its stored form.
pub fn vectors() -> String {
    let s = secrets();
    let e = Entry::Backup(example());
    let mut names = CHILDREN.to_vec();
    names.sort_unstable();
    let hashed: String = names.iter().map(|n| format!("{n}\n")).collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "comment": "zstream-catalog v2 test vectors (docs/formats/catalog-v2.md): the signing key derived from two key files' materials, its public key, the store id of the example's store, and the example record signed with it. Ed25519 is deterministic: the signature is reproducible.",
        "key_materials": keys().iter().map(|k| hex::encode(k.bytes())).collect::<Vec<_>>(),
        "key_ids": s.key_ids,
        "hkdf_salt": "zstream-catalog v2",
        "hkdf_info": "zstream-catalog v2 signing key",
        "seed": hex::encode(&s.seed()[..]),
        "public_key": s.public().hex(),
        "signed_prefix": "zstream-catalog v2\\n",
        "store_dest": store().dest,
        "store_id": store().id(),
        "body": e.body(),
        "stored": e.signed(&s),
        "children_example": {
            "comment": "a recursive run's record counts its dataset's direct children: SHA-256 of their full names sorted bytewise, each followed by a newline (testkit: valid-recursive-backup)",
            "names": CHILDREN,
            "hashed": hashed,
            "children": Children::of(&CHILDREN),
        },
    }))
    .expect("JSON")
        + "\n"
}
