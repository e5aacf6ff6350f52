//! zstream-ship: the last stage of the backup pipe and the first of the restore pipe. `url` (targets),
//! `backend` (what every target does), `file` (a directory), `app` (the command line). S3, S3's archive classes
//! and Glacier vaults are to come (issue 4), behind the same `Backend` interface and conformance suite.

pub mod app;
pub mod backend;
pub mod file;
pub mod url;
