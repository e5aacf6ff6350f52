//! What an intent may make a run do when the catalog cannot vouch for it. A writer of the store without the keys
//! can delete every record and put back genuine intents they kept; destroying snapshots at the source is the one
//! thing they could not do by themselves, so no run does it for them.

use zstream_catalog::layout::{object_name, Store};
use zstream_catalog::plan::{self, BackupOpts, Listed, SourceSnap};
use zstream_catalog::record::Intent;
use zstream_catalog::view::{Catalog, Problem};

const DS: &str = "tank/home";
const NOW: i64 = 1_798_768_800; // 2027-01-01T02:00:00Z

fn store() -> Store {
    Store::new("s3://offsite/site", None).expect("a store")
}

fn intent(snap: &str, guid: u64, txg: u64) -> Intent {
    Intent {
        store: store().id(),
        guid,
        createtxg: txg,
        dataset: DS.into(),
        snapshot: snap.into(),
        object: object_name(DS, snap),
        time: "2026-12-01T02:00:00Z".into(),
        host: "h".into(),
        run: "0123456789abcdef".into(),
        taken: true,
    }
}

fn source(snaps: &[(&str, u64, u64)]) -> Vec<SourceSnap> {
    snaps
        .iter()
        .map(|(n, g, t)| SourceSnap {
            name: n.to_string(),
            guid: *g,
            createtxg: *t,
            bookmark: false,
        })
        .collect()
}

fn plan_of(
    cat: &Catalog,
    src: &[SourceSnap],
    objects: &[Listed],
    new_catalog: bool,
) -> plan::BackupPlan {
    plan::backup(&plan::BackupIn {
        store: &store(),
        cat,
        objects: Some(objects),
        source: src,
        now: NOW,
        newest_read_back: None,
        opts: &BackupOpts {
            prefix: "zstream-".into(),
            new_catalog,
            ..BackupOpts::default()
        },
    })
}

/// Every record gone (deleted by the store's writer) and two genuine intents put back: their snapshots are at the
/// source with the intents' guids and their objects listed, yet no run destroys or removes them; each is said.
#[test]
fn replayed_intents_in_an_emptied_catalog_destroy_nothing_at_the_source() {
    let its = vec![intent("zstream-a", 11, 100), intent("zstream-b", 12, 101)];
    let cat = Catalog::new(DS, vec![], its, vec![], vec![], false);
    let src = source(&[("zstream-a", 11, 100), ("zstream-b", 12, 101)]);
    let objects: Vec<Listed> = ["zstream-a", "zstream-b"]
        .iter()
        .map(|s| Listed {
            url: format!("s3://offsite/site/{}", object_name(DS, s)),
            snapshot: Some(s.to_string()),
            size: 100,
            storage_class: "STANDARD".into(),
        })
        .collect();
    for new_catalog in [false, true] {
        let p = plan_of(&cat, &src, &objects, new_catalog);
        assert!(p.drop.is_empty(), "new_catalog {new_catalog}: {:?}", p.drop);
        assert!(
            p.remove.is_empty(),
            "new_catalog {new_catalog}: {:?}",
            p.remove
        );
        assert_eq!(
            p.warnings
                .iter()
                .filter(|w| w.contains("left as it is with its object and snapshot"))
                .count(),
            2,
            "{:?}",
            p.warnings
        );
    }
}

/// An entry where a snapshot's record would be that does not open (overwritten with garbage, or unreadable this
/// once): its intent touches nothing, neither the object nor the snapshot.
#[test]
fn an_unreadable_record_keeps_what_its_intent_names() {
    let its = vec![intent("zstream-b", 12, 101)];
    let problems = vec![Problem {
        name: format!("catalog/{DS}@zstream-b.json"),
        why: "its signature does not hold".into(),
    }];
    let cat = Catalog::new(DS, vec![], its, vec![], problems, false);
    let src = source(&[("zstream-b", 12, 101)]);
    let objects = vec![Listed {
        url: format!("s3://offsite/site/{}", object_name(DS, "zstream-b")),
        snapshot: Some("zstream-b".into()),
        size: 100,
        storage_class: "STANDARD".into(),
    }];
    let p = plan_of(&cat, &src, &objects, true);
    assert!(p.drop.is_empty(), "{:?}", p.drop);
    assert!(
        p.remove.iter().all(|r| !r.url.contains("zstream-b")),
        "{:?}",
        p.remove
    );
}
