# Sourced by zstream-backup, zstream-restore and zstream-verify: messages and exit codes, the clock, the store's
# layout, catalog records, and the commands that read and write them. Everything that touches a stored object goes
# through zstream-ship; everything that reads a stream through the filters. The layout and the records are
# specified in docs/formats/catalog-v1.md.
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
# Every age the cycle measures (of fulls, of objects for billing) is this clock minus a record's time.
now_epoch() {
    if [ -n "${ZSTREAM_NOW:-}" ]; then
        [[ $ZSTREAM_NOW =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] \
            || usage_error "ZSTREAM_NOW=$ZSTREAM_NOW is not ISO 8601 UTC (e.g. 2027-01-31T02:00:00Z)"
        date -u -d "$ZSTREAM_NOW" +%s
    else
        date -u +%s
    fi
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
epoch_of() { date -u -d "$1" +%s; }

# seconds DURATION: 30d, 12h, 90m, 45s (or a plain number of seconds) as seconds.
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

# bytes SIZE: 1MiB, 64KiB, 1GiB, 4096 as bytes (the binary units the filters take).
bytes() {
    [[ $1 =~ ^([0-9]+)(KiB|MiB|GiB|K|M|G)?$ ]] || return 1
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
        KiB | K) echo $((n << 10)) ;;
        MiB | M) echo $((n << 20)) ;;
        GiB | G) echo $((n << 30)) ;;
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

# Keys, as zstream-seal takes them: --keys A,B and --passphrase-file F (repeatable) fill SEAL_KEYS.
SEAL_KEYS=()
add_keys() {
    local f
    IFS=, read -r -a files <<<"$1"
    for f in "${files[@]}"; do
        [ -n "$f" ] || usage_error "--keys: an empty file name"
        SEAL_KEYS+=(--key-file "$f")
    done
}
add_passphrase() { SEAL_KEYS+=(--passphrase-file "$1"); }

# read_config FILE: a job file (/etc/zstream/NAME.conf, for systemd's zstream-backup@NAME): one option a line,
# without its dashes, its value after a space; "dataset" and "dest" are the two arguments; # starts a comment.
# Fills CONFIG_OPTS and CONFIG_ARGS. A file others may write is refused: it names key files and runs as root.
CONFIG_OPTS=() CONFIG_ARGS=()
read_config() {
    local file=$1 line key value n=0
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then usage_error "--config $file: no such readable file"; fi
    [ -z "$(find "$file" -perm /022)" ] || usage_error "--config $file is writable by group or others: chmod go-w it"
    local dataset='' dest=''
    while IFS='' read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
        [[ $line =~ ^[[:space:]]*([a-z][a-z-]*)([[:space:]]+(.*[^[:space:]]))?[[:space:]]*$ ]] \
            || usage_error "--config $file line $n: expected 'option value', got: $line"
        key=${BASH_REMATCH[1]} value=${BASH_REMATCH[3]}
        case $key in
            dataset) dataset=$value ;;
            dest) dest=$value ;;
            config) usage_error "--config $file line $n: a job file cannot name another" ;;
            *) CONFIG_OPTS+=("--$key"); [ -z "$value" ] || CONFIG_OPTS+=("$value") ;;
        esac
    done <"$file"
    if [ -z "$dataset" ] || [ -z "$dest" ]; then usage_error "--config $file: give both 'dataset' and 'dest'"; fi
    # shellcheck disable=SC2034 # read by zstream-backup
    CONFIG_ARGS=("$dataset" "$dest")
}

# The store. DEST holds the objects; CATALOG (DEST, or --catalog for a vault, which has no place for records)
# holds the records. Both are URL prefixes zstream-ship takes, without a trailing slash.
#   DEST/data/DATASET@SNAPSHOT.zstream       the stream (hash | seal | par), in the chosen storage class
#   CATALOG/catalog/DATASET@SNAPSHOT.json    its record, STANDARD: the commit point
# "@" cannot occur in a dataset name, so DATASET@ is a prefix that holds that dataset's snapshots and no other's.
DEST='' CATALOG=''
set_store() {
    DEST=${1%/}
    CATALOG=${2:-$DEST}
    CATALOG=${CATALOG%/}
    case $DEST in
        ec2-pool:?*) return 0 ;;
        s3://?*/?* | file:///?* | glacier://?*) ;;
        s3://* ) usage_error "DEST $DEST: give a prefix in the bucket, s3://bucket/prefix" ;;
        *) usage_error "DEST $DEST: expected s3://bucket/prefix, file:///dir, glacier://vault or ec2-pool:NAME" ;;
    esac
    case $CATALOG in
        glacier://*) usage_error "a vault has no place for records: give --catalog s3://bucket/prefix or file:///dir" ;;
        s3://?*/?* | file:///?*) ;;
        *) usage_error "--catalog $CATALOG: expected s3://bucket/prefix or file:///dir" ;;
    esac
}
is_vault() { [[ $DEST == glacier://* ]]; }
object_url() { if is_vault; then echo "$DEST"; else echo "$DEST/data/$1@$2.zstream"; fi; }
record_url() { echo "$CATALOG/catalog/$1@$2.json"; }

# records DATASET: the dataset's catalog records as one JSON array, oldest first. A record that does not parse,
# or that names another snapshot than its name says, stops the run (exit 3): the catalog is what restores trust.
records() {
    local ds=$1 url listing dir n=0 checked
    listing=$(zstream-ship ls --json "$CATALOG/catalog/$ds@") || fail "$EX_RUNTIME" "listing the catalog $CATALOG failed"
    dir=$(mktemp -d "$WORK/records.XXXXXX")
    local -a urls=()
    while IFS='' read -r url; do
        [[ $url == *.json ]] || continue
        n=$((n + 1))
        urls[n]=$url
        zstream-ship get "$url" >"$dir/$n" || fail "$EX_RUNTIME" "reading the record $url failed"
    done <<<"$(jq -r .name <<<"$listing")"
    [ "$n" -gt 0 ] || { echo '[]'; return 0; }
    # One jq for them all (each jq costs ~20 ms to start): each file's number, and whether it holds a v1 record
    # of this dataset named as its URL says.
    checked=$(cd "$dir" && jq -c -n --arg ds "$ds" --argjson urls "$(printf '%s\n' "${urls[@]:1}" | jq -R . | jq -s .)" '
        [inputs as $r | (input_filename | tonumber) as $n
         | {n: $n, r: $r, ok: ($r | type == "object" and .format == "zstream-catalog" and .version == 1
              and .dataset == $ds and ($urls[$n - 1] | endswith("/" + $ds + "@" + ($r.snapshot | tostring) + ".json")))}]' \
        $(seq 1 "$n") 2>/dev/null) || checked=''
    if [ -z "$checked" ] || ! jq -e 'all(.[]; .ok)' >/dev/null <<<"$checked"; then
        local bad
        bad=$(jq -r '[.[] | select(.ok | not) | .n] | .[0] // empty' <<<"${checked:-[]}" 2>/dev/null || true)
        [ -n "$bad" ] || fail "$EX_INTEGRITY" "a record under $CATALOG/catalog/$ds@ is not JSON"
        fail "$EX_INTEGRITY" "${urls[bad]} is not a zstream-catalog v1 record of $ds"
    fi
    jq -c '[.[].r] | sort_by(.time, .snapshot)' <<<"$checked"
}

# catalog_datasets: every dataset CATALOG holds records of.
catalog_datasets() {
    zstream-ship ls --json "$CATALOG/catalog/" | jq -r --arg p "$CATALOG/catalog/" \
        '.name | select(endswith(".json")) | ltrimstr($p) | sub("@[^@]*$"; "")' | sort -u
}

# stored_objects DATASET: the URLs of the objects DEST holds for it (not for a vault, whose list is a day old).
stored_objects() { zstream-ship ls --json "$DEST/data/$1@" | jq -r .name; }

# why_failed FILE: the last line a zstream tool wrote to FILE (its stderr), without its name: the reason to pass on.
why_failed() { tail -1 "$1" | sed 's/^zstream-[a-z]*: //'; }

# read_back URL BYTES CHECKSUM: the object as the target holds it now matches what put said it stored (exit 3 if
# not). A vault cannot look up one archive: there the tree hash Glacier checked before naming it stands in.
read_back() {
    if [[ $1 == glacier://* ]]; then
        return 0
    fi
    zstream-ship stat --expect-size "$2" --expect-checksum "$3" "$1" >/dev/null
}

# The minimum billed storage of a class, in days: deleting sooner is charged as if stored that long.
min_days() {
    case $1 in
        DEEP_ARCHIVE) echo 180 ;;
        GLACIER | GLACIER_IR | GLACIER_VAULT) echo 90 ;;
        STANDARD_IA | ONEZONE_IA) echo 30 ;;
        *) echo 0 ;;
    esac
}
# Storage, USD per GiB-month, S3 us-east-1 list prices (2026); for estimates only.
price_month() {
    case $1 in
        DEEP_ARCHIVE) echo 0.00099 ;;
        GLACIER | GLACIER_VAULT) echo 0.0036 ;;
        GLACIER_IR) echo 0.004 ;;
        STANDARD_IA) echo 0.0125 ;;
        ONEZONE_IA) echo 0.01 ;;
        *) echo 0.023 ;;
    esac
}
# retrieval CLASS TIER: "USD-per-GiB hours" of a restore, S3 us-east-1 list prices (2026); for estimates only.
retrieval() {
    case $1:$2 in
        DEEP_ARCHIVE:Bulk) echo "0.0025 48" ;;
        DEEP_ARCHIVE:*) echo "0.02 12" ;;
        GLACIER:Expedited | GLACIER_VAULT:Expedited) echo "0.03 0.08" ;;
        GLACIER:Bulk | GLACIER_VAULT:Bulk) echo "0 12" ;;
        GLACIER:* | GLACIER_VAULT:*) echo "0.01 5" ;;
        *) echo "0 0" ;;
    esac
}

# snapshot_to_send: the snapshot this run backs up: --snapshot's (which must exist), else
# zstream-<UTC time by the cycle's clock>, to be taken.
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

# Holds: each DEST keeps its own on the base snapshot, so no snapshot manager deletes it before the next run
# and two stores backing up one dataset do not release each other's.
hold_tag() { printf 'zstream-%s' "$(printf '%s' "$DEST" | sha256sum | cut -c1-12)"; }

# lock DATASET: one run per DATASET and store at a time; a second exits 75 at once, saying who holds it.
lock() {
    local dir=${ZSTREAM_LOCK_DIR:-/run/lock/zstream} name
    mkdir -p "$dir" 2>/dev/null || dir=${TMPDIR:-/tmp}
    name=$(printf '%s\n%s' "$1" "$DEST" | sha256sum | cut -c1-16)
    LOCK_FILE="$dir/$name.lock"
    exec 9>>"$LOCK_FILE"
    if ! flock -n 9; then
        fail "$EX_LATER" "$1 -> $DEST is locked by another run ($(cat "$LOCK_FILE" 2>/dev/null || echo "unknown")); try later"
    fi
    printf 'pid %s, %s on %s, since %s\n' "$$" "$PROG" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE"
}

# seal_header: what zstream-seal inspect --json says of a header sealed with SEAL_KEYS (and SEAL_OPTS): the key
# ids and passphrase count, from an empty stream, so no key ever leaves zstream-seal.
SEAL_OPTS=()
seal_header() { zstream-seal "${SEAL_KEYS[@]}" "${SEAL_OPTS[@]}" </dev/null | zstream-seal inspect --json; }

# tool_versions: {"zstream-hash": "0.1.0", ...} of the filters on PATH.
tool_versions() {
    local t out='{}'
    for t in zstream-hash zstream-seal zstream-par zstream-ship; do
        out=$(jq -c --arg t "$t" --arg v "$("$t" --version | awk '{print $2}')" '. + {($t): $v}' <<<"$out")
    done
    echo "$out"
}

# receive_all ARGS...: zfs receive ARGS, then the rest of stdin drained. A receive may stop reading inside the
# stream's END record (zfs-fuse's does, when the record arrives in two writes); the stage before it must still
# see the whole stream through, or it reports a closed pipe and zstream-hash --check never reaches its digest.
receive_all() { local r=0; zfs receive "$@" || r=$?; cat >/dev/null; return "$r"; }

# first_failed NAMES... -- STATUSES...: the first stage of a pipe that failed, as "name status", or nothing.
first_failed() {
    local -a names=() codes=()
    while [ "$1" != -- ]; do names+=("$1"); shift; done
    shift
    codes=("$@")
    local i
    for i in "${!codes[@]}"; do
        if [ "${codes[$i]}" != 0 ]; then
            echo "${names[$i]} ${codes[$i]}"
            return
        fi
    done
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
