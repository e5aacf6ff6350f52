//! The command line of ec2-pool: the options, and each subcommand as the sequence of EC2 calls and remote steps
//! it is.

use crate::ec2::{Ec2, Instance, Launch, Pool};
use crate::key::PoolKey;
use crate::layout::{self, Layout, GIB};
use crate::remote::{script, Input, Ssh, DEFAULT_SSH};
use crate::{config, cost, grow, tags};
use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use zstream_common::progress::ProgressArg;
use zstream_common::{say, usage};

pub const NAME: &str = "ec2-pool";

const EXAMPLES: &str = "\
Examples:
  zstream-seal keygen -o /etc/zstream/a.key; zstream-seal keygen -o /etc/zstream/b.key
  ec2-pool create offsite --vdevs 3 --disks 8 --size 1GiB --key-file /etc/zstream/a.key --key-file /etc/zstream/b.key
  zfs send -i @mon tank/home@tue | ec2-pool receive offsite tank/home --key-file a.key --key-file b.key
  ec2-pool status offsite
  ec2-pool grow offsite --keep-free 20
  ec2-pool cost --vdevs 5 --disks 8 --size 1GiB --hours-per-day 1

State lives in AWS tags on the instance and its volumes (zstream:pool=NAME): any machine with the credentials
manages the pool, and nothing without the pool's tag is ever changed. Remote steps run as `SSH... HOST 'SCRIPT'`
(--ssh); keys and data travel on that command's stdin only.
Exit codes: 0 ok, 1 AWS, SSH or remote failure, 2 usage error, 75 try again later (EBS's six-hour rule).";

/// A cheap encrypted ZFS pool on EC2: RAIDZ vdevs of small EBS volumes, grown in place and kept balanced, its
/// instance awake only for the backup window, its key in the instance's memory only.
#[derive(Parser, Debug)]
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// What every subcommand takes.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct Common {
    /// The EC2 endpoint URL; default from AWS_ENDPOINT_URL, else AWS itself.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The AWS region; default from AWS_REGION or the profile.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// How to reach the instance, split at spaces; ec2-pool adds HOST and the remote command
    /// [default: "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -l ubuntu"].
    #[arg(long, global = true, value_name = "COMMAND")]
    pub ssh: Option<String>,
    /// Where a volume appears on the instance, {vol} standing for its id without the dash; stored at create
    /// [default: /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{vol}].
    #[arg(long, global = true, value_name = "PATH")]
    pub device_template: Option<String>,
    /// A file of defaults for the options that every subcommand takes, one `option value` a line [default:
    /// $EC2_POOL_CONFIG, else /etc/zstream/ec2-pool.conf when it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to wait for the instance to answer over SSH after it starts [default: 5m].
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub ssh_timeout: Option<Duration>,
    #[command(flatten)]
    pub prep: Prep,
}

impl Common {
    /// These options as a command line, to run another ec2-pool with the same ones.
    fn as_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(format!("--{k}"));
                a.push(v);
            }
        };
        opt("endpoint", self.endpoint.clone());
        opt("region", self.region.clone());
        opt("ssh", self.ssh.clone());
        opt("device-template", self.device_template.clone());
        opt(
            "ssh-timeout",
            self.ssh_timeout
                .map(|d| humantime::format_duration(d).to_string()),
        );
        opt("swap", self.prep.swap.map(|n| n.to_string()));
        opt("swap-file", self.prep.swap_file.clone());
        opt("arc-max", self.prep.arc_max.map(|n| n.to_string()));
        a
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create the instance, its volumes and the encrypted pool, then stop the instance.
    Create(CreateArgs),
    /// The instance, the volumes per vdev and their sizes, the pool's health and use, the cost so far.
    Status(StatusArgs),
    /// Start the instance, wait for SSH, prepare it, import the pool, load the key, mount (without --key-file:
    /// import only, for maintenance).
    Up(UpArgs),
    /// Unmount, unload the key, export the pool, stop the instance and wait until it has stopped.
    Down(NameArg),
    /// Grow every volume to one new size (the pool stays balanced), or add a vdev.
    Grow(GrowArgs),
    /// Receive a send stream on stdin into the pool: up if down, `zfs receive`, down again (also on failure).
    Receive(ReceiveArgs),
    /// Send DATASET@SNAP from the pool to stdout (`-i` from --from): up if down, `zfs send`, down again.
    Send(SendArgs),
    /// The snapshots of DATASET in the pool, oldest first, with guids and sizes (the backup cycle's catalog).
    Snapshots(SnapshotsArgs),
    /// Destroy snapshots of DATASET in the pool (the backup cycle's pruning).
    DestroySnapshots(DestroySnapshotsArgs),
    /// What a pool costs a month, beside S3's classes for the same data.
    Cost(CostArgs),
    /// Terminate the instance and delete the pool's volumes.
    Destroy(DestroyArgs),
    /// Every pool these credentials can see.
    Ls(JsonArg),
}

#[derive(ClapArgs, Debug)]
pub struct NameArg {
    /// The pool's name (also the ZFS pool's name on the instance).
    pub name: String,
}

#[derive(ClapArgs, Debug)]
pub struct JsonArg {
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(ClapArgs, Debug, Clone)]
pub struct Keys {
    /// A zstream-seal key file; give every one: the pool's key is derived from them all.
    #[arg(long = "key-file", value_name = "FILE", required = true)]
    pub key_files: Vec<PathBuf>,
}

#[derive(ClapArgs, Debug, Clone)]
pub struct Shape {
    /// RAIDZ vdevs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub vdevs: u32,
    /// Volumes per vdev.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub disks: u32,
    /// Size of each volume, whole GiB (1GiB).
    #[arg(long, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub size: u64,
    /// Parity disks per vdev.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub raidz: u32,
    /// EBS volume type.
    #[arg(long, default_value = "gp3", value_name = "TYPE")]
    pub volume_type: String,
    /// Instance type.
    #[arg(long, default_value = "t3.micro", value_name = "TYPE")]
    pub instance_type: String,
}

impl Shape {
    fn layout(&self) -> anyhow::Result<(Layout, u64)> {
        let l = Layout {
            vdevs: self.vdevs,
            disks: self.disks,
            raidz: self.raidz,
            volume_type: self.volume_type.clone(),
        };
        l.check().map_err(usage)?;
        let gib = layout::whole_gib(self.size, "--size").map_err(usage)?;
        check_size(&l.volume_type, gib)?;
        Ok((l, gib))
    }
}

fn check_size(volume_type: &str, gib: u64) -> anyhow::Result<()> {
    let (lo, hi) = layout::size_bounds(volume_type);
    if !(lo..=hi).contains(&gib) {
        return Err(usage(format!(
            "a {volume_type} volume is {lo} to {hi} GiB, not {gib}"
        )));
    }
    Ok(())
}

#[derive(ClapArgs, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[command(flatten)]
    pub shape: Shape,
    /// Image [default: the newest Ubuntu LTS for amd64, found by DescribeImages].
    #[arg(long, value_name = "AMI")]
    pub ami: Option<String>,
    #[arg(long, value_name = "SUBNET")]
    pub subnet: Option<String>,
    /// The EC2 key pair SSH logs in with.
    #[arg(long, value_name = "NAME")]
    pub ssh_key_name: Option<String>,
    /// A persistent spot request that stops, not terminates, on interruption.
    #[arg(long)]
    pub spot: bool,
    #[command(flatten)]
    pub keys: Keys,
    /// Print every API call and remote command instead of making it.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

/// How a small instance is made fit for big receives, each time it starts (neither survives a stop).
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct Prep {
    /// Swap on the instance [default: 1GiB when it has less than 2 GiB of memory, else none]; 0 for none.
    #[arg(long, global = true, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub swap: Option<u64>,
    /// The swap file on the instance [default: /var/lib/ec2-pool/swap].
    #[arg(long, global = true, value_name = "PATH")]
    pub swap_file: Option<String>,
    /// Cap on the ZFS ARC [default: a quarter of memory when it has less than 4 GiB, else ZFS's own]; 0 to leave it.
    #[arg(long, global = true, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub arc_max: Option<u64>,
}

impl Prep {
    fn script(&self, mem_mib: u64) -> String {
        let swap = self.swap.unwrap_or(if mem_mib > 0 && mem_mib < 2048 {
            GIB
        } else {
            0
        });
        let arc = self.arc_max.unwrap_or(if mem_mib > 0 && mem_mib < 4096 {
            (mem_mib << 20) / 4
        } else {
            0
        });
        let file = self
            .swap_file
            .as_deref()
            .unwrap_or("/var/lib/ec2-pool/swap");
        script::prepare(file, swap >> 20, arc)
    }
}

#[derive(ClapArgs, Debug)]
pub struct StatusArgs {
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(ClapArgs, Debug)]
pub struct UpArgs {
    pub name: String,
    /// A zstream-seal key file; give every one (none: import the pool without loading its key).
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
}

#[derive(ClapArgs, Debug)]
pub struct SendArgs {
    pub name: String,
    /// DATASET@SNAP, DATASET below the pool as `receive` took it.
    pub snapshot: String,
    /// An incremental from this snapshot of the same dataset.
    #[arg(long, value_name = "SNAP")]
    pub from: Option<String>,
    #[command(flatten)]
    pub keys: Keys,
}

#[derive(ClapArgs, Debug)]
pub struct SnapshotsArgs {
    pub name: String,
    /// The dataset below the pool, as `receive` took it.
    pub dataset: String,
}

#[derive(ClapArgs, Debug)]
pub struct DestroySnapshotsArgs {
    pub name: String,
    pub dataset: String,
    /// Snapshot names (after the @).
    #[arg(required = true)]
    pub snapshots: Vec<String>,
}

#[derive(ClapArgs, Debug)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["to", "by", "keep_free", "add_vdev"])))]
pub struct GrowArgs {
    pub name: String,
    /// Every volume to this size (whole GiB).
    #[arg(long, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub to: Option<u64>,
    /// Every volume by this much (whole GiB).
    #[arg(long, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub by: Option<u64>,
    /// Every volume to the smallest size that leaves PCT of the pool free.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub keep_free: Option<f64>,
    /// Add a vdev of new volumes at the current size instead (unbalances the pool).
    #[arg(long)]
    pub add_vdev: bool,
    #[command(flatten)]
    pub wait: WaitArg,
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("'{s}' is not a percentage"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("--keep-free is 0 to 99, not {s}"));
    }
    Ok(v)
}

#[derive(ClapArgs, Debug, Clone)]
pub struct WaitArg {
    /// How long to wait for EBS to make the new sizes usable (optimizing) before exiting 75 to be run again.
    #[arg(long = "modify-timeout", value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(ClapArgs, Debug)]
pub struct ReceiveArgs {
    pub name: String,
    /// Where the stream goes, below the pool: DATASET becomes NAME/DATASET.
    pub dataset: String,
    #[command(flatten)]
    pub keys: Keys,
    /// `zfs receive -F`: roll the target back to its newest snapshot first.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub progress: ProgressArg,
}

#[derive(ClapArgs, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "vdevs"])))]
pub struct CostArgs {
    /// A pool's name: its layout, sizes and instance type as they are.
    pub name: Option<String>,
    #[arg(long, value_name = "N", requires_all = ["disks", "size"])]
    pub vdevs: Option<u32>,
    #[arg(long, value_name = "N")]
    pub disks: Option<u32>,
    #[arg(long, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub size: Option<u64>,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub raidz: u32,
    #[arg(long, default_value = "gp3", value_name = "TYPE")]
    pub volume_type: String,
    #[arg(long, default_value = "t3.micro", value_name = "TYPE")]
    pub instance_type: String,
    /// Hours a day the instance runs.
    #[arg(long, default_value_t = 1.0, value_name = "H")]
    pub hours_per_day: f64,
    #[arg(long)]
    pub json: bool,
}

#[derive(ClapArgs, Debug)]
pub struct DestroyArgs {
    pub name: String,
    /// The pool's name again, to say it is meant.
    #[arg(long, value_name = "NAME", required = true)]
    pub confirm: String,
    #[arg(long)]
    pub dry_run: bool,
}

/// What every subcommand works with: EC2, SSH, and where the pool's devices are.
pub struct Ctx {
    /// The options this run was given (after the config file), for the `ec2-pool down` a signal runs.
    pub relaunch: Vec<String>,
    pub prep: Prep,
    pub ec2: Ec2,
    pub ssh: Ssh,
    pub template: Option<String>,
    pub ssh_timeout: Duration,
}

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
            return cost_of_shape(a);
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
        prep: common.prep.clone(),
    };
    match args.cmd {
        Cmd::Create(a) => create(&ctx, a),
        Cmd::Status(a) => status(&ctx, &a.name, a.json),
        Cmd::Up(a) => {
            let pool = ctx.existing(&a.name)?;
            let key = if a.key_files.is_empty() {
                None
            } else {
                Some(PoolKey::load(&a.name, &a.key_files)?)
            };
            up(&ctx, &pool, key.as_ref())?;
            if key.is_none() {
                say!(
                    "pool {} is imported without its key: its datasets stay locked",
                    a.name
                );
            }
            Ok(())
        }
        Cmd::Send(a) => send(&ctx, a),
        Cmd::Snapshots(a) => snapshots(&ctx, a),
        Cmd::DestroySnapshots(a) => destroy_snapshots(&ctx, a),
        Cmd::Down(a) => down(&ctx, &ctx.existing(&a.name)?),
        Cmd::Grow(a) => grow::run(&ctx, a),
        Cmd::Receive(a) => receive(&ctx, a),
        Cmd::Cost(a) => cost_of_pool(&ctx, &a),
        Cmd::Destroy(a) => destroy(&ctx, a),
        Cmd::Ls(a) => ls(&ctx, a.json),
    }
}

/// A pool name that is also a good ZFS pool name, and safe in a tag and a message.
fn check_name(name: &str) -> anyhow::Result<()> {
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
    /// The pool, which must have an instance.
    pub fn existing(&self, name: &str) -> anyhow::Result<Pool> {
        check_name(name)?;
        let pool = self.ec2.find(name)?;
        if pool.instance.is_none() {
            anyhow::bail!(
                "no pool {name} here: no instance is tagged {}={name} (`ec2-pool ls` lists the pools)",
                tags::POOL
            );
        }
        Ok(pool)
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

    /// The directory `zpool import -d` searches.
    pub fn device_dir(&self, inst: &Instance) -> String {
        let t = self.template_of(inst);
        t.rsplit_once('/')
            .map_or(".".to_string(), |(d, _)| d.to_string())
    }

    pub fn devices(&self, pool: &Pool, inst: &Instance) -> Vec<String> {
        pool.volumes
            .iter()
            .map(|v| self.device(inst, &v.id))
            .collect()
    }

    /// A started instance made ready: answering over SSH, prepared (ZFS, swap, the ARC cap), and `devs` there.
    pub fn ready(&self, host: &str, mem_mib: u64, devs: &[String]) -> anyhow::Result<()> {
        self.ssh.wait(host, self.ssh_timeout)?;
        self.ssh.run(
            host,
            "preparing the instance",
            &self.prep.script(mem_mib),
            Input::Nothing,
        )?;
        self.await_devices(host, devs)
    }

    /// Waits for `devs` to appear on the instance (a volume's device comes a moment after it attaches).
    pub fn await_devices(&self, host: &str, devs: &[String]) -> anyhow::Result<()> {
        self.ssh
            .run(
                host,
                "waiting for the volumes",
                &script::await_devices(devs),
                Input::Nothing,
            )
            .map(|_| ())
    }

    pub fn host(&self, inst: &Instance) -> anyhow::Result<String> {
        if self.ec2.dry_run && inst.address.is_none() {
            return Ok(format!("<address of {}>", inst.id));
        }
        inst.address
            .clone()
            .ok_or_else(|| anyhow::anyhow!("instance {} has no address to reach it by", inst.id))
    }
}

pub fn layout_of(inst: &Instance) -> anyhow::Result<Layout> {
    let tag = inst
        .tag(tags::LAYOUT)
        .ok_or_else(|| anyhow::anyhow!("instance {} has no {} tag", inst.id, tags::LAYOUT))?;
    Layout::parse_tag(tag).map_err(|e| anyhow::anyhow!("instance {}: {e}", inst.id))
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

fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    let (layout, gib) = a.shape.layout()?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    let template = ctx
        .template
        .clone()
        .unwrap_or_else(|| config::DEFAULT_TEMPLATE.to_string());
    check_template(&template)?;
    let (mem_mib, max_ebs) = ctx.ec2.instance_type(&a.shape.instance_type)?;
    if let Some(max) = max_ebs {
        // The root volume takes one attachment.
        if layout.volumes() + 1 > max {
            return Err(usage(format!(
                "{} volumes do not fit on a {}: it attaches at most {max} EBS volumes, the root one included; \
                 use fewer, larger volumes or another instance type",
                layout.volumes(),
                a.shape.instance_type
            )));
        }
    }
    let mut pool = ctx.ec2.find(&a.name)?;
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
            say!(
                "pool {} has instance {} already; finishing its creation",
                a.name,
                i.id
            );
            i
        }
        None => {
            let ami = match &a.ami {
                Some(a) => a.clone(),
                None => ctx.ec2.newest_ubuntu_lts()?,
            };
            let created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let launch = Launch {
                ami,
                instance_type: a.shape.instance_type.clone(),
                subnet: a.subnet.clone(),
                ssh_key_name: a.ssh_key_name.clone(),
                spot: a.spot,
                tags: vec![
                    ("Name", format!("ec2-pool {}", a.name)),
                    (tags::POOL, a.name.clone()),
                    (tags::LAYOUT, layout.tag()),
                    (tags::KEY_IDS, key.ids_tag()),
                    (tags::DEVICE_TEMPLATE, template.clone()),
                    (tags::CREATED, created),
                    (tags::RUN_SECONDS, "0".into()),
                ],
            };
            let id = ctx.ec2.run_instance(&launch)?;
            ctx.ec2.wait_running(&id)?;
            if ctx.ec2.dry_run {
                dry_instance(&id, &a.shape.instance_type)
            } else {
                ctx.ec2.find(&a.name)?.instance.ok_or_else(|| {
                    anyhow::anyhow!("instance {id} was started but is not found by its tag")
                })?
            }
        }
    };
    // Volumes: the missing ones made, every one attached.
    let mut made = Vec::new();
    for vdev in 0..layout.vdevs {
        for disk in 0..layout.disks {
            if pool
                .volumes
                .iter()
                .any(|v| v.vdev == vdev && v.disk == disk)
            {
                continue;
            }
            let id = ctx.ec2.create_volume(
                &inst.zone,
                gib,
                &layout.volume_type,
                &volume_tags(&a.name, vdev, disk),
            )?;
            made.push(id);
        }
    }
    ctx.ec2.wait_volumes(&made, false)?;
    if !ctx.ec2.dry_run {
        pool = ctx.ec2.find(&a.name)?;
    }
    attach_missing(ctx, &pool, &inst)?;
    let inst = ensure_running(ctx, &a.name, &inst)?;
    let host = ctx.host(&inst)?;
    let devs: Vec<String> = if ctx.ec2.dry_run && pool.volumes.is_empty() {
        (0..layout.volumes())
            .map(|i| format!("<device of new volume {i}>"))
            .collect()
    } else {
        ctx.devices(&pool, &inst)
    };
    ctx.ready(&host, mem_mib, &devs)?;
    let vdevs: Vec<Vec<String>> = devs
        .chunks(layout.disks as usize)
        .map(<[String]>::to_vec)
        .collect();
    let made_pool = ctx.ssh.run(
        &host,
        "creating the pool",
        &script::create(&a.name, &ctx.device_dir(&inst), layout.raidz, &vdevs),
        Input::Key(key.raw()),
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
    down(
        ctx,
        &Pool {
            instance: Some(inst),
            ..pool
        },
    )?;
    if a.json && !ctx.ec2.dry_run {
        return status(ctx, &a.name, true);
    }
    Ok(())
}

/// What a dry run's new instance stands for.
fn dry_instance(id: &str, instance_type: &str) -> Instance {
    Instance {
        id: id.to_string(),
        state: "running".into(),
        instance_type: instance_type.to_string(),
        address: None,
        zone: "<its zone>".into(),
        tags: Default::default(),
        launched: None,
        devices: vec![],
        spot: false,
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

/// Attaches every volume of the pool that is not attached to its instance.
pub fn attach_missing(ctx: &Ctx, pool: &Pool, inst: &Instance) -> anyhow::Result<()> {
    let loose: Vec<&crate::ec2::Volume> = pool
        .volumes
        .iter()
        .filter(|v| v.attached_to.is_none())
        .collect();
    if let Some(v) = pool
        .volumes
        .iter()
        .find(|v| v.attached_to.as_deref().is_some_and(|i| i != inst.id))
    {
        anyhow::bail!(
            "volume {} of pool {} is attached to {}, not to the pool's instance {}",
            v.id,
            pool.name,
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
    ctx.ec2
        .find(name)?
        .instance
        .ok_or_else(|| anyhow::anyhow!("instance {} is no longer found by its tag", inst.id))
}

/// Brings the pool up: the instance running and reachable, prepared, the pool imported, and with a key, the key
/// loaded and the datasets mounted. Every device is expanded to its volume's size, which finishes a grow that
/// was stopped before it. Returns the running instance.
pub fn up(ctx: &Ctx, pool: &Pool, key: Option<&PoolKey>) -> anyhow::Result<Instance> {
    let inst = pool.instance.as_ref().expect("existing() checked");
    if let Some(k) = key {
        k.check_against(inst.tag(tags::KEY_IDS))?;
    }
    let (mem_mib, _) = ctx.ec2.instance_type(&inst.instance_type)?;
    let inst = ensure_running(ctx, &pool.name, inst)?;
    let host = ctx.host(&inst)?;
    let devs = ctx.devices(pool, &inst);
    ctx.ready(&host, mem_mib, &devs)?;
    ctx.ssh.run(
        &host,
        "importing the pool",
        &script::import(&pool.name, &ctx.device_dir(&inst)),
        Input::Nothing,
    )?;
    ctx.ssh.run(
        &host,
        "growing the devices to their volumes",
        &script::expand(&pool.name, &devs),
        Input::Nothing,
    )?;
    if let Some(k) = key {
        ctx.ssh.run(
            &host,
            "loading the key and mounting",
            &script::unlock(&pool.name),
            Input::Key(k.raw()),
        )?;
        say!("pool {} is up on {} ({host})", pool.name, inst.id);
    }
    Ok(inst)
}

/// Brings the pool down: unmounted, key unloaded, exported, the instance stopped. The instance is stopped even
/// when the remote steps fail (its memory, and the key with it, go when it stops), and the failure is then the
/// command's.
pub fn down(ctx: &Ctx, pool: &Pool) -> anyhow::Result<()> {
    let inst = pool.instance.as_ref().expect("existing() checked");
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
        ctx.host(inst)
            .and_then(|host| {
                ctx.ssh.run(
                    &host,
                    "unloading the key and exporting the pool",
                    &script::lock(&pool.name),
                    Input::Nothing,
                )
            })
            .map(|_| ())
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

fn receive(ctx: &Ctx, a: ReceiveArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    let target = format!("{}/{}", a.name, a.dataset);
    with_up(ctx, &a.name, Some(&key), |host| {
        ctx.ssh.run(
            host,
            &format!("receiving into {target}"),
            &script::receive(&target, a.force),
            Input::Stdin(a.progress.progress),
        )
    })
    .map(|_| ())
}

/// Runs `f` with the pool up (with its key, or imported only), on the instance's address; brings the pool down
/// again if it was down before, whatever `f` did.
fn with_up<T>(
    ctx: &Ctx,
    name: &str,
    key: Option<&PoolKey>,
    f: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let pool = ctx.existing(name)?;
    let was_up = pool.instance.as_ref().is_some_and(|i| i.state == "running");
    // A signal (a cron timeout, Ctrl-C) brings the pool down too: another ec2-pool does it, as this one's
    // threads are busy with the instance; then this process dies of the signal.
    let armed = (!was_up && !ctx.ec2.dry_run).then(|| {
        let (args, name) = (ctx.relaunch.clone(), name.to_string());
        zstream_common::interrupt::arm(move || {
            let down = std::env::current_exe().and_then(|exe| {
                std::process::Command::new(exe)
                    .args(&args)
                    .args(["down", &name])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .status()
            });
            match down {
                Ok(s) if s.success() => "the pool was brought down".into(),
                Ok(s) => format!("bringing the pool down failed ({s}): run `ec2-pool down {name}`"),
                Err(e) => {
                    format!("bringing the pool down failed ({e}): run `ec2-pool down {name}`")
                }
            }
        })
    });
    let done = up(ctx, &pool, key).and_then(|inst| f(&ctx.host(&inst)?));
    drop(armed);
    if was_up {
        return done;
    }
    // Found as it is now, since up started it.
    let now = ctx.ec2.find(name)?;
    let downed = down(ctx, &now);
    match (done, downed) {
        (Ok(t), d) => d.map(|_| t),
        (Err(e), Ok(())) => Err(e.context("the pool was brought down again")),
        (Err(e), Err(d)) => Err(e.context(format!("bringing the pool down failed too: {d:#}"))),
    }
}

fn check_dataset(d: &str) -> anyhow::Result<()> {
    let bad = d.is_empty()
        || d.starts_with('/')
        || d.ends_with('/')
        || d.contains(['@', '#', ' ', '\''])
        || d.contains("//");
    if bad {
        return Err(usage(format!("'{d}' is not a dataset name (tank/home)")));
    }
    Ok(())
}

fn send(ctx: &Ctx, a: SendArgs) -> anyhow::Result<()> {
    let Some((dataset, snap)) = a.snapshot.split_once('@') else {
        return Err(usage(format!("'{}' is not DATASET@SNAP", a.snapshot)));
    };
    check_dataset(dataset)?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    let full = format!("{}/{dataset}@{snap}", a.name);
    with_up(ctx, &a.name, Some(&key), |host| {
        ctx.ssh.run_to_stdout(
            host,
            &format!("sending {full}"),
            &script::send(&full, a.from.as_deref()),
            Input::Nothing,
        )
    })
}

fn snapshots(ctx: &Ctx, a: SnapshotsArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let ds = format!("{}/{}", a.name, a.dataset);
    let out = with_up(ctx, &a.name, None, |host| {
        ctx.ssh.run(
            host,
            &format!("listing the snapshots of {ds}"),
            &script::snapshots(&ds),
            Input::Nothing,
        )
    })?;
    let (names, props) = out.split_once("\n--\n").unwrap_or(("", ""));
    let mut prop = std::collections::HashMap::new();
    for l in props.lines() {
        let w: Vec<&str> = l.split('\t').collect();
        if let [name, p, v] = w[..] {
            prop.insert((name.to_string(), p.to_string()), v.to_string());
        }
    }
    for n in names.lines().filter(|l| !l.is_empty()) {
        let get = |p: &str| {
            prop.get(&(n.to_string(), p.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let snap = n.rsplit_once('@').map_or(n, |(_, s)| s);
        zstream_common::pipe::print_line(serde_json::json!({
            "snapshot": snap, "guid": get("guid"),
            "referenced": get("referenced").parse::<u64>().unwrap_or(0),
        }))?;
    }
    Ok(())
}

fn destroy_snapshots(ctx: &Ctx, a: DestroySnapshotsArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    if let Some(b) = a
        .snapshots
        .iter()
        .find(|s| s.is_empty() || s.contains(['@', '/', '\'']))
    {
        return Err(usage(format!(
            "'{b}' is not a snapshot name (the part after @)"
        )));
    }
    let full: Vec<String> = a
        .snapshots
        .iter()
        .map(|s| format!("{}/{}@{s}", a.name, a.dataset))
        .collect();
    with_up(ctx, &a.name, None, |host| {
        ctx.ssh.run(
            host,
            "destroying snapshots",
            &script::destroy_snapshots(&full),
            Input::Nothing,
        )
    })?;
    say!("destroyed {}", full.join(", "));
    Ok(())
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

fn status(ctx: &Ctx, name: &str, json: bool) -> anyhow::Result<()> {
    let pool = ctx.existing(name)?;
    let inst = pool.instance.as_ref().expect("checked");
    let layout = layout_of(inst)?;
    let usage = usage_of(ctx, name, inst)?;
    let size = pool.volumes.iter().map(|v| v.size_gib).max().unwrap_or(0);
    let so_far = cost_so_far(&pool, inst, &layout);
    let monthly = cost::monthly(&layout, size, &inst.instance_type, 1.0).ok();
    let vdevs: Vec<serde_json::Value> = (0..layout.vdevs)
        .map(|d| {
            serde_json::json!(pool
                .volumes
                .iter()
                .filter(|v| v.vdev == d)
                .map(|v| serde_json::json!({"disk": v.disk, "volume": v.id, "size_gib": v.size_gib, "state": v.state,
                                            "attached": v.attached_to.as_deref() == Some(inst.id.as_str())}))
                .collect::<Vec<_>>())
        })
        .collect();
    let v = serde_json::json!({
        "name": name,
        "instance": {"id": inst.id, "state": inst.state, "type": inst.instance_type, "address": inst.address,
                     "zone": inst.zone, "spot": inst.spot},
        "layout": layout.tag(),
        "volumes": pool.volumes.len(),
        "volume_size_gib": size,
        "balanced": pool.volumes.iter().all(|v| v.size_gib == size),
        "vdevs": vdevs,
        "pool": usage,
        "cost_so_far_usd": so_far,
        "cost_monthly_usd_at_1h_a_day": monthly.as_ref().map(|m| m.total_usd),
    });
    if json {
        return zstream_common::pipe::print_line(v);
    }
    let mut lines = vec![
        format!(
            "pool {name}: {layout}, {} volumes of {size} GiB{}",
            pool.volumes.len(),
            if v["balanced"] == true {
                ""
            } else {
                " (unbalanced: a grow did not finish; run it again)"
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

/// The volumes' GiB-months since each was made (at today's sizes) and the instance's running hours.
fn cost_so_far(pool: &Pool, inst: &Instance, layout: &Layout) -> f64 {
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
    volumes + cost::instance_hour(&inst.instance_type).unwrap_or(0.0) * ran / 3600.0
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
        "  volumes ${:.2}, root volume ${:.2}, instance ${:.2}",
        m.volumes_usd, m.root_usd, m.instance_usd
    ))?;
    p(format!(
        "the same {} GiB in S3, a month (storage only; retrievals and requests extra):",
        m.usable_gib
    ))?;
    for (class, usd) in &m.s3 {
        p(format!("  {class:<32} ${usd:.2}"))?;
    }
    Ok(())
}

fn cost_of_shape(a: &CostArgs) -> anyhow::Result<()> {
    let shape = Shape {
        vdevs: a.vdevs.unwrap_or(0),
        disks: a.disks.unwrap_or(0),
        size: a.size.unwrap_or(0),
        raidz: a.raidz,
        volume_type: a.volume_type.clone(),
        instance_type: a.instance_type.clone(),
    };
    let (layout, gib) = shape.layout()?;
    let m = cost::monthly(&layout, gib, &a.instance_type, a.hours_per_day)?;
    print_cost(
        &m,
        &format!("{layout} of {gib} GiB volumes on a {}", a.instance_type),
        a.hours_per_day,
        a.json,
    )
}

fn cost_of_pool(ctx: &Ctx, a: &CostArgs) -> anyhow::Result<()> {
    let name = a.name.as_deref().expect("the group requires one");
    let pool = ctx.existing(name)?;
    let inst = pool.instance.as_ref().expect("checked");
    let layout = layout_of(inst)?;
    let size = pool.volumes.iter().map(|v| v.size_gib).max().unwrap_or(0);
    let m = cost::monthly(&layout, size, &inst.instance_type, a.hours_per_day)?;
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

fn destroy(ctx: &Ctx, a: DestroyArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    if a.confirm != a.name {
        return Err(usage(format!(
            "--confirm {} does not name the pool {}: nothing destroyed",
            a.confirm, a.name
        )));
    }
    let pool = ctx.ec2.find(&a.name)?;
    if pool.instance.is_none() && pool.volumes.is_empty() {
        anyhow::bail!(
            "no pool {} here: nothing is tagged {}={}",
            a.name,
            tags::POOL,
            a.name
        );
    }
    if let Some(i) = &pool.instance {
        say!("terminating {}", i.id);
        ctx.ec2.terminate(&i.id)?;
    }
    // Terminating detaches the volumes; any still attached elsewhere is detached first.
    let attached: Vec<String> = if ctx.ec2.dry_run {
        vec![]
    } else {
        ctx.ec2
            .find(&a.name)?
            .volumes
            .iter()
            .filter(|v| v.attached_to.is_some())
            .map(|v| v.id.clone())
            .collect()
    };
    for v in &attached {
        ctx.ec2.detach(v)?;
    }
    ctx.ec2.wait_volumes(&attached, false)?;
    for v in &pool.volumes {
        ctx.ec2.delete_volume(&v.id)?;
    }
    say!(
        "pool {} destroyed: {} volumes deleted",
        a.name,
        pool.volumes.len()
    );
    Ok(())
}

fn ls(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
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
