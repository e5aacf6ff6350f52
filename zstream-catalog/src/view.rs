//! One dataset's catalog as the decisions see it: the entries whose signatures held, sorted by `seq`, and a list of
//! what did not hold (never used, always reported). Order is the catalog's own: `seq` and the chain of guids, not
//! any clock, so a night whose clock was wrong cannot make an older backup the "newest".

use crate::record::{Accept, Backup, Intent, Kind};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// An entry that is not used, and why (a forged or damaged one, another key set's, an unknown name...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub name: String,
    pub why: String,
}

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub dataset: String,
    /// Valid backup records, by `seq`.
    pub backups: Vec<Backup>,
    pub intents: Vec<Intent>,
    pub accepts: Vec<Accept>,
    pub problems: Vec<Problem>,
    /// The backups are v1 records: read for restores, unauthenticated, acted on by nothing else.
    pub v1: bool,
    /// The highest seq of any valid record, those left out for ambiguity included: the next record's comes after.
    pub seq_high: u64,
    /// Valid records left out because another claims the same seq or guid.
    pub ambiguous: usize,
    /// Each backup's time, bounded by every later record's (`time_of`).
    bounded: Vec<i64>,
    /// Where each guid and snapshot is in `backups`: chains and lookups stay linear in the catalog's size.
    guids: HashMap<u64, usize>,
    snapshots: HashMap<String, usize>,
    /// The snapshot part of every name the catalog's listing holds for the dataset, valid or not, described as a
    /// problem or only counted: a new snapshot's name is never one of them (`bears`).
    listed: HashSet<String>,
    /// The tails (after the last `@`) of listed names that are no entry's name (planted, or written by a later
    /// version): a new snapshot's name is never one of them, nor one of them up to a `.`.
    others: BTreeSet<String>,
    /// The snapshots whose record name (`@SNAPSHOT.json`) the listing holds with no valid record behind it:
    /// damaged, planted, left out. Kept whole, where the problems described stop at 1,000.
    unusable_records: HashSet<String>,
}

/// A name the catalog's listing holds, as the store's layout reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListedName {
    /// An entry's name of this dataset: its snapshot and kind (however many dots the snapshot's name has).
    Entry(String, crate::layout::Kind),
    /// Any other name under the dataset's prefix: its tail after the last `@`.
    Other(String),
}

/// A cycle: a full and the incrementals on it, in `seq` order.
#[derive(Clone, Debug)]
pub struct Cycle<'a> {
    pub name: &'a str,
    pub records: Vec<&'a Backup>,
}

impl<'a> Cycle<'a> {
    /// Its full record, when the catalog has it.
    pub fn full(&self) -> Option<&'a Backup> {
        self.records.iter().copied().find(|r| r.kind == Kind::Full)
    }

    pub fn first_seq(&self) -> u64 {
        self.records.first().map_or(0, |r| r.seq)
    }

    pub fn bytes(&self) -> u64 {
        self.records.iter().map(|r| r.object.bytes).sum()
    }
}

/// Why a chain cannot be followed to its full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The record whose base is missing.
    pub needed_by: String,
    pub from_snapshot: String,
    pub from_guid: u64,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "@{} (guid {}), the base of @{}, has no valid record",
            self.from_snapshot, self.from_guid, self.needed_by
        )
    }
}

impl Catalog {
    /// Builds the view of valid entries; ambiguities among them (two records with one seq or one guid, which no
    /// run of ours writes) become problems, and such records are left out of every decision.
    pub fn new(
        dataset: &str,
        mut backups: Vec<Backup>,
        intents: Vec<Intent>,
        accepts: Vec<Accept>,
        mut problems: Vec<Problem>,
        v1: bool,
    ) -> Catalog {
        backups.sort_by(|a, b| a.seq.cmp(&b.seq).then(a.snapshot.cmp(&b.snapshot)));
        let seq_high = backups.last().map_or(0, |b| b.seq);
        let count = |key: &dyn Fn(&Backup) -> u64| {
            let mut n: HashMap<u64, usize> = HashMap::new();
            for b in &backups {
                *n.entry(key(b)).or_default() += 1;
            }
            n
        };
        let seqs = count(&|b| b.seq);
        let guids = count(&|b| b.guid);
        let (ok, dup): (Vec<Backup>, Vec<Backup>) = backups
            .into_iter()
            .partition(|b| seqs[&b.seq] == 1 && guids[&b.guid] == 1);
        let ambiguous = dup.len();
        for b in dup {
            problems.push(Problem {
                name: format!("{}@{}", b.dataset, b.snapshot),
                why: format!(
                    "another valid record has the same seq ({}) or guid ({}): two writers, or a restored copy of the \
                     catalog; neither is used until one is removed",
                    b.seq, b.guid
                ),
            });
        }
        // A later record was written later: a time after a later record's is a clock that was ahead that night.
        let mut bounded: Vec<i64> = ok.iter().map(Backup::time).collect();
        for i in (0..bounded.len().saturating_sub(1)).rev() {
            bounded[i] = bounded[i].min(bounded[i + 1]);
        }
        let guids = ok.iter().enumerate().map(|(i, b)| (b.guid, i)).collect();
        let snapshots = ok
            .iter()
            .enumerate()
            .map(|(i, b)| (b.snapshot.clone(), i))
            .collect();
        Catalog {
            dataset: dataset.to_string(),
            backups: ok,
            bounded,
            guids,
            snapshots,
            intents,
            accepts,
            problems,
            v1,
            seq_high,
            ambiguous,
            listed: HashSet::new(),
            others: BTreeSet::new(),
            unusable_records: HashSet::new(),
        }
    }

    /// The catalog with every name its listing held (`ListedName`), valid or not, described or only counted.
    pub fn with_listed(mut self, names: impl IntoIterator<Item = ListedName>) -> Catalog {
        for n in names {
            match n {
                ListedName::Entry(snap, kind) => {
                    if kind == crate::layout::Kind::Backup && self.by_snapshot(&snap).is_none() {
                        self.unusable_records.insert(snap.clone());
                    }
                    self.listed.insert(snap);
                }
                ListedName::Other(tail) => {
                    self.others.insert(tail);
                }
            }
        }
        self
    }

    /// Whether something stands where SNAPSHOT's record would be and is no valid record (None: any snapshot's):
    /// then that snapshot, or some snapshot, may be committed, and nothing a leftover rule names is touched.
    pub fn unusable_record(&self, snapshot: Option<&str>) -> bool {
        let ext = crate::layout::Kind::Backup.ext();
        match snapshot {
            Some(s) => {
                self.unusable_records.contains(s)
                    || self
                        .problems
                        .iter()
                        .any(|pr| pr.name.ends_with(&format!("@{s}{ext}")))
            }
            None => {
                !self.unusable_records.is_empty()
                    || self.problems.iter().any(|pr| pr.name.ends_with(ext))
            }
        }
    }

    /// Whether anything in the catalog bears the snapshot name `name`: a valid record, an intent, or any name the
    /// listing held (an entry planted under tomorrow's name must not make tomorrow's put fail).
    pub fn bears(&self, name: &str) -> bool {
        // A name that is no entry's bears `name` when its tail after the last `@` is `name`, or `name.` and more.
        let dotted = format!("{name}.");
        let other = |t: &str| t == name || t.starts_with(&dotted);
        self.by_snapshot(name).is_some()
            || self.intents.iter().any(|it| it.snapshot == name)
            || self.listed.contains(name)
            || self.others.contains(name)
            || self
                .others
                .range(dotted.clone()..)
                .next()
                .is_some_and(|t| t.starts_with(&dotted))
            || self
                .problems
                .iter()
                .any(|p| p.name.rsplit_once('@').is_some_and(|(_, t)| other(t)))
    }

    /// When a backup was made, as far as the catalog can tell: its own time, or a later record's when that is
    /// earlier (a night whose clock was ahead would otherwise look young for years: never due for pruning, a
    /// full that is never old enough to replace).
    pub fn time_of(&self, b: &Backup) -> i64 {
        self.backups
            .binary_search_by(|x| x.seq.cmp(&b.seq))
            .map_or_else(|_| b.time(), |i| self.bounded[i])
    }

    /// Whether an intent can be a run's that never committed: its snapshot is newer at the source than every
    /// committed backup's (runs go forward). An older one is stale or replayed, and names nothing to act on.
    pub fn live(&self, it: &Intent) -> bool {
        self.newest().is_none_or(|n| it.createtxg > n.createtxg)
    }

    /// The newest committed backup: the highest `seq`.
    pub fn newest(&self) -> Option<&Backup> {
        self.backups.last()
    }

    pub fn newest_full(&self) -> Option<&Backup> {
        self.backups.iter().rev().find(|b| b.kind == Kind::Full)
    }

    pub fn by_snapshot(&self, snapshot: &str) -> Option<&Backup> {
        self.snapshots.get(snapshot).map(|&i| &self.backups[i])
    }

    pub fn by_guid(&self, guid: u64) -> Option<&Backup> {
        self.guids.get(&guid).map(|&i| &self.backups[i])
    }

    /// The chain that restores `last`: its full, then each incremental in order, `last` at the end.
    pub fn chain<'a>(&'a self, last: &'a Backup) -> Result<Vec<&'a Backup>, Broken> {
        let mut out = vec![last];
        let mut r = last;
        // A chain cannot be longer than the catalog: a loop (which valid records cannot form: each base is older
        // by seq) ends there instead of spinning.
        while r.kind == Kind::Incremental && out.len() <= self.backups.len() {
            let from = r.from_guid.unwrap_or(0);
            match self
                .by_guid(from)
                .filter(|p| p.seq < r.seq && p.dataset == r.dataset)
            {
                Some(p) => {
                    out.push(p);
                    r = p;
                }
                None => {
                    return Err(Broken {
                        needed_by: r.snapshot.clone(),
                        from_snapshot: r.from_snapshot.clone().unwrap_or_default(),
                        from_guid: from,
                    })
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Cycles in the order they began (by their first record's seq).
    pub fn cycles(&self) -> Vec<Cycle<'_>> {
        let mut by: BTreeMap<&str, Vec<&Backup>> = BTreeMap::new();
        for b in &self.backups {
            by.entry(&b.cycle).or_default().push(b);
        }
        let mut out: Vec<Cycle> = by
            .into_iter()
            .map(|(name, records)| Cycle { name, records })
            .collect();
        out.sort_by_key(Cycle::first_seq);
        out
    }

    /// Records whose chain to a full is broken, with where: computed once per record in seq order (a base comes
    /// before what builds on it), so a catalog of years of one long chain costs no more than its length.
    pub fn broken(&self) -> Vec<(&Backup, Broken)> {
        let mut why: Vec<Option<Broken>> = Vec::with_capacity(self.backups.len());
        for b in &self.backups {
            let w = match (b.kind, b.from_guid) {
                (Kind::Full, _) => None,
                (Kind::Incremental, from) => match from.and_then(|g| self.guids.get(&g)).copied() {
                    Some(i) if self.backups[i].seq < b.seq => why[i].clone(),
                    _ => Some(Broken {
                        needed_by: b.snapshot.clone(),
                        from_snapshot: b.from_snapshot.clone().unwrap_or_default(),
                        from_guid: from.unwrap_or(0),
                    }),
                },
            };
            why.push(w);
        }
        self.backups
            .iter()
            .zip(why)
            .filter_map(|(b, w)| w.map(|w| (b, w)))
            .collect()
    }

    /// The next record's seq.
    pub fn next_seq(&self) -> u64 {
        self.seq_high + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::example;

    fn rec(seq: u64, snap: &str, guid: u64, from: Option<u64>, cycle: &str) -> Backup {
        let mut b = example();
        b.seq = seq;
        b.snapshot = snap.into();
        b.guid = guid;
        b.from_guid = from;
        b.from_snapshot = from.map(|g| format!("s{g}"));
        b.kind = if from.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        };
        b.cycle = cycle.into();
        b
    }

    #[test]
    fn newest_is_by_seq_and_chains_follow_guids() {
        let mut late = rec(2, "b", 20, Some(10), "a");
        late.time = "2099-01-01T00:00:00Z".into(); // a clock years ahead that night
        let c = Catalog::new(
            "tank/home",
            vec![
                rec(3, "c", 30, Some(20), "a"),
                rec(1, "a", 10, None, "a"),
                late,
                rec(4, "d", 40, None, "d"),
            ],
            vec![],
            vec![],
            vec![],
            false,
        );
        assert_eq!(c.newest().unwrap().snapshot, "d");
        let chain: Vec<&str> = c
            .chain(c.by_snapshot("c").unwrap())
            .unwrap()
            .iter()
            .map(|b| b.snapshot.as_str())
            .collect();
        assert_eq!(chain, ["a", "b", "c"]);
        let cycles: Vec<&str> = c.cycles().iter().map(|c| c.name).collect();
        assert_eq!(cycles, ["a", "d"]);
        assert_eq!(c.next_seq(), 5);
    }

    #[test]
    fn a_missing_base_breaks_the_chain_there() {
        let c = Catalog::new(
            "tank/home",
            vec![rec(1, "a", 10, None, "a"), rec(3, "c", 30, Some(20), "a")],
            vec![],
            vec![],
            vec![],
            false,
        );
        let e = c.chain(c.by_snapshot("c").unwrap()).unwrap_err();
        assert_eq!(e.from_guid, 20);
        assert_eq!(c.broken().len(), 1);
    }

    #[test]
    fn two_records_of_one_seq_are_used_by_nothing() {
        let c = Catalog::new(
            "tank/home",
            vec![
                rec(1, "a", 10, None, "a"),
                rec(2, "b", 20, Some(10), "a"),
                rec(2, "x", 21, Some(10), "a"),
            ],
            vec![],
            vec![],
            vec![],
            false,
        );
        assert_eq!(c.backups.len(), 1);
        assert_eq!(c.problems.len(), 2);
        assert_eq!(c.newest().unwrap().snapshot, "a");
    }

    /// What the listing holds counts whole, beyond the problems described one by one: a record name with no valid
    /// record behind it, after thousands of junk names, still makes the catalog uncertain, and every name is
    /// taken; a snapshot's name with dots in it is read whole (an attacker's review found `v2.1` read as `v2`).
    #[test]
    fn the_whole_listing_counts_not_only_the_problems_described() {
        use crate::layout::Kind as K;
        let a = rec(1, "a", 10, None, "a");
        let listing = |extra: &[ListedName]| -> Vec<ListedName> {
            (0..2000)
                .map(|i| ListedName::Other(format!("junk{i:04}.x")))
                .chain([ListedName::Entry("a".into(), K::Backup)])
                .chain(extra.iter().cloned())
                .collect()
        };
        let cat = Catalog::new("tank/home", vec![a.clone()], vec![], vec![], vec![], false)
            .with_listed(listing(&[]));
        assert!(!cat.unusable_record(None), "a's record is valid");
        assert!(cat.bears("junk1999") && cat.bears("a") && !cat.bears("b") && !cat.bears("junk"));
        let damaged = [
            ListedName::Entry("pre-upgrade-v2.1".into(), K::Backup),
            ListedName::Entry("b.c".into(), K::Intent),
        ];
        let cat = Catalog::new("tank/home", vec![a], vec![], vec![], vec![], false)
            .with_listed(listing(&damaged));
        assert!(cat.unusable_record(None) && cat.unusable_record(Some("pre-upgrade-v2.1")));
        assert!(!cat.unusable_record(Some("pre-upgrade-v2")) && !cat.unusable_record(Some("a")));
        assert!(
            !cat.unusable_record(Some("b.c")),
            "an intent's name is no record's"
        );
        assert!(cat.bears("pre-upgrade-v2.1") && cat.bears("b.c") && !cat.bears("b"));
    }
}
