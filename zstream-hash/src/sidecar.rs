//! The digest files: sha256sum's line format (so `sha256sum -c` verifies a saved copy) and the JSON record.

use crate::zfs::StreamInfo;
use serde::Serialize;

/// `<64 hex>  <name>\n`, exactly as sha256sum prints it: a name with a backslash, newline or carriage return
/// is escaped (`\\`, `\n`, `\r`) and the line starts with a backslash, so the file always holds one line.
pub fn sha256sum_line(digest: &[u8; 32], name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{}  {escaped}\n", hex::encode(digest))
    } else {
        format!("{}  {}\n", hex::encode(digest), name)
    }
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
    #[error("line {0} is not a sha256sum line (64 hex digits, two spaces or ' *', a name)")]
    BadLine(usize),
}

/// The expected digest from `--check`: 64 hex digits, or the text of a sha256sum-format file with one line
/// (an escaped line's leading `\` and the `*` binary marker, as sha256sum writes them, are accepted). As with
/// `sha256sum -c --strict`, a line that is not a digest line is an error, never skipped; blank lines and `#`
/// comments are allowed.
pub fn parse_expected(text: &str) -> Result<[u8; 32], ParseError> {
    let mut digests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end_matches('\r');
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        digests.push(parse_line(l).ok_or(ParseError::BadLine(i + 1))?);
    }
    match digests.len() {
        0 => Err(ParseError::NoDigest),
        1 => Ok(digests[0]),
        n => Err(ParseError::Several(n)),
    }
}

/// `HEX`, or `HEX  NAME` / `HEX *NAME` (sha256sum's text and binary markers), optionally escaped with `\`.
fn parse_line(l: &str) -> Option<[u8; 32]> {
    let l = l.trim_start().strip_prefix('\\').unwrap_or(l.trim_start());
    let (hex_part, rest) = l.split_at(l.find(' ').unwrap_or(l.len()));
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    let named = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"));
    (rest.trim().is_empty() || named.is_some_and(|n| !n.is_empty())).then_some(out)
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
        assert_eq!(parse_expected("hello"), Err(ParseError::BadLine(1)));
        assert_eq!(parse_expected(&EMPTY[..63]), Err(ParseError::BadLine(1)));
        assert_eq!(
            parse_expected("\n# only a comment\n"),
            Err(ParseError::NoDigest)
        );
        assert_eq!(
            parse_expected(&format!("{EMPTY}  -\ngarbage\n")),
            Err(ParseError::BadLine(2))
        );
        assert_eq!(
            parse_expected(&format!("{EMPTY} x")),
            Err(ParseError::BadLine(1))
        );
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

    #[test]
    fn names_are_escaped_as_sha256sum_does() {
        let d = parse_expected(EMPTY).unwrap();
        let line = sha256sum_line(&d, "two\nlines\\and\r");
        assert_eq!(line, format!("\\{EMPTY}  two\\nlines\\\\and\\r\n"));
        assert_eq!(line.lines().count(), 1);
        assert_eq!(parse_expected(&line).unwrap(), d);
    }
}
