//! The digest files: sha256sum's line format (so `sha256sum -c` verifies a saved copy) and the JSON record.

use crate::zfs::StreamInfo;
use serde::Serialize;

/// `<64 hex>  <name>\n`, exactly as sha256sum prints it for a binary-safe name.
pub fn sha256sum_line(digest: &[u8; 32], name: &str) -> String {
    format!("{}  {}\n", hex::encode(digest), name)
}

#[derive(Serialize)]
pub struct Record<'a> {
    pub algorithm: &'static str,
    pub sha256: String,
    pub bytes: u64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub zfs: Option<&'a StreamInfo>,
}

pub fn json(digest: &[u8; 32], bytes: u64, zfs: Option<&StreamInfo>) -> String {
    let rec = Record {
        algorithm: "sha256",
        sha256: hex::encode(digest),
        bytes,
        zfs,
    };
    serde_json::to_string(&rec).expect("a record of strings and numbers always serialises") + "\n"
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("no SHA-256 digest found: expected 64 hex digits or a sha256sum line")]
    NoDigest,
    #[error("{0} lines with digests: --check takes a file with one")]
    Several(usize),
}

/// The expected digest from `--check`: 64 hex digits, or the text of a sha256sum-format file with one line
/// (an optional leading `\` and `*` binary marker, as sha256sum writes them, are accepted).
pub fn parse_expected(text: &str) -> Result<[u8; 32], ParseError> {
    let digests: Vec<[u8; 32]> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix('\\').unwrap_or(l);
            let hex_part = l.split_whitespace().next()?;
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_part, &mut out).ok().map(|_| out)
        })
        .collect();
    match digests.len() {
        0 => Err(ParseError::NoDigest),
        1 => Ok(digests[0]),
        n => Err(ParseError::Several(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_hex_and_sha256sum_lines() {
        let want = parse_expected(EMPTY).unwrap();
        assert_eq!(hex::encode(want), EMPTY);
        assert_eq!(parse_expected(&format!("{EMPTY}  -\n")).unwrap(), want);
        assert_eq!(
            parse_expected(&format!("{EMPTY} *file.zfs\n")).unwrap(),
            want
        );
        assert_eq!(
            parse_expected(&format!("{}\n", EMPTY.to_uppercase())).unwrap(),
            want
        );
    }

    #[test]
    fn rejects_junk_and_many() {
        assert_eq!(parse_expected("hello"), Err(ParseError::NoDigest));
        assert_eq!(parse_expected(&EMPTY[..63]), Err(ParseError::NoDigest));
        assert_eq!(
            parse_expected(&format!("{EMPTY}  a\n{EMPTY}  b\n")),
            Err(ParseError::Several(2))
        );
    }

    #[test]
    fn line_round_trips() {
        let d = parse_expected(EMPTY).unwrap();
        assert_eq!(sha256sum_line(&d, "-"), format!("{EMPTY}  -\n"));
        assert_eq!(parse_expected(&sha256sum_line(&d, "x y")).unwrap(), d);
    }
}
