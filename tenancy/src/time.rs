//! Time as the quota and pacing code sees it: an injected [`Clock`] and UTC calendar arithmetic.
//!
//! Windows are calendar windows in UTC (a `day` starts at 00:00:00Z, a `month` on the 1st), so a
//! tenant's counters reset at the same instant on every node and in every backend. Unix time has
//! no leap seconds, so minutes, hours and days are plain multiples of 60 s; months need the civil
//! calendar, computed here with the days-from-civil algorithm (proleptic Gregorian) rather than a
//! date crate: four small functions, tested against known dates.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from. Tests pass a [`ManualClock`] and move it explicitly; nothing in this
/// crate sleeps to wait for time to pass.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` in 1..=12).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(y, m, d)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both fit: d is 1..=31 and m 1..=12 by construction.
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds of the first instant of the month containing `secs`.
pub fn month_start(secs: i64) -> i64 {
    let (y, m, _) = civil_from_days(secs.div_euclid(86_400));
    days_from_civil(y, m, 1) * 86_400
}

/// Unix seconds of the first instant of the month after the one containing `secs`.
pub fn next_month_start(secs: i64) -> i64 {
    let (y, m, _) = civil_from_days(secs.div_euclid(86_400));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * 86_400
}

/// `2026-12-07T00:00:00Z` for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// A calendar month, as `/v1/billing?month=YYYY-MM` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i64,
    pub month: u32,
}

impl Month {
    /// Parses `YYYY-MM` (four-digit year 1970..=9999, two-digit month). Anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 7 || bytes.get(4) != Some(&b'-') {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(r)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let year = digits(0..4)?;
        let month = digits(5..7)?;
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        Some(Self {
            year: i64::from(year),
            month,
        })
    }

    /// The month containing Unix second `secs`.
    pub fn containing(secs: i64) -> Self {
        let (year, month, _) = civil_from_days(secs.div_euclid(86_400));
        Self { year, month }
    }

    /// Unix seconds of its first instant.
    pub fn start(self) -> i64 {
        days_from_civil(self.year, self.month, 1) * 86_400
    }

    /// Unix seconds of the first instant of the next month.
    pub fn end(self) -> i64 {
        next_month_start(self.start())
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for z in (-800_000..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
    }

    #[test]
    fn months_and_formatting() {
        // 2026-12-06T15:30:00Z
        let t = days_from_civil(2026, 12, 6) * 86_400 + 15 * 3600 + 30 * 60;
        assert_eq!(rfc3339(t), "2026-12-06T15:30:00Z");
        assert_eq!(rfc3339(month_start(t)), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(next_month_start(t)), "2027-01-01T00:00:00Z");
        let feb = days_from_civil(2028, 2, 29) * 86_400;
        assert_eq!(rfc3339(next_month_start(feb)), "2028-03-01T00:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn month_parsing() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(rfc3339(m.start()), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(m.end()), "2027-01-01T00:00:00Z");
        assert_eq!(Month::containing(m.start() + 5), m);
        for bad in [
            "",
            "2026",
            "2026-13",
            "2026-00",
            "2026-1",
            "20261-2",
            "2026/12",
            "+026-12",
            "2026-1x",
            "1969-12",
            "２０２６-12",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let c = ManualClock::new(1000);
        let d = c.clone();
        c.advance_ms(500);
        assert_eq!(d.now_ms(), 1500);
        d.set(7);
        assert_eq!(c.now_ms(), 7);
    }
}
