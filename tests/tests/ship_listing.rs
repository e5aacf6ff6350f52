//! zstream-ship's bounded listing (`Backend::list_at_most`: how zstream-catalog reads a dataset's entries and
//! objects, at most 100,000 names) on moto's server through the real AWS SDK, with a bound small enough to pass
//! in a test: it stops at the page that passes the bound, before it holds that page's objects, and sends no
//! request per object, archived or not (someone who can write the bucket decides how many there are); grouped
//! (`list_groups_at_most`, the catalog's list of datasets) it pages through one name per dataset.
//!
//! This binary holds one test: it sets the process's AWS environment for the SDK, which no other test may share.

use zstream_ship::app::{backend, Use};
use zstream_ship::options::Options;
use zstream_tests::moto::Moto;

const PREFIX: &str = "s3://listing/catalog/";

#[test]
fn a_bounded_listing_stops_at_the_page_that_passes_it_and_sends_no_head() {
    let moto = Moto::start();
    moto.bucket("listing");
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    // 2,001 archived objects, entries of three datasets by their names: three pages (S3's page is 1,000 names),
    // planted with boto3 as anyone could.
    moto.boto3(
        "for i in range(2001):\n    s3.put_object(Bucket='listing', Key='catalog/d%d@%04d.json' % (i % 3, i), \
         Body=b'x', StorageClass='DEEP_ARCHIVE')\n",
    );

    let target = backend(PREFIX, Use::Prefix, &Options::default()).unwrap();
    let sent = |from: usize| -> Vec<String> { moto.requests()[from..].to_vec() };
    let pages = |reqs: &[String]| {
        reqs.iter()
            .filter(|l| l.contains("\"GET /listing/?list-type=2"))
            .count()
    };
    let before = moto.requests().len();
    let err = target.list_at_most(1_000).unwrap_err();
    assert_eq!(
        zstream_common::exit::code_of(&err),
        zstream_common::Code::Integrity,
        "{err:#}"
    );
    assert!(
        format!("{err:#}").contains("more than 1000 names"),
        "{err:#}"
    );
    let refused = sent(before);
    assert_eq!(
        pages(&refused),
        2,
        "the second page passes the bound: the third is not asked for: {refused:#?}"
    );
    assert!(
        refused.iter().all(|l| !l.contains("\"HEAD ")),
        "no HEAD: {refused:#?}"
    );

    let before = moto.requests().len();
    let all = target.list_at_most(2_001).unwrap();
    assert_eq!(all.len(), 2_001);
    assert!(all
        .iter()
        .all(|e| e.storage_class == "DEEP_ARCHIVE" && e.restore == "archived"));
    let listed = sent(before);
    assert_eq!(pages(&listed), 3, "{listed:#?}");
    assert!(
        listed.iter().all(|l| !l.contains("\"HEAD ")),
        "no HEAD: {listed:#?}"
    );

    // Grouped at `@` (how zstream-catalog lists the datasets): one name per dataset, from one page.
    let before = moto.requests().len();
    let groups = target.list_groups_at_most(PREFIX, '@', 3).unwrap();
    assert_eq!(
        groups,
        ["d0@", "d1@", "d2@"].map(|g| format!("{PREFIX}{g}"))
    );
    assert_eq!(pages(&sent(before)), 1, "{:#?}", sent(before));
    let err = target.list_groups_at_most(PREFIX, '@', 2).unwrap_err();
    assert_eq!(
        zstream_common::exit::code_of(&err),
        zstream_common::Code::Integrity,
        "{err:#}"
    );
}
