//! What ec2-pool tells about pools: `status` (the instance, the volumes per vdev, the pool's health and use, the
//! last scrub, the cost so far), `cost` (a month of a pool beside S3's classes) and `ls`.

use crate::app::{layout_of, Ctx};
use crate::cli::{CostArgs, Shape};
use crate::ec2::{Existing, Instance};
use crate::layout::{Layout, GIB};
use crate::rules::ScrubRecord;
use crate::{cost, session, tags};
use std::time::SystemTime;

pub fn status(ctx: &Ctx, name: &str, json: bool) -> anyhow::Result<()> {
    let pool = ctx.existing(name)?;
    let inst = &pool.instance;
    let layout = layout_of(inst)?;
    let usage = session::usage_of(ctx, name, inst)?;
    let size = pool.size_gib();
    let iops = pool.volumes.iter().find_map(|v| v.iops);
    let so_far = cost_so_far(&pool, &layout);
    let monthly = cost::monthly(
        &layout,
        size,
        provisioned(&layout, iops),
        &inst.instance_type,
        1.0,
    )
    .ok();
    let scrub = inst.tag(tags::SCRUB).and_then(ScrubRecord::parse);
    let vdevs: Vec<serde_json::Value> = (0..layout.vdevs)
        .map(|d| {
            serde_json::json!(pool
                .volumes
                .iter()
                .filter(|v| v.vdev == d)
                .map(|v| serde_json::json!({"disk": v.disk, "volume": v.id, "size_gib": v.size_gib, "state": v.state,
                                            "encrypted": v.encrypted,
                                            "attached": v.attached_to.as_deref() == Some(inst.id.as_str())}))
                .collect::<Vec<_>>())
        })
        .collect();
    let v = serde_json::json!({
        "name": name,
        "instance": {"id": inst.id, "state": inst.state, "type": inst.instance_type, "address": inst.address,
                     "zone": inst.zone, "spot": inst.spot, "spot_request": inst.spot_request,
                     "host_key": inst.tag(tags::HOST_KEY), "creation": inst.tag(tags::STATE).unwrap_or("ready")},
        "layout": layout.tag(),
        "encryption": if crate::app::luks(inst) { "luks" } else { "native" },
        "volumes": pool.volumes.len(),
        "volume_size_gib": size,
        "iops": iops,
        "balanced": pool.volumes.iter().all(|v| v.size_gib == size),
        "ebs_encrypted": pool.volumes.iter().all(|v| v.encrypted),
        "vdevs": vdevs,
        "pool": usage,
        "scrub": scrub.as_ref().map(|s| serde_json::json!({
            "at": humantime::format_rfc3339_seconds(s.at).to_string(), "errors": s.errors})),
        "cost_so_far_usd": so_far,
        "cost_monthly_usd_at_1h_a_day": monthly.as_ref().map(|m| m.total_usd),
    });
    if json {
        return zstream_common::pipe::print_line(v);
    }
    let mut lines = vec![
        format!(
            "pool {name}: {layout}, {} volumes of {size} GiB, {} encryption{}{}",
            pool.volumes.len(),
            v["encryption"].as_str().unwrap_or(""),
            if v["balanced"] == true {
                ""
            } else {
                " (unbalanced: a grow did not finish; run it again)"
            },
            if v["ebs_encrypted"] == true {
                ", EBS-encrypted"
            } else {
                ", not EBS-encrypted"
            }
        ),
        format!(
            "instance {} ({}, {}{}): {}",
            inst.id,
            inst.instance_type,
            inst.zone,
            if inst.spot { ", spot" } else { "" },
            inst.state
        ),
    ];
    for d in 0..layout.vdevs {
        let vols: Vec<String> = pool
            .volumes
            .iter()
            .filter(|v| v.vdev == d)
            .map(|v| format!("{} {}G", v.id, v.size_gib))
            .collect();
        lines.push(format!("  vdev {d}: {}", vols.join(", ")));
    }
    match &usage {
        Some(u) => lines.push(format!(
            "zfs: {}, {:.2} GiB of {:.2} GiB used ({:.0}%)",
            u.health,
            u.used_bytes as f64 / GIB as f64,
            u.size_bytes as f64 / GIB as f64,
            100.0 * u.used_bytes as f64 / u.size_bytes.max(1) as f64
        )),
        None => lines.push(
            "zfs: not imported (the instance is not running; `ec2-pool up` brings it up)".into(),
        ),
    }
    lines.push(match &scrub {
        Some(s) => format!(
            "last scrub: {}, {} errors",
            humantime::format_rfc3339_seconds(s.at),
            s.errors
        ),
        None => "last scrub: none yet".into(),
    });
    lines.push(format!(
        "cost so far: about ${so_far:.2}{}",
        monthly.map_or(String::new(), |m| format!(
            "; a month at 1 h a day: ${:.2}",
            m.total_usd
        ))
    ));
    for l in lines {
        zstream_common::pipe::print_line(l)?;
    }
    Ok(())
}

/// The IOPS that are billed: io1 and io2 always, gp3 beyond its included 3,000.
fn provisioned(layout: &Layout, iops: Option<u32>) -> Option<u32> {
    match layout.volume_type.as_str() {
        "io1" | "io2" | "gp3" => iops,
        _ => None,
    }
}

/// The volumes' GiB-months since each was made (at today's sizes), the instance's running hours and its public
/// address for those hours. Measured time (the system's clock), not the rules' clock.
fn cost_so_far(pool: &Existing, layout: &Layout) -> f64 {
    let inst: &Instance = &pool.instance;
    let now = SystemTime::now();
    let month = cost::HOURS_PER_MONTH * 3600.0;
    let volumes: f64 = pool
        .volumes
        .iter()
        .map(|v| {
            let age = v
                .created
                .and_then(|c| now.duration_since(c).ok())
                .unwrap_or_default()
                .as_secs_f64();
            v.size_gib as f64 * age / month * cost::ebs_gib_month(&layout.volume_type)
                + v.iops.map_or(0.0, |i| {
                    cost::iops_month(&layout.volume_type, i) * age / month
                })
        })
        .sum();
    let mut ran: f64 = inst
        .tag(tags::RUN_SECONDS)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    if inst.state == "running" {
        ran += inst
            .launched
            .and_then(|l| now.duration_since(l).ok())
            .unwrap_or_default()
            .as_secs_f64();
    }
    volumes
        + (cost::instance_hour(&inst.instance_type).unwrap_or(0.0) + cost::IPV4_HOUR) * ran / 3600.0
}

fn print_cost(m: &cost::Monthly, what: &str, hours: f64, json: bool) -> anyhow::Result<()> {
    if json {
        return zstream_common::pipe::print_line(
            serde_json::json!({"pool": what, "hours_per_day": hours, "monthly": m}),
        );
    }
    let p = zstream_common::pipe::print_line;
    p(format!(
        "{what}, the instance running {hours} h a day: ${:.2} a month",
        m.total_usd
    ))?;
    p(format!(
        "  volumes ${:.2}{}, root volume ${:.2}, instance ${:.2}, public IPv4 address ${:.2}",
        m.volumes_usd,
        if m.iops_usd > 0.0 {
            format!(" (+ ${:.2} of provisioned IOPS)", m.iops_usd)
        } else {
            String::new()
        },
        m.root_usd,
        m.instance_usd,
        m.ipv4_usd
    ))?;
    p(format!(
        "the same {} GiB in S3, a month (storage only; retrievals, requests and minimum durations extra):",
        m.usable_gib
    ))?;
    for (class, usd) in &m.s3 {
        p(format!("  {class:<32} ${usd:.2}"))?;
    }
    Ok(())
}

pub fn cost_of_shape(a: &CostArgs) -> anyhow::Result<()> {
    let shape = Shape {
        vdevs: a.vdevs.unwrap_or(0),
        disks: a.disks.unwrap_or(0),
        size: a.size.unwrap_or(0),
        raidz: a.raidz,
        volume_type: a.volume_type.clone(),
        iops: a.iops,
        instance_type: a.instance_type.clone(),
    };
    let (layout, gib) = shape.layout()?;
    let m = cost::monthly(
        &layout,
        gib,
        provisioned(&layout, a.iops),
        &a.instance_type,
        a.hours_per_day,
    )?;
    print_cost(
        &m,
        &format!("{layout} of {gib} GiB volumes on a {}", a.instance_type),
        a.hours_per_day,
        a.json,
    )
}

pub fn cost_of_pool(ctx: &Ctx, a: &CostArgs) -> anyhow::Result<()> {
    let Some(name) = a.name.as_deref() else {
        return cost_of_shape(a);
    };
    let pool = ctx.existing(name)?;
    let inst = &pool.instance;
    let layout = layout_of(inst)?;
    let size = pool.size_gib();
    let iops = pool.volumes.iter().find_map(|v| v.iops);
    let m = cost::monthly(
        &layout,
        size,
        provisioned(&layout, iops),
        &inst.instance_type,
        a.hours_per_day,
    )?;
    print_cost(
        &m,
        &format!(
            "pool {name} ({layout} of {size} GiB volumes on a {})",
            inst.instance_type
        ),
        a.hours_per_day,
        a.json,
    )
}

pub fn ls(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    for (name, p) in ctx.ec2.pools()? {
        let size = p.volumes.iter().map(|v| v.size_gib).max().unwrap_or(0);
        let (state, id, layout) = match &p.instance {
            Some(i) => (
                i.state.as_str(),
                i.id.as_str(),
                i.tag(tags::LAYOUT).unwrap_or("?"),
            ),
            None => ("no instance", "-", "?"),
        };
        if json {
            zstream_common::pipe::print_line(
                serde_json::json!({"name": name, "instance": id, "state": state,
                "layout": layout, "volumes": p.volumes.len(), "volume_size_gib": size}),
            )?;
        } else {
            zstream_common::pipe::print_line(format!(
                "{name}\t{state}\t{id}\t{layout}\t{} x {size} GiB",
                p.volumes.len()
            ))?;
        }
    }
    Ok(())
}
