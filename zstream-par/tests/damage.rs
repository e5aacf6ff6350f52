//! The damage suite, on the built binary: every kind of damage the decoder promises to survive, at random places
//! (the seed is in every failure message), up to the limit (exact output, exit 0, repairs reported) and one block
//! past it (exit 3, and only the groups before the damaged one written).

use std::path::Path;
use zstream_par::format::{Frame, FRAME_HEADER};
use zstream_tests::data::Gen;
use zstream_tests::proc::{run, Run};

const BIN: &str = env!("CARGO_BIN_EXE_zstream-par");
const DATA: usize = 4;
const PARITY: usize = 2;
const BS: usize = 4096;
const SEEDS: u64 = 6;

struct Encoded {
    input: Vec<u8>,
    bytes: Vec<u8>,
    /// (offset, length, header) of every frame, in stream order.
    frames: Vec<(usize, usize, Frame)>,
}

fn encode(len: usize, interleave: u16) -> Encoded {
    let input = Gen::bytes(len as u64 + interleave as u64, len);
    let args = [
        "--data",
        "4",
        "--parity",
        "2",
        "--block-size",
        "4096",
        "--interleave",
        &interleave.to_string(),
    ];
    let r = run(Path::new(BIN), &args, &input);
    r.expect_code(0);
    let bytes = r.stdout().to_vec();
    let frames = zstream_par::testkit::frames(&bytes);
    Encoded {
        input,
        bytes,
        frames,
    }
}

impl Encoded {
    /// Frames of group `g` (data and parity), in stream order.
    fn group(&self, g: u64) -> Vec<(usize, usize, Frame)> {
        self.frames
            .iter()
            .copied()
            .filter(|(_, _, f)| f.group == g && f.index != 255)
            .collect()
    }
    fn groups(&self) -> u64 {
        self.frames.iter().map(|(_, _, f)| f.group).max().unwrap() + 1
    }
    /// Where group `g` starts in the original.
    fn group_start(&self, g: u64) -> usize {
        (g as usize * DATA * BS).min(self.input.len())
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    FlippedBits,
    Zeroed,
    Overwritten,
    Deleted,
    Inserted,
    Header,
}

/// Damages `k` blocks of group `g` (consecutive frames for ranges), returning the damaged stream.
fn damage(e: &Encoded, kind: Kind, g: u64, k: usize, rng: &mut Gen) -> Vec<u8> {
    let frames = e.group(g);
    assert!(frames.len() >= k, "group {g} has {} frames", frames.len());
    let first = rng.below((frames.len() - k + 1) as u64) as usize;
    let chosen = &frames[first..first + k];
    let mut d = e.bytes.clone();
    // A point strictly inside a frame, so that it is damaged.
    let inside =
        |rng: &mut Gen, (at, len, _): (usize, usize, Frame)| at + rng.below(len as u64) as usize;
    match kind {
        Kind::FlippedBits => {
            for &fr in chosen {
                let i = inside(rng, fr);
                d[i] ^= 1 << rng.below(8);
            }
        }
        Kind::Header => {
            for &(at, _, _) in chosen {
                let i = at + rng.below(FRAME_HEADER as u64) as usize;
                d[i] ^= 1 << rng.below(8);
            }
        }
        Kind::Zeroed | Kind::Overwritten | Kind::Deleted => {
            // From inside the first chosen frame to inside the last: exactly k frames touched (when they are
            // consecutive in the stream, which they are without interleaving).
            let a = inside(rng, chosen[0]);
            let b = inside(rng, chosen[k - 1]).max(a + 1);
            match kind {
                Kind::Zeroed => d[a..b].fill(0),
                Kind::Overwritten => rng.fill(&mut d[a..b]),
                _ => {
                    d.drain(a..b);
                }
            }
        }
        Kind::Inserted => {
            for &fr in chosen.iter().rev() {
                let i = inside(rng, fr).max(fr.0 + 1);
                let junk = Gen::bytes(rng.next_u64(), 1 + rng.below(3 * BS as u64) as usize);
                d.splice(i..i, junk);
            }
        }
    }
    d
}

fn decode(d: &[u8]) -> Run {
    run(Path::new(BIN), &["-d"], d)
}

#[track_caller]
fn expect_repaired(r: &Run, e: &Encoded, what: &str) {
    assert_eq!(r.code(), Some(0), "{what}: {}", r.describe());
    assert!(
        r.stdout() == e.input.as_slice(),
        "{what}: output differs from the original"
    );
    r.expect_clean_stderr("zstream-par");
}

#[track_caller]
fn expect_refused(r: &Run, e: &Encoded, g: u64, what: &str) {
    assert_eq!(r.code(), Some(3), "{what}: {}", r.describe());
    let before = e.group_start(g);
    assert!(
        r.stdout() == &e.input[..before],
        "{what}: wrote {} bytes, the groups before the damaged one are {before}",
        r.stdout().len()
    );
    assert!(r.stderr().contains("lost"), "{what}: {}", r.describe());
    r.expect_clean_stderr("zstream-par");
}

#[test]
fn each_kind_of_damage_up_to_the_limit_is_repaired_and_one_past_is_refused() {
    // 27 blocks: 6 full groups and a final one with 3 blocks and the trailer.
    let e = encode(26 * BS + 1234, 1);
    for kind in [
        Kind::FlippedBits,
        Kind::Zeroed,
        Kind::Overwritten,
        Kind::Deleted,
        Kind::Inserted,
        Kind::Header,
    ] {
        for seed in 0..SEEDS {
            let mut rng = Gen::new(seed * 1000 + kind as u64);
            let g = rng.below(e.groups());
            let what = format!("{kind:?} seed {seed} group {g}");
            let d = damage(&e, kind, g, PARITY, &mut rng);
            let r = decode(&d);
            expect_repaired(&r, &e, &format!("{what}, {PARITY} blocks"));
            assert!(
                !r.stderr().is_empty(),
                "{what}: the damage was not reported"
            );
            let d = damage(&e, kind, g, PARITY + 1, &mut rng);
            expect_refused(
                &decode(&d),
                &e,
                g,
                &format!("{what}, {} blocks", PARITY + 1),
            );
        }
    }
}

#[test]
fn a_cut_tail_is_repaired_while_the_final_group_keeps_enough() {
    let e = encode(26 * BS + 1234, 1);
    let n = e.frames.len();
    for seed in 0..SEEDS {
        let mut rng = Gen::new(seed);
        // Cut inside the PARITY-th frame from the end: PARITY frames lost.
        let (at, len, _) = e.frames[n - PARITY];
        let cut = at + rng.below(len as u64) as usize;
        expect_repaired(
            &decode(&e.bytes[..cut]),
            &e,
            &format!("cut at {cut}, seed {seed}"),
        );
        let (at, len, f) = e.frames[n - PARITY - 1];
        let cut = at + rng.below(len as u64) as usize;
        expect_refused(
            &decode(&e.bytes[..cut]),
            &e,
            f.group,
            &format!("cut at {cut}, seed {seed}"),
        );
    }
    // Cut so deep that whole groups are gone: refused, naming the lost tail.
    let r = decode(&e.bytes[..e.bytes.len() / 2]);
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    assert!(e.input.starts_with(r.stdout()));
}

#[test]
fn duplicated_frames_change_nothing() {
    let e = encode(10 * BS + 7, 1);
    for seed in 0..SEEDS {
        let mut rng = Gen::new(seed);
        let i = 1 + rng.below(e.frames.len() as u64 - 1) as usize;
        let j = (i + 1 + rng.below(4) as usize).min(e.frames.len());
        let (a, b) = (e.frames[i].0, e.frames[j - 1].0 + e.frames[j - 1].1);
        let mut d = e.bytes[..b].to_vec();
        d.extend_from_slice(&e.bytes[a..]);
        let r = decode(&d);
        expect_repaired(&r, &e, &format!("frames {i}..{j} duplicated, seed {seed}"));
    }
}

#[test]
fn interleaving_spreads_a_burst_over_groups() {
    // With D groups interleaved, a burst touching PARITY x D consecutive frames costs each group PARITY blocks;
    // in the last batch, of D' groups, PARITY x D' frames (par-v2.md). 10 full groups and the final one: the last
    // batch holds groups 9 and 10.
    const D: u16 = 3;
    let e = encode(40 * BS, D);
    let last = e
        .frames
        .iter()
        .position(|(_, _, f)| f.index != 255 && f.group >= 9)
        .unwrap();
    let burst = |first: usize, span: usize, what: &str| {
        let (a, _, _) = e.frames[first];
        let (b, blen, _) = e.frames[first + span - 1];
        let mut d = e.bytes.clone();
        d[a + 1..b + blen - 1].fill(0xAA);
        expect_repaired(
            &decode(&d),
            &e,
            &format!("burst over {span} frames from {first}, {what}"),
        );
    };
    for seed in 0..SEEDS {
        let mut rng = Gen::new(seed);
        let span = PARITY * D as usize;
        burst(
            1 + rng.below((last - span) as u64) as usize,
            span,
            &format!("seed {seed}"),
        );
        let span = PARITY * 2;
        let first = last - 1 + rng.below((e.frames.len() - last - span + 2) as u64) as usize;
        burst(first, span, &format!("in the last batch, seed {seed}"));
    }
    // Without interleaving the same burst is fatal.
    let plain = encode(40 * BS, 1);
    let (a, _, f) = plain.frames[1];
    let (b, blen, _) = plain.frames[PARITY * D as usize];
    let mut d = plain.bytes.clone();
    d[a + 1..b + blen - 1].fill(0xAA);
    expect_refused(
        &decode(&d),
        &plain,
        f.group,
        "the same burst without interleaving",
    );
}

#[test]
fn round_trips_at_block_and_group_boundaries() {
    for len in [
        0,
        1,
        BS - 1,
        BS,
        BS + 1,
        DATA * BS - 1,
        DATA * BS,
        DATA * BS + 1,
        3 * DATA * BS,
        3 * DATA * BS + 1,
    ] {
        for interleave in [1, 2] {
            let e = encode(len, interleave);
            let r = decode(&e.bytes);
            expect_repaired(&r, &e, &format!("length {len}, interleave {interleave}"));
            assert!(
                r.stderr().is_empty(),
                "a clean stream reported something: {}",
                r.describe()
            );
            let overhead = e.bytes.len() as f64 / len.max(1) as f64;
            assert!(
                len < 3 * DATA * BS || overhead < 1.0 + PARITY as f64 / DATA as f64 + 0.05,
                "overhead {overhead} at {len}"
            );
            let v = run(Path::new(BIN), &["--verify"], &e.bytes);
            v.expect_code(0);
            assert!(v.stderr().contains("clean"), "{}", v.describe());
        }
    }
}

#[test]
fn verify_reports_health_without_output() {
    let e = encode(26 * BS, 1);
    let mut rng = Gen::new(77);
    let d = damage(&e, Kind::Zeroed, 2, PARITY, &mut rng);
    let r = run(Path::new(BIN), &["--verify", "--json"], &d);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_slice(r.stdout()).unwrap();
    assert_eq!(v["verdict"], "damaged, repairable");
    assert_eq!(v["version"], 2, "the encoder writes par-v2");
    assert_eq!(v["stream_id"], format!("{:016x}", e.frames[0].2.stream_id));
    assert_eq!(v["damaged_blocks"], PARITY as u64);
    assert_eq!(v["worst_group"][0], 2);
    let d = damage(&e, Kind::Zeroed, 4, PARITY + 1, &mut rng);
    let r = run(Path::new(BIN), &["--verify", "--json"], &d);
    r.expect_code(3);
    let v: serde_json::Value = serde_json::from_slice(r.stdout()).unwrap();
    assert_eq!(v["verdict"], "damaged beyond repair");
    assert_eq!(v["unrepairable"][0][0], 4);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["--data", "0"][..],
        &["--parity", "0"],
        &["--data", "200", "--parity", "100"],
        &["--block-size", "100"],
        &["--interleave", "0"],
        &["-d", "--verify"],
        &["--json"],
    ] {
        run(Path::new(BIN), args, b"")
            .expect_code(2)
            .expect_clean_stderr("zstream-par");
    }
    // Not a parity stream at all.
    let r = decode(b"just some text that was never encoded");
    r.expect_code(3).expect_clean_stderr("zstream-par");
    assert!(
        r.stdout().is_empty() && r.stderr().contains("not a parity stream"),
        "{}",
        r.describe()
    );
}

#[test]
fn input_after_the_end_is_read_to_the_end_and_reported() {
    // A decoder that stopped reading at the final group would make the command before it fail (closed pipe).
    let e = encode(5 * BS, 1);
    let dir = std::env::temp_dir().join(format!("zstream-par-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("tail.par");
    let mut d = e.bytes.clone();
    d.extend(Gen::bytes(5, 3 << 20));
    std::fs::write(&f, &d).unwrap();
    let r = zstream_tests::proc::sh(&format!(
        "cat {} | {BIN} -d > {}",
        f.display(),
        dir.join("out").display()
    ));
    r.expect_code(0);
    assert!(r.stderr().contains("no usable frame"), "{}", r.describe());
    assert!(std::fs::read(dir.join("out")).unwrap() == e.input);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_group_lost_whole_is_named_by_its_original_bytes() {
    let e = encode(26 * BS, 1);
    // Every frame of group g deleted: the groups before it are written, then exit 3 naming g's bytes, also when
    // g is the first group (no group has been written yet to tell its size).
    for g in [0u64, 1] {
        let frames = e.group(g);
        let (a, b) = (frames[0].0, frames.last().map(|f| f.0 + f.1).unwrap());
        let mut d = e.bytes.clone();
        d.drain(a..b);
        let r = decode(&d);
        expect_refused(&r, &e, g, &format!("group {g} deleted"));
        let want = format!(
            "original bytes {}..{}",
            g as usize * DATA * BS,
            (g as usize + 1) * DATA * BS
        );
        assert!(
            r.stderr().contains(&want),
            "expected '{want}': {}",
            r.describe()
        );
    }
}

/// The stream with frames `drop` (by position in `frames`) left out.
fn without(e: &Encoded, drop: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, &(at, len, _)) in e.frames.iter().enumerate() {
        if !drop.contains(&k) {
            out.extend_from_slice(&e.bytes[at..at + len]);
        }
    }
    out
}

#[test]
fn a_crafted_jump_in_group_numbers_is_one_lost_range_not_a_line_per_group() {
    let e = encode(5 * DATA * BS, 1);
    // A data frame with valid checksums whose group number is 2^64 - 16 groups on.
    let (at, len, f) = e.group(1)[0];
    let mut far = f;
    far.group = f.group.wrapping_add(u64::MAX - 15);
    let mut crafted = e.bytes.clone();
    crafted.extend_from_slice(&far.encode());
    crafted.extend_from_slice(&e.bytes[at + FRAME_HEADER..at + len]);
    let r = run(Path::new(BIN), &["--verify"], &crafted);
    assert!(r.stderr().lines().count() < 20, "{}", r.describe());
    let r = run(Path::new(BIN), &["--verify", "--json"], &crafted);
    assert!(r.stderr().lines().count() < 20, "{}", r.describe());
}

#[test]
fn format_version_says_what_the_encoder_writes() {
    // The backup cycle records it beside each stream; the stream's own first header says the same (byte 29).
    let r = par(&["--format-version"], b"");
    r.expect_code(0).expect_clean_stderr("zstream-par");
    assert_eq!(r.stdout(), b"2\n");
    let e = encode(100, 1);
    assert_eq!(e.bytes[29], 2);
    for bad in [
        &["--format-version", "-d"][..],
        &["--format-version", "--verify"],
    ] {
        par(bad, b"").expect_code(2);
    }
}

#[test]
fn encode_options_are_refused_when_decoding() {
    for args in [
        &["-d", "--parity", "3"][..],
        &["--verify", "--data", "4"],
        &["-d", "--block-size", "64K"],
    ] {
        let r = run(Path::new(BIN), args, b"");
        r.expect_code(2).expect_clean_stderr("zstream-par");
    }
}

#[test]
fn a_block_size_that_is_not_a_multiple_of_64_is_not_a_frame() {
    let e = encode(DATA * BS, 1);
    let (_, _, f) = e.frames[0];
    let mut odd = f;
    odd.block_size = 100;
    assert!(Frame::decode(&odd.encode()).is_none());
}

#[test]
fn a_failed_group_says_where_output_stopped_and_the_input_is_read_to_the_end() {
    // 64 groups of 16 KiB: a lost group early, then far more than a pipe holds after it.
    let e = encode(64 * DATA * BS, 1);
    let g = e.group(2);
    let idx: Vec<usize> = (0..e.frames.len())
        .filter(|&k| {
            g.iter()
                .take(PARITY + 1)
                .any(|(at, _, _)| *at == e.frames[k].0)
        })
        .collect();
    let damaged = without(&e, &idx);
    let r = run(Path::new(BIN), &["-d"], &damaged);
    r.expect_code(3).expect_clean_stderr("zstream-par");
    let start = e.group_start(2);
    assert!(
        r.stderr()
            .contains(&format!("output stops after original byte {start}")),
        "{}",
        r.describe()
    );
    assert_eq!(r.stdout().len(), start);
    // The command before it in the pipe is not killed by a closed pipe.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("damaged.par");
    std::fs::write(&file, &damaged).unwrap();
    let sh = zstream_tests::proc::sh(&format!(
        "set +e; cat {} | {BIN} -d > /dev/null 2>&1; echo \"${{PIPESTATUS[*]}}\"",
        file.display()
    ));
    assert_eq!(
        String::from_utf8_lossy(sh.stdout()).trim(),
        "0 3",
        "{}",
        sh.describe()
    );
}

#[test]
fn a_lost_trailer_and_neighbouring_blocks_are_said_plainly() {
    // The final group holds 100 bytes and the trailer in four shards of 35 bytes: the trailer is bytes 100..140,
    // the last 5 of shard 2 and all of shard 3. Lose shard 3 and the parity: only the trailer is gone.
    let e = encode(DATA * BS + 100, 1);
    let last = e.groups() - 1;
    let fin = e.group(last);
    assert_eq!(fin.len(), DATA + PARITY);
    assert!(fin.iter().all(|(_, len, _)| *len == 64 + 35));
    let idx: Vec<usize> = (0..e.frames.len())
        .filter(|&k| {
            fin[DATA - 1..]
                .iter()
                .any(|(at, _, _)| *at == e.frames[k].0)
        })
        .collect();
    let r = run(Path::new(BIN), &["--verify"], &without(&e, &idx));
    r.expect_code(3);
    assert!(
        r.stderr().contains("its trailer block is lost"),
        "{}",
        r.describe()
    );
    // Shard 1 too: original bytes 35..70 of the group are lost, and where the original ends (bytes up to 100,
    // in shard 2, which survived) only the trailer could say.
    let idx: Vec<usize> = (0..e.frames.len())
        .filter(|&k| [1, 3, 4, 5].iter().any(|&i| fin[i].0 == e.frames[k].0))
        .collect();
    let r = run(Path::new(BIN), &["--verify"], &without(&e, &idx));
    r.expect_code(3);
    let g = e.group_start(last);
    assert!(
        r.stderr()
            .contains(&format!("original bytes {}..{} are lost", g + 35, g + 70)),
        "{}",
        r.describe()
    );
    // Two neighbouring data blocks of one group lost beyond repair: one range.
    let e = encode(3 * DATA * BS, 1);
    let g = e.group(1);
    let idx: Vec<usize> = (0..e.frames.len())
        .filter(|&k| [0, 1, DATA].iter().any(|&i| g[i].0 == e.frames[k].0))
        .collect();
    let r = run(Path::new(BIN), &["--verify"], &without(&e, &idx));
    r.expect_code(3);
    let (a, b) = (e.group_start(1), e.group_start(1) + 2 * BS);
    assert!(
        r.stderr()
            .contains(&format!("original bytes {a}..{b} are lost")),
        "{}",
        r.describe()
    );
}

/// `zstream-par ARGS` of `input`.
fn par(args: &[&str], input: &[u8]) -> Run {
    run(Path::new(BIN), args, input)
}

#[test]
fn a_nested_par_stream_cannot_take_over_the_decode() {
    // The case: the default encode of (5000 bytes + a whole par stream + 50 KB), its first 200 bytes
    // zeroed (the stream-header frame and the first data frame's header): one lost frame of group 0.
    let inner = par(&[], &Gen::bytes(70, 100_000));
    inner.expect_code(0);
    let mut original = Gen::bytes(71, 5000);
    original.extend_from_slice(inner.stdout());
    original.extend_from_slice(&Gen::bytes(72, 50_000));
    for (name, args) in [
        ("default sizes", vec![]),
        // Equal block sizes inside and out: the nested stream spans many outer blocks.
        (
            "equal block sizes",
            vec!["--data", "4", "--parity", "2", "--block-size", "4096"],
        ),
    ] {
        let (original, inner_args) = if args.is_empty() {
            (original.clone(), vec![])
        } else {
            let inner = par(&args, &Gen::bytes(73, 100_000));
            let mut o = Gen::bytes(74, 5000);
            o.extend_from_slice(inner.stdout());
            o.extend_from_slice(&Gen::bytes(75, 50_000));
            (o, args.clone())
        };
        let outer = par(&inner_args, &original);
        outer.expect_code(0);
        let mut damaged = outer.stdout().to_vec();
        damaged[..200].fill(0);
        let r = par(&["-d"], &damaged);
        r.expect_code(0).expect_clean_stderr("zstream-par");
        assert!(
            r.stdout() == original.as_slice(),
            "{name}: {} bytes came out, not the outer original's {}",
            r.stdout().len(),
            original.len()
        );
        par(&["--verify"], &damaged).expect_code(0);
    }
}

#[test]
fn another_streams_frames_are_refused_unless_the_stream_is_named() {
    let e = encode(3 * DATA * BS, 1);
    let other = par(
        &["--data", "4", "--parity", "2", "--block-size", "4096"],
        &Gen::bytes(99, 2 * DATA * BS),
    );
    let (at, _, _) = e.group(1)[0];
    let mut mixed = e.bytes.clone();
    mixed.splice(at..at, other.stdout().iter().copied());
    // Two streams, neither inside the other's frames: which one is meant cannot be told, and nothing is written.
    let id = format!("{:016x}", e.frames[0].2.stream_id);
    let other_id = format!(
        "{:016x}",
        zstream_par::testkit::frames(other.stdout())[0].2.stream_id
    );
    let r = par(&["-d"], &mixed);
    r.expect_code(3).expect_clean_stderr("zstream-par");
    assert!(r.stdout().is_empty());
    assert!(
        r.stderr().contains(&id)
            && r.stderr().contains(&other_id)
            && r.stderr().contains("--stream"),
        "{}",
        r.describe()
    );
    par(&["--verify"], &mixed).expect_code(3);
    // Named, the stream decodes, and the other's frames are not this stream's damage.
    let r = par(&["-d", "--stream", &id], &mixed);
    r.expect_code(0);
    assert!(r.stdout() == e.input.as_slice());
    assert!(!r.stderr().contains("is damaged"), "{}", r.describe());
    let r = par(&["--verify", "--json", "--stream", &other_id], &mixed);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_slice(r.stdout()).unwrap();
    assert_eq!(v["stream_id"], other_id);
    assert_eq!(v["bytes"], 2 * DATA * BS);
    for bad in [
        &["--stream", &id][..],
        &["-d", "--stream", "12"],
        &["-d", "--stream", "xyz0123456789abc"],
    ] {
        par(bad, b"")
            .expect_code(2)
            .expect_clean_stderr("zstream-par");
    }
    par(&["--threads", "100000"], b"").expect_code(2);
}

#[test]
fn an_input_with_no_frame_is_not_held_whole() {
    // 200 MiB of plain data: more than the probe's window, so memory must stay bounded (the decoder still says
    // it is not a parity stream).
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("head -c 200000000 /dev/zero | /usr/bin/time -f %M {BIN} -d > /dev/null"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let peak_kib: u64 = err
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time's %M");
    assert!(
        peak_kib < 150 << 10,
        "par -d held {peak_kib} KiB of an input with no frame: {err}"
    );
}
