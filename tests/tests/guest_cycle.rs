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

/// Blocks sent as stored: a dataset of lz4 and 1 MiB records is backed up with `zfs send -L -c -e` (this zfs has
/// them): the stored streams, read back, carry the compressed-stream, lz4, large-block and (where the pool has
/// embedded blocks) embedded-data flags and are smaller than the data they hold; the run says nothing of sending
/// plainly; the restore of the newest point and of the full alone are the source's files, byte for byte; a pool
/// without the features (`zpool create -d`) refuses the stream, as the README says.
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

    let embedded = g
        .ok(&format!(
            "zpool get -H -o value feature@embedded_data {}",
            p.name
        ))
        .trim()
        == "active";
    let records = site.records();
    assert_eq!(records.len(), 2);
    for rec in &records {
        let info = site.stream_info(rec);
        let f = info["features"].as_u64().expect("features");
        let want = COMPRESSED | LZ4 | LARGE_BLOCKS | if embedded { EMBED_DATA } else { 0 };
        assert_eq!(
            f & want,
            want,
            "{}: features {f:#x} lack {want:#x}",
            rec["snapshot"]
        );
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
