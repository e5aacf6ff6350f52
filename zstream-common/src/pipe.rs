//! Standard input and output as raw byte streams: large pipes, full-buffer reads, unbuffered writes, and the
//! refusal to print binary data on a terminal.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, FromRawFd};

/// The pipe size we ask the kernel for: 1 MiB, the default `/proc/sys/fs/pipe-max-size`. With 64 KiB pipes every
/// stage blocks sixteen times as often; measured ~20% slower for a read+write stage (shared/facts/perf-baselines.md).
pub const PIPE_SIZE: usize = 1 << 20;

/// Stdin as a `File` (unbuffered, no locking). Not closed on drop: fd 0 belongs to the process.
pub fn stdin() -> ManuallyDrop<File> {
    // SAFETY: fd 0 is open for the life of the process and ManuallyDrop keeps us from closing it.
    ManuallyDrop::new(unsafe { File::from_raw_fd(0) })
}

/// Stdout as a `File`: `std::io::stdout()` is line-buffered, which scans every binary buffer for newlines.
pub fn stdout() -> ManuallyDrop<File> {
    // SAFETY: as for stdin.
    ManuallyDrop::new(unsafe { File::from_raw_fd(1) })
}

/// Grows `fd` to `PIPE_SIZE` if it is a pipe. Anything else, or a kernel that says no, is left as it is: the size
/// only changes speed, never correctness.
pub fn grow(fd: impl AsFd) {
    if is_pipe(&fd) {
        let _ = rustix::pipe::fcntl_setpipe_size(&fd, PIPE_SIZE);
    }
}

pub fn is_pipe(fd: &impl AsFd) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .unwrap_or(false)
}

/// The size of `fd` when it is a regular file (so progress can show an ETA), else None.
pub fn known_size(fd: &impl AsFd) -> Option<u64> {
    let st = rustix::fs::fstat(fd).ok()?;
    (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile)
        .then_some(st.st_size as u64)
}

/// Prepares stdin and stdout of a filter that writes binary data: refuses a terminal on stdout (exit 2) and grows
/// both pipes.
pub fn setup_filter() -> anyhow::Result<()> {
    if io::stdout().is_terminal() {
        return Err(crate::usage(
            "refusing to write binary data to a terminal; redirect stdout to a file or pipe it into the next stage",
        ));
    }
    grow(io::stdin());
    grow(io::stdout());
    Ok(())
}

/// A filter whose stdin is a terminal would wait silently for a stream that nobody is sending: it says so once
/// and goes on (typing, or Ctrl-D for an empty stream, is still allowed).
pub fn hint_terminal_input() {
    if io::stdin().is_terminal() {
        crate::say!("reading the stream from the terminal; pipe one in (Ctrl-D ends the input)");
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes it holds. Full buffers keep the number of
/// syscalls down and give the next stage large writes.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes all of `buf` to the stream's output, with an error that explains a closed pipe.
pub fn write_out(w: &mut impl Write, buf: &[u8]) -> anyhow::Result<()> {
    w.write_all(buf).map_err(out_error)
}

/// Prints one line of a report (ls, inspect, --json) on stdout, with the data path's closed-pipe handling:
/// `println!` panics when stdout is closed, and a report cut short is a failure like a stream cut short.
pub fn print_line(line: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(out_error)
}

/// The error for a failed write to stdout. A closed pipe is a failure for a filter (the stream did not get
/// through), so it is said plainly rather than hidden.
pub fn out_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(e).context(
            "stdout was closed before the stream ended (did the next command in the pipe fail?)",
        )
    } else {
        anyhow::Error::new(e).context("writing stdout")
    }
}

/// The error for a failed read from stdin.
pub fn in_error(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("reading stdin")
}

/// Cuts a stream into chunks of a fixed size and knows which one is the last, even when the stream's length is a
/// multiple of the size: after each full chunk it reads one byte ahead.
pub struct ChunkReader<R> {
    inner: R,
    size: usize,
    /// Room kept free after the data (e.g. for an authentication tag), so appending does not reallocate.
    spare: usize,
    ahead: Option<u8>,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R, size: usize, spare: usize) -> Self {
        ChunkReader {
            inner,
            size,
            spare,
            ahead: None,
            done: false,
        }
    }

    /// The next chunk in `buf` (reused) and whether it is the last; None after the last. The first chunk of an
    /// empty stream is empty and last.
    pub fn next(&mut self, mut buf: Vec<u8>) -> io::Result<Option<(Vec<u8>, bool)>> {
        if self.done {
            return Ok(None);
        }
        buf.reserve_exact((self.size + self.spare).saturating_sub(buf.len()));
        // resize only zero-fills what grew: a recycled buffer of a full chunk costs nothing here.
        buf.resize(self.size, 0);
        let mut n = 0;
        if let Some(b) = self.ahead.take() {
            buf[0] = b;
            n = 1;
        }
        n += read_full(&mut self.inner, &mut buf[n..])?;
        let mut last = n < self.size;
        if !last {
            let mut one = [0u8; 1];
            if read_full(&mut self.inner, &mut one)? == 0 {
                last = true;
            } else {
                self.ahead = Some(one[0]);
            }
        }
        self.done = last;
        buf.truncate(n);
        Ok(Some((buf, last)))
    }

    /// `next` as a chunk of the ordered map, numbered `index`.
    pub fn chunk(
        &mut self,
        buf: Vec<u8>,
        index: u64,
    ) -> anyhow::Result<Option<crate::ordered::Chunk>> {
        Ok(self
            .next(buf)
            .map_err(in_error)?
            .map(|(data, last)| crate::ordered::Chunk { index, data, last }))
    }
}
