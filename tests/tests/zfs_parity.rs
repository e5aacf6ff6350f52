//! The whole backup pipe with parity, against real ZFS, with the stored stream damaged:
//!   zfs send | zstream-hash -o | zstream-seal | zstream-par > stored      (then damage `stored`)
//!   zstream-par -d < stored | zstream-seal -d | zstream-hash --check | zfs receive
//! Damage within what parity repairs gives back an intact stream that zfs receive takes; damage beyond it fails
//! the restore and leaves no dataset.

use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::proc::sh;
use zstream_tests::zfs::{assert_same_tree, cmd, fill_tree, Zfs};

#[test]
fn damaged_archives_repair_themselves_on_the_way_to_zfs_receive() {
    let z = Zfs::start();
    let p = z.pool(512);
    let (hash, seal, par) = (bin("zstream-hash"), bin("zstream-seal"), bin("zstream-par"));
    let (hash, seal, par) = (
        hash.to_str().unwrap(),
        seal.to_str().unwrap(),
        par.to_str().unwrap(),
    );
    let w = p.dir.join("work");
    std::fs::create_dir_all(&w).unwrap();
    let f = |name: &str| w.join(name).to_str().unwrap().to_string();
    sh(&format!("{seal} keygen -o {}", f("a.key"))).expect_code(0);
    let keys = format!("--key-file {}", f("a.key"));
    // Small blocks so that the few MiB of a test dataset make many groups.
    let par_args = "--data 8 --parity 2 --block-size 64KiB";

    cmd("zfs", &["create", &p.ds("src")]);
    fill_tree(&p.path("src"), 21);
    cmd("zfs", &["snapshot", &p.ds("src@full")]);
    std::fs::write(p.path("src/later.bin"), Gen::bytes(22, 700_000)).unwrap();
    cmd("zfs", &["snapshot", &p.ds("src@incr")]);
    for (name, send) in [
        ("full", format!("{}@full", p.ds("src"))),
        ("incr", format!("-i @full {}@incr", p.ds("src"))),
    ] {
        sh(&format!(
            "zfs send {send} | {hash} --zfs -o {d} | {seal} {keys} | {par} {par_args} > {s}",
            d = f(&format!("{name}.sha256")),
            s = f(&format!("{name}.par"))
        ))
        .expect_code(0);
    }

    // Damage every stored stream: in each full group of 10 frames (~655 KiB), wreck a range inside two frames.
    // (The final group's frames are shorter, its shards sized to what it holds: par-v2.md; a range of this length
    // there would touch more than two.)
    let frame = 64 * 1024 + 64;
    for name in ["full", "incr"] {
        let path = f(&format!("{name}.par"));
        let mut d = std::fs::read(&path).unwrap();
        let mut g = Gen::new(name.len() as u64);
        let mut at = 200;
        let tail = final_group_start(&d);
        while at + 2 * frame < tail {
            let start = at + g.below(frame as u64 / 2) as usize;
            let len = frame + g.below(frame as u64 / 2) as usize; // touches two frames, at most
            d[start..start + len].fill(0);
            at += 10 * frame;
        }
        std::fs::write(&path, d).unwrap();
        let v = sh(&format!("{par} --verify < {path}"));
        v.expect_code(0);
        assert!(
            v.stderr().contains("damaged, repairable"),
            "{}",
            v.describe()
        );
    }

    for (name, recv) in [("full", ""), ("incr", "-F")] {
        let r = sh(&format!(
            "{par} -d < {s} | {seal} -d {keys} | {hash} --check {d} -q | zfs receive {recv} {dst}",
            s = f(&format!("{name}.par")),
            d = f(&format!("{name}.sha256")),
            dst = p.ds("restored")
        ));
        r.expect_code(0);
        assert!(
            r.stderr().contains("repaired group"),
            "no repair reported: {}",
            r.describe()
        );
    }
    assert_same_tree(&p.path("src"), &p.path("restored"));

    // Beyond repair: three frames of one group gone. The restore fails and no dataset appears.
    let mut d = std::fs::read(f("full.par")).unwrap();
    let mid = d.len() / 2;
    d.drain(mid..mid + 3 * frame);
    std::fs::write(f("broken.par"), d).unwrap();
    let r = sh(&format!(
        "{par} -d < {s} | {seal} -d {keys} | {hash} --check {d} -q | zfs receive {dst}",
        s = f("broken.par"),
        d = f("full.sha256"),
        dst = p.ds("never")
    ));
    assert_ne!(r.code(), Some(0));
    assert!(
        r.stderr()
            .contains("lost more blocks than its parity can repair"),
        "{}",
        r.describe()
    );
    assert!(
        sh(&format!("zfs list {}", p.ds("never"))).code() != Some(0),
        "a dataset appeared from a broken restore"
    );
}

/// Where a clean parity stream's final group begins: the first frame whose flags (header byte 27) say so, walking
/// the frames by their payload lengths (header bytes 44..48), as par-v2.md lays them out.
fn final_group_start(s: &[u8]) -> usize {
    let mut at = 0;
    while at + 64 <= s.len() {
        if s[at + 27] == 1 {
            return at;
        }
        at += 64 + u32::from_be_bytes(s[at + 44..at + 48].try_into().unwrap()) as usize;
    }
    s.len()
}
