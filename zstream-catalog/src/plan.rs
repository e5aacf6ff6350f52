//! What tonight's backup does, decided from the catalog's valid entries, the store's listing, the source's
//! snapshots and the clock, and nothing else: a pure function, so that years of nights can be tried in seconds.
//!
//! - It never deletes because something is absent: an object goes only as this store's own leftover, named by a
//!   valid intent and by no valid record. An object nothing names is reported and kept.
//! - An empty catalog beside stored objects, entries that fail their signature with none that holds, two records
//!   of one seq: each stops the run, rather than start a second chain over what is there.
//! - The newest backup is the highest seq; a clock earlier than its time stops the run.
//! - An incremental builds only on a base whose chain is whole in the catalog and in the store (listed with the
//!   recorded size, and the base read back), and that the source still holds by guid, as a snapshot or a bookmark.

use crate::layout::{check_snapshot, Kind as Name, Store};
use crate::record::Kind;
use crate::view::Catalog;
use serde::Serialize;

/// A snapshot or bookmark of the dataset at the source (`zfs list -t snapshot,bookmark`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSnap {
    /// The name after `@` (a snapshot) or `#` (a bookmark).
    pub name: String,
    pub guid: u64,
    pub createtxg: u64,
    pub bookmark: bool,
}

/// An object the store lists under DEST/data/DATASET@.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub url: String,
    /// The snapshot its name says, when the name is one of ours.
    pub snapshot: Option<String>,
    pub size: u64,
    pub storage_class: String,
}

#[derive(Clone, Debug, Default)]
pub struct BackupOpts {
    pub force_full: bool,
    /// Seconds.
    pub full_every: u64,
    /// `--snapshot NAME`: back up this existing snapshot instead of taking one.
    pub snapshot: Option<String>,
    /// `--new-catalog`: the catalog holds nothing valid and the store holds objects; start anyway (they are kept).
    pub new_catalog: bool,
    /// `--clock-ok`: the clock is earlier than the newest record's time, and right.
    pub clock_ok: bool,
    /// What a taken snapshot's name starts with, then the UTC time (`zstream-20270131T020000Z`).
    pub prefix: String,
    /// Tonight's send is raw (`zfs send -w`).
    pub raw: bool,
}

pub struct BackupIn<'a> {
    pub store: &'a Store,
    pub cat: &'a Catalog,
    /// The store's listing of the dataset's objects; None for a vault (its inventory is a day old).
    pub objects: Option<&'a [Listed]>,
    pub source: &'a [SourceSnap],
    pub now: i64,
    /// The newest record's object as the store holds it now, compared with the record: Ok, or why not. None when
    /// it was not read back (no records, or a vault).
    pub newest_read_back: Option<Result<(), String>>,
    pub opts: &'a BackupOpts,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Send and store.
    Backup,
    /// Nothing to do (the snapshot is in the catalog already).
    Nothing,
    /// Refused: `code` and `why` say it.
    Stop,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Base {
    pub snapshot: String,
    pub guid: u64,
    /// Send from this bookmark (`-i #NAME`): the snapshot itself is gone at the source, and a bookmark of it
    /// (the same guid, whatever its name: zstream-backup names its own per store) is there. The record's base
    /// stays the snapshot's name.
    pub bookmark: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Removal {
    pub url: String,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackupPlan {
    pub action: Action,
    /// The exit code of a stop.
    pub code: i32,
    pub why: String,
    pub dataset: String,
    pub snapshot: String,
    /// The snapshot is to be taken (not `--snapshot`'s, which exists).
    pub take: bool,
    pub kind: Option<Kind>,
    pub base: Option<Base>,
    /// How tonight's stream is sent (`--raw`), recorded by the commit.
    pub send: crate::record::SendForm,
    pub cycle: String,
    pub seq: u64,
    pub object_url: String,
    pub record_url: String,
    pub intent_url: String,
    /// This store's leftovers (objects of runs that never committed, then their intents), removed before the run.
    pub remove: Vec<Removal>,
    /// Objects nothing names: kept, and reported.
    pub unknown: Vec<Removal>,
    /// The objects of intents never committed, whose unfinished uploads (a killed put's parts) are this store's
    /// to abort (`zstream-ship gc --older-than 0 URL`).
    pub gc: Vec<String>,
    /// Snapshots a run took and never committed (its intent says so), still at the source: its to destroy.
    pub drop: Vec<String>,
    pub warnings: Vec<String>,
    pub hold_tag: String,
}

impl BackupPlan {
    fn stop(mut self, code: i32, why: impl Into<String>) -> BackupPlan {
        self.action = Action::Stop;
        self.code = code;
        self.why = why.into();
        self
    }
}

pub fn backup(i: &BackupIn) -> BackupPlan {
    let cat = i.cat;
    let ds = cat.dataset.as_str();
    let mut p = BackupPlan {
        action: Action::Backup,
        code: 0,
        why: String::new(),
        dataset: ds.to_string(),
        snapshot: String::new(),
        take: false,
        kind: None,
        base: None,
        send: crate::record::SendForm { raw: i.opts.raw },
        cycle: String::new(),
        seq: cat.next_seq(),
        object_url: String::new(),
        record_url: String::new(),
        intent_url: String::new(),
        remove: Vec::new(),
        unknown: Vec::new(),
        gc: Vec::new(),
        drop: Vec::new(),
        warnings: Vec::new(),
        hold_tag: i.store.hold_tag(),
    };
    if cat.v1 {
        return p.stop(
            2,
            format!(
                "the catalog of {ds} holds only version 1 records, which are not signed. If zstream wrote this store \
                 before catalog version 2, `zstream-catalog adopt` reads every backup back and signs its record \
                 (docs/formats/catalog-v2.md); if it ever held version 2 records, someone replaced them: do not adopt"
            ),
        );
    }
    for pr in &cat.problems {
        p.warnings
            .push(format!("{} is not used: {}", pr.name, pr.why));
    }
    if cat.ambiguous > 0 {
        return p.stop(
            3,
            format!(
                "{} records of {ds} claim a seq or guid another valid record has (two writers at once?): the newest \
                 backup is not certain; zstream-verify lists them; remove the wrong one",
                cat.ambiguous
            ),
        );
    }

    // Leftovers: an intent with no record is a put that never committed; its object is this store's to remove.
    // Only an intent of a snapshot newer at the source than every committed backup can be that (runs go forward):
    // an older one is stale, or replayed by someone who kept a copy, and nothing it names is touched.
    // What an intent names (its object, its snapshot at the source) is removed only while the catalog is certain: a
    // valid record to compare with, nothing unreadable where a record could be, not a new chain beside old
    // objects. With every record gone, any genuine intent kept by a writer of the store would be "live", and its
    // object may be the only copy of a backup whose record was lost. Else all is left, and said.
    let certain = !cat.backups.is_empty() && !i.opts.new_catalog && !cat.unusable_record(None);
    for it in &cat.intents {
        // An entry where this snapshot's record would be that does not open (damaged, or planted over it): the
        // snapshot may be committed, so nothing the intent names is touched, the intent included.
        if cat.unusable_record(Some(&it.snapshot)) {
            continue;
        }
        let committed = cat.by_snapshot(&it.snapshot).is_some();
        if !committed && !cat.live(it) {
            p.remove.push(Removal {
                url: i.store.entry_url(ds, &it.snapshot, Name::Intent),
                why: format!(
                    "@{}: an intent older at the source than the newest backup (stale, or replayed): removed; \
                     nothing it names is touched",
                    it.snapshot
                ),
            });
            continue;
        }
        if !committed && !certain {
            p.warnings.push(format!(
                "@{}: the intent of a run that never committed, left as it is with its object and snapshot: the \
                 catalog holds no valid record, or one that does not open, so it is not certain that no backup \
                 needs them (remove them yourself once sure)",
                it.snapshot
            ));
            continue;
        }
        let listed = i.objects.and_then(|objs| {
            objs.iter()
                .find(|o| o.snapshot.as_deref() == Some(it.snapshot.as_str()))
        });
        if !committed {
            let at_source = i
                .source
                .iter()
                .any(|s| !s.bookmark && s.name == it.snapshot && s.guid == it.guid);
            if it.taken && at_source {
                p.drop.push(it.snapshot.clone());
            }
            if !i.store.is_vault() {
                p.gc.push(i.store.object_url(ds, &it.snapshot));
            }
            if let Some(o) = listed {
                p.remove.push(Removal {
                    url: o.url.clone(),
                    why: format!(
                        "@{}: stored by a run that never committed it (its intent of {} on {})",
                        it.snapshot, it.time, it.host
                    ),
                });
            }
        }
        p.remove.push(Removal {
            url: i.store.entry_url(ds, &it.snapshot, Name::Intent),
            why: format!(
                "@{}: the intent of a run that {}",
                it.snapshot,
                if committed {
                    "committed"
                } else {
                    "ended without a commit"
                }
            ),
        });
    }
    if let Some(objs) = i.objects {
        for o in objs {
            let named = o.snapshot.as_deref().is_some_and(|s| {
                cat.by_snapshot(s).is_some()
                    || cat
                        .intents
                        .iter()
                        .any(|it| it.snapshot == s && cat.live(it))
            });
            if !named {
                p.unknown.push(Removal {
                    url: crate::layout::printable(&o.url),
                    why: "no valid record or intent names it: kept (a run of another key set, a lost record, or \
                          not ours); zstream-verify reports it"
                        .into(),
                });
            }
        }
    }
    if cat.backups.is_empty() && !i.opts.new_catalog {
        if !p.unknown.is_empty() {
            let why = format!(
                "{} holds {} objects of {ds} but its catalog holds no valid record of them: the catalog is lost or \
                 elsewhere (--catalog), or the keys differ; nothing is deleted. If the catalog is gone for good, \
                 --new-catalog starts a new chain beside those objects",
                i.store.dest,
                p.unknown.len()
            );
            return p.stop(3, why);
        }
        if cat.unusable_record(None) {
            return p.stop(
                3,
                format!(
                    "no record of {ds} holds its signature with these keys ({} do not): are these the keys its \
                     backups were sealed with? --new-catalog starts a new chain anyway",
                    cat.problems.len()
                ),
            );
        }
    }

    let newest = cat.newest();
    if let Some(n) = newest {
        if i.now < n.time() && !i.opts.clock_ok {
            return p.stop(
                1,
                format!(
                    "the clock says {}, earlier than the newest backup of {ds} (@{}, {}): this machine's clock is \
                     wrong, or was wrong then; fix it, or give --clock-ok if it is right now",
                    crate::clock::format(i.now),
                    n.snapshot,
                    n.time
                ),
            );
        }
    }

    // The snapshot to send.
    match &i.opts.snapshot {
        Some(name) => {
            let Some(s) = i.source.iter().find(|s| !s.bookmark && &s.name == name) else {
                return p.stop(1, format!("{ds}@{name}: no such snapshot"));
            };
            if cat.by_snapshot(name).is_some() {
                p.action = Action::Nothing;
                p.snapshot = name.clone();
                p.why = format!("{ds}@{name} is in the catalog already: nothing to do");
                return p;
            }
            // The source's own order: a snapshot no newer than the newest backup cannot follow it.
            let base_txg = newest.and_then(|n| i.source.iter().find(|b| b.guid == n.guid));
            if let (Some(n), Some(b)) = (newest, base_txg) {
                if b.createtxg >= s.createtxg {
                    return p.stop(
                        1,
                        format!(
                            "{ds}@{name} is not newer at the source than @{}, the newest backup: back up a newer \
                             snapshot",
                            n.snapshot
                        ),
                    );
                }
            }
            p.snapshot = name.clone();
        }
        None => {
            let stamp = time_stamp(i.now);
            let base = format!("{}{stamp}", i.opts.prefix);
            // A name is taken by anything that bears it: a snapshot or bookmark at the source, a name in the
            // catalog (valid or not, beyond the problems described too), a stored object.
            let taken = |name: &str| {
                i.source.iter().any(|s| s.name == name)
                    || cat.bears(name)
                    || i.objects.is_some_and(|objs| {
                        objs.iter().any(|o| o.snapshot.as_deref() == Some(name))
                    })
            };
            // Two stores of one dataset in one second, or a second run in it: -2, -3, ... rather than a collision.
            p.snapshot = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|n| !taken(n))
                .expect("some suffix is free");
            p.take = true;
        }
    }
    if let Err(e) = check_snapshot(&p.snapshot) {
        return p.stop(2, e);
    }
    p.object_url = i.store.object_url(ds, &p.snapshot);
    p.record_url = i.store.entry_url(ds, &p.snapshot, Name::Backup);
    p.intent_url = i.store.entry_url(ds, &p.snapshot, Name::Intent);

    // Full or incremental.
    let full = |p: &mut BackupPlan, why: String| {
        p.kind = Some(Kind::Full);
        p.base = None;
        p.cycle = p.snapshot.clone();
        p.why = format!("full: {why}");
    };
    let Some(n) = newest else {
        full(&mut p, format!("{} holds no backup of {ds}", i.store.dest));
        return p;
    };
    if i.opts.force_full {
        full(&mut p, "--full".into());
        return p;
    }
    let last_full = cat.newest_full();
    let Some(f) = last_full else {
        full(&mut p, "the catalog holds no full of it".into());
        return p;
    };
    let made = cat.time_of(f);
    if i.now - made >= i.opts.full_every as i64 {
        full(
            &mut p,
            format!(
                "the newest full, @{}, is {} old (--full-every {})",
                f.snapshot,
                crate::clock::human(i.now - made),
                crate::clock::compact(i.opts.full_every)
            ),
        );
        return p;
    }
    let chain = match cat.chain(n) {
        Ok(c) => c,
        Err(e) => {
            full(
                &mut p,
                format!("the chain to the newest backup is broken: {e}"),
            );
            return p;
        }
    };
    if let Some(objs) = i.objects {
        for link in &chain {
            let o = objs
                .iter()
                .find(|o| o.snapshot.as_deref() == Some(link.snapshot.as_str()));
            let why = match o {
                None => Some("is not in the store".to_string()),
                Some(o) if o.size != link.object.bytes => Some(format!(
                    "holds {} bytes, its record {}",
                    o.size, link.object.bytes
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                full(
                    &mut p,
                    format!(
                        "the object of @{}, a link of the newest chain, {why}",
                        link.snapshot
                    ),
                );
                return p;
            }
        }
    }
    if n.send.raw != i.opts.raw {
        let form = |raw: bool| if raw { "raw (-w)" } else { "plain (no -w)" };
        full(
            &mut p,
            format!(
                "the newest backup, @{}, was sent {}, tonight's send is {}: a raw stream and a plain one cannot share \
                 a chain",
                n.snapshot,
                form(n.send.raw),
                form(i.opts.raw)
            ),
        );
        return p;
    }
    if let Some(Err(why)) = &i.newest_read_back {
        full(
            &mut p,
            format!("the newest backup's object does not read back: {why}"),
        );
        return p;
    }
    // The snapshot itself when the source has it, else its bookmark.
    let at_source = i
        .source
        .iter()
        .filter(|s| s.guid == n.guid)
        .min_by_key(|s| s.bookmark);
    match at_source {
        None => {
            full(
                &mut p,
                format!(
                    "the base @{} (guid {}) is gone at the source, as a snapshot and as a bookmark",
                    n.snapshot, n.guid
                ),
            );
        }
        Some(s) => {
            p.kind = Some(Kind::Incremental);
            p.base = Some(Base {
                snapshot: n.snapshot.clone(),
                guid: n.guid,
                bookmark: s.bookmark.then(|| s.name.clone()),
            });
            p.cycle = n.cycle.clone();
            p.why = format!(
                "incremental from {}{}, the newest backup in {}",
                if s.bookmark { "#" } else { "@" },
                s.name,
                i.store.dest
            );
        }
    }
    p
}

/// `20270131T020000Z`.
pub fn time_stamp(t: i64) -> String {
    crate::clock::format(t).replace(['-', ':'], "")
}

/// The source's snapshots and bookmarks, from `zfs list -H -p -o name,guid,createtxg -t snapshot,bookmark -d 1
/// DATASET` (tab-separated).
pub fn parse_source(dataset: &str, text: &str) -> Result<Vec<SourceSnap>, String> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || format!("the source's snapshot list, line {}: '{line}'", n + 1);
        let f: Vec<&str> = line.split('\t').collect();
        let [name, guid, txg] = f[..] else {
            return Err(bad());
        };
        let (ds, tail, bookmark) = if let Some((d, s)) = name.split_once('@') {
            (d, s, false)
        } else if let Some((d, s)) = name.split_once('#') {
            (d, s, true)
        } else {
            return Err(bad());
        };
        if ds != dataset {
            continue;
        }
        out.push(SourceSnap {
            name: tail.to_string(),
            guid: guid.parse().map_err(|_| bad())?,
            createtxg: txg.parse().map_err(|_| bad())?,
            bookmark,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Backup;
    use crate::view::ListedName;

    /// A full of tank/home@a (guid 10) in the example's store, a day before `NOW`.
    fn full_a() -> Backup {
        let mut b = crate::testkit::example();
        b.snapshot = "a".into();
        b.object.name = crate::layout::object_name(&b.dataset, "a");
        b.object.storage_class = "STANDARD".into();
        b.kind = Kind::Full;
        b.from_snapshot = None;
        b.from_guid = None;
        b.cycle = "a".into();
        b.seq = 1;
        b.guid = 10;
        b.time = "2027-01-01T02:00:00Z".into();
        b
    }
    // 2027-01-02T02:00:00Z
    const NOW: i64 = 1_798_855_200;

    fn plan(source: &[SourceSnap]) -> BackupPlan {
        plan_listing(source, &[])
    }

    /// `plan`, the catalog's listing also holding `listed` (names that are no valid entry, beyond the problems
    /// described one by one).
    fn plan_listing(source: &[SourceSnap], listed: &[ListedName]) -> BackupPlan {
        plan_of(full_a(), source, listed, &opts(false))
    }

    /// Tonight's options: a full every 30 days, `--raw` or not.
    fn opts(raw: bool) -> BackupOpts {
        BackupOpts {
            full_every: 30 * 86_400,
            prefix: "zstream-".into(),
            raw,
            ..BackupOpts::default()
        }
    }

    /// The plan at `NOW` with `b` the catalog's only record (its object in the store as recorded).
    fn plan_of(
        b: Backup,
        source: &[SourceSnap],
        listed: &[ListedName],
        opts: &BackupOpts,
    ) -> BackupPlan {
        let store = crate::testkit::store();
        let objects = [Listed {
            url: store.object_url(&b.dataset, "a"),
            snapshot: Some("a".into()),
            size: b.object.bytes,
            storage_class: "STANDARD".into(),
        }];
        let cat = Catalog::new(&b.dataset.clone(), vec![b], vec![], vec![], vec![], false)
            .with_listed(listed.iter().cloned());
        backup(&BackupIn {
            store: &store,
            cat: &cat,
            objects: Some(&objects),
            source,
            now: NOW,
            newest_read_back: Some(Ok(())),
            opts,
        })
    }

    fn snap(name: &str, guid: u64, bookmark: bool) -> SourceSnap {
        SourceSnap {
            name: name.into(),
            guid,
            createtxg: guid,
            bookmark,
        }
    }

    #[test]
    fn the_base_is_the_snapshot_while_the_source_has_it_then_a_bookmark_of_it_by_guid() {
        let base = |bookmark: Option<&str>| Base {
            snapshot: "a".into(),
            guid: 10,
            bookmark: bookmark.map(String::from),
        };
        // The snapshot and a bookmark of it: the snapshot.
        let p = plan(&[snap("a", 10, false), snap("zstream-1a2b_a", 10, true)]);
        assert_eq!(p.kind, Some(Kind::Incremental), "{}", p.why);
        assert_eq!(p.base, Some(base(None)));
        // A snapshot manager destroyed @a: its bookmark, whatever its name, stands for it; the record's base
        // stays @a.
        let p = plan(&[snap("zstream-1a2b_a", 10, true), snap("other", 11, true)]);
        assert_eq!(p.kind, Some(Kind::Incremental), "{}", p.why);
        assert_eq!(p.base, Some(base(Some("zstream-1a2b_a"))));
        assert!(p.why.contains("#zstream-1a2b_a"), "{}", p.why);
        // A bookmark of another snapshot (another guid), even one named after @a, is no base.
        let p = plan(&[snap("a", 12, true)]);
        assert_eq!(p.kind, Some(Kind::Full));
        assert!(p.why.contains("gone at the source"), "{}", p.why);
    }

    /// A name planted under tonight's snapshot name is taken even when it is not among the problems described
    /// (the first 1,000): the run takes the next free name instead of failing its put every night.
    #[test]
    fn a_name_anywhere_in_the_listing_is_taken() {
        let src = [snap("a", 10, false)];
        let tonight = "zstream-20270102T020000Z";
        assert_eq!(plan(&src).snapshot, tonight);
        let p = plan_listing(
            &src,
            &[
                ListedName::Entry(tonight.into(), crate::layout::Kind::Backup),
                ListedName::Other(format!("{tonight}-2.planted")),
            ],
        );
        assert!(p.take);
        assert_eq!(p.snapshot, format!("{tonight}-3"), "{}", p.why);
    }

    /// A chain keeps its full's send form: turning `--raw` on or off makes tonight's backup a full, and says why.
    #[test]
    fn a_chain_is_raw_or_plain_from_its_full_on() {
        let src = [snap("a", 10, false)];
        let with = |b: Backup, opts: &BackupOpts| plan_of(b, &src, &[], opts);
        let raw = opts;
        assert_eq!(with(full_a(), &raw(false)).kind, Some(Kind::Incremental));
        let p = with(full_a(), &raw(true));
        assert_eq!(p.kind, Some(Kind::Full));
        assert!(
            p.why
                .contains("sent plain (no -w), tonight's send is raw (-w)"),
            "{}",
            p.why
        );
        let mut a = full_a();
        a.send.raw = true;
        assert_eq!(with(a.clone(), &raw(true)).kind, Some(Kind::Incremental));
        let p = with(a, &raw(false));
        assert_eq!(p.kind, Some(Kind::Full));
        assert!(
            p.why.contains("sent raw (-w), tonight's send is plain"),
            "{}",
            p.why
        );
    }
}
