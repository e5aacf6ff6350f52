//! The testkits (docs/formats/testkit/par/v1/ and v2/): damaged, crafted and clean parity streams of each format
//! version, one file each with what decoding it must do, for this implementation's tests and for any other's.
//! Each file is a text header, a blank line, then the stream's bytes:
//!
//! ```text
//! expect: success | failure
//! output: <bytes> <sha256 hex>   (what `zstream-par -d` writes: the whole original, or the groups before the
//!                                 first one that cannot be repaired; on a trailer mismatch, everything)
//! args: --stream <id>            (only where the decoder is told which stream to decode)
//! comment: <what the case is>
//! ```
//!
//! "failure" exits 3. Most streams use the vectors' parameters (3 data + 2 parity blocks of 64 bytes), so each is
//! a few KiB; the cases of issue 23 (nested streams, bursts at the stream's end) use what they need. The expected
//! outcomes are the specs' (par-v1.md, par-v2.md), worked out in each case's comment. A test fails when the
//! committed files and this generator disagree; `cargo run -p zstream-par --example par-testkit
//! docs/formats/testkit/par` rewrites them.

use crate::encode::{self, Params};
use crate::format::{self, Frame, Mask, FRAME_HEADER, V1, V2};
use crate::vectors::{input, params, STREAM_ID};
use sha2::{Digest, Sha256};

/// The stream of `original` with parameters `p` and id `id`.
pub fn encoded(p: Params, original: &[u8], id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode::encode(original, &mut out, p, 0, id, |_| {}).expect("encoding a testkit case");
    out
}

/// (offset, length, header) of every frame of a fresh (undamaged) stream; for tests that damage frames.
pub fn frames(s: &[u8]) -> Vec<(usize, usize, Frame)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let f = Frame::decode(&s[at..]).expect("a fresh stream is all frames");
        let len = FRAME_HEADER + f.payload_len as usize;
        v.push((at, len, f));
        at += len;
    }
    v
}

/// The stream without the frames for which `drop(frame)` holds.
fn without(s: &[u8], drop: impl Fn(&Frame) -> bool) -> Vec<u8> {
    frames(s)
        .into_iter()
        .filter(|(_, _, f)| !drop(f))
        .flat_map(|(at, len, _)| s[at..at + len].to_vec())
        .collect()
}

/// (offset, length) of frame `index` of group `group` (255: the stream-header frame).
fn frame_at(s: &[u8], group: u64, index: u8) -> (usize, usize) {
    frames(s)
        .into_iter()
        .find(|(_, _, f)| f.group == group && f.index == index)
        .map(|(at, len, _)| (at, len))
        .expect("the frame")
}

/// Damages frames' headers (a bit of their group numbers), so that their checksums fail.
fn break_headers(s: &mut [u8], which: &[(u64, u8)]) {
    let at: Vec<usize> = which.iter().map(|&(g, i)| frame_at(s, g, i).0).collect();
    for a in at {
        s[a + 20] ^= 0x40;
    }
}

/// Bytes that are neither the vectors' pattern nor a frame: an arithmetic progression mod 253.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i * 131 + seed * 7919) % 253) as u8)
        .collect()
}

/// `before` junk bytes, a whole inner stream (version `v`, the vectors' parameters, of 300 bytes), `after` junk
/// bytes: the original of an outer stream that holds a nested one.
fn with_inner(v: u8, before: usize, after: usize) -> Vec<u8> {
    let mut o = junk(1, before);
    o.extend(encoded(params(v), &input(300), INNER_ID));
    o.extend(junk(2, after));
    o
}

const INNER_ID: u64 = 0x1111_2222_3333_4444;

/// One case: name, expect, original, bytes of it written, args, comment, stream.
struct Case {
    name: &'static str,
    success: bool,
    output: Vec<u8>,
    args: Option<String>,
    comment: String,
    stream: Vec<u8>,
}

fn case(name: &'static str, success: bool, output: &[u8], comment: &str, stream: Vec<u8>) -> Case {
    Case {
        name,
        success,
        output: output.to_vec(),
        args: None,
        comment: comment.to_string(),
        stream,
    }
}

/// Every case of format version `version`: (file name, file contents).
pub fn generate(version: u8) -> Vec<(String, Vec<u8>)> {
    let mut cases = common(version);
    cases.extend(nested(version));
    cases.extend(bursts(version));
    cases
        .into_iter()
        .map(|c| {
            let mut bytes = format!(
                "expect: {}\noutput: {} {}\n",
                if c.success { "success" } else { "failure" },
                c.output.len(),
                hex::encode(Sha256::digest(&c.output))
            );
            if let Some(a) = &c.args {
                bytes += &format!("args: {a}\n");
            }
            bytes += &format!("comment: {}\n\n", c.comment);
            let mut bytes = bytes.into_bytes();
            bytes.extend_from_slice(&c.stream);
            (c.name.to_string(), bytes)
        })
        .collect()
}

/// The cases every version has: damage within and beyond parity, foreign frames, forged fields.
fn common(v: u8) -> Vec<Case> {
    // 500 bytes: groups 0 and 1 of three 64-byte blocks (192 bytes each), then the final group 2 with the other
    // 116 bytes and the trailer (version 1: blocks of 64 and 52 and the trailer; version 2: three shards of 52).
    const LEN: usize = 500;
    let p = params(v);
    let original = input(LEN);
    let good = encoded(p, &original, STREAM_ID);
    let mut zeroed = good.clone();
    let (at, len) = frame_at(&good, 0, 1);
    zeroed[at..at + len].fill(0);
    let mut header_flipped = good.clone();
    break_headers(&mut header_flipped, &[(1, 0)]);
    let mut inserted = good.clone();
    let (at, _) = frame_at(&good, 1, 0);
    inserted.splice(at..at, (0..100u8).map(|i| i.wrapping_mul(37)));
    let mut deleted = good.clone();
    let (at, _) = frame_at(&good, 1, 2);
    deleted.drain(at + 80..at + 100);
    let mut duplicated = good.clone();
    let (at, len) = frame_at(&good, 0, 2);
    duplicated.splice(at + len..at + len, good[at..at + len].to_vec());
    let other_id = STREAM_ID ^ 0xffff;
    let mut foreign = good.clone();
    let (at, _) = frame_at(&good, 1, 0);
    foreign.splice(at..at, encoded(p, &input(300), other_id));
    // Another stream's frame header alone, claiming a payload of 4096 bytes that would cover this stream's next
    // frames: a decoder searches on from the byte after its marker, so it loses nothing.
    let mut foreign_header = good.clone();
    let (_, _, f) = frames(&good)[3];
    let mut h = f;
    h.stream_id = other_id;
    h.block_size = 4096;
    h.shard_len = 4096;
    h.payload_len = 4096;
    if v == V1 {
        h.last_len = 4096;
    }
    foreign_header.splice(at..at, h.encode());
    // Frames 1.0, 1.1 and 1.2 inside the intact payload of another stream's frame: a decoder that skipped that
    // frame whole would lose three blocks of group 1.
    let mut inside_foreign = good.clone();
    let (a, _) = frame_at(&good, 1, 0);
    let (b, len) = frame_at(&good, 1, 2);
    let mut body = good[a..b + len].to_vec();
    body.resize(4096, 0x33);
    let mut h = frames(&good)[3].2;
    h.stream_id = other_id;
    h.block_size = 4096;
    h.shard_len = 4096;
    h.payload_len = 4096;
    h.flags = 0;
    if v == V1 {
        (h.group_blocks, h.last_len) = (h.data, 4096);
    }
    h.payload_sum = format::payload_sum(&body);
    inside_foreign.splice(a..b + len, h.encode().into_iter().chain(body));
    let forged_trailer = forge_trailer(&good, v, LEN as u64);
    // Every frame says B = 100 (not a multiple of 64), with valid checksums: no frame is usable.
    let odd_block: Vec<u8> = frames(&good)
        .into_iter()
        .flat_map(|(at, len, f)| {
            let mut h = f;
            h.block_size = 100;
            let mut v = h.encode().to_vec();
            v.extend_from_slice(&good[at + FRAME_HEADER..at + len]);
            v
        })
        .collect();
    let by_id = Some(format!("--stream {STREAM_ID:016x}"));
    vec![
        case("success-clean", true, &original, "an intact stream", good.clone()),
        case(
            "success-frame-zeroed",
            true,
            &original,
            "group 0's data block 1 zeroed, header and all",
            zeroed,
        ),
        case(
            "success-two-lost",
            true,
            &original,
            "two data blocks of group 1 missing (its parity is 2)",
            without(&good, |f| f.group == 1 && f.index < 2),
        ),
        case(
            "failure-three-lost",
            false,
            &original[..192],
            "three blocks of group 1 missing: output stops after group 0",
            without(&good, |f| f.group == 1 && f.index < 3),
        ),
        case(
            "success-header-damaged",
            true,
            &original,
            "a bit of group 1 block 0's header flipped",
            header_flipped,
        ),
        case(
            "success-bytes-inserted",
            true,
            &original,
            "100 bytes inserted before group 1",
            inserted,
        ),
        case(
            "success-bytes-deleted",
            true,
            &original,
            "20 bytes deleted inside group 1 block 2",
            deleted,
        ),
        case(
            "success-frame-duplicated",
            true,
            &original,
            "group 0 block 2 twice",
            duplicated,
        ),
        case(
            "failure-foreign-frames",
            false,
            b"",
            "another stream's frames pasted in before group 1: two streams, neither inside the other's frames, so \
             which to decode cannot be told (nothing is written)",
            foreign.clone(),
        ),
        Case {
            args: by_id.clone(),
            ..case(
                "success-foreign-frames-by-id",
                true,
                &original,
                "the same, told which stream to decode: the other's frames are skipped",
                foreign,
            )
        },
        Case {
            args: by_id,
            ..case(
                "success-foreign-header",
                true,
                &original,
                "another stream's frame header alone before group 1, claiming a 4096-byte payload over this \
                 stream's next frames: the search goes on from the byte after its marker",
                foreign_header,
            )
        },
        Case {
            args: Some(format!("--stream {STREAM_ID:016x}")),
            ..case(
                "success-frames-inside-foreign-frame",
                true,
                &original,
                "frames 1.0 to 1.2 inside the intact payload of another stream's frame (the rest of it filler), \
                 told which stream to decode: the search goes on from the byte after the other frame's marker \
                 and finds them",
                inside_foreign.clone(),
            )
        },
        case(
            "failure-frames-inside-foreign-frame",
            false,
            b"",
            "the same, not told: this stream's frames lie inside an intact payload of the other, so this stream \
             is nested in it; the other one, a single frame, is decoded and cannot be (nothing is written)",
            inside_foreign,
        ),
        case(
            "success-stream-header-lost",
            true,
            &original,
            "the stream-header frame missing",
            without(&good, |f| f.index == 255),
        ),
        case(
            "failure-cut-tail",
            false,
            &original[..384],
            "the final group missing: the tail is lost, output stops after group 1",
            without(&good, |f| f.group == 2),
        ),
        case(
            "failure-trailer-forged",
            false,
            &original,
            "the trailer's digest replaced: everything is written, then the check fails",
            forged_trailer,
        ),
        case(
            "failure-block-size-100",
            false,
            b"",
            "every frame says a block size that is not a multiple of 64",
            odd_block,
        ),
        case("failure-not-a-stream", false, b"", "no frame at all", original.clone()),
    ]
}

/// The stream with the trailer's digest replaced (its payload and header checksums made to hold again): every
/// block is intact, so nothing is repaired, and only the trailer check can tell.
fn forge_trailer(good: &[u8], v: u8, total: u64) -> Vec<u8> {
    let mut forged = good.to_vec();
    let fake = format::trailer_payload(total, &[0x5a; 32]);
    let fs = frames(good);
    // The frame holding the trailer's last byte: version 1's trailer block, version 2's last data shard (the
    // vectors' final group has shards of 52 bytes, so the trailer lies wholly in it).
    let (at, len, f) = *fs
        .iter()
        .find(|(_, _, f)| match v {
            V1 => f.flags & format::FLAG_TRAILER != 0,
            _ => f.is_final_group() && f.index + 1 == f.data,
        })
        .expect("a trailer");
    let body = &mut forged[at + FRAME_HEADER..at + len];
    if v == V2 {
        let m = Mask::new(f.stream_id);
        m.apply(body);
        let n = body.len();
        body[n - fake.len()..].copy_from_slice(&fake);
        m.apply(body);
    } else {
        body.copy_from_slice(&fake);
    }
    let mut h = f;
    h.payload_sum = format::payload_sum(body);
    forged[at..at + FRAME_HEADER].copy_from_slice(&h.encode());
    forged
}

/// Issue 23's nested streams: an outer stream whose original holds a whole inner stream, with the outer's first
/// frames damaged. Version 1 shows the inner stream's frames: the decoder decodes the outer one when an inner
/// frame lies inside an intact outer payload, and refuses when none does. Version 2 masks its payloads: only the
/// outer stream is ever seen.
fn nested(v: u8) -> Vec<Case> {
    // d = 4: none of its parity rows is 1 for any data block, so no parity payload repeats a data block's bytes
    // (with d = 3 the first row is all 1: parity block 0 is the XOR of the data blocks, and where only block 0
    // has bytes it repeats them, inner frames included).
    let outer = |b: u32, d: u16| Params {
        data: 4,
        parity: 2,
        block_size: b,
        interleave: d,
        version: v,
    };
    let shown = v == V2;
    let mut cases = Vec::new();

    // 1: D = 2 and a single (final) group, the stream-header frame's and frame 0.0's headers damaged; the inner
    // stream runs from block 0 into block 1, whose frame is intact.
    let o = with_inner(v, 200, 300);
    let mut s = encoded(outer(1024, 2), &o, STREAM_ID);
    break_headers(&mut s, &[(0, 255), (0, 0)]);
    cases.push(case(
        "success-nested-final-group-only",
        true,
        &o,
        "d = 4, p = 2, B = 1024, D = 2, one (final) group; the stream-header frame's and frame 0.0's headers damaged; a whole \
         inner stream at original byte 200, running into block 1, whose payload holds: the inner stream is shown \
         nested and the outer one is decoded, frame 0.0 rebuilt",
        s,
    ));

    // 2: the same with the inner stream wholly inside block 0.
    let o = with_inner(v, 100, 4000);
    let mut s = encoded(outer(4096, 2), &o, STREAM_ID);
    break_headers(&mut s, &[(0, 255), (0, 0)]);
    cases.push(if shown {
        case(
            "success-nested-in-damaged-block",
            true,
            &o,
            "d = 4, p = 2, B = 4096, D = 2, the inner stream wholly inside block 0, whose header is damaged (and the \
             stream-header frame's): version 2's mask hides the inner stream, block 0 is rebuilt",
            s,
        )
    } else {
        case(
            "failure-nested-in-damaged-block",
            false,
            b"",
            "d = 4, p = 2, B = 4096, D = 2, the inner stream wholly inside block 0, whose header is damaged (and the \
             stream-header frame's): no inner frame lies inside an intact outer payload (with d = 4 no parity \
             payload repeats a data block's bytes), so which stream is the outer one cannot be told, and nothing \
             is written",
            s,
        )
    });

    // 3: the outer stream's first 160 bytes deleted (its stream-header frame and frame 0.0's header), which puts
    // the inner stream, at original byte 0, at input byte 0; it runs on through blocks 1 and 2.
    let o = with_inner(v, 0, 2000);
    let mut s = encoded(outer(512, 1), &o, STREAM_ID);
    s.drain(..160);
    cases.push(case(
        "success-nested-at-byte-0",
        true,
        &o,
        "d = 4, p = 2, B = 512: the first 160 bytes deleted, so the inner stream's first frame is at input byte 0; inner frames \
         lie inside the intact payloads of blocks 1 and 2, so the outer stream is decoded",
        s,
    ));

    // 4: the same with B = 4096: the inner stream wholly inside block 0.
    let o = with_inner(v, 0, 4000);
    let mut s = encoded(outer(4096, 1), &o, STREAM_ID);
    s.drain(..160);
    cases.push(if shown {
        case(
            "success-nested-at-byte-0-in-block-0",
            true,
            &o,
            "d = 4, p = 2, B = 4096: the first 160 bytes deleted; the inner stream is wholly inside block 0, which version 2's \
             mask hides: the outer stream is decoded",
            s,
        )
    } else {
        case(
            "failure-nested-at-byte-0-in-block-0",
            false,
            b"",
            "d = 4, p = 2, B = 4096: the first 160 bytes deleted, the inner stream at input byte 0 and wholly inside block 0, \
             whose header is gone: which stream is the outer one cannot be told (a frame at byte 0 decides \
             nothing)",
            s,
        )
    });

    // 5: D = 2 over several groups, at most p frames of each group lost, the inner stream (itself interleaved)
    // across many outer blocks.
    let mut o = junk(3, 300);
    o.extend(encoded(
        Params {
            interleave: 2,
            ..params(v)
        },
        &input(2000),
        INNER_ID,
    ));
    o.extend(junk(4, 3000));
    let mut s = encoded(outer(512, 2), &o, STREAM_ID);
    break_headers(&mut s, &[(0, 255), (0, 0), (1, 0), (0, 1), (1, 1)]);
    cases.push(case(
        "success-nested-interleaved",
        true,
        &o,
        "d = 4, p = 2, B = 512, D = 2, several groups; the stream-header frame and the first four frames (0.0, 1.0, 0.1, 1.1: \
         two of each of groups 0 and 1) have damaged headers; an interleaved inner stream spans many outer \
         blocks, and inner frames inside intact outer payloads show it nested: all is repaired",
        s,
    ));
    cases
}

/// Issue 23's bursts at the stream's end, where frames are shorter; and a small stream at the defaults, whose size
/// the final group decides.
fn bursts(v: u8) -> Vec<Case> {
    let defaults = Params {
        data: 10,
        parity: 2,
        block_size: 1 << 20,
        interleave: 1,
        version: v,
    };
    let o = input(4096);
    let small = encoded(defaults, &o, STREAM_ID);
    let mut cases = vec![case(
        "success-small-stream",
        true,
        &o,
        if v == V1 {
            "4096 bytes at the defaults (10 + 2, 1 MiB blocks): 12,680 bytes stored, the final group's two parity \
             blocks as long as its one block rounded up to 64 bytes (4096 each)"
        } else {
            "4096 bytes at the defaults (10 + 2, 1 MiB blocks): 5,832 bytes stored, 96 + 12 x (414 + 64) by \
             par-v2.md's size formula (L = (4096 + 40) / 10 rounded up)"
        },
        small,
    )];
    // d = 4, p = 2, B = 64, D = 2, 256 bytes: group 0 is full, the final group 1 (the trailer alone) shares the
    // last batch.
    let p = Params {
        data: 4,
        parity: 2,
        block_size: 64,
        interleave: 2,
        version: v,
    };
    let o = input(256);
    let s = encoded(p, &o, STREAM_ID);
    let burst = |from: usize, len: usize| {
        let mut d = s.clone();
        d[from..from + len].fill(0xAA);
        d
    };
    if v == V1 {
        // Frames: stream header 0..96, 0.0 96..224, 1.0 (the trailer) 224..328, 0.1 328..456, 0.2 456..584: the
        // last batch is not round-robin where the final group lacks blocks.
        cases.push(case(
            "failure-end-burst-312",
            false,
            b"",
            "d = 4, p = 2, B = 64, D = 2, 256 bytes; 312 bytes from byte 145 (the bound the spec used to state) \
             touch frames 0.0, 1.0, 0.1 and 0.2: group 0 loses 3 > p",
            burst(145, 312),
        ));
        cases.push(case(
            "success-end-burst-105",
            true,
            &o,
            "the same stream; a burst of 105 bytes, (p x (D' - 1) - 1) x F' + 1 with D' = 2 and F' = 104, from \
             byte 327 touches 1.0 and 0.1 only",
            burst(327, 105),
        ));
        // d = 3, p = 2, B = 64, 261 bytes: the final group holds a 64-byte block, a 5-byte block (a 69-byte
        // frame) and the trailer.
        let o = input(261);
        let s = encoded(params(V1), &o, STREAM_ID);
        let (at, _) = frame_at(&s, 1, 1);
        let burst = |len: usize| {
            let mut d = s.clone();
            d[at - 1..at - 1 + len].fill(0xAA);
            d
        };
        cases.push(case(
            "failure-short-frame-burst-104",
            false,
            &o[..192],
            "d = 3, p = 2, B = 64, 261 bytes: the final group's second block is 5 bytes, a 69-byte frame, so F' is \
             69, not at least 104; a burst of 104 bytes from the last byte of frame 1.0 touches 1.0, 1.1 and 1.2: \
             3 > p",
            burst(104),
        ));
        cases.push(case(
            "success-short-frame-burst-70",
            true,
            &o,
            "the same stream; a burst of 70 bytes, (p - 1) x 69 + 1, from the last byte of frame 1.0 touches 1.0 \
             and 1.1 only",
            burst(70),
        ));
    } else {
        // Frames: stream header 0..96, 0.0 96..224, 1.0 224..298 (L = 10), 0.1 298..426, 1.1 426..500, ...: the
        // last batch is round-robin, its shortest frame F' = 74.
        cases.push(case(
            "success-end-burst-223",
            true,
            &o,
            "d = 4, p = 2, B = 64, D = 2, 256 bytes: the final group 1 has four shards of 10 bytes (the trailer); a \
             burst of (p x D' - 1) x F' + 1 = 223 bytes from byte 223, the last byte of frame 0.0, touches 0.0, \
             1.0, 0.1 and 1.1: two frames of each group",
            burst(223, 223),
        ));
        cases.push(case(
            "failure-end-burst-278",
            false,
            b"",
            "the same stream; 278 bytes from byte 223 also touch frame 0.2 (500..628): group 0 loses 3 > p",
            burst(223, 278),
        ));
    }
    cases
}

/// One testkit file, read back.
pub struct File {
    pub success: bool,
    pub output_len: usize,
    pub output_sha256: String,
    /// Arguments for the decoder after `-d`.
    pub args: Vec<String>,
    pub stream: Vec<u8>,
}

pub fn parse(file: &[u8]) -> File {
    let split = file
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a header and a blank line");
    let header = std::str::from_utf8(&file[..split]).expect("a text header");
    let mut f = File {
        success: false,
        output_len: 0,
        output_sha256: String::new(),
        args: Vec::new(),
        stream: file[split + 2..].to_vec(),
    };
    for line in header.lines() {
        match line.split_once(": ").expect("key: value") {
            ("expect", v) => f.success = v == "success",
            ("output", v) => {
                let (n, h) = v.split_once(' ').expect("length and digest");
                f.output_len = n.parse().expect("a length");
                f.output_sha256 = h.into();
            }
            ("args", v) => f.args = v.split(' ').map(String::from).collect(),
            _ => {}
        }
    }
    f
}
