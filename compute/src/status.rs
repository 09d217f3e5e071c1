//! The status of one SLO at one instant: counts, SLI, budget and burn rates.

use serde::Serialize;
use serde::ser::SerializeMap;

/// An SLO's status, as the REST API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SloStatus {
    /// The SLO's name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// Its service (`service.name`).
    pub service: String,
    /// Free text from the SLO file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels from the SLO file.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations from the SLO file.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The objective in percent.
    pub objective: f64,
    /// The window: `30d` (rolling) or `week`, `month`, `quarter` (calendar).
    pub window: String,
    /// Where the window begins now (RFC 3339).
    pub window_start: String,
    /// `occurrences`, `timeslices` or `ratio_timeslices`.
    #[schema(value_type = String)]
    pub budgeting: &'static str,
    /// Good events in the window.
    pub good_events: u64,
    /// Bad events in the window.
    pub bad_events: u64,
    /// All events in the window.
    pub total_events: u64,
    /// Timeslice budgeting: good slices (`timeslices`), or the sum of the slices' ratios
    /// (`ratio_timeslices`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub good_slices: Option<f64>,
    /// Timeslice budgeting: slices with events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_slices: Option<u64>,
    /// good / total over the window (in events, or slices); `null` without any.
    pub sli: Option<f64>,
    /// The error budget still left over the window: 1 untouched, 0 spent, negative
    /// overspent; `null` without events.
    pub error_budget_remaining: Option<f64>,
    /// The error budget over the window, in events (slices for timeslice budgeting):
    /// `(1 − objective) × total`.
    pub error_budget_events: f64,
    /// The fraction of the budget spent: `bad / error_budget_events` (above 1 when
    /// overspent); `null` without events.
    pub error_budget_consumed: Option<f64>,
    /// `no_data` (no events in the window), `exhausted` (no budget left), `at_risk`
    /// (less budget left than the freeze threshold, or 25% when the SLO sets none) or
    /// `ok`.
    #[schema(value_type = String)]
    pub state: &'static str,
    /// Burn rate per window (`5m` … `3d` and the SLO window); `null` where the window
    /// had no events.
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub burn_rates: BurnRates,
    /// Seconds until the budget is spent at the current 1h and 6h burn rates; 0 when it is
    /// spent already, `null` when not burning.
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub budget_exhaustion_seconds: BurnRates,
    /// Every objective of the SLO, the primary (whose numbers are above) first.
    pub objectives: Vec<ObjectiveStatus>,
    /// The error budget policy: releases freeze below this fraction of the budget left.
    pub freeze_below: f64,
    /// Windows (of `burn_rates`) with fewer events than the SLO's `min_events`: their burn
    /// rates are reported but not to be trusted for paging.
    pub low_traffic: Vec<String>,
    /// A grouped SLO's groups, the lowest budget first (only in a single SLO's status).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStatus>,
    /// For a histogram latency SLI: the largest bucket bound at or below the threshold
    /// that the last data point was counted at, in seconds (a threshold between bounds
    /// counts the bucket holding it as bad).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_threshold_seconds: Option<f64>,
    /// The maintenance window in force for the SLO now (its notifications are held
    /// back), by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_maintenance: Option<String>,
    /// Why the SLO has no data, when it has none (only in a single SLO's status): the
    /// first finding of `GET /api/v1/slos/{name}/explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// When this status was computed (RFC 3339).
    pub evaluated_at: String,
}

/// One group of a grouped SLO, by the SLO's primary objective.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupStatus {
    /// The group's attribute values (`__overflow__` for the overflow group).
    pub group: std::collections::BTreeMap<String, String>,
    /// Good events in the window.
    pub good_events: u64,
    /// All events in the window.
    pub total_events: u64,
    /// The group's SLI.
    pub sli: Option<f64>,
    /// The group's budget left.
    pub error_budget_remaining: Option<f64>,
    /// The group's burn rates.
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub burn_rates: BurnRates,
}

/// The budget of one objective.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ObjectiveStatus {
    /// The objective's name.
    pub name: String,
    /// Its target in percent.
    pub objective: f64,
    /// The budget left (1 untouched, 0 spent, negative overspent).
    pub error_budget_remaining: Option<f64>,
    /// The budget, in events or slices.
    pub error_budget_events: f64,
    /// The fraction of the budget spent.
    pub error_budget_consumed: Option<f64>,
    /// Burn rate per window.
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub burn_rates: BurnRates,
    /// Seconds until the budget is spent at the 1h and 6h burn rates.
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub budget_exhaustion_seconds: BurnRates,
}

/// Burn rates keyed by window label, in window order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurnRates(pub Vec<(String, Option<f64>)>);

impl BurnRates {
    /// The burn rate for a window label such as `1h`.
    pub fn get(&self, window: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(w, _)| w == window)
            .and_then(|(_, v)| *v)
    }
}

impl Serialize for BurnRates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
