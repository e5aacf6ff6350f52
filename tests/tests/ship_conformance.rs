//! One conformance suite that every zstream-ship target passes, on the built binary: a directory, and an S3
//! bucket on moto's server reached through a proxy that injects 500/503 answers and drops connections mid-body.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::faults::{self, Proxy};
use zstream_tests::moto::Moto;
use zstream_tests::proc::{run, run_env, Run};
use zstream_tests::vault::Vault;

/// Somewhere objects can be put.
trait Place {
    fn name(&self) -> &str;
    /// The URL of object `key`; `url("")` is the prefix of everything this place holds.
    fn url(&self, key: &str) -> String;
    /// The environment zstream-ship needs for this place.
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Options this place adds to command `cmd` (small parts, so that a few MiB make a multipart upload).
    fn options(&self, _cmd: &str) -> Vec<String> {
        Vec::new()
    }
    /// Where everything this place holds is listed (ls, gc).
    fn prefix(&self) -> String {
        self.url("pool/")
    }
    /// What `put` takes for `key`.
    fn target(&self, key: &str) -> String {
        self.url(key)
    }
    /// Whether a put to the same target replaces the object.
    fn overwrites(&self) -> bool {
        true
    }
    /// Whether ls shows a removal at once.
    fn lists_live(&self) -> bool {
        true
    }
    /// Puts `data` as `key` and returns the URL to read it back by.
    fn put(&self, key: &str, data: &[u8]) -> String {
        let r = self.ship(&["put", &self.target(key)], data);
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        self.stored_at(key, &r)
    }
    /// Where a put of `key` stored it.
    fn stored_at(&self, key: &str, _put: &Run) -> String {
        self.url(key)
    }
    /// The (errors, cuts) its fault proxy injected, if it has one.
    fn faults(&self) -> Option<(u64, u64)> {
        None
    }
    fn ship(&self, args: &[&str], input: &[u8]) -> Run {
        let mut a: Vec<&str> = args.to_vec();
        let opts = self.options(args[0]);
        a.extend(opts.iter().map(String::as_str));
        run_env(&bin("zstream-ship"), &a, input, &self.env())
    }
}

/// A bucket on a moto server of its own, behind the fault proxy.
struct Bucket {
    /// Kept running as long as the bucket is used.
    _moto: Moto,
    proxy: Proxy,
    name: String,
}
impl Place for Bucket {
    fn name(&self) -> &str {
        "s3"
    }
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }
    fn env(&self) -> Vec<(String, String)> {
        Moto::env_for(&self.proxy.endpoint())
    }
    fn options(&self, cmd: &str) -> Vec<String> {
        match cmd {
            "put" => vec!["--part-size".into(), "5MiB".into()],
            _ => Vec::new(),
        }
    }
    fn faults(&self) -> Option<(u64, u64)> {
        Some((
            self.proxy.count(|c| &c.errors),
            self.proxy.count(|c| &c.cuts),
        ))
    }
}

/// A vault on the tests' vault endpoint (moto has no Glacier multipart upload), with 1 MiB parts, retrieval
/// jobs that take half a second (waited for), and the same fault proxy in front.
struct GlacierVault {
    _vault: Vault,
    proxy: Proxy,
    name: String,
}
impl Place for GlacierVault {
    fn name(&self) -> &str {
        "glacier"
    }
    fn faults(&self) -> Option<(u64, u64)> {
        Some((
            self.proxy.count(|c| &c.errors),
            self.proxy.count(|c| &c.cuts),
        ))
    }
    fn url(&self, archive: &str) -> String {
        format!("glacier://{}/{archive}", self.name)
    }
    fn prefix(&self) -> String {
        format!("glacier://{}", self.name)
    }
    fn target(&self, _key: &str) -> String {
        self.prefix()
    }
    fn overwrites(&self) -> bool {
        false
    }
    fn lists_live(&self) -> bool {
        false
    }
    fn stored_at(&self, _key: &str, put: &Run) -> String {
        let url = String::from_utf8_lossy(put.stdout()).trim().to_string();
        assert!(
            url.starts_with(&self.url("")),
            "put printed no archive URL: {}",
            put.describe()
        );
        url
    }
    fn env(&self) -> Vec<(String, String)> {
        Moto::env_for(&self.proxy.endpoint())
    }
    fn options(&self, cmd: &str) -> Vec<String> {
        match cmd {
            "put" => vec!["--part-size".into(), "1MiB".into()],
            "get" | "restore" | "ls" => vec!["--wait".into()],
            _ => Vec::new(),
        }
    }
}

struct Dir(tempfile::TempDir);
impl Place for Dir {
    fn name(&self) -> &str {
        "file"
    }
    fn url(&self, key: &str) -> String {
        format!("file://{}/{key}", self.0.path().display())
    }
}

/// A directory of its own.
fn dir() -> Dir {
    Dir(tempfile::tempdir().unwrap())
}

/// A bucket on a moto server of its own, behind the fault proxy, which also gives moto's unfinished uploads
/// real dates (moto says 2010-11-10 for all of them) so that gc's age filter is tested on S3 too.
fn bucket() -> Bucket {
    let moto = Moto::start();
    moto.bucket("conformance");
    let proxy = Proxy::start(
        moto.port,
        faults::Schedule {
            error_every: 6,
            cut_every: 3,
            redate: true,
            ..Default::default()
        },
    );
    Bucket {
        _moto: moto,
        proxy,
        name: "conformance".into(),
    }
}

/// A vault on the tests' vault endpoint, behind the fault proxy.
fn vault() -> GlacierVault {
    let vault = Vault::start(&["conformance"], 0.5);
    let proxy = Proxy::start(
        vault.port,
        faults::Schedule {
            error_every: 6,
            cut_every: 3,
            ..Default::default()
        },
    );
    GlacierVault {
        _vault: vault,
        proxy,
        name: "conformance".into(),
    }
}

fn ship(args: &[&str], input: &[u8]) -> Run {
    run(&bin("zstream-ship"), args, input)
}

/// What ls lists under the place's prefix, sorted.
fn names(place: &dyn Place) -> Vec<(String, u64)> {
    let r = place.ship(&["ls", "--json", &place.prefix()], b"");
    r.expect_code(0);
    let mut v: Vec<(String, u64)> = String::from_utf8_lossy(r.stdout())
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Starts a put (with `extra` options), feeds it `fed` bytes and returns it, still waiting for more input, once
/// its unfinished upload is there to see.
fn started_put(place: &dyn Place, key: &str, fed: usize, extra: &[&str]) -> Child {
    let before = stale(place);
    let mut child = Command::new(bin("zstream-ship"))
        .arg("put")
        .args(extra)
        .arg(place.target(key))
        .args(place.options("put"))
        .envs(place.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&Gen::bytes(9, fed))
        .unwrap();
    let t = Instant::now();
    while stale(place) == before {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{}: the put of {key} left no unfinished upload to see within 30 s",
            place.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A put killed halfway with SIGKILL: it can clean nothing up (gc's work).
fn killed_put(place: &dyn Place, key: &str, fed: usize) {
    let mut child = started_put(place, key, fed, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A put stopped halfway with SIGTERM or SIGINT (a cron timeout, Ctrl-C) cleans up before it dies: no
/// unfinished upload stays for gc, and the process dies of the signal, saying so.
fn signalled_put(place: &dyn Place, key: &str, fed: usize, (sig, num): (&str, i32)) {
    let p = place.name();
    let before = stale(place);
    let mut child = started_put(place, key, fed, &[]);
    // Its stdin stays open until it has died: the signal, not an end of input, must end it.
    let stdin = child.stdin.take();
    let killed = Command::new("kill")
        .args([format!("-{num}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(num),
        "{p}: {sig} put: {}; {err}",
        out.status
    );
    assert!(err.contains(&format!("interrupted by {sig}")), "{p}: {err}");
    assert_eq!(
        stale(place),
        before,
        "{p}: a {sig} put left an unfinished upload: {err}"
    );
}

/// A put never replaces an object unless told to: a cut stream (a dying upstream) cannot tell itself from a
/// whole one, so the store is what must refuse. Checked up front, and at the commit for an object that appears
/// while the upload runs.
fn never_replaces(place: &dyn Place, one: &str, kept: &[u8]) {
    let p = place.name();
    for len in [3usize, 6 << 20] {
        let r = place.ship(&["put", &place.target("pool/fs/1")], &Gen::bytes(5, len));
        r.expect_code(1).expect_clean_stderr("zstream-ship");
        assert!(r.stderr().contains("exists"), "{p}: {}", r.describe());
        assert_eq!(
            place.ship(&["get", one], b"").stdout(),
            kept,
            "{p}: a refused put replaced the object"
        );
    }
    let before = stale(place);
    let mut racing = started_put(place, "pool/fs/raced", 6 << 20, &[]);
    place.put("pool/fs/raced", b"first");
    drop(racing.stdin.take());
    let out = racing.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{p}: the racing put: {err}");
    assert!(err.contains("exists"), "{p}: {err}");
    let raced = place.url("pool/fs/raced");
    assert_eq!(
        place.ship(&["get", &raced], b"").stdout(),
        b"first",
        "{p}: the racing put replaced it"
    );
    assert_eq!(
        stale(place),
        before,
        "{p}: the refused upload was not aborted"
    );
    place.ship(&["rm", &raced], b"").expect_code(0);
}

/// How many unfinished uploads gc would take now.
fn stale(place: &dyn Place) -> usize {
    let r = place.ship(
        &["gc", "--dry-run", "--older-than", "0", &place.prefix()],
        b"",
    );
    r.expect_code(0);
    String::from_utf8_lossy(r.stdout()).lines().count()
}

/// The sizes every place must store and give back: empty, around 1 MiB, and multipart (parts are 5 MiB on S3
/// and 1 MiB on Glacier).
const SIZES: [usize; 7] = [
    0,
    1,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    5 * (1 << 20) + 3,
    17 * (1 << 20) + 7,
];

/// Round trips of every size, and ls lists exactly what was put.
fn round_trips(place: &dyn Place) {
    let p = place.name();
    let mut stored = Vec::new();
    for len in SIZES {
        let data = Gen::bytes(len as u64, len);
        let url = place.put(&format!("pool/fs/{len}"), &data);
        let r = place.ship(&["get", &url], b"");
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        assert!(
            r.stdout() == data.as_slice(),
            "{p}: {len} bytes came back different"
        );
        stored.push((url, len as u64));
    }
    stored.sort();
    assert_eq!(names(place), stored, "{p}: ls does not list what was put");
    place.ship(&["restore", &stored[1].0], b"").expect_code(0);
    if let Some((errors, cuts)) = place.faults() {
        assert!(
            errors >= 3 && cuts >= 3,
            "{p}: too few faults to prove anything: {errors} errors, {cuts} cuts"
        );
    }
}

/// The checksum every place computes for `data`, in `put --json` form, written out here from the services'
/// definitions rather than taken from zstream-ship.
fn expected_checksum(place: &dyn Place, data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match place.name() {
        "file" => format!("sha256:{}", hex(&Sha256::digest(data))),
        "glacier" => format!("sha256-tree:{}", zstream_tests::vault::tree_hash(data)),
        // Multipart composites are pinned in zstream-ship's unit tests; single parts are plain SHA-256.
        _ => {
            use base64_of as b64;
            format!("s3-sha256:{}", b64(&Sha256::digest(data)))
        }
    }
}

fn base64_of(d: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in d.chunks(3) {
        let n = c.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - c.len()));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// `put --json` says what was stored (URL, bytes, the target's checksum), and `stat` reads the same back from the
/// target; `--expect-size` and `--expect-checksum` exit 3 when the object is not what was put. A vault cannot
/// look up one archive: its stat is a usage error, and its inventory lists the same tree hash.
fn stored_and_read_back(place: &dyn Place) {
    let p = place.name();
    let mut stored = Vec::new();
    for len in [0usize, 1, 5 * (1 << 20) + 3, 11 * (1 << 20)] {
        let data = Gen::bytes(len as u64 + 1, len);
        let key = format!("pool/fs/json{len}");
        let r = place.ship(&["put", "--json", &place.target(&key)], &data);
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        let out: serde_json::Value = serde_json::from_slice(r.stdout())
            .unwrap_or_else(|e| panic!("{p}: put --json printed no JSON ({e}): {}", r.describe()));
        assert_eq!(out["bytes"], len as u64, "{p}: {len} bytes");
        let url = out["url"].as_str().expect("url").to_string();
        let sum = out["checksum"].as_str().expect("checksum").to_string();
        if p != "s3" || len < 5 << 20 {
            assert_eq!(sum, expected_checksum(place, &data), "{p}: {len} bytes");
        } else {
            assert!(
                sum.starts_with("s3-sha256:")
                    && sum.ends_with(&format!("-{}", len.div_ceil(5 << 20))),
                "{p}: {sum}"
            );
        }
        if p == "glacier" {
            place.ship(&["stat", &url], b"").expect_code(2);
            stored.push((url, sum));
            continue;
        }
        let size = len.to_string();
        let good = [
            "stat",
            "--json",
            "--expect-size",
            &size,
            "--expect-checksum",
            &sum,
            &url,
        ];
        let r = place.ship(&good, b"");
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        let back: serde_json::Value = serde_json::from_slice(r.stdout()).expect("stat --json");
        assert_eq!(back["size"], len as u64, "{p}: stat size");
        assert_eq!(back["name"], url.as_str(), "{p}: stat name");
        place
            .ship(&["stat", "--expect-size", "7", &url], b"")
            .expect_code(3);
        if let Some(path) = url.strip_prefix("file://") {
            // The digest lives in the file's attribute; without it, stat reads the file and says the same.
            assert!(
                rustix::fs::getxattr(path, "user.zstream.sha256", &mut [0u8; 64][..])
                    .is_ok_and(|n| n == 64),
                "{p}: put set no user.zstream.sha256 on {path}"
            );
            rustix::fs::removexattr(path, "user.zstream.sha256").expect("removing the attribute");
            place.ship(&good, b"").expect_code(0);
        }
        // The object replaced by other bytes of the same length: the size holds, the checksum does not.
        let other = Gen::bytes(len as u64 + 2, len);
        if len > 0 {
            place
                .ship(&["put", "--overwrite", &url], &other)
                .expect_code(0);
            place.ship(&good, b"").expect_code(3);
        }
    }
    place
        .ship(&["stat", &place.url("pool/none")], b"")
        .expect_code(if p == "glacier" { 2 } else { 1 });
    if p == "glacier" {
        let r = place.ship(&["ls", "--json", &place.prefix()], b"");
        r.expect_code(0);
        let listed = String::from_utf8_lossy(r.stdout()).to_string();
        for (url, sum) in stored {
            assert!(
                listed.lines().any(|l| l.contains(&url) && l.contains(&sum)),
                "{p}: the inventory does not list {url} with {sum}: {listed}"
            );
        }
    }
}

/// An object is replaced only with --overwrite, and then whole. A vault names every archive itself, so there two
/// puts are two archives, both readable.
fn overwrite(place: &dyn Place) {
    let p = place.name();
    let one = place.put("pool/fs/1", b"x");
    if !place.overwrites() {
        let two = place.put("pool/fs/1", b"second");
        assert_ne!(one, two, "{p}: a second put must be a second archive");
        assert_eq!(place.ship(&["get", &one], b"").stdout(), b"x");
        assert_eq!(place.ship(&["get", &two], b"").stdout(), b"second");
        return;
    }
    never_replaces(place, &one, b"x");
    let r = place.ship(
        &["put", "--overwrite", &place.target("pool/fs/1")],
        b"second",
    );
    r.expect_code(0).expect_clean_stderr("zstream-ship");
    assert_eq!(place.ship(&["get", &one], b"").stdout(), b"second");
}

/// A put stopped by SIGTERM, SIGINT or SIGHUP leaves no object and no unfinished upload; one killed by SIGKILL leaves no
/// object, and an object it was replacing stays as it was.
fn interrupted_puts(place: &dyn Place) {
    let p = place.name();
    let one = place.put("pool/fs/1", b"kept");
    let listed = names(place);
    signalled_put(place, "pool/fs/termed", 6 << 20, ("SIGTERM", 15));
    signalled_put(place, "pool/fs/interrupted", 6 << 20, ("SIGINT", 2));
    signalled_put(place, "pool/fs/hungup", 6 << 20, ("SIGHUP", 1));
    assert_eq!(names(place), listed, "{p}: a signalled put left an object");
    killed_put(place, "pool/fs/killed", 6 << 20);
    assert_eq!(names(place), listed, "{p}: a killed put left an object");
    let extra: &[&str] = if place.overwrites() {
        &["--overwrite"]
    } else {
        &[]
    };
    let mut over = started_put(place, "pool/fs/1", 6 << 20, extra);
    over.kill().unwrap();
    over.wait().unwrap();
    assert_eq!(
        place.ship(&["get", &one], b"").stdout(),
        b"kept",
        "{p}: a killed overwrite broke the old object"
    );
}

/// gc lists what killed puts left with its age, keeps the young (they may be running), removes the old, and then
/// finds nothing.
fn gc(place: &dyn Place) {
    let p = place.name();
    killed_put(place, "pool/fs/a", 6 << 20);
    killed_put(place, "pool/fs/b", 6 << 20);
    let young = place.ship(&["gc", "--dry-run", &place.prefix()], b"");
    young.expect_code(0);
    let lines = String::from_utf8_lossy(young.stdout()).to_string();
    assert_eq!(
        lines.lines().count(),
        2,
        "{p}: gc lists both leftovers: {}",
        young.describe()
    );
    assert!(
        lines
            .lines()
            .all(|l| l.starts_with("kept\t") && l.contains("age ")),
        "{p}: gc took a young upload: {}",
        young.describe()
    );
    let kept = place.ship(&["gc", &place.prefix()], b"");
    kept.expect_code(0);
    assert_eq!(
        stale(place),
        2,
        "{p}: gc at the default age removed a young upload: {}",
        kept.describe()
    );
    let r = place.ship(&["gc", "--older-than", "0", &place.prefix()], b"");
    r.expect_code(0);
    let removed = String::from_utf8_lossy(r.stdout()).to_string();
    assert_eq!(
        removed
            .lines()
            .filter(|l| l.starts_with("removed\t"))
            .count(),
        2,
        "{p}: {}",
        r.describe()
    );
    assert!(place
        .ship(&["gc", "--older-than", "0", &place.prefix()], b"")
        .stdout()
        .is_empty());
}

/// rm removes; what is not there is one line, exit 1, named by the URL the user gave.
fn rm_and_missing(place: &dyn Place) {
    let p = place.name();
    let empty = place.put("pool/fs/0", b"");
    place.ship(&["rm", &empty], b"").expect_code(0);
    // A vault's listing is its last inventory (a day old on AWS), which still names what was just removed.
    assert!(!place.lists_live() || !names(place).iter().any(|(n, _)| *n == empty));
    let missing = place.ship(&["get", &empty], b"");
    missing.expect_code(1).expect_clean_stderr("zstream-ship");
    assert!(
        missing.stderr().contains(&empty),
        "{p}: {}",
        missing.describe()
    );
    place
        .ship(&["rm", &empty], b"")
        .expect_code(1)
        .expect_clean_stderr("zstream-ship");
}

/// Every property, as a test of its own for every place: one failure does not hide the others.
macro_rules! conformance {
    ($($place:ident => $make:expr;)*) => {$(
        mod $place {
            use super::*;
            #[test]
            fn round_trips_and_listing() {
                round_trips(&$make)
            }
            #[test]
            fn never_replaces_unless_told() {
                overwrite(&$make)
            }
            #[test]
            fn interrupted_puts_leave_nothing() {
                interrupted_puts(&$make)
            }
            #[test]
            fn gc_removes_only_old_leftovers() {
                gc(&$make)
            }
            #[test]
            fn put_says_what_stat_reads_back() {
                stored_and_read_back(&$make)
            }
            #[test]
            fn rm_and_missing_objects() {
                rm_and_missing(&$make)
            }
        }
    )*};
}

conformance! {
    file => dir();
    s3 => bucket();
    glacier => vault();
}

#[test]
fn bad_targets_and_arguments_exit_2() {
    for args in [
        &["put", "/tmp/not-a-url"][..],
        &["put", "file://relative/x"],
        &["get", "file:///tmp/dir/"],
        &["put", "s3://bucket"],
        &["put", "--concurrency", "0", "s3://bucket/key"],
        &["put", "--storage-class", "COLD", "s3://bucket/key"],
        &["put", "--meta", "novalue", "s3://bucket/key"],
        &["put", "--meta", "zstream-bytes=1", "s3://bucket/key"],
        &["get", "glacier://vault"],
        &["put", "--description", "tab\there", "glacier://vault"],
        &["gc", "--older-than", "soon", "file:///tmp/"],
        &["rm", "--sse", "AES256", "file:///tmp/x"],
        &["put", "--meta", "bad key=x", "s3://bucket/key"],
        &["put", "--meta", "k=tab\there", "s3://bucket/key"],
        &["ls", "--part-size", "5MiB", "file:///tmp/"],
        &["get", "--storage-class", "GLACIER", "file:///tmp/x"],
        &["gc", "--older-than", "9999999999999999999", "file:///tmp/"],
        &["put", "--part-size", "1", "s3://bucket/key"],
        &["put", "--part-size", "10T", "s3://bucket/key"],
        &["put", "--size-hint", "100P", "s3://bucket/key"],
        &["put", "--part-size", "8GiB", "glacier://vault"],
        &["put", "--overwrite", "glacier://vault"],
        &["frobnicate"],
    ] {
        ship(args, b"x")
            .expect_code(2)
            .expect_clean_stderr("zstream-ship");
    }
}
