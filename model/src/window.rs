//! The windows an SLO is computed over: rolling minutes or calendar periods in a time
//! zone, and the standard burn-rate windows.

use std::fmt;

/// Minutes in the standard burn-rate windows reported for every SLO.
pub const BURN_RATE_WINDOWS: [u32; 7] = [5, 30, 60, 120, 360, 1440, 4320];
/// The window an SLO's SLI and budget are computed over.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The last `minutes` whole minutes, the current one included.
    Rolling {
        /// Its length in minutes.
        minutes: u32,
    },
    /// The calendar period holding now, in a time zone: from its first minute to now.
    Calendar {
        /// Week (from Monday), month or quarter.
        unit: CalendarUnit,
        /// The IANA time zone the period is counted in.
        tz: NamedTz,
    },
}

/// Calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    /// Monday 00:00 to Sunday 24:00.
    Week,
    /// The first of the month 00:00 to the end of the month.
    Month,
    /// January, April, July or October 1st 00:00, for three months.
    Quarter,
}

/// An IANA time zone with its name.
#[derive(Debug, Clone)]
pub struct NamedTz {
    /// The name, e.g. `Europe/Berlin`.
    pub name: String,
    /// The zone's rules.
    pub tz: jiff::tz::TimeZone,
}

impl serde::Serialize for NamedTz {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}
impl PartialEq for NamedTz {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl NamedTz {
    /// A zone and the name it was looked up by (the spec parser looks names up in the
    /// time zone database; the model only holds the result).
    pub fn new(name: impl Into<String>, tz: jiff::tz::TimeZone) -> Self {
        Self {
            name: name.into(),
            tz,
        }
    }
}

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

impl Window {
    /// A rolling window of `minutes`.
    pub const fn rolling(minutes: u32) -> Self {
        Window::Rolling { minutes }
    }

    /// The most minutes the window can span (a calendar period's longest case, DST
    /// included).
    pub fn max_minutes(&self) -> u32 {
        match self {
            Window::Rolling { minutes } => *minutes,
            Window::Calendar { unit, .. } => {
                let days = match unit {
                    CalendarUnit::Week => 7,
                    CalendarUnit::Month => 31,
                    CalendarUnit::Quarter => 92,
                };
                days * 1440 + 60
            }
        }
    }

    /// The start of the window at `now` (nanoseconds since the epoch): for a rolling
    /// window the start of its first minute; for a calendar window the start of the
    /// period, in its time zone.
    pub fn start_nanos(&self, now: i64) -> i64 {
        match self {
            Window::Rolling { minutes } => {
                (now.div_euclid(NANOS_PER_MINUTE) - i64::from(*minutes) + 1) * NANOS_PER_MINUTE
            }
            Window::Calendar { unit, tz } => calendar_bounds(*unit, &tz.tz, now).0,
        }
    }

    /// The minutes the window covers at `now`: the current minute and those before it
    /// back to the window's start.
    pub fn minutes_at(&self, now: i64) -> u32 {
        match self {
            Window::Rolling { minutes } => *minutes,
            Window::Calendar { .. } => {
                let start = self.start_nanos(now).div_euclid(NANOS_PER_MINUTE);
                (now.div_euclid(NANOS_PER_MINUTE) - start + 1).max(1) as u32
            }
        }
    }

    /// The window's full length in seconds at `now` (a calendar period's whole length,
    /// not only its elapsed part): what a burn rate of 1 spends the budget over.
    pub fn length_seconds(&self, now: i64) -> f64 {
        match self {
            Window::Rolling { minutes } => f64::from(*minutes) * 60.0,
            Window::Calendar { unit, tz } => {
                let (start, end) = calendar_bounds(*unit, &tz.tz, now);
                (end - start) as f64 / 1e9
            }
        }
    }
}

/// The start and end (nanoseconds) of the calendar period holding `now` in `tz`.
pub fn calendar_bounds(unit: CalendarUnit, tz: &jiff::tz::TimeZone, now: i64) -> (i64, i64) {
    use jiff::ToSpan;
    let Ok(ts) = jiff::Timestamp::from_nanosecond(i128::from(now)) else {
        return (now, now);
    };
    let date = ts.to_zoned_datetime(tz.clone()).date();
    let (start, next) = match unit {
        CalendarUnit::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            let start = date.checked_sub(back.days()).unwrap_or(date);
            (start, start.checked_add(7.days()).unwrap_or(start))
        }
        CalendarUnit::Month => {
            let start = date.first_of_month();
            (start, start.checked_add(1.month()).unwrap_or(start))
        }
        CalendarUnit::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            let start = jiff::civil::Date::new(date.year(), month, 1).unwrap_or(date);
            (start, start.checked_add(3.months()).unwrap_or(start))
        }
    };
    let at = |d: jiff::civil::Date| {
        d.to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp().as_nanosecond() as i64)
            .unwrap_or(now)
    };
    (at(start), at(next))
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Rolling { minutes } => f.write_str(&format_minutes(*minutes)),
            Window::Calendar { unit, .. } => f.write_str(match unit {
                CalendarUnit::Week => "week",
                CalendarUnit::Month => "month",
                CalendarUnit::Quarter => "quarter",
            }),
        }
    }
}

/// Formats a minute count in the largest unit that divides it: `30d`, `6h`, `90m`.
pub fn format_minutes(minutes: u32) -> String {
    if minutes > 0 && minutes.is_multiple_of(1440) {
        format!("{}d", minutes / 1440)
    } else if minutes > 0 && minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    fn cal(unit: CalendarUnit, tz: &str) -> Window {
        Window::Calendar {
            unit,
            tz: NamedTz::new(tz, jiff::tz::TimeZone::get(tz).unwrap()),
        }
    }

    #[test]
    fn month_lengths_and_the_leap_day() {
        let utc = cal(CalendarUnit::Month, "UTC");
        // February 2028 has 29 days, 2027 has 28.
        assert_eq!(
            utc.length_seconds(ns("2028-02-15T12:00:00Z")),
            29.0 * 86_400.0
        );
        assert_eq!(
            utc.length_seconds(ns("2027-02-15T12:00:00Z")),
            28.0 * 86_400.0
        );
        assert_eq!(
            utc.length_seconds(ns("2027-01-31T23:59:00Z")),
            31.0 * 86_400.0
        );
        // On the leap day itself, 28 whole days and 12 hours have passed (+1 minute).
        let now = ns("2028-02-29T12:00:00Z");
        assert_eq!(utc.start_nanos(now), ns("2028-02-01T00:00:00Z"));
        assert_eq!(utc.minutes_at(now), 28 * 1440 + 720 + 1);
        // The first minute of a month is a window of one minute.
        assert_eq!(utc.minutes_at(ns("2028-03-01T00:00:30Z")), 1);
    }

    #[test]
    fn periods_start_at_local_midnight_across_dst() {
        let berlin = cal(CalendarUnit::Month, "Europe/Berlin");
        // 1 March 2026 00:00 in Berlin is 28 February 23:00 UTC.
        let now = ns("2026-03-31T12:00:00Z");
        assert_eq!(berlin.start_nanos(now), ns("2026-02-28T23:00:00Z"));
        // March 2026 loses an hour on the 29th: 31 days less 1 hour.
        assert_eq!(berlin.length_seconds(now), 31.0 * 86_400.0 - 3_600.0);
        // October gains one.
        assert_eq!(
            berlin.length_seconds(ns("2026-10-15T00:00:00Z")),
            31.0 * 86_400.0 + 3_600.0
        );
        // Just before local midnight on the last day, UTC is still in the month; after, not.
        assert_eq!(
            berlin.start_nanos(ns("2026-03-31T21:59:00Z")),
            ns("2026-02-28T23:00:00Z")
        );
        assert_eq!(
            berlin.start_nanos(ns("2026-03-31T22:00:00Z")),
            ns("2026-03-31T22:00:00Z")
        );
        // New York: the week of Monday 2 March 2026 holds the spring-forward Sunday (the
        // 8th) and is 167 hours long; it starts at local midnight, 05:00 UTC (EST), and
        // the next one at 04:00 UTC (EDT).
        let ny = cal(CalendarUnit::Week, "America/New_York");
        assert_eq!(
            ny.start_nanos(ns("2026-03-06T12:00:00Z")),
            ns("2026-03-02T05:00:00Z")
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-06T12:00:00Z")),
            167.0 * 3_600.0
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-08T12:00:00Z")),
            167.0 * 3_600.0
        );
        assert_eq!(
            ny.start_nanos(ns("2026-03-10T12:00:00Z")),
            ns("2026-03-09T04:00:00Z")
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-10T12:00:00Z")),
            168.0 * 3_600.0
        );
    }

    #[test]
    fn weeks_start_on_monday_and_quarters_on_their_month() {
        let week = cal(CalendarUnit::Week, "UTC");
        // 29 November 2026 is a Sunday: the week began Monday the 23rd.
        assert_eq!(
            week.start_nanos(ns("2026-11-29T20:00:00Z")),
            ns("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            week.start_nanos(ns("2026-11-30T00:00:00Z")),
            ns("2026-11-30T00:00:00Z")
        );
        let q = cal(CalendarUnit::Quarter, "UTC");
        assert_eq!(
            q.start_nanos(ns("2026-11-29T20:00:00Z")),
            ns("2026-10-01T00:00:00Z")
        );
        assert_eq!(
            q.length_seconds(ns("2026-11-29T20:00:00Z")),
            92.0 * 86_400.0
        );
        assert_eq!(
            q.length_seconds(ns("2028-02-01T00:00:00Z")),
            91.0 * 86_400.0
        );
        assert!(q.max_minutes() >= 92 * 1440);
    }
}
