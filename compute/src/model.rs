//! The validated SLO model that every spec format is translated into.

use std::fmt;

/// Minutes in the standard burn-rate windows reported for every SLO.
pub const BURN_RATE_WINDOWS: [u32; 7] = [5, 30, 60, 120, 360, 1440, 4320];

/// One validated SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SloDef {
    /// Unique per tenant.
    pub name: String,
    /// The tenant the SLO belongs to.
    pub tenant: String,
    /// The `service.name` resource attribute of the events it counts.
    pub service: String,
    /// Free text for people.
    pub description: Option<String>,
    /// The objective in percent (e.g. 99.9), strictly between 0 and 100.
    pub objective: f64,
    /// The rolling window the SLI and the budget are computed over.
    pub window: Window,
    /// What the SLO counts and what makes an event good.
    pub sli: Sli,
}

impl SloDef {
    /// The objective as a ratio (99.9 → 0.999).
    pub fn objective_ratio(&self) -> f64 {
        self.objective / 100.0
    }
}

/// A rolling window, whole minutes long, ending at the current minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Its length in minutes.
    pub minutes: u32,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minutes(self.minutes))
    }
}

/// Formats a minute count in the largest unit that divides it: `30d`, `6h`, `90m`.
pub fn format_minutes(minutes: u32) -> String {
    if minutes > 0 && minutes % 1440 == 0 {
        format!("{}d", minutes / 1440)
    } else if minutes > 0 && minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The service level indicator: which events count, and which of them are good.
#[derive(Debug, Clone, PartialEq)]
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
        /// Log record attributes that must equal the given values.
        attributes: Vec<(String, AttrValue)>,
        /// Good when the record's severity number is at most this (unset, 0, is good).
        max_severity: i32,
    },
}

/// Selects the data points of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSelector {
    /// The OTLP metric name, e.g. `http.server.requests`.
    pub name: String,
    /// Data point attributes that must equal the given values.
    pub attributes: Vec<(String, AttrValue)>,
}

impl SloDef {
    /// Whether the SLO's windows count bad events rather than good ones (a bad/total
    /// metric ratio): the good count is then total − bad.
    pub fn counts_bad(&self) -> bool {
        matches!(&self.sli, Sli::MetricRatio { bad: Some(_), .. })
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

/// OTLP span kinds, as their protobuf values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// `SPAN_KIND_INTERNAL` (and `UNSPECIFIED`, which receivers may treat as internal).
    Internal,
    /// `SPAN_KIND_SERVER`.
    Server,
    /// `SPAN_KIND_CLIENT`.
    Client,
    /// `SPAN_KIND_PRODUCER`.
    Producer,
    /// `SPAN_KIND_CONSUMER`.
    Consumer,
}

impl SpanKind {
    /// Whether the OTLP `kind` value is this kind.
    pub fn matches(self, kind: i32) -> bool {
        match self {
            SpanKind::Internal => kind == 1 || kind == 0,
            SpanKind::Server => kind == 2,
            SpanKind::Client => kind == 3,
            SpanKind::Producer => kind == 4,
            SpanKind::Consumer => kind == 5,
        }
    }
}

/// Which spans of the SLO's service count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanSelector {
    /// The span kind, any when unset.
    pub kind: Option<SpanKind>,
    /// The exact span name.
    pub span_name: Option<String>,
    /// The exact `http.route` attribute.
    pub http_route: Option<String>,
    /// Span attributes that must equal the given values.
    pub attributes: Vec<(String, AttrValue)>,
}

/// An attribute value in a selector.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    String(String),
}

/// What makes a span good. Every rule that is set must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoodRule {
    /// The span status rule, if any.
    pub status: Option<StatusRule>,
    /// Good only when the duration (end − start) is at most this many nanoseconds.
    pub max_duration_nanos: Option<u64>,
}

/// Span status rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusRule {
    /// Good unless the status is `ERROR` (so `UNSET` and `OK` are good).
    NotError,
    /// Good only when the status is `OK`.
    Ok,
}
