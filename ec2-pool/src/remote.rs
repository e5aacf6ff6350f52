//! The instance's side, through SSH exactly as `ssh` takes it: ec2-pool runs `SSH... HOST 'SCRIPT'`, SSH being
//! `--ssh` split at spaces and SCRIPT one string for a POSIX shell. Data and keys travel on that command's stdin,
//! never in its argv, environment or a file. Each script is idempotent: a step killed halfway is run again.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zstream_common::progress::{Progress, When};

pub const DEFAULT_SSH: &str = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -l ubuntu";

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
}

/// `s` as one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What every script starts with: stop at the first failure, and `$s` for root's commands (empty when the login
/// is root, `sudo -n` otherwise: a password prompt would hang a cron job).
const PRELUDE: &str = "set -eu\ns=; [ \"$(id -u)\" = 0 ] || s='sudo -n'\n";

impl Ssh {
    pub fn new(spec: &str, dry_run: bool) -> anyhow::Result<Ssh> {
        let argv: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(zstream_common::usage("--ssh is empty"));
        }
        Ok(Ssh { argv, dry_run })
    }

    /// Runs `script` on `host` and returns its stdout. A failure names the step and the remote command's last
    /// line of stderr.
    pub fn run(
        &self,
        host: &str,
        step: &str,
        script: &str,
        input: Input<'_>,
    ) -> anyhow::Result<String> {
        self.exec(host, step, script, input, false)
    }

    /// `run`, the remote command's stdout passed on as this process's (a send stream).
    pub fn run_to_stdout(
        &self,
        host: &str,
        step: &str,
        script: &str,
        input: Input<'_>,
    ) -> anyhow::Result<()> {
        self.exec(host, step, script, input, true).map(|_| ())
    }

    fn exec(
        &self,
        host: &str,
        step: &str,
        script: &str,
        input: Input<'_>,
        pass_stdout: bool,
    ) -> anyhow::Result<String> {
        let script = format!("{PRELUDE}{script}");
        if self.dry_run {
            let stdin = match input {
                Input::Nothing => "",
                Input::Key(_) => " (stdin: the pool's raw key)",
                Input::Stdin(_) => " (stdin: this command's stdin)",
            };
            zstream_common::say!(
                "dry run: would run on {host} ({step}){stdin}: {} {host} SCRIPT, SCRIPT being:",
                self.argv.join(" ")
            );
            for line in script.lines() {
                zstream_common::say!("    {line}");
            }
            return Ok(String::new());
        }
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).arg(host).arg(&script);
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
    pub fn wait(&self, host: &str, within: Duration) -> anyhow::Result<()> {
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

/// The scripts, one per step. `pool` and the device paths are quoted here; nothing else is interpolated.
pub mod script {
    use super::quote;

    fn list(devs: &[String]) -> String {
        devs.iter().map(|d| quote(d)).collect::<Vec<_>>().join(" ")
    }

    /// OpenZFS from the distribution once; swap (MiB, 0 for none) and an ARC cap (bytes, 0 to leave it) on every
    /// start, since neither survives a stop.
    pub fn prepare(swap_file: &str, swap_mib: u64, arc_max: u64) -> String {
        let f = quote(swap_file);
        format!(
            "if ! command -v zpool >/dev/null 2>&1; then\n\
             \x20 $s apt-get update -q >&2\n\
             \x20 $s env DEBIAN_FRONTEND=noninteractive apt-get install -yq zfsutils-linux >&2\n\
             fi\n\
             if [ {swap_mib} -gt 0 ] && ! grep -q \"^\"{f}\" \" /proc/swaps; then\n\
             \x20 if [ ! -e {f} ]; then\n\
             \x20   $s mkdir -p \"$(dirname {f})\"\n\
             \x20   $s dd if=/dev/zero of={f} bs=1M count={swap_mib} status=none\n\
             \x20   $s chmod 600 {f}\n\
             \x20   $s mkswap {f} >/dev/null\n\
             \x20 fi\n\
             \x20 $s swapon {f}\n\
             fi\n\
             a=/sys/module/zfs/parameters/zfs_arc_max\n\
             if [ {arc_max} -gt 0 ] && [ -e $a ]; then echo {arc_max} | $s tee $a >/dev/null; fi\n"
        )
    }

    /// Waits for the devices to appear (udev names NVMe volumes a moment after they attach).
    pub fn await_devices(devs: &[String]) -> String {
        format!(
            "for d in {}; do\n\
             \x20 i=0\n\
             \x20 while [ ! -e \"$d\" ]; do\n\
             \x20   i=$((i + 1)); [ $i -le 120 ] || {{ echo \"device $d did not appear\" >&2; exit 1; }}; sleep 1\n\
             \x20 done\n\
             done\n",
            list(devs)
        )
    }

    /// Creates the pool with its top dataset encrypted (the raw key on stdin), unless it exists already.
    pub fn create(pool: &str, dir: &str, raidz: u32, vdevs: &[Vec<String>]) -> String {
        let p = quote(pool);
        let groups: Vec<String> = vdevs
            .iter()
            .map(|v| format!("raidz{raidz} {}", list(v)))
            .collect();
        format!(
            "if $s zpool list -H -o name {p} >/dev/null 2>&1 || $s zpool import -N -d {d} {p} 2>/dev/null; then\n\
             \x20 echo exists\n\
             else\n\
             \x20 $s zpool create -O encryption=on -O keyformat=raw -O keylocation=prompt -O compression=on \
             -O atime=off {p} {}\n\
             \x20 echo created\n\
             fi\n",
            groups.join(" "),
            d = quote(dir)
        )
    }

    /// Imports the pool (keys not loaded) unless it is imported.
    pub fn import(pool: &str, dir: &str) -> String {
        let p = quote(pool);
        format!(
            "$s zpool list -H -o name {p} >/dev/null 2>&1 || $s zpool import -N -d {} {p}\n",
            quote(dir)
        )
    }

    /// Loads the key from stdin unless it is loaded, then mounts what can be.
    pub fn unlock(pool: &str) -> String {
        let p = quote(pool);
        format!(
            "if [ \"$($s zfs get -H -o value keystatus {p})\" != available ]; then $s zfs load-key {p}; fi\n\
             $s zfs list -H -o name,canmount,mounted -t filesystem -r {p} | while read -r ds can mounted; do\n\
             \x20 if [ \"$can\" = on ] && [ \"$mounted\" = no ]; then $s zfs mount \"$ds\"; fi\n\
             done\n"
        )
    }

    /// Unmounts every dataset (children first), unloads the key and exports the pool, if it is imported. The
    /// export is tried for 20 s: right after a receive ends (or is killed) the pool can be busy for a moment.
    pub fn lock(pool: &str) -> String {
        let p = quote(pool);
        format!(
            "if $s zpool list -H -o name {p} >/dev/null 2>&1; then\n\
             \x20 $s zfs list -H -o name,mounted -t filesystem -r {p} | sort -r | while read -r ds mounted; do\n\
             \x20   if [ \"$mounted\" = yes ]; then $s zfs unmount \"$ds\"; fi\n\
             \x20 done\n\
             \x20 if [ \"$($s zfs get -H -o value keystatus {p})\" = available ]; then $s zfs unload-key -r {p}; fi\n\
             \x20 i=0\n\
             \x20 until $s zpool export {p}; do\n\
             \x20   i=$((i + 1)); [ $i -lt 10 ] || exit 1; sleep 2\n\
             \x20 done\n\
             fi\n"
        )
    }

    /// Lets every device use its new size.
    pub fn expand(pool: &str, devs: &[String]) -> String {
        format!(
            "for d in {}; do $s zpool online -e {} \"$d\"; done\n",
            list(devs),
            quote(pool)
        )
    }

    /// Adds a vdev unless its first device is in the pool already.
    pub fn add_vdev(pool: &str, raidz: u32, devs: &[String]) -> String {
        let p = quote(pool);
        format!(
            "if ! $s zpool status {p} | grep -qF -- \"$(basename {})\"; then $s zpool add {p} raidz{raidz} {}; fi\n",
            quote(&devs[0]),
            list(devs)
        )
    }

    /// The pool's use in bytes as its top dataset sees it (what it holds and what it can still take, parity
    /// aside) and its health: `USED AVAILABLE HEALTH`, or nothing when it is not imported.
    pub fn usage(pool: &str) -> String {
        let p = quote(pool);
        format!(
            "if $s zpool list -H -o name {p} >/dev/null 2>&1; then\n\
             \x20 echo $($s zfs get -H -p -o value used,available {p}) $($s zpool list -H -o health {p})\n\
             fi\n"
        )
    }

    /// The snapshots of `dataset` (not of its children), oldest first, one name a line; then `--`; then `zfs get`'s
    /// `NAME guid VALUE` and `NAME referenced VALUE` lines for them. Nothing when the dataset does not exist.
    pub fn snapshots(dataset: &str) -> String {
        let d = quote(dataset);
        format!(
            "if $s zfs list -H -o name {d} >/dev/null 2>&1; then\n\
             \x20 names=$($s zfs list -H -t snapshot -o name -s createtxg -d 1 {d})\n\
             \x20 printf '%s\\n--\\n' \"$names\"\n\
             \x20 if [ -n \"$names\" ]; then printf '%s\\n' \"$names\" | tr '\\n' '\\0' \
             | xargs -0 $s zfs get -H -p -o name,property,value guid,referenced; fi\n\
             fi\n"
        )
    }

    /// Sends `snapshot` (from `from`, a snapshot name of the same dataset) to stdout.
    pub fn send(snapshot: &str, from: Option<&str>) -> String {
        match from {
            Some(f) => format!(
                "$s zfs send -i {} {}\n",
                quote(&format!("@{f}")),
                quote(snapshot)
            ),
            None => format!("$s zfs send {}\n", quote(snapshot)),
        }
    }

    /// Destroys snapshots, each by its full name.
    pub fn destroy_snapshots(snapshots: &[String]) -> String {
        format!(
            "for n in {}; do $s zfs destroy \"$n\"; done\n",
            list(snapshots)
        )
    }

    /// Receives the stream on stdin into `target`, making its parents first.
    pub fn receive(target: &str, force: bool) -> String {
        let t = quote(target);
        let parent = target.rsplit_once('/').map(|(p, _)| quote(p));
        let mut s = String::new();
        if let Some(p) = parent {
            s.push_str(&format!(
                "$s zfs list -H -o name {p} >/dev/null 2>&1 || $s zfs create -p {p}\n"
            ));
        }
        // What follows the stream's END record is drained: a receive may stop reading inside that record (zfs-fuse's
        // does), and the sender must not then see a closed pipe and call a whole stream failed.
        s.push_str(&format!(
            "$s zfs receive{} {t} && r=0 || r=$?\ncat >/dev/null\nexit $r\n",
            if force { " -F" } else { "" }
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn scripts_are_posix_shell() {
        let devs = vec![
            "/dev/disk/by-id/nvme-x_vol1".to_string(),
            "/dev/y".to_string(),
        ];
        for s in [
            script::prepare("/var/lib/ec2-pool/swap", 1024, 1 << 28),
            script::await_devices(&devs),
            script::create("p", "/dev/disk/by-id", 1, &[devs.clone(), devs.clone()]),
            script::import("p", "/d"),
            script::unlock("p"),
            script::lock("p"),
            script::expand("p", &devs),
            script::add_vdev("p", 1, &devs),
            script::usage("p"),
            script::receive("p/tank/home", true),
            script::snapshots("p/tank/home"),
            script::send("p/tank/home@b", Some("a")),
            script::destroy_snapshots(&devs),
        ] {
            let full = format!("{PRELUDE}{s}");
            let out = Command::new("sh")
                .args(["-n", "-c", &full])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{full}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
