//! The catalog's signing key: an Ed25519 key whose seed is derived from every seal key and passphrase the streams
//! are sealed with (zstream-seal's one derivation of purpose keys, the sibling of ec2-pool's raw key). Whoever holds
//! all the keys can write records; anyone given the public key can check them (a monitoring host needs no secret);
//! someone who can write the bucket but holds no key can neither forge a record nor change one.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use zstream_seal::kdf::{self, Argon2Params};
use zstream_seal::key::{self, Key};

/// HKDF's salt and info for the signing key's seed (docs/formats/catalog-v2.md).
const SALT: &[u8] = b"zstream-catalog v2";
const INFO: &[u8] = b"zstream-catalog v2 signing key";
/// What is signed: this, then the entry's line.
pub const CONTEXT: &[u8] = b"zstream-catalog v2\n";
/// Argon2id's salt for a passphrase's key material. Fixed, so that the same passphrase gives the same catalog key
/// on any machine with nothing read from the store first; the spec says what that costs.
const PASSPHRASE_SALT_LABEL: &[u8] = b"zstream-catalog v2 passphrase";

/// The secrets the streams are sealed with, as the catalog needs them: the signing key, and the public names of
/// what it was made from (to compare with a record's `seal`).
pub struct Secrets {
    signing: SigningKey,
    /// The key files' ids, hex, sorted.
    pub key_ids: Vec<String>,
    pub passphrases: u32,
}

impl Secrets {
    /// Loads key files and passphrase files as zstream-seal reads them.
    pub fn load(key_files: &[PathBuf], passphrase_files: &[PathBuf]) -> anyhow::Result<Secrets> {
        if key_files.is_empty() && passphrase_files.is_empty() {
            return Err(zstream_common::usage(
                "give the keys (--keys A,B and/or --passphrase-file F): records are signed with a key derived from all of them",
            ));
        }
        let keys = key_files
            .iter()
            .map(|f| key::load(f))
            .collect::<anyhow::Result<Vec<Key>>>()?;
        let passphrases = passphrase_files
            .iter()
            .map(|f| key::load_passphrase(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Secrets::derive(
            &keys,
            &passphrases.iter().map(|p| &p[..]).collect::<Vec<_>>(),
        )
    }

    /// The signing key of these key materials and passphrases.
    pub fn derive(keys: &[Key], passphrases: &[&[u8]]) -> anyhow::Result<Secrets> {
        let mut key_ids: Vec<String> = keys.iter().map(|k| hex::encode(k.id())).collect();
        key_ids.sort();
        if key_ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(zstream_common::usage(
                "the same key file is given twice; each must be a different key",
            ));
        }
        let salt: [u8; 32] = Sha256::digest(PASSPHRASE_SALT_LABEL).into();
        let mut all = keys.to_vec();
        for p in passphrases {
            all.push(kdf::passphrase_key(p, &salt, Argon2Params::DEFAULT)?);
        }
        let seed = kdf::purpose_key(&all, SALT, INFO);
        Ok(Secrets {
            signing: SigningKey::from_bytes(&seed),
            key_ids,
            passphrases: passphrases.len() as u32,
        })
    }

    /// The signing key's secret seed: for the test vectors only (docs/formats/catalog-v2-vectors.json).
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.signing.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The two lines stored for an entry: its body, then its signature.
    pub fn sign(&self, body: &str) -> String {
        debug_assert!(!body.contains('\n'));
        let sig = self.signing.sign(&message(body));
        format!(
            "{body}\n{{\"signature\":\"{}\",\"public_key\":\"{}\"}}\n",
            hex::encode(sig.to_bytes()),
            self.public().hex()
        )
    }
}

fn message(body: &str) -> Vec<u8> {
    [CONTEXT, body.as_bytes()].concat()
}

/// The key records are checked with: derived from the secrets, or given as 64 hex digits (`zstream-catalog key`
/// prints it) to a host that checks without the secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_hex(s: &str) -> Result<PublicKey, String> {
        let bad = || {
            format!("'{s}' is not a catalog public key (64 hex digits, from `zstream-catalog key`)")
        };
        let bytes: [u8; 32] = hex::decode(s.trim())
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| bad())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The body line of a stored entry whose signature holds under this key; why not, otherwise.
    pub fn open<'a>(&self, stored: &'a [u8]) -> Result<&'a str, String> {
        let text = std::str::from_utf8(stored).map_err(|_| "not UTF-8 text".to_string())?;
        let (body, rest) = text
            .split_once('\n')
            .ok_or("not two lines (an entry, then its signature)")?;
        let sig_line = rest
            .strip_suffix('\n')
            .filter(|l| !l.contains('\n'))
            .ok_or("not exactly two lines (an entry, then its signature)")?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Sig {
            signature: String,
            public_key: String,
        }
        let sig: Sig = serde_json::from_str(sig_line)
            .map_err(|e| format!("its signature line does not parse: {e}"))?;
        if sig.public_key != self.hex() {
            return Err(format!(
                "signed by another key set (public key {}, not {}): records of other keys, or a forgery",
                short(&sig.public_key),
                short(&self.hex())
            ));
        }
        let bytes: [u8; 64] = hex::decode(&sig.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("its signature is not 128 hex digits")?;
        self.0
            .verify_strict(&message(body), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                "its signature does not hold: the entry was changed, or forged".to_string()
            })?;
        Ok(body)
    }
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<Key> {
        (1..=n).map(|i| Key::from_bytes([i; 32])).collect()
    }

    #[test]
    fn every_key_is_needed_and_order_does_not_matter() {
        let ab = Secrets::derive(&keys(2), &[]).unwrap();
        let ba = Secrets::derive(&keys(2).into_iter().rev().collect::<Vec<_>>(), &[]).unwrap();
        let a = Secrets::derive(&keys(1), &[]).unwrap();
        let abp = Secrets::derive(&keys(2), &[b"correct horse".as_slice()]).unwrap();
        assert_eq!(ab.public(), ba.public());
        assert_ne!(ab.public(), a.public());
        assert_ne!(ab.public(), abp.public());
        assert_eq!(abp.passphrases, 1);
        assert!(
            Secrets::derive(&[Key::from_bytes([1; 32]), Key::from_bytes([1; 32])], &[]).is_err()
        );
    }

    #[test]
    fn signed_entries_open_and_anything_else_does_not() {
        let s = Secrets::derive(&keys(2), &[]).unwrap();
        let p = s.public();
        let stored = s.sign(r#"{"a":1}"#);
        assert_eq!(p.open(stored.as_bytes()), Ok(r#"{"a":1}"#));
        // Any change of the body.
        let changed = stored.replacen("1", "2", 1);
        assert!(p
            .open(changed.as_bytes())
            .unwrap_err()
            .contains("does not hold"));
        // Another key set's signature.
        let other = Secrets::derive(&keys(1), &[]).unwrap().sign(r#"{"a":1}"#);
        assert!(p
            .open(other.as_bytes())
            .unwrap_err()
            .contains("another key set"));
        // The other key set's signature with our public key written in.
        let forged = other.replace(
            &Secrets::derive(&keys(1), &[]).unwrap().public().hex(),
            &p.hex(),
        );
        assert!(p
            .open(forged.as_bytes())
            .unwrap_err()
            .contains("does not hold"));
        // Shapes.
        for bad in [
            "",
            "{}",
            "{}\n",
            "{}\n{}\n",
            &format!("{stored}extra\n"),
            &stored.replace('\n', "\r\n"),
        ] {
            assert!(p.open(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(PublicKey::from_hex(&p.hex()), Ok(p));
        assert!(PublicKey::from_hex("00").is_err());
    }
}
