//! The command line of zstream-ship.

use crate::backend::{same_checksum, Backend, Replace};
use crate::file::FileTarget;
use crate::glacier::{self, GlacierTarget};
use crate::options::{Conn, Options, Thaw, Transfer, Upload};
use crate::s3::{self, S3Target};
use crate::url::Target;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use zstream_common::progress::{Progress, ProgressArg};
use zstream_common::{integrity, pipe, usage};

pub const NAME: &str = "zstream-ship";

const EXAMPLES: &str = "\
Examples:
  zfs send pool/fs@tue | zstream-hash -o tue.sha256 | zstream-seal --key-file a.key | zstream-par \\
    | zstream-ship put file:///mnt/offsite/pool/fs/tue
  zstream-ship get file:///mnt/offsite/pool/fs/tue | zstream-par -d | zstream-seal -d --key-file a.key | zfs receive pool2/fs
  zstream-ship ls file:///mnt/offsite/pool/fs/
  zstream-ship gc file:///mnt/offsite/            # remove what killed uploads left behind

  zfs send pool/fs@tue | ... | zstream-ship put --storage-class DEEP_ARCHIVE s3://bucket/pool/fs/tue
  zstream-ship get --wait s3://bucket/pool/fs/tue | ...   # asks for the restore, waits, streams

Targets: s3://bucket/key (any S3-compatible service; credentials, region and endpoint from the standard AWS
sources or --endpoint/--region), glacier://vault (legacy Glacier vaults: put prints glacier://vault/ARCHIVE_ID to
get the archive back by; S3 with an archive class is the recommended target), file:///dir/key (a local or mounted
directory).
Exit codes: 0 ok, 1 I/O error, 2 usage error, 3 integrity failure, 75 archive restore not ready (try later).";

/// Streams stdin to a storage target and back, without temporary copies; a failed upload never looks like a
/// good one.
#[derive(Parser, Debug)]
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

const PUT_EXAMPLES: &str = "\
Examples:
  zfs send pool/fs@tue | zstream-hash -o tue.sha256 | zstream-seal --key-file a.key | zstream-par \\
    | zstream-ship put file:///mnt/offsite/pool/fs/tue
  ... | zstream-ship put --storage-class DEEP_ARCHIVE --size-hint \"$(zfs send -nP pool/fs@tue | awk '/^size/ {print $2}')\" \\
    s3://bucket/pool/fs/tue
An object already at DEST is never replaced (exit 1) unless --overwrite is given.";

const GET_EXAMPLES: &str = "\
Examples:
  zstream-ship get s3://bucket/pool/fs/tue | zstream-par -d | zstream-seal -d --key-file a.key | zfs receive pool2/fs
  zstream-ship get --wait --tier Bulk s3://bucket/pool/fs/tue > tue.par   # archived: restore, wait, stream
Exit 75 when the object is archived and not restored yet (the restore has been asked for).";

const LS_EXAMPLES: &str = "\
Examples:
  zstream-ship ls s3://bucket/pool/fs/
  zstream-ship ls --json file:///mnt/offsite/ | jq -r .name
Columns: name (the URL get and rm take), size, storage class, restore state, date.";

const STAT_EXAMPLES: &str = "\
Examples:
  zstream-ship stat --json s3://bucket/pool/fs/tue
  stored=$(... | zstream-ship put --json s3://bucket/pool/fs/tue)
  zstream-ship stat --expect-size \"$(jq -r .bytes <<<\"$stored\")\" \\
    --expect-checksum \"$(jq -r .checksum <<<\"$stored\")\" s3://bucket/pool/fs/tue
The checksum is the target's own: S3's stored SHA-256 (a composite for a multipart object), or the SHA-256 that
put keeps in a file's user.zstream.sha256 attribute (read from the file when it has none).
Exit codes: 0 as expected, 1 no such object or I/O error, 3 size or checksum differs.";

const RM_EXAMPLES: &str = "\
Example:
  zstream-ship rm s3://bucket/pool/fs/mon";

const RESTORE_EXAMPLES: &str = "\
Example:
  zstream-ship restore --tier Bulk --days 5 s3://bucket/pool/fs/mon s3://bucket/pool/fs/tue";

const GC_EXAMPLES: &str = "\
Examples:
  zstream-ship gc --dry-run s3://bucket/pool/     # what killed puts left, and what is still young
  zstream-ship gc --older-than 7d file:///mnt/offsite/";

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Store stdin as the object DEST (whole or not at all; an existing object is never replaced).
    #[command(after_help = PUT_EXAMPLES)]
    Put {
        /// The new object: s3://bucket/key, file:///dir/key, or glacier://vault (put prints the archive's URL).
        dest: String,
        /// Replace an object already at DEST (without it put refuses, exit 1: a cut stream from a dying
        /// upstream must not be able to replace a good backup).
        #[arg(long)]
        overwrite: bool,
        /// Print what was stored as one JSON line on stdout: url, bytes, checksum (as `stat` reads it back).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        upload: Upload,
        #[command(flatten)]
        transfer: Transfer,
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        progress: ProgressArg,
    },
    /// Write the object SRC to stdout.
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// The object: s3://bucket/key, file:///dir/key, or glacier://vault/ARCHIVE_ID.
        src: String,
        #[command(flatten)]
        thaw: Thaw,
        #[command(flatten)]
        transfer: Transfer,
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        progress: ProgressArg,
    },
    /// List the objects under PREFIX: name, size, storage class, restore state, date.
    #[command(after_help = LS_EXAMPLES)]
    Ls {
        /// s3://bucket/prefix, file:///dir/ (or a directory and the start of names), or glacier://vault.
        prefix: String,
        /// One JSON object per line (name, size, storage_class, restore, date).
        #[arg(long)]
        json: bool,
        /// A Glacier vault's listing is an inventory job (hours on AWS): wait for it instead of exiting 75.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read back one object as the target holds it: size, storage class, restore state, date, stored checksum;
    /// with --expect-size or --expect-checksum, exit 3 when it differs.
    #[command(after_help = STAT_EXAMPLES)]
    Stat {
        /// The object: s3://bucket/key or file:///dir/key (a vault cannot look up one archive).
        url: String,
        /// One JSON line (name, size, storage_class, restore, date, checksum).
        #[arg(long)]
        json: bool,
        /// The size the object must have.
        #[arg(long, value_name = "BYTES")]
        expect_size: Option<u64>,
        /// The checksum the object must have, as `put --json` printed it.
        #[arg(long, value_name = "CHECKSUM")]
        expect_checksum: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove the object URL.
    #[command(after_help = RM_EXAMPLES)]
    Rm {
        /// The object, as ls names it.
        url: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ask for archived objects to be made readable (--tier, --days); --wait waits until they are.
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore {
        /// The archived objects.
        #[arg(required = true)]
        src: Vec<String>,
        #[command(flatten)]
        thaw: Thaw,
        #[command(flatten)]
        conn: Conn,
    },
    /// List unfinished uploads under PREFIX (killed puts, or puts still running) and remove the old ones.
    #[command(after_help = GC_EXAMPLES)]
    Gc {
        /// s3://bucket/prefix, file:///dir/, or glacier://vault.
        prefix: String,
        /// Remove only those at least this old (e.g. 0, 90m, 24h, 7d): a younger one may still be running and is
        /// listed as kept.
        #[arg(long, default_value = "24h", value_parser = parse_age)]
        older_than: u64,
        /// List only.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

/// The longest age gc takes: a century. Anything longer is a mistake, not a policy.
const MAX_AGE_SECS: u64 = 100 * 365 * 86_400;

fn parse_age(s: &str) -> Result<u64, String> {
    let secs = if s == "0" {
        0
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("'{s}' is not an age ({e}; examples: 0, 90m, 24h, 7d)"))?
            .as_secs()
    };
    if secs > MAX_AGE_SECS {
        return Err(format!("'{s}' is more than a century"));
    }
    Ok(secs)
}

/// What a command does with its target.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// put: names a new object (a vault, for Glacier, which names the archive itself).
    Upload,
    /// get, rm, restore: names an existing object.
    Object,
    /// ls, gc: a prefix, or a vault.
    Prefix,
}

/// The backend of a target, checked for what the command does with it (the library's way in, for zstream-catalog
/// too).
pub fn backend(url: &str, how: Use, a: &Options) -> anyhow::Result<Box<dyn Backend>> {
    let target = Target::parse(url, how != Use::Prefix).map_err(usage)?;
    if let Target::Glacier { vault, archive } = &target {
        match (how, archive) {
            (Use::Object, None) => {
                return Err(usage(format!(
                    "{url}: name an archive, glacier://{vault}/ARCHIVE_ID (put prints it)"
                )))
            }
            (Use::Upload | Use::Prefix, Some(_)) => {
                return Err(usage(format!(
                    "{url}: takes a vault, glacier://{vault} (Glacier names archives itself; put prints the name)"
                )))
            }
            _ => {}
        }
    }
    match &target {
        _ if how != Use::Upload => {}
        Target::S3 { .. } => limits(
            &a.upload,
            "S3",
            s3::parts::MIN_PART,
            s3::parts::MAX_PART,
            s3::parts::MAX_OBJECT,
        )?,
        Target::Glacier { .. } => limits(
            &a.upload,
            "Glacier",
            glacier::MIN_PART,
            glacier::MAX_PART,
            glacier::MAX_PART * glacier::MAX_PARTS,
        )?,
        Target::File { .. } => {}
    }
    match target {
        Target::File { path } => Ok(Box::new(FileTarget { path })),
        Target::S3 { bucket, key } => Ok(Box::new(S3Target::new(bucket, key, a.clone())?)),
        Target::Glacier { vault, archive } => {
            Ok(Box::new(GlacierTarget::new(vault, archive, a.clone())?))
        }
    }
}

/// The service's own bounds on --part-size and --size-hint, refused with the range rather than clamped.
fn limits(a: &Upload, service: &str, min: u64, max: u64, largest: u64) -> anyhow::Result<()> {
    let b = |n: u64| bytesize::ByteSize::b(n).display().iec().to_string();
    if !(min..=max).contains(&a.part_size) {
        return Err(usage(format!(
            "--part-size {}: {service} parts are {} to {}",
            b(a.part_size),
            b(min),
            b(max)
        )));
    }
    if let Some(h) = a.size_hint.filter(|&h| h > largest) {
        return Err(usage(format!(
            "--size-hint {}: {service} holds at most {} in one object",
            b(h),
            b(largest)
        )));
    }
    Ok(())
}

impl Cmd {
    /// The option groups this subcommand took; the rest stay at their defaults.
    fn remote(&self) -> Options {
        let mut r = Options::default();
        match self {
            Cmd::Put {
                upload,
                transfer,
                conn,
                ..
            } => (r.upload, r.transfer, r.conn) = (upload.clone(), transfer.clone(), conn.clone()),
            Cmd::Get {
                thaw,
                transfer,
                conn,
                ..
            } => (r.thaw, r.transfer, r.conn) = (thaw.clone(), transfer.clone(), conn.clone()),
            Cmd::Restore { thaw, conn, .. } => (r.thaw, r.conn) = (thaw.clone(), conn.clone()),
            Cmd::Ls { wait, conn, .. } => (r.thaw.wait, r.conn) = (*wait, conn.clone()),
            Cmd::Rm { conn, .. } | Cmd::Gc { conn, .. } | Cmd::Stat { conn, .. } => {
                r.conn = conn.clone()
            }
        }
        r
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let a = &args.cmd.remote();
    match args.cmd {
        Cmd::Put {
            dest,
            overwrite,
            json,
            progress,
            ..
        } => {
            if overwrite && dest.starts_with("glacier:") {
                return Err(usage(
                    "--overwrite: a Glacier vault never replaces an archive (each put makes a new one)",
                ));
            }
            let b = backend(&dest, Use::Upload, a)?;
            if std::io::stdin().is_terminal() {
                return Err(usage(
                    "refusing to read a stream from a terminal; pipe one in",
                ));
            }
            pipe::grow(std::io::stdin());
            let mut input = pipe::stdin();
            let mut p = Progress::new(NAME, progress.progress, pipe::known_size(&*input));
            let mut counted = Counted {
                inner: &mut *input,
                progress: &mut p,
            };
            let replace = if overwrite { Replace::Yes } else { Replace::No };
            let stored = b.put(&mut counted, replace)?;
            p.finish();
            // A vault names the archive: its URL, the name to get it back by, is printed whatever else is.
            let line = if json {
                serde_json::to_string(&stored)?
            } else if dest.starts_with("glacier:") {
                stored.url.clone()
            } else {
                return Ok(());
            };
            pipe::print_line(&line).map_err(|e| {
                e.context(format!(
                    "{} is stored, but {line} could not be printed",
                    stored.url
                ))
            })
        }
        Cmd::Stat {
            url,
            json,
            expect_size,
            expect_checksum,
            ..
        } => {
            let e = backend(&url, Use::Object, a)?.stat()?;
            if json {
                pipe::print_line(format_args!("{}", serde_json::to_string(&e)?))?;
            } else {
                pipe::print_line(format_args!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.name,
                    e.size,
                    e.storage_class,
                    e.restore,
                    e.date,
                    e.checksum.as_deref().unwrap_or("-")
                ))?;
            }
            if let Some(want) = expect_size.filter(|&n| n != e.size) {
                return Err(integrity(format_args!(
                    "{url}: holds {} bytes, expected {want}",
                    e.size
                )));
            }
            if let Some(want) = expect_checksum {
                match e.checksum.as_deref() {
                    Some(have) if same_checksum(have, &want) => {}
                    Some(have) => {
                        return Err(integrity(format_args!(
                            "{url}: stored checksum {have}, expected {want}"
                        )))
                    }
                    None => {
                        return Err(integrity(format_args!(
                            "{url}: the target keeps no checksum for it, expected {want}"
                        )))
                    }
                }
            }
            Ok(())
        }
        Cmd::Get { src, progress, .. } => {
            let b = backend(&src, Use::Object, a)?;
            pipe::setup_filter()?;
            let mut output = pipe::stdout();
            let mut p = Progress::new(NAME, progress.progress, None);
            let mut counted = CountedOut {
                inner: &mut *output,
                progress: &mut p,
            };
            b.get(&mut counted)?;
            p.finish();
            Ok(())
        }
        Cmd::Ls { prefix, json, .. } => {
            let entries = backend(&prefix, Use::Prefix, a)?.list()?;
            for e in entries {
                if json {
                    pipe::print_line(format_args!("{}", serde_json::to_string(&e)?))?;
                } else {
                    pipe::print_line(format_args!(
                        "{}\t{}\t{}\t{}\t{}",
                        e.name, e.size, e.storage_class, e.restore, e.date
                    ))?;
                }
            }
            Ok(())
        }
        Cmd::Rm { url, .. } => backend(&url, Use::Object, a)?.remove(),
        Cmd::Restore { src, .. } => {
            for s in src {
                let said = backend(&s, Use::Object, a)?.restore(a.thaw.wait)?;
                zstream_common::say!("{s}: {said}");
            }
            Ok(())
        }
        Cmd::Gc {
            prefix,
            older_than,
            dry_run,
            ..
        } => {
            let now = crate::backend::now_secs();
            for s in backend(&prefix, Use::Prefix, a)?.gc(older_than, dry_run)? {
                let age = u64::try_from(now.saturating_sub(s.started)).unwrap_or(0);
                let what = match (s.kept, dry_run) {
                    (true, _) => "kept",
                    (false, true) => "stale",
                    (false, false) => "removed",
                };
                pipe::print_line(format_args!(
                    "{what}\t{}\t{}\t{}\tage {}{}",
                    s.name,
                    s.size.map_or("-".to_string(), |n| n.to_string()),
                    s.date,
                    humantime::format_duration(std::time::Duration::from_secs(age)),
                    if s.kept {
                        " (younger than --older-than: it may still be running)"
                    } else {
                        ""
                    }
                ))?;
            }
            Ok(())
        }
    }
}

/// Counts bytes for --progress as they are read.
struct Counted<'a, R> {
    inner: R,
    progress: &'a mut Progress,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

struct CountedOut<'a, W> {
    inner: W,
    progress: &'a mut Progress,
}

impl<W: std::io::Write> std::io::Write for CountedOut<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages() {
        assert_eq!(super::parse_age("0"), Ok(0));
        assert_eq!(super::parse_age("90m"), Ok(5400));
        assert_eq!(super::parse_age("24h"), Ok(86_400));
        assert_eq!(super::parse_age("7d"), Ok(604_800));
        assert_eq!(super::parse_age("1h 30m"), Ok(5400));
        assert!(super::parse_age("soon").is_err());
        assert!(super::parse_age("3x").is_err());
        assert!(super::parse_age("9999999999999999999").is_err());
        assert!(super::parse_age("9999999999999999999d").is_err());
        assert!(super::parse_age("101y").is_err());
    }
}
