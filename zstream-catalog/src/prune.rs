//! Which cycles go: decided per cycle, never all or nothing. A cycle goes when it is older than the newest
//! `--keep-cycles` and every object in it has passed its storage class's minimum billed duration; until then it
//! waits, which is not a failure. Nothing goes unless the store still holds what is kept: the newest full reads
//! back as recorded and every object of the kept cycles is there; and nothing goes while the kept fulls are much
//! smaller than the largest full since the last shrink the user accepted by name (a source that lost its data
//! must not take its backups with it). What goes, goes object then record, newest link first, so that a prune cut
//! short leaves shorter chains that still restore, and the next run finishes it.

use crate::layout::{Kind as Name, Store};
use crate::plan::Listed;
use crate::price;
use crate::record::Kind;
use crate::view::{Catalog, Cycle};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct PruneOpts {
    pub keep_cycles: u32,
    pub min_full_ratio: f64,
    pub allow_early_delete: bool,
    /// `--accept-shrink SNAPSHOT`, given this run (written as an acceptance before the prune acts).
    pub accept: Option<String>,
}

pub struct PruneIn<'a> {
    pub store: &'a Store,
    pub cat: &'a Catalog,
    pub objects: Option<&'a [Listed]>,
    pub now: i64,
    /// The newest full's object read back and compared with its record. None: not read (a vault: Glacier checked
    /// its tree hash when it named the archive).
    pub newest_full_read_back: Option<Result<(), String>>,
    pub opts: &'a PruneOpts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within --keep-cycles.
    Keep,
    /// Deleted by this plan.
    Go,
    /// Older than --keep-cycles, but an object is younger than its class's minimum billed duration.
    Wait,
    /// Older than --keep-cycles, but a guard holds every deletion back.
    Held,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CycleVerdict {
    pub cycle: String,
    pub records: usize,
    pub bytes: u64,
    pub verdict: Verdict,
    pub why: String,
    /// When a waiting cycle may go.
    pub until: Option<String>,
    /// What deleting it now costs in early-deletion charges (USD), or cost, for a cycle that goes early.
    pub early_fee: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    Object,
    Record,
    Acceptance,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub url: String,
    pub what: What,
    pub snapshot: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrunePlan {
    pub dataset: String,
    pub cycles: Vec<CycleVerdict>,
    /// What to delete, in order.
    pub steps: Vec<Step>,
    /// The guard that holds every deletion back, if one does.
    pub held: Option<String>,
    /// Early-deletion charges of what goes (USD).
    pub early_fees: f64,
}

pub fn prune(i: &PruneIn) -> PrunePlan {
    let cat = i.cat;
    let cycles = cat.cycles();
    let keep = i.opts.keep_cycles.max(1) as usize;
    let first_kept = cycles.len().saturating_sub(keep);
    let mut plan = PrunePlan {
        dataset: cat.dataset.clone(),
        cycles: Vec::new(),
        steps: Vec::new(),
        held: guard(i, &cycles[first_kept..], &cycles),
        early_fees: 0.0,
    };
    for (n, c) in cycles.iter().enumerate() {
        let mut v = CycleVerdict {
            cycle: c.name.to_string(),
            records: c.records.len(),
            bytes: c.bytes(),
            verdict: Verdict::Keep,
            why: String::new(),
            until: None,
            early_fee: 0.0,
        };
        if n >= first_kept {
            v.why = format!("one of the newest {keep} cycles (--keep-cycles)");
        } else if let Some(h) = &plan.held {
            v.verdict = Verdict::Held;
            v.why = h.clone();
        } else {
            let (until, fee, youngest) = billing(cat, c, i.now);
            if until > i.now && !i.opts.allow_early_delete {
                v.verdict = Verdict::Wait;
                v.until = Some(crate::clock::format(until));
                v.why = format!(
                    "@{} has not yet been stored its class's minimum billed duration; deleting the cycle now would \
                     cost about ${fee:.2} in early-deletion charges (--allow-early-delete)",
                    youngest
                );
                v.early_fee = fee;
            } else {
                v.verdict = Verdict::Go;
                v.early_fee = if until > i.now { fee } else { 0.0 };
                v.why = if v.early_fee > 0.0 {
                    format!(
                        "older than the newest {keep} cycles; early deletion (${fee:.2}) allowed"
                    )
                } else {
                    format!("older than the newest {keep} cycles")
                };
                plan.early_fees += v.early_fee;
                steps(i, c, &mut plan.steps);
            }
        }
        plan.cycles.push(v);
    }
    plan
}

/// Why no cycle may go now, if any reason holds.
fn guard(i: &PruneIn, kept: &[Cycle], all: &[Cycle]) -> Option<String> {
    let cat = i.cat;
    if cat.v1 {
        return Some("the catalog holds unsigned version 1 records (zstream-catalog adopt)".into());
    }
    if cat.ambiguous > 0 {
        return Some(
            "two valid records claim one seq or guid: the newest backup is not certain".into(),
        );
    }
    let newest_full = kept.last().and_then(Cycle::full);
    let Some(nf) = newest_full else {
        return Some("the newest cycle has no valid full record".into());
    };
    if let Some(Err(why)) = &i.newest_full_read_back {
        return Some(format!(
            "the newest full, @{}, does not read back as recorded: {why}",
            nf.snapshot
        ));
    }
    if let Some(objs) = i.objects {
        for r in kept.iter().flat_map(|c| c.records.iter()) {
            match objs
                .iter()
                .find(|o| o.snapshot.as_deref() == Some(r.snapshot.as_str()))
            {
                None => {
                    return Some(format!(
                        "@{}, a backup the kept cycles need, is not in the store",
                        r.snapshot
                    ))
                }
                Some(o) if o.size != r.object.bytes => {
                    return Some(format!(
                        "@{}, a backup the kept cycles need, holds {} bytes, its record {}",
                        r.snapshot, o.size, r.object.bytes
                    ))
                }
                Some(_) => {}
            }
        }
    }
    // The shrink guard: the largest kept full against the largest full since the newest accepted shrink.
    let accepted_seq = cat
        .accepts
        .iter()
        .map(|a| a.snapshot.as_str())
        .chain(i.opts.accept.as_deref())
        .filter_map(|s| cat.by_snapshot(s).filter(|b| b.kind == Kind::Full))
        .map(|b| b.seq)
        .max()
        .unwrap_or(0);
    let largest_since = all
        .iter()
        .filter_map(Cycle::full)
        .filter(|f| f.seq >= accepted_seq)
        .max_by_key(|f| f.raw.bytes);
    let largest_kept = kept
        .iter()
        .filter_map(Cycle::full)
        .max_by_key(|f| f.raw.bytes);
    if let (Some(big), Some(k)) = (largest_since, largest_kept) {
        if (k.raw.bytes as f64) < i.opts.min_full_ratio * big.raw.bytes as f64 {
            return Some(format!(
                "the fulls kept are smaller than earlier ones: the largest, @{}, holds {} bytes, less than {} x the {} \
                 of @{}. If the source really shrank, accept it: --accept-shrink {}",
                k.snapshot, k.raw.bytes, i.opts.min_full_ratio, big.raw.bytes, big.snapshot, nf.snapshot
            ));
        }
    }
    None
}

/// When every object of the cycle has been stored its class's minimum billed duration, what deleting it all now
/// would cost in early-deletion charges, and the youngest object's snapshot.
fn billing(cat: &Catalog, c: &Cycle, now: i64) -> (i64, f64, String) {
    let mut until = i64::MIN;
    let mut fee = 0.0;
    let mut youngest = String::new();
    for r in &c.records {
        let class = price::Class::of(&r.object.storage_class);
        let made = cat.time_of(r);
        let due = made + class.min_days() as i64 * crate::clock::DAY;
        if due > until {
            until = due;
            youngest = r.snapshot.clone();
        }
        fee += price::early_deletion(class, r.object.bytes, made, now);
    }
    (until, fee, youngest)
}

/// A cycle's deletions: for each link, newest first, its object (when the store lists it, or always in a vault),
/// then its record; then acceptances that name one of its fulls.
fn steps(i: &PruneIn, c: &Cycle, out: &mut Vec<Step>) {
    let ds = &i.cat.dataset;
    for r in c.records.iter().rev() {
        let listed = match i.objects {
            Some(objs) => objs
                .iter()
                .any(|o| o.snapshot.as_deref() == Some(r.snapshot.as_str())),
            None => true,
        };
        if listed {
            out.push(Step {
                url: i.store.url_of(&r.object.name),
                what: What::Object,
                snapshot: r.snapshot.clone(),
            });
        }
        out.push(Step {
            url: i.store.entry_url(ds, &r.snapshot, Name::Backup),
            what: What::Record,
            snapshot: r.snapshot.clone(),
        });
        if i.cat.accepts.iter().any(|a| a.snapshot == r.snapshot) {
            out.push(Step {
                url: i.store.entry_url(ds, &r.snapshot, Name::AcceptShrink),
                what: What::Acceptance,
                snapshot: r.snapshot.clone(),
            });
        }
    }
}
