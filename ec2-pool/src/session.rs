//! The pool's session on its instance: `up` (running, reachable with its pinned host key, prepared, the pool
//! imported and unlocked), `down` (a due scrub, locked, exported, stopped), and `with_up`, which brings the pool
//! down again after a step whatever the step did, and on a signal.

use crate::app::{self, Ctx};
use crate::ec2::{Existing, Instance, Volume};
use crate::key::PoolKey;
use crate::remote::{Host, Input};
use crate::rules::{self, ScrubRecord};
use crate::{hostkey, layout, script, tags};
use std::time::{Duration, Instant, SystemTime};
use zstream_common::say;

/// Brings the pool up: the instance running and reachable, prepared, the pool imported, and with a key, the key
/// loaded (and with `mount`, the datasets mounted). Every device is expanded to its volume's size, which finishes
/// a grow that was stopped before it. Returns the running instance.
pub fn up(
    ctx: &Ctx,
    pool: &Existing,
    key: Option<&PoolKey>,
    mount: bool,
) -> anyhow::Result<Instance> {
    if let Some(k) = key {
        k.check_against(pool.instance.tag(tags::KEY_IDS))?;
    }
    let mem_mib = ctx.ec2.instance_type(&pool.instance.instance_type)?.mem_mib;
    let luks = app::luks(&pool.instance);
    if luks && key.is_none() && pool.instance.state != "running" {
        return Err(zstream_common::usage(format!(
            "pool {} is encrypted by LUKS under its volumes: give its --key-file to open them",
            pool.name
        )));
    }
    let inst = ensure_running(ctx, &pool.name, &pool.instance)?;
    let inst = learn_host_key(ctx, inst, None)?;
    let host = ctx.host(&inst)?;
    let devs = ctx.devices(&pool.volumes, &inst);
    ready(ctx, &host, mem_mib, &devs)?;
    if luks {
        open_volumes(ctx, &host, pool, &inst, key, false)?;
    }
    ctx.ssh.run(
        &host,
        "importing the pool",
        &script::import(&pool.name, &ctx.device_dir(&inst)),
        Input::Nothing,
    )?;
    ctx.ssh.run(
        &host,
        "growing the devices to their volumes",
        &script::expand(&pool.name, &ctx.pool_devices(&pool.volumes, &inst)),
        Input::Nothing,
    )?;
    if let Some(k) = key {
        if !luks {
            ctx.ssh.run(
                &host,
                "loading the key",
                &script::unlock(&pool.name),
                Input::Key(k.raw()),
            )?;
        }
        if mount {
            ctx.ssh.run(
                &host,
                "mounting",
                &script::mount(&pool.name),
                Input::Nothing,
            )?;
        }
        say!("pool {} is up on {} ({host})", pool.name, inst.id);
    }
    Ok(inst)
}

/// A LUKS pool's volumes opened (with `format`, new ones formatted first) and resized to their devices: with the
/// key when there is one, else only checked to be open already.
pub fn open_volumes(
    ctx: &Ctx,
    host: &Host,
    pool: &Existing,
    inst: &Instance,
    key: Option<&PoolKey>,
    format: bool,
) -> anyhow::Result<()> {
    match key {
        Some(k) => {
            let pass = k.luks_passphrase();
            ctx.ssh.run(
                host,
                "opening the volumes' encryption",
                &script::luks_open(&ctx.luks_pairs(&pool.volumes, inst), format),
                Input::Key(&pass),
            )?;
        }
        None => {
            ctx.ssh.run(
                host,
                "checking that the volumes' encryption is open",
                &script::luks_opened(&app::mappers(&pool.volumes)),
                Input::Nothing,
            )?;
        }
    }
    Ok(())
}

/// Brings the pool down: a scrub first when one is due (and `scrub`), then unmounted, key unloaded, exported,
/// the instance stopped. The instance is stopped even when the remote steps fail (its memory, and the key with
/// it, go when it stops), and the failure is then the command's.
pub fn down(ctx: &Ctx, pool: &Existing, scrub: bool) -> anyhow::Result<()> {
    let inst = &pool.instance;
    match inst.state.as_str() {
        "stopped" => {
            say!("pool {} is down ({} is stopped)", pool.name, inst.id);
            return Ok(());
        }
        "running" | "pending" | "stopping" => {}
        other => anyhow::bail!("instance {} is {other}", inst.id),
    }
    let locked = if inst.state == "stopping" {
        Ok(())
    } else {
        ctx.host(inst).and_then(|host| {
            if scrub {
                scrub_if_due(ctx, pool, &host);
            }
            let mappers = if app::luks(inst) {
                app::mappers(&pool.volumes)
            } else {
                vec![]
            };
            ctx.ssh
                .run(
                    &host,
                    "unloading the key and exporting the pool",
                    &script::lock(&pool.name, &mappers),
                    Input::Nothing,
                )
                .map(|_| ())
        })
    };
    // The time it ran, for the cost so far.
    if let Some(launched) = inst.launched {
        let ran = SystemTime::now()
            .duration_since(launched)
            .unwrap_or_default()
            .as_secs();
        let before: u64 = inst
            .tag(tags::RUN_SECONDS)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        ctx.ec2
            .set_tags(&inst.id, &[(tags::RUN_SECONDS, (before + ran).to_string())])?;
    }
    ctx.ec2.stop(&inst.id)?;
    match locked {
        Ok(()) => {
            say!("pool {} is down ({} stopped)", pool.name, inst.id);
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "{} was stopped anyway (the key went with its memory), but the pool was not exported cleanly",
            inst.id
        ))),
    }
}

/// Runs `f` with the pool up (with its key, or imported only), on the instance's address; brings the pool down
/// again if it was down before, whatever `f` did.
pub fn with_up<T>(
    ctx: &Ctx,
    name: &str,
    key: Option<&PoolKey>,
    f: impl FnOnce(&Host) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let pool = ctx.existing(name)?;
    let was_up = pool.instance.state == "running";
    // A signal (a cron timeout, Ctrl-C) brings the pool down too: another ec2-pool does it, as this one's
    // threads are busy with the instance; then this process dies of the signal. The window is over: no scrub.
    let armed = (!was_up && !ctx.ec2.dry_run).then(|| {
        relaunch_on_signal(
            ctx,
            &["down", name, "--no-scrub"],
            "the pool was brought down",
            "bringing the pool down",
        )
    });
    let done = up(ctx, &pool, key, false).and_then(|inst| f(&ctx.host(&inst)?));
    drop(armed);
    if was_up {
        return done;
    }
    // Found as it is now, since up started it.
    let downed = ctx.existing(name).and_then(|now| down(ctx, &now, true));
    match (done, downed) {
        (Ok(t), d) => d.map(|_| t),
        (Err(e), Ok(())) => Err(e.context("the pool was brought down again")),
        (Err(e), Err(d)) => Err(e.context(format!("bringing the pool down failed too: {d:#}"))),
    }
}

/// Arms a cleanup that runs another ec2-pool with this run's options and `args` when a signal ends this one;
/// `done` says what that did, `what` what failed if it did not.
pub fn relaunch_on_signal(
    ctx: &Ctx,
    args: &[&str],
    done: &'static str,
    what: &'static str,
) -> zstream_common::interrupt::Armed {
    let mut argv = ctx.relaunch.clone();
    argv.extend(args.iter().map(|a| a.to_string()));
    let show = args.join(" ");
    zstream_common::interrupt::arm(move || {
        let run = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(&argv)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
        });
        match run {
            Ok(s) if s.success() => done.to_string(),
            Ok(s) => format!("{what} failed ({s}): run `ec2-pool {show}`"),
            Err(e) => format!("{what} failed ({e}): run `ec2-pool {show}`"),
        }
    })
}

/// Starts the instance unless it runs; returns it as it is then (its address is new after each start).
pub fn ensure_running(ctx: &Ctx, name: &str, inst: &Instance) -> anyhow::Result<Instance> {
    match inst.state.as_str() {
        "running" => return Ok(inst.clone()),
        "pending" => ctx.ec2.wait_running(&inst.id)?,
        "stopping" | "stopped" => {
            if inst.state == "stopping" {
                ctx.ec2.stop(&inst.id)?; // waits until stopped
            }
            say!("starting {}", inst.id);
            ctx.ec2.start(&inst.id)?;
        }
        other => anyhow::bail!("instance {} is {other}; it cannot be started", inst.id),
    }
    if ctx.ec2.dry_run {
        return Ok(Instance {
            state: "running".into(),
            ..inst.clone()
        });
    }
    let now = ctx.ec2.find(name)?.existing()?.instance;
    if now.id != inst.id {
        anyhow::bail!(
            "pool {name}'s instance is {} now, not {}: look at it before going on",
            now.id,
            inst.id
        );
    }
    Ok(now)
}

/// The instance with its SSH host key pinned: the tag when it has one; else `given`, or the key its console
/// output shows (looked at until the SSH timeout), kept in the tag from then on.
pub fn learn_host_key(
    ctx: &Ctx,
    mut inst: Instance,
    given: Option<&str>,
) -> anyhow::Result<Instance> {
    if inst.tag(tags::HOST_KEY).is_some() {
        return Ok(inst);
    }
    let key = match given {
        Some(k) => hostkey::parse(k).map_err(zstream_common::usage)?,
        None if ctx.ec2.dry_run => {
            say!(
                "dry run: would read {}'s SSH host key from GetConsoleOutput and keep it in tag {}",
                inst.id,
                tags::HOST_KEY
            );
            return Ok(inst);
        }
        None => {
            let t = Instant::now();
            let mut pause = Duration::from_secs(2);
            loop {
                if let Some(k) = hostkey::from_console(&ctx.ec2.console_output(&inst.id)?) {
                    break k;
                }
                if t.elapsed() + pause > ctx.ssh_timeout {
                    anyhow::bail!(
                        "instance {}'s console output shows no SSH host key after {}s (cloud-init prints it at \
                         first boot): give it with --host-key, as `ssh-keyscan` shows it from a network you trust",
                        inst.id,
                        ctx.ssh_timeout.as_secs()
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(15));
            }
        }
    };
    ctx.ec2
        .set_tags(&inst.id, &[(tags::HOST_KEY, key.clone())])?;
    say!(
        "{}'s SSH host key is {}; every connection to it requires that key",
        inst.id,
        key.split(' ').next().unwrap_or("")
    );
    inst.tags.insert(tags::HOST_KEY.to_string(), key);
    Ok(inst)
}

/// A started instance made ready: answering over SSH, prepared (ZFS, swap, the ARC cap), and `devs` there.
pub fn ready(ctx: &Ctx, host: &Host, mem_mib: u64, devs: &[String]) -> anyhow::Result<()> {
    ctx.ssh.wait(host, ctx.ssh_timeout)?;
    ctx.ssh.run(
        host,
        "preparing the instance",
        &ctx.prep.script(mem_mib),
        Input::Nothing,
    )?;
    await_devices(ctx, host, devs)
}

/// Waits for `devs` to appear on the instance (a volume's device comes a moment after it attaches).
pub fn await_devices(ctx: &Ctx, host: &Host, devs: &[String]) -> anyhow::Result<()> {
    ctx.ssh
        .run(
            host,
            "waiting for the volumes",
            &script::await_devices(devs),
            Input::Nothing,
        )
        .map(|_| ())
}

/// Attaches every volume of pool `name` that is not attached to its instance.
pub fn attach_missing(
    ctx: &Ctx,
    name: &str,
    volumes: &[Volume],
    inst: &Instance,
) -> anyhow::Result<()> {
    let loose: Vec<&Volume> = volumes.iter().filter(|v| v.attached_to.is_none()).collect();
    if let Some(v) = volumes
        .iter()
        .find(|v| v.attached_to.as_deref().is_some_and(|i| i != inst.id))
    {
        anyhow::bail!(
            "volume {} of pool {name} is attached to {}, not to the pool's instance {}",
            v.id,
            v.attached_to.as_deref().unwrap_or("?"),
            inst.id
        );
    }
    let names = layout::free_device_names(&inst.devices, loose.len());
    if names.len() < loose.len() {
        anyhow::bail!(
            "no free device names left on {} for {} more volumes",
            inst.id,
            loose.len()
        );
    }
    for (v, dev) in loose.iter().zip(&names) {
        ctx.ec2.attach(&v.id, &inst.id, dev)?;
    }
    let ids: Vec<String> = loose.iter().map(|v| v.id.clone()).collect();
    ctx.ec2.wait_volumes(&ids, true)
}

/// The pool's use as the instance reports it, when it runs and the pool is imported: bytes its datasets can
/// hold (parity aside), hold, and can still take.
#[derive(Debug, serde::Serialize)]
pub struct Usage {
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub health: String,
}

pub fn usage_of(ctx: &Ctx, pool: &str, inst: &Instance) -> anyhow::Result<Option<Usage>> {
    if inst.state != "running" {
        return Ok(None);
    }
    let out = ctx.ssh.run(
        &ctx.host(inst)?,
        "reading the pool's use",
        &script::usage(pool),
        Input::Nothing,
    )?;
    let w: Vec<&str> = out.split_whitespace().collect();
    if w.len() < 3 {
        return Ok(None);
    }
    let n = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| anyhow::anyhow!("the pool's use reads '{}'", out.trim()))
    };
    let (used, free) = (n(w[0])?, n(w[1])?);
    Ok(Some(Usage {
        size_bytes: used + free,
        used_bytes: used,
        free_bytes: free,
        health: w[2].to_string(),
    }))
}

/// `ec2-pool scrub`: up (imported; a natively encrypted pool's key is not needed to check what is stored), a
/// scrub to the end, down.
pub fn scrub(ctx: &Ctx, name: &str, key: Option<&PoolKey>) -> anyhow::Result<()> {
    let rec = with_up(ctx, name, key, |host| {
        let pool = ctx.existing(name)?;
        scrub_now(ctx, &pool, host)
    })?;
    match rec {
        Some(r) if r.errors > 0 => Err(zstream_common::integrity(format!(
            "pool {name}: the scrub found {} errors (`zpool status -v {name}` on the instance names them)",
            r.errors
        ))),
        Some(_) => Ok(()),
        None => anyhow::bail!("pool {name} was not imported: nothing was scrubbed"),
    }
}

/// A scrub at the end of a window when one is due. What it finds is kept in the tag, for `status` and
/// `zstream-verify` to report: the window's own work (a receive) stands whatever the scrub says.
fn scrub_if_due(ctx: &Ctx, pool: &Existing, host: &Host) {
    let last = pool.instance.tag(tags::SCRUB).and_then(ScrubRecord::parse);
    let created = pool
        .instance
        .tag(tags::CREATED)
        .and_then(|c| humantime::parse_rfc3339(c).ok());
    let now = match rules::clock() {
        Ok(t) => t,
        Err(e) => return say!("pool {}: no scrub: {e:#}", pool.name),
    };
    if !rules::scrub_due(last.as_ref(), created, ctx.scrub_every, now) {
        return;
    }
    say!(
        "pool {}: a scrub is due (every {}); reading every block back",
        pool.name,
        humantime::format_duration(ctx.scrub_every)
    );
    match scrub_now(ctx, pool, host) {
        Ok(Some(r)) if r.errors > 0 => say!(
            "warning: pool {}: the scrub found {} errors (`ec2-pool status {}`; `zpool status -v` on the instance \
             names the files)",
            pool.name,
            r.errors,
            pool.name
        ),
        Ok(_) => {}
        Err(e) => say!("warning: pool {}: the scrub did not finish: {e:#}", pool.name),
    }
}

/// Scrubs the pool to the end and keeps the result in its tag; None when the pool is not imported.
fn scrub_now(ctx: &Ctx, pool: &Existing, host: &Host) -> anyhow::Result<Option<ScrubRecord>> {
    let out = ctx.ssh.run(
        host,
        "scrubbing the pool",
        &script::scrub(&pool.name),
        Input::Nothing,
    )?;
    if ctx.ec2.dry_run || out.trim().is_empty() {
        return Ok(None);
    }
    let errors = rules::scrub_errors(&out).ok_or_else(|| {
        anyhow::anyhow!(
            "the scrub of {} ended, but `zpool status` does not say how: {}",
            pool.name,
            out.lines()
                .find(|l| l.contains("scan:") || l.contains("scrub:"))
                .unwrap_or("")
                .trim()
        )
    })?;
    let rec = ScrubRecord {
        at: rules::clock()?,
        errors,
    };
    ctx.ec2
        .set_tags(&pool.instance.id, &[(tags::SCRUB, rec.tag())])?;
    say!("pool {}: scrubbed, {} errors", pool.name, rec.errors);
    Ok(Some(rec))
}
