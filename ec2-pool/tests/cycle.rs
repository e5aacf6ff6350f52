//! The backup cycle (scripts/zstream-backup, -restore, -verify) into an ec2-pool, on the same real parts as
//! tests/pool.rs: daily backups with the fake clock continue one chain in the pool, pruning destroys what is older
//! than the window, restores of two points (and a restore that continues a dataset) compare file by file, a stage
//! killed midway commits nothing, and the instance is down after every run.

use serde_json::Value;
use zstream_tests::cycle::{day, hold_tag, Site};
use zstream_tests::ec2::PoolSite;
use zstream_tests::zfs::{assert_same_tree, cmd, Zfs};

fn snapshots(site: &PoolSite, dataset: &str) -> Vec<String> {
    let r = site.run(&["snapshots", &site.name, dataset]);
    r.expect_code(0);
    String::from_utf8_lossy(r.stdout())
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["snapshot"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn stopped(site: &PoolSite) -> bool {
    site.status()["instance"]["state"] == "stopped"
}

fn snap(d: u64) -> String {
    format!("zstream-{}", day(d).replace(['-', ':'], ""))
}

#[test]
fn the_cycle_into_a_pool() {
    let zfs = Zfs::start();
    let src = zfs.pool(512);
    let site = PoolSite::new("cyc");
    let cyc = Site::new(&src, format!("ec2-pool:{}", site.name), site.env());
    let keys = ["--key-file", &cyc.keys[0], "--key-file", &cyc.keys[1]];
    let reach = site.reachable();
    let mut create = vec![
        "create", &site.name, "--vdevs", "3", "--disks", "4", "--size", "1GiB",
    ];
    create.extend(reach.iter().map(String::as_str));
    create.extend(keys);
    site.run_with(&create, b"", &[]).expect_code(0);
    let window = ["--full-every", "2d", "--keep-cycles", "1"];

    // Six days: one chain, the snapshots older than 2 days pruned as it goes.
    let mut copies = vec![];
    for d in 0..6 {
        cyc.change(d);
        let r = cyc.backup(&day(d), &window);
        r.expect_code(0);
        let err = r.stderr();
        if d == 0 {
            assert!(
                err.contains("full: ") && err.contains("holds no snapshot"),
                "{err}"
            );
        } else {
            assert!(
                err.contains(&format!("incremental from {}", snap(d - 1))),
                "{err}"
            );
        }
        assert!(stopped(&site), "day {d}: the instance was left up");
        copies.push(cyc.keep_copy(&format!("day{d}")));
    }
    assert_eq!(
        snapshots(&site, &cyc.dataset),
        [3, 4, 5].map(snap),
        "pruned to the 2-day window"
    );
    // The hold moved with the chain: on the newest, off the one before.
    let refs = |d: u64| {
        cmd(
            "zfs",
            &[
                "get",
                "-H",
                "-o",
                "value",
                "userrefs",
                &format!("{}@{}", cyc.dataset, snap(d)),
            ],
        )
    };
    assert_eq!(refs(5).trim(), "1");
    assert_eq!(refs(4).trim(), "0");

    // A run whose zfs send dies midway commits nothing, and brings the pool down; the next run continues.
    std::fs::write(
        src.path("src").join("big.bin"),
        zstream_tests::data::Gen::bytes(9, 3 << 20),
    )
    .unwrap();
    cyc.kill_stage("zfs", false);
    let killed = cyc.backup(&day(6), &window);
    killed.expect_code(1);
    assert!(
        killed.stderr().contains("nothing committed"),
        "{}",
        killed.describe()
    );
    cyc.heal();
    assert!(stopped(&site));
    assert_eq!(snapshots(&site, &cyc.dataset).last().unwrap(), &snap(5));
    // Two datasets backed up into the pool at once: the second waits for the first to bring the pool down, so
    // neither stops the instance under the other's receive.
    let other = src.ds("other");
    cmd("zfs", &["create", &other]);
    std::fs::write(src.path("other").join("a"), b"another dataset").unwrap();
    let both = cyc.both_keys();
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| {
            cyc.script(
                "zstream-backup",
                &day(7),
                &["--keys", &both, &other, &cyc.dest],
            )
        });
        let y = s.spawn(|| cyc.backup(&day(7), &window));
        (x.join().unwrap(), y.join().unwrap())
    });
    x.expect_code(0);
    y.expect_code(0);
    assert!(
        x.stderr().contains("waiting for it") || y.stderr().contains("waiting for it"),
        "neither run waited: {}\n{}",
        x.describe(),
        y.describe()
    );
    assert!(stopped(&site));
    assert_eq!(snapshots(&site, &other).len(), 1);
    assert!(
        y.stderr()
            .contains(&format!("incremental from {}", snap(5))),
        "{}",
        y.describe()
    );
    let newest = cyc.keep_copy("day7");

    // Restores: the newest, and day 5 (the oldest left after pruning) into another dataset that then continues to
    // the newest.
    let keys = cyc.both_keys();
    cyc.script(
        "zstream-restore",
        &day(8),
        &["--keys", &keys, &cyc.dest, &cyc.dataset, &src.ds("r1")],
    )
    .expect_code(0);
    assert_same_tree(&newest, &src.path("r1"));
    assert_eq!(snapshots(&site, &cyc.dataset), [snap(5), snap(7)]);
    let at5 = format!("{}@{}", cyc.dataset, snap(5));
    cyc.script(
        "zstream-restore",
        &day(8),
        &["--keys", &keys, &cyc.dest, &at5, &src.ds("r2")],
    )
    .expect_code(0);
    assert_same_tree(&copies[5], &src.path("r2"));
    // r2 changed since its snapshot (read with atime on, and written): as from S3, the incremental is refused
    // until --force discards the change.
    std::fs::write(src.path("r2").join("mine"), b"written in the restored copy").unwrap();
    let refused = cyc.script(
        "zstream-restore",
        &day(8),
        &["--keys", &keys, &cyc.dest, &cyc.dataset, &src.ds("r2")],
    );
    refused.expect_code(1);
    assert!(
        refused
            .stderr()
            .contains("has changed since its newest snapshot")
            && refused.stderr().contains("give --force"),
        "{}",
        refused.describe()
    );
    let more = cyc.script(
        "zstream-restore",
        &day(8),
        &[
            "--keys",
            &keys,
            "--force",
            &cyc.dest,
            &cyc.dataset,
            &src.ds("r2"),
        ],
    );
    more.expect_code(0);
    assert!(
        more.stderr()
            .contains(&format!("incremental from @{}", snap(5))),
        "{}",
        more.describe()
    );
    assert_same_tree(&newest, &src.path("r2"));
    // One key of two opens nothing.
    let one = cyc.script(
        "zstream-restore",
        &day(8),
        &[
            "--keys",
            &cyc.keys[0],
            &cyc.dest,
            &cyc.dataset,
            &src.ds("r3"),
        ],
    );
    assert_ne!(one.code(), Some(0), "{}", one.describe());
    assert!(cmd("zfs", &["list", "-H", "-o", "name"])
        .lines()
        .all(|l| l != src.ds("r3")));
    assert!(stopped(&site));

    // Verify: healthy, and the scrub ec2-pool ran when 30 days had passed since the pool's creation (day 5 or 6
    // of the fake clock, at the end of that run's window) is reported; then the pool's newest snapshot gone at the
    // source makes it unhealthy (exit 3), and the next backup refuses to guess rather than destroy the pool's chain.
    let healthy = cyc.script("zstream-verify", &day(8), &[&cyc.dest, &cyc.dataset]);
    healthy.expect_code(0);
    assert!(
        healthy.stderr().contains("last scrub 2027-01-0") && healthy.stderr().contains("no errors"),
        "{}",
        healthy.describe()
    );
    let newest_snap = format!(
        "{}@{}",
        cyc.dataset,
        snapshots(&site, &cyc.dataset).last().unwrap()
    );
    cmd("zfs", &["release", &hold_tag(&cyc.dest), &newest_snap]);
    cmd("zfs", &["destroy", &newest_snap]);
    let v = cyc.script("zstream-verify", &day(8), &[&cyc.dest, &cyc.dataset]);
    v.expect_code(3);
    let b = cyc.backup(&day(9), &window);
    b.expect_code(1);
    assert!(b.stderr().contains("cannot continue"), "{}", b.describe());
    assert!(stopped(&site));
}
