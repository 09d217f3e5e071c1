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
    /// Labels for routing and grouping (team, tier, …), carried into status and alerts.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations for people (runbook, dashboard, …).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The objective in percent (e.g. 99.9), strictly between 0 and 100.
    pub objective: f64,
    /// The rolling window the SLI and the budget are computed over.
    pub window: Window,
    /// Windows with fewer events than this are flagged `low_traffic` (0: never).
    pub min_events: u64,
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
    }

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
        /// Log record attribute matchers; all must hold.
        attributes: Vec<(String, AttrMatch)>,
        /// Good when the record's severity number is at most this (unset, 0, is good).
        max_severity: i32,
    },
}

/// Selects the data points of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSelector {
    /// The OTLP metric name, e.g. `http.server.requests`.
    pub name: String,
    /// Data point attribute matchers; all must hold.
    pub attributes: Vec<(String, AttrMatch)>,
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
    /// Span attribute matchers; all must hold.
    pub attributes: Vec<(String, AttrMatch)>,
    /// Resource attribute matchers; all must hold.
    pub resource: Vec<(String, AttrMatch)>,
}

/// A test on one attribute.
#[derive(Debug, Clone)]
pub enum AttrMatch {
    /// Present and equal (`key: value`, or `{eq: value}`).
    Eq(AttrValue),
    /// Absent or different (`{not: value}`).
    Ne(AttrValue),
    /// Present and equal to one of the values (`{in: [a, b]}`).
    In(Vec<AttrValue>),
    /// A string matching the whole regular expression (`{regex: "^/api/.*"}`, anchored
    /// at both ends as in PromQL).
    Regex(regex::Regex),
    /// Present (`{exists: true}`) or absent (`{exists: false}`).
    Exists(bool),
}

impl PartialEq for AttrMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AttrMatch::Eq(a), AttrMatch::Eq(b)) | (AttrMatch::Ne(a), AttrMatch::Ne(b)) => a == b,
            (AttrMatch::In(a), AttrMatch::In(b)) => a == b,
            (AttrMatch::Regex(a), AttrMatch::Regex(b)) => a.as_str() == b.as_str(),
            (AttrMatch::Exists(a), AttrMatch::Exists(b)) => a == b,
            _ => false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for AttrMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AttrMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, or one of {eq: v}, {not: v}, {in: [v, ...]}, {regex: \"...\"}, {exists: true|false}")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Int(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AttrMatch, E> {
                i64::try_from(v)
                    .map(|v| AttrMatch::Eq(AttrValue::Int(v)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Double(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::String(v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AttrMatch, A::Error> {
                use serde::de::Error;
                let Some(op) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "an empty matcher: use one of eq, not, in, regex, exists",
                    ));
                };
                let m = match op.as_str() {
                    "eq" => AttrMatch::Eq(map.next_value()?),
                    "not" => AttrMatch::Ne(map.next_value()?),
                    "in" => AttrMatch::In(map.next_value()?),
                    "exists" => AttrMatch::Exists(map.next_value()?),
                    "regex" => {
                        let pattern: String = map.next_value()?;
                        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                            // The regex crate's message draws the pattern over several
                            // lines; its last line says what is wrong.
                            let e = e.to_string();
                            let why = e.lines().last().unwrap_or_default();
                            let why = why.trim().trim_start_matches("error: ");
                            A::Error::custom(format!(
                                "invalid regular expression {pattern:?}: {why}"
                            ))
                        })?;
                        AttrMatch::Regex(re)
                    }
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown matcher {other:?}: use one of eq, not, in, regex, exists"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(
                        "a matcher takes exactly one of eq, not, in, regex, exists",
                    ));
                }
                Ok(m)
            }
        }
        d.deserialize_any(V)
    }
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
    /// Good only when the HTTP response status code matches one of these.
    pub http_status: Option<Vec<HttpStatus>>,
    /// Good only when the HTTP response status code (if any) matches none of these.
    pub not_http_status: Option<Vec<HttpStatus>>,
    /// Good only when every one of these holds.
    pub all_of: Vec<GoodRule>,
    /// Good only when at least one of these holds (when not empty).
    pub any_of: Vec<GoodRule>,
}

impl GoodRule {
    /// Whether the rule tests anything at all.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.max_duration_nanos.is_none()
            && self.http_status.is_none()
            && self.not_http_status.is_none()
            && self.all_of.is_empty()
            && self.any_of.is_empty()
    }
}

/// An HTTP status code (`404`) or class (`4xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpStatus {
    /// One code.
    Code(u16),
    /// A class: 1 for 1xx … 5 for 5xx.
    Class(u8),
}

impl HttpStatus {
    /// Parses `404` or `4xx`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(c) = s.strip_suffix("xx") {
            return match c.parse::<u8>() {
                Ok(c @ 1..=5) if s.len() == 3 => Some(HttpStatus::Class(c)),
                _ => None,
            };
        }
        match s.parse::<u16>() {
            Ok(code @ 100..=599) => Some(HttpStatus::Code(code)),
            _ => None,
        }
    }

    /// Whether `code` is this code or in this class.
    pub fn matches(self, code: i64) -> bool {
        match self {
            HttpStatus::Code(c) => code == i64::from(c),
            HttpStatus::Class(c) => code / 100 == i64::from(c),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HttpStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HttpStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status code (404) or class (4xx)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HttpStatus, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HttpStatus, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HttpStatus, E> {
                HttpStatus::parse(v).ok_or_else(|| {
                    E::custom(format!("invalid HTTP status {v:?}: use a code from 100 to 599 or a class 1xx to 5xx"))
                })
            }
        }
        d.deserialize_any(V)
    }
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
