//! OpenSLO v1 input: `SLO`, `SLI`, `Service`, `AlertPolicy`, `AlertCondition`,
//! `AlertNotificationTarget` and `DataSource` documents, inline and by reference, in
//! multi-document YAML. SLIs are `ratioMetric` or `thresholdMetric` whose `metricSource`
//! has `type: slotel` and a `spec` in slotel's native selector form.
//!
//! Mapping: `ratioMetric` over spans (`total.spec.spans.match` with
//! `good.spec.spans.good`), log records (`logs`) or counters (`metric`); `thresholdMetric`
//! over spans (good at or below the objective's `value` seconds, `op: lte`) or a histogram
//! (`histogram`). `timeWindow` rolling (`30d`, `4w`) or calendar (`1w`, `1M`, `1Q`, in
//! `calendar.timeZone`); `budgetingMethod` Occurrences, Timeslices, RatioTimeslices;
//! several `objectives` (their timeslice settings and thresholds must agree, since they
//! share one SLI). The tenant comes from the annotation `slotel.tenant`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::{
    Ctx, HumanDuration, Origin, RawGood, RawHistogram, RawLogGood, RawLogMatch, RawLogs, RawMatch,
    RawMetricRatio, RawMetricSelector, RawSli, RawSpans, RawWindow, is_valid_name, parse_duration,
    sli_of, slice_minutes, window_of, yaml_error,
};
use crate::alert::{DEFAULT_TIER_NAMES, WINDOW_PAIRS};
use crate::error::SpecError;
use crate::model::{
    AttrMatch, Budgeting, CalendarUnit, Objective, Severity, Sli, SloDef, TierOverride, Window,
};

/// Whether a document set is OpenSLO: its first document names `apiVersion: openslo/…`.
pub(crate) fn is_openslo(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("apiVersion:"))
        .is_some_and(|l| l.contains("openslo/"))
}

/// Splits a multi-document YAML text at `---` lines: (first line − 1, text) per document.
pub(crate) fn documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 0u64;
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i as u64 + 1;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Doc<S> {
    #[serde(rename = "apiVersion")]
    _api_version: Spanned<String>,
    #[serde(rename = "kind")]
    _kind: Spanned<String>,
    metadata: Meta,
    spec: S,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Meta {
    name: Spanned<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, LabelValue>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum LabelValue {
    One(String),
    Many(Vec<String>),
}

impl LabelValue {
    fn joined(&self) -> String {
        match self {
            LabelValue::One(s) => s.clone(),
            LabelValue::Many(v) => v.join(","),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SloSpec {
    #[serde(default)]
    description: Option<String>,
    service: Spanned<String>,
    #[serde(default)]
    indicator: Option<InlineSli>,
    #[serde(default)]
    indicator_ref: Option<Spanned<String>>,
    time_window: Spanned<Vec<TimeWindow>>,
    budgeting_method: Spanned<String>,
    objectives: Spanned<Vec<ObjectiveSpec>>,
    #[serde(default)]
    alert_policies: Vec<PolicyItem>,
}

/// An SLO's alert policy: by reference (`alertPolicyRef`) or inline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyItem {
    #[serde(rename = "kind", default)]
    _kind: Option<String>,
    #[serde(default)]
    alert_policy_ref: Option<Spanned<String>>,
    #[serde(rename = "metadata", default)]
    _metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<AlertPolicySpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertPolicySpec {
    #[serde(rename = "description", default)]
    _description: Option<String>,
    #[serde(default)]
    alert_when_no_data: bool,
    /// slotel always sends resolves and alerts while breaching.
    #[serde(rename = "alertWhenResolved", default)]
    _alert_when_resolved: bool,
    #[serde(rename = "alertWhenBreaching", default)]
    _alert_when_breaching: bool,
    #[serde(default)]
    conditions: Vec<ConditionItem>,
    /// Receivers are routed by slotel's `alerting:` configuration.
    #[serde(rename = "notificationTargets", default)]
    _notification_targets: Vec<IgnoredAny>,
}

/// A policy's condition: by reference (`conditionRef`) or inline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConditionItem {
    #[serde(rename = "kind", default)]
    _kind: Option<String>,
    #[serde(default)]
    condition_ref: Option<Spanned<String>>,
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<AlertConditionSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertConditionSpec {
    #[serde(default)]
    description: Option<String>,
    severity: Spanned<String>,
    condition: ConditionBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConditionBody {
    kind: Spanned<String>,
    op: Spanned<String>,
    threshold: Spanned<f64>,
    lookback_window: Spanned<String>,
    #[serde(default)]
    alert_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InlineSli {
    metadata: Meta,
    spec: SliSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimeWindow {
    duration: Spanned<String>,
    #[serde(default)]
    is_rolling: bool,
    #[serde(default)]
    calendar: Option<CalendarSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CalendarSpec {
    /// Periods align to the calendar; a start time is accepted and not needed.
    #[serde(rename = "startTime", default)]
    _start_time: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectiveSpec {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    op: Option<Spanned<String>>,
    #[serde(default)]
    value: Option<Spanned<f64>>,
    #[serde(default)]
    target: Option<Spanned<f64>>,
    #[serde(default)]
    target_percent: Option<Spanned<f64>>,
    #[serde(default)]
    time_slice_target: Option<Spanned<f64>>,
    #[serde(default)]
    time_slice_window: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SliSpec {
    #[serde(rename = "description", default)]
    _description: Option<String>,
    #[serde(default)]
    threshold_metric: Option<SourceHolder>,
    #[serde(default)]
    ratio_metric: Option<RatioMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RatioMetric {
    #[serde(default)]
    counter: Option<bool>,
    #[serde(default)]
    good: Option<SourceHolder>,
    #[serde(default)]
    bad: Option<SourceHolder>,
    total: SourceHolder,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceHolder {
    metric_source: MetricSource,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricSource {
    #[serde(default)]
    metric_source_ref: Option<Spanned<String>>,
    #[serde(rename = "type", default)]
    source_type: Option<Spanned<String>>,
    spec: Spanned<SourceSpec>,
}

/// A slotel selector in native form, as a `metricSource.spec`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    #[serde(default)]
    spans: Option<SpansPart>,
    #[serde(default)]
    logs: Option<LogsPart>,
    #[serde(default)]
    metric: Option<Spanned<String>>,
    #[serde(default)]
    histogram: Option<Spanned<String>>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpansPart {
    #[serde(rename = "match", default)]
    selector: Option<RawMatch>,
    #[serde(default)]
    good: Option<Spanned<RawGood>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsPart {
    #[serde(rename = "match", default)]
    selector: Option<RawLogMatch>,
    #[serde(default)]
    good: Option<Spanned<RawLogGood>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataSourceSpec {
    #[serde(rename = "type")]
    source_type: Spanned<String>,
    #[serde(rename = "connectionDetails", default)]
    _connection_details: Option<IgnoredAny>,
    #[serde(rename = "description", default)]
    _description: Option<String>,
}

/// One parsed document of any kind.
enum Parsed {
    Slo(Box<Doc<SloSpec>>),
    Sli(Box<Doc<SliSpec>>),
    DataSource(Box<Doc<DataSourceSpec>>),
    AlertPolicy(Box<Doc<AlertPolicySpec>>),
    AlertCondition(Box<Doc<AlertConditionSpec>>),
    Other,
}

const KINDS: [&str; 7] = [
    "SLO",
    "SLI",
    "Service",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
    "DataSource",
];

/// A document set's parsed documents, with the context to report problems in them.
pub(crate) struct OpenSloFile {
    docs: Vec<(u64, Parsed)>,
}

/// Parses the documents of one OpenSLO file; problems go to `errors`.
pub(crate) fn parse_file(file: &Path, text: &str, errors: &mut Vec<SpecError>) -> OpenSloFile {
    let mut docs = Vec::new();
    for (offset, doc) in documents(text) {
        let shift = |mut e: SpecError| {
            if e.line > 0 {
                e.line += offset;
            }
            e
        };
        let probe: Probe = match serde_saphyr::from_str(&doc) {
            Ok(p) => p,
            Err(e) => {
                errors.push(shift(yaml_error(file, &e)));
                continue;
            }
        };
        if probe.api_version.as_deref() != Some("openslo/v1") {
            errors.push(SpecError {
                file: file.to_path_buf(),
                line: offset + 1,
                column: 1,
                message: format!(
                    "unsupported apiVersion {:?}: slotel reads openslo/v1",
                    probe.api_version.unwrap_or_default()
                ),
            });
            continue;
        }
        let kind = probe.kind.unwrap_or_default();
        let parsed = match kind.as_str() {
            "SLO" => serde_saphyr::from_str(&doc).map(|d| Parsed::Slo(Box::new(d))),
            "SLI" => serde_saphyr::from_str(&doc).map(|d| Parsed::Sli(Box::new(d))),
            "DataSource" => serde_saphyr::from_str(&doc).map(|d| Parsed::DataSource(Box::new(d))),
            "AlertPolicy" => serde_saphyr::from_str(&doc).map(|d| Parsed::AlertPolicy(Box::new(d))),
            "AlertCondition" => {
                serde_saphyr::from_str(&doc).map(|d| Parsed::AlertCondition(Box::new(d)))
            }
            k if KINDS.contains(&k) => {
                serde_saphyr::from_str::<Doc<IgnoredAny>>(&doc).map(|_| Parsed::Other)
            }
            other => {
                errors.push(SpecError {
                    file: file.to_path_buf(),
                    line: offset + 1,
                    column: 1,
                    message: format!(
                        "unknown kind {other:?}: OpenSLO v1 has {}",
                        KINDS.join(", ")
                    ),
                });
                continue;
            }
        };
        match parsed {
            Ok(p) => docs.push((offset, p)),
            Err(e) => errors.push(shift(yaml_error(file, &e))),
        }
    }
    OpenSloFile { docs }
}

/// Translates the SLOs of `files` (each file's documents, resolved together so that
/// references may cross files) into the model.
pub(crate) fn translate(
    files: &[(&Path, OpenSloFile)],
    errors: &mut Vec<SpecError>,
) -> Vec<(SloDef, Origin)> {
    let mut slis: HashMap<String, (&Path, u64, &Doc<SliSpec>)> = HashMap::new();
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut policy_docs = Vec::new();
    let mut conditions: HashMap<String, Option<(String, TierOverride)>> = HashMap::new();
    for (file, f) in files {
        for (offset, doc) in &f.docs {
            match doc {
                Parsed::AlertCondition(d) => {
                    let mut ctx = Ctx {
                        file,
                        errors: Vec::new(),
                        line_offset: *offset,
                    };
                    let tier = condition_tier(&mut ctx, &d.metadata.name.value, &d.spec);
                    errors.append(&mut ctx.errors);
                    conditions.insert(d.metadata.name.value.clone(), tier);
                }
                Parsed::AlertPolicy(d) => policy_docs.push((*file, *offset, d)),
                Parsed::Sli(d) => {
                    slis.insert(d.metadata.name.value.clone(), (file, *offset, d));
                }
                Parsed::DataSource(d) => {
                    sources.insert(
                        d.metadata.name.value.clone(),
                        d.spec.source_type.value.clone(),
                    );
                }
                _ => {}
            }
        }
    }
    // Policies after every condition, since they may name conditions of any file.
    let mut policies: HashMap<String, Option<PolicyTiers>> = HashMap::new();
    for (file, offset, d) in policy_docs {
        let mut ctx = Ctx {
            file,
            errors: Vec::new(),
            line_offset: offset,
        };
        let tiers = policy_tiers(&mut ctx, &d.spec, &conditions);
        errors.append(&mut ctx.errors);
        policies.insert(d.metadata.name.value.clone(), tiers);
    }
    let mut out = Vec::new();
    for (file, f) in files {
        for (offset, doc) in &f.docs {
            let Parsed::Slo(slo) = doc else { continue };
            let mut ctx = Ctx {
                file,
                errors: Vec::new(),
                line_offset: *offset,
            };
            // The SLI: inline, or by reference (possibly defined in another file).
            let (sli_ctx_file, sli_offset, sli_meta, sli_spec) =
                match (&slo.spec.indicator, &slo.spec.indicator_ref) {
                    (Some(inline), None) => (*file, *offset, &inline.metadata, &inline.spec),
                    (None, Some(r)) => match slis.get(&r.value) {
                        Some((f, o, d)) => (*f, *o, &d.metadata, &d.spec),
                        None => {
                            ctx.err(r, format!("no SLI named {:?} is defined", r.value));
                            errors.append(&mut ctx.errors);
                            continue;
                        }
                    },
                    _ => {
                        ctx.err(
                            &slo.metadata.name,
                            "an SLO needs exactly one of indicator or indicatorRef",
                        );
                        errors.append(&mut ctx.errors);
                        continue;
                    }
                };
            let mut sli_ctx = Ctx {
                file: sli_ctx_file,
                errors: Vec::new(),
                line_offset: sli_offset,
            };
            if let Some(mut def) =
                translate_slo(&mut ctx, &mut sli_ctx, slo, sli_meta, sli_spec, &sources)
            {
                apply_policies(
                    &mut ctx,
                    &mut def,
                    &slo.spec.alert_policies,
                    &conditions,
                    &policies,
                );
                let origin = ctx.origin(&slo.metadata.name);
                out.push((def, origin));
            }
            errors.append(&mut ctx.errors);
            errors.append(&mut sli_ctx.errors);
        }
    }
    out
}

/// The tiers an alert policy sets, and whether it asks for a no-data alert (after its
/// longest lookback, at its highest severity).
struct PolicyTiers {
    tiers: Vec<(String, TierOverride)>,
    no_data: Option<(u32, Severity)>,
}

/// The tier a `burnrate` alert condition describes: both its `lookbackWindow` and the
/// workbook's short window for it (a twelfth) must burn above `threshold`, for
/// `alertAfter`.
fn condition_tier(
    ctx: &mut Ctx<'_>,
    name: &str,
    spec: &AlertConditionSpec,
) -> Option<(String, TierOverride)> {
    let before = ctx.errors.len();
    let c = &spec.condition;
    if c.kind.value != "burnrate" {
        ctx.err(
            &c.kind,
            format!(
                "condition kind {:?} is not supported: slotel evaluates burnrate conditions",
                c.kind.value
            ),
        );
    }
    if !matches!(c.op.value.as_str(), "gt" | "gte") {
        ctx.err(
            &c.op,
            format!(
                "op {:?}: a burn-rate alert fires above its threshold, use gt or gte",
                c.op.value
            ),
        );
    }
    if !(c.threshold.value > 0.0 && c.threshold.value.is_finite()) {
        ctx.err(&c.threshold, "threshold must be a burn rate above 0");
    }
    let long = match parse_duration(&c.lookback_window.value) {
        Ok(d) => {
            let minutes = (d.as_secs() / 60) as u32;
            match WINDOW_PAIRS.iter().find(|(l, _)| *l == minutes) {
                Some(pair) => Some(*pair),
                None => {
                    ctx.err(
                        &c.lookback_window,
                        format!(
                            "lookbackWindow {:?} is not one of 1h, 6h, 1d, 3d (the long windows slotel pairs with 5m, 30m, 2h, 6h)",
                            c.lookback_window.value
                        ),
                    );
                    None
                }
            }
        }
        Err(e) => {
            ctx.err(&c.lookback_window, e);
            None
        }
    };
    let for_seconds = match &c.alert_after {
        Some(a) => match parse_duration(&a.value) {
            Ok(d) => Some(d.as_secs() as i64),
            Err(e) => {
                ctx.err(a, e);
                None
            }
        },
        None => None,
    };
    let severity = match spec.severity.value.to_ascii_lowercase().as_str() {
        "page" | "critical" | "high" => Some(Severity::Page),
        "ticket" | "warning" | "medium" | "low" | "info" => Some(Severity::Ticket),
        other => {
            ctx.err(
                &spec.severity,
                format!(
                    "severity {other:?}: slotel pages on page, critical or high and opens tickets on ticket, warning, medium, low or info"
                ),
            );
            None
        }
    };
    if ctx.errors.len() > before {
        return None;
    }
    let (long_minutes, short_minutes) = long?;
    let mut annotations = BTreeMap::new();
    if let Some(d) = &spec.description {
        annotations.insert("condition".to_string(), d.clone());
    }
    Some((
        name.to_string(),
        TierOverride {
            disabled: false,
            factor: Some(c.threshold.value),
            severity,
            long_minutes: Some(long_minutes),
            short_minutes: Some(short_minutes),
            for_seconds,
            labels: BTreeMap::new(),
            annotations,
        },
    ))
}

/// The tiers of an alert policy; `None` when it or a condition it names is invalid.
fn policy_tiers(
    ctx: &mut Ctx<'_>,
    spec: &AlertPolicySpec,
    conditions: &HashMap<String, Option<(String, TierOverride)>>,
) -> Option<PolicyTiers> {
    let mut tiers = Vec::new();
    let mut valid = true;
    for item in &spec.conditions {
        let tier = match (&item.condition_ref, &item.metadata, &item.spec) {
            (Some(r), None, None) => match conditions.get(&r.value) {
                Some(t) => t.clone(),
                None => {
                    ctx.err(
                        r,
                        format!("no AlertCondition named {:?} is defined", r.value),
                    );
                    None
                }
            },
            (None, Some(meta), Some(spec)) => condition_tier(ctx, &meta.name.value, spec),
            _ => {
                valid = false;
                ctx.errors.push(SpecError {
                    file: ctx.file.to_path_buf(),
                    line: ctx.line_offset + 1,
                    column: 1,
                    message: "an alert policy condition needs conditionRef, or metadata and spec"
                        .into(),
                });
                None
            }
        };
        match tier {
            Some(t) => tiers.push(t),
            None => valid = false,
        }
    }
    if !valid {
        return None;
    }
    let no_data = spec.alert_when_no_data.then(|| {
        let minutes = tiers
            .iter()
            .filter_map(|(_, t)| t.long_minutes)
            .max()
            .unwrap_or(60);
        let severity = if tiers
            .iter()
            .any(|(_, t)| t.severity == Some(Severity::Page))
        {
            Severity::Page
        } else {
            Severity::Ticket
        };
        (minutes, severity)
    });
    Some(PolicyTiers { tiers, no_data })
}

/// Replaces the default tiers of `def` by those of its alert policies (an SLO without
/// policies keeps the defaults).
fn apply_policies(
    ctx: &mut Ctx<'_>,
    def: &mut SloDef,
    items: &[PolicyItem],
    conditions: &HashMap<String, Option<(String, TierOverride)>>,
    policies: &HashMap<String, Option<PolicyTiers>>,
) {
    if items.is_empty() {
        return;
    }
    for name in DEFAULT_TIER_NAMES {
        def.alert_tiers.insert(
            name.to_string(),
            TierOverride {
                disabled: true,
                ..TierOverride::default()
            },
        );
    }
    let mut inline = Vec::new();
    for item in items {
        let policy = match (&item.alert_policy_ref, &item.spec) {
            (Some(r), None) => match policies.get(&r.value) {
                Some(p) => p.as_ref(),
                None => {
                    ctx.err(r, format!("no AlertPolicy named {:?} is defined", r.value));
                    None
                }
            },
            (None, Some(spec)) => {
                inline.push(policy_tiers(ctx, spec, conditions));
                inline.last().and_then(Option::as_ref)
            }
            _ => {
                ctx.errors.push(SpecError {
                    file: ctx.file.to_path_buf(),
                    line: ctx.line_offset + 1,
                    column: 1,
                    message: format!(
                        "SLO {}: an alert policy needs alertPolicyRef, or metadata and spec",
                        def.name
                    ),
                });
                None
            }
        };
        if let Some(p) = policy {
            for (name, tier) in &p.tiers {
                def.alert_tiers.insert(name.clone(), tier.clone());
            }
            if let Some(no_data) = p.no_data {
                def.budget_alerts.no_data_minutes = Some(no_data);
            }
        }
    }
}

fn check_source(ctx: &mut Ctx<'_>, s: &MetricSource, sources: &HashMap<String, String>) {
    let declared = match (&s.source_type, &s.metric_source_ref) {
        (Some(t), _) => Some((t.value.clone(), t)),
        (None, Some(r)) => match sources.get(&r.value) {
            Some(t) => Some((t.clone(), r)),
            None => {
                ctx.err(r, format!("no DataSource named {:?} is defined", r.value));
                None
            }
        },
        (None, None) => None,
    };
    if let Some((t, at)) = declared
        && t != "slotel"
    {
        ctx.err(at, format!("metric source type {t:?} is not supported: slotel computes from its own OTLP data, use type: slotel"));
    }
}

fn translate_slo(
    ctx: &mut Ctx<'_>,
    sli_ctx: &mut Ctx<'_>,
    slo: &Doc<SloSpec>,
    sli_meta: &Meta,
    sli_spec: &SliSpec,
    sources: &HashMap<String, String>,
) -> Option<SloDef> {
    let before = ctx.errors.len() + sli_ctx.errors.len();
    let name = &slo.metadata.name;
    if !is_valid_name(&name.value) {
        ctx.err(name, format!("invalid SLO name {:?}", name.value));
    }
    let spec = &slo.spec;
    // Objectives: target (0-1) or targetPercent.
    let mut objectives = Vec::new();
    let mut threshold: Option<(f64, &Spanned<f64>)> = None;
    let mut slices: Option<(Option<f64>, Option<u32>)> = None;
    if spec.objectives.value.is_empty() {
        ctx.err(&spec.objectives, "objectives must not be empty");
    }
    for (i, o) in spec.objectives.value.iter().enumerate() {
        let target = match (&o.target, &o.target_percent) {
            (Some(t), None) => {
                if !(t.value > 0.0 && t.value < 1.0) {
                    ctx.err(
                        t,
                        format!(
                            "target {} must be above 0 and below 1 (e.g. 0.999)",
                            t.value
                        ),
                    );
                }
                t.value * 100.0
            }
            (None, Some(p)) => {
                if !(p.value > 0.0 && p.value < 100.0) {
                    ctx.err(
                        p,
                        format!("targetPercent {} must be above 0 and below 100", p.value),
                    );
                }
                p.value
            }
            _ => {
                ctx.err(
                    &spec.objectives,
                    format!(
                        "objective {} needs exactly one of target or targetPercent",
                        i + 1
                    ),
                );
                continue;
            }
        };
        objectives.push(Objective {
            name: o
                .display_name
                .clone()
                .unwrap_or_else(|| format!("objective-{}", i + 1)),
            target,
        });
        if let Some(v) = &o.value {
            match &o.op {
                Some(op) if op.value == "lte" => {}
                Some(op) => ctx.err(op, format!("op {:?} is not supported: slotel counts durations at or below the value, use lte", op.value)),
                None => ctx.err(v, "a threshold value needs op: lte"),
            }
            match threshold {
                Some((t, _)) if t != v.value => ctx.err(
                    v,
                    "objectives of one SLO must share the threshold value (one SLI per SLO)",
                ),
                _ => threshold = Some((v.value, v)),
            }
        }
        let this = (
            o.time_slice_target.as_ref().map(|t| t.value),
            o.time_slice_window
                .as_ref()
                .map(|w| match parse_duration(&w.value) {
                    Ok(d) => slice_minutes(ctx, w, d),
                    Err(e) => {
                        ctx.err(w, e);
                        1
                    }
                }),
        );
        match &slices {
            Some(prev) if *prev != this => ctx.err(
                &spec.objectives,
                "objectives of one SLO must share timeSliceTarget and timeSliceWindow",
            ),
            _ => slices = Some(this),
        }
    }
    let (slice_target, slice_window) = slices.unwrap_or((None, None));
    let budgeting = match spec.budgeting_method.value.as_str() {
        "Occurrences" => Budgeting::Occurrences,
        "Timeslices" => match (slice_target, slice_window) {
            (Some(t), Some(w)) if t > 0.0 && t <= 1.0 => Budgeting::Timeslices {
                slice_minutes: w,
                slice_target: t,
            },
            _ => {
                ctx.err(&spec.budgeting_method, "Timeslices needs timeSliceTarget (above 0, at most 1) and timeSliceWindow on the objectives");
                Budgeting::Occurrences
            }
        },
        "RatioTimeslices" => match slice_window {
            Some(w) => Budgeting::RatioTimeslices { slice_minutes: w },
            None => {
                ctx.err(
                    &spec.budgeting_method,
                    "RatioTimeslices needs timeSliceWindow on the objectives",
                );
                Budgeting::Occurrences
            }
        },
        other => {
            ctx.err(&spec.budgeting_method, format!("unknown budgetingMethod {other:?}: use Occurrences, Timeslices or RatioTimeslices"));
            Budgeting::Occurrences
        }
    };
    // Time window: exactly one.
    let window = match spec.time_window.value.as_slice() {
        [tw] => time_window(ctx, tw),
        _ => {
            ctx.err(&spec.time_window, "timeWindow must hold exactly one window");
            Window::rolling(1)
        }
    };
    // The SLI.
    let sli = sli_of_spec(
        sli_ctx,
        &sli_meta.name,
        sli_spec,
        threshold.map(|(v, _)| v),
        sources,
    );
    if threshold.is_none() && sli_spec.threshold_metric.is_some() {
        ctx.err(
            &spec.objectives,
            "a thresholdMetric SLI needs op: lte and value (seconds) on the objectives",
        );
    }
    if ctx.errors.len() + sli_ctx.errors.len() > before {
        return None;
    }
    let labels: BTreeMap<String, String> = slo
        .metadata
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.joined()))
        .collect();
    let mut annotations = slo.metadata.annotations.clone();
    let tenant = annotations
        .remove("slotel.tenant")
        .unwrap_or_else(|| slotel_proto::DEFAULT_TENANT.to_string());
    if let Some(d) = &slo.metadata.display_name {
        annotations.insert("display_name".into(), d.clone());
    }
    Some(SloDef {
        name: name.value.clone(),
        tenant,
        service: spec.service.value.clone(),
        description: spec.description.clone(),
        labels,
        annotations,
        objective: objectives.first().map_or(0.0, |o| o.target),
        objectives,
        budgeting,
        window,
        min_events: 0,
        freeze_below: 0.0,
        alert_tiers: Default::default(),
        budget_alerts: Default::default(),
        group_by: Vec::new(),
        max_groups: super::DEFAULT_MAX_GROUPS,
        sli: sli?,
    })
}

fn time_window(ctx: &mut Ctx<'_>, tw: &TimeWindow) -> Window {
    let d = tw.duration.value.trim();
    if tw.is_rolling {
        // OpenSLO durations: m, h, d, w (M, Q and Y are calendar units).
        let normalized = match d.strip_suffix('w') {
            Some(n) => n
                .parse::<u64>()
                .map(|n| format!("{}d", n * 7))
                .unwrap_or_default(),
            None => d.to_string(),
        };
        let window = match parse_duration(&normalized) {
            Ok(len) => RawWindow::Rolling(len),
            Err(e) => {
                ctx.err(&tw.duration, e);
                return Window::rolling(1);
            }
        };
        return window_of(ctx, &respan(&tw.duration, window));
    }
    let unit = match d {
        "1w" => CalendarUnit::Week,
        "1M" => CalendarUnit::Month,
        "1Q" => CalendarUnit::Quarter,
        other => {
            ctx.err(
                &tw.duration,
                format!("calendar window {other:?} is not supported: use 1w, 1M or 1Q"),
            );
            return Window::rolling(1);
        }
    };
    let time_zone = tw.calendar.as_ref().and_then(|c| c.time_zone.clone());
    window_of(
        ctx,
        &respan(&tw.duration, RawWindow::Calendar { unit, time_zone }),
    )
}

/// `value` carrying the position of `at`.
fn respan<T, U>(at: &Spanned<T>, value: U) -> Spanned<U> {
    Spanned::new(value, at.referenced, at.defined)
}

fn sli_of_spec(
    ctx: &mut Ctx<'_>,
    name: &Spanned<String>,
    spec: &SliSpec,
    threshold: Option<f64>,
    sources: &HashMap<String, String>,
) -> Option<Sli> {
    let raw = match (&spec.ratio_metric, &spec.threshold_metric) {
        (Some(r), None) => {
            for s in [Some(&r.total), r.good.as_ref(), r.bad.as_ref()]
                .into_iter()
                .flatten()
            {
                check_source(ctx, &s.metric_source, sources);
            }
            if r.counter == Some(false) {
                ctx.err(
                    name,
                    "ratioMetric with counter: false is not supported: slotel counts events",
                );
            }
            ratio(ctx, name, r)?
        }
        (None, Some(t)) => {
            check_source(ctx, &t.metric_source, sources);
            let spec = &t.metric_source.spec;
            let threshold = threshold.unwrap_or(0.0);
            if let Some(h) = &spec.value.histogram {
                RawSli {
                    histogram: Some(RawHistogram {
                        metric: h.clone(),
                        attributes: spec.value.attributes.clone(),
                        threshold: respan(
                            h,
                            HumanDuration(std::time::Duration::from_secs_f64(threshold.max(0.0))),
                        ),
                    }),
                    ..RawSli::default()
                }
            } else if let Some(spans) = &spec.value.spans {
                let good = RawGood {
                    max_duration: Some(HumanDuration(std::time::Duration::from_secs_f64(
                        threshold.max(0.0),
                    ))),
                    ..RawGood::default()
                };
                RawSli {
                    spans: Some(RawSpans {
                        selector: spans.selector.clone().unwrap_or_default(),
                        good: respan(spec, good),
                    }),
                    ..RawSli::default()
                }
            } else {
                ctx.err(
                    spec,
                    "a thresholdMetric source selects spans or a histogram",
                );
                return None;
            }
        }
        _ => {
            ctx.err(
                name,
                "an SLI needs exactly one of ratioMetric or thresholdMetric",
            );
            return None;
        }
    };
    sli_of(ctx, name, raw)
}

fn ratio(ctx: &mut Ctx<'_>, name: &Spanned<String>, r: &RatioMetric) -> Option<RawSli> {
    let total = &r.total.metric_source.spec;
    let (good, bad) = (
        r.good.as_ref().map(|g| &g.metric_source.spec),
        r.bad.as_ref().map(|b| &b.metric_source.spec),
    );
    if good.is_some() == bad.is_some() {
        ctx.err(
            name,
            "ratioMetric needs exactly one of good or bad beside total",
        );
        return None;
    }
    if let Some(spans) = &total.value.spans {
        let Some(good) = good.and_then(|g| g.value.spans.as_ref().map(|s| (g, s))) else {
            ctx.err(total, "a span ratio needs good.metricSource.spec.spans with a good rule (bad is not supported for spans)");
            return None;
        };
        if good.1.selector.is_some() && good.1.selector != spans.selector {
            ctx.err(
                good.0,
                "good must select the same spans as total; put what makes a span good under good:",
            );
        }
        let Some(rule) = &good.1.good else {
            ctx.err(good.0, "good.spans needs a good rule");
            return None;
        };
        return Some(RawSli {
            spans: Some(RawSpans {
                selector: spans.selector.clone().unwrap_or_default(),
                good: rule.clone(),
            }),
            ..RawSli::default()
        });
    }
    if let Some(logs) = &total.value.logs {
        let Some(rule) = good
            .and_then(|g| g.value.logs.as_ref())
            .and_then(|l| l.good.clone())
        else {
            ctx.err(
                total,
                "a log ratio needs good.metricSource.spec.logs with a good rule",
            );
            return None;
        };
        return Some(RawSli {
            logs: Some(RawLogs {
                selector: logs.selector.clone().unwrap_or_default(),
                good: rule,
            }),
            ..RawSli::default()
        });
    }
    let selector = |s: &Spanned<SourceSpec>| -> Option<RawMetricSelector> {
        s.value.metric.clone().map(|metric| RawMetricSelector {
            metric,
            attributes: s.value.attributes.clone(),
        })
    };
    match (selector(total), good.map(selector), bad.map(selector)) {
        (Some(total), Some(Some(good)), None) => Some(RawSli {
            metrics: Some(RawMetricRatio {
                good: Some(good),
                bad: None,
                total,
            }),
            ..RawSli::default()
        }),
        (Some(total), None, Some(Some(bad))) => Some(RawSli {
            metrics: Some(RawMetricRatio {
                good: None,
                bad: Some(bad),
                total,
            }),
            ..RawSli::default()
        }),
        _ => {
            ctx.err(total, "a metricSource spec selects spans, logs or a metric (all three of total, good/bad alike)");
            None
        }
    }
}
