//! The Prometheus text-format file node_exporter's textfile collector reads (`--metrics FILE`, README
//! "Monitoring"). One file may serve every job: a run replaces only its own families' samples of the
//! (dataset, dest) pairs it measured, and keeps everything else the file holds; families marked "kept" keep their
//! old sample when the run has no new one. The file is replaced whole (a temporary file renamed into place, under
//! a lock), so a scrape sees the old file or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// A run with no new value for it leaves the file's.
    pub kept: bool,
}

const fn f(name: &'static str, help: &'static str, kept: bool) -> Family {
    Family { name, help, kept }
}

/// Every family, with its HELP text.
pub const FAMILIES: &[Family] = &[
    f("zstream_records", "Valid catalog records of the dataset in the store.", false),
    f("zstream_last_backup_timestamp_seconds", "Time of the newest recorded backup (by seq; its record's time), Unix seconds.", false),
    f("zstream_last_full_timestamp_seconds", "Time of the newest recorded full backup, Unix seconds.", false),
    f("zstream_chain_records", "Records in the newest chain (its full and the incrementals since): what a restore of the newest point reads.", false),
    f("zstream_chain_bytes", "Stored bytes of the newest chain.", false),
    f("zstream_stored_bytes", "Stored bytes the catalog records, by storage class.", false),
    f("zstream_broken_chains", "Records whose chain to a full is broken: a restore of them fails.", false),
    f("zstream_orphan_objects", "Stored objects no valid record or intent names (kept, never deleted by a run). Not for vaults.", false),
    f("zstream_invalid_entries", "Catalog entries that fail their signature or checks: forged, damaged, or another key set's.", false),
    f("zstream_problems", "Records and objects zstream-verify found not ok (missing, differing, broken chain, orphan, invalid entry, failed sample).", false),
    f("zstream_verify_healthy", "1 when the last zstream-verify found nothing wrong with the dataset, else 0.", false),
    f("zstream_verify_timestamp_seconds", "When zstream-verify last checked the dataset, Unix seconds.", false),
    f("zstream_last_readback_timestamp_seconds", "When a sample of the dataset last read back whole (zstream-verify --sample), Unix seconds.", true),
    f("zstream_backup_run_start_timestamp_seconds", "When the last zstream-backup run started, Unix seconds.", false),
    f("zstream_backup_run_end_timestamp_seconds", "When the last zstream-backup run ended, Unix seconds.", false),
    f("zstream_backup_run_exit_code", "The last zstream-backup run's exit code (0 ok, 1 runtime, 2 usage, 3 integrity, 75 try later).", false),
    f("zstream_backup_run_success", "1 when the last zstream-backup run exited 0, else 0.", false),
    f("zstream_backup_run_bytes", "Stored bytes the last zstream-backup run committed (0 when it committed nothing).", false),
    f("zstream_backup_last_success_timestamp_seconds", "When the newest zstream-backup run that exited 0 ended, Unix seconds.", true),
];

/// The families zstream-backup writes; zstream-verify writes the rest.
pub fn backup_families() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .map(|f| f.name)
        .filter(|n| n.starts_with("zstream_backup_"))
        .collect()
}

pub fn verify_families() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .map(|f| f.name)
        .filter(|n| !n.starts_with("zstream_backup_"))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn new(name: &str, dataset: &str, dest: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: [
                ("dataset".to_string(), dataset.to_string()),
                ("dest".to_string(), dest.to_string()),
            ]
            .into(),
            value,
        }
    }

    pub fn with(mut self, label: &str, value: &str) -> Sample {
        self.labels.insert(label.into(), value.into());
        self
    }

    fn pair(&self) -> (Option<&String>, Option<&String>) {
        (self.labels.get("dataset"), self.labels.get("dest"))
    }
}

/// Merges `new` into what `old` (a file's text) holds, as the module says, and renders the file.
pub fn merge(old: &str, new: &[Sample], owned: &[&str]) -> String {
    let pairs: Vec<_> = new.iter().map(Sample::pair).collect();
    let kept_family = |n: &str| FAMILIES.iter().any(|f| f.name == n && f.kept);
    let mut all: Vec<Sample> = parse(old)
        .into_iter()
        .filter(|s| {
            let ours = owned.contains(&s.name.as_str()) && pairs.contains(&s.pair());
            let replaced = !kept_family(&s.name)
                || new.iter().any(|n| n.name == s.name && n.labels == s.labels);
            !(ours && replaced)
        })
        .collect();
    all.extend(new.iter().cloned());
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.labels.cmp(&b.labels)));
    let mut out = String::new();
    let mut last = "";
    for s in &all {
        if s.name != last {
            if let Some(f) = FAMILIES.iter().find(|f| f.name == s.name) {
                out += &format!("# HELP {} {}\n", f.name, f.help);
            }
            out += &format!("# TYPE {} gauge\n", s.name);
            last = &s.name;
        }
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        out += &format!("{}{{{}}} {}\n", s.name, labels.join(","), value(s.value));
    }
    out
}

fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The samples of a text-format file (what this module writes; other lines are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut key = String::new();
        let mut val = String::new();
        let mut in_val = false;
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if in_val {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, o)) => val.push(o),
                        None => return None,
                    },
                    '"' => {
                        labels.insert(std::mem::take(&mut key), std::mem::take(&mut val));
                        in_val = false;
                    }
                    _ => val.push(c),
                }
            } else {
                match c {
                    '}' => {
                        end = Some(i);
                        break;
                    }
                    '=' => {
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return None;
                        }
                        in_val = true;
                    }
                    ',' | ' ' => {}
                    _ => key.push(c),
                }
            }
        }
        rest = &r[end? + 1..];
    }
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.into(),
        labels,
        value,
    })
}

/// Writes `new` into FILE as `merge` says, under a lock beside it, through a temporary file renamed into place.
pub fn write(file: &Path, new: &[Sample], owned: &[&str]) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = file
        .file_name()
        .context("--metrics names no file")?
        .to_string_lossy()
        .into_owned();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!(".{base}.lock")))
        .with_context(|| format!("--metrics {}: its lock", file.display()))?;
    // Two jobs writing one file take turns, so neither loses the other's samples.
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("--metrics {}: its lock", file.display()))?;
    let old = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let text = merge(&old, new, owned);
    let tmp = dir.join(format!(".{base}.{}.tmp", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    // Readable by all (0644) whatever the umask: node_exporter reads it as its own user, and the shipped units
    // run the jobs with UMask=0077. It holds counts, times and the store's URL, nothing secret.
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_replaces_its_own_and_keeps_the_rest() {
        let old = merge(
            "",
            &[
                Sample::new("zstream_records", "p/a", "s3://b/x", 3.0),
                Sample::new("zstream_records", "p/b", "s3://b/x", 5.0),
                Sample::new(
                    "zstream_last_readback_timestamp_seconds",
                    "p/a",
                    "s3://b/x",
                    100.0,
                ),
                Sample::new("zstream_backup_run_success", "p/a", "s3://b/x", 1.0),
            ],
            &verify_families(),
        );
        let new = merge(
            &old,
            &[Sample::new("zstream_records", "p/a", "s3://b/x", 4.0)],
            &verify_families(),
        );
        let got = parse(&new);
        let find = |n: &str, ds: &str| {
            got.iter()
                .find(|s| s.name == n && s.labels["dataset"] == ds)
                .map(|s| s.value)
        };
        assert_eq!(find("zstream_records", "p/a"), Some(4.0));
        assert_eq!(
            find("zstream_records", "p/b"),
            Some(5.0),
            "another dataset's sample stays"
        );
        assert_eq!(
            find("zstream_last_readback_timestamp_seconds", "p/a"),
            Some(100.0),
            "kept"
        );
        assert_eq!(
            find("zstream_backup_run_success", "p/a"),
            Some(1.0),
            "the other script's family stays"
        );
        assert!(new.contains("# HELP zstream_records "));
    }

    #[test]
    fn the_file_is_readable_by_all_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("zstream.prom");
        // A file left 0600 by an earlier version, and a umask of 0077 (the shipped units'): 0644 after a run.
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let r = write(
            &file,
            &[Sample::new("zstream_records", "p/a", "s3://b/x", 1.0)],
            &verify_families(),
        );
        rustix::process::umask(old);
        r.unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn label_values_survive_a_round_trip() {
        let s =
            Sample::new("zstream_records", "p/a\"b\\c\nd", "file:///x", 7.0).with("class", "FILE");
        let text = merge("", std::slice::from_ref(&s), &[]);
        assert_eq!(parse(&text), vec![s]);
    }
}
