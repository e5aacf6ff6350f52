//! Real ZFS for tests: kernel ZFS when the machine has it, else a zfs-fuse daemon started here (and stopped here:
//! a daemon that was already running is used and left alone). Pools are file-backed, uniquely named, and destroyed
//! by their guard even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Runs a ZFS command and returns its stdout; panics with the command and its stderr on failure.
#[track_caller]
pub fn cmd(prog: &str, args: &[&str]) -> String {
    let mut c = Command::new(prog);
    c.args(args);
    let what = format!("{prog} {}", args.join(" "));
    let out = crate::proc::output_within(c, b"", crate::proc::LIMIT, &what);
    assert!(
        out.status.success(),
        "{prog} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn answers() -> bool {
    let mut c = Command::new("zpool");
    c.arg("list");
    // A daemon that takes a minute to say whether it is there is wedged: fail, naming it.
    crate::proc::output_within(c, b"", Duration::from_secs(60), "zpool list")
        .status
        .success()
}

/// ZFS for the life of this value, and the turn of its test: tests of one binary run in parallel threads but take
/// ZFS one at a time. zfs-fuse deadlocks when two of them change datasets at once (two `zfs create` in new pools
/// hung in `fuse_get_req` for good, which held CI to its deadline), and a test's guarantees must not hang on the
/// scheduling of another.
pub struct Zfs {
    /// The zfs-fuse daemon this test started; None when ZFS was already there. Dropped before the turn.
    _daemon: Option<Daemon>,
    _turn: MutexGuard<'static, ()>,
}

static TURN: Mutex<()> = Mutex::new(());

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Zfs {
    /// ZFS, or a panic that says what is missing.
    pub fn start() -> Zfs {
        // A test that failed while it had ZFS poisons the lock; the next one still gets its turn.
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        if answers() {
            return Zfs {
                _daemon: None,
                _turn: turn,
            };
        }
        let have_fuse = Command::new("sh")
            .args(["-c", "command -v zfs-fuse"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have_fuse,
            "no ZFS here: neither kernel ZFS nor zfs-fuse answers. Install zfs-fuse (apt-get install zfs-fuse; \
             scripts/test does it) and run as root with /dev/fuse"
        );
        assert!(
            Path::new("/dev/fuse").exists(),
            "zfs-fuse needs /dev/fuse, which this machine lacks"
        );
        // A daemon imports every pool its cache lists: taking pools that are someone else's (another user of
        // zfs-fuse on this machine) would be worse than not running. scripts/test gives the run a mount namespace
        // with its own empty cache, socket and lock (scripts/lib/common.sh, private_zfs); our pools stay out of
        // any cache (cachefile=none).
        let cache = Path::new("/var/lib/zfs/zpool.cache");
        assert!(
            std::fs::metadata(cache).map_or(true, |m| m.len() == 0),
            "zfs-fuse would import the pools {} lists, which are not this test's: run the tests through \
             scripts/test, which keeps their ZFS apart in a mount namespace of its own",
            cache.display()
        );
        let log = std::env::temp_dir().join(format!("zstream-zfs-fuse-{}.log", std::process::id()));
        let logf = std::fs::File::create(&log).expect("creating the zfs-fuse log");
        let child = Command::new("zfs-fuse")
            .args(["--no-daemon", "--no-kstat-mount"])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log"))
            .stderr(logf)
            .spawn()
            .expect("starting zfs-fuse");
        let d = Daemon {
            child,
            log: log.clone(),
        };
        let t = Instant::now();
        while !answers() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "zfs-fuse did not answer within 20 s; its log {}:\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Zfs {
            _daemon: Some(d),
            _turn: turn,
        }
    }

    /// A new file-backed pool of `size_mib`, destroyed when dropped.
    pub fn pool(&self, size_mib: u64) -> Pool {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "zst{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("zstream-pool-{name}"));
        std::fs::create_dir_all(&dir).expect("pool dir");
        let file = dir.join("vdev0");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size_mib << 20))
            .expect("pool file");
        let mnt = dir.join("mnt");
        cmd(
            "zpool",
            &[
                "create",
                "-o",
                "cachefile=none",
                "-m",
                mnt.to_str().unwrap(),
                &name,
                file.to_str().unwrap(),
            ],
        );
        Pool { name, dir, mnt }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let child = &mut self.child;
        // SIGTERM unmounts and exits in a few seconds; SIGKILL would leave stale FUSE mounts behind.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub struct Pool {
    pub name: String,
    pub dir: PathBuf,
    pub mnt: PathBuf,
}

impl Pool {
    /// `pool/rel`
    pub fn ds(&self, rel: &str) -> String {
        format!("{}/{rel}", self.name)
    }

    /// Where a dataset of this pool is mounted (the default mountpoint below the pool's).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    pub fn guid(&self, snap: &str) -> u64 {
        cmd("zfs", &["get", "-H", "-p", "-o", "value", "guid", snap])
            .trim()
            .parse()
            .expect("a numeric guid")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Right after a receive zfs-fuse may still call the pool busy for a moment.
        for _ in 0..20 {
            let ok = Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .stderr(Stdio::null())
                .status();
            if ok.is_ok_and(|s| s.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a tree of files with generated contents below `root`: a few sizes, a subdirectory, an empty file.
pub fn fill_tree(root: &Path, seed: u64) {
    use crate::data::Gen;
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    let sizes = [0usize, 1, 4095, 4096, 131073, 1 << 20, 3 << 20];
    for (i, size) in sizes.iter().enumerate() {
        std::fs::write(
            root.join(format!("f{i}")),
            Gen::bytes(seed + i as u64, *size),
        )
        .expect("write");
    }
    std::fs::write(root.join("sub/deeper/note.txt"), format!("seed {seed}\n")).expect("write");
}

/// Asserts that two trees hold the same files with the same contents.
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let r = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .output()
        .expect("running diff");
    assert!(
        r.status.success(),
        "{} and {} differ:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}
