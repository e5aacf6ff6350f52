//! The testkit (docs/formats/testkit/seal/): the committed files are what the generator makes, and the built binary
//! does with each what its header says.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zstream_seal::key::{self, Key};
use zstream_seal::testkit;
use zstream_tests::proc::run;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/formats/testkit/seal");

#[test]
fn committed_testkit_has_not_drifted() {
    zstream_tests::testkit::assert_committed(
        Path::new(DIR),
        testkit::generate(),
        "cargo run -p zstream-seal --example seal-testkit docs/formats/testkit/seal",
    );
}

#[test]
fn the_binary_does_what_every_testkit_file_says() {
    let d = tempfile::tempdir().unwrap();
    let mut n = 0;
    for (name, file) in testkit::generate() {
        let t = testkit::parse(&file);
        let mut args = vec!["-d".to_string()];
        for (i, k) in t.keys.iter().enumerate() {
            let p = d.path().join(format!("{name}.{i}.key"));
            std::fs::write(&p, key::to_text(&Key::from_bytes(*k)).as_bytes()).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            args.extend(["--key-file".into(), p.to_str().unwrap().into()]);
        }
        for (i, pw) in t.passphrases.iter().enumerate() {
            let p = d.path().join(format!("{name}.{i}.pw"));
            std::fs::write(&p, format!("{pw}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            args.extend(["--passphrase-file".into(), p.to_str().unwrap().into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(
            Path::new(env!("CARGO_BIN_EXE_zstream-seal")),
            &args,
            &t.stream,
        );
        r.expect_clean_stderr("zstream-seal");
        let want_code = if t.expect == "success" { 0 } else { 3 };
        assert_eq!(r.code(), Some(want_code), "{name}: {}", r.describe());
        if t.expect == "header failure" {
            assert!(
                r.stdout().is_empty(),
                "{name}: wrote before the header held"
            );
        }
        use sha2::Digest;
        assert_eq!(r.stdout().len(), t.output_len, "{name}: {}", r.describe());
        assert_eq!(
            hex::encode(sha2::Sha256::digest(r.stdout())),
            t.output_sha256,
            "{name}"
        );
        n += 1;
    }
    assert!(n >= 20, "{n} cases");
}
