//! Where a ZFS scenario runs: on this machine with zfs-fuse (fast; pool version 23) or in the OpenZFS guest
//! (real OpenZFS 2.3). A scenario written against [`Host`] runs on both; one that needs what zfs-fuse lacks
//! (feature flags, encryption, bookmarks, raw or resumable sends) takes a [`Guest`](crate::guest::Guest).
//!
//! Everything is by path strings as the host sees them (a guest's paths are the guest's): commands, files
//! written and read, trees compared, pools made from disks (a file here, a hotplugged virtio disk there).

use crate::guest::{quote, Bus, Guest, BIN, SRC};
use crate::proc::Run;
use crate::zfs::Zfs;
use std::sync::atomic::{AtomicU32, Ordering};

pub trait Host: Sync {
    /// What this host is, for messages: `zfs-fuse` or `OpenZFS guest`.
    fn name(&self) -> &'static str;

    /// Runs `script` as root with `bash -o pipefail -eu`, `input` on stdin, `env` added to the environment.
    fn sh_with(&self, script: &str, input: &[u8], env: &[(String, String)]) -> Run;

    /// A workspace binary's path there.
    fn bin(&self, name: &str) -> String;

    /// The clone's scripts/ directory there.
    fn scripts(&self) -> String;

    /// A new pool of one disk of `size_mib` there, named uniquely, mounted below its scratch directory;
    /// destroyed (and its disk removed) when dropped.
    fn pool(&self, size_mib: u64) -> Pool<'_> {
        self.pool_with(size_mib, "")
    }

    /// [`Host::pool`] with `zpool create` options (`-d -o feature@lz4_compress=enabled`: a pool of chosen
    /// features), given as shell words.
    fn pool_with(&self, size_mib: u64, create: &str) -> Pool<'_>;

    /// Runs `script`; a shorthand for `sh_with(script, b"", &[])`.
    fn sh(&self, script: &str) -> Run {
        self.sh_with(script, b"", &[])
    }

    /// Runs `script`, asserting that it exits 0; returns its stdout as text.
    #[track_caller]
    fn ok(&self, script: &str) -> String {
        let r = self.sh(script);
        assert_eq!(r.code(), Some(0), "on {}: {}", self.name(), r.describe());
        String::from_utf8_lossy(r.stdout()).into_owned()
    }

    /// Writes `data` to `path` (its directory is created).
    #[track_caller]
    fn write(&self, path: &str, data: &[u8]) {
        let p = quote(path);
        let r = self.sh_with(
            &format!("mkdir -p \"$(dirname {p})\"; cat > {p}"),
            data,
            &[],
        );
        assert_eq!(r.code(), Some(0), "on {}: {}", self.name(), r.describe());
    }

    /// The contents of `path`.
    #[track_caller]
    fn read(&self, path: &str) -> Vec<u8> {
        let r = self.sh(&format!("cat {}", quote(path)));
        assert_eq!(r.code(), Some(0), "on {}: {}", self.name(), r.describe());
        r.out.stdout
    }

    /// Asserts that two trees hold the same files with the same contents (`diff -r`).
    #[track_caller]
    fn same_tree(&self, a: &str, b: &str) {
        let r = self.sh(&format!(
            "diff -r --no-dereference {} {}",
            quote(a),
            quote(b)
        ));
        assert_eq!(
            r.code(),
            Some(0),
            "on {}: trees differ: {}",
            self.name(),
            r.describe()
        );
    }

    /// Writes a tree of generated files below `root`, as [`crate::zfs::fill_tree`] does here.
    #[track_caller]
    fn fill_tree(&self, root: &str, seed: u64) {
        use crate::data::Gen;
        let sizes = [0usize, 1, 4095, 4096, 131073, 1 << 20, 3 << 20];
        for (i, size) in sizes.iter().enumerate() {
            self.write(&format!("{root}/f{i}"), &Gen::bytes(seed + i as u64, *size));
        }
        self.write(
            &format!("{root}/sub/deeper/note.txt"),
            format!("seed {seed}\n").as_bytes(),
        );
    }

    /// A snapshot's guid.
    #[track_caller]
    fn guid(&self, snap: &str) -> u64 {
        self.ok(&format!("zfs get -H -p -o value guid {}", quote(snap)))
            .trim()
            .parse()
            .expect("a numeric guid")
    }
}

/// A pool on a [`Host`]; destroyed when dropped.
pub struct Pool<'h> {
    pub host: &'h dyn Host,
    pub name: String,
    /// A scratch directory there, for streams and copies; removed with the pool.
    pub dir: String,
    /// The pool's mountpoint there.
    pub mnt: String,
    /// The guest's disk id, unplugged after the pool is destroyed.
    disk: Option<(&'h Guest, String)>,
}

impl<'h> Pool<'h> {
    /// `zpool create` of `vdev` on `host`, mounted below the scratch directory `dir`.
    #[track_caller]
    fn create(
        host: &'h dyn Host,
        (name, create): (String, &str),
        dir: String,
        vdev: &str,
        disk: Option<(&'h Guest, String)>,
    ) -> Pool<'h> {
        let mnt = format!("{dir}/mnt");
        host.ok(&format!(
            "mkdir -p {d}; zpool create -o cachefile=none {create} -m {m} {name} {v}",
            d = quote(&dir),
            m = quote(&mnt),
            v = quote(vdev)
        ));
        Pool {
            host,
            name,
            dir,
            mnt,
            disk,
        }
    }

    /// `pool/rel`
    pub fn ds(&self, rel: &str) -> String {
        format!("{}/{rel}", self.name)
    }

    /// Where a dataset of this pool is mounted (the default mountpoint below the pool's).
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.mnt)
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        // Right after a receive a pool may be busy for a moment.
        let name = quote(&self.name);
        let _ = self.host.sh(&format!(
            "for i in $(seq 1 20); do zpool destroy -f {name} 2>/dev/null && break; \
             zpool list {name} >/dev/null 2>&1 || break; sleep 0.5; done; rm -rf {}",
            quote(&self.dir)
        ));
        if let Some((g, id)) = self.disk.take() {
            // A second panic while the test's own unwinds would abort the binary and lose every other test's
            // result: then the unplug's failure is only said.
            if std::thread::panicking() {
                let r = g.try_disk_remove(&id);
                if r.code() != Some(0) {
                    eprintln!("(while failing) {}", r.describe());
                }
            } else {
                g.disk_remove(&id);
            }
        }
    }
}

static N: AtomicU32 = AtomicU32::new(0);

fn pool_name() -> String {
    format!(
        "zst{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// This machine, with zfs-fuse (or kernel ZFS if it had any), holding ZFS's turn for its life.
pub struct Local {
    _zfs: Option<Zfs>,
}

impl Local {
    pub fn start() -> Local {
        Local {
            _zfs: Some(Zfs::start()),
        }
    }
}

/// This machine for code whose caller already holds ZFS's turn (a [`Zfs`], whose pools are [`crate::zfs::Pool`]s).
pub static HERE: Local = Local { _zfs: None };

impl Host for Local {
    fn name(&self) -> &'static str {
        "zfs-fuse"
    }

    fn sh_with(&self, script: &str, input: &[u8], env: &[(String, String)]) -> Run {
        let mut c = std::process::Command::new("bash");
        c.args(["-o", "pipefail", "-euc", script])
            .envs(env.iter().map(|(k, v)| (k, v)));
        let out = crate::proc::output_within(c, input, crate::proc::LIMIT, script);
        Run {
            cmd: script.to_string(),
            out,
        }
    }

    fn bin(&self, name: &str) -> String {
        crate::bins::bin(name).display().to_string()
    }

    fn scripts(&self) -> String {
        crate::cycle::scripts().display().to_string()
    }

    fn pool_with(&self, size_mib: u64, create: &str) -> Pool<'_> {
        let name = pool_name();
        let dir = std::env::temp_dir()
            .join(format!("zstream-pool-{name}"))
            .display()
            .to_string();
        self.ok(&format!(
            "mkdir -p {d}; truncate -s {size_mib}M {d}/vdev0",
            d = quote(&dir)
        ));
        let vdev = format!("{dir}/vdev0");
        Pool::create(self, (name, create), dir, &vdev, None)
    }
}

impl Host for Guest {
    fn name(&self) -> &'static str {
        "OpenZFS guest"
    }

    fn sh_with(&self, script: &str, input: &[u8], env: &[(String, String)]) -> Run {
        Guest::sh_with(self, script, input, env)
    }

    fn bin(&self, name: &str) -> String {
        format!("{BIN}/{name}")
    }

    fn scripts(&self) -> String {
        format!("{SRC}/scripts")
    }

    fn pool_with(&self, size_mib: u64, create: &str) -> Pool<'_> {
        let name = pool_name();
        let dir = format!("/var/tmp/{name}");
        let id = Guest::unique("p");
        let disk = self.disk_add(
            &id,
            &format!("{size_mib}M"),
            &format!("z{name}"),
            Bus::Virtio,
        );
        Pool::create(self, (name, create), dir, &disk, Some((self, id)))
    }
}
