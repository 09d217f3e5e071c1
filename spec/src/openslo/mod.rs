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
use crate::error::SpecError;
use slotel_model::{DEFAULT_TIER_NAMES, WINDOW_PAIRS};

mod policies;
mod probe;
mod slo;

use policies::*;
use slo::*;
use slotel_model::{
    AttrMatch, Budgeting, CalendarUnit, Objective, Severity, Sli, SloDef, TierOverride, Window,
};

/// Whether a document set is OpenSLO: its first document names `apiVersion: openslo/…`.
pub(crate) fn is_openslo(text: &str) -> bool {
    text.lines()
        .map(|l| l.trim().trim_start_matches("- ").trim_start())
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
    docs.into_iter()
        .flat_map(|(start, d)| list_items(start, d))
        .collect()
}

/// A document that is a top-level list of documents (as the OpenSLO SDKs write them),
/// as one document per item; any other document as it is. Each item keeps its lines
/// and columns: its `- ` becomes two spaces, an indented mapping YAML reads the same.
fn list_items(start: u64, doc: String) -> Vec<(u64, String)> {
    let lines: Vec<&str> = doc.lines().collect();
    let first = lines
        .iter()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some(first) = first.filter(|&i| lines[i].starts_with("- ")) else {
        return vec![(start, doc)];
    };
    let mut out: Vec<(u64, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(first) {
        if let Some(rest) = line.strip_prefix("- ") {
            // Blank lines keep the item's line numbers.
            out.push((start, "\n".repeat(i)));
            let item = out.last_mut().expect("just pushed");
            item.1.push_str("  ");
            item.1.push_str(rest);
            item.1.push('\n');
        } else if let Some(item) = out.last_mut() {
            item.1.push_str(line);
            item.1.push('\n');
        }
    }
    out
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
    alert_policies: Vec<PolicyEntry>,
}

/// An SLO's alert policy: a bare name (which the schema allows), or an item.
#[derive(Deserialize)]
#[serde(untagged)]
enum PolicyEntry {
    Name(String),
    Item(Box<PolicyItem>),
}

/// An SLO's alert policy: by reference (`alertPolicyRef`) or inline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyItem {
    #[serde(default)]
    kind: Option<Spanned<String>>,
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
    /// Becomes the `policy` annotation of the policy's alerts.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    alert_when_no_data: bool,
    /// slotel always sends resolves: `false` is refused.
    #[serde(default)]
    alert_when_resolved: Option<Spanned<bool>>,
    /// slotel alerts while the budget burns: `false` is refused.
    #[serde(default)]
    alert_when_breaching: Option<Spanned<bool>>,
    #[serde(default)]
    conditions: Vec<ConditionItem>,
    /// Become the `notification_targets` annotation (receivers are routed by slotel's
    /// `alerting:` configuration, which may match it).
    #[serde(default)]
    notification_targets: Vec<TargetItem>,
}

/// A policy's notification target: by reference or inline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetItem {
    #[serde(default)]
    target_ref: Option<Spanned<String>>,
    #[serde(rename = "kind", default)]
    _kind: Option<String>,
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(rename = "spec", default)]
    _spec: Option<IgnoredAny>,
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
    /// `operator` in some schema versions.
    #[serde(alias = "operator")]
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
    /// Periods align to the calendar: a start time must be a period's start.
    #[serde(default)]
    start_time: Option<Spanned<String>>,
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
    #[serde(default)]
    total: Option<SourceHolder>,
    /// A ratio computed elsewhere: refused, slotel counts events itself.
    #[serde(default)]
    raw: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    raw_type: Option<Spanned<String>>,
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
    /// `metric` is a Prometheus name (as `slotel convert` writes Sloth's counters).
    #[serde(default)]
    prometheus: bool,
    #[serde(default)]
    job: Option<String>,
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
    _connection_details: Option<serde_json::Value>,
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
    Service(Box<Doc<ServiceSpec>>),
    Target(Box<Doc<TargetSpec>>),
    Other,
}

/// A Service: its description and display name become annotations of its SLOs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceSpec {
    #[serde(default)]
    description: Option<String>,
}

/// An AlertNotificationTarget: named in the alerts of the policies that use it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetSpec {
    target: String,
    #[serde(default)]
    description: Option<String>,
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
    // The file's DataSources first: an SLI may name one before it is defined.
    let mut sources: HashMap<String, String> = HashMap::new();
    for (_, doc) in documents(text) {
        if let Ok(d) = serde_saphyr::from_str::<Doc<DataSourceSpec>>(&doc)
            && d._kind.value == "DataSource"
        {
            sources.insert(d.metadata.name.value, d.spec.source_type.value);
        }
    }
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
        if probe.api_version.as_deref() == Some("openslo/v1alpha") {
            errors.extend(probe::alpha(file, offset, &doc));
            continue;
        }
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
        if matches!(kind.as_str(), "SLO" | "SLI") {
            let foreign = probe::foreign_sources(file, offset, &doc, &sources);
            if !foreign.is_empty() {
                errors.extend(foreign);
                continue;
            }
        }
        let parsed = match kind.as_str() {
            "SLO" => serde_saphyr::from_str(&doc).map(|d| Parsed::Slo(Box::new(d))),
            "SLI" => serde_saphyr::from_str(&doc).map(|d| Parsed::Sli(Box::new(d))),
            "DataSource" => serde_saphyr::from_str(&doc).map(|d| Parsed::DataSource(Box::new(d))),
            "AlertPolicy" => serde_saphyr::from_str(&doc).map(|d| Parsed::AlertPolicy(Box::new(d))),
            "AlertCondition" => {
                serde_saphyr::from_str(&doc).map(|d| Parsed::AlertCondition(Box::new(d)))
            }
            "Service" => serde_saphyr::from_str(&doc).map(|d| Parsed::Service(Box::new(d))),
            "AlertNotificationTarget" => {
                serde_saphyr::from_str(&doc).map(|d| Parsed::Target(Box::new(d)))
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

/// Applies to `def` the native fields an OpenSLO file carries in the
/// [`crate::export::NATIVE_ANNOTATION`] (what OpenSLO has no field for), read and checked
/// as a native SLO's.
fn native_fields(def: &mut SloDef, file: &Path, text: &str) -> std::result::Result<(), String> {
    let extra: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let serde_json::Value::Object(extra) = extra else {
        return Err("not a JSON object".into());
    };
    let mut slo = serde_json::json!({
        "name": def.name,
        "service": def.service,
        "objective": 99,
        "window": "30d",
        "sli": { "spans": { "good": { "status": "ok" } } },
    });
    for (k, v) in extra {
        if !matches!(
            k.as_str(),
            "tenant" | "min_events" | "policy" | "alerting" | "group_by" | "max_groups"
        ) {
            return Err(format!("{k:?} is not one of the fields it carries"));
        }
        slo[k] = v;
    }
    let text = serde_json::json!({ "slos": [slo] }).to_string();
    let parsed = crate::parse_native(file, &text).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let Some(n) = parsed.into_iter().next() else {
        return Err("no fields".into());
    };
    def.tenant = n.tenant;
    def.min_events = n.min_events;
    def.freeze_below = n.freeze_below;
    def.alert_tiers = n.alert_tiers;
    def.budget_alerts = n.budget_alerts;
    def.group_by = n.group_by;
    def.max_groups = n.max_groups;
    Ok(())
}

/// What the documents of `files` say that slotel accepts and does not use, each at its
/// position.
pub(crate) fn notes(files: &[(&Path, OpenSloFile)]) -> Vec<SpecError> {
    let mut out = Vec::new();
    for (file, f) in files {
        for (offset, doc) in &f.docs {
            let mut ctx = Ctx {
                file,
                errors: Vec::new(),
                line_offset: *offset,
            };
            let meta = match doc {
                Parsed::Sli(d) => Some(("SLI", &d.metadata)),
                Parsed::DataSource(d) => Some(("DataSource", &d.metadata)),
                Parsed::AlertPolicy(d) => Some(("AlertPolicy", &d.metadata)),
                Parsed::AlertCondition(d) => Some(("AlertCondition", &d.metadata)),
                Parsed::Target(d) => Some(("AlertNotificationTarget", &d.metadata)),
                Parsed::Service(d) => Some(("Service", &d.metadata)),
                Parsed::Slo(_) | Parsed::Other => None,
            };
            if let Some((kind, m)) = meta {
                let mut unused: Vec<&str> = Vec::new();
                if m.display_name.is_some() && kind != "Service" {
                    unused.push("displayName");
                }
                if !m.labels.is_empty() {
                    unused.push("labels");
                }
                if !m.annotations.is_empty() {
                    unused.push("annotations");
                }
                if !unused.is_empty() {
                    ctx.err(
                        &m.name,
                        format!(
                            "note: the {} of {kind} {:?} {} not used: slotel keeps those of SLOs",
                            unused.join(", "),
                            m.name.value,
                            if unused.len() == 1 { "is" } else { "are" }
                        ),
                    );
                }
            }
            match doc {
                Parsed::DataSource(d)
                    if d
                        .spec
                        ._connection_details
                        .as_ref()
                        .is_some_and(|c| c.as_object().is_none_or(|o| !o.is_empty())) =>
                {
                    ctx.err(
                    &d.metadata.name,
                    format!(
                        "note: the connectionDetails of DataSource {:?} are not used: slotel reads the OTLP data it receives",
                        d.metadata.name.value
                    ),
                    )
                }
                Parsed::Sli(d) if d.spec._description.is_some() => ctx.err(
                    &d.metadata.name,
                    format!(
                        "note: the description of SLI {:?} is not used: slotel keeps the SLO's",
                        d.metadata.name.value
                    ),
                ),
                _ => {}
            }
            out.append(&mut ctx.errors);
        }
    }
    out
}

/// Whether `name` is an RFC 1123 label, as OpenSLO's `metadata.name` must be.
fn is_dns_label(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| ok(c) || c == '-')
        && name.starts_with(ok)
        && name.ends_with(ok)
}

/// The longest description OpenSLO allows.
const MAX_DESCRIPTION: usize = 1050;

/// What the schema requires of every document, beyond its fields' types: names unique
/// per kind across the file set, descriptions at most [`MAX_DESCRIPTION`] characters,
/// and alert policies with a condition.
fn check_documents(files: &[(&Path, OpenSloFile)], errors: &mut Vec<SpecError>) {
    let mut names: HashMap<(&str, String), (std::path::PathBuf, u64)> = HashMap::new();
    for (file, f) in files {
        for (offset, doc) in &f.docs {
            let (kind, meta, description) = match doc {
                Parsed::Slo(d) => ("SLO", &d.metadata, d.spec.description.as_deref()),
                Parsed::Sli(d) => ("SLI", &d.metadata, d.spec._description.as_deref()),
                Parsed::DataSource(d) => {
                    ("DataSource", &d.metadata, d.spec._description.as_deref())
                }
                Parsed::AlertPolicy(d) => {
                    ("AlertPolicy", &d.metadata, d.spec.description.as_deref())
                }
                Parsed::AlertCondition(d) => {
                    ("AlertCondition", &d.metadata, d.spec.description.as_deref())
                }
                Parsed::Service(d) => ("Service", &d.metadata, d.spec.description.as_deref()),
                Parsed::Target(d) => (
                    "AlertNotificationTarget",
                    &d.metadata,
                    d.spec.description.as_deref(),
                ),
                Parsed::Other => continue,
            };
            let mut ctx = Ctx {
                file,
                errors: Vec::new(),
                line_offset: *offset,
            };
            let at = &meta.name;
            let line = at.referenced.line() + offset;
            // SLOs are checked with every other format's (by tenant and name).
            match names
                .get(&(kind, at.value.clone()))
                .filter(|_| kind != "SLO")
            {
                Some((first, first_line)) => ctx.err(
                    at,
                    format!(
                        "{} {kind} named {:?} is already defined at {}:{first_line}",
                        if kind.starts_with(['A', 'S']) && kind != "Service" {
                            "an"
                        } else {
                            "a"
                        },
                        at.value,
                        first.display()
                    ),
                ),
                None => {
                    names.insert((kind, at.value.clone()), (file.to_path_buf(), line));
                }
            }
            if !is_dns_label(&at.value) {
                ctx.err(
                    at,
                    format!(
                        "{kind} name {:?}: OpenSLO names are at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
                        at.value
                    ),
                );
            }
            if let Some(d) = description
                && d.chars().count() > MAX_DESCRIPTION
            {
                ctx.err(
                    at,
                    format!(
                        "the description of {kind} {:?} has {} characters: OpenSLO allows at most {MAX_DESCRIPTION}",
                        at.value,
                        d.chars().count()
                    ),
                );
            }
            if let Parsed::AlertPolicy(d) = doc
                && d.spec.conditions.is_empty()
            {
                ctx.err(
                    at,
                    format!(
                        "AlertPolicy {:?} has no conditions: it needs at least one",
                        at.value
                    ),
                );
            }
            errors.append(&mut ctx.errors);
        }
    }
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
    let mut services: HashMap<String, &Doc<ServiceSpec>> = HashMap::new();
    let mut targets: HashMap<String, String> = HashMap::new();
    // The files that define Services: their SLOs' services must be defined.
    let mut with_services: std::collections::HashSet<&Path> = Default::default();
    check_documents(files, errors);
    for (file, f) in files {
        for (_, doc) in &f.docs {
            match doc {
                Parsed::Service(d) => {
                    services.insert(d.metadata.name.value.clone(), d);
                    with_services.insert(*file);
                }
                Parsed::Target(d) => {
                    let mut shown = d.spec.target.clone();
                    if let Some(what) = &d.spec.description {
                        shown = format!("{shown}: {what}");
                    }
                    let name = &d.metadata.name.value;
                    targets.insert(name.clone(), format!("{name} ({shown})"));
                }
                _ => {}
            }
        }
    }
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
        let tiers = policy_tiers(&mut ctx, &d.spec, &conditions, &targets);
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
                // The SLI's name, where it is not the SLO's own.
                if sli_meta.name.value != def.name {
                    def.annotations
                        .insert("indicator".into(), sli_meta.name.value.clone());
                }
                if let Some(text) = def.annotations.remove(crate::export::NATIVE_ANNOTATION)
                    && let Err(why) = native_fields(&mut def, ctx.file, &text)
                {
                    ctx.err(
                        &slo.metadata.name,
                        format!("the annotation {}: {why}", crate::export::NATIVE_ANNOTATION),
                    );
                }
                // A file set that defines Services must define the SLO's.
                match services.get(&def.service) {
                    Some(service) => {
                        if let Some(d) = &service.metadata.display_name {
                            def.annotations
                                .insert("service_display_name".into(), d.clone());
                        }
                        if let Some(d) = &service.spec.description {
                            def.annotations
                                .insert("service_description".into(), d.clone());
                        }
                    }
                    None if with_services.contains(*file) => {
                        let mut names: Vec<&String> = services.keys().collect();
                        names.sort();
                        ctx.err(
                            &slo.spec.service,
                            format!(
                                "no Service named {:?} is defined (the Services are {names:?})",
                                def.service
                            ),
                        );
                    }
                    None => {}
                }
                for entry in &slo.spec.alert_policies {
                    let PolicyEntry::Item(item) = entry else {
                        continue;
                    };
                    if let Some(k) = item.kind.as_ref().filter(|k| k.value != "AlertPolicy") {
                        ctx.err(
                            k,
                            format!("kind {:?}: an alert policy's kind is AlertPolicy", k.value),
                        );
                    }
                }
                apply_policies(
                    &mut ctx,
                    &mut def,
                    &slo.spec.alert_policies,
                    &conditions,
                    &policies,
                    &targets,
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
