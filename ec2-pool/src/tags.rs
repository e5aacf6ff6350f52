//! Where the pool's state lives: tags on its instance and volumes, so that any machine with the credentials can
//! manage it and nothing depends on a local file. Nothing without `zstream:pool` set to the pool's name is ever
//! modified or deleted. The tags are specified in docs/formats/ec2-pool-v1.md.

/// On the instance and every data volume: the pool's name.
pub const POOL: &str = "zstream:pool";
/// On the instance: the layout, `raidz1 5x8 gp3`.
pub const LAYOUT: &str = "zstream:layout";
/// On the instance: the ids of the key files the pool's key is derived from, sorted, comma-separated.
pub const KEY_IDS: &str = "zstream:key-ids";
/// On the instance: where a volume appears on it, `{vol}` standing for the volume id without its dash.
pub const DEVICE_TEMPLATE: &str = "zstream:device-template";
/// On the instance: seconds it has run in earlier sessions (added up at each `down`), for the cost so far.
pub const RUN_SECONDS: &str = "zstream:run-seconds";
/// On the instance: when the pool was created (RFC 3339).
pub const CREATED: &str = "zstream:created";
/// On the instance: the per-volume size a grow is bringing every volume to, and how far it got
/// (`modifying`, `expanding`, `done`): what a killed grow resumes from.
pub const GROW_TO: &str = "zstream:grow-to";
pub const GROW_STATE: &str = "zstream:grow-state";
/// On a data volume: its vdev and its place in it, from 0.
pub const VDEV: &str = "zstream:vdev";
pub const DISK: &str = "zstream:disk";
/// On the instance: its SSH host key, `TYPE BASE64`, learned at create from its console output; every SSH
/// connection requires it.
pub const HOST_KEY: &str = "zstream:host-key";
/// On the instance: the last finished scrub, `TIME errors=N`.
pub const SCRUB: &str = "zstream:scrub";
/// On the instance: when ec2-pool's grows modified the volumes, the newest four (EBS allows four modifications
/// of a volume in 24 hours, and DescribeVolumesModifications shows only the latest).
pub const MODIFIED: &str = "zstream:modified";
/// On the instance: `creating` until `create` has finished, then `ready`. A pool left `creating` by a killed
/// create is what `destroy --unfinished` removes.
pub const STATE: &str = "zstream:state";
/// On the instance: what encrypts the pool, `native` (ZFS's encryption; also when absent) or `luks` (LUKS2 under
/// every volume, opened as /dev/mapper/ec2pool-VOLUMEID).
pub const ENCRYPTION: &str = "zstream:encryption";
