//! One conformance suite that every zstream-ship target passes, on the built binary. Only file:// exists so far;
//! s3:// (moto) and glacier:// join with their backends by adding a `Place`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use zstream_tests::bins::bin;
use zstream_tests::data::Gen;
use zstream_tests::proc::{run, Run};

/// Somewhere objects can be put.
trait Place {
    fn name(&self) -> &str;
    /// The URL of object `key`; `url("")` is the prefix of everything this place holds.
    fn url(&self, key: &str) -> String;
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

fn names(place: &dyn Place, prefix: &str) -> Vec<(String, u64)> {
    let r = ship(&["ls", "--json", &place.url(prefix)], b"");
    r.expect_code(0);
    String::from_utf8_lossy(r.stdout())
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Starts a put, feeds it `fed` bytes, and kills it with SIGKILL while it waits for more.
fn killed_put(place: &dyn Place, key: &str, fed: usize) {
    let mut child = Command::new(bin("zstream-ship"))
        .args(["put", &place.url(key)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&Gen::bytes(9, fed))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
}

fn conformance(place: &dyn Place) {
    let p = place.name();
    // Round trips, empty included.
    for len in [
        0usize,
        1,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        5 * (1 << 20) + 3,
    ] {
        let data = Gen::bytes(len as u64, len);
        let key = format!("pool/fs/{len}");
        ship(&["put", &place.url(&key)], &data)
            .expect_code(0)
            .expect_clean_stderr("zstream-ship");
        let r = ship(&["get", &place.url(&key)], b"");
        r.expect_code(0);
        assert!(
            r.stdout() == data.as_slice(),
            "{p}: {len} bytes came back different"
        );
    }
    let listed = names(place, "pool/fs/");
    assert_eq!(listed.len(), 6, "{p}: {listed:?}");
    assert!(
        listed.contains(&(place.url("pool/fs/1048577"), 1_048_577)),
        "{p}: {listed:?}"
    );

    // Overwrite: the new object replaces the old one whole.
    ship(&["put", &place.url("pool/fs/1")], b"second").expect_code(0);
    assert_eq!(
        ship(&["get", &place.url("pool/fs/1")], b"").stdout(),
        b"second"
    );

    // A put killed halfway leaves no object, and an old object under that name stays as it was.
    killed_put(place, "pool/fs/killed", 3 << 20);
    let killed = place.url("pool/fs/killed");
    assert!(
        !names(place, "pool/fs/").iter().any(|(n, _)| *n == killed),
        "{p}: a killed put left an object"
    );
    killed_put(place, "pool/fs/1", 2 << 20);
    assert_eq!(
        ship(&["get", &place.url("pool/fs/1")], b"").stdout(),
        b"second",
        "{p}: a killed overwrite broke the old object"
    );

    // gc finds what the killed puts left (only when old enough), removes it, and then finds nothing.
    let young = ship(&["gc", "--dry-run", &place.url("")], b"");
    young.expect_code(0);
    assert!(
        young.stdout().is_empty(),
        "{p}: gc took a young upload: {}",
        young.describe()
    );
    let r = ship(&["gc", "--older-than", "0", &place.url("")], b"");
    r.expect_code(0);
    assert_eq!(
        String::from_utf8_lossy(r.stdout()).lines().count(),
        2,
        "{p}: {}",
        r.describe()
    );
    assert!(ship(&["gc", "--older-than", "0", &place.url("")], b"")
        .stdout()
        .is_empty());

    // rm, and what is not there.
    ship(&["rm", &place.url("pool/fs/0")], b"").expect_code(0);
    assert!(!names(place, "pool/")
        .iter()
        .any(|(n, _)| *n == place.url("pool/fs/0")));
    ship(&["get", &place.url("pool/fs/0")], b"")
        .expect_code(1)
        .expect_clean_stderr("zstream-ship");
    ship(&["rm", &place.url("pool/fs/0")], b"")
        .expect_code(1)
        .expect_clean_stderr("zstream-ship");
    ship(&["restore", &place.url("pool/fs/1")], b"").expect_code(0);
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
        &["put", "s3://bucket/key"],
        &["get", "glacier://vault/archive"],
        &["gc", "--older-than", "soon", "file:///tmp/"],
        &["frobnicate"],
    ] {
        ship(args, b"x")
            .expect_code(2)
            .expect_clean_stderr("zstream-ship");
    }
}
