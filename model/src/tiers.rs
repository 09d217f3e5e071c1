//! The burn-rate alert tiers: the Google SRE workbook's multi-window, multi-burn-rate
//! table, scaled to an SLO's window, with the SLO's overrides applied.
//!
//! Page when both the 1h and 5m burn rates exceed the factor that spends 2% of the budget
//! in an hour, or both 6h and 30m exceed the one that spends 5% in six hours; ticket on
//! 10% in a day (1d and 2h) and 10% in three days (3d and 6h). For a 30-day window the
//! factors are 14.4, 6, 3 and 1; other windows scale them as Sloth does:
//! `factor = budget fraction × window / long window`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::slo::{Severity, SloDef};
use crate::window::Window;

/// One burn-rate tier of an SLO's alerting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tier {
    /// `page-fast`, `page-slow`, `ticket-fast`, `ticket-slow`.
    pub name: String,
    /// Page or ticket.
    pub severity: Severity,
    /// The long window, in minutes.
    pub long_minutes: u32,
    /// The short window, in minutes.
    pub short_minutes: u32,
    /// Both burn rates must exceed this.
    pub factor: f64,
    /// How long the condition must hold before the alert fires, in seconds.
    pub for_seconds: i64,
    /// Labels of the tier's own.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the tier's own.
    pub annotations: BTreeMap<String, String>,
}

impl Tier {
    /// The factor as people read and write it (six decimals): `14.4`, not
    /// `14.400000000000002`.
    pub fn factor_shown(&self) -> f64 {
        (self.factor * 1e6).round() / 1e6
    }
}

/// The workbook's tiers: (name, severity, long, short, budget fraction).
const WORKBOOK: [(&str, Severity, u32, u32, f64); 4] = [
    ("page-fast", Severity::Page, 60, 5, 0.02),
    ("page-slow", Severity::Page, 360, 30, 0.05),
    ("ticket-fast", Severity::Ticket, 1440, 120, 0.10),
    ("ticket-slow", Severity::Ticket, 4320, 360, 0.10),
];

/// The names of the default tiers, fastest first.
pub const DEFAULT_TIER_NAMES: [&str; 4] =
    [WORKBOOK[0].0, WORKBOOK[1].0, WORKBOOK[2].0, WORKBOOK[3].0];

/// The workbook's pairs of long and short windows, in minutes: the short window is a
/// twelfth of the long one.
pub const WINDOW_PAIRS: [(u32, u32); 4] = [(60, 5), (360, 30), (1440, 120), (4320, 360)];

/// The default tiers for an SLO whose window is `window_minutes` long.
pub fn default_tiers(window_minutes: u32) -> Vec<Tier> {
    WORKBOOK
        .iter()
        .map(|&(name, severity, long, short, budget)| Tier {
            name: name.to_string(),
            severity,
            long_minutes: long,
            short_minutes: short,
            factor: budget * f64::from(window_minutes) / f64::from(long),
            for_seconds: 0,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
        .collect()
}

/// The tiers of an SLO: the defaults for its window with its overrides applied, without
/// the disabled ones, and its own tiers after them.
pub fn tiers_for(def: &SloDef, window_minutes: u32) -> Vec<Tier> {
    let mut tiers = default_tiers(window_minutes);
    for (name, o) in &def.alert_tiers {
        let tier = match tiers.iter_mut().find(|t| t.name == *name) {
            Some(t) => t,
            None => {
                tiers.push(Tier {
                    name: name.clone(),
                    severity: o.severity.unwrap_or(Severity::Ticket),
                    long_minutes: o.long_minutes.unwrap_or(60),
                    short_minutes: o.short_minutes.unwrap_or(5),
                    factor: o.factor.unwrap_or(1.0),
                    for_seconds: 0,
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                });
                tiers.last_mut().expect("just pushed")
            }
        };
        if let Some(f) = o.factor {
            tier.factor = f;
        }
        if let Some(s) = o.severity {
            tier.severity = s;
        }
        if let Some(m) = o.long_minutes {
            tier.long_minutes = m;
        }
        if let Some(m) = o.short_minutes {
            tier.short_minutes = m;
        }
        if let Some(f) = o.for_seconds {
            tier.for_seconds = f;
        }
        tier.labels.extend(o.labels.clone());
        tier.annotations.extend(o.annotations.clone());
    }
    tiers.retain(|t| !def.alert_tiers.get(&t.name).is_some_and(|o| o.disabled));
    tiers
}

/// The window length, in minutes, the tiers of `def` are scaled to at `now`: a calendar
/// window's budget is spent over its whole period.
pub fn tier_window_minutes(def: &SloDef, now: i64) -> u32 {
    match def.window {
        Window::Rolling { minutes } => minutes,
        Window::Calendar { .. } => (def.window.length_seconds(now) / 60.0).round() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_factors_scale_with_the_window() {
        let f: Vec<f64> = default_tiers(30 * 1440).iter().map(|t| t.factor).collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(
            close(f[0], 14.4) && close(f[1], 6.0) && close(f[2], 3.0) && close(f[3], 1.0),
            "{f:?}"
        );
        // A 7-day window: the same budget fractions, smaller factors (Sloth's scaling).
        let f: Vec<f64> = default_tiers(7 * 1440).iter().map(|t| t.factor).collect();
        assert!(
            close(f[0], 3.36) && close(f[1], 1.4) && close(f[2], 0.7) && close(f[3], 7.0 / 30.0),
            "{f:?}"
        );
    }
}
