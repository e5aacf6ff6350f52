//! What a restore receives: the chain to the snapshot asked for (default: the newest, by seq), from its full, each
//! link with what its stream must say of itself (toname, toguid, fromguid: zstream-hash checks them before a byte
//! reaches `zfs receive`) and the digest it must have; the links TARGET already holds skipped, and TARGET refused
//! when it holds snapshots that are not this chain's.

use crate::layout::Store;
use crate::record::{Backup, Kind};
use crate::view::Catalog;
use serde::Serialize;

/// The dataset restored into, as ZFS says it is now.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub exists: bool,
    /// Its snapshots: name after `@`, guid.
    pub snapshots: Vec<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    pub snapshot: String,
    pub kind: Kind,
    #[serde(with = "crate::record::dec")]
    pub guid: u64,
    #[serde(with = "crate::record::dec::opt")]
    pub from_guid: Option<u64>,
    /// What the stream's BEGIN record names: DATASET@SNAPSHOT.
    pub toname: String,
    pub url: String,
    pub bytes: u64,
    pub checksum: String,
    pub sha256: String,
    pub storage_class: String,
    pub seal_key_ids: Vec<String>,
    pub seal_passphrases: u32,
    /// TARGET holds it already (by guid): skipped.
    pub held: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestorePlan {
    pub dataset: String,
    pub snapshot: String,
    #[serde(with = "crate::record::dec")]
    pub guid: u64,
    pub time: String,
    pub links: Vec<Link>,
    pub warnings: Vec<String>,
}

/// A refusal: the exit code and why.
pub type Refusal = (i32, String);

pub fn restore(
    store: &Store,
    cat: &Catalog,
    want: Option<&str>,
    target: &Target,
    keys: (&[String], u32),
) -> Result<RestorePlan, Refusal> {
    let ds = &cat.dataset;
    let mut warnings: Vec<String> = cat
        .problems
        .iter()
        .map(|p| format!("{} is not used: {}", p.name, p.why))
        .collect();
    if cat.backups.is_empty() {
        let why = if cat.problems.is_empty() {
            format!("{} holds no record of {ds}", store.catalog)
        } else {
            format!(
                "{} holds no valid record of {ds}: {} entries fail (are these the keys its backups were sealed with, \
                 all of them?)",
                store.catalog,
                cat.problems.len()
            )
        };
        return Err((3, why));
    }
    if cat.v1 {
        warnings.push(format!(
            "the records of {ds} are version 1, unsigned: each stream's own names and guids, its seal and its digest \
             are checked against them as it is read"
        ));
    }
    let end: &Backup = match want {
        Some(s) => cat.by_snapshot(s).ok_or_else(|| {
            (
                3,
                format!(
                    "{ds}@{s} has no valid record in {} (zstream-verify lists what it holds)",
                    store.catalog
                ),
            )
        })?,
        None => cat.newest().expect("not empty"),
    };
    let chain = cat.chain(end).map_err(|e| {
        (
            3,
            format!("the chain to {ds}@{} is broken: {e}", end.snapshot),
        )
    })?;
    for r in &chain {
        let (ids, passphrases) = keys;
        let lacking: Vec<&String> = r.seal.key_ids.iter().filter(|k| !ids.contains(k)).collect();
        let extra: Vec<&String> = ids.iter().filter(|k| !r.seal.key_ids.contains(k)).collect();
        let why = if !lacking.is_empty() {
            format!(
                "was sealed with key {} as well: give every key",
                join(&lacking)
            )
        } else if !extra.is_empty() {
            format!("was not sealed with key {}", join(&extra))
        } else if r.seal.passphrases != passphrases {
            format!(
                "needs {} passphrases, {passphrases} given",
                r.seal.passphrases
            )
        } else {
            continue;
        };
        return Err((3, format!("{ds}: link @{} {why}", r.snapshot)));
    }
    let held = |g: u64| target.snapshots.iter().any(|(_, h)| *h == g);
    let links: Vec<Link> = chain
        .iter()
        .map(|r| Link {
            snapshot: r.snapshot.clone(),
            kind: r.kind,
            guid: r.guid,
            from_guid: r.from_guid,
            toname: format!("{}@{}", r.dataset, r.snapshot),
            url: store.url_of(&r.object.name),
            bytes: r.object.bytes,
            checksum: r.object.checksum.clone(),
            sha256: r.raw.sha256.clone(),
            storage_class: r.object.storage_class.clone(),
            seal_key_ids: r.seal.key_ids.clone(),
            seal_passphrases: r.seal.passphrases,
            held: held(r.guid),
        })
        .collect();
    if target.exists {
        if target.snapshots.is_empty() {
            return Err((
                1,
                "TARGET exists and holds no snapshot: give a new dataset name".into(),
            ));
        }
        // What is still to come must build on what TARGET holds: its first link's base is there, and TARGET's
        // newest snapshot is on this chain (receiving past it would need a rollback: --force).
        match links.iter().position(|l| !l.held) {
            None => {}
            Some(0) => return Err((
                1,
                "TARGET exists and holds none of this chain's snapshots: give a new dataset name"
                    .into(),
            )),
            Some(k) => {
                let base = links[k - 1].guid;
                let newest = target.snapshots.last().map(|(_, g)| *g);
                if newest != Some(base) {
                    return Err((
                        1,
                        format!(
                            "TARGET's newest snapshot is not @{}, the base of @{}: it holds snapshots this chain \
                             does not; give a new dataset name",
                            links[k - 1].snapshot, links[k].snapshot
                        ),
                    ));
                }
            }
        }
    }
    Ok(RestorePlan {
        dataset: ds.clone(),
        snapshot: end.snapshot.clone(),
        guid: end.guid,
        time: end.time.clone(),
        links,
        warnings,
    })
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
