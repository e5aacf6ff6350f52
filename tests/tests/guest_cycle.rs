//! The backup cycle on real OpenZFS 2.3, in the guest (scripts/guest; TCG, so minutes): zstream-backup,
//! zstream-verify and zstream-restore run there on a pool of the guest's, with a file:// store in the guest and
//! the test's clock (ZSTREAM_NOW). The scenarios are tests/src/scenarios.rs; tests/tests/cycle.rs runs the same
//! ones on zfs-fuse.

use zstream_tests::cycle::Site;
use zstream_tests::guest;
use zstream_tests::host::{Host, Pool};
use zstream_tests::scenarios;

/// A site on a new pool of the guest's, its store a directory there.
fn site_on<'a, 'h>(p: &'a Pool<'h>) -> Site<'a, Pool<'h>> {
    Site::new(p, format!("file://{}/store", p.dir), Vec::new())
}

#[test]
fn the_cycle_end_to_end() {
    let g = guest::shared();
    let p = g.pool(512);
    scenarios::cycle(&site_on(&p));
}
