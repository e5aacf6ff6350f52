//! Time as the catalog keeps it: Unix seconds inside, RFC 3339 UTC to the second in records
//! (`2027-01-31T02:00:00Z`), durations as people write them (`30d`, `12h`, `90m`, `45s`), and the cycle's clock:
//! `ZSTREAM_NOW` when set (drills and tests move it), else the system's.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const DAY: i64 = 86_400;
/// How far two clocks may disagree before the catalog calls one wrong (a run's and its store's; a record's time
/// and a verifier's clock).
pub const MAX_SKEW: i64 = 15 * 60;

/// `t` as `2027-01-31T02:00:00Z`.
pub fn format(t: i64) -> String {
    let d = OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// A time as records write it: RFC 3339, UTC, whole seconds, `Z`. Anything else is refused: a record's times are
/// compared and subtracted, and a second spelling of the same instant would be a second way to be wrong.
pub fn parse(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a time as YYYY-MM-DDTHH:MM:SSZ (UTC)");
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(bad());
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|_| bad())
}

/// The cycle's clock, and whether it is the system's (drills set `ZSTREAM_NOW`, and then the store's clock, which
/// is real, is not compared with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub t: i64,
    pub simulated: bool,
}

pub fn now() -> Result<Now, String> {
    match std::env::var("ZSTREAM_NOW") {
        Ok(s) if !s.is_empty() => parse(&s)
            .map(|t| Now { t, simulated: true })
            .map_err(|e| format!("ZSTREAM_NOW: {e}")),
        _ => Ok(Now {
            t: system_now(),
            simulated: false,
        }),
    }
}

pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `30d`, `12h`, `90m`, `45s`, or plain seconds, as seconds. At most a century.
pub fn duration(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a duration (examples: 30d, 12h, 90m, 45s)");
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = match &t[digits..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    if secs > 100 * 365 * 86_400 {
        return Err(format!("'{s}' is more than a century"));
    }
    Ok(secs)
}

/// A duration as people read it: `3d 4h`, `26h 5m`, `12m`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 2 * DAY {
        format!("{}d {}h", s / DAY, s % DAY / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m", s / 60)
    }
}

/// A duration in the shortest exact form `duration` reads back (`30d`, `36h`, `90m`, `45s`).
pub fn compact(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        // 2027-01-01T02:00:00Z, as date -u -d '2027-01-01 02:00:00' +%s says.
        assert_eq!(parse("2027-01-01T02:00:00Z"), Ok(1_798_768_800));
        assert_eq!(format(1_798_768_800), "2027-01-01T02:00:00Z");
        assert_eq!(format(951_782_400), "2000-02-29T00:00:00Z");
        for t in [0, 951_782_400, 1_798_768_800, 4_102_444_799] {
            assert_eq!(parse(&format(t)), Ok(t));
        }
    }

    #[test]
    fn one_spelling_only() {
        for bad in [
            "2027-01-01T02:00:00+00:00",
            "2027-01-01T02:00:00.5Z",
            "2027-01-01 02:00:00Z",
            "2027-02-30T00:00:00Z",
            "27-01-01T02:00:00Z",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30d"), Ok(2_592_000));
        assert_eq!(duration("12h"), Ok(43_200));
        assert_eq!(duration("90m"), Ok(5_400));
        assert_eq!(duration("45s"), Ok(45));
        assert_eq!(duration("45"), Ok(45));
        for bad in [
            "",
            "d",
            "1w",
            "1.5d",
            "-1d",
            "99999999999999999999d",
            "101000d",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        for s in [0, 45, 5_400, 43_200, 129_600, 2_592_000] {
            assert_eq!(duration(&compact(s)), Ok(s));
        }
        assert_eq!(human(97_200), "27h 0m");
        assert_eq!(human(3 * DAY + 4 * 3600), "3d 4h");
        assert_eq!(human(-5), "0m");
    }
}
