//! zstream-ship: the last stage of the backup pipe and the first of the restore pipe. `url` (targets),
//! `backend` (what every target does), `file` (a directory), `s3` (S3 and its archive classes), `glacier`
//! (Glacier vaults), `aws` and `pump` (what the AWS backends share), `app` (the command line).

pub mod app;
/// What every AWS tool here shares (zstream-aws), under its old name.
pub use zstream_aws as aws;
pub mod backend;
pub mod file;
pub mod glacier;
pub mod options;
pub use zstream_aws::pump;
pub mod s3;
pub mod url;
