//! Parses slotel's native SLO YAML into [`SloDef`]s, reporting every problem found with
//! its file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

mod openslo;
mod sloth;

use crate::error::{Error, Result, SpecError};
use crate::model::{
    AttrMatch, BURN_RATE_WINDOWS, BudgetAlerts, Budgeting, CalendarUnit, GoodRule, HttpStatus,
    MAX_GROUP_BY, MetricSelector, NamedTz, Objective, Severity, Sli, SloDef, SpanKind,
    SpanSelector, StatusRule, TierOverride, Window, parse_severity,
};

/// Groups an SLO keeps unless it says otherwise.
pub const DEFAULT_MAX_GROUPS: usize = 100;
/// The most groups an SLO may keep.
pub const MAX_MAX_GROUPS: usize = 10_000;

/// The longest window accepted, in minutes (400 days).
pub const MAX_WINDOW_MINUTES: u32 = 400 * 1440;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    slos: Vec<RawSlo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: Spanned<String>,
    #[serde(default)]
    tenant: Option<Spanned<String>>,
    service: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    objective: Option<Spanned<f64>>,
    #[serde(default)]
    objectives: Option<Spanned<Vec<RawObjective>>>,
    #[serde(default)]
    budgeting: Option<Spanned<RawBudgeting>>,
    window: Spanned<RawWindow>,
    #[serde(default)]
    min_events: u64,
    #[serde(default)]
    policy: Option<RawPolicy>,
    #[serde(default)]
    alerting: Option<RawAlerting>,
    #[serde(default)]
    group_by: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    max_groups: Option<Spanned<usize>>,
    sli: RawSli,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSli {
    #[serde(default)]
    spans: Option<RawSpans>,
    #[serde(default)]
    logs: Option<RawLogs>,
    #[serde(default)]
    metrics: Option<RawMetricRatio>,
    #[serde(default)]
    histogram: Option<RawHistogram>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetricSelector {
    metric: Spanned<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
}

impl RawMetricSelector {
    fn into_model(self) -> MetricSelector {
        MetricSelector {
            name: self.metric.value,
            prometheus: false,
            attributes: self.attributes.into_iter().collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetricRatio {
    #[serde(default)]
    good: Option<RawMetricSelector>,
    #[serde(default)]
    bad: Option<RawMetricSelector>,
    total: RawMetricSelector,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistogram {
    metric: Spanned<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
    threshold: Spanned<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogs {
    #[serde(rename = "match", default)]
    selector: RawLogMatch,
    good: Spanned<RawLogGood>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogMatch {
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogGood {
    max_severity: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpans {
    #[serde(rename = "match", default)]
    selector: RawMatch,
    good: Spanned<RawGood>,
}

#[derive(Deserialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    #[serde(default)]
    span_kind: Option<SpanKind>,
    #[serde(default)]
    span_name: Option<String>,
    #[serde(default)]
    http_route: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
    #[serde(default)]
    resource: BTreeMap<String, AttrMatch>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGood {
    #[serde(default)]
    status: Option<StatusRule>,
    #[serde(default)]
    max_duration: Option<HumanDuration>,
    #[serde(default)]
    http_status: Option<Vec<HttpStatus>>,
    #[serde(default)]
    not_http_status: Option<Vec<HttpStatus>>,
    #[serde(default)]
    all_of: Vec<RawGood>,
    #[serde(default)]
    any_of: Vec<RawGood>,
}

impl RawGood {
    fn to_rule(&self) -> GoodRule {
        GoodRule {
            status: self.status,
            max_duration_nanos: self
                .max_duration
                .map(|d| u64::try_from(d.0.as_nanos()).unwrap_or(u64::MAX)),
            http_status: self.http_status.clone(),
            not_http_status: self.not_http_status.clone(),
            all_of: self.all_of.iter().map(RawGood::to_rule).collect(),
            any_of: self.any_of.iter().map(RawGood::to_rule).collect(),
        }
    }
}

/// `alerting: { tiers: { NAME: {...} } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    #[serde(default)]
    tiers: BTreeMap<String, Spanned<RawTier>>,
    #[serde(default)]
    exhaustion: Option<RawExhaustion>,
    #[serde(default)]
    budget_exhausted: Option<RawSeverityOnly>,
    #[serde(default)]
    no_data: Option<Spanned<RawNoData>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExhaustion {
    within: HumanDuration,
    #[serde(default)]
    severity: Option<Severity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeverityOnly {
    #[serde(default)]
    severity: Option<Severity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoData {
    after: HumanDuration,
    #[serde(default)]
    severity: Option<Severity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    long: Option<HumanDuration>,
    #[serde(default)]
    short: Option<HumanDuration>,
    #[serde(default, rename = "for")]
    for_duration: Option<HumanDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The default tiers' names.
pub const DEFAULT_TIERS: [&str; 4] = ["page-fast", "page-slow", "ticket-fast", "ticket-slow"];

/// `policy: { freeze_below: 0.1 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    freeze_below: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    #[serde(default)]
    name: Option<String>,
    target: Spanned<f64>,
}

/// `budgeting: occurrences`, `{timeslices: {slice: 5m, target: 95}}` or
/// `{ratio_timeslices: {slice: 5m}}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawBudgeting {
    Occurrences,
    Timeslices { slice: HumanDuration, target: f64 },
    RatioTimeslices { slice: HumanDuration },
}

/// `window: 30d` (rolling) or `window: { calendar: month, time_zone: Europe/Berlin }`.
#[derive(Debug, Clone)]
pub(crate) enum RawWindow {
    Rolling(Duration),
    Calendar {
        unit: CalendarUnit,
        time_zone: Option<String>,
    },
}

impl<'de> Deserialize<'de> for RawWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawWindow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rolling window such as 30d, or {calendar: week|month|quarter, time_zone: NAME}")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                s: &str,
            ) -> std::result::Result<Self::Value, E> {
                parse_duration(s).map(RawWindow::Rolling).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                use serde::de::Error;
                let (mut unit, mut time_zone) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "calendar" => unit = Some(map.next_value::<CalendarUnit>()?),
                        "time_zone" => time_zone = Some(map.next_value::<String>()?),
                        other => {
                            return Err(A::Error::custom(format!(
                                "unknown window key {other:?}: use calendar and time_zone"
                            )));
                        }
                    }
                }
                let unit = unit.ok_or_else(|| {
                    A::Error::custom("a calendar window needs calendar: week, month or quarter")
                })?;
                Ok(RawWindow::Calendar { unit, time_zone })
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration written the way people write them: `300ms`, `1.5s`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 300ms, 2s, 6h or 30d")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                s: &str,
            ) -> std::result::Result<Self::Value, E> {
                parse_duration(s).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses `300ms`, `1.5s`, `6h`, `30d` (units ns, us, ms, s, m, h, d, w).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("invalid duration {s:?}: it needs a unit (ms, s, m, h, d, w)"))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: {num:?} is not a number"))?;
    let nanos_per_unit: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "w" => 604_800e9,
        other => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {other:?} (use ns, us, ms, s, m, h, d or w)"
            ));
        }
    };
    let nanos = (value * nanos_per_unit).round();
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(format!("invalid duration {s:?}: too long"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Where an SLO was defined, to point at it in later errors.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    file: PathBuf,
    line: u64,
    column: u64,
}

/// Collects the problems of one document; positions are shifted by `line_offset`
/// (the document's first line in its file, less one).
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) errors: Vec<SpecError>,
    pub(crate) line_offset: u64,
}

impl Ctx<'_> {
    pub(crate) fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let line = at.referenced.line();
        self.errors.push(SpecError {
            file: self.file.to_path_buf(),
            line: if line == 0 {
                0
            } else {
                line + self.line_offset
            },
            column: at.referenced.column(),
            message: message.into(),
        });
    }

    pub(crate) fn origin<T>(&self, at: &Spanned<T>) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: at.referenced.line() + self.line_offset,
            column: at.referenced.column(),
        }
    }
}

/// Parses one native SLO document. `file` is only used in error messages.
pub fn parse_native(file: &Path, text: &str) -> std::result::Result<Vec<SloDef>, Vec<SpecError>> {
    let (defs, errors) = parse_with_origin(file, text);
    if errors.is_empty() {
        Ok(defs.into_iter().map(|(d, _)| d).collect())
    } else {
        Err(errors)
    }
}

/// The valid SLOs of a document and the problems of the others, so that later checks
/// (duplicate names) can still look at the valid ones.
fn parse_with_origin(file: &Path, text: &str) -> (Vec<(SloDef, Origin)>, Vec<SpecError>) {
    let raw: RawFile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return (Vec::new(), vec![yaml_error(file, &e)]),
    };
    let mut ctx = Ctx {
        file,
        errors: Vec::new(),
        line_offset: 0,
    };
    let mut out = Vec::with_capacity(raw.slos.len());
    for slo in raw.slos {
        if let Some(def) = validate(&mut ctx, slo) {
            out.push(def);
        }
    }
    (out, ctx.errors)
}

pub(crate) fn yaml_error(file: &Path, e: &serde_saphyr::Error) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    SpecError {
        file: file.to_path_buf(),
        line,
        column,
        message: first_line(&e.to_string()),
    }
}

/// The message of a YAML error without the rendered source snippet.
fn first_line(rendered: &str) -> String {
    let line = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // Custom errors arrive as "line L column C: message"; ours puts the position first.
    let line = match line.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, msg)) if pos.contains(" column ") => msg,
        _ => line,
    };
    // The parser appends its own position; ours comes first in the message.
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

pub(crate) fn slice_minutes<T>(ctx: &mut Ctx<'_>, at: &Spanned<T>, slice: Duration) -> u32 {
    let minutes = slice.as_secs() / 60;
    if slice.as_nanos() % 60_000_000_000 != 0 || minutes == 0 || minutes > 1440 {
        ctx.err(
            at,
            format!("the slice {slice:?} must be whole minutes, from 1m to 1d"),
        );
        return 1;
    }
    minutes as u32
}

/// The model of a `window:` value.
pub(crate) fn window_of(ctx: &mut Ctx<'_>, window: &Spanned<RawWindow>) -> Window {
    match &window.value {
        RawWindow::Rolling(length) => {
            let length = *length;
            let minutes = length.as_secs() / 60;
            if length.as_nanos() % 60_000_000_000 != 0 || minutes == 0 {
                ctx.err(
                    window,
                    format!("window {length:?} must be a whole number of minutes, at least 1m"),
                );
            } else if minutes > u64::from(MAX_WINDOW_MINUTES) {
                ctx.err(window, "window is longer than the maximum of 400d");
            }
            Window::rolling(minutes as u32)
        }
        RawWindow::Calendar { unit, time_zone } => {
            let name = time_zone.as_deref().unwrap_or("UTC");
            match NamedTz::get(name) {
                Some(tz) => Window::Calendar { unit: *unit, tz },
                None => {
                    ctx.err(
                        window,
                        format!(
                            "unknown time zone {name:?}: use an IANA name such as Europe/Berlin"
                        ),
                    );
                    Window::rolling(1)
                }
            }
        }
    }
}

/// The model of an `sli:` value; errors are reported at `at` when no part fits.
pub(crate) fn sli_of(ctx: &mut Ctx<'_>, at: &Spanned<String>, sli: RawSli) -> Option<Sli> {
    match (sli.spans, sli.logs, sli.metrics, sli.histogram) {
        (Some(spans), None, None, None) => {
            let good = spans.good.value.to_rule();
            if good.is_empty() {
                ctx.err(
                    &spans.good,
                    "good needs at least one rule: status, max_duration, http_status, not_http_status, all_of or any_of",
                );
            }
            let sel = spans.selector;
            Some(Sli::Spans {
                selector: SpanSelector {
                    kind: sel.span_kind,
                    span_name: sel.span_name,
                    http_route: sel.http_route,
                    attributes: sel.attributes.into_iter().collect(),
                    resource: sel.resource.into_iter().collect(),
                },
                good,
            })
        }
        (None, None, Some(m), None) => match (m.good, m.bad) {
            (Some(good), None) => Some(Sli::MetricRatio {
                good: Some(good.into_model()),
                bad: None,
                total: m.total.into_model(),
            }),
            (None, Some(bad)) => Some(Sli::MetricRatio {
                good: None,
                bad: Some(bad.into_model()),
                total: m.total.into_model(),
            }),
            _ => {
                ctx.err(
                    &m.total.metric,
                    "a metrics SLI needs exactly one of good or bad beside total",
                );
                None
            }
        },
        (None, None, None, Some(h)) => {
            let t = h.threshold.value.0;
            if t.is_zero() {
                ctx.err(&h.threshold, "the threshold must be above zero");
            }
            Some(Sli::MetricLatency {
                metric: MetricSelector {
                    name: h.metric.value,
                    prometheus: false,
                    attributes: h.attributes.into_iter().collect(),
                },
                threshold_seconds: t.as_secs_f64(),
            })
        }
        (None, Some(logs), None, None) => match parse_severity(&logs.good.value.max_severity.value)
        {
            Some(max_severity) => Some(Sli::Logs {
                attributes: logs.selector.attributes.into_iter().collect(),
                max_severity,
            }),
            None => {
                ctx.err(
                    &logs.good.value.max_severity,
                    format!(
                        "unknown severity {:?}: use trace, debug, info, warn, error or fatal, optionally with 1-4 (e.g. warn2)",
                        logs.good.value.max_severity.value
                    ),
                );
                None
            }
        },
        _ => {
            ctx.err(
                at,
                "sli needs exactly one of spans, logs, metrics or histogram",
            );
            None
        }
    }
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && name.len() <= 128
}

fn validate(ctx: &mut Ctx<'_>, raw: RawSlo) -> Option<(SloDef, Origin)> {
    let before = ctx.errors.len();
    if !is_valid_name(&raw.name.value) {
        ctx.err(
            &raw.name,
            format!(
                "invalid SLO name {:?}: use 1 to 128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit",
                raw.name.value
            ),
        );
    }
    let tenant = match &raw.tenant {
        Some(t) if !is_valid_name(&t.value) => {
            ctx.err(t, format!("invalid tenant {:?}", t.value));
            String::new()
        }
        Some(t) => t.value.clone(),
        None => slotel_proto::DEFAULT_TENANT.to_string(),
    };
    if raw.service.value.trim().is_empty() {
        ctx.err(&raw.service, "service must not be empty");
    }
    let mut objectives = Vec::new();
    let check_target = |ctx: &mut Ctx<'_>, at: &Spanned<f64>| {
        let o = at.value;
        if !(o > 0.0 && o < 100.0) {
            ctx.err(
                at,
                format!(
                    "objective {o} is out of range: it is a percentage above 0 and below 100, e.g. 99.9"
                ),
            );
        }
        o
    };
    match (&raw.objective, &raw.objectives) {
        (Some(o), None) => objectives.push(Objective {
            name: "default".into(),
            target: check_target(ctx, o),
        }),
        (None, Some(list)) if !list.value.is_empty() => {
            for (i, o) in list.value.iter().enumerate() {
                let name = o
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("objective-{}", i + 1));
                if objectives.iter().any(|x: &Objective| x.name == name) {
                    ctx.err(&o.target, format!("objective {name:?} is named twice"));
                }
                objectives.push(Objective {
                    name,
                    target: check_target(ctx, &o.target),
                });
            }
        }
        _ => ctx.err(
            &raw.name,
            "an SLO needs objective: PERCENT, or objectives: a non-empty list of {name, target}",
        ),
    }
    let budgeting = match &raw.budgeting {
        None => Budgeting::Occurrences,
        Some(b) => match &b.value {
            RawBudgeting::Occurrences => Budgeting::Occurrences,
            RawBudgeting::Timeslices { slice, target } => {
                if !(*target > 0.0 && *target <= 100.0) {
                    ctx.err(
                        b,
                        format!("the slice target {target} is a percentage above 0, at most 100"),
                    );
                }
                Budgeting::Timeslices {
                    slice_minutes: slice_minutes(ctx, b, slice.0),
                    slice_target: target / 100.0,
                }
            }
            RawBudgeting::RatioTimeslices { slice } => Budgeting::RatioTimeslices {
                slice_minutes: slice_minutes(ctx, b, slice.0),
            },
        },
    };
    let window = window_of(ctx, &raw.window);
    let sli = sli_of(ctx, &raw.name, raw.sli);
    let group_by = raw
        .group_by
        .as_ref()
        .map(|g| g.value.clone())
        .unwrap_or_default();
    if let Some(g) = &raw.group_by
        && (g.value.is_empty() || g.value.len() > MAX_GROUP_BY)
    {
        ctx.err(
            g,
            format!("group_by takes 1 to {MAX_GROUP_BY} attribute names"),
        );
    }
    let freeze_below = raw.policy.as_ref().map_or(0.0, |p| p.freeze_below.value);
    if let Some(p) = &raw.policy
        && !(0.0..1.0).contains(&p.freeze_below.value)
    {
        ctx.err(
            &p.freeze_below,
            "freeze_below is the fraction of the budget left below which releases stop: from 0 up to 1",
        );
    }
    let mut alert_tiers = BTreeMap::new();
    for (name, t) in raw.alerting.iter().flat_map(|a| a.tiers.iter()) {
        let standard = |d: &Option<HumanDuration>| -> Option<Option<u32>> {
            match d {
                None => Some(None),
                Some(d) => {
                    let m = (d.0.as_secs() / 60) as u32;
                    (d.0.as_secs() % 60 == 0 && BURN_RATE_WINDOWS.contains(&m)).then_some(Some(m))
                }
            }
        };
        let (Some(long), Some(short)) = (standard(&t.value.long), standard(&t.value.short)) else {
            ctx.err(t, format!("the windows of tier {name:?} must be standard burn-rate windows: 5m, 30m, 1h, 2h, 6h, 1d or 3d"));
            continue;
        };
        let custom = !DEFAULT_TIERS.contains(&name.as_str());
        if custom
            && (long.is_none()
                || short.is_none()
                || t.value.factor.is_none()
                || t.value.severity.is_none())
        {
            ctx.err(t, format!("tier {name:?} is not a default tier ({}): it needs long, short, factor and severity", DEFAULT_TIERS.join(", ")));
            continue;
        }
        if t.value.factor.is_some_and(|f| f.is_nan() || f <= 0.0) {
            ctx.err(t, format!("the factor of tier {name:?} must be above 0"));
        }
        alert_tiers.insert(
            name.clone(),
            TierOverride {
                disabled: t.value.disabled,
                factor: t.value.factor,
                severity: t.value.severity,
                long_minutes: long,
                short_minutes: short,
                for_seconds: t.value.for_duration.map(|d| d.0.as_secs() as i64),
                labels: t.value.labels.clone(),
                annotations: t.value.annotations.clone(),
            },
        );
    }
    let mut budget_alerts = BudgetAlerts::default();
    if let Some(a) = &raw.alerting {
        budget_alerts.exhaustion_within_seconds = a.exhaustion.as_ref().map(|e| {
            (
                e.within.0.as_secs() as i64,
                e.severity.unwrap_or(Severity::Ticket),
            )
        });
        budget_alerts.exhausted = a
            .budget_exhausted
            .as_ref()
            .map(|b| b.severity.unwrap_or(Severity::Ticket));
        if let Some(n) = &a.no_data {
            let minutes = n.value.after.0.as_secs() / 60;
            if n.value.after.0.as_secs() % 60 != 0 || minutes == 0 || minutes > 4320 {
                ctx.err(n, "no_data.after must be whole minutes, from 1m to 3d");
            }
            budget_alerts.no_data_minutes =
                Some((minutes as u32, n.value.severity.unwrap_or(Severity::Ticket)));
        }
    }
    let max_groups = raw
        .max_groups
        .as_ref()
        .map_or(DEFAULT_MAX_GROUPS, |m| m.value);
    if let Some(m) = &raw.max_groups
        && !(1..=MAX_MAX_GROUPS).contains(&m.value)
    {
        ctx.err(
            m,
            format!("max_groups must be between 1 and {MAX_MAX_GROUPS}"),
        );
    }
    if ctx.errors.len() > before {
        return None;
    }
    let sli = sli?;
    let def = SloDef {
        name: raw.name.value.clone(),
        tenant,
        service: raw.service.value,
        description: raw.description,
        labels: raw.labels,
        annotations: raw.annotations,
        objective: objectives.first().map_or(0.0, |o| o.target),
        objectives,
        budgeting,
        window,
        min_events: raw.min_events,
        freeze_below,
        alert_tiers,
        budget_alerts,
        group_by,
        max_groups,
        sli,
    };
    let origin = Origin {
        file: ctx.file.to_path_buf(),
        line: raw.name.referenced.line(),
        column: raw.name.referenced.column(),
    };
    Some((def, origin))
}

/// Expands `paths` (files, or folders whose `*.yaml`/`*.yml` files are read in name
/// order) and parses every SLO in them. All problems in all files are reported together.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<SloDef>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut errors = Vec::new();
    let mut all: Vec<(SloDef, Origin)> = Vec::new();
    let mut open_slo = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
        if sloth::is_sloth(&text) {
            all.extend(sloth::parse_file(file, &text, &mut errors));
            continue;
        }
        if openslo::is_openslo(&text) {
            open_slo.push((
                file.as_path(),
                openslo::parse_file(file, &text, &mut errors),
            ));
            continue;
        }
        let (defs, errs) = parse_with_origin(file, &text);
        all.extend(defs);
        errors.extend(errs);
    }
    all.extend(openslo::translate(&open_slo, &mut errors));
    let mut seen: HashMap<(&str, &str), &Origin> = HashMap::new();
    for (def, origin) in &all {
        if let Some(first) = seen.insert((&def.tenant, &def.name), origin) {
            errors.push(SpecError {
                file: origin.file.clone(),
                line: origin.line,
                column: origin.column,
                message: format!(
                    "SLO {:?} of tenant {:?} is already defined at {}:{}:{}",
                    def.name,
                    def.tenant,
                    first.file.display(),
                    first.line,
                    first.column
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(all.into_iter().map(|(d, _)| d).collect())
    } else {
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Err(Error::Spec(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::AttrValue;

    const ISSUE_EXAMPLE: &str = r#"
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9          # percent
    window: 30d              # rolling
    sli:
      spans:
        match: { span_kind: server, span_name: "POST /api/checkout" }
        good: { status: not_error }
  - name: checkout-latency
    service: checkout
    objective: 99
    window: 28d
    sli:
      spans:
        match: { span_name: "POST /api/checkout", attributes: { "http.request.method": "POST" } }
        good: { max_duration: 300ms }   # good when duration <= 300ms
"#;

    #[test]
    fn parses_the_documented_example() {
        let defs = parse_native(Path::new("slos.yaml"), ISSUE_EXAMPLE).unwrap();
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].name, "checkout-availability");
        assert_eq!(defs[0].tenant, "default");
        assert_eq!(defs[0].objective, 99.9);
        assert_eq!(defs[0].window, Window::rolling(30 * 1440));
        let Sli::Spans { selector, good } = &defs[0].sli else {
            panic!("a span SLI")
        };
        assert_eq!(selector.kind, Some(SpanKind::Server));
        assert_eq!(selector.span_name.as_deref(), Some("POST /api/checkout"));
        assert_eq!(good.status, Some(StatusRule::NotError));
        assert_eq!(good.max_duration_nanos, None);
        let Sli::Spans { selector, good } = &defs[1].sli else {
            panic!("a span SLI")
        };
        assert_eq!(
            selector.attributes,
            vec![(
                "http.request.method".to_string(),
                AttrMatch::Eq(AttrValue::String("POST".into()))
            )]
        );
        assert_eq!(good.max_duration_nanos, Some(300_000_000));
        assert_eq!(defs[1].window.to_string(), "28d");
    }

    #[test]
    fn log_slis_and_severities() {
        let text = "slos:\n  - name: l\n    service: s\n    objective: 99\n    window: 1d\n    sli: { logs: { match: { attributes: { event: payment } }, good: { max_severity: warn } } }\n";
        let defs = parse_native(Path::new("f.yaml"), text).unwrap();
        assert_eq!(
            defs[0].sli,
            Sli::Logs {
                attributes: vec![(
                    "event".into(),
                    AttrMatch::Eq(AttrValue::String("payment".into()))
                )],
                max_severity: 16
            }
        );
        assert_eq!(parse_severity("info"), Some(12));
        assert_eq!(parse_severity("ERROR"), Some(20));
        assert_eq!(parse_severity("warn2"), Some(14));
        assert_eq!(parse_severity("warn5"), None);
        assert_eq!(parse_severity("loud"), None);
        let bad = text.replace("max_severity: warn", "max_severity: loud");
        assert_eq!(
            errors(&bad),
            vec![
                "f.yaml:6:85: unknown severity \"loud\": use trace, debug, info, warn, error or fatal, optionally with 1-4 (e.g. warn2)"
            ]
        );
    }

    #[test]
    fn matchers_and_good_rules() {
        let text = r#"
slos:
  - name: m
    service: s
    objective: 99
    window: 1d
    sli:
      spans:
        match:
          attributes:
            method: GET
            route: { regex: "/api/.*" }
            env: { in: [prod, staging] }
            user: { exists: true }
            region: { not: eu }
          resource: { k8s.namespace.name: shop }
        good:
          any_of:
            - { status: ok }
            - { http_status: [2xx, 404], max_duration: 1s }
"#;
        let defs = parse_native(Path::new("f.yaml"), text).unwrap();
        let Sli::Spans { selector, good } = &defs[0].sli else {
            panic!("a span SLI")
        };
        assert_eq!(selector.attributes.len(), 5);
        assert!(
            matches!(&selector.attributes[3].1, AttrMatch::Regex(r) if r.as_str() == "^(?:/api/.*)$")
        );
        assert_eq!(selector.resource.len(), 1);
        assert_eq!(good.any_of.len(), 2);
        assert_eq!(
            good.any_of[1].http_status,
            Some(vec![HttpStatus::Class(2), HttpStatus::Code(404)])
        );
        let bad = text.replace("\"/api/.*\"", "\"/api/(\"");
        let e = errors(&bad);
        assert_eq!(
            e,
            ["f.yaml:12:20: invalid regular expression \"/api/(\": unclosed group"]
        );
        let bad = text.replace("2xx, 404", "2xx, 6xx");
        let e = errors(&bad);
        assert!(e[0].contains("invalid HTTP status \"6xx\""), "{e:?}");
        let bad = text.replace("{ exists: true }", "{ exist: true }");
        let e = errors(&bad);
        assert!(e[0].contains("unknown matcher \"exist\""), "{e:?}");
    }

    #[test]
    fn calendar_windows() {
        let text = "slos:\n  - name: c\n    service: s\n    objective: 99\n    window: { calendar: month, time_zone: Europe/Berlin }\n    sli: { spans: { good: { status: ok } } }\n";
        let defs = parse_native(Path::new("f.yaml"), text).unwrap();
        assert!(
            matches!(&defs[0].window, Window::Calendar { unit: CalendarUnit::Month, tz } if tz.name == "Europe/Berlin")
        );
        assert_eq!(defs[0].window.to_string(), "month");
        let bad = text.replace("Europe/Berlin", "Mars/Olympus");
        assert_eq!(
            errors(&bad),
            [
                "f.yaml:5:13: unknown time zone \"Mars/Olympus\": use an IANA name such as Europe/Berlin"
            ]
        );
        let bad = text.replace("month", "fortnight");
        assert!(errors(&bad)[0].contains("fortnight"), "{:?}", errors(&bad));
    }

    #[test]
    fn objectives_and_budgeting() {
        let text = "slos:\n  - name: o\n    service: s\n    objectives: [ { name: strict, target: 99.9 }, { target: 99 } ]\n    budgeting: { timeslices: { slice: 5m, target: 95 } }\n    window: 7d\n    sli: { spans: { good: { status: ok } } }\n";
        let defs = parse_native(Path::new("f.yaml"), text).unwrap();
        assert_eq!(defs[0].objective, 99.9);
        assert_eq!(
            defs[0].objectives[1],
            Objective {
                name: "objective-2".into(),
                target: 99.0
            }
        );
        assert_eq!(
            defs[0].budgeting,
            Budgeting::Timeslices {
                slice_minutes: 5,
                slice_target: 0.95
            }
        );
        let both = text.replace("    objectives:", "    objective: 99\n    objectives:");
        assert!(
            errors(&both)[0].contains("an SLO needs objective"),
            "{:?}",
            errors(&both)
        );
        let bad = text.replace("slice: 5m", "slice: 90s");
        assert_eq!(
            errors(&bad),
            ["f.yaml:5:16: the slice 90s must be whole minutes, from 1m to 1d"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("3x")
                .unwrap_err()
                .contains("unknown unit \"x\"")
        );
    }

    fn errors(text: &str) -> Vec<String> {
        parse_native(Path::new("f.yaml"), text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn semantic_errors_name_file_line_and_column_all_at_once() {
        let text = "slos:\n  - name: a\n    service: s\n    objective: 100\n    window: 90s\n    sli:\n      spans:\n        good: {}\n";
        assert_eq!(
            errors(text),
            vec![
                "f.yaml:4:16: objective 100 is out of range: it is a percentage above 0 and below 100, e.g. 99.9",
                "f.yaml:5:13: window 90s must be a whole number of minutes, at least 1m",
                "f.yaml:8:15: good needs at least one rule: status, max_duration, http_status, not_http_status, all_of or any_of",
            ]
        );
    }

    #[test]
    fn syntax_and_type_errors_have_positions() {
        let e = errors("slos:\n  - name: a\n    service: s\n    objective: 99\n    window: 3x\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("f.yaml:5:13: "), "{}", e[0]);
        assert!(e[0].contains("unknown unit"), "{}", e[0]);
        let e = errors("slos:\n  - name: a\n    servce: s\n");
        assert!(e[0].starts_with("f.yaml:3:5: "), "{}", e[0]);
        assert!(e[0].contains("servce"), "{}", e[0]);
    }
}
