//! Moves stdin to stdout unchanged while showing every byte to a consumer (the hasher).
//!
//! When both ends are pipes, `tee(2)` duplicates the input pipe's pages into the output pipe inside the kernel and
//! we then read the same bytes once to hash them: one copy instead of two (measured ~1.3 GB/s against ~1.0 for
//! read+write, shared/facts/perf-baselines.md). Anything else (files, sockets, /dev/null) takes the plain path.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{channel, sync_channel};
use zstream_common::pipe::{self, in_error, out_error};

/// Pieces passed on but not yet seen: the copying runs at most this far ahead of `consume`.
const AHEAD: usize = 4;

/// Copies `input` to `output`, calling `consume` with every piece in order; returns the byte count. `consume`
/// sees data that is already on its way out: a pass-through cannot hold bytes back, and the verdict comes at the end.
///
/// With more than 2 cores the copying gets a thread of its own beside `consume` (`threaded`); with 2 or fewer,
/// the rest of the pipe already keeps them busy, and the hand-offs would only add CPU time (measured: +0.1
/// CPU-s/GiB in system time, no gain in speed; docs/BENCHMARKS.md). `ZSTREAM_HASH_COPY_THREAD=1` or `0`
/// overrides the choice (for benchmarks).
pub fn run(
    input: &mut File,
    output: &mut File,
    consume: impl FnMut(&[u8]) -> anyhow::Result<()> + Send,
) -> anyhow::Result<u64> {
    let threaded = match std::env::var("ZSTREAM_HASH_COPY_THREAD").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()) > 2,
    };
    if threaded {
        run_threaded(input, output, consume)
    } else {
        run_inline(input, output, consume)
    }
}

/// Copy and `consume` in turn on this thread.
fn run_inline(
    input: &mut File,
    output: &mut File,
    mut consume: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let tee = pipe::is_pipe(input) && pipe::is_pipe(output);
    let mut buf = vec![0u8; zstream_common::BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = step(tee, input, output, &mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        consume(&buf[..n])?;
        total += n as u64;
    }
}

/// The copying (system calls) on this thread and `consume` (SHA-256, the record walk) on a thread of its own, so
/// that with a core to spare the stage runs at the speed of its hash alone, not of hash and copy in turn. An
/// error of either side stops both; an error of the copy is reported first.
fn run_threaded(
    input: &mut File,
    output: &mut File,
    mut consume: impl FnMut(&[u8]) -> anyhow::Result<()> + Send,
) -> anyhow::Result<u64> {
    let tee = pipe::is_pipe(input) && pipe::is_pipe(output);
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(AHEAD);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let seer = s.spawn(move || -> anyhow::Result<()> {
            for (buf, n) in full_rx {
                consume(&buf[..n])?;
                let _ = free_tx.send(buf);
            }
            Ok(())
        });
        let mut total = 0u64;
        let mut made = 0;
        let copied: anyhow::Result<()> = loop {
            // A buffer the consumer has finished with, or a new one while fewer than AHEAD + 2 exist.
            let mut buf = match free_rx.try_recv() {
                Ok(b) => b,
                Err(_) if made < AHEAD + 2 => {
                    made += 1;
                    vec![0u8; zstream_common::BUF_SIZE]
                }
                Err(_) => match free_rx.recv() {
                    Ok(b) => b,
                    Err(_) => break Ok(()), // the consumer stopped: its error is the one to report
                },
            };
            match step(tee, input, output, &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    total += n as u64;
                    if full_tx.send((buf, n)).is_err() {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        drop(full_tx);
        let seen = seer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the hashing thread panicked")));
        copied.and(seen).map(|()| total)
    })
}

/// One piece into `buf` and on to `output`: by `tee(2)` when both ends are pipes, else by read and write.
fn step(tee: bool, input: &mut File, output: &mut File, buf: &mut [u8]) -> anyhow::Result<usize> {
    if tee {
        tee_step(input, output, buf)
    } else {
        copy_step(input, output, buf)
    }
}

/// One piece through `tee(2)`: the kernel duplicates it into the output pipe, and it is then read out of the
/// input pipe into `buf` to be seen. Returns its length, 0 at the end.
fn tee_step(input: &mut File, output: &mut File, buf: &mut [u8]) -> anyhow::Result<usize> {
    let n = loop {
        match rustix::pipe::tee(
            &*input,
            &*output,
            buf.len(),
            rustix::pipe::SpliceFlags::empty(),
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(out_error(e.into())),
        }
    };
    // tee left the bytes in the input pipe; take exactly those out.
    input.read_exact(&mut buf[..n]).map_err(in_error)?;
    Ok(n)
}

/// One piece by read and write.
fn copy_step(input: &mut File, output: &mut File, buf: &mut [u8]) -> anyhow::Result<usize> {
    let n = pipe::read_full(input, buf).map_err(in_error)?;
    pipe::write_out(output, &buf[..n])?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Run = fn(&mut File, &mut File, &mut Vec<u8>) -> anyhow::Result<u64>;

    fn inline(i: &mut File, o: &mut File, seen: &mut Vec<u8>) -> anyhow::Result<u64> {
        run_inline(i, o, |d| {
            seen.extend_from_slice(d);
            Ok(())
        })
    }

    fn threaded(i: &mut File, o: &mut File, seen: &mut Vec<u8>) -> anyhow::Result<u64> {
        run_threaded(i, o, |d| {
            seen.extend_from_slice(d);
            Ok(())
        })
    }

    fn data() -> Vec<u8> {
        (0..5_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    fn pipe_pair() -> (File, File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    /// Pipe to pipe (the tee path): what comes out and what was seen are the input, in order.
    #[test]
    fn both_ways_pass_and_show_every_byte_through_pipes() {
        for (name, f) in [("inline", inline as Run), ("threaded", threaded as Run)] {
            let input = data();
            let (mut in_r, mut in_w) = pipe_pair();
            let (mut out_r, mut out_w) = pipe_pair();
            let feed = input.clone();
            let writer = std::thread::spawn(move || in_w.write_all(&feed).unwrap());
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                out_r.read_to_end(&mut got).unwrap();
                got
            });
            let mut seen = Vec::new();
            let n = f(&mut in_r, &mut out_w, &mut seen).unwrap();
            drop(out_w);
            writer.join().unwrap();
            assert_eq!(n, input.len() as u64, "{name}");
            assert!(seen == input, "{name}: seen in order");
            assert!(reader.join().unwrap() == input, "{name}: passed on");
        }
    }

    /// File to file (read and write).
    #[test]
    fn both_ways_copy_files() {
        for (name, f) in [("inline", inline as Run), ("threaded", threaded as Run)] {
            let dir = tempfile::tempdir().unwrap();
            let input = data();
            std::fs::write(dir.path().join("in"), &input).unwrap();
            let mut i = File::open(dir.path().join("in")).unwrap();
            let mut o = File::create(dir.path().join("out")).unwrap();
            let mut seen = Vec::new();
            assert_eq!(f(&mut i, &mut o, &mut seen).unwrap(), input.len() as u64);
            assert!(seen == input, "{name}");
            assert!(
                std::fs::read(dir.path().join("out")).unwrap() == input,
                "{name}"
            );
        }
    }

    /// The consumer's error (a malformed send stream) stops the copy and is the one reported.
    #[test]
    fn a_consumer_error_stops_the_threaded_copy() {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<u8> = data().repeat(8); // 40 MB: far more than the copy may run ahead
        std::fs::write(dir.path().join("in"), &input).unwrap();
        let mut i = File::open(dir.path().join("in")).unwrap();
        let mut o = File::create(dir.path().join("out")).unwrap();
        let mut pieces = 0;
        let err = run_threaded(&mut i, &mut o, |_| {
            pieces += 1;
            anyhow::ensure!(pieces < 2, "bad record");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "bad record");
        let out = std::fs::metadata(dir.path().join("out")).unwrap().len();
        let ahead = ((AHEAD + 3) * zstream_common::BUF_SIZE) as u64;
        assert!(
            out <= ahead,
            "the copy stopped within its lead: {out} bytes out"
        );
    }
}
