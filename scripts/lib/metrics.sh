# Sourced by zstream-backup and zstream-verify: what the catalog says of a dataset's backups (summary), and the
# Prometheus text-format file (node_exporter's textfile collector, *.prom) they write it to with --metrics.
# The metric names and their meaning are in the README ("Monitoring").
# shellcheck shell=bash

# summary_of: reads a dataset's records (a JSON array, oldest first) and prints what monitoring needs of them:
# counts, the newest backup and full, the newest chain (what a restore of the newest point reads), incrementals
# whose base has no record, stored bytes by class.
summary_of() {
    jq -c '(map(.guid)) as $guids | (.[-1]) as $last
        | {records: length,
           last: ($last // null | if . then {snapshot, kind, time} else null end),
           last_full: (map(select(.kind == "full")) | .[-1] // null | if . then {snapshot, time} else null end),
           chain: (if $last then map(select(.cycle == $last.cycle)) | {records: length, bytes: (map(.stored.bytes) | add)}
                   else {records: 0, bytes: 0} end),
           broken: [.[] | select(.kind == "incremental" and (.from_guid as $g | $guids | index($g) | not)) | .snapshot],
           by_class: (group_by(.stored.storage_class) | map({class: .[0].stored.storage_class, bytes: (map(.stored.bytes) | add)}))}'
}

# The families each script writes, with their HELP text. "kept": a run that has no new value for it (no sample
# read back this time, a run that failed) leaves the one the file holds.
METRIC_FAMILIES='{
  "zstream_records": {"help": "Catalog records of the dataset in the store."},
  "zstream_last_backup_timestamp_seconds": {"help": "Time of the newest recorded backup (its record'"'"'s time), Unix seconds."},
  "zstream_last_full_timestamp_seconds": {"help": "Time of the newest recorded full backup, Unix seconds."},
  "zstream_chain_records": {"help": "Records in the newest chain (its full and the incrementals since): what a restore of the newest point reads."},
  "zstream_chain_bytes": {"help": "Stored bytes of the newest chain."},
  "zstream_stored_bytes": {"help": "Stored bytes the catalog records, by storage class."},
  "zstream_broken_chains": {"help": "Incrementals whose base has no record: a restore of them or past them fails."},
  "zstream_orphan_objects": {"help": "Stored objects without a record (a run that died before its commit; the next backup removes them). Not for vaults."},
  "zstream_problems": {"help": "Records and objects zstream-verify found not ok (missing, differing, broken chain, orphan, failed sample)."},
  "zstream_verify_healthy": {"help": "1 when the last zstream-verify found nothing wrong with the dataset, else 0."},
  "zstream_verify_timestamp_seconds": {"help": "When zstream-verify last checked the dataset, Unix seconds."},
  "zstream_last_readback_timestamp_seconds": {"help": "When a sample of the dataset last read back whole (zstream-verify --sample), Unix seconds.", "kept": true},
  "zstream_backup_run_start_timestamp_seconds": {"help": "When the last zstream-backup run started, Unix seconds."},
  "zstream_backup_run_end_timestamp_seconds": {"help": "When the last zstream-backup run ended, Unix seconds."},
  "zstream_backup_run_exit_code": {"help": "The last zstream-backup run'"'"'s exit code (0 ok, 1 runtime, 2 usage, 3 integrity, 75 try later)."},
  "zstream_backup_run_success": {"help": "1 when the last zstream-backup run exited 0, else 0."},
  "zstream_backup_run_bytes": {"help": "Stored bytes the last zstream-backup run committed (0 when it committed nothing)."},
  "zstream_backup_last_success_timestamp_seconds": {"help": "When the newest zstream-backup run that exited 0 ended, Unix seconds.", "kept": true}
}'

# need_metrics_dir FILE: --metrics FILE goes into a directory that exists (checked before the run does anything).
need_metrics_dir() {
    [ -z "$1" ] || [ -d "$(dirname "$1")" ] || usage_error "--metrics $1: no directory $(dirname "$1")"
}

# metric NAME LABELS_JSON VALUE: one sample for --metrics, collected in the run's WORK.
metric() {
    jq -c -n --arg n "$1" --argjson l "$2" --argjson v "$3" '{name: $n, labels: $l, value: $v}' >>"$WORK/metrics.jsonl"
}

# metrics_write FILE OWNED: merges the samples collected since the last write into FILE and renames it into place, so a reader sees the
# old file or the new, never half of one. Of the families this script writes (OWNED, a JSON array of names), the
# samples FILE holds for the (dataset, dest) pairs this run measured are replaced; everything else FILE holds stays
# (other datasets, other stores, the other script's families), so that one file may serve every job.
metrics_write() {
    local file=$1 owned=$2 dir base tmp
    dir=$(dirname "$file")
    base=$(basename "$file")
    tmp="$dir/.$base.$$.tmp"
    [ -d "$dir" ] || { say "--metrics $file: no directory $dir"; return 1; }
    [ -s "$WORK/metrics.jsonl" ] || : >"$WORK/metrics.jsonl"
    # One writer at a time, so that two jobs writing one file do not lose each other's samples.
    exec 8>>"$dir/.$base.lock"
    flock -w 60 8 || { say "--metrics $file: another run holds its lock"; return 1; }
    jq -r -n --rawfile old "$( [ -f "$file" ] && echo "$file" || echo /dev/null)" --slurpfile new "$WORK/metrics.jsonl" \
        --argjson families "$METRIC_FAMILIES" --argjson owned "$owned" '
        # Label values as the text format writes them; old samples keep theirs as written.
        def esc: tostring | gsub("\\\\"; "\\\\") | gsub("\n"; "\\n") | gsub("\""; "\\\"");
        def pair: [.labels.dataset, .labels.dest];
        def key: [.name, (.labels | to_entries | sort_by(.key))];
        ($new | map(.labels |= with_entries(.value |= esc))) as $new
        | ($new | map(pair) | unique) as $pairs
        | ($new | map(key)) as $newkeys
        | [$old | split("\n")[] | select(test("^[a-zA-Z_:]"))
           | capture("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\\{.*\\})?\\s+(?<value>\\S+)")
           | .labels = ([(.labels // "") | scan("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"")
                         | {key: .[0], value: .[1]}] | from_entries)
           | .value = (.value as $v | try ($v | tonumber) catch $v)
           | select((.name as $n | $owned | index($n)) and (pair as $p | $pairs | index([$p]))
                    and ((($families[.name].kept // false) | not) or (key as $k | $newkeys | index([$k])))
                    | not)] as $kept
        | ($kept + $new) | group_by(.name)[]
        | (.[0].name) as $n
        | (if $families[$n] then "# HELP \($n) \($families[$n].help)" else empty end),
          "# TYPE \($n) gauge",
          (sort_by(.labels | to_entries | sort_by(.key) | map("\(.key)=\(.value)"))[]
           | "\($n){\(.labels | to_entries | sort_by(.key) | map("\(.key)=\"\(.value)\"") | join(","))} \(.value)")
    ' >"$tmp" || { rm -f "$tmp"; say "--metrics $file: writing failed"; return 1; }
    mv -f "$tmp" "$file"
    exec 8>&-
    : >"$WORK/metrics.jsonl"
}
