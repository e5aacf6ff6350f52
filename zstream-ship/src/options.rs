//! What the subcommands are told beyond their target: the option groups of the command line, which the backends
//! take as they are (no copies field by field), and the choices S3 offers, as types.

use crate::aws::Endpoint;
use zstream_common::size;

/// Where the service is; credentials and profile come from the standard AWS sources.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Conn {
    /// The service's endpoint URL (an S3-compatible service); default from AWS_ENDPOINT_URL, else AWS itself.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The AWS region; default from AWS_REGION or the profile.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// Parts in flight.
#[derive(clap::Args, Debug, Clone)]
pub struct Transfer {
    /// Parts moving at once (memory: part size x (N + 1)).
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer { concurrency: 4 }
    }
}

/// How a new object is written.
#[derive(clap::Args, Debug, Clone)]
pub struct Upload {
    /// The first part size of an upload; parts double every 1,000 so any stream fits S3's 10,000 parts (S3: 5
    /// MiB to 5 GiB; Glacier: 1 MiB to 4 GiB, a power of two).
    #[arg(long, value_parser = size::parse, default_value = "16MiB", value_name = "SIZE")]
    pub part_size: u64,
    /// The stream's expected size (e.g. from `zfs send -nP`): picks one part size up front for it.
    #[arg(long, value_parser = size::parse, value_name = "SIZE")]
    pub size_hint: Option<u64>,
    /// The S3 storage class of the new object.
    #[arg(long, value_name = "CLASS", value_enum)]
    pub storage_class: Option<Class>,
    /// S3 object metadata; repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// S3 server-side encryption.
    #[arg(long, value_enum)]
    pub sse: Option<Sse>,
    /// The KMS key for --sse aws:kms (default: the account's S3 key).
    #[arg(long, value_name = "KEY_ID", requires = "sse")]
    pub sse_kms_key_id: Option<String>,
    /// The archive description of a Glacier vault upload (printable ASCII, at most 1,024 characters).
    #[arg(long, value_parser = parse_description)]
    pub description: Option<String>,
}

impl Default for Upload {
    fn default() -> Self {
        Upload {
            part_size: 16 << 20,
            size_hint: None,
            storage_class: None,
            meta: Vec::new(),
            sse: None,
            sse_kms_key_id: None,
            description: None,
        }
    }
}

/// Reading archived objects (S3 GLACIER and DEEP_ARCHIVE, Glacier vaults).
#[derive(clap::Args, Debug, Clone)]
pub struct Thaw {
    /// Restore tier for archived objects.
    #[arg(long, default_value = "Standard", value_enum)]
    pub tier: Tier,
    /// Days a restored copy stays readable.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=30000))]
    pub days: i32,
    /// Wait for an archive restore, polling with backoff, instead of exiting 75.
    #[arg(long)]
    pub wait: bool,
}

impl Default for Thaw {
    fn default() -> Self {
        Thaw {
            tier: Tier::Standard,
            days: 3,
            wait: false,
        }
    }
}

/// Everything a backend may be told: what the subcommand did not take stays at its default.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub conn: Conn,
    pub transfer: Transfer,
    pub upload: Upload,
    pub thaw: Thaw,
}

impl Conn {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.endpoint.clone(),
            region: self.region.clone(),
        }
    }
}

/// S3 storage classes a put may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Class {
    Standard,
    StandardIa,
    GlacierIr,
    Glacier,
    DeepArchive,
}

impl Class {
    pub fn sdk(self) -> aws_sdk_s3::types::StorageClass {
        use aws_sdk_s3::types::StorageClass as S;
        match self {
            Class::Standard => S::Standard,
            Class::StandardIa => S::StandardIa,
            Class::GlacierIr => S::GlacierIr,
            Class::Glacier => S::Glacier,
            Class::DeepArchive => S::DeepArchive,
        }
    }
}

/// Restore (retrieval) tiers of archived objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum Tier {
    Expedited,
    Standard,
    Bulk,
}

impl Tier {
    /// As S3 and Glacier name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Expedited => "Expedited",
            Tier::Standard => "Standard",
            Tier::Bulk => "Bulk",
        }
    }
}

/// S3 server-side encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sse {
    #[value(name = "AES256")]
    Aes256,
    #[value(name = "aws:kms")]
    AwsKms,
}

impl Sse {
    pub fn sdk(self) -> aws_sdk_s3::types::ServerSideEncryption {
        match self {
            Sse::Aes256 => aws_sdk_s3::types::ServerSideEncryption::Aes256,
            Sse::AwsKms => aws_sdk_s3::types::ServerSideEncryption::AwsKms,
        }
    }
}

pub fn parse_description(s: &str) -> Result<String, String> {
    if s.len() <= 1024 && s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(s.to_string())
    } else {
        Err("a Glacier archive description is at most 1,024 printable ASCII characters".into())
    }
}

/// S3 metadata travels in HTTP headers (x-amz-meta-KEY): keys are letters, digits, '-', '_' and '.', values
/// printable ASCII. Checked here, so a bad one fails before a byte is read, not at the upload.
pub fn parse_meta(s: &str) -> Result<(String, String), String> {
    let key_ok = |k: &str| {
        k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let value_ok = |v: &str| v.bytes().all(|b| (0x20..=0x7e).contains(&b));
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() && !key_ok(k) => Err(format!(
            "'{k}': a metadata key is letters, digits, '-', '_' and '.'"
        )),
        Some((_, v)) if !value_ok(v) => Err(format!("'{s}': a metadata value is printable ASCII")),
        Some((k, v)) if !k.is_empty() && !k.to_ascii_lowercase().starts_with("zstream-") => {
            Ok((k.to_string(), v.to_string()))
        }
        Some((k, _)) if !k.is_empty() => Err(format!(
            "'{k}': metadata named zstream-* is this tool's own"
        )),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}
