//! The committed test vectors are what the generator makes today, and each opens to its plaintext.

use zeroize::Zeroizing;
use zstream_seal::filter::{self, Secret};
use zstream_seal::key::{self, Key};

const COMMITTED: &str = include_str!("../../docs/formats/seal-v1-vectors.json");

#[test]
fn committed_vectors_have_not_drifted() {
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert!(
        committed == zstream_seal::vectors::generate(),
        "docs/formats/seal-v1-vectors.json differs from the generator: the format changed. If that is intended, \
         bump the version and run `cargo run -p zstream-seal --example seal-vectors > docs/formats/seal-v1-vectors.json`"
    );
}

#[test]
fn committed_vectors_open() {
    let v: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let ex = &v["key_file_example"];
    let k = key::from_text(ex["text"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(k.bytes()), ex["key"].as_str().unwrap());
    for vec in v["vectors"].as_array().unwrap() {
        let mut secrets = Vec::new();
        for k in vec["key_files"].as_array().unwrap() {
            let b: [u8; 32] = hex::decode(k.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            secrets.push(Secret::KeyFile {
                name: "k".into(),
                key: Key::from_bytes(b),
            });
        }
        for p in vec["passphrases"].as_array().unwrap() {
            secrets.push(Secret::Passphrase {
                name: "p".into(),
                passphrase: Zeroizing::new(p.as_str().unwrap().as_bytes().to_vec()),
            });
        }
        // Given in reverse order: order must not matter.
        secrets.reverse();
        let sealed = hex::decode(vec["sealed"].as_str().unwrap()).unwrap();
        let mut out = Vec::new();
        filter::open(
            &sealed[..],
            &mut out,
            &secrets,
            &filter::OpenOptions::threads(1),
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", vec["name"]));
        assert_eq!(
            hex::encode(&out),
            vec["plaintext"].as_str().unwrap(),
            "{}",
            vec["name"]
        );
    }
}
