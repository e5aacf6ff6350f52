//! Writes the testkit files into the directory given: `cargo run -p zstream-seal --example seal-testkit
//! docs/formats/testkit/seal`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("the directory to write into");
    zstream_tests::testkit::write(
        std::path::Path::new(&dir),
        zstream_seal::testkit::generate(),
    )
}
