//! zstream-hash: a SHA-256 pass-through. The library holds everything so tests and benchmarks run it in-process;
//! `main.rs` only hands the command line to `app::run`.

pub mod app;
pub mod passthrough;
pub mod sidecar;
pub mod zfs;
