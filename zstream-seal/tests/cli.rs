//! The built zstream-seal binary: keygen, round trips, and every way opening must refuse (wrong keys, tampering,
//! truncation, reordering, duplication, trailing data) with exit 3 and only whole verified chunks written.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use zstream_tests::data::Gen;
use zstream_tests::proc::{run, Run};

const BIN: &str = env!("CARGO_BIN_EXE_zstream-seal");
const CHUNK: usize = 4096;
const HEADER_2_KEYS: usize = 60 + 2 * 8 + 32;
const SEALED_CHUNK: usize = CHUNK + 16;

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("zstream-seal-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, f: &str) -> String {
        self.0.join(f).to_str().unwrap().to_string()
    }
    fn keygen(&self, f: &str) -> String {
        let p = self.p(f);
        seal(&["keygen", "-o", &p], b"").expect_code(0);
        p
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seal(args: &[&str], input: &[u8]) -> Run {
    run(Path::new(BIN), args, input)
}

/// Seals with keys a and b in 4 KiB chunks; returns (dir, key a, key b, plaintext, sealed).
fn sealed_fixture(name: &str, len: usize) -> (Dir, String, String, Vec<u8>, Vec<u8>) {
    let d = Dir::new(name);
    let (a, b) = (d.keygen("a.key"), d.keygen("b.key"));
    let plain = Gen::bytes(len as u64, len);
    let r = seal(
        &["--key-file", &a, "--key-file", &b, "--chunk-size", "4096"],
        &plain,
    );
    r.expect_code(0).expect_clean_stderr("zstream-seal");
    let sealed = r.stdout().to_vec();
    assert_eq!(
        sealed.len(),
        HEADER_2_KEYS + len + 16 * len.div_ceil(CHUNK).max(1)
    );
    (d, a, b, plain, sealed)
}

/// Opening must fail with exit 3, a message containing `says`, and output that is a prefix of whole chunks.
#[track_caller]
fn refuses(sealed: &[u8], keys: &[&str], plain: &[u8], says: &str) -> Run {
    let mut args = vec!["-d"];
    for k in keys {
        args.extend(["--key-file", k]);
    }
    let r = seal(&args, sealed);
    r.expect_code(3).expect_clean_stderr("zstream-seal");
    assert!(
        r.stderr().contains(says),
        "expected '{says}': {}",
        r.describe()
    );
    assert!(
        r.stdout().len() % CHUNK == 0 && plain.starts_with(r.stdout()),
        "output is not whole verified chunks: {}",
        r.describe()
    );
    r
}

#[test]
fn keygen_makes_private_files_and_never_overwrites() {
    let d = Dir::new("keygen");
    let k = d.keygen("k.key");
    assert_eq!(
        std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&k).unwrap();
    let r = seal(&["keygen", "-o", &k], b"");
    r.expect_code(2).expect_clean_stderr("zstream-seal");
    assert!(r.stderr().contains("never overwrites"));
    assert_eq!(std::fs::read(&k).unwrap(), before);
    assert_ne!(
        before,
        std::fs::read(d.keygen("other.key")).unwrap(),
        "two keys are different"
    );
}

#[test]
fn round_trips_at_chunk_boundaries_in_any_key_order_and_thread_count() {
    let d = Dir::new("roundtrip");
    let (a, b) = (d.keygen("a.key"), d.keygen("b.key"));
    for len in [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK,
        3 * CHUNK + 1,
        50 * CHUNK + 7,
    ] {
        let plain = Gen::bytes(len as u64, len);
        for threads in ["1", "3"] {
            let s = seal(
                &[
                    "--key-file",
                    &a,
                    "--key-file",
                    &b,
                    "--chunk-size",
                    "4KiB",
                    "--threads",
                    threads,
                ],
                &plain,
            );
            s.expect_code(0);
            let o = seal(
                &[
                    "-d",
                    "--key-file",
                    &b,
                    "--key-file",
                    &a,
                    "--threads",
                    threads,
                ],
                s.stdout(),
            );
            o.expect_code(0).expect_clean_stderr("zstream-seal");
            assert!(
                o.stdout() == plain.as_slice(),
                "len {len} threads {threads}"
            );
        }
    }
    // Default 1 MiB chunks, several of them.
    let plain = Gen::bytes(5, 3 * (1 << 20) + 1);
    let s = seal(&["--key-file", &a, "--key-file", &b], &plain);
    let o = seal(&["-d", "--key-file", &a, "--key-file", &b], s.stdout());
    o.expect_code(0);
    assert!(o.stdout() == plain.as_slice());
}

#[test]
fn wrong_missing_or_extra_keys_fail_at_the_header_with_no_output() {
    let (d, a, b, plain, sealed) = sealed_fixture("keys", 10_000);
    let c = d.keygen("c.key");
    refuses(&sealed, &[&a], &plain, "do not open this stream");
    refuses(&sealed, &[&a, &b, &c], &plain, "is not one of its keys");
    refuses(&sealed, &[&a, &c], &plain, "is missing");
    refuses(&sealed, &[&a, &a], &plain, "given twice");
    for r in [
        refuses(&sealed, &[&a], &plain, ""),
        refuses(&sealed, &[&a, &c], &plain, ""),
    ] {
        assert!(
            r.stdout().is_empty(),
            "bytes written before the keys were checked"
        );
    }
}

#[test]
fn passphrases_combine_with_key_files() {
    let d = Dir::new("pass");
    let a = d.keygen("a.key");
    let (pw, wrong) = (d.p("pw"), d.p("wrong"));
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    std::fs::write(&wrong, "correct horse battery stapler\n").unwrap();
    for f in [&pw, &wrong] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let plain = Gen::bytes(1, 70_000);
    // Cheap Argon2id keeps the test quick; the default (64 MiB, 3 passes) is measured in the benchmark.
    let s = seal(
        &[
            "--key-file",
            &a,
            "--passphrase-file",
            &pw,
            "--argon2-memory",
            "1024",
            "--argon2-passes",
            "1",
        ],
        &plain,
    );
    s.expect_code(0).expect_clean_stderr("zstream-seal");
    let o = seal(
        &["-d", "--passphrase-file", &pw, "--key-file", &a],
        s.stdout(),
    );
    o.expect_code(0);
    assert!(o.stdout() == plain.as_slice());
    let r = seal(
        &["-d", "--passphrase-file", &wrong, "--key-file", &a],
        s.stdout(),
    );
    r.expect_code(3);
    assert!(
        r.stderr().contains("passphrase") && r.stdout().is_empty(),
        "{}",
        r.describe()
    );
    let r = seal(&["-d", "--key-file", &a], s.stdout());
    r.expect_code(3);
    assert!(
        r.stderr().contains("1 passphrase(s), 0 given"),
        "{}",
        r.describe()
    );
}

#[test]
fn tampered_header_fails_before_output() {
    let (_d, a, b, plain, sealed) = sealed_fixture("header", 10_000);
    for at in [0, 7, 9, 12, 30, 59, 60, 70, HEADER_2_KEYS - 1] {
        let mut t = sealed.clone();
        t[at] ^= 0x20;
        let r = refuses(&t, &[&a, &b], &plain, "");
        assert!(
            r.stdout().is_empty(),
            "header byte {at}: output before the header was checked"
        );
    }
}

#[test]
fn damage_truncation_reordering_duplication_and_trailing_data_fail() {
    let (_d, a, b, plain, sealed) = sealed_fixture("payload", 5 * CHUNK + 100);
    let keys = [a.as_str(), b.as_str()];
    let chunk_at = |i: usize| HEADER_2_KEYS + i * SEALED_CHUNK;

    // A flipped byte in chunk 2: chunks 0 and 1 are written, then exit 3 naming chunk 2 and its offset.
    let mut t = sealed.clone();
    t[chunk_at(2) + 100] ^= 1;
    let r = refuses(
        &t,
        &keys,
        &plain,
        &format!("chunk 2 at byte {}", chunk_at(2)),
    );
    assert_eq!(r.stdout().len(), 2 * CHUNK);

    // Cut inside a chunk, and at a chunk boundary (the final chunk missing).
    refuses(&sealed[..chunk_at(3) + 50], &keys, &plain, "chunk 3");
    refuses(&sealed[..chunk_at(5)], &keys, &plain, "cut short");
    refuses(&sealed[..HEADER_2_KEYS], &keys, &plain, "cut short");

    // Chunks 1 and 2 swapped; chunk 1 duplicated.
    let mut swapped = sealed[..chunk_at(1)].to_vec();
    swapped.extend_from_slice(&sealed[chunk_at(2)..chunk_at(3)]);
    swapped.extend_from_slice(&sealed[chunk_at(1)..chunk_at(2)]);
    swapped.extend_from_slice(&sealed[chunk_at(3)..]);
    refuses(&swapped, &keys, &plain, "chunk 1");
    let mut dup = sealed[..chunk_at(2)].to_vec();
    dup.extend_from_slice(&sealed[chunk_at(1)..]);
    refuses(&dup, &keys, &plain, "chunk 2");

    // Bytes after the final chunk.
    let mut trailing = sealed.clone();
    trailing.extend_from_slice(b"x");
    refuses(&trailing, &keys, &plain, "chunk 5");
}

#[test]
fn trailing_data_after_a_full_final_chunk_is_named() {
    let (_d, a, b, plain, sealed) = sealed_fixture("trailing", 2 * CHUNK);
    let mut t = sealed.clone();
    t.extend_from_slice(&[0u8; 40]);
    refuses(&t, &[&a, &b], &plain, "more data follows");
}

#[test]
fn inspect_needs_no_keys() {
    let (d, _a, _b, _plain, sealed) = sealed_fixture("inspect", 10);
    let r = seal(&["inspect", "--json"], &sealed);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_slice(r.stdout()).unwrap();
    assert_eq!(v["chunk_size"], 4096);
    assert_eq!(v["key_files"].as_array().unwrap().len(), 2);
    assert_eq!(v["passphrases"], 0);
    let id_a = std::fs::read_to_string(d.p("a.key"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("id ").map(str::to_string))
        .unwrap();
    assert!(v["key_files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == &id_a));
    seal(&["inspect"], b"not sealed at all")
        .expect_code(3)
        .expect_clean_stderr("zstream-seal");
    // At the end of a pipe it reads everything, so the command before it does not fail with a closed pipe.
    let f = d.p("big.sealed");
    let mut big = sealed.clone();
    big.extend(vec![0u8; 4 << 20]);
    std::fs::write(&f, &big).unwrap();
    zstream_tests::proc::sh(&format!("cat {f} | {BIN} inspect > /dev/null")).expect_code(0);
}

#[test]
fn readable_key_file_draws_a_warning() {
    let d = Dir::new("warn");
    let a = d.keygen("a.key");
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = seal(&["--key-file", &a], b"data");
    r.expect_code(0);
    assert!(
        r.stderr().contains("readable by others"),
        "{}",
        r.describe()
    );
}

#[test]
fn bad_arguments_exit_2() {
    let d = Dir::new("args");
    let a = d.keygen("a.key");
    for args in [
        &[][..],
        &["--key-file", "/nonexistent/key"],
        &["--key-file", &a, "--threads", "0"],
        &["--key-file", &a, "--chunk-size", "10"],
        &["--key-file", &a, "--chunk-size", "lots"],
        &["--bogus"],
    ] {
        seal(args, b"x")
            .expect_code(2)
            .expect_clean_stderr("zstream-seal");
    }
    let not_a_key = d.p("plain.txt");
    std::fs::write(&not_a_key, "hello").unwrap();
    seal(&["--key-file", &not_a_key], b"x").expect_code(2);
}

#[test]
fn closed_stdout_exits_1() {
    let d = Dir::new("epipe");
    let a = d.keygen("a.key");
    let mut child = Command::new(BIN)
        .args(["--key-file", &a])
        .stdin(Stdio::from(std::fs::File::open("/dev/zero").unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let r = Run {
        cmd: "zstream-seal < /dev/zero | (closed)".into(),
        out,
    };
    r.expect_code(1).expect_clean_stderr("zstream-seal");
}

#[test]
fn a_forged_argon2_cost_is_refused_before_any_work() {
    let d = Dir::new("kdf-limit");
    let pw = d.p("pw");
    std::fs::write(&pw, "a passphrase\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = [
        "--passphrase-file",
        pw.as_str(),
        "--argon2-memory",
        "1024",
        "--argon2-passes",
        "1",
    ];
    let s = seal(&args, b"secret");
    s.expect_code(0);
    // Memory at offset 16, passes at 20 (big-endian): ask for 4 GiB and 64 passes, the format's own maxima.
    let mut forged = s.stdout().to_vec();
    forged[16..20].copy_from_slice(&(4u32 << 20).to_be_bytes());
    forged[20..24].copy_from_slice(&64u32.to_be_bytes());
    let r = seal(&["-d", "--passphrase-file", &pw], &forged);
    r.expect_code(3).expect_clean_stderr("zstream-seal");
    assert!(
        r.stderr().contains("more than this opener allows") && r.stdout().is_empty(),
        "{}",
        r.describe()
    );
    // The limit bounds, it does not match: one lowered to the stream's own cost still opens it.
    let r = seal(
        &[
            "-d",
            "--passphrase-file",
            &pw,
            "--max-argon2-memory",
            "1024",
            "--max-argon2-passes",
            "1",
        ],
        s.stdout(),
    );
    r.expect_code(0);
    assert_eq!(r.stdout(), b"secret");
}

#[test]
fn secret_files_are_bounded_and_not_mixed_up() {
    let d = Dir::new("secret-files");
    let a = d.keygen("a.key");
    // /dev/zero never ends: it must be refused at its bound, not read until memory runs out.
    for opt in ["--key-file", "--passphrase-file"] {
        let r = seal(&[opt, "/dev/zero"], b"x");
        r.expect_code(2).expect_clean_stderr("zstream-seal");
        assert!(
            r.stderr().contains("larger than 64 KiB"),
            "{}",
            r.describe()
        );
    }
    // A key file given as a passphrase would silently use its comment line as the passphrase.
    let r = seal(&["--passphrase-file", &a], b"x");
    r.expect_code(2).expect_clean_stderr("zstream-seal");
    assert!(r.stderr().contains("is a key file"), "{}", r.describe());
    // A key file that is not text says so, not "stream did not contain valid UTF-8".
    let bin = d.p("bin.key");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = seal(&["--key-file", &bin], b"x");
    r.expect_code(2).expect_clean_stderr("zstream-seal");
    assert!(r.stderr().contains("not text"), "{}", r.describe());
    // --threads is bounded.
    seal(&["--key-file", &a, "--threads", "100000"], b"x")
        .expect_code(2)
        .expect_clean_stderr("zstream-seal");
}

#[test]
fn a_passphrase_line_ends_as_the_spec_says() {
    let d = Dir::new("pass-line-end");
    let (crlf, cr, plain) = (d.p("crlf"), d.p("cr"), d.p("plain"));
    std::fs::write(&crlf, "pw\r\n").unwrap();
    std::fs::write(&cr, "pw\r").unwrap();
    std::fs::write(&plain, "pw").unwrap();
    for f in [&crlf, &cr, &plain] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cheap = ["--argon2-memory", "1024", "--argon2-passes", "1"];
    let s = seal(
        &[&["--passphrase-file", crlf.as_str()][..], &cheap].concat(),
        b"x",
    );
    s.expect_code(0);
    // "pw\r\n" and "pw" are the passphrase "pw"; "pw\r" with no line end is "pw\r" (seal-v1.md).
    seal(&["-d", "--passphrase-file", &plain], s.stdout()).expect_code(0);
    seal(&["-d", "--passphrase-file", &cr], s.stdout()).expect_code(3);
}

#[test]
fn an_empty_passphrase_is_refused_as_the_spec_says() {
    // seal-v1.md: an empty file, or one whose first line is empty, is refused sealing and opening (exit 2) before
    // any input is read; a lone "\r" is a passphrase.
    let d = Dir::new("pass-empty");
    let a = d.keygen("a.key");
    let s = seal(&["--key-file", &a], b"x");
    s.expect_code(0);
    for (name, text) in [("empty", ""), ("lf", "\n"), ("crlf", "\r\nsecond line")] {
        let f = d.p(name);
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = seal(&["--passphrase-file", &f], b"plain");
        r.expect_code(2).expect_clean_stderr("zstream-seal");
        assert!(
            r.stdout().is_empty() && r.stderr().contains("empty"),
            "{name}: {}",
            r.describe()
        );
        seal(
            &["-d", "--key-file", &a, "--passphrase-file", &f],
            s.stdout(),
        )
        .expect_code(2)
        .expect_clean_stderr("zstream-seal");
    }
    let cr = d.p("cr");
    std::fs::write(&cr, "\r").unwrap();
    std::fs::set_permissions(&cr, std::fs::Permissions::from_mode(0o600)).unwrap();
    seal(
        &[
            "--passphrase-file",
            &cr,
            "--argon2-memory",
            "1024",
            "--argon2-passes",
            "1",
        ],
        b"x",
    )
    .expect_code(0);
}

#[test]
fn messages_say_where_a_cut_stream_ends_and_that_a_header_may_be_damaged() {
    let (_d, a, b, plain, sealed) = sealed_fixture("messages", 3 * CHUNK + 10);
    // Cut exactly after chunk 1: the stream ends at that chunk's end, not at its start.
    let end = HEADER_2_KEYS + 2 * SEALED_CHUNK;
    let r = seal(&["-d", "--key-file", &a, "--key-file", &b], &sealed[..end]);
    r.expect_code(3).expect_clean_stderr("zstream-seal");
    assert!(
        r.stderr().contains(&format!("ends at byte {end}")),
        "{}",
        r.describe()
    );
    // Chunk 1 arrived last and is refused as a final chunk; chunk 0 was written.
    assert!(r.stdout() == &plain[..CHUNK]);
    // Bytes added after a short final chunk are named as one of the possibilities, not only "cut short".
    let mut longer = sealed.clone();
    longer.extend_from_slice(b"extra");
    let r = seal(&["-d", "--key-file", &a, "--key-file", &b], &longer);
    r.expect_code(3);
    assert!(
        r.stderr().contains("bytes added after it"),
        "{}",
        r.describe()
    );
    // A damaged key id in the header reads as a key that does not belong, and says the header may be damaged.
    let mut damaged = sealed.clone();
    damaged[61] ^= 1;
    let r = seal(&["-d", "--key-file", &a, "--key-file", &b], &damaged);
    r.expect_code(3);
    assert!(
        r.stderr().contains("or its header is damaged"),
        "{}",
        r.describe()
    );
}
