//! What EBS allows and how a grow proceeds, as pure functions of what AWS reports, so that the waits, the
//! modification states and the six-hour rule are tested here: moto changes volumes at once and knows none of it.

use std::time::{Duration, SystemTime};

/// EBS allows one modification of a volume every six hours.
pub const MODIFY_EVERY: Duration = Duration::from_secs(6 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModState {
    Modifying,
    /// The new size is usable (the volume is still being optimised): the file system may grow now.
    Optimizing,
    Completed,
    Failed,
}

impl ModState {
    pub fn parse(s: &str) -> ModState {
        match s {
            "modifying" => ModState::Modifying,
            "optimizing" => ModState::Optimizing,
            "completed" => ModState::Completed,
            _ => ModState::Failed,
        }
    }
}

/// A volume's latest modification, as DescribeVolumesModifications tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    pub state: ModState,
    pub target_gib: u64,
    pub start: SystemTime,
}

/// What a grow does next with one volume.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Already at the target, or on its way there.
    Nothing,
    Modify,
}

/// Why a volume cannot be modified now.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The six-hour rule: not before this time.
    TooSoon { until: SystemTime },
    /// Sizes only grow.
    Shrink { size_gib: u64 },
    /// Another modification (not ours) is under way.
    Busy { target_gib: u64 },
}

/// The step for a volume of `size_gib` whose latest modification is `last`, on the way to `target_gib`.
pub fn step(
    size_gib: u64,
    last: Option<&Modification>,
    target_gib: u64,
    now: SystemTime,
) -> Result<Step, Refusal> {
    let in_flight = last.filter(|m| matches!(m.state, ModState::Modifying | ModState::Optimizing));
    if let Some(m) = in_flight {
        // DescribeVolumes may show the old size or the new one while a modification runs: the modification says.
        return if m.target_gib == target_gib {
            Ok(Step::Nothing)
        } else {
            Err(Refusal::Busy {
                target_gib: m.target_gib,
            })
        };
    }
    if size_gib == target_gib {
        return Ok(Step::Nothing);
    }
    if size_gib > target_gib {
        return Err(Refusal::Shrink { size_gib });
    }
    if let Some(m) = last {
        let until = m.start + MODIFY_EVERY;
        if now < until {
            return Err(Refusal::TooSoon { until });
        }
    }
    Ok(Step::Modify)
}

/// Whether a volume's new size can be used (`zpool online -e`): a modification has reached optimizing or
/// completed, or none was needed.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotYet,
    Failed,
}

pub fn readiness(size_gib: u64, last: Option<&Modification>, target_gib: u64) -> Readiness {
    match last {
        Some(m) if m.target_gib == target_gib => match m.state {
            ModState::Optimizing | ModState::Completed => Readiness::Ready,
            ModState::Modifying => Readiness::NotYet,
            ModState::Failed => Readiness::Failed,
        },
        _ if size_gib >= target_gib => Readiness::Ready,
        // Asked for but not yet listed among the modifications.
        _ => Readiness::NotYet,
    }
}

/// The per-volume size that leaves at least `free_pct` of the pool free, growing volumes of `size_gib` in a pool
/// of `pool_bytes` with `alloc_bytes` in use; None when the pool already has that much free. Every vdev grows
/// alike, so the pool grows in proportion to the volumes.
pub fn keep_free_target(
    size_gib: u64,
    pool_bytes: u64,
    alloc_bytes: u64,
    free_pct: f64,
) -> Option<u64> {
    let free_now = 1.0 - alloc_bytes as f64 / pool_bytes as f64;
    if free_now * 100.0 >= free_pct {
        return None;
    }
    let need =
        size_gib as f64 * alloc_bytes as f64 / (pool_bytes as f64 * (1.0 - free_pct / 100.0));
    Some((need.ceil() as u64).max(size_gib + 1))
}

/// "2h 13m" for a wait.
pub fn human(d: Duration) -> String {
    let m = d.as_secs().div_ceil(60);
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + h * 60)
    }
    fn m(state: ModState, target: u64, start: SystemTime) -> Modification {
        Modification {
            state,
            target_gib: target,
            start,
        }
    }

    #[test]
    fn a_volume_is_modified_once_every_six_hours() {
        let done = m(ModState::Completed, 2, at(0));
        // 5 h 59 min after the last modification began: refused, with the time it is allowed again.
        assert_eq!(
            step(2, Some(&done), 4, at(359)),
            Err(Refusal::TooSoon { until: at(360) })
        );
        assert_eq!(step(2, Some(&done), 4, at(360)), Ok(Step::Modify));
        // Never modified: at once.
        assert_eq!(step(1, None, 2, at(0)), Ok(Step::Modify));
        // A failed modification still counts for the rule (AWS counts the request).
        assert!(matches!(
            step(1, Some(&m(ModState::Failed, 2, at(0))), 2, at(10)),
            Err(Refusal::TooSoon { .. })
        ));
    }

    #[test]
    fn a_resumed_grow_leaves_what_is_done_or_under_way() {
        // Modified by the killed run: already at the target, or still modifying towards it.
        assert_eq!(
            step(2, Some(&m(ModState::Completed, 2, at(0))), 2, at(1)),
            Ok(Step::Nothing)
        );
        assert_eq!(
            step(1, Some(&m(ModState::Modifying, 2, at(0))), 2, at(1)),
            Ok(Step::Nothing)
        );
        // Another modification under way is not ours to override.
        assert_eq!(
            step(1, Some(&m(ModState::Modifying, 3, at(0))), 2, at(1)),
            Err(Refusal::Busy { target_gib: 3 })
        );
        // Sizes only grow.
        assert_eq!(
            step(3, None, 2, at(0)),
            Err(Refusal::Shrink { size_gib: 3 })
        );
    }

    #[test]
    fn the_pool_grows_once_each_volume_is_optimizing() {
        assert_eq!(
            readiness(1, Some(&m(ModState::Modifying, 2, at(0))), 2),
            Readiness::NotYet
        );
        assert_eq!(
            readiness(2, Some(&m(ModState::Optimizing, 2, at(0))), 2),
            Readiness::Ready
        );
        assert_eq!(
            readiness(2, Some(&m(ModState::Completed, 2, at(0))), 2),
            Readiness::Ready
        );
        assert_eq!(
            readiness(1, Some(&m(ModState::Failed, 2, at(0))), 2),
            Readiness::Failed
        );
        assert_eq!(readiness(2, None, 2), Readiness::Ready);
        // Asked for, not yet listed: wait.
        assert_eq!(readiness(1, None, 2), Readiness::NotYet);
        // An older modification to another size says nothing about this one.
        assert_eq!(
            readiness(1, Some(&m(ModState::Completed, 1, at(0))), 2),
            Readiness::NotYet
        );
    }

    #[test]
    fn keep_free_sizes() {
        let g = 1u64 << 30;
        // 10 GiB pool, 9 used, 20% free wanted: 9/(10*0.8) = 1.125 of the size -> 2 GiB volumes from 1.
        assert_eq!(keep_free_target(1, 10 * g, 9 * g, 20.0), Some(2));
        // 100 GiB volumes: 112.5 -> 113.
        assert_eq!(keep_free_target(100, 10 * g, 9 * g, 20.0), Some(113));
        assert_eq!(keep_free_target(1, 10 * g, 5 * g, 20.0), None);
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(human(Duration::from_secs(60)), "1m");
        assert_eq!(human(Duration::from_secs(2 * 3600 + 13 * 60)), "2h 13m");
    }
}
