//! The validated SLO: what it counts, its objectives, budgeting and alert settings.

use crate::selector::{AttrMatch, GoodRule, SpanSelector};
use crate::window::Window;

/// The low-traffic guard unless an SLO sets its own: a tier's long window needs this
/// many events to fire, so that the first handful of requests of a test run, or three
/// failures of five at night, do not page.
pub const DEFAULT_MIN_EVENTS: u64 = 100;

/// The tenant of requests (and SLOs) that name none.
pub const DEFAULT_TENANT: &str = "default";

/// Attributes an SLO may be grouped by.
pub const MAX_GROUP_BY: usize = 4;

/// One validated SLO.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SloDef {
    /// Unique per tenant.
    pub name: String,
    /// The tenant the SLO belongs to.
    pub tenant: String,
    /// The `service.name` resource attribute of the events it counts.
    pub service: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Labels for routing and grouping (team, tier, …), carried into status and alerts.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations for people (runbook, dashboard, …).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The primary objective in percent (e.g. 99.9), strictly between 0 and 100: the
    /// first of `objectives`.
    pub objective: f64,
    /// Every objective, the primary first.
    pub objectives: Vec<Objective>,
    /// How the budget is counted.
    pub budgeting: Budgeting,
    /// The rolling window the SLI and the budget are computed over.
    pub window: Window,
    /// Windows with fewer events than this are flagged `low_traffic` and cannot fire
    /// burn-rate alerts (0: never; default [`DEFAULT_MIN_EVENTS`]).
    pub min_events: u64,
    /// The error budget policy: releases freeze when the budget left falls below
    /// `freeze_below` (a fraction; 0, the default, freezes once the budget is spent).
    pub freeze_below: f64,
    /// Changes to the default burn-rate alert tiers, and tiers of the SLO's own, by name.
    pub alert_tiers: std::collections::BTreeMap<String, TierOverride>,
    /// Alerts on the budget itself and on missing data; all off by default.
    pub budget_alerts: BudgetAlerts,
    /// Attributes (of the span, log record or data point) whose values split the SLO
    /// into groups, each with its own SLI and budget; at most [`MAX_GROUP_BY`].
    pub group_by: Vec<String>,
    /// Groups kept; events of further groups count in the `__overflow__` group.
    pub max_groups: usize,
    /// What the SLO counts and what makes an event good.
    pub sli: Sli,
}

impl SloDef {
    /// Whether `other` counts the same events into the same windows, so that counts
    /// can carry over a reload (objective, labels and the like may differ).
    pub fn counts_like(&self, other: &SloDef) -> bool {
        self.tenant == other.tenant
            && self.service == other.service
            && self.sli == other.sli
            && self.window == other.window
            && self.budgeting == other.budgeting
            && self.group_by == other.group_by
            && self.max_groups == other.max_groups
    }

    /// The objective as a ratio (99.9 → 0.999).
    pub fn objective_ratio(&self) -> f64 {
        percent_to_ratio(self.objective)
    }
}

/// What an alert asks of people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Wake someone up.
    Page,
    /// Look at it during working hours.
    Ticket,
}

impl Severity {
    /// Its label value: `page` or `ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// A change to a burn-rate alert tier (or a tier of the SLO's own, when every window,
/// factor and severity is given).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TierOverride {
    /// The tier does not alert.
    pub disabled: bool,
    /// Both windows must burn faster than this.
    pub factor: Option<f64>,
    /// Page or ticket.
    pub severity: Option<Severity>,
    /// The long window, in minutes (a standard burn-rate window).
    pub long_minutes: Option<u32>,
    /// The short window, in minutes (a standard burn-rate window).
    pub short_minutes: Option<u32>,
    /// How long the condition must hold before the alert fires, in seconds.
    pub for_seconds: Option<i64>,
    /// Labels the tier's alerts carry besides the SLO's.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations the tier's alerts carry besides the SLO's.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Alerts beyond burn rates, each off unless set.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BudgetAlerts {
    /// Fire when the budget will be spent within this many seconds at the 1h burn rate.
    pub exhaustion_within_seconds: Option<(i64, Severity)>,
    /// Fire while the budget is spent.
    pub exhausted: Option<Severity>,
    /// Fire when no event arrived for this many minutes.
    pub no_data_minutes: Option<(u32, Severity)>,
}

/// One target of an SLO.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Objective {
    /// Its name (`default` when the SLO has one unnamed objective).
    pub name: String,
    /// The target in percent.
    pub target: f64,
}

/// How an SLO's budget is counted (OpenSLO's budgeting methods).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budgeting {
    /// Good events over all events.
    Occurrences,
    /// Good slices over slices with events; a slice is good when its ratio of good events
    /// is at least `slice_target`.
    Timeslices {
        /// The slice length in minutes.
        slice_minutes: u32,
        /// The ratio (0-1) a slice needs to be good.
        slice_target: f64,
    },
    /// The mean of the slices' ratios of good events, over slices with events.
    RatioTimeslices {
        /// The slice length in minutes.
        slice_minutes: u32,
    },
}

impl Budgeting {
    /// Its name in the API: `occurrences`, `timeslices`, `ratio_timeslices`.
    pub fn name(&self) -> &'static str {
        match self {
            Budgeting::Occurrences => "occurrences",
            Budgeting::Timeslices { .. } => "timeslices",
            Budgeting::RatioTimeslices { .. } => "ratio_timeslices",
        }
    }
}

/// A percentage as a ratio without the binary noise of `/ 100` (99.9 → 0.999, not
/// 0.9990000000000001): objectives have at most six decimals.
pub fn percent_to_ratio(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e8
}

/// The service level indicator: which events count, and which of them are good.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sli {
    /// Events are spans.
    Spans {
        /// Which spans count.
        selector: SpanSelector,
        /// Which of them are good.
        good: GoodRule,
    },
    /// Events are counted by monotonic OTLP Sums: good (or bad) over total.
    MetricRatio {
        /// The counter of good events; set when `bad` is not.
        good: Option<MetricSelector>,
        /// The counter of bad events; set when `good` is not.
        bad: Option<MetricSelector>,
        /// The counter of all events.
        total: MetricSelector,
    },
    /// Events are the observations of an OTLP Histogram or ExponentialHistogram; good
    /// when in a bucket whose upper bound is at most the threshold.
    MetricLatency {
        /// The histogram.
        metric: MetricSelector,
        /// The threshold, in seconds.
        threshold_seconds: f64,
    },
    /// Events are log records.
    Logs {
        /// Log record attribute matchers; all must hold.
        attributes: Vec<(String, AttrMatch)>,
        /// Good when the record's severity number is at most this (unset, 0, is good).
        max_severity: i32,
    },
}

/// Selects the data points of one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricSelector {
    /// The OTLP metric name, e.g. `http.server.requests`; with `prometheus`, the name as
    /// Prometheus knows the metric, e.g. `http_server_requests_total`.
    pub name: String,
    /// Whether `name` and the attribute keys are Prometheus names of OTLP metrics and
    /// attributes (as the OpenTelemetry Collector's Prometheus exporters write them).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prometheus: bool,
    /// Data point attribute matchers; all must hold.
    pub attributes: Vec<(String, AttrMatch)>,
    /// The `job` a Prometheus query matched (it names the service, which slotel selects
    /// by `service.name`): kept so that generated rules select as the query did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl SloDef {
    /// Which events the SLO's windows count beside the total: bad ones for a bad/total
    /// metric ratio, good ones otherwise.
    pub fn counted(&self) -> crate::tally::Counted {
        if matches!(&self.sli, Sli::MetricRatio { bad: Some(_), .. }) {
            crate::tally::Counted::Bad
        } else {
            crate::tally::Counted::Good
        }
    }

    /// Whether each event has a duration (spans): such SLOs keep per-minute latency
    /// histograms for display quantiles.
    pub fn has_durations(&self) -> bool {
        matches!(&self.sli, Sli::Spans { .. })
    }
}

/// The name [`parse_severity`] reads back as OTLP severity number `n` (1-24):
/// `info` for 12, `info1` for 9.
pub fn severity_name(n: i32) -> String {
    const NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];
    let i = ((n - 1).max(0) / 4) as usize;
    let sub = (n - 1).max(0) % 4 + 1;
    let name = NAMES.get(i).copied().unwrap_or("fatal");
    if sub == 4 {
        name.to_string()
    } else {
        format!("{name}{sub}")
    }
}

/// Parses an OTLP severity name (`trace`, `debug`, `info`, `warn`, `error`, `fatal`,
/// optionally with its 1-4 sub-level, e.g. `warn2`) into its highest severity number.
pub fn parse_severity(s: &str) -> Option<i32> {
    let lower = s.to_ascii_lowercase();
    let (name, sub) = match lower.char_indices().find(|(_, c)| c.is_ascii_digit()) {
        Some((i, _)) => (&lower[..i], Some(lower[i..].parse::<i32>().ok()?)),
        None => (lower.as_str(), None),
    };
    let base = match name {
        "trace" => 0,
        "debug" => 4,
        "info" => 8,
        "warn" | "warning" => 12,
        "error" => 16,
        "fatal" => 20,
        _ => return None,
    };
    match sub {
        None => Some(base + 4),
        Some(n @ 1..=4) => Some(base + n),
        Some(_) => None,
    }
}
