//! Deterministic, incompressible test data made on the fly, so a test can stream gigabytes without holding them
//! and regenerate the same bytes to compare.

/// xorshift64: fast, seedable, and no two seeds give a shifted copy of each other.
pub struct Gen {
    x: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    /// Fills `buf` with the next bytes of the sequence (a whole number of u64 words per call is not required,
    /// but the sequence is only reproducible for equal buffer sizes).
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        Gen::new(seed).fill(&mut v);
        v
    }

    /// A number in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
