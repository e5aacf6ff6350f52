//! ec2-pool end to end on real parts: moto's EC2 API behind a layer as strict as AWS (tests/ec2/strict-aws.py),
//! and an instance that is a script of the tests (tests/ec2/instance.py) running every remote command with real
//! ZFS (zfs-fuse) over files that are the attached volumes at the sizes the instance sees, reachable only as
//! AWS's security groups and ssh's host key checking allow. zfs-fuse has no native encryption: a stand-in answers
//! `load-key` and `unload-key` only, checking the key it reads against the one `create` gave (see the README).

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
    create_shaped(
        site,
        &["--vdevs", "3", "--disks", "4", "--size", "1GiB"],
        extra,
    )
}

fn create_shaped(site: &PoolSite, shape: &[&str], extra: &[&str]) -> zstream_tests::proc::Run {
    let reach = site.reachable();
    let mut args = vec!["create", &site.name];
    args.extend_from_slice(shape);
    args.extend(reach.iter().map(String::as_str));
    args.extend_from_slice(extra);
    site.run_keyed(&args, b"")
}

/// The datasets of the pool that are mounted on this machine's ZFS (the fake instance's).
fn mounted(site: &PoolSite) -> Vec<String> {
    cmd(
        "zfs",
        &["list", "-H", "-o", "name,mounted", "-r", &site.name],
    )
    .lines()
    .filter(|l| l.ends_with("\tyes"))
    .map(|l| l.split('\t').next().unwrap().to_string())
    .collect()
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
    assert!(out.contains("would call CreateSecurityGroup"), "{out}");
    assert!(
        out.contains("encrypted=true") && !out.contains("encrypted=false"),
        "every volume EBS-encrypted: {out}"
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
    // EBS encryption at rest, the data volumes and the root volume alike; the host key pinned; created for good.
    assert_eq!(s["ebs_encrypted"], true, "{s}");
    let root_encrypted = site.py(&format!(
        "print(all(v['Encrypted'] for v in e.describe_volumes(Filters=[{{'Name': 'attachment.instance-id', \
         'Values': ['{}']}}])['Volumes']))",
        site.instance_id()
    ));
    assert_eq!(root_encrypted.trim(), "True");
    assert!(
        s["instance"]["host_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")),
        "{s}"
    );
    assert_eq!(s["instance"]["creation"], "ready", "{s}");
    // A second create of the same pool changes nothing.
    create(&site, &[]).expect_code(2);

    // up and down, twice: the pool imports, the key loads, and it all goes away again. Nothing is mounted: a
    // mounted dataset would take the next incremental only with -F.
    for _ in 0..2 {
        let up = site.run_keyed(&["up", &site.name], b"");
        up.expect_code(0).expect_clean_stderr("ec2-pool");
        printed.push(said(&up));
        let s = site.status();
        assert_eq!(s["instance"]["state"], "running");
        assert_eq!(s["pool"]["health"], "ONLINE", "{s}");
        assert_eq!(mounted(&site), Vec::<String>::new(), "up mounted datasets");
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

    // receive: a full, then an incremental (as the README shows it: no --force), each bringing the instance up and
    // down again.
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
    site.run_keyed(&["up", &site.name, "--mount"], b"")
        .expect_code(0);
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
        .envs(site.aws_env())
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
    let groups = site.py(&format!(
        "print(len(e.describe_security_groups(Filters=[{{'Name': 'tag:zstream:pool', 'Values': ['{}']}}])\
         ['SecurityGroups']))",
        site.name
    ));
    assert_eq!(groups.trim(), "0", "the pool's security group is left");
    assert_eq!(site.live_instances().as_array().unwrap().len(), 0);

    assert_key_nowhere(&site, &printed);
}

/// ZSTREAM_NOW for ec2-pool: the strict layer's clock, which the test moves.
fn clock(site: &PoolSite) -> Vec<(String, String)> {
    let now = site.aws.state()["now"].as_str().unwrap().to_string();
    vec![("ZSTREAM_NOW".to_string(), now)]
}

fn grow(site: &PoolSite, args: &[&str]) -> zstream_tests::proc::Run {
    let mut all = vec!["grow", &site.name];
    all.extend_from_slice(args);
    site.run_with(&all, b"", &clock(site))
}

#[test]
fn grow_keeps_the_pool_balanced_within_ebs_limits() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("grow");
    create(&site, &[]).expect_code(0);
    // 12 MB that do not compress, in the pool's top dataset.
    site.run_keyed(&["up", &site.name, "--mount"], b"")
        .expect_code(0);
    std::fs::write(
        Path::new("/").join(&site.name).join("data"),
        zstream_tests::data::Gen::bytes(3, 12 << 20),
    )
    .unwrap();
    site.run(&["down", &site.name]).expect_code(0);
    let before = pool_bytes(&site);

    // A dry run prints twelve modifications and makes none.
    let dry = grow(&site, &["--to", "2GiB", "--dry-run"]);
    dry.expect_code(0).expect_clean_stderr("ec2-pool");
    assert_eq!(
        dry.stderr().matches("would call ModifyVolume").count(),
        12,
        "{}",
        dry.describe()
    );
    assert_eq!(sizes(&site), vec![1; 12]);
    // Sizes only grow; sizes are whole GiB.
    grow(&site, &["--to", "1GiB"]).expect_code(0);
    grow(&site, &["--to", "512MiB"]).expect_code(2);

    // The first grow of volumes never modified (AWS answers DescribeVolumesModifications for them with
    // InvalidVolumeModification.NotFound), by --keep-free, which brings the pool up to read its use: 12 MB of a
    // pool of about 9 GiB (8.6 to 9.1 as ZFS counts it) leaves less than 99.9% free, so every volume goes to
    // ceil(1 GiB x 12 MB / 9 MB) = 2 GiB, and the instance is down after.
    let first = grow(&site, &["--keep-free", "99.9"]);
    first.expect_code(0).expect_clean_stderr("ec2-pool");
    assert_eq!(sizes(&site), vec![2; 12], "{}", first.describe());
    assert_eq!(state(&site), "stopped", "grow left the instance up");

    // At once again: the modifications are still optimizing, and EBS starts none before they complete. Refused
    // before anything changes (exit 75), the instance down.
    let busy = grow(&site, &["--to", "4GiB"]);
    busy.expect_code(75);
    assert!(
        busy.stderr()
            .contains("only once its last one has completed")
            && busy.stderr().contains("optimizing"),
        "{}",
        busy.describe()
    );
    assert_eq!(sizes(&site), vec![2; 12]);
    assert_eq!(state(&site), "stopped");

    // Two hours on (an hour of optimizing is over), twice the size, killed after half the volumes were modified
    // (the 7th ModifyVolume never answers), then run again: the rerun finishes that grow whatever it is asked (and
    // says so); every volume, then every device.
    site.aws.advance(2 * 3600);
    let proxy = Proxy::start(
        site.aws.port,
        Schedule {
            hold_after: Some(("Action=ModifyVolume", 6)),
            ..Default::default()
        },
    );
    let mut args: Vec<String> = ["grow", &site.name, "--to", "6GiB"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(site.common());
    args.push("--endpoint".into());
    args.push(proxy.endpoint());
    let mut child = std::process::Command::new(zstream_tests::bins::bin("ec2-pool"))
        .args(&args)
        .envs(site.aws_env())
        .envs(clock(&site))
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
    assert_eq!(half.iter().filter(|&&s| s == 6).count(), 6, "{half:?}");
    assert_eq!(site.status()["balanced"], false);
    let resumed = grow(&site, &["--by", "5GiB"]);
    resumed.expect_code(0).expect_clean_stderr("ec2-pool");
    assert!(
        resumed.stderr().contains("resuming the grow"),
        "{}",
        resumed.describe()
    );
    assert_eq!(sizes(&site), vec![6; 12]);
    assert_eq!(state(&site), "stopped", "grow left the instance up");
    let after = pool_bytes(&site);
    let ratio = after as f64 / before as f64;
    assert!(
        (5.8..6.2).contains(&ratio),
        "pool {before} -> {after} bytes, volumes 1 -> 6 GiB"
    );

    // Four modifications of a volume in a rolling 24 hours: two more grows, two hours apart, then the fifth is
    // refused until the first is a day old, before anything changes.
    for to in ["7GiB", "8GiB"] {
        site.aws.advance(2 * 3600);
        grow(&site, &["--to", to]).expect_code(0);
    }
    site.aws.advance(2 * 3600);
    let fifth = grow(&site, &["--to", "9GiB"]);
    fifth.expect_code(75);
    assert!(
        fifth
            .stderr()
            .contains("four modifications of a volume in 24 hours")
            && fifth.stderr().contains("cannot be modified again until"),
        "{}",
        fifth.describe()
    );
    assert_eq!(sizes(&site), vec![8; 12]);
    // A day after the first, it may.
    site.aws.advance(17 * 3600);
    grow(&site, &["--to", "9GiB"]).expect_code(0);
    assert_eq!(sizes(&site), vec![9; 12]);

    // A vdev more: four vdevs, unbalanced by design, said; the next grow reaches the new, never-modified volumes
    // too.
    let add = grow(&site, &["--add-vdev"]);
    add.expect_code(0);
    assert!(add.stderr().contains("unbalances"), "{}", add.describe());
    assert_eq!(site.status()["layout"], "raidz1 4x4 gp3");
    assert_eq!(site.status()["ebs_encrypted"], true);
    site.aws.advance(2 * 3600);
    grow(&site, &["--to", "10GiB"]).expect_code(0);
    assert_eq!(sizes(&site), vec![10; 16]);

    site.run(&["destroy", &site.name, "--confirm", &site.name])
        .expect_code(0);
    assert!(site.run(&["ls"]).stdout().is_empty());
}

/// What is tagged with the pool in EC2, all kinds: instances not terminated, volumes, security groups.
fn tagged(site: &PoolSite) -> String {
    site.py(&format!(
        "f = [{{'Name': 'tag:zstream:pool', 'Values': ['{}']}}]\n\
         i = [x['InstanceId'] for r in e.describe_instances(Filters=f)['Reservations'] for x in r['Instances'] \
              if x['State']['Name'] != 'terminated']\n\
         v = [x['VolumeId'] for x in e.describe_volumes(Filters=f)['Volumes']]\n\
         g = [x['GroupId'] for x in e.describe_security_groups(Filters=f)['SecurityGroups']]\n\
         print(' '.join(i + v + g))",
        site.name
    ))
    .trim()
    .to_string()
}

#[test]
fn a_create_that_fails_removes_what_it_made() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("undo");
    let shape = [
        "create", &site.name, "--vdevs", "1", "--disks", "3", "--size", "1GiB",
    ];
    // No way to reach the instance named: refused before anything is made.
    let mut args = shape.to_vec();
    let none = site.run_keyed(&args, b"");
    none.expect_code(2).expect_clean_stderr("ec2-pool");
    assert!(
        none.stderr().contains("--security-group-id"),
        "{}",
        none.describe()
    );
    assert_eq!(tagged(&site), "");

    // The VPC's default group: it admits SSH from its own members only, so the backup host never gets in. The
    // create fails on its SSH timeout, and removes the instance and the volumes it made.
    let default_group = site.py(
        "print(e.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['default']}])\
         ['SecurityGroups'][0]['GroupId'])",
    );
    let group = default_group.trim().to_string();
    args.extend(["--security-group-id", &group, "--ssh-timeout", "3s"]);
    let failed = site.run_keyed(&args, b"");
    failed.expect_code(1).expect_clean_stderr("ec2-pool");
    assert!(
        failed.stderr().contains("did not answer over SSH")
            && failed
                .stderr()
                .contains("removed what it made: instance i-"),
        "{}",
        failed.describe()
    );
    assert_eq!(tagged(&site), "", "the failed create left parts tagged");
    assert_eq!(site.live_instances().as_array().unwrap().len(), 0);

    // With --ssh-from the group admits the wrong address: the same, and the group it made goes too.
    let mut args = shape.to_vec();
    args.extend(["--ssh-from", "203.0.113.0/24", "--ssh-timeout", "3s"]);
    let wrong = site.run_keyed(&args, b"");
    wrong.expect_code(1);
    assert!(
        wrong.stderr().contains("security group sg-"),
        "{}",
        wrong.describe()
    );
    assert_eq!(tagged(&site), "");
}

#[test]
fn the_host_key_is_pinned() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("pin");
    create(&site, &[]).expect_code(0);
    let id = site.instance_id();
    let verified = |site: &PoolSite| {
        site.record()
            .iter()
            .filter(|r| r["host key verified"] == id.as_str())
            .count()
    };
    // Every connection so far showed the key the console printed at first boot; none trusted an unknown one.
    assert!(verified(&site) > 0);
    assert!(site
        .record()
        .iter()
        .all(|r| r.get("trusted an unverified host key").is_none()));

    // Someone else answers at the instance's next address: the receive brings the instance up, finds another
    // host key, sends nothing (neither the key nor the stream), and brings it down again.
    site.aws.impostor(&id);
    let before = site.record().len();
    let r = site.pipe_into("printf stream", &["receive", &site.name, "tank/fs"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("Host key verification failed")
            && r.stderr().contains("does not show the host key"),
        "{}",
        r.describe()
    );
    let after = &site.record()[before..];
    assert!(
        after
            .iter()
            .all(|x| x.get("stand-in").is_none() && x.get("shim").is_none()),
        "something ran on the impostor: {after:?}"
    );
    assert_eq!(state(&site), "stopped");
}

#[test]
fn a_spot_pool_is_destroyed_for_good() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("spot");
    create(&site, &["--spot"]).expect_code(0);
    let s = site.status();
    assert_eq!(s["instance"]["spot"], true, "{s}");
    let request = s["instance"]["spot_request"].as_str().unwrap().to_string();
    assert!(request.starts_with("sir-"), "{s}");
    let dry = site.run(&["destroy", &site.name, "--confirm", &site.name, "--dry-run"]);
    assert!(
        dry.stderr()
            .contains(&format!("would call CancelSpotInstanceRequests {request}")),
        "{}",
        dry.describe()
    );
    // Terminated while its persistent request stays open, the instance would come back: destroy cancels the
    // request first, and nothing runs after.
    site.run(&["destroy", &site.name, "--confirm", &site.name])
        .expect_code(0);
    assert_eq!(site.aws.state()["spot"][&request]["state"], "cancelled");
    assert_eq!(site.live_instances().as_array().unwrap().len(), 0);
    assert_eq!(tagged(&site), "");
}

#[test]
fn graviton_iops_and_attachment_limits() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("arm");
    // An amd64 image for a Graviton type: refused before anything is made.
    let amd64 = "ami-0a1b2c3d4e5f60003";
    let r = create_shaped(
        &site,
        &[
            "--vdevs",
            "1",
            "--disks",
            "3",
            "--size",
            "4GiB",
            "--instance-type",
            "t4g.micro",
        ],
        &["--ami", amd64],
    );
    r.expect_code(2).expect_clean_stderr("ec2-pool");
    assert!(r.stderr().contains("is for x86_64"), "{}", r.describe());
    // io2 needs its IOPS.
    let r = create_shaped(
        &site,
        &[
            "--vdevs",
            "1",
            "--disks",
            "3",
            "--size",
            "4GiB",
            "--volume-type",
            "io2",
        ],
        &[],
    );
    r.expect_code(2);
    assert!(
        r.stderr().contains("--iops is required"),
        "{}",
        r.describe()
    );
    assert_eq!(tagged(&site), "");

    // A t4g.micro gets the newest Ubuntu LTS for arm64 (24.04, though a 22.04 was built later and a 25.10 is
    // newer), and io2 volumes get their IOPS.
    create_shaped(
        &site,
        &[
            "--vdevs",
            "1",
            "--disks",
            "13",
            "--size",
            "4GiB",
            "--volume-type",
            "io2",
            "--iops",
            "1000",
            "--instance-type",
            "t4g.micro",
        ],
        &[],
    )
    .expect_code(0);
    let id = site.instance_id();
    let image = site.py(&format!(
        "print(e.describe_instances(InstanceIds=['{id}'])['Reservations'][0]['Instances'][0]['ImageId'])"
    ));
    assert_eq!(image.trim(), "ami-0a1b2c3d4e5f60004", "noble arm64");
    let s = site.status();
    assert_eq!(s["iops"], 1000, "{s}");

    // A t4g.micro attaches 27 EBS volumes where one network interface is attached (its limit, shared, leaves
    // room for one): with the root volume and 13 volumes, a vdev of 13 more fits; with a second interface
    // attached, it does not, and nothing is made.
    site.py(&format!(
        "i = e.describe_instances(InstanceIds=['{id}'])['Reservations'][0]['Instances'][0]\n\
         n = e.create_network_interface(SubnetId=i['SubnetId'])['NetworkInterface']['NetworkInterfaceId']\n\
         e.attach_network_interface(NetworkInterfaceId=n, InstanceId='{id}', DeviceIndex=1)"
    ));
    let r = site.run(&["grow", &site.name, "--add-vdev"]);
    r.expect_code(2).expect_clean_stderr("ec2-pool");
    assert!(
        r.stderr().contains("2 network interface(s)"),
        "{}",
        r.describe()
    );
    assert_eq!(sizes(&site).len(), 13, "volumes were made");
    assert_eq!(state(&site), "stopped");
    site.run(&["destroy", &site.name, "--confirm", &site.name])
        .expect_code(0);
}

#[test]
fn scrubs_on_a_schedule() {
    let _zfs = Zfs::start();
    let site = PoolSite::new("scrub");
    create(&site, &[]).expect_code(0);
    assert!(site.status()["scrub"].is_null());
    // One now: up, the scrub to the end, its result in the tag, down.
    let r = site.run(&["scrub", &site.name]);
    r.expect_code(0).expect_clean_stderr("ec2-pool");
    let s = site.status();
    assert_eq!(s["scrub"]["errors"], 0, "{s}");
    assert_eq!(s["instance"]["state"], "stopped");
    let first = s["scrub"]["at"].as_str().unwrap().to_string();

    // The end of a window scrubs when the last scrub is --scrub-every old (30 days by default), by the clock
    // ZSTREAM_NOW sets: 29 days on, no; 31 days on, yes, and the tag says when.
    let later = |days: u64| {
        let t = humantime::parse_rfc3339(&first).unwrap()
            + std::time::Duration::from_secs(days * 86400);
        vec![(
            "ZSTREAM_NOW".to_string(),
            humantime::format_rfc3339_seconds(t).to_string(),
        )]
    };
    for (days, due) in [(29, false), (31, true)] {
        site.run_with(&["up", &site.name], b"", &later(days))
            .expect_code(0);
        let down = site.run_with(&["down", &site.name], b"", &later(days));
        down.expect_code(0);
        assert_eq!(
            down.stderr().contains("a scrub is due"),
            due,
            "{}",
            down.describe()
        );
    }
    assert_eq!(site.status()["scrub"]["at"], later(31)[0].1.as_str());
    // A text status says it too.
    let text = site.run(&["status", &site.name]);
    assert!(
        String::from_utf8_lossy(text.stdout()).contains("last scrub: "),
        "{}",
        text.describe()
    );
    site.run(&["destroy", &site.name, "--confirm", &site.name])
        .expect_code(0);
}

#[test]
fn an_instance_terminated_under_a_receive() {
    let zfs = Zfs::start();
    let site = PoolSite::new("gone");
    create(&site, &[]).expect_code(0);
    let id = site.instance_id();
    let src = zfs.pool(64);
    cmd("zfs", &["create", &src.ds("fs")]);
    fill_tree(&src.path("fs"), 1);
    cmd("zfs", &["snapshot", &format!("{}@a", src.ds("fs"))]);
    let stream = std::process::Command::new("zfs")
        .args(["send", &format!("{}@a", src.ds("fs"))])
        .output()
        .unwrap()
        .stdout;
    // The receive is under way when someone terminates the instance (by hand, or a Spot interruption that
    // terminates): it ends with a clear error, not a panic, and the pool is gone from `ls` without a trace.
    let mut args: Vec<String> = vec!["receive".into(), site.name.clone(), "tank/fs".into()];
    args.extend(site.key_args());
    args.extend(site.common());
    let err = site.dir.path().join("receive.err");
    let mut child = std::process::Command::new(zstream_tests::bins::bin("ec2-pool"))
        .args(&args)
        .envs(site.aws_env())
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
    site.py(&format!("e.terminate_instances(InstanceIds=['{id}'])"));
    input.write_all(&stream[stream.len() / 2..]).unwrap();
    drop(input);
    let status = child.wait().unwrap();
    let told = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(1), "{told}");
    assert!(
        !told.contains("panicked") && !told.contains("internal error"),
        "{told}"
    );
    assert!(
        told.contains("no instance that is not terminated"),
        "{told}"
    );
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
    // Written out from AWS's us-east-1 prices (2026-12-07): 40 x 1 GiB gp3 at $0.08 = $3.20, the 8 GiB root
    // volume $0.64, a t3.micro for 730 / 24 hours at $0.0104 = $0.3163, its public IPv4 address for those hours
    // at $0.005 = $0.1521: $4.3084.
    let total = v["monthly"]["total_usd"].as_f64().unwrap();
    assert!((total - 4.308_417).abs() < 1e-5, "{v}");
    assert!(
        (v["monthly"]["ipv4_usd"].as_f64().unwrap() - 0.152_083).abs() < 1e-5,
        "{v}"
    );
    let bad = zstream_tests::proc::run(
        &zstream_tests::bins::bin("ec2-pool"),
        &["cost", "--vdevs", "5", "--disks", "8", "--size", "1500MiB"],
        b"",
    );
    bad.expect_code(2).expect_clean_stderr("ec2-pool");
}
