//! The pool's shape: vdevs of equal RAIDZ groups of equal EBS volumes, with the rules EBS sets on sizes and the
//! names volumes attach under.

use std::fmt;

pub const GIB: u64 = 1 << 30;

/// Sizes EBS takes for a volume of each type, in GiB (gp3 and gp2: 1 GiB to 16 TiB).
pub fn size_bounds(volume_type: &str) -> (u64, u64) {
    match volume_type {
        "gp3" | "gp2" => (1, 16384),
        "io1" | "io2" => (4, 16384),
        "st1" | "sc1" => (125, 16384),
        _ => (1, 16384),
    }
}

/// Provisioned IOPS for a volume of `gib` of `volume_type` (EBS User Guide, "Amazon EBS volume types"): io1 100 to
/// 64,000 and at most 50 per GiB, io2 100 to 256,000 and at most 1,000 per GiB, both required; gp3 3,000 (included)
/// to 80,000 and at most 500 per GiB, optional; none for the others.
pub fn check_iops(volume_type: &str, gib: u64, iops: Option<u32>) -> Result<(), String> {
    let (lo, hi, per_gib, required) = match volume_type {
        "io1" => (100, 64_000, 50, true),
        "io2" => (100, 256_000, 1000, true),
        "gp3" => (3000, 80_000, 500, false),
        _ => {
            return match iops {
                Some(_) => Err(format!(
                    "--iops is for io1, io2 and gp3 volumes, not {volume_type}"
                )),
                None => Ok(()),
            }
        }
    };
    let Some(n) = iops else {
        return if required {
            Err(format!(
                "--iops is required for {volume_type} volumes ({lo} to {hi}, at most {per_gib} per GiB)"
            ))
        } else {
            Ok(())
        };
    };
    let n = u64::from(n);
    if !(lo..=hi).contains(&n) {
        return Err(format!(
            "--iops of a {volume_type} volume is {lo} to {hi}, not {n}"
        ));
    }
    // gp3's 3,000 are included at any size.
    if n > per_gib * gib && !(volume_type == "gp3" && n <= 3000) {
        return Err(format!(
            "a {volume_type} volume takes at most {per_gib} IOPS per GiB: {n} needs at least {} GiB",
            n.div_ceil(per_gib)
        ));
    }
    Ok(())
}

/// A size given on the command line as whole GiB: EBS sizes volumes in GiB, so anything else is refused rather
/// than rounded (a pool a little larger than asked is a bill a little larger than planned).
pub fn whole_gib(bytes: u64, what: &str) -> Result<u64, String> {
    if bytes == 0 || bytes % GIB != 0 {
        return Err(format!(
            "{what} must be a whole number of GiB (EBS sizes volumes in GiB), not {bytes} bytes"
        ));
    }
    Ok(bytes / GIB)
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub vdevs: u32,
    pub disks: u32,
    /// Parity disks per vdev: 1 to 3 (raidz1..raidz3).
    pub raidz: u32,
    pub volume_type: String,
}

impl Layout {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3).contains(&self.raidz) {
            return Err(format!("--raidz must be 1, 2 or 3, not {}", self.raidz));
        }
        if self.disks < self.raidz + 2 {
            return Err(format!(
                "a raidz{} vdev needs at least {} disks (--disks {})",
                self.raidz,
                self.raidz + 2,
                self.disks
            ));
        }
        if self.vdevs == 0 {
            return Err("--vdevs must be at least 1".into());
        }
        Ok(())
    }

    pub fn volumes(&self) -> u32 {
        self.vdevs * self.disks
    }

    /// Usable bytes of the pool at `size_gib` per volume, before ZFS's own overhead: the data disks of each vdev.
    pub fn usable_gib(&self, size_gib: u64) -> u64 {
        u64::from(self.vdevs) * u64::from(self.disks - self.raidz) * size_gib
    }

    /// As a tag value: `raidz1 5x8 gp3`.
    pub fn tag(&self) -> String {
        self.to_string()
    }

    pub fn parse_tag(s: &str) -> Result<Layout, String> {
        let bad = || format!("layout tag '{s}' is not 'raidzN VxD TYPE'");
        let mut w = s.split_whitespace();
        let raidz = w
            .next()
            .and_then(|r| r.strip_prefix("raidz"))
            .and_then(|r| r.parse().ok())
            .ok_or_else(bad)?;
        let (v, d) = w.next().and_then(|x| x.split_once('x')).ok_or_else(bad)?;
        let volume_type = w.next().ok_or_else(bad)?.to_string();
        Ok(Layout {
            vdevs: v.parse().map_err(|_| bad())?,
            disks: d.parse().map_err(|_| bad())?,
            raidz,
            volume_type,
        })
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raidz{} {}x{} {}",
            self.raidz, self.vdevs, self.disks, self.volume_type
        )
    }
}

/// Device names to attach data volumes under, in order, skipping `taken`: /dev/sdf to /dev/sdz, then
/// /dev/xvdba to /dev/xvdcz. On Nitro instances the name only orders the NVMe devices, which are found by volume
/// id (`--device-template`); Xen instances show them under these names.
pub fn free_device_names(taken: &[String], n: usize) -> Vec<String> {
    let letters = ('f'..='z').map(|c| format!("/dev/sd{c}"));
    let pairs = ['b', 'c']
        .into_iter()
        .flat_map(|a| ('a'..='z').map(move |b| format!("/dev/xvd{a}{b}")));
    letters
        .chain(pairs)
        .filter(|d| !taken.iter().any(|t| t == d || same_disk(t, d)))
        .take(n)
        .collect()
}

/// /dev/sdf and /dev/xvdf are one attachment point on AWS.
fn same_disk(a: &str, b: &str) -> bool {
    let tail = |s: &str| {
        s.strip_prefix("/dev/sd")
            .or_else(|| s.strip_prefix("/dev/xvd"))
            .map(str::to_string)
    };
    tail(a).is_some() && tail(a) == tail(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let l = Layout {
            vdevs: 5,
            disks: 8,
            raidz: 1,
            volume_type: "gp3".into(),
        };
        assert_eq!(l.tag(), "raidz1 5x8 gp3");
        assert_eq!(Layout::parse_tag(&l.tag()), Ok(l.clone()));
        assert_eq!(l.volumes(), 40);
        assert_eq!(l.usable_gib(1), 35);
        assert!(Layout {
            disks: 2,
            ..l.clone()
        }
        .check()
        .is_err());
        assert!(Layout {
            raidz: 4,
            ..l.clone()
        }
        .check()
        .is_err());
        assert!(Layout::parse_tag("raid 5x8").is_err());
    }

    #[test]
    fn sizes_are_whole_gib() {
        assert_eq!(whole_gib(GIB, "--size"), Ok(1));
        assert!(whole_gib(GIB + 1, "--size").is_err());
        assert!(whole_gib(0, "--size").is_err());
    }

    #[test]
    fn iops_as_ebs_takes_them() {
        assert!(check_iops("io1", 10, None)
            .unwrap_err()
            .contains("required"));
        assert!(check_iops("io1", 10, Some(500)).is_ok());
        // 50 per GiB on io1: 501 needs 11 GiB.
        assert!(check_iops("io1", 10, Some(501))
            .unwrap_err()
            .contains("at least 11 GiB"));
        assert!(check_iops("io2", 10, Some(10_000)).is_ok());
        assert!(check_iops("io2", 4, Some(99)).is_err());
        assert!(check_iops("gp3", 1, None).is_ok());
        assert!(check_iops("gp3", 100, Some(6000)).is_ok());
        assert!(check_iops("gp3", 1, Some(6000)).is_err());
        assert!(check_iops("gp3", 1, Some(3000)).is_ok());
        assert!(check_iops("gp2", 1, Some(3000)).is_err());
    }

    #[test]
    fn device_names_skip_what_is_taken() {
        let names = free_device_names(&["/dev/xvdf".into(), "/dev/sda1".into()], 30);
        assert_eq!(names[0], "/dev/sdg");
        assert_eq!(names[19], "/dev/sdz");
        assert_eq!(names[20], "/dev/xvdba");
        assert_eq!(names.len(), 30);
    }
}
