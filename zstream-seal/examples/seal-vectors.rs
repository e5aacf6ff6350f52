//! Writes the test vectors of docs/formats/seal-v1-vectors.json to stdout.
fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&zstream_seal::vectors::generate()).expect("JSON")
    );
}
