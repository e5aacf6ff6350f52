//! zstream-par: Reed-Solomon parity inside the stream. `format` (the frame), `codec` (GF(2^8) Reed-Solomon),
//! `encode`, `scan` (finding frames in damaged input), `decode` (gathering, repairing, checking), `app`.
//! The formats are in docs/formats/par-v2.md (written) and par-v1.md (still read).

pub mod app;
mod assemble;
pub mod codec;
mod content;
pub mod decode;
pub mod encode;
pub mod format;
pub mod probe;
mod repair;
mod report;
pub mod scan;
pub mod testkit;
pub mod vectors;
