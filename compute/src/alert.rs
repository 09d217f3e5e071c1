//! Burn-rate alert rules and their state machine, evaluated on the engine's clock so that
//! they run the same in simulated time.
//!
//! The default rules are the multi-window, multi-burn-rate table of the Google SRE
//! workbook ("Alerting on SLOs"), in the four-tier form: page when both the 1h and 5m
//! burn rates exceed the factor that spends 2% of the budget in an hour, or both 6h and
//! 30m exceed the one that spends 5% in six hours; ticket on 10% in a day (1d and 2h) and
//! 10% in three days (3d and 6h). For a 30-day window the factors are 14.4, 6, 3 and 1;
//! other windows scale them as Sloth does: `factor = budget fraction × window / long
//! window`. Both windows must exceed the factor; with `min_events` set, a long window
//! with fewer events cannot fire (a handful of requests at night cannot page).
//!
//! Each (SLO, tier) moves inactive → pending (while its `for` duration has not passed) →
//! firing → inactive again, and every move is returned as a [`Transition`].

use std::collections::HashMap;

use serde::Serialize;

use crate::engine::BurnSnapshot;
use crate::math;
use crate::model::{SloDef, Window};

/// What an alert asks of people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Wake someone up.
    Page,
    /// Look at it during working hours.
    Ticket,
}

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
}

/// The workbook's tiers: (name, severity, long, short, budget fraction).
const WORKBOOK: [(&str, Severity, u32, u32, f64); 4] = [
    ("page-fast", Severity::Page, 60, 5, 0.02),
    ("page-slow", Severity::Page, 360, 30, 0.05),
    ("ticket-fast", Severity::Ticket, 1440, 120, 0.10),
    ("ticket-slow", Severity::Ticket, 4320, 360, 0.10),
];

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
        })
        .collect()
}

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, not yet for the tier's `for` duration.
    Pending {
        /// Since when (nanoseconds since the epoch).
        since: i64,
    },
    /// The alert fires.
    Firing {
        /// Since when.
        since: i64,
    },
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The SLO's tenant.
    pub tenant: String,
    /// The SLO.
    pub slo: String,
    /// The tier.
    pub tier: String,
    /// Page or ticket.
    pub severity: Severity,
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
    /// When (nanoseconds since the epoch).
    pub at: i64,
    /// The burn rates seen: long window, short window.
    pub burn_rates: (Option<f64>, Option<f64>),
}

/// The alert states of every (SLO, tier).
#[derive(Debug, Default)]
pub struct Evaluator {
    states: HashMap<(String, String, String), AlertState>,
}

impl Evaluator {
    /// An evaluator with every alert inactive.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state of an alert.
    pub fn state(&self, tenant: &str, slo: &str, tier: &str) -> AlertState {
        self.states
            .get(&(tenant.to_string(), slo.to_string(), tier.to_string()))
            .copied()
            .unwrap_or(AlertState::Inactive)
    }

    /// Evaluates every SLO of `snapshot` (taken at `now`) against its tiers; returns the
    /// transitions, in SLO order.
    pub fn evaluate(&mut self, now: i64, snapshot: &[BurnSnapshot]) -> Vec<Transition> {
        let mut out = Vec::new();
        for s in snapshot {
            let def: &SloDef = &s.def;
            let objective = def.objective_ratio();
            // A calendar window's budget is spent over its whole period.
            let window = match def.window {
                Window::Rolling { minutes } => minutes,
                Window::Calendar { .. } => (def.window.length_seconds(now) / 60.0).round() as u32,
            };
            for tier in default_tiers(window) {
                let rate = |minutes: u32| {
                    s.window(minutes)
                        .and_then(|(g, t)| math::burn_rate(g as f64, t as f64, objective))
                };
                let (long, short) = (rate(tier.long_minutes), rate(tier.short_minutes));
                let enough = s
                    .window(tier.long_minutes)
                    .is_some_and(|(_, t)| t >= def.min_events);
                let holds = enough
                    && long.is_some_and(|r| r > tier.factor)
                    && short.is_some_and(|r| r > tier.factor);
                let key = (def.tenant.clone(), def.name.clone(), tier.name.clone());
                let from = self
                    .states
                    .get(&key)
                    .copied()
                    .unwrap_or(AlertState::Inactive);
                let to = match (from, holds) {
                    (AlertState::Inactive, true) if tier.for_seconds <= 0 => {
                        AlertState::Firing { since: now }
                    }
                    (AlertState::Inactive, true) => AlertState::Pending { since: now },
                    (AlertState::Pending { since }, true)
                        if now - since >= tier.for_seconds * 1_000_000_000 =>
                    {
                        AlertState::Firing { since: now }
                    }
                    (state, true) => state,
                    (_, false) => AlertState::Inactive,
                };
                if to != from {
                    self.states.insert(key, to);
                    out.push(Transition {
                        tenant: def.tenant.clone(),
                        slo: def.name.clone(),
                        tier: tier.name.clone(),
                        severity: tier.severity,
                        from,
                        to,
                        at: now,
                        burn_rates: (long, short),
                    });
                }
            }
        }
        out
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
