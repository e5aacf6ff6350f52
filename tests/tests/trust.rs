//! What a failed run must never do, on the whole pipe: replace a good backup. A filter cannot see its upstream's
//! exit status, so a `zfs send` that dies midway looks to every stage like a clean end of a shorter stream; the
//! store is what must refuse (put never replaces an object unless told to).

use zstream_tests::bins::{bin, filters, keygen};
use zstream_tests::data::Gen;
use zstream_tests::moto::Moto;
use zstream_tests::proc::sh_env;

/// Stores a good backup at `url` through the whole pipe, then runs the same pipe from an upstream that dies of
/// SIGKILL after 2 MB: the put must fail and the good backup must come back whole.
fn a_dying_upstream_keeps_the_good_backup(url: &str, env: &[(String, String)]) {
    let d = tempfile::tempdir().unwrap();
    let f = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let [hash, seal, par, ship] = filters();
    std::fs::write(f("full.zfs"), Gen::bytes(77, 6 << 20)).unwrap();
    let keys = keygen(d.path(), &["a.key", "b.key"]);
    let keys = format!("--key-file {} --key-file {}", keys[0], keys[1]);
    let put = format!(
        "{hash} -o {} | {seal} {keys} | {par} | {ship} put --part-size 5MiB {url}",
        f("x.sha256")
    );
    sh_env(&format!("cat {} | {put}", f("full.zfs")), env).expect_code(0);
    std::fs::copy(f("x.sha256"), f("good.sha256")).unwrap();

    let r = sh_env(
        &format!(
            "set +e; (head -c 2000000 {}; kill -9 $BASHPID) | {put}; echo \"${{PIPESTATUS[*]}}\"",
            f("full.zfs")
        ),
        env,
    );
    // ship refuses before it reads a byte, so the stages before it may also fail on the pipe it closed.
    let status = String::from_utf8_lossy(r.stdout()).trim().to_string();
    let codes: Vec<&str> = status.split(' ').collect();
    assert!(
        codes.len() == 5 && codes[0] == "137" && codes[4] == "1",
        "{url}: {status}: {}",
        r.describe()
    );
    assert!(r.stderr().contains("exists"), "{url}: {}", r.describe());

    let back = sh_env(
        &format!(
            "{ship} get {url} | {par} -d | {seal} -d {keys} | {hash} --check {} > {}",
            f("good.sha256"),
            f("back.zfs")
        ),
        env,
    );
    back.expect_code(0);
    assert!(
        std::fs::read(f("back.zfs")).unwrap() == std::fs::read(f("full.zfs")).unwrap(),
        "{url}: the stored backup changed"
    );
}

#[test]
fn a_dying_upstream_does_not_replace_a_file_backup() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("file://{}/pool/fs/mon", d.path().display());
    a_dying_upstream_keeps_the_good_backup(&url, &[]);
}

#[test]
fn a_dying_upstream_does_not_replace_an_s3_backup() {
    let moto = Moto::start();
    moto.bucket("trust");
    a_dying_upstream_keeps_the_good_backup("s3://trust/pool/fs/mon", &moto.env());
}

/// Runs `bin args` with `input` on stdin and a stdout pipe whose reading end is already closed.
fn into_closed_pipe(bin: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(zstream_tests::bins::bin(bin))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn reports_into_a_closed_pipe_fail_in_one_line_without_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let key = &keygen(d.path(), &["a.key"])[0];
    let seal = bin("zstream-seal");
    let sealed = sh_env(
        &format!("echo data | {} --key-file {}", seal.display(), key),
        &[],
    );
    let par = sh_env(
        &format!("echo data | {}", bin("zstream-par").display()),
        &[],
    );
    let dir = d.path().join("store");
    sh_env(
        &format!(
            "echo x | {} put file://{}/obj",
            bin("zstream-ship").display(),
            dir.display()
        ),
        &[],
    )
    .expect_code(0);
    let ls_url = format!("file://{}/", dir.display());
    for (b, args, input) in [
        ("zstream-seal", vec!["inspect"], sealed.stdout()),
        ("zstream-seal", vec!["inspect", "--json"], sealed.stdout()),
        ("zstream-par", vec!["--verify", "--json"], par.stdout()),
        ("zstream-ship", vec!["ls", &ls_url], b""),
        ("zstream-ship", vec!["ls", "--json", &ls_url], b""),
    ] {
        let out = into_closed_pipe(b, &args, input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{b} {args:?}: {}: {err}",
            out.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{b} {args:?}: {err}"
        );
        assert!(err.contains("stdout was closed"), "{b} {args:?}: {err}");
    }
}

#[test]
fn file_objects_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("pool/fs/mon");
    let r = sh_env(
        &format!(
            "echo data | {} put file://{}",
            bin("zstream-ship").display(),
            path.display()
        ),
        &[],
    );
    r.expect_code(0);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "a stored backup is created 0600, whatever the umask"
    );
}
