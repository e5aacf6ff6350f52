# Sourced by zstream-backup, zstream-restore and zstream-verify: messages and exit codes, the clock, keys and job
# files, the store's canonical names, locks, holds, and the stage bookkeeping of pipes. Every decision about the
# catalog (which backup, which base, what to prune, what to restore, what is healthy) is zstream-catalog's: the
# scripts ask it, once per decision, and act on its answer (zfs, the pipe, zstream-ship put and rm). They never
# read the catalog themselves. The records and the rules: docs/formats/catalog-v2.md.
# shellcheck shell=bash

# The project's exit codes (README, "Exit codes").
readonly EX_RUNTIME=1 EX_USAGE=2 EX_INTEGRITY=3 EX_LATER=75

PROG=${0##*/}
# Set by the scripts' option parsing.
DRY_RUN=''
# shellcheck disable=SC2034 # read by the scripts that source this
JSON=''

# say MSG: one line on stderr, prefixed with the program's name (greppable; never coloured).
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# WORK: the run's scratch directory, removed at exit. FAILED in it holds the code of the first deliberate
# failure, so that a failure deep in a command substitution keeps its code (3, 75) on the way out, while anything
# that fails unexpectedly (a jq, a zfs get) exits 1 saying where, never with a code of its own that could read as
# ours (jq's 3, say).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$PROG.XXXXXX")
# AT_EXIT: functions run on the way out, whatever the way (a metrics file that records a failed run, a monitoring
# plugin's last line). They see the exit status in STATUS and may change it; the reason of a deliberate failure is
# in WORK/FAILED_MSG.
AT_EXIT=()
_at_exit() {
    STATUS=$?
    trap - ERR
    set +e
    local h
    for h in "${AT_EXIT[@]}"; do "$h"; done
    rm -rf "$WORK"
    exit "$STATUS"
}
trap _at_exit EXIT
set -E
trap _unexpected ERR
_unexpected() {
    local status=$?
    if [ -s "$WORK/FAILED" ]; then exit "$(cat "$WORK/FAILED")"; fi
    say "unexpected failure (status $status) at line ${BASH_LINENO[0]}: $BASH_COMMAND"
    echo "unexpected failure (status $status) at line ${BASH_LINENO[0]}" >"$WORK/FAILED_MSG"
    echo "$EX_RUNTIME" >"$WORK/FAILED"
    exit "$EX_RUNTIME"
}
# fail CODE MSG: says MSG and exits with CODE, from a command substitution too.
fail() {
    local code=$1; shift
    say "$*"
    if [ ! -s "$WORK/FAILED" ]; then
        echo "$code" >"$WORK/FAILED"
        printf '%s\n' "$*" >"$WORK/FAILED_MSG"
    fi
    exit "$code"
}
usage_error() { fail "$EX_USAGE" "$* (see $PROG --help)"; }

# need_tools: every command the cycle composes, found on PATH (ZSTREAM_BIN, when set, is searched first).
need_tools() {
    [ -z "${ZSTREAM_BIN:-}" ] || PATH="$ZSTREAM_BIN:$PATH"
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || fail "$EX_RUNTIME" "$t is not on PATH (install zstream, or set ZSTREAM_BIN)"
    done
}

# The clock: ZSTREAM_NOW (ISO 8601 UTC, 2027-01-31T02:00:00Z) when set, for drills and tests; else the system's.
# zstream-catalog reads the same variable: every age it measures is this clock minus a record's time.
now_epoch() {
    if [ -n "${ZSTREAM_NOW:-}" ]; then
        [[ $ZSTREAM_NOW =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] \
            || usage_error "ZSTREAM_NOW=$ZSTREAM_NOW is not ISO 8601 UTC (e.g. 2027-01-31T02:00:00Z)"
        date -u -d "$ZSTREAM_NOW" +%s
    else
        date -u +%s
    fi
}

# seconds DURATION: 30d, 12h, 90m, 45s (or a plain number of seconds) as seconds (the ec2-pool path's retention).
seconds() {
    [[ $1 =~ ^([0-9]+)([dhms]?)$ ]] || return 1
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
        d) echo $((n * 86400)) ;;
        h) echo $((n * 3600)) ;;
        m) echo $((n * 60)) ;;
        *) echo "$n" ;;
    esac
}

# run CMD...: runs a command that changes something (a snapshot, a hold, an object); --dry-run prints it instead.
run() {
    if [ -n "$DRY_RUN" ]; then
        say "dry-run: would run: $(quoted "$@")"
    else
        "$@"
    fi
}
quoted() { local a out=; for a in "$@"; do out+="${out:+ }$(printf '%q' "$a")"; done; printf '%s' "$out"; }

# Keys, as zstream-seal takes them: --keys A,B and --passphrase-file F (repeatable) fill SEAL_KEYS; CATALOG_KEYS
# is the same set as zstream-catalog takes it (it signs and checks records with a key derived from all of them).
SEAL_KEYS=() CATALOG_KEYS=()
add_keys() {
    local f files
    IFS=, read -r -a files <<<"$1"
    for f in "${files[@]}"; do
        [ -n "$f" ] || usage_error "--keys: an empty file name"
        SEAL_KEYS+=(--key-file "$f")
        CATALOG_KEYS+=(--keys "$f")
    done
}
add_passphrase() { SEAL_KEYS+=(--passphrase-file "$1"); CATALOG_KEYS+=(--passphrase-file "$1"); }

# read_config FILE: a job file (/etc/zstream/NAME.conf, for systemd's zstream-backup@NAME): one option a line,
# without its dashes, its value after a space; "dataset" and "dest" are the two arguments; # starts a comment.
# Fills CONFIG_OPTS and CONFIG_ARGS. It names key files and runs as root, so it is refused unless it (through any
# symlinks) is owned by root or the user running it, and neither it nor its directory can be written by others.
CONFIG_OPTS=() CONFIG_ARGS=()
read_config() {
    local given=$1 file line key value n=0
    file=$(readlink -f -- "$given" 2>/dev/null) || file=''
    if [ -z "$file" ] || [ ! -f "$file" ] || [ ! -r "$file" ]; then usage_error "--config $given: no such readable file"; fi
    local me owner dir
    me=$(id -u)
    owner=$(stat -c %u -- "$file")
    [ "$owner" = 0 ] || [ "$owner" = "$me" ] || usage_error "--config $given ($file) is owned by uid $owner, not root or you: chown it"
    [ -z "$(find "$file" -maxdepth 0 -perm /022)" ] || usage_error "--config $given ($file) is writable by group or others: chmod go-w it"
    dir=$(dirname -- "$file")
    owner=$(stat -c %u -- "$dir")
    [ "$owner" = 0 ] || [ "$owner" = "$me" ] || usage_error "--config $given: its directory $dir is owned by uid $owner, not root or you"
    [ -z "$(find "$dir" -maxdepth 0 -perm /022)" ] || usage_error "--config $given: its directory $dir is writable by group or others: chmod go-w it"
    local dataset='' dest=''
    while IFS='' read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
        [[ $line =~ ^[[:space:]]*([a-z][a-z-]*)([[:space:]]+(.*[^[:space:]]))?[[:space:]]*$ ]] \
            || usage_error "--config $given line $n: expected 'option value', got: $line"
        key=${BASH_REMATCH[1]} value=${BASH_REMATCH[3]}
        case $key in
            dataset) dataset=$value ;;
            dest) dest=$value ;;
            config) usage_error "--config $given line $n: a job file cannot name another" ;;
            *) CONFIG_OPTS+=("--$key"); [ -z "$value" ] || CONFIG_OPTS+=("$value") ;;
        esac
    done <"$file"
    if [ -z "$dataset" ] || [ -z "$dest" ]; then usage_error "--config $given: give both 'dataset' and 'dest'"; fi
    # shellcheck disable=SC2034 # read by zstream-backup
    CONFIG_ARGS=("$dataset" "$dest")
}

# The store: DEST holds the streams, CATALOG (DEST, or --catalog for a vault) the signed entries. set_store DEST
# [CATALOG] [DATASET] makes them canonical through zstream-catalog (one store spelled two ways is one store: one
# lock, one hold tag), and sets HOLD_TAG and LOCK_NAME; CAT is what every zstream-catalog call takes for it.
DEST='' CATALOG='' HOLD_TAG='' LOCK_NAME='' CAT=()
set_store() {
    DEST=${1%/}
    case $DEST in
        ec2-pool:?*) return 0 ;;
    esac
    local out
    out=$(zstream-catalog store "$1" ${2:+--catalog "$2"} ${3:+"$3"} 2>"$WORK/store.err") \
        || usage_error "$(why_failed "$WORK/store.err")"
    DEST=$(jq -r .dest <<<"$out")
    CATALOG=$(jq -r .catalog <<<"$out")
    HOLD_TAG=$(jq -r .hold_tag <<<"$out")
    LOCK_NAME=$(jq -r '.lock // empty' <<<"$out")
    CAT=("$DEST")
    [ -z "${2:-}" ] || CAT+=(--catalog "$CATALOG")
}
is_vault() { [[ $DEST == glacier://* ]]; }

# need_metrics_dir FILE: --metrics FILE goes into a directory that exists (checked before the run does anything).
need_metrics_dir() {
    [ -z "$1" ] || [ -d "$(dirname "$1")" ] || usage_error "--metrics $1: no directory $(dirname "$1")"
}

# why_failed FILE: the last line a zstream tool wrote to FILE (its stderr), without its name: the reason to pass on.
why_failed() { tail -1 "$1" | sed 's/^zstream-[a-z]*: //'; }

# lock DATASET: one run per DATASET and store at a time; a second exits 75 at once, saying who holds it. The lock
# file stays (removing it would let a waiting run and a new one both take "the" lock).
LOCK_FD=''
lock() {
    local dir=${ZSTREAM_LOCK_DIR:-/run/lock/zstream} name=${LOCK_NAME:-}
    mkdir -p "$dir" 2>/dev/null || dir=${TMPDIR:-/tmp}
    [ -n "$name" ] || name="$(printf '%s\n%s' "$1" "$DEST" | sha256sum | cut -c1-16).lock"
    LOCK_FILE="$dir/$name"
    exec {LOCK_FD}>>"$LOCK_FILE"
    if ! flock -n "$LOCK_FD"; then
        fail "$EX_LATER" "$1 -> $DEST is locked by another run ($(cat "$LOCK_FILE" 2>/dev/null || echo "unknown")); try later"
    fi
    printf 'pid %s, %s on %s, since %s\n' "$$" "$PROG" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE"
}

# source_snapshots DATASET: its snapshots and bookmarks at the source, "name<TAB>guid<TAB>createtxg" a line, what
# zstream-catalog plan reads. zfs-fuse's `zfs list` has neither -p nor bookmarks: there the guids and txgs come
# from `zfs get`, which has -p.
source_snapshots() {
    zfs list -H -p -o name,guid,createtxg -t snapshot,bookmark -d 1 "$1" 2>/dev/null && return 0
    local names
    mapfile -t names < <(zfs list -H -o name -t snapshot -d 1 "$1")
    [ ${#names[@]} -gt 0 ] || return 0
    join -t $'\t' <(zfs get -Hp -o name,value guid "${names[@]}" | sort) \
        <(zfs get -Hp -o name,value createtxg "${names[@]}" | sort)
}

# snapshots_with_guids DATASET: its snapshots, oldest first, "name<TAB>guid" a line (zfs-fuse's list has no -p).
snapshots_with_guids() {
    local names
    mapfile -t names < <(zfs list -H -o name -t snapshot -s createtxg -d 1 "$1")
    [ ${#names[@]} -gt 0 ] || return 0
    zfs get -Hp -o name,value guid "${names[@]}"
}

# snapshot_to_send: the ec2-pool path's snapshot: --snapshot's (which must exist), else zstream-<UTC time by the
# cycle's clock>, to be taken. (The object-store path's name is zstream-catalog plan's.)
snapshot_to_send() {
    local snap
    if [ -n "$SNAPSHOT" ]; then
        snap=${SNAPSHOT#"$DATASET"@}; snap=${snap#@}
        zfs list -H -o name "$DATASET@$snap" >/dev/null 2>&1 || fail "$EX_RUNTIME" "$DATASET@$snap: no such snapshot"
    else
        snap="zstream-$(date -u -d "@$NOW" +%Y%m%dT%H%M%SZ)"
    fi
    echo "$snap"
}

# move_hold BASE SNAP OLDER: this store's hold moves to SNAP once it is committed: off BASE, or after a full
# (no BASE), off every snapshot in OLDER (one a line), since a full starts over.
move_hold() {
    local tag s
    tag=$(hold_tag)
    zfs hold "$tag" "$DATASET@$2" || say "$DATASET@$2: zfs hold $tag failed; a snapshot manager may delete it before the next run"
    if [ -n "$1" ]; then
        zfs release "$tag" "$DATASET@$1" 2>/dev/null || true
    else
        while IFS='' read -r s; do
            [ -z "$s" ] || [ "$s" = "$2" ] || zfs release "$tag" "$DATASET@$s" 2>/dev/null || true
        done <<<"$3"
    fi
}

# hold_tag: the tag of this store's holds, one per store, so no snapshot manager deletes the next run's base and
# two stores backing up one dataset do not release each other's holds.
hold_tag() {
    if [ -n "$HOLD_TAG" ]; then echo "$HOLD_TAG"; else printf 'zstream-%s' "$(printf '%s' "$DEST" | sha256sum | cut -c1-12)"; fi
}

# mount_target: TARGET mounted once a restore's links are all in (they are received unmounted), where it is a
# file system that mounts (canmount=on) and is not yet, and its key is loaded (a raw backup's is not: say_locked).
# A mount that fails is said; TARGET holds the restore either way.
mount_target() {
    local type can mounted
    # keystatus apart: zfs-fuse has no such property, and would refuse the whole list.
    read -r type can mounted < <(zfs get -H -o value type,canmount,mounted "$TARGET" 2>/dev/null | tr '\n' ' ') || true
    [ "${type:-}" = filesystem ] && [ "${can:-}" = on ] && [ "${mounted:-}" = no ] || return 0
    [ "$(zfs get -H -o value keystatus "$TARGET" 2>/dev/null)" != unavailable ] || return 0
    zfs mount "$TARGET" || say "$TARGET: zfs mount failed; it holds the restore, unmounted"
}

# say_locked: a raw backup (--raw) arrives encrypted under the source dataset's own key: received, not readable
# until that key is loaded; said after a restore into TARGET.
say_locked() {
    if [ "$(zfs get -H -o value keystatus "$TARGET" 2>/dev/null)" = unavailable ]; then
        say "$TARGET is encrypted with $DATASET's own key (a raw backup): zfs load-key -L LOCATION $TARGET (the source's key or passphrase), then zfs mount $TARGET"
    fi
}

# receive_all ARGS...: zfs receive ARGS, then the rest of stdin drained. A receive may stop reading inside the
# stream's END record (zfs-fuse's does, when the record arrives in two writes); the stage before it must still
# see the whole stream through, or it reports a closed pipe and zstream-hash --check never reaches its digest.
receive_all() { local r=0; zfs receive "$@" || r=$?; cat >/dev/null; return "$r"; }

# first_failed NAMES... -- STATUSES...: the stage whose own failure failed a pipe, as "name status", or nothing.
# A stage may write its stderr to WORK/stage.N.err (N from 0, in the pipe's order): what the stages said is passed
# on in that order, the cause's words kept in WORK/failed.err, and the files removed. A stage whose output was
# closed under it (it says "Broken pipe", or died of SIGPIPE: 141) stopped because a later stage stopped reading:
# while a later stage failed too, the cause is that one. Otherwise a check that refuses a stream (zstream-hash,
# exit 3) would be reported as the closed pipe of a stage before it (exit 1), and a failed upload as zfs send's.
first_failed() {
    local -a names=() codes=()
    while [ "$1" != -- ]; do names+=("$1"); shift; done
    shift
    codes=("$@")
    local i j err cause=''
    : >"$WORK/failed.err"
    for i in "${!codes[@]}"; do
        err="$WORK/stage.$i.err"
        [ ! -s "$err" ] || cat "$err" >&2
        if [ -n "$cause" ] || [ "${codes[$i]}" = 0 ]; then continue; fi
        if [ "${codes[$i]}" = 141 ] || grep -qi 'broken pipe' "$err" 2>/dev/null; then
            for ((j = i + 1; j < ${#codes[@]}; j++)); do
                [ "${codes[$j]}" = 0 ] || continue 2
            done
        fi
        cause=$i
        [ ! -e "$err" ] || cp "$err" "$WORK/failed.err"
    done
    rm -f "$WORK"/stage.*.err
    [ -z "$cause" ] || echo "${names[$cause]} ${codes[$cause]}"
}

# code_of STATUS: the exit code a failed stage's status gives the run: 3 (integrity) and 75 (later) pass on, the
# rest (1, 2, a signal) are runtime errors.
code_of() {
    case $1 in
        3) echo "$EX_INTEGRITY" ;;
        75) echo "$EX_LATER" ;;
        *) echo "$EX_RUNTIME" ;;
    esac
}

# fail_if_target_changed FAILED WHAT: when the stage that failed (first_failed's answer) is zfs receive refusing
# TARGET as changed since its newest snapshot ("destination ... has been modified"), fails saying how --force
# discards the change (a restore from S3 and from a pool alike); WHAT begins the message.
fail_if_target_changed() {
    { [ "${1% *}" = "zfs receive" ] && grep -q "modified" "$WORK/failed.err"; } || return 0
    fail "$EX_RUNTIME" "$2$TARGET has changed since its newest snapshot (written to, or only read: with atime=on ZFS counts a read's access time as a change; zfs set atime=off $TARGET keeps reads from doing so); give --force to discard those changes"
}

# catalog CMD ARGS...: zstream-catalog CMD for this store, its answer (JSON) on stdout, what it says on stderr
# passed on; a refusal exits the script with the same code and reason.
catalog() {
    local cmd=$1 out code=0
    shift
    out=$(zstream-catalog "$cmd" "${CAT[@]}" "$@" 2>"$WORK/catalog.err") || code=$?
    if [ "$code" != 0 ]; then
        head -n -1 "$WORK/catalog.err" >&2
        fail "$code" "$(why_failed "$WORK/catalog.err")"
    fi
    cat "$WORK/catalog.err" >&2
    printf '%s\n' "$out"
}

# --- Blocks sent as stored: `zfs send -L -c` where the source's zfs takes them (OpenZFS 0.7 and later), so a
# stream carries large and compressed blocks as the pool holds them (smaller, and no recompression on receive).
# Not -e: OpenZFS refuses a stream of embedded blocks into an encrypted dataset unless it is raw ("incompatible
# embedded data stream feature with encrypted receive"; zfs-send(8)), so with -e neither an encrypted ec2-pool nor
# a restore below an encrypted dataset could take it; without it an embedded block (data of at most 112 bytes,
# compressed) goes as a small WRITE record, and the receive embeds it again where it can. Detected, not assumed:
# zfs-fuse and older ZFS reject the options ("invalid option") while parsing, before they look for a snapshot
# (none is given here), and then the run sends plainly and says so once. Switching a chain from plain to -L is
# safe on OpenZFS 2.0 and later (OpenZFS #10383); the reverse is refused.

# send_supports OPTION...: this zfs's `send` takes these options.
send_supports() {
    local out
    out=$(zfs send "$@" 2>&1 >/dev/null) || true
    [[ $out != *"invalid option"* ]]
}

# send_form: tonight's `zfs send` options, in SEND_OPTS (read by zstream-backup).
# shellcheck disable=SC2034 # read by zstream-backup
SEND_OPTS=()
send_form() {
    if [ -n "${RAW:-}" ]; then
        # Raw: the blocks as the pool stores them, encrypted (compressed and large ones too: -w implies -L -c -e).
        send_supports -w || fail "$EX_USAGE" "--raw: this zfs has no raw sends (zfs send -w: OpenZFS 0.8 and later)"
        SEND_OPTS=(-w)
    elif send_supports -L -c; then
        SEND_OPTS=(-L -c)
    else
        # shellcheck disable=SC2034 # read by zstream-backup
        SEND_OPTS=()
        say "this zfs sends no block as stored (no zfs send -L -c: zfs-fuse, or ZFS before OpenZFS 0.7): large blocks are split and compressed ones sent uncompressed"
    fi
}

# --- Bookmarks as the incremental base: after each committed backup, this store's bookmark of the snapshot, so
# the next incremental can be sent from it once the snapshot is gone (sanoid and zrepl destroy old snapshots;
# --no-hold lets them). zstream-catalog's plan finds the base by guid, as a snapshot or as any bookmark of it.
# zfs-fuse has no bookmarks: detected, said, and the snapshot (held, unless --no-hold) is the only base there.

# bookmarks_here: DATASET's zfs has `zfs bookmark` and its pool the bookmarks feature.
bookmarks_here() {
    local out
    out=$(zfs bookmark 2>&1) || true
    [[ $out != *"unrecognized command"* ]] || return 1
    case $(zpool get -H -o value feature@bookmarks "${DATASET%%/*}" 2>/dev/null) in
        enabled | active) return 0 ;;
        *) return 1 ;;
    esac
}

# bookmark_of SNAP: this store's bookmark of DATASET@SNAP: the store's hold tag, then the snapshot's name.
bookmark_of() { printf '%s#%s_%s' "$DATASET" "$(hold_tag)" "$1"; }

# mark_base SNAP: this store's bookmark of DATASET@SNAP, then this store's older ones destroyed (the next base is
# always the newest record). Other stores' bookmarks (another tag) and the user's are never touched. A bookmark
# that cannot be made is said and the run goes on: the record is committed, and the snapshot is the base.
mark_base() {
    local snap=$1 bm b
    if ! bookmarks_here; then
        say "$DATASET: no bookmarks here (zfs-fuse, or a pool without the bookmarks feature): the next incremental needs @$snap itself at the source$([ -z "$NO_HOLD" ] || echo ", and with --no-hold nothing keeps it there")"
        return 0
    fi
    bm=$(bookmark_of "$snap")
    if ! zfs bookmark "$DATASET@$snap" "$bm" 2>"$WORK/bookmark.err"; then
        say "$DATASET@$snap: zfs bookmark failed ($(tail -1 "$WORK/bookmark.err")); the snapshot itself is the next base"
        return 0
    fi
    while IFS='' read -r b; do
        if [ -n "$b" ] && [ "$b" != "$bm" ] && [[ ${b#*#} == "$(hold_tag)_"* ]]; then
            zfs destroy "$b" || say "$b: could not be destroyed; the next run tries again"
        fi
    done < <(zfs list -H -o name -t bookmark -d 1 "$DATASET" 2>/dev/null)
}

# release_holds: --no-hold: this store's holds go from every snapshot of DATASET (an earlier run's included), so a
# snapshot manager may destroy any of them; the bookmark is the next base.
release_holds() {
    local tag name refs
    tag=$(hold_tag)
    while IFS=$'\t' read -r name refs; do
        [ "${refs:-0}" != 0 ] || continue
        zfs release "$tag" "$name" 2>/dev/null || true
    done < <(zfs list -H -o name,userrefs -t snapshot -d 1 "$DATASET" 2>/dev/null)
}

# encryption_check: an encrypted DATASET (OpenZFS native encryption) is sent decrypted, which needs its key
# loaded: checked before anything is taken, so a run with the key unloaded fails in one line and leaves no
# snapshot behind (a failed send would). With --raw it is sent as stored, under its own key, and needs none.
# zfs-fuse has no `encryption` property: nothing to check there.
# shellcheck disable=SC2034 # SOURCE_ENCRYPTED is read by pool.sh
SOURCE_ENCRYPTED=''
encryption_check() {
    local enc
    enc=$(zfs get -H -o value encryption "$DATASET" 2>/dev/null) || enc=''
    case $enc in
    '' | off | -)
        [ -z "${RAW:-}" ] || say "$DATASET is not encrypted: --raw sends its blocks as stored (as -L -c does, and embedded ones too)"
        return 0
        ;;
    esac
    # shellcheck disable=SC2034 # read by pool.sh
    SOURCE_ENCRYPTED=1
    if [ -n "${RAW:-}" ]; then
        say "$DATASET is encrypted ($enc): sent raw, its blocks under its own key inside the seal; a restore is encrypted with that key and is read only once it is loaded (zfs load-key)"
        return 0
    fi
    [ "$(zfs get -H -o value keystatus "$DATASET" 2>/dev/null)" = available ] \
        || fail "$EX_RUNTIME" "$DATASET is encrypted ($enc) and its key is not loaded: zfs load-key $DATASET, then run again (nothing was taken)"
    say "$DATASET is encrypted ($enc): sent decrypted, so the store holds it under the seal's keys alone, and a restore is not encrypted unless its TARGET is below an encrypted dataset"
}

# warn_children: children are not in DATASET's stream (each dataset is its own chain): said on every run, so
# that nobody learns it from a restore that holds empty directories where they were.
warn_children() {
    local children
    children=$(zfs list -H -o name -t filesystem,volume -r "$DATASET" 2>/dev/null | sed 1d | wc -l)
    [ "$children" = 0 ] || [ -n "${ZSTREAM_RECURSIVE:-}" ] || say "$DATASET: WARNING: its $children child dataset(s) are not in this backup (give --recursive, or back each up by name)"
}

# direct_children_at DATASET SNAP: the datasets directly below DATASET that hold @SNAP (those `zfs snapshot -r`
# took), one a line: a recursive run's record counts them (zstream-catalog commit --children), so that a restore of
# the tree can tell a child whose records were all deleted from one that never was.
direct_children_at() {
    local held kid
    held=$(held_at "$1" "$2") || fail "$EX_RUNTIME" "$1: listing the datasets that hold @$2 failed"
    while IFS='' read -r kid; do
        [[ $kid == "$1"/* && ${kid#"$1"/} != */* ]] || continue
        printf '%s\n' "$kid"
    done <<<"$held"
}

# held_at DATASET SNAP: DATASET and the datasets below it that hold @SNAP, parents first, one a line; fails when
# zfs cannot list them (a child left out of a count by an error would be a child nobody misses).
held_at() {
    zfs list -H -o name -t snapshot -r "$1" | awk -v s="@$2" '
        length($0) > length(s) && substr($0, length($0) - length(s) + 1) == s { print substr($0, 1, length($0) - length(s)) }' \
        | LC_ALL=C sort
}

# worst_of A B: the exit code of a run whose parts exited A and B (a tree's datasets): integrity (3) over runtime
# and usage (1, 2, a signal: the later kept) over try-later (75: nothing failed, something waits) over 0.
worst_of() {
    if [ "$(exit_rank "$2")" -ge "$(exit_rank "$1")" ]; then echo "$2"; else echo "$1"; fi
}
exit_rank() { case $1 in 0) echo 0 ;; 75) echo 1 ;; 3) echo 3 ;; *) echo 2 ;; esac; }

# --- Recursive backups: DATASET and every dataset below it, each its own chain (its own records, base, prune and
# restore of one child alone), from one `zfs snapshot -r`, so that the tree is one point in time. Chosen over one
# `zfs send -R` stream: a child's failure or damage then costs that child's night, not the tree's, and every
# rule of the catalog (one dataset, one chain) holds unchanged.

# recursive_backup: takes DATASET@zstream-TIME recursively (unless --snapshot names an existing one, or
# --prune-only), then runs this script on each dataset of the tree with the same options and --snapshot; exits
# with the worst of their codes.
recursive_backup() {
    local name=${SNAPSHOT#*@} ds code worst=0 n=1 datasets=()
    zfs list -H -o name "$DATASET" >/dev/null 2>&1 || fail "$EX_RUNTIME" "$DATASET: no such dataset"
    ! is_pool || pool_hold_up
    if [ -z "$PRUNE_ONLY" ] && [ -z "$name" ]; then
        local base
        base="zstream-$(date -u -d "@$NOW" +%Y%m%dT%H%M%SZ)"
        name=$base
        # A second run in the same second: -2, -3, ... as the plan names one dataset's snapshots.
        while zfs list -H -o name "$DATASET@$name" >/dev/null 2>&1; do
            n=$((n + 1))
            name="$base-$n"
        done
        if [ -n "$DRY_RUN" ]; then
            say "dry-run: would run: zfs snapshot -r $DATASET@$name"
        else
            say "$DATASET: taking $DATASET@$name and the same of every dataset below it (zfs snapshot -r)"
            zfs snapshot -r "$DATASET@$name"
        fi
    fi
    # The datasets the tree's snapshot holds, listed after it was taken: one created or renamed meanwhile is not
    # half in the tree (named by its parent's record, never backed up). A dry run, or a prune alone, took none: the
    # datasets there are now.
    if [ -n "$DRY_RUN" ] || [ -z "$name" ]; then
        mapfile -t datasets < <(zfs list -H -o name -t filesystem,volume -r "$DATASET")
    else
        local held
        held=$(held_at "$DATASET" "$name") || fail "$EX_RUNTIME" "$DATASET: listing the datasets that hold @$name failed"
        mapfile -t datasets <<<"$held"
        [ "${datasets[0]:-}" = "$DATASET" ] || fail "$EX_RUNTIME" "$DATASET@$name: no such snapshot"
    fi
    # A dry run took no snapshot: each dataset's own dry run says what it would take.
    local snap_opt=()
    [ -n "$DRY_RUN" ] || [ -z "$name" ] || snap_opt=(--snapshot "$name")
    for ds in "${datasets[@]}"; do
        say "$ds: backing up${name:+ @$name} (--recursive)"
        code=0
        ZSTREAM_RECURSIVE=1 "$0" "${CHILD_OPTS[@]}" "${snap_opt[@]}" "$ds" "${ARGS[1]}" || code=$?
        [ "$code" = 0 ] || say "$ds: FAILED (exit $code); the other datasets go on"
        worst=$(worst_of "$worst" "$code")
    done
    exit "$worst"
}
