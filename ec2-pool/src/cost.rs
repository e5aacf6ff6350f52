//! What a pool costs a month, beside S3's classes for the same data. Prices are AWS's published on-demand list
//! prices in us-east-1 (USD, 2026); other regions differ by a few tens of percent, and the point of the table is
//! the ratio between the options, which holds.

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

/// USD per hour of an on-demand instance; None for a type not in the table.
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
        "t2.micro" => 0.0116,
        "t2.small" => 0.023,
        "m5.large" => 0.096,
        "m6i.large" => 0.096,
        "m7i.large" => 0.1008,
        "c5.large" => 0.085,
        "r5.large" => 0.126,
        _ => return None,
    })
}

/// S3's classes per GiB-month, for the comparison.
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
    pub root_usd: f64,
    pub instance_usd: f64,
    pub total_usd: f64,
    /// What the pool holds, the parity subtracted: what the S3 figures are for.
    pub usable_gib: u64,
    pub s3: Vec<(String, f64)>,
}

/// The month of a pool of `layout` at `size_gib` per volume, its instance running `hours_per_day`.
pub fn monthly(
    layout: &Layout,
    size_gib: u64,
    instance_type: &str,
    hours_per_day: f64,
) -> anyhow::Result<Monthly> {
    let rate = instance_hour(instance_type).ok_or_else(|| {
        zstream_common::usage(format!(
            "no price for instance type {instance_type} in ec2-pool's table (t3, t3a, t2, m5, m6i, m7i, c5, r5 sizes)"
        ))
    })?;
    let gib = ebs_gib_month(&layout.volume_type);
    let volumes_usd = f64::from(layout.volumes()) * size_gib as f64 * gib;
    let root_usd = ROOT_GIB as f64 * ebs_gib_month("gp3");
    let instance_usd = rate * hours_per_day * HOURS_PER_MONTH / 24.0;
    let usable_gib = layout.usable_gib(size_gib);
    Ok(Monthly {
        volumes_usd,
        root_usd,
        instance_usd,
        total_usd: volumes_usd + root_usd + instance_usd,
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

    /// The field's example: 5 vdevs of 8 gp3 volumes of 1 GiB, a t3.micro one hour a day.
    #[test]
    fn the_fields_example() {
        let l = Layout {
            vdevs: 5,
            disks: 8,
            raidz: 1,
            volume_type: "gp3".into(),
        };
        let m = monthly(&l, 1, "t3.micro", 1.0).unwrap();
        assert!((m.volumes_usd - 3.20).abs() < 1e-9);
        assert!((m.root_usd - 0.64).abs() < 1e-9);
        assert!((m.instance_usd - 0.0104 * 730.0 / 24.0).abs() < 1e-9);
        assert_eq!(m.usable_gib, 35);
        let deep = m.s3.iter().find(|(c, _)| c == "S3 DEEP_ARCHIVE").unwrap().1;
        assert!((deep - 0.03465).abs() < 1e-9);
        assert!(monthly(&l, 1, "x9.huge", 1.0).is_err());
    }
}
