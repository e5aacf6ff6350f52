//! Knowing when backups stop (README, "Monitoring"): after a month of daily runs on real ZFS with a fake clock, the
//! metrics file zstream-backup and zstream-verify write, read by Prometheus's own parser, agrees with the catalog;
//! `zstream-verify --check` turns WARNING and then CRITICAL at its thresholds when the runs stop, and CRITICAL at a
//! broken chain; a failed run shows in the metrics as one; a reader never sees the file half written.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use zstream_tests::cycle::{after, day, epoch, Site};
use zstream_tests::proc::Run;
use zstream_tests::prom::{parse, value, Sample};
use zstream_tests::zfs::Zfs;

const DAYS: u64 = 33;

fn metrics(prom: &Path) -> Vec<Sample> {
    parse(&std::fs::read_to_string(prom).expect("the metrics file"))
}

fn time_of(r: &serde_json::Value) -> f64 {
    let t = time::OffsetDateTime::parse(
        r["time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    t.unix_timestamp() as f64
}

/// `zstream-verify --check --public-key KEY OPTS DEST [DATASET]` at `now` (a monitoring host holds the catalog's
/// public key, not the keys), with its exit code and its one line.
fn check(site: &Site, now: &str, opts: &[&str], dataset: Option<&str>) -> (i32, String, Run) {
    let key = site.public_key();
    let mut a = vec!["--check", "--public-key", &key];
    a.extend(opts);
    a.push(&site.dest);
    a.extend(dataset);
    let r = site.script("zstream-verify", now, &a);
    let line = String::from_utf8_lossy(r.stdout()).into_owned();
    assert_eq!(line.lines().count(), 1, "one line: {}", r.describe());
    (r.code().unwrap(), line.trim_end().to_string(), r)
}

#[test]
fn a_month_of_runs_then_silence_a_failure_and_a_broken_chain() {
    let z = Zfs::start();
    let p = z.pool(512);
    let prom = p.dir.join("textfile").join("zstream.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let mut site = Site::new(
        &p,
        format!("file://{}", p.dir.join("store").display()),
        Vec::new(),
    );
    site.backup_opts = vec!["--metrics".into(), prom.display().to_string()];
    let ds = site.dataset.clone();
    let prom_s = prom.display().to_string();

    // Day 0 runs from a job file, as systemd's zstream-backup@NAME does; one a group may write is refused, and
    // so is a line that is not an option.
    use std::os::unix::fs::PermissionsExt;
    let job = p.dir.join("job.conf");
    let text = format!(
        "# the job\ndataset {ds}\ndest {}\n\nkeys {}\nmetrics {prom_s}\n",
        site.dest,
        site.both_keys()
    );
    let job_s = job.display().to_string();
    for (body, mode, why) in [
        (text.clone(), 0o664, "writable by group or others"),
        (
            format!("{text}Keys=/etc/a.key\n"),
            0o600,
            "line 7: expected 'option value'",
        ),
        (
            format!("{text}no-such-option 1\n"),
            0o600,
            "unknown option --no-such-option",
        ),
    ] {
        std::fs::write(&job, body).unwrap();
        std::fs::set_permissions(&job, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = site.script("zstream-backup", &day(0), &["--config", &job_s]);
        r.expect_code(2);
        assert!(r.stderr().contains(why), "{}", r.describe());
    }
    std::fs::write(&job, &text).unwrap();
    site.change(0);
    site.script("zstream-backup", &day(0), &["--config", &job_s])
        .expect_code(0);
    for d in 1..DAYS {
        site.change(d);
        site.backup(&day(d), &[]).expect_code(0);
    }
    let last = DAYS - 1;
    let v = site.script(
        "zstream-verify",
        &after(last, 3600),
        &[
            "--metrics",
            &prom_s,
            "--sample",
            "1",
            "--keys",
            &site.both_keys(),
            &site.dest,
        ],
    );
    v.expect_code(0);

    // --- The metrics agree with the catalog.
    let records = site.records();
    let m = metrics(&prom);
    let get = |m: &[Sample], name: &str| {
        value(m, name, &ds, None).unwrap_or_else(|| panic!("no {name} for {ds} in the metrics"))
    };
    let newest = records.last().unwrap();
    let newest_full = records.iter().rev().find(|r| r["kind"] == "full").unwrap();
    let chain: Vec<_> = records
        .iter()
        .filter(|r| r["cycle"] == newest["cycle"])
        .collect();
    let bytes = |rs: &mut dyn Iterator<Item = &serde_json::Value>| {
        rs.map(|r| r["object"]["bytes"].as_f64().unwrap())
            .sum::<f64>()
    };
    assert_eq!(get(&m, "zstream_records"), records.len() as f64);
    assert_eq!(
        get(&m, "zstream_last_backup_timestamp_seconds"),
        time_of(newest)
    );
    assert_eq!(
        get(&m, "zstream_last_backup_timestamp_seconds"),
        epoch(last) as f64
    );
    assert_eq!(
        get(&m, "zstream_last_full_timestamp_seconds"),
        time_of(newest_full)
    );
    assert_eq!(
        get(&m, "zstream_last_full_timestamp_seconds"),
        epoch(30) as f64
    );
    assert_eq!(get(&m, "zstream_chain_records"), chain.len() as f64);
    assert_eq!(
        chain.len() as u64,
        DAYS - 30,
        "the full of day 30 and its incrementals"
    );
    assert_eq!(
        get(&m, "zstream_chain_bytes"),
        bytes(&mut chain.iter().copied())
    );
    assert_eq!(
        value(&m, "zstream_stored_bytes", &ds, Some("FILE")),
        Some(bytes(&mut records.iter()))
    );
    for (name, want) in [
        ("zstream_broken_chains", 0.0),
        ("zstream_orphan_objects", 0.0),
        ("zstream_problems", 0.0),
        ("zstream_verify_healthy", 1.0),
        ("zstream_backup_run_success", 1.0),
        ("zstream_backup_run_exit_code", 0.0),
    ] {
        assert_eq!(get(&m, name), want, "{name}");
    }
    let checked = (epoch(last) + 3600) as f64;
    assert_eq!(get(&m, "zstream_verify_timestamp_seconds"), checked);
    assert_eq!(get(&m, "zstream_last_readback_timestamp_seconds"), checked);
    assert_eq!(
        get(&m, "zstream_backup_run_start_timestamp_seconds"),
        epoch(last) as f64
    );
    assert_eq!(
        get(&m, "zstream_backup_run_bytes"),
        newest["object"]["bytes"].as_f64().unwrap()
    );
    let success = get(&m, "zstream_backup_last_success_timestamp_seconds");
    assert!(
        success >= epoch(last) as f64 && success < epoch(last) as f64 + 300.0,
        "the last success ended on day {last}: {success}"
    );
    for s in &m {
        assert_eq!(s.labels.get("dest"), Some(&site.dest), "{s:?}");
    }

    // --- Silence: no run after the last one. OK until --warn, WARNING until --crit, then CRITICAL.
    let h = 3600;
    for (secs, code, state) in [
        (3 * h, 0, "OK"),
        (26 * h - 60, 0, "OK"),
        (26 * h, 1, "WARNING"),
        (50 * h - 60, 1, "WARNING"),
        (50 * h, 2, "CRITICAL"),
    ] {
        let (got, line, r) = check(&site, &after(last, secs), &[], None);
        assert_eq!(
            (
                got,
                line.starts_with(&format!("ZSTREAM {state} - {ds}: last backup "))
            ),
            (code, true),
            "{}",
            r.describe()
        );
        assert!(
            line.contains(&format!("'{ds} age'={secs}s;93600;180000;0")),
            "perfdata: {line}"
        );
        assert!(
            line.contains(&format!("'{ds} records'={};;;0", records.len())),
            "{line}"
        );
    }
    let (got, line, _) = check(
        &site,
        &after(last, 3 * h),
        &["--warn", "2h", "--crit", "4h"],
        None,
    );
    assert_eq!(got, 1, "{line}");
    let (got, line, _) = check(
        &site,
        &after(last, 3 * h),
        &[],
        Some(&format!("{}/nope", p.name)),
    );
    assert_eq!(
        (got, line.contains("no valid backup recorded")),
        (2, true),
        "{line}"
    );
    let (got, line, _) = check(&site, &after(last, 3 * h), &["--warn", "soon"], None);
    assert_eq!(
        (got, line.starts_with("ZSTREAM UNKNOWN - --warn soon")),
        (3, true),
        "{line}"
    );

    // --- A failed run is a failed attempt in the metrics, not silence, and the last success stays.
    site.kill_stage("zstream-par", false);
    site.backup(&day(DAYS), &[]).expect_code(1);
    site.heal();
    let m = metrics(&prom);
    assert_eq!(get(&m, "zstream_backup_run_success"), 0.0);
    assert_eq!(get(&m, "zstream_backup_run_exit_code"), 1.0);
    assert_eq!(get(&m, "zstream_backup_run_bytes"), 0.0);
    assert_eq!(
        get(&m, "zstream_backup_run_start_timestamp_seconds"),
        epoch(DAYS) as f64
    );
    assert_eq!(
        get(&m, "zstream_backup_last_success_timestamp_seconds"),
        success
    );
    assert_eq!(
        get(&m, "zstream_records"),
        records.len() as f64,
        "the verify's samples stay"
    );

    // --- Never half written: a reader polling the file while verify rewrites it sees every family, each time.
    let families = m
        .iter()
        .map(|s| s.name.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&prom).expect("the file is always there");
                assert_eq!(
                    text.matches("# TYPE ").count(),
                    families,
                    "a partial file:\n{text}"
                );
                assert!(text.ends_with('\n'), "a partial file:\n{text}");
                reads += 1;
            }
            reads
        });
        for i in 0..3 {
            site.script(
                "zstream-verify",
                &after(DAYS, 3600 * (i + 1)),
                &[
                    "--metrics",
                    &prom_s,
                    "--keys",
                    &site.both_keys(),
                    &site.dest,
                ],
            )
            .expect_code(0);
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(reads > 10, "the reader read the file {reads} times");
    let m = metrics(&prom);
    assert_eq!(
        get(&m, "zstream_verify_timestamp_seconds"),
        (epoch(DAYS) + 3 * 3600) as f64
    );
    assert_eq!(
        get(&m, "zstream_last_readback_timestamp_seconds"),
        checked,
        "a verify without --sample keeps the last read-back"
    );

    // --- A broken chain: the record of a middle incremental gone. CRITICAL, and counted.
    let middle = records[records.len() - 2]["snapshot"].as_str().unwrap();
    site.ship(&[
        "rm",
        &format!("{}/catalog/{ds}@{middle}.json", site.catalog),
    ])
    .expect_code(0);
    let (got, line, r) = check(&site, &after(last, 3 * h), &[], Some(&ds));
    assert_eq!(got, 2, "{}", r.describe());
    assert!(line.contains("1 broken chain"), "{line}");
    let v = site.script(
        "zstream-verify",
        &after(last, 4 * h),
        &[
            "--metrics",
            &prom_s,
            "--keys",
            &site.both_keys(),
            &site.dest,
        ],
    );
    v.expect_code(3);
    let m = metrics(&prom);
    assert_eq!(get(&m, "zstream_broken_chains"), 1.0);
    assert_eq!(
        get(&m, "zstream_orphan_objects"),
        1.0,
        "its object has no record now"
    );
    assert_eq!(get(&m, "zstream_verify_healthy"), 0.0);
    assert_eq!(get(&m, "zstream_records"), records.len() as f64 - 1.0);
}

/// The alert rules the README gives (its one yaml block) load in promtool, name only metrics the scripts write,
/// and fire as they say: no backup for 26 hours raises ZstreamNoBackup, 25 hours does not.
#[test]
fn the_readmes_alert_rules_fire_when_backups_stop() {
    let promtool = std::env::var("ZSTREAM_PROMTOOL")
        .unwrap_or_else(|_| "/var/tmp/zstream-promtool/promtool".to_string());
    assert!(
        Path::new(&promtool).exists(),
        "no promtool at {promtool}: scripts/test unpacks it from Debian's prometheus package (ensure_promtool)"
    );
    let root = zstream_tests::cycle::workspace();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let rules = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's yaml block of alert rules");
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("zstream_"))
    {
        assert!(
            zstream_catalog::metrics::FAMILIES
                .iter()
                .any(|f| f.name == name),
            "the README's rules name {name}, which no script writes"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    // The README's schedule, hour by hour from midnight (promtool's clock starts at 0): backups at 02:00 on days 0
    // and 1 and never again, verify at 06:00 every day, and the metric is what verify last read (the newest
    // backup's time). Just before a verify it is 28 hours old on a good night: quiet. The night that is missed
    // (day 2) fires by 08:00 of that day, 30 hours after the last backup.
    let values: Vec<String> = (0..72i64)
        .map(|h| {
            let verified = h - (h - 6).rem_euclid(24);
            if verified < 0 {
                return "_".to_string();
            }
            let newest = [2i64, 26].into_iter().filter(|b| *b <= verified).max();
            newest.map_or("_".into(), |b| (b * 3600).to_string())
        })
        .collect();
    let test = format!(
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'zstream_last_backup_timestamp_seconds{{dataset="tank/home",dest="s3://bucket/offsite"}}'
        values: '{}'
    alert_rule_test:
      - eval_time: 29h
        alertname: ZstreamNoBackup
        exp_alerts: []
      - eval_time: 53h
        alertname: ZstreamNoBackup
        exp_alerts: []
      - eval_time: 55h
        alertname: ZstreamNoBackup
        exp_alerts: []
      - eval_time: 57h
        alertname: ZstreamNoBackup
        exp_alerts:
          - exp_labels: {{dataset: tank/home, dest: "s3://bucket/offsite"}}
            exp_annotations: {{summary: "no backup of tank/home in s3://bucket/offsite for 30 hours"}}
"#,
        values.join(" ")
    );
    std::fs::write(dir.path().join("test.yml"), test).unwrap();
    let d = dir.path().to_str().unwrap();
    let check = zstream_tests::proc::sh(&format!("cd {d} && {promtool} check rules rules.yml"));
    check.expect_code(0);
    let test = zstream_tests::proc::sh(&format!("cd {d} && {promtool} test rules test.yml"));
    test.expect_code(0);
}
