//! The OpenZFS guest itself (scripts/guest, tests/src/guest.rs): it runs real OpenZFS 2.3, gives a command's
//! output and exit code back, and a long-lived guest takes disks hotplugged under the serials EBS uses, grows them
//! in place (a real `zpool online -e`), and lets them go.

use zstream_tests::guest::{self, Bus, Guest};
use zstream_tests::host::Host;

#[test]
fn run_gives_back_output_and_exit_code_on_real_openzfs() {
    let r = guest::run(
        "zfs version; zpool create -o cachefile=none t /dev/disk/by-id/virtio-zdisk0; \
         zpool get -H -o value feature@encryption t; echo to-stderr >&2; \
         test -x /zstream/bin/zstream-hash; test -x /zstream/src/scripts/guest; exit 7",
        &["256M"],
    );
    assert_eq!(r.code(), Some(7), "{}", r.describe());
    let out = String::from_utf8_lossy(r.stdout()).into_owned();
    // Debian's zfs-dkms and zfsutils-linux from bookworm-backports (scripts/lib/guest-image.sh): 2.3.x.
    assert!(
        out.contains("zfs-2.3.") && out.contains("zfs-kmod-2.3."),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l == "enabled"),
        "encryption is a feature there: {out}"
    );
    assert_eq!(r.stderr(), "to-stderr\n");
}

#[test]
fn hotplugged_disks_keep_their_serials_grow_in_place_and_go() {
    let g = guest::shared();
    // virtio-blk: serials of up to 20 characters (an EBS id without its dash is exactly 20).
    let serial = "vol0123456789abcdef0";
    assert_eq!(serial.len(), 20);
    let id = Guest::unique("grow");
    let link = g.disk_add(&id, "256M", serial, Bus::Virtio);
    assert_eq!(link, format!("/dev/disk/by-id/virtio-{serial}"));
    let pool = format!("grow{}", std::process::id());
    g.ok(&format!(
        "zpool create -o cachefile=none -o autoexpand=on -m none {pool} {link}"
    ));
    let size = |g: &Guest| -> u64 {
        g.ok(&format!("zpool list -H -p -o size {pool}"))
            .trim()
            .parse()
            .unwrap()
    };
    let before = size(g);
    // qemu's block_resize, as EBS's ModifyVolume: the guest's kernel sees the new size; ZFS takes it.
    g.disk_resize(&id, "768M");
    g.wait_for(
        &format!("[ $(blockdev --getsize64 $(readlink -f {link})) = $((768 << 20)) ]"),
        "the new size",
    );
    g.ok(&format!("zpool online -e {pool} {link}"));
    let after = size(g);
    assert!(
        after > before * 2,
        "the pool grew from {before} to {after} bytes only"
    );
    g.ok(&format!("zpool export {pool}"));
    g.disk_remove(&id);
    g.wait_for(&format!("[ ! -e {link} ]"), "the disk to go");
}

#[test]
fn nvme_disks_hotplug_with_the_name_ec2_gives_them() {
    let g = guest::shared();
    let serial = "vol0fedcba987654321";
    let id = Guest::unique("nvme");
    let link = g.disk_add(&id, "128M", serial, Bus::Nvme);
    let ec2 = format!("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}");
    g.wait_for(&format!("[ -e {ec2} ]"), &ec2);
    assert_eq!(
        g.ok(&format!("readlink -f {link}")),
        g.ok(&format!("readlink -f {ec2}"))
    );
    assert_eq!(
        g.ok(&format!(
            "cat /sys/block/$(basename $(readlink -f {ec2}))/device/serial"
        ))
        .trim(),
        serial
    );
    g.disk_remove(&id);
    g.wait_for(&format!("[ ! -e {ec2} ]"), "the NVMe disk to go");
}

#[test]
fn the_guest_is_a_host_for_scenarios() {
    let g = guest::shared();
    let h: &dyn Host = g;
    let p = h.pool(128);
    h.fill_tree(&p.path("t"), 5);
    h.write(&p.path("one"), b"one\n");
    assert_eq!(h.read(&p.path("one")), b"one\n");
    h.ok(&format!("cp -a {} {}", p.path("t"), p.path("u")));
    h.same_tree(&p.path("t"), &p.path("u"));
    h.write(&p.path("u/f3"), b"other");
    assert_ne!(
        h.sh(&format!("diff -r {} {}", p.path("t"), p.path("u")))
            .code(),
        Some(0)
    );
    assert!(h
        .ok(&format!("{} --version", h.bin("zstream-hash")))
        .starts_with("zstream-hash"));
}

#[test]
fn systemd_as_pid_1() {
    let g = Guest::start(&[], true);
    assert_eq!(g.ok("ps -p 1 -o comm=").trim(), "systemd");
    let state = g.sh("systemctl is-system-running --wait");
    assert_eq!(
        String::from_utf8_lossy(state.stdout()).trim(),
        "running",
        "{}",
        state.describe()
    );
    g.ok("systemd-run --wait --unit zstream-probe echo from-a-unit");
    assert!(g
        .ok("journalctl -u zstream-probe --no-pager")
        .contains("from-a-unit"));
    assert!(g.ok("zfs version").contains("zfs-kmod-2.3."));
}

#[test]
fn the_ubuntu_login_has_password_less_sudo_as_on_ec2() {
    let g = guest::shared();
    let mut ssh = g.ssh_command();
    ssh.extend(["-l".into(), "ubuntu".into(), "guest".into()]);
    let out = std::process::Command::new(&ssh[0])
        .args(&ssh[1..])
        .arg("id -un; sudo -n zpool list -H -o name | wc -l")
        .output()
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ubuntu"));
    assert!(
        lines
            .next()
            .is_some_and(|n| n.trim().parse::<u32>().is_ok()),
        "{text}"
    );
}

#[test]
fn a_server_of_the_tests_is_reachable_from_the_guest_at_the_same_address() {
    use std::io::Read;
    let g = guest::shared();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    g.forward(port);
    let got = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    });
    g.ok(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; echo from-the-guest >&3; exec 3>&-"
    ));
    assert_eq!(got.join().unwrap(), "from-the-guest\n");
}

#[test]
fn the_cache_is_keyed_by_the_recipe() {
    use sha2::{Digest, Sha256};
    let recipe = zstream_tests::cycle::scripts().join("lib/guest-image.sh");
    let key = hex::encode(Sha256::digest(std::fs::read(&recipe).unwrap()));
    let r = zstream_tests::proc::run(
        &zstream_tests::cycle::scripts().join("guest"),
        &["build"],
        b"",
    );
    r.expect_code(0);
    let dir = String::from_utf8_lossy(r.stdout()).trim().to_string();
    // Any change to the recipe names another directory; only a whole build has its `built` mark.
    assert!(
        dir.ends_with(&format!("/{}", &key[..16])),
        "{dir} is not named by {recipe:?}'s sha256 {key}"
    );
    let built = std::fs::read_to_string(format!("{dir}/built")).unwrap();
    assert!(built.starts_with("kernel "), "{built}");
    for f in ["vmlinuz", "initrd", "root.img"] {
        assert!(std::path::Path::new(&dir).join(f).exists(), "{dir}/{f}");
    }
}
