//! Byte sizes on the command line: `1MiB`, `64K`, `2GB`, or a plain number of bytes.

/// Parses a size for clap's `value_parser`. Binary and decimal units are both taken as written (`1MiB` = 2^20,
/// `1MB` = 10^6); a bare `K`/`M`/`G` follows bytesize and means the decimal unit.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    t.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("'{s}' is not a size (examples: 1048576, 1MiB, 64KiB, 2GB)"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn units() {
        assert_eq!(parse("1MiB"), Ok(1 << 20));
        assert_eq!(parse("64KiB"), Ok(64 << 10));
        assert_eq!(parse("2GB"), Ok(2_000_000_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("lots").is_err());
        assert!(parse("-1").is_err());
    }
}
