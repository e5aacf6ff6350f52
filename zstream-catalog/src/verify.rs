//! The drill's verdict on one dataset of a store: every entry that fails its signature, every valid record against
//! its object as the store holds it now, every chain, every object for a record or an intent. It fails closed:
//! healthy only when something was checked and nothing was found wrong; a dataset with no valid record is not
//! healthy, and neither is an object nothing names.

use crate::layout::Store;
use crate::plan::Listed;
use crate::prune::{self, PruneOpts, Verdict};
use crate::record::{Backup, Kind};
use crate::view::Catalog;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// An object as the store holds it now (`stat`, or a vault's inventory line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub size: u64,
    /// The stored checksum, compared with the record's by zstream-ship's rule (`same_checksum`).
    pub checksum_matches: bool,
    pub checksum: String,
    /// Readable now ("available", "restored"), or an archive state.
    pub restore: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub dataset: String,
    pub snapshot: Option<String>,
    pub kind: Option<Kind>,
    pub class: Option<String>,
    pub bytes: Option<u64>,
    pub url: String,
    pub sha256: Option<String>,
    pub state: String,
    pub ok: bool,
    /// Its object can be read now (a sample may read it without asking for a restore).
    pub readable: bool,
    /// A row that stands for this many more objects nothing names, past the ones listed one by one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The objects nothing names that a dataset's report lists one by one; the rest are one row with their count, so
/// that objects planted by whoever can write the store cannot make the report (held for every dataset until the
/// end) as large as their number.
pub const MAX_ORPHAN_ROWS: usize = 1000;

/// What monitoring needs of a dataset: counts, the newest backup and full, the newest chain, broken links, bytes
/// by class (README, "Monitoring").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub records: usize,
    pub last: Option<(String, String)>,
    pub last_full: Option<(String, String)>,
    pub chain_records: usize,
    pub chain_bytes: u64,
    pub broken: usize,
    pub by_class: BTreeMap<String, u64>,
}

pub struct VerifyIn<'a> {
    pub store: &'a Store,
    pub cat: &'a Catalog,
    /// The listing of the dataset's objects (None: a vault, checked through `seen` from its inventory).
    pub objects: Option<&'a [Listed]>,
    /// Each valid record's object as seen now, by snapshot: Ok, or why it could not be (no such object...).
    pub seen: &'a HashMap<String, Result<Seen, String>>,
    pub now: i64,
}

pub fn summary(cat: &Catalog) -> Summary {
    let mut s = Summary {
        records: cat.backups.len(),
        last: cat.newest().map(|b| (b.snapshot.clone(), b.time.clone())),
        last_full: cat
            .newest_full()
            .map(|b| (b.snapshot.clone(), b.time.clone())),
        broken: cat.broken().len(),
        ..Summary::default()
    };
    if let Some(chain) = cat.newest().and_then(|n| cat.chain(n).ok()) {
        s.chain_records = chain.len();
        s.chain_bytes = chain.iter().map(|b| b.object.bytes).sum();
    }
    for b in &cat.backups {
        *s.by_class
            .entry(b.object.storage_class.clone())
            .or_default() += b.object.bytes;
    }
    s
}

pub fn verify(i: &VerifyIn) -> Vec<Row> {
    let cat = i.cat;
    let ds = &cat.dataset;
    let mut rows = Vec::new();
    let row = |snapshot: Option<&Backup>, url: String, state: String, ok: bool| Row {
        dataset: ds.clone(),
        snapshot: snapshot.map(|b| b.snapshot.clone()),
        kind: snapshot.map(|b| b.kind),
        class: snapshot.map(|b| b.object.storage_class.clone()),
        bytes: snapshot.map(|b| b.object.bytes),
        url,
        sha256: snapshot.map(|b| b.raw.sha256.clone()),
        state,
        ok,
        readable: false,
        more: 0,
    };
    for p in &cat.problems {
        rows.push(row(
            None,
            p.name.clone(),
            format!("not used: {}", p.why),
            false,
        ));
    }
    if cat.backups.is_empty() {
        rows.push(row(
            None,
            i.store.catalog_prefix(ds),
            format!("no valid record of {ds}"),
            false,
        ));
    }
    if cat.v1 {
        rows.push(row(
            None,
            i.store.catalog_prefix(ds),
            "version 1 records, unsigned: sign them once with `zstream-catalog adopt`".into(),
            false,
        ));
    }
    // A newest backup dated after now was made by a clock that was ahead: it would look fresh for as long as the
    // clock was wrong by, while the runs after it stop (their clock is behind it).
    if let Some(n) = cat
        .newest()
        .filter(|n| !cat.v1 && n.time() > i.now + crate::clock::MAX_SKEW)
    {
        rows.push(row(
            None,
            i.store
                .entry_url(ds, &n.snapshot, crate::layout::Kind::Backup),
            future(n, i.now),
            false,
        ));
    }
    // Cycles the newest record's retention lets go: a missing object there is a prune cut short, which the next
    // backup finishes, not damage.
    let (pruning, held): (Vec<String>, Option<String>) = match cat.newest() {
        Some(n) if !cat.v1 => {
            let opts = PruneOpts {
                keep_cycles: n.policy.keep_cycles,
                min_full_ratio: n.policy.min_full_ratio,
                allow_early_delete: false,
                accept: None,
            };
            let plan = prune::prune(&prune::PruneIn {
                store: i.store,
                cat,
                objects: None,
                now: i.now,
                newest_full_read_back: None,
                opts: &opts,
            });
            let go = plan
                .cycles
                .into_iter()
                .filter(|c| c.verdict == Verdict::Go)
                .map(|c| c.cycle)
                .collect();
            (go, plan.held)
        }
        _ => (Vec::new(), None),
    };
    // Pruning held back by a shrink is for the user to look at: the source may have lost its data.
    if let Some(h) = held.filter(|h| h.contains("--accept-shrink")) {
        rows.push(row(
            None,
            i.store.catalog_prefix(ds),
            format!("prune held: {h}"),
            false,
        ));
    }
    let broken: HashMap<String, String> = cat
        .broken()
        .into_iter()
        .map(|(b, e)| (b.snapshot.clone(), e.to_string()))
        .collect();
    for b in &cat.backups {
        let url = i.store.url_of(&b.object.name);
        let mut r = row(Some(b), url, "ok".into(), true);
        let due = pruning.contains(&b.cycle);
        match i.seen.get(&b.snapshot) {
            None => {
                r.state = "not checked".into();
                r.ok = false;
            }
            Some(Err(why)) if due => {
                r.state = format!("prune cut short ({why}): the next backup finishes it");
            }
            Some(Err(why)) => {
                r.state = why.clone();
                r.ok = false;
            }
            Some(Ok(s)) if s.size != b.object.bytes => {
                r.state = format!("differs: {} bytes, its record {}", s.size, b.object.bytes);
                r.ok = false;
            }
            Some(Ok(s)) if !s.checksum_matches => {
                r.state = format!(
                    "differs: stored checksum {}, its record {}",
                    s.checksum, b.object.checksum
                );
                r.ok = false;
            }
            Some(Ok(s)) => {
                r.readable = matches!(s.restore.as_str(), "available" | "restored");
            }
        }
        if let Some(e) = broken.get(&b.snapshot) {
            if !due {
                r.state = format!("broken chain: {e}");
                r.ok = false;
            }
        }
        rows.push(r);
    }
    let (mut listed, mut unlisted, mut unlisted_bytes) = (0usize, 0u64, 0u64);
    if let Some(objs) = i.objects {
        for o in objs {
            let snap = o.snapshot.as_deref();
            if snap.is_some_and(|s| cat.by_snapshot(s).is_some()) {
                continue;
            }
            let intent = snap.and_then(|s| {
                cat.intents
                    .iter()
                    .find(|it| it.snapshot == s && cat.live(it))
            });
            let (state, ok) = match intent {
                Some(it) => (
                    format!(
                        "a backup under way, or cut short (its intent: {} on {}); the next backup removes it if it \
                         never commits",
                        it.time, it.host
                    ),
                    true,
                ),
                None => (
                    "object without a valid record or intent: kept; not this store's, or its record is lost"
                        .into(),
                    false,
                ),
            };
            if !ok {
                if listed == MAX_ORPHAN_ROWS {
                    unlisted += 1;
                    unlisted_bytes += o.size;
                    continue;
                }
                listed += 1;
            }
            rows.push(Row {
                dataset: ds.clone(),
                snapshot: None,
                kind: None,
                class: Some(o.storage_class.clone()),
                bytes: Some(o.size),
                url: crate::layout::printable(&o.url),
                sha256: None,
                state,
                ok,
                readable: false,
                more: 0,
            });
        }
    }
    if unlisted > 0 {
        rows.push(Row {
            dataset: ds.clone(),
            snapshot: None,
            kind: None,
            class: None,
            bytes: Some(unlisted_bytes),
            url: crate::layout::printable(&i.store.data_prefix(ds)),
            sha256: None,
            state: format!(
                "object without a valid record or intent: {unlisted} more, not listed one by one (past \
                 {MAX_ORPHAN_ROWS}): kept"
            ),
            ok: false,
            readable: false,
            more: unlisted,
        });
    }
    rows
}

/// Why a newest backup dated after `now` is a problem.
pub fn future(newest: &Backup, now: i64) -> String {
    format!(
        "the newest backup, @{}, is dated {}, {} after this clock: the clock of that night was ahead, and the next \
         backups stop until it is fixed (or told --clock-ok)",
        newest.snapshot,
        newest.time,
        crate::clock::human(newest.time() - now)
    )
}

/// Objects nothing names (what `zstream_orphan_objects` counts).
pub fn orphans(rows: &[Row]) -> usize {
    rows.iter()
        .filter(|r| r.snapshot.is_none() && r.state.starts_with("object without"))
        .map(|r| if r.more > 0 { r.more as usize } else { 1 })
        .sum()
}

/// Healthy: something was checked, and nothing is wrong.
pub fn healthy(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.snapshot.is_some()) && rows.iter().all(|r| r.ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::example;

    #[test]
    fn a_newest_backup_dated_after_now_is_not_healthy() {
        let store = Store::new("s3://b/site", None).unwrap();
        let mut b = example();
        b.kind = Kind::Full;
        b.from_guid = None;
        b.from_snapshot = None;
        b.cycle = b.snapshot.clone();
        b.seq = 1;
        let seen: HashMap<String, Result<Seen, String>> = [(
            b.snapshot.clone(),
            Ok(Seen {
                size: b.object.bytes,
                checksum_matches: true,
                checksum: b.object.checksum.clone(),
                restore: "archived".into(),
            }),
        )]
        .into();
        let t = b.time();
        let cat = Catalog::new("tank/home", vec![b], vec![], vec![], vec![], false);
        let rows = |now: i64| {
            verify(&VerifyIn {
                store: &store,
                cat: &cat,
                objects: None,
                seen: &seen,
                now,
            })
        };
        // Within the clocks' tolerance, and after: healthy.
        for now in [t - crate::clock::MAX_SKEW, t, t + 3_600] {
            assert!(healthy(&rows(now)), "{:?}", rows(now));
        }
        // A verifier an hour behind the newest record: that night's clock was ahead.
        let r = rows(t - 3_600);
        assert!(!healthy(&r));
        assert!(
            r.iter().any(|x| x.state.contains("1h 0m after this clock")),
            "{r:?}"
        );
    }

    #[test]
    fn planted_objects_past_the_bound_are_one_row_and_still_counted() {
        let store = Store::new("s3://b/site", None).unwrap();
        let cat = Catalog::new("tank/home", vec![], vec![], vec![], vec![], false);
        let n = MAX_ORPHAN_ROWS + 1500;
        let objects: Vec<Listed> = (0..n)
            .map(|k| Listed {
                snapshot: Some(format!("planted-{k}")),
                url: format!("s3://b/site/data/tank/home@planted-{k}.zstream"),
                size: 10,
                storage_class: "STANDARD".into(),
            })
            .collect();
        let rows = verify(&VerifyIn {
            store: &store,
            cat: &cat,
            objects: Some(&objects),
            seen: &HashMap::new(),
            now: 0,
        });
        let orphan_rows = rows
            .iter()
            .filter(|r| r.state.starts_with("object without"))
            .count();
        assert_eq!(orphan_rows, MAX_ORPHAN_ROWS + 1, "{:?}", rows.first());
        assert_eq!(orphans(&rows), n);
        let last = rows.last().unwrap();
        assert_eq!((last.more, last.bytes), (1500, Some(15_000)));
        assert!(!healthy(&rows));
    }
}
