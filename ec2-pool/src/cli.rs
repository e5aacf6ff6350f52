//! The command line: every subcommand's options, as clap reads them (the man page and completions are made from
//! these too). What the options mean for the pool is in the modules that act on them.

use crate::layout::{self, Layout, GIB};
use crate::script;
use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use zstream_common::progress::ProgressArg;
use zstream_common::usage;

pub const NAME: &str = "ec2-pool";

const EXAMPLES: &str = "\
Examples:
  zstream-seal keygen -o /etc/zstream/a.key; zstream-seal keygen -o /etc/zstream/b.key
  ec2-pool create offsite --vdevs 3 --disks 8 --size 1GiB --ssh-from 203.0.113.7/32 \\
      --key-file /etc/zstream/a.key --key-file /etc/zstream/b.key
  zfs send -i @mon tank/home@tue | ec2-pool receive offsite tank/home --key-file a.key --key-file b.key
  ec2-pool status offsite
  ec2-pool grow offsite --keep-free 20
  ec2-pool cost --vdevs 5 --disks 8 --size 1GiB --hours-per-day 1

State lives in AWS tags on the instance and its volumes (zstream:pool=NAME): any machine with the credentials
manages the pool, and nothing without the pool's tag is ever changed. Remote steps run as `SSH... HOST 'SCRIPT'`
(--ssh) against the host key learned at create; keys and data travel on that command's stdin only.
Exit codes: 0 ok, 1 AWS, SSH or remote failure, 2 usage error, 75 try again later (EBS's modification limits).";

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
    /// How to reach the instance, split at spaces; ec2-pool adds the options that pin the instance's host key,
    /// HOST and the remote command [default: "ssh -o BatchMode=yes -l ubuntu"].
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
    /// Scrub the pool (read back and check every block) at the end of a window when the last scrub is this old;
    /// 0 for never [default: 30d].
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub scrub_every: Option<Duration>,
    #[command(flatten)]
    pub prep: Prep,
}

impl Common {
    /// These options as a command line, to run another ec2-pool with the same ones.
    pub fn as_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(format!("--{k}"));
                a.push(v);
            }
        };
        let dur = |d: Option<Duration>| d.map(|d| humantime::format_duration(d).to_string());
        opt("endpoint", self.endpoint.clone());
        opt("region", self.region.clone());
        opt("ssh", self.ssh.clone());
        opt("device-template", self.device_template.clone());
        opt("ssh-timeout", dur(self.ssh_timeout));
        opt("scrub-every", dur(self.scrub_every));
        opt("swap", self.prep.swap.map(|n| n.to_string()));
        opt("swap-file", self.prep.swap_file.clone());
        opt("arc-max", self.prep.arc_max.map(|n| n.to_string()));
        a
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create the instance, its volumes and the encrypted pool, then stop the instance. A create that fails
    /// removes what it made.
    Create(CreateArgs),
    /// The instance, the volumes per vdev and their sizes, the pool's health and use, the last scrub, the cost so
    /// far.
    Status(StatusArgs),
    /// Start the instance, wait for SSH, prepare it, import the pool, load the key (without --key-file: import
    /// only, for maintenance); with --mount, mount its datasets too.
    Up(UpArgs),
    /// Scrub if one is due, unmount, unload the key, export the pool, stop the instance and wait until it has
    /// stopped.
    Down(DownArgs),
    /// Grow every volume to one new size (the pool stays balanced), or add a vdev.
    Grow(GrowArgs),
    /// Receive a send stream on stdin into the pool: up if down, `zfs receive`, down again (also on failure).
    Receive(ReceiveArgs),
    /// The resume token of a receive into DATASET that was cut off (`zfs send -t TOKEN` finishes it), or nothing;
    /// --discard drops the partial receive instead.
    ResumeToken(ResumeTokenArgs),
    /// Send DATASET@SNAP from the pool to stdout (`-i` from --from): up if down, `zfs send` (`-L -c`, or raw
    /// `-w` for a dataset received raw), down again.
    Send(SendArgs),
    /// The snapshots of DATASET in the pool, oldest first, with guids and sizes (the backup cycle's catalog), and
    /// whether the dataset was received raw.
    Snapshots(SnapshotsArgs),
    /// DATASET and the datasets below it in the pool, parents first (a recursive restore's tree).
    Datasets(SnapshotsArgs),
    /// Destroy snapshots of DATASET in the pool (the backup cycle's pruning).
    DestroySnapshots(DestroySnapshotsArgs),
    /// Scrub the pool now: up if down, `zpool scrub` to the end, the result in a tag, down again.
    Scrub(ScrubArgs),
    /// What a pool costs a month, beside S3's classes for the same data.
    Cost(CostArgs),
    /// Cancel the pool's Spot request, terminate the instance, delete the pool's volumes and its security group.
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
pub struct ScrubArgs {
    pub name: String,
    #[command(flatten)]
    pub keys: OptKeys,
}

#[derive(ClapArgs, Debug)]
pub struct JsonArg {
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Key files where only a pool made with `--encryption luks` needs them, and only when it is down: its volumes
/// open with them.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct OptKeys {
    /// A zstream-seal key file (give every one): a LUKS pool's volumes open with them.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
}

/// What encrypts the pool.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encryption {
    /// ZFS's own (`encryption=on`): file contents and names hidden; dataset and snapshot names, properties and
    /// sizes in the clear.
    #[default]
    Native,
    /// LUKS2 (dm-crypt) under every volume, ZFS on top: everything on the volumes hidden.
    Luks,
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
    /// Provisioned IOPS of each volume: required for io1 and io2, optional for gp3 (3000 included).
    #[arg(long, value_name = "N")]
    pub iops: Option<u32>,
    /// Instance type (a Graviton type such as t4g.micro gets an arm64 image).
    #[arg(long, default_value = "t3.micro", value_name = "TYPE")]
    pub instance_type: String,
}

impl Shape {
    /// The layout and the per-volume size in GiB, every EBS rule on them checked.
    pub fn layout(&self) -> anyhow::Result<(Layout, u64)> {
        let l = Layout {
            vdevs: self.vdevs,
            disks: self.disks,
            raidz: self.raidz,
            volume_type: self.volume_type.clone(),
        };
        l.check().map_err(usage)?;
        let gib = layout::whole_gib(self.size, "--size").map_err(usage)?;
        check_size(&l.volume_type, gib)?;
        layout::check_iops(&l.volume_type, gib, self.iops).map_err(usage)?;
        Ok((l, gib))
    }
}

pub fn check_size(volume_type: &str, gib: u64) -> anyhow::Result<()> {
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
    /// Image [default: the newest Ubuntu LTS for the instance type's architecture, found by DescribeImages].
    #[arg(long, value_name = "AMI")]
    pub ami: Option<String>,
    #[arg(long, value_name = "SUBNET")]
    pub subnet: Option<String>,
    /// A security group for the instance (repeat for more); it must admit TCP port 22 from this machine.
    #[arg(long = "security-group-id", value_name = "SG")]
    pub security_groups: Vec<String>,
    /// Make a security group for the pool that admits SSH (TCP port 22) from this address range only, the
    /// address this machine has on the internet (`curl https://checkip.amazonaws.com`, then ADDRESS/32).
    #[arg(long, value_name = "CIDR")]
    pub ssh_from: Option<String>,
    /// The EC2 key pair SSH logs in with.
    #[arg(long, value_name = "NAME")]
    pub ssh_key_name: Option<String>,
    /// The instance's SSH host key (`ssh-ed25519 AAAA...`) when its console output does not show it.
    #[arg(long, value_name = "KEY")]
    pub host_key: Option<String>,
    /// A persistent Spot request that stops, not terminates, on interruption.
    #[arg(long)]
    pub spot: bool,
    /// What encrypts the pool: ZFS's native encryption, or LUKS2 under every volume.
    #[arg(long, value_enum, default_value_t = Encryption::Native)]
    pub encryption: Encryption,
    /// The KMS key EBS encrypts the volumes with [default: the account's EBS key, aws/ebs].
    #[arg(long, value_name = "KEY")]
    pub ebs_kms_key_id: Option<String>,
    /// Leave the volumes without EBS encryption (the pool's own encryption still applies).
    #[arg(long, conflicts_with = "ebs_kms_key_id")]
    pub no_ebs_encryption: bool,
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
    /// Swap on the instance, encrypted with a key that lives in its memory only [default: 1GiB when it has less
    /// than 2 GiB of memory, else none]; 0 for none.
    #[arg(long, global = true, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub swap: Option<u64>,
    /// The file behind the swap on the instance [default: /var/lib/ec2-pool/swap].
    #[arg(long, global = true, value_name = "PATH")]
    pub swap_file: Option<String>,
    /// Cap on the ZFS ARC [default: a quarter of memory when it has less than 4 GiB, else ZFS's own]; 0 to leave it.
    #[arg(long, global = true, value_name = "SIZE", value_parser = zstream_common::size::parse)]
    pub arc_max: Option<u64>,
}

impl Prep {
    /// The script that prepares an instance with `mem_mib` of memory.
    pub fn script(&self, mem_mib: u64) -> String {
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
    /// Mount the datasets (for looking at files; a mounted dataset takes incrementals only with `receive
    /// --force` after).
    #[arg(long, requires = "key_files")]
    pub mount: bool,
}

#[derive(ClapArgs, Debug)]
pub struct DownArgs {
    pub name: String,
    /// Skip a scrub that is due (it runs at the end of the next window).
    #[arg(long)]
    pub no_scrub: bool,
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
    #[command(flatten)]
    pub keys: OptKeys,
}

#[derive(ClapArgs, Debug)]
pub struct ResumeTokenArgs {
    pub name: String,
    /// The dataset below the pool, as `receive` took it.
    pub dataset: String,
    /// Drop the partial receive (`zfs receive -A`) instead of printing its token.
    #[arg(long)]
    pub discard: bool,
    #[command(flatten)]
    pub keys: OptKeys,
}

#[derive(ClapArgs, Debug)]
pub struct DestroySnapshotsArgs {
    pub name: String,
    pub dataset: String,
    /// Snapshot names (after the @).
    #[arg(required = true)]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub keys: OptKeys,
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
    #[command(flatten)]
    pub keys: OptKeys,
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
    #[arg(long, value_name = "N")]
    pub iops: Option<u32>,
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
    /// Only a pool whose creation never finished (what a killed `create` left); otherwise nothing is touched.
    #[arg(long)]
    pub unfinished: bool,
    #[arg(long)]
    pub dry_run: bool,
}
