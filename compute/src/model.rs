//! The validated SLO model that every spec format is translated into.

use std::fmt;

/// Attributes an SLO may be grouped by.
pub const MAX_GROUP_BY: usize = 4;

/// Minutes in the standard burn-rate windows reported for every SLO.
pub const BURN_RATE_WINDOWS: [u32; 7] = [5, 30, 60, 120, 360, 1440, 4320];

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
    /// Windows with fewer events than this are flagged `low_traffic` (0: never).
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

/// The window an SLO's SLI and budget are computed over.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The last `minutes` whole minutes, the current one included.
    Rolling {
        /// Its length in minutes.
        minutes: u32,
    },
    /// The calendar period holding now, in a time zone: from its first minute to now.
    Calendar {
        /// Week (from Monday), month or quarter.
        unit: CalendarUnit,
        /// The IANA time zone the period is counted in.
        tz: NamedTz,
    },
}

/// Calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    /// Monday 00:00 to Sunday 24:00.
    Week,
    /// The first of the month 00:00 to the end of the month.
    Month,
    /// January, April, July or October 1st 00:00, for three months.
    Quarter,
}

/// An IANA time zone with its name.
#[derive(Debug, Clone)]
pub struct NamedTz {
    /// The name, e.g. `Europe/Berlin`.
    pub name: String,
    /// The zone's rules.
    pub tz: jiff::tz::TimeZone,
}

impl serde::Serialize for NamedTz {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl serde::Serialize for AttrMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            AttrMatch::Eq(v) => m.serialize_entry("eq", v)?,
            AttrMatch::Ne(v) => m.serialize_entry("not", v)?,
            AttrMatch::In(v) => m.serialize_entry("in", v)?,
            AttrMatch::Regex(r) => m.serialize_entry("regex", r.as_str())?,
            AttrMatch::NotRegex(r) => m.serialize_entry("not_regex", r.as_str())?,
            AttrMatch::Exists(b) => m.serialize_entry("exists", b)?,
        }
        m.end()
    }
}

impl serde::Serialize for HttpStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HttpStatus::Code(c) => s.serialize_str(&c.to_string()),
            HttpStatus::Class(c) => s.serialize_str(&format!("{c}xx")),
        }
    }
}

impl PartialEq for NamedTz {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl NamedTz {
    /// Looks up `name` in the bundled time zone database.
    pub fn get(name: &str) -> Option<Self> {
        jiff::tz::TimeZone::get(name).ok().map(|tz| Self {
            name: name.to_string(),
            tz,
        })
    }
}

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

impl Window {
    /// A rolling window of `minutes`.
    pub const fn rolling(minutes: u32) -> Self {
        Window::Rolling { minutes }
    }

    /// The most minutes the window can span (a calendar period's longest case, DST
    /// included).
    pub fn max_minutes(&self) -> u32 {
        match self {
            Window::Rolling { minutes } => *minutes,
            Window::Calendar { unit, .. } => {
                let days = match unit {
                    CalendarUnit::Week => 7,
                    CalendarUnit::Month => 31,
                    CalendarUnit::Quarter => 92,
                };
                days * 1440 + 60
            }
        }
    }

    /// The start of the window at `now` (nanoseconds since the epoch): for a rolling
    /// window the start of its first minute; for a calendar window the start of the
    /// period, in its time zone.
    pub fn start_nanos(&self, now: i64) -> i64 {
        match self {
            Window::Rolling { minutes } => {
                (now.div_euclid(NANOS_PER_MINUTE) - i64::from(*minutes) + 1) * NANOS_PER_MINUTE
            }
            Window::Calendar { unit, tz } => calendar_bounds(*unit, &tz.tz, now).0,
        }
    }

    /// The minutes the window covers at `now`: the current minute and those before it
    /// back to the window's start.
    pub fn minutes_at(&self, now: i64) -> u32 {
        match self {
            Window::Rolling { minutes } => *minutes,
            Window::Calendar { .. } => {
                let start = self.start_nanos(now).div_euclid(NANOS_PER_MINUTE);
                (now.div_euclid(NANOS_PER_MINUTE) - start + 1).max(1) as u32
            }
        }
    }

    /// The window's full length in seconds at `now` (a calendar period's whole length,
    /// not only its elapsed part): what a burn rate of 1 spends the budget over.
    pub fn length_seconds(&self, now: i64) -> f64 {
        match self {
            Window::Rolling { minutes } => f64::from(*minutes) * 60.0,
            Window::Calendar { unit, tz } => {
                let (start, end) = calendar_bounds(*unit, &tz.tz, now);
                (end - start) as f64 / 1e9
            }
        }
    }
}

/// The start and end (nanoseconds) of the calendar period holding `now` in `tz`.
pub fn calendar_bounds(unit: CalendarUnit, tz: &jiff::tz::TimeZone, now: i64) -> (i64, i64) {
    use jiff::ToSpan;
    let Ok(ts) = jiff::Timestamp::from_nanosecond(i128::from(now)) else {
        return (now, now);
    };
    let date = ts.to_zoned_datetime(tz.clone()).date();
    let (start, next) = match unit {
        CalendarUnit::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            let start = date.checked_sub(back.days()).unwrap_or(date);
            (start, start.checked_add(7.days()).unwrap_or(start))
        }
        CalendarUnit::Month => {
            let start = date.first_of_month();
            (start, start.checked_add(1.month()).unwrap_or(start))
        }
        CalendarUnit::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            let start = jiff::civil::Date::new(date.year(), month, 1).unwrap_or(date);
            (start, start.checked_add(3.months()).unwrap_or(start))
        }
    };
    let at = |d: jiff::civil::Date| {
        d.to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp().as_nanosecond() as i64)
            .unwrap_or(now)
    };
    (at(start), at(next))
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Rolling { minutes } => f.write_str(&format_minutes(*minutes)),
            Window::Calendar { unit, .. } => f.write_str(match unit {
                CalendarUnit::Week => "week",
                CalendarUnit::Month => "month",
                CalendarUnit::Quarter => "quarter",
            }),
        }
    }
}

/// A percentage as a ratio without the binary noise of `/ 100` (99.9 → 0.999, not
/// 0.9990000000000001): objectives have at most six decimals.
pub fn percent_to_ratio(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e8
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
}

impl SloDef {
    /// Whether the SLO's windows count bad events rather than good ones (a bad/total
    /// metric ratio): the good count is then total − bad.
    pub fn counts_bad(&self) -> bool {
        matches!(&self.sli, Sli::MetricRatio { bad: Some(_), .. })
    }

    /// Whether each event has a duration (spans): such SLOs keep per-minute latency
    /// histograms for display quantiles.
    pub fn has_durations(&self) -> bool {
        matches!(&self.sli, Sli::Spans { .. })
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
    /// Absent, or a value that is not a string matching the whole regular expression
    /// (`{not_regex: "..."}`).
    NotRegex(regex::Regex),
    /// Present (`{exists: true}`) or absent (`{exists: false}`).
    Exists(bool),
}

/// Compiles a regular expression anchored at both ends, as PromQL does; the error is a
/// sentence for people.
pub fn anchored_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The regex crate draws the pattern over several lines; the last says what is wrong.
        let e = e.to_string();
        let why = e.lines().last().unwrap_or_default();
        let why = why.trim().trim_start_matches("error: ");
        format!("invalid regular expression {pattern:?}: {why}")
    })
}

impl PartialEq for AttrMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AttrMatch::Eq(a), AttrMatch::Eq(b)) | (AttrMatch::Ne(a), AttrMatch::Ne(b)) => a == b,
            (AttrMatch::In(a), AttrMatch::In(b)) => a == b,
            (AttrMatch::Regex(a), AttrMatch::Regex(b))
            | (AttrMatch::NotRegex(a), AttrMatch::NotRegex(b)) => a.as_str() == b.as_str(),
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
                f.write_str("a value, or one of {eq: v}, {not: v}, {in: [v, ...]}, {regex: \"...\"}, {not_regex: \"...\"}, {exists: true|false}")
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
                        AttrMatch::Regex(anchored_regex(&pattern).map_err(A::Error::custom)?)
                    }
                    "not_regex" => {
                        let pattern: String = map.next_value()?;
                        AttrMatch::NotRegex(anchored_regex(&pattern).map_err(A::Error::custom)?)
                    }
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown matcher {other:?}: use one of eq, not, in, regex, not_regex, exists"
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
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusRule {
    /// Good unless the status is `ERROR` (so `UNSET` and `OK` are good).
    NotError,
    /// Good only when the status is `OK`.
    Ok,
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    fn cal(unit: CalendarUnit, tz: &str) -> Window {
        Window::Calendar {
            unit,
            tz: NamedTz::get(tz).unwrap(),
        }
    }

    #[test]
    fn month_lengths_and_the_leap_day() {
        let utc = cal(CalendarUnit::Month, "UTC");
        // February 2028 has 29 days, 2027 has 28.
        assert_eq!(
            utc.length_seconds(ns("2028-02-15T12:00:00Z")),
            29.0 * 86_400.0
        );
        assert_eq!(
            utc.length_seconds(ns("2027-02-15T12:00:00Z")),
            28.0 * 86_400.0
        );
        assert_eq!(
            utc.length_seconds(ns("2027-01-31T23:59:00Z")),
            31.0 * 86_400.0
        );
        // On the leap day itself, 28 whole days and 12 hours have passed (+1 minute).
        let now = ns("2028-02-29T12:00:00Z");
        assert_eq!(utc.start_nanos(now), ns("2028-02-01T00:00:00Z"));
        assert_eq!(utc.minutes_at(now), 28 * 1440 + 720 + 1);
        // The first minute of a month is a window of one minute.
        assert_eq!(utc.minutes_at(ns("2028-03-01T00:00:30Z")), 1);
    }

    #[test]
    fn periods_start_at_local_midnight_across_dst() {
        let berlin = cal(CalendarUnit::Month, "Europe/Berlin");
        // 1 March 2026 00:00 in Berlin is 28 February 23:00 UTC.
        let now = ns("2026-03-31T12:00:00Z");
        assert_eq!(berlin.start_nanos(now), ns("2026-02-28T23:00:00Z"));
        // March 2026 loses an hour on the 29th: 31 days less 1 hour.
        assert_eq!(berlin.length_seconds(now), 31.0 * 86_400.0 - 3_600.0);
        // October gains one.
        assert_eq!(
            berlin.length_seconds(ns("2026-10-15T00:00:00Z")),
            31.0 * 86_400.0 + 3_600.0
        );
        // Just before local midnight on the last day, UTC is still in the month; after, not.
        assert_eq!(
            berlin.start_nanos(ns("2026-03-31T21:59:00Z")),
            ns("2026-02-28T23:00:00Z")
        );
        assert_eq!(
            berlin.start_nanos(ns("2026-03-31T22:00:00Z")),
            ns("2026-03-31T22:00:00Z")
        );
        // New York: the week of Monday 2 March 2026 holds the spring-forward Sunday (the
        // 8th) and is 167 hours long; it starts at local midnight, 05:00 UTC (EST), and
        // the next one at 04:00 UTC (EDT).
        let ny = cal(CalendarUnit::Week, "America/New_York");
        assert_eq!(
            ny.start_nanos(ns("2026-03-06T12:00:00Z")),
            ns("2026-03-02T05:00:00Z")
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-06T12:00:00Z")),
            167.0 * 3_600.0
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-08T12:00:00Z")),
            167.0 * 3_600.0
        );
        assert_eq!(
            ny.start_nanos(ns("2026-03-10T12:00:00Z")),
            ns("2026-03-09T04:00:00Z")
        );
        assert_eq!(
            ny.length_seconds(ns("2026-03-10T12:00:00Z")),
            168.0 * 3_600.0
        );
    }

    #[test]
    fn weeks_start_on_monday_and_quarters_on_their_month() {
        let week = cal(CalendarUnit::Week, "UTC");
        // 29 November 2026 is a Sunday: the week began Monday the 23rd.
        assert_eq!(
            week.start_nanos(ns("2026-11-29T20:00:00Z")),
            ns("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            week.start_nanos(ns("2026-11-30T00:00:00Z")),
            ns("2026-11-30T00:00:00Z")
        );
        let q = cal(CalendarUnit::Quarter, "UTC");
        assert_eq!(
            q.start_nanos(ns("2026-11-29T20:00:00Z")),
            ns("2026-10-01T00:00:00Z")
        );
        assert_eq!(
            q.length_seconds(ns("2026-11-29T20:00:00Z")),
            92.0 * 86_400.0
        );
        assert_eq!(
            q.length_seconds(ns("2028-02-01T00:00:00Z")),
            91.0 * 86_400.0
        );
        assert!(q.max_minutes() >= 92 * 1440);
    }
}
