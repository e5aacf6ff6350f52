//! Each subcommand: read what it needs (the catalog, the store, stdin), ask the pure decision, answer in JSON, and
//! write only what is the catalog's to write (signed entries, a metrics file).

use crate::app::{Cmd, KeyArgs, ParArgs, PolicyArgs, StoreArgs};
use crate::io::Io;
use crate::layout::{self, Kind as Name, Store};
use crate::plan::{self, Action, BackupOpts, BackupPlan};
use crate::record::{
    self, Accept, Backup, Children, Entry, Intent, Object, Par, Policy, Raw, Seal,
};
use crate::sign::{PublicKey, Secrets};
use crate::view::Catalog;
use crate::{clock, cost, metrics, prune, restore, tree, verify};
use anyhow::{anyhow, Context};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use zstream_common::{integrity, pipe, usage, Code, Coded};

pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Store { store, dataset } => {
            let s = open_store(&store)?;
            #[derive(Serialize)]
            struct Out<'a> {
                dest: &'a str,
                catalog: &'a str,
                vault: bool,
                hold_tag: String,
                lock: Option<String>,
            }
            if let Some(ds) = &dataset {
                layout::check_dataset(ds).map_err(usage)?;
            }
            answer(&Out {
                dest: &s.dest,
                catalog: &s.catalog,
                vault: s.is_vault(),
                hold_tag: s.hold_tag(),
                lock: dataset.map(|d| s.lock_name(&d)),
            })
        }
        Cmd::Key { keys } => {
            let s = secrets(&keys)?;
            // Which keys made it, on stderr: a key set missing one gives another public key, and a check given
            // that one would call every genuine record forged.
            zstream_common::say!(
                "the catalog's public key of {} key(s) ({}) and {} passphrase(s); every key the streams are sealed \
                 with is needed",
                s.key_ids.len(),
                s.key_ids.join(", "),
                s.passphrases
            );
            pipe::print_line(s.public().hex())
        }
        Cmd::Plan {
            store,
            dataset,
            keys,
            policy,
            full,
            snapshot,
            new_catalog,
            clock_ok,
            prefix,
            raw,
        } => {
            let io = Io::new(open_store(&store)?);
            layout::check_dataset(&dataset).map_err(usage)?;
            let secrets = secrets(&keys)?;
            let now = now()?;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the source's snapshots on stdin")?;
            let source = plan::parse_source(&dataset, &text).map_err(usage)?;
            let cat = io.load(&dataset, &secrets.public(), Some(&io.store.id()))?;
            let objects = io.objects(&dataset)?;
            let newest_read_back = match (cat.newest(), io.store.is_vault()) {
                (Some(n), false) => Some(read_back(&io, n)),
                _ => None,
            };
            let opts = BackupOpts {
                force_full: full,
                full_every: policy.full_every,
                snapshot,
                new_catalog,
                clock_ok,
                prefix,
                raw,
            };
            let p = plan::backup(&plan::BackupIn {
                store: &io.store,
                cat: &cat,
                objects: objects.as_deref(),
                source: &source,
                now: now.t,
                newest_read_back,
                opts: &opts,
            });
            #[derive(Serialize)]
            struct Out<'a> {
                #[serde(flatten)]
                plan: &'a BackupPlan,
                now: String,
                policy: Policy,
            }
            answer(&Out {
                plan: &p,
                now: clock::format(now.t),
                policy: policy_of(&policy),
            })?;
            if p.action == Action::Stop {
                return Err(coded(p.code, &p.why));
            }
            Ok(())
        }
        Cmd::Intent {
            store,
            dataset,
            snapshot,
            keys,
            max_skew,
            taken,
            guid,
            createtxg,
        } => {
            let io = Io::new(open_store(&store)?);
            layout::check_dataset(&dataset).map_err(usage)?;
            layout::check_snapshot(&snapshot).map_err(usage)?;
            let secrets = secrets(&keys)?;
            let now = now()?;
            let object = if io.store.is_vault() {
                io.store.dest.clone()
            } else {
                layout::object_name(&dataset, &snapshot)
            };
            let mut run = [0u8; 8];
            zstream_common::random(&mut run)?;
            let e = Entry::Intent(Intent {
                store: io.store.id(),
                guid,
                createtxg,
                dataset: dataset.clone(),
                snapshot: snapshot.clone(),
                object,
                time: clock::format(now.t),
                host: host(),
                run: hex::encode(run),
                taken,
            });
            let written = io.stat(&io.put(&e, &secrets)?)?;
            // The store's clock: the date it gave the entry just written (S3's, or the file server's). A drill's
            // simulated clock is compared only with a simulated store clock (ZSTREAM_STORE_NOW).
            let store_now = match std::env::var("ZSTREAM_STORE_NOW") {
                Ok(s) if !s.is_empty() => {
                    Some(clock::parse(&s).map_err(|e| usage(format!("ZSTREAM_STORE_NOW: {e}")))?)
                }
                _ if now.simulated => None,
                _ => clock::parse(&written.date).ok(),
            };
            if let Some(s) = store_now {
                if (now.t - s).unsigned_abs() > max_skew {
                    let url = io.store.entry_url(&dataset, &snapshot, Name::Intent);
                    let _ = io.remove(&url);
                    return Err(anyhow!(
                        "this machine's clock says {}, the store's {} ({} apart, more than --max-skew {}): fix the \
                         clock (NTP); records and ages are measured by it",
                        clock::format(now.t),
                        clock::format(s),
                        clock::human((now.t - s).abs()),
                        clock::compact(max_skew)
                    ));
                }
            }
            answer(&e)
        }
        Cmd::Commit {
            store,
            dataset,
            keys,
            plan,
            hash,
            stored,
            children,
            guid,
            createtxg,
            storage_class,
            seal_chunk_size,
            par,
            policy,
        } => commit(
            &open_store(&store)?,
            &dataset,
            &secrets(&keys)?,
            CommitFiles {
                plan,
                hash,
                stored,
                children,
            },
            (guid, createtxg),
            storage_class,
            seal_chunk_size,
            &par,
            &policy,
        ),
        Cmd::Prune {
            store,
            dataset,
            keys,
            policy,
            allow_early_delete,
            accept_shrink,
            dry_run,
        } => {
            let io = Io::new(open_store(&store)?);
            layout::check_dataset(&dataset).map_err(usage)?;
            let secrets = secrets(&keys)?;
            let now = now()?;
            let cat = io.load(&dataset, &secrets.public(), Some(&io.store.id()))?;
            if let Some(a) = &accept_shrink {
                match cat.by_snapshot(a) {
                    Some(b) if b.kind == record::Kind::Full => {}
                    _ => {
                        return Err(usage(format!(
                            "--accept-shrink {a}: no valid full record of {dataset}@{a}"
                        )))
                    }
                }
                if !dry_run && !cat.accepts.iter().any(|x| &x.snapshot == a) {
                    io.put(
                        &Entry::AcceptShrink(Accept {
                            store: io.store.id(),
                            dataset: dataset.clone(),
                            snapshot: a.clone(),
                            time: clock::format(now.t),
                            host: host(),
                        }),
                        &secrets,
                    )?;
                }
            }
            let objects = io.objects(&dataset)?;
            let newest_full = cat.cycles().last().and_then(|c| c.full());
            let newest_full_read_back = match (newest_full, io.store.is_vault()) {
                (Some(f), false) => Some(read_back(&io, f)),
                _ => None,
            };
            let opts = prune::PruneOpts {
                keep_cycles: policy.keep_cycles,
                min_full_ratio: policy.min_full_ratio,
                allow_early_delete,
                accept: accept_shrink,
            };
            let plan = |newest_full_read_back| {
                prune::prune(&prune::PruneIn {
                    store: &io.store,
                    cat: &cat,
                    objects: objects.as_deref(),
                    now: now.t,
                    newest_full_read_back,
                    opts: &opts,
                })
            };
            let mut p = plan(newest_full_read_back);
            // On file:// the stored checksum is an attribute anyone who can write the file can keep: before a
            // prune deletes older cycles, the newest full's bytes themselves are hashed (only on such nights).
            if let (Some(f), true) = (newest_full, io.store.dest.starts_with("file://")) {
                if p.steps.iter().any(|s| s.what == prune::What::Object) {
                    p = plan(Some(read_back_bytes(&io, f)));
                }
            }
            answer(&p)
        }
        Cmd::RestorePlan {
            store,
            what,
            keys,
            target_exists,
            store_id,
            v1,
            restore: args,
        } => {
            let io = Io::new(open_store(&store)?);
            let (dataset, want) = match what.split_once('@') {
                Some((d, s)) => (d.to_string(), Some(s.to_string())),
                None => (what.clone(), None),
            };
            layout::check_dataset(&dataset).map_err(usage)?;
            let secrets = secrets(&keys)?;
            let mut target = restore::Target::default();
            if target_exists {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading TARGET's snapshots on stdin")?;
                target.exists = true;
                target.snapshots = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| {
                        let (name, guid) = l
                            .split_once('\t')
                            .ok_or_else(|| usage(format!("TARGET's snapshots: '{l}'")))?;
                        let snap = name.split_once('@').map_or(name, |(_, s)| s);
                        Ok((
                            snap.to_string(),
                            guid.trim()
                                .parse()
                                .map_err(|_| usage(format!("TARGET's snapshots: '{l}'")))?,
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            let cat = load_for_restore(&io, &dataset, &secrets.public(), store_id.as_deref())?;
            if cat.v1 && !v1 {
                return Err(coded(
                    3,
                    &format!(
                        "the records of {dataset} are version 1, unsigned (anyone who can write the store could have \
                         written them): give --v1 to read them anyway; each stream's own names and guids, its seal and \
                         its digest are still checked as it is read"
                    ),
                ));
            }
            let plan = restore::restore(
                &io.store,
                &cat,
                want.as_deref(),
                &target,
                (&secrets.key_ids, secrets.passphrases),
            )
            .map_err(|(code, why)| coded(code, &why))?;
            // Each link still to receive, as the store holds it now.
            let mut states = Vec::new();
            for l in plan.links.iter().filter(|l| !l.held) {
                let e = if io.store.is_vault() {
                    None
                } else {
                    Some(io.stat(&l.url).map_err(|e| {
                        let code = if format!("{e:#}").contains("no such object") {
                            Code::Integrity
                        } else {
                            Code::Runtime
                        };
                        anyhow::Error::new(Coded::new(code, anyhow!("link @{}: {e:#}", l.snapshot)))
                    })?)
                };
                states.push(cost::LinkState::of(l, e.as_ref()));
            }
            let bill = cost::restore_bill(&states, &args).map_err(usage)?;
            #[derive(Serialize)]
            struct Out<'a> {
                #[serde(flatten)]
                plan: &'a restore::RestorePlan,
                states: &'a [cost::LinkState],
                bill: cost::RestoreBill,
            }
            answer(&Out {
                plan: &plan,
                states: &states,
                bill,
            })
        }
        Cmd::Verify {
            store,
            dataset,
            keys,
            public_key,
            sample,
            wait,
        } => crate::drill::verify(
            &open_store(&store)?,
            dataset,
            &key_of(&keys, public_key.as_deref())?,
            sample,
            wait,
        ),
        Cmd::VerifyReport {
            report,
            json,
            metrics,
        } => crate::drill::report(&report, json, metrics.as_deref()),
        Cmd::Datasets {
            store,
            dataset,
            keys,
            public_key,
            snapshot,
            store_id,
            v1,
        } => {
            layout::check_dataset(&dataset).map_err(usage)?;
            if let Some(s) = &snapshot {
                layout::check_snapshot(s).map_err(usage)?;
            }
            let io = Io::new(open_store(&store)?);
            let key = key_of(&keys, public_key.as_deref())?;
            // One store's records for the whole tree, chosen as a restore of DATASET chooses (its own, or a copy
            // of one other store's): each dataset's restore is then told that id, so that no child falls back to
            // another store's records on its own (someone who deleted a child's records could copy in another
            // store's, signed with the same keys).
            let root = load_for_restore(&io, &dataset, &key, store_id.as_deref())?;
            // (Version 1 records name no store: their catalog is this store's.)
            let id = store_id
                .or_else(|| root.backups.first().map(|b| b.store.clone()))
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| io.store.id());
            // DATASET's catalog is `root` (read with `id`, as every dataset below it is then read).
            let mut nodes = Vec::new();
            let mut add = |ds: String, cat: Catalog| {
                // A name listed is not yet a dataset: only one with a valid record counts (a version 1 record,
                // unsigned, only when asked).
                if !cat.backups.is_empty() && (v1 || !cat.v1) {
                    nodes.push(tree::Node {
                        dataset: ds,
                        snapshots: cat.backups.iter().map(|b| b.snapshot.clone()).collect(),
                        children: cat.backups.iter().map(|b| b.children.clone()).collect(),
                    });
                }
            };
            add(dataset.clone(), root);
            for ds in io.datasets_below(&dataset)? {
                let cat = io.load(&ds, &key, Some(&id))?;
                add(ds, cat);
            }
            let mut out = serde_json::to_value(tree::tree(&dataset, snapshot.as_deref(), &nodes))?;
            out["store_id"] = id.into();
            answer(&out)
        }
        Cmd::Check {
            store,
            dataset,
            keys,
            public_key,
            warn,
            crit,
        } => crate::drill::check(&store, dataset, &keys, public_key.as_deref(), &warn, &crit),
        Cmd::BackupMetrics {
            metrics: file,
            dataset,
            dest,
            start,
            end,
            exit_code,
            bytes,
        } => {
            let dest = layout::canonical(&dest).unwrap_or(dest);
            let s = |n: &str, v: f64| metrics::Sample::new(n, &dataset, &dest, v);
            let mut samples = vec![
                s("zstream_backup_run_start_timestamp_seconds", start as f64),
                s("zstream_backup_run_end_timestamp_seconds", end as f64),
                s("zstream_backup_run_exit_code", f64::from(exit_code)),
                s(
                    "zstream_backup_run_success",
                    if exit_code == 0 { 1.0 } else { 0.0 },
                ),
                s("zstream_backup_run_bytes", bytes as f64),
            ];
            if exit_code == 0 {
                samples.push(s(
                    "zstream_backup_last_success_timestamp_seconds",
                    end as f64,
                ));
            }
            metrics::write(&file, &samples, &metrics::backup_families())
        }
        Cmd::Adopt {
            store,
            dataset,
            keys,
            policy,
            wait,
        } => adopt(
            &Io::new(open_store(&store)?),
            &dataset,
            &keys,
            &secrets(&keys)?,
            &policy,
            wait,
        ),
        Cmd::Cost {
            store,
            dataset,
            keys,
            public_key,
            restore: args,
        } => crate::cost::run(
            &Io::new(open_store(&store)?),
            dataset,
            &key_of(&keys, public_key.as_deref())?,
            &args,
        ),
        Cmd::Recommend(args) => answer(&crate::cost::recommend(&args).map_err(usage)?),
    }
}

pub fn open_store(a: &StoreArgs) -> anyhow::Result<Store> {
    Store::new(&a.dest, a.catalog.as_deref()).map_err(usage)
}

pub fn secrets(k: &KeyArgs) -> anyhow::Result<Secrets> {
    Secrets::load(&k.keys, &k.passphrase_files)
}

/// The key to check records with: given, or derived from the keys.
pub fn key_of(k: &KeyArgs, public: Option<&str>) -> anyhow::Result<PublicKey> {
    match public {
        Some(h) if k.keys.is_empty() && k.passphrase_files.is_empty() => {
            PublicKey::from_hex(h).map_err(usage)
        }
        Some(_) => Err(usage("give --public-key or the keys, not both")),
        None => Ok(secrets(k)?.public()),
    }
}

pub fn now() -> anyhow::Result<clock::Now> {
    clock::now().map_err(usage)
}

pub fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// One JSON object on stdout.
pub fn answer(v: &impl Serialize) -> anyhow::Result<()> {
    pipe::print_line(serde_json::to_string(v)?)
}

pub fn coded(code: i32, why: &str) -> anyhow::Error {
    let c = match code {
        2 => Code::Usage,
        3 => Code::Integrity,
        75 => Code::TempFail,
        _ => Code::Runtime,
    };
    anyhow::Error::new(Coded::new(c, anyhow!("{why}")))
}

fn policy_of(p: &PolicyArgs) -> Policy {
    Policy {
        full_every: p.full_every,
        keep_cycles: p.keep_cycles,
        min_full_ratio: p.min_full_ratio,
    }
}

/// The catalog a restore reads: this store's records; when it holds none but holds records of exactly one other
/// store (this is a copy of that store: a replica, a bucket moved), those, said; when it holds several other
/// stores' records, the one `--store-id` names, or a refusal that names them.
fn load_for_restore(
    io: &Io,
    dataset: &str,
    key: &PublicKey,
    chosen: Option<&str>,
) -> anyhow::Result<Catalog> {
    let id = chosen.map_or_else(|| io.store.id(), str::to_string);
    let cat = io.load(dataset, key, Some(&id))?;
    if !cat.backups.is_empty() || chosen.is_some() {
        return Ok(cat);
    }
    let all = io.load(dataset, key, None)?;
    let mut ids: Vec<&str> = all.backups.iter().map(|b| b.store.as_str()).collect();
    ids.sort();
    ids.dedup();
    match ids[..] {
        [] => Ok(cat),
        [other] => {
            zstream_common::say!(
                "{dataset}: {} holds no record of its own store (id {id}) but {} of store {other}: read as a copy of \
                 that store",
                io.store.dest,
                all.backups.len()
            );
            io.load(dataset, key, Some(other))
        }
        _ => Err(coded(
            3,
            &format!(
                "{dataset}: {} holds records of several other stores ({}), none of its own (id {id}): name the one to \
                 restore from with --store-id (zstream-verify lists them)",
                io.store.dest,
                ids.join(", ")
            ),
        )),
    }
}

/// A record's object read back byte by byte where the store holds bytes (file://: hashed; elsewhere the stored
/// checksum, which the server computed): Ok, or why not.
fn read_back_bytes(io: &Io, b: &Backup) -> Result<(), String> {
    let seen = io.seen(b)?;
    if seen.size != b.object.bytes {
        return Err(format!(
            "holds {} bytes, its record {}",
            seen.size, b.object.bytes
        ));
    }
    if !seen.checksum_matches {
        return Err(format!(
            "its bytes hash to {}, its record says {}",
            seen.checksum, b.object.checksum
        ));
    }
    Ok(())
}

/// A record's object read back now and compared with the record: Ok, or why not.
pub fn read_back(io: &Io, b: &Backup) -> Result<(), String> {
    let url = io.store.url_of(&b.object.name);
    let e = io.stat(&url).map_err(|e| format!("{e:#}"))?;
    if e.size != b.object.bytes {
        return Err(format!(
            "{url} holds {} bytes, its record {}",
            e.size, b.object.bytes
        ));
    }
    match e.checksum {
        Some(c) if zstream_ship::backend::same_checksum(&c, &b.object.checksum) => Ok(()),
        Some(c) => Err(format!(
            "{url}: stored checksum {c}, its record {}",
            b.object.checksum
        )),
        None => Err(format!("{url}: the store keeps no checksum for it")),
    }
}

struct CommitFiles {
    plan: std::path::PathBuf,
    hash: std::path::PathBuf,
    stored: std::path::PathBuf,
    children: Option<std::path::PathBuf>,
}

/// The children file of a recursive run: each line a direct child of DATASET, each once.
fn read_children(dataset: &str, path: &std::path::Path) -> anyhow::Result<Children> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let names: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for name in &names {
        let direct = name
            .rsplit_once('/')
            .is_some_and(|(parent, _)| parent == dataset);
        if !direct || layout::check_dataset(name).is_err() || !seen.insert(*name) {
            return Err(usage(format!(
                "{}: {} is not a direct child of {dataset}, or is named twice",
                path.display(),
                layout::printable(name)
            )));
        }
    }
    Ok(Children::of(&names))
}

#[allow(clippy::too_many_arguments)]
fn commit(
    store: &Store,
    dataset: &str,
    secrets: &Secrets,
    files: CommitFiles,
    (guid, createtxg): (u64, u64),
    storage_class: String,
    seal_chunk_size: u64,
    par: &ParArgs,
    policy: &PolicyArgs,
) -> anyhow::Result<()> {
    let io = Io::new(store.clone());
    let read = |p: &std::path::Path| -> anyhow::Result<serde_json::Value> {
        let t = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&t).with_context(|| format!("{} is not JSON", p.display()))
    };
    let plan = read(&files.plan)?;
    let hash = read(&files.hash)?;
    let put = read(&files.stored)?;
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let n = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_u64());
    let snapshot = s(&plan, "snapshot").context("the plan names no snapshot")?;
    if s(&plan, "dataset").as_deref() != Some(dataset)
        || s(&plan, "action").as_deref() != Some("backup")
    {
        return Err(usage("the plan is not a backup of this dataset"));
    }
    let kind: record::Kind =
        serde_json::from_value(plan["kind"].clone()).context("the plan's kind")?;
    let base = plan.get("base").filter(|b| !b.is_null());
    let from_guid = base.and_then(|b| n(b, "guid"));
    let from_snapshot = base.and_then(|b| s(b, "snapshot"));
    // The stream is the snapshot the plan named, from the base it named.
    let toname = format!("{dataset}@{snapshot}");
    let want = |what: &str, got: Option<String>, expected: String| -> anyhow::Result<()> {
        if got.as_deref() == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(integrity(format!(
                "the stream's {what} is {}, expected {expected}: no record written",
                got.unwrap_or_else(|| "missing".into())
            )))
        }
    };
    want("toname", s(&hash, "toname"), toname)?;
    want("toguid", s(&hash, "toguid"), guid.to_string())?;
    want(
        "fromguid",
        s(&hash, "fromguid"),
        from_guid.unwrap_or(0).to_string(),
    )?;
    let sha256 = s(&hash, "sha256").context("the hash file has no sha256")?;
    let raw_bytes = n(&hash, "bytes").context("the hash file has no bytes")?;
    let url = s(&put, "url").context("put's output has no url")?;
    let bytes = n(&put, "bytes").context("put's output has no bytes")?;
    let checksum = s(&put, "checksum").context("put's output has no checksum")?;
    let object = if store.is_vault() {
        url.strip_prefix(&format!("{}/", store.dest))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .with_context(|| format!("{url} is not an archive of {}", store.dest))?
            .to_string()
    } else {
        let name = layout::object_name(dataset, &snapshot);
        if url != store.url_of(&name) {
            return Err(integrity(format!(
                "put stored {url}, not {}",
                store.url_of(&name)
            )));
        }
        name
    };
    let b = Backup {
        store: store.id(),
        dataset: dataset.to_string(),
        snapshot: snapshot.clone(),
        guid,
        createtxg,
        kind,
        from_snapshot,
        from_guid,
        cycle: s(&plan, "cycle").context("the plan names no cycle")?,
        seq: n(&plan, "seq").context("the plan has no seq")?,
        raw: Raw {
            bytes: raw_bytes,
            sha256,
        },
        // As the plan said it would be sent (the script sends as its plan says).
        send: serde_json::from_value(plan["send"].clone()).context("the plan's send")?,
        children: files
            .children
            .as_deref()
            .map(|p| read_children(dataset, p))
            .transpose()?,
        object: Object {
            name: object,
            bytes,
            checksum,
            storage_class,
        },
        seal: Seal {
            key_ids: secrets.key_ids.clone(),
            passphrases: secrets.passphrases,
            chunk_size: seal_chunk_size,
        },
        par: Par {
            version: par.par_version,
            data: par.par_data,
            parity: par.par_parity,
            block_size: par.par_block_size,
            interleave: par.par_interleave,
        },
        policy: policy_of(policy),
        tools: [("zstream".to_string(), zstream_common::VERSION.to_string())].into(),
        time: s(&plan, "now").context("the plan has no time")?,
        host: host(),
    };
    // The commit check: what the store holds now is what put says it stored (a vault names an archive only after
    // checking its tree hash: that stands for the read-back there).
    if !store.is_vault() {
        read_back(&io, &b).map_err(|why| {
            integrity(format!(
                "read back, the object differs: {why}; no record written"
            ))
        })?;
    }
    let e = Entry::Backup(b);
    // A record is only ever written once: a second commit of one snapshot is refused by the store (put never
    // replaces). The put is the commit point: nothing after it can make the script discard the object.
    io.put(&e, secrets)?;
    let intent = store.entry_url(dataset, &snapshot, Name::Intent);
    if let Err(err) = io.remove(&intent) {
        zstream_common::say!(
            "{intent}: removing the intent failed ({err:#}); the next run removes it"
        );
    }
    pipe::print_line(e.body())
}

/// Signs v1 records, the user's one act of trust in an old catalog, made as safe as it can be: every record's
/// object is read back whole through the restore pipe (parity, the seal with the keys given, the recorded digest,
/// and the stream's own name and guids against the record), so only backups these keys sealed, of this dataset,
/// are adopted; and they are ordered by the streams' own creation times (authenticated by the seal), never by the
/// records' times, which anyone could have written.
fn adopt(
    io: &Io,
    dataset: &str,
    keys: &KeyArgs,
    secrets: &Secrets,
    policy: &PolicyArgs,
    wait: bool,
) -> anyhow::Result<()> {
    layout::check_dataset(dataset).map_err(usage)?;
    let cat: Catalog = io.load(dataset, &secrets.public(), Some(&io.store.id()))?;
    if !cat.v1 {
        return Err(usage(format!(
            "{dataset}: the catalog holds no version 1 records to adopt"
        )));
    }
    let mut seal_keys: Vec<String> = Vec::new();
    for k in &keys.keys {
        seal_keys.extend(["--key-file".into(), k.display().to_string()]);
    }
    for p in &keys.passphrase_files {
        seal_keys.extend(["--passphrase-file".into(), p.display().to_string()]);
    }
    let work = tempdir()?;
    let mut adopted = Vec::new();
    for b in &cat.backups {
        if let Err(why) = read_back(io, b) {
            return Err(integrity(format!(
                "@{}: {why}; nothing adopted",
                b.snapshot
            )));
        }
        let json = work.join("hash.json");
        let url = io.store.url_of(&b.object.name);
        let out = std::process::Command::new("bash")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(
                "url=$1 sha=$2 name=$3 guid=$4 from=$5 json=$6 wait=$7; shift 7; \
                 zstream-ship get $wait \"$url\" | zstream-par -d | zstream-seal -d \"$@\" \
                 | zstream-hash --check \"$sha\" --zfs --expect-toname \"$name\" --expect-toguid \"$guid\" \
                   --expect-fromguid \"$from\" --json \"$json\" -q >/dev/null",
            )
            .arg("adopt")
            .args([
                url.as_str(),
                &b.raw.sha256,
                &format!("{}@{}", b.dataset, b.snapshot),
                &b.guid.to_string(),
                &b.from_guid.unwrap_or(0).to_string(),
                &json.display().to_string(),
                if wait { "--wait" } else { "" },
            ])
            .args(&seal_keys)
            .stdin(std::process::Stdio::null())
            .output()
            .context("running the read-back pipe")?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code().unwrap_or(1);
            return Err(coded(
                if code == 75 { 75 } else { 3 },
                &format!(
                    "@{}: reading it back failed ({}); nothing adopted",
                    b.snapshot,
                    why.lines().last().unwrap_or("no message").trim()
                ),
            ));
        }
        let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
        let created = info["creation_time"].as_u64().unwrap_or(0);
        adopted.push((created, b.clone()));
    }
    // The streams' own order: their creation times, a base before what builds on it.
    adopted.sort_by_key(|(t, b)| (*t, b.kind == record::Kind::Incremental));
    let n = adopted.len();
    for (seq, (created, b)) in adopted.into_iter().enumerate() {
        let mut v2 = b;
        v2.seq = seq as u64 + 1;
        // Its time from the sealed stream too (the snapshot's creation), never v1's unsigned text: a planted time
        // would be signed into the record, and ages and billing follow it.
        if created > 0 {
            v2.time = clock::format(created as i64);
        }
        v2.store = io.store.id();
        v2.policy = policy_of(policy);
        let url = io.store.entry_url(dataset, &v2.snapshot, Name::Backup);
        // The v1 file is replaced by its signed form (in one step: a run cut here leaves one or the other).
        io.replace(&Entry::Backup(v2), secrets)
            .with_context(|| format!("writing {url}"))?;
    }
    zstream_common::say!(
        "{dataset}: {n} version 1 records read back whole through the restore pipe and signed, in their streams' order"
    );
    answer(&serde_json::json!({ "dataset": dataset, "adopted": n }))
}

/// A scratch directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let mut r = [0u8; 8];
    zstream_common::random(&mut r)?;
    let d = std::env::temp_dir().join(format!("zstream-catalog-{}", hex::encode(r)));
    std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(TempDir(d))
}

/// Why `seen` could not read an object, for the verify table.
pub fn seen_all(io: &Io, cat: &Catalog) -> HashMap<String, Result<verify::Seen, String>> {
    cat.backups
        .iter()
        .map(|b| (b.snapshot.clone(), io.seen(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children(dataset: &str, text: &str) -> anyhow::Result<Children> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("children");
        std::fs::write(&p, text).unwrap();
        read_children(dataset, &p)
    }

    #[test]
    fn a_children_file_names_direct_children_once_each() {
        let c = children("tank/home", "tank/home/bob\ntank/home/alice\n").unwrap();
        assert_eq!(c, Children::of(&["tank/home/alice", "tank/home/bob"]));
        assert_eq!(children("tank/home", "").unwrap().count, 0);
        for bad in [
            "tank/home/a/b\n",
            "tank/homework\n",
            "tank/other/a\n",
            "tank/home/a\ntank/home/a\n",
            "tank/home/a b\x1b\n",
        ] {
            let e = children("tank/home", bad).unwrap_err();
            assert_eq!(
                zstream_common::exit::code_of(&e),
                Code::Usage,
                "{bad:?}: {e:#}"
            );
        }
    }
}
