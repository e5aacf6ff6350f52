//! The command line of zstream-seal.

use crate::filter::{self, OpenOptions, SealOptions, Secret};
use crate::header::{Header, DEFAULT_CHUNK};
use crate::kdf::{Argon2Params, KdfLimit};
use crate::key;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use zstream_common::cli::ThreadsArg;
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
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
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

    #[command(flatten)]
    pub threads: ThreadsArg,

    /// Plaintext bytes per chunk when sealing (opening reads it from the header).
    #[arg(long, value_name = "SIZE", value_parser = size::parse, default_value_t = DEFAULT_CHUNK as u64)]
    pub chunk_size: u64,

    /// Argon2id memory for passphrases when sealing, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = Argon2Params::DEFAULT.m_cost_kib)]
    pub argon2_memory: u32,

    /// Argon2id passes for passphrases when sealing.
    #[arg(long, value_name = "N", default_value_t = Argon2Params::DEFAULT.t_cost)]
    pub argon2_passes: u32,

    /// When opening: the most Argon2id memory (KiB) a header may ask for, checked before any key is tried.
    #[arg(long, value_name = "KIB", default_value_t = KdfLimit::DEFAULT.memory_kib)]
    pub max_argon2_memory: u32,

    /// When opening: the most Argon2id passes a header may ask for.
    #[arg(long, value_name = "N", default_value_t = KdfLimit::DEFAULT.passes)]
    pub max_argon2_passes: u32,

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
            zstream_common::say!(
                "wrote {} (key id {}); keep it secret, and keep a copy on paper",
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
    // A worker holds a chunk; opening sizes its default by the header's chunk size.
    let threads = args.threads.get(args.chunk_size);
    let chunk_size =
        u32::try_from(args.chunk_size).map_err(|_| usage("--chunk-size is too large"))?;
    pipe::setup_filter()?;
    pipe::hint_terminal_input();
    let input = pipe::stdin();
    let mut output = pipe::stdout();
    let mut progress = Progress::new(NAME, args.progress.progress, pipe::known_size(&*input));
    let count = |n: u64| progress.add(n);
    if args.decrypt {
        let opts = OpenOptions {
            threads: args.threads,
            kdf_limit: KdfLimit {
                memory_kib: args.max_argon2_memory,
                passes: args.max_argon2_passes,
            },
        };
        filter::open(&*input, &mut *output, &secrets, &opts, count)?;
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
            key: key::load(path)?,
        });
    }
    for path in &args.passphrase_files {
        secrets.push(Secret::Passphrase {
            name: path.display().to_string(),
            passphrase: key::load_passphrase(path)?,
        });
    }
    Ok(secrets)
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
        pipe::print_line(format_args!("{v}"))?;
    } else {
        pipe::print_line(format_args!(
            "zstream-seal version {} stream, chunks of {} bytes",
            crate::header::VERSION,
            h.chunk_size
        ))?;
        pipe::print_line(format_args!(
            "key files needed: {} ({})",
            h.key_ids.len(),
            ids(&h.key_ids).join(", ")
        ))?;
        match h.argon2 {
            Some(a) => pipe::print_line(format_args!(
                "passphrases needed: {} (Argon2id, {} KiB, {} passes, {} lane)",
                h.passphrase_ids.len(),
                a.m_cost_kib,
                a.t_cost,
                a.p_cost
            ))?,
            None => pipe::print_line(format_args!("passphrases needed: 0"))?,
        }
    }
    Ok(())
}
