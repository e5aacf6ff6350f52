//! The backup cycle on real OpenZFS 2.3, in the guest (scripts/guest; TCG, so minutes): zstream-backup,
//! zstream-verify and zstream-restore run there on a pool of the guest's, with a file:// store in the guest and
//! the test's clock (ZSTREAM_NOW). The scenarios are tests/src/scenarios.rs; tests/tests/cycle.rs runs the same
//! ones on zfs-fuse.

use zstream_tests::cycle::{day, Site};
use zstream_tests::guest;
use zstream_tests::host::{Host, Pool};
use zstream_tests::scenarios;

/// A site on a new pool of the guest's, its store a directory there.
fn site_on<'a, 'h>(p: &'a Pool<'h>) -> Site<'a, Pool<'h>> {
    Site::new(p, format!("file://{}/store", p.dir), Vec::new())
}

/// `--recursive` on OpenZFS (tests/src/scenarios.rs; zfs-fuse runs the same).
#[test]
fn a_tree_is_backed_up_and_restored_with_recursive() {
    let g = guest::shared();
    let p = g.pool(512);
    scenarios::tree(&site_on(&p));
}

#[test]
fn the_cycle_end_to_end() {
    let g = guest::shared();
    let p = g.pool(512);
    scenarios::cycle(&site_on(&p), scenarios::OPENZFS);
}

// Feature flags of a BEGIN record (versioninfo >> 2), from OpenZFS include/sys/zfs_ioctl.h
// (DMU_BACKUP_FEATURE_*).
const EMBED_DATA: u64 = 1 << 16;
const LZ4: u64 = 1 << 17;
const LARGE_BLOCKS: u64 = 1 << 19;
const COMPRESSED: u64 = 1 << 22;

/// Blocks sent as stored: a dataset of lz4 and 1 MiB records is backed up with `zfs send -L -c` (this zfs has
/// them): the stored streams, read back, carry the compressed-stream, lz4 and large-block flags and are smaller
/// than the data they hold, and not the embedded-data flag although the pool holds embedded blocks (`-e` is left
/// out: OpenZFS refuses such a stream into an encrypted dataset); the run says nothing of sending plainly; the
/// restore of the newest point and of the full alone are the source's files, byte for byte, and so is a restore
/// below an encrypted dataset; a pool without the features (`zpool create -d`) refuses the stream, as the README
/// says.
#[test]
fn blocks_are_sent_as_stored() {
    let g = guest::shared();
    let p = g.pool(512);
    let site = Site::with_dataset(
        &p,
        format!("file://{}/store", p.dir),
        Vec::new(),
        &["-o", "compression=lz4", "-o", "recordsize=1M"],
    );
    let src = site.mounted("src");
    // 4 MiB of text (compresses well, in 1 MiB records) and a file small enough to be embedded in its pointer.
    g.ok(&format!(
        "awk 'BEGIN {{ for (i = 0; i < 140000; i++) print \"a line of text, over and over\" }}' > {src}/text; echo short > {src}/small; zpool sync {pool}",
        src = guest::quote(&src),
        pool = guest::quote(&p.name)
    ));
    let r = site.backup(&day(0), &[]);
    scenarios::ok(&r);
    assert!(
        !r.stderr().contains("sends no block as stored"),
        "{}",
        r.describe()
    );
    let full_copy = site.keep_copy("full");
    site.change(1);
    g.ok(&format!("seq 1 100000 >> {}/text", guest::quote(&src)));
    scenarios::ok(&site.backup(&day(1), &[]));

    // The pool holds embedded blocks (the small file), so a stream sent with -e would say so.
    assert_eq!(
        g.ok(&format!(
            "zpool get -H -o value feature@embedded_data {}",
            p.name
        ))
        .trim(),
        "active"
    );
    let records = site.records();
    assert_eq!(records.len(), 2);
    for rec in &records {
        let info = site.stream_info(rec);
        let f = info["features"].as_u64().expect("features");
        let want = COMPRESSED | LZ4 | LARGE_BLOCKS;
        assert_eq!(
            f & want,
            want,
            "{}: features {f:#x} lack {want:#x}",
            rec["snapshot"]
        );
        assert_eq!(f & EMBED_DATA, 0, "{}: sent with -e", rec["snapshot"]);
    }
    // The full holds the 4 MiB of text, compressed: its stream is a fraction of it.
    let full_bytes = records[0]["raw"]["bytes"].as_u64().unwrap();
    assert!(
        full_bytes < 1 << 20,
        "the full's stream is {full_bytes} bytes"
    );

    scenarios::ok(&site.restore(&day(2), "src", "newest", &[]));
    g.same_tree(&src, &site.mounted("newest"));
    let first = records[0]["snapshot"].as_str().unwrap();
    scenarios::ok(&site.restore(&day(2), &format!("src@{first}"), "older", &[]));
    site.same_as(&full_copy, "older");
    // Below an encrypted dataset (the restored copy encrypted by the pool's own key): OpenZFS takes the stream.
    let key = format!("{}/restore.key", p.dir);
    g.ok(&format!(
        "head -c 32 /dev/urandom > {k} && zfs create -o encryption=on -o keyformat=raw -o keylocation=file://{k} {e}",
        k = guest::quote(&key),
        e = guest::quote(&site.ds("enc"))
    ));
    scenarios::ok(&site.restore(&day(2), "src", "enc/copy", &[]));
    g.same_tree(&src, &site.mounted("enc/copy"));
    assert_eq!(
        g.ok(&format!(
            "zfs get -H -o value encryption {}",
            guest::quote(&site.ds("enc/copy"))
        ))
        .trim(),
        "aes-256-gcm"
    );

    // A pool without those features (`zpool create -d`: none enabled) cannot receive the streams: the restore
    // fails, with OpenZFS's reason.
    let bare = g.pool_with(256, "-d");
    let target = bare.ds("copy");
    let r = site.script(
        "zstream-restore",
        &day(2),
        &[
            "--keys",
            &site.both_keys(),
            &site.dest,
            &site.dataset,
            &target,
        ],
    );
    assert_ne!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr()
            .contains("pool must be upgraded to receive this stream"),
        "the restore says why (OpenZFS's words): {}",
        r.describe()
    );
}

/// Bookmarks as the incremental base: with `--no-hold` (a snapshot manager owns the snapshots) each committed
/// backup leaves this store's bookmark of its snapshot and no hold, the older bookmark of this store goes and a
/// user's stays; the snapshots destroyed at the source (as sanoid would), the next night is an incremental from
/// the bookmark, not a full, its record's base the snapshot; the restores of the newest point and of the point
/// whose snapshot is gone are the source's files, byte for byte.
#[test]
fn an_incremental_from_the_store_s_bookmark_once_the_snapshot_is_gone() {
    let g = guest::shared();
    let p = g.pool(512);
    let site = site_on(&p);
    let ds = site.dataset.clone();
    site.change(0);
    let r = site.backup(&day(0), &["--no-hold"]);
    scenarios::ok(&r);
    assert!(
        !r.stderr().contains("no bookmarks here"),
        "{}",
        r.describe()
    );
    let first = scenarios::snap(&site.records()[0]);
    assert!(scenarios::held(&site).is_empty(), "--no-hold holds nothing");
    let marks = scenarios::listed(&site, "bookmark", &ds);
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert!(marks[0].ends_with(&format!("_{first}")), "{marks:?}");
    let guid = |name: &str| {
        g.ok(&format!(
            "zfs get -H -p -o value guid {}",
            guest::quote(name)
        ))
    };
    assert_eq!(
        guid(&format!("{ds}#{}", marks[0])),
        guid(&format!("{ds}@{first}"))
    );
    // The user's own bookmark, which no run may touch.
    g.ok(&format!("zfs bookmark {ds}@{first} {ds}#mine"));

    site.change(1);
    scenarios::ok(&site.backup(&day(1), &["--no-hold"]));
    let second = scenarios::snap(&site.records()[1]);
    let copy = site.keep_copy("day1");
    let mut marks = scenarios::listed(&site, "bookmark", &ds);
    marks.sort();
    assert_eq!(
        marks.len(),
        2,
        "this store's newest and the user's: {marks:?}"
    );
    assert!(marks.contains(&"mine".to_string()), "{marks:?}");
    assert!(
        marks.iter().any(|m| m.ends_with(&format!("_{second}"))),
        "{marks:?}"
    );
    let second_guid = guid(&format!("{ds}@{second}"));

    // A snapshot manager destroys both snapshots (nothing holds them).
    g.ok(&format!(
        "zfs destroy {ds}@{first}; zfs destroy {ds}@{second}"
    ));
    site.change(2);
    let r = site.backup(&day(2), &["--no-hold", "--json"]);
    scenarios::ok(&r);
    let out: serde_json::Value = serde_json::from_slice(r.stdout()).expect("backup --json");
    let rec = &out["record"];
    assert_eq!(rec["kind"], "incremental", "{}", r.describe());
    assert!(
        r.stderr().contains("incremental from #"),
        "{}",
        r.describe()
    );
    assert_eq!(rec["from_snapshot"], second.as_str(), "{rec}");
    assert_eq!(rec["from_guid"].as_str(), Some(second_guid.trim()), "{rec}");

    scenarios::ok(&site.restore(&day(3), "src", "newest", &[]));
    g.same_tree(&site.mounted("src"), &site.mounted("newest"));
    scenarios::ok(&site.restore(&day(3), &format!("src@{second}"), "older", &[]));
    site.same_as(&copy, "older");
}

/// A site whose dataset is natively encrypted with a raw key in a file of the pool's scratch directory; the key
/// file's path.
fn encrypted_site<'a, 'h>(p: &'a Pool<'h>) -> (Site<'a, Pool<'h>>, String) {
    let key = format!("{}/dataset.key", p.dir);
    p.host
        .ok(&format!("head -c 32 /dev/urandom > {}", guest::quote(&key)));
    let keylocation = format!("keylocation=file://{key}");
    let site = Site::with_dataset(
        p,
        format!("file://{}/store", p.dir),
        Vec::new(),
        &[
            "-o",
            "encryption=on",
            "-o",
            "keyformat=raw",
            "-o",
            &keylocation,
        ],
    );
    (site, key)
}

/// An encrypted dataset (native encryption, a raw key in a file): with its key unloaded the run fails (exit 1)
/// before it takes a snapshot or writes an entry, in one line that says so; with it loaded the run says once
/// that the dataset is sent decrypted, and the restore is the source's files, byte for byte, not encrypted.
#[test]
fn an_encrypted_dataset_is_sent_decrypted_only_with_its_key_loaded() {
    let g = guest::shared();
    let p = g.pool(512);
    let (site, _) = encrypted_site(&p);
    let ds = site.dataset.clone();
    site.change(0);
    g.ok(&format!("zfs unmount {ds}; zfs unload-key {ds}"));
    let r = site.backup(&day(0), &[]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let stderr = r.stderr();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("key is not loaded"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.describe());
    assert!(
        lines[0].contains(&ds) && lines[0].contains("zfs load-key"),
        "{}",
        lines[0]
    );
    assert!(
        scenarios::listed(&site, "snapshot", &ds).is_empty(),
        "a snapshot was taken: {}",
        r.describe()
    );
    assert!(site.entries().is_empty(), "an entry was written");

    g.ok(&format!("zfs load-key {ds}; zfs mount {ds}"));
    for d in 0..2 {
        if d > 0 {
            site.change(d);
        }
        let r = site.backup(&day(d), &[]);
        scenarios::ok(&r);
        assert_eq!(
            r.stderr().matches("sent decrypted").count(),
            1,
            "{}",
            r.describe()
        );
    }
    assert_eq!(site.records().len(), 2);
    scenarios::ok(&site.restore(&day(2), "src", "back", &[]));
    g.same_tree(&site.mounted("src"), &site.mounted("back"));
    assert_eq!(
        g.ok(&format!(
            "zfs get -H -o value encryption {}",
            site.ds("back")
        ))
        .trim(),
        "off"
    );
}

/// DMU_BACKUP_FEATURE_RAW (OpenZFS include/sys/zfs_ioctl.h): the stream is `zfs send -w`.
const RAW: u64 = 1 << 24;

/// Raw sends (`--raw`) of an encrypted dataset: the nights run with its key unloaded (a raw send needs none); the
/// records say `send.raw` and the stored streams are OpenZFS's raw form; the restore is encrypted under the
/// source's own key, says how to load it, and once loaded holds the source's files byte for byte; turning `--raw`
/// off makes the next night a full, saying why.
#[test]
fn raw_sends_keep_an_encrypted_dataset_under_its_own_key() {
    let g = guest::shared();
    let p = g.pool(512);
    let (site, key) = encrypted_site(&p);
    let ds = site.dataset.clone();
    let locked = |locked: bool| {
        g.ok(&if locked {
            format!("zfs unmount {ds}; zfs unload-key {ds}")
        } else {
            format!("zfs load-key {ds}; zfs mount {ds}")
        });
    };
    for d in 0..2 {
        site.change(d);
        locked(true);
        let r = site.backup(&day(d), &["--raw"]);
        scenarios::ok(&r);
        assert!(r.stderr().contains("sent raw"), "{}", r.describe());
        locked(false);
    }
    let records = site.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["kind"], "incremental");
    for rec in &records {
        assert_eq!(rec["send"]["raw"], true, "{rec}");
        let f = site.stream_info(rec)["features"]
            .as_u64()
            .expect("features");
        assert_eq!(f & RAW, RAW, "{}: features {f:#x}", rec["snapshot"]);
    }

    let r = site.restore(&day(2), "src", "back", &[]);
    scenarios::ok(&r);
    assert!(r.stderr().contains("zfs load-key"), "{}", r.describe());
    let back = site.ds("back");
    assert_eq!(
        g.ok(&format!("zfs get -H -o value encryption,keystatus {back}"))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["aes-256-gcm", "unavailable"]
    );
    g.ok(&format!(
        "zfs load-key -L file://{} {back}; zfs mount {back}",
        key
    ));
    g.same_tree(&site.mounted("src"), &site.mounted("back"));

    // --raw off: a plain stream cannot build on the raw chain, so a full.
    site.change(3);
    let r = site.backup(&day(3), &["--json"]);
    scenarios::ok(&r);
    let s: serde_json::Value = serde_json::from_slice(r.stdout()).expect("--json");
    assert_eq!(s["record"]["kind"], "full", "{}", r.describe());
    assert!(
        s["why"]
            .as_str()
            .unwrap_or("")
            .contains("a raw stream and a plain one"),
        "{}",
        r.describe()
    );
    assert!(s["record"].get("send").is_none(), "{}", s["record"]);
}
