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
    /// `zfs send -R pool/fs@b` of a dataset with snapshots a (guid 0xa) and b (0xb). Its header list is XDR
    /// for a little-endian stream and native for a big-endian one, so both encodings are walked.
    pub fn compound(order: Order, record_sums: bool) -> Vec<u8> {
        let mut s = Synth::new(order, record_sums);
        let snaps = [("a", 0xa), ("b", 0xb)];
        let header = match order {
            Order::Little => Nv::Xdr.header("b", None, &[("pool/fs", &snaps)]),
            Order::Big => Nv::Native { little: false }.header("b", None, &[("pool/fs", &snaps)]),
        };
        s.begin(2, 0, 0, "pool/fs@b", &header);
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

/// A stream cut after every END record: for a compound stream the header (BEGIN..END), each substream, and
/// the final END; for tests that rejoin them wrongly. The stream must be well formed.
pub fn pieces(data: &[u8]) -> Vec<Vec<u8>> {
    use super::record::{self, Type};
    let order = record::begin_order(data).expect("a send stream");
    let (mut out, mut start, mut at) = (Vec::new(), 0usize, 0usize);
    while at + RECORD_LEN <= data.len() {
        let rec: &[u8; RECORD_LEN] = data[at..at + RECORD_LEN].try_into().expect("a record");
        let ty = Type::from_u32(order.u32(rec)).expect("a known record type");
        at += RECORD_LEN + record::payload_len(ty, rec, order) as usize;
        if ty == Type::End {
            out.push(data[start..at].to_vec());
            start = at;
        }
    }
    out
}

/// Packed nvlists of a compound stream's header (see nvlist.rs for the two layouts).
#[derive(Clone, Copy)]
pub enum Nv {
    Xdr,
    Native { little: bool },
}

/// A value to pack.
pub enum NvValue<'a> {
    U64(u64),
    Str(&'a str),
    List(Vec<(&'a str, NvValue<'a>)>),
}

impl Nv {
    /// `{tosnap, [fromsnap], fss: {0x<n>: {name, snaps: {snap: guid}}}}`, as `zfs send -R` writes it.
    pub fn header(
        self,
        tosnap: &str,
        fromsnap: Option<&str>,
        fss: &[(&str, &[(&str, u64)])],
    ) -> Vec<u8> {
        let mut top = vec![("tosnap", NvValue::Str(tosnap))];
        if let Some(f) = fromsnap {
            top.push(("fromsnap", NvValue::Str(f)));
        }
        let ids: Vec<String> = (0..fss.len()).map(|i| format!("0x{:x}", i + 1)).collect();
        let list = fss
            .iter()
            .zip(&ids)
            .map(|((name, snaps), id)| {
                let snaps = snaps.iter().map(|(n, g)| (*n, NvValue::U64(*g))).collect();
                (
                    id.as_str(),
                    NvValue::List(vec![
                        ("name", NvValue::Str(name)),
                        ("snaps", NvValue::List(snaps)),
                    ]),
                )
            })
            .collect();
        top.push(("fss", NvValue::List(list)));
        self.pack(&top)
    }

    pub fn pack(self, pairs: &[(&str, NvValue)]) -> Vec<u8> {
        match self {
            Nv::Xdr => {
                let mut out = vec![1, 1, 0, 0];
                xdr_list(&mut out, pairs);
                out
            }
            Nv::Native { little } => {
                let mut out = vec![0, little as u8, 0, 0];
                let n32 = |v: u32| {
                    if little {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    }
                };
                out.extend(n32(0)); // version
                out.extend(n32(1)); // flags
                native_pairs(&mut out, pairs, little);
                out
            }
        }
    }
}

fn xdr_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u32).to_be_bytes());
    out.extend(s.as_bytes());
    out.resize(out.len().next_multiple_of(4), 0);
}

fn xdr_list(out: &mut Vec<u8>, pairs: &[(&str, NvValue)]) {
    out.extend(0u32.to_be_bytes());
    out.extend(1u32.to_be_bytes());
    for (name, v) in pairs {
        let mut body = Vec::new();
        xdr_str(&mut body, name);
        let ty = match v {
            NvValue::U64(_) => 8u32,
            NvValue::Str(_) => 9,
            NvValue::List(_) => 19,
        };
        body.extend(ty.to_be_bytes());
        body.extend(1u32.to_be_bytes());
        match v {
            NvValue::U64(g) => body.extend(g.to_be_bytes()),
            NvValue::Str(s) => xdr_str(&mut body, s),
            NvValue::List(l) => xdr_list(&mut body, l),
        }
        out.extend((body.len() as u32 + 8).to_be_bytes()); // encoded size
        out.extend((body.len() as u32 + 8).to_be_bytes()); // decoded size (not read)
        out.extend(body);
    }
    out.extend([0u8; 8]);
}

fn native_pairs(out: &mut Vec<u8>, pairs: &[(&str, NvValue)], little: bool) {
    let n32 = |v: u32| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let n16 = |v: u16| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    for (name, v) in pairs {
        let mut pair = Vec::new();
        let ty = match v {
            NvValue::U64(_) => 8u32,
            NvValue::Str(_) => 9,
            NvValue::List(_) => 19,
        };
        pair.extend([0u8; 4]); // size, below
        pair.extend(n16(name.len() as u16 + 1));
        pair.extend([0u8; 2]);
        pair.extend(n32(1));
        pair.extend(n32(ty));
        pair.extend(name.as_bytes());
        pair.push(0);
        pair.resize(pair.len().next_multiple_of(8), 0);
        match v {
            NvValue::U64(g) => pair.extend(if little {
                g.to_le_bytes()
            } else {
                g.to_be_bytes()
            }),
            NvValue::Str(s) => {
                pair.extend(s.as_bytes());
                pair.push(0);
            }
            NvValue::List(_) => pair.extend([0u8; 24]), // the nvlist_t; its pairs follow the pair
        }
        pair.resize(pair.len().next_multiple_of(8), 0);
        let size = pair.len() as u32;
        pair[..4].copy_from_slice(&n32(size));
        out.extend(pair);
        if let NvValue::List(l) = v {
            native_pairs(out, l, little);
        }
    }
    out.extend([0u8; 4]);
}
