//! What `logs --since` accepts, the forms `docker logs --since` accepts: a
//! duration back from now (`10m`, `1h30m`, `1.5h`), an RFC 3339 time
//! (`2026-12-07T09:00:00Z`, `…+01:00`, with or without seconds or a
//! fraction), a date alone (`2026-12-07`), or Unix seconds (`1796604376`,
//! `1796604376.5`). A time or date without a zone is the local time, as
//! Docker's client reads it.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// `when` as whole Unix seconds, or `None` when it is none of the forms.
/// A fraction of a second is dropped: the engine's `since` counts whole
/// seconds, so the lines of that second come too (more, never fewer).
pub fn parse(when: &str, now: SystemTime, local: &TimeZone) -> Option<i64> {
    let when = when.trim();
    if let Some(secs) = unix_seconds(when) {
        return Some(secs);
    }
    if let Ok(back) = humantime::parse_duration(when) {
        let at = now.checked_sub(back).unwrap_or(UNIX_EPOCH);
        return Some(
            at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
    }
    let (civil, offset) = split_zone(when)?;
    let zone = match offset {
        Some(offset) => TimeZone::fixed(offset),
        None => local.clone(),
    };
    let at = zone.to_timestamp(civil_time(civil)?).ok()?;
    Some(at.as_second())
}

/// `1796604376` or `1796604376.123456789`.
fn unix_seconds(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(secs) && digits(frac) && frac.len() <= 9)
        .then(|| secs.parse().ok())
        .flatten()
}

/// The time without its zone, and the zone's offset when it names one
/// (`Z`, `+01:00`, `-0500`, `+01`); no zone means local time.
fn split_zone(text: &str) -> Option<(&str, Option<Offset>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(Offset::UTC)));
    }
    // The date's own dashes end at byte 10 (`2026-12-07`).
    let Some(at) = text
        .get(10..)
        .and_then(|t| t.rfind(['+', '-']))
        .map(|i| i + 10)
    else {
        return Some((text, None));
    };
    let (civil, zone) = text.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !matches!(digits.len(), 2 | 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits.get(2..).map_or(Ok(0), str::parse).ok()?;
    let offset = Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()?;
    Some((civil, Some(offset)))
}

/// `2026-12-07`, then optionally `T` and `09`, `09:30`, `09:30:05` or
/// `09:30:05.25`.
fn civil_time(text: &str) -> Option<DateTime> {
    let (date, time) = match text.get(10..) {
        Some("") => (text, ""),
        Some(rest) if rest.starts_with(['T', 't']) => (&text[..10], &rest[1..]),
        _ => return None,
    };
    let num = |s: &str| -> Option<i32> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut ymd = date.split('-');
    let (y, m, d) = (ymd.next()?, ymd.next()?, ymd.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || ymd.next().is_some() {
        return None;
    }
    let (clock, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = clock.split(':');
    let mut field = |must: bool| match parts.next() {
        Some(p) if p.len() == 2 => num(p),
        None if !must => Some(0),
        _ => None,
    };
    let (hh, mm, ss) = if time.is_empty() {
        (0, 0, 0)
    } else {
        (field(true)?, field(false)?, field(false)?)
    };
    // A fraction belongs to the seconds (`09:30:05.25`).
    let left_over = !time.is_empty() && parts.next().is_some();
    if left_over || (!frac.is_empty() && clock.matches(':').count() != 2) {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else if frac.len() <= 9 {
        num(&format!("{frac:0<9}"))?
    } else {
        return None;
    };
    let small = |n: i32| i8::try_from(n).ok();
    DateTime::new(
        i16::try_from(num(y)?).ok()?,
        small(num(m)?)?,
        small(num(d)?)?,
        small(hh)?,
        small(mm)?,
        small(ss)?,
        nanos,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2026-12-07T12:00:00Z
    const NOON: i64 = 1_796_644_800;

    fn at(when: &str, zone: &TimeZone) -> Option<i64> {
        let now = UNIX_EPOCH + Duration::from_secs(NOON as u64);
        parse(when, now, zone)
    }

    fn berlin() -> TimeZone {
        TimeZone::fixed(Offset::from_hours(1).unwrap())
    }

    #[test]
    fn r31_docker_forms_are_accepted() {
        let utc = TimeZone::UTC;
        // Unix seconds, with or without a fraction (dropped).
        assert_eq!(at("1796604376", &utc), Some(1_796_604_376));
        assert_eq!(at("1796604376.123456789", &utc), Some(1_796_604_376));
        // A date alone: midnight, local.
        assert_eq!(at("2026-12-07", &utc), Some(NOON - 12 * 3600));
        assert_eq!(at("2026-12-07", &berlin()), Some(NOON - 13 * 3600));
        // Durations back from now, Go's fractions too.
        assert_eq!(at("10m", &utc), Some(NOON - 600));
        assert_eq!(at("1h30m", &utc), Some(NOON - 5400));
        assert_eq!(at("1.5h", &utc), Some(NOON - 5400));
        // RFC 3339 and its shorter forms.
        assert_eq!(at("2026-12-07T12:00:00Z", &berlin()), Some(NOON));
        assert_eq!(at("2026-12-07T12:00:00.5Z", &utc), Some(NOON));
        assert_eq!(at("2026-12-07T13:00:00+01:00", &utc), Some(NOON));
        assert_eq!(at("2026-12-07T07:00-05:00", &utc), Some(NOON));
        assert_eq!(at("2026-12-07T13+0100", &utc), Some(NOON));
        assert_eq!(at("2026-12-07T13:00", &berlin()), Some(NOON));
        assert_eq!(at("2026-12-07T13:00:00.000001", &berlin()), Some(NOON));
        assert_eq!(at("2026-12-07Z", &berlin()), Some(NOON - 12 * 3600));
    }

    #[test]
    fn what_is_no_time_is_refused() {
        let utc = TimeZone::UTC;
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-12-07T25:00",
            "2026-12-7",
            "2026-12-07 12:00",
            "2026-12-07T12:00:00+1",
            "12.5.3",
            "1796604376.1234567890",
        ] {
            assert_eq!(at(bad, &utc), None, "{bad}");
        }
    }
}
