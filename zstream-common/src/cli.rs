//! The main wrapper every binary goes through: parse the command line, run, and turn the outcome into one line on
//! stderr and the documented exit code. No panics, no backtraces, no multi-line clap dumps for a typo.

use crate::exit::{code_of, Code};
use clap::Parser;
use std::io::Write;

/// Parses `P`, runs `run`, and exits. `name` prefixes every message (`zstream-hash: ...`).
pub fn main<P: Parser>(name: &'static str, run: impl FnOnce(P) -> anyhow::Result<()>) -> ! {
    crate::progress::set_name(name);
    install_panic_hook(name);
    let args = match P::try_parse() {
        Ok(args) => args,
        Err(e) => exit_on_clap_error(name, e),
    };
    match run(args) {
        Ok(()) => std::process::exit(Code::Ok.as_i32()),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{name}: {err:#}");
            std::process::exit(code_of(&err).as_i32())
        }
    }
}

fn exit_on_clap_error(name: &str, e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::exit(
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                },
            )
        }
        _ => {
            // clap renders "error: <what>\n  <more of what>\n\nUsage: ...\n\nFor more information, try '--help'.";
            // keep the first paragraph (a missing argument's name is on its second line), as one line.
            let rendered = e.render().to_string();
            let para: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = if para.is_empty() {
                "invalid arguments".to_string()
            } else {
                para.join(" ")
            };
            let what = first.strip_prefix("error: ").unwrap_or(&first);
            let _ = writeln!(std::io::stderr(), "{name}: {what} (try --help)");
            std::process::exit(Code::Usage.as_i32())
        }
    }
}

/// A panic is a bug, but if one happens the user still gets one line and a runtime-error exit, not a backtrace.
fn install_panic_hook(name: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "{name}: internal error (a bug, please report it): {msg}{at}"
        );
        std::process::exit(Code::Runtime.as_i32());
    }));
}

/// `--threads N` of the stages with workers (seal, par). Bounded: a thread costs a stack and its buffers, and a
/// count in the thousands is a typo, not a plan.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ThreadsArg {
    /// Worker threads, 1 to 256 [default: the cores, as many as keep the buffers within 112 MiB].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

/// What the default thread count keeps a stage's buffers within; with the rest of the process the tool stays
/// under 128 MiB (README: memory).
pub const THREADS_BUDGET: u64 = 112 << 20;

impl ThreadsArg {
    /// The count given, or the cores, but no more than keep (2 x threads + 2) work units of `unit` bytes (what a
    /// worker holds: a chunk, a group) within `THREADS_BUDGET`; at least 1.
    pub fn get(&self, unit: u64) -> usize {
        if let Some(n) = self.threads {
            return n.into();
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let units = THREADS_BUDGET / unit.max(1);
        let fit = (units.saturating_sub(2) / 2).max(1);
        cores.min(usize::try_from(fit).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threads_fit_the_budget() {
        let t = ThreadsArg { threads: None };
        // 12 MiB groups (par's 10+2 of 1 MiB): at most (112/12 - 2)/2 = 3.
        assert!((1..=3).contains(&t.get(12 << 20)));
        // A unit larger than the budget still gets one worker.
        assert_eq!(t.get(1 << 30), 1);
        let given = ThreadsArg { threads: Some(200) };
        assert_eq!(given.get(1 << 30), 200);
    }
}
