//! S3's storage classes as billing sees them: the minimum billed duration of each, and its list prices. The figures
//! are AWS's us-east-1 list prices; the `cost` module turns them into bills.

/// A storage class of the catalog's records (`object.storage_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Standard,
    IntelligentTiering,
    StandardIa,
    OnezoneIa,
    GlacierIr,
    Glacier,
    DeepArchive,
    /// A Glacier vault archive.
    Vault,
    /// A file:// store: no bill from AWS.
    File,
}

impl Class {
    pub fn of(name: &str) -> Class {
        match name {
            "STANDARD_IA" => Class::StandardIa,
            "ONEZONE_IA" => Class::OnezoneIa,
            "GLACIER_IR" => Class::GlacierIr,
            "GLACIER" => Class::Glacier,
            "DEEP_ARCHIVE" => Class::DeepArchive,
            "INTELLIGENT_TIERING" => Class::IntelligentTiering,
            "GLACIER_VAULT" => Class::Vault,
            "FILE" => Class::File,
            _ => Class::Standard,
        }
    }

    /// Days an object is billed for at least: deleting it sooner is charged as if it stayed that long.
    pub fn min_days(self) -> u32 {
        match self {
            Class::DeepArchive => 180,
            Class::Glacier | Class::GlacierIr | Class::Vault => 90,
            Class::StandardIa | Class::OnezoneIa => 30,
            Class::Standard | Class::IntelligentTiering | Class::File => 0,
        }
    }

    /// USD per GiB-month of storage.
    pub fn storage_price(self) -> f64 {
        match self {
            Class::Standard | Class::IntelligentTiering => 0.023,
            Class::StandardIa => 0.0125,
            Class::OnezoneIa => 0.01,
            Class::GlacierIr => 0.004,
            Class::Glacier | Class::Vault => 0.0036,
            Class::DeepArchive => 0.00099,
            Class::File => 0.0,
        }
    }
}

/// Hours AWS's monthly rates are divided by (its calculator's month: 730 hours).
pub const HOURS_PER_MONTH: f64 = 730.0;
pub const GIB: f64 = 1_073_741_824.0;

/// The early-deletion charge of deleting at `now` an object of `bytes` stored at `stored` (Unix seconds): the
/// storage of the days its class's minimum has left, at the class's rate.
pub fn early_deletion(class: Class, bytes: u64, stored: i64, now: i64) -> f64 {
    let due = stored + i64::from(class.min_days()) * crate::clock::DAY;
    if now >= due {
        return 0.0;
    }
    let hours = (due - now) as f64 / 3600.0;
    bytes as f64 / GIB * class.storage_price() * hours / HOURS_PER_MONTH
}
