//! Which stream a damaged input is. The first intact frame cannot simply decide: when the outer stream's first
//! frames are damaged, the first intact frames may be those of a par stream nested in its original (inside one of
//! its payloads), and decoding that would write the nested stream's original with exit 0.
//!
//! The evidence used is containment, which damage cannot fake: a frame whose header lies inside the payload of
//! another stream's frame, and that payload's checksum holds, was in that stream's original when it was encoded,
//! so its stream is nested (an older stream inside a newer one; the newer one's id was drawn at random after the
//! older one's bytes existed, so the reverse cannot also hold). The probe reads a window of the input from the
//! first intact frame header on, notes every stream with an intact header in it, and every stream shown nested;
//! exactly one stream left is the one to decode, anything else is a refusal. Version 2 masks its payloads, so a
//! version 2 stream never shows what its original holds and only a version 1 stream can have a stream seen
//! nested in it. The window's bytes are kept, to hand on to the decoder, and given back as it decodes them;
//! nothing before the first intact header is kept. Rule and proof: docs/formats/par-v2.md, "Which stream".

use crate::format::{Frame, StreamKey, FRAME_HEADER, MAGIC, SEED_PAYLOAD};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use xxhash_rust::xxh3::Xxh3;

/// How far past the first intact frame header the probe looks for other streams' headers (a frame whose header
/// begins inside the window is then read to its end, so the probe holds at most the window and one frame).
pub const WINDOW: u64 = 64 << 20;
/// More streams than this in the window is a refusal (an input crafted to exhaust memory, not a backup).
pub const MAX_STREAMS: usize = 256;
/// Payloads checked at once for what they hold (nested streams, one per level, and overlapping frames); past
/// this a payload is not checked, which can only leave a stream unshown nested, never shown nested wrongly.
const MAX_OPEN: usize = 64;
/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// What the probe decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// No intact frame header anywhere in the input.
    NoFrame,
    /// The one stream with an intact header in the window that is not nested in another.
    Stream(StreamKey),
    /// Streams none of which is shown nested in another (or too many to tell): which is the outer one cannot be
    /// told. Each with the input byte of its first header.
    Ambiguous(Vec<(StreamKey, u64)>),
}

/// The probe's decision, where the first intact header is (`start`; what came before it holds no frame and was
/// not kept), and the input from `start` on.
pub struct Probed<R> {
    pub choice: Choice,
    pub start: u64,
    pub input: Replay<R>,
}

/// A payload being checked: its stream, its input range, its checksum so far, and the streams whose headers lie
/// inside it.
struct Open {
    key: StreamKey,
    from: u64,
    to: u64,
    next: u64,
    want: u64,
    sum: Xxh3,
    inside: Vec<StreamKey>,
}

struct Seen {
    first: u64,
    nested: bool,
}

/// Reads the window and decides which stream to decode (see the module's comment).
pub fn choose<R: Read>(mut input: R) -> io::Result<Probed<R>> {
    let mut buf = vec![0u8; FRAME_HEADER - 1 + CHUNK];
    // buf[..carry] is the end of the previous read (a header may straddle two reads); buf[carry] is input byte
    // `pos`.
    let (mut carry, mut pos) = (0usize, 0u64);
    let mut kept = VecDeque::new();
    let mut kept_to: Option<u64> = None;
    let mut start: Option<u64> = None;
    let mut seen: BTreeMap<StreamKey, Seen> = BTreeMap::new();
    let mut overflow = false;
    let mut open: Vec<Open> = Vec::new();
    loop {
        if let Some(s) = start {
            // Every header that begins in the window has been read whole, and every payload checked.
            if pos >= s + WINDOW + FRAME_HEADER as u64 && open.is_empty() {
                break;
            }
        }
        let n = match input.read(&mut buf[carry..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let base = pos - carry as u64;
        let data = &buf[..carry + n];
        let mut i = 0;
        while let Some(k) = memchr::memmem::find(&data[i..], &MAGIC) {
            let at = i + k;
            if at + FRAME_HEADER > data.len() {
                break; // the rest of this header comes with the next read
            }
            i = at + 1;
            let Some(f) = Frame::decode(&data[at..at + FRAME_HEADER]) else {
                continue;
            };
            let a = base + at as u64;
            let key = f.key();
            for o in &mut open {
                if o.key != key
                    && o.from <= a
                    && a + FRAME_HEADER as u64 <= o.to
                    && !o.inside.contains(&key)
                {
                    o.inside.push(key);
                }
            }
            let s = *start.get_or_insert(a);
            if a >= s + WINDOW {
                continue; // past the window: evidence only
            }
            if !seen.contains_key(&key) && seen.len() >= MAX_STREAMS {
                overflow = true;
                continue;
            }
            seen.entry(key).or_insert(Seen {
                first: a,
                nested: false,
            });
            if f.payload_len > 0 && open.len() < MAX_OPEN {
                let from = a + FRAME_HEADER as u64;
                open.push(Open {
                    key,
                    from,
                    to: from + f.payload_len as u64,
                    next: from,
                    want: f.payload_sum,
                    sum: Xxh3::with_seed(SEED_PAYLOAD),
                    inside: Vec::new(),
                });
            }
        }
        let end = base + data.len() as u64;
        if let Some(s) = start {
            // Kept from the first intact header on: from it, then each read's new bytes.
            let from = kept_to.unwrap_or(s);
            kept.push_back(data[(from - base) as usize..].to_vec());
            kept_to = Some(end);
        }
        // Feed each payload the bytes of it this read brought, and settle those that are complete.
        open.retain_mut(|o| {
            let upto = o.to.min(end);
            if upto > o.next {
                o.sum
                    .update(&data[(o.next - base) as usize..(upto - base) as usize]);
                o.next = upto;
            }
            if o.next < o.to {
                return true;
            }
            if o.sum.digest() == o.want {
                for k in &o.inside {
                    if let Some(s) = seen.get_mut(k) {
                        s.nested = true;
                    }
                }
            }
            false
        });
        let keep = data.len().min(FRAME_HEADER - 1);
        buf.copy_within(carry + n - keep..carry + n, 0);
        carry = keep;
        pos += n as u64;
    }
    let Some(start) = start else {
        return Ok(Probed {
            choice: Choice::NoFrame,
            start: pos,
            input: Replay::new(kept, input),
        });
    };
    let outer: Vec<(StreamKey, u64)> = seen
        .iter()
        .filter(|(_, s)| !s.nested)
        .map(|(k, s)| (*k, s.first))
        .collect();
    let choice = match (&outer[..], overflow) {
        ([(k, _)], false) => Choice::Stream(*k),
        _ => {
            let mut all = if outer.is_empty() || overflow {
                seen.iter().map(|(k, s)| (*k, s.first)).collect()
            } else {
                outer
            };
            all.sort_by_key(|&(_, at)| at);
            Choice::Ambiguous(all)
        }
    };
    Ok(Probed {
        choice,
        start,
        input: Replay::new(kept, input),
    })
}

/// The version the first intact frame header in `bytes` declares (1 or 2), or None when `bytes` hold none. A fresh
/// stream's first frame is its stream-header frame, at byte 0: its first 64 bytes tell its version.
pub fn version_of(bytes: &[u8]) -> Option<u8> {
    first_frame(bytes).map(|f| f.version)
}

/// The first intact frame header in `bytes`.
pub fn first_frame(bytes: &[u8]) -> Option<Frame> {
    memchr::memmem::find_iter(bytes, &MAGIC)
        .filter_map(|at| bytes.get(at..at + FRAME_HEADER))
        .find_map(Frame::decode)
}

/// The kept pieces, then the rest of the input. Each piece is freed as soon as it has been read again, so the
/// probe's bytes give way to the decoder's buffers as those fill, instead of lying beside them.
pub struct Replay<R> {
    kept: VecDeque<Vec<u8>>,
    /// Read so far of the front piece.
    at: usize,
    inner: R,
}

impl<R> Replay<R> {
    pub(crate) fn new(kept: VecDeque<Vec<u8>>, inner: R) -> Self {
        Replay { kept, at: 0, inner }
    }
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(front) = self.kept.front() {
            if self.at < front.len() {
                let n = (front.len() - self.at).min(buf.len());
                buf[..n].copy_from_slice(&front[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            self.kept.pop_front();
            self.at = 0;
        }
        self.inner.read(buf)
    }
}
