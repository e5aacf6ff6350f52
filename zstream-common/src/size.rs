//! Byte sizes on the command line, one grammar for every tool and script of the project: a number of bytes,
//! optionally followed by a unit. `K`, `M`, `G`, `T` are binary, as `zfs`, `dd` and `truncate` read them;
//! `KiB`, `MiB`, `GiB`, `TiB` are binary too, written out; `KB`, `MB`, `GB`, `TB` are decimal. Units are
//! case-insensitive except that `B` alone means bytes (`4096B`). No fractions: `1.5G` is refused rather than
//! rounded, since a size that silently means something else is worse than one that is refused.

/// Parses a size for clap's `value_parser` (and for `zstream-catalog`, which checks the scripts' sizes).
pub fn parse(s: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "'{s}' is not a size (a number of bytes with an optional unit: 1M or 1MiB = 2^20, 1MB = 10^6; \
             K, M, G, T and KiB..TiB are binary, KB..TB decimal)"
        )
    };
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(err());
    }
    let n: u64 = t[..digits].parse().map_err(|_| err())?;
    let unit = t[digits..].trim_start();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large a size"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn binary_letters_as_zfs_and_dd_read_them() {
        // What `truncate -s 1M` and `zfs set quota=1M` mean.
        assert_eq!(parse("1M"), Ok(1_048_576));
        assert_eq!(parse("64K"), Ok(65_536));
        assert_eq!(parse("3G"), Ok(3 * 1_073_741_824));
        assert_eq!(parse("2T"), Ok(2 * 1_099_511_627_776));
        assert_eq!(parse("1m"), Ok(1_048_576));
    }

    #[test]
    fn written_out_units() {
        assert_eq!(parse("1MiB"), Ok(1_048_576));
        assert_eq!(parse("64KiB"), Ok(65_536));
        assert_eq!(parse("1gib"), Ok(1_073_741_824));
        assert_eq!(parse("2GB"), Ok(2_000_000_000));
        assert_eq!(parse("5 MB"), Ok(5_000_000));
        assert_eq!(parse("1kB"), Ok(1_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4096B"), Ok(4096));
        assert_eq!(parse(" 7 "), Ok(7));
    }

    #[test]
    fn refusals() {
        for bad in [
            "lots", "-1", "1.5G", "", "M", "1MiBs", "1 M B", "0x10", "1e6",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("99999999999999999999").is_err());
        assert!(
            parse("20000000T").is_err(),
            "overflow is refused, not wrapped"
        );
    }
}
