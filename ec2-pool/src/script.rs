//! The scripts that run on the instance, one per step, each a string for a POSIX shell that `remote::Ssh` runs
//! after its prelude (`set -eu`, and `$s` for root's commands). Each is idempotent: a step killed halfway is run
//! again. The pool's name, dataset names and device paths are quoted here; nothing else is interpolated, and no
//! key is ever in a script: keys arrive on the script's stdin.

use crate::remote::quote;

fn list(devs: &[String]) -> String {
    devs.iter().map(|d| quote(d)).collect::<Vec<_>>().join(" ")
}

/// apt waits for a lock held by cloud-init's or unattended-upgrades' first-boot runs instead of failing at once.
const APT: &str = "$s env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q";

/// OpenZFS (and cryptsetup, for the swap) from the distribution once; swap (MiB, 0 for none) and an ARC cap
/// (bytes, 0 to leave it) on every start, since neither survives a stop.
///
/// The swap is dm-crypt over a file, its key read from /dev/urandom into the kernel at each start and gone at each
/// stop, so pages of a stream that land there are unreadable on the root volume. The file is written under a
/// temporary name and renamed when whole: a write cut by a full disk or a kill leaves only the temporary file,
/// which the next start writes again.
pub fn prepare(swap_file: &str, swap_mib: u64, arc_max: u64) -> String {
    let f = quote(swap_file);
    let tmp = quote(&format!("{swap_file}.tmp"));
    let bytes = swap_mib << 20;
    format!(
        "if ! command -v zpool >/dev/null 2>&1 || {{ [ {swap_mib} -gt 0 ] && ! command -v cryptsetup >/dev/null 2>&1; }}; then\n\
         \x20 if command -v cloud-init >/dev/null 2>&1; then $s cloud-init status --wait >/dev/null 2>&1 || true; fi\n\
         \x20 i=0\n\
         \x20 until {APT} update >&2; do i=$((i + 1)); [ $i -lt 5 ] || exit 1; sleep 20; done\n\
         \x20 {APT} -y install zfsutils-linux cryptsetup-bin >&2\n\
         fi\n\
         m=ec2pool-swap\n\
         if [ {swap_mib} -gt 0 ]; then\n\
         \x20 if [ ! -e /dev/mapper/$m ]; then\n\
         \x20   if [ \"$($s stat -c %s {f} 2>/dev/null || echo 0)\" != {bytes} ]; then\n\
         \x20     $s mkdir -p \"$(dirname {f})\"\n\
         \x20     $s rm -f {tmp}\n\
         \x20     $s dd if=/dev/zero of={tmp} bs=1M count={swap_mib} status=none\n\
         \x20     $s chmod 600 {tmp}\n\
         \x20     $s mv {tmp} {f}\n\
         \x20   fi\n\
         \x20   $s modprobe -q loop 2>/dev/null || true\n\
         \x20   l=$($s losetup -j {f} | cut -d: -f1 | head -n 1)\n\
         \x20   [ -n \"$l\" ] || l=$($s losetup --find --show {f})\n\
         \x20   $s cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512 --key-file /dev/urandom \"$l\" $m\n\
         \x20 fi\n\
         \x20 if ! grep -q \"^$(readlink -f /dev/mapper/$m) \" /proc/swaps; then\n\
         \x20   $s mkswap /dev/mapper/$m >/dev/null\n\
         \x20   $s swapon /dev/mapper/$m\n\
         \x20 fi\n\
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

/// Creates the pool unless it exists already: with `native`, its top dataset encrypted (the raw key on stdin);
/// else on devices that are encrypted underneath (LUKS), without ZFS's own encryption.
pub fn create(pool: &str, dir: &str, raidz: u32, vdevs: &[Vec<String>], native: bool) -> String {
    let p = quote(pool);
    let groups: Vec<String> = vdevs
        .iter()
        .map(|v| format!("raidz{raidz} {}", list(v)))
        .collect();
    let encryption = if native {
        "-O encryption=on -O keyformat=raw -O keylocation=prompt "
    } else {
        ""
    };
    format!(
        "if $s zpool list -H -o name {p} >/dev/null 2>&1 || $s zpool import -N -d {d} {p} 2>/dev/null; then\n\
         \x20 echo exists\n\
         else\n\
         \x20 $s zpool create {encryption}-O compression=on -O atime=off {p} {}\n\
         \x20 echo created\n\
         fi\n",
        groups.join(" "),
        d = quote(dir)
    )
}

/// Opens each device's LUKS2 encryption as /dev/mapper/NAME (`pairs`: device, name), the passphrase (64 hex
/// digits, no newline) read once from stdin by the shell's own `read` into its memory and handed to each
/// cryptsetup on its stdin by the shell's own printf: in no argv, environment or file. With `format`, a device
/// that is not LUKS yet is formatted first (new volumes only: `up` never formats). Every mapping is then resized
/// to its device, which finishes a grow underneath.
/// PBKDF2 at its minimum: the passphrase is 256 random bits, which no key stretching makes stronger, and Argon2's
/// default would take a small instance's memory.
pub fn luks_open(pairs: &[(String, String)], format: bool) -> String {
    let args: Vec<String> = pairs
        .iter()
        .flat_map(|(d, m)| [quote(d), quote(m)])
        .collect();
    format!(
        "k=; IFS= read -r k || true\n\
         [ ${{#k}} -eq 64 ] || {{ echo \"the LUKS passphrase did not arrive on stdin\" >&2; exit 1; }}\n\
         set -- {}\n\
         while [ $# -gt 0 ]; do\n\
         \x20 d=$1; m=$2; shift 2\n\
         \x20 if [ ! -e \"/dev/mapper/$m\" ]; then\n\
         \x20   if ! $s cryptsetup isLuks \"$d\"; then\n\
         \x20     [ {format} = 1 ] || {{ echo \"$d is not a LUKS volume: not formatting it outside create\" >&2; exit 1; }}\n\
         \x20     printf %s \"$k\" | $s cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 \
         --pbkdf-force-iterations 1000 --key-file - \"$d\"\n\
         \x20   fi\n\
         \x20   printf %s \"$k\" | $s cryptsetup open --key-file - \"$d\" \"$m\"\n\
         \x20 fi\n\
         \x20 printf %s \"$k\" | $s cryptsetup resize --key-file - \"$m\"\n\
         done\n",
        args.join(" "),
        format = u8::from(format)
    )
}

/// Fails, naming them, unless every LUKS mapping is open (a step without the key on a running pool).
pub fn luks_opened(names: &[String]) -> String {
    format!(
        "for m in {}; do\n\
         \x20 [ -e \"/dev/mapper/$m\" ] || {{ echo \"/dev/mapper/$m is not open: give --key-file\" >&2; exit 1; }}\n\
         done\n",
        list(names)
    )
}

/// Imports the pool (keys not loaded, nothing mounted) unless it is imported.
pub fn import(pool: &str, dir: &str) -> String {
    let p = quote(pool);
    format!(
        "$s zpool list -H -o name {p} >/dev/null 2>&1 || $s zpool import -N -d {} {p}\n",
        quote(dir)
    )
}

/// Loads the key from stdin unless it is loaded. Nothing is mounted: a mounted dataset counts as modified since
/// its newest snapshot, and an incremental receive into it then needs -F.
pub fn unlock(pool: &str) -> String {
    let p = quote(pool);
    format!(
        "if [ \"$($s zfs get -H -o value keystatus {p})\" != available ]; then $s zfs load-key {p}; fi\n"
    )
}

/// Mounts what can be (for looking at files: `up --mount`). A dataset received raw keeps its source's key, which
/// the pool's does not open (its keystatus stays `unavailable`): it is left unmounted, and said.
pub fn mount(pool: &str) -> String {
    format!(
        "$s zfs list -H -o name,canmount,mounted -t filesystem -r {} | while read -r ds can mounted; do\n\
         \x20 if [ \"$can\" = on ] && [ \"$mounted\" = no ]; then\n\
         \x20   if [ \"$($s zfs get -H -o value keystatus \"$ds\" 2>/dev/null)\" = unavailable ]; then\n\
         \x20     echo \"$ds: not mounted: it was received raw, under its source's key\" >&2\n\
         \x20   else $s zfs mount \"$ds\"; fi\n\
         \x20 fi\n\
         done\n",
        quote(pool)
    )
}

/// Unmounts every dataset (children first), unloads the key and exports the pool, if it is imported, then
/// closes the LUKS mappings `mappers` (none for a natively encrypted pool). The export is tried for 20 s: right
/// after a receive ends (or is killed) the pool can be busy for a moment.
pub fn lock(pool: &str, mappers: &[String]) -> String {
    let p = quote(pool);
    let mut s = format!(
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
    );
    if !mappers.is_empty() {
        s.push_str(&format!(
            "for m in {}; do if [ -e \"/dev/mapper/$m\" ]; then $s cryptsetup close \"$m\"; fi; done\n",
            list(mappers)
        ));
    }
    s
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

/// Scrubs the pool to the end (reads every block back and checks it), then prints `zpool status`; nothing when
/// the pool is not imported. A scrub already running is waited for rather than started again.
pub fn scrub(pool: &str) -> String {
    let p = quote(pool);
    format!(
        "$s zpool list -H -o name {p} >/dev/null 2>&1 || exit 0\n\
         $s zpool status {p} | grep -q 'scrub in progress' || $s zpool scrub {p}\n\
         while $s zpool status {p} | grep -q 'scrub in progress'; do sleep 5; done\n\
         $s zpool status {p}\n"
    )
}

/// The snapshots of `dataset` (not of its children), oldest first, one name a line; then `--`; then `zfs get`'s
/// `NAME guid VALUE` and `NAME referenced VALUE` lines for them, and the dataset's own `encryptionroot` line
/// (none where ZFS has no native encryption). Nothing when the dataset does not exist.
pub fn snapshots(dataset: &str) -> String {
    let d = quote(dataset);
    format!(
        "if $s zfs list -H -o name {d} >/dev/null 2>&1; then\n\
         \x20 names=$($s zfs list -H -t snapshot -o name -s createtxg -d 1 {d})\n\
         \x20 printf '%s\\n--\\n' \"$names\"\n\
         \x20 $s zfs get -H -p -o name,property,value encryptionroot {d} 2>/dev/null || true\n\
         \x20 if [ -n \"$names\" ]; then printf '%s\\n' \"$names\" | tr '\\n' '\\0' \
         | xargs -0 $s zfs get -H -p -o name,property,value guid,referenced; fi\n\
         fi\n"
    )
}

/// Sends `snapshot` (from `from`, a snapshot name of the same dataset) to stdout, its blocks as the pool stores
/// them: raw (`-w`) when the dataset is its own encryption root (it was received raw, under its source's key, which
/// the pool's does not open, and only a raw send can read it), else `-L -c` where this zfs has them (a stream of
/// large and compressed blocks, which a receiving pool needs the large_blocks and lz4/zstd features to take; not
/// `-e`, whose embedded blocks OpenZFS refuses into an encrypted dataset, as a restore below one would be).
pub fn send(snapshot: &str, from: Option<&str>) -> String {
    let dataset = snapshot.split_once('@').map_or(snapshot, |(d, _)| d);
    let mut s = format!(
        "if [ \"$($s zfs get -H -o value encryptionroot {d} 2>/dev/null || true)\" = {d} ]; then o=-w\n\
         else case $($s zfs send -L -c 2>&1 || true) in *'invalid option'*) o= ;; *) o='-L -c' ;; esac; fi\n",
        d = quote(dataset)
    );
    match from {
        Some(f) => s.push_str(&format!(
            "$s zfs send $o -i {} {}\n",
            quote(&format!("@{f}")),
            quote(snapshot)
        )),
        None => s.push_str(&format!("$s zfs send $o {}\n", quote(snapshot))),
    }
    s
}

/// `dataset` and the datasets below it, one name a line, parents first; nothing when it does not exist.
pub fn tree(dataset: &str) -> String {
    let d = quote(dataset);
    format!(
        "if $s zfs list -H -o name {d} >/dev/null 2>&1; then $s zfs list -H -o name -t filesystem,volume -r {d}; fi\n"
    )
}

/// Destroys snapshots, each by its full name.
pub fn destroy_snapshots(snapshots: &[String]) -> String {
    format!(
        "for n in {}; do $s zfs destroy \"$n\"; done\n",
        list(snapshots)
    )
}

/// Whether the pool can keep a cut receive's state (`zfs receive -s`: OpenZFS's extensible_dataset feature; a
/// pool without feature flags cannot): sets `$r` to `-s` or nothing.
fn resumable(pool: &str) -> String {
    format!(
        "r=; if $s zpool get -H -o value feature@extensible_dataset {} 2>/dev/null | grep -qE '^(enabled|active)$'; then r=-s; fi\n",
        quote(pool)
    )
}

/// Receives the stream on stdin into `target`, making its parents first. Nothing is mounted (`-u`); where the
/// pool can, a receive that is cut off keeps what it got (`-s`), for `zfs send -t TOKEN` to finish.
pub fn receive(target: &str, force: bool) -> String {
    let t = quote(target);
    let pool = target.split('/').next().unwrap_or(target);
    let parent = target.rsplit_once('/').map(|(p, _)| quote(p));
    let mut s = String::new();
    if let Some(p) = parent {
        s.push_str(&format!(
            "$s zfs list -H -o name {p} >/dev/null 2>&1 || $s zfs create -p -o canmount=off {p}\n"
        ));
    }
    s.push_str(&resumable(pool));
    // What follows the stream's END record is drained: a receive may stop reading inside that record (zfs-fuse's
    // does), and the sender must not then see a closed pipe and call a whole stream failed.
    s.push_str(&format!(
        "$s zfs receive -u $r{} {t} && rc=0 || rc=$?\ncat >/dev/null\nexit $rc\n",
        if force { " -F" } else { "" }
    ));
    s
}

/// The resume token of a cut receive into `target`, or nothing (`-` or an empty line: none).
pub fn resume_token(target: &str) -> String {
    format!(
        "$s zfs get -H -o value receive_resume_token {} 2>/dev/null || true\n",
        quote(target)
    )
}

/// Drops a cut receive's saved state.
pub fn discard_partial(target: &str) -> String {
    format!("$s zfs receive -A {}\n", quote(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::PRELUDE;
    use std::process::Command;

    #[test]
    fn scripts_are_posix_shell() {
        let devs = vec![
            "/dev/disk/by-id/nvme-x_vol1".to_string(),
            "/dev/y".to_string(),
        ];
        for s in [
            prepare("/var/lib/ec2-pool/swap", 1024, 1 << 28),
            await_devices(&devs),
            create(
                "p",
                "/dev/disk/by-id",
                1,
                &[devs.clone(), devs.clone()],
                true,
            ),
            create("p", "/dev/mapper", 1, std::slice::from_ref(&devs), false),
            luks_open(&[("/dev/y".into(), "ec2pool-vol1".into())], true),
            luks_opened(&["ec2pool-vol1".into()]),
            lock("p", &["ec2pool-vol1".into()]),
            import("p", "/d"),
            unlock("p"),
            mount("p"),
            lock("p", &[]),
            expand("p", &devs),
            add_vdev("p", 1, &devs),
            usage("p"),
            scrub("p"),
            receive("p/tank/home", true),
            resume_token("p/tank/home"),
            discard_partial("p/tank/home"),
            snapshots("p/tank/home"),
            send("p/tank/home@b", Some("a")),
            send("p/tank/home@b", None),
            tree("p/tank/home"),
            destroy_snapshots(&devs),
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

    /// A command NAME in DIR whose body (sh) stands for the instance's own, for a test that runs a script.
    fn fake_command(dir: &std::path::Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    }

    /// Runs SCRIPT after the prelude, as root without sudo, DIR's commands first on the PATH; it must succeed.
    fn run_with(dir: &std::path::Path, script: &str) {
        let out = Command::new("sh")
            .args(["-c", &format!("{PRELUDE}{script}")])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .env_remove("SUDO_USER")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `send`'s choice of options, run for real against a `zfs` that answers as each kind of ZFS does: OpenZFS
    /// (takes -L -c; encryptionroot is the pool's, or the dataset's own after a raw receive) and zfs-fuse
    /// (invalid option, no such property).
    #[test]
    fn send_takes_the_blocks_as_stored_where_it_can() {
        // GET answers `zfs get -H -o value encryptionroot DATASET`; PROBE `zfs send -L -c` with no snapshot.
        let sends = |get: &str, probe: &str, from: Option<&str>| -> String {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("calls");
            fake_command(
                dir.path(),
                "zfs",
                &format!(
                    "if [ \"$1\" = get ]; then {get}; fi\n\
                     if [ \"$1\" = send ] && [ $# = 3 ]; then {probe}; fi\n\
                     echo \"zfs $*\" >> '{}'",
                    log.display()
                ),
            );
            run_with(dir.path(), &send("p/tank/home@b", from));
            std::fs::read_to_string(&log).unwrap()
        };
        // OpenZFS, a dataset under the pool's key: the probe is refused for its missing snapshot, not its options.
        let (pools, usage) = (
            "echo p; exit 0",
            "echo 'missing snapshot argument' >&2; exit 2",
        );
        assert_eq!(sends(pools, usage, None), "zfs send -L -c p/tank/home@b\n");
        assert_eq!(
            sends(pools, usage, Some("a")),
            "zfs send -L -c -i @a p/tank/home@b\n"
        );
        // Received raw: its own encryption root, sent raw.
        assert_eq!(
            sends("echo p/tank/home; exit 0", usage, Some("a")),
            "zfs send -w -i @a p/tank/home@b\n"
        );
        // zfs-fuse: no encryptionroot property, no -L.
        assert_eq!(
            sends(
                "echo \"bad property list: invalid property 'encryptionroot'\" >&2; exit 2",
                "echo \"invalid option 'L'\" >&2; exit 2",
                None
            ),
            "zfs send p/tank/home@b\n"
        );
    }

    /// The first start's install, run for real with the instance's commands replaced by ones that record their
    /// argv: it waits for cloud-init, and every apt-get waits for dpkg's lock (unattended-upgrades holds it on a
    /// new instance's first minutes) instead of failing.
    #[test]
    fn the_install_waits_for_first_boot() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        for cmd in ["apt-get", "cloud-init"] {
            fake_command(
                dir.path(),
                cmd,
                &format!("echo \"{cmd} $*\" >> '{}'", log.display()),
            );
        }
        // Root (no sudo), no zpool on the PATH: the install runs; no swap asked.
        run_with(dir.path(), &prepare("/nonexistent/swap", 0, 0));
        let calls = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = calls.lines().collect();
        assert_eq!(lines[0], "cloud-init status --wait", "{calls}");
        let apt: Vec<&&str> = lines.iter().filter(|l| l.starts_with("apt-get")).collect();
        assert_eq!(apt.len(), 2, "{calls}");
        for l in apt {
            assert!(l.contains("-o DPkg::Lock::Timeout=600"), "{calls}");
        }
        assert!(
            calls.contains("install zfsutils-linux cryptsetup-bin"),
            "{calls}"
        );
    }
}
