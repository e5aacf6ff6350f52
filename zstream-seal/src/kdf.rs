//! From keys and passphrases to the stream's keys: Argon2id for passphrases, then HKDF-SHA256 over every key
//! material together, so that each key is needed and none is enough.

use crate::key::{Key, KeyId, KEY_LEN};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Argon2id cost, stored in the header so a stream opens with the parameters it was sealed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Argon2Params {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Argon2Params {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second here, per passphrase.
    pub const DEFAULT: Argon2Params = Argon2Params {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };
    /// What an opener accepts from a header: a forged header must not make it allocate without bound.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    pub const MAX_T_COST: u32 = 64;
    pub const MAX_P_COST: u32 = 16;

    pub fn check(&self) -> Result<(), String> {
        // p is bounded first so that 8 * p (Argon2's least memory) cannot overflow on a forged header.
        let ok = (1..=Self::MAX_P_COST).contains(&self.p_cost)
            && (8 * self.p_cost..=Self::MAX_M_COST_KIB).contains(&self.m_cost_kib)
            && (1..=Self::MAX_T_COST).contains(&self.t_cost);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Argon2id parameters out of range (m={} KiB, t={}, p={}; at most {} KiB, {}, {})",
                self.m_cost_kib,
                self.t_cost,
                self.p_cost,
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            ))
        }
    }
}

/// The Argon2id work an opener accepts from a header, which nothing has authenticated yet: a forged header could
/// otherwise make every open spend 4 GiB and minutes before it fails. Sealing with more needs the opener to
/// raise it (`--max-argon2-memory`, `--max-argon2-passes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimit {
    pub memory_kib: u32,
    pub passes: u32,
}

impl KdfLimit {
    /// 1 GiB and 16 passes: sixteen times the default memory, five times its passes.
    pub const DEFAULT: KdfLimit = KdfLimit {
        memory_kib: 1024 * 1024,
        passes: 16,
    };

    pub fn allows(&self, p: Argon2Params) -> Result<(), String> {
        if p.m_cost_kib <= self.memory_kib && p.t_cost <= self.passes {
            return Ok(());
        }
        Err(format!(
            "the header asks Argon2id for {} KiB and {} passes, more than this opener allows ({} KiB, {} passes): \
             a forged header, or a stream sealed with --argon2-memory/--argon2-passes above them (raise \
             --max-argon2-memory/--max-argon2-passes to open it)",
            p.m_cost_kib, p.t_cost, self.memory_kib, self.passes
        ))
    }
}

/// The key material of a passphrase for one stream (its salt).
pub fn passphrase_key(passphrase: &[u8], salt: &[u8; 32], p: Argon2Params) -> anyhow::Result<Key> {
    p.check().map_err(anyhow::Error::msg)?;
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(KEY_LEN))
        .map_err(|e| anyhow::anyhow!("Argon2id parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| anyhow::anyhow!("Argon2id: {e}"))?;
    Ok(Key::from_bytes(*out))
}

/// The two keys of a stream.
pub struct StreamKeys {
    pub header_mac: Zeroizing<[u8; 32]>,
    pub payload: Zeroizing<[u8; 32]>,
}

/// Every key material concatenated in ascending id order, so the order in which keys are given does not matter:
/// the input of every key derived from several keys (the stream's keys here, an ec2-pool's raw key), so that each
/// key is needed and none is enough.
pub fn combined(keys: &[Key]) -> Zeroizing<Vec<u8>> {
    let mut sorted: Vec<(KeyId, &Key)> = keys.iter().map(|k| (k.id(), k)).collect();
    sorted.sort_by_key(|(id, _)| *id);
    let mut ikm = Zeroizing::new(Vec::with_capacity(KEY_LEN * keys.len()));
    for (_, k) in sorted {
        ikm.extend_from_slice(k.bytes());
    }
    ikm
}

/// A 32-byte key for a purpose other than a stream's (an ec2-pool's raw key, the catalog's signing key): HKDF-SHA256
/// over every key material `combined`, with a salt and an info string that name the purpose, so that keys for
/// different purposes are independent and each needs every key. One derivation for every such key, so that none
/// can take a shortcut the others do not.
pub fn purpose_key(keys: &[Key], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let ikm = combined(keys);
    let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(info, &mut out[..])
        .expect("32 bytes is a valid HKDF length");
    out
}

/// HKDF-SHA256 with the stream's salt over all key materials `combined`, expanded to the header MAC key and the
/// payload key under distinct labels.
pub fn stream_keys(keys: &[Key], salt: &[u8; 32]) -> StreamKeys {
    let ikm = combined(keys);
    let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut header_mac = Zeroizing::new([0u8; 32]);
    let mut payload = Zeroizing::new([0u8; 32]);
    hk.expand(b"zstream-seal v1 header", &mut header_mac[..])
        .expect("32 bytes is a valid HKDF length");
    hk.expand(b"zstream-seal v1 payload", &mut payload[..])
        .expect("32 bytes is a valid HKDF length");
    StreamKeys {
        header_mac,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::Argon2Params;

    #[test]
    fn forged_parameters_are_refused_without_overflow() {
        // Found by the seal_open fuzz target: p = u32::MAX overflowed 8 * p.
        assert!(Argon2Params {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: u32::MAX
        }
        .check()
        .is_err());
        assert!(Argon2Params {
            m_cost_kib: u32::MAX,
            t_cost: 1,
            p_cost: 1
        }
        .check()
        .is_err());
        assert!(Argon2Params {
            m_cost_kib: 1024,
            t_cost: 0,
            p_cost: 1
        }
        .check()
        .is_err());
        assert!(Argon2Params::DEFAULT.check().is_ok());
    }
}
