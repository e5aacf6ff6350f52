//! `zstream-hash --zfs` on live streams of every `zfs send` form real OpenZFS 2.3 makes (in the guest): each is
//! piped through it as zfs sends it, received back where a receive applies and compared with its source, its
//! guids and feature flags checked against the snapshots and OpenZFS's flag values, then refused by the binary
//! with a byte flipped and when cut. `zfs send --saved` streams, which lack their END on purpose, pass only with
//! `--saved`.

use zstream_tests::data::Gen;
use zstream_tests::guest;
use zstream_tests::host::{Host, Pool};
use zstream_tests::proc::run;
use zstream_tests::streams::{common_forms, refuses_damage, send_through, Sent};

// Feature flags of a BEGIN record (versioninfo >> 2), from OpenZFS include/sys/zfs_ioctl.h
// (DMU_BACKUP_FEATURE_*).
const EMBED_DATA: u64 = 1 << 16;
const LZ4: u64 = 1 << 17;
const LARGE_BLOCKS: u64 = 1 << 19;
const RESUMING: u64 = 1 << 20;
const COMPRESSED: u64 = 1 << 22;
const RAW: u64 = 1 << 24;

#[track_caller]
fn has(s: &Sent, flags: u64) {
    assert_eq!(
        s.features() & flags,
        flags,
        "{}: features {:#x} lack {flags:#x}",
        s.name,
        s.features()
    );
}

/// `zfs get -H -o FIELDS PROP DS`, trimmed.
fn get(g: &dyn Host, fields: &str, prop: &str, ds: &str) -> String {
    g.ok(&format!("zfs get -H -o {fields} {prop} {ds}"))
        .trim()
        .to_string()
}

#[test]
fn full_incremental_intermediates_and_recursive_as_on_zfs_fuse() {
    let g = guest::shared();
    let streams = common_forms(g);
    assert_eq!(streams.len(), 4);
}

/// The pool every other form is sent from: `fs` (lz4, 1 MiB records, a small file for embedded blocks, a
/// property, a child and a clone), snapshots @a @b @c, and `r` to receive into.
fn source(p: &Pool) {
    let h = p.host;
    let fs = p.ds("fs");
    h.ok(&format!(
        "zfs create -o compression=lz4 -o recordsize=1M -o zstream:test=yes {fs}; zfs create {}",
        p.ds("r")
    ));
    h.fill_tree(&p.path("fs"), 11);
    h.write(
        &p.path("fs/small.txt"),
        b"a short text file: a block this small is embedded in its block pointer\n",
    );
    h.ok(&format!("zfs snapshot {fs}@a"));
    h.write(&p.path("fs/f4"), &Gen::bytes(12, 300_000));
    h.ok(&format!("zfs snapshot {fs}@b"));
    h.ok(&format!("zfs create {fs}/child; zfs clone {fs}@a {fs}/kid"));
    h.fill_tree(&p.path("fs/child"), 13);
    h.write(&p.path("fs/kid/only-in-kid"), b"kid\n");
    h.ok(&format!("zfs snapshot -r {fs}@c"));
}

#[test]
fn every_send_form_of_a_filesystem() {
    let g = guest::shared();
    let p = g.pool(1024);
    source(&p);
    let (fs, r) = (p.ds("fs"), p.ds("r"));
    let snap_a = p.path("fs/.zfs/snapshot/a");
    let mut all = Vec::new();

    for (name, opts, flags) in [
        ("compressed", "-c", COMPRESSED | LZ4),
        ("large-blocks", "-L", LARGE_BLOCKS),
        ("embedded", "-e", EMBED_DATA),
        (
            "large-compressed-embedded",
            "-L -c -e",
            LARGE_BLOCKS | COMPRESSED | EMBED_DATA,
        ),
    ] {
        let s = send_through(
            &p,
            name,
            &format!("{opts} {fs}@a"),
            "",
            Some(&format!("{r}/{name}")),
        );
        has(&s, flags);
        assert_eq!(s.guid("toguid"), g.guid(&format!("{fs}@a")));
        g.same_tree(&snap_a, &p.path(&format!("r/{name}")));
        all.push(s);
    }

    // -p: properties travel; -b: a received dataset's received properties travel on.
    let s = send_through(
        &p,
        "properties",
        &format!("-p {fs}@a"),
        "",
        Some(&format!("{r}/props")),
    );
    assert_eq!(
        get(g, "value,source", "zstream:test", &format!("{r}/props")),
        "yes\treceived"
    );
    assert_eq!(get(g, "value", "recordsize", &format!("{r}/props")), "1M");
    all.push(s);
    g.ok(&format!(
        "zfs inherit zstream:test {r}/props; zfs snapshot {r}/props@again"
    ));
    let s = send_through(
        &p,
        "backup",
        &format!("-b {r}/props@again"),
        "",
        Some(&format!("{r}/props2")),
    );
    assert_eq!(
        get(g, "value,source", "zstream:test", &format!("{r}/props2")),
        "yes\treceived"
    );
    all.push(s);

    // -R with a child and a clone: the clone arrives as a clone of the received origin.
    g.ok(&format!("zfs create {r}/tree"));
    let s = send_through(
        &p,
        "recursive-clones",
        &format!("-R {fs}@c"),
        "",
        Some(&format!("-d {r}/tree")),
    );
    let names: Vec<String> = s.json["substreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["toname"].as_str().unwrap().to_string())
        .collect();
    for want in ["fs@a", "fs@b", "fs@c", "fs/child@c", "fs/kid@c"] {
        assert!(names.contains(&p.ds(want)), "{want} missing from {names:?}");
    }
    for sub in s.json["substreams"].as_array().unwrap() {
        assert_eq!(
            sub["toguid"],
            g.guid(sub["toname"].as_str().unwrap()).to_string(),
            "{sub}"
        );
    }
    assert_eq!(
        get(g, "value", "origin", &format!("{r}/tree/fs/kid")),
        format!("{r}/tree/fs@a")
    );
    g.same_tree(&p.path("fs/kid"), &p.path("r/tree/fs/kid"));
    g.same_tree(&p.path("fs/child"), &p.path("r/tree/fs/child"));
    all.push(s);

    // From a bookmark, the snapshot it marks destroyed at the source.
    let bm = p.ds("bm");
    g.ok(&format!("zfs create {bm}"));
    g.fill_tree(&p.path("bm"), 21);
    g.ok(&format!("zfs snapshot {bm}@a; zfs bookmark {bm}@a {bm}#a"));
    all.push(send_through(
        &p,
        "bookmark-base",
        &format!("{bm}@a"),
        "",
        Some(&format!("{r}/bm")),
    ));
    g.write(&p.path("bm/after"), &Gen::bytes(22, 100_000));
    g.ok(&format!("zfs snapshot {bm}@b; zfs destroy {bm}@a"));
    let s = send_through(
        &p,
        "from-bookmark",
        &format!("-i {bm}#a {bm}@b"),
        "",
        Some(&format!("-F {r}/bm")),
    );
    assert_eq!(
        s.guid("fromguid"),
        g.guid(&format!("{r}/bm@a")),
        "the bookmark stands for @a"
    );
    g.same_tree(&p.path("bm"), &p.path("r/bm"));
    all.push(s);

    // A receive cut midway (-s) resumes from its token: `zfs send -t`.
    let full = all[0].bytes.len();
    let head = p.dir.clone() + "/streams/compressed.zfs";
    g.sh(&format!(
        "head -c {} {head} | zfs receive -s {r}/resumed",
        full / 2
    ))
    .code()
    .filter(|&c| c != 0)
    .expect("a receive of half a stream fails");
    let token = g.ok(&format!(
        "zfs get -H -o value receive_resume_token {r}/resumed"
    ));
    let token = token.trim();
    assert!(token.len() > 10, "no resume token: {token}");
    let s = send_through(
        &p,
        "resumed",
        &format!("-t {token}"),
        "",
        Some(&format!("-s {r}/resumed")),
    );
    has(&s, RESUMING);
    assert_eq!(s.guid("toguid"), g.guid(&format!("{fs}@a")));
    g.same_tree(&snap_a, &p.path("r/resumed"));
    all.push(s);

    // --saved: what a cut resumable receive kept, sent on. It lacks its END on purpose.
    g.sh(&format!(
        "head -c {} {head} | zfs receive -s {r}/part",
        full / 2
    ))
    .code()
    .filter(|&c| c != 0)
    .expect("a receive of half a stream fails");
    let s = send_through(&p, "saved", &format!("--saved {r}/part"), "--saved", None);
    assert_eq!(s.json["saved"], true, "{}", s.json);
    assert_eq!(s.guid("toguid"), g.guid(&format!("{fs}@a")));
    let plain = run(
        &zstream_tests::bins::bin("zstream-hash"),
        &["--zfs", "-q"],
        &s.bytes,
    );
    plain.expect_code(3).expect_clean_stderr("zstream-hash");
    assert!(
        plain.stderr().contains("lacks its END"),
        "{}",
        plain.describe()
    );
    // Received back: the saved part lands as a partial receive again, finished from the source by its token.
    let saved = p.dir.clone() + "/streams/saved.zfs";
    let _ = g.sh(&format!("zfs receive -s {r}/part2 < {saved}"));
    let token = g.ok(&format!(
        "zfs get -H -o value receive_resume_token {r}/part2"
    ));
    let rest = send_through(
        &p,
        "saved-rest",
        &format!("-t {}", token.trim()),
        "",
        Some(&format!("-s {r}/part2")),
    );
    g.same_tree(&snap_a, &p.path("r/part2"));
    for x in &all {
        refuses_damage(&x.name, &x.bytes, &["--zfs"], x.bytes.len() as u64);
    }
    refuses_damage("saved", &s.bytes, &["--zfs", "--saved"], 7);
    refuses_damage("saved-rest", &rest.bytes, &["--zfs"], 8);
}

#[test]
fn raw_sends_of_an_encrypted_dataset() {
    let g = guest::shared();
    let p = g.pool(512);
    let (enc, r) = (p.ds("enc"), p.ds("r"));
    let key = format!("{}/key", p.dir);
    g.write(&key, &Gen::bytes(31, 32));
    g.ok(&format!(
        "zfs create -o encryption=on -o keyformat=raw -o keylocation=file://{key} {enc}; zfs create {r}"
    ));
    g.fill_tree(&p.path("enc"), 31);
    g.ok(&format!("zfs snapshot {enc}@a"));
    g.write(&p.path("enc/b"), &Gen::bytes(32, 200_000));
    g.ok(&format!(
        "zfs snapshot {enc}@b; zfs bookmark {enc}@b {enc}#b"
    ));

    // The copy stays unmounted until the last one: a mounted copy counts as modified for a raw incremental.
    let full = send_through(
        &p,
        "raw",
        &format!("-w {enc}@a"),
        "",
        Some(&format!("-u {r}/enc")),
    );
    let inc = send_through(
        &p,
        "raw-incremental",
        &format!("-w -i @a {enc}@b"),
        "",
        Some(&format!("-u {r}/enc")),
    );
    assert_eq!(inc.guid("fromguid"), g.guid(&format!("{enc}@a")));
    let b_guid = g.guid(&format!("{enc}@b"));
    g.write(&p.path("enc/c"), &Gen::bytes(33, 200_000));
    g.ok(&format!("zfs snapshot {enc}@c; zfs destroy {enc}@b"));
    let s = send_through(
        &p,
        "raw-from-bookmark",
        &format!("-w -i {enc}#b {enc}@c"),
        "",
        Some(&format!("-u {r}/enc")),
    );
    assert_eq!(s.guid("fromguid"), b_guid, "the bookmark stands for @b");
    assert_eq!(s.guid("toguid"), g.guid(&format!("{enc}@c")));
    for x in [&full, &inc, &s] {
        has(x, RAW);
    }
    // Without the key nothing is readable; with it, the files are the source's.
    assert_eq!(
        get(g, "value", "keystatus", &format!("{r}/enc")),
        "unavailable"
    );
    g.ok(&format!(
        "zfs load-key -L file://{key} {r}/enc; zfs mount {r}/enc"
    ));
    g.same_tree(&p.path("enc"), &p.path("r/enc"));
    assert_eq!(
        get(g, "value", "encryption", &format!("{r}/enc")),
        "aes-256-gcm"
    );
    for x in [&full, &inc, &s] {
        refuses_damage(&x.name, &x.bytes, &["--zfs"], 31);
    }
}

#[test]
fn zvols_full_and_incremental() {
    let g = guest::shared();
    let p = g.pool(512);
    let (vol, r) = (p.ds("vol"), p.ds("r"));
    g.ok(&format!(
        "zfs create -V 32M {vol}; zfs create {r}; udevadm settle"
    ));
    g.wait_for(&format!("[ -e /dev/zvol/{vol} ]"), "the zvol's device");
    g.sh_with(
        &format!("dd of=/dev/zvol/{vol} bs=1M status=none"),
        &Gen::bytes(41, 5 << 20),
        &[],
    )
    .expect_code(0);
    g.ok(&format!("zfs snapshot {vol}@a"));
    g.sh_with(
        &format!("dd of=/dev/zvol/{vol} bs=1M seek=20 status=none"),
        &Gen::bytes(42, 3 << 20),
        &[],
    )
    .expect_code(0);
    g.ok(&format!("sync; zfs snapshot {vol}@b"));
    let full = send_through(
        &p,
        "zvol",
        &format!("{vol}@a"),
        "",
        Some(&format!("{r}/vol")),
    );
    let inc = send_through(
        &p,
        "zvol-incremental",
        &format!("-i @a {vol}@b"),
        "",
        Some(&format!("{r}/vol")),
    );
    g.wait_for(
        &format!("[ -e /dev/zvol/{r}/vol ]"),
        "the received zvol's device",
    );
    g.ok(&format!("cmp /dev/zvol/{vol} /dev/zvol/{r}/vol"));
    assert_eq!(inc.guid("toguid"), g.guid(&format!("{vol}@b")));
    for x in [&full, &inc] {
        refuses_damage(&x.name, &x.bytes, &["--zfs"], 41);
    }
}
