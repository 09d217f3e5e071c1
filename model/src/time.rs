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

/// A time given as Unix seconds (with a fraction) or RFC 3339, in milliseconds
/// (saturating), as the Prometheus HTTP API and slotel's REST API accept it.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => Some((secs * 1000.0).round() as i64),
        _ => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_or_rfc3339() {
        assert_eq!(parse_time_ms("1.5"), Some(1500));
        assert_eq!(parse_time_ms("1970-01-01T00:00:02Z"), Some(2000));
        assert_eq!(parse_time_ms("soon"), None);
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }
}
