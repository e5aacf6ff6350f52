//! Writes the test vectors of docs/formats/par-vVERSION-vectors.json to stdout:
//! `cargo run -p zstream-par --example par-vectors 2 > docs/formats/par-v2-vectors.json`.
fn main() {
    let version = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("the format version: 1 or 2");
    println!(
        "{}",
        serde_json::to_string_pretty(&zstream_par::vectors::generate(version)).expect("JSON")
    );
}
