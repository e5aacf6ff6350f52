//! The command line of zstream-hash and what it does with it.

use crate::{passthrough, sidecar, zfs};
use clap::Parser;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use zstream_common::atomic::{Pending, Replace};
use zstream_common::progress::{Progress, ProgressArg};
use zstream_common::{integrity, interrupt, pipe, usage};

const NAME: &str = "zstream-hash";

const EXAMPLES: &str = "\
Examples:
  zfs send -i @mon pool/fs@tue | zstream-hash -o tue.sha256 --zfs | zstream-seal ... | zstream-ship put ...
  zstream-ship get ... | zstream-seal -d ... | zstream-hash --check tue.sha256 | zfs receive pool2/fs
  sha256sum -c tue.sha256 < saved-copy.zfs

Exit codes: 0 ok, 1 I/O error, 2 usage error, 3 digest mismatch or damaged ZFS stream.";

/// SHA-256 pass-through: copies stdin to stdout unchanged and reports the digest when the input ends.
#[derive(Parser, Debug)]
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES)]
pub struct Args {
    /// After a clean end of input, write the digest in sha256sum format to FILE (default: to stderr).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The file name written after the digest in the sha256sum line.
    #[arg(long, default_value = "-")]
    pub name: String,

    /// Also write a JSON record (algorithm, sha256, bytes and, with --zfs, what the stream is) to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Compare with the expected digest at the end: a sha256sum-format file or 64 hex digits. Exit 3 on mismatch.
    #[arg(long, value_name = "FILE_OR_HEX")]
    pub check: Option<String>,

    /// The input is a raw `zfs send` stream: report what it is, check its checksums and that it is complete.
    #[arg(long)]
    pub zfs: bool,

    /// With --zfs: also accept a stream that ends after a whole record without its END record, as
    /// `zfs send --saved` makes them (OpenZFS leaves it out on purpose; a cut at a record boundary looks the same).
    #[arg(long, requires = "zfs")]
    pub saved: bool,

    /// With --zfs: the stream must be this snapshot (its BEGIN's toname, `pool/fs@snap`), or exit 3 as soon as its
    /// BEGIN record has passed, before anything after it: a restore's guard against a stream stored under
    /// another snapshot's name.
    #[arg(long, value_name = "NAME", requires = "zfs")]
    pub expect_toname: Option<String>,

    /// With --zfs: the stream's toguid must be this (decimal), or exit 3 at its BEGIN.
    #[arg(long, value_name = "GUID", requires = "zfs")]
    pub expect_toguid: Option<u64>,

    /// With --zfs: the stream's fromguid must be this (0 for a full), or exit 3 at its BEGIN.
    #[arg(long, value_name = "GUID", requires = "zfs")]
    pub expect_fromguid: Option<u64>,

    /// Do not print the digest line on stderr when there is no -o.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub progress: ProgressArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Everything that can be wrong with the arguments fails before a byte is read.
    let expected = args.check.as_deref().map(expected_digest).transpose()?;
    // The sidecars' temporary files exist before the first byte is read: a directory they cannot be written in
    // fails the run now, not after the stream has passed on (and been stored) downstream.
    let digest_file = args.output.as_deref().map(Pending::create).transpose()?;
    let json_file = args.json.as_deref().map(Pending::create).transpose()?;
    let temps: Vec<PathBuf> = digest_file
        .iter()
        .chain(&json_file)
        .map(|p| p.temp_path().to_path_buf())
        .collect();
    let _armed = (!temps.is_empty()).then(|| {
        interrupt::arm(move || {
            temps.iter().for_each(|t| drop(std::fs::remove_file(t)));
            "no digest file was written".to_string()
        })
    });
    pipe::setup_filter()?;
    pipe::hint_terminal_input();
    let mut input = pipe::stdin();
    let mut output = pipe::stdout();
    let mut progress = Progress::new(NAME, args.progress.progress, pipe::known_size(&*input));

    let mut hasher = Sha256::new();
    let mut walker = args.zfs.then(zfs::Walker::new);
    let mut noted = false;
    let mut consume = |data: &[u8]| {
        hasher.update(data);
        if let Some(w) = walker.as_mut() {
            w.feed(data).map_err(integrity)?;
            if !noted {
                if let Some(info) = w.info() {
                    progress.note(info.summary());
                    noted = true;
                }
            }
        }
        progress.add(data.len() as u64);
        Ok(())
    };
    // A stream that must be a given snapshot's is held back until its BEGIN record says it is: not a byte of
    // another stream reaches `zfs receive`.
    if args.expect_toname.is_some()
        || args.expect_toguid.is_some()
        || args.expect_fromguid.is_some()
    {
        let mut head = [0u8; zfs::record::RECORD_LEN];
        let n = pipe::read_full(&mut *input, &mut head).map_err(pipe::in_error)?;
        let order = zfs::record::begin_order(&head[..n])
            .filter(|_| n == head.len())
            .ok_or_else(|| integrity("not a ZFS send stream (no BEGIN record at the start)"))?;
        expect(&args, &zfs::record::parse_begin(&head, order))?;
        pipe::write_out(&mut *output, &head)?;
        consume(&head)?;
    }
    passthrough::run(&mut input, &mut output, consume)?;
    let bytes = progress.bytes();
    let info = walker
        .map(|w| {
            if args.saved {
                w.finish_saved()
            } else {
                w.finish()
            }
            .map_err(integrity)
        })
        .transpose()?;
    if let Some(info) = &info {
        progress.note(info.summary());
    }
    progress.finish();
    let digest: [u8; 32] = hasher.finalize().into();

    if let Some(want) = expected {
        if want != digest {
            return Err(integrity(format!(
                "digest mismatch: expected {}, got {} ({bytes} bytes)",
                hex::encode(want),
                hex::encode(digest)
            )));
        }
    }
    let line = sidecar::sha256sum_line(&digest, &args.name);
    match digest_file {
        Some(p) => p.finish(line.as_bytes(), Replace::Yes)?,
        None if !args.quiet => eprint!("{line}"),
        None => {}
    }
    if let Some(p) = json_file {
        let record = sidecar::json(&digest, bytes, info.as_ref());
        p.finish(record.as_bytes(), Replace::Yes)?;
    }
    Ok(())
}

/// The --expect-* checks, on the stream's first BEGIN.
fn expect(args: &Args, info: &zfs::record::Begin) -> anyhow::Result<()> {
    let differs = |what: &str, want: &dyn std::fmt::Display, got: &dyn std::fmt::Display| {
        integrity(format!(
            "the stream's {what} is {got}, expected {want}: this is not the stream asked for"
        ))
    };
    if let Some(n) = args.expect_toname.as_ref().filter(|n| **n != info.toname) {
        return Err(differs("toname", n, &info.toname));
    }
    if let Some(g) = args.expect_toguid.filter(|g| *g != info.toguid) {
        return Err(differs("toguid", &g, &info.toguid));
    }
    if let Some(g) = args.expect_fromguid.filter(|g| *g != info.fromguid) {
        return Err(differs("fromguid", &g, &info.fromguid));
    }
    Ok(())
}

/// `--check` takes a file (sha256sum format) or the digest itself. A file wins when both readings are possible.
fn expected_digest(arg: &str) -> anyhow::Result<[u8; 32]> {
    let path = std::path::Path::new(arg);
    let text = if path.exists() {
        std::fs::read_to_string(path)
            .map_err(|e| usage(format!("reading --check file {arg}: {e}")))?
    } else if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        arg.to_string()
    } else {
        return Err(usage(format!(
            "--check {arg}: no such file, and not 64 hex digits"
        )));
    };
    sidecar::parse_expected(&text).map_err(|e| usage(format!("--check {arg}: {e}")))
}
