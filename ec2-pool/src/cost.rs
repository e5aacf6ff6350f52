//! What a pool costs a month, beside S3's classes for the same data. Prices are AWS's published on-demand list
//! prices in us-east-1 (USD), as its pricing pages list them on 2026-12-07: EC2 On-Demand
//! (aws.amazon.com/ec2/pricing/on-demand), EBS (aws.amazon.com/ebs/pricing), S3 (aws.amazon.com/s3/pricing) and
//! public IPv4 addresses (aws.amazon.com/vpc/pricing: $0.005 an hour for each, since 2024-02-01). Other regions
//! differ by a few tens of percent; the point of the table is the ratio between the options, which holds. The
//! tests check these figures against sums written out by hand, not against this code.

use crate::layout::Layout;

/// USD per GiB-month of EBS volume, by type.
pub fn ebs_gib_month(volume_type: &str) -> f64 {
    match volume_type {
        "gp2" => 0.10,
        "io1" | "io2" => 0.125,
        "st1" => 0.045,
        "sc1" => 0.015,
        _ => 0.08, // gp3
    }
}

/// USD a month for `iops` provisioned IOPS on one volume: io1 $0.065 each; io2 $0.065 up to 32,000, $0.0455 to
/// 64,000, $0.032 beyond; gp3 $0.005 for each beyond the 3,000 included.
pub fn iops_month(volume_type: &str, iops: u32) -> f64 {
    let n = f64::from(iops);
    match volume_type {
        "io1" => 0.065 * n,
        "io2" => {
            0.065 * n.min(32_000.0)
                + 0.0455 * (n.min(64_000.0) - 32_000.0).max(0.0)
                + 0.032 * (n - 64_000.0).max(0.0)
        }
        "gp3" => 0.005 * (n - 3000.0).max(0.0),
        _ => 0.0,
    }
}

/// USD per hour of an on-demand Linux instance; None for a type not in the table.
pub fn instance_hour(t: &str) -> Option<f64> {
    Some(match t {
        "t3.nano" => 0.0052,
        "t3.micro" => 0.0104,
        "t3.small" => 0.0208,
        "t3.medium" => 0.0416,
        "t3a.nano" => 0.0047,
        "t3a.micro" => 0.0094,
        "t3a.small" => 0.0188,
        "t3a.medium" => 0.0376,
        "t4g.nano" => 0.0042,
        "t4g.micro" => 0.0084,
        "t4g.small" => 0.0168,
        "t4g.medium" => 0.0336,
        "t2.micro" => 0.0116,
        "t2.small" => 0.023,
        "m5.large" => 0.096,
        "m6i.large" => 0.096,
        "m6g.large" => 0.077,
        "m7i.large" => 0.1008,
        "m7g.large" => 0.0816,
        "c5.large" => 0.085,
        "r5.large" => 0.126,
        _ => return None,
    })
}

/// USD per hour of a public IPv4 address. An instance's public address is released when it stops, so it is
/// billed for the instance's running hours.
pub const IPV4_HOUR: f64 = 0.005;

/// S3's classes per GiB-month (the first 50 TB), for the comparison.
pub const S3_CLASSES: [(&str, f64); 4] = [
    ("S3 STANDARD", 0.023),
    ("S3 STANDARD_IA", 0.0125),
    ("S3 GLACIER (Flexible Retrieval)", 0.0036),
    ("S3 DEEP_ARCHIVE", 0.00099),
];

pub const HOURS_PER_MONTH: f64 = 730.0;
/// The root volume an Ubuntu image starts with.
pub const ROOT_GIB: u64 = 8;

#[derive(Debug, serde::Serialize)]
pub struct Monthly {
    pub volumes_usd: f64,
    /// Provisioned IOPS beyond what the volume type includes.
    pub iops_usd: f64,
    pub root_usd: f64,
    pub instance_usd: f64,
    pub ipv4_usd: f64,
    pub total_usd: f64,
    /// What the pool holds, the parity subtracted: what the S3 figures are for.
    pub usable_gib: u64,
    pub s3: Vec<(String, f64)>,
}

/// The month of a pool of `layout` at `size_gib` (and `iops`) per volume, its instance running `hours_per_day`.
pub fn monthly(
    layout: &Layout,
    size_gib: u64,
    iops: Option<u32>,
    instance_type: &str,
    hours_per_day: f64,
) -> anyhow::Result<Monthly> {
    let rate = instance_hour(instance_type).ok_or_else(|| {
        zstream_common::usage(format!(
            "no price for instance type {instance_type} in ec2-pool's table (t3, t3a, t4g, t2, m5, m6i, m6g, m7i, \
             m7g, c5, r5 sizes)"
        ))
    })?;
    let n = f64::from(layout.volumes());
    let volumes_usd = n * size_gib as f64 * ebs_gib_month(&layout.volume_type);
    let iops_usd = n * iops.map_or(0.0, |i| iops_month(&layout.volume_type, i));
    let root_usd = ROOT_GIB as f64 * ebs_gib_month("gp3");
    let hours = hours_per_day * HOURS_PER_MONTH / 24.0;
    let instance_usd = rate * hours;
    let ipv4_usd = IPV4_HOUR * hours;
    let usable_gib = layout.usable_gib(size_gib);
    Ok(Monthly {
        volumes_usd,
        iops_usd,
        root_usd,
        instance_usd,
        ipv4_usd,
        total_usd: volumes_usd + iops_usd + root_usd + instance_usd + ipv4_usd,
        usable_gib,
        s3: S3_CLASSES
            .iter()
            .map(|(c, p)| (c.to_string(), p * usable_gib as f64))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(vdevs: u32, disks: u32, volume_type: &str) -> Layout {
        Layout {
            vdevs,
            disks,
            raidz: 1,
            volume_type: volume_type.into(),
        }
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// The field's example, summed by hand from the prices above: 5 vdevs of 8 gp3 volumes of 1 GiB, a t3.micro
    /// one hour a day (730 / 24 = 30.4167 hours a month).
    #[test]
    fn the_fields_example_by_hand() {
        let m = monthly(&layout(5, 8, "gp3"), 1, None, "t3.micro", 1.0).unwrap();
        assert!(near(m.volumes_usd, 3.20), "40 x 1 GiB x $0.08");
        assert!(near(m.root_usd, 0.64), "8 GiB x $0.08");
        assert!(near(m.instance_usd, 0.316_333), "30.4167 h x $0.0104");
        assert!(near(m.ipv4_usd, 0.152_083), "30.4167 h x $0.005");
        assert!(near(m.total_usd, 4.308_417), "{m:?}");
        assert_eq!(m.usable_gib, 35, "5 x 7 data disks");
        let deep = m.s3.iter().find(|(c, _)| c == "S3 DEEP_ARCHIVE").unwrap().1;
        assert!(near(deep, 0.034_65), "35 GiB x $0.00099");
        assert!(monthly(&layout(5, 8, "gp3"), 1, None, "x9.huge", 1.0).is_err());
    }

    /// Graviton and provisioned IOPS, by hand: 3 x 8 io2 volumes of 10 GiB at 1,000 IOPS on a t4g.micro, one hour
    /// a day.
    #[test]
    fn graviton_and_iops_by_hand() {
        let m = monthly(&layout(3, 8, "io2"), 10, Some(1000), "t4g.micro", 1.0).unwrap();
        assert!(near(m.volumes_usd, 30.0), "24 x 10 GiB x $0.125");
        assert!(near(m.iops_usd, 1560.0), "24 x 1,000 x $0.065");
        assert!(near(m.instance_usd, 0.2555), "30.4167 h x $0.0084");
        // io2's tiers: 40,000 IOPS = 32,000 x $0.065 + 8,000 x $0.0455 = $2,444.
        assert!(near(iops_month("io2", 40_000), 2444.0));
        // gp3 pays only beyond its 3,000: 6,000 -> 3,000 x $0.005 = $15.
        assert!(near(iops_month("gp3", 6000), 15.0));
    }
}
