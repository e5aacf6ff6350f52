//! The instance's side, through SSH exactly as `ssh` takes it: ec2-pool runs `SSH... -o PIN... HOST 'SCRIPT'`,
//! SSH being `--ssh` split at spaces, the options pinning the instance's host key (learned at create, kept in a
//! tag), and SCRIPT one string for a POSIX shell (crate::script). Data and keys travel on that command's stdin,
//! never in its argv, environment or a file.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zstream_common::progress::{Progress, When};

pub const DEFAULT_SSH: &str = "ssh -o BatchMode=yes -l ubuntu";

/// What the remote command reads on its stdin.
pub enum Input<'a> {
    Nothing,
    /// The pool's raw key: written, then stdin is closed.
    Key(&'a [u8]),
    /// This process's stdin, passed on (a send stream).
    Stdin(When),
}

pub struct Ssh {
    argv: Vec<String>,
    pub dry_run: bool,
    /// Where each instance's known_hosts file is written (public keys only), for the life of this process.
    known: tempfile::TempDir,
}

/// An instance as SSH reaches it: its address, and the host key it must show, under a name of its own
/// (`HostKeyAlias`): the address changes at every start, the instance and its key do not.
#[derive(Clone, Debug)]
pub struct Host {
    pub address: String,
    pub alias: String,
    pub key: String,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address)
    }
}

/// The options of ssh's that decide which host keys it trusts: ec2-pool sets them, and ssh keeps the first value
/// it is given for each, so one in --ssh would overrule the pinned key.
const PINNING: [&str; 3] = [
    "stricthostkeychecking",
    "userknownhostsfile",
    "hostkeyalias",
];

/// `s` as one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What every script starts with: stop at the first failure, and `$s` for root's commands (empty when the login
/// is root, `sudo -n` otherwise: a password prompt would hang a cron job).
pub const PRELUDE: &str = "set -eu\ns=; [ \"$(id -u)\" = 0 ] || s='sudo -n'\n";

impl Ssh {
    pub fn new(spec: &str, dry_run: bool) -> anyhow::Result<Ssh> {
        let argv: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(zstream_common::usage("--ssh is empty"));
        }
        if let Some(o) = pinning_option(&argv) {
            return Err(zstream_common::usage(format!(
                "--ssh sets {o}: ec2-pool pins each instance's host key itself (learned at create, checked at every \
                 start); remove it"
            )));
        }
        let known = tempfile::Builder::new()
            .prefix("ec2-pool-known-hosts.")
            .tempdir()
            .map_err(|e| anyhow::anyhow!("making a directory for known_hosts files: {e}"))?;
        Ok(Ssh {
            argv,
            dry_run,
            known,
        })
    }

    /// The options that make ssh accept `host`'s pinned key and no other.
    fn pin(&self, host: &Host) -> anyhow::Result<Vec<String>> {
        let file = self.known.path().join(&host.alias);
        if self.dry_run {
            return Ok(pin_options(&host.alias, &file));
        }
        if !file.exists() {
            std::fs::write(&file, format!("{} {}\n", host.alias, host.key))
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
        }
        Ok(pin_options(&host.alias, &file))
    }

    /// Runs `script` on `host` and returns its stdout. A failure names the step and the remote command's last
    /// line of stderr.
    pub fn run(
        &self,
        host: &Host,
        step: &str,
        script: &str,
        input: Input<'_>,
    ) -> anyhow::Result<String> {
        self.exec(host, step, script, input, false)
    }

    /// `run`, the remote command's stdout passed on as this process's (a send stream).
    pub fn run_to_stdout(
        &self,
        host: &Host,
        step: &str,
        script: &str,
        input: Input<'_>,
    ) -> anyhow::Result<()> {
        self.exec(host, step, script, input, true).map(|_| ())
    }

    fn exec(
        &self,
        host: &Host,
        step: &str,
        script: &str,
        input: Input<'_>,
        pass_stdout: bool,
    ) -> anyhow::Result<String> {
        let script = format!("{PRELUDE}{script}");
        let pin = self.pin(host)?;
        if self.dry_run {
            let stdin = match input {
                Input::Nothing => "",
                Input::Key(_) => " (stdin: the pool's raw key)",
                Input::Stdin(_) => " (stdin: this command's stdin)",
            };
            zstream_common::say!(
                "dry run: would run on {host} ({step}){stdin}: {} {} {host} SCRIPT, SCRIPT being:",
                self.argv.join(" "),
                pin.join(" ")
            );
            for line in script.lines() {
                zstream_common::say!("    {line}");
            }
            return Ok(String::new());
        }
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .args(&pin)
            .arg(&host.address)
            .arg(&script);
        cmd.stdin(match input {
            Input::Nothing => Stdio::null(),
            _ => Stdio::piped(),
        });
        cmd.stdout(if pass_stdout {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("{step}: running {}: {e}", self.argv[0]))?;
        let out = child.stdout.take();
        let mut err = child.stderr.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut out) = out {
                let _ = out.read_to_end(&mut b);
            }
            b
        });
        let stderr = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let fed = match input {
            Input::Nothing => Ok(()),
            Input::Key(k) => {
                let mut w = child.stdin.take().expect("piped");
                // A remote command that does not read its key fails on its own; a closed pipe here is not news.
                let _ = w.write_all(k);
                Ok(())
            }
            Input::Stdin(when) => feed(child.stdin.take().expect("piped"), when),
        };
        let status = child
            .wait()
            .map_err(|e| anyhow::anyhow!("{step}: waiting for {}: {e}", self.argv[0]))?;
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            let text = String::from_utf8_lossy(&stderr);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| c.to_string());
            // ssh exits 255 when it could not reach the host or log in.
            let what = if status.code() == Some(255) {
                "could not be reached, or the command failed"
            } else {
                "failed"
            };
            anyhow::bail!("{step} on {host} {what} (exit {code}): {last}");
        }
        fed.map_err(|e| e.context(format!("{step}: passing stdin on")))?;
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// Waits until `host` answers over SSH (an instance boots in a minute or so).
    pub fn wait(&self, host: &Host, within: Duration) -> anyhow::Result<()> {
        if self.dry_run {
            return self
                .run(host, "waiting for SSH", "true", Input::Nothing)
                .map(|_| ());
        }
        let t = Instant::now();
        let mut pause = Duration::from_secs(1);
        loop {
            match self.run(host, "waiting for SSH", "true", Input::Nothing) {
                Ok(_) => return Ok(()),
                // Another key than the pinned one answers: waiting will not change that, and nothing is sent to it.
                Err(e) if format!("{e:#}").contains("Host key verification failed") => {
                    return Err(e.context(format!(
                        "{host} does not show the host key {} had when it was created: not trusted",
                        host.alias.trim_start_matches("ec2-pool-")
                    )))
                }
                Err(e) if t.elapsed() + pause > within => {
                    return Err(e.context(format!(
                        "{host} did not answer over SSH within {}s",
                        within.as_secs()
                    )))
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

fn pin_options(alias: &str, file: &std::path::Path) -> Vec<String> {
    [
        format!("HostKeyAlias={alias}"),
        format!("UserKnownHostsFile={}", file.display()),
        "StrictHostKeyChecking=yes".to_string(),
        "UpdateHostKeys=no".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// The first option in `argv` (`-o Name=value` or `-oName=value`) that decides which host keys ssh trusts.
fn pinning_option(argv: &[String]) -> Option<String> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let opt = match a.strip_prefix("-o") {
            Some("") => it.next().map(String::as_str),
            Some(rest) => Some(rest),
            None => None,
        };
        let Some(opt) = opt else { continue };
        let name = opt
            .split(['=', ' '])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if PINNING.contains(&name.as_str()) {
            return Some(opt.to_string());
        }
    }
    None
}

/// Copies this process's stdin to the remote command, counting for `--progress`.
fn feed(mut w: std::process::ChildStdin, when: When) -> anyhow::Result<()> {
    let mut input = zstream_common::pipe::stdin();
    let mut p = Progress::new("receive", when, zstream_common::pipe::known_size(&*input));
    let mut buf = vec![0u8; zstream_common::BUF_SIZE];
    loop {
        let n = zstream_common::pipe::read_full(&mut *input, &mut buf)
            .map_err(zstream_common::pipe::in_error)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .map_err(|e| anyhow::anyhow!("the remote receive stopped reading: {e}"))?;
        p.add(n as u64);
    }
    p.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_ec2_pools_to_pin() {
        let argv = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            pinning_option(&argv("ssh -o BatchMode=yes -l ubuntu")),
            None
        );
        assert_eq!(
            pinning_option(&argv(
                "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
            ))
            .as_deref(),
            Some("StrictHostKeyChecking=accept-new")
        );
        assert!(pinning_option(&argv("ssh -oUserKnownHostsFile=/dev/null")).is_some());
        assert!(pinning_option(&argv("ssh -o hostkeyalias=x")).is_some());
        let e = Ssh::new("ssh -o StrictHostKeyChecking=no", false)
            .err()
            .unwrap();
        assert!(
            format!("{e}").contains("pins each instance's host key"),
            "{e}"
        );
        // The pinned options name the alias and its file, and refuse any other key.
        let o = pin_options("ec2-pool-i-1", std::path::Path::new("/k/f"));
        assert_eq!(
            o.join(" "),
            "-o HostKeyAlias=ec2-pool-i-1 -o UserKnownHostsFile=/k/f -o StrictHostKeyChecking=yes -o UpdateHostKeys=no"
        );
    }

    #[test]
    fn quoting_survives_any_name() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        let out = Command::new("sh")
            .args(["-c", &format!("printf %s {}", quote("x'; rm -rf / #"))])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"x'; rm -rf / #");
    }
}
