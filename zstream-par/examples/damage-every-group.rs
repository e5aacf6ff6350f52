//! Benchmark helper: copies a valid parity stream from stdin to stdout, zeroing the payloads of the first N data
//! blocks (default 2) of every group, so a decode must repair N blocks per group throughout.
//! `zstream-par < x | damage-every-group 2 | zstream-par -d`
use std::io::{Read, Write};
use zstream_par::format::{Frame, FRAME_HEADER};

fn main() -> std::io::Result<()> {
    let n: u8 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut header = [0u8; FRAME_HEADER];
    let mut payload = Vec::new();
    loop {
        match input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let f = Frame::decode(&header).expect("a valid stream");
        payload.resize(f.payload_len as usize, 0);
        input.read_exact(&mut payload)?;
        if f.index < n && !f.is_parity() && f.index != 255 {
            payload.fill(0);
        }
        output.write_all(&header)?;
        output.write_all(&payload)?;
    }
}
