//! What every zstream tool that speaks to AWS shares, so that each is written once: the SDK configuration and the
//! runtime the blocking tools run it on (`config`), SDK errors as one line (`error`), long reads that resume
//! (`resume`), waiting with backoff for slow services (`poll`), and the upload loop that reads parts while earlier
//! ones upload, with what undoing it takes (`pump`). It uses the smithy runtime crates directly, not types through
//! one service's SDK, so that a tool that needs only EC2 does not build S3.

mod config;
mod error;
mod poll;
pub mod pump;
mod resume;

pub use config::{config, runtime, Endpoint};
pub use error::{after_abort, describe, err, status};
pub use poll::{expected, later, ready, Archive, Poll, Ready};
pub use resume::{Resume, Resuming};
