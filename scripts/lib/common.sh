# Sourced by scripts/*: installing what is missing, the shared build cache, and ZFS for a run.
# Everything here is idempotent and says what it does on stderr.
# shellcheck shell=bash

# Build output lives outside the clone so CI's fresh clones and later sessions reuse it. It is a cache: deleting
# it only costs a rebuild.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/zstream-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "$*"; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root: ZFS (zfs-fuse or kernel) needs it"
}

_apt_updated=
# ensure_apt CMD PACKAGE...: installs the packages when CMD is not on PATH.
ensure_apt() {
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    _apt_install "$@"
    command -v "$cmd" >/dev/null 2>&1 || die "installed $* but $cmd is still missing"
}

# _apt_install PACKAGE...: apt-get install, after one apt-get update per run.
_apt_install() {
    need_root
    if [ -z "$_apt_updated" ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        _apt_updated=1
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_rust_component NAME: rustfmt and clippy for the checks.
ensure_rust_component() {
    rustup component list --installed 2>/dev/null | grep -q "^$1" || rustup component add "$1"
}

# moto's server (a real S3/Glacier/EC2 API on loopback) lives in a venv outside the clone, like the build cache.
export ZSTREAM_MOTO_VENV="${ZSTREAM_MOTO_VENV:-/var/tmp/zstream-moto-venv}"
MOTO_VERSION=5.2.5 PROMETHEUS_CLIENT_VERSION=0.26.0 AWSCLI_VERSION=1.46.3
# ensure_moto: installs moto[server] (with awscrt and crc32c, without which it mislabels checksums) when missing,
# prometheus_client, whose parser the monitoring tests read the metrics files with, and the AWS CLI (version 1,
# the one on PyPI, on the botocore moto brings), which uploads the objects of other clients that get must read.
ensure_moto() {
    if "$ZSTREAM_MOTO_VENV/bin/python" -c "import moto, awscrt, crc32c, prometheus_client, awscli; assert moto.__version__ == '$MOTO_VERSION'; assert awscli.__version__ == '$AWSCLI_VERSION'" \
        2>/dev/null; then
        return 0
    fi
    ensure_apt python3 python3
    if ! { python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null; }; then
        ensure_apt_pkg python3-venv
    fi
    say "installing moto[server]==$MOTO_VERSION, prometheus_client and awscli into $ZSTREAM_MOTO_VENV"
    python3 -m venv "$ZSTREAM_MOTO_VENV"
    "$ZSTREAM_MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" awscrt crc32c \
        "prometheus_client==$PROMETHEUS_CLIENT_VERSION" "awscli==$AWSCLI_VERSION"
}

# promtool (Debian's prometheus package), for the test of the README's alert rules: unpacked from the package
# into a cache, not installed, so that no Prometheus server is set up or started here.
export ZSTREAM_PROMTOOL="${ZSTREAM_PROMTOOL:-/var/tmp/zstream-promtool/promtool}"
ensure_promtool() {
    [ -x "$ZSTREAM_PROMTOOL" ] && return 0
    need_root
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/zstream-promtool.XXXXXX")
    say "unpacking promtool from Debian's prometheus package into $(dirname "$ZSTREAM_PROMTOOL")"
    if ! (cd "$dir" && apt-get download -qq prometheus 2>/dev/null); then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        (cd "$dir" && apt-get download -qq prometheus 2>/dev/null) || die "could not fetch Debian's prometheus package"
    fi
    dpkg -x "$dir"/prometheus_*.deb "$dir/x"
    install -D -m 755 "$dir/x/usr/bin/promtool" "$ZSTREAM_PROMTOOL"
    rm -rf "$dir"
}

# ensure_apt_pkg PACKAGE: installs a package that brings no command of its own name.
ensure_apt_pkg() {
    dpkg -s "$1" >/dev/null 2>&1 || _apt_install "$1"
}

# private_zfs "$0" "$@" (first thing in a script that starts zfs-fuse): runs the script again in a mount namespace
# of its own, with empty directories where zfs-fuse keeps its socket, lock and pool cache (its zfsrc copied in).
# zfs-fuse allows one daemon per machine and imports every pool its cache lists when it starts: inside, this
# run's daemon sees only the pools this run creates, and a daemon or pools of anyone else's (outside, or in
# another such namespace) are neither used nor imported. Mounts made inside stay inside, where the run's
# processes see them. With kernel ZFS (/dev/zfs) there is nothing to keep apart and the script runs as it is.
ZFS_PRIVATE_DIRS=(/run/zfs /run/lock/zfs /etc/zfs /var/lib/zfs)
private_zfs() {
    [ -z "${ZSTREAM_PRIVATE_ZFS:-}" ] && [ ! -e /dev/zfs ] || return 0
    need_root
    ensure_apt unshare util-linux
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    exec unshare --mount --propagation private -- bash -c '
        set -e
        for d in "${@:1:4}"; do
            # Only the configuration is kept (zfsrc): never a pool cache, which is what is being kept apart.
            keep=$(mktemp -d)
            [ "$d" != /etc/zfs ] || [ ! -d "$d" ] || cp -a "$d/." "$keep/"
            rm -f "$keep/zpool.cache"
            mkdir -p "$d"; mount -t tmpfs -o mode=755 zstream-private-zfs "$d"; cp -a "$keep/." "$d/"; rm -rf "$keep"
        done
        shift 4
        ZSTREAM_PRIVATE_ZFS=1 exec "$@"' private-zfs "${ZFS_PRIVATE_DIRS[@]}" "$@"
}

ZFS_FUSE_PID=
# start_zfs: uses kernel ZFS or a running daemon as it is; otherwise starts zfs-fuse and stop_zfs stops it.
# A daemon started here would import every pool its cache lists: with a cache that lists any (outside
# private_zfs, on a machine where someone else uses zfs-fuse) it refuses, rather than take another's pools.
start_zfs() {
    if zpool list >/dev/null 2>&1; then return 0; fi
    ensure_apt zfs-fuse zfs-fuse
    [ -e /dev/fuse ] || die "zfs-fuse needs /dev/fuse, which this machine lacks"
    [ ! -s /var/lib/zfs/zpool.cache ] || die "zfs-fuse would import the pools /var/lib/zfs/zpool.cache lists, which are \
not this run's: run this script as it is (it keeps its ZFS apart) or move that cache away"
    zfs-fuse --no-daemon --no-kstat-mount >"${TMPDIR:-/tmp}/zstream-zfs-fuse.$$.log" 2>&1 &
    ZFS_FUSE_PID=$!
    for _ in $(seq 1 200); do
        zpool list >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "zfs-fuse did not answer within 20 s (log: ${TMPDIR:-/tmp}/zstream-zfs-fuse.$$.log)"
}

# destroy_pool POOL: zpool destroy, retried while ZFS says the pool is busy (right after a receive or a mount it
# often is, for a second or two). Says what failed when it gives up.
destroy_pool() {
    local err
    for _ in $(seq 1 20); do
        err=$(zpool destroy -f "$1" 2>&1) && return 0
        zpool list "$1" >/dev/null 2>&1 || return 0
        sleep 0.5
    done
    say "zpool destroy $1 failed 20 times: $err"
    return 1
}

stop_zfs() {
    [ -n "$ZFS_FUSE_PID" ] || return 0
    kill -TERM "$ZFS_FUSE_PID" 2>/dev/null || true
    # zfs-fuse unmounts and exits in about 4 s after SIGTERM.
    for _ in $(seq 1 150); do
        kill -0 "$ZFS_FUSE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$ZFS_FUSE_PID" 2>/dev/null || true
    rm -f "${TMPDIR:-/tmp}/zstream-zfs-fuse.$$.log"
    ZFS_FUSE_PID=
}
