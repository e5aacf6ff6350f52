//! The backup pipe with encryption, against real ZFS:
//!   zfs send | zstream-hash -o | zstream-seal (two keys) > stored
//!   zstream-seal -d (keys in the other order) < stored | zstream-hash --check | zfs receive
//! for a full and an incremental; then a wrong key and a tampered store, where receive must get nothing it
//! could take for a stream.

use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::proc::sh;
use zstream_tests::zfs::{assert_same_tree, cmd, fill_tree, Zfs};

#[test]
fn sealed_backup_and_restore_through_real_zfs() {
    let z = Zfs::start();
    let p = z.pool(512);
    let (hash, seal) = (bin("zstream-hash"), bin("zstream-seal"));
    let (hash, seal) = (hash.to_str().unwrap(), seal.to_str().unwrap());
    let w = p.dir.join("work");
    std::fs::create_dir_all(&w).unwrap();
    let f = |name: &str| w.join(name).to_str().unwrap().to_string();
    for k in ["a.key", "b.key", "c.key"] {
        sh(&format!("{seal} keygen -o {}", f(k))).expect_code(0);
    }
    let keys = format!("--key-file {} --key-file {}", f("a.key"), f("b.key"));
    let keys_reversed = format!("--key-file {} --key-file {}", f("b.key"), f("a.key"));

    cmd("zfs", &["create", &p.ds("src")]);
    fill_tree(&p.path("src"), 7);
    cmd("zfs", &["snapshot", &p.ds("src@mon")]);
    std::fs::write(p.path("src/tuesday.bin"), Gen::bytes(8, 300_000)).unwrap();
    std::fs::remove_file(p.path("src/f3")).unwrap();
    cmd("zfs", &["snapshot", &p.ds("src@tue")]);

    // Back up: a full and an incremental, each with its digest sidecar.
    for (snap, send) in [
        ("mon", format!("{}@mon", p.ds("src"))),
        ("tue", format!("-i @mon {}@tue", p.ds("src"))),
    ] {
        sh(&format!(
            "zfs send {send} | {hash} --zfs -o {d} | {seal} {keys} > {s}",
            d = f(&format!("{snap}.sha256")),
            s = f(&format!("{snap}.sealed"))
        ))
        .expect_code(0);
    }
    // The stored stream is ciphertext: no file content shows through.
    let sealed = std::fs::read(f("mon.sealed")).unwrap();
    let needle = Gen::bytes(7 + 5, 4096);
    assert!(
        !sealed.windows(64).any(|win| win == &needle[..64]),
        "plaintext visible in the sealed stream"
    );

    // Restore both, keys in the other order.
    for (snap, recv) in [("mon", ""), ("tue", "-F")] {
        sh(&format!(
            "{seal} -d {keys_reversed} < {s} | {hash} --check {d} -q | zfs receive {recv} {dst}",
            s = f(&format!("{snap}.sealed")),
            d = f(&format!("{snap}.sha256")),
            dst = p.ds("restored")
        ))
        .expect_code(0);
    }
    assert_same_tree(&p.path("src"), &p.path("restored"));

    // A wrong key: seal writes nothing, so receive sees an empty stream and creates nothing.
    let wrong = format!("--key-file {} --key-file {}", f("a.key"), f("c.key"));
    let r = sh(&format!(
        "{seal} -d {wrong} < {s} | zfs receive {dst}",
        s = f("mon.sealed"),
        dst = p.ds("never1")
    ));
    assert_ne!(r.code(), Some(0));
    assert!(
        r.stderr().contains("do not open this stream"),
        "{}",
        r.describe()
    );
    assert!(
        sh(&format!("zfs list {}", p.ds("never1"))).code() != Some(0),
        "a dataset appeared from a wrong-key restore"
    );

    // A tampered store: the pipe fails, and the partial stream does not become a dataset.
    let mut t = sealed.clone();
    let at = t.len() / 2;
    t[at] ^= 4;
    std::fs::write(f("tampered.sealed"), &t).unwrap();
    let r = sh(&format!(
        "{seal} -d {keys} < {s} | {hash} --check {d} -q | zfs receive {dst}",
        s = f("tampered.sealed"),
        d = f("mon.sha256"),
        dst = p.ds("never2")
    ));
    assert_ne!(r.code(), Some(0));
    assert!(
        r.stderr().contains("fails authentication"),
        "{}",
        r.describe()
    );
    assert!(
        sh(&format!("zfs list {}", p.ds("never2"))).code() != Some(0),
        "a dataset appeared from a tampered restore"
    );
}
