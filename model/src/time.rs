//! Time: the clock every loop reads "now" from (the system clock in production, a manual
//! one in tests), and RFC 3339 formatting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the engine reads "now" from, in nanoseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to, for simulated time.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `nanos`.
    pub fn new(nanos: i64) -> Self {
        Self(AtomicI64::new(nanos))
    }

    /// Sets the time.
    pub fn set(&self, nanos: i64) {
        self.0.store(nanos, Ordering::SeqCst);
    }

    /// Moves the time forward by `nanos`.
    pub fn advance(&self, nanos: i64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `nanos` since the Unix epoch as RFC 3339 with milliseconds (before the epoch: the epoch).
pub fn rfc3339(nanos: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// An RFC 3339 time, in nanoseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Result<i64, jiff::Error> {
    s.parse::<jiff::Timestamp>()
        .map(|t| i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX))
}

/// A time given as Unix seconds (with a fraction) or RFC 3339, in milliseconds, as the
/// Prometheus HTTP API and slotel's REST API accept it; `None` for anything else,
/// including a time more than [`MAX_TIME_MS`] from the epoch.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let ms = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1000.0).round() as i64,
        Ok(_) => return None,
        Err(_) => s.parse::<jiff::Timestamp>().ok()?.as_millisecond(),
    };
    (ms.unsigned_abs() <= MAX_TIME_MS).then_some(ms)
}

/// The largest distance from the epoch a client's time may have, in milliseconds (the
/// year 2255 either way): its nanoseconds, with any window or offset added, fit an
/// `i64`.
pub const MAX_TIME_MS: u64 = 9_000_000_000_000;

/// A duration that does not parse, with the reason as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration(pub String);

impl std::fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidDuration {}

impl From<InvalidDuration> for String {
    fn from(e: InvalidDuration) -> String {
        e.0
    }
}

/// Parses `300ms`, `1.5s`, `6h`, `30d` (units ns, us, ms, s, m, h, d, w).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, InvalidDuration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            InvalidDuration(format!(
                "invalid duration {s:?}: it needs a unit (ms, s, m, h, d, w)"
            ))
        })?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| InvalidDuration(format!("invalid duration {s:?}: {num:?} is not a number")))?;
    let nanos_per_unit: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "w" => 604_800e9,
        other => {
            return Err(InvalidDuration(format!(
                "invalid duration {s:?}: unknown unit {other:?} (use ns, us, ms, s, m, h, d or w)"
            )));
        }
    };
    let nanos = (value * nanos_per_unit).round();
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(InvalidDuration(format!("invalid duration {s:?}: too long")));
    }
    Ok(std::time::Duration::from_nanos(nanos as u64))
}

/// Deserializes an optional duration in [`parse_duration`]'s form, for configuration
/// sections (`#[serde(default, deserialize_with = "optional_duration")]`).
pub fn optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_or_rfc3339() {
        assert_eq!(parse_time_ms("1.5"), Some(1500));
        assert_eq!(parse_time_ms("1970-01-01T00:00:02Z"), Some(2000));
        assert_eq!(parse_time_ms("soon"), None);
        for far in [
            "inf",
            "-inf",
            "NaN",
            "1e300",
            "9000000001",
            "9999-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_time_ms(far), None, "{far}");
        }
        assert_eq!(parse_time_ms("-9000000000"), Some(-9_000_000_000_000));
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }
}
