//! The run of one command: the options after the config file, what every subcommand works with (`Ctx`: EC2, SSH,
//! where the devices are), and which module does each subcommand.

use crate::ec2::{Ec2, Existing, Instance};
use crate::hostkey;
use crate::key::PoolKey;
use crate::remote::{Host, Ssh, DEFAULT_SSH};
use crate::{config, create, datasets, grow, report, session, tags};
use std::time::Duration;
use zstream_common::{say, usage};

pub use crate::cli::{Args, Cmd, Common, Prep, NAME};

/// What every subcommand works with: EC2, SSH, and where the pool's devices are.
pub struct Ctx {
    /// The options this run was given (after the config file), for the `ec2-pool down` a signal runs.
    pub relaunch: Vec<String>,
    pub prep: Prep,
    pub ec2: Ec2,
    pub ssh: Ssh,
    pub template: Option<String>,
    pub ssh_timeout: Duration,
    /// How old the last scrub may be before the end of a window scrubs again (zero: never).
    pub scrub_every: Duration,
}

/// Scrubs a month apart unless told otherwise.
const SCRUB_EVERY: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn run(args: Args) -> anyhow::Result<()> {
    let common = config::apply(args.common)?;
    let dry_run = match &args.cmd {
        Cmd::Create(a) => a.dry_run,
        Cmd::Grow(a) => a.dry_run,
        Cmd::Destroy(a) => a.dry_run,
        _ => false,
    };
    if let Cmd::Cost(a) = &args.cmd {
        if a.name.is_none() {
            return report::cost_of_shape(a);
        }
    }
    let ep = zstream_aws::Endpoint {
        url: common.endpoint.clone(),
        region: common.region.clone(),
    };
    let ctx = Ctx {
        relaunch: common.as_args(),
        ec2: Ec2::new(&ep, dry_run)?,
        ssh: Ssh::new(common.ssh.as_deref().unwrap_or(DEFAULT_SSH), dry_run)?,
        template: common.device_template.clone(),
        ssh_timeout: common.ssh_timeout.unwrap_or(Duration::from_secs(300)),
        scrub_every: common.scrub_every.unwrap_or(SCRUB_EVERY),
        prep: common.prep.clone(),
    };
    match args.cmd {
        Cmd::Create(a) => create::create(&ctx, a),
        Cmd::Status(a) => report::status(&ctx, &a.name, a.json),
        Cmd::Up(a) => {
            let pool = ctx.existing(&a.name)?;
            let key = if a.key_files.is_empty() {
                None
            } else {
                Some(PoolKey::load(&a.name, &a.key_files)?)
            };
            session::up(&ctx, &pool, key.as_ref(), a.mount)?;
            if key.is_none() {
                say!(
                    "pool {} is imported without its key: its datasets stay locked",
                    a.name
                );
            }
            Ok(())
        }
        Cmd::Down(a) => session::down(&ctx, &ctx.existing(&a.name)?, !a.no_scrub),
        Cmd::Grow(a) => grow::run(&ctx, a),
        Cmd::Receive(a) => datasets::receive(&ctx, a),
        Cmd::ResumeToken(a) => datasets::resume_token(&ctx, a),
        Cmd::Send(a) => datasets::send(&ctx, a),
        Cmd::Snapshots(a) => datasets::snapshots(&ctx, a),
        Cmd::Datasets(a) => datasets::tree(&ctx, a),
        Cmd::DestroySnapshots(a) => datasets::destroy_snapshots(&ctx, a),
        Cmd::Scrub(a) => session::scrub(&ctx, &a.name, opt_key(&a.name, &a.keys)?.as_ref()),
        Cmd::Cost(a) => report::cost_of_pool(&ctx, &a),
        Cmd::Destroy(a) => create::destroy(&ctx, a),
        Cmd::Ls(a) => report::ls(&ctx, a.json),
    }
}

/// A pool name that is also a good ZFS pool name, and safe in a tag and a message.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !["mirror", "raidz", "spare", "log"]
            .iter()
            .any(|r| name.starts_with(r));
    if !ok {
        return Err(usage(format!(
            "'{name}' is not a pool name: a letter, then letters, digits, '_', '-' or '.', at most 64, not starting \
             with mirror, raidz, spare or log"
        )));
    }
    Ok(())
}

impl Ctx {
    /// The pool, which must exist (an instance that is not terminated).
    pub fn existing(&self, name: &str) -> anyhow::Result<Existing> {
        check_name(name)?;
        self.ec2.find(name)?.existing()
    }

    /// Where volume `id` appears on the instance.
    pub fn device(&self, inst: &Instance, id: &str) -> String {
        self.template_of(inst)
            .replace("{vol}", &id.replace('-', ""))
    }

    fn template_of(&self, inst: &Instance) -> String {
        self.template
            .clone()
            .or_else(|| inst.tag(tags::DEVICE_TEMPLATE).map(str::to_string))
            .unwrap_or_else(|| config::DEFAULT_TEMPLATE.to_string())
    }

    /// The directory `zpool import -d` searches: the volumes' own, or /dev/mapper under LUKS.
    pub fn device_dir(&self, inst: &Instance) -> String {
        if luks(inst) {
            return "/dev/mapper".into();
        }
        let t = self.template_of(inst);
        t.rsplit_once('/')
            .map_or(".".to_string(), |(d, _)| d.to_string())
    }

    /// Where each of `volumes` appears on `inst`, in the pool's order.
    pub fn devices(&self, volumes: &[crate::ec2::Volume], inst: &Instance) -> Vec<String> {
        volumes.iter().map(|v| self.device(inst, &v.id)).collect()
    }

    /// What the pool is made of: the volumes, or under LUKS their mappings (/dev/mapper/ec2pool-VOLUMEID).
    pub fn pool_devices(&self, volumes: &[crate::ec2::Volume], inst: &Instance) -> Vec<String> {
        if luks(inst) {
            return mappers(volumes)
                .iter()
                .map(|m| format!("/dev/mapper/{m}"))
                .collect();
        }
        self.devices(volumes, inst)
    }

    /// Each volume's device and its LUKS mapping's name, for `script::luks_open`.
    pub fn luks_pairs(
        &self,
        volumes: &[crate::ec2::Volume],
        inst: &Instance,
    ) -> Vec<(String, String)> {
        self.devices(volumes, inst)
            .into_iter()
            .zip(mappers(volumes))
            .collect()
    }

    /// How SSH reaches `inst`: its address, and the host key pinned at create.
    pub fn host(&self, inst: &Instance) -> anyhow::Result<Host> {
        let alias = hostkey::alias(&inst.id);
        if self.ec2.dry_run && (inst.address.is_none() || inst.tag(tags::HOST_KEY).is_none()) {
            return Ok(Host {
                address: inst
                    .address
                    .clone()
                    .unwrap_or_else(|| format!("<address of {}>", inst.id)),
                alias,
                key: "<its host key>".into(),
            });
        }
        let address = inst
            .address
            .clone()
            .ok_or_else(|| anyhow::anyhow!("instance {} has no address to reach it by", inst.id))?;
        let key = inst.tag(tags::HOST_KEY).ok_or_else(|| {
            anyhow::anyhow!(
                "instance {} has no pinned SSH host key (tag {})",
                inst.id,
                tags::HOST_KEY
            )
        })?;
        Ok(Host {
            address,
            alias,
            key: key.to_string(),
        })
    }
}

/// A dataset name below the pool, safe in a message and a script.
pub fn check_dataset(d: &str) -> anyhow::Result<()> {
    let bad = d.is_empty()
        || d.starts_with('/')
        || d.ends_with('/')
        || d.contains(['@', '#', ' ', '\'', '%'])
        || d.contains("//");
    if bad {
        return Err(usage(format!("'{d}' is not a dataset name (tank/home)")));
    }
    Ok(())
}

/// Whether the pool is encrypted by LUKS under its volumes (`create --encryption luks`) rather than by ZFS.
pub fn luks(inst: &Instance) -> bool {
    inst.tag(tags::ENCRYPTION) == Some("luks")
}

/// The LUKS mappings' names of `volumes`: ec2pool-VOLUMEID, the id without its dash.
pub fn mappers(volumes: &[crate::ec2::Volume]) -> Vec<String> {
    volumes
        .iter()
        .map(|v| format!("ec2pool-{}", v.id.replace('-', "")))
        .collect()
}

/// The pool's key from key files given where only a LUKS pool needs them; None when none were given.
pub fn opt_key(name: &str, keys: &crate::cli::OptKeys) -> anyhow::Result<Option<PoolKey>> {
    if keys.key_files.is_empty() {
        return Ok(None);
    }
    PoolKey::load(name, &keys.key_files).map(Some)
}

pub fn layout_of(inst: &Instance) -> anyhow::Result<crate::layout::Layout> {
    let tag = inst
        .tag(tags::LAYOUT)
        .ok_or_else(|| anyhow::anyhow!("instance {} has no {} tag", inst.id, tags::LAYOUT))?;
    crate::layout::Layout::parse_tag(tag).map_err(|e| anyhow::anyhow!("instance {}: {e}", inst.id))
}
