//! The parity decoder on arbitrary input never panics and never writes what is not a prefix of the original of a
//! stream it could have been (here: noise, so nothing at all unless the fuzzer forges 64-bit checksums).
#![no_main]
use libfuzzer_sys::fuzz_target;
use zstream_par::decode::{self, Mode};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = decode::decode(data, &mut out, Mode::Decode, 0, |_| {});
    let mut sink = std::io::sink();
    let _ = decode::decode(data, &mut sink, Mode::Verify, 2, |_| {});
});
