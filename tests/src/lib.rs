//! The harness of zstream's end-to-end tests: the built binaries, generated data, running commands with useful
//! failure output, and real ZFS (a zfs-fuse daemon we start, or kernel ZFS) with throwaway file-backed pools.
//! Every test that drives a binary goes through here, whatever package it lives in.

pub mod bins;
pub mod data;
pub mod proc;
pub mod zfs;
