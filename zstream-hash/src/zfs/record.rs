//! The fixed 312-byte record of a ZFS send stream (`dmu_replay_record`) and what each type says about the payload
//! that follows it. Offsets are from the start of the record; see shared facts and docs/formats/zfs-stream.md.

use super::fletcher::Order;

pub const RECORD_LEN: usize = 312;
/// Where the running checksum sits in every record but BEGIN.
pub const CKSUM_AT: usize = 280;
pub const MAGIC: u64 = 0x2F5B_ACBAC;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Begin,
    Object,
    FreeObjects,
    Write,
    Free,
    End,
    WriteByRef,
    Spill,
    WriteEmbedded,
    ObjectRange,
    Redact,
}

impl Type {
    pub fn from_u32(t: u32) -> Option<Type> {
        use Type::*;
        Some(match t {
            0 => Begin,
            1 => Object,
            2 => FreeObjects,
            3 => Write,
            4 => Free,
            5 => End,
            6 => WriteByRef,
            7 => Spill,
            8 => WriteEmbedded,
            9 => ObjectRange,
            10 => Redact,
            _ => return None,
        })
    }
}

/// `versioninfo` bits 0-1 of BEGIN.
pub const HDR_SUBSTREAM: u64 = 1;
pub const HDR_COMPOUND: u64 = 2;

/// The byte order a BEGIN record's magic announces, or None if these bytes are not a BEGIN record.
pub fn begin_order(rec: &[u8]) -> Option<Order> {
    if rec.len() < 16 || rec[..4] != [0; 4] {
        return None;
    }
    [Order::Little, Order::Big]
        .into_iter()
        .find(|&o| o.u64(&rec[8..16]) == MAGIC)
}

/// How many payload bytes follow a record of type `ty`.
pub fn payload_len(ty: Type, rec: &[u8], o: Order) -> u64 {
    let round8 = |n: u64| (n + 7) & !7;
    match ty {
        Type::Begin => o.u32(&rec[4..]) as u64,
        Type::Object => {
            let raw = o.u32(&rec[36..]) as u64;
            if raw != 0 {
                raw
            } else {
                round8(o.u32(&rec[28..]) as u64)
            }
        }
        Type::Write => {
            if rec[50] != 0 {
                o.u64(&rec[96..])
            } else {
                o.u64(&rec[32..])
            }
        }
        Type::Spill => {
            let compressed = o.u64(&rec[40..]);
            if compressed != 0 {
                compressed
            } else {
                o.u64(&rec[16..])
            }
        }
        Type::WriteEmbedded => round8(o.u32(&rec[52..]) as u64),
        _ => 0,
    }
}

/// What a BEGIN record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begin {
    pub hdrtype: u64,
    pub features: u64,
    /// drr_creation_time: the snapshot's creation, Unix seconds (the sender's clock).
    pub creation_time: u64,
    pub toguid: u64,
    pub fromguid: u64,
    pub toname: String,
}

pub fn parse_begin(rec: &[u8], o: Order) -> Begin {
    let versioninfo = o.u64(&rec[16..]);
    let name = &rec[56..RECORD_LEN];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Begin {
        hdrtype: versioninfo & 3,
        features: versioninfo >> 2,
        creation_time: o.u64(&rec[24..]),
        toguid: o.u64(&rec[40..]),
        fromguid: o.u64(&rec[48..]),
        toname: String::from_utf8_lossy(&name[..end]).into_owned(),
    }
}

pub fn sums_at(rec: &[u8], at: usize, o: Order) -> [u64; 4] {
    [
        o.u64(&rec[at..]),
        o.u64(&rec[at + 8..]),
        o.u64(&rec[at + 16..]),
        o.u64(&rec[at + 24..]),
    ]
}

/// The name in an error message.
pub fn type_name(t: u32) -> String {
    match Type::from_u32(t) {
        Some(ty) => format!("{ty:?}").to_uppercase(),
        None => format!("type {t}"),
    }
}
