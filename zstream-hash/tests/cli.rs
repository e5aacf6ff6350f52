//! The built zstream-hash binary: pass-through identity, digests equal to sha256sum's, --check, ZFS validation,
//! and the failure modes every filter shares (closed stdout, full disk, bad arguments).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use zstream_tests::data::Gen;
use zstream_tests::proc::{run, Run};

const BIN: &str = env!("CARGO_BIN_EXE_zstream-hash");
const BUF: usize = 1 << 20;

fn hash(args: &[&str], input: &[u8]) -> Run {
    run(Path::new(BIN), args, input)
}

fn sha256sum_of(data: &[u8]) -> String {
    // The real sha256sum, not our own hasher, is the reference.
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    let out = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(data).unwrap());
        child.wait_with_output().unwrap()
    });
    String::from_utf8(out.stdout).unwrap()
}

/// Scratch files, in cargo's scratch directory for tests (inside the build cache): one directory reused by every
/// run, so runs leave nothing behind in /tmp.
fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zstream-hash-cli");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn passes_through_and_digests_like_sha256sum_at_boundaries() {
    let sizes = [
        0,
        1,
        311,
        312,
        313,
        65535,
        65536,
        65537,
        BUF - 1,
        BUF,
        BUF + 1,
        2 * BUF + 1,
    ];
    for size in sizes {
        let data = Gen::bytes(size as u64, size);
        let r = hash(&[], &data);
        r.expect_code(0);
        assert!(
            r.stdout() == data.as_slice(),
            "output differs from input at size {size}"
        );
        // Without -o the bare sha256sum line (and nothing else) goes to stderr, so `2>file` is a checkable file.
        assert_eq!(r.stderr(), sha256sum_of(&data), "size {size}");
    }
}

#[test]
fn file_to_file_takes_the_plain_path() {
    // stdin and stdout as regular files: no tee(2), the read+write path.
    let data = Gen::bytes(7, 3 * BUF + 5);
    let (inp, outp, dig) = (tmp("in.bin"), tmp("out.bin"), tmp("in.sha256"));
    std::fs::write(&inp, &data).unwrap();
    let st = Command::new(BIN)
        .args(["-o", dig.to_str().unwrap(), "--name", "in.bin"])
        .stdin(std::fs::File::open(&inp).unwrap())
        .stdout(std::fs::File::create(&outp).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&outp).unwrap() == data);
    // The sidecar verifies the saved copy with the real sha256sum.
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(&dig)
        .current_dir(inp.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn three_gib_streamed_never_held() {
    // Generated on the fly in 1 MiB pieces, compared on the fly: the test holds a few MiB whatever the size.
    const TOTAL: u64 = 3 << 30;
    let dig = tmp("big.sha256");
    let mut child = Command::new(BIN)
        .args(["-o", dig.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut g = Gen::new(3);
        let mut buf = vec![0u8; BUF];
        let mut h = Sha256::new();
        for _ in 0..TOTAL / BUF as u64 {
            g.fill(&mut buf);
            h.update(&buf);
            stdin.write_all(&buf).unwrap();
        }
        hex::encode(h.finalize())
    });
    let mut g = Gen::new(3);
    let (mut want, mut got) = (vec![0u8; BUF], vec![0u8; BUF]);
    for i in 0..TOTAL / BUF as u64 {
        g.fill(&mut want);
        stdout.read_exact(&mut got).unwrap();
        assert!(want == got, "output differs in MiB {i}");
    }
    assert_eq!(stdout.read(&mut got).unwrap(), 0, "more output than input");
    let sent = writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(&dig).unwrap(),
        format!("{sent}  -\n")
    );
}

#[test]
fn check_matches_and_mismatches() {
    let data = Gen::bytes(11, 100_000);
    let good = hex::encode(Sha256::digest(&data));
    hash(&["--check", &good, "-q"], &data).expect_code(0);
    let file = tmp("good.sha256");
    std::fs::write(&file, format!("{good}  backup.zfs\n")).unwrap();
    hash(&["--check", file.to_str().unwrap(), "-q"], &data).expect_code(0);

    let mut bad = data.clone();
    bad[50_000] ^= 1;
    let r = hash(&["--check", &good, "-q"], &bad);
    r.expect_code(3).expect_clean_stderr("zstream-hash");
    let actual = hex::encode(Sha256::digest(&bad));
    assert!(
        r.stderr().contains(&good) && r.stderr().contains(&actual),
        "both digests named: {}",
        r.describe()
    );
    assert_eq!(r.stderr().lines().count(), 1);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--check", "not-a-digest"],
        &["--progress=sometimes"],
        &["extra-arg"],
    ] {
        hash(args, b"")
            .expect_code(2)
            .expect_clean_stderr("zstream-hash");
    }
}

#[test]
fn closed_stdout_exits_1_without_panic() {
    // The reader of our stdout goes away at once; we keep writing into a broken pipe.
    for tee_path in [true, false] {
        let mut child = Command::new(BIN)
            .arg("-q")
            .stdin(if tee_path {
                Stdio::piped()
            } else {
                Stdio::from(std::fs::File::open("/dev/zero").unwrap())
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let stdin = child.stdin.take();
        let feeder = std::thread::spawn(move || {
            if let Some(mut s) = stdin {
                let buf = vec![0u8; BUF];
                while s.write_all(&buf).is_ok() {}
            }
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        let r = Run {
            cmd: format!("zstream-hash (tee path: {tee_path}) | closed"),
            out,
        };
        r.expect_code(1).expect_clean_stderr("zstream-hash");
        assert!(r.stderr().contains("stdout was closed"), "{}", r.describe());
    }
}

#[test]
fn full_disk_exits_1_and_writes_no_sidecar() {
    let dig = tmp("full-disk.sha256");
    let _ = std::fs::remove_file(&dig);
    let out = Command::new(BIN)
        .args(["-o", dig.to_str().unwrap()])
        .stdin(Stdio::from(std::fs::File::open("/dev/zero").unwrap()))
        .stdout(Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ))
        .output()
        .unwrap();
    let r = Run {
        cmd: "zstream-hash < /dev/zero > /dev/full".into(),
        out,
    };
    r.expect_code(1).expect_clean_stderr("zstream-hash");
    assert!(!dig.exists(), "a digest was written for a failed run");
}

#[test]
fn zfs_streams_are_reported_and_damage_exits_3() {
    let full = include_bytes!("data/full.zfs");
    let json = tmp("full.json");
    let dig = tmp("full-zfs.sha256");
    let args = [
        "--zfs",
        "--json",
        json.to_str().unwrap(),
        "-o",
        dig.to_str().unwrap(),
    ];
    let r = hash(&args, full);
    r.expect_code(0);
    assert!(r.stdout() == full.as_slice());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["algorithm"], "sha256");
    assert_eq!(v["sha256"], hex::encode(Sha256::digest(full)));
    assert_eq!(v["bytes"], full.len() as u64);
    assert_eq!(v["toname"], "tp1/fs@s1");
    assert_eq!(v["fromguid"], "0");
    assert_eq!(v["compound"], false);

    // Damage: nothing written to -o or --json, exit 3, one line that says which.
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&dig);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut", full[..full.len() / 2].to_vec(), "cut short"),
        ("no END", full[..full.len() - 312].to_vec(), "lacks its END"),
        (
            "flipped",
            {
                let mut d = full.to_vec();
                d[5000] ^= 0x10;
                d
            },
            "",
        ),
        (
            "text",
            b"this is not a zfs stream, just some words in a pipe".to_vec(),
            "not a ZFS send stream",
        ),
        ("empty", Vec::new(), "empty input"),
    ];
    for (what, data, says) in cases {
        let r = hash(&args, &data);
        r.expect_code(3).expect_clean_stderr("zstream-hash");
        assert!(r.stderr().contains(says), "{what}: {}", r.describe());
        assert!(
            !json.exists() && !dig.exists(),
            "{what}: a sidecar was written for a damaged stream"
        );
    }
}

#[test]
fn saved_streams_pass_only_with_saved() {
    // `zfs send --saved` leaves the END out on purpose (docs/formats/zfs-stream.md); real ones are made and
    // checked in the OpenZFS guest (tests/tests/guest_streams.rs).
    let full = include_bytes!("data/full.zfs");
    let saved = &full[..full.len() - 312];
    let json = tmp("saved.json");
    let j = json.to_str().unwrap();
    let r = hash(&["--zfs", "-q", "--saved", "--json", j], saved);
    r.expect_code(0);
    assert!(r.stdout() == saved);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["saved"], true);
    assert_eq!(v["toname"], "tp1/fs@s1");
    // A whole stream with --saved is a whole stream: no "saved" in its record.
    hash(&["--zfs", "-q", "--saved", "--json", j], full).expect_code(0);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v.get("saved").is_none(), "{v}");
    // Cut inside a record, or a compound stream without its final END: damage, --saved or not.
    let compound = include_bytes!("data/compound.zfs");
    for bad in [&saved[..saved.len() - 5], &compound[..compound.len() - 312]] {
        hash(&["--zfs", "-q", "--saved"], bad)
            .expect_code(3)
            .expect_clean_stderr("zstream-hash");
    }
    let r = hash(&["--zfs", "-q"], saved);
    r.expect_code(3);
    assert!(
        r.stderr().contains("--saved accepts those"),
        "{}",
        r.describe()
    );
    // --saved means nothing without --zfs.
    hash(&["--saved"], saved).expect_code(2);
}

#[test]
fn a_stream_that_is_not_the_one_expected_exits_3_at_its_begin() {
    // A restore names the stream it must get: its toname, toguid and fromguid (the record's). Another snapshot's
    // or another dataset's stream, stored under this one's name, is refused as soon as its BEGIN has passed.
    let full = include_bytes!("data/full.zfs");
    let json = tmp("expect.json");
    let r = hash(&["--zfs", "--json", json.to_str().unwrap()], full);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let toguid = v["toguid"].as_str().unwrap().to_string();
    let ok = [
        "--zfs",
        "-q",
        "--expect-toname",
        "tp1/fs@s1",
        "--expect-toguid",
        &toguid,
        "--expect-fromguid",
        "0",
    ];
    hash(&ok, full).expect_code(0);
    let other_guid = (toguid.parse::<u64>().unwrap() ^ 1).to_string();
    for (args, says) in [
        (
            vec!["--zfs", "--expect-toname", "tp1/secret@s1"],
            "toname is tp1/fs@s1, expected tp1/secret@s1",
        ),
        (
            vec!["--zfs", "--expect-toname", "tp1/fs@s2"],
            "expected tp1/fs@s2",
        ),
        (
            vec!["--zfs", "--expect-toguid", other_guid.as_str()],
            "toguid",
        ),
        (
            vec!["--zfs", "--expect-fromguid", "17"],
            "fromguid is 0, expected 17",
        ),
    ] {
        let r = hash(&args, full);
        r.expect_code(3).expect_clean_stderr("zstream-hash");
        assert!(r.stderr().contains(says), "{args:?}: {}", r.describe());
        assert!(
            r.stdout().is_empty(),
            "{args:?}: bytes of the wrong stream passed on"
        );
    }
    // Without --zfs the stream is not read as one: the options are a usage error.
    hash(&["--expect-toguid", "1"], full).expect_code(2);
}

#[test]
fn zfs_walker_keeps_its_place_across_many_reads() {
    // A 40 MiB valid stream in many pieces through the binary: the walker holds state across pipe reads.
    let mut s = zstream_tests_synth();
    let r = hash(&["--zfs", "-q"], &s);
    r.expect_code(0);
    assert!(r.stdout() == s.as_slice());
    let n = s.len();
    s[n - 400] ^= 1;
    hash(&["--zfs", "-q"], &s).expect_code(3);
}

/// A valid stream of 128 KiB WRITE records from the library's own generator (no cargo run from a test).
fn zstream_tests_synth() -> Vec<u8> {
    let mut out = Vec::new();
    zstream_hash::zfs::synth::Synth::random_writes(40, &mut out).unwrap();
    out
}

#[test]
fn progress_shows_bytes_rate_and_time_only_when_asked() {
    let data = Gen::bytes(4, 3 << 20);
    let r = hash(
        &["--progress=always", "-q", "--zfs"],
        include_bytes!("data/compound.zfs"),
    );
    r.expect_code(0);
    let err = r.stderr();
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("zstream-hash: ") && last.contains("/s") && last.contains("0:00:"),
        "{}",
        r.describe()
    );
    assert!(
        err.contains("tp1/fs@s3 compound, 4 substreams"),
        "the ZFS header is shown: {}",
        r.describe()
    );
    // --progress alone: only on a terminal, so nothing here; and nothing by default.
    assert!(hash(&["--progress", "-q"], &data).stderr().is_empty());
    assert!(hash(&["-q"], &data).stderr().is_empty());
}

#[test]
fn binary_output_to_a_terminal_is_refused() {
    // `script` runs the command on a real pseudo-terminal (util-linux, present on every Debian).
    let out = Command::new("script")
        .args(["-qec", &format!("{BIN} < /dev/null"), "/dev/null"])
        .output()
        .expect("script (util-linux) is needed to give the command a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refusing to write binary data to a terminal"),
        "{text}"
    );
}

#[test]
fn sidecars_never_follow_a_planted_link_and_fail_before_the_stream_passes() {
    let d = tempfile::tempdir().unwrap();
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // The old temporary name was .NAME.tmp.PID: plant it for every PID the next runs could get, and more.
    let sidecar = d.path().join("x.sha256");
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .map_or(32768, |s| s.trim().parse().unwrap());
    let me = std::process::id();
    for pid in me..(me + 2000).min(pid_max) {
        std::os::unix::fs::symlink(&victim, d.path().join(format!(".x.sha256.tmp.{pid}"))).unwrap();
    }
    let out = sidecar.to_str().unwrap();
    hash(&["-o", out, "--json", &format!("{out}.json")], b"data").expect_code(0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::read_to_string(&sidecar)
        .unwrap()
        .ends_with("  -\n"));

    // An unwritable sidecar directory fails before one byte is passed on.
    for opt in ["-o", "--json"] {
        let r = hash(&[opt, "/nonexistent-dir/x.sha256"], &Gen::bytes(1, 3 << 20));
        r.expect_code(1).expect_clean_stderr("zstream-hash");
        assert!(r.stdout().is_empty(), "{}", r.describe());
        assert!(r.stderr().contains("/nonexistent-dir"), "{}", r.describe());
    }
}

#[test]
fn names_are_escaped_and_check_files_are_strict() {
    let out = tmp("escaped.sha256");
    let o = out.to_str().unwrap();
    hash(&["-o", o, "--name", "two\nlines"], b"abc").expect_code(0);
    let line = std::fs::read_to_string(&out).unwrap();
    assert_eq!(line.lines().count(), 1, "{line:?}");
    assert!(
        line.starts_with('\\') && line.ends_with("  two\\nlines\n"),
        "{line:?}"
    );
    hash(&["--check", o, "-q"], b"abc").expect_code(0);

    // sha256sum -c --strict refuses lines it cannot read; so does --check, instead of skipping them.
    let bad = tmp("bad.sha256");
    std::fs::write(&bad, format!("{line}not a digest line\n")).unwrap();
    let r = hash(&["--check", bad.to_str().unwrap()], b"abc");
    r.expect_code(2).expect_clean_stderr("zstream-hash");
    assert!(r.stderr().contains("line 2"), "{}", r.describe());

    // A directory given to --check says why it cannot be read.
    let dir = tmp("");
    let r = hash(&["--check", dir.to_str().unwrap()], b"abc");
    r.expect_code(2).expect_clean_stderr("zstream-hash");
    assert!(r.stderr().contains("directory"), "{}", r.describe());
}

#[test]
fn compound_streams_with_a_substream_dropped_or_repeated_exit_3() {
    use zstream_hash::zfs::synth::pieces;
    // zfs-fuse's `zfs send -R tp1/fs@s3`: header, fs@s1, fs@s2, fs@s3, fs/child@s3, final END.
    let p = pieces(include_bytes!("data/compound.zfs"));
    assert_eq!(p.len(), 6);
    let dropped = [&p[0], &p[1], &p[3], &p[4], &p[5]]
        .map(|v| v.as_slice())
        .concat();
    let r = hash(&["--zfs", "-q"], &dropped);
    r.expect_code(3).expect_clean_stderr("zstream-hash");
    assert!(
        r.stderr().contains("tp1/fs@s3") && r.stderr().contains("dropped"),
        "{}",
        r.describe()
    );
    let twice = [&p[0], &p[1], &p[2], &p[2], &p[3], &p[4], &p[5]]
        .map(|v| v.as_slice())
        .concat();
    hash(&["--zfs", "-q"], &twice).expect_code(3);
    let header_only = [&p[0], &p[5]].map(|v| v.as_slice()).concat();
    let r = hash(&["--zfs", "-q"], &header_only);
    r.expect_code(3);
    assert!(
        r.stderr().contains("holds no substream"),
        "{}",
        r.describe()
    );
}

#[test]
fn every_openzfs_stream_passes_the_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openzfs");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zsend") {
            let d = std::fs::read(&p).unwrap();
            let r = hash(&["--zfs", "-q"], &d);
            r.expect_code(0);
            assert!(r.stdout() == d.as_slice(), "{}", p.display());
            n += 1;
        }
    }
    assert_eq!(n, 15);
}

#[test]
fn reading_from_a_terminal_says_so() {
    // stdin on the pseudo-terminal `script` makes, stdout to a file; script's stdin ends at once, which ends the
    // terminal's input (an empty stream).
    let out = Command::new("script")
        .args(["-qec", &format!("{BIN} -q > /dev/null"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) is needed to give the command a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("reading the stream from the terminal"),
        "{text}"
    );
}
