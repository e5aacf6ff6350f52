//! The testkit (docs/formats/testkit/par/): the committed files are what the generator makes, and the built binary
//! does with each what its header says.

use sha2::Digest;
use std::path::Path;
use zstream_par::testkit;
use zstream_tests::proc::run;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/formats/testkit/par");

#[test]
fn committed_testkit_has_not_drifted() {
    zstream_tests::testkit::assert_committed(
        Path::new(DIR),
        testkit::generate(),
        "cargo run -p zstream-par --example par-testkit docs/formats/testkit/par",
    );
}

#[test]
fn the_binary_does_what_every_testkit_file_says() {
    let mut n = 0;
    for (name, file) in testkit::generate() {
        let (expect, len, sha, stream) = testkit::parse(&file);
        let r = run(
            Path::new(env!("CARGO_BIN_EXE_zstream-par")),
            &["-d"],
            &stream,
        );
        r.expect_clean_stderr("zstream-par");
        let want = if expect == "success" { 0 } else { 3 };
        assert_eq!(r.code(), Some(want), "{name}: {}", r.describe());
        assert_eq!(r.stdout().len(), len, "{name}: {}", r.describe());
        assert_eq!(hex::encode(sha2::Sha256::digest(r.stdout())), sha, "{name}");
        n += 1;
    }
    assert!(n >= 14, "{n} cases");
}
