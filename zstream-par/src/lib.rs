//! zstream-par: Reed-Solomon parity inside the stream. `format` (the frame), `codec` (GF(2^8) Reed-Solomon),
//! `encode`, `scan` (finding frames in damaged input), `decode` (gathering, repairing, checking), `app`.
//! The format is in docs/formats/par-v1.md.

pub mod app;
mod assemble;
pub mod codec;
pub mod decode;
pub mod encode;
pub mod format;
pub mod probe;
mod repair;
mod report;
pub mod scan;
pub mod testkit;
pub mod vectors;
