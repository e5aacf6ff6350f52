//! ec2-pool: a cheap EC2 instance whose ZFS pool is RAIDZ vdevs of many small EBS volumes, grown in place so
//! that it stays balanced, awake only for the backup window, its key in the instance's memory only.
//!
//! The command line is `cli` (the options) and `app` (the run: what every subcommand works with, and which module
//! does it). The subcommands: `create` (create, destroy), `session` (up, down, and a step with the pool up),
//! `datasets` (receive, send, snapshots), `grow` (growing resumably), `report` (status, cost, ls). Underneath:
//! `ec2` (the EC2 API, read from tags, changes printed under --dry-run), `remote` (SSH with the pinned host key),
//! `script` (what runs on the instance), `hostkey` (the instance's SSH host key), `rules` (what AWS allows and
//! when to act, as pure functions), `layout` (vdevs, sizes, IOPS, device names), `key` (the raw key from every key
//! file), `tags` (where the state lives), `cost` (a month of a pool beside S3's classes), `config` (defaults from
//! a file). The tags and the key derivation are in docs/formats/ec2-pool-v1.md.

pub mod app;
pub mod cli;
pub mod config;
pub mod cost;
pub mod create;
pub mod datasets;
pub mod ec2;
pub mod grow;
pub mod hostkey;
pub mod key;
pub mod layout;
pub mod remote;
pub mod report;
pub mod rules;
pub mod script;
pub mod session;
pub mod tags;
