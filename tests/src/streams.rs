//! `zstream-hash --zfs` on live `zfs send` streams, on any [`Host`]: each stream piped through it as zfs makes
//! it (and into `zfs receive` where a receive applies), kept, then refused by the binary here when a byte is
//! flipped or it is cut.

use crate::data::Gen;
use crate::guest::quote;
use crate::host::{Host, Pool};
use crate::proc::run;

/// A stream that went through `zstream-hash --zfs`: what it reported, and its bytes.
pub struct Sent {
    pub name: String,
    pub json: serde_json::Value,
    pub bytes: Vec<u8>,
}

impl Sent {
    /// A reported guid (`toguid`, `fromguid`) as a number.
    pub fn guid(&self, field: &str) -> u64 {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {field} in {}", self.name, self.json))
            .parse()
            .expect("a decimal guid")
    }

    /// The first BEGIN's feature flags.
    pub fn features(&self) -> u64 {
        self.json["features"].as_u64().expect("features")
    }
}

/// `zfs send SEND | zstream-hash --zfs HASH_ARGS --json ... | tee FILE [| zfs receive RECEIVE]` in the pool's
/// scratch directory on its host, which must succeed; returns what zstream-hash reported and the stream.
#[track_caller]
pub fn send_through(
    p: &Pool,
    name: &str,
    send: &str,
    hash_args: &str,
    receive: Option<&str>,
) -> Sent {
    let h = p.host;
    let dir = format!("{}/streams", p.dir);
    let (json, file) = (format!("{dir}/{name}.json"), format!("{dir}/{name}.zfs"));
    let tail = match receive {
        Some(r) => format!("| tee {} | zfs receive {r}", quote(&file)),
        None => format!("> {}", quote(&file)),
    };
    h.ok(&format!(
        "mkdir -p {d}; zfs send {send} | {hash} --zfs {hash_args} -q --json {j} {tail}",
        d = quote(&dir),
        hash = h.bin("zstream-hash"),
        j = quote(&json),
    ));
    Sent {
        name: name.to_string(),
        json: serde_json::from_slice(&h.read(&json)).expect("zstream-hash's JSON"),
        bytes: h.read(&file),
    }
}

/// The binary here refuses `stream` cut anywhere or with any one byte flipped (exit 3, one clean line), and
/// accepts it whole; `args` are zstream-hash's (`--zfs`, `--saved`).
#[track_caller]
pub fn refuses_damage(name: &str, stream: &[u8], args: &[&str], seed: u64) {
    let hash = crate::bins::bin("zstream-hash");
    let mut a = args.to_vec();
    a.push("-q");
    let n = stream.len();
    assert!(n > 2 * 312, "{name}: a stream of {n} bytes is too short");
    run(&hash, &a, stream).expect_code(0);
    let mut g = Gen::new(seed);
    let mut cuts: Vec<usize> = (0..8).map(|_| g.below(n as u64) as usize).collect();
    cuts.extend([0, 1, 311, 313, n - 313, n - 1]);
    for cut in cuts {
        let r = run(&hash, &a, &stream[..cut]);
        assert_eq!(
            r.code(),
            Some(3),
            "{name} cut at {cut} of {n}: {}",
            r.describe()
        );
        r.expect_clean_stderr("zstream-hash");
    }
    let mut flips: Vec<usize> = (0..12).map(|_| g.below(n as u64) as usize).collect();
    flips.extend([0, 8, 20, 60, 400, n / 2, n - 312, n - 300, n - 1]);
    let mut d = stream.to_vec();
    for at in flips {
        let bit = 1u8 << g.below(8);
        d[at] ^= bit;
        let r = run(&hash, &a, &d);
        d[at] ^= bit;
        assert_eq!(
            r.code(),
            Some(3),
            "{name} with bit {bit:#x} of byte {at} of {n} flipped: {}",
            r.describe()
        );
    }
}

/// The send forms both tiers have (full, -i, -I, -R with a child), each received and compared with its source,
/// its guids checked against the snapshots', and refused damaged. Returns the streams.
pub fn common_forms(h: &dyn Host) -> Vec<Sent> {
    let p = h.pool(512);
    let src = p.ds("src");
    h.ok(&format!("zfs create {src}"));
    h.fill_tree(&p.path("src"), 1);
    h.ok(&format!("zfs snapshot {src}@a"));
    h.write(&p.path("src/new"), &Gen::bytes(99, 200_000));
    h.ok(&format!(
        "rm {}; echo changed > {}",
        p.path("src/f2"),
        p.path("src/f1")
    ));
    h.ok(&format!("zfs snapshot {src}@b"));
    h.write(&p.path("src/later"), b"later\n");
    h.ok(&format!("zfs snapshot {src}@c"));
    let mut out = Vec::new();

    let full = send_through(&p, "full", &format!("{src}@a"), "", Some(&p.ds("dst")));
    assert_eq!(full.json["toname"], format!("{src}@a"));
    assert_eq!(full.guid("toguid"), h.guid(&format!("{src}@a")));
    assert_eq!(full.guid("fromguid"), 0);
    assert_eq!(full.json["compound"], false);
    out.push(full);

    let inc = send_through(
        &p,
        "incremental",
        &format!("-i @a {src}@b"),
        "",
        Some(&format!("-F {}", p.ds("dst"))),
    );
    assert_eq!(inc.guid("toguid"), h.guid(&format!("{src}@b")));
    assert_eq!(inc.guid("fromguid"), h.guid(&format!("{src}@a")));
    // zfs-fuse has no .zfs directory: a clone shows the snapshot's files.
    h.ok(&format!("zfs clone {src}@b {}", p.ds("b")));
    h.same_tree(&p.path("b"), &p.path("dst"));
    out.push(inc);

    // Into a copy that holds @a only: the full stream kept above, received again.
    let copy_a = p.ds("dst-a");
    h.ok(&format!(
        "zfs receive {copy_a} < {}/streams/full.zfs",
        quote(&p.dir)
    ));
    let inter = send_through(
        &p,
        "intermediates",
        &format!("-I @a {src}@c"),
        "",
        Some(&format!("-F {copy_a}")),
    );
    assert_eq!(inter.json["compound"], true);
    h.same_tree(&p.path("src"), &p.path("dst-a"));
    let subs: Vec<&str> = inter.json["substreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["toname"].as_str().unwrap())
        .collect();
    assert_eq!(subs, [format!("{src}@b"), format!("{src}@c")]);
    out.push(inter);

    h.ok(&format!("zfs create {src}/child"));
    h.fill_tree(&p.path("src/child"), 2);
    h.ok(&format!(
        "zfs snapshot -r {src}@d; zfs create {}",
        p.ds("copy")
    ));
    let rec = send_through(
        &p,
        "recursive",
        &format!("-R {src}@d"),
        "",
        Some(&format!("-d {}", p.ds("copy"))),
    );
    assert_eq!(rec.json["compound"], true);
    for s in rec.json["substreams"].as_array().unwrap() {
        let name = s["toname"].as_str().unwrap();
        assert_eq!(s["toguid"], h.guid(name).to_string(), "{name}");
    }
    h.same_tree(&p.path("src"), &p.path("copy/src"));
    h.same_tree(&p.path("src/child"), &p.path("copy/src/child"));
    out.push(rec);

    for (i, s) in out.iter().enumerate() {
        refuses_damage(
            &format!("{} on {}", s.name, h.name()),
            &s.bytes,
            &["--zfs"],
            2026 + i as u64,
        );
    }
    out
}
