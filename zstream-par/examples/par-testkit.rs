//! Writes the testkit files of both format versions into the directory given, in v1/ and v2/: `cargo run -p
//! zstream-par --example par-testkit docs/formats/testkit/par`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("the directory to write into");
    for version in [1, 2] {
        let sub = std::path::Path::new(&dir).join(format!("v{version}"));
        zstream_tests::testkit::write(&sub, zstream_par::testkit::generate(version))?;
    }
    Ok(())
}
