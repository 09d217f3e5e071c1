//! SLO files in: slotel's native YAML, OpenSLO v1 and Sloth, parsed and validated into
//! [`SloDef`]s, with every problem found reported with its file, line and column.
//!
//! Flow: [`load_paths`] reads files and folders; each document is told apart by its
//! shape (`sloth`, `openslo`, else native) and validated into the model; duplicate
//! names across files are refused; the result is the SLO set the engine loads.

#![warn(missing_docs, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

mod error;
pub mod export;
mod native;
mod openslo;
mod sloth;

pub use error::{Error, Result, SpecError};
pub use native::parse_native;
use native::{parse_with_origin, sli_of, slice_minutes, window_of};

use slotel_model::{
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
    #[serde(default = "default_min_events")]
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
    /// `metric` and the attribute keys are the Prometheus names of OTLP metrics and
    /// attributes (what Sloth specs give).
    #[serde(default)]
    prometheus: bool,
    /// The `job` a Prometheus query matched, kept for generated rules.
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttrMatch>,
}

impl RawMetricSelector {
    fn into_model(self) -> MetricSelector {
        MetricSelector {
            name: self.metric.value,
            prometheus: self.prometheus,
            attributes: self.attributes.into_iter().collect(),
            job: self.job,
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

pub use slotel_model::time::parse_duration;

/// Parses a PromQL expression with `promql-parser`, which panics on durations too
/// large for it (`x[3033…3:3m]`, found by the promql fuzz target): those are refused
/// before it sees them, and any other panic of the parser is an invalid expression too,
/// not a dead request or reload.
pub fn parse_promql(query: &str) -> std::result::Result<promql_parser::parser::Expr, String> {
    if let Some(d) = oversized_duration(query) {
        return Err(format!("the duration {d:?} is out of range"));
    }
    std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .unwrap_or_else(|_| Err("a duration in it is out of range".to_string()))
}

/// Digits a duration of a query may have: 10^12 seconds is over 30,000 years.
const MAX_DURATION_DIGITS: usize = 12;

/// The first duration of `query` with more digits than [`MAX_DURATION_DIGITS`]: a run of
/// digits, outside strings and names, followed by a unit, by `:` or by `]` (a number of
/// seconds in a range or subquery).
fn oversized_duration(query: &str) -> Option<&str> {
    let b = query.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == b'\\' && quote != b'`' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let duration = b.get(i).is_some_and(|c| {
                    matches!(c, b's' | b'm' | b'h' | b'd' | b'w' | b'y' | b':' | b']')
                });
                if duration && i - start > MAX_DURATION_DIGITS {
                    return Some(&query[start..i]);
                }
            }
            _ => i += 1,
        }
    }
    None
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

pub(crate) fn yaml_error(file: &Path, e: &serde_saphyr::Error) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    SpecError {
        file: file.to_path_buf(),
        line,
        column,
        // The message alone: the rendered source snippet would be cut off anyway.
        message: first_line(&e.without_snippet().to_string()),
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

pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && name.len() <= 128
}

/// Expands `paths` (files, or folders whose `*.yaml`/`*.yml` files are read in name
/// order) and parses every SLO in them. All problems in all files are reported together.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<SloDef>> {
    load_paths_with(paths, &DEFAULT_EXTENSIONS)
}

/// The file name endings read in folders by default.
pub const DEFAULT_EXTENSIONS: [&str; 2] = ["yaml", "yml"];

/// [`load_paths`], reading in folders (and their subfolders, in name order) the files
/// whose names end in one of `extensions`; files named directly are read whatever their
/// name.
pub fn load_paths_with(paths: &[PathBuf], extensions: &[&str]) -> Result<Vec<SloDef>> {
    load_paths_noting(paths, extensions).0
}

/// [`load_paths_with`], and the notes on what the files say that slotel accepts and does
/// not use (a DataSource's connection details, the display names of documents other
/// than SLOs), each with its position: `validate` prints them, `serve` logs them.
pub fn load_paths_noting(
    paths: &[PathBuf],
    extensions: &[&str],
) -> (Result<Vec<SloDef>>, Vec<SpecError>) {
    let mut notes = Vec::new();
    let result = load_all(paths, extensions, &mut notes);
    notes.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    (result, notes)
}

fn load_all(
    paths: &[PathBuf],
    extensions: &[&str],
    notes: &mut Vec<SpecError>,
) -> Result<Vec<SloDef>> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, extensions, true, &mut files)?;
    }
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
        texts.push((file, text));
    }
    load_texts_into(&texts, notes)
}

/// Parses SLO files already read, as [`load_paths_noting`] parses the files it reads:
/// each `(path, text)` in any of the formats, the path naming it in positions. The
/// notes are in file order.
pub fn load_texts(texts: &[(PathBuf, String)]) -> (Result<Vec<SloDef>>, Vec<SpecError>) {
    let mut notes = Vec::new();
    let result = load_texts_into(texts, &mut notes);
    (result, notes)
}

fn load_texts_into(texts: &[(PathBuf, String)], notes: &mut Vec<SpecError>) -> Result<Vec<SloDef>> {
    let mut errors = Vec::new();
    let mut all: Vec<(SloDef, Origin)> = Vec::new();
    let mut open_slo = Vec::new();
    for (file, text) in texts {
        if sloth::is_sloth(text) {
            all.extend(sloth::parse_file(file, text, &mut errors));
            continue;
        }
        if openslo::is_openslo(text) {
            open_slo.push((file.as_path(), openslo::parse_file(file, text, &mut errors)));
            continue;
        }
        let (defs, errs) = parse_with_origin(file, text);
        all.extend(defs);
        errors.extend(errs);
    }
    all.extend(openslo::translate(&open_slo, &mut errors));
    notes.extend(openslo::notes(&open_slo));
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
mod tests;

fn default_min_events() -> u64 {
    slotel_model::DEFAULT_MIN_EVENTS
}

/// The files under `path` (itself, when `named` and it is a file) to read.
fn collect_files(
    path: &Path,
    extensions: &[&str],
    named: bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_dir() {
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e));
        if named || wanted {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        collect_files(&entry, extensions, false, out)?;
    }
    Ok(())
}
