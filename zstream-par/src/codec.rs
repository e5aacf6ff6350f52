//! Reed-Solomon over GF(2^8) (reed-solomon-erasure): parity for a group of equal-length shards, and the missing data
//! shards back from any `data` surviving shards. The field and matrix are written down in docs/formats/par-v1.md
//! and checked against an independent implementation in the tests.

use reed_solomon_erasure::galois_8::ReedSolomon;

pub struct Codec {
    rs: ReedSolomon,
}

impl Codec {
    pub fn new(data: u8, parity: u8) -> anyhow::Result<Codec> {
        let rs = ReedSolomon::new(data as usize, parity as usize).map_err(|e| {
            anyhow::anyhow!("Reed-Solomon with {data} data and {parity} parity blocks: {e:?}")
        })?;
        Ok(Codec { rs })
    }

    /// Fills `parity` (each as long as the data shards) from `data`.
    pub fn encode(&self, data: &[&[u8]], parity: &mut [Vec<u8>]) {
        self.rs
            .encode_sep(data, parity)
            .expect("shard counts and lengths are checked by the caller");
    }

    /// Rebuilds the data shards marked absent, in place, from the present ones (at least `data` of them).
    pub fn reconstruct(&self, shards: &mut [(&mut [u8], bool)]) -> anyhow::Result<()> {
        self.rs
            .reconstruct_data(shards)
            .map_err(|e| anyhow::anyhow!("Reed-Solomon reconstruction: {e:?}"))
    }
}
