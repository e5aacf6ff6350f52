//! The compound header's nvlist reader on arbitrary input (both encodings, any nesting) never panics and never
//! runs away: the walker reaches it only behind a Fletcher-4 checksum, which random input never passes, so it is
//! fuzzed on its own (seed it with the fixtures' headers: scripts/fuzz zfs_nvlist).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zstream_hash::zfs::nvlist::parse(data);
});
