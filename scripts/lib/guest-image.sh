# The recipe of the real-OpenZFS guest (scripts/guest): Debian 12 with its kernel and OpenZFS 2.3 from
# bookworm-backports, built from Debian's packages alone. This file is the cache key: the sha256 of its text names
# the cache directory, so any change here builds a new guest and nothing else ever does. What runs at each boot is
# scripts/lib/guest-init, read from the shared clone, so changing it needs no rebuild.
# shellcheck shell=bash

GUEST_MIRROR=http://deb.debian.org/debian
GUEST_SECURITY_MIRROR=http://deb.debian.org/debian-security
GUEST_SUITE=bookworm

# What the tiers need inside, beyond minbase:
#   linux-image-amd64 linux-headers-amd64   the kernel, and headers for DKMS to build ZFS against
#   zfs-dkms zfsutils-linux (backports)     OpenZFS 2.3: the module built here, the commands
#   udev kmod                               whole-disk pools need udev (partitions, /dev/disk/by-id); modprobe
#   systemd-sysv dbus                       systemd as PID 1 (issue 26: timers, journal, ProtectSystem); dbus for
#                                           timedatectl and friends
#   openssh-server sudo                     the long-lived guest's way in, and ec2-pool's remote shell (a sudoer login)
#   cryptsetup-bin                          LUKS under pool disks (issue 25); the binary without initramfs hooks
#   iproute2 procps psmisc                  the guest's network (user-mode, host-only), ps/pkill/fuser for tests
#   e2fsprogs util-linux jq diffutils       what the project's scripts and tests call (mkfs, flock, jq, diff)
#   ca-certificates                         nothing fetches from inside, but apt keeps working if someone tries
# Not here: xfsprogs, zfs-zed, zfs-initramfs (root is ext4; no pool is imported at boot).
GUEST_PACKAGES=(linux-image-amd64 linux-headers-amd64 udev kmod systemd-sysv dbus openssh-server sudo cryptsetup-bin
    iproute2 procps psmisc e2fsprogs util-linux jq diffutils ca-certificates)
GUEST_BACKPORTS_PACKAGES=(zfs-dkms zfsutils-linux)
# shellcheck disable=SC2034 # read by scripts/guest
GUEST_ROOT_SIZE=3G

# The init baked into the image: mounts what it needs to reach the 9p share "io" and runs the project's
# guest-init from it (copied there at every boot by scripts/guest). PID 1 in the fast modes
# (init=/usr/local/sbin/zstream-init); under systemd, zstream-guest.service runs it.
read -r -d '' GUEST_STUB <<'STUB' || true
#!/bin/bash
# zstream's guest stub (scripts/lib/guest-image.sh): reach the io share, run its init.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ $$ = 1 ]; then
    mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
    mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
    mount -t tmpfs -o mode=755 run /run; mount -t tmpfs tmpfs /tmp
fi
modprobe 9pnet_virtio; modprobe 9p
mkdir -p /zstream/io
mountpoint -q /zstream/io || mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 io /zstream/io
if [ -x /zstream/io/init ]; then
    if [ $$ = 1 ]; then exec /zstream/io/init; else exec /zstream/io/init systemd; fi
fi
echo "zstream-init: /zstream/io/init is missing" >&2
[ $$ = 1 ] && echo o > /proc/sysrq-trigger
exit 1
STUB

# guest_image_build ROOT: installs the guest into ROOT (debootstrap, packages, configuration). Run as root, in a
# bash of its own with -e (scripts/guest does).
guest_image_build() {
    local root=$1
    debootstrap --variant=minbase --components=main "$GUEST_SUITE" "$root" "$GUEST_MIRROR"
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb $GUEST_MIRROR $GUEST_SUITE main contrib
deb $GUEST_MIRROR $GUEST_SUITE-updates main contrib
deb $GUEST_SECURITY_MIRROR $GUEST_SUITE-security main contrib
deb $GUEST_MIRROR $GUEST_SUITE-backports main contrib
SOURCES
    # Nothing starts in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    # Unmounted however the install ends (a kill included): a build directory left mounted could not be removed.
    trap '_guest_unmount "$root"' EXIT
    trap 'exit 1' TERM INT HUP
    _guest_chroot_install "$root"
    _guest_unmount "$root"
    trap - EXIT
    rm -f "$root/usr/sbin/policy-rc.d"
    _guest_configure "$root"
}

_guest_unmount() {
    local m
    for m in dev/pts dev sys proc; do
        ! mountpoint -q "$1/$m" || umount -l "$1/$m"
    done
}

_guest_chroot_install() {
    local root=$1 apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends)
    chroot "$root" apt-get -q update
    chroot "$root" "${apt[@]}" install "${GUEST_PACKAGES[@]}"
    chroot "$root" "${apt[@]}" install -t "$GUEST_SUITE-backports" "${GUEST_BACKPORTS_PACKAGES[@]}"
    # DKMS builds for the newest installed kernel in its postinst; make sure, for the one kernel there is.
    local kver zver
    kver=$(basename "$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -1)")
    # shellcheck disable=SC2016 # dpkg-query's own format
    zver=$(chroot "$root" dpkg-query -W -f '${Version}' zfs-dkms | sed 's/-.*//')
    if ! find "$root/lib/modules/$kver" -name 'zfs.ko*' | grep -q .; then
        chroot "$root" dkms install "zfs/$zver" -k "$kver"
    fi
    find "$root/lib/modules/$kver" -name 'zfs.ko*' | grep -q . || { echo "no zfs module for $kver" >&2; return 1; }
    chroot "$root" update-initramfs -u -k "$kver"
    chroot "$root" apt-get clean
}

_guest_configure() {
    local root=$1
    echo zstream-guest >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 zstream-guest\n' >"$root/etc/hosts"
    printf '%s\n' "$GUEST_STUB" >"$root/usr/local/sbin/zstream-init"
    chmod 755 "$root/usr/local/sbin/zstream-init"
    # Under systemd: the stub runs as a oneshot service once the basic system is up (shares, network, SSH keys)
    # before ssh.service starts; in the fast modes guest-init starts sshd itself.
    cat >"$root/etc/systemd/system/zstream-guest.service" <<'UNIT'
[Unit]
Description=zstream test guest: shares, network, SSH, the command
After=systemd-udevd.service local-fs.target
Wants=systemd-udevd.service
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/usr/local/sbin/zstream-init
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
UNIT
    ln -sf /etc/systemd/system/zstream-guest.service \
        "$root/etc/systemd/system/multi-user.target.wants/zstream-guest.service"
    # Keys come at each boot from the host (the io share), never baked in.
    cat >"$root/etc/ssh/sshd_config.d/zstream.conf" <<'SSHD'
AuthorizedKeysFile .ssh/authorized_keys /run/zstream/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PermitRootLogin prohibit-password
MaxSessions 100
MaxStartups 100
SSHD
    # EC2's default login on Ubuntu images: a user with password-less sudo (ec2-pool runs root's commands
    # through sudo -n unless it logs in as root).
    chroot "$root" useradd -m -s /bin/bash ubuntu
    echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/ubuntu"
    chmod 440 "$root/etc/sudoers.d/ubuntu"
    # A serial console login is not wanted: the console is the log.
    rm -f "$root/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
    : >"$root/etc/fstab"
}
