//! The ZFS stream walker on arbitrary input, fed in two pieces at an arbitrary split, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zstream_hash::zfs::Walker;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut w = Walker::new();
    if w.feed(&data[..split]).is_ok() && w.feed(&data[split..]).is_ok() {
        let _ = w.finish();
    }
});
