//! The committed vectors, example and testkit (docs/formats) are what the generator writes, and every testkit case
//! gets from the library the outcome its header states.

use std::path::PathBuf;
use zstream_catalog::record::Entry;
use zstream_catalog::sign::{PublicKey, Secrets};
use zstream_catalog::testkit;
use zstream_seal::key::Key;

fn formats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/formats")
}

#[test]
fn committed_files_do_not_drift() {
    let d = formats();
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        String::from_utf8(read(d.join("catalog-v2-vectors.json"))).unwrap(),
        testkit::vectors(),
        "catalog-v2-vectors.json drifted: cargo run -p zstream-catalog --example catalog-testkit docs/formats"
    );
    assert_eq!(
        String::from_utf8(read(d.join("catalog-v2-example.json"))).unwrap(),
        Entry::Backup(testkit::example()).body() + "\n"
    );
    let cases = testkit::cases();
    let on_disk = std::fs::read_dir(d.join("testkit/catalog"))
        .unwrap()
        .count();
    assert_eq!(
        on_disk,
        cases.len(),
        "a testkit case was added or removed by hand"
    );
    for c in cases {
        assert_eq!(
            read(d.join("testkit/catalog").join(&c.file)),
            c.text,
            "{} drifted",
            c.file
        );
    }
}

/// The vectors, checked from the spec's text: the HKDF by hand, Ed25519 by its public key.
#[test]
fn vectors_follow_the_spec() {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(formats().join("catalog-v2-vectors.json")).unwrap())
            .unwrap();
    let materials: Vec<Vec<u8>> = v["key_materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
        .collect();
    // Sorted by seal key id, concatenated, HKDF-SHA256 with the spec's salt and info.
    let mut by_id: Vec<(Vec<u8>, &Vec<u8>)> = materials
        .iter()
        .map(|m| {
            use sha2::{Digest, Sha256};
            let id = Sha256::new()
                .chain_update(b"zstream-seal key id v1")
                .chain_update(m)
                .finalize()[..8]
                .to_vec();
            (id, m)
        })
        .collect();
    by_id.sort();
    let ikm: Vec<u8> = by_id.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"zstream-catalog v2"), &ikm);
    let mut seed = [0u8; 32];
    hk.expand(b"zstream-catalog v2 signing key", &mut seed)
        .unwrap();
    assert_eq!(hex::encode(seed), v["seed"]);
    let derived = Secrets::derive(
        &materials
            .iter()
            .map(|m| Key::from_bytes(m[..].try_into().unwrap()))
            .collect::<Vec<_>>(),
        &[],
    )
    .unwrap();
    assert_eq!(derived.public().hex(), v["public_key"]);
    // The store id: the first 16 hex digits of SHA-256 of the prefix and the canonical DEST; the body carries it.
    {
        use sha2::{Digest, Sha256};
        let dest = v["store_dest"].as_str().unwrap();
        let id = hex::encode(Sha256::digest(format!("zstream-catalog store\n{dest}")));
        assert_eq!(&id[..16], v["store_id"]);
        let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["store"], v["store_id"]);
    }
    // The stored form is the body, then a signature line that verifies over the prefix and the body.
    let stored = v["stored"].as_str().unwrap();
    let (body, _) = stored.split_once('\n').unwrap();
    assert_eq!(body, v["body"]);
    let key = PublicKey::from_hex(v["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(key.open(stored.as_bytes()), Ok(body));
}

#[test]
fn every_case_gets_its_outcome() {
    let key = testkit::secrets().public();
    let dir = formats().join("testkit/catalog");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a header, a blank line");
        let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
        let body = &bytes[split + 2..];
        let field = |k: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap_or_else(|| panic!("{}: no {k}:", path.display()))
                .to_string()
        };
        let file = path.file_name().unwrap().to_string_lossy();
        match field("expect").as_str() {
            "valid" => {
                testkit::open_single(body, &field("name"), &key)
                    .unwrap_or_else(|w| panic!("{file}: refused: {w}"));
            }
            "refused" => {
                let why = testkit::open_single(body, &field("name"), &key).expect_err(&file);
                assert!(
                    why.contains(&field("why")),
                    "{file}: refused for another reason: {why}"
                );
            }
            "view" => {
                let cat = testkit::open_view(body, &key);
                let newest = cat
                    .newest()
                    .map_or("none".to_string(), |b| b.snapshot.clone());
                assert_eq!(newest, field("newest"), "{file}");
                assert_eq!(
                    cat.problems.len().to_string(),
                    field("problems"),
                    "{file}: {:?}",
                    cat.problems
                );
            }
            other => panic!("{file}: expect: {other}"),
        }
    }
}
