//! Which stream a damaged input is. The first intact frame cannot simply decide: when the outer stream's first
//! frames are damaged, the first intact frames may be those of a par stream nested in its original (inside one of
//! its payloads), and decoding that would write the nested stream's original with exit 0.
//!
//! Evidence a nested stream cannot win: where a stream began. A frame's offset within its own stream follows
//! from its header (its group, index and the stream's shape), so each intact frame tells where its stream must
//! have started: its input position minus that offset. A nested stream lies inside the outer stream's payloads,
//! so it starts after the outer one; bytes deleted or inserted before both shift both alike. The stream with the
//! earliest start wins. A frame at input byte 0 decides at once (nothing can be nested there); otherwise the
//! probe reads on for up to `WINDOW` bytes past the first intact frame (the outer frame that holds a nested
//! stream is at most a maximal frame long, so the outer stream's next frame comes within it), keeping what it
//! read to hand on to the decoder. Only an input whose start is damaged costs that memory, and never more than
//! the window: without any intact frame the probe gives up after the window's length from the start.

use crate::format::{Frame, FRAME_HEADER, MAX_BLOCK, STREAM_HEADER_LEN};
use crate::scan::{Item, Scanner};
use std::collections::VecDeque;
use std::io::{self, Read};

/// How far past the first intact frame the probe looks: a maximal frame and the next frame's header (the outer
/// frame holding a nested stream began before the nested stream's first frame).
pub const WINDOW: u64 = 2 * FRAME_HEADER as u64 + MAX_BLOCK as u64;

/// The stream id to decode (None: no intact frame at all) and the whole input again, from its first byte.
pub fn stream_id<R: Read>(input: R) -> io::Result<(Option<u64>, impl Read)> {
    let mut scan = Scanner::new(Keep {
        inner: input,
        kept: VecDeque::new(),
        held: 0,
        limit: WINDOW,
    });
    let mut best: Option<(i128, u64)> = None;
    let mut first = true;
    loop {
        let (f, at) = match scan.next(Vec::new())? {
            Item::End => break,
            Item::Skipped { .. } => continue,
            Item::Frame { frame, at, .. } => (frame, at),
        };
        if at == 0 {
            best = Some((0, f.stream_id));
            break;
        }
        if first {
            first = false;
            // From the first intact frame on, the window counts from there.
            scan.inner_mut().limit = at + WINDOW;
        }
        if let Some(start) = began_at(&f, at) {
            if best.is_none_or(|(s, _)| start < s) {
                best = Some((start, f.stream_id));
            }
        } else if best.is_none() {
            // A frame whose offset cannot be told (the final batch of an interleaved stream): a candidate of
            // last resort.
            best = Some((i128::MAX, f.stream_id));
        }
    }
    let keep = scan.into_inner();
    Ok((
        best.map(|(_, id)| id),
        Replay {
            kept: keep.kept,
            at: 0,
            inner: keep.inner,
        },
    ))
}

/// Where the stream of frame `f`, found at input byte `at`, began; None when its offset cannot be told.
fn began_at(f: &Frame, at: u64) -> Option<i128> {
    let frame = FRAME_HEADER as u128 + f.block_size as u128;
    let per_group = f.data as u128 + f.parity as u128;
    let d = f.interleave as u128;
    let header = (FRAME_HEADER + STREAM_HEADER_LEN) as u128;
    let (g, i) = (f.group as u128, f.index as u128);
    let offset = if f.index == crate::format::STREAM_HEADER_INDEX {
        0
    } else if !f.is_final_group() {
        // Full batches of D groups before it; within its batch, index i of each group in turn. (A full group
        // in the last batch of an interleaved stream is placed as if the batch were full: off by less than a
        // batch, which no nesting can make up.)
        let batch = g / d;
        header + (batch * d * per_group + i * d + g % d) * frame
    } else if d == 1 {
        // The final group: its frames in index order, data blocks of their own lengths, then parity.
        let mut o = header + g * per_group * frame;
        for k in 0..f.index {
            let len = f.block_len(k);
            if len > 0 {
                o += FRAME_HEADER as u128 + len as u128;
            }
        }
        o
    } else {
        return None;
    };
    Some(at as i128 - offset as i128)
}

/// A reader that keeps everything it reads, in the pieces it read them, to be read again, and ends (for the probe)
/// at `limit` bytes: the scanner skips frameless input inside one call, so the bound must be here. What lies past
/// it is read later, by the decoder, from the reader itself.
struct Keep<R> {
    inner: R,
    kept: VecDeque<Vec<u8>>,
    held: u64,
    limit: u64,
}

impl<R: Read> Read for Keep<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.held);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.kept.push_back(buf[..n].to_vec());
        self.held += n as u64;
        Ok(n)
    }
}

/// The kept pieces, then the rest of the input. Each piece is freed as soon as it has been read again, so the
/// probe's bytes give way to the decoder's buffers as those fill, instead of lying beside them.
struct Replay<R> {
    kept: VecDeque<Vec<u8>>,
    /// Read so far of the front piece.
    at: usize,
    inner: R,
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
