//! Bills a user can plan with, from the catalog's own records and AWS's list prices (`price`): what the store costs
//! a month, what a full restore of the newest point costs by tier (retrieval, the restored copies' days,
//! requests, transfer out), and which --full-every and --keep-cycles is cheapest for a stated retention. Sums are
//! kept exact and rounded once, to the cent, when printed.

use crate::io::Io;
use crate::price::{Class, GIB, HOURS_PER_MONTH};
use crate::restore::Link;
use crate::sign::PublicKey;
use clap::{Args, ValueEnum};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Tier {
    Expedited,
    Standard,
    Bulk,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// Retrieval tier for archived objects: GLACIER and vaults offer Expedited, Standard and Bulk; DEEP_ARCHIVE
    /// Standard and Bulk only.
    #[arg(long, value_enum, default_value = "standard")]
    pub tier: Tier,
    /// Days a restored copy stays readable (billed at STANDARD's rate meanwhile).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=30_000))]
    pub days: u32,
    /// The restore reads from an EC2 instance in the bucket's region: no transfer-out charge.
    #[arg(long)]
    pub in_region: bool,
}

/// USD per GiB retrieved and per 1,000 retrieval requests, and the hours a tier typically takes; None where the
/// class does not offer the tier.
pub fn retrieval(class: Class, tier: Tier) -> Option<(f64, f64, f64)> {
    use Tier::*;
    match (class, tier) {
        (Class::DeepArchive, Expedited) => None,
        (Class::DeepArchive, Standard) => Some((0.02, 0.10, 12.0)),
        (Class::DeepArchive, Bulk) => Some((0.0025, 0.025, 48.0)),
        (Class::Glacier, Expedited) => Some((0.03, 10.0, 0.08)),
        (Class::Glacier, Standard) => Some((0.01, 0.05, 5.0)),
        (Class::Glacier, Bulk) => Some((0.0, 0.0, 12.0)),
        (Class::Vault, Expedited) => Some((0.03, 10.0, 0.08)),
        (Class::Vault, Standard) => Some((0.01, 0.05, 5.0)),
        (Class::Vault, Bulk) => Some((0.0025, 0.025, 12.0)),
        // Readable at once, at a per-GiB retrieval fee.
        (Class::GlacierIr, _) => Some((0.03, 0.0, 0.0)),
        (Class::StandardIa | Class::OnezoneIa, _) => Some((0.01, 0.0, 0.0)),
        (Class::Standard | Class::IntelligentTiering | Class::File, _) => Some((0.0, 0.0, 0.0)),
    }
}

/// Data transfer out of AWS to the internet, USD per GiB (the first 10 TiB of a month; the account's 100 GB a
/// month free tier is left out, since other traffic may use it).
pub const TRANSFER_OUT: f64 = 0.09;
/// GET requests, USD per 1,000; zstream-ship reads in 16 MiB ranges.
pub const GET_PER_1000: f64 = 0.0004;
pub const GET_RANGE: u64 = 16 << 20;
/// PUT requests into a class, USD per 1,000 (each part of a multipart upload, its start and its end count).
pub fn put_per_1000(class: Class) -> f64 {
    match class {
        Class::DeepArchive => 0.05,
        Class::Glacier | Class::Vault => 0.03,
        Class::GlacierIr => 0.02,
        Class::StandardIa | Class::OnezoneIa => 0.01,
        Class::Standard | Class::IntelligentTiering => 0.005,
        Class::File => 0.0,
    }
}

/// What S3 adds to each object of an archive class: 8 KiB of metadata billed at STANDARD, 32 KiB of index at the
/// class's rate.
pub fn overhead_gib_month(class: Class) -> f64 {
    match class {
        Class::Glacier | Class::DeepArchive | Class::Vault => {
            (8.0 * 1024.0 * Class::Standard.storage_price() + 32.0 * 1024.0 * class.storage_price())
                / GIB
        }
        _ => 0.0,
    }
}

/// One link of a restore as the store holds it now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkState {
    pub snapshot: String,
    pub url: String,
    pub bytes: u64,
    pub storage_class: String,
    /// `available`, `restored`, `archived`, `restoring`.
    pub restore: String,
}

impl LinkState {
    pub fn of(l: &Link, stat: Option<&zstream_ship::backend::Entry>) -> LinkState {
        LinkState {
            snapshot: l.snapshot.clone(),
            url: l.url.clone(),
            bytes: l.bytes,
            storage_class: l.storage_class.clone(),
            restore: stat.map_or("archived".to_string(), |e| e.restore.clone()),
        }
    }

    pub fn archived(&self) -> bool {
        !matches!(self.restore.as_str(), "available" | "restored")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestoreBill {
    pub tier: Tier,
    pub links: usize,
    pub archived: usize,
    pub bytes: u64,
    pub retrieval: f64,
    pub requests: f64,
    pub restored_copies: f64,
    pub transfer_out: f64,
    pub total: f64,
    /// Hours until the slowest archived link is readable (typical).
    pub hours: f64,
}

/// The bill of reading these links back once: retrieval of the archived ones at `tier`, their restored copies
/// for `days`, the GETs, and the transfer out.
pub fn restore_bill(links: &[LinkState], a: &RestoreArgs) -> Result<RestoreBill, String> {
    let mut b = RestoreBill {
        tier: a.tier,
        links: links.len(),
        archived: 0,
        bytes: 0,
        retrieval: 0.0,
        requests: 0.0,
        restored_copies: 0.0,
        transfer_out: 0.0,
        total: 0.0,
        hours: 0.0,
    };
    for l in links {
        let class = Class::of(&l.storage_class);
        let gib = l.bytes as f64 / GIB;
        b.bytes += l.bytes;
        b.requests += l.bytes.div_ceil(GET_RANGE).max(1) as f64 * GET_PER_1000 / 1000.0;
        if !a.in_region && class != Class::File {
            b.transfer_out += gib * TRANSFER_OUT;
        }
        let needs_restore = matches!(class, Class::Glacier | Class::DeepArchive | Class::Vault);
        if needs_restore && !l.archived() {
            continue;
        }
        let (per_gib, per_1000, hours) = retrieval(class, a.tier).ok_or_else(|| {
            format!(
                "--tier {:?}: {} offers no such retrieval (DEEP_ARCHIVE: Standard or Bulk)",
                a.tier, l.storage_class
            )
        })?;
        b.retrieval += gib * per_gib;
        b.requests += per_1000 / 1000.0;
        if needs_restore {
            b.archived += 1;
            b.hours = b.hours.max(hours);
            b.restored_copies +=
                gib * Class::Standard.storage_price() * f64::from(a.days) * 24.0 / HOURS_PER_MONTH;
        }
    }
    b.total = b.retrieval + b.requests + b.restored_copies + b.transfer_out;
    Ok(b)
}

/// Storage a month, by class, of the records' objects (with the archive classes' per-object overhead).
pub fn monthly(records: &[&crate::record::Backup]) -> Vec<(String, u64, f64)> {
    let mut by: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
    for r in records {
        let class = Class::of(&r.object.storage_class);
        let e = by.entry(r.object.storage_class.clone()).or_default();
        e.0 += r.object.bytes;
        e.1 += r.object.bytes as f64 / GIB * class.storage_price() + overhead_gib_month(class);
    }
    by.into_iter().map(|(c, (b, usd))| (c, b, usd)).collect()
}

/// `zstream-catalog cost`: per dataset, the month's storage by class and the restore of the newest point.
pub fn run(
    io: &Io,
    dataset: Option<String>,
    key: &PublicKey,
    a: &RestoreArgs,
) -> anyhow::Result<()> {
    let datasets = match dataset {
        Some(d) => vec![d],
        None => io.datasets()?,
    };
    let mut out = Vec::new();
    for ds in datasets {
        let cat = io.load(&ds, key, Some(&io.store.id()))?;
        let all: Vec<&crate::record::Backup> = cat.backups.iter().collect();
        let chain = match cat.newest() {
            Some(n) => cat.chain(n).unwrap_or_default(),
            None => Vec::new(),
        };
        let links: Vec<LinkState> = chain
            .iter()
            .map(|r| LinkState {
                snapshot: r.snapshot.clone(),
                url: io.store.url_of(&r.object.name),
                bytes: r.object.bytes,
                storage_class: r.object.storage_class.clone(),
                restore: "archived".into(),
            })
            .collect();
        let month = monthly(&all);
        // The last 30 days' uploads, as a month's PUT requests: each object's parts (one PUT up to a part), its
        // upload's start and end, and its record, intent and the intent's removal at STANDARD's rate.
        let now = crate::clock::now().map(|n| n.t).unwrap_or(0);
        let requests: f64 = all
            .iter()
            .filter(|r| now - cat.time_of(r) < 30 * crate::clock::DAY)
            .map(|r| {
                let class = Class::of(&r.object.storage_class);
                let parts = r.object.bytes.div_ceil(16 << 20).max(1);
                let puts = if parts > 1 { parts + 2 } else { 1 };
                puts as f64 * put_per_1000(class) / 1000.0
                    + 3.0 * put_per_1000(Class::Standard) / 1000.0
            })
            .sum();
        let bills: Vec<RestoreBill> = [Tier::Expedited, Tier::Standard, Tier::Bulk]
            .into_iter()
            .filter_map(|tier| restore_bill(&links, &RestoreArgs { tier, ..a.clone() }).ok())
            .collect();
        out.push(serde_json::json!({
            "dataset": ds,
            "records": all.len(),
            "monthly": month.iter().map(|(c, b, usd)| serde_json::json!({"class": c, "bytes": b, "usd": cents(*usd)})).collect::<Vec<_>>(),
            "monthly_requests": cents(requests),
            "monthly_total": cents(month.iter().map(|m| m.2).sum::<f64>() + requests),
            "restore_newest": bills.iter().map(|b| serde_json::json!({
                "tier": b.tier, "bytes": b.bytes, "retrieval": cents(b.retrieval), "requests": cents(b.requests),
                "restored_copies": cents(b.restored_copies), "transfer_out": cents(b.transfer_out),
                "total": cents(b.total), "hours": b.hours})).collect::<Vec<_>>(),
        }));
    }
    crate::cmd::answer(&out)
}

/// USD rounded to the cent, once, for printing.
pub fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// `$12.34`.
pub fn dollars(usd: f64) -> String {
    format!("${:.2}", cents(usd))
}

#[derive(Args, Debug, Clone)]
pub struct RecommendArgs {
    /// How far back every night must stay restorable.
    #[arg(long, value_parser = crate::clock::duration, value_name = "DURATION")]
    pub retention: u64,
    /// The dataset's size: what a full stores.
    #[arg(long, value_parser = zstream_common::size::parse, value_name = "SIZE")]
    pub size: u64,
    /// What a night's incremental stores.
    #[arg(long, value_parser = zstream_common::size::parse, value_name = "SIZE")]
    pub daily: u64,
    /// The storage class of the streams.
    #[arg(long, default_value = "DEEP_ARCHIVE", value_name = "CLASS")]
    pub storage_class: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Option_ {
    pub full_every_days: u32,
    pub keep_cycles: u32,
    /// Cycles stored on average: kept ones, and older ones waiting out the class's minimum.
    pub cycles_stored: f64,
    pub stored_gib: f64,
    pub monthly: f64,
    /// A restore of the newest point, Standard tier (Bulk where that is the only other), transfer out included.
    pub restore_newest: f64,
    pub cheapest: bool,
}

/// For each --full-every from a week to half a year: the --keep-cycles that keeps `retention` restorable, what
/// the store then holds on average, and what that costs a month (storage, per-object overhead, PUTs of the nightly
/// objects), the cheapest marked. A cycle of F days is kept K cycles, and deleted no sooner than the class's
/// minimum billed duration after its last incremental: it is stored max(K·F, F − 1 + min days) days.
pub fn recommend(a: &RecommendArgs) -> Result<Vec<Option_>, String> {
    let class = Class::of(&a.storage_class);
    let days = a.retention.div_ceil(86_400).max(1);
    let mut out: Vec<Option_> = [7u32, 14, 30, 60, 90, 180]
        .into_iter()
        .map(|f| {
            let fd = f64::from(f);
            let k = (days.div_ceil(u64::from(f)) + 1) as u32;
            let lifetime = (f64::from(k) * fd).max(fd - 1.0 + f64::from(class.min_days()));
            let cycles = lifetime / fd;
            let per_cycle = a.size as f64 + (fd - 1.0) * a.daily as f64;
            let stored = cycles * per_cycle / GIB;
            let objects = cycles * fd;
            let puts =
                30.4 * (2.0 + ((a.size as f64 / fd + a.daily as f64) / (16 << 20) as f64).ceil());
            let monthly = stored * class.storage_price()
                + objects * overhead_gib_month(class)
                + puts * put_per_1000(class) / 1000.0;
            let chain = a.size as f64 + (fd - 1.0) * a.daily as f64;
            let (per_gib, per_1000, _) =
                retrieval(class, Tier::Standard).unwrap_or((0.0, 0.0, 0.0));
            let restore = chain / GIB * (per_gib + TRANSFER_OUT) + fd * per_1000 / 1000.0;
            Option_ {
                full_every_days: f,
                keep_cycles: k,
                cycles_stored: (cycles * 100.0).round() / 100.0,
                stored_gib: (stored * 100.0).round() / 100.0,
                monthly: cents(monthly),
                restore_newest: cents(restore),
                cheapest: false,
            }
        })
        .collect();
    if let Some(best) = out.iter_mut().min_by(|x, y| {
        x.monthly
            .total_cmp(&y.monthly)
            .then(x.full_every_days.cmp(&y.full_every_days))
    }) {
        best.cheapest = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(class: &str, gib: u64, restore: &str) -> LinkState {
        LinkState {
            snapshot: "s".into(),
            url: "s3://b/x".into(),
            bytes: gib << 30,
            storage_class: class.into(),
            restore: restore.into(),
        }
    }

    fn args(tier: Tier) -> RestoreArgs {
        RestoreArgs {
            tier,
            days: 3,
            in_region: false,
        }
    }

    #[test]
    fn deep_archive_offers_no_expedited() {
        let l = [link("DEEP_ARCHIVE", 1, "archived")];
        assert!(restore_bill(&l, &args(Tier::Expedited)).is_err());
        assert!(restore_bill(&l, &args(Tier::Bulk)).is_ok());
    }

    #[test]
    fn a_restore_bill_written_out_from_the_price_list() {
        // 100 GiB in DEEP_ARCHIVE, Standard tier, 3 days, to the internet. From AWS's us-east-1 price list:
        // retrieval 100 x $0.02 = $2.00; one retrieval request $0.0001; 7 GETs (100 GiB / 16 MiB = 6400 ranges:
        // 6400 x $0.0004/1000 = $0.00256); restored copy 100 GiB x $0.023 x 72 h / 730 h = $0.22685; transfer
        // out 100 x $0.09 = $9.00. Total $11.22941, $11.23 to the cent.
        let b = restore_bill(
            &[link("DEEP_ARCHIVE", 100, "archived")],
            &args(Tier::Standard),
        )
        .unwrap();
        assert_eq!(dollars(b.retrieval), "$2.00");
        assert_eq!(dollars(b.transfer_out), "$9.00");
        assert_eq!(dollars(b.restored_copies), "$0.23");
        assert_eq!(dollars(b.total), "$11.23");
        assert_eq!(b.hours, 12.0);
        // Transfer out is four times and more the retrieval fee: the figure the old plan left out.
        assert!(b.transfer_out > 4.0 * b.retrieval);
    }

    #[test]
    fn cents_are_rounded_once_at_the_end() {
        // Sixty 10 MiB links: rounded each, 60 x $0.00 would be $0.00.
        let links: Vec<LinkState> = (0..60)
            .map(|_| LinkState {
                bytes: 10 << 20,
                ..link("DEEP_ARCHIVE", 0, "archived")
            })
            .collect();
        let b = restore_bill(
            &links,
            &RestoreArgs {
                in_region: true,
                ..args(Tier::Standard)
            },
        )
        .unwrap();
        // 600 MiB x $0.02/GiB = $0.01171875, plus 60 requests x $0.0001 = $0.006.
        assert_eq!(dollars(b.retrieval), "$0.01");
        assert_eq!(dollars(b.retrieval + b.requests), "$0.02");
        assert_eq!(dollars(0.0006000000000000001), "$0.00");
    }

    #[test]
    fn recommendation_keeps_the_retention() {
        let r = recommend(&RecommendArgs {
            retention: 60 * 86_400,
            size: 100 << 30,
            daily: 1 << 30,
            storage_class: "DEEP_ARCHIVE".into(),
        })
        .unwrap();
        assert_eq!(r.iter().filter(|o| o.cheapest).count(), 1);
        for o in &r {
            // The oldest kept cycle began at least (K - 1) x F days ago.
            assert!(
                u64::from(o.keep_cycles - 1) * u64::from(o.full_every_days) >= 60,
                "{o:?}"
            );
            assert!(o.cycles_stored >= f64::from(o.keep_cycles) - 1e-9);
        }
    }
}
