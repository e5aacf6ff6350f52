//! The harness of zstream's end-to-end tests: the built binaries, generated data, running commands with useful
//! failure output, real ZFS (a zfs-fuse daemon we start, or kernel ZFS) with throwaway file-backed pools, a real
//! AWS API (moto's server) and a proxy that injects network faults in front of it.
//! Every test that drives a binary goes through here, whatever package it lives in. The same scenarios run on
//! zfs-fuse here and on real OpenZFS 2.3 in a qemu guest (`host`, `guest`).

pub mod bins;
pub mod cycle;
pub mod data;
pub mod ec2;
pub mod faults;
pub mod guest;
pub mod host;
pub mod http;
pub mod moto;
pub mod proc;
pub mod prom;
pub mod streams;
pub mod testkit;
pub mod vault;
pub mod zfs;
