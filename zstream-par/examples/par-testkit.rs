//! Writes the testkit files into the directory given: `cargo run -p zstream-par --example par-testkit
//! docs/formats/testkit/par`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("the directory to write into");
    zstream_tests::testkit::write(std::path::Path::new(&dir), zstream_par::testkit::generate())
}
