//! The testkits (docs/formats/testkit/par/v1/, v2/): the committed files are what the generator makes, and the
//! built binary does with each what its header says.

use sha2::Digest;
use std::path::Path;
use zstream_par::testkit;
use zstream_tests::proc::run;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/formats/testkit/par");

#[test]
fn committed_testkit_has_not_drifted() {
    for version in [1, 2] {
        zstream_tests::testkit::assert_committed(
            &Path::new(DIR).join(format!("v{version}")),
            testkit::generate(version),
            "cargo run -p zstream-par --example par-testkit docs/formats/testkit/par",
        );
    }
}

#[test]
fn the_binary_does_what_every_testkit_file_says() {
    let mut n = 0;
    for version in [1, 2] {
        for (name, file) in testkit::generate(version) {
            let f = testkit::parse(&file);
            let mut args = vec!["-d"];
            args.extend(f.args.iter().map(String::as_str));
            let r = run(
                Path::new(env!("CARGO_BIN_EXE_zstream-par")),
                &args,
                &f.stream,
            );
            r.expect_clean_stderr("zstream-par");
            let name = format!("v{version}/{name}");
            let want = if f.success { 0 } else { 3 };
            assert_eq!(r.code(), Some(want), "{name}: {}", r.describe());
            assert_eq!(r.stdout().len(), f.output_len, "{name}: {}", r.describe());
            assert_eq!(
                hex::encode(sha2::Sha256::digest(r.stdout())),
                f.output_sha256,
                "{name}"
            );
            n += 1;
        }
    }
    assert!(n >= 40, "{n} cases");
}
