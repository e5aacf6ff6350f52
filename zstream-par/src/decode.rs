//! The decoder: frames from the scanner are gathered into groups; a group is done when all its data blocks are in,
//! or when frames of a later batch of groups show that no more of it will come, or at the end of input. Workers
//! rebuild lost data blocks from parity; the writer emits groups in order, checks the trailer (length and SHA-256
//! of the original), and refuses, before writing a byte of it, a group that lost more than parity can repair.

use crate::codec::Codec;
use crate::format::{self, Frame, STREAM_HEADER_INDEX};
use crate::scan::{Item, Scanner};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use zstream_common::integrity;
use zstream_common::ordered::{self, Chunk};
use zstream_common::pipe::{in_error, write_out};

/// What a decode or verify run found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub groups: u64,
    pub bytes: u64,
    /// Blocks (data and parity) that were damaged or missing.
    pub damaged_blocks: u64,
    pub repaired_blocks: u64,
    /// Input ranges in which no usable frame was found.
    pub skipped_bytes: u64,
    /// The group that lost the most blocks, and how many.
    pub worst_group: Option<(u64, u32)>,
    /// Groups that lost more blocks than their parity repairs, with the original byte ranges lost.
    pub unrepairable: Vec<(u64, Vec<(u64, u64)>)>,
    pub sha256: Option<String>,
}

impl Report {
    pub fn repairable(&self) -> bool {
        self.unrepairable.is_empty()
    }
}

/// A group on its way through the decoder.
#[derive(Default)]
pub struct Group {
    number: u64,
    /// Any intact frame header of the group: it tells the group's shape. None when no frame of it survived.
    shape: Option<Frame>,
    shards: Vec<Option<Vec<u8>>>,
    /// Indices of blocks rebuilt from parity, and of blocks lost beyond repair.
    repaired: Vec<u8>,
    lost: Vec<u8>,
    damaged: u32,
    /// Frames with a sound header seen for this group (intact or not), and parity frames whose payload was damaged.
    frames_seen: u32,
    bad_parity: u32,
    /// Bytes of the original a full group holds (data blocks x block size).
    span: u64,
    /// Groups this one stands for: more than 1 when a run of groups left no frame at all (they are reported as
    /// one lost range, so a crafted jump in group numbers cannot make a line per group without end).
    run: u64,
    /// The SHA-256 of the whole output, on the final group.
    digest: Option<[u8; 32]>,
    /// Whether later frames or the input's end show that the stream goes on after this group (or ends here).
    after_end_of_input: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write the original to the output; stop at the first group that cannot be repaired.
    Decode,
    /// Write nothing; read to the end and report.
    Verify,
}

pub fn decode<R: Read, W: Write + Send>(
    input: R,
    output: &mut W,
    mode: Mode,
    threads: usize,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<Report> {
    // Which stream this is, from where each stream's frames say it began (a nested one cannot win); the probe
    // hands back the whole input.
    let (id, input) = crate::probe::stream_id(input).map_err(in_error)?;
    let mut scan = Scanner::new(input);
    scan.stream_id = id;
    let mut asm = Assembler::new(scan, mode == Mode::Verify);
    // SHA-256 of the output, on the workers in stream order; None once a group is lost (verify goes on past it).
    let sha = ordered::InOrder::new(Some(Sha256::new()));
    // Every frame the assembler takes has the stream's shape, so one codec serves the whole stream.
    let codec = std::sync::OnceLock::<Codec>::new();
    let mut stats = Stats::default();

    let result = ordered::map_in_order(
        threads,
        &sha,
        |recycled: Group, index| {
            asm.recycle(recycled);
            let g = asm.next_group()?;
            // The map's own sequence, not the group number: runs of lost groups make the numbers jump.
            Ok(g.map(|g| {
                let last = g.shape.is_some_and(|f| f.is_final_group()) || g.after_end_of_input;
                Chunk {
                    index,
                    data: g,
                    last,
                }
            }))
        },
        |c, turn| {
            let g = &mut c.data;
            if let Some(f) = g.shape {
                let codec = match codec.get() {
                    Some(c) => c,
                    None => {
                        let c = Codec::new(f.data, f.parity)?;
                        codec.get_or_init(|| c)
                    }
                };
                repair(codec, g)?;
            }
            turn.with(|sha| {
                let (Some(f), true, Some(h)) = (g.shape, g.lost.is_empty(), sha.as_mut()) else {
                    *sha = None;
                    return;
                };
                for i in 0..f.real_blocks() {
                    h.update(
                        &g.shards[i as usize].as_ref().expect("present or rebuilt")
                            [..f.block_len(i) as usize],
                    );
                }
                if f.is_final_group() {
                    g.digest = Some(h.clone().finalize().into());
                }
            });
            Ok(())
        },
        |c| {
            let g = &c.data;
            let Some(f) = g.shape else {
                // No frame of this group (or run of groups) survived; the stream's parameters still tell where.
                let n = g.span;
                let from = g.number.saturating_mul(n);
                let ranges = if g.after_end_of_input {
                    vec![(from, u64::MAX)]
                } else {
                    vec![(from, from.saturating_add(g.run.max(1).saturating_mul(n)))]
                };
                return stats.unrepairable(g.number, g.run.max(1), ranges, mode);
            };
            stats.seen(g);
            if !g.lost.is_empty() {
                let ranges = g
                    .lost
                    .iter()
                    .filter(|&&i| i < f.real_blocks())
                    .map(|&i| block_range(&f, g.number, i))
                    .collect();
                return stats.unrepairable(g.number, 1, ranges, mode);
            }
            for i in 0..f.real_blocks() {
                let len = f.block_len(i) as usize;
                let block = &g.shards[i as usize].as_ref().expect("present or rebuilt")[..len];
                if mode == Mode::Decode {
                    write_out(output, block)?;
                }
                stats.report.bytes += len as u64;
                progress(len as u64);
            }
            // After a group that could not be repaired (verifying goes on past it) the digest cannot match.
            if let (true, Some(got)) = (
                f.is_final_group() && stats.report.unrepairable.is_empty(),
                g.digest,
            ) {
                let t = g.shards[f.real_blocks() as usize]
                    .as_ref()
                    .expect("present or rebuilt");
                let (total, want) =
                    format::parse_trailer(&t[..format::TRAILER_LEN]).expect("40 bytes");
                stats.report.sha256 = Some(hex::encode(got));
                if total != stats.report.bytes || want != got {
                    return Err(integrity(format!(
                        "the trailer says {total} bytes with SHA-256 {}, but the repaired stream is {} bytes with SHA-256 {}",
                        hex::encode(want),
                        stats.report.bytes,
                        hex::encode(got)
                    )));
                }
            }
            Ok(())
        },
    );
    if result.is_err() {
        // Read to the end: a filter that stops reading makes the command before it die of a closed pipe, and
        // the pipe's status would then blame that command.
        asm.discard_rest()?;
    }
    let mut report = stats.report;
    report.skipped_bytes = asm.skipped;
    result?;
    Ok(report)
}

/// The original byte range of data block `i` of group `g`.
fn block_range(f: &Frame, g: u64, i: u8) -> (u64, u64) {
    let start = g
        .saturating_mul(f.data as u64 * f.block_size as u64)
        .saturating_add(i as u64 * f.block_size as u64);
    (start, start.saturating_add(f.block_len(i) as u64))
}

#[derive(Default)]
struct Stats {
    report: Report,
}

impl Stats {
    fn seen(&mut self, g: &Group) {
        let Some(f) = g.shape else { return };
        self.report.groups += 1;
        self.report.damaged_blocks += g.damaged as u64;
        self.report.repaired_blocks += g.repaired.len() as u64;
        if g.damaged > self.report.worst_group.map_or(0, |w| w.1) {
            self.report.worst_group = Some((g.number, g.damaged));
        }
        for &i in &g.repaired {
            let (a, b) = block_range(&f, g.number, i);
            if i < f.real_blocks() {
                zstream_common::say!(
                    "repaired group {} data block {i} (original bytes {a}..{b}) from parity",
                    g.number
                );
            } else {
                zstream_common::say!("repaired group {} trailer block from parity", g.number);
            }
        }
    }

    fn unrepairable(
        &mut self,
        group: u64,
        run: u64,
        mut ranges: Vec<(u64, u64)>,
        mode: Mode,
    ) -> anyhow::Result<()> {
        // Adjacent ranges (neighbouring blocks, a run of groups) are said as one.
        ranges.sort();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if last.1 >= a => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let text = merged
            .iter()
            .map(|&(a, b)| {
                if b == u64::MAX {
                    format!("{a}..end")
                } else {
                    format!("{a}..{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let which = if run > 1 {
            format!(
                "groups {group}..{} left no frame",
                group.saturating_add(run - 1)
            )
        } else {
            format!("group {group} lost more blocks than its parity can repair")
        };
        let lost = if merged.is_empty() {
            // Only the trailer block is gone: every byte is there, but nothing can vouch for them.
            "its trailer block is lost, so the original's length and SHA-256 cannot be checked"
                .to_string()
        } else {
            format!("original bytes {text} are lost")
        };
        let msg = match mode {
            Mode::Decode => format!(
                "{which}: {lost}; output stops after original byte {} (everything before it was written whole)",
                self.report.bytes
            ),
            Mode::Verify => format!("{which}: {lost}"),
        };
        self.report.unrepairable.push((group, merged));
        match mode {
            Mode::Decode => Err(integrity(msg)),
            Mode::Verify => {
                zstream_common::say!("{msg}");
                Ok(())
            }
        }
    }
}

/// Rebuilds the group's missing data blocks from parity when enough blocks survived (on a worker thread).
fn repair(codec: &Codec, g: &mut Group) -> anyhow::Result<()> {
    let f = g.shape.expect("checked by the caller");
    let (n, total) = (f.data as usize, f.data as usize + f.parity as usize);
    let blocks = f.group_blocks as usize;
    let missing: Vec<u8> = (0..blocks)
        .filter(|&i| g.shards[i].is_none())
        .map(|i| i as u8)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Blocks a final group does not have (between its trailer and the parity) are known zeros: present.
    let present = |i: usize| (blocks..n).contains(&i) || g.shards[i].is_some();
    let have: Vec<bool> = (0..total).map(present).collect();
    if have.iter().filter(|&&h| h).count() < n {
        g.lost = missing;
        return Ok(());
    }
    // Shards are as long as the group's parity; shorter blocks (a last block, the trailer) were padded with zeros.
    let mut bufs: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let mut b = g.shards[i].take().unwrap_or_default();
            b.resize(f.shard_len as usize, 0);
            b
        })
        .collect();
    let mut marked: Vec<(&mut [u8], bool)> = bufs
        .iter_mut()
        .zip(&have)
        .map(|(b, &h)| (b.as_mut_slice(), h))
        .collect();
    codec.reconstruct(&mut marked)?;
    for (i, b) in bufs.into_iter().enumerate() {
        g.shards[i] = Some(b);
    }
    g.repaired = missing;
    Ok(())
}

/// Gathers frames into groups and decides when a group is complete.
struct Assembler<R> {
    scan: Scanner<R>,
    /// The parameters the stream's frames agree on.
    params: Option<Frame>,
    open: BTreeMap<u64, Group>,
    next_emit: u64,
    final_group: Option<u64>,
    eof: bool,
    done: bool,
    spare: Vec<Vec<u8>>,
    skipped: u64,
    /// Verifying: wait for every parity block too, so that their health is counted (decoding needs no parity
    /// once all data blocks are in).
    want_parity: bool,
}

impl<R: Read> Assembler<R> {
    fn new(scan: Scanner<R>, want_parity: bool) -> Self {
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

    fn recycle(&mut self, g: Group) {
        self.spare.extend(g.shards.into_iter().flatten());
        self.spare.truncate(64);
    }

    fn batch_of(&self, group: u64) -> u64 {
        group / self.params.map_or(1, |p| p.interleave as u64)
    }

    /// The next group in order, once it is complete; None after the final group.
    fn next_group(&mut self) -> anyhow::Result<Option<Group>> {
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
    fn discard_rest(&mut self) -> anyhow::Result<()> {
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
        if (f.stream_id, f.data, f.parity, f.block_size, f.interleave)
            != (p.stream_id, p.data, p.parity, p.block_size, p.interleave)
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
                    *i < f.group_blocks as usize || want_parity && *i >= f.data as usize
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
            g.damaged = missing(0..f.group_blocks as usize)
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
