//! The EC2 API as ec2-pool uses it: the pool read from tags, and each change as one call that `--dry-run` prints
//! instead of making. Calls block on the shared runtime (zstream-aws): the tool is a sequence of steps, and the
//! SSH side of it is blocking processes anyway.

use crate::rules::{ModState, Modification};
use crate::tags;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::runtime::Runtime;
use zstream_aws::{err, Endpoint};

/// How long the waits on EC2 last before giving up (instances start in a minute or two, volumes in seconds).
const WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    /// Public address when it has one, else private: where SSH goes.
    pub address: Option<String>,
    pub zone: String,
    pub tags: BTreeMap<String, String>,
    pub launched: Option<SystemTime>,
    /// Device names in use (root included).
    pub devices: Vec<String>,
    pub spot: bool,
    /// The persistent Spot request that keeps relaunching it until cancelled.
    pub spot_request: Option<String>,
    /// Network interfaces attached (each takes an attachment where the limit is shared with EBS).
    pub enis: u32,
}

impl Instance {
    pub fn tag(&self, k: &str) -> Option<&str> {
        self.tags.get(k).map(String::as_str)
    }
}

#[derive(Clone, Debug)]
pub struct Volume {
    pub id: String,
    pub size_gib: u64,
    pub state: String,
    pub vdev: u32,
    pub disk: u32,
    pub attached_to: Option<String>,
    pub created: Option<SystemTime>,
    pub volume_type: String,
    pub iops: Option<u32>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

/// A pool as AWS knows it: its instance (None once terminated or before it was made) and its data volumes,
/// ordered by vdev and disk.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub instance: Option<Instance>,
    pub volumes: Vec<Volume>,
}

/// A pool that exists: an instance that is not terminated, and its data volumes. What every command but
/// `create`, `destroy` and `ls` works on.
#[derive(Clone, Debug)]
pub struct Existing {
    pub name: String,
    pub instance: Instance,
    pub volumes: Vec<Volume>,
}

impl Pool {
    /// The pool as an existing one, or why it is not.
    pub fn existing(self) -> anyhow::Result<Existing> {
        match self.instance {
            Some(instance) => Ok(Existing {
                name: self.name,
                instance,
                volumes: self.volumes,
            }),
            None => anyhow::bail!(
                "no pool {} here: no instance that is not terminated is tagged {}={} (`ec2-pool ls` lists the pools)",
                self.name,
                tags::POOL,
                self.name
            ),
        }
    }
}

impl Existing {
    /// The largest volume size (all are this size unless a grow is unfinished).
    pub fn size_gib(&self) -> u64 {
        self.volumes.iter().map(|v| v.size_gib).max().unwrap_or(0)
    }
}

/// What DescribeInstanceTypes says of an instance type.
#[derive(Clone, Debug)]
pub struct TypeInfo {
    pub mem_mib: u64,
    /// MaximumEbsAttachments, when AWS says.
    pub max_ebs: Option<u32>,
    /// Whether EBS volumes share that limit with network interfaces (AttachmentLimitType `shared`).
    pub shared_limit: bool,
    /// Architectures the type runs (`x86_64`, `arm64`).
    pub archs: Vec<String>,
}

/// What DescribeImages says of an image.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub architecture: String,
    pub root_device: Option<String>,
    /// The root volume's size in the image's block device mapping, when it says.
    pub root_gib: Option<u64>,
}

pub struct Ec2 {
    rt: Runtime,
    client: Client,
    pub dry_run: bool,
}

fn tag_filter(k: &str, v: &str) -> Filter {
    Filter::builder().name(format!("tag:{k}")).values(v).build()
}

fn tags_of(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|d| SystemTime::try_from(*d).ok())
}

pub fn tag_spec(kind: ResourceType, tags: &[(&str, String)]) -> TagSpecification {
    let mut b = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        b = b.tags(Tag::builder().key(*k).value(v).build());
    }
    b.build()
}

fn merge_latest(latest: &mut BTreeMap<String, Modification>, found: Vec<(String, Modification)>) {
    for (id, m) in found {
        if latest.get(&id).is_none_or(|l| l.start <= m.start) {
            latest.insert(id, m);
        }
    }
}

/// A waiter's failure as one line.
fn waited<E: std::error::Error + Send + Sync + 'static>(
    what: String,
) -> impl FnOnce(E) -> anyhow::Error {
    move |e| {
        let text = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
        anyhow::anyhow!(
            "{what}: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}

impl Ec2 {
    pub fn new(ep: &Endpoint, dry_run: bool) -> anyhow::Result<Ec2> {
        let rt = zstream_aws::runtime(2)?;
        let conf = rt.block_on(zstream_aws::config(ep));
        Ok(Ec2 {
            rt,
            client: Client::new(&conf),
            dry_run,
        })
    }

    /// A change about to be made: printed instead under `--dry-run` (and then not made: the caller gets false).
    fn change(&self, call: &str, detail: std::fmt::Arguments<'_>) -> bool {
        if self.dry_run {
            zstream_common::say!("dry run: would call {call} {detail}");
        }
        !self.dry_run
    }

    /// The pool `name` as its tags describe it.
    pub fn find(&self, name: &str) -> anyhow::Result<Pool> {
        let mut pools = self.scan(Some(name))?;
        Ok(pools.remove(name).unwrap_or(Pool {
            name: name.to_string(),
            instance: None,
            volumes: vec![],
        }))
    }

    /// Every pool these credentials can see, by name.
    pub fn pools(&self) -> anyhow::Result<BTreeMap<String, Pool>> {
        self.scan(None)
    }

    fn scan(&self, name: Option<&str>) -> anyhow::Result<BTreeMap<String, Pool>> {
        let filter = || match name {
            Some(n) => tag_filter(tags::POOL, n),
            None => Filter::builder().name("tag-key").values(tags::POOL).build(),
        };
        let mut pools: BTreeMap<String, Pool> = BTreeMap::new();
        fn entry<'a>(pools: &'a mut BTreeMap<String, Pool>, n: &str) -> &'a mut Pool {
            pools.entry(n.to_string()).or_insert_with(|| Pool {
                name: n.to_string(),
                instance: None,
                volumes: vec![],
            })
        }
        let reservations = self.rt.block_on(async {
            let mut out = vec![];
            let mut pages = self
                .client
                .describe_instances()
                .filters(filter())
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                out.extend(
                    page.map_err(err("DescribeInstances"))?
                        .reservations()
                        .iter()
                        .cloned(),
                );
            }
            anyhow::Ok(out)
        })?;
        for r in &reservations {
            for i in r.instances() {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map_or("unknown", |s| s.as_str())
                    .to_string();
                if state == "terminated" {
                    continue;
                }
                let t = tags_of(i.tags());
                let Some(n) = t.get(tags::POOL).cloned() else {
                    continue;
                };
                let inst = Instance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    state,
                    instance_type: i.instance_type().map_or("", |t| t.as_str()).to_string(),
                    address: i
                        .public_ip_address()
                        .or(i.private_ip_address())
                        .map(str::to_string),
                    zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    tags: t,
                    launched: time(i.launch_time()),
                    devices: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|b| b.device_name().map(str::to_string))
                        .collect(),
                    spot: i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot"),
                    spot_request: i.spot_instance_request_id().map(str::to_string),
                    enis: i.network_interfaces().len().max(1) as u32,
                };
                let p = entry(&mut pools, &n);
                if let Some(other) = &p.instance {
                    anyhow::bail!(
                        "pool {n} has two instances ({} and {}): tag one of them off by hand before going on",
                        other.id,
                        inst.id
                    );
                }
                p.instance = Some(inst);
            }
        }
        let volumes = self.rt.block_on(async {
            let mut out = vec![];
            let mut pages = self
                .client
                .describe_volumes()
                .filters(filter())
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                out.extend(
                    page.map_err(err("DescribeVolumes"))?
                        .volumes()
                        .iter()
                        .cloned(),
                );
            }
            anyhow::Ok(out)
        })?;
        for v in &volumes {
            let t = tags_of(v.tags());
            let (Some(n), Some(vdev), Some(disk)) =
                (t.get(tags::POOL), t.get(tags::VDEV), t.get(tags::DISK))
            else {
                continue;
            };
            let bad = || {
                anyhow::anyhow!(
                    "volume {} has a vdev or disk tag that is not a number",
                    v.volume_id().unwrap_or("?")
                )
            };
            let vol = Volume {
                id: v.volume_id().unwrap_or_default().to_string(),
                size_gib: v.size().unwrap_or(0).max(0) as u64,
                state: v.state().map_or("unknown", |s| s.as_str()).to_string(),
                vdev: vdev.parse().map_err(|_| bad())?,
                disk: disk.parse().map_err(|_| bad())?,
                attached_to: v
                    .attachments()
                    .iter()
                    .find_map(|a| a.instance_id().map(str::to_string)),
                created: time(v.create_time()),
                volume_type: v.volume_type().map_or("", |t| t.as_str()).to_string(),
                iops: v.iops().map(|n| n.max(0) as u32),
                encrypted: v.encrypted().unwrap_or(false),
                kms_key_id: v.kms_key_id().map(str::to_string),
            };
            entry(&mut pools, n).volumes.push(vol);
        }
        for p in pools.values_mut() {
            p.volumes.sort_by_key(|v| (v.vdev, v.disk));
        }
        Ok(pools)
    }

    /// The newest Ubuntu LTS server image from Canonical for `arch` (`x86_64` or `arm64`).
    pub fn newest_ubuntu_lts(&self, arch: &str) -> anyhow::Result<String> {
        let deb_arch = if arch == "arm64" { "arm64" } else { "amd64" };
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_images()
                    .owners(crate::rules::CANONICAL)
                    .filters(
                        Filter::builder()
                            .name("name")
                            .values(format!("ubuntu/images/*ubuntu-*-{deb_arch}-server-*"))
                            .build(),
                    )
                    .filters(Filter::builder().name("architecture").values(arch).build())
                    .filters(Filter::builder().name("state").values("available").build())
                    .send(),
            )
            .map_err(err(
                "DescribeImages (looking for the newest Ubuntu LTS; give --ami to choose one)",
            ))?;
        let images: Vec<(&str, &str, &str)> = out
            .images()
            .iter()
            .filter_map(|i| Some((i.image_id()?, i.name()?, i.creation_date().unwrap_or(""))))
            .collect();
        crate::rules::newest_lts(&images).ok_or_else(|| {
            anyhow::anyhow!("no Ubuntu LTS image for {arch} found in this region; give --ami")
        })
    }

    /// An image's architecture and root device.
    pub fn image(&self, ami: &str) -> anyhow::Result<ImageInfo> {
        let out = self
            .rt
            .block_on(self.client.describe_images().image_ids(ami).send())
            .map_err(err(format!("DescribeImages {ami}")))?;
        let i = out
            .images()
            .first()
            .ok_or_else(|| zstream_common::usage(format!("image {ami} is not found here")))?;
        Ok(ImageInfo {
            architecture: i
                .architecture()
                .map_or("x86_64", |a| a.as_str())
                .to_string(),
            root_device: i.root_device_name().map(str::to_string),
            root_gib: i
                .block_device_mappings()
                .iter()
                .find(|b| b.device_name() == i.root_device_name())
                .and_then(|b| b.ebs())
                .and_then(|e| e.volume_size())
                .map(|n| n.max(0) as u64),
        })
    }

    /// Memory, EBS attachment limit and architectures of an instance type.
    pub fn instance_type(&self, t: &str) -> anyhow::Result<TypeInfo> {
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_instance_types()
                    .instance_types(t.into())
                    .send(),
            )
            .map_err(err(format!("DescribeInstanceTypes {t}")))?;
        let it = out.instance_types().first().ok_or_else(|| {
            zstream_common::usage(format!("instance type {t} is not offered here"))
        })?;
        let ebs = it.ebs_info();
        Ok(TypeInfo {
            mem_mib: it
                .memory_info()
                .and_then(|m| m.size_in_mib())
                .unwrap_or(0)
                .max(0) as u64,
            max_ebs: ebs
                .and_then(|e| e.maximum_ebs_attachments())
                .map(|n| n.max(0) as u32),
            shared_limit: ebs
                .and_then(|e| e.attachment_limit_type())
                .is_none_or(|l| l.as_str() != "dedicated"),
            archs: it
                .processor_info()
                .map(|p| {
                    p.supported_architectures()
                        .iter()
                        .map(|a| a.as_str().to_string())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub fn run_instance(&self, spec: &Launch) -> anyhow::Result<String> {
        if !self.change("RunInstances", format_args!("{spec}")) {
            return Ok("i-(new)".into());
        }
        use aws_sdk_ec2::types::*;
        let mut req = self
            .client
            .run_instances()
            .image_id(&spec.ami)
            .instance_type(spec.instance_type.as_str().into())
            .min_count(1)
            .max_count(1)
            .tag_specifications(tag_spec(ResourceType::Instance, &spec.tags));
        if let Some(s) = &spec.subnet {
            req = req.subnet_id(s);
        }
        if let Some(k) = &spec.ssh_key_name {
            req = req.key_name(k);
        }
        for g in &spec.security_groups {
            req = req.security_group_ids(g);
        }
        if let Some(root) = &spec.root {
            // The root volume holds the system's logs and the swap's backing file: encrypted at rest like the pool's.
            let mut ebs = EbsBlockDevice::builder()
                .volume_size(i32::try_from(root.size_gib)?)
                .volume_type(VolumeType::Gp3)
                .delete_on_termination(true)
                .encrypted(root.encryption.is_some());
            if let Some(Some(k)) = &root.encryption {
                ebs = ebs.kms_key_id(k);
            }
            req = req.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(&root.device)
                    .ebs(ebs.build())
                    .build(),
            );
        }
        if spec.spot {
            req = req.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::Persistent)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Stop)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = self.rt.block_on(req.send()).map_err(err("RunInstances"))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("RunInstances answered without an instance"))
    }

    pub fn create_volume(
        &self,
        spec: &VolumeSpec,
        tags: &[(&str, String)],
    ) -> anyhow::Result<String> {
        let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !self.change(
            "CreateVolume",
            format_args!("{spec} tags={}", shown.join(",")),
        ) {
            return Ok("vol-(new)".into());
        }
        let mut req = self
            .client
            .create_volume()
            .availability_zone(&spec.zone)
            .size(i32::try_from(spec.size_gib)?)
            .volume_type(spec.volume_type.as_str().into())
            .encrypted(spec.encryption.is_some())
            .tag_specifications(tag_spec(ResourceType::Volume, tags));
        if let Some(n) = spec.iops {
            req = req.iops(i32::try_from(n)?);
        }
        if let Some(Some(k)) = &spec.encryption {
            req = req.kms_key_id(k);
        }
        let out = self.rt.block_on(req.send()).map_err(err("CreateVolume"))?;
        out.volume_id()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("CreateVolume answered without an id"))
    }

    pub fn attach(&self, volume: &str, instance: &str, device: &str) -> anyhow::Result<()> {
        if !self.change(
            "AttachVolume",
            format_args!("{volume} to {instance} as {device}"),
        ) {
            return Ok(());
        }
        self.rt
            .block_on(
                self.client
                    .attach_volume()
                    .volume_id(volume)
                    .instance_id(instance)
                    .device(device)
                    .send(),
            )
            .map_err(err(format!("AttachVolume {volume}")))?;
        Ok(())
    }

    pub fn detach(&self, volume: &str) -> anyhow::Result<()> {
        if !self.change("DetachVolume", format_args!("{volume}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.detach_volume().volume_id(volume).send())
            .map_err(err(format!("DetachVolume {volume}")))?;
        Ok(())
    }

    pub fn delete_volume(&self, volume: &str) -> anyhow::Result<()> {
        if !self.change("DeleteVolume", format_args!("{volume}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.delete_volume().volume_id(volume).send())
            .map_err(err(format!("DeleteVolume {volume}")))?;
        Ok(())
    }

    pub fn modify_volume(&self, volume: &str, size_gib: u64) -> anyhow::Result<()> {
        if !self.change("ModifyVolume", format_args!("{volume} size={size_gib}GiB")) {
            return Ok(());
        }
        let r = self.rt.block_on(
            self.client
                .modify_volume()
                .volume_id(volume)
                .size(i32::try_from(size_gib)?)
                .send(),
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
                let line = anyhow::anyhow!("ModifyVolume {volume}: {}", zstream_aws::describe(&e));
                // The volume's previous modification is not complete, or it had four in 24 hours: later.
                if matches!(
                    code,
                    "IncorrectModificationState" | "VolumeModificationRateExceeded"
                ) {
                    Err(anyhow::Error::new(zstream_common::Coded::new(
                        zstream_common::Code::TempFail,
                        line,
                    )))
                } else {
                    Err(line)
                }
            }
        }
    }

    /// The latest modification of each volume that has one. AWS answers InvalidVolumeModification.NotFound when
    /// any volume asked about was never modified (moto answers an empty list): then each is asked about alone,
    /// and one that was never modified has none.
    pub fn modifications(
        &self,
        volumes: &[String],
    ) -> anyhow::Result<BTreeMap<String, Modification>> {
        if volumes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut latest: BTreeMap<String, Modification> = BTreeMap::new();
        match self.describe_modifications(volumes)? {
            Some(all) => merge_latest(&mut latest, all),
            None => {
                for v in volumes {
                    if let Some(one) = self.describe_modifications(std::slice::from_ref(v))? {
                        merge_latest(&mut latest, one);
                    }
                }
            }
        }
        Ok(latest)
    }

    /// DescribeVolumesModifications of `volumes`, or None when AWS says one of them was never modified.
    fn describe_modifications(
        &self,
        volumes: &[String],
    ) -> anyhow::Result<Option<Vec<(String, Modification)>>> {
        let r = self.rt.block_on(
            self.client
                .describe_volumes_modifications()
                .set_volume_ids(Some(volumes.to_vec()))
                .send(),
        );
        let out = match r {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("InvalidVolumeModification.NotFound") =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "DescribeVolumesModifications: {}",
                    zstream_aws::describe(&e)
                ))
            }
        };
        Ok(Some(
            out.volumes_modifications()
                .iter()
                .filter_map(|m| {
                    Some((
                        m.volume_id()?.to_string(),
                        Modification {
                            state: ModState::parse(
                                m.modification_state().map_or("", |s| s.as_str()),
                            ),
                            target_gib: m.target_size().unwrap_or(0).max(0) as u64,
                            start: time(m.start_time())?,
                        },
                    ))
                })
                .collect(),
        ))
    }

    /// The console output the instance printed (cloud-init prints its SSH host keys there at first boot).
    pub fn console_output(&self, id: &str) -> anyhow::Result<String> {
        // The latest output is offered on Nitro types only; elsewhere, the buffered output.
        let out = match self.rt.block_on(
            self.client
                .get_console_output()
                .instance_id(id)
                .latest(true)
                .send(),
        ) {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().and_then(|s| s.code()) == Some("UnsupportedOperation") =>
            {
                self.rt
                    .block_on(self.client.get_console_output().instance_id(id).send())
                    .map_err(err(format!("GetConsoleOutput {id}")))?
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "GetConsoleOutput {id}: {}",
                    zstream_aws::describe(&e)
                ))
            }
        };
        let text = out
            .output()
            .map(|b| aws_smithy_types::base64::decode(b).unwrap_or_default())
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// The VPC a new instance goes into: the subnet's, else the region's default VPC.
    pub fn vpc_of(&self, subnet: Option<&str>) -> anyhow::Result<String> {
        if let Some(sn) = subnet {
            let out = self
                .rt
                .block_on(self.client.describe_subnets().subnet_ids(sn).send())
                .map_err(err(format!("DescribeSubnets {sn}")))?;
            return out
                .subnets()
                .first()
                .and_then(|s| s.vpc_id())
                .map(str::to_string)
                .ok_or_else(|| zstream_common::usage(format!("subnet {sn} is not found here")));
        }
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_vpcs()
                    .filters(Filter::builder().name("is-default").values("true").build())
                    .send(),
            )
            .map_err(err("DescribeVpcs"))?;
        out.vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                zstream_common::usage("this region has no default VPC: give --subnet".to_string())
            })
    }

    /// A security group for the pool that admits SSH from `cidr` only.
    pub fn create_ssh_group(
        &self,
        pool: &str,
        vpc: &str,
        cidr: &str,
        tags: &[(&str, String)],
    ) -> anyhow::Result<String> {
        let name = format!("ec2-pool-{pool}");
        if !self.change(
            "CreateSecurityGroup",
            format_args!("{name} in {vpc}, then AuthorizeSecurityGroupIngress tcp/22 from {cidr}"),
        ) {
            return Ok("sg-(new)".into());
        }
        let out = self
            .rt
            .block_on(
                self.client
                    .create_security_group()
                    .group_name(&name)
                    .description(format!("ec2-pool {pool}: SSH from the backup host"))
                    .vpc_id(vpc)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
                    .send(),
            )
            .map_err(err(format!("CreateSecurityGroup {name}")))?;
        let id = out
            .group_id()
            .ok_or_else(|| anyhow::anyhow!("CreateSecurityGroup answered without an id"))?
            .to_string();
        use aws_sdk_ec2::types::{IpPermission, IpRange};
        self.rt
            .block_on(
                self.client
                    .authorize_security_group_ingress()
                    .group_id(&id)
                    .ip_permissions(
                        IpPermission::builder()
                            .ip_protocol("tcp")
                            .from_port(22)
                            .to_port(22)
                            .ip_ranges(
                                IpRange::builder()
                                    .cidr_ip(cidr)
                                    .description("ec2-pool: the backup host")
                                    .build(),
                            )
                            .build(),
                    )
                    .send(),
            )
            .map_err(err(format!("AuthorizeSecurityGroupIngress {id}")))?;
        Ok(id)
    }

    /// The security groups tagged with the pool's name (those `create --ssh-from` made).
    pub fn pool_groups(&self, pool: &str) -> anyhow::Result<Vec<String>> {
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_security_groups()
                    .filters(tag_filter(tags::POOL, pool))
                    .send(),
            )
            .map_err(err("DescribeSecurityGroups"))?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect())
    }

    pub fn delete_security_group(&self, id: &str) -> anyhow::Result<()> {
        if !self.change("DeleteSecurityGroup", format_args!("{id}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.delete_security_group().group_id(id).send())
            .map_err(err(format!("DeleteSecurityGroup {id}")))?;
        Ok(())
    }

    /// Cancels a Spot request, so that terminating its instance does not launch another.
    pub fn cancel_spot(&self, request: &str) -> anyhow::Result<()> {
        if !self.change("CancelSpotInstanceRequests", format_args!("{request}")) {
            return Ok(());
        }
        self.rt
            .block_on(
                self.client
                    .cancel_spot_instance_requests()
                    .spot_instance_request_ids(request)
                    .send(),
            )
            .map_err(err(format!("CancelSpotInstanceRequests {request}")))?;
        Ok(())
    }

    pub fn set_tags(&self, resource: &str, tags: &[(&str, String)]) -> anyhow::Result<()> {
        let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !self.change("CreateTags", format_args!("{resource} {}", shown.join(","))) {
            return Ok(());
        }
        let mut req = self.client.create_tags().resources(resource);
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(*k).value(v).build());
        }
        self.rt
            .block_on(req.send())
            .map_err(err(format!("CreateTags {resource}")))?;
        Ok(())
    }

    pub fn start(&self, id: &str) -> anyhow::Result<()> {
        if !self.change("StartInstances", format_args!("{id}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.start_instances().instance_ids(id).send())
            .map_err(err(format!("StartInstances {id}")))?;
        self.wait_running(id)
    }

    pub fn wait_running(&self, id: &str) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.rt
            .block_on(
                self.client
                    .wait_until_instance_running()
                    .instance_ids(id)
                    .wait(WAIT),
            )
            .map_err(waited(format!("waiting for {id} to run")))?;
        Ok(())
    }

    pub fn stop(&self, id: &str) -> anyhow::Result<()> {
        if !self.change("StopInstances", format_args!("{id}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.stop_instances().instance_ids(id).send())
            .map_err(err(format!("StopInstances {id}")))?;
        self.rt
            .block_on(
                self.client
                    .wait_until_instance_stopped()
                    .instance_ids(id)
                    .wait(WAIT),
            )
            .map_err(waited(format!("waiting for {id} to stop")))?;
        Ok(())
    }

    pub fn terminate(&self, id: &str) -> anyhow::Result<()> {
        if !self.change("TerminateInstances", format_args!("{id}")) {
            return Ok(());
        }
        self.rt
            .block_on(self.client.terminate_instances().instance_ids(id).send())
            .map_err(err(format!("TerminateInstances {id}")))?;
        self.rt
            .block_on(
                self.client
                    .wait_until_instance_terminated()
                    .instance_ids(id)
                    .wait(WAIT),
            )
            .map_err(waited(format!("waiting for {id} to terminate")))?;
        Ok(())
    }

    /// Waits until every volume is `in-use` (attached) or `available` (detached).
    pub fn wait_volumes(&self, ids: &[String], attached: bool) -> anyhow::Result<()> {
        if self.dry_run || ids.is_empty() {
            return Ok(());
        }
        let what = format!(
            "waiting for {} volume(s) to be {}",
            ids.len(),
            if attached { "attached" } else { "available" }
        );
        if attached {
            self.rt
                .block_on(
                    self.client
                        .wait_until_volume_in_use()
                        .set_volume_ids(Some(ids.to_vec()))
                        .wait(WAIT),
                )
                .map(|_| ())
                .map_err(waited(what))
        } else {
            self.rt
                .block_on(
                    self.client
                        .wait_until_volume_available()
                        .set_volume_ids(Some(ids.to_vec()))
                        .wait(WAIT),
                )
                .map(|_| ())
                .map_err(waited(what))
        }
    }

    /// Blocks the calling thread for `d` (between looks at slow EBS modifications). The timer is made inside the
    /// runtime: made outside, it finds no runtime and panics (moto, which modifies at once, never got here).
    pub fn sleep(&self, d: Duration) {
        self.rt.block_on(async move { tokio::time::sleep(d).await });
    }
}

/// What RunInstances is asked for.
pub struct Launch {
    pub ami: String,
    pub instance_type: String,
    pub subnet: Option<String>,
    pub ssh_key_name: Option<String>,
    pub security_groups: Vec<String>,
    /// The image's root device, to be encrypted at rest.
    pub root: Option<RootDevice>,
    pub spot: bool,
    pub tags: Vec<(&'static str, String)>,
}

pub struct RootDevice {
    pub device: String,
    /// Its size: the image's (the size cost.rs prices, 8 GiB, when the image does not say).
    pub size_gib: u64,
    /// EBS encryption: None for none, Some(None) with the account's key, Some(Some(k)) with KMS key k.
    pub encryption: Option<Option<String>>,
}

/// What CreateVolume is asked for.
pub struct VolumeSpec {
    pub zone: String,
    pub size_gib: u64,
    pub volume_type: String,
    pub iops: Option<u32>,
    /// EBS encryption, as in RootDevice.
    pub encryption: Option<Option<String>>,
}

impl std::fmt::Display for VolumeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "zone={} size={}GiB type={}",
            self.zone, self.size_gib, self.volume_type
        )?;
        if let Some(n) = self.iops {
            write!(f, " iops={n}")?;
        }
        match &self.encryption {
            None => write!(f, " encrypted=false"),
            Some(None) => write!(f, " encrypted=true"),
            Some(Some(k)) => write!(f, " encrypted=true kms-key={k}"),
        }
    }
}

impl std::fmt::Display for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "image={} type={}", self.ami, self.instance_type)?;
        if let Some(s) = &self.subnet {
            write!(f, " subnet={s}")?;
        }
        if let Some(k) = &self.ssh_key_name {
            write!(f, " key-name={k}")?;
        }
        if !self.security_groups.is_empty() {
            write!(f, " security-groups={}", self.security_groups.join(","))?;
        }
        if let Some(r) = &self.root {
            write!(
                f,
                " root={}(encrypted={})",
                r.device,
                r.encryption.is_some()
            )?;
        }
        if self.spot {
            write!(f, " market=spot(persistent, stop on interruption)")?;
        }
        let shown: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, " tags={}", shown.join(","))
    }
}
