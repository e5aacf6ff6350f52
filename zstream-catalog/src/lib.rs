//! zstream-catalog: the backup cycle's catalog and every decision the cycle makes from it. The entries and their
//! signatures (`record`, `sign`), where they live (`layout`), one dataset's view of them (`view`), the decisions as
//! pure functions of that view, the store's listing, the source and a clock (`plan`, `prune`, `restore`, `tree`,
//! `verify`, `cost`, with `price` and `clock`), the store's reads and writes (`io`) with a local copy of entries
//! already authenticated (`cache`), metrics files (`metrics`), and the command line (`app`, `cmd`, `drill`).
//! docs/formats/catalog-v2.md is the format.

pub mod app;
pub mod cache;
pub mod clock;
mod cmd;
pub mod cost;
mod drill;
pub mod io;
pub mod layout;
pub mod metrics;
pub mod plan;
pub mod price;
pub mod prune;
pub mod record;
pub mod restore;
pub mod sign;
pub mod testkit;
pub mod tree;
pub mod verify;
pub mod view;
