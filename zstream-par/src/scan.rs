//! Finds frames in a stream that may be damaged anywhere: a frame is taken only when its header checksum holds and
//! it belongs to this stream; its payload is taken only when the payload checksum holds. After anything else
//! (flipped bits, zeroed or overwritten ranges, deleted or inserted bytes, a damaged header, another stream's
//! frame) the scanner searches for the next frame marker, so the decoder finds its place again: from the byte
//! after a marker whose header it cannot use, from the end of the header of one of its frames whose payload does
//! not hold (par-v2.md, "Finding frames").

use crate::format::{payload_sum, Frame, Mask, FRAME_HEADER, MAGIC, V2};
use std::io::{self, Read};
use zstream_common::pipe::read_full;

pub enum Item {
    /// A frame whose header holds. `payload_ok` says whether its payload did too (it is then in `payload`, a
    /// version 2 payload with its mask taken off).
    Frame {
        frame: Frame,
        at: u64,
        payload_ok: bool,
        payload: Vec<u8>,
    },
    /// Input bytes `from..to` held no frame that could be used.
    Skipped {
        from: u64,
        to: u64,
    },
    End,
}

pub struct Scanner<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Input offset of buf[0].
    base: u64,
    /// Only frames of this stream (id, and version) are taken, once it is known (frames of a stream nested inside
    /// the payload, or of another stream pasted in, carry another id).
    pub stream_id: Option<u64>,
    pub version: Option<u8>,
    skipping_from: Option<u64>,
    /// The mask of the version 2 stream whose frames are taken (by its id).
    mask: Option<(u64, Mask)>,
}

impl<R: Read> Scanner<R> {
    pub fn new(inner: R) -> Self {
        Self::at(inner, 0)
    }

    /// A scanner whose input begins at input byte `base` (what came before was read by the probe).
    pub fn at(inner: R, base: u64) -> Self {
        Scanner {
            inner,
            buf: vec![0; 4 << 20],
            pos: 0,
            end: 0,
            eof: false,
            base,
            stream_id: None,
            version: None,
            skipping_from: None,
            mask: None,
        }
    }

    /// The reader, back (what it holds past the scanner's buffer is unread).
    pub fn into_inner(self) -> R {
        self.inner
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn offset(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    /// Makes at least `n` bytes available from `pos`, unless the input ends first. Returns what is available.
    /// `greedy` reads as much as the input gives (searching damaged input); otherwise no more than `n` is read,
    /// so that the payload after a header can be read straight into its block's buffer.
    fn fill(&mut self, n: usize, greedy: bool) -> io::Result<usize> {
        if self.end - self.pos >= n || self.eof {
            return Ok(self.end - self.pos);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < n {
            // Frames are at most 64 bytes + 64 MiB (a checked header says so), so this stays bounded.
            self.buf.resize(n.max(self.buf.len() * 2), 0);
        }
        let limit = if greedy { self.buf.len() } else { n };
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..limit]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// Closes a run of skipped bytes, if one is open, at `to`.
    fn end_skip(&mut self, to: u64) -> Option<Item> {
        self.skipping_from
            .take()
            .filter(|&from| to > from)
            .map(|from| Item::Skipped { from, to })
    }

    /// The next item. `payload` is a buffer to reuse for the frame's payload.
    pub fn next(&mut self, mut payload: Vec<u8>) -> io::Result<Item> {
        loop {
            // In step with the frames (nothing being skipped), read just the header: its payload then goes
            // straight into `payload` below.
            let avail = self.fill(FRAME_HEADER, self.skipping_from.is_some())?;
            if avail < FRAME_HEADER {
                // Fewer bytes than a header: the end, after whatever could not be used.
                let to = self.offset(self.end);
                if avail > 0 && self.skipping_from.is_none() {
                    self.skipping_from = Some(self.offset(self.pos));
                }
                self.pos = self.end;
                return Ok(self.end_skip(to).unwrap_or(Item::End));
            }
            let header = Frame::decode(&self.buf[self.pos..self.pos + FRAME_HEADER]).filter(|f| {
                self.stream_id.is_none_or(|id| id == f.stream_id)
                    && self.version.is_none_or(|v| v == f.version)
            });
            let Some(frame) = header else {
                self.skip_to_next_marker();
                continue;
            };
            let at = self.offset(self.pos);
            if let Some(item) = self.end_skip(at) {
                return Ok(item); // the frame is read on the next call
            }
            let need = FRAME_HEADER + frame.payload_len as usize;
            if self.end - self.pos < need && !self.eof {
                return self.read_payload(frame, at, payload);
            }
            let avail = self.fill(need, true)?;
            if avail >= need {
                payload.clear();
                payload.extend_from_slice(&self.buf[self.pos + FRAME_HEADER..self.pos + need]);
                if self.check(&frame, &mut payload) {
                    self.pos += need;
                    return Ok(Item::Frame {
                        frame,
                        at,
                        payload_ok: true,
                        payload,
                    });
                }
            }
            // The header holds but the payload does not (damaged, or cut by deleted bytes): the block is lost, and
            // the next frame may begin anywhere after this header, so search from there.
            self.pos += FRAME_HEADER;
            self.skipping_from = Some(self.offset(self.pos));
            return Ok(Item::Frame {
                frame,
                at,
                payload_ok: false,
                payload,
            });
        }
    }

    /// The payload of the frame whose header is at `pos`, read from the input straight into `payload` (what the
    /// buffer already holds of it is copied first): passing through the buffer cost a copy of every byte. A
    /// payload that does not hold goes back into the buffer, to be searched like any damaged input.
    fn read_payload(&mut self, frame: Frame, at: u64, mut payload: Vec<u8>) -> io::Result<Item> {
        let len = frame.payload_len as usize;
        let held = self.end - self.pos - FRAME_HEADER;
        // A recycled buffer is only resized, not cleared: zeroing what the read overwrites cost a pass of memset.
        payload.resize(len, 0);
        payload[..held].copy_from_slice(&self.buf[self.pos + FRAME_HEADER..self.end]);
        let got = read_full(&mut self.inner, &mut payload[held..])?;
        if held + got < len {
            self.eof = true;
        } else if self.check(&frame, &mut payload) {
            self.base = self.offset(self.end) + got as u64;
            self.pos = 0;
            self.end = 0;
            return Ok(Item::Frame {
                frame,
                at,
                payload_ok: true,
                payload,
            });
        }
        // Back into the buffer, after what it holds from the header on.
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < self.end + got {
            // At most a header and a payload (64 MiB): bounded as in `fill`.
            self.buf.resize(self.end + got, 0);
        }
        self.buf[self.end..self.end + got].copy_from_slice(&payload[held..held + got]);
        payload.truncate(held + got);
        self.end += got;
        self.pos += FRAME_HEADER;
        self.skipping_from = Some(self.offset(self.pos));
        Ok(Item::Frame {
            frame,
            at,
            payload_ok: false,
            payload,
        })
    }

    /// Whether the payload holds; a version 2 payload that does comes back with its mask taken off (in the same
    /// pass as its checksum), one that does not with its stored bytes.
    fn check(&mut self, frame: &Frame, payload: &mut [u8]) -> bool {
        if frame.version != V2 {
            return payload_sum(payload) == frame.payload_sum;
        }
        let id = frame.stream_id;
        let mask = match self.mask {
            Some((i, m)) if i == id => m,
            _ => self.mask.insert((id, Mask::new(id))).1,
        };
        if mask.sum_and_remove(payload) == frame.payload_sum {
            return true;
        }
        mask.apply(payload);
        false
    }

    /// Reads and drops the rest of the input.
    pub fn discard_rest(&mut self) -> io::Result<()> {
        self.pos = self.end;
        while !self.eof {
            match self.inner.read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.end = 0;
        self.pos = 0;
        Ok(())
    }

    /// No usable frame at `pos`: move to the next occurrence of the marker (or as near the end as a marker could
    /// start), remembering where the unusable run began.
    fn skip_to_next_marker(&mut self) {
        if self.skipping_from.is_none() {
            self.skipping_from = Some(self.offset(self.pos));
        }
        let from = self.pos + 1;
        match memchr::memmem::find(&self.buf[from..self.end], &MAGIC) {
            Some(k) => self.pos = from + k,
            // Keep the last bytes: a marker may straddle the next read.
            None => {
                self.pos = self
                    .end
                    .saturating_sub(MAGIC.len() - 1)
                    .max(from.min(self.end))
            }
        }
    }
}
