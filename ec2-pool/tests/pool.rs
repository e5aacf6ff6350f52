//! ec2-pool end to end on real parts: moto's EC2 API, and an instance that is a script of the tests
//! (tests/ec2/instance.py) running every remote command with real ZFS (zfs-fuse) over files that are the attached
//! volumes at their EC2 sizes. zfs-fuse has no native encryption: a stand-in answers `load-key` and `unload-key`
//! only, checking the key it reads against the one `create` gave (see the README).

use ec2_pool::key::PoolKey;
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use zstream_tests::ec2::PoolSite;
use zstream_tests::faults::{Proxy, Schedule};
use zstream_tests::zfs::{assert_same_tree, cmd, fill_tree, Zfs};

fn state(site: &PoolSite) -> String {
    site.status()["instance"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sizes(site: &PoolSite) -> Vec<u64> {
    site.status()["vdevs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|d| d["size_gib"].as_u64().unwrap())
        })
        .collect()
}

/// The pool's size in bytes as `zpool list` says on the instance (brought up for it, then down).
fn pool_bytes(site: &PoolSite) -> u64 {
    site.run_keyed(&["up", &site.name], b"").expect_code(0);
    let s = site.status();
    site.run(&["down", &site.name]).expect_code(0);
    assert_eq!(s["pool"]["health"], "ONLINE", "{s}");
    s["pool"]["size_bytes"].as_u64().unwrap()
}

fn create(site: &PoolSite, extra: &[&str]) -> zstream_tests::proc::Run {
    let mut args = vec![
        "create", &site.name, "--vdevs", "3", "--disks", "4", "--size", "1GiB",
    ];
    args.extend_from_slice(extra);
    site.run_keyed(&args, b"")
}

/// Every place the key could leak to: what the instance saw (argv, environment), every file the instance and the
/// stand-ins wrote (the volumes' images aside), everything ec2-pool printed, and all that moto holds.
fn assert_key_nowhere(site: &PoolSite, printed: &[String]) {
    let keys: Vec<zstream_seal::key::Key> = site
        .keys
        .iter()
        .map(|k| zstream_seal::key::load(Path::new(k)).unwrap())
        .collect();
    let raw = PoolKey::derive(&site.name, &keys).unwrap();
    let mut needles: Vec<Vec<u8>> = vec![raw.raw().to_vec(), hex::encode(raw.raw()).into_bytes()];
    for k in &keys {
        needles.push(k.bytes().to_vec());
        needles.push(hex::encode(k.bytes()).into_bytes());
    }
    for k in &site.keys {
        // Each line of the key file's text (the first is a fixed title, not secret).
        for line in std::fs::read_to_string(k)
            .unwrap()
            .lines()
            .skip(1)
            .filter(|l| l.len() > 8)
        {
            needles.push(line.as_bytes().to_vec());
        }
    }
    let mut haystacks: Vec<(String, Vec<u8>)> =
        vec![("moto's state".into(), site.moto_state().into_bytes())];
    for (i, p) in printed.iter().enumerate() {
        haystacks.push((format!("ec2-pool's output #{i}"), p.clone().into_bytes()));
    }
    let mut files = vec![];
    walk(&site.state, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("record.jsonl")),
        "the instance recorded nothing"
    );
    for f in files {
        if f.starts_with(site.state.join("dev")) {
            continue;
        }
        haystacks.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    for (what, hay) in &haystacks {
        for n in &needles {
            assert!(
                !hay.windows(n.len()).any(|w| w == &n[..]),
                "key material found in {what}"
            );
        }
    }
    // And the key did reach the instance, on stdin.
    let rec = site.record();
    assert!(
        rec.iter()
            .any(|r| r["stand-in"] == "load-key took the right key on stdin"),
        "no load-key seen"
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn said(r: &zstream_tests::proc::Run) -> String {
    format!("{}{}", String::from_utf8_lossy(r.stdout()), r.stderr())
}

#[test]
fn a_pool_is_created_used_and_destroyed() {
    let zfs = Zfs::start();
    let site = PoolSite::new("life");
    let mut printed = vec![];

    // A dry run prints the calls and the remote commands and changes nothing.
    let dry = create(&site, &["--dry-run"]);
    dry.expect_code(0).expect_clean_stderr("ec2-pool");
    let out = dry.stderr();
    assert!(out.contains("would call RunInstances"), "{out}");
    assert_eq!(out.matches("would call CreateVolume").count(), 12, "{out}");
    assert!(
        out.contains("(creating the pool) (stdin: the pool's raw key)"),
        "{out}"
    );
    assert!(!out.contains(&site.name.repeat(2)));
    assert!(
        site.run(&["ls"]).stdout().is_empty(),
        "a dry run created something"
    );
    printed.push(said(&dry));

    // create: 3 vdevs of 4 volumes, and the pool left down.
    let made = create(&site, &[]);
    made.expect_code(0).expect_clean_stderr("ec2-pool");
    printed.push(said(&made));
    let s = site.status();
    assert_eq!(s["instance"]["state"], "stopped", "{s}");
    assert_eq!(s["layout"], "raidz1 3x4 gp3");
    assert_eq!(s["volumes"], 12);
    assert_eq!(sizes(&site), vec![1; 12]);
    assert!(
        s["pool"].is_null(),
        "a stopped instance has no pool to show: {s}"
    );
    let ls = site.run(&["ls"]);
    assert!(String::from_utf8_lossy(ls.stdout()).contains(&format!("{}\tstopped", site.name)));

    // up and down, twice: the pool imports, the key loads, and it all goes away again.
    for _ in 0..2 {
        let up = site.run_keyed(&["up", &site.name], b"");
        up.expect_code(0).expect_clean_stderr("ec2-pool");
        printed.push(said(&up));
        let s = site.status();
        assert_eq!(s["instance"]["state"], "running");
        assert_eq!(s["pool"]["health"], "ONLINE", "{s}");
        let down = site.run(&["down", &site.name]);
        down.expect_code(0);
        printed.push(said(&down));
        assert_eq!(state(&site), "stopped");
        assert!(
            cmd("zpool", &["list", "-H", "-o", "name"])
                .lines()
                .all(|l| l != site.name),
            "not exported"
        );
    }
    // A stopped instance cannot be reached.
    let r = zstream_tests::proc::sh(&format!("{} 127.0.0.1 true", site.ssh()));
    assert_eq!(r.code(), Some(255), "{}", r.describe());

    // receive: a full, then an incremental, each bringing the instance up and down again.
    let src = zfs.pool(256);
    cmd("zfs", &["create", &src.ds("fs")]);
    fill_tree(&src.path("fs"), 1);
    cmd("zfs", &["snapshot", &format!("{}@a", src.ds("fs"))]);
    let full = site.pipe_into(
        &format!("zfs send {}@a", src.ds("fs")),
        &["receive", &site.name, "tank/fs"],
    );
    full.expect_code(0);
    printed.push(said(&full));
    assert_eq!(state(&site), "stopped", "receive left the instance up");
    std::fs::write(src.path("fs").join("f1"), b"changed on tuesday").unwrap();
    std::fs::remove_file(src.path("fs").join("f2")).unwrap();
    cmd("zfs", &["snapshot", &format!("{}@b", src.ds("fs"))]);
    let incr = site.pipe_into(
        &format!("zfs send -i @a {}@b", src.ds("fs")),
        &["receive", &site.name, "tank/fs"],
    );
    incr.expect_code(0);
    printed.push(said(&incr));
    assert_eq!(state(&site), "stopped");
    site.run_keyed(&["up", &site.name], b"").expect_code(0);
    assert_same_tree(
        &src.path("fs"),
        &Path::new("/").join(&site.name).join("tank/fs"),
    );
    let snaps = cmd(
        "zfs",
        &[
            "list",
            "-H",
            "-t",
            "snapshot",
            "-o",
            "name",
            "-r",
            &format!("{}/tank/fs", site.name),
        ],
    );
    assert_eq!(snaps.lines().count(), 2, "{snaps}");
    site.run(&["down", &site.name]).expect_code(0);

    // One key of two: refused before anything starts.
    let one = site.run_with(&["up", &site.name, "--key-file", &site.keys[0]], b"", &[]);
    one.expect_code(2);
    assert!(
        one.stderr().contains("missing the key file with id"),
        "{}",
        one.describe()
    );
    assert_eq!(state(&site), "stopped");

    // A receive that fails midway (a cut stream) still brings the instance down, and says so.
    let cut = site.pipe_into(
        &format!("zfs send {}@b | head -c 300000", src.ds("fs")),
        &["receive", &site.name, "tank/other"],
    );
    assert_eq!(cut.code(), Some(1), "{}", cut.describe());
    assert!(
        cut.stderr().contains("the pool was brought down again"),
        "{}",
        cut.describe()
    );
    printed.push(said(&cut));
    assert_eq!(state(&site), "stopped");

    // A receive interrupted by a cron timeout (SIGTERM to its process group) brings the pool down before it dies
    // of the signal: the instance stops and the key leaves with its memory.
    let stream = std::process::Command::new("zfs")
        .args(["send", &format!("{}@b", src.ds("fs"))])
        .output()
        .unwrap()
        .stdout;
    let mut args: Vec<String> = vec!["receive".into(), site.name.clone(), "tank/slow".into()];
    args.extend(site.key_args());
    args.extend(site.common());
    let err = site.dir.path().join("interrupted.err");
    let mut child = std::process::Command::new(zstream_tests::bins::bin("ec2-pool"))
        .args(&args)
        .envs(site.moto.env())
        .process_group(0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(&stream[..stream.len() / 2]).unwrap();
    let t = std::time::Instant::now();
    while !site
        .record()
        .iter()
        .any(|r| r["shim"][0] == "zfs" && r["shim"][1] == "receive")
    {
        assert!(
            t.elapsed().as_secs() < 60,
            "the receive never started: {}",
            std::fs::read_to_string(&err).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    // The whole pipe got the signal: its upstream (zfs send) dies too, so the stream ends here.
    drop(input);
    let status = child.wait().unwrap();
    let told = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.signal(), Some(15), "{status}: {told}");
    assert!(
        told.contains("interrupted by SIGTERM; the pool was brought down"),
        "{told}"
    );
    assert_eq!(state(&site), "stopped");
    printed.push(told);

    // destroy: a dry run and a wrong --confirm change nothing; then nothing tagged is left.
    let dry = site.run(&["destroy", &site.name, "--confirm", &site.name, "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stderr().contains("would call TerminateInstances"),
        "{}",
        dry.describe()
    );
    assert_eq!(dry.stderr().matches("would call DeleteVolume").count(), 12);
    assert_eq!(state(&site), "stopped");
    site.run(&["destroy", &site.name, "--confirm", "another"])
        .expect_code(2);
    assert_eq!(sizes(&site).len(), 12);
    let gone = site.run(&["destroy", &site.name, "--confirm", &site.name]);
    gone.expect_code(0);
    printed.push(said(&gone));
    assert!(
        site.run(&["ls"]).stdout().is_empty(),
        "something tagged is left"
    );
    site.run(&["status", &site.name]).expect_code(1);

    assert_key_nowhere(&site, &printed);
}

#[test]
fn grow_keeps_the_pool_balanced_and_resumes() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("grow");
    create(&site, &[]).expect_code(0);
    let before = pool_bytes(&site);

    // A dry run prints twelve modifications and makes none.
    let dry = site.run(&["grow", &site.name, "--to", "2GiB", "--dry-run"]);
    dry.expect_code(0).expect_clean_stderr("ec2-pool");
    assert_eq!(
        dry.stderr().matches("would call ModifyVolume").count(),
        12,
        "{}",
        dry.describe()
    );
    assert_eq!(sizes(&site), vec![1; 12]);

    // Sizes only grow; sizes are whole GiB.
    site.run(&["grow", &site.name, "--to", "1GiB"])
        .expect_code(0);
    let shrink = site.run(&["grow", &site.name, "--to", "512MiB"]);
    shrink.expect_code(2);

    // Twice the size, killed after half the volumes were modified (the 7th ModifyVolume never answers), then run
    // again: the rerun finishes that grow whatever it is asked (and says so); every volume, then every device, and
    // the pool doubles.
    let proxy = Proxy::start(
        site.moto.port,
        Schedule {
            hold_after: Some(("Action=ModifyVolume", 6)),
            ..Default::default()
        },
    );
    let mut args: Vec<String> = ["grow", &site.name, "--to", "2GiB"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(site.common());
    args.push("--endpoint".into());
    args.push(proxy.endpoint());
    let mut child = std::process::Command::new(zstream_tests::bins::bin("ec2-pool"))
        .args(&args)
        .envs(site.moto.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(site.dir.path().join("grow.err")).unwrap())
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(site.dir.path().join("grow.err")).unwrap();
    let t = std::time::Instant::now();
    while proxy.count(|c| &c.held) == 0 {
        assert!(
            t.elapsed().as_secs() < 60,
            "grow never reached its 7th ModifyVolume: {}",
            said()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "grow ended before it was killed: {}",
            said()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let half = sizes(&site);
    assert_eq!(half.iter().filter(|&&s| s == 2).count(), 6, "{half:?}");
    assert_eq!(site.status()["balanced"], false);
    let resumed = site.run(&["grow", &site.name, "--by", "5GiB"]);
    resumed.expect_code(0).expect_clean_stderr("ec2-pool");
    assert!(
        resumed.stderr().contains("resuming the grow"),
        "{}",
        resumed.describe()
    );
    assert_eq!(sizes(&site), vec![2; 12]);
    assert_eq!(state(&site), "stopped", "grow left the instance up");
    let after = pool_bytes(&site);
    let ratio = after as f64 / before as f64;
    assert!(
        (1.9..2.1).contains(&ratio),
        "pool {before} -> {after} bytes"
    );

    // EBS's six-hour rule holds here too (moto keeps the modifications' times): refused, nothing changed, exit 75.
    let soon = site.run(&["grow", &site.name, "--by", "1GiB"]);
    soon.expect_code(75);
    assert!(
        soon.stderr().contains("cannot be modified until"),
        "{}",
        soon.describe()
    );
    assert_eq!(sizes(&site), vec![2; 12]);

    // A vdev more: four vdevs, unbalanced by design, said.
    let add = site.run(&["grow", &site.name, "--add-vdev"]);
    add.expect_code(0);
    assert!(add.stderr().contains("unbalances"), "{}", add.describe());
    assert_eq!(site.status()["layout"], "raidz1 4x4 gp3");
    let four = pool_bytes(&site);
    assert!(
        four > after * 5 / 4,
        "pool {after} -> {four} bytes with a fourth vdev"
    );

    site.run(&["destroy", &site.name, "--confirm", &site.name])
        .expect_code(0);
    assert!(site.run(&["ls"]).stdout().is_empty());
}

#[test]
fn cost_of_the_fields_example() {
    let r = zstream_tests::proc::run(
        &zstream_tests::bins::bin("ec2-pool"),
        &[
            "cost",
            "--vdevs",
            "5",
            "--disks",
            "8",
            "--size",
            "1GiB",
            "--hours-per-day",
            "1",
            "--json",
        ],
        b"",
    );
    r.expect_code(0);
    let v: Value = serde_json::from_slice(r.stdout()).unwrap();
    let total = v["monthly"]["total_usd"].as_f64().unwrap();
    assert!(
        (total - (3.20 + 0.64 + 0.0104 * 730.0 / 24.0)).abs() < 1e-6,
        "{v}"
    );
    let bad = zstream_tests::proc::run(
        &zstream_tests::bins::bin("ec2-pool"),
        &["cost", "--vdevs", "5", "--disks", "8", "--size", "1500MiB"],
        b"",
    );
    bad.expect_code(2).expect_clean_stderr("ec2-pool");
}
