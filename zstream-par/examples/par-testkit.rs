//! Writes the testkit files into the directory given: `cargo run -p zstream-par --example par-testkit
//! docs/formats/testkit/par`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("the directory to write into");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in zstream_par::testkit::generate() {
        std::fs::write(std::path::Path::new(&dir).join(name), bytes)?;
    }
    Ok(())
}
