//! The backup cycle end to end (scripts/zstream-backup, zstream-restore, zstream-verify) on real ZFS, against a
//! directory and against S3 (moto) with DEEP_ARCHIVE, with a fake clock (ZSTREAM_NOW): 70 days of daily backups
//! of a changing dataset, fulls at the cycle boundaries, pruning, restores of several points compared file by file;
//! and every guard: a shrunken full, an early deletion, each stage killed midway, a missing link, one key of two,
//! two runs at once, a base snapshot deleted at the source.

use zstream_tests::cycle::{day, Site};
use zstream_tests::moto::Moto;
use zstream_tests::proc::Run;
use zstream_tests::zfs::{assert_same_tree, cmd, Pool, Zfs};

fn dir_store(p: &Pool) -> String {
    format!("file://{}", p.dir.join("store").display())
}

fn kinds(site: &Site) -> Vec<(String, String)> {
    site.records()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["cycle"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[track_caller]
fn ok(r: &Run) -> &Run {
    r.expect_code(0)
}

/// 70 days: fulls on days 0, 30 and 60, incrementals between, the first cycle pruned after the third full.
/// Returns the copies of the tree kept at the days to restore.
fn seventy_days(
    site: &Site,
    restore_days: &[u64],
    on_prune: impl Fn(&Site, u64, &Run),
) -> Vec<(u64, std::path::PathBuf)> {
    let mut copies = Vec::new();
    for d in 0..70 {
        site.change(d);
        let r = site.backup(&day(d), &["--json"]);
        if d == 60 {
            on_prune(site, d, &r);
        } else {
            ok(&r);
        }
        let out: serde_json::Value = serde_json::from_slice(r.stdout()).expect("backup --json");
        let kind = out["record"]["kind"].as_str().unwrap_or_default();
        assert_eq!(
            kind,
            if d % 30 == 0 { "full" } else { "incremental" },
            "day {d}: {}",
            r.describe()
        );
        if restore_days.contains(&d) {
            copies.push((d, site.keep_copy(&format!("day{d}"))));
        }
    }
    for r in site.records() {
        assert_record_shape(&r);
    }
    let k = kinds(site);
    assert_eq!(
        k.len(),
        40,
        "days 30 to 69 stay, the first cycle is pruned: {k:?}"
    );
    assert_eq!(
        k.iter().filter(|(kind, _)| kind == "full").count(),
        2,
        "{k:?}"
    );
    assert_eq!(site.objects().len(), 40, "one object a record");
    copies
}

fn restore_and_compare(site: &Site, copies: &[(u64, std::path::PathBuf)], extra: &[&str]) {
    let records = site.records();
    for (d, copy) in copies {
        let snap = records
            .iter()
            .find(|r| r["time"] == day(*d).as_str())
            .unwrap_or_else(|| panic!("no record of day {d}"))["snapshot"]
            .as_str()
            .unwrap()
            .to_string();
        let target = format!("r{d}");
        let r = site.restore(&day(70), &format!("src@{snap}"), &target, extra);
        ok(&r);
        assert_same_tree(copy, &site.pool.path(&target));
    }
}

#[test]
fn seventy_days_into_a_directory() {
    let z = Zfs::start();
    let p = z.pool(512);
    let site = Site::new(&p, dir_store(&p), Vec::new());
    let copies = seventy_days(&site, &[31, 45, 59, 69], |_, _, r| {
        ok(r);
        assert!(r.stderr().contains("prune: cycle"), "{}", r.describe());
    });
    restore_and_compare(&site, &copies, &[]);
    // Only the newest snapshot is held for this store.
    let newest = site.records().last().unwrap()["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    for line in cmd(
        "zfs",
        &[
            "get",
            "-H",
            "-p",
            "-o",
            "name,value",
            "-r",
            "userrefs",
            &site.dataset,
        ],
    )
    .lines()
    {
        let (name, refs) = line.split_once('\t').unwrap();
        if name.contains('@') {
            let want = if name.ends_with(&format!("@{newest}")) {
                "1"
            } else {
                "0"
            };
            assert_eq!(refs, want, "holds on {name}");
        }
    }
    site.drill(&day(70), 3);
}

#[test]
fn seventy_days_into_deep_archive() {
    let z = Zfs::start();
    let p = z.pool(512);
    let moto = Moto::start();
    moto.bucket("offsite");
    let mut site = Site::new(&p, "s3://offsite/site".into(), moto.env());
    site.backup_opts = ["--storage-class", "DEEP_ARCHIVE", "--part-size", "5MiB"]
        .map(String::from)
        .to_vec();
    let copies = seventy_days(&site, &[45, 69], |site, d, r| {
        // The first cycle is 31 to 60 days old: DEEP_ARCHIVE bills 180 days, so it waits (not a failure: the run
        // exits 0), saying until when and what deleting it now would cost.
        ok(r);
        assert!(
            r.stderr().contains(": wait: ") && r.stderr().contains("minimum billed duration"),
            "{}",
            r.describe()
        );
        assert!(
            r.stderr().contains("early-deletion charges"),
            "{}",
            r.describe()
        );
        assert_eq!(
            kinds(site).len(),
            61,
            "nothing deleted, the new full recorded"
        );
        let dry = site.backup(
            &day(d),
            &["--prune-only", "--allow-early-delete", "--dry-run"],
        );
        ok(&dry);
        assert!(
            dry.stderr().contains("dry-run: would run: zstream-ship rm"),
            "{}",
            dry.describe()
        );
        assert_eq!(kinds(site).len(), 61, "a dry run deletes nothing");
        ok(&site.backup(&day(d), &["--prune-only", "--allow-early-delete"]));
    });
    // A drill's samples of archived objects: their restores are asked for and the run exits 75 (nothing read yet);
    // with --wait they are read back whole.
    let v = site.script(
        "zstream-verify",
        &day(70),
        &["--sample", "2", "--keys", &site.both_keys(), &site.dest],
    );
    v.expect_code(75);
    assert!(
        v.stderr().contains("wait on archive restores"),
        "{}",
        v.describe()
    );
    let v = site.script(
        "zstream-verify",
        &day(70),
        &[
            "--sample",
            "2",
            "--wait",
            "--keys",
            &site.both_keys(),
            &site.dest,
        ],
    );
    ok(&v);
    assert!(
        String::from_utf8_lossy(v.stdout())
            .matches("ok, read back")
            .count()
            >= 2,
        "{}",
        v.describe()
    );
    // Restores of archived links: the first run asks for every restore and exits 75; --wait then receives.
    let r = site.restore(&day(70), "src", "first", &[]);
    r.expect_code(75);
    assert!(r.stderr().contains("archived links"), "{}", r.describe());
    restore_and_compare(&site, &copies, &["--wait"]);
    // Records are readable at once, whatever class the streams are in.
    let r = site.ship(&["ls", "--json", "s3://offsite/site/catalog/"]);
    ok(&r);
    let listed = String::from_utf8_lossy(r.stdout()).to_string();
    assert_eq!(listed.lines().count(), 40, "{listed}");
    assert!(
        listed
            .lines()
            .all(|l| l.contains(r#""storage_class":"STANDARD""#)),
        "{listed}"
    );
}

/// The guards, on a directory: a shrunken full, killed stages, a missing link, one key, two runs, a lost base.
#[test]
fn guards() {
    let z = Zfs::start();
    let p = z.pool(512);
    let site = Site::new(&p, dir_store(&p), Vec::new());
    let big = site.pool.path("src/big.bin");
    std::fs::write(&big, zstream_tests::data::Gen::bytes(7, 12 << 20)).unwrap();
    for d in 0..3 {
        site.change(d);
        ok(&site.backup(&day(d), &[]));
    }
    ok(&site.backup(&day(3), &["--full"]));

    // Each of the five stages killed midway, and the run killed between its put and its record: no record, and
    // the next run cleans up and succeeds.
    for (n, (stage, after_put)) in [
        ("zfs", false),
        ("zstream-hash", false),
        ("zstream-seal", false),
        ("zstream-par", false),
        ("zstream-ship", false),
        ("zstream-ship", true),
    ]
    .into_iter()
    .enumerate()
    {
        let d = 4 + 2 * n as u64;
        let before = site.records().len();
        site.change(d);
        // Enough new data that every stage is killed with the stream under way.
        std::fs::write(
            site.pool.path("src/churn.bin"),
            zstream_tests::data::Gen::bytes(d, 8 << 20),
        )
        .unwrap();
        site.kill_stage(stage, after_put);
        let r = site.backup(&day(d), &[]);
        assert!(
            r.code() != Some(0),
            "{stage}: a killed stage must fail the run: {}",
            r.describe()
        );
        site.heal();
        assert_eq!(
            site.records().len(),
            before,
            "{stage}: a failed run wrote a record"
        );
        let next = site.backup(&day(d + 1), &[]);
        ok(&next);
        assert_eq!(site.records().len(), before + 1, "{stage}: the next run");
        assert_eq!(
            site.objects().len(),
            before + 1,
            "{stage}: an object without a record stayed: {}",
            next.describe()
        );
        let store = p.dir.join("store");
        let partials = walk(&store)
            .into_iter()
            .filter(|f| f.contains("zstream-partial"))
            .count();
        assert_eq!(partials, 0, "{stage}: an unfinished upload stayed");
        ok(&site.script(
            "zstream-verify",
            &day(d + 1),
            &["--keys", &site.both_keys(), &site.dest],
        ));
    }

    // A full that shrank: while a kept cycle still has a full as large as the largest, older cycles go as usual.
    // Once the large fulls would all go (a second small full), pruning holds, says why and how to accept it, and
    // verify reports it, until the user accepts the shrink by name; the acceptance is recorded for good.
    let cycles = |s: &Site| {
        let mut c: Vec<String> = kinds(s).into_iter().map(|(_, c)| c).collect();
        c.dedup();
        c.len()
    };
    std::fs::remove_file(&big).unwrap();
    let r = site.backup(&day(20), &["--full"]);
    ok(&r);
    assert!(!r.stderr().contains("prune held"), "{}", r.describe());
    assert_eq!(
        cycles(&site),
        2,
        "the first cycle went: the cycle of day 3 keeps a large full"
    );
    let r = site.backup(&day(21), &["--full"]);
    ok(&r);
    assert!(
        r.stderr().contains("prune held") && r.stderr().contains("less than 0.9"),
        "{}",
        r.describe()
    );
    let shrunk = site.records().last().unwrap()["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        r.stderr().contains(&format!("--accept-shrink {shrunk}")),
        "{}",
        r.describe()
    );
    assert_eq!(cycles(&site), 3, "nothing deleted while held");
    let v = site.script(
        "zstream-verify",
        &day(21),
        &["--keys", &site.both_keys(), &site.dest],
    );
    v.expect_code(3);
    assert!(
        String::from_utf8_lossy(v.stdout()).contains("prune held"),
        "{}",
        v.describe()
    );
    ok(&site.backup(&day(21), &["--prune-only", "--accept-shrink", &shrunk]));
    assert_eq!(cycles(&site), 2);
    assert!(
        site.entries()
            .iter()
            .any(|(n, _)| n.ends_with(&format!("@{shrunk}.accept-shrink"))),
        "the acceptance is recorded"
    );
    ok(&site.script(
        "zstream-verify",
        &day(21),
        &["--keys", &site.both_keys(), &site.dest],
    ));

    // Incrementals on the shrunken full, then the middle one's object lost: restore refuses, naming it.
    for d in 22..24 {
        site.change(d);
        ok(&site.backup(&day(d), &[]));
    }
    let recs = site.records();
    let middle = &recs[recs.len() - 2];
    let snap = middle["snapshot"].as_str().unwrap();
    ok(&site.ship(&["rm", &site.object_of(middle)]));
    let r = site.restore(&day(24), "src", "broken", &[]);
    r.expect_code(3);
    assert!(
        r.stderr().contains(snap) && r.stderr().contains("no such object"),
        "{}",
        r.describe()
    );
    let v = site.script(
        "zstream-verify",
        &day(24),
        &["--keys", &site.both_keys(), &site.dest],
    );
    v.expect_code(3);
    assert!(
        String::from_utf8_lossy(v.stdout()).contains("no such object"),
        "{}",
        v.describe()
    );
    // ... and its record too: the chain is broken there.
    ok(&site.ship(&[
        "rm",
        &format!("{}/catalog/{}@{snap}.json", site.dest, site.dataset),
    ]));
    let r = site.restore(&day(24), "src", "broken", &[]);
    r.expect_code(3);
    assert!(
        r.stderr().contains("is broken") && r.stderr().contains(snap),
        "{}",
        r.describe()
    );
    // The point before the gap still restores; one key of the two does not.
    let before_gap = recs[recs.len() - 3]["snapshot"].as_str().unwrap();
    ok(&site.restore(&day(24), &format!("src@{before_gap}"), "whole", &[]));
    let one = site.script(
        "zstream-restore",
        &day(24),
        &[
            "--keys",
            &site.keys[0],
            &site.dest,
            &format!("{}@{before_gap}", site.dataset),
            &p.ds("onekey"),
        ],
    );
    // With one key of two, no record holds its signature: nothing is restored, and it says why.
    one.expect_code(3);
    assert!(
        one.stderr().contains("are these the keys"),
        "{}",
        one.describe()
    );

    // The broken chain makes the next run a full, saying why.
    site.change(24);
    let r = site.backup(&day(24), &[]);
    ok(&r);
    assert!(
        r.stderr()
            .contains("full: the chain to the newest backup is broken"),
        "{}",
        r.describe()
    );

    // A base snapshot deleted at the source (once its hold is released) makes the next run a full, saying why.
    let newest = site.records().last().unwrap()["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}@{newest}", site.dataset);
    assert!(
        std::process::Command::new("zfs")
            .args(["destroy", &base])
            .status()
            .is_ok_and(|s| !s.success()),
        "the hold keeps the base from being destroyed"
    );
    for line in cmd("zfs", &["get", "-H", "-o", "value", "userrefs", &base]).lines() {
        assert_eq!(line, "1");
    }
    let tag = zstream_tests::cycle::hold_tag(&site.dest);
    cmd("zfs", &["release", &tag, &base]);
    cmd("zfs", &["destroy", &base]);
    site.change(25);
    let r = site.backup(&day(25), &[]);
    ok(&r);
    assert!(
        r.stderr().contains("gone at the source"),
        "{}",
        r.describe()
    );
    assert_eq!(site.records().last().unwrap()["kind"], "full");

    // Two runs at once: the second exits 75 at once, naming the holder.
    site.wrap(
        "zfs",
        &format!(
            "if [ \"$1\" = send ]; then sleep 3; fi\nexec {} \"$@\"\n",
            Site::real_zfs()
        ),
    );
    let first = std::thread::scope(|s| {
        let h = s.spawn(|| site.backup(&day(26), &[]));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let second = site.backup(&day(26), &[]);
        second.expect_code(75);
        assert!(
            second.stderr().contains("locked by") && second.stderr().contains("zstream-backup"),
            "{}",
            second.describe()
        );
        h.join().unwrap()
    });
    site.heal();
    ok(&first);

    // A dry run reads the catalog and the source, prints what it would do, and changes nothing.
    site.change(27);
    let before = site.records().len();
    let dry = site.backup(&day(27), &["--dry-run"]);
    ok(&dry);
    assert!(
        dry.stderr().contains("dry-run: would take"),
        "{}",
        dry.describe()
    );
    assert!(
        dry.stderr().contains("| zstream-ship put --json"),
        "{}",
        dry.describe()
    );
    assert_eq!(site.records().len(), before);
    let snaps = cmd(
        "zfs",
        &[
            "list",
            "-H",
            "-o",
            "name",
            "-t",
            "snapshot",
            "-r",
            &site.dataset,
        ],
    );
    assert!(
        !snaps.contains("20270128T"),
        "a dry run took a snapshot: {snaps}"
    );

    // A restore that fails at a link stops there, naming it and the stage; run again, it skips what TARGET holds.
    for d in 27..30 {
        site.change(d);
        ok(&site.backup(&day(d), &[]));
    }
    let count = site.work.join("gets");
    site.wrap(
        "zstream-ship",
        &format!(
            "if [ \"$1\" = get ] && [[ $2 == *.zstream ]]; then echo >> {c}; \
             [ \"$(wc -l < {c})\" != 2 ] || {{ echo 'zstream-ship: connection reset' >&2; exit 1; }}; fi\n\
             exec {ship} \"$@\"\n",
            c = count.display(),
            ship = zstream_tests::bins::bin("zstream-ship").display()
        ),
    );
    let r = site.restore(&day(30), "src", "resumed", &[]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("FAILED: zstream-ship get exited 1"),
        "{}",
        r.describe()
    );
    site.heal();
    let r = site.restore(&day(30), "src", "resumed", &[]);
    ok(&r);
    assert!(r.stderr().contains("(1 already there)"), "{}", r.describe());
    assert_same_tree(&site.pool.path("src"), &site.pool.path("resumed"));
}

/// The hold tag of a store, as lib/cycle.sh makes it (zstream- and the first 12 hex digits of SHA-256(DEST)).
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Whether `r` has exactly the fields of the spec's example record (docs/formats/catalog-v2-example.json), of the
/// same JSON types; the base fields of a full are null.
#[track_caller]
fn assert_record_shape(r: &serde_json::Value) {
    fn shape(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
        use serde_json::Value::*;
        match (a, b) {
            (Object(a), Object(b)) => {
                let ka: Vec<_> = a.keys().collect();
                let kb: Vec<_> = b.keys().collect();
                assert_eq!(ka, kb, "fields of {at}");
                for (k, v) in a {
                    shape(v, &b[k], &format!("{at}.{k}"));
                }
            }
            (Array(a), Array(b)) => {
                for v in a {
                    shape(v, &b[0], &format!("{at}[]"));
                }
            }
            (Null, String(_)) if at == ".from_snapshot" || at == ".from_guid" => {}
            _ => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "the type of {at}: {a} against the example's {b}"
            ),
        }
    }
    let path = zstream_tests::cycle::scripts().join("../docs/formats/catalog-v2-example.json");
    let example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the example record")).expect("JSON");
    shape(r, &example, "");
    assert_eq!(r["from_guid"].is_null(), r["kind"] == "full", "{r}");
}

/// docs/RESTORE.md as written: every `sh` block in order in one bash, the `sh vars` block replaced by this test's
/// values and the `sh install` blocks skipped (they need the network; scripts/test installed what they do).
#[test]
fn the_runbook_restores_from_the_store_and_the_keys() {
    let z = Zfs::start();
    let p = z.pool(512);
    let moto = Moto::start();
    moto.bucket("offsite");
    let mut site = Site::new(&p, "s3://offsite/site".into(), moto.env());
    site.backup_opts = ["--storage-class", "DEEP_ARCHIVE"]
        .map(String::from)
        .to_vec();
    for d in 0..3 {
        site.change(d);
        ok(&site.backup(&day(d), &[]));
    }
    for r in site.records() {
        assert_record_shape(&r);
    }
    let runbook =
        std::fs::read_to_string(zstream_tests::cycle::scripts().join("../docs/RESTORE.md"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in runbook.lines() {
        match (&mut cur, line.strip_prefix("```")) {
            (None, Some(info)) => cur = Some((info.to_string(), String::new())),
            (Some(_), Some("")) => blocks.push(cur.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    let kinds: Vec<&str> = blocks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "sh vars").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "sh install").count(),
        2,
        "{kinds:?}"
    );
    assert!(
        kinds.iter().filter(|k| **k == "sh").count() >= 6,
        "{kinds:?}"
    );
    let pool = format!("{}r", p.name);
    let vdev = p.dir.join("restore.img");
    let bins = zstream_tests::bins::bin("zstream-ship")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let env: String = moto
        .env()
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect();
    let vars = format!(
        "{env}STORE=s3://offsite/site\nCATALOG=\nDATASET={ds}\nKEYS={keys}\nPASSPHRASES=()\nPOOL={pool}\n\
         truncate -s 512M {vdev}\nDISKS={vdev}\nTIER=Standard\nexport ZSTREAM_SRC={src}\nexport ZSTREAM_BIN={bins}\n",
        ds = site.dataset,
        keys = site.both_keys(),
        vdev = vdev.display(),
        src = zstream_tests::cycle::scripts().parent().unwrap().display(),
    );
    let script: String = blocks
        .iter()
        .filter_map(|(kind, body)| match kind.as_str() {
            "sh vars" => Some(vars.clone()),
            "sh" => Some(body.clone()),
            _ => None,
        })
        .collect();
    struct Destroy(String);
    impl Drop for Destroy {
        fn drop(&mut self) {
            for _ in 0..20 {
                let s = std::process::Command::new("zpool")
                    .args(["destroy", "-f", &self.0])
                    .status();
                if s.is_ok_and(|s| s.success())
                    || !std::process::Command::new("zpool")
                        .args(["list", &self.0])
                        .output()
                        .is_ok_and(|o| o.status.success())
                {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
    }
    let _guard = Destroy(pool.clone());
    // The runbook is followed the day after the last backup, by the fake clock the backups were dated by: at the
    // machine's own clock (earlier) the newest record would be dated after it, which verify reports.
    let r = zstream_tests::proc::sh_env(
        &script,
        &[
            (
                "ZSTREAM_LOCK_DIR".into(),
                site.work.join("locks").display().to_string(),
            ),
            ("ZSTREAM_NOW".into(), day(3)),
        ],
    );
    ok(&r);
    let stderr = r.stderr();
    assert!(stderr.contains("healthy"), "{}", r.describe());
    assert!(
        stderr.contains("dry-run: would run: zstream-ship get"),
        "{}",
        r.describe()
    );
    assert!(stderr.contains("OK: "), "{}", r.describe());
    let mnt = cmd(
        "zfs",
        &[
            "get",
            "-H",
            "-o",
            "value",
            "mountpoint",
            &format!("{pool}/src"),
        ],
    );
    assert_same_tree(&site.pool.path("src"), std::path::Path::new(mnt.trim()));
}

/// A Glacier vault (the tests' vault endpoint: moto has no Glacier multipart upload) with its catalog in a
/// directory: backups, a restore through retrieval jobs (75, then --wait), and verify against the inventory.
#[test]
fn a_vault_with_its_catalog_elsewhere() {
    let z = Zfs::start();
    let p = z.pool(512);
    let vault = zstream_tests::vault::Vault::start(&["offsite"], 0.5);
    let mut site = Site::new(
        &p,
        "glacier://offsite".into(),
        Moto::env_for(&vault.endpoint()),
    );
    let r = site.backup(&day(0), &[]);
    r.expect_code(2);
    assert!(r.stderr().contains("--catalog"), "{}", r.describe());
    site.catalog = format!("file://{}", p.dir.join("catalog").display());
    let catalog = ["--catalog".to_string(), site.catalog.clone()];
    site.backup_opts = catalog.to_vec();
    for d in 0..3 {
        site.change(d);
        ok(&site.backup(&day(d), &[]));
    }
    let recs = site.records();
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_record_shape(r);
        assert!(site.object_of(r).starts_with("glacier://offsite/"), "{r}");
        assert!(
            r["object"]["checksum"]
                .as_str()
                .unwrap()
                .starts_with("sha256-tree:"),
            "{r}"
        );
        assert_eq!(r["object"]["storage_class"], "GLACIER_VAULT");
    }
    let opts = ["--catalog", site.catalog.as_str()];
    let r = site.restore(&day(3), "src", "back", &opts);
    r.expect_code(75);
    let r = site.restore(&day(3), "src", "back", &[&opts[..], &["--wait"]].concat());
    ok(&r);
    assert_same_tree(&site.pool.path("src"), &site.pool.path("back"));
    let v = site.script(
        "zstream-verify",
        &day(3),
        &[
            "--wait",
            "--keys",
            &site.both_keys(),
            "--catalog",
            &site.catalog,
            &site.dest,
        ],
    );
    ok(&v);
    assert_eq!(
        String::from_utf8_lossy(v.stdout()).lines().count(),
        3,
        "{}",
        v.describe()
    );
}

/// The cycle's scenarios that also run in the OpenZFS guest (tests/tests/guest_cycle.rs), here on zfs-fuse.
#[test]
fn the_guest_tier_s_cycle_on_zfs_fuse() {
    use zstream_tests::host::{Host, Local};
    let local = Local::start();
    let p = local.pool(512);
    let site = Site::new(&p, format!("file://{}/store", p.dir), Vec::new());
    zstream_tests::scenarios::cycle(&site, zstream_tests::scenarios::ZFS_FUSE);
}

/// `--no-hold` on zfs-fuse, which has no bookmarks: no hold is kept, the run says there is no bookmark either, and
/// once a snapshot manager destroys the base the next backup is a full that says why. (The guest's
/// an_incremental_from_the_store_s_bookmark_once_the_snapshot_is_gone is the same on OpenZFS, where the bookmark
/// makes it an incremental.)
#[test]
fn no_hold_without_bookmarks_on_zfs_fuse() {
    use zstream_tests::host::{Host, Local};
    use zstream_tests::scenarios::{held, ok, said, snap};
    let local = Local::start();
    let p = local.pool(256);
    let site = Site::new(&p, format!("file://{}/store", p.dir), Vec::new());
    site.change(0);
    let r = site.backup(&day(0), &["--no-hold"]);
    ok(&r);
    assert_eq!(said(&r, "no bookmarks here"), 1, "{}", r.describe());
    assert!(
        r.stderr().contains("nothing keeps it there"),
        "{}",
        r.describe()
    );
    assert!(held(&site).is_empty(), "--no-hold holds nothing");
    let base = snap(&site.records()[0]);
    local.ok(&format!("zfs destroy {}@{base}", site.dataset));
    site.change(1);
    let r = site.backup(&day(1), &["--no-hold", "--json"]);
    ok(&r);
    let out: serde_json::Value = serde_json::from_slice(r.stdout()).expect("backup --json");
    assert_eq!(out["record"]["kind"], "full", "{}", r.describe());
    assert!(
        r.stderr().contains("gone at the source"),
        "{}",
        r.describe()
    );
}

/// A dataset with children: its backup holds it alone (each dataset is its own chain), and every run says so.
#[test]
fn children_are_said_to_be_left_out() {
    use zstream_tests::host::{Host, Local};
    let local = Local::start();
    let p = local.pool(256);
    let site = Site::new(&p, format!("file://{}/store", p.dir), Vec::new());
    site.change(0);
    let r = site.backup(&day(0), &[]);
    r.expect_code(0);
    assert!(!r.stderr().contains("child dataset"), "{}", r.describe());
    local.ok(&format!("zfs create {}/sub", site.dataset));
    site.change(1);
    let r = site.backup(&day(1), &[]);
    r.expect_code(0);
    assert!(
        r.stderr()
            .contains("its 1 child dataset(s) are not in this backup"),
        "{}",
        r.describe()
    );
}

/// `--recursive` on zfs-fuse (tests/src/scenarios.rs; the guest runs the same).
#[test]
fn a_tree_is_backed_up_and_restored_with_recursive() {
    use zstream_tests::host::{Host, Local};
    let local = Local::start();
    let p = local.pool(256);
    let site = Site::new(&p, format!("file://{}/store", p.dir), Vec::new());
    zstream_tests::scenarios::tree(&site);
}
