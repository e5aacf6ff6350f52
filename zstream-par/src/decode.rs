//! The decoder: frames from the scanner are gathered into groups; a group is done when all its data blocks are in,
//! or when frames of a later batch of groups show that no more of it will come, or at the end of input. Workers
//! rebuild lost data blocks from parity; the writer emits groups in order, checks the trailer (length and BLAKE3
//! of the original), and refuses, before writing a byte of it, a group that lost more than parity can repair.

use crate::assemble::{Assembler, Group};
use crate::codec::Codec;
use crate::content;
use crate::format::StreamKey;
use crate::probe::{self, Choice, Replay};
use crate::repair::repair;
pub use crate::report::Report;
use crate::report::Stats;
use crate::scan::Scanner;
use std::io::{Read, Write};
use zstream_common::integrity;
use zstream_common::ordered::{self, Chunk};
use zstream_common::pipe::{in_error, write_out};

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
    progress: impl FnMut(u64) + Send,
) -> anyhow::Result<Report> {
    decode_stream(input, output, mode, threads, None, progress)
}

/// `decode`, of the stream with id `stream` when one is given: the input then needs no choosing, and frames of any
/// other id are ignored.
pub fn decode_stream<R: Read, W: Write + Send>(
    input: R,
    output: &mut W,
    mode: Mode,
    threads: usize,
    stream: Option<u64>,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<Report> {
    let (scan, before) = match stream {
        Some(id) => {
            let mut scan = Scanner::new(Replay::new(Default::default(), input));
            scan.stream_id = Some(id);
            (scan, 0)
        }
        None => {
            // Which stream this is, by which stream's frames lie inside another's (a nested one cannot win); the
            // probe hands back the input from the first intact frame header on.
            let probed = probe::choose(input).map_err(in_error)?;
            let key = match probed.choice {
                Choice::NoFrame => return Err(integrity(
                    "no zstream-par frame found: not a parity stream, or damaged beyond recognition",
                )),
                Choice::Ambiguous(streams) => return Err(ambiguous(&streams)),
                Choice::Stream(key) => key,
            };
            let mut scan = Scanner::at(probed.input, probed.start);
            scan.stream_id = Some(key.id);
            scan.version = Some(key.version);
            (scan, probed.start)
        }
    };
    if before > 0 {
        zstream_common::say!("input bytes 0..{before} hold no usable frame (damage); skipped");
    }
    let mut asm = Assembler::new(scan, mode == Mode::Verify);
    // BLAKE3 of the output, on the workers in stream order; None once a group is lost (verify goes on past it).
    let digest = ordered::InOrder::new(Some(blake3::Hasher::new()));
    // Every frame the assembler takes is of one stream and has its shape, so one codec serves it all.
    let codec = std::sync::OnceLock::<Codec>::new();
    let mut stats = Stats::default();

    let result = ordered::map_in_order(
        threads,
        &digest,
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
            turn.with(|digest| {
                let (Some(f), true, Some(h)) = (g.shape, g.lost.is_empty(), digest.as_mut()) else {
                    *digest = None;
                    return;
                };
                for &(i, len) in &g.pieces {
                    h.update(
                        &g.shards[i as usize].as_ref().expect("present or rebuilt")[..len as usize],
                    );
                }
                if f.is_final_group() {
                    g.digest = Some(*h.finalize().as_bytes());
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
                return stats.unrepairable(g.number, 1, content::lost_ranges(&f, g), mode);
            }
            for &(i, len) in &g.pieces {
                let block =
                    &g.shards[i as usize].as_ref().expect("present or rebuilt")[..len as usize];
                if mode == Mode::Decode {
                    write_out(output, block)?;
                }
                stats.report.bytes += len as u64;
                progress(len as u64);
            }
            // After a group that could not be repaired (verifying goes on past it) the digest cannot match.
            if let (true, Some(got), Some((total, want))) = (
                f.is_final_group() && stats.report.unrepairable.is_empty(),
                g.digest,
                g.trailer,
            ) {
                stats.report.blake3 = Some(hex::encode(got));
                if total != stats.report.bytes || want != got {
                    return Err(integrity(format!(
                        "the trailer says {total} bytes with BLAKE3 {}, but the repaired stream is {} bytes with BLAKE3 {}",
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
    report.skipped_bytes = before + asm.skipped;
    if let Some(p) = asm.params() {
        report.version = Some(p.version);
        report.stream_id = Some(format!("{:016x}", p.stream_id));
    }
    result?;
    Ok(report)
}

/// The refusal when several streams could each be the outer one.
fn ambiguous(streams: &[(StreamKey, u64)]) -> anyhow::Error {
    let list = streams
        .iter()
        .map(|(k, at)| {
            format!(
                "{:016x} (version {}, first intact frame at input byte {at})",
                k.id, k.version
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    integrity(format!(
        "the input holds frames of {} parity streams, and no frame of all but one lies inside an intact frame of \
         another, so which is the outer stream cannot be told: {list}; to decode one, name it with --stream ID",
        streams.len()
    ))
}
