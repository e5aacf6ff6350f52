//! Walks a ZFS send stream as it flows past, record by record, without holding more than one record: checks the
//! running Fletcher-4 of every record, the END checksum and guid of every (sub)stream, the layout of compound
//! (`-R`/`-I`) streams, and that the stream ends exactly after its last END.

use super::fletcher::{Fletcher4, Order};
use super::record::{self, Type, CKSUM_AT, HDR_COMPOUND, HDR_SUBSTREAM, RECORD_LEN};
use serde::Serialize;

/// What a stream's BEGIN records said. Guids are decimal strings in JSON: they are 64-bit and jq or JavaScript
/// would round them as numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    pub toname: String,
    #[serde(serialize_with = "as_string")]
    pub toguid: u64,
    #[serde(serialize_with = "as_string")]
    pub fromguid: u64,
    pub compound: bool,
    /// Feature flags of the first BEGIN (`versioninfo >> 2`).
    pub features: u64,
    /// Every substream's BEGIN: one for a plain full or incremental stream, one per snapshot for a compound one.
    pub substreams: Vec<Substream>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Substream {
    pub toname: String,
    #[serde(serialize_with = "as_string")]
    pub toguid: u64,
    #[serde(serialize_with = "as_string")]
    pub fromguid: u64,
}

fn as_string<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl StreamInfo {
    /// One line for progress and messages.
    pub fn summary(&self) -> String {
        let kind = if self.compound {
            format!("compound, {} substreams", self.substreams.len())
        } else if self.fromguid == 0 {
            "full".into()
        } else {
            "incremental".into()
        };
        format!(
            "{} {kind} toguid={} fromguid={}",
            self.toname, self.toguid, self.fromguid
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZfsError {
    #[error("not a ZFS send stream (no BEGIN record at the start)")]
    NotZfs,
    #[error("empty input: not a ZFS send stream")]
    Empty,
    #[error("ZFS stream cut short at byte {at}, inside {what}")]
    CutShort { at: u64, what: String },
    #[error("ZFS stream lacks its END record: input ended at byte {at} after a complete record")]
    MissingEnd { at: u64 },
    #[error("ZFS compound stream lacks its final END record: input ended at byte {at}")]
    MissingFinalEnd { at: u64 },
    #[error("ZFS stream checksum mismatch in the {what} record at byte {at}")]
    RecordChecksum { at: u64, what: String },
    #[error("ZFS stream checksum mismatch: the END record at byte {at} does not match the data before it")]
    EndChecksum { at: u64 },
    #[error("ZFS stream damaged: END record at byte {at} names toguid {found}, its BEGIN said {expected}")]
    EndGuid { at: u64, found: u64, expected: u64 },
    #[error(
        "ZFS stream damaged: non-zero bytes in the unused part of the END record at byte {at}"
    )]
    EndPadding { at: u64 },
    #[error("ZFS stream damaged: unknown record type {ty} at byte {at}")]
    UnknownType { at: u64, ty: u32 },
    #[error("ZFS stream damaged: unexpected {what} record at byte {at}")]
    Unexpected { at: u64, what: String },
    #[error("ZFS stream damaged: BEGIN record at byte {at} has header type {hdrtype}")]
    BadHeaderType { at: u64, hdrtype: u64 },
    #[error("{extra} bytes of data after the end of the ZFS stream at byte {at}")]
    Trailing { at: u64, extra: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Nothing read yet; the first record must be a BEGIN.
    Start,
    /// Between a BEGIN and its END.
    Inside { toguid: u64 },
    /// In a compound stream after the header's or a substream's END: a BEGIN or the final END comes next.
    Between,
    /// After the last END: nothing may follow.
    Done,
}

pub struct Walker {
    offset: u64,
    rec: [u8; RECORD_LEN],
    rec_len: usize,
    payload_left: u64,
    /// The record that owns the payload being read, for messages.
    payload_of: (u64, u32),
    order: Order,
    sum: Fletcher4,
    pos: Position,
    compound: bool,
    info: StreamInfo,
    trailing: u64,
}

impl Default for Walker {
    fn default() -> Self {
        Self::new()
    }
}

impl Walker {
    pub fn new() -> Self {
        Walker {
            offset: 0,
            rec: [0; RECORD_LEN],
            rec_len: 0,
            payload_left: 0,
            payload_of: (0, 0),
            order: Order::Little,
            sum: Fletcher4::new(Order::Little),
            pos: Position::Start,
            compound: false,
            info: StreamInfo::default(),
            trailing: 0,
        }
    }

    /// What the first BEGIN said, once it has been read.
    pub fn info(&self) -> Option<&StreamInfo> {
        (self.pos != Position::Start).then_some(&self.info)
    }

    /// Takes the next piece of the stream. After an error the walker must not be fed again.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), ZfsError> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len() as u64) as usize;
                self.sum.update(&data[..n]);
                self.payload_left -= n as u64;
                self.offset += n as u64;
                data = &data[n..];
                continue;
            }
            if self.pos == Position::Done {
                // Count the rest so the message can say how much, but report at once.
                self.trailing += data.len() as u64;
                return Err(ZfsError::Trailing {
                    at: self.offset,
                    extra: self.trailing,
                });
            }
            let n = (RECORD_LEN - self.rec_len).min(data.len());
            self.rec[self.rec_len..self.rec_len + n].copy_from_slice(&data[..n]);
            self.rec_len += n;
            self.offset += n as u64;
            data = &data[n..];
            if self.pos == Position::Start
                && self.rec_len >= 16
                && record::begin_order(&self.rec).is_none()
            {
                return Err(ZfsError::NotZfs);
            }
            if self.rec_len == RECORD_LEN {
                self.record()?;
                self.rec_len = 0;
            }
        }
        Ok(())
    }

    /// The input ended: Ok with what the stream was if it ended exactly after its last END.
    pub fn finish(self) -> Result<StreamInfo, ZfsError> {
        let at = self.offset;
        if self.pos == Position::Start {
            return Err(if at == 0 {
                ZfsError::Empty
            } else if is_begin_prefix(&self.rec[..self.rec_len]) {
                ZfsError::CutShort {
                    at,
                    what: "the first BEGIN record".into(),
                }
            } else {
                ZfsError::NotZfs
            });
        }
        if self.payload_left > 0 {
            let (rec_at, ty) = self.payload_of;
            let what = format!(
                "the payload of the {} record at byte {rec_at}",
                record::type_name(ty)
            );
            return Err(ZfsError::CutShort { at, what });
        }
        if self.rec_len > 0 {
            return Err(ZfsError::CutShort {
                at,
                what: format!("the record at byte {}", at - self.rec_len as u64),
            });
        }
        match self.pos {
            Position::Done => Ok(self.info),
            Position::Between => Err(ZfsError::MissingFinalEnd { at }),
            _ => Err(ZfsError::MissingEnd { at }),
        }
    }

    fn record(&mut self) -> Result<(), ZfsError> {
        let at = self.offset - RECORD_LEN as u64;
        if self.pos == Position::Start {
            self.order = record::begin_order(&self.rec).ok_or(ZfsError::NotZfs)?;
        }
        let o = self.order;
        let rec = &self.rec;
        let raw_type = o.u32(rec);
        let ty = Type::from_u32(raw_type).ok_or(ZfsError::UnknownType { at, ty: raw_type })?;
        let unexpected = || ZfsError::Unexpected {
            at,
            what: record::type_name(raw_type),
        };
        match (self.pos, ty) {
            (Position::Start, Type::Begin) | (Position::Between, Type::Begin | Type::End) => {}
            (Position::Inside { .. }, t) if t != Type::Begin => {}
            _ => return Err(unexpected()),
        }

        // The checksum restarts at every BEGIN and covers every byte; records other than BEGIN carry the running
        // sum of everything before their byte 280 (zero in streams from before that feature).
        if ty == Type::Begin {
            if record::begin_order(rec) != Some(o) {
                return Err(ZfsError::Unexpected {
                    at,
                    what: "BEGIN (wrong magic)".into(),
                });
            }
            self.sum = Fletcher4::new(o);
        }
        let before = self.sum.sums();
        self.sum.update(&rec[..CKSUM_AT]);
        if ty != Type::Begin {
            let stored = record::sums_at(rec, CKSUM_AT, o);
            if stored != [0; 4] && stored != self.sum.sums() {
                return Err(ZfsError::RecordChecksum {
                    at,
                    what: record::type_name(raw_type),
                });
            }
        }
        self.sum.update(&rec[CKSUM_AT..]);

        match ty {
            Type::Begin => self.begin(at)?,
            Type::End => self.end(at, before)?,
            _ => {}
        }
        self.payload_left = record::payload_len(ty, &self.rec, o);
        self.payload_of = (at, raw_type);
        Ok(())
    }

    fn begin(&mut self, at: u64) -> Result<(), ZfsError> {
        let b = record::parse_begin(&self.rec, self.order);
        match (self.pos, b.hdrtype) {
            (Position::Start, HDR_COMPOUND) => {
                // The compound header: BEGIN + nvlist of the snapshots, closed by its own END.
                self.compound = true;
            }
            (Position::Start | Position::Between, HDR_SUBSTREAM) => {
                self.info.substreams.push(Substream {
                    toname: b.toname.clone(),
                    toguid: b.toguid,
                    fromguid: b.fromguid,
                });
            }
            _ => {
                return Err(ZfsError::BadHeaderType {
                    at,
                    hdrtype: b.hdrtype,
                })
            }
        }
        if self.pos == Position::Start {
            self.info.toname = b.toname;
            self.info.toguid = b.toguid;
            self.info.fromguid = b.fromguid;
            self.info.features = b.features;
            self.info.compound = self.compound;
        }
        self.pos = Position::Inside { toguid: b.toguid };
        Ok(())
    }

    fn end(&mut self, at: u64, before: [u64; 4]) -> Result<(), ZfsError> {
        let o = self.order;
        let rec = &self.rec;
        match self.pos {
            Position::Inside { toguid } => {
                if record::sums_at(rec, 8, o) != before {
                    return Err(ZfsError::EndChecksum { at });
                }
                let found = o.u64(&rec[40..]);
                if found != toguid {
                    return Err(ZfsError::EndGuid {
                        at,
                        found,
                        expected: toguid,
                    });
                }
                // No checksum covers the END record's unused bytes, so they are checked to be zero.
                if rec[4..8] != [0; 4] || rec[48..CKSUM_AT].iter().any(|&b| b != 0) {
                    return Err(ZfsError::EndPadding { at });
                }
                self.pos = if self.compound {
                    Position::Between
                } else {
                    Position::Done
                };
            }
            Position::Between => {
                // The final END of a compound stream is all zero but its type.
                if rec[4..].iter().any(|&b| b != 0) {
                    return Err(ZfsError::EndPadding { at });
                }
                self.pos = Position::Done;
            }
            _ => unreachable!("END is only accepted inside a stream or between substreams"),
        }
        Ok(())
    }
}

/// Whether `b` could be the start of a BEGIN record in either byte order.
fn is_begin_prefix(b: &[u8]) -> bool {
    let le = [
        0u8, 0, 0, 0, 0, 0, 0, 0, 0xac, 0xcb, 0xba, 0xf5, 0x02, 0, 0, 0,
    ];
    let be = [
        0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0xf5, 0xba, 0xcb, 0xac,
    ];
    let n = b.len().min(16);
    // Bytes 4..8 (payload length) may be anything.
    let matches = |m: &[u8; 16]| b[..n.min(4)] == m[..n.min(4)] && (n <= 8 || b[8..n] == m[8..n]);
    matches(&le) || matches(&be)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zfs::synth::Synth;

    const FULL: &[u8] = include_bytes!("../../tests/data/full.zfs");
    const INCREMENTAL: &[u8] = include_bytes!("../../tests/data/incremental.zfs");
    const COMPOUND: &[u8] = include_bytes!("../../tests/data/compound.zfs");

    fn walk(data: &[u8]) -> Result<StreamInfo, ZfsError> {
        let mut w = Walker::new();
        w.feed(data)?;
        w.finish()
    }

    /// Feeds in pieces of every size from 1 to 700 bytes: record and payload boundaries fall anywhere in a read.
    fn walk_in_pieces(data: &[u8], piece: usize) -> Result<StreamInfo, ZfsError> {
        let mut w = Walker::new();
        for p in data.chunks(piece) {
            w.feed(p)?;
        }
        w.finish()
    }

    fn all_streams() -> Vec<(&'static str, Vec<u8>)> {
        let mut v = vec![
            ("full", FULL.to_vec()),
            ("incremental", INCREMENTAL.to_vec()),
            ("compound", COMPOUND.to_vec()),
        ];
        for order in [Order::Little, Order::Big] {
            for sums in [false, true] {
                v.push(("synth full", Synth::full(order, sums)));
                v.push(("synth compound", Synth::compound(order, sums)));
            }
        }
        v
    }

    #[test]
    fn real_streams_are_read() {
        let full = walk(FULL).unwrap();
        assert_eq!(full.toname, "tp1/fs@s1");
        assert!(!full.compound);
        assert_eq!(full.fromguid, 0);
        assert_eq!(full.substreams.len(), 1);

        let inc = walk(INCREMENTAL).unwrap();
        assert_eq!(inc.toname, "tp1/fs@s2");
        assert_eq!(
            inc.fromguid, full.toguid,
            "the incremental starts from the full's snapshot"
        );

        let comp = walk(COMPOUND).unwrap();
        assert!(comp.compound);
        assert_eq!(comp.toname, "tp1/fs@s3");
        let names: Vec<_> = comp.substreams.iter().map(|s| s.toname.as_str()).collect();
        assert_eq!(
            names,
            ["tp1/fs@s1", "tp1/fs@s2", "tp1/fs@s3", "tp1/fs/child@s3"]
        );
        assert_eq!(comp.substreams[0].toguid, full.toguid);
        assert_eq!(comp.substreams[1].fromguid, full.toguid);
    }

    #[test]
    fn synthetic_streams_in_both_orders() {
        for order in [Order::Little, Order::Big] {
            for sums in [false, true] {
                let info = walk(&Synth::full(order, sums)).unwrap();
                assert_eq!(
                    (info.toguid, info.toname.as_str()),
                    (0x1122_3344_5566_7788, "pool/fs@snap")
                );
                let info = walk(&Synth::compound(order, sums)).unwrap();
                assert_eq!(info.substreams.len(), 2);
                assert_eq!(info.substreams[1].fromguid, 0xa);
            }
        }
    }

    #[test]
    fn any_piece_size_gives_the_same_answer() {
        for (name, s) in all_streams() {
            let whole = walk(&s).unwrap();
            for piece in (1..40).chain([311, 312, 313, 4096]) {
                assert_eq!(
                    walk_in_pieces(&s, piece).as_ref(),
                    Ok(&whole),
                    "{name} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn every_cut_is_caught() {
        for (name, s) in all_streams() {
            for cut in 0..s.len() {
                let r = walk(&s[..cut]);
                assert!(
                    r.is_err(),
                    "{name} cut at {cut} of {} was accepted",
                    s.len()
                );
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        for (name, s) in all_streams() {
            let mut d = s.clone();
            for at in 0..d.len() {
                for bit in [0x01u8, 0x80] {
                    d[at] ^= bit;
                    let r = walk(&d);
                    d[at] ^= bit;
                    assert!(
                        r.is_err(),
                        "{name} with bit {bit:#x} of byte {at} flipped was accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn record_checksums_are_checked_where_present() {
        let mut s = Synth::full(Order::Little, true);
        // The first WRITE's payload starts after BEGIN and the WRITE record: damage it.
        s[2 * RECORD_LEN + 3] ^= 1;
        // The next record's running checksum catches it before the END does.
        assert!(
            matches!(walk(&s), Err(ZfsError::RecordChecksum { .. })),
            "{:?}",
            walk(&s)
        );
    }

    #[test]
    fn named_failures() {
        assert_eq!(walk(b""), Err(ZfsError::Empty));
        assert_eq!(walk(b"hello, world, this is text"), Err(ZfsError::NotZfs));
        assert!(matches!(walk(&FULL[..100]), Err(ZfsError::CutShort { .. })));
        assert_eq!(
            walk(&FULL[..FULL.len() - RECORD_LEN]),
            Err(ZfsError::MissingEnd {
                at: (FULL.len() - RECORD_LEN) as u64
            })
        );
        assert!(matches!(
            walk(&COMPOUND[..COMPOUND.len() - RECORD_LEN]),
            Err(ZfsError::MissingFinalEnd { .. })
        ));
        let mut extra = FULL.to_vec();
        extra.push(0);
        assert!(matches!(
            walk(&extra),
            Err(ZfsError::Trailing { extra: 1, .. })
        ));
        let mut bad_end = FULL.to_vec();
        let n = bad_end.len();
        bad_end[n - RECORD_LEN + 8] ^= 4;
        assert!(matches!(walk(&bad_end), Err(ZfsError::EndChecksum { .. })));
    }
}
