//! `create` and `destroy`: the pool's parts made and unmade. A create that fails removes what it made (a create
//! killed outright leaves its parts tagged `creating`, which a rerun finishes and `destroy --unfinished`
//! removes); destroy cancels the Spot request before it terminates the instance, so nothing launches again.

use crate::app::{check_name, layout_of, Ctx};
use crate::cli::{CreateArgs, DestroyArgs, Encryption};
use crate::ec2::{Instance, Launch, Pool, RootDevice, VolumeSpec};
use crate::key::PoolKey;
use crate::remote::Input;
use crate::{config, rules, script, session, tags};
use std::time::SystemTime;
use zstream_common::{say, usage};

/// What this run of `create` made, to remove again if it fails.
#[derive(Default)]
struct Made {
    group: Option<String>,
    instance: Option<String>,
    volumes: Vec<String>,
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    let (layout, gib) = a.shape.layout()?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    if let Some(k) = &a.host_key {
        crate::hostkey::parse(k).map_err(usage)?;
    }
    let template = ctx
        .template
        .clone()
        .unwrap_or_else(|| config::DEFAULT_TEMPLATE.to_string());
    check_template(&template)?;
    let info = ctx.ec2.instance_type(&a.shape.instance_type)?;
    if let Some(max) = info.max_ebs {
        // One network interface, the root volume, then the pool's volumes.
        let room = rules::data_volume_room(max, info.shared_limit, 1);
        if layout.volumes() > room {
            return Err(usage(format!(
                "{} volumes do not fit on a {}: it attaches at most {max} EBS volumes ({} limit{}), the root one \
                 included, so {room} for the pool; use fewer, larger volumes or another instance type",
                layout.volumes(),
                a.shape.instance_type,
                if info.shared_limit { "a shared" } else { "a dedicated" },
                if info.shared_limit {
                    " that leaves room for one network interface"
                } else {
                    ""
                }
            )));
        }
    }
    let pool = ctx.ec2.find(&a.name)?;
    if let Some(i) = &pool.instance {
        if i.tag(tags::STATE) != Some("creating") {
            return Err(usage(format!(
                "pool {} exists (instance {}): nothing to create",
                a.name, i.id
            )));
        }
    } else if pool.volumes.is_empty() && a.security_groups.is_empty() && a.ssh_from.is_none() {
        return Err(usage(
            "give --security-group-id (a group that admits SSH from this machine) or --ssh-from CIDR (a group \
             made for the pool): an instance in the VPC's default group cannot be reached",
        ));
    }
    let ebs_encryption = (!a.no_ebs_encryption).then(|| a.ebs_kms_key_id.clone());
    let mut made = Made::default();
    // A signal removes what a killed create would otherwise leave running, as soon as there is an instance.
    let mut armed = None;
    let result = build(
        ctx,
        &a,
        pool,
        &key,
        &template,
        gib,
        &ebs_encryption,
        &mut made,
        &mut armed,
    );
    drop(armed);
    match result {
        Ok(()) => {
            if a.json && !ctx.ec2.dry_run {
                return crate::report::status(ctx, &a.name, true);
            }
            Ok(())
        }
        Err(e) if ctx.ec2.dry_run || (made.instance.is_none() && made.volumes.is_empty() && made.group.is_none()) => {
            Err(e)
        }
        Err(e) => match undo(ctx, &a.name, &made) {
            Ok(what) => Err(e.context(format!("create failed; removed what it made: {what}"))),
            Err(u) => Err(e.context(format!(
                "create failed, and removing what it made failed too ({u:#}): `ec2-pool destroy {} --confirm {} \
                 --unfinished` removes it",
                a.name, a.name
            ))),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &Ctx,
    a: &CreateArgs,
    mut pool: Pool,
    key: &PoolKey,
    template: &str,
    gib: u64,
    ebs_encryption: &Option<Option<String>>,
    made: &mut Made,
    armed: &mut Option<zstream_common::interrupt::Armed>,
) -> anyhow::Result<()> {
    let (layout, _) = a.shape.layout()?;
    let info = ctx.ec2.instance_type(&a.shape.instance_type)?;
    let inst = match pool.instance.take() {
        Some(i) => {
            let have = layout_of(&i)?;
            if have != layout {
                return Err(usage(format!(
                    "pool {} exists with layout {have}, not {layout}",
                    a.name
                )));
            }
            key.check_against(i.tag(tags::KEY_IDS))?;
            if crate::app::luks(&i) != (a.encryption == Encryption::Luks) {
                return Err(usage(format!(
                    "pool {} is being created with the other encryption; give the --encryption it was started with",
                    a.name
                )));
            }
            say!(
                "pool {} has instance {} already, its creation unfinished; finishing it",
                a.name,
                i.id
            );
            i
        }
        None => {
            let ami = match &a.ami {
                Some(a) => a.clone(),
                None => {
                    let arch = if info.archs.iter().any(|x| x == "x86_64") {
                        "x86_64"
                    } else {
                        "arm64"
                    };
                    ctx.ec2.newest_ubuntu_lts(arch)?
                }
            };
            let image = ctx.ec2.image(&ami)?;
            if !info.archs.is_empty() && !info.archs.contains(&image.architecture) {
                return Err(usage(format!(
                    "image {ami} is for {}, and a {} runs {}: give an image for it (or none: the newest Ubuntu LTS \
                     for it is found)",
                    image.architecture,
                    a.shape.instance_type,
                    info.archs.join(", ")
                )));
            }
            let mut groups = a.security_groups.clone();
            if let Some(cidr) = &a.ssh_from {
                let vpc = ctx.ec2.vpc_of(a.subnet.as_deref())?;
                let g = ctx.ec2.create_ssh_group(
                    &a.name,
                    &vpc,
                    cidr,
                    &[
                        ("Name", format!("ec2-pool {}", a.name)),
                        (tags::POOL, a.name.clone()),
                    ],
                )?;
                made.group = Some(g.clone());
                groups.push(g);
            }
            let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let mut tags = vec![
                ("Name", format!("ec2-pool {}", a.name)),
                (tags::POOL, a.name.clone()),
                (tags::LAYOUT, layout.tag()),
                (tags::KEY_IDS, key.ids_tag()),
                (tags::DEVICE_TEMPLATE, template.to_string()),
                (tags::CREATED, created),
                (tags::RUN_SECONDS, "0".into()),
                (tags::STATE, "creating".into()),
                (
                    tags::ENCRYPTION,
                    match a.encryption {
                        Encryption::Native => "native".into(),
                        Encryption::Luks => "luks".into(),
                    },
                ),
            ];
            if let Some(k) = &a.host_key {
                tags.push((tags::HOST_KEY, crate::hostkey::parse(k).map_err(usage)?));
            }
            let launch = Launch {
                ami,
                instance_type: a.shape.instance_type.clone(),
                subnet: a.subnet.clone(),
                ssh_key_name: a.ssh_key_name.clone(),
                security_groups: groups,
                root: image.root_device.map(|device| RootDevice {
                    device,
                    size_gib: image.root_gib.unwrap_or(crate::cost::ROOT_GIB),
                    encryption: ebs_encryption.clone(),
                }),
                spot: a.spot,
                tags,
            };
            let id = ctx.ec2.run_instance(&launch)?;
            if !ctx.ec2.dry_run {
                made.instance = Some(id.clone());
                *armed = Some(session::relaunch_on_signal(
                    ctx,
                    &["destroy", &a.name, "--confirm", &a.name, "--unfinished"],
                    "what the create made was removed",
                    "removing what the create made",
                ));
            }
            ctx.ec2.wait_running(&id)?;
            if ctx.ec2.dry_run {
                dry_instance(&id, &a.shape.instance_type, &launch.tags)
            } else {
                ctx.ec2.find(&a.name)?.existing()?.instance
            }
        }
    };
    let inst = session::learn_host_key(ctx, inst, a.host_key.as_deref())?;
    // Volumes: the missing ones made (encrypted as the rest), every one attached.
    for vdev in 0..layout.vdevs {
        for disk in 0..layout.disks {
            if pool
                .volumes
                .iter()
                .any(|v| v.vdev == vdev && v.disk == disk)
            {
                continue;
            }
            let spec = VolumeSpec {
                zone: inst.zone.clone(),
                size_gib: gib,
                volume_type: layout.volume_type.clone(),
                iops: a.shape.iops,
                encryption: ebs_encryption.clone(),
            };
            let id = ctx
                .ec2
                .create_volume(&spec, &volume_tags(&a.name, vdev, disk))?;
            if !ctx.ec2.dry_run {
                made.volumes.push(id);
            }
        }
    }
    ctx.ec2.wait_volumes(&made.volumes, false)?;
    if !ctx.ec2.dry_run {
        pool = ctx.ec2.find(&a.name)?;
    }
    session::attach_missing(ctx, &a.name, &pool.volumes, &inst)?;
    let inst = session::ensure_running(ctx, &a.name, &inst)?;
    let host = ctx.host(&inst)?;
    let dry_placeholders = ctx.ec2.dry_run && pool.volumes.is_empty();
    let placeholders = |what: &str| -> Vec<String> {
        (0..layout.volumes())
            .map(|i| format!("<{what} of new volume {i}>"))
            .collect()
    };
    let devs = if dry_placeholders {
        placeholders("device")
    } else {
        ctx.devices(&pool.volumes, &inst)
    };
    session::ready(ctx, &host, info.mem_mib, &devs)?;
    let existing = crate::ec2::Existing {
        name: a.name.clone(),
        instance: inst.clone(),
        volumes: pool.volumes.clone(),
    };
    let luks = a.encryption == Encryption::Luks;
    if luks {
        session::open_volumes(ctx, &host, &existing, &inst, Some(key), true)?;
    }
    let members = if dry_placeholders {
        placeholders(if luks { "mapping" } else { "device" })
    } else {
        ctx.pool_devices(&pool.volumes, &inst)
    };
    let vdevs: Vec<Vec<String>> = members
        .chunks(layout.disks as usize)
        .map(<[String]>::to_vec)
        .collect();
    let made_pool = ctx.ssh.run(
        &host,
        "creating the pool",
        &script::create(&a.name, &ctx.device_dir(&inst), layout.raidz, &vdevs, !luks),
        if luks {
            Input::Nothing
        } else {
            Input::Key(key.raw())
        },
    )?;
    say!(
        "pool {} {}: {layout}, {} volumes of {gib} GiB on {}; bringing it down",
        a.name,
        if made_pool.trim() == "exists" {
            "was there"
        } else {
            "created"
        },
        layout.volumes(),
        inst.id
    );
    session::down(ctx, &existing, false)?;
    ctx.ec2
        .set_tags(&inst.id, &[(tags::STATE, "ready".into())])?;
    Ok(())
}

/// Removes what a failed create made: the instance (its Spot request cancelled first), its volumes, its group.
fn undo(ctx: &Ctx, name: &str, made: &Made) -> anyhow::Result<String> {
    let mut what = vec![];
    if let Some(id) = &made.instance {
        let spot = ctx
            .ec2
            .find(name)?
            .instance
            .filter(|i| &i.id == id)
            .and_then(|i| i.spot_request);
        if let Some(r) = spot {
            ctx.ec2.cancel_spot(&r)?;
        }
        ctx.ec2.terminate(id)?;
        what.push(format!("instance {id}"));
    }
    ctx.ec2.wait_volumes(&made.volumes, false)?;
    for v in &made.volumes {
        ctx.ec2.delete_volume(v)?;
    }
    if !made.volumes.is_empty() {
        what.push(format!("{} volumes", made.volumes.len()));
    }
    if let Some(g) = &made.group {
        ctx.ec2.delete_security_group(g)?;
        what.push(format!("security group {g}"));
    }
    Ok(what.join(", "))
}

/// What a dry run's new instance stands for.
fn dry_instance(id: &str, instance_type: &str, tags: &[(&str, String)]) -> Instance {
    Instance {
        id: id.to_string(),
        state: "running".into(),
        instance_type: instance_type.to_string(),
        address: None,
        zone: "<its zone>".into(),
        tags: tags
            .iter()
            .filter(|(k, _)| *k != tags::HOST_KEY)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        launched: None,
        devices: vec![],
        spot: false,
        spot_request: None,
        enis: 1,
    }
}

pub fn volume_tags(pool: &str, vdev: u32, disk: u32) -> Vec<(&'static str, String)> {
    vec![
        ("Name", format!("ec2-pool {pool} vdev {vdev} disk {disk}")),
        (tags::POOL, pool.to_string()),
        (tags::VDEV, vdev.to_string()),
        (tags::DISK, disk.to_string()),
    ]
}

fn check_template(t: &str) -> anyhow::Result<()> {
    let file = t.rsplit_once('/').map_or(t, |(_, f)| f);
    if !t.starts_with('/') || !file.contains("{vol}") || t[..t.len() - file.len()].contains("{vol}")
    {
        return Err(usage(format!(
            "--device-template {t}: an absolute path with {{vol}} in its last component (the volume id without its dash)"
        )));
    }
    Ok(())
}

pub fn destroy(ctx: &Ctx, a: DestroyArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    if a.confirm != a.name {
        return Err(usage(format!(
            "--confirm {} does not name the pool {}: nothing destroyed",
            a.confirm, a.name
        )));
    }
    let pool = ctx.ec2.find(&a.name)?;
    let groups = ctx.ec2.pool_groups(&a.name)?;
    if pool.instance.is_none() && pool.volumes.is_empty() && groups.is_empty() {
        anyhow::bail!(
            "no pool {} here: nothing is tagged {}={}",
            a.name,
            tags::POOL,
            a.name
        );
    }
    if a.unfinished {
        if let Some(i) = pool
            .instance
            .as_ref()
            .filter(|i| i.tag(tags::STATE) != Some("creating"))
        {
            anyhow::bail!(
                "pool {} was created ({} is not `creating`): --unfinished destroys only what a killed create left",
                a.name,
                i.id
            );
        }
    }
    if let Some(i) = &pool.instance {
        // Cancelled first: a persistent Spot request launches a new instance when its instance is terminated.
        if let Some(r) = &i.spot_request {
            say!("cancelling Spot request {r}");
            ctx.ec2.cancel_spot(r)?;
        }
        say!("terminating {}", i.id);
        ctx.ec2.terminate(&i.id)?;
    }
    // Terminating detaches the volumes; any still attached elsewhere is detached first.
    let now = if ctx.ec2.dry_run {
        None
    } else {
        Some(ctx.ec2.find(&a.name)?)
    };
    if let Some(again) = now.as_ref().and_then(|p| p.instance.as_ref()) {
        anyhow::bail!(
            "pool {} has an instance again ({}) after its instance was terminated: a Spot request that was not \
             cancelled? Cancel it in the EC2 console, then run destroy again",
            a.name,
            again.id
        );
    }
    let attached: Vec<String> = now
        .map(|p| {
            p.volumes
                .iter()
                .filter(|v| v.attached_to.is_some())
                .map(|v| v.id.clone())
                .collect()
        })
        .unwrap_or_default();
    for v in &attached {
        ctx.ec2.detach(v)?;
    }
    ctx.ec2.wait_volumes(&attached, false)?;
    for v in &pool.volumes {
        ctx.ec2.delete_volume(&v.id)?;
    }
    for g in &groups {
        ctx.ec2.delete_security_group(g)?;
    }
    say!(
        "pool {} destroyed: {} volumes deleted{}",
        a.name,
        pool.volumes.len(),
        if groups.is_empty() {
            String::new()
        } else {
            format!(", security group {} deleted", groups.join(", "))
        }
    );
    Ok(())
}
