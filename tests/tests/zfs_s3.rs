//! The whole pipe into S3 (moto) with DEEP_ARCHIVE and back, against real ZFS:
//!   zfs send | zstream-hash -o | zstream-seal | zstream-par | zstream-ship put --storage-class DEEP_ARCHIVE s3://
//!   zstream-ship get s3://         -> exit 75, restore requested
//!   zstream-ship get --wait s3:// | zstream-par -d | zstream-seal -d | zstream-hash --check | zfs receive

use zstream_tests::bins::{filters, keygen};
use zstream_tests::data::Gen;
use zstream_tests::moto::Moto;
use zstream_tests::proc::sh_env;
use zstream_tests::zfs::{assert_same_tree, cmd, fill_tree, Zfs};

#[test]
fn snapshots_go_to_deep_archive_and_come_back_after_a_restore() {
    let z = Zfs::start();
    let p = z.pool(512);
    let moto = Moto::start();
    moto.bucket("offsite");
    let env = moto.env();
    let [hash, seal, par, ship] = filters();
    let w = p.dir.join("work");
    std::fs::create_dir_all(&w).unwrap();
    let f = |name: &str| w.join(name).to_str().unwrap().to_string();
    let keys = keygen(&w, &["a.key", "b.key"]);
    let keys = format!("--key-file {} --key-file {}", keys[0], keys[1]);

    cmd("zfs", &["create", &p.ds("src")]);
    fill_tree(&p.path("src"), 41);
    cmd("zfs", &["snapshot", &p.ds("src@full")]);
    std::fs::write(p.path("src/later.bin"), Gen::bytes(42, 3 << 20)).unwrap();
    cmd("zfs", &["snapshot", &p.ds("src@incr")]);
    for (name, send) in [
        ("full", format!("{}@full", p.ds("src"))),
        ("incr", format!("-i @full {}@incr", p.ds("src"))),
    ] {
        sh_env(
            &format!(
                "zfs send {send} | {hash} --zfs -o {d} | {seal} {keys} | {par} \
                 | {ship} put --part-size 5MiB --storage-class DEEP_ARCHIVE s3://offsite/pool/src/{name}",
                d = f(&format!("{name}.sha256")),
            ),
            &env,
        )
        .expect_code(0);
    }

    // Restores stay "ongoing" for 2 s once asked for (counted past the objects' first 2 s; see Moto).
    moto.slow_restores(2);
    moto.wait_older_than("s3://offsite/pool/", 2);
    for name in ["full", "incr"] {
        let r = sh_env(
            &format!("{ship} get s3://offsite/pool/src/{name} > /dev/null"),
            &env,
        );
        r.expect_code(75);
        assert!(r.stderr().contains("restore requested"), "{}", r.describe());
    }
    for (name, recv) in [("full", ""), ("incr", "-F")] {
        let r = sh_env(
            &format!(
                "{ship} get --wait s3://offsite/pool/src/{name} | {par} -d | {seal} -d {keys} \
                 | {hash} --check {d} -q | zfs receive {recv} {dst}",
                d = f(&format!("{name}.sha256")),
                dst = p.ds("restored")
            ),
            &env,
        );
        r.expect_code(0);
        // The first waits; the second's restore may be done by the time it asks (the two run in parallel).
        assert!(
            name == "incr" || r.stderr().contains("restore under way"),
            "{}",
            r.describe()
        );
    }
    assert_same_tree(&p.path("src"), &p.path("restored"));
}
