//! `--progress`: bytes, rate and elapsed time on stderr (ETA when the size is known). Silent by default; with
//! `--progress` only when stderr is a terminal, so cron mail stays clean; `--progress=always` forces it.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The program's name, for every message (set once by `cli::main`).
static NAME: OnceLock<&'static str> = OnceLock::new();
/// The progress line now on the terminal, if one is: a message clears it and draws it again.
static DRAWN: Mutex<Option<String>> = Mutex::new(None);

pub fn set_name(name: &'static str) {
    let _ = NAME.set(name);
}

/// Prints one message line on stderr, prefixed with the program's name. A progress line on the terminal is
/// cleared first and drawn again after it, so the two never run together. Use it through `say!`.
pub fn say(msg: std::fmt::Arguments<'_>) {
    let drawn = DRAWN.lock().unwrap_or_else(|p| p.into_inner());
    let mut err = std::io::stderr().lock();
    if drawn.is_some() {
        let _ = write!(err, "\r\x1b[K");
    }
    let _ = writeln!(err, "{}: {msg}", NAME.get().copied().unwrap_or("zstream"));
    if let Some(line) = drawn.as_ref() {
        let _ = write!(err, "{line}");
    }
}

/// `say!("...", args)`: one message line on stderr (see `progress::say`).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::say(format_args!($($arg)*))
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum When {
    /// Only when stderr is a terminal.
    Auto,
    /// Always, one line per update when stderr is not a terminal.
    Always,
    /// Never (the default without `--progress`).
    #[default]
    Never,
}

/// The `--progress[=WHEN]` flag, flattened into every tool's arguments.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProgressArg {
    /// Show bytes, rate and elapsed time on stderr [auto: only when stderr is a terminal].
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_missing_value = "auto", default_value = "never")]
    pub progress: When,
}

const EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    name: &'static str,
    on: bool,
    tty: bool,
    start: Instant,
    last: Instant,
    bytes: u64,
    total: Option<u64>,
    note: String,
}

impl Progress {
    pub fn new(name: &'static str, when: When, total: Option<u64>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let on = match when {
            When::Always => true,
            When::Auto => tty,
            When::Never => false,
        };
        let now = Instant::now();
        Progress {
            name,
            on,
            tty,
            start: now,
            last: now,
            bytes: 0,
            total,
            note: String::new(),
        }
    }

    /// A short fact shown after the numbers from the next line on, e.g. what a ZFS stream header said.
    pub fn note(&mut self, note: impl Into<String>) {
        self.note = note.into();
    }

    /// Counts `n` more bytes; prints at most once a second. Cheap enough to call per buffer.
    #[inline]
    pub fn add(&mut self, n: u64) {
        self.bytes += n;
        if self.on && self.last.elapsed() >= EVERY {
            self.last = Instant::now();
            self.print(false);
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The final line (only when progress is on).
    pub fn finish(&mut self) {
        if self.on {
            self.print(true);
        }
    }

    fn print(&self, last: bool) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        };
        let mut line = format!(
            "{}: {} {}/s {}",
            self.name,
            bytesize::ByteSize(self.bytes).display().iec(),
            bytesize::ByteSize(rate as u64).display().iec(),
            clock(secs)
        );
        if let Some(total) = self.total.filter(|&t| t > 0 && !last) {
            let pct = 100.0 * self.bytes as f64 / total as f64;
            let eta = if rate > 0.0 {
                total.saturating_sub(self.bytes) as f64 / rate
            } else {
                0.0
            };
            line += &format!(" {pct:.0}% ETA {}", clock(eta));
        }
        if !self.note.is_empty() {
            line += &format!(" [{}]", self.note);
        }
        let mut drawn = DRAWN.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            *drawn = (!last).then(|| line.clone());
            write!(err, "\r\x1b[K{line}{}", if last { "\n" } else { "" })
        } else {
            writeln!(err, "{line}")
        };
    }
}

fn clock(secs: f64) -> String {
    let s = secs as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
