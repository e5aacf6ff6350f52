//! Writes the catalog's vectors, example record and testkit: `cargo run -p zstream-catalog --example
//! catalog-testkit docs/formats`.

use zstream_catalog::record::Entry;
use zstream_catalog::testkit;

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: catalog-testkit DIR (docs/formats)"),
    );
    std::fs::write(dir.join("catalog-v2-vectors.json"), testkit::vectors())
        .expect("writing the vectors");
    std::fs::write(
        dir.join("catalog-v2-example.json"),
        Entry::Backup(testkit::example()).body() + "\n",
    )
    .expect("writing the example");
    let kit = dir.join("testkit/catalog");
    let _ = std::fs::remove_dir_all(&kit);
    std::fs::create_dir_all(&kit).expect("the testkit directory");
    for c in testkit::cases() {
        std::fs::write(kit.join(&c.file), &c.text).expect("writing a case");
    }
}
