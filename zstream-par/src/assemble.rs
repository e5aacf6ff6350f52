//! Gathers the scanner's frames into groups and decides when a group is done: all its data blocks are in, frames
//! of later batches show that no more of it will come, too many groups are open, or the input ended.

use crate::format::{Frame, STREAM_HEADER_INDEX};
use crate::scan::{Item, Scanner};
use std::collections::BTreeMap;
use std::io::Read;
use zstream_common::integrity;
use zstream_common::pipe::in_error;

#[derive(Default)]
pub struct Group {
    pub(crate) number: u64,
    /// Any intact frame header of the group: it tells the group's shape. None when no frame of it survived.
    pub(crate) shape: Option<Frame>,
    pub(crate) shards: Vec<Option<Vec<u8>>>,
    /// Indices of blocks rebuilt from parity, and of blocks lost beyond repair.
    pub(crate) repaired: Vec<u8>,
    pub(crate) lost: Vec<u8>,
    pub(crate) damaged: u32,
    /// Frames with a sound header seen for this group (intact or not), and parity frames whose payload was damaged.
    pub(crate) frames_seen: u32,
    pub(crate) bad_parity: u32,
    /// Bytes of the original a full group holds (data blocks x block size).
    pub(crate) span: u64,
    /// Groups this one stands for: more than 1 when a run of groups left no frame at all (they are reported as
    /// one lost range, so a crafted jump in group numbers cannot make a line per group without end).
    pub(crate) run: u64,
    /// What of the shards is the original, once repaired: (shard, bytes from its start), in order.
    pub(crate) pieces: Vec<(u8, u32)>,
    /// The final group's trailer: the original's length and BLAKE3 digest.
    pub(crate) trailer: Option<(u64, [u8; 32])>,
    /// The BLAKE3 digest of the whole output, on the final group.
    pub(crate) digest: Option<[u8; 32]>,
    /// Whether later frames or the input's end show that the stream goes on after this group (or ends here).
    pub(crate) after_end_of_input: bool,
}

/// Gathers frames into groups and decides when a group is complete.
pub(crate) struct Assembler<R> {
    scan: Scanner<R>,
    /// The parameters the stream's frames agree on.
    params: Option<Frame>,
    open: BTreeMap<u64, Group>,
    next_emit: u64,
    final_group: Option<u64>,
    eof: bool,
    done: bool,
    spare: Vec<Vec<u8>>,
    pub(crate) skipped: u64,
    /// Verifying: wait for every parity block too, so that their health is counted (decoding needs no parity
    /// once all data blocks are in).
    want_parity: bool,
}

impl<R: Read> Assembler<R> {
    pub(crate) fn new(scan: Scanner<R>, want_parity: bool) -> Self {
        Assembler {
            scan,
            params: None,
            open: BTreeMap::new(),
            next_emit: 0,
            final_group: None,
            eof: false,
            done: false,
            spare: Vec::new(),
            skipped: 0,
            want_parity,
        }
    }

    /// The parameters of the stream being decoded, once a frame of it came.
    pub(crate) fn params(&self) -> Option<Frame> {
        self.params
    }

    pub(crate) fn recycle(&mut self, g: Group) {
        self.spare.extend(g.shards.into_iter().flatten());
        self.spare.truncate(64);
    }

    fn batch_of(&self, group: u64) -> u64 {
        group / self.params.map_or(1, |p| p.interleave as u64)
    }

    /// The next group in order, once it is complete; None after the final group.
    pub(crate) fn next_group(&mut self) -> anyhow::Result<Option<Group>> {
        loop {
            if self.done {
                self.drain()?;
                return Ok(None);
            }
            if self.eof && self.params.is_none() {
                return Err(integrity("no zstream-par frame found: not a parity stream, or damaged beyond recognition"));
            }
            if let Some(g) = self.take_ready() {
                if self.done {
                    // The map asks for nothing after the last group, so read the rest of the input now.
                    self.drain()?;
                }
                return Ok(Some(g));
            }
            self.step()?;
        }
    }

    /// After a failure: reads the rest of the input without looking at it.
    pub(crate) fn discard_rest(&mut self) -> anyhow::Result<()> {
        self.scan.discard_rest().map_err(in_error)?;
        self.eof = true;
        Ok(())
    }

    /// Reads what follows the final group to the end: a filter that stops reading early makes the command
    /// before it in the pipe fail with a closed pipe, and damage there is still worth reporting.
    fn drain(&mut self) -> anyhow::Result<()> {
        while !self.eof {
            self.step()?;
        }
        Ok(())
    }

    /// Takes the scanner's next item: a frame, a run of unusable bytes, or the end.
    fn step(&mut self) -> anyhow::Result<()> {
        let buf = self.spare.pop().unwrap_or_default();
        match self.scan.next(buf).map_err(in_error)? {
            Item::End => self.eof = true,
            Item::Skipped { from, to } => self.skipped_run(from, to),
            Item::Frame {
                frame,
                at,
                payload_ok,
                payload,
            } => self.take_frame(frame, at, payload_ok, payload),
        }
        Ok(())
    }

    fn skipped_run(&mut self, from: u64, to: u64) {
        self.skipped += to - from;
        zstream_common::say!("input bytes {from}..{to} hold no usable frame (damage); skipped");
    }

    fn take_frame(&mut self, f: Frame, at: u64, ok: bool, payload: Vec<u8>) {
        let p = *self.params.get_or_insert(f);
        if (f.key(), f.data, f.parity, f.block_size, f.interleave)
            != (p.key(), p.data, p.parity, p.block_size, p.interleave)
        {
            return; // another stream's frame, or not of this stream's shape: not this stream's damage
        }
        if !ok {
            // The header still tells where the block belonged; data blocks are reported again when repaired.
            let what = if f.is_parity() { "parity" } else { "data" };
            zstream_common::say!(
                "group {} {what} block {} at input byte {at} is damaged",
                f.group,
                f.index
            );
        }
        self.scan.stream_id = Some(f.stream_id);
        self.scan.version = Some(f.version);
        if f.index == STREAM_HEADER_INDEX || f.group < self.next_emit {
            self.spare.push(payload);
            return; // the stream header, or a duplicate of a group already written
        }
        if f.is_final_group() {
            self.final_group = Some(f.group);
        }
        let total = f.data as usize + f.parity as usize;
        let g = self.open.entry(f.group).or_insert_with(|| Group {
            number: f.group,
            ..Group::default()
        });
        g.shards.resize_with(total, || None);
        // Every frame of a group says the group's shape; one that says another (only a broken or forged
        // encoder writes that) is not taken.
        if g.shape.is_some_and(|s| group_shape(&s) != group_shape(&f)) {
            self.spare.push(payload);
            return;
        }
        g.frames_seen += 1;
        g.bad_parity += (!ok && f.is_parity()) as u32;
        if g.shape.is_none() || ok {
            g.shape = Some(f);
        }
        let slot = &mut g.shards[f.index as usize];
        if ok && slot.is_none() && payload.len() == f.block_len(f.index) as usize {
            *slot = Some(payload);
        } else {
            self.spare.push(payload); // damaged, or a duplicate
        }
    }

    /// The group at `next_emit` if it can be decided now.
    fn take_ready(&mut self) -> Option<Group> {
        let n = self.next_emit;
        if self.final_group.is_some_and(|f| n > f) {
            self.done = true;
            return None;
        }
        let want_parity = self.want_parity;
        let complete = self
            .open
            .get(&n)
            .and_then(|g| g.shape.map(|f| (g, f)))
            .is_some_and(|(g, f)| {
                let needed = |i: &usize| {
                    *i < f.data_frames() as usize || want_parity && *i >= f.data as usize
                };
                (0..f.data as usize + f.parity as usize)
                    .filter(needed)
                    .all(|i| g.shards.get(i).is_some_and(|s| s.is_some()))
            });
        // A batch is over when frames of two later batches' blocks came (one stray frame is not enough), when too
        // many groups are open (memory stays bounded), or at the end of input.
        let batch = self.batch_of(n);
        let later: u32 = self
            .open
            .iter()
            .filter(|(&k, _)| self.batch_of(k) > batch)
            .map(|(_, g)| g.frames_seen)
            .sum();
        let passed = later >= 2;
        let crowded = self.open.len() > 8 * self.params.map_or(1, |p| p.interleave as usize) + 8;
        if !(complete || passed || crowded || self.eof) {
            return None;
        }
        let mut g = self.open.remove(&n).unwrap_or_else(|| Group {
            number: n,
            ..Group::default()
        });
        g.run = 1;
        if g.shape.is_none() {
            // No frame of this group came: neither did any of the groups up to the next one that did.
            if let Some(&m) = self.open.keys().next().filter(|&&m| m > n) {
                g.run = m - n;
            }
        }
        g.span = self
            .params
            .map_or(0, |p| p.data as u64 * p.block_size as u64);
        self.next_emit = n.saturating_add(g.run);
        if let Some(f) = g.shape {
            let total = f.data as usize + f.parity as usize;
            g.shards.resize_with(total, || None);
            // Damage: data blocks that are not there; parity blocks that are not there when verifying (all parity
            // was waited for), else only parity frames that arrived damaged.
            let missing = |range: std::ops::Range<usize>| {
                range.filter(|&i| g.shards[i].is_none()).count() as u32
            };
            g.damaged = missing(0..f.data_frames() as usize)
                + if self.want_parity {
                    missing(f.data as usize..total)
                } else {
                    g.bad_parity.min(f.parity as u32)
                };
            if f.is_final_group() {
                self.done = true;
            }
        } else if self.eof && self.final_group.is_none() {
            // Nothing of this group, and the input ended before any frame of the final group: the tail is lost.
            g.after_end_of_input = true;
            self.done = true;
        }
        Some(g)
    }
}

/// What a frame says about its group's shape (beyond the stream's parameters).
fn group_shape(f: &Frame) -> (bool, u8, u32, u32) {
    (f.is_final_group(), f.group_blocks, f.shard_len, f.last_len)
}
