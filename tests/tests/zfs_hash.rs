//! zstream-hash between a real `zfs send` and a real `zfs receive`: full, incremental and -R streams arrive
//! intact, the reported guids are the snapshots' guids, and damaged streams exit 3.

use std::path::Path;
use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::host::Local;
use zstream_tests::proc::{run, sh};
use zstream_tests::streams::{common_forms, refuses_damage};
use zstream_tests::zfs::{assert_same_tree, cmd, fill_tree, Pool, Zfs};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// `zfs send SEND | zstream-hash --zfs --json JSON | zfs receive RECEIVE`, which must succeed.
fn through_hash(send: &str, json: &str, receive: &str) {
    let hash = bin("zstream-hash");
    sh(&format!(
        "zfs send {send} | {} --zfs --json {json} | zfs receive {receive}",
        hash.display()
    ))
    .expect_code(0);
}

#[test]
fn zfs_streams_through_zstream_hash() {
    let z = Zfs::start();
    let p = z.pool(512);
    let hash = bin("zstream-hash");
    let hash = hash.to_str().unwrap();
    let work = p.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let w = |f: &str| work.join(f).to_str().unwrap().to_string();

    // Full.
    cmd("zfs", &["create", &p.ds("src")]);
    fill_tree(&p.path("src"), 1);
    cmd("zfs", &["snapshot", &p.ds("src@a")]);
    sh(&format!(
        "zfs send {src}@a | {hash} --zfs --json {j} -o {d} | zfs receive {dst}",
        src = p.ds("src"),
        j = w("a.json"),
        d = w("a.sha256"),
        dst = p.ds("dst")
    ))
    .expect_code(0);
    assert_same_tree(&p.path("src"), &p.path("dst"));
    let a = json(&work.join("a.json"));
    assert_eq!(a["toname"], p.ds("src@a"));
    assert_eq!(a["toguid"], p.guid(&p.ds("src@a")).to_string());
    assert_eq!(a["fromguid"], "0");
    assert_eq!(a["compound"], false);

    // Incremental: a new file, a changed one, a deleted one.
    std::fs::write(p.path("src/new"), Gen::bytes(99, 200_000)).unwrap();
    std::fs::write(p.path("src/f1"), b"changed").unwrap();
    std::fs::remove_file(p.path("src/f2")).unwrap();
    cmd("zfs", &["snapshot", &p.ds("src@b")]);
    through_hash(
        &format!("-i @a {}@b", p.ds("src")),
        &w("b.json"),
        &format!("-F {}", p.ds("dst")),
    );
    assert_same_tree(&p.path("src"), &p.path("dst"));
    let b = json(&work.join("b.json"));
    assert_eq!(b["toguid"], p.guid(&p.ds("src@b")).to_string());
    assert_eq!(b["fromguid"], p.guid(&p.ds("src@a")).to_string());

    // Compound (-R) with a child dataset.
    cmd("zfs", &["create", &p.ds("src/child")]);
    fill_tree(&p.path("src/child"), 2);
    cmd("zfs", &["snapshot", "-r", &p.ds("src@c")]);
    cmd("zfs", &["create", &p.ds("copy")]);
    through_hash(
        &format!("-R {}@c", p.ds("src")),
        &w("c.json"),
        &format!("-d {}", p.ds("copy")),
    );
    assert_same_tree(&p.path("src"), &p.path("copy/src"));
    let c = json(&work.join("c.json"));
    assert_eq!(c["compound"], true);
    let subs = c["substreams"].as_array().unwrap();
    let names: Vec<&str> = subs.iter().map(|s| s["toname"].as_str().unwrap()).collect();
    for snap in ["src@a", "src@b", "src@c", "src/child@c"] {
        assert!(
            names.contains(&p.ds(snap).as_str()),
            "{snap} missing from {names:?}"
        );
    }
    for s in subs {
        assert_eq!(
            s["toguid"],
            p.guid(s["toname"].as_str().unwrap()).to_string(),
            "{s}"
        );
    }

    // Restore side: the sidecar written on the way out checks a stored copy on the way back in.
    let stored = work.join("a.zfs");
    sh(&format!(
        "zfs send {}@a > {}",
        p.ds("src"),
        stored.display()
    ))
    .expect_code(0);
    sh(&format!(
        "{hash} --check {d} < {s} | zfs receive {dst}",
        d = w("a.sha256"),
        s = stored.display(),
        dst = p.ds("restored")
    ))
    .expect_code(0);
    // zfs-fuse has no .zfs directory: a clone shows the snapshot's files.
    cmd("zfs", &["clone", &p.ds("src@a"), &p.ds("a-clone")]);
    assert_same_tree(&p.path("a-clone"), &p.path("restored"));

    damaged_streams_exit_3(hash, &std::fs::read(&stored).unwrap(), &p);
}

/// The scenario the OpenZFS guest runs too (tests/tests/guest_streams.rs): full, -i, -I and -R streams through
/// zstream-hash into zfs receive, compared, their guids checked, refused damaged.
#[test]
fn common_send_forms_on_zfs_fuse() {
    let streams = common_forms(&Local::start());
    assert_eq!(streams.len(), 4);
}

/// A stream cut anywhere or with any one byte flipped exits 3, and so does --check on it.
fn damaged_streams_exit_3(hash: &str, stream: &[u8], p: &Pool) {
    refuses_damage("zfs-fuse full", stream, &["--zfs"], 2026);
    let hash = Path::new(hash);
    let mut g = Gen::new(2027);
    let n = stream.len();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(stream));
    for _ in 0..8 {
        let mut d = stream.to_vec();
        d[g.below(n as u64) as usize] ^= 1 << (g.below(8) as u8);
        run(hash, &["--check", &digest, "-q"], &d).expect_code(3);
    }
    // The damage is real: zfs receive refuses one such stream too.
    let mut d = stream.to_vec();
    d[n / 2] ^= 1;
    let f = p.dir.join("work/damaged.zfs");
    std::fs::write(&f, &d).unwrap();
    assert_ne!(
        sh(&format!("zfs receive {} < {}", p.ds("never"), f.display())).code(),
        Some(0)
    );
}
