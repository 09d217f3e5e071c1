//! Release gates: whether a deployment may proceed, by the error budget policy of the
//! SLOs it touches and the pages that fire for them, with the reason and the numbers.

use serde::Serialize;

use crate::alerting::{Alert, AlertState};
use crate::status::SloStatus;

/// The gate's answer for one SLO.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Gate {
    /// The SLO.
    pub slo: String,
    /// Whether a release may proceed.
    pub allowed: bool,
    /// Why, in sentences.
    pub reasons: Vec<String>,
    /// The budget left over the SLO window (`null` without traffic).
    pub error_budget_remaining: Option<f64>,
    /// The policy's threshold.
    pub freeze_below: f64,
    /// The page tiers firing for the SLO.
    pub firing_pages: Vec<String>,
}

/// Decides for one SLO from its status and the tenant's active alerts.
pub fn decide(status: &SloStatus, alerts: &[Alert]) -> Gate {
    let mut reasons = Vec::new();
    let mut allowed = true;
    let remaining = status.error_budget_remaining;
    match remaining {
        None => reasons.push("no traffic in the window: no data is not an outage".to_string()),
        Some(r) if status.freeze_below == 0.0 && r <= 0.0 => {
            allowed = false;
            reasons.push(format!(
                "the error budget is spent ({:.1}% left)",
                r * 100.0
            ));
        }
        Some(r) if r < status.freeze_below => {
            allowed = false;
            reasons.push(format!(
                "{:.1}% of the error budget is left, below the freeze threshold of {:.1}%",
                r * 100.0,
                status.freeze_below * 100.0
            ));
        }
        Some(r) => reasons.push(format!("{:.1}% of the error budget is left", r * 100.0)),
    }
    let firing_pages: Vec<String> = alerts
        .iter()
        .filter(|a| matches!(a.state, AlertState::Firing { .. }))
        .filter(|a| a.labels.get("slo") == Some(&status.name))
        .filter(|a| a.labels.get("severity").map(String::as_str) == Some("page"))
        .filter_map(|a| a.labels.get("burnrate_tier").cloned())
        .collect();
    if !firing_pages.is_empty() {
        allowed = false;
        reasons.push(format!(
            "page alerts are firing: {}",
            firing_pages.join(", ")
        ));
    }
    Gate {
        slo: status.name.clone(),
        allowed,
        reasons,
        error_budget_remaining: remaining,
        freeze_below: status.freeze_below,
        firing_pages,
    }
}
