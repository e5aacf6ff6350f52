//! Writes the test vectors of docs/formats/par-v1-vectors.json to stdout.
fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&zstream_par::vectors::generate()).expect("JSON")
    );
}
