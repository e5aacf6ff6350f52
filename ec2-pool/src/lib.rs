//! ec2-pool: a cheap EC2 instance whose ZFS pool is RAIDZ vdevs of many small EBS volumes, grown in place so
//! that it stays balanced, awake only for the backup window, its key in the instance's memory only.
//!
//! `app` (the command line and the subcommands), `grow` (growing resumably), `ec2` (the EC2 API, read from tags,
//! changes printed under --dry-run), `remote` (SSH and the instance's scripts), `rules` (what EBS allows, as pure
//! functions), `layout` (vdevs, sizes, device names), `key` (the raw key from every key file), `tags` (where the
//! state lives), `cost` (a month of a pool beside S3's classes), `config` (defaults from a file). The tags and the
//! key derivation are in docs/formats/ec2-pool-v1.md.

pub mod app;
pub mod config;
pub mod cost;
pub mod ec2;
pub mod grow;
pub mod key;
pub mod layout;
pub mod remote;
pub mod rules;
pub mod tags;
