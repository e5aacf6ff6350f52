//! What an installation carries besides the binaries, made from the tools' own clap definitions so that it cannot
//! drift from them: a man page per tool and per subcommand (with the tool's examples and the exit codes every tool
//! shares), a page per cycle script (from its `--help`), and bash, zsh and fish completions. scripts/install and
//! scripts/package run it; it is never installed itself.

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};

pub mod script;

#[derive(Parser, Debug)]
#[command(name = "zstream-dist", version = zstream_common::VERSION)]
pub struct Args {
    /// Write the man pages (section 1, uncompressed) to DIR.
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
    /// Write the completions to DIR/bash, DIR/zsh and DIR/fish.
    #[arg(long, value_name = "DIR")]
    pub completions: Option<PathBuf>,
    /// A cycle script whose `--help` becomes its page (repeatable).
    #[arg(long, value_name = "PATH")]
    pub script: Vec<PathBuf>,
}

/// The exit codes every tool and script shares (README, "Exit codes"), as roff.
const EXIT_STATUS: &str = ".TP\n0\nok\n.TP\n1\nruntime error: I/O, network, a failed command, a closed pipe\n\
.TP\n2\nusage error: bad arguments or combinations, unreadable argument files\n\
.TP\n3\nintegrity failure: a digest, authentication tag or parity that does not hold and cannot be repaired; \
a damaged or incomplete ZFS stream\n\
.TP\n75\ntry again later: an archive restore that is not ready yet, a lock another run holds\n\
.PP\nAny other code (a signal, 101) is a failure too.\n";

const SEE_ALSO: &str = ".BR zstream-hash (1),\n.BR zstream-seal (1),\n.BR zstream-par (1),\n\
.BR zstream-ship (1),\n.BR zstream-catalog (1),\n.BR ec2-pool (1),\n.BR zstream-backup (1),\n.BR zstream-restore (1),\n.BR zstream-verify (1).\n\
The formats: /usr/share/doc/zstream/formats/. The disaster runbook: /usr/share/doc/zstream/RESTORE.md.\n";

/// The tools' command definitions.
pub fn commands() -> Vec<clap::Command> {
    vec![
        zstream_hash::app::Args::command(),
        zstream_seal::app::Args::command(),
        zstream_par::app::Args::command(),
        zstream_ship::app::Args::command(),
        zstream_catalog::app::Cli::command(),
        ec2_pool::app::Args::command(),
    ]
}

pub fn run(args: Args) -> Result<()> {
    if args.man.is_none() && args.completions.is_none() {
        return Err(zstream_common::usage(
            "give --man DIR, --completions DIR or both",
        ));
    }
    if let Some(dir) = &args.man {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for cmd in commands() {
            man_pages(cmd, dir)?;
        }
        for script in &args.script {
            script_page(script, dir)?;
        }
    }
    if let Some(dir) = &args.completions {
        completions(dir, &args.script)?;
    }
    Ok(())
}

/// `NAME.1` for the tool and `NAME-SUB.1` for each of its subcommands.
fn man_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    let name = cmd.get_name().to_string();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .cloned()
        .collect();
    write_page(cmd, &name, dir)?;
    for sub in subs {
        // clap takes names as &'static str (without its "string" feature, which would rebuild it for every
        // tool): this runs once and exits, so the few names are leaked.
        let page: &'static str = Box::leak(format!("{name}-{}", sub.get_name()).into_boxed_str());
        let bin: &'static str = Box::leak(format!("{name} {}", sub.get_name()).into_boxed_str());
        let sub = sub
            .name(page)
            .bin_name(bin)
            .version(zstream_common::VERSION);
        write_page(sub, page, dir)?;
    }
    Ok(())
}

fn write_page(cmd: clap::Command, page: &str, dir: &Path) -> Result<()> {
    // The "help" subcommand has no page of its own; the examples (after_help) keep their lines as written.
    let cmd = cmd.disable_help_subcommand(true);
    let examples = cmd.get_after_help().map(|h| h.to_string());
    let has_subs = cmd.get_subcommands().next().is_some();
    let man = clap_mangen::Man::new(cmd.clone())
        .date(env_date())
        .source(format!("zstream {}", env!("CARGO_PKG_VERSION")))
        .manual("zstream");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if has_subs {
        man.render_subcommands_section(&mut out)?;
    }
    let mut tail = String::new();
    if let Some(text) = examples {
        tail.push_str(".SH EXAMPLES\n.nf\n");
        for l in text.lines() {
            tail.push_str(&roff_line(l));
            tail.push('\n');
        }
        tail.push_str(".fi\n");
    }
    tail.push_str(&format!(
        ".SH \"EXIT STATUS\"\n{EXIT_STATUS}.SH \"SEE ALSO\"\n{SEE_ALSO}"
    ));
    out.extend_from_slice(tail.as_bytes());
    man.render_version_section(&mut out)?;
    let path = dir.join(format!("{page}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
}

/// A cycle script's name, from its path.
fn script_name(script: &Path) -> Result<String> {
    Ok(script
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: a script's name", script.display()))?
        .to_string())
}

/// What a cycle script's `--help` prints.
fn script_help(script: &Path) -> Result<String> {
    let help = std::process::Command::new(script)
        .arg("--help")
        .output()
        .with_context(|| format!("running {} --help", script.display()))?;
    if !help.status.success() {
        bail!("{} --help exited {}", script.display(), help.status);
    }
    Ok(String::from_utf8_lossy(&help.stdout).into_owned())
}

/// A cycle script's page: its first comment as NAME, its `--help` as it prints it.
fn script_page(script: &Path, dir: &Path) -> Result<()> {
    let name = script_name(script)?;
    let text =
        std::fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    // "# zstream-backup: one run of the backup cycle ..." up to the first full stop.
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("# {name}: ")))
        .map(|s| {
            s.split(". ")
                .next()
                .unwrap_or(s)
                .trim_end_matches('.')
                .to_string()
        })
        .unwrap_or_else(|| "part of the zstream backup cycle".to_string());
    let body: String = script_help(script)?
        .lines()
        .map(|l| format!("{}\n", roff_line(l)))
        .collect();
    let page = format!(
        ".TH {upper} 1 \"{date}\" \"zstream {version}\" zstream\n.SH NAME\n{name} \\- {summary}\n\
         .SH DESCRIPTION\n.nf\n{body}.fi\n.SH \"EXIT STATUS\"\n{EXIT_STATUS}.SH \"SEE ALSO\"\n{SEE_ALSO}",
        upper = name.to_uppercase(),
        date = env_date(),
        version = env!("CARGO_PKG_VERSION"),
        summary = roff_line(&summary),
    );
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}

/// One line of text as roff shows it literally: backslashes escaped, and a leading dot or quote kept from being
/// read as a request.
fn roff_line(l: &str) -> String {
    let l = l.replace('\\', "\\e").replace('-', "\\-");
    if l.starts_with('.') || l.starts_with('\'') {
        format!("\\&{l}")
    } else {
        l
    }
}

/// The pages' date: SOURCE_DATE_EPOCH when set (reproducible builds), else today.
fn env_date() -> String {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// bash, zsh and fish completions: the tools' from their clap definitions, the cycle scripts' from their
/// `--help` (script.rs). Each file is named as its shell loads it on demand: bash-completion by the command's
/// name, zsh by `_NAME` on its fpath, fish by `NAME.fish`.
fn completions(dir: &Path, scripts: &[PathBuf]) -> Result<()> {
    use clap_complete::Shell;
    let (bash, zsh, fish) = (dir.join("bash"), dir.join("zsh"), dir.join("fish"));
    for (shell, out) in [
        (Shell::Bash, &bash),
        (Shell::Zsh, &zsh),
        (Shell::Fish, &fish),
    ] {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        for mut cmd in commands() {
            let name = cmd.get_name().to_string();
            if shell == Shell::Bash {
                write(&bash.join(&name), &bash_completion(&mut cmd, &name))?;
            } else {
                clap_complete::generate_to(shell, &mut cmd, &name, out)
                    .with_context(|| format!("writing {shell} completions to {}", out.display()))?;
            }
        }
    }
    for s in scripts {
        let name = script_name(s)?;
        let opts = script::options(&name, &script_help(s)?);
        if opts.is_empty() {
            bail!("{}: its --help lists no options", s.display());
        }
        write(&bash.join(&name), &script::bash(&name, &opts))?;
        write(&zsh.join(format!("_{name}")), &script::zsh(&name, &opts))?;
        write(
            &fish.join(format!("{name}.fish")),
            &script::fish(&name, &opts),
        )?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A tool's bash completion. clap_complete spells a hyphenated command's states two ways (its loop over the words
/// escapes the name's hyphens as `__`, its case labels as `__subcmd__`; clap issue 6421, open in 4.6.12), so that
/// nothing completed after a subcommand. Made for the name without hyphens, the two agree; then the `complete`
/// lines get the command's real name.
pub fn bash_completion(cmd: &mut clap::Command, name: &str) -> String {
    let plain = name.replace('-', "_");
    let mut buf = Vec::new();
    clap_complete::generate(clap_complete::Shell::Bash, cmd, &plain, &mut buf);
    let text = String::from_utf8_lossy(&buf);
    let tail = format!(" {plain}");
    text.lines()
        .map(|l| match l.strip_suffix(&tail) {
            Some(head) if l.trim_start().starts_with("complete ") => format!("{head} {name}\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}
