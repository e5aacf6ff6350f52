//! The main wrapper every binary goes through: parse the command line, run, and turn the outcome into one line on
//! stderr and the documented exit code. No panics, no backtraces, no multi-line clap dumps for a typo.

use crate::exit::{code_of, Code};
use clap::Parser;
use std::io::Write;

/// Parses `P`, runs `run`, and exits. `name` prefixes every message (`zstream-hash: ...`).
pub fn main<P: Parser>(name: &'static str, run: impl FnOnce(P) -> anyhow::Result<()>) -> ! {
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
