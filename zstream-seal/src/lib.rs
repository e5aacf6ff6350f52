//! zstream-seal: authenticated stream encryption that needs every key it was sealed with.
//!
//! `key` (key files), `kdf` (Argon2id and HKDF), `header` (what opening needs, authenticated), `stream` (the
//! STREAM chunk construction), `filter` (whole streams, in parallel), `vectors` (the published test vectors),
//! `app` (the command line). The format is in docs/formats/seal-v1.md.

pub mod app;
pub mod filter;
pub mod header;
pub mod kdf;
pub mod key;
pub mod stream;
pub mod testkit;
pub mod vectors;
