//! Walks a ZFS send stream as it flows past, record by record, without holding more than one record: checks the
//! running Fletcher-4 of every record, the END checksum and guid of every (sub)stream, the layout of compound
//! (`-R`/`-I`) streams, and that the stream ends exactly after its last END.
//!
//! A compound stream's substreams are checked as a whole too, since each is intact on its own and a stream cut
//! apart at their boundaries and rejoined (one dropped, swapped or repeated) would pass every checksum:
//! - the chain: each incremental substream starts from the snapshot the one before it for the same dataset
//!   ended at, no full follows another substream of its dataset, and each dataset's substreams come together
//!   (zfs send sends one dataset's snapshots, then the next dataset's);
//! - the header's list (its nvlist, XDR or native; held whole, at most `MAX_HEADER` bytes): every substream is a
//!   snapshot it lists, with the same guid; every dataset that has the stream's `tosnap` gets that substream; and
//!   a dataset's first substream starts from the listed `fromsnap` when there is one, or else not from a listed
//!   snapshot the stream does not hold.

use super::fletcher::{Fletcher4, Order};
use super::nvlist::{self, Value};
use super::record::{self, Type, CKSUM_AT, HDR_COMPOUND, HDR_SUBSTREAM, RECORD_LEN};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

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
    /// The first BEGIN's creation time (the snapshot's, Unix seconds, by the sender's clock).
    pub creation_time: u64,
    /// Every substream's BEGIN: one for a plain full or incremental stream, one per snapshot for a compound one.
    pub substreams: Vec<Substream>,
    /// The stream ended after a whole record without its END, as `zfs send --saved` makes them (accepted only by
    /// [`Walker::finish_saved`]). In JSON only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub saved: bool,
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
        let saved = if self.saved { " (saved: no END)" } else { "" };
        format!(
            "{} {kind}{saved} toguid={} fromguid={}",
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
    #[error(
        "ZFS stream lacks its END record: input ended at byte {at} after a complete record (cut there, or a \
         `zfs send --saved` stream, which lacks it on purpose: --saved accepts those)"
    )]
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
    #[error("data after the end of the ZFS stream at byte {at} (at least {extra} bytes; checking stops there)")]
    Trailing { at: u64, extra: u64 },
    #[error("ZFS compound stream damaged: its header's list of snapshots cannot be read ({why})")]
    Header { why: String },
    #[error(
        "ZFS compound stream damaged: substream {name} at byte {at} starts from guid {fromguid}, but the one \
         before it for that dataset ended at guid {expected} (substreams dropped, swapped or repeated)"
    )]
    Chain {
        at: u64,
        name: String,
        fromguid: u64,
        expected: u64,
    },
    #[error(
        "ZFS compound stream damaged: substream {name} at byte {at} is a full stream after another substream \
         of its dataset"
    )]
    FullAfter { at: u64, name: String },
    #[error("ZFS compound stream damaged: substream {name} (guid {guid}) at byte {at} is not one its header lists")]
    NotListed { at: u64, name: String, guid: u64 },
    #[error(
        "ZFS compound stream damaged: substream {name} at byte {at} starts from guid {fromguid}, not from \
         {want} as its header says (a substream before it is missing)"
    )]
    StartsElsewhere {
        at: u64,
        name: String,
        fromguid: u64,
        want: String,
    },
    #[error(
        "ZFS compound stream damaged: substream {name} at byte {at} comes before any substream of its parent \
         {parent} (substreams reordered or dropped)"
    )]
    BeforeParent {
        at: u64,
        name: String,
        parent: String,
    },
    #[error(
        "ZFS compound stream damaged: substream {name} at byte {at} follows another dataset's, after earlier \
         substreams of its own (zfs send keeps each dataset's together: substreams reordered)"
    )]
    Scattered { at: u64, name: String },
    #[error("ZFS compound stream incomplete: its header lists {name}, but the stream holds no substream for it")]
    MissingSubstream { name: String },
}

/// The most a compound header's nvlist may hold: it is read whole (a list of every snapshot of every dataset
/// sent; tens of MiB would be millions of snapshots).
pub const MAX_HEADER: u64 = 64 << 20;

/// What a compound stream's header says it holds.
#[derive(Debug, Default)]
struct Listed {
    tosnap: String,
    fromsnap: Option<String>,
    /// Dataset name -> its snapshots (name -> guid).
    fss: HashMap<String, HashMap<String, u64>>,
}

impl Listed {
    fn parse(buf: &[u8]) -> Result<Listed, ZfsError> {
        let bad = |why: &str| ZfsError::Header { why: why.into() };
        let top = nvlist::parse(buf).map_err(|why| ZfsError::Header { why })?;
        let Some(Value::Str(tosnap)) = nvlist::lookup(&top, "tosnap") else {
            return Err(bad("no tosnap"));
        };
        let fromsnap = match nvlist::lookup(&top, "fromsnap") {
            Some(Value::Str(f)) => Some(f.clone()),
            _ => None,
        };
        let Some(Value::List(fss)) = nvlist::lookup(&top, "fss") else {
            return Err(bad("no fss"));
        };
        let mut out = Listed {
            tosnap: tosnap.clone(),
            fromsnap,
            fss: HashMap::new(),
        };
        for (_, fs) in fss {
            let Value::List(fs) = fs else {
                return Err(bad("an fss entry that is not a list"));
            };
            let Some(Value::Str(name)) = nvlist::lookup(fs, "name") else {
                return Err(bad("a dataset without its name"));
            };
            let mut snaps = HashMap::new();
            if let Some(Value::List(list)) = nvlist::lookup(fs, "snaps") {
                for (snap, guid) in list {
                    let Value::U64(g) = guid else {
                        return Err(bad("a snapshot guid that is not a number"));
                    };
                    snaps.insert(snap.clone(), *g);
                }
            }
            out.fss.insert(name.clone(), snaps);
        }
        Ok(out)
    }
}

/// The chain and list checks of a compound stream's substreams, as they arrive.
#[derive(Debug, Default)]
struct Substreams {
    /// The compound header's payload while it is read, then what it lists.
    header: Vec<u8>,
    listed: Option<Listed>,
    /// Dataset -> the toguid of its last substream so far.
    last: HashMap<String, u64>,
    /// The dataset of the substream before.
    current: Option<String>,
    delivered: HashSet<u64>,
}

impl Substreams {
    fn begin(&mut self, at: u64, name: &str, toguid: u64, fromguid: u64) -> Result<(), ZfsError> {
        let (fs, snap) = name.split_once('@').unwrap_or((name, ""));
        // zfs send sends each dataset's snapshots together, one dataset after another.
        if self.current.as_deref() != Some(fs) && self.last.contains_key(fs) {
            return Err(ZfsError::Scattered {
                at,
                name: name.into(),
            });
        }
        self.current = Some(fs.to_string());
        match self.last.get(fs) {
            Some(_) if fromguid == 0 => {
                return Err(ZfsError::FullAfter {
                    at,
                    name: name.into(),
                });
            }
            Some(&expected) if expected != fromguid => {
                return Err(ZfsError::Chain {
                    at,
                    name: name.into(),
                    fromguid,
                    expected,
                });
            }
            Some(_) => {}
            None => self.first(at, name, fs, fromguid)?,
        }
        if let Some(listed) = &self.listed {
            if listed.fss.get(fs).and_then(|s| s.get(snap)) != Some(&toguid) {
                return Err(ZfsError::NotListed {
                    at,
                    name: name.into(),
                    guid: toguid,
                });
            }
        }
        self.last.insert(fs.to_string(), toguid);
        self.delivered.insert(toguid);
        Ok(())
    }

    /// A dataset's first substream comes after its parent's (when the parent is sent too) and starts where the
    /// header says the stream was sent from.
    fn first(&self, at: u64, name: &str, fs: &str, fromguid: u64) -> Result<(), ZfsError> {
        let Some(snaps) = self.listed.as_ref().and_then(|l| Some((l, l.fss.get(fs)?))) else {
            return Ok(());
        };
        let (listed, snaps) = snaps;
        if let Some((parent, _)) = fs.rsplit_once('/') {
            let sent = listed
                .fss
                .get(parent)
                .is_some_and(|p| p.contains_key(&listed.tosnap));
            if sent && !self.last.contains_key(parent) {
                return Err(ZfsError::BeforeParent {
                    at,
                    name: name.into(),
                    parent: parent.into(),
                });
            }
        }
        let elsewhere = |want: String| ZfsError::StartsElsewhere {
            at,
            name: name.into(),
            fromguid,
            want,
        };
        match listed
            .fromsnap
            .as_ref()
            .and_then(|f| Some((f, snaps.get(f)?)))
        {
            Some((f, &want)) if want != fromguid => {
                Err(elsewhere(format!("{fs}@{f} (guid {want})")))
            }
            Some(_) => Ok(()),
            // Sent whole (or from a clone's origin, in another dataset): not from a snapshot listed here.
            None => match snaps.iter().find(|(_, &g)| g == fromguid && fromguid != 0) {
                Some((s, _)) => Err(elsewhere(format!(
                    "nothing in {fs} before it, yet it starts from @{s}"
                ))),
                None => Ok(()),
            },
        }
    }

    /// At the final END: every dataset that has the stream's tosnap got that substream.
    fn finish(&self) -> Result<(), ZfsError> {
        let Some(listed) = &self.listed else {
            return Ok(());
        };
        let mut names: Vec<_> = listed.fss.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (fs, snaps) in names {
            if let Some(g) = snaps.get(&listed.tosnap) {
                if !self.delivered.contains(g) {
                    return Err(ZfsError::MissingSubstream {
                        name: format!("{fs}@{}", listed.tosnap),
                    });
                }
            }
        }
        Ok(())
    }
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
    /// Whether the payload being read is the compound header's (kept whole for its list).
    in_header: bool,
    subs: Substreams,
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
            in_header: false,
            subs: Substreams::default(),
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
                if self.in_header {
                    self.subs.header.extend_from_slice(&data[..n]);
                }
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

    /// The input ended, and it may be a `zfs send --saved` stream: OpenZFS leaves the END out of those on purpose
    /// (module/zfs/dmu_send.c: "the omitted DRR_END record will signal to the receive side that the stream is
    /// incomplete"), and nothing else in them says so. Such a stream is accepted when it is a plain stream that
    /// ended after a whole record (and payload); `saved` is then true. Every record's checksum was checked on the
    /// way, but nothing can tell a saved stream from one cut at a record boundary, and the last record's payload
    /// (if it has one) is covered by no later checksum. Anything else is judged as [`Walker::finish`] does.
    pub fn finish_saved(mut self) -> Result<StreamInfo, ZfsError> {
        if matches!(self.pos, Position::Inside { .. })
            && !self.compound
            && self.rec_len == 0
            && self.payload_left == 0
        {
            self.info.saved = true;
            return Ok(self.info);
        }
        self.finish()
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
        self.in_header = self.compound && ty == Type::Begin && self.info.substreams.is_empty();
        if self.in_header && self.payload_left > MAX_HEADER {
            return Err(ZfsError::Header {
                why: format!(
                    "{} bytes, more than the {} MiB zstream-hash reads",
                    self.payload_left,
                    MAX_HEADER >> 20
                ),
            });
        }
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
                if self.compound {
                    self.subs.begin(at, &b.toname, b.toguid, b.fromguid)?;
                }
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
            self.info.creation_time = b.creation_time;
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
                if self.compound && self.info.substreams.is_empty() && self.subs.listed.is_none() {
                    // The header's END holds: its checksum covered the list, which is read now. An empty list
                    // (none was sent) leaves only the chain to check.
                    let header = std::mem::take(&mut self.subs.header);
                    if !header.is_empty() {
                        self.subs.listed = Some(Listed::parse(&header)?);
                    }
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
                self.subs.finish()?;
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

    /// The real OpenZFS 2.x streams (both byte orders and nvlist encodings, redacted, raw, compressed, dedup).
    fn openzfs() -> Vec<(String, Vec<u8>)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/openzfs");
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .expect("tests/data/openzfs")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "zsend"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        assert_eq!(v.len(), 15, "the OpenZFS fixtures are all there");
        v
    }

    #[test]
    fn every_openzfs_stream_is_accepted_and_every_flip_refused() {
        for (name, d) in openzfs() {
            let info = walk(&d).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(walk_in_pieces(&d, 997).unwrap(), info, "{name}");
            // A flipped bit every 509 bytes (every byte of every stream is tested on the zfs-fuse ones).
            let mut d = d;
            for at in (0..d.len()).step_by(509) {
                d[at] ^= 0x10;
                assert!(walk(&d).is_err(), "{name}: byte {at} flipped was accepted");
                d[at] ^= 0x10;
            }
        }
    }

    #[test]
    fn compound_streams_rejoined_wrongly_are_refused() {
        let mut compounds: Vec<(String, Vec<u8>)> = openzfs()
            .into_iter()
            .filter(|(_, d)| walk(d).unwrap().compound)
            .collect();
        assert_eq!(compounds.len(), 6, "the OpenZFS compound fixtures");
        compounds.push(("zfs-fuse -R".into(), COMPOUND.to_vec()));
        for order in [Order::Little, Order::Big] {
            compounds.push((format!("synth {order:?}"), Synth::compound(order, true)));
        }
        for (name, d) in compounds {
            let p = crate::zfs::synth::pieces(&d);
            let n = p.len();
            assert!(n >= 4, "{name}: header, two substreams or more, final END");
            assert_eq!(p.concat(), d);
            let (head, subs, end) = (&p[0], &p[1..n - 1], &p[n - 1]);
            let join = |subs: &[&Vec<u8>]| {
                let mut v = head.clone();
                subs.iter().for_each(|s| v.extend_from_slice(s));
                v.extend_from_slice(end);
                v
            };
            let all: Vec<&Vec<u8>> = subs.iter().collect();
            walk(&join(&all)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut cases: Vec<(String, Vec<&Vec<u8>>)> = vec![("no substream".into(), vec![])];
            for i in 0..subs.len() {
                let mut dropped = all.clone();
                dropped.remove(i);
                cases.push((format!("substream {i} dropped"), dropped));
                let mut twice = all.clone();
                twice.insert(i, &subs[i]);
                cases.push((format!("substream {i} twice"), twice));
                if i + 1 < subs.len() {
                    let mut swapped = all.clone();
                    swapped.swap(i, i + 1);
                    cases.push((format!("substreams {i} and {} swapped", i + 1), swapped));
                }
            }
            for (what, case) in cases {
                let r = walk(&join(&case));
                assert!(r.is_err(), "{name}: {what} was accepted: {r:?}");
            }
        }
    }

    #[test]
    fn saved_streams_lack_their_end_and_are_accepted_only_when_asked() {
        // A --saved stream is a plain stream whose END was left out.
        for (name, s) in [
            ("full", FULL.to_vec()),
            ("incremental", INCREMENTAL.to_vec()),
            ("synth", Synth::full(Order::Big, true)),
        ] {
            let saved = &s[..s.len() - RECORD_LEN];
            assert!(
                matches!(walk(saved), Err(ZfsError::MissingEnd { .. })),
                "{name}"
            );
            let mut w = Walker::new();
            w.feed(saved).unwrap();
            let info = w.finish_saved().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(info.saved, "{name}");
            assert_eq!(info.toguid, walk(&s).unwrap().toguid, "{name}");
            // A whole stream is still a whole stream, with --saved too.
            let mut w = Walker::new();
            w.feed(&s).unwrap();
            assert!(!w.finish_saved().unwrap().saved, "{name}");
            // Cut inside a record or its payload: refused.
            for cut in [saved.len() - 1, saved.len() - RECORD_LEN / 2, 100] {
                let mut w = Walker::new();
                w.feed(&saved[..cut]).unwrap();
                assert!(w.finish_saved().is_err(), "{name} cut at {cut}");
            }
        }
        // A compound stream without its final END is not a saved stream.
        let mut w = Walker::new();
        w.feed(&COMPOUND[..COMPOUND.len() - RECORD_LEN]).unwrap();
        assert!(matches!(
            w.finish_saved(),
            Err(ZfsError::MissingFinalEnd { .. })
        ));
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
