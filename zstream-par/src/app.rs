//! The command line of zstream-par.

use crate::decode::{self, Mode};
use crate::encode::{self, Params};
use clap::Parser;
use zstream_common::cli::ThreadsArg;
use zstream_common::progress::{Progress, ProgressArg};
use zstream_common::{integrity, pipe, size, usage};

pub const NAME: &str = "zstream-par";

const EXAMPLES: &str = "\
Examples:
  zfs send pool/fs@tue | zstream-hash -o tue.sha256 | zstream-seal --key-file a.key | zstream-par > tue.par
  zstream-par -d < tue.par | zstream-seal -d --key-file a.key | zstream-hash --check tue.sha256 | zfs receive pool2/fs
  zstream-par --verify < tue.par          # a drill: is the stored stream healthy, or at least repairable?

Each group of --data blocks gets --parity parity blocks: any --parity blocks of a group may be lost or damaged.
--interleave D writes D groups' blocks in turn, so one burst of up to (parity x D - 1) frames stays repairable
(a frame is a block plus 64 bytes; the last D groups' frames can be shorter: docs/formats/par-v2.md).
Exit codes: 0 ok (repairs are reported on stderr), 1 I/O error, 2 usage error, 3 damage beyond repair, or frames
of several streams none of which lies inside another's (the message names them; choose one with --stream).";

/// Reed-Solomon parity inside a stream (stdin to stdout); -d checks, repairs and restores the original.
#[derive(Parser, Debug)]
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES)]
pub struct Args {
    /// Decode: check, repair and write the original.
    #[arg(short = 'd', long = "decode", conflicts_with = "verify")]
    pub decode: bool,

    /// Read a stored stream and report its health; write nothing. Exit 0 if clean or repairable, 3 if not.
    #[arg(long)]
    pub verify: bool,

    /// With --verify, the report as JSON on stdout.
    #[arg(long, requires = "verify")]
    pub json: bool,

    /// Print the format version the encoder writes (docs/formats/par-vN.md) and exit; `--verify --json` says a
    /// stored stream's.
    #[arg(long, conflicts_with_all = ["decode", "verify", "stream"])]
    pub format_version: bool,

    /// Decode or verify the stream with this id (16 hex digits), ignoring frames of any other: for an input that
    /// holds frames of several streams none of which lies inside another's (the decoder then names them).
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub stream: Option<u64>,

    /// Data blocks per group.
    #[arg(long, default_value_t = 10, value_name = "N", conflicts_with_all = ["decode", "verify"])]
    pub data: u8,

    /// Parity blocks per group: how many blocks of each group may be lost.
    #[arg(long, default_value_t = 2, value_name = "N", conflicts_with_all = ["decode", "verify"])]
    pub parity: u8,

    /// Block size (a multiple of 64 bytes).
    #[arg(long, value_parser = size::parse, default_value = "1MiB", value_name = "SIZE",
          conflicts_with_all = ["decode", "verify"])]
    pub block_size: u64,

    /// Groups whose blocks are written in turn (spreads a burst of damage over them).
    #[arg(long, default_value_t = 1, value_name = "D", conflicts_with_all = ["decode", "verify"])]
    pub interleave: u16,

    #[command(flatten)]
    pub threads: ThreadsArg,

    #[command(flatten)]
    pub progress: ProgressArg,
}

fn parse_id(s: &str) -> Result<u64, String> {
    if s.len() != 16 {
        return Err("a stream id is 16 hex digits".into());
    }
    u64::from_str_radix(s, 16).map_err(|_| "a stream id is 16 hex digits".into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.format_version {
        return pipe::print_line(format_args!("{}", crate::format::VERSION));
    }
    // A worker holds an interleaved set of groups; decoding reads the geometry from the stream, so the
    // default is sized by the options' geometry (the defaults, unless given).
    let set = u64::from(args.interleave)
        * (u64::from(args.data) + u64::from(args.parity))
        * args.block_size;
    let threads = args.threads.get(set);
    let mut input = pipe::stdin();
    let mut progress = Progress::new(NAME, args.progress.progress, pipe::known_size(&*input));
    if args.verify {
        pipe::grow(std::io::stdin());
        let r = decode::decode_stream(
            &mut *input,
            &mut std::io::sink(),
            Mode::Verify,
            threads,
            args.stream,
            |n| progress.add(n),
        );
        progress.finish();
        let report = r?;
        let verdict = if report.damaged_blocks == 0 && report.skipped_bytes == 0 {
            "clean"
        } else if report.repairable() {
            "damaged, repairable"
        } else {
            "damaged beyond repair"
        };
        if args.json {
            let mut v = serde_json::to_value(&report)?;
            v["verdict"] = verdict.into();
            pipe::print_line(format_args!("{v}"))?;
        } else {
            let worst = report
                .worst_group
                .map_or("none".into(), |(g, n)| format!("group {g} ({n} blocks)"));
            zstream_common::say!(
                "{verdict}: par-v{} stream {}, {} groups, {} bytes of original; {} damaged or missing blocks, {} unreadable input bytes; worst {worst}",
                report.version.unwrap_or(0), report.stream_id.as_deref().unwrap_or("?"),
                report.groups, report.bytes, report.damaged_blocks, report.skipped_bytes
            );
        }
        return if report.repairable() {
            Ok(())
        } else {
            Err(integrity("the stream is damaged beyond repair"))
        };
    }
    pipe::setup_filter()?;
    pipe::hint_terminal_input();
    let mut output = pipe::stdout();
    if args.decode {
        decode::decode_stream(
            &mut *input,
            &mut *output,
            Mode::Decode,
            threads,
            args.stream,
            |n| progress.add(n),
        )?;
    } else {
        if args.stream.is_some() {
            return Err(usage("--stream is for decoding (-d) or --verify"));
        }
        let p = Params {
            data: args.data,
            parity: args.parity,
            block_size: u32::try_from(args.block_size)
                .map_err(|_| usage("--block-size is too large"))?,
            interleave: args.interleave,
            version: crate::format::VERSION,
        };
        p.check().map_err(usage)?;
        let mut id = [0u8; 8];
        zstream_common::random(&mut id)?;
        encode::encode(
            &mut *input,
            &mut *output,
            p,
            threads,
            u64::from_le_bytes(id),
            |n| progress.add(n),
        )?;
    }
    progress.finish();
    Ok(())
}
