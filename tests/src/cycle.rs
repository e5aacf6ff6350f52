//! The backup cycle's scripts (scripts/zstream-backup, -restore, -verify) as a site runs them: a dataset on real
//! ZFS, a store (a directory, or a bucket on moto), two keys, a clock the test sets (ZSTREAM_NOW), and stage
//! wrappers that make one stage of the pipe die midway.
//!
//! A site lives on a [`Ground`]: a pool on a [`Host`], here with zfs-fuse (a [`crate::zfs::Pool`], or a
//! [`crate::host::Pool`] of [`crate::host::Local`]) or in the OpenZFS guest (a [`crate::host::Pool`] of the
//! [`crate::guest::Guest`]). Everything a site does (files, ZFS, the scripts, the store's listing) goes through the
//! host, so one scenario runs on both tiers (`crate::scenarios`).

use crate::data::Gen;
use crate::guest::quote;
use crate::host::Host;
use crate::proc::Run;
use std::path::PathBuf;

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

/// Where a site's dataset lives: a pool on a host, and the paths there.
pub trait Ground: Sync {
    fn host(&self) -> &dyn Host;
    /// The pool's name.
    fn pool_name(&self) -> &str;
    /// A scratch directory there, removed with the pool.
    fn scratch(&self) -> String;
    /// The pool's mountpoint there.
    fn mountpoint(&self) -> String;
}

impl Ground for crate::zfs::Pool {
    /// This machine: the caller holds ZFS's turn (the [`crate::zfs::Zfs`] that made the pool).
    fn host(&self) -> &dyn Host {
        &crate::host::HERE
    }
    fn pool_name(&self) -> &str {
        &self.name
    }
    fn scratch(&self) -> String {
        self.dir.display().to_string()
    }
    fn mountpoint(&self) -> String {
        self.mnt.display().to_string()
    }
}

impl Ground for crate::host::Pool<'_> {
    fn host(&self) -> &dyn Host {
        self.host
    }
    fn pool_name(&self) -> &str {
        &self.name
    }
    fn scratch(&self) -> String {
        self.dir.clone()
    }
    fn mountpoint(&self) -> String {
        self.mnt.clone()
    }
}

/// One dataset backed up to one store.
pub struct Site<'p, G: Ground + ?Sized = crate::zfs::Pool> {
    pub pool: &'p G,
    /// `pool/src`
    pub dataset: String,
    /// DEST, as the scripts take it.
    pub dest: String,
    /// Where the records are: DEST, or for a vault the --catalog the test gives.
    pub catalog: String,
    /// `--keys A,B`
    pub keys: [String; 2],
    /// Scratch: keys, locks, stage wrappers, copies of the tree at chosen days (a path on the pool's host).
    pub work: PathBuf,
    /// The store's environment (AWS settings for moto).
    pub env: Vec<(String, String)>,
    /// Options every backup gets (a storage class, a part size).
    pub backup_opts: Vec<String>,
}

impl<G: Ground + ?Sized> Clone for Site<'_, G> {
    fn clone(&self) -> Self {
        Site {
            pool: self.pool,
            dataset: self.dataset.clone(),
            dest: self.dest.clone(),
            catalog: self.catalog.clone(),
            keys: self.keys.clone(),
            work: self.work.clone(),
            env: self.env.clone(),
            backup_opts: self.backup_opts.clone(),
        }
    }
}

impl<'p, G: Ground + ?Sized> Site<'p, G> {
    pub fn new(pool: &'p G, dest: String, env: Vec<(String, String)>) -> Site<'p, G> {
        Site::with_dataset(pool, dest, env, &[])
    }

    /// A site whose dataset `pool/src` is made with `zfs create` options (`-o encryption=on`, ...).
    pub fn with_dataset(
        pool: &'p G,
        dest: String,
        env: Vec<(String, String)>,
        create: &[&str],
    ) -> Site<'p, G> {
        let h = pool.host();
        let work = PathBuf::from(format!("{}/cycle", pool.scratch()));
        let w = work.display().to_string();
        let dataset = format!("{}/src", pool.pool_name());
        h.ok(&format!(
            "mkdir -p {wrap}; for k in a b; do {seal} keygen -o {w}/$k.key; done; zfs create {opts} {ds}",
            wrap = quote(&format!("{w}/wrap")),
            seal = quote(&h.bin("zstream-seal")),
            w = quote(&w),
            opts = create.iter().map(|o| quote(o)).collect::<Vec<_>>().join(" "),
            ds = quote(&dataset)
        ));
        let k = [format!("{w}/a.key"), format!("{w}/b.key")];
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
    pub fn sibling(&self, rel: &str) -> Site<'p, G> {
        let dataset = format!("{}/{rel}", self.pool.pool_name());
        self.host().ok(&format!("zfs create {}", quote(&dataset)));
        Site {
            dataset,
            ..self.clone()
        }
    }

    /// The dataset's name below its pool (`src`): where it is mounted below the pool's mountpoint.
    pub fn rel(&self) -> &str {
        self.dataset
            .strip_prefix(&format!("{}/", self.pool.pool_name()))
            .expect("a dataset of the site's pool")
    }

    pub fn both_keys(&self) -> String {
        format!("{},{}", self.keys[0], self.keys[1])
    }

    /// The host the site runs on.
    pub fn host(&self) -> &dyn Host {
        self.pool.host()
    }

    /// `pool/rel`
    pub fn ds(&self, rel: &str) -> String {
        format!("{}/{rel}", self.pool.pool_name())
    }

    /// Where `pool/rel` is mounted (the default mountpoint below the pool's), as the host sees it.
    pub fn mounted(&self, rel: &str) -> String {
        format!("{}/{rel}", self.pool.mountpoint())
    }

    /// Runs a cycle script at `now` (ISO 8601 UTC) on the site's host. PATH holds the stage wrappers first, then
    /// the built binaries.
    pub fn script(&self, name: &str, now: &str, args: &[&str]) -> Run {
        let prog = format!("{}/{name}", self.host().scripts());
        self.run_at(&prog, name, now, args, b"")
    }

    /// Runs the built tool `name` (`zstream-catalog`...) with `input` on stdin as `script` runs a script: the
    /// tools it starts (adopt's read-back pipe) are found on the same PATH.
    pub fn tool_at(&self, name: &str, now: &str, args: &[&str], input: &[u8]) -> Run {
        let prog = self.host().bin(name);
        self.run_at(&prog, name, now, args, input)
    }

    fn run_at(&self, prog: &str, name: &str, now: &str, args: &[&str], input: &[u8]) -> Run {
        let h = self.host();
        let bins = h.bin("zstream-ship");
        let bins = bins.rsplit_once('/').map_or(".", |(d, _)| d);
        let line: Vec<String> = std::iter::once(prog.to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| quote(&a))
            .collect();
        let script = format!(
            "unset ZSTREAM_BIN; export PATH={}:{}:\"$PATH\"; exec {}",
            quote(&self.work.join("wrap").display().to_string()),
            quote(bins),
            line.join(" ")
        );
        let mut env = self.env.clone();
        env.push(("ZSTREAM_NOW".into(), now.into()));
        env.push((
            "ZSTREAM_LOCK_DIR".into(),
            self.work.join("locks").display().to_string(),
        ));
        // The site's own catalog cache, gone with its pool (not the tester's ~/.cache).
        env.push((
            "ZSTREAM_CATALOG_CACHE".into(),
            self.work.join("catalog-cache").display().to_string(),
        ));
        let mut r = h.sh_with(&script, input, &env);
        r.cmd = format!("({}) {name} {}", h.name(), args.join(" "));
        r
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
        let what = self.ds(what);
        let target = self.ds(target);
        let mut a: Vec<&str> = vec!["--keys", &keys];
        a.extend(extra);
        a.extend([self.dest.as_str(), what.as_str(), target.as_str()]);
        self.script("zstream-restore", now, &a)
    }

    /// The dataset's backup records (each entry's first line: the record; its second is the signature), in the
    /// catalog's order (seq), read through zstream-ship as a stranger would. Signatures are the catalog's to
    /// check; this is what a test looks at.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.records_of(&self.dataset)
    }

    /// [`Site::records`] of another dataset in the same store (one below the site's, backed up with
    /// `--recursive`).
    pub fn records_of(&self, dataset: &str) -> Vec<serde_json::Value> {
        let mut out: Vec<serde_json::Value> = self
            .entries_of(dataset)
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
        let h = self.host();
        let put = format!("exec {} put {}", quote(&h.bin("zstream-ship")), quote(url));
        h.sh_with(&put, bytes, &self.env).expect_code(0);
    }

    /// The dataset's snapshots (the names after `@`), oldest first.
    pub fn snapshots(&self) -> Vec<String> {
        self.host()
            .ok(&format!(
                "zfs list -H -o name -t snapshot -s createtxg -d 1 {}",
                quote(&self.dataset)
            ))
            .lines()
            .filter_map(|l| l.split_once('@').map(|(_, s)| s.to_string()))
            .collect()
    }

    /// How many holds DATASET@SNAP has (zfs-fuse has no `zfs holds`: its userrefs property).
    pub fn userrefs(&self, snap: &str) -> u64 {
        let full = format!("{}@{snap}", self.dataset);
        self.host()
            .ok(&format!("zfs get -H -p -o value userrefs {}", quote(&full)))
            .trim()
            .parse()
            .expect("a number of holds")
    }

    /// Whether `tag` holds DATASET@SNAP: a release of that tag succeeds only then (and the hold is put back).
    pub fn held_by(&self, snap: &str, tag: &str) -> bool {
        let full = format!("{}@{snap}", self.dataset);
        let (tag, full) = (quote(tag), quote(&full));
        let released = self.host().sh(&format!("zfs release {tag} {full}")).code() == Some(0);
        if released {
            self.host().ok(&format!("zfs hold {tag} {full}"));
        }
        released
    }

    /// Every catalog entry of the dataset (records, intents, acceptances): its URL and its text.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.entries_of(&self.dataset)
    }

    /// Removes every catalog entry of `dataset`, as someone who can write the store and holds no key can.
    pub fn delete_entries_of(&self, dataset: &str) {
        for (name, _) in self.entries_of(dataset) {
            self.ship(&["rm", &name]).expect_code(0);
        }
    }

    fn entries_of(&self, dataset: &str) -> Vec<(String, String)> {
        let prefix = format!("{}/catalog/{dataset}@", self.catalog);
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

    /// What `zstream-hash --zfs --json` reports of a record's stored stream (its BEGIN's `features` among them),
    /// read back through the restore's pipe short of `zfs receive`.
    pub fn stream_info(&self, record: &serde_json::Value) -> serde_json::Value {
        let h = self.host();
        let url = format!(
            "{}/{}",
            self.dest,
            record["object"]["name"].as_str().expect("object.name")
        );
        let json = format!("{}/stream-info.json", self.work.display());
        let out = h.ok(&format!(
            "set -o pipefail; {ship} get {url} | {par} -d | {seal} -d --key-file {k0} --key-file {k1} \
             | {hash} --zfs --json {json} -q >/dev/null; cat {json}",
            ship = quote(&h.bin("zstream-ship")),
            par = quote(&h.bin("zstream-par")),
            seal = quote(&h.bin("zstream-seal")),
            hash = quote(&h.bin("zstream-hash")),
            k0 = quote(&self.keys[0]),
            k1 = quote(&self.keys[1]),
            url = quote(&url),
            json = quote(&json),
        ));
        serde_json::from_str(&out).expect("zstream-hash --json")
    }

    /// The drill at `now`: zstream-verify --sample `n` with the keys, which must pass and read `n` objects back
    /// whole.
    #[track_caller]
    pub fn drill(&self, now: &str, n: usize) {
        let count = n.to_string();
        let v = self.script(
            "zstream-verify",
            now,
            &["--sample", &count, "--keys", &self.both_keys(), &self.dest],
        );
        v.expect_code(0);
        assert_eq!(
            String::from_utf8_lossy(v.stdout())
                .matches("ok, read back")
                .count(),
            n,
            "{}",
            v.describe()
        );
    }

    /// The catalog's public key for these keys (`zstream-catalog key`): what a monitoring host is given.
    pub fn public_key(&self) -> String {
        let r = self.tool("zstream-catalog", &["key", "--keys", &self.both_keys()]);
        r.expect_code(0);
        String::from_utf8_lossy(r.stdout()).trim().to_string()
    }

    pub fn ship(&self, args: &[&str]) -> Run {
        self.tool("zstream-ship", args)
    }

    /// A workspace binary run on the site's host with the store's environment.
    pub fn tool(&self, name: &str, args: &[&str]) -> Run {
        let h = self.host();
        let line: Vec<String> = std::iter::once(h.bin(name))
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| quote(&a))
            .collect();
        let mut r = h.sh_with(&format!("exec {}", line.join(" ")), b"", &self.env);
        r.cmd = format!("({}) {name} {}", h.name(), args.join(" "));
        r
    }

    /// The day's change to the dataset: a new file, an edit of a file that stays, and now and then a removal.
    pub fn change(&self, day: u64) {
        self.change_in(self.rel(), day);
    }

    /// The day's change to `pool/rel`, as [`Site::change`] makes it to the site's dataset.
    pub fn change_in(&self, rel: &str, day: u64) {
        let h = self.host();
        let root = self.mounted(rel);
        h.write(&format!("{root}/day{day}.bin"), &Gen::bytes(day, 40_000));
        let gone = if day % 7 == 6 {
            format!("; rm -f {}", quote(&format!("{root}/day{}.bin", day - 3)))
        } else {
            String::new()
        };
        h.ok(&format!(
            "echo 'day {day}' >> {}{gone}",
            quote(&format!("{root}/log.txt"))
        ));
    }

    /// A copy of the dataset's files as they are now, to compare a restore with later.
    pub fn keep_copy(&self, name: &str) -> PathBuf {
        let to = self.work.join("copies").join(name);
        let t = to.display().to_string();
        self.host().ok(&format!(
            "mkdir -p \"$(dirname {t})\"; cp -a {src} {t}",
            t = quote(&t),
            src = quote(&self.mounted(self.rel()))
        ));
        to
    }

    /// Asserts that a copy kept earlier (or any tree on the site's host) and `pool/rel`'s files are the same.
    #[track_caller]
    pub fn same_as(&self, copy: &std::path::Path, rel: &str) {
        self.host()
            .same_tree(&copy.display().to_string(), &self.mounted(rel));
    }

    /// Makes `stage` of the backup pipe die of SIGKILL midway: a wrapper of that name first on PATH. The filters
    /// and `zfs send` pass on 1 MiB of their output and die; `zstream-ship put` of a stream object is killed
    /// after reading 6 MiB (an upload under way), or, with `after_put`, the backup script itself is killed right
    /// after a whole put (between the object and its record).
    pub fn kill_stage(&self, stage: &str, after_put: bool) {
        let real = |name: &str| {
            if name == "zfs" {
                self.zfs_path()
            } else {
                self.host().bin(name)
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
                ship = self.host().bin("zstream-ship")
            ),
        );
    }

    /// Puts a bash script named `name` first on the scripts' PATH.
    pub fn wrap(&self, name: &str, body: &str) {
        let path = self.work.join("wrap").join(name).display().to_string();
        let h = self.host();
        h.write(&path, format!("#!/bin/bash\n{body}").as_bytes());
        h.ok(&format!("chmod 755 {}", quote(&path)));
    }

    /// The real `zfs` on the site's host, for wrappers to call.
    pub fn zfs_path(&self) -> String {
        self.host().ok("command -v zfs").trim().to_string()
    }

    /// Removes every stage wrapper.
    pub fn heal(&self) {
        self.host().ok(&format!(
            "rm -f {}/*",
            quote(&self.work.join("wrap").display().to_string())
        ));
    }
}

impl Site<'_> {
    /// The real `zfs` here, for wrappers to call.
    pub fn real_zfs() -> String {
        crate::host::HERE.ok("command -v zfs").trim().to_string()
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
