//! Builds small, valid send streams in either byte order, with or without per-record running checksums, so the
//! walker is tested on layouts zfs-fuse cannot produce here (big-endian senders, modern checksummed records).

use super::fletcher::{Fletcher4, Order};
use super::record::{CKSUM_AT, MAGIC, RECORD_LEN};

pub struct Synth {
    pub order: Order,
    /// Fill bytes 280-311 of each record with the running checksum, as OpenZFS 0.7 and later do.
    pub record_sums: bool,
    pub out: Vec<u8>,
    sum: Fletcher4,
}

impl Synth {
    pub fn new(order: Order, record_sums: bool) -> Self {
        Synth {
            order,
            record_sums,
            out: Vec::new(),
            sum: Fletcher4::new(order),
        }
    }

    fn put32(&self, rec: &mut [u8], at: usize, v: u32) {
        let b = match self.order {
            Order::Little => v.to_le_bytes(),
            Order::Big => v.to_be_bytes(),
        };
        rec[at..at + 4].copy_from_slice(&b);
    }

    fn put64(&self, rec: &mut [u8], at: usize, v: u64) {
        let b = match self.order {
            Order::Little => v.to_le_bytes(),
            Order::Big => v.to_be_bytes(),
        };
        rec[at..at + 8].copy_from_slice(&b);
    }

    fn emit(&mut self, mut rec: [u8; RECORD_LEN], payload: &[u8]) {
        let is_begin = rec[..4] == [0; 4];
        if is_begin {
            self.sum = Fletcher4::new(self.order);
        }
        self.sum.update(&rec[..CKSUM_AT]);
        if !is_begin && self.record_sums {
            let s = self.sum.sums();
            for (i, v) in s.iter().enumerate() {
                self.put64(&mut rec, CKSUM_AT + 8 * i, *v);
            }
        }
        self.sum.update(&rec[CKSUM_AT..]);
        self.sum.update(payload);
        self.out.extend_from_slice(&rec);
        self.out.extend_from_slice(payload);
    }

    pub fn begin(&mut self, hdrtype: u64, toguid: u64, fromguid: u64, name: &str, payload: &[u8]) {
        let mut rec = [0u8; RECORD_LEN];
        self.put32(&mut rec, 4, payload.len() as u32);
        self.put64(&mut rec, 8, MAGIC);
        self.put64(&mut rec, 16, hdrtype);
        self.put64(&mut rec, 40, toguid);
        self.put64(&mut rec, 48, fromguid);
        rec[56..56 + name.len()].copy_from_slice(name.as_bytes());
        self.emit(rec, payload);
    }

    /// A WRITE record with an uncompressed payload (its length must be a multiple of 8).
    pub fn write(&mut self, object: u64, offset: u64, data: &[u8]) {
        let mut rec = [0u8; RECORD_LEN];
        self.put32(&mut rec, 0, 3);
        self.put64(&mut rec, 8, object);
        self.put64(&mut rec, 24, offset);
        self.put64(&mut rec, 32, data.len() as u64);
        self.emit(rec, data);
    }

    /// A FREE record (no payload).
    pub fn free(&mut self, object: u64) {
        let mut rec = [0u8; RECORD_LEN];
        self.put32(&mut rec, 0, 4);
        self.put64(&mut rec, 8, object);
        self.emit(rec, &[]);
    }

    pub fn end(&mut self, toguid: u64) {
        let mut rec = [0u8; RECORD_LEN];
        self.put32(&mut rec, 0, 5);
        let s = self.sum.sums();
        for (i, v) in s.iter().enumerate() {
            self.put64(&mut rec, 8 + 8 * i, *v);
        }
        self.put64(&mut rec, 40, toguid);
        self.emit(rec, &[]);
    }

    /// The all-zero END that closes a compound stream.
    pub fn final_end(&mut self) {
        let mut rec = [0u8; RECORD_LEN];
        self.put32(&mut rec, 0, 5);
        self.out.extend_from_slice(&rec);
    }

    /// A full stream of one snapshot with a few writes.
    pub fn full(order: Order, record_sums: bool) -> Vec<u8> {
        let mut s = Synth::new(order, record_sums);
        s.begin(1, 0x1122_3344_5566_7788, 0, "pool/fs@snap", &[]);
        s.write(8, 0, &[7u8; 512]);
        s.free(9);
        s.write(
            8,
            512,
            &(0..1024u32).map(|i| (i * 31) as u8).collect::<Vec<_>>(),
        );
        s.end(0x1122_3344_5566_7788);
        s.out
    }

    /// A compound stream: header with an 8-byte "nvlist", two chained substreams, final END.
    pub fn compound(order: Order, record_sums: bool) -> Vec<u8> {
        let mut s = Synth::new(order, record_sums);
        s.begin(2, 0, 0, "pool/fs@b", &[1, 2, 3, 4, 5, 6, 7, 8]);
        s.end(0);
        s.begin(1, 0xa, 0, "pool/fs@a", &[]);
        s.write(8, 0, &[1u8; 256]);
        s.end(0xa);
        s.begin(1, 0xb, 0xa, "pool/fs@b", &[]);
        s.write(8, 0, &[2u8; 256]);
        s.end(0xb);
        s.final_end();
        s.out
    }
}

impl Synth {
    /// A little-endian stream of about `mib` MiB of 128 KiB WRITE records of pseudo-random (incompressible, like
    /// sealed or compressed data) bytes, written to `out` as it is built.
    pub fn random_writes(mib: u64, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut s = Synth::new(Order::Little, true);
        s.begin(1, 42, 0, "bench/fs@snap", &[]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut block = vec![0u8; 128 << 10];
        for i in 0..mib * 8 {
            for w in block.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes());
            }
            s.write(8, i * block.len() as u64, &block);
            out.write_all(&s.out)?;
            s.out.clear();
        }
        s.end(42);
        out.write_all(&s.out)
    }
}
