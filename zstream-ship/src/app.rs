//! The command line of zstream-ship.

use crate::backend::Backend;
use crate::file::FileTarget;
use crate::url::Target;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use zstream_common::progress::{Progress, ProgressArg};
use zstream_common::{pipe, usage};

pub const NAME: &str = "zstream-ship";

const EXAMPLES: &str = "\
Examples:
  zfs send pool/fs@tue | zstream-hash -o tue.sha256 | zstream-seal --key-file a.key | zstream-par \\
    | zstream-ship put file:///mnt/offsite/pool/fs/tue
  zstream-ship get file:///mnt/offsite/pool/fs/tue | zstream-par -d | zstream-seal -d --key-file a.key | zfs receive pool2/fs
  zstream-ship ls file:///mnt/offsite/pool/fs/
  zstream-ship gc file:///mnt/offsite/            # remove what killed uploads left behind

Targets: file:///dir/key (a local or mounted directory). s3://bucket/key and glacier://vault are planned (the
S3 and Glacier backends are not in this build yet).
Exit codes: 0 ok, 1 I/O error, 2 usage error, 3 integrity failure, 75 archive restore not ready (try later).";

/// Streams stdin to a storage target and back, without temporary copies; a failed upload never looks like a
/// good one.
#[derive(Parser, Debug)]
#[command(name = NAME, version, about, after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Store stdin as the object DEST (whole or not at all).
    Put {
        dest: String,
        #[command(flatten)]
        progress: ProgressArg,
    },
    /// Write the object SRC to stdout.
    Get {
        src: String,
        #[command(flatten)]
        progress: ProgressArg,
    },
    /// List the objects under PREFIX: name, size, storage class, restore state, date.
    Ls {
        prefix: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove the object URL.
    Rm { url: String },
    /// Ask for archived objects to be made readable (nothing to do for file:// objects).
    Restore {
        #[arg(required = true)]
        src: Vec<String>,
    },
    /// List and remove unfinished uploads under PREFIX left by killed puts.
    Gc {
        prefix: String,
        /// Only those at least this old (e.g. 0, 90m, 24h, 7d): a younger one may still be running.
        #[arg(long, default_value = "24h", value_parser = parse_age)]
        older_than: u64,
        /// List only.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_age(s: &str) -> Result<u64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not an age (examples: 0, 90m, 24h, 7d)"))?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{s}': the unit is s, m, h or d")),
    };
    Ok(n * mul)
}

fn backend(url: &str, key_required: bool) -> anyhow::Result<Box<dyn Backend>> {
    match Target::parse(url, key_required).map_err(usage)? {
        Target::File { path } => Ok(Box::new(FileTarget { path })),
        Target::S3 { .. } | Target::Glacier { .. } => Err(usage(format!(
            "{url}: s3:// and glacier:// targets are not in this build yet; use file:///dir/key"
        ))),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Put { dest, progress } => {
            let b = backend(&dest, true)?;
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
            b.put(&mut counted)?;
            p.finish();
            Ok(())
        }
        Cmd::Get { src, progress } => {
            let b = backend(&src, true)?;
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
        Cmd::Ls { prefix, json } => {
            let entries = backend(&prefix, false)?.list()?;
            for e in entries {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        e.name, e.size, e.storage_class, e.restore, e.date
                    );
                }
            }
            Ok(())
        }
        Cmd::Rm { url } => backend(&url, true)?.remove(),
        Cmd::Restore { src } => {
            for s in src {
                backend(&s, true)?;
                eprintln!("{NAME}: {s}: file:// objects are always readable; nothing to restore");
            }
            Ok(())
        }
        Cmd::Gc {
            prefix,
            older_than,
            dry_run,
        } => {
            for s in backend(&prefix, false)?.gc(older_than, dry_run)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    if dry_run { "stale" } else { "removed" },
                    s.name,
                    s.size,
                    s.date
                );
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
        assert!(super::parse_age("soon").is_err());
        assert!(super::parse_age("3w").is_err());
    }
}
