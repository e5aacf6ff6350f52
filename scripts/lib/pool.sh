# Sourced by zstream-backup, zstream-restore and zstream-verify when DEST is ec2-pool:NAME: the same cycle with
# an ec2-pool (a ZFS pool on EC2, natively encrypted) as the store. The pool is its own catalog: its snapshots of
# DATASET, with their guids, are what it holds, and a snapshot is there only once `zfs receive` finished it, so
# the commit point is the received snapshot read back by guid. Streams go in unsealed through `ec2-pool receive`
# (SSH encrypts them on the way, the pool at rest); the seal and parity stages are for stores that cannot check
# what they hold, and ZFS checks every block on the instance. Each run brings the pool up for its work and down
# again however it ends. The sends are the S3 cycle's: blocks as stored (`-L -c`, or `-w` with --raw), from
# the source's snapshot or this store's bookmark of it, and --recursive makes each dataset of a tree its chain.
# shellcheck shell=bash

is_pool() { [[ $DEST == ec2-pool:* ]]; }
pool_name() { printf '%s' "${DEST#ec2-pool:}"; }

# pool_keys: POOL_KEYS, the key files as ec2-pool takes them (the pool's key is derived from key files only).
POOL_KEYS=()
pool_keys() {
    local i
    POOL_KEYS=()
    for ((i = 0; i < ${#SEAL_KEYS[@]}; i += 2)); do
        [ "${SEAL_KEYS[$i]}" = --key-file ] \
            || usage_error "ec2-pool:NAME takes key files (--keys), not passphrases: the pool's key is derived from key files"
        POOL_KEYS+=(--key-file "${SEAL_KEYS[$((i + 1))]}")
    done
    [ ${#POOL_KEYS[@]} -gt 0 ] || usage_error "give --keys: the pool's key is derived from the key files"
}

# pool_lock: one run at a time on this host has the pool up, whatever its dataset or script: each brings the pool
# down when it ends, which would stop the instance under another's receive. A second run waits for the first
# (ZSTREAM_POOL_WAIT seconds, default 6 hours), then exits 75. Two hosts must not use one pool at once.
POOL_LOCK_FD=''
pool_lock() {
    local dir=${ZSTREAM_LOCK_DIR:-/run/lock/zstream} file
    mkdir -p "$dir" 2>/dev/null || dir=${TMPDIR:-/tmp}
    file="$dir/ec2-pool-$(pool_name).lock"
    exec {POOL_LOCK_FD}>>"$file"
    if ! flock -n "$POOL_LOCK_FD"; then
        say "$(pool_name) is in use by another run ($(cat "$file" 2>/dev/null || echo unknown)); waiting for it"
        flock -w "${ZSTREAM_POOL_WAIT:-21600}" "$POOL_LOCK_FD" || fail "$EX_LATER" "$(pool_name) stayed in use by another run; try later"
    fi
    printf 'pid %s, %s on %s, since %s\n' "$$" "$PROG" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$file"
}

# pool_up [KEYS...]: the pool up for this run (with its key when KEYS are given, else imported only); it goes
# down again at exit, however the run ends. A dry run starts nothing: ec2-pool reads a stopped pool by bringing it
# up and down again for that one read.
pool_up() {
    [ -z "$DRY_RUN" ] || return 0
    # A --recursive run brought the pool up for every dataset of its tree, and brings it down at its end.
    [ "${ZSTREAM_POOL_UP:-}" != "$(pool_name)" ] || return 0
    pool_lock
    AT_EXIT+=(pool_down)
    ec2-pool up "$(pool_name)" "$@" || fail "$EX_RUNTIME" "$(pool_name): the pool did not come up"
}
# shellcheck disable=SC2317,SC2034 # called through AT_EXIT, which reads STATUS
pool_down() { ec2-pool down "$(pool_name)" || { say "$(pool_name): bringing the pool down failed"; STATUS=$EX_RUNTIME; }; }

# pool_snapshots DATASET: the pool's snapshots of DATASET, oldest first, as a JSON array of
# {snapshot, guid, referenced, raw} (raw: the dataset was received raw, under the source's own key).
pool_snapshots() { ec2-pool snapshots "$(pool_name)" "$1" | jq -s -c .; }

# pool_hold_up: a --recursive run brings the pool up once for its whole tree: each dataset's run (this script
# again) finds it up and leaves it so; this run brings it down at its end.
pool_hold_up() {
    pool_keys
    pool_up "${POOL_KEYS[@]}"
    export ZSTREAM_POOL_UP
    ZSTREAM_POOL_UP=$(pool_name)
}

# source_base DATASET GUID: the source's snapshot of DATASET with this guid as `zfs send -i` takes it (@NAME),
# or, when that snapshot is gone, a bookmark of it (#NAME); nothing when neither is there. By guid: a name can be
# reused, a guid cannot.
source_base() {
    local name guid _txg snap='' mark=''
    while IFS=$'\t' read -r name guid _txg; do
        [ "$guid" = "$2" ] || continue
        case $name in
            *@*) snap="@${name#*@}" ;;
            *'#'*) [ -n "$mark" ] || mark="#${name#*#}" ;;
        esac
    done < <(source_snapshots "$1")
    printf '%s' "${snap:-$mark}"
}

# snapshot_epoch NAME: the time in a zstream-<UTC time> snapshot name, by the cycle's clock; nothing otherwise.
snapshot_epoch() {
    [[ $1 =~ ^zstream-([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z$ ]] || return 0
    date -u -d "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}:${BASH_REMATCH[3]}:${BASH_REMATCH[4]}" +%s
}

pool_summary() {
    [ -n "$JSON" ] || return 0
    # shellcheck disable=SC2153 # DATASET is set by zstream-backup

    jq -n -c --arg dataset "$DATASET" --arg dest "$DEST" --arg snapshot "${SNAP:-}" --arg why "${WHY:-}" \
        --argjson committed "${COMMITTED:-null}" --argjson pruned "$PRUNED" --arg refused "${PRUNE_REFUSED:-}" \
        --argjson dry "${DRY_RUN:-0}" \
        '{dataset: $dataset, dest: $dest, dry_run: ($dry == 1), snapshot: $snapshot, why: $why, committed: $committed,
          pruned: $pruned, prune_refused: (if $refused == "" then null else $refused end)}'
}

# pool_prune: the pool's snapshots of DATASET older than --keep-cycles x --full-every (by the time in their
# names) go, never the newest, and only when the newest is the source's snapshot by guid and has not shrunk
# (its referenced bytes at least --min-full-ratio of the newest snapshot to go; --allow-shrink). A pool has no
# minimum billed duration.
PRUNED='[]' PRUNE_REFUSED=''
pool_prune() {
    local keep=$((KEEP_CYCLES * FULL_EVERY_S)) old=() s t
    while IFS='' read -r s; do
        t=$(snapshot_epoch "$s")
        [ -n "$t" ] && [ $((NOW - t)) -gt "$keep" ] && old+=("$s")
    done < <(jq -r '.[:-1][].snapshot' <<<"$SNAPS")
    if [ ${#old[@]} = 0 ]; then
        say "$DATASET: prune: nothing in $(pool_name) is older than $KEEP_CYCLES x $FULL_EVERY"
        return 0
    fi
    local newest newest_guid newest_ref old_ref why=()
    newest=$(jq -r '.[-1].snapshot' <<<"$SNAPS")
    newest_guid=$(jq -r '.[-1].guid' <<<"$SNAPS")
    [ -n "$(source_base "$DATASET" "$newest_guid")" ] || why+=("the pool's newest snapshot @$newest (guid $newest_guid) is at the source neither as a snapshot nor as a bookmark: the chain cannot continue")
    newest_ref=$(jq '.[-1].referenced' <<<"$SNAPS")
    old_ref=$(jq --arg s "${old[-1]}" '.[] | select(.snapshot == $s) | .referenced' <<<"$SNAPS")
    if [ -z "$ALLOW_SHRINK" ] && ! jq -e -n --argjson n "$newest_ref" --argjson o "$old_ref" --argjson r "$MIN_RATIO" '$n >= $r * $o' >/dev/null; then
        why+=("the newest snapshot @$newest references $newest_ref bytes, less than $MIN_RATIO x @${old[-1]}'s $old_ref (--allow-shrink to prune anyway)")
    fi
    if [ ${#why[@]} -gt 0 ]; then
        local w
        for w in "${why[@]}"; do say "$DATASET: prune refused: $w"; done
        PRUNE_REFUSED=${why[0]}
        return 1
    fi
    say "$DATASET: prune: destroying ${#old[@]} snapshots in $(pool_name) older than $KEEP_CYCLES x $FULL_EVERY: ${old[*]}"
    run ec2-pool destroy-snapshots "$(pool_name)" "$DATASET" "${old[@]}"
    [ -n "$DRY_RUN" ] || PRUNED=$(printf '%s\n' "${old[@]}" | jq -R . | jq -s -c .)
}

# pool_resume: a receive into the pool that an earlier run lost midway (a cut connection, a killed run) kept what
# it got, where the pool can (`zfs receive -s`); it is finished from its token (`zfs send -t`) rather than sent
# again whole, or dropped when the source can no longer send it. RESUMED is set when one was finished.
RESUMED=''
pool_resume() {
    local token
    token=$(ec2-pool resume-token "$(pool_name)" "$DATASET") || fail "$EX_RUNTIME" "$DATASET: reading $(pool_name)'s resume token failed"
    [ -n "$token" ] || return 0
    if [ -n "$DRY_RUN" ]; then
        say "dry-run: would finish the cut receive into $(pool_name)/$DATASET: zfs send -t TOKEN | zstream-hash --zfs | ec2-pool receive"
        return 0
    fi
    say "$DATASET: a receive into $(pool_name) was cut off; finishing it from its resume token"
    if zfs send -t "$token" | zstream-hash --zfs -q | ec2-pool receive "$(pool_name)" "$DATASET" "${POOL_KEYS[@]}"; then
        RESUMED=1
        say "$DATASET: the cut receive is finished"
    else
        say "$DATASET: the cut receive cannot be finished (is its snapshot gone at the source?); dropping what it kept"
        ec2-pool resume-token --discard "$(pool_name)" "$DATASET" || fail "$EX_RUNTIME" "$DATASET: dropping the cut receive in $(pool_name) failed"
    fi
}

# pool_backup: one run of zstream-backup into the pool (the script has parsed its options, locked, and set
# NOW, SNAPSHOT, FORCE_FULL, PRUNE_ONLY...).
pool_backup() {
    pool_keys
    [ -z "$FORCE_FULL" ] || usage_error "--full: an ec2-pool keeps one chain of snapshots, which every run continues"
    need_tools ec2-pool
    encryption_check
    send_form
    # --raw of a dataset that is not encrypted keeps nothing under a key of its own, and its -w stream carries
    # embedded blocks, which the pool's encryption refuses: sent as any plain one is (as the raw-form check says).
    if [ -n "$RAW" ] && [ -z "$SOURCE_ENCRYPTED" ] && [ "${SEND_OPTS[*]}" = -w ]; then
        SEND_OPTS=(-L -c)
    fi
    warn_children
    pool_up "${POOL_KEYS[@]}"
    pool_resume
    SNAPS=$(pool_snapshots "$DATASET")
    say "$DATASET: $(jq length <<<"$SNAPS") snapshots in $(pool_name)"
    if [ -n "$PRUNE_ONLY" ]; then
        local status=0
        pool_prune || status=$EX_RUNTIME
        pool_summary
        exit "$status"
    fi
    SNAP=$(snapshot_to_send)
    if jq -e --arg s "$SNAP" 'any(.[]; .snapshot == $s)' >/dev/null <<<"$SNAPS"; then
        say "$DATASET@$SNAP is in $(pool_name) already: nothing to do"
        pool_summary
        exit 0
    fi
    local base='' base_guid=0 from=''
    if [ "$(jq length <<<"$SNAPS")" -gt 0 ]; then
        base=$(jq -r '.[-1].snapshot' <<<"$SNAPS")
        base_guid=$(jq -r '.[-1].guid' <<<"$SNAPS")
        # A chain keeps its form: a raw incremental goes only onto a dataset received raw, a decrypted one only
        # onto one that was not (ZFS refuses the rest midway).
        local was_raw want_raw=false
        was_raw=$(jq -r '.[-1].raw // false' <<<"$SNAPS")
        [ -z "$RAW" ] || [ -z "$SOURCE_ENCRYPTED" ] || want_raw=true
        if [ "$was_raw" != "$want_raw" ]; then
            if [ "$was_raw" = true ]; then
                fail "$EX_USAGE" "$(pool_name)/$DATASET was received raw (under $DATASET's own key): its chain goes on raw only; give --raw (nothing was taken)"
            fi
            fail "$EX_USAGE" "$(pool_name)/$DATASET was received decrypted: its chain cannot go on raw; leave out --raw, or destroy $(pool_name)/$DATASET to start a raw chain (nothing was taken)"
        fi
        from=$(source_base "$DATASET" "$base_guid")
        [ -n "$from" ] || fail "$EX_RUNTIME" "$DATASET: the pool's newest snapshot @$base (guid $base_guid) is at the source neither as a snapshot nor as a bookmark: the pool's chain cannot continue from here; receive into another dataset name, or destroy $(pool_name)/$DATASET"
        WHY="incremental from $base, the newest snapshot $(pool_name) holds"
        [[ $from != '#'* ]] || WHY+=", sent from the bookmark $DATASET$from (the snapshot is gone at the source)"
    else
        WHY="full: $(pool_name) holds no snapshot of $DATASET"
    fi
    if [ -z "$SNAPSHOT" ]; then
        say "$DATASET: taking $DATASET@$SNAP"
        run zfs snapshot "$DATASET@$SNAP"
    fi
    say "$DATASET@$SNAP: $WHY"
    local send=(zfs send "${SEND_OPTS[@]}")
    [ -z "$base" ] || send+=(-i "$from")
    send+=("$DATASET@$SNAP")
    local recv=(ec2-pool receive "$(pool_name)" "$DATASET" "${POOL_KEYS[@]}")
    # -F rolls the pool's copy back to its newest snapshot, the base, undoing what mounting it changed since.
    [ -z "$base" ] || recv+=(--force)
    if [ -n "$DRY_RUN" ]; then
        say "dry-run: would run: $(quoted "${send[@]}") | zstream-hash --zfs --json FILE -q | $(quoted "${recv[@]}")"
        say "dry-run: would read $(pool_name)/$DATASET@$SNAP back by guid"
        pool_prune || true
        pool_summary
        exit 0
    fi
    local stages failed
    "${send[@]}" | zstream-hash --zfs --json "$WORK/hash.json" -q | "${recv[@]}" \
        && stages=("${PIPESTATUS[@]}") || stages=("${PIPESTATUS[@]}")
    failed=$(first_failed "zfs send" zstream-hash "ec2-pool receive" -- "${stages[@]}")
    # A receive that did not finish leaves no snapshot: nothing to remove.
    [ -z "$failed" ] || fail "$(code_of "${failed##* }")" "$DATASET@$SNAP: FAILED: ${failed% *} exited ${failed##* } (statuses: ${stages[*]}); nothing committed"
    local hash guid
    hash=$(cat "$WORK/hash.json")
    guid=$(zfs get -Hp -o value guid "$DATASET@$SNAP")
    [ "$(jq -r .toguid <<<"$hash")" = "$guid" ] || fail "$EX_INTEGRITY" "the stream's toguid $(jq -r .toguid <<<"$hash") is not $DATASET@$SNAP's guid $guid"
    [ "$(jq -r .fromguid <<<"$hash")" = "$base_guid" ] || fail "$EX_INTEGRITY" "the stream's fromguid is $(jq -r .fromguid <<<"$hash"), expected $base_guid"
    # The commit check: the pool holds the snapshot, by guid.
    SNAPS=$(pool_snapshots "$DATASET")
    jq -e --arg s "$SNAP" --arg g "$guid" 'any(.[]; .snapshot == $s and .guid == $g)' >/dev/null <<<"$SNAPS" \
        || fail "$EX_INTEGRITY" "$DATASET@$SNAP: read back from $(pool_name), the snapshot is missing or has another guid"
    COMMITTED=$(jq -c -n --arg s "$SNAP" --arg g "$guid" --argjson h "$hash" --arg b "${base:-}" \
        '{snapshot: $s, guid: $g, kind: (if $b == "" then "full" else "incremental" end), raw: {bytes: $h.bytes, sha256: $h.sha256}, stored: {bytes: $h.bytes}}')
    say "$DATASET@$SNAP: committed: $(jq -r .kind <<<"$COMMITTED"), $(jq -r .bytes <<<"$hash") bytes received into $(pool_name)"
    # After a finished cut receive, the hold is on an older snapshot than the base: every other one is released.
    if [ -n "$NO_HOLD" ]; then
        release_holds
    elif [ -n "$RESUMED" ]; then
        move_hold "" "$SNAP" "$(jq -r '.[].snapshot' <<<"$SNAPS")"
    else
        move_hold "$base" "$SNAP" "$(jq -r '.[].snapshot' <<<"$SNAPS")"
    fi
    mark_base "$SNAP"
    local status=0
    pool_prune || status=$EX_RUNTIME
    pool_summary
    exit "$status"
}

# pool_restore: zstream-restore from the pool: one stream, DATASET@SNAP whole or from the newest snapshot
# TARGET already holds (by guid), checked on the way by zstream-hash --zfs and read back by guid.
pool_restore() {
    pool_keys
    need_tools zfs jq zstream-hash ec2-pool
    [ -z "$RECURSIVE" ] || pool_restore_tree
    pool_up "${POOL_KEYS[@]}"
    SNAPS=$(pool_snapshots "$DATASET")
    [ "$(jq length <<<"$SNAPS")" -gt 0 ] || fail "$EX_RUNTIME" "$(pool_name) holds no snapshot of $DATASET"
    local end
    end=$(jq -c --arg w "$WANT" 'if $w == "" then .[-1] else (.[] | select(.snapshot == $w)) end' <<<"$SNAPS")
    [ -n "$end" ] || fail "$EX_RUNTIME" "$(pool_name) holds no $DATASET@$WANT"
    local snap guid from=''
    snap=$(jq -r .snapshot <<<"$end"); guid=$(jq -r .guid <<<"$end")
    if zfs list -H -o name "$TARGET" >/dev/null 2>&1; then
        local have
        have=$(zfs list -H -t snapshot -o name -s createtxg -d 1 "$TARGET" | while IFS='' read -r s; do
            printf '%s\t%s\n' "${s#*@}" "$(zfs get -Hp -o value guid "$s")"; done)
        if grep -q $'\t'"$guid"'$' <<<"$have"; then
            say "$TARGET holds $DATASET@$snap already (guid $guid)"
            exit 0
        fi
        from=$(jq -r -n --arg have "$have" --argjson snaps "$SNAPS" --arg last "$snap" '
            ($snaps | (map(.snapshot) | index($last)) as $i | .[0:$i] | map(.guid)) as $before
            | [$have | split("\n")[] | select(. != "") | split("\t") | select(.[1] as $g | $before | index($g))] | last | .[0] // empty')
        [ -n "$from" ] || fail "$EX_USAGE" "$TARGET exists and holds none of $(pool_name)'s snapshots of $DATASET before @$snap: restore into a new dataset"
    fi
    local send=(ec2-pool send "$(pool_name)" "$DATASET@$snap" "${POOL_KEYS[@]}")
    [ -z "$from" ] || send+=(--from "$from")
    # As from S3: an incremental into a TARGET changed since its newest snapshot is refused unless --force
    # discards the changes (-F).
    local recv=(receive_all)
    [ -z "$from" ] || [ -z "$FORCE" ] || recv+=(-F)
    recv+=("$TARGET")
    say "plan: $(quoted "${send[@]}") | zstream-hash --zfs -q | zfs receive $(quoted "${recv[@]:1}") (${from:+incremental from @$from, }the pool is on EC2: no retrieval wait or charge beyond the instance's hour)"
    if [ -n "$DRY_RUN" ]; then
        exit 0
    fi
    local stages failed
    "${send[@]}" 2>"$WORK/stage.0.err" | zstream-hash --zfs -q 2>"$WORK/stage.1.err" | "${recv[@]}" 2>"$WORK/stage.2.err" \
        && stages=("${PIPESTATUS[@]}") || stages=("${PIPESTATUS[@]}")
    failed=$(first_failed "ec2-pool send" zstream-hash "zfs receive" -- "${stages[@]}")
    [ -z "$from" ] || fail_if_target_changed "$failed" ""
    [ -z "$failed" ] || fail "$(code_of "${failed##* }")" "$TARGET@$snap: FAILED at ${failed% *} (exit ${failed##* }; statuses: ${stages[*]})"
    [ "$(zfs get -Hp -o value guid "$TARGET@$snap")" = "$guid" ] || fail "$EX_INTEGRITY" "$TARGET@$snap was received but its guid is not $guid"
    say "$TARGET@$snap: restored from $(pool_name) (guid $guid)"
    say_locked
    [ -z "$JSON" ] || jq -n -c --arg t "$TARGET" --arg s "$snap" --arg g "$guid" --arg f "$from" \
        '{target: $t, snapshot: $s, guid: $g, from: (if $f == "" then null else $f end)}'
    exit 0
}

# pool_restore_tree: zstream-restore --recursive from the pool: DATASET and each dataset below it the pool holds,
# at one snapshot name (a recursive backup's snapshots share it), restored by this script one by one, parents
# first, with the pool up once for them all.
pool_restore_tree() {
    pool_hold_up
    local tree ds snaps snap first tgt code worst=0
    mapfile -t tree < <(ec2-pool datasets "$(pool_name)" "$DATASET")
    [ ${#tree[@]} -gt 0 ] || fail "$EX_RUNTIME" "$(pool_name) holds no $DATASET"
    snap=${WANT:-$(pool_snapshots "$DATASET" | jq -r '.[-1].snapshot // empty')}
    [ -n "$snap" ] || fail "$EX_RUNTIME" "$(pool_name) holds no snapshot of $DATASET"
    for ds in "${tree[@]}"; do
        [[ $ds == "$DATASET" || $ds == "$DATASET"/* ]] || fail "$EX_RUNTIME" "$(pool_name): '$ds' is not $DATASET or below it"
        tgt=$TARGET${ds#"$DATASET"}
        snaps=$(pool_snapshots "$ds")
        if jq -e --arg s "$snap" 'any(.[]; .snapshot == $s)' >/dev/null <<<"$snaps"; then
            say "$ds@$snap -> $tgt (--recursive)"
            code=0
            "$0" "${CHILD_OPTS[@]}" "$DEST" "$ds@$snap" "$tgt" || code=$?
            [ "$code" = 0 ] || say "$ds@$snap: FAILED (exit $code); the other datasets go on"
            worst=$(worst_of "$worst" "$code")
            continue
        fi
        first=$(jq -r '.[0].snapshot // empty' <<<"$snaps")
        if [ -z "$first" ] || [[ $first > $snap ]]; then
            say "$ds: its snapshots in $(pool_name) begin after @$snap${first:+ (@$first)}: it was made later; left out"
        else
            say "$ds: ERROR: no snapshot @$snap in $(pool_name), though it has earlier ones (its run failed that night?): not restored"
            worst=$(worst_of "$worst" "$EX_INTEGRITY")
        fi
    done
    exit "$worst"
}

# pool_verify: the pool's health and its last scrub, and for each DATASET its snapshots against the source: the
# newest the pool holds is at the source by guid, as a snapshot or a bookmark (the base of the next run). ZFS checks every
# block it reads; a full read-back is the scrub ec2-pool runs on its schedule (or `ec2-pool scrub`).
pool_verify() {
    need_tools zfs jq ec2-pool
    [ -n "$DATASETS" ] || usage_error "with ec2-pool:NAME, name the DATASET to verify"
    [ "$SAMPLE" = 0 ] || say "--sample: ZFS checks every block against its checksum as it reads; a full read-back of the pool is \`ec2-pool scrub $(pool_name)\`"
    pool_up
    local status health problems=0 d snaps newest guid scrub_at scrub_errors
    status=$(ec2-pool status "$(pool_name)" --json)
    health=$(jq -r '.pool.health // "unknown"' <<<"$status")
    [ "$health" = ONLINE ] || { problems=$((problems + 1)); say "$(pool_name): the pool is $health"; }
    # ZFS reads every block back at each scrub (ec2-pool scrubs every --scrub-every at the end of a window).
    scrub_at=$(jq -r '.scrub.at // ""' <<<"$status")
    scrub_errors=$(jq -r '.scrub.errors // 0' <<<"$status")
    if [ -z "$scrub_at" ]; then
        say "$(pool_name): not scrubbed yet (ec2-pool scrubs at the end of a window every --scrub-every, 30 days by default; \`ec2-pool scrub $(pool_name)\` now)"
    elif [ "$scrub_errors" = 0 ]; then
        say "$(pool_name): last scrub $scrub_at: no errors"
    else
        problems=$((problems + 1))
        say "$(pool_name): last scrub $scrub_at found $scrub_errors errors (\`zpool status -v $(pool_name)\` on the instance names them)"
    fi
    # The table is for people: on stdout, or on stderr when stdout is for --json.
    local out=1
    [ -z "$JSON" ] || out=2
    printf '%-28s %-10s %-32s %s\n' DATASET SNAPSHOTS NEWEST STATE >&"$out"
    for d in $DATASETS; do
        snaps=$(pool_snapshots "$d")
        newest=$(jq -r '.[-1].snapshot // ""' <<<"$snaps")
        guid=$(jq -r '.[-1].guid // ""' <<<"$snaps")
        local state=ok
        if [ -z "$newest" ]; then
            state="no snapshot in the pool"
        elif [ -z "$(source_base "$d" "$guid")" ]; then
            state="the source has no @$newest of guid $guid, nor a bookmark of it: the next backup cannot continue the chain"
        fi
        [ "$state" = ok ] || problems=$((problems + 1))
        printf '%-28s %-10s %-32s %s\n' "$d" "$(jq length <<<"$snaps")" "${newest:--}" "$state" >&"$out"
    done
    [ -z "$JSON" ] || jq -n -c --arg p "$(pool_name)" --arg h "$health" --argjson n "$problems" \
        --arg sa "$scrub_at" --argjson se "$scrub_errors" \
        '{pool: $p, health: $h, scrub: (if $sa == "" then null else {at: $sa, errors: $se} end), problems: $n, healthy: ($n == 0)}'
    [ "$problems" = 0 ] || exit "$EX_INTEGRITY"
    exit 0
}
