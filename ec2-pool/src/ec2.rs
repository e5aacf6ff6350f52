//! The EC2 API as ec2-pool uses it: the pool read from tags, and each change as one call that `--dry-run` prints
//! instead of making. Calls block on the shared runtime (zstream-aws): the tool is a sequence of steps, and the
//! SSH side of it is blocking processes anyway.

use crate::rules::{ModState, Modification};
use crate::tags;
use aws_sdk_ec2::client::Waiters;
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
}

/// A pool as AWS knows it: its instance (None once terminated or before it was made) and its data volumes,
/// ordered by vdev and disk.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub instance: Option<Instance>,
    pub volumes: Vec<Volume>,
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
            };
            entry(&mut pools, n).volumes.push(vol);
        }
        for p in pools.values_mut() {
            p.volumes.sort_by_key(|v| (v.vdev, v.disk));
        }
        Ok(pools)
    }

    /// The newest Ubuntu LTS image for amd64 from Canonical.
    pub fn newest_ubuntu_lts(&self) -> anyhow::Result<String> {
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_images()
                    .owners("099720109477")
                    .filters(
                        Filter::builder()
                            .name("name")
                            .values("ubuntu/images/*ubuntu-*-amd64-server-*")
                            .build(),
                    )
                    .filters(Filter::builder().name("state").values("available").build())
                    .send(),
            )
            .map_err(err(
                "DescribeImages (looking for the newest Ubuntu LTS; give --ami to choose one)",
            ))?;
        let lts = |name: &str| {
            // ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701: an even year and .04.
            name.split('-').any(|w| {
                w.strip_suffix(".04")
                    .and_then(|y| y.parse::<u32>().ok())
                    .is_some_and(|y| y % 2 == 0)
            })
        };
        out.images()
            .iter()
            .filter(|i| i.name().is_some_and(lts))
            .max_by_key(|i| i.creation_date().unwrap_or("").to_string())
            .and_then(|i| i.image_id().map(str::to_string))
            .ok_or_else(|| anyhow::anyhow!("no Ubuntu LTS image found in this region; give --ami"))
    }

    /// Memory (MiB) and the most EBS volumes an instance type can attach (root included), when AWS says.
    pub fn instance_type(&self, t: &str) -> anyhow::Result<(u64, Option<u32>)> {
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
        let mem = it
            .memory_info()
            .and_then(|m| m.size_in_mib())
            .unwrap_or(0)
            .max(0) as u64;
        let ebs = it
            .ebs_info()
            .and_then(|e| e.maximum_ebs_attachments())
            .map(|n| n.max(0) as u32);
        Ok((mem, ebs))
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
        zone: &str,
        size_gib: u64,
        volume_type: &str,
        tags: &[(&str, String)],
    ) -> anyhow::Result<String> {
        let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !self.change(
            "CreateVolume",
            format_args!(
                "zone={zone} size={size_gib}GiB type={volume_type} tags={}",
                shown.join(",")
            ),
        ) {
            return Ok("vol-(new)".into());
        }
        let out = self
            .rt
            .block_on(
                self.client
                    .create_volume()
                    .availability_zone(zone)
                    .size(i32::try_from(size_gib)?)
                    .volume_type(volume_type.into())
                    .tag_specifications(tag_spec(ResourceType::Volume, tags))
                    .send(),
            )
            .map_err(err("CreateVolume"))?;
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
        self.rt
            .block_on(
                self.client
                    .modify_volume()
                    .volume_id(volume)
                    .size(i32::try_from(size_gib)?)
                    .send(),
            )
            .map_err(err(format!("ModifyVolume {volume}")))?;
        Ok(())
    }

    /// The latest modification of each volume that has one.
    pub fn modifications(
        &self,
        volumes: &[String],
    ) -> anyhow::Result<BTreeMap<String, Modification>> {
        if volumes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_volumes_modifications()
                    .set_volume_ids(Some(volumes.to_vec()))
                    .send(),
            )
            .map_err(err("DescribeVolumesModifications"))?;
        let mut latest: BTreeMap<String, Modification> = BTreeMap::new();
        for m in out.volumes_modifications() {
            let (Some(id), Some(start)) = (m.volume_id(), time(m.start_time())) else {
                continue;
            };
            let this = Modification {
                state: ModState::parse(m.modification_state().map_or("", |s| s.as_str())),
                target_gib: m.target_size().unwrap_or(0).max(0) as u64,
                start,
            };
            if latest.get(id).is_none_or(|l| l.start <= this.start) {
                latest.insert(id.to_string(), this);
            }
        }
        Ok(latest)
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

    /// Blocks the calling thread for `d` (between looks at slow EBS modifications).
    pub fn sleep(&self, d: Duration) {
        self.rt.block_on(tokio::time::sleep(d));
    }
}

/// What RunInstances is asked for.
pub struct Launch {
    pub ami: String,
    pub instance_type: String,
    pub subnet: Option<String>,
    pub ssh_key_name: Option<String>,
    pub spot: bool,
    pub tags: Vec<(&'static str, String)>,
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
        if self.spot {
            write!(f, " market=spot(persistent, stop on interruption)")?;
        }
        let shown: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, " tags={}", shown.join(","))
    }
}
