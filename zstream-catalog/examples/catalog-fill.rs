//! For the bench (scripts/bench catalog): fills a store with N signed records of old fulls of DATASET, each with a
//! small object of its own, as years of a site's nights would leave them, so that a real night's run can be
//! measured against a catalog of that size.
//!
//! `cargo run --release -p zstream-catalog --example catalog-fill -- DEST DATASET N KEY_FILE... [--class C]`
//! Record i is the full `fill-NNNNNN`, seq i + 1, dated i hours after 2020-01-01; its object holds 4 KiB.

use zstream_catalog::layout::{object_name, Store};
use zstream_catalog::record::{Backup, Entry, Kind, Object, Policy, Raw, Seal};
use zstream_catalog::{clock, io::Io, sign::Secrets};
use zstream_ship::app::{backend, Use};
use zstream_ship::backend::Replace;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let class = match args.iter().position(|a| a == "--class") {
        Some(i) => {
            let c = args.remove(i + 1);
            args.remove(i);
            c
        }
        None => "FILE".into(),
    };
    let [dest, dataset, n, keys @ ..] = &args[..] else {
        anyhow::bail!("usage: catalog-fill DEST DATASET N KEY_FILE... [--class C]");
    };
    let n: u64 = n.parse()?;
    let secrets = Secrets::load(&keys.iter().map(Into::into).collect::<Vec<_>>(), &[])?;
    let store = Store::new(dest, None).map_err(anyhow::Error::msg)?;
    let io = Io::new(store.clone());
    let start = clock::parse("2020-01-01T00:00:00Z").map_err(anyhow::Error::msg)?;
    let payload = vec![0x5au8; 4096];
    for i in 0..n {
        let snap = format!("fill-{i:06}");
        let name = object_name(dataset, &snap);
        let stored = backend(&store.url_of(&name), Use::Upload, &Default::default())?
            .put(&mut &payload[..], Replace::No)?;
        // The example record made a full of its own, named and numbered for this fill.
        let b = Backup {
            store: store.id(),
            dataset: dataset.clone(),
            snapshot: snap.clone(),
            guid: 1_000_000 + i,
            createtxg: 1 + i,
            kind: Kind::Full,
            from_snapshot: None,
            from_guid: None,
            cycle: snap,
            seq: i + 1,
            raw: Raw {
                bytes: 4096,
                sha256: "0".repeat(64),
            },
            object: Object {
                name,
                bytes: stored.bytes,
                checksum: stored.checksum,
                storage_class: class.clone(),
            },
            seal: Seal {
                key_ids: secrets.key_ids.clone(),
                passphrases: secrets.passphrases,
                chunk_size: 1 << 20,
            },
            policy: Policy {
                full_every: 30 * 86_400,
                keep_cycles: 100_000,
                min_full_ratio: 0.0,
            },
            tools: Default::default(),
            time: clock::format(start + i as i64 * 3600),
            host: "bench".into(),
            ..zstream_catalog::testkit::example()
        };
        io.put(&Entry::Backup(b), &secrets)?;
    }
    Ok(())
}
