//! One conformance suite that every zstream-ship target passes, on the built binary: a directory, and an S3
//! bucket on moto's server reached through a proxy that injects 500/503 answers and drops connections mid-body.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
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
    /// Whether the place reports when an unfinished upload began. moto does not: it answers every
    /// ListMultipartUploads with Initiated 2010-11-10T20:48:33Z, so gc's age filter is only seen to hold on
    /// the places that say.
    fn dates_uploads(&self) -> bool {
        true
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
    fn dates_uploads(&self) -> bool {
        false
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

struct Dir(PathBuf);
impl Place for Dir {
    fn name(&self) -> &str {
        "file"
    }
    fn url(&self, key: &str) -> String {
        format!("file://{}/{key}", self.0.display())
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

fn conformance(place: &dyn Place) {
    let p = place.name();
    // Round trips, empty included; parts are 5 MiB (S3) or 1 MiB (Glacier), so the larger ones are multipart.
    let mut stored = Vec::new();
    for len in [
        0usize,
        1,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        5 * (1 << 20) + 3,
        17 * (1 << 20) + 7,
    ] {
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
    let listed = names(place);
    assert_eq!(listed, stored, "{p}: ls does not list what was put");
    let one = stored.iter().find(|(_, l)| *l == 1).unwrap().0.clone();

    // Overwrite only when asked: the new object replaces the old one whole (vaults never overwrite: each put is
    // a new archive).
    let mut listed = listed;
    if place.overwrites() {
        never_replaces(place, &one, &Gen::bytes(1, 1));
        let r = place.ship(
            &["put", "--overwrite", &place.target("pool/fs/1")],
            b"second",
        );
        r.expect_code(0).expect_clean_stderr("zstream-ship");
        assert_eq!(place.ship(&["get", &one], b"").stdout(), b"second");
        listed
            .iter_mut()
            .filter(|(n, _)| *n == one)
            .for_each(|e| e.1 = 6);
    }
    let kept = place.ship(&["get", &one], b"").stdout().to_vec();

    // A put killed halfway leaves no object, and an old object under that name stays as it was; one stopped by
    // SIGTERM or SIGINT leaves not even an unfinished upload.
    signalled_put(place, "pool/fs/termed", 6 << 20, ("SIGTERM", 15));
    signalled_put(place, "pool/fs/interrupted", 6 << 20, ("SIGINT", 2));
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
        kept,
        "{p}: a killed overwrite broke the old object"
    );

    // gc finds what the killed puts left (only when old enough), removes it, and then finds nothing.
    // At the default age they are young: listed as kept, with their age, and left alone.
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
            .all(|l| l.starts_with("kept\t") && l.contains("age "))
            || !place.dates_uploads(),
        "{p}: gc took a young upload: {}",
        young.describe()
    );
    let r = place.ship(&["gc", "--older-than", "0", &place.prefix()], b"");
    r.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(r.stdout()).lines().count(),
        2,
        "{p}: {}",
        r.describe()
    );
    assert!(place
        .ship(&["gc", "--older-than", "0", &place.prefix()], b"")
        .stdout()
        .is_empty());

    // rm, and what is not there.
    let empty = stored.iter().find(|(_, l)| *l == 0).unwrap().0.clone();
    place.ship(&["rm", &empty], b"").expect_code(0);
    // A vault's listing is its last inventory (a day old on AWS), which still names what was just removed.
    assert!(!place.lists_live() || !names(place).iter().any(|(n, _)| *n == empty));
    let missing = place.ship(&["get", &empty], b"");
    missing.expect_code(1).expect_clean_stderr("zstream-ship");
    // Named by the URL the user gave, not by a path or an internal id.
    assert!(
        missing.stderr().contains(&empty),
        "{p}: {}",
        missing.describe()
    );
    place
        .ship(&["rm", &empty], b"")
        .expect_code(1)
        .expect_clean_stderr("zstream-ship");
    place.ship(&["restore", &one], b"").expect_code(0);
}

#[test]
fn file_targets_pass_the_conformance_suite() {
    let d =
        Dir(std::env::temp_dir().join(format!("zstream-ship-conformance-{}", std::process::id())));
    conformance(&d);
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

#[test]
fn s3_targets_pass_the_conformance_suite_through_faults() {
    let moto = Moto::start();
    moto.bucket("conformance");
    let proxy = Proxy::start(
        moto.port,
        faults::Schedule {
            error_every: 6,
            cut_every: 3,
            ..Default::default()
        },
    );
    let b = Bucket {
        _moto: moto,
        proxy,
        name: "conformance".into(),
    };
    conformance(&b);
    // The faults happened, and the suite held through them.
    let (errors, cuts) = (b.proxy.count(|c| &c.errors), b.proxy.count(|c| &c.cuts));
    assert!(
        errors >= 10 && cuts >= 5,
        "too few faults to prove anything: {errors} errors, {cuts} cuts"
    );
}

#[test]
fn glacier_vaults_pass_the_conformance_suite_through_faults() {
    let vault = Vault::start(&["conformance"], 0.5);
    let proxy = Proxy::start(
        vault.port,
        faults::Schedule {
            error_every: 6,
            cut_every: 3,
            ..Default::default()
        },
    );
    let v = GlacierVault {
        _vault: vault,
        proxy,
        name: "conformance".into(),
    };
    conformance(&v);
    let (errors, cuts) = (v.proxy.count(|c| &c.errors), v.proxy.count(|c| &c.cuts));
    assert!(
        errors >= 10 && cuts >= 5,
        "too few faults to prove anything: {errors} errors, {cuts} cuts"
    );
}
