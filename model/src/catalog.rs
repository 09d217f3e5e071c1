//! The catalog of the series slotel serves: metric names, label names and window
//! labels, defined once for the query engine, the exposition, the dashboards and the
//! rules generator.

/// The series slotel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// The objective as a ratio (0.999).
    Objective,
    /// Good over all, per window.
    Sli,
    /// Bad over all, per window.
    ErrorRatio,
    /// Error ratio over the error budget ratio, per window.
    BurnRate,
    /// The fraction of the error budget left over the SLO's window.
    BudgetRemaining,
    /// Events per second, per window.
    EventsRate,
    /// Good events per second, per window.
    GoodEventsRate,
    /// Events counted, as a counter.
    EventsTotal,
    /// Good events counted, as a counter.
    GoodEventsTotal,
    /// A quantile of span durations, per window (SLIs of spans only).
    LatencySeconds,
}

impl Metric {
    /// Every metric, in the order they are listed.
    pub const ALL: [Metric; 10] = [
        Metric::Objective,
        Metric::Sli,
        Metric::ErrorRatio,
        Metric::BurnRate,
        Metric::BudgetRemaining,
        Metric::EventsRate,
        Metric::GoodEventsRate,
        Metric::EventsTotal,
        Metric::GoodEventsTotal,
        Metric::LatencySeconds,
    ];

    /// The metric's name.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Objective => "slotel_slo_objective",
            Metric::Sli => "slotel_slo_sli",
            Metric::ErrorRatio => "slotel_slo_error_ratio",
            Metric::BurnRate => "slotel_slo_burn_rate",
            Metric::BudgetRemaining => "slotel_slo_error_budget_remaining",
            Metric::EventsRate => "slotel_slo_events_rate",
            Metric::GoodEventsRate => "slotel_slo_good_events_rate",
            Metric::EventsTotal => "slotel_slo_events_total",
            Metric::GoodEventsTotal => "slotel_slo_good_events_total",
            Metric::LatencySeconds => "slotel_slo_latency_seconds",
        }
    }

    /// What it means, for `/api/v1/metadata` and `/metrics`.
    pub fn help(self) -> &'static str {
        match self {
            Metric::Objective => "The SLO's objective, as a ratio.",
            Metric::Sli => "The SLI over the window: good over all (events or slices).",
            Metric::ErrorRatio => "Bad over all over the window: 1 - SLI.",
            Metric::BurnRate => {
                "How fast the error budget burns over the window: 1 spends it exactly over the SLO window."
            }
            Metric::BudgetRemaining => {
                "The fraction of the error budget left over the SLO window (negative when overspent)."
            }
            Metric::EventsRate => "Events per second over the window.",
            Metric::GoodEventsRate => "Good events per second over the window.",
            Metric::EventsTotal => {
                "Events counted, from the first minute the query reads: use rate() or increase()."
            }
            Metric::GoodEventsTotal => {
                "Good events counted, from the first minute the query reads: use rate() or increase()."
            }
            Metric::LatencySeconds => {
                "The span duration at the quantile over the window, in seconds: the upper end of its histogram bucket, at most 1% above the true value."
            }
        }
    }

    /// Prometheus' metric type.
    pub fn kind(self) -> &'static str {
        match self {
            Metric::EventsTotal | Metric::GoodEventsTotal => "counter",
            _ => "gauge",
        }
    }

    /// Whether the metric has one series per window.
    pub fn windowed(self) -> bool {
        matches!(
            self,
            Metric::Sli
                | Metric::ErrorRatio
                | Metric::BurnRate
                | Metric::EventsRate
                | Metric::GoodEventsRate
        )
    }
}

/// The quantiles of `slotel_slo_latency_seconds`.
pub const LATENCY_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// The windows of `slotel_slo_latency_seconds`, in minutes.
pub const LATENCY_WINDOWS: [u32; 3] = [1, 5, 60];

/// Labels that slotel sets and an SLO's own labels cannot replace.
pub const RESERVED: [&str; 6] = ["__name__", "slo", "service", "tenant", "window", "quantile"];

/// The `window` label of the series over each SLO's own window, whatever its length: a
/// dashboard over SLOs of 7, 28 and 30 days selects them all with `window="slo"`.
pub const SLO_WINDOW: &str = "slo";

/// Label names slotel sets on its series.
pub mod label {
    /// The metric name.
    pub const NAME: &str = "__name__";
    /// The SLO.
    pub const SLO: &str = "slo";
    /// The SLO's service.
    pub const SERVICE: &str = "service";
    /// The SLO's tenant.
    pub const TENANT: &str = "tenant";
    /// The window a series is over (`5m`, …, or [`super::SLO_WINDOW`]).
    pub const WINDOW: &str = "window";
    /// The quantile of a latency series.
    pub const QUANTILE: &str = "quantile";
}

/// The name of the active-alert series.
pub const ALERT_METRIC: &str = "slotel_slo_alert";

/// The name of the burn-rate tier state series.
pub const TIER_STATE_METRIC: &str = "slotel_slo_alert_state";

/// slotel's own metrics kept in the health history, by sample name. Series with a
/// `tenant` label are served to that tenant only.
pub const HEALTH_METRICS: [&str; 15] = [
    "slotel_ingest_requests_total",
    "slotel_ingest_items_received_total",
    "slotel_ingest_items_accepted_total",
    "slotel_ingest_items_refused_total",
    "slotel_queue_batches",
    "slotel_queue_bytes",
    "slotel_wal_bytes",
    "slotel_wal_capacity_bytes",
    "slotel_wal_lag_bytes",
    "slotel_engine_events_too_old_total",
    "slotel_engine_events_in_future_total",
    "slotel_engine_newest_event_age_seconds",
    "slotel_alerts_firing",
    "slotel_notifications_failed_total",
    "slotel_storage_write_errors_total",
];
