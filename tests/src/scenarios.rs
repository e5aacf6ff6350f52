//! The backup cycle's scenarios, written once against a [`Site`] and run on both tiers: on zfs-fuse
//! (tests/tests/cycle.rs) and on real OpenZFS 2.3 in the guest (tests/tests/guest_cycle.rs).

use crate::cycle::{day, Ground, Site};
use crate::guest::quote;
use crate::proc::Run;

/// What the tier's ZFS has, as the scenarios expect the scripts to find it (detected by them, never told).
#[derive(Clone, Copy, Debug)]
pub struct Tier {
    /// `zfs send -L -c` (OpenZFS 0.7 and later; not zfs-fuse).
    pub blocks_as_stored: bool,
    /// `zfs bookmark` (OpenZFS 0.6.4 and later, with the pool's feature; not zfs-fuse).
    pub bookmarks: bool,
}

pub const ZFS_FUSE: Tier = Tier {
    blocks_as_stored: false,
    bookmarks: false,
};
pub const OPENZFS: Tier = Tier {
    blocks_as_stored: true,
    bookmarks: true,
};

/// How many times `needle` occurs in the run's stderr.
pub fn said(r: &Run, needle: &str) -> usize {
    r.stderr().matches(needle).count()
}

#[track_caller]
pub fn ok(r: &Run) -> &Run {
    r.expect_code(0)
}

/// The snapshot name of a record.
pub fn snap(r: &serde_json::Value) -> String {
    r["snapshot"].as_str().expect("snapshot").to_string()
}

/// `zfs list -H -o name -t TYPE -d 1 DATASET`, names after `@` or `#`.
pub fn listed<G: Ground + ?Sized>(site: &Site<G>, kind: &str, dataset: &str) -> Vec<String> {
    site.host()
        .ok(&format!(
            "zfs list -H -o name -t {kind} -d 1 {}",
            quote(dataset)
        ))
        .lines()
        .map(|l| l.split_once(['@', '#']).map_or(l, |(_, s)| s).to_string())
        .collect()
}

/// Snapshots of the site's dataset that carry a `zfs hold` (userrefs > 0).
pub fn held<G: Ground + ?Sized>(site: &Site<G>) -> Vec<String> {
    site.host()
        .ok(&format!(
            "zfs list -H -o name,userrefs -t snapshot -d 1 {}",
            quote(&site.dataset)
        ))
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, refs)| *refs != "0")
        .map(|(n, _)| n.split_once('@').map_or(n, |(_, s)| s).to_string())
        .collect()
}

/// The cycle end to end over six nights: a full, two incrementals, a second full when --full-every (3 days) is
/// due, two incrementals; the first cycle pruned (--keep-cycles 1) once the second has its full; zstream-verify
/// with the keys (every record against its object, two read back whole); restores of the newest point and of an
/// older one, compared file by file with the source as it was; the newest backed-up snapshot held for the store
/// alone, and `zfs destroy` refused on it; where the tier has bookmarks, the store's one bookmark is of the newest
/// backup. Where the tier's zfs sends no block as stored or has no bookmarks, each run says so once.
pub fn cycle<G: Ground + ?Sized>(site: &Site<G>, tier: Tier) {
    let h = site.host();
    let mut day4 = None;
    for d in 0..6 {
        site.change(d);
        let r = site.backup(
            &day(d),
            &["--full-every", "3d", "--keep-cycles", "1", "--json"],
        );
        ok(&r);
        let out: serde_json::Value = serde_json::from_slice(r.stdout()).expect("backup --json");
        let want = if d % 3 == 0 { "full" } else { "incremental" };
        assert_eq!(out["record"]["kind"], want, "day {d}: {}", r.describe());
        assert_eq!(
            said(&r, "sends no block as stored"),
            usize::from(!tier.blocks_as_stored),
            "{}",
            r.describe()
        );
        assert_eq!(
            said(&r, "no bookmarks here"),
            usize::from(!tier.bookmarks),
            "{}",
            r.describe()
        );
        if d == 3 {
            assert!(r.stderr().contains("prune: cycle"), "{}", r.describe());
        }
        if d == 4 {
            day4 = Some((snap(&out["record"]), site.keep_copy("day4")));
        }
    }
    let records = site.records();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["full", "incremental", "incremental"],
        "the first cycle is pruned, the second stays"
    );
    assert_eq!(site.objects().len(), 3, "one object a record");

    // The drill: every record against its object, two read back whole.
    site.drill(&day(6), 2);

    // The newest point and an older one, file by file.
    ok(&site.restore(&day(6), "src", "newest", &[]));
    h.same_tree(&site.mounted("src"), &site.mounted("newest"));
    let (older, copy) = day4.expect("day 4's copy");
    ok(&site.restore(&day(6), &format!("src@{older}"), "older", &[]));
    site.same_as(&copy, "older");

    // The store's hold is on the newest backup alone, and ZFS honours it.
    let newest = snap(records.last().unwrap());
    assert_eq!(held(site), std::slice::from_ref(&newest));
    let r = h.sh(&format!(
        "zfs destroy {}",
        quote(&format!("{}@{newest}", site.dataset))
    ));
    assert_ne!(r.code(), Some(0), "a held snapshot was destroyed");
    assert!(listed(site, "snapshot", &site.dataset).contains(&newest));
    if tier.bookmarks {
        let marks = listed(site, "bookmark", &site.dataset);
        assert_eq!(
            marks.len(),
            1,
            "the store's bookmark of the newest alone: {marks:?}"
        );
        assert!(marks[0].ends_with(&format!("_{newest}")), "{marks:?}");
        let guid = |name: String| h.ok(&format!("zfs get -H -p -o value guid {}", quote(&name)));
        assert_eq!(
            guid(format!("{}#{}", site.dataset, marks[0])),
            guid(format!("{}@{newest}", site.dataset))
        );
    }
}

/// `--recursive`: a dataset and its children, each its own chain from one `zfs snapshot -r`: every dataset's
/// records name the same snapshot; no run says children are left out; a child made later begins with a full; the
/// tree restores whole (`zstream-restore --recursive`), each dataset byte for byte, and at the first night the
/// later child is said to be left out (made after) while the rest restore. Each record counts its children; once
/// someone without the keys deletes every record of a child, the tree's restore says so and exits 3.
pub fn tree<G: Ground + ?Sized>(site: &Site<G>) {
    let h = site.host();
    let ds = site.dataset.clone();
    h.ok(&format!(
        "zfs create {a}; zfs create {b}",
        a = quote(&format!("{ds}/a")),
        b = quote(&format!("{ds}/a/b"))
    ));
    for rel in ["src", "src/a", "src/a/b"] {
        site.change_in(rel, 0);
    }
    let r = site.backup(&day(0), &["--recursive"]);
    ok(&r);
    assert!(
        !r.stderr().contains("are not in this backup"),
        "{}",
        r.describe()
    );
    let first: Vec<String> = [ds.clone(), format!("{ds}/a"), format!("{ds}/a/b")]
        .iter()
        .map(|d| {
            let recs = site.records_of(d);
            assert_eq!(recs.len(), 1, "{d}: {recs:?}");
            snap(&recs[0])
        })
        .collect();
    assert!(
        first.iter().all(|s| *s == first[0]),
        "one snapshot name: {first:?}"
    );

    h.ok(&format!("zfs create {}", quote(&format!("{ds}/c"))));
    for rel in ["src", "src/a", "src/a/b", "src/c"] {
        site.change_in(rel, 1);
    }
    ok(&site.backup(&day(1), &["--recursive"]));
    let kinds = |d: &str| -> Vec<String> {
        site.records_of(d)
            .iter()
            .map(|r| r["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(&ds), ["full", "incremental"]);
    assert_eq!(kinds(&format!("{ds}/a/b")), ["full", "incremental"]);
    assert_eq!(
        kinds(&format!("{ds}/c")),
        ["full"],
        "a child made later begins with a full"
    );

    ok(&site.restore(&day(2), "src", "back", &["--recursive"]));
    for rel in ["", "/a", "/a/b", "/c"] {
        h.same_tree(
            &site.mounted(&format!("src{rel}")),
            &site.mounted(&format!("back{rel}")),
        );
    }
    let r = site.restore(
        &day(2),
        &format!("src@{}", first[0]),
        "old",
        &["--recursive"],
    );
    ok(&r);
    assert!(
        r.stderr()
            .contains(&format!("{ds}/c: its backups begin after")),
        "{}",
        r.describe()
    );
    h.ok(&format!("zfs list {}", quote(&site.ds("old/a/b"))));
    assert_ne!(
        h.sh(&format!("zfs list {}", quote(&site.ds("old/c"))))
            .code(),
        Some(0)
    );

    // The children each record counts: the direct ones that hold its snapshot.
    let counts = |d: &str| -> Vec<u64> {
        site.records_of(d)
            .iter()
            .map(|r| {
                r["children"]["count"]
                    .as_u64()
                    .expect("a recursive record counts its children")
            })
            .collect()
    };
    assert_eq!(counts(&ds), [1, 2], "{ds}: a, then a and c");
    assert_eq!(counts(&format!("{ds}/a")), [1, 1]);
    assert_eq!(counts(&format!("{ds}/a/b")), [0, 0]);

    // Every record of a grandchild deleted: nothing lists it any more, its parent's record still counts it.
    site.delete_entries_of(&format!("{ds}/a/b"));
    let r = site.restore(&day(2), "src", "gone", &["--recursive"]);
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    assert!(
        r.stderr().contains(&format!(
            "{ds}/a@{}: ERROR: its record names 1 direct child dataset(s); the catalog holds valid backups at",
            snap(&site.records()[1])
        )),
        "{}",
        r.describe()
    );
    // The rest of the tree is restored all the same.
    h.same_tree(&site.mounted("src/c"), &site.mounted("gone/c"));

    // Every record of the tree's root deleted: its children alone are no restore of the tree, at the snapshot
    // asked for either.
    let newest = snap(&site.records()[1]);
    site.delete_entries_of(&ds);
    let r = site.restore(
        &day(2),
        &format!("src@{newest}"),
        "rootless",
        &["--recursive"],
    );
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    assert!(
        r.stderr()
            .contains(&format!("{ds}: no valid backup at @{newest}")),
        "{}",
        r.describe()
    );
    assert_ne!(
        h.sh(&format!("zfs list {}", quote(&site.ds("rootless/c"))))
            .code(),
        Some(0),
        "nothing of the tree is restored without its root"
    );
}
