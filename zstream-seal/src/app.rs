//! The command line of zstream-seal.

use crate::filter::{self, SealOptions, Secret};
use crate::header::{Header, DEFAULT_CHUNK};
use crate::kdf::Argon2Params;
use crate::key;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;
use zstream_common::progress::{Progress, ProgressArg};
use zstream_common::{integrity, pipe, size, usage};

pub const NAME: &str = "zstream-seal";

const EXAMPLES: &str = "\
Examples:
  zstream-seal keygen -o alice.key; zstream-seal keygen -o bob.key
  zfs send pool/fs@tue | zstream-hash -o tue.sha256 | zstream-seal --key-file alice.key --key-file bob.key > tue.sealed
  zstream-seal -d --key-file bob.key --key-file alice.key < tue.sealed | zstream-hash --check tue.sha256 | zfs receive pool2/fs
  zstream-seal inspect < tue.sealed

Opening needs every key and passphrase the stream was sealed with, in any order.
Exit codes: 0 ok, 1 I/O error, 2 usage error, 3 wrong keys, or a damaged, cut or forged stream.";

/// Authenticated ChaCha20-Poly1305 stream encryption (stdin to stdout) that needs every key to open.
#[derive(Parser, Debug)]
#[command(name = NAME, version, about, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,

    /// Open (decrypt and verify) instead of seal.
    #[arg(short = 'd', long = "decrypt")]
    pub decrypt: bool,

    /// A key file (from `keygen`); repeat for each key. Opening needs all of them.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,

    /// A file whose first line is a passphrase (through Argon2id); repeat for each. Combines with key files.
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_files: Vec<PathBuf>,

    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Plaintext bytes per chunk when sealing (opening reads it from the header).
    #[arg(long, value_name = "SIZE", value_parser = size::parse, default_value_t = DEFAULT_CHUNK as u64)]
    pub chunk_size: u64,

    /// Argon2id memory for passphrases when sealing, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = Argon2Params::DEFAULT.m_cost_kib)]
    pub argon2_memory: u32,

    /// Argon2id passes for passphrases when sealing.
    #[arg(long, value_name = "N", default_value_t = Argon2Params::DEFAULT.t_cost)]
    pub argon2_passes: u32,

    #[command(flatten)]
    pub progress: ProgressArg,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Write a new random key file (mode 0600). Never overwrites.
    Keygen {
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Print what a sealed stream's header says (on stdin), without keys.
    Inspect {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match &args.cmd {
        Some(Cmd::Keygen { output }) => {
            let id = key::generate(output)?;
            eprintln!(
                "{NAME}: wrote {} (key id {}); keep it secret, and keep a copy on paper",
                output.display(),
                hex::encode(id)
            );
            Ok(())
        }
        Some(Cmd::Inspect { json }) => inspect(*json),
        None => seal_or_open(&args),
    }
}

fn seal_or_open(args: &Args) -> anyhow::Result<()> {
    let secrets = load_secrets(args)?;
    if secrets.is_empty() {
        return Err(usage("give at least one --key-file or --passphrase-file"));
    }
    let threads = match args.threads {
        Some(0) => return Err(usage("--threads must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let chunk_size =
        u32::try_from(args.chunk_size).map_err(|_| usage("--chunk-size is too large"))?;
    pipe::setup_filter()?;
    let input = pipe::stdin();
    let mut output = pipe::stdout();
    let mut progress = Progress::new(NAME, args.progress.progress, pipe::known_size(&*input));
    let count = |n: u64| progress.add(n);
    if args.decrypt {
        filter::open(&*input, &mut *output, &secrets, threads, count)?;
    } else {
        let opts = SealOptions {
            chunk_size,
            threads,
            argon2: Argon2Params {
                m_cost_kib: args.argon2_memory,
                t_cost: args.argon2_passes,
                p_cost: 1,
            },
            fixed_salt: None,
        };
        opts.argon2.check().map_err(usage)?;
        filter::seal(&*input, &mut *output, &secrets, &opts, count)?;
    }
    progress.finish();
    Ok(())
}

fn load_secrets(args: &Args) -> anyhow::Result<Vec<Secret>> {
    let mut secrets = Vec::new();
    for path in &args.key_files {
        secrets.push(Secret::KeyFile {
            name: path.display().to_string(),
            key: key::load(path, NAME)?,
        });
    }
    for path in &args.passphrase_files {
        secrets.push(Secret::Passphrase {
            name: path.display().to_string(),
            passphrase: read_passphrase(path)?,
        });
    }
    Ok(secrets)
}

/// The first line of the file, without its line end. Wiped from memory after use.
fn read_passphrase(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::MetadataExt;
    let what = || format!("passphrase file {}", path.display());
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| usage(format!("{}: {e}", what())))?);
    if std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o077 != 0) {
        eprintln!(
            "{NAME}: warning: {} is readable by others; chmod 600 it",
            what()
        );
    }
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(usage(format!("{}: the first line is empty", what())));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

fn inspect(json: bool) -> anyhow::Result<()> {
    let mut input = pipe::stdin();
    let h = Header::read(&mut *input)
        .map_err(integrity)
        .context("reading the header on stdin")?;
    // At the end of a pipe, leaving the rest unread would make the command before fail with a closed pipe.
    if pipe::is_pipe(&*input) {
        std::io::copy(&mut *input, &mut std::io::sink()).map_err(pipe::in_error)?;
    }
    let ids = |v: &[key::KeyId]| v.iter().map(hex::encode).collect::<Vec<_>>();
    if json {
        let v = serde_json::json!({
            "format": "zstream-seal",
            "version": crate::header::VERSION,
            "chunk_size": h.chunk_size,
            "key_files": ids(&h.key_ids),
            "passphrases": h.passphrase_ids.len(),
            "argon2id": h.argon2,
            "salt": hex::encode(h.salt),
            "header_bytes": h.encoded_len(),
        });
        println!("{v}");
    } else {
        println!(
            "zstream-seal version {} stream, chunks of {} bytes",
            crate::header::VERSION,
            h.chunk_size
        );
        println!(
            "key files needed: {} ({})",
            h.key_ids.len(),
            ids(&h.key_ids).join(", ")
        );
        match h.argon2 {
            Some(a) => println!(
                "passphrases needed: {} (Argon2id, {} KiB, {} passes, {} lane)",
                h.passphrase_ids.len(),
                a.m_cost_kib,
                a.t_cost,
                a.p_cost
            ),
            None => println!("passphrases needed: 0"),
        }
    }
    Ok(())
}
