//! The backup cycle's scripts (scripts/zstream-backup, -restore, -verify) as a site runs them: a dataset on real
//! ZFS, a store (a directory, or a bucket on moto), two keys, a clock the test sets (ZSTREAM_NOW), and stage
//! wrappers that make one stage of the pipe die midway.

use crate::bins::{bin, keygen};
use crate::data::Gen;
use crate::proc::Run;
use crate::zfs::{cmd, Pool};
use std::path::PathBuf;
use std::process::Command;

/// The workspace's root. The clone that runs the tests says where it is (cargo sets CARGO_MANIFEST_DIR for the
/// test process too): the build output is shared between clones, and a binary built in another clone of the same
/// commit carries that clone's path.
pub fn workspace() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
}

/// The scripts directory of the workspace.
pub fn scripts() -> PathBuf {
    workspace().join("scripts")
}

/// One dataset backed up to one store.
#[derive(Clone)]
pub struct Site<'p> {
    pub pool: &'p Pool,
    /// `pool/src`
    pub dataset: String,
    /// DEST, as the scripts take it.
    pub dest: String,
    /// Where the records are: DEST, or for a vault the --catalog the test gives.
    pub catalog: String,
    /// `--keys A,B`
    pub keys: [String; 2],
    /// Scratch: keys, locks, stage wrappers, copies of the tree at chosen days.
    pub work: PathBuf,
    /// The store's environment (AWS settings for moto).
    pub env: Vec<(String, String)>,
    /// Options every backup gets (a storage class, a part size).
    pub backup_opts: Vec<String>,
}

impl<'p> Site<'p> {
    pub fn new(pool: &'p Pool, dest: String, env: Vec<(String, String)>) -> Site<'p> {
        let work = pool.dir.join("cycle");
        std::fs::create_dir_all(work.join("wrap")).expect("work dir");
        let k = keygen(&work, &["a.key", "b.key"]);
        let dataset = pool.ds("src");
        cmd("zfs", &["create", &dataset]);
        Site {
            pool,
            dataset,
            catalog: dest.clone(),
            dest,
            keys: [k[0].clone(), k[1].clone()],
            work,
            env,
            backup_opts: Vec::new(),
        }
    }

    /// Another dataset of the same pool (`pool/rel`, created here), backed up with the same keys to the same store:
    /// two datasets of one site.
    pub fn sibling(&self, rel: &str) -> Site<'p> {
        let dataset = self.pool.ds(rel);
        cmd("zfs", &["create", &dataset]);
        Site {
            dataset,
            ..self.clone()
        }
    }

    /// The dataset's name below its pool (`src`): where it is mounted below the pool's mountpoint.
    pub fn rel(&self) -> &str {
        self.dataset
            .strip_prefix(&format!("{}/", self.pool.name))
            .expect("a dataset of the site's pool")
    }

    pub fn both_keys(&self) -> String {
        format!("{},{}", self.keys[0], self.keys[1])
    }

    /// Runs a cycle script at `now` (ISO 8601 UTC). PATH holds the stage wrappers first, then the built binaries.
    pub fn script(&self, name: &str, now: &str, args: &[&str]) -> Run {
        self.run_at(scripts().join(name), name, now, args, b"")
    }

    /// Runs the built tool `name` (`zstream-catalog`...) with `input` on stdin as `script` runs a script: the
    /// tools it starts (adopt's read-back pipe) are found on the same PATH.
    pub fn tool(&self, name: &str, now: &str, args: &[&str], input: &[u8]) -> Run {
        self.run_at(bin(name), name, now, args, input)
    }

    fn run_at(&self, prog: PathBuf, name: &str, now: &str, args: &[&str], input: &[u8]) -> Run {
        let path = format!(
            "{}:{}:{}",
            self.work.join("wrap").display(),
            bin("zstream-ship").parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(prog);
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PATH", path)
            .env("ZSTREAM_NOW", now)
            .env("ZSTREAM_LOCK_DIR", self.work.join("locks"))
            .env_remove("ZSTREAM_BIN");
        let what = format!("{name} {}", args.join(" "));
        let out = crate::proc::output_within(c, input, crate::proc::LIMIT, &what);
        Run { cmd: what, out }
    }

    /// zstream-backup at `now` with the site's keys and options, and `extra`.
    pub fn backup(&self, now: &str, extra: &[&str]) -> Run {
        let keys = self.both_keys();
        let mut a: Vec<&str> = vec!["--keys", &keys];
        a.extend(self.backup_opts.iter().map(String::as_str));
        a.extend(extra);
        a.extend([self.dataset.as_str(), self.dest.as_str()]);
        self.script("zstream-backup", now, &a)
    }

    /// zstream-restore of `what` (`src` or `src@SNAP`, relative to the pool) into `pool/target`.
    pub fn restore(&self, now: &str, what: &str, target: &str, extra: &[&str]) -> Run {
        let keys = self.both_keys();
        let what = self.pool.ds(what);
        let target = self.pool.ds(target);
        let mut a: Vec<&str> = vec!["--keys", &keys];
        a.extend(extra);
        a.extend([self.dest.as_str(), what.as_str(), target.as_str()]);
        self.script("zstream-restore", now, &a)
    }

    /// The dataset's backup records (each entry's first line: the record; its second is the signature), in the
    /// catalog's order (seq), read through zstream-ship as a stranger would. Signatures are the catalog's to
    /// check; this is what a test looks at.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let mut out: Vec<serde_json::Value> = self
            .entries()
            .into_iter()
            .filter(|(name, _)| name.ends_with(".json"))
            .map(|(name, text)| {
                let first = text.lines().next().unwrap_or_default();
                serde_json::from_str(first)
                    .unwrap_or_else(|e| panic!("{name}: not a JSON record ({e}): {text}"))
            })
            .collect();
        out.sort_by_key(|r| r["seq"].as_u64().unwrap_or_default());
        out
    }

    /// zstream-verify at `now` with the site's keys, `extra`, DEST and the dataset.
    pub fn verify(&self, now: &str, extra: &[&str]) -> Run {
        let keys = self.both_keys();
        let mut a: Vec<&str> = vec!["--keys", &keys];
        a.extend(extra);
        a.extend([self.dest.as_str(), self.dataset.as_str()]);
        self.script("zstream-verify", now, &a)
    }

    /// Writes `bytes` at `url` as someone who can write the store and holds no key would: what was there goes
    /// first (put never replaces).
    pub fn plant(&self, url: &str, bytes: &[u8]) {
        let _ = self.ship(&["rm", url]);
        let r = crate::proc::run_env(&bin("zstream-ship"), &["put", url], bytes, &self.env);
        r.expect_code(0);
    }

    /// The dataset's snapshots (the names after `@`), oldest first.
    pub fn snapshots(&self) -> Vec<String> {
        cmd(
            "zfs",
            &[
                "list",
                "-H",
                "-o",
                "name",
                "-t",
                "snapshot",
                "-s",
                "createtxg",
                "-d",
                "1",
                &self.dataset,
            ],
        )
        .lines()
        .filter_map(|l| l.split_once('@').map(|(_, s)| s.to_string()))
        .collect()
    }

    /// How many holds DATASET@SNAP has (zfs-fuse has no `zfs holds`: its userrefs property).
    pub fn userrefs(&self, snap: &str) -> u64 {
        let full = format!("{}@{snap}", self.dataset);
        cmd(
            "zfs",
            &["get", "-H", "-p", "-o", "value", "userrefs", &full],
        )
        .trim()
        .parse()
        .expect("a number of holds")
    }

    /// Whether `tag` holds DATASET@SNAP: a release of that tag succeeds only then (and the hold is put back).
    pub fn held_by(&self, snap: &str, tag: &str) -> bool {
        let full = format!("{}@{snap}", self.dataset);
        let released = Command::new("zfs")
            .args(["release", tag, &full])
            .output()
            .expect("zfs release")
            .status
            .success();
        if released {
            cmd("zfs", &["hold", tag, &full]);
        }
        released
    }

    /// Every catalog entry of the dataset (records, intents, acceptances): its URL and its text.
    pub fn entries(&self) -> Vec<(String, String)> {
        let prefix = format!("{}/catalog/{}@", self.catalog, self.dataset);
        let ls = self.ship(&["ls", "--json", &prefix]);
        ls.expect_code(0);
        String::from_utf8_lossy(ls.stdout())
            .lines()
            .map(|l| {
                let name = serde_json::from_str::<serde_json::Value>(l).expect("ls --json")["name"]
                    .as_str()
                    .expect("name")
                    .to_string();
                let r = self.ship(&["get", &name]);
                r.expect_code(0);
                (name, String::from_utf8_lossy(r.stdout()).into_owned())
            })
            .collect()
    }

    /// The URL of the object a record names.
    pub fn object_of(&self, record: &serde_json::Value) -> String {
        format!(
            "{}/{}",
            self.dest,
            record["object"]["name"].as_str().expect("object.name")
        )
    }

    /// The objects the store holds for the dataset.
    pub fn objects(&self) -> Vec<String> {
        let r = self.ship(&[
            "ls",
            "--json",
            &format!("{}/data/{}@", self.dest, self.dataset),
        ]);
        r.expect_code(0);
        String::from_utf8_lossy(r.stdout())
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("ls --json")["name"]
                    .as_str()
                    .expect("name")
                    .to_string()
            })
            .collect()
    }

    /// The catalog's public key for these keys (`zstream-catalog key`): what a monitoring host is given.
    pub fn public_key(&self) -> String {
        let r = crate::proc::run_env(
            &bin("zstream-catalog"),
            &["key", "--keys", &self.both_keys()],
            b"",
            &self.env,
        );
        r.expect_code(0);
        String::from_utf8_lossy(r.stdout()).trim().to_string()
    }

    pub fn ship(&self, args: &[&str]) -> Run {
        crate::proc::run_env(&bin("zstream-ship"), args, b"", &self.env)
    }

    /// The day's change to the dataset: a new file, an edit of a file that stays, and now and then a removal.
    pub fn change(&self, day: u64) {
        let root = self.pool.path(self.rel());
        std::fs::write(root.join(format!("day{day}.bin")), Gen::bytes(day, 40_000)).unwrap();
        let log = root.join("log.txt");
        let mut text = std::fs::read_to_string(&log).unwrap_or_default();
        text.push_str(&format!("day {day}\n"));
        std::fs::write(&log, text).unwrap();
        if day % 7 == 6 {
            let _ = std::fs::remove_file(root.join(format!("day{}.bin", day - 3)));
        }
    }

    /// A copy of the dataset's files as they are now, to compare a restore with later.
    pub fn keep_copy(&self, name: &str) -> PathBuf {
        let to = self.work.join("copies").join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let r = Command::new("cp")
            .arg("-a")
            .arg(self.pool.path(self.rel()))
            .arg(&to)
            .status()
            .expect("cp");
        assert!(r.success(), "copying the tree");
        to
    }

    /// Makes `stage` of the backup pipe die of SIGKILL midway: a wrapper of that name first on PATH. The filters
    /// and `zfs send` pass on 1 MiB of their output and die; `zstream-ship put` of a stream object is killed
    /// after reading 6 MiB (an upload under way), or, with `after_put`, the backup script itself is killed right
    /// after a whole put (between the object and its record).
    pub fn kill_stage(&self, stage: &str, after_put: bool) {
        let real = |name: &str| {
            if name == "zfs" {
                Site::real_zfs()
            } else {
                bin(name).display().to_string()
            }
        };
        let body = match stage {
            "zfs" => format!(
                "if [ \"$1\" = send ]; then {r} \"$@\" | head -c 1048576; kill -9 $$; fi\nexec {r} \"$@\"\n",
                r = real("zfs")
            ),
            "zstream-ship" if after_put => format!(
                "if [ \"$1\" = put ] && [[ ${{@: -1}} == *.zstream ]]; then {r} \"$@\"; kill -9 $PPID; exit 1; fi\n\
                 exec {r} \"$@\"\n",
                r = real(stage)
            ),
            "zstream-ship" => format!(
                "if [ \"$1\" = put ] && [[ ${{@: -1}} == *.zstream ]]; then\n\
                 exec 3<&0\n\
                 {{ head -c 6291456 <&3; sleep 5; }} | {r} \"$@\" &\n\
                 sleep 2; kill -9 $!; kill -9 $$\nfi\nexec {r} \"$@\"\n",
                r = real(stage)
            ),
            _ => format!("{r} \"$@\" | head -c 1048576\nkill -9 $$\n", r = real(stage)),
        };
        self.wrap(stage, &body);
    }

    /// Makes the `n`th run of `zstream-ship SUBCOMMAND` (`get`, `rm`...) from now on fail as a network or a
    /// permission error would: exit 1, saying `why`. A wrapper first on PATH, counting; `heal` removes it.
    pub fn fail_ship(&self, subcommand: &str, n: u32, why: &str) {
        let count = self.work.join(format!("{subcommand}.count"));
        let _ = std::fs::remove_file(&count);
        self.wrap(
            "zstream-ship",
            &format!(
                "if [ \"$1\" = {subcommand} ]; then echo >> {c}; \
                 [ \"$(wc -l < {c})\" != {n} ] || {{ echo 'zstream-ship: {why}' >&2; exit 1; }}; fi\n\
                 exec {ship} \"$@\"\n",
                c = count.display(),
                ship = bin("zstream-ship").display()
            ),
        );
    }

    /// Puts a bash script named `name` first on the scripts' PATH.
    pub fn wrap(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.work.join("wrap").join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The real `zfs`, for wrappers to call.
    pub fn real_zfs() -> String {
        let out = Command::new("sh")
            .args(["-c", "command -v zfs"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Removes every stage wrapper.
    pub fn heal(&self) {
        for e in std::fs::read_dir(self.work.join("wrap")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}

/// The tag of the hold the scripts keep for DEST on its base snapshot (scripts/lib/cycle.sh, hold_tag).
pub fn hold_tag(dest: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "zstream-{}",
        &hex::encode(Sha256::digest(dest.as_bytes()))[..12]
    )
}

/// `2027-01-01T02:00:00Z` plus `day` days.
pub fn day(day: u64) -> String {
    after(day, 0)
}

/// `day(day)` plus `secs` seconds.
pub fn after(day: u64, secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch(day) + secs).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// `day(day)` as Unix seconds.
pub fn epoch(day: u64) -> i64 {
    1_798_768_800 + day as i64 * 86_400
}
