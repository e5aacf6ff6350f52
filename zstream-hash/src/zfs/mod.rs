//! ZFS send streams: the record layout (`record`), their checksum (`fletcher`) and a walker that validates a
//! stream as it passes (`walker`).

pub mod fletcher;
pub mod nvlist;
pub mod record;
pub mod walker;

/// Builds valid synthetic send streams, for tests and the benchmark's data generator; not part of the tool.
#[doc(hidden)]
pub mod synth;

pub use walker::{StreamInfo, Substream, Walker, ZfsError};
