//! The opener on arbitrary input never panics, and never writes anything unless the whole input was a valid
//! stream for these keys (the fuzzer cannot forge a tag, so any output at all means a bug).
#![no_main]
use libfuzzer_sys::fuzz_target;
use zstream_seal::filter::{self, Secret};
use zstream_seal::key::Key;

fuzz_target!(|data: &[u8]| {
    let secrets = vec![
        Secret::KeyFile { name: "a".into(), key: Key::from_bytes([1; 32]) },
        Secret::KeyFile { name: "b".into(), key: Key::from_bytes([2; 32]) },
    ];
    let mut out = Vec::new();
    let r = filter::open(data, &mut out, &secrets, &filter::OpenOptions::threads(0), |_| {});
    assert!(r.is_err() && out.is_empty(), "a forged stream was accepted");
    // Header parsing and key checks on their own, with the magic in place so the fuzzer gets past it.
    let mut framed = b"ZSTSEAL\x01".to_vec();
    framed.extend_from_slice(data);
    let _ = zstream_seal::header::Header::read(&mut &framed[..]);
});
