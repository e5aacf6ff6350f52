//! Reads the packed nvlist of a compound stream's header (what `zfs send -R`/`-I` says the stream holds), in both
//! encodings OpenZFS writes: XDR (big-endian, the usual one) and native (the sender's byte order). Only what the
//! walker checks is kept: strings, 64-bit integers and nested lists; other values are skipped by their sizes.
//!
//! Layouts (OpenZFS module/nvpair/nvpair.c): a 4-byte stream header (encoding 0 native / 1 XDR, endian 1 little),
//! then the list's version and flags (4 + 4 bytes), then pairs, then an end mark.
//! - XDR pair: encoded size, decoded size, name (length + bytes padded to 4), type, element count, value. A nested
//!   list is inline: version, flags, its pairs, and 8 zero bytes. The list ends with 8 zero bytes.
//! - native pair: size (of the pair itself), name size (with NUL), reserved, element count, type; the name at 16;
//!   the value at the next multiple of 8. A nested list's value is a 24-byte nvlist_t, and its pairs follow the
//!   pair, ending with 4 zero bytes. The list ends with 4 zero bytes.

/// A value the walker uses; everything else is `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    U64(u64),
    Str(String),
    List(NvList),
    Other,
}

/// Pairs in stream order.
pub type NvList = Vec<(String, Value)>;

const UINT64: u32 = 8;
const STRING: u32 = 9;
const NVLIST: u32 = 19;
const NVLIST_ARRAY: u32 = 20;
/// Nested lists deeper than this are refused: a crafted header must not exhaust the stack.
const MAX_DEPTH: usize = 32;

pub fn lookup<'a>(list: &'a NvList, name: &str) -> Option<&'a Value> {
    list.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Parses a packed nvlist.
pub fn parse(buf: &[u8]) -> Result<NvList, String> {
    let head = buf.get(..4).ok_or("shorter than its header")?;
    let little = match head[1] {
        0 => false,
        1 => true,
        e => return Err(format!("unknown byte order {e}")),
    };
    let mut r = Reader { buf, at: 4, little };
    match head[0] {
        0 => {
            r.take(8)?; // version, flags
            r.native_pairs(0)
        }
        1 => {
            r.little = false;
            r.xdr_list(0)
        }
        e => Err(format!("unknown encoding {e}")),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    little: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| format!("cut short at byte {}", self.at))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }

    fn xdr_string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        self.take((4 - n % 4) % 4)?;
        String::from_utf8(s.to_vec()).map_err(|_| "a name that is not UTF-8".to_string())
    }

    /// Version, flags, pairs, and the 8 zero bytes that end an XDR list.
    fn xdr_list(&mut self, depth: usize) -> Result<NvList, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        self.take(8)?;
        let mut out = Vec::new();
        loop {
            let start = self.at;
            let encoded = self.u32()? as usize;
            let decoded = self.u32()?;
            if encoded == 0 && decoded == 0 {
                return Ok(out);
            }
            let name = self.xdr_string()?;
            let ty = self.u32()?;
            let nelem = self.u32()?;
            let value = match (ty, nelem) {
                (UINT64, 1) => Value::U64(self.u64()?),
                (STRING, 1) => Value::Str(self.xdr_string()?),
                (NVLIST, 1) => Value::List(self.xdr_list(depth + 1)?),
                (NVLIST_ARRAY, n) => {
                    for _ in 0..n {
                        self.xdr_list(depth + 1)?;
                    }
                    Value::Other
                }
                _ => {
                    // Everything else is skipped by the pair's encoded size.
                    let end = start.checked_add(encoded).filter(|&e| e >= self.at);
                    let end = end
                        .ok_or_else(|| format!("a pair size that does not fit at byte {start}"))?;
                    self.take(end - self.at)?;
                    Value::Other
                }
            };
            out.push((name, value));
        }
    }

    /// Pairs until the 4 zero bytes that end a native list (the top list's version and flags already read).
    fn native_pairs(&mut self, depth: usize) -> Result<NvList, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        let mut out = Vec::new();
        loop {
            let start = self.at;
            let size = self.u32()? as usize;
            if size == 0 {
                return Ok(out);
            }
            if size < 16 {
                return Err(format!("a pair of {size} bytes at byte {start}"));
            }
            let pair = {
                self.at = start;
                self.take(size)?
            };
            let mut p = Reader {
                buf: pair,
                at: 4,
                little: self.little,
            };
            let name_sz = {
                let b: [u8; 2] = p.take(2)?.try_into().expect("2 bytes");
                if self.little {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                }
            } as usize;
            p.take(2)?;
            let nelem = p.u32()?;
            let ty = p.u32()?;
            let name = p.take(name_sz)?;
            let name = name.strip_suffix(&[0]).ok_or("a name without its NUL")?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| "a name that is not UTF-8")?;
            p.at = (16 + name_sz).next_multiple_of(8);
            let value = match (ty, nelem) {
                (UINT64, 1) => Value::U64(p.u64()?),
                (STRING, 1) => {
                    // The value's aligned offset may lie past a forged pair's end: then it is cut short.
                    let rest = p.take(
                        pair.len()
                            .checked_sub(p.at)
                            .ok_or("a string past its pair's end")?,
                    )?;
                    let s = rest.split(|&b| b == 0).next().unwrap_or_default();
                    Value::Str(
                        String::from_utf8(s.to_vec()).map_err(|_| "a string that is not UTF-8")?,
                    )
                }
                // The nested list's pairs follow this pair.
                (NVLIST, 1) => Value::List(self.native_pairs(depth + 1)?),
                (NVLIST_ARRAY, n) => {
                    for _ in 0..n {
                        self.native_pairs(depth + 1)?;
                    }
                    Value::Other
                }
                _ => Value::Other,
            };
            out.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    /// Found by fuzzing (scripts/fuzz zfs_nvlist): a native pair too short for its aligned string value.
    #[test]
    fn a_string_past_its_pair_is_an_error_not_a_panic() {
        let input: &[u8] = &[
            0, 0, 1, 0, 0, 4, 0, 0, 0, 49, 16, 1, 0, 0, 0, 31, 0, 13, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9,
            114, 0, 46, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 148, 2, 115, 48, 0, 18, 0, 6, 0, 0, 16,
            0, 0, 0,
        ];
        assert!(super::parse(input).is_err());
    }

    #[test]
    fn truncations_of_real_headers_are_errors() {
        let d =
            include_bytes!("../../tests/data/openzfs/little-endian-all-drr-types-incr-XDR.zsend");
        let n = u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize;
        let header = &d[312..312 + n];
        assert!(super::parse(header).is_ok());
        for cut in 0..n {
            assert!(super::parse(&header[..cut]).is_err(), "cut at {cut}");
        }
    }
}
