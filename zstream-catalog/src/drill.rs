//! zstream-verify's reading of a store (`verify`), its verdict (`report`: the table, the metrics, exit 0 or 3),
//! and the monitoring plugin (`check`). Between `verify` and `report` the script reads the chosen samples back
//! through the restore pipe, which is the script's to do.

use crate::cmd::{answer, coded, key_of, now};
use crate::io::Io;
use crate::layout::Store;
use crate::metrics::{self, Sample};
use crate::sign::PublicKey;
use crate::verify::{self, Row, Seen, Summary};
use crate::view::Catalog;
use crate::{app::KeyArgs, clock};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use zstream_common::{pipe, usage};

#[derive(Serialize, Deserialize)]
pub struct Report {
    pub dest: String,
    pub now: i64,
    pub vault: bool,
    pub datasets: Vec<DatasetReport>,
    /// Objects chosen for a read-back.
    pub samples: Vec<SampleChoice>,
}

#[derive(Serialize, Deserialize)]
pub struct DatasetReport {
    pub dataset: String,
    pub summary: Summary,
    pub invalid: usize,
    pub rows: Vec<Row>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SampleChoice {
    pub dataset: String,
    pub snapshot: String,
    pub url: String,
    pub sha256: String,
    /// Readable now; otherwise its restore is to be asked for.
    pub readable: bool,
}

pub fn verify(
    store: &Store,
    dataset: Option<String>,
    key: &PublicKey,
    sample: usize,
    wait: bool,
) -> anyhow::Result<()> {
    // Every entry read from the store, never from the cache: verify proves what the store holds now.
    let io = Io::uncached(store.clone());
    let now = now()?;
    let datasets = match dataset {
        Some(d) => {
            crate::layout::check_dataset(&d).map_err(usage)?;
            vec![d]
        }
        None => io.datasets()?,
    };
    if datasets.is_empty() {
        return Err(zstream_common::integrity(format!(
            "{} holds no catalog entry of any dataset",
            store.catalog
        )));
    }
    // A vault's objects are seen through its inventory (a day old on AWS): one job for every dataset.
    let inventory: Option<HashMap<String, zstream_ship::backend::Entry>> = if store.is_vault() {
        let mut opts = zstream_ship::options::Options::default();
        opts.thaw.wait = wait;
        let listed =
            zstream_ship::app::backend(&store.dest, zstream_ship::app::Use::Prefix, &opts)?
                .list()
                .with_context(|| format!("the inventory of {}", store.dest))?;
        Some(listed.into_iter().map(|e| (e.name.clone(), e)).collect())
    } else {
        None
    };
    let mut out = Report {
        dest: store.dest.clone(),
        now: now.t,
        vault: store.is_vault(),
        datasets: Vec::new(),
        samples: Vec::new(),
    };
    for ds in datasets {
        zstream_common::say!("{ds}: checking its records against {}", store.dest);
        let loaded = io
            .load(&ds, key, Some(&store.id()))
            .and_then(|cat| Ok((io.objects(&ds)?, cat)));
        let (objects, cat) = match loaded {
            Ok(x) => x,
            Err(e) => {
                // An unreadable catalog or listing is a finding, never "nothing there".
                out.datasets.push(DatasetReport {
                    dataset: ds.clone(),
                    summary: Summary::default(),
                    invalid: 0,
                    rows: vec![unreadable(&ds, store, &format!("{e:#}"))],
                });
                continue;
            }
        };
        let seen: HashMap<String, Result<Seen, String>> = match &inventory {
            None => crate::cmd::seen_all(&io, &cat),
            Some(inv) => seen_in_inventory(&io, &cat, inv, now.t),
        };
        let rows = verify::verify(&verify::VerifyIn {
            store,
            cat: &cat,
            objects: objects.as_deref(),
            seen: &seen,
            now: now.t,
        });
        out.datasets.push(DatasetReport {
            dataset: ds.clone(),
            summary: verify::summary(&cat),
            invalid: cat.problems.len(),
            rows,
        });
    }
    out.samples = choose(&out.datasets, sample);
    answer(&out)
}

fn unreadable(ds: &str, store: &Store, why: &str) -> Row {
    Row {
        dataset: ds.to_string(),
        snapshot: None,
        kind: None,
        class: None,
        bytes: None,
        url: store.catalog_prefix(ds),
        sha256: None,
        state: format!("could not be read: {why}"),
        ok: false,
        readable: false,
        more: 0,
    }
}

/// A vault's archives as its inventory lists them; an archive younger than two days may not be listed yet.
fn seen_in_inventory(
    io: &Io,
    cat: &Catalog,
    inv: &HashMap<String, zstream_ship::backend::Entry>,
    now: i64,
) -> HashMap<String, Result<Seen, String>> {
    cat.backups
        .iter()
        .map(|b| {
            let url = io.store.url_of(&b.object.name);
            let s = match inv.get(&url) {
                Some(e) => {
                    let c = e.checksum.clone().unwrap_or_default();
                    Ok(Seen {
                        size: e.size,
                        checksum_matches: c == b.object.checksum,
                        checksum: c,
                        restore: "archived".into(),
                    })
                }
                None if now - b.time() < 2 * clock::DAY => Ok(Seen {
                    size: b.object.bytes,
                    checksum_matches: true,
                    checksum: b.object.checksum.clone(),
                    restore: "archived".into(),
                }),
                None => Err("missing from the vault's inventory".into()),
            };
            (b.snapshot.clone(), s)
        })
        .collect()
}

/// The objects to read back: every object whose stored bytes differ from its record (whether parity still repairs
/// it is what the user needs to know; a drill with the keys always reads those), then N good ones, readable now
/// first, then archived ones (whose restores the script asks for). The choice among good ones varies from run to
/// run.
fn choose(datasets: &[DatasetReport], n: usize) -> Vec<SampleChoice> {
    let rows = || datasets.iter().flat_map(|d| d.rows.iter());
    let damaged: Vec<&Row> = if n == 0 {
        Vec::new()
    } else {
        rows()
            .filter(|r| r.snapshot.is_some() && r.state.starts_with("differs"))
            .collect()
    };
    let mut good: Vec<&Row> = rows()
        .filter(|r| r.ok && r.snapshot.is_some() && r.state == "ok")
        .collect();
    let mut seed = [0u8; 8];
    let _ = zstream_common::random(&mut seed);
    let mut x = u64::from_le_bytes(seed) | 1;
    // Fisher-Yates with xorshift: which good objects get read is the drill's variety, not a secret.
    for i in (1..good.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        good.swap(i, (x % (i as u64 + 1)) as usize);
    }
    good.sort_by_key(|r| !r.readable);
    damaged
        .into_iter()
        .chain(good.into_iter().take(n))
        .map(|r| SampleChoice {
            dataset: r.dataset.clone(),
            snapshot: r.snapshot.clone().unwrap_or_default(),
            url: r.url.clone(),
            sha256: r.sha256.clone().unwrap_or_default(),
            readable: r.readable || r.class.as_deref() == Some("FILE"),
        })
        .collect()
}

/// The samples' outcomes (stdin: URL, tab, `ok` | `pending` | why not) folded into the rows; the table or JSON;
/// the metrics; exit 0 healthy, 3 not, 75 when samples wait on restores and none could be read.
pub fn report(file: &Path, json: bool, metrics_file: Option<&Path>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut r: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not verify's report", file.display()))?;
    let mut outcomes = String::new();
    std::io::stdin()
        .read_to_string(&mut outcomes)
        .context("reading the samples' outcomes")?;
    let (mut read, mut pending) = (Vec::new(), 0);
    for line in outcomes.lines().filter(|l| !l.trim().is_empty()) {
        let (url, what) = line
            .split_once('\t')
            .ok_or_else(|| usage(format!("a sample outcome: '{line}'")))?;
        for d in &mut r.datasets {
            for row in d
                .rows
                .iter_mut()
                .filter(|row| row.url == url && row.snapshot.is_some())
            {
                match what {
                    // A damaged object that still reads back whole: said, and still a problem (the store no
                    // longer holds what was recorded, and parity's margin is spent on it).
                    w if (w == "ok" || w.starts_with("ok:")) && !row.ok => {
                        row.state = format!(
                            "{}; read back whole{} (parity repairs it): store it again",
                            row.state,
                            w.strip_prefix("ok").unwrap_or_default()
                        );
                    }
                    w if w == "ok" || w.starts_with("ok:") => {
                        row.state =
                            format!("ok, read back{}", w.strip_prefix("ok").unwrap_or_default());
                        read.push(d.dataset.clone());
                    }
                    "pending" => {
                        row.state =
                            "ok; its restore is asked for: a later --sample reads it".into();
                        pending += 1;
                    }
                    why if !row.ok => {
                        row.state = format!("{}; read back, it FAILED: {why}", row.state);
                    }
                    why => {
                        row.state = format!("sample FAILED: {why}");
                        row.ok = false;
                    }
                }
            }
        }
    }
    let rows: Vec<&Row> = r.datasets.iter().flat_map(|d| d.rows.iter()).collect();
    let healthy = r.datasets.iter().all(|d| verify::healthy(&d.rows));
    let problems = rows.iter().filter(|x| !x.ok).count();
    if json {
        answer(&serde_json::json!({
            "dest": r.dest, "healthy": healthy,
            "records": rows.iter().filter(|x| x.snapshot.is_some()).count(),
            "problems": rows.iter().filter(|x| !x.ok).collect::<Vec<_>>(),
            "rows": rows,
        }))?;
    } else {
        for x in &rows {
            pipe::print_line(format_args!(
                "{}@{}\t{}\t{}\t{}\t{}\t{}",
                x.dataset,
                x.snapshot.as_deref().unwrap_or("-"),
                x.kind
                    .map_or("-".to_string(), |k| format!("{k:?}").to_lowercase()),
                x.class.as_deref().unwrap_or("-"),
                x.bytes.map_or("-".to_string(), |b| b.to_string()),
                x.state,
                x.url
            ))?;
        }
    }
    if let Some(m) = metrics_file {
        let mut samples = Vec::new();
        for d in &r.datasets {
            samples.extend(dataset_samples(&r, d, read.contains(&d.dataset)));
        }
        metrics::write(m, &samples, &metrics::verify_families())
            .with_context(|| format!("--metrics {}", m.display()))?;
        zstream_common::say!("metrics written to {}", m.display());
    }
    if healthy {
        zstream_common::say!(
            "healthy: {} records checked",
            rows.iter().filter(|x| x.snapshot.is_some()).count()
        );
        if read.is_empty() && pending > 0 {
            return Err(coded(
                75,
                &format!("{pending} samples wait on archive restores: run again later (or --wait)"),
            ));
        }
        Ok(())
    } else {
        Err(zstream_common::integrity(format!(
            "NOT healthy: {problems} problems (see the table)"
        )))
    }
}

fn dataset_samples(r: &Report, d: &DatasetReport, read_back: bool) -> Vec<Sample> {
    let s = |n: &str, v: f64| Sample::new(n, &d.dataset, &r.dest, v);
    let t = |x: &Option<(String, String)>| x.as_ref().and_then(|(_, t)| clock::parse(t).ok());
    let problems = d.rows.iter().filter(|x| !x.ok).count();
    let mut out = vec![
        s("zstream_records", d.summary.records as f64),
        s("zstream_chain_records", d.summary.chain_records as f64),
        s("zstream_chain_bytes", d.summary.chain_bytes as f64),
        s("zstream_broken_chains", d.summary.broken as f64),
        s("zstream_invalid_entries", d.invalid as f64),
        s("zstream_problems", problems as f64),
        s(
            "zstream_verify_healthy",
            if verify::healthy(&d.rows) { 1.0 } else { 0.0 },
        ),
        s("zstream_verify_timestamp_seconds", r.now as f64),
    ];
    if let Some(v) = t(&d.summary.last) {
        out.push(s("zstream_last_backup_timestamp_seconds", v as f64));
    }
    if let Some(v) = t(&d.summary.last_full) {
        out.push(s("zstream_last_full_timestamp_seconds", v as f64));
    }
    for (class, bytes) in &d.summary.by_class {
        out.push(s("zstream_stored_bytes", *bytes as f64).with("class", class));
    }
    if !r.vault {
        out.push(s("zstream_orphan_objects", verify::orphans(&d.rows) as f64));
    }
    if read_back {
        out.push(s("zstream_last_readback_timestamp_seconds", r.now as f64));
    }
    out
}

/// The monitoring plugin: one line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (anything that keeps it from a
/// verdict, said on the line).
pub fn check(
    store: &crate::app::StoreArgs,
    dataset: Option<String>,
    keys: &KeyArgs,
    public_key: Option<&str>,
    warn: &str,
    crit: &str,
) -> anyhow::Result<()> {
    let verdict = (|| -> anyhow::Result<(i32, String)> {
        let warn = clock::duration(warn).map_err(|e| usage(format!("--warn {warn}: {e}")))?;
        let crit = clock::duration(crit).map_err(|e| usage(format!("--crit {crit}: {e}")))?;
        if warn > crit {
            return Err(usage("--warn is longer than --crit"));
        }
        let store = crate::cmd::open_store(store)?;
        let key = key_of(keys, public_key)?;
        // As verify: the store as it is now, not the cache.
        let io = Io::uncached(store.clone());
        let now = now()?.t;
        let datasets = match dataset {
            Some(d) => vec![d],
            None => io.datasets()?,
        };
        if datasets.is_empty() {
            return Ok((2, format!("{} holds no catalog entry", store.catalog)));
        }
        let (mut worst, mut bad, mut good, mut perf) = (0, Vec::new(), Vec::new(), Vec::new());
        for ds in datasets {
            // A catalog that cannot be read is UNKNOWN (the check could not look), but one the store's contents
            // make unreadable (a planted listing) is CRITICAL: someone must look at it.
            let cat = match io.load(&ds, &key, Some(&io.store.id())) {
                Ok(cat) => cat,
                Err(e) if zstream_common::exit::code_of(&e) == zstream_common::Code::Integrity => {
                    bad.push(format!("{ds}: {e:#}"));
                    worst = 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let s = verify::summary(&cat);
            let mut v = 0;
            if !cat.problems.is_empty() {
                bad.push(format!("{ds}: {} catalog entries fail their checks (forged, damaged or another key set's)", cat.problems.len()));
                v = 2;
            }
            // Unsigned v1 records prove nothing to a reader without the keys (anyone could have written them), and
            // backups stop on them until they are adopted.
            if cat.v1 {
                bad.push(format!(
                    "{ds}: its records are unsigned (version 1): zstream-catalog adopt them"
                ));
                worst = 2;
                continue;
            }
            let Some((snap, t)) = &s.last else {
                bad.push(format!(
                    "{ds}: no valid backup recorded in {}",
                    store.catalog
                ));
                worst = 2;
                continue;
            };
            let age = now - clock::parse(t).unwrap_or(0);
            perf.push(format!(
                "'{ds} age'={age}s;{warn};{crit};0 '{ds} records'={};;;0 '{ds} chain'={};;;0 '{ds} chain bytes'={}B;;;0",
                s.records, s.chain_records, s.chain_bytes
            ));
            if s.broken > 0 {
                bad.push(format!("{ds}: {} broken chain(s)", s.broken));
                v = 2;
            }
            if age < -clock::MAX_SKEW {
                bad.push(format!(
                    "{ds}: {}",
                    verify::future(cat.newest().expect("a newest backup"), now)
                ));
                v = 2;
            } else if age >= crit as i64 {
                bad.push(format!(
                    "{ds}: last backup {} ago (@{snap}), over {}",
                    clock::human(age),
                    clock::compact(crit)
                ));
                v = 2;
            } else if age >= warn as i64 {
                bad.push(format!(
                    "{ds}: last backup {} ago (@{snap}), over {}",
                    clock::human(age),
                    clock::compact(warn)
                ));
                v = v.max(1);
            } else if v == 0 {
                good.push(format!(
                    "{ds}: last backup {} ago (@{snap}), chain of {}",
                    clock::human(age),
                    s.chain_records
                ));
            }
            worst = worst.max(v);
        }
        let mut msg = if bad.is_empty() {
            good.join("; ")
        } else {
            bad.join("; ")
        };
        if !bad.is_empty() && !good.is_empty() {
            msg += &format!("; {} more OK", good.len());
        }
        if !perf.is_empty() {
            msg += &format!(" | {}", perf.join(" "));
        }
        Ok((worst, msg))
    })();
    let (code, msg) = verdict.unwrap_or_else(|e| (3, format!("{e:#}")));
    let name = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code as usize];
    pipe::print_line(format_args!("ZSTREAM {name} - {msg}"))?;
    // The plugin's codes are Nagios's, not the project's: leave without the wrapper's mapping.
    std::process::exit(code)
}
