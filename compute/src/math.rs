//! SLI, error budget and burn-rate formulas. Zero traffic is "no data" (`None`), never
//! an outage.
//!
//! For objective `o` (a ratio, e.g. 0.999) and a window with `bad` of `total` events:
//! `sli = 1 - bad/total`, `budget_remaining = 1 - bad / ((1 - o) * total)`,
//! `burn_rate = (bad/total) / (1 - o)`.

//! Counts are `f64` so that the same formulas serve events (whole numbers, exact below
//! 2^53) and timeslices (slice counts, or sums of slice ratios).

/// The fraction of good units (events or slices), `None` without any.
pub fn sli(good: f64, total: f64) -> Option<f64> {
    (total > 0.0).then(|| 1.0 - bad(good, total) / total)
}

/// The fraction of the error budget left (1 = untouched, 0 = spent, negative = overspent).
pub fn budget_remaining(good: f64, total: f64, objective: f64) -> Option<f64> {
    (total > 0.0).then(|| 1.0 - bad(good, total) / ((1.0 - objective) * total))
}

/// How fast the budget burns: 1 spends exactly the budget over the SLO window.
pub fn burn_rate(good: f64, total: f64, objective: f64) -> Option<f64> {
    (total > 0.0).then(|| (bad(good, total) / total) / (1.0 - objective))
}

/// Seconds until the budget is spent at burn rate `burn`, for a window of
/// `window_seconds` with `remaining` of its budget left: `remaining × window / burn`.
/// `Some(0)` when already spent; `None` when not burning or without data.
pub fn exhaustion_seconds(
    remaining: Option<f64>,
    burn: Option<f64>,
    window_seconds: f64,
) -> Option<f64> {
    let (r, b) = (remaining?, burn?);
    if r <= 0.0 {
        return Some(0.0);
    }
    (b > 0.0).then(|| r * window_seconds / b)
}

fn bad(good: f64, total: f64) -> f64 {
    (total - good).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn no_traffic_is_no_data() {
        assert_eq!(sli(0.0, 0.0), None);
        assert_eq!(budget_remaining(0.0, 0.0, 0.999), None);
        assert_eq!(burn_rate(0.0, 0.0, 0.999), None);
    }

    #[test]
    fn exhaustion_forecast() {
        // Half the budget left on a 30-day window, burning at 2x: 7.5 days.
        let d30 = 30.0 * 86_400.0;
        assert_eq!(
            exhaustion_seconds(Some(0.5), Some(2.0), d30),
            Some(7.5 * 86_400.0)
        );
        assert_eq!(exhaustion_seconds(Some(-0.1), Some(2.0), d30), Some(0.0));
        assert_eq!(exhaustion_seconds(Some(0.5), Some(0.0), d30), None);
        assert_eq!(exhaustion_seconds(Some(0.5), None, d30), None);
        assert_eq!(exhaustion_seconds(None, Some(1.0), d30), None);
    }

    #[test]
    fn hand_computed_cases() {
        // 1,000 events, 1 bad, 99.9%: exactly the budget, burning at 1x.
        assert!(close(sli(999.0, 1000.0).unwrap(), 0.999));
        assert!(close(budget_remaining(999.0, 1000.0, 0.999).unwrap(), 0.0));
        assert!(close(burn_rate(999.0, 1000.0, 0.999).unwrap(), 1.0));
        // 10,000 events, 25 bad, 99.9%: budget 10 events, 2.5x spent.
        assert!(close(
            budget_remaining(9975.0, 10_000.0, 0.999).unwrap(),
            -1.5
        ));
        assert!(close(burn_rate(9975.0, 10_000.0, 0.999).unwrap(), 2.5));
        // 200 events, 1 bad, 99%: budget 2 events, half spent.
        assert!(close(budget_remaining(199.0, 200.0, 0.99).unwrap(), 0.5));
        assert!(close(burn_rate(199.0, 200.0, 0.99).unwrap(), 0.5));
        // A total outage on 99.9% burns at 1000x.
        assert!(close(burn_rate(0.0, 50.0, 0.999).unwrap(), 1000.0));
        assert!(close(sli(0.0, 50.0).unwrap(), 0.0));
    }
}
