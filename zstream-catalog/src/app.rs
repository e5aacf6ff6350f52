//! The command line of zstream-catalog: one subcommand per decision the cycle's scripts ask for. Each reads the
//! catalog itself, authenticates it, decides, and answers with one JSON object on stdout (nothing else goes
//! there); a refusal also exits with its code, its reason on stderr.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const NAME: &str = "zstream-catalog";

const EXAMPLES: &str = "\
The backup cycle's scripts (zstream-backup, -restore, -verify) call it; by hand:
  zstream-catalog key --keys a.key,b.key                    # the public key, for checking records without keys
  zstream-catalog plan --keys a.key,b.key s3://bucket/site tank/home < <(zfs list -H -p -o name,guid,createtxg \\
      -t snapshot,bookmark -d 1 tank/home)
  zstream-catalog check --public-key HEX --warn 26h --crit 50h s3://bucket/site tank/home
Records: docs/formats/catalog-v2.md.
Exit codes: 0 ok, 1 runtime error (or a refusal for a runtime reason: a clock behind the catalog), 2 usage, 3
integrity (an entry that fails, a stream that is not its record's, a store that holds what its catalog does not),
75 try later.";

/// The backup cycle's catalog: signed records, and every decision of backup, prune, restore and verify.
#[derive(Parser, Debug)]
#[command(name = NAME, version = zstream_common::VERSION, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The store: DEST and, for a vault, the catalog's place.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Where the streams are: s3://bucket/prefix, file:///dir, glacier://vault.
    pub dest: String,
    /// Where the records are, when not in DEST (needed for a glacier:// DEST).
    #[arg(long, value_name = "URL")]
    pub catalog: Option<String>,
}

/// The keys the streams are sealed with: the catalog's signing key is derived from all of them.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Key files (zstream-seal keygen), comma-separated or repeated.
    #[arg(long = "keys", value_name = "FILE[,FILE]", value_delimiter = ',')]
    pub keys: Vec<PathBuf>,
    /// A passphrase file; repeatable.
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_files: Vec<PathBuf>,
}

/// What retention the run is told (recorded in each record, so that verify judges by it).
#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// A full when the newest is this old.
    #[arg(long, default_value = "30d", value_parser = crate::clock::duration, value_name = "DURATION")]
    pub full_every: u64,
    /// Cycles (a full and its incrementals) kept, the newest included.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N")]
    pub keep_cycles: u32,
    /// Prune only while the largest kept full holds at least R x the largest full since the last accepted shrink.
    #[arg(long, default_value_t = 0.9, value_parser = ratio, value_name = "R")]
    pub min_full_ratio: f64,
}

fn ratio(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("'{s}' is not a ratio from 0 to 1 (e.g. 0.9)"))
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The store's canonical names: DEST and CATALOG, the hold tag, the lock file of DATASET.
    Store {
        #[command(flatten)]
        store: StoreArgs,
        dataset: Option<String>,
    },
    /// Print the catalog's public key (64 hex digits): what a monitoring host checks records with.
    Key {
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Decide tonight's backup of DATASET: full or incremental, the base, the snapshot's name, this store's
    /// leftovers to remove. Reads the source's snapshots and bookmarks (`zfs list -H -p -o name,guid,createtxg -t
    /// snapshot,bookmark -d 1 DATASET`) on stdin.
    Plan {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// A full whatever the catalog says.
        #[arg(long)]
        full: bool,
        /// Back up this existing snapshot instead of taking one.
        #[arg(long, value_name = "NAME")]
        snapshot: Option<String>,
        /// The catalog holds nothing valid beside stored objects (lost for good): start a new chain; the objects
        /// are kept.
        #[arg(long)]
        new_catalog: bool,
        /// The clock is earlier than the newest record's time, and right.
        #[arg(long)]
        clock_ok: bool,
        /// What a taken snapshot's name starts with.
        #[arg(long, default_value = "zstream-", value_name = "TEXT")]
        prefix: String,
        /// Tonight's send is raw (`zfs send -w`): a chain that is not becomes a full.
        #[arg(long)]
        raw: bool,
    },
    /// Write the intent of a put (before it starts): a later run removes the object as this store's leftover if
    /// it is never committed. Compares this machine's clock with the store's.
    Intent {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        snapshot: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// How far this machine's clock may be from the store's.
        #[arg(long, default_value = "15m", value_parser = crate::clock::duration, value_name = "DURATION")]
        max_skew: u64,
        /// The run took the snapshot (a later run destroys it if this one never commits).
        #[arg(long)]
        taken: bool,
        /// The snapshot's guid and createtxg at the source.
        #[arg(long, value_name = "GUID")]
        guid: u64,
        #[arg(long, value_name = "TXG")]
        createtxg: u64,
    },
    /// Commit a stored stream: check that the stream is the snapshot the plan named (its guids and name, from
    /// zstream-hash --zfs --json) and that the object reads back as put stored it, then write its signed record.
    Commit {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// The plan (`zstream-catalog plan`'s output).
        #[arg(long, value_name = "FILE")]
        plan: PathBuf,
        /// zstream-hash --zfs --json's output.
        #[arg(long, value_name = "FILE")]
        hash: PathBuf,
        /// zstream-ship put --json's output.
        #[arg(long, value_name = "FILE")]
        stored: PathBuf,
        /// A recursive run: the names of DATASET's direct children that hold the snapshot, one a line (the
        /// record keeps their count and digest, which a recursive restore checks).
        #[arg(long, value_name = "FILE")]
        children: Option<PathBuf>,
        /// The snapshot's guid and createtxg at the source (`zfs get -Hp -o value guid,createtxg`).
        #[arg(long, value_name = "GUID")]
        guid: u64,
        #[arg(long, value_name = "TXG")]
        createtxg: u64,
        #[arg(long, value_name = "CLASS", default_value = "STANDARD")]
        storage_class: String,
        #[arg(long, value_name = "SIZE", value_parser = zstream_common::size::parse, default_value = "1MiB")]
        seal_chunk_size: u64,
        #[command(flatten)]
        par: ParArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Decide which cycles go, and list what to delete in order. With --accept-shrink, first records the user's
    /// acceptance of that full's shrink.
    Prune {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Delete objects younger than their class's minimum billed duration (the charge is shown).
        #[arg(long)]
        allow_early_delete: bool,
        /// The full SNAPSHOT is smaller than earlier fulls on purpose (recorded, signed, for good).
        #[arg(long, value_name = "SNAPSHOT")]
        accept_shrink: Option<String>,
        /// Record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The chain that restores DATASET[@SNAPSHOT], each link as the store holds it now, and what the restore
    /// costs. Reads TARGET's snapshots (`zfs list -H -p -o name,guid -t snapshot -d 1 TARGET`) on stdin when
    /// --target-exists.
    RestorePlan {
        #[command(flatten)]
        store: StoreArgs,
        /// DATASET or DATASET@SNAPSHOT (default: the newest backup).
        what: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// TARGET exists: its snapshots come on stdin.
        #[arg(long)]
        target_exists: bool,
        /// Restore from the records of this store id (when the store holds records of several stores).
        #[arg(long, value_name = "ID")]
        store_id: Option<String>,
        /// Read version 1 records (unsigned), when the catalog holds only those.
        #[arg(long)]
        v1: bool,
        #[command(flatten)]
        restore: crate::cost::RestoreArgs,
    },
    /// Check every record of DATASET (default: every dataset) against the store; pick --sample objects to read back.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        dataset: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        /// Check records with this public key instead of keys (zstream-catalog key prints it).
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Objects to read back whole: readable ones first, then archived ones (their restores are asked for).
        #[arg(long, default_value_t = 0, value_name = "N")]
        sample: usize,
        /// A vault's inventory is a job: wait for it instead of exiting 75.
        #[arg(long)]
        wait: bool,
    },
    /// Finish a verify: the table (or --json), --metrics, exit 0 healthy or 3 not; the samples' outcomes on stdin
    /// (one a line: URL, a tab, `ok` or why not).
    VerifyReport {
        /// `verify`'s output.
        #[arg(long, value_name = "FILE")]
        report: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
    },
    /// The datasets the catalog holds valid backups of, DATASET and those below it, each with its snapshots in
    /// the catalog's order, and the tree at one snapshot checked against the children each record names: what a
    /// recursive restore works through.
    Datasets {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// The tree's snapshot (default: DATASET's newest backup).
        #[arg(long, value_name = "NAME")]
        snapshot: Option<String>,
        /// The records of this store id, for the whole tree (default: as a restore of DATASET chooses).
        #[arg(long, value_name = "ID")]
        store_id: Option<String>,
        /// Count datasets whose catalog holds only version 1 records (unsigned).
        #[arg(long)]
        v1: bool,
    },
    /// A monitoring plugin (Nagios, Icinga): one line with perfdata; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check {
        #[command(flatten)]
        store: StoreArgs,
        dataset: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// WARNING when a dataset's newest backup is older (read by the plugin itself: a bad value is UNKNOWN).
        #[arg(long, default_value = "26h", value_name = "DURATION")]
        warn: String,
        /// CRITICAL when older.
        #[arg(long, default_value = "50h", value_name = "DURATION")]
        crit: String,
    },
    /// Record the outcome of a zstream-backup run in a metrics file.
    BackupMetrics {
        #[arg(long, value_name = "FILE")]
        metrics: PathBuf,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        dest: String,
        #[arg(long)]
        start: i64,
        #[arg(long)]
        end: i64,
        #[arg(long)]
        exit_code: i32,
        #[arg(long, default_value_t = 0)]
        bytes: u64,
    },
    /// Sign the version 1 records of DATASET once, after reading every backup back whole (the stream must be the
    /// one its record names, and open with the keys), ordered by the streams' own creation times, so the cycle
    /// can act on them (docs/formats/catalog-v2.md, "From version 1").
    Adopt {
        #[command(flatten)]
        store: StoreArgs,
        dataset: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Archived objects: wait for their restores instead of exiting 75.
        #[arg(long)]
        wait: bool,
    },
    /// What the store costs a month and what a full restore would cost, from the catalog's own records.
    Cost {
        #[command(flatten)]
        store: StoreArgs,
        dataset: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[command(flatten)]
        restore: crate::cost::RestoreArgs,
    },
    /// The cheapest --full-every and --keep-cycles for a retention, from a dataset's size and daily change.
    Recommend(crate::cost::RecommendArgs),
}

/// The parity settings a stream was written with.
#[derive(Args, Debug, Clone)]
pub struct ParArgs {
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub par_data: u32,
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub par_parity: u32,
    #[arg(long, value_parser = zstream_common::size::parse, default_value = "1MiB", value_name = "SIZE")]
    pub par_block_size: u64,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub par_interleave: u32,
    /// The par format version the stream was written in (`zstream-par --verify --json` says).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub par_version: u32,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::cmd::run(cli.cmd)
}
