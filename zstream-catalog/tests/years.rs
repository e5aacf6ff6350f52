//! Years of nights in seconds: the cycle's decisions (plan, prune, restore) driven the way zstream-backup and
//! zstream-restore drive them, against a model of the source, the store and the catalog, with faults: nights
//! missed, clocks that jump both ways, sources that shrink or lose snapshots, runs killed at every step, prunes cut
//! short, objects and records lost, forged and replayed entries. After every night:
//!
//! - no retained point is lost: every committed backup in the newest --keep-cycles cycles restores, unless a fault
//!   took a piece of its own chain;
//! - "newest" is the newest committed backup;
//! - no wrong data with exit 0: a restore either fails or gives the snapshot's own state;
//! - the store converges: after a quiet stretch it holds no more cycles than the retention and the class's minimum
//!   billed duration need, and the shipped defaults prune by themselves with no failed run.

use proptest::prelude::*;
use std::collections::BTreeMap;
use zstream_catalog::clock::DAY;
use zstream_catalog::layout::{object_name, Store};
use zstream_catalog::plan::{self, Action, BackupOpts, Listed, SourceSnap};
use zstream_catalog::price::Class;
use zstream_catalog::prune::{self, PruneOpts, What};
use zstream_catalog::record::{Accept, Backup, Intent, Kind, Object, Policy, Raw, Seal};
use zstream_catalog::restore::{self, Target};
use zstream_catalog::view::{Catalog, Problem};

const DS: &str = "tank/home";
const T0: i64 = 1_798_768_800; // 2027-01-01T02:00:00Z

/// What a stored stream holds: the source's state at its snapshot, and the state it builds on.
#[derive(Clone, Debug, PartialEq)]
struct Content {
    dataset: String,
    snapshot: String,
    guid: u64,
    from_guid: u64,
    state: u64,
}

#[derive(Clone, Debug)]
struct StoredObject {
    size: u64,
    class: String,
    content: Content,
}

#[derive(Clone, Debug)]
enum Fault {
    /// The night's run does not happen.
    Skip,
    /// This machine's clock is off by this many seconds from tonight on, until a Fix.
    Clock(i64),
    FixClock,
    /// The source's data shrinks to this fraction (a deletion at the source).
    Shrink(f64),
    /// The source destroys every snapshot but the newest (a snapshot manager).
    DestroyOld,
    /// The run is killed after this step (0 intent, 1 put, 2 commit, 3..: the Nth prune step).
    Kill(usize),
    /// An attacker without keys: deletes the object of the Nth record.
    LoseObject(usize),
    /// Deletes the Nth record.
    LoseRecord(usize),
    /// Plants a forged record (it fails its signature: a problem).
    Forge,
    /// Re-uploads a record that an earlier prune deleted (a genuine, signed one).
    Replay,
    /// Copies another dataset's genuine record under this dataset's name (refused by its name: a problem).
    CopyForeign,
    /// Puts back a genuine intent written on an earlier night (a copy kept by someone who listed the bucket).
    ReplayIntent(usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::Skip),
        1 => (-3i64..3).prop_map(|d| Fault::Clock(d * DAY + if d == 0 { 3600 } else { 0 })),
        1 => Just(Fault::Clock(3 * 365 * DAY)),
        2 => Just(Fault::FixClock),
        1 => (0.2f64..0.85).prop_map(Fault::Shrink),
        1 => Just(Fault::DestroyOld),
        4 => (0usize..8).prop_map(Fault::Kill),
        1 => (0usize..400).prop_map(Fault::LoseObject),
        1 => (0usize..400).prop_map(Fault::LoseRecord),
        1 => Just(Fault::Forge),
        1 => Just(Fault::Replay),
        1 => Just(Fault::CopyForeign),
        2 => (0usize..400).prop_map(Fault::ReplayIntent),
    ]
}

struct World {
    store: Store,
    class: String,
    policy: Policy,
    /// The source: snapshots (name, guid, createtxg) and the state each holds; the live state and size.
    source: Vec<(SourceSnap, u64)>,
    state: u64,
    size: u64,
    txg: u64,
    guid: u64,
    skew: i64,
    objects: BTreeMap<String, StoredObject>,
    records: BTreeMap<String, Backup>,
    intents: BTreeMap<String, Intent>,
    accepts: BTreeMap<String, Accept>,
    problems: Vec<Problem>,
    /// Every record ever committed (the truth), and those a fault damaged (their chains may not restore).
    committed: Vec<Backup>,
    pruned: Vec<Backup>,
    damaged: Vec<String>,
    failed_runs: Vec<String>,
    /// The source's state at each snapshot taken: what a restore of it must give.
    truth: BTreeMap<String, u64>,
    /// The store has a clock of its own (S3's): a run whose clock is off by more than 15 minutes stops at its
    /// intent. A file:// store on the same machine cannot tell.
    store_clock: bool,
    /// The user said --clock-ok (after a night the clock was ahead).
    clock_ok: bool,
    /// Why the last prune held every deletion back, if it did (what the run warns of).
    held: Option<String>,
    /// Every intent ever written (what an attacker listing the bucket could have kept).
    intent_log: Vec<Intent>,
}

impl World {
    fn new(class: &str, full_every_days: u64, keep: u32) -> World {
        World {
            store: Store::new("s3://bucket/site", None).unwrap(),
            class: class.into(),
            policy: Policy {
                full_every: full_every_days * DAY as u64,
                keep_cycles: keep,
                min_full_ratio: 0.9,
            },
            source: Vec::new(),
            state: 0,
            size: 100 << 30,
            txg: 1,
            guid: 1000,
            skew: 0,
            objects: BTreeMap::new(),
            records: BTreeMap::new(),
            intents: BTreeMap::new(),
            accepts: BTreeMap::new(),
            problems: Vec::new(),
            committed: Vec::new(),
            pruned: Vec::new(),
            damaged: Vec::new(),
            failed_runs: Vec::new(),
            truth: BTreeMap::new(),
            store_clock: false,
            clock_ok: false,
            held: None,
            intent_log: Vec::new(),
        }
    }

    fn catalog(&self) -> Catalog {
        Catalog::new(
            DS,
            self.records.values().cloned().collect(),
            self.intents.values().cloned().collect(),
            self.accepts.values().cloned().collect(),
            self.problems.clone(),
            false,
        )
    }

    fn listing(&self) -> Vec<Listed> {
        self.objects
            .iter()
            .map(|(snap, o)| Listed {
                url: format!("{}/{}", self.store.dest, object_name(DS, snap)),
                snapshot: Some(snap.clone()),
                size: o.size,
                storage_class: o.class.clone(),
            })
            .collect()
    }

    fn read_back(&self, b: &Backup) -> Result<(), String> {
        match self.objects.get(&b.snapshot) {
            Some(o) if o.size == b.object.bytes => Ok(()),
            Some(o) => Err(format!("{} bytes", o.size)),
            None => Err("no such object".into()),
        }
    }

    fn source_snaps(&self) -> Vec<SourceSnap> {
        self.source.iter().map(|(s, _)| s.clone()).collect()
    }

    /// One night's zstream-backup, as the script drives the decisions, killed after step `kill` if given.
    fn night(&mut self, night: i64, kill: Option<usize>) {
        let now = T0 + night * DAY + self.skew;
        let cat = self.catalog();
        let listing = self.listing();
        let read_back = cat.newest().map(|n| self.read_back(n));
        let opts = BackupOpts {
            full_every: self.policy.full_every,
            prefix: "zstream-".into(),
            clock_ok: self.clock_ok,
            ..BackupOpts::default()
        };
        let source = self.source_snaps();
        let p = plan::backup(&plan::BackupIn {
            store: &self.store,
            cat: &cat,
            objects: Some(&listing),
            source: &source,
            now,
            newest_read_back: read_back,
            opts: &opts,
        });
        match p.action {
            Action::Stop => {
                self.failed_runs
                    .push(format!("night {night}: {} ({})", p.why, p.code));
                return;
            }
            Action::Nothing => return,
            Action::Backup => {}
        }
        for r in &p.remove {
            let snap = r
                .url
                .rsplit_once('@')
                .map(|(_, s)| s.trim_end_matches(".zstream").trim_end_matches(".intent"));
            let snap = snap.unwrap_or_default().to_string();
            if r.url.ends_with(".intent") {
                self.intents.remove(&snap);
            } else {
                assert!(
                    !self.committed.iter().any(|c| c.snapshot == snap),
                    "night {night}: a leftover removal names an object that was once committed: {r:?}"
                );
                self.objects.remove(&snap);
            }
        }
        for d in &p.drop {
            assert!(
                !self.committed.iter().any(|c| &c.snapshot == d),
                "night {night}: a snapshot that was once committed is to be destroyed at the source: {d}"
            );
            self.source.retain(|(s, _)| &s.name != d);
        }
        // The snapshot.
        self.txg += 1;
        self.guid += 1;
        let snap = p.snapshot.clone();
        let guid = self.guid;
        self.source.push((
            SourceSnap {
                name: snap.clone(),
                guid,
                createtxg: self.txg,
                bookmark: false,
            },
            self.state,
        ));
        self.truth.insert(snap.clone(), self.state);
        // Intent, put, commit. The intent is where the store's clock is compared with this machine's.
        if self.store_clock && self.skew.abs() > 15 * 60 {
            self.failed_runs.push(format!(
                "night {night}: the clock is {} s off the store's",
                self.skew
            ));
            return;
        }
        self.intents.insert(
            snap.clone(),
            Intent {
                store: self.store.id(),
                guid,
                createtxg: self.txg,
                dataset: DS.into(),
                snapshot: snap.clone(),
                object: object_name(DS, &snap),
                time: zstream_catalog::clock::format(now),
                host: "h".into(),
                run: "r".into(),
                taken: true,
            },
        );
        self.intent_log.push(self.intents[&snap].clone());
        if kill == Some(0) {
            return;
        }
        let base_guid = p.base.as_ref().map_or(0, |b| b.guid);
        let size = match p.kind {
            Some(Kind::Full) => self.size,
            _ => 1 << 30,
        };
        self.objects.insert(
            snap.clone(),
            StoredObject {
                size,
                class: self.class.clone(),
                content: Content {
                    dataset: DS.into(),
                    snapshot: snap.clone(),
                    guid,
                    from_guid: base_guid,
                    state: self.state,
                },
            },
        );
        if kill == Some(1) {
            return;
        }
        let b = Backup {
            store: self.store.id(),
            dataset: DS.into(),
            snapshot: snap.clone(),
            guid,
            createtxg: self.txg,
            kind: p.kind.unwrap(),
            from_snapshot: p.base.as_ref().map(|b| b.snapshot.clone()),
            from_guid: p.base.as_ref().map(|b| b.guid),
            cycle: p.cycle.clone(),
            seq: p.seq,
            raw: Raw {
                bytes: size,
                sha256: "0".repeat(64),
            },
            object: Object {
                name: object_name(DS, &snap),
                bytes: size,
                checksum: format!("c{guid}"),
                storage_class: self.class.clone(),
            },
            seal: Seal {
                key_ids: vec![],
                passphrases: 0,
                chunk_size: 1 << 20,
            },
            policy: self.policy.clone(),
            tools: Default::default(),
            time: zstream_catalog::clock::format(now),
            host: "h".into(),
            ..zstream_catalog::testkit::example()
        };
        assert!(
            !self.records.contains_key(&snap),
            "night {night}: a record is written twice"
        );
        self.records.insert(snap.clone(), b.clone());
        self.committed.push(b);
        if kill == Some(2) {
            return;
        }
        self.intents.remove(&snap);
        self.prune(now, kill.map(|k| k.saturating_sub(3)));
    }

    fn prune(&mut self, now: i64, kill_after: Option<usize>) {
        let cat = self.catalog();
        let listing = self.listing();
        let nf = cat
            .cycles()
            .last()
            .and_then(|c| c.full())
            .map(|f| self.read_back(f));
        let plan = prune::prune(&prune::PruneIn {
            store: &self.store,
            cat: &cat,
            objects: Some(&listing),
            now,
            newest_full_read_back: nf,
            opts: &PruneOpts {
                keep_cycles: self.policy.keep_cycles,
                min_full_ratio: self.policy.min_full_ratio,
                allow_early_delete: false,
                accept: None,
            },
        });
        self.held = plan.held.clone();
        for (n, s) in plan.steps.iter().enumerate() {
            if kill_after == Some(n) {
                return;
            }
            match s.what {
                What::Object => {
                    self.objects.remove(&s.snapshot);
                }
                What::Record => {
                    if let Some(r) = self.records.remove(&s.snapshot) {
                        self.pruned.push(r);
                    }
                }
                What::Acceptance => {
                    self.accepts.remove(&s.snapshot);
                }
            }
        }
    }

    /// A restore of SNAPSHOT (or the newest) as zstream-restore does it: the plan, then each link's stream,
    /// checked against the link as zstream-hash --expect-* checks it, applied in order. Ok(state) or a failure.
    fn restore(&self, cat: &Catalog, want: Option<&str>) -> Result<u64, String> {
        let p = restore::restore(&self.store, cat, want, &Target::default(), (&[], 0))
            .map_err(|(_, w)| w)?;
        let mut state = None;
        let mut have = 0u64;
        for l in &p.links {
            let o = self
                .objects
                .get(&l.snapshot)
                .ok_or("an object is missing")?;
            let c = &o.content;
            if c.dataset != DS
                || c.snapshot != l.snapshot
                || c.guid != l.guid
                || c.from_guid != l.from_guid.unwrap_or(0)
            {
                return Err("the stream is not its record's".into());
            }
            if l.from_guid.is_some_and(|g| g != have) {
                return Err("receive refuses: the base differs".into());
            }
            have = c.guid;
            state = Some(c.state);
        }
        state.ok_or_else(|| "nothing restored".into())
    }

    fn apply(&mut self, night: i64, f: &Fault) -> Option<usize> {
        match f {
            Fault::Skip => return Some(usize::MAX),
            Fault::Clock(d) => self.skew = *d,
            Fault::FixClock => self.skew = 0,
            Fault::Shrink(r) => self.size = ((self.size as f64) * r) as u64,
            Fault::DestroyOld => {
                let keep = self.source.len().saturating_sub(1);
                self.source.drain(..keep);
            }
            Fault::Kill(k) => return Some(*k),
            Fault::LoseObject(n) => {
                if let Some(s) = self
                    .records
                    .keys()
                    .nth(n % self.records.len().max(1))
                    .cloned()
                {
                    self.objects.remove(&s);
                    self.damaged.push(s);
                }
            }
            Fault::LoseRecord(n) => {
                if let Some(s) = self
                    .records
                    .keys()
                    .nth(n % self.records.len().max(1))
                    .cloned()
                {
                    self.records.remove(&s);
                    self.damaged.push(s);
                }
            }
            Fault::Forge => self.problems.push(Problem {
                name: format!("forged-{night}"),
                why: "its signature does not hold".into(),
            }),
            Fault::Replay => {
                if let Some(r) = self.pruned.pop() {
                    if !self.records.contains_key(&r.snapshot) {
                        // Its object was pruned with it: a restore of it fails, which is all that can be asked.
                        self.damaged.push(r.snapshot.clone());
                        self.records.insert(r.snapshot.clone(), r);
                    }
                }
            }
            Fault::ReplayIntent(n) => {
                if !self.intent_log.is_empty() {
                    let it = self.intent_log[n % self.intent_log.len()].clone();
                    self.intents.insert(it.snapshot.clone(), it);
                }
            }
            Fault::CopyForeign => self.problems.push(Problem {
                name: format!("copied-{night}"),
                why: "it is tank/secret@x's, stored under tank/home@x's name".into(),
            }),
        }
        None
    }

    /// The invariants, after a night.
    fn check(&self, night: i64) {
        let cat = self.catalog();
        // "Newest" is the newest committed record still in the catalog.
        let newest_committed = self
            .committed
            .iter()
            .rev()
            .find(|c| self.records.get(&c.snapshot) == Some(*c));
        assert_eq!(
            cat.newest().map(|b| &b.snapshot),
            newest_committed.map(|b| &b.snapshot),
            "night {night}: the newest backup is not the newest committed one"
        );
        // No wrong data with exit 0: a restore gives the snapshot's own state, or fails. Every record of the
        // newest cycle, and one in seven of the rest, each night.
        let newest_cycle = cat.newest().map(|b| b.cycle.clone());
        for (n, b) in cat.backups.iter().enumerate() {
            if Some(&b.cycle) != newest_cycle.as_ref() && (n as i64 + night) % 7 != 0 {
                continue;
            }
            if let Ok(state) = self.restore(&cat, Some(&b.snapshot)) {
                assert_eq!(
                    Some(&state),
                    self.truth.get(&b.snapshot),
                    "night {night}: @{} restores wrong data",
                    b.snapshot
                );
            }
        }
        // No retained point lost: each record of the newest keep-cycles cycles restores, unless a fault took a
        // piece of its own chain.
        let cycles = cat.cycles();
        let keep = self.policy.keep_cycles as usize;
        for c in cycles.iter().rev().take(keep) {
            for r in &c.records {
                let chain_damaged = match cat.chain(r) {
                    Ok(chain) => chain.iter().any(|l| self.damaged.contains(&l.snapshot)),
                    Err(_) => true,
                };
                if !chain_damaged {
                    let got = self.restore(&cat, Some(&r.snapshot));
                    assert!(
                        got.is_ok(),
                        "night {night}: @{} of a kept cycle does not restore: {got:?}",
                        r.snapshot
                    );
                }
            }
        }
    }

    /// Cycles the store holds (by their objects).
    fn stored_cycles(&self) -> usize {
        let cat = self.catalog();
        cat.cycles().len()
    }
}

/// How many cycles the retention and the class's minimum billed duration need at most.
fn bound(class: &str, full_every_days: u64, keep: u32) -> usize {
    let min = u64::from(Class::of(class).min_days());
    let life = (u64::from(keep) * full_every_days).max(full_every_days - 1 + min);
    (life.div_ceil(full_every_days) + 2) as usize
}

fn classes() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("STANDARD"),
        Just("STANDARD_IA"),
        Just("GLACIER_IR"),
        Just("GLACIER"),
        Just("DEEP_ARCHIVE")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Two years of nights with faults, then a quiet half year: every invariant every night, and the store
    /// converges to the retention.
    #[test]
    fn two_years_with_faults(
        class in classes(),
        full_every in prop_oneof![Just(7u64), Just(30u64)],
        keep in 1u32..4,
        store_clock in any::<bool>(),
        faults in proptest::collection::vec((0i64..730, fault()), 0..40),
    ) {
        let mut w = World::new(class, full_every, keep);
        w.store_clock = store_clock;
        for night in 0..730 {
            let mut kill = None;
            for (_, f) in faults.iter().filter(|(n, _)| *n == night) {
                if let Some(k) = w.apply(night, f) {
                    kill = Some(k);
                }
            }
            w.state += 1;
            if kill != Some(usize::MAX) {
                w.night(night, kill);
            }
            w.check(night);
        }
        // Quiet: the clock put right (and --clock-ok given, as the failing runs asked, if a night was ahead), a
        // held shrink accepted by name within a week of the run first warning of it, half a year of nights.
        w.skew = 0;
        w.clock_ok = true;
        w.failed_runs.clear();
        let mut warned = None;
        for night in 730..730 + 200 {
            w.state += 1;
            w.night(night, None);
            w.check(night);
            let accept = w.held.as_deref().and_then(|h| h.split("--accept-shrink ").nth(1)).map(str::to_string);
            match (accept, warned) {
                (Some(snap), Some(since)) if night - since >= 7 => {
                    w.accepts.insert(snap.clone(), Accept {
                        store: w.store.id(), dataset: DS.into(), snapshot: snap,
                        time: zstream_catalog::clock::format(T0 + night * DAY), host: "h".into(),
                    });
                    warned = None;
                }
                (Some(_), None) => warned = Some(night),
                (None, _) => warned = None,
                _ => {}
            }
        }
        prop_assert!(w.stored_cycles() <= bound(class, full_every, keep),
            "{} cycles stored, at most {} needed", w.stored_cycles(), bound(class, full_every, keep));
        // Forged entries stay problems; what stops a run is a refusal it says.
        for f in &w.failed_runs {
            prop_assert!(!f.is_empty());
        }
    }
}

/// The shipped defaults (DEEP_ARCHIVE, --full-every 30d, --keep-cycles 2) for 300 nights: no failed run, and the
/// store prunes by itself, down to what the 180-day minimum needs.
#[test]
fn three_hundred_days_into_deep_archive_at_the_defaults() {
    let mut w = World::new("DEEP_ARCHIVE", 30, 2);
    let mut most = 0;
    for night in 0..300 {
        w.state += 1;
        w.night(night, None);
        w.check(night);
        most = most.max(w.stored_cycles());
    }
    assert!(w.failed_runs.is_empty(), "{:?}", w.failed_runs);
    assert!(!w.pruned.is_empty(), "nothing was ever pruned");
    // A cycle lives max(2 x 30, 29 + 180) = 209 days: 7 cycles at most, the current one included.
    assert!(most <= 8, "{most} cycles stored at once");
    assert_eq!(w.restore(&w.catalog(), None), Ok(w.state));
}

/// A clock years ahead one night, then right again: the run after it stops (the clock is behind the newest
/// record) rather than skip nights or build on the wrong backup; once told (--clock-ok), "newest" stays the newest
/// by seq.
#[test]
fn a_night_years_ahead() {
    let mut w = World::new("STANDARD", 30, 2);
    for night in 0..5 {
        w.state += 1;
        w.night(night, None);
    }
    w.skew = 3 * 365 * DAY;
    w.state += 1;
    w.night(5, None);
    w.skew = 0;
    w.state += 1;
    w.night(6, None);
    assert!(
        w.failed_runs
            .last()
            .unwrap()
            .contains("earlier than the newest backup"),
        "{:?}",
        w.failed_runs
    );
    w.check(6);
    assert_eq!(
        w.restore(&w.catalog(), None),
        Ok(w.state - 1),
        "the newest committed backup is night 5's"
    );
    // Told the clock is right now, the run goes on; the night that was ahead does not stay "newest", and its
    // cycle is not kept for years: its age is bounded by the records after it.
    w.clock_ok = true;
    for night in 7..400 {
        w.state += 1;
        w.night(night, None);
        w.check(night);
    }
    assert_eq!(w.restore(&w.catalog(), None), Ok(w.state));
    assert!(
        w.stored_cycles() <= bound("STANDARD", 30, 2),
        "{} cycles",
        w.stored_cycles()
    );
}
