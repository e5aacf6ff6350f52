//! The pool's raw encryption key: derived from every key file given, as zstream-seal derives a stream's keys, so
//! that unlocking the pool needs every key holder. It lives in this process's memory (wiped on drop) and on the
//! stdin of the remote `zfs load-key`, nowhere else. The derivation is in docs/formats/ec2-pool-v1.md.

use std::path::PathBuf;
use zeroize::Zeroizing;
use zstream_seal::key::Key;

/// What `keyformat=raw` takes: exactly 32 bytes.
pub const RAW_KEY_LEN: usize = 32;

/// HKDF's salt and the labels the pool's name follows (docs/formats/ec2-pool-v1.md).
const SALT: &[u8] = b"zstream ec2-pool v1";
const INFO: &[u8] = b"zstream ec2-pool v1 raw key ";
const LUKS_INFO: &[u8] = b"zstream ec2-pool v1 luks key ";

pub struct PoolKey {
    raw: Zeroizing<[u8; RAW_KEY_LEN]>,
    /// The key of every volume's LUKS2 encryption (`--encryption luks`): its 64 lowercase hex digits are the
    /// passphrase cryptsetup reads on stdin.
    luks: Zeroizing<[u8; RAW_KEY_LEN]>,
    /// The key files' ids, sorted, in hex: public names, stored in the pool's tags so that a wrong or missing key
    /// file is named before anything starts.
    pub ids: Vec<String>,
}

impl PoolKey {
    /// Loads the key files and derives the raw key of pool `name`. Two files with the same key are refused: the
    /// same holder twice is not two holders.
    pub fn load(name: &str, files: &[PathBuf]) -> anyhow::Result<PoolKey> {
        if files.is_empty() {
            return Err(zstream_common::usage(
                "--key-file is needed (the pool's key is derived from every key file given)",
            ));
        }
        let keys = files
            .iter()
            .map(|f| zstream_seal::key::load(f))
            .collect::<anyhow::Result<Vec<Key>>>()?;
        PoolKey::derive(name, &keys).map_err(zstream_common::usage)
    }

    pub fn derive(name: &str, keys: &[Key]) -> Result<PoolKey, String> {
        let mut ids: Vec<String> = keys.iter().map(|k| hex::encode(k.id())).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("the same key file is given twice; each must be a different key".into());
        }
        let raw = zstream_seal::kdf::purpose_key(keys, SALT, &[INFO, name.as_bytes()].concat());
        let luks =
            zstream_seal::kdf::purpose_key(keys, SALT, &[LUKS_INFO, name.as_bytes()].concat());
        Ok(PoolKey { raw, luks, ids })
    }

    pub fn raw(&self) -> &[u8; RAW_KEY_LEN] {
        &self.raw
    }

    /// The LUKS2 passphrase: the LUKS key's 64 lowercase hex digits (text, so that a shell can hand it to each
    /// volume's cryptsetup in turn from one read of stdin).
    pub fn luks_passphrase(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(hex::encode(&self.luks[..]).into_bytes())
    }

    /// The ids as one tag value.
    pub fn ids_tag(&self) -> String {
        self.ids.join(",")
    }

    /// Whether these are the keys the pool was made with (its tag), saying which differ when not.
    pub fn check_against(&self, tag: Option<&str>) -> anyhow::Result<()> {
        let Some(tag) = tag else { return Ok(()) };
        let want: Vec<&str> = tag.split(',').filter(|s| !s.is_empty()).collect();
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|w| !self.ids.iter().any(|i| i == w))
            .collect();
        let extra: Vec<&str> = self
            .ids
            .iter()
            .map(String::as_str)
            .filter(|i| !want.contains(i))
            .collect();
        if missing.is_empty() && extra.is_empty() {
            return Ok(());
        }
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!(
                "missing the key file with id {}",
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            why.push(format!(
                "key file with id {} is not one of the pool's",
                extra.join(", ")
            ));
        }
        Err(zstream_common::usage(format!(
            "these key files do not unlock the pool: {} (the pool needs every key it was created with)",
            why.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    const VECTORS: &str = include_str!("../../docs/formats/ec2-pool-v1-vectors.json");

    /// The vector in docs/formats/ec2-pool-v1-vectors.json: each key's id, and the raw key.
    #[test]
    fn published_vector() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let keys: Vec<Key> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(k["material"].as_str().unwrap(), &mut b).unwrap();
                let key = Key::from_bytes(b);
                assert_eq!(hex::encode(key.id()), k["id"].as_str().unwrap());
                key
            })
            .collect();
        let k = PoolKey::derive(v["pool"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(hex::encode(k.raw()), v["raw_key"].as_str().unwrap());
        assert_eq!(
            String::from_utf8(k.luks_passphrase().to_vec()).unwrap(),
            v["luks_passphrase"].as_str().unwrap()
        );
    }

    /// The format page's way to unlock a pool without ec2-pool (docs/formats/ec2-pool-v1-derive.py, Python's
    /// standard library only) derives the key ec2-pool derives, from real key files, and the vector's.
    #[test]
    fn the_reference_derivation_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["a.key", "b.key"]
            .iter()
            .map(|n| {
                let p = dir.path().join(n);
                zstream_seal::key::generate(&p).unwrap();
                p
            })
            .collect();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/formats/ec2-pool-v1-derive.py"
        );
        let out = std::process::Command::new("python3")
            .args([script, "--hex", "offsite"])
            .args(&files)
            .output()
            .expect("python3 runs the reference derivation");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = PoolKey::load("offsite", &files).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            hex::encode(ours.raw())
        );
        // And the raw bytes, as `zfs load-key` reads them, when stdout is not a terminal.
        let raw = std::process::Command::new("python3")
            .args([script, "offsite"])
            .args(files.iter().rev())
            .output()
            .unwrap();
        assert_eq!(raw.stdout, ours.raw().to_vec());
        // A LUKS pool's passphrase: the hex of its own key, no newline, as cryptsetup's --key-file - reads it.
        let luks = std::process::Command::new("python3")
            .args([script, "--luks", "offsite"])
            .args(&files)
            .output()
            .unwrap();
        assert!(luks.status.success());
        assert_eq!(luks.stdout, ours.luks_passphrase().to_vec());
        assert_ne!(luks.stdout, hex::encode(ours.raw()).into_bytes());
        // A key file with a typing mistake is refused.
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let line = text.lines().find(|l| l.starts_with("2 ")).unwrap();
        let typo: String = line
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 3 {
                    if c == 'A' {
                        'B'
                    } else {
                        'A'
                    }
                } else {
                    c
                }
            })
            .collect();
        std::fs::write(&files[0], text.replace(line, &typo)).unwrap();
        let bad = std::process::Command::new("python3")
            .args([script, "--hex", "offsite"])
            .args(&files)
            .output()
            .unwrap();
        assert!(!bad.status.success());
    }

    #[test]
    fn every_key_counts_and_order_does_not() {
        let ab = PoolKey::derive("p", &[key(1), key(2)]).unwrap();
        let ba = PoolKey::derive("p", &[key(2), key(1)]).unwrap();
        let a = PoolKey::derive("p", &[key(1)]).unwrap();
        let other_pool = PoolKey::derive("q", &[key(1), key(2)]).unwrap();
        assert_eq!(ab.raw(), ba.raw());
        assert_ne!(ab.raw(), a.raw());
        assert_ne!(ab.raw(), other_pool.raw());
        assert!(PoolKey::derive("p", &[key(1), key(1)]).is_err());
    }

    #[test]
    fn tag_check_names_what_differs() {
        let ab = PoolKey::derive("p", &[key(1), key(2)]).unwrap();
        let a = PoolKey::derive("p", &[key(1)]).unwrap();
        assert!(ab.check_against(Some(&ab.ids_tag())).is_ok());
        let e = a.check_against(Some(&ab.ids_tag())).unwrap_err();
        assert!(
            format!("{e}").contains(&format!("missing the key file with id {}", ab.ids[1]))
                || format!("{e}").contains(&format!("missing the key file with id {}", ab.ids[0]))
        );
    }
}
