//! A listing longer than any honest store's is refused, not held: whoever can write the bucket (or the directory)
//! must not choose how much memory a run takes. Planted on a file:// store; S3 stops paging at the page that
//! passes the bound (zstream-ship's `list_at_most`), and every other read of the catalog is the same code.

use std::process::Command;
use zstream_catalog::io::MAX_LISTED;

#[test]
fn a_planted_listing_is_refused_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("a.key");
    let k = zstream_seal::key::Key::random().unwrap();
    std::fs::write(&key, zstream_seal::key::to_text(&k).as_bytes()).unwrap();
    std::fs::set_permissions(
        &key,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let store = dir.path().join("store");
    let dest = format!("file://{}", store.display());
    let plan = |input: &str| {
        Command::new(env!("CARGO_BIN_EXE_zstream-catalog"))
            .args(["plan", &dest, "tank/home", "--keys"])
            .arg(&key)
            .env("ZSTREAM_CATALOG_CACHE", "off")
            .env("ZSTREAM_NOW", "2027-01-01T02:00:00Z")
            .stdin(std::process::Stdio::piped())
            .output_with(input)
    };
    // An empty store: a plan for a first full.
    let first = plan("");
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // Under the dataset's prefix (`catalog/tank/home@`), as many names as the bound allows: still read (each a
    // problem, not an entry), then one more: refused, exit 3 (no honest writer makes so many), in one line that
    // names the listing; and the monitoring check says CRITICAL (exit 2), not UNKNOWN.
    let out = String::from_utf8(first.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let record = v["record_url"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_string();
    let entries = std::path::Path::new(&record)
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::create_dir_all(&entries).unwrap();
    for i in 0..MAX_LISTED {
        std::fs::write(entries.join(format!("home@planted-{i}")), b"").unwrap();
    }
    let at = plan("");
    assert_eq!(
        at.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&at.stderr)
    );
    std::fs::write(entries.join("home@planted-one-more"), b"").unwrap();
    let over = plan("");
    let err = String::from_utf8_lossy(&over.stderr);
    assert_eq!(over.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("more than {MAX_LISTED} names"))
            && err.contains("listing the catalog"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let check = Command::new(env!("CARGO_BIN_EXE_zstream-catalog"))
        .args(["check", &dest, "tank/home", "--keys"])
        .arg(&key)
        .env("ZSTREAM_NOW", "2027-01-01T02:00:00Z")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("ZSTREAM CRITICAL - tank/home: listing the catalog")
            && line.contains(&format!("more than {MAX_LISTED} names")),
        "{line}"
    );
}

/// `Command::output` with `input` on stdin.
trait OutputWith {
    fn output_with(&mut self, input: &str) -> std::process::Output;
}

impl OutputWith for Command {
    fn output_with(&mut self, input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}
