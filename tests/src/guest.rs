//! The real-OpenZFS tier: a qemu guest with Debian 12's kernel and OpenZFS 2.3 (scripts/guest builds, boots and
//! drives it; this is its test-side handle). Two ways in:
//! - [`run`]: a fresh guest for one command (a tiny init, no network), its output and exit code;
//! - [`Guest`]: a long-lived guest reached over SSH on a loopback port (also a real SSH target for ec2-pool),
//!   with disks hotplugged, enlarged and unplugged while it runs. [`shared`] is one per test binary.
//!
//! Inside: the clone at `/zstream/src`, the built binaries at `/zstream/bin` (first on PATH), both read-only.
//! A guest that cannot be built or booted fails the test with scripts/guest's message (never a skip).

use crate::cycle::workspace;
use crate::proc::{output_within, Run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// How long one command in the guest may take: it runs under emulation (TCG), several times slower than here.
pub const LIMIT: Duration = Duration::from_secs(1200);

/// Where the guest sees the built binaries and the clone.
pub const BIN: &str = "/zstream/bin";
pub const SRC: &str = "/zstream/src";

/// scripts/guest in this clone, sharing in the binaries this test run built (the profile directory the test
/// executable's own binaries are in).
fn script() -> Command {
    let mut c = Command::new(workspace().join("scripts/guest"));
    let bins = crate::bins::bin("zstream-hash")
        .parent()
        .expect("target/<profile>")
        .to_path_buf();
    c.env("ZSTREAM_GUEST_BIN", bins);
    c
}

#[track_caller]
fn script_run(args: &[&str], limit: Duration) -> Run {
    let mut c = script();
    c.args(args);
    let what = format!("scripts/guest {}", args.join(" "));
    let out = output_within(c, b"", limit, &what);
    Run { cmd: what, out }
}

/// One command (a bash script, as root) in a fresh guest with `disks` extra sparse virtio disks (sizes such as
/// "1G": /dev/vdb... and /dev/disk/by-id/virtio-zdisk0...). Exit 125 is the guest's own failure.
#[track_caller]
pub fn run(script: &str, disks: &[&str]) -> Run {
    let mut args = vec!["run".to_string()];
    for d in disks {
        args.extend(["--disk".to_string(), d.to_string()]);
    }
    args.extend(["--".to_string(), script.to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    script_run(&a, LIMIT)
}

/// How a hotplugged disk appears in the guest.
#[derive(Clone, Copy, Debug)]
pub enum Bus {
    /// virtio-blk: `/dev/disk/by-id/virtio-SERIAL`.
    Virtio,
    /// qemu's NVMe controller: `/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_SERIAL`, and the EC2 name
    /// `nvme-Amazon_Elastic_Block_Store_SERIAL` the guest's udev rule adds (scripts/lib/guest-init). qemu cannot
    /// resize it: grow tests take virtio disks.
    Nvme,
}

/// A long-lived guest; stopped when dropped, or when the test process ends (scripts/guest's --owner watcher).
pub struct Guest {
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Guest {
    /// Boots a guest (SSH up) with `disks` extra sparse virtio disks; `systemd`: systemd as PID 1.
    #[track_caller]
    pub fn start(disks: &[&str], systemd: bool) -> Guest {
        // Short: qemu's monitor socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("zg")
            .tempdir_in("/tmp")
            // scripts/guest start takes an empty directory.
            .expect("a state directory");
        let state = dir.path().to_path_buf();
        let owner = std::process::id().to_string();
        let mut args = vec!["start", "--owner", &owner];
        for d in disks {
            args.extend(["--disk", d]);
        }
        if systemd {
            args.push("--systemd");
        }
        let s = state.to_str().expect("a UTF-8 path");
        args.push(s);
        let r = script_run(&args, Duration::from_secs(3600));
        assert_eq!(
            r.code(),
            Some(0),
            "the OpenZFS guest did not start (scripts/guest builds it when its cache is missing: run as root, \
             with Debian's mirror reachable):\n{}",
            r.describe()
        );
        Guest { state, _dir: dir }
    }

    /// The state directory: ssh_config, the key, the console log (io/console.log), disks/.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// `ssh -F STATE/ssh_config`: with the host name `guest` (root; `-l ubuntu` for the sudoer), the way in
    /// for anything that takes an SSH command (ec2-pool's --ssh).
    pub fn ssh_command(&self) -> Vec<String> {
        vec![
            "ssh".into(),
            "-F".into(),
            self.state.join("ssh_config").display().to_string(),
        ]
    }

    /// Runs `script` as root in the guest with bash -o pipefail -eu, `input` on stdin, `env` set.
    pub fn sh_with(&self, script: &str, input: &[u8], env: &[(String, String)]) -> Run {
        let mut remote = String::from("env");
        for (k, v) in env {
            remote.push_str(&format!(" {}", quote(&format!("{k}={v}"))));
        }
        // --norc: bash started by sshd reads /etc/bash.bashrc, which fails under -u (PS1 unset).
        remote.push_str(&format!(" bash --norc -o pipefail -euc {}", quote(script)));
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.state.join("ssh_config"))
            .arg("guest")
            .arg(&remote);
        let mut out = output_within(c, input, LIMIT, script);
        if out.status.code() == Some(255) {
            out.stderr.extend(self.why_ssh_failed().into_bytes());
        }
        Run {
            cmd: format!("(in the guest) {script}"),
            out,
        }
    }

    /// What the guest was doing when SSH gave up on it (exit 255): whether qemu runs, and its console's tail
    /// (the kernel logs there: a stall, a hung task, an OOM kill).
    fn why_ssh_failed(&self) -> String {
        let pid = std::fs::read_to_string(self.state.join("qemu.pid")).unwrap_or_default();
        let alive = Path::new("/proc").join(pid.trim()).exists() && !pid.trim().is_empty();
        let console =
            std::fs::read_to_string(self.state.join("io/console.log")).unwrap_or_default();
        let lines: Vec<&str> = console.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "\n(ssh exit 255: qemu {}; the guest's console, last lines:)\n{tail}\n",
            if alive { "still runs" } else { "is gone" }
        )
    }

    pub fn sh(&self, script: &str) -> Run {
        self.sh_with(script, b"", &[])
    }

    /// `sh`, asserting exit 0; returns stdout as text.
    #[track_caller]
    pub fn ok(&self, script: &str) -> String {
        let r = self.sh(script);
        r.expect_code(0);
        String::from_utf8_lossy(r.stdout()).into_owned()
    }

    /// Makes the guest's `127.0.0.1:port` reach this machine's `127.0.0.1:port` (a test's server, such as moto),
    /// so one URL names it on both tiers.
    #[track_caller]
    pub fn forward(&self, port: u16) {
        let s = self.state.to_str().unwrap();
        script_run(&["forward", s, &port.to_string()], Duration::from_secs(120)).expect_code(0);
    }

    /// Hotplugs a new sparse disk `id` of `size` ("1G") with `serial` (at most 20 characters) and waits until
    /// the guest shows `/dev/disk/by-id/...SERIAL`; returns that path.
    #[track_caller]
    pub fn disk_add(&self, id: &str, size: &str, serial: &str, bus: Bus) -> String {
        let s = self.state.to_str().unwrap();
        let mut args = vec!["disk-add", s, id, size, "--serial", serial];
        if let Bus::Nvme = bus {
            args.push("--nvme");
        }
        script_run(&args, Duration::from_secs(300)).expect_code(0);
        let link = match bus {
            Bus::Virtio => format!("/dev/disk/by-id/virtio-{serial}"),
            Bus::Nvme => format!("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_{serial}"),
        };
        self.wait_for(&format!("[ -e {link} ]"), &format!("{link} to appear"));
        link
    }

    /// Grows disk `id` to `size` (qemu's block_resize: the guest's kernel sees the new size at once).
    #[track_caller]
    pub fn disk_resize(&self, id: &str, size: &str) {
        let s = self.state.to_str().unwrap();
        script_run(&["disk-resize", s, id, size], Duration::from_secs(300)).expect_code(0);
    }

    /// Unplugs disk `id` (the guest acknowledges; its file stays in STATE/disks/).
    #[track_caller]
    pub fn disk_remove(&self, id: &str) {
        self.try_disk_remove(id).expect_code(0);
    }

    /// [`Guest::disk_remove`], its outcome returned.
    #[track_caller]
    pub fn try_disk_remove(&self, id: &str) -> Run {
        let s = self.state.to_str().unwrap();
        script_run(&["disk-remove", s, id], Duration::from_secs(420))
    }

    /// Polls `test` (a shell condition) in the guest for up to a minute.
    #[track_caller]
    pub fn wait_for(&self, test: &str, what: &str) {
        let t = std::time::Instant::now();
        loop {
            if self.sh(&format!("udevadm settle -t 10; {test}")).code() == Some(0) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "waited a minute for {what} in the guest"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A new name for a disk or pool, unique in this process.
    pub fn unique(prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!("{prefix}{}", N.fetch_add(1, Ordering::Relaxed))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = script()
            .arg("stop")
            .arg(&self.state)
            .stdin(std::process::Stdio::null())
            .output();
    }
}

/// The guest of this test binary, booted by the first test that asks and shared by the rest (a boot is tens of
/// seconds under emulation); the --owner watcher stops it when the process ends. A guest that failed to start
/// fails every test that asks, with the same message.
#[track_caller]
pub fn shared() -> &'static Guest {
    static G: OnceLock<Result<Guest, String>> = OnceLock::new();
    let g = G.get_or_init(|| {
        std::panic::catch_unwind(|| Guest::start(&[], false)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match g {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// `s` as one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
