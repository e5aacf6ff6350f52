//! ZFS send streams: the record layout (`record`), their checksum (`fletcher`) and a walker that validates a
//! stream as it passes (`walker`).

pub mod fletcher;
pub mod record;
pub mod walker;

#[cfg(any(test, feature = "synth"))]
pub mod synth;

pub use walker::{StreamInfo, Substream, Walker, ZfsError};
