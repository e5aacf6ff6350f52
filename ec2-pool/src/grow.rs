//! `grow`: every volume to one new size, all at once, then every device expanded, so the vdevs stay alike and the
//! pool balanced; or `--add-vdev`. Resumable: the target and how far it got are tags on the instance, each volume's
//! size and modification are read from AWS, and every step skips what is done. Every refusal EBS would make
//! (a modification not yet complete, four in a day) is found before any volume is changed: a grow that stopped
//! after some volumes would leave the pool unbalanced until EBS allowed the rest.

use crate::app::{self, layout_of, Ctx};
use crate::cli::GrowArgs;
use crate::create::volume_tags;
use crate::ec2::{Existing, Instance, VolumeSpec};
use crate::key::PoolKey;
use crate::layout::{self, Layout};
use crate::remote::Input;
use crate::rules::{self, Readiness, Refusal, Step};
use crate::{script, session, tags};
use std::time::{Duration, Instant, SystemTime};
use zstream_common::{say, usage, Code, Coded};

fn later(msg: String) -> anyhow::Error {
    anyhow::Error::new(Coded::new(Code::TempFail, anyhow::anyhow!(msg)))
}

pub fn run(ctx: &Ctx, a: GrowArgs) -> anyhow::Result<()> {
    let pool = ctx.existing(&a.name)?;
    let key = app::opt_key(&a.name, &a.keys)?;
    if app::luks(&pool.instance) && key.is_none() {
        return Err(usage(format!(
            "pool {} is encrypted by LUKS under its volumes: growing opens and resizes them, give its --key-file",
            a.name
        )));
    }
    let was_running = pool.instance.state == "running";
    // A signal brings the pool down as a finished grow would (the grow itself resumes on the next run).
    let armed = (!was_running && !ctx.ec2.dry_run).then(|| {
        session::relaunch_on_signal(
            ctx,
            &["down", &a.name, "--no-scrub"],
            "the pool was brought down",
            "bringing the pool down",
        )
    });
    let done = if a.add_vdev {
        add_vdev(ctx, &pool, key.as_ref())
    } else {
        grow(ctx, &a, &pool, key.as_ref())
    };
    drop(armed);
    // Down again however the grow ended, if it was down before.
    match (done, finish(ctx, &a.name, was_running)) {
        (Ok(()), f) => f,
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(d)) => Err(e.context(format!("bringing the pool down failed too: {d:#}"))),
    }
}

fn grow(ctx: &Ctx, a: &GrowArgs, pool: &Existing, key: Option<&PoolKey>) -> anyhow::Result<()> {
    let inst = &pool.instance;
    let layout = layout_of(inst)?;
    let max = pool.size_gib();
    let resuming = match (inst.tag(tags::GROW_TO), inst.tag(tags::GROW_STATE)) {
        (Some(t), Some(s)) if s != "done" => Some((
            t.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("{} tag '{t}' is not a size", tags::GROW_TO))?,
            s.to_string(),
        )),
        _ => None,
    };
    let mut brought_up: Option<Instance> = None;
    let target = if let Some((t, state)) = &resuming {
        say!("resuming the grow of {} to {t} GiB per volume, stopped while {state}; what this run asks for waits for the next", a.name);
        *t
    } else if let Some(to) = a.to {
        layout::whole_gib(to, "--to").map_err(usage)?
    } else if let Some(by) = a.by {
        max + layout::whole_gib(by, "--by").map_err(usage)?
    } else {
        let pct = a.keep_free.expect("the group requires one");
        let up = session::up(ctx, pool, key, false)?;
        let use_ = session::usage_of(ctx, &a.name, &up)?;
        brought_up = Some(up);
        let Some(u) = use_ else {
            anyhow::bail!(
                "pool {} is not imported on its instance; cannot read its use",
                a.name
            )
        };
        match rules::keep_free_target(max, u.size_bytes, u.used_bytes, pct) {
            Some(t) => t,
            None => {
                say!("pool {} has {pct}% free already; nothing to grow", a.name);
                return Ok(());
            }
        }
    };
    let (lo, hi) = layout::size_bounds(&layout.volume_type);
    if !(lo..=hi).contains(&target) {
        return Err(usage(format!(
            "a {} volume is {lo} to {hi} GiB, not {target}",
            layout.volume_type
        )));
    }
    if target < max {
        return Err(usage(format!(
            "EBS volumes only grow: the pool's volumes are {max} GiB, more than {target}"
        )));
    }
    // What each volume needs, every refusal found before anything is changed.
    let ids: Vec<String> = pool.volumes.iter().map(|v| v.id.clone()).collect();
    let mods = ctx.ec2.modifications(&ids)?;
    let now = rules::clock()?;
    let earlier = rules::grow_times(inst.tag(tags::MODIFIED));
    let mut todo = Vec::new();
    let mut too_many: Option<(SystemTime, Vec<String>)> = None;
    let mut busy: Vec<String> = Vec::new();
    for v in &pool.volumes {
        match rules::step(v.size_gib, mods.get(&v.id), &earlier, target, now) {
            Ok(Step::Nothing) => {}
            Ok(Step::Modify) => todo.push(v),
            Err(Refusal::TooMany { until }) => {
                let t = too_many.get_or_insert((until, vec![]));
                t.0 = t.0.max(until);
                t.1.push(v.id.clone());
            }
            Err(Refusal::InProgress { state, target_gib }) => {
                busy.push(format!("{} ({} to {target_gib} GiB)", v.id, state.name()))
            }
            Err(Refusal::Shrink { size_gib }) => {
                return Err(usage(format!(
                    "volume {} is {size_gib} GiB, more than {target}: EBS volumes only grow",
                    v.id
                )))
            }
        }
    }
    if !busy.is_empty() {
        return Err(later(format!(
            "EBS starts a volume's next modification only once its last one has completed (optimizing can take \
             hours): {} of {} {} still being modified; nothing was changed, run grow again later",
            busy.join(", "),
            a.name,
            if busy.len() == 1 { "is" } else { "are" }
        )));
    }
    if let Some((until, vols)) = too_many {
        let wait = until.duration_since(now).unwrap_or_default();
        return Err(later(format!(
            "EBS allows four modifications of a volume in 24 hours: {} of {} cannot be modified again until {} (in \
             {}); nothing was changed",
            vols.join(", "),
            a.name,
            humantime::format_rfc3339_seconds(until),
            rules::human(wait)
        )));
    }
    if todo.is_empty() && resuming.is_none() && target == max {
        say!(
            "every volume of {} is {target} GiB already; expanding the devices to be sure",
            a.name
        );
    }
    let mut grow_tags = vec![
        (tags::GROW_TO, target.to_string()),
        (tags::GROW_STATE, "modifying".into()),
    ];
    if resuming.is_none() && !todo.is_empty() {
        grow_tags.push((
            tags::MODIFIED,
            rules::grow_times_with(inst.tag(tags::MODIFIED), now),
        ));
    }
    ctx.ec2.set_tags(&inst.id, &grow_tags)?;
    say!(
        "growing {} of {} volumes of {} to {target} GiB",
        todo.len(),
        pool.volumes.len(),
        a.name
    );
    for v in &todo {
        ctx.ec2.modify_volume(&v.id, target)?;
    }
    wait_usable(ctx, pool, target, a.wait.timeout)?;
    ctx.ec2
        .set_tags(&inst.id, &[(tags::GROW_STATE, "expanding".into())])?;
    // Running already (this grow's --keep-free brought it up, or it ran before): expand here; else `up` without a
    // key imports the pool and expands every device.
    let running = brought_up
        .filter(|i| i.state == "running")
        .or_else(|| (inst.state == "running").then(|| inst.clone()));
    let inst = match running {
        Some(i) => {
            let host = ctx.host(&i)?;
            if app::luks(&i) {
                session::open_volumes(ctx, &host, pool, &i, key, false)?;
            }
            ctx.ssh.run(
                &host,
                "growing the devices to their volumes",
                &script::expand(&a.name, &ctx.pool_devices(&pool.volumes, &i)),
                Input::Nothing,
            )?;
            i
        }
        None => session::up(ctx, pool, key, false)?,
    };
    let after = session::usage_of(ctx, &a.name, &inst)?;
    ctx.ec2
        .set_tags(&inst.id, &[(tags::GROW_STATE, "done".into())])?;
    match after {
        Some(u) => say!(
            "pool {} grown: every volume {target} GiB, the pool {:.2} GiB",
            a.name,
            u.size_bytes as f64 / layout::GIB as f64
        ),
        None => say!("pool {} grown: every volume {target} GiB", a.name),
    }
    Ok(())
}

/// Brings the pool down again unless it was running before the command.
fn finish(ctx: &Ctx, name: &str, was_running: bool) -> anyhow::Result<()> {
    if was_running || ctx.ec2.dry_run {
        return Ok(());
    }
    let now = ctx.existing(name)?;
    if now.instance.state != "stopped" {
        session::down(ctx, &now, true)?;
    }
    Ok(())
}

/// Waits until every volume's new size is usable (optimizing or completed), looking every few seconds; past
/// `within`, exit 75: the modifications go on without us, and the next run picks them up.
fn wait_usable(ctx: &Ctx, pool: &Existing, target: u64, within: Duration) -> anyhow::Result<()> {
    if ctx.ec2.dry_run {
        return Ok(());
    }
    let ids: Vec<String> = pool.volumes.iter().map(|v| v.id.clone()).collect();
    let t = Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        let mods = ctx.ec2.modifications(&ids)?;
        let now = ctx.existing(&pool.name)?;
        let mut waiting = 0;
        for v in &now.volumes {
            match rules::readiness(v.size_gib, mods.get(&v.id), target) {
                Readiness::Ready => {}
                Readiness::NotYet => waiting += 1,
                Readiness::Failed => anyhow::bail!(
                    "EBS failed to modify volume {} to {target} GiB; see its modification in the EC2 console, \
                     then run grow again",
                    v.id
                ),
            }
        }
        if waiting == 0 {
            return Ok(());
        }
        if t.elapsed() + pause > within {
            return Err(later(format!(
                "{waiting} volume(s) of {} are still being modified by EBS; run `ec2-pool grow {}` again later to \
                 finish (it resumes)",
                pool.name, pool.name
            )));
        }
        say!(
            "{waiting} volume(s) still being modified; looking again in {}s",
            pause.as_secs()
        );
        ctx.ec2.sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// A new vdev of `disks` volumes at the pool's current size, made as the others are (type, IOPS, encryption).
/// The pool is unbalanced after it: ZFS fills the new, empty vdev faster, so reads and writes lean on its disks
/// until the vdevs even out.
fn add_vdev(ctx: &Ctx, pool: &Existing, key: Option<&PoolKey>) -> anyhow::Result<()> {
    let inst = &pool.instance;
    let layout = layout_of(inst)?;
    let size = pool.size_gib();
    let vdev = layout.vdevs;
    let missing: Vec<u32> = (0..layout.disks)
        .filter(|d| !pool.volumes.iter().any(|v| v.vdev == vdev && v.disk == *d))
        .collect();
    let info = ctx.ec2.instance_type(&inst.instance_type)?;
    if let Some(max) = info.max_ebs {
        let room = rules::data_volume_room(max, info.shared_limit, inst.enis);
        let after = pool.volumes.len() as u32 + missing.len() as u32;
        if after > room {
            return Err(usage(format!(
                "another vdev makes {after} data volumes, more than a {} with {} network interface(s) attaches \
                 besides its root volume ({room}); grow the volumes instead",
                inst.instance_type, inst.enis
            )));
        }
    }
    say!(
        "warning: adding vdev {vdev} of {} new {size} GiB volumes unbalances {}: the new vdev starts empty and takes \
         most new writes until the vdevs even out (a grow without --add-vdev keeps it balanced)",
        layout.disks,
        pool.name
    );
    let like = pool.volumes.first();
    let mut made = Vec::new();
    for d in missing {
        let spec = VolumeSpec {
            zone: inst.zone.clone(),
            size_gib: size,
            volume_type: layout.volume_type.clone(),
            iops: like
                .and_then(|v| v.iops)
                .filter(|_| matches!(layout.volume_type.as_str(), "io1" | "io2" | "gp3")),
            encryption: like
                .is_none_or(|v| v.encrypted)
                .then(|| like.and_then(|v| v.kms_key_id.clone())),
        };
        made.push(
            ctx.ec2
                .create_volume(&spec, &volume_tags(&pool.name, vdev, d))?,
        );
    }
    ctx.ec2.wait_volumes(&made, false)?;
    let pool = if ctx.ec2.dry_run {
        pool.clone()
    } else {
        ctx.existing(&pool.name)?
    };
    session::attach_missing(ctx, &pool.name, &pool.volumes, inst)?;
    let old = Existing {
        volumes: pool
            .volumes
            .iter()
            .filter(|v| v.vdev < vdev)
            .cloned()
            .collect(),
        ..pool.clone()
    };
    let running = session::up(ctx, &old, key, false)?;
    let new = Existing {
        volumes: pool
            .volumes
            .iter()
            .filter(|v| v.vdev == vdev)
            .cloned()
            .collect(),
        ..pool.clone()
    };
    let host = ctx.host(&running)?;
    session::await_devices(ctx, &host, &ctx.devices(&new.volumes, &running))?;
    if app::luks(&running) {
        // The new volumes get their LUKS encryption first, with the pool's key.
        session::open_volumes(ctx, &host, &new, &running, key, true)?;
    }
    ctx.ssh.run(
        &host,
        "adding the vdev",
        &script::add_vdev(
            &pool.name,
            layout.raidz,
            &ctx.pool_devices(&new.volumes, &running),
        ),
        Input::Nothing,
    )?;
    let grown = Layout {
        vdevs: layout.vdevs + 1,
        ..layout.clone()
    };
    ctx.ec2.set_tags(&inst.id, &[(tags::LAYOUT, grown.tag())])?;
    say!("pool {} is {grown} now", pool.name);
    Ok(())
}
