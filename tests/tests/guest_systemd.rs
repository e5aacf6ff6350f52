//! The package under a real systemd (#26), on the OpenZFS guest booted with systemd as PID 1: the .deb built from
//! this tree (scripts/package, from the binaries the tests run) installed with apt, a nightly job on a real pool,
//! and its units doing what README's "Nightly backups with systemd" says. Each step is checked from systemd's own
//! account (`systemctl show`, the journal) and from ZFS and the store:
//! - a file:// DEST outside ReadWritePaths fails the run (ProtectSystem=strict) with the file system's reason and
//!   the path in the journal; with `ReadWritePaths=` added by a drop-in, as the README tells, the run succeeds;
//! - `journalctl -u zstream-backup@NAME` holds the run's own lines; the metrics file is written;
//! - the timer, enabled, fires at 02:00 (the guest's clock moved to ten seconds before) and its run succeeds;
//! - a run that finds the job's lock held exits 75, which systemd counts as no failure and restarts, and the
//!   restart runs the job once the lock is free;
//! - `apt-get remove` leaves the timer neither enabled nor active, and /etc/zstream as it was.
//!
//! Two of the shipped values would make the test wait: the timer's 30 minutes of random delay and the 15 minutes
//! before a restart. The test reads both as shipped, then sets them to 0 and 3 s with drop-ins.

use std::path::{Path, PathBuf};
use std::process::Command;
use zstream_tests::bins::bin;
use zstream_tests::cycle::workspace;
use zstream_tests::guest::{Guest, LIMIT};
use zstream_tests::proc::output_within;

/// The .deb of this tree: scripts/package over the binaries the tests run, as they are (`--prebuilt`): a cargo
/// build here would relink them under the tests running beside this one (`cargo build --bins` and `cargo test`
/// resolve features apart, so each relinks what the other built; a test in another lane once found zstream-ship
/// missing for that moment).
fn package(dir: &Path) -> PathBuf {
    let profile_dir = bin("zstream-hash")
        .parent()
        .expect("target/<profile>")
        .to_path_buf();
    let profile = if profile_dir.ends_with("release") {
        "release"
    } else {
        "dev"
    };
    let mut c = Command::new(workspace().join("scripts/package"));
    c.args(["--profile", profile, "--out"])
        .arg(dir)
        .arg("--prebuilt")
        .arg(&profile_dir)
        .env(
            "CARGO_TARGET_DIR",
            profile_dir.parent().expect("the target directory"),
        );
    let out = output_within(c, b"", LIMIT, "scripts/package");
    assert!(
        out.status.success(),
        "scripts/package failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(dir)
        .expect("the package's directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("scripts/package made no .deb")
}

/// Shell functions every step's script starts with.
const PRELUDE: &str = r#"
U=zstream-backup@nightly.service T=zstream-backup@nightly.timer
# finished: the unit's run is over (neither starting, running nor waiting to restart), within 10 minutes.
finished() {
    for _ in $(seq 1200); do
        case $(systemctl is-active "$U" || true) in activating | active | deactivating) sleep 0.5 ;; *) return 0 ;; esac
    done
    echo "$U still running after 10 minutes" >&2; return 1
}
# prop NAME: one property of the service.
prop() { systemctl show -p "$1" --value "$U"; }
"#;

#[test]
fn the_package_s_timer_and_service_run_the_job_under_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let deb = std::fs::read(package(dir.path())).unwrap();
    let g = Guest::start(&["1G"], true);
    let sh = |script: &str| g.ok(&format!("{PRELUDE}\n{script}"));

    // The guest has no network: what the package depends on is there (zfsutils-linux, jq); the recommended
    // bash-completion is not fetched.
    g.sh_with("cat >/root/zstream.deb", &deb, &[])
        .expect_code(0);
    sh("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ./zstream.deb \
        >/dev/null 2>&1; dpkg -s zstream >/dev/null");
    assert_eq!(
        sh("command -v zstream-backup").trim(),
        "/usr/bin/zstream-backup"
    );

    // A pool, two keys, and the job as the README has it (the example file's lines), to a directory.
    sh("zpool create tank /dev/vdb && zfs create tank/home
        head -c 3M /dev/urandom >/tank/home/a.bin && seq 1 100000 >/tank/home/n.txt
        zstream-seal keygen -o /etc/zstream/a.key 2>/dev/null && zstream-seal keygen -o /etc/zstream/b.key 2>/dev/null
        mkdir -p /srv/offsite /var/lib/prometheus/node-exporter
        install -m 600 /dev/null /etc/zstream/nightly.conf
        printf '%s\\n' 'dataset tank/home' 'dest file:///srv/offsite' 'keys /etc/zstream/a.key,/etc/zstream/b.key' \
            'metrics /var/lib/prometheus/node-exporter/zstream.prom' >/etc/zstream/nightly.conf");

    // ProtectSystem=strict: /srv is read-only to the service until ReadWritePaths names it.
    let out = sh(r#"t0=$(date '+%F %T'); systemctl start "$U"; finished
        echo "result=$(prop Result) status=$(prop ExecMainStatus)"
        journalctl -u "$U" --since "$t0" --no-pager -o cat"#);
    assert!(out.starts_with("result=exit-code status=1\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("file:///srv/offsite: not writable here")
                && l.contains("ReadWritePaths=/srv/offsite")),
        "the journal does not say that the DEST was read-only: {out}"
    );
    assert!(
        sh("find /srv/offsite -type f | wc -l").trim() == "0",
        "a failed run stored something"
    );

    let out = sh(r#"mkdir -p /etc/systemd/system/$U.d
        printf '[Service]\nReadWritePaths=/srv/offsite\n' >/etc/systemd/system/$U.d/offsite.conf
        systemctl daemon-reload && systemctl reset-failed "$U"
        t0=$(date '+%F %T'); systemctl start "$U"; finished
        echo "result=$(prop Result) status=$(prop ExecMainStatus)"
        journalctl -u "$U" --since "$t0" --no-pager -o cat"#);
    assert!(out.starts_with("result=success status=0\n"), "{out}");
    let own = out
        .lines()
        .filter(|l| l.starts_with("zstream-backup: tank/home"))
        .count();
    assert!(own >= 2, "the journal lacks the run's own lines: {out}");
    let metrics = sh("cat /var/lib/prometheus/node-exporter/zstream.prom");
    assert!(
        metrics.lines().any(|l| l
            == "zstream_backup_run_success{dataset=\"tank/home\",dest=\"file:///srv/offsite\"} 1"),
        "{metrics}"
    );

    // The timer as shipped, then without its random delay; the clock moved to ten seconds before it fires.
    let shipped = sh(r#"systemctl enable --now "$T" 2>/dev/null
        systemctl show -p TimersCalendar,RandomizedDelayUSec,Persistent "$T"
        [ -L /etc/systemd/system/timers.target.wants/$T ] && echo enabled"#);
    for want in [
        "OnCalendar=*-*-* 02:00:00",
        "RandomizedDelayUSec=30min",
        "Persistent=yes",
        "enabled",
    ] {
        assert!(shipped.contains(want), "the timer lacks {want}: {shipped}");
    }
    let out = sh(r#"mkdir -p /etc/systemd/system/$T.d
        printf '[Timer]\nRandomizedDelaySec=0\n' >/etc/systemd/system/$T.d/now.conf
        systemctl daemon-reload && systemctl restart "$T"
        next=$(date -d "$(systemctl show -p NextElapseUSecRealtime --value "$T")" +%s)
        before=$(zfs list -H -t snapshot tank/home | wc -l) run=$(prop InvocationID)
        date -s @$((next - 10)) >/dev/null
        # A new invocation of the service is the timer's (LastTriggerUSec is set when a persistent timer starts).
        for _ in $(seq 240); do [ "$(prop InvocationID)" = "$run" ] || break; sleep 0.5; done
        finished
        echo "started=$(date -u -d "$(prop ExecMainStartTimestamp)" +%H:%M) \
            result=$(prop Result) status=$(prop ExecMainStatus)"
        echo "new=$(( $(zfs list -H -t snapshot tank/home | wc -l) - before ))"
        echo "night=$(date -u -d @"$next" +%Y%m%d)"
        zfs list -H -o name -t snapshot tank/home"#);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words[..4],
        ["started=02:00", "result=success", "status=0", "new=1"],
        "the timer did not run the job at 02:00: {out}"
    );
    // The run's snapshot is named for its time: that night, a little after 02:00.
    let night = words[4].strip_prefix("night=").expect("the night's date");
    assert!(
        words[5..]
            .iter()
            .any(|s| s.contains(&format!("@zstream-{night}T02"))),
        "no snapshot of the night of {night}: {out}"
    );

    // Another run holds the job's lock: the service exits 75, systemd waits RestartSec (15 minutes as
    // shipped) and runs it again; the run after the lock is free does the job.
    let restart =
        sh("systemctl show -p RestartUSec,SuccessExitStatus,RestartForceExitStatus \"$U\"");
    for want in [
        "RestartUSec=15min",
        "SuccessExitStatus=75",
        "RestartForceExitStatus=75",
    ] {
        assert!(
            restart.lines().any(|l| l == want),
            "the service lacks {want}: {restart}"
        );
    }
    let out = sh(
        r#"printf '[Service]\nRestartSec=3s\n' >/etc/systemd/system/$U.d/soon.conf
        systemctl daemon-reload
        locks=(/run/lock/zstream/*.lock)
        [ -e "${locks[0]}" ] || { echo "no lock file in /run/lock/zstream" >&2; exit 1; }
        for l in "${locks[@]}"; do systemd-run --quiet --unit "zstream-holder-${l##*/}" flock "$l" sleep 900; done
        t0=$(date '+%F %T'); systemctl start "$U"
        seen=
        for _ in $(seq 600); do
            if [ "$(prop SubState)" = auto-restart ] && [ "$(prop ExecMainStatus)" = 75 ]; then seen=1; break; fi
            sleep 0.2
        done
        [ -n "$seen" ] || { echo "never saw the service exit 75 and wait to restart" >&2; exit 1; }
        for _ in $(seq 300); do [ "$(prop NRestarts)" -ge 1 ] && break; sleep 0.5; done
        echo "failed-while-locked=$(systemctl is-failed "$U" || true)"
        before=$(zfs list -H -t snapshot tank/home | wc -l)
        systemctl stop 'zstream-holder-*'
        finished
        echo "restarts=$(prop NRestarts) result=$(prop Result) status=$(prop ExecMainStatus) \
            new=$(( $(zfs list -H -t snapshot tank/home | wc -l) - before ))"
        journalctl -u "$U" --since "$t0" --no-pager -o cat"#,
    );
    let mut lines = out.lines();
    let state = lines.next().unwrap_or("");
    // Between attempts it waits to restart (activating), or an attempt is running (active): never failed.
    assert!(
        [
            "failed-while-locked=activating",
            "failed-while-locked=active"
        ]
        .contains(&state),
        "{out}"
    );
    let summary: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        summary[1..],
        ["result=success", "status=0", "new=1"],
        "{out}"
    );
    let restarts: u32 = summary[0]
        .strip_prefix("restarts=")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(restarts >= 1, "{out}");
    assert!(
        out.contains("is locked by another run") && out.contains("try later"),
        "the journal does not say why the run stopped: {out}"
    );

    // What the timer and the restart stored reads back healthy.
    sh("zstream-verify --keys /etc/zstream/a.key,/etc/zstream/b.key file:///srv/offsite tank/home >/dev/null");

    // Removal: the timer is stopped and disabled; the administrator's files stay.
    let out = sh(
        r#"DEBIAN_FRONTEND=noninteractive apt-get remove -y zstream >/dev/null 2>&1
        echo "enabled=$(systemctl is-enabled "$T" 2>/dev/null || echo no) active=$(systemctl is-active "$T" || true)"
        ls /etc/systemd/system/timers.target.wants/ | grep -c zstream || true
        systemctl list-timers --all --no-pager | grep -c zstream || true
        ls /etc/zstream"#,
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        [
            "enabled=no",
            "active=inactive",
            "0",
            "0",
            "a.key",
            "b.key",
            "nightly.conf"
        ],
        "{out}"
    );
}
