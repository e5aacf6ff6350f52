//! A recursive restore's tree: which datasets at or below DATASET are restored at one snapshot, which are left
//! out because they were made later, which are missing, and whether each restored dataset's children are the ones
//! its record names (`record::Children`, written by a recursive backup). A child whose records were all deleted
//! leaves no name to list, so only its parent's record can tell it is gone.

use crate::record::Children;
use serde::Serialize;
use std::collections::HashMap;

/// One dataset the catalog holds valid backups of: its snapshots in the catalog's order, and what each record
/// says of its children (the same order).
pub struct Node {
    pub dataset: String,
    pub snapshots: Vec<String>,
    pub children: Vec<Option<Children>>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum At {
    /// It has a backup at the snapshot: restored.
    Restore,
    /// Its backups all begin after the snapshot (by name: the cycle's names are times): it was made later.
    Later,
    /// It has earlier backups but none at the snapshot (its run failed that night, or the record is gone).
    Missing,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ChildCheck {
    /// How many children its record names.
    pub recorded: u64,
    /// How many of those the catalog holds valid records of at the snapshot, by count.
    pub found: u64,
    /// The names match the record's digest.
    pub whole: bool,
}

#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub dataset: &'a str,
    pub snapshots: &'a [String],
    pub at: Option<At>,
    /// Only for a restored dataset whose record names its children.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<ChildCheck>,
}

#[derive(Debug, Serialize)]
pub struct Tree<'a> {
    pub dataset: &'a str,
    /// The snapshot asked for, else DATASET's newest; None when DATASET has no backup.
    pub snapshot: Option<&'a str>,
    pub datasets: Vec<Entry<'a>>,
    /// DATASET has a backup at the snapshot, so does every dataset that should, and every record's children are
    /// there.
    pub whole: bool,
    /// What the restore should say although the tree may be whole: DATASET's record at the snapshot counts no
    /// children (written before records counted them), so a child whose records were all deleted would go
    /// unnoticed.
    pub warnings: Vec<String>,
}

/// The tree at `snapshot` (default: `dataset`'s newest) of `nodes`, which hold `dataset` and datasets below it.
pub fn tree<'a>(dataset: &'a str, snapshot: Option<&'a str>, nodes: &'a [Node]) -> Tree<'a> {
    // The tree is DATASET's: its newest snapshot by default, and without its backup at the snapshot there is
    // nothing to restore the rest below.
    let root = nodes.iter().find(|n| n.dataset == dataset);
    let snapshot = snapshot.or_else(|| root.and_then(|n| n.snapshots.last().map(String::as_str)));
    let Some(snap) = snapshot else {
        return Tree {
            dataset,
            snapshot: None,
            datasets: nodes.iter().map(|n| entry(n, None, None)).collect(),
            whole: false,
            warnings: Vec::new(),
        };
    };
    let at_snap = |n: &Node| n.snapshots.iter().position(|s| s == snap);
    // The children each dataset has at the snapshot, as the catalog holds them.
    let mut found: HashMap<&str, Vec<&str>> = HashMap::new();
    for n in nodes.iter().filter(|n| at_snap(n).is_some()) {
        if let Some((parent, _)) = n.dataset.rsplit_once('/') {
            found.entry(parent).or_default().push(&n.dataset);
        }
    }
    let root_at = root.and_then(|n| at_snap(n).map(|i| &n.children[i]));
    let mut whole = root_at.is_some();
    let mut warnings = Vec::new();
    if let Some(None) = root_at {
        warnings.push(format!(
            "{dataset}@{snap}'s record counts no children (written before records counted them): a child whose \
             records were all deleted would not be noticed"
        ));
    }
    let datasets = nodes
        .iter()
        .map(|n| {
            let (at, check) = match at_snap(n) {
                Some(i) => {
                    let check = n.children[i].as_ref().map(|recorded| {
                        let kids = found.get(n.dataset.as_str()).map_or(&[][..], Vec::as_slice);
                        ChildCheck {
                            recorded: recorded.count,
                            found: kids.len() as u64,
                            whole: Children::of(kids) == *recorded,
                        }
                    });
                    (At::Restore, check)
                }
                None if n.snapshots.first().is_some_and(|f| f.as_str() > snap) => (At::Later, None),
                None => (At::Missing, None),
            };
            whole &= at != At::Missing && check.as_ref().is_none_or(|c| c.whole);
            entry(n, Some(at), check)
        })
        .collect();
    Tree {
        dataset,
        snapshot: Some(snap),
        datasets,
        whole,
        warnings,
    }
}

fn entry<'a>(n: &'a Node, at: Option<At>, children: Option<ChildCheck>) -> Entry<'a> {
    Entry {
        dataset: &n.dataset,
        snapshots: &n.snapshots,
        at,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "zstream-20270101T020000Z";
    const S2: &str = "zstream-20270102T020000Z";

    fn node(ds: &str, snaps: &[(&str, Option<&[&str]>)]) -> Node {
        Node {
            dataset: ds.into(),
            snapshots: snaps.iter().map(|(s, _)| s.to_string()).collect(),
            children: snaps.iter().map(|(_, c)| c.map(Children::of)).collect(),
        }
    }

    fn at<'a>(t: &'a Tree, ds: &str) -> &'a Entry<'a> {
        t.datasets.iter().find(|e| e.dataset == ds).expect("listed")
    }

    #[test]
    fn a_whole_tree_is_whole() {
        let nodes = [
            node("tank/home", &[(S1, Some(&["tank/home/a", "tank/home/b"]))]),
            node("tank/home/a", &[(S1, Some(&[]))]),
            node("tank/home/b", &[(S1, Some(&[]))]),
        ];
        let t = tree("tank/home", None, &nodes);
        assert_eq!(t.snapshot, Some(S1));
        assert!(t.whole);
        assert_eq!(
            at(&t, "tank/home").children,
            Some(ChildCheck {
                recorded: 2,
                found: 2,
                whole: true
            })
        );
    }

    #[test]
    fn a_child_whose_records_were_all_deleted_is_missed() {
        // tank/home/b's records are gone: nothing lists it, only its parent's record can tell.
        let nodes = [
            node("tank/home", &[(S1, Some(&["tank/home/a", "tank/home/b"]))]),
            node("tank/home/a", &[(S1, Some(&[]))]),
        ];
        let t = tree("tank/home", None, &nodes);
        assert!(!t.whole);
        assert_eq!(
            at(&t, "tank/home").children,
            Some(ChildCheck {
                recorded: 2,
                found: 1,
                whole: false
            })
        );
    }

    #[test]
    fn a_grandchild_gone_is_missed_by_its_own_parent() {
        let nodes = [
            node("tank", &[(S1, Some(&["tank/home"]))]),
            node("tank/home", &[(S1, Some(&["tank/home/a"]))]),
        ];
        let t = tree("tank", Some(S1), &nodes);
        assert!(!t.whole);
        assert!(at(&t, "tank").children.as_ref().unwrap().whole);
        assert!(!at(&t, "tank/home").children.as_ref().unwrap().whole);
    }

    #[test]
    fn a_same_count_of_other_names_is_not_whole() {
        // Another dataset's records cannot stand in for a deleted child: the digest binds the names.
        let nodes = [
            node("tank/home", &[(S1, Some(&["tank/home/a"]))]),
            node("tank/home/x", &[(S1, Some(&[]))]),
        ];
        let t = tree("tank/home", None, &nodes);
        assert!(!t.whole);
        assert_eq!(
            at(&t, "tank/home").children,
            Some(ChildCheck {
                recorded: 1,
                found: 1,
                whole: false
            })
        );
    }

    #[test]
    fn later_missing_and_unrecorded_children() {
        let nodes = [
            // A record from before children were recorded: nothing to compare.
            node("tank/home", &[(S1, None), (S2, Some(&["tank/home/a"]))]),
            node("tank/home/a", &[(S1, None), (S2, Some(&[]))]),
            // Made after S1.
            node("tank/home/new", &[(S2, Some(&[]))]),
        ];
        let t = tree("tank/home", Some(S1), &nodes);
        assert!(t.whole);
        assert_eq!(at(&t, "tank/home/new").at, Some(At::Later));
        assert_eq!(at(&t, "tank/home").children, None);
        // At S2, tank/home/new has a record but tank/home's names only tank/home/a: a child the record does
        // not name is as much a disagreement as one it names and the catalog lacks.
        let t = tree("tank/home", None, &nodes);
        assert_eq!(t.snapshot, Some(S2));
        assert!(!t.whole);
        // A child with earlier backups and none at the snapshot: missing.
        let nodes = [
            node("tank/home", &[(S1, None), (S2, None)]),
            node("tank/home/a", &[(S1, None)]),
        ];
        let t = tree("tank/home", None, &nodes);
        assert_eq!(at(&t, "tank/home/a").at, Some(At::Missing));
        assert!(!t.whole);
    }

    #[test]
    fn a_tree_whose_root_has_no_backup_at_the_snapshot_is_not_whole() {
        // Every record of the root deleted, or only those at or before the snapshot: its children alone are no
        // restore of the tree.
        let nodes = [node("tank/home/a", &[(S1, Some(&[]))])];
        assert!(!tree("tank/home", Some(S1), &nodes).whole);
        let nodes = [
            node("tank/home", &[(S2, Some(&["tank/home/a"]))]),
            node("tank/home/a", &[(S1, Some(&[])), (S2, Some(&[]))]),
        ];
        let t = tree("tank/home", Some(S1), &nodes);
        assert_eq!(at(&t, "tank/home").at, Some(At::Later));
        assert!(!t.whole);
        // No nodes at all, a snapshot asked for: nothing is whole.
        assert!(!tree("tank/home", Some(S1), &[]).whole);
    }

    #[test]
    fn a_root_record_without_children_is_warned_of() {
        let nodes = [node("tank/home", &[(S1, None), (S2, Some(&[]))])];
        let t = tree("tank/home", Some(S1), &nodes);
        assert!(t.whole);
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(tree("tank/home", None, &nodes).warnings.is_empty());
    }

    #[test]
    fn no_backup_of_the_root_names_no_snapshot() {
        let nodes = [node("tank/home/a", &[(S1, None)])];
        let t = tree("tank/home", None, &nodes);
        assert_eq!(t.snapshot, None);
        assert!(!t.whole);
    }
}
