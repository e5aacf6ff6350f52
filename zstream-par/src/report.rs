//! What a decode or verify run found: the report the app prints at the end, and the messages said as repairs
//! and losses happen.

use crate::assemble::Group;
use crate::content;
use crate::decode::Mode;
use zstream_common::integrity;

/// What a decode or verify run found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// The format version of the stream decoded (1 or 2), and its id (16 hex digits).
    pub version: Option<u8>,
    pub stream_id: Option<String>,
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
    /// The original's BLAKE3 digest, as checked against the trailer.
    pub blake3: Option<String>,
}

impl Report {
    pub fn repairable(&self) -> bool {
        self.unrepairable.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) report: Report,
}

impl Stats {
    pub(crate) fn seen(&mut self, g: &Group) {
        let Some(f) = g.shape else { return };
        self.report.groups += 1;
        self.report.damaged_blocks += g.damaged as u64;
        self.report.repaired_blocks += g.repaired.len() as u64;
        if g.damaged > self.report.worst_group.map_or(0, |w| w.1) {
            self.report.worst_group = Some((g.number, g.damaged));
        }
        for &i in &g.repaired {
            match g.pieces.iter().find(|p| p.0 == i) {
                Some(&(_, len)) => {
                    let a = content::group_start(&f, g.number)
                        .unwrap_or(u64::MAX)
                        .saturating_add(
                            g.pieces
                                .iter()
                                .take_while(|p| p.0 < i)
                                .map(|p| p.1 as u64)
                                .sum::<u64>(),
                        );
                    let b = a.saturating_add(len as u64);
                    zstream_common::say!(
                        "repaired group {} data block {i} (original bytes {a}..{b}) from parity",
                        g.number
                    );
                }
                None => zstream_common::say!(
                    "repaired group {} data block {i} (its trailer) from parity",
                    g.number
                ),
            }
        }
    }

    pub(crate) fn unrepairable(
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
            "its trailer block is lost, so the original's length and digest cannot be checked"
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
