//! Keys and key files. A key is 32 random bytes. Its file is text that can be printed on paper and typed back:
//! four lines of Crockford base32, each carrying 8 key bytes and a 2-byte check that catches a typing mistake in
//! that line, plus the key's id, which catches anything the line checks miss.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
pub const ID_LEN: usize = 8;
const LINES: usize = 4;
const LINE_KEY_BYTES: usize = KEY_LEN / LINES;
const FIRST_LINE: &str = "zstream-seal-key v1";
/// Crockford's base32: no I, L, O, U, so what is typed back is hard to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Key material (from a key file or a passphrase), wiped from memory when dropped.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

pub type KeyId = [u8; ID_LEN];

impl Key {
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Key {
        Key(Zeroizing::new(b))
    }

    pub fn random() -> anyhow::Result<Key> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        zstream_common::random(&mut k[..])?;
        Ok(Key(k))
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A short public name of the key, stored in sealed headers so that opening can say which key is missing. It is
    /// a hash: it tells nothing about the key.
    pub fn id(&self) -> KeyId {
        let h = Sha256::new()
            .chain_update(b"zstream-seal key id v1")
            .chain_update(&self.0[..])
            .finalize();
        h[..ID_LEN].try_into().expect("8 bytes of a 32-byte hash")
    }
}

fn line_check(line_no: usize, bytes: &[u8]) -> [u8; 2] {
    let h = Sha256::new()
        .chain_update(b"zstream-seal key line")
        .chain_update([line_no as u8])
        .chain_update(bytes)
        .finalize();
    [h[0], h[1]]
}

/// 10 bytes -> 16 base32 characters.
fn encode_line(b: &[u8; 10]) -> String {
    let mut v = 0u128;
    for &x in b {
        v = v << 8 | x as u128;
    }
    (0..16)
        .rev()
        .map(|i| ALPHABET[(v >> (5 * i) & 31) as usize] as char)
        .collect()
}

fn decode_char(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|p| p as u8)
}

/// The text of a key file.
pub fn to_text(key: &Key) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::new());
    s.push_str(
        "# zstream-seal key. Opening a sealed stream needs every key it was sealed with: keep this one secret.\n\
         # To restore it from paper, type the lines below into a file. Case, spaces and dashes do not matter;\n\
         # each numbered line ends in a check that catches typing mistakes.\n",
    );
    let _ = writeln!(s, "{FIRST_LINE}");
    let _ = writeln!(s, "id {}", hex::encode(key.id()));
    for (i, part) in key.bytes().chunks(LINE_KEY_BYTES).enumerate() {
        let mut line = Zeroizing::new([0u8; 10]);
        line[..8].copy_from_slice(part);
        line[8..].copy_from_slice(&line_check(i + 1, part));
        let chars = Zeroizing::new(encode_line(&line));
        let groups: Vec<&str> = (0..4).map(|g| &chars[4 * g..4 * g + 4]).collect();
        let _ = writeln!(s, "{} {}", i + 1, groups.join("-"));
    }
    s
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("not a zstream-seal key file (its first line should be '{FIRST_LINE}')")]
    NotKeyFile,
    #[error("line {0}: expected a line number 1-4 followed by 16 characters")]
    BadLine(usize),
    #[error("key line {0} has a character that is not base32: '{1}'")]
    BadChar(usize, char),
    #[error("key line {0} has {1} characters, it needs 16 (a character missing or one too many?)")]
    BadLength(usize, usize),
    #[error("key line {0} fails its check: a typing mistake in that line?")]
    Check(usize),
    #[error("key line {0} appears twice")]
    Duplicate(usize),
    #[error("key line {0} is missing")]
    Missing(usize),
    #[error("the id line does not match the key: a typing mistake in the id or in a key line?")]
    Id,
}

/// Reads a key back from its text, naming the line that is wrong.
pub fn from_text(text: &str) -> Result<Key, KeyFileError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, l)) if l.split_whitespace().collect::<Vec<_>>().join(" ") == FIRST_LINE => {}
        _ => return Err(KeyFileError::NotKeyFile),
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let mut seen = [false; LINES];
    let mut id = None;
    for (n, line) in lines {
        let (head, rest) = line
            .split_once(char::is_whitespace)
            .ok_or(KeyFileError::BadLine(n))?;
        if head.eq_ignore_ascii_case("id") {
            let mut b = [0u8; ID_LEN];
            hex::decode_to_slice(rest.trim(), &mut b).map_err(|_| KeyFileError::BadLine(n))?;
            id = Some(b);
            continue;
        }
        let no: usize = head
            .trim_end_matches(':')
            .parse()
            .map_err(|_| KeyFileError::BadLine(n))?;
        if !(1..=LINES).contains(&no) {
            return Err(KeyFileError::BadLine(n));
        }
        let mut v = 0u128;
        let mut count = 0;
        for c in rest.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let d = decode_char(c).ok_or(KeyFileError::BadChar(no, c))?;
            v = v << 5 | d as u128;
            count += 1;
            if count > 16 {
                break;
            }
        }
        if count != 16 {
            return Err(KeyFileError::BadLength(no, count));
        }
        let bytes = Zeroizing::new(v.to_be_bytes());
        let line = &bytes[6..16];
        if line[8..] != line_check(no, &line[..8]) {
            return Err(KeyFileError::Check(no));
        }
        if std::mem::replace(&mut seen[no - 1], true) {
            return Err(KeyFileError::Duplicate(no));
        }
        key[(no - 1) * LINE_KEY_BYTES..no * LINE_KEY_BYTES].copy_from_slice(&line[..8]);
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(KeyFileError::Missing(missing + 1));
    }
    let key = Key(key);
    if id.is_some_and(|id| id != key.id()) {
        return Err(KeyFileError::Id);
    }
    Ok(key)
}

/// The most a key or passphrase file may hold: a key file is about 400 bytes, and reading `/dev/zero` or a
/// mistaken multi-GiB path must fail at once instead of filling memory.
pub const MAX_SECRET_FILE: u64 = 64 << 10;

/// Reads a key or passphrase file whole, within `MAX_SECRET_FILE`, into memory that is wiped after use. A file
/// that others can read draws a warning on stderr (it still works: the warning is for the person who left it so).
pub fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let what = format!("{what} {}", path.display());
    let bad = |e: &dyn std::fmt::Display| zstream_common::usage(format!("{what}: {e}"));
    let f = std::fs::File::open(path).map_err(|e| bad(&e))?;
    let meta = f.metadata().map_err(|e| bad(&e))?;
    if meta.is_dir() {
        return Err(bad(&"is a directory"));
    }
    if meta.mode() & 0o077 != 0 {
        zstream_common::say!(
            "warning: {what} is readable by others (mode {:o}); chmod 600 it",
            meta.mode() & 0o777
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(bad(&format_args!(
            "larger than {} KiB: not a key or passphrase file",
            MAX_SECRET_FILE >> 10
        )));
    }
    Ok(bytes)
}

/// Whether `bytes` are a key file's text (what a passphrase file must not be).
pub fn looks_like_key_file(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'\n')
        .any(|l| l.strip_suffix(b"\r").unwrap_or(l) == FIRST_LINE.as_bytes())
}

/// A passphrase file: the first line of the file, without its line end (`\n` or `\r\n`, seal-v1.md). Wiped from memory after use.
pub fn load_passphrase(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let what = || format!("passphrase file {}", path.display());
    let bytes = read_secret_file(path, "passphrase file")?;
    if looks_like_key_file(&bytes) {
        return Err(zstream_common::usage(format!(
            "{} is a key file: give it with --key-file",
            what()
        )));
    }
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let l = &bytes[..end];
            l.strip_suffix(b"\r").unwrap_or(l)
        }
        // No line end: the whole file is the line, a final \r included.
        None => &bytes[..],
    };
    if line.is_empty() {
        return Err(zstream_common::usage(format!(
            "{}: the first line is empty",
            what()
        )));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

/// Loads a key file.
pub fn load(path: &Path) -> anyhow::Result<Key> {
    let what = || format!("key file {}", path.display());
    let bytes = read_secret_file(path, "key file")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        zstream_common::usage(format!("{}: not text (a key file is ASCII)", what()))
    })?;
    from_text(text).map_err(|e| zstream_common::usage(format!("{}: {e}", what())))
}

/// Writes a new random key to `path` with mode 0600. Never overwrites: an existing file is an error.
pub fn generate(path: &Path) -> anyhow::Result<KeyId> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = Key::random()?;
    let text = to_text(&key);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                zstream_common::usage(format!(
                    "{} exists; keygen never overwrites a key file",
                    path.display()
                ))
            } else {
                anyhow::Error::new(e).context(format!("creating {}", path.display()))
            }
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            anyhow::Error::new(e).context(format!("writing {}", path.display()))
        })?;
    Ok(key.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_tolerates_how_people_type() {
        let key = Key::from_bytes(std::array::from_fn(|i| (i * 37 + 5) as u8));
        let text = to_text(&key);
        assert_eq!(from_text(&text).unwrap().bytes(), key.bytes());
        // Lower case, spaces for dashes, O for 0 and l for 1, no comments, no id line: still the same key.
        let typed: String = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("id"))
            .map(|l| match l.split_once(' ') {
                Some((n, groups)) if n.len() == 1 => {
                    format!(
                        "{n}: {}\n",
                        groups
                            .to_lowercase()
                            .replace('-', " ")
                            .replace('0', "o")
                            .replace('1', "l")
                    )
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_eq!(from_text(&typed).unwrap().bytes(), key.bytes(), "{typed}");
    }

    #[test]
    fn every_single_typo_is_caught() {
        let key = Key::from_bytes(std::array::from_fn(|i| (i * 11 + 3) as u8));
        let text = to_text(&key).to_string();
        let key_lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(['1', '2', '3', '4']))
            .map(|(i, _)| i)
            .collect();
        for &li in &key_lines {
            let line = text.lines().nth(li).unwrap();
            for (ci, c) in line.char_indices().skip(2).filter(|(_, c)| *c != '-') {
                for &r in ALPHABET.iter() {
                    let r = r as char;
                    if r == c {
                        continue;
                    }
                    let mut typo = line.to_string();
                    typo.replace_range(ci..ci + 1, &r.to_string());
                    let t = text.replace(line, &typo);
                    assert!(
                        from_text(&t).is_err(),
                        "typo {c}->{r} in line {li} not caught"
                    );
                }
            }
        }
    }

    #[test]
    fn named_errors() {
        let key = Key::from_bytes([9; 32]);
        let text = to_text(&key).to_string();
        assert_eq!(from_text("hello").err(), Some(KeyFileError::NotKeyFile));
        let no_line_3: String = text
            .lines()
            .filter(|l| !l.starts_with("3 "))
            .map(|l| l.to_string() + "\n")
            .collect();
        assert_eq!(from_text(&no_line_3).err(), Some(KeyFileError::Missing(3)));
        let other = Key::from_bytes([8; 32]);
        let wrong_id = text.replace(&hex::encode(key.id()), &hex::encode(other.id()));
        assert_eq!(from_text(&wrong_id).err(), Some(KeyFileError::Id));
        let short: String = text.lines().map(|l| if l.starts_with("2 ") { l[..l.len() - 1].to_string() } else { l.to_string() } + "\n").collect();
        assert_eq!(
            from_text(&short).err(),
            Some(KeyFileError::BadLength(2, 15))
        );
    }
}
