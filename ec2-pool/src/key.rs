//! The pool's raw encryption key: derived from every key file given, as zstream-seal derives a stream's keys, so
//! that unlocking the pool needs every key holder. It lives in this process's memory (wiped on drop) and on the
//! stdin of the remote `zfs load-key`, nowhere else. The derivation is in docs/formats/ec2-pool-v1.md.

use hkdf::Hkdf;
use sha2::Sha256;
use std::path::PathBuf;
use zeroize::Zeroizing;
use zstream_seal::key::Key;

/// What `keyformat=raw` takes: exactly 32 bytes.
pub const RAW_KEY_LEN: usize = 32;

/// HKDF's salt and the label the pool's name follows (docs/formats/ec2-pool-v1.md).
const SALT: &[u8] = b"zstream ec2-pool v1";
const INFO: &[u8] = b"zstream ec2-pool v1 raw key ";

pub struct PoolKey {
    raw: Zeroizing<[u8; RAW_KEY_LEN]>,
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
        let ikm = zstream_seal::kdf::combined(keys);
        let hk = Hkdf::<Sha256>::new(Some(SALT), &ikm);
        let mut raw = Zeroizing::new([0u8; RAW_KEY_LEN]);
        let info = [INFO, name.as_bytes()].concat();
        hk.expand(&info, &mut raw[..])
            .expect("32 bytes is a valid HKDF length");
        Ok(PoolKey { raw, ids })
    }

    pub fn raw(&self) -> &[u8; RAW_KEY_LEN] {
        &self.raw
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

    /// The vector in docs/formats/ec2-pool-v1.md.
    #[test]
    fn published_vector() {
        let k = PoolKey::derive("offsite", &[key(1), key(2)]).unwrap();
        assert_eq!(
            hex::encode(k.raw()),
            include_str!("../../docs/formats/ec2-pool-v1-vector.txt").trim()
        );
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
