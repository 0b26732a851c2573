//! Time: the current instant (fixable with `XTASK_NOW`), RFC 3339 text,
//! ages, and the two kinds of length the command line takes: kubectl
//! durations (`90s`, `5m`, `1h30m`) and look-back periods (`30d`).

use std::time::{Duration, SystemTime};

use anyhow::Context;

/// Now, or the instant in `XTASK_NOW` (RFC 3339), which makes ages and
/// backup names reproducible in tests and documentation.
pub fn now() -> anyhow::Result<SystemTime> {
    match std::env::var("XTASK_NOW") {
        Ok(t) => humantime::parse_rfc3339(&t).with_context(|| {
            format!("XTASK_NOW `{t}` is not an RFC 3339 time such as 2026-11-24T06:00:00Z")
        }),
        Err(_) => Ok(SystemTime::now()),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds between an object's creation and `now`.
pub fn age_seconds(created: Option<&str>, now: SystemTime) -> Option<u64> {
    let created = humantime::parse_rfc3339(created?).ok()?;
    Some(
        now.duration_since(created)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
    )
}

/// An age or a remaining time to the two largest units, as an operator
/// reads it at a glance: `45s`, `12m 5s`, `5h 3m`, `2d 2h`, `30d`.
pub fn format_age(seconds: Option<u64>) -> String {
    let Some(s) = seconds else {
        return "-".to_owned();
    };
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(n, _)| s >= *n) else {
        return "0s".to_owned();
    };
    let (n, unit) = units[first];
    let mut text = format!("{}{unit}", s / n);
    if let Some((m, unit)) = units.get(first + 1)
        && (s % n) / m > 0
    {
        text.push_str(&format!(" {}{unit}", (s % n) / m));
    }
    text
}

/// A kubectl (Go) duration such as `90s`, `5m` or `1h30m`: parsed once,
/// where it is given, and passed to kubectl as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeDuration {
    text: String,
    length: Duration,
}

impl KubeDuration {
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The text kubectl's `--timeout` takes.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for KubeDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for KubeDuration {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let err = || format!("`{raw}` is not a duration; write it like 90s, 5m or 1h30m");
        let mut rest = raw;
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let (unit, millis) = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
                .into_iter()
                .find(|(u, _)| rest.starts_with(u))
                .ok_or_else(err)?;
            rest = &rest[unit.len()..];
            total = n
                .checked_mul(millis)
                .and_then(|m| total.checked_add(m))
                .ok_or_else(err)?;
        }
        Ok(KubeDuration {
            text: raw.to_owned(),
            length: Duration::from_millis(total),
        })
    }
}

impl<'de> serde::Deserialize<'de> for KubeDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for KubeDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The longest look-back period: ten years.
pub const MAX_PERIOD_SECONDS: u64 = 3650 * 86_400;

/// A look-back period such as `30d`, `12h` or `90m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub seconds: u64,
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let err = || format!("`{raw}` is not a period; write it like 30d, 12h or 90m");
        let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (n, unit) = raw.split_at(split);
        let n: u64 = n.parse().map_err(|_| err())?;
        let unit = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            _ => return Err(err()),
        };
        if n == 0 {
            return Err(err());
        }
        // Ten years back at most: further would reach before 1970, and no
        // tenant's data is that old.
        match n.checked_mul(unit) {
            Some(seconds) if seconds <= MAX_PERIOD_SECONDS => Ok(Period { seconds }),
            _ => Err(format!(
                "`{raw}` is longer than a period may be (3650d, ten years); a month is 30d"
            )),
        }
    }
}

/// Where a look back starts: a [`Period`] before now (`7d`, as usage's
/// `--since` takes) or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Ago(Period),
    At(SystemTime),
}

impl Since {
    /// The instant it names, with `now` for a period.
    pub fn start(self, now: SystemTime) -> SystemTime {
        match self {
            Since::Ago(p) => now
                .checked_sub(Duration::from_secs(p.seconds))
                .unwrap_or(SystemTime::UNIX_EPOCH),
            Since::At(t) => t,
        }
    }
}

impl std::str::FromStr for Since {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if raw.contains('T') || raw.contains(':') {
            return humantime::parse_rfc3339_weak(raw)
                .map(Since::At)
                .map_err(|_| {
                    format!(
                        "`{raw}` is not a UTC time in RFC 3339 form; write it like 2026-11-01T00:00:00Z, \
                         or give a period like 7d"
                    )
                });
        }
        raw.parse().map(Since::Ago).map_err(|_| {
            format!(
                "`{raw}` is not a period or a time; write it like 7d, 12h or 90m, or as an RFC 3339 time \
                 such as 2026-11-01T00:00:00Z"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!("30d".parse::<Period>().unwrap().seconds, 30 * 86_400);
        assert_eq!("90m".parse::<Period>().unwrap().seconds, 5_400);
        // Ten years at most: further reached before 1970 and panicked.
        assert_eq!("3650d".parse::<Period>().unwrap().seconds, 3650 * 86_400);
        for long in ["3651d", "20800d", "999999999999h"] {
            let e = long.parse::<Period>().unwrap_err();
            assert!(e.contains("longer than a period may be (3650d"), "{e}");
        }
        for bad in ["", "d", "30", "0d", "1w", "-1d", "1.5d"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn since_takes_a_period_or_a_time() {
        let now = humantime::parse_rfc3339("2026-11-24T06:00:00Z").unwrap();
        let start = |raw: &str| rfc3339(raw.parse::<Since>().unwrap().start(now));
        assert_eq!(start("7d"), "2026-11-17T06:00:00Z");
        assert_eq!(start("90m"), "2026-11-24T04:30:00Z");
        assert_eq!(start("2026-11-01T00:00:00Z"), "2026-11-01T00:00:00Z");
        for bad in [
            "",
            "7",
            "1w",
            "2026-11-01",
            "2026-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert!(bad.parse::<Since>().is_err(), "{bad}");
        }
        assert!(
            "1w".parse::<Since>()
                .unwrap_err()
                .contains("write it like 7d, 12h or 90m, or as an RFC 3339 time")
        );
    }

    #[test]
    fn durations() {
        for ok in ["90s", "5m", "1h30m", "250ms"] {
            assert_eq!(ok.parse::<KubeDuration>().unwrap().as_str(), ok);
        }
        for bad in ["", "5", "5 minutes", "m5", "1.5h", "-1s"] {
            assert!(bad.parse::<KubeDuration>().is_err(), "{bad}");
        }
        let d: KubeDuration = "1h30m".parse().unwrap();
        assert_eq!(d.length(), Duration::from_secs(5_400));
        assert_eq!(
            "250ms".parse::<KubeDuration>().unwrap().length(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(Some(0)), "0s");
        assert_eq!(format_age(Some(59)), "59s");
        assert_eq!(format_age(Some(60)), "1m");
        assert_eq!(format_age(Some(725)), "12m 5s");
        assert_eq!(format_age(Some(3_600)), "1h");
        assert_eq!(format_age(Some(3_600 + 59)), "1h");
        assert_eq!(format_age(Some(7_200 + 180)), "2h 3m");
        assert_eq!(format_age(Some(3 * 86_400 + 5)), "3d");
        // The issue's `2days 2h 34m 27s`.
        assert_eq!(
            format_age(Some(2 * 86_400 + 2 * 3_600 + 34 * 60 + 27)),
            "2d 2h"
        );
        assert_eq!(format_age(Some(400 * 86_400)), "400d");
        assert_eq!(format_age(None), "-");
    }
}
