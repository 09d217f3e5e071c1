//! PromQL over the SLO series slotel computes: the series catalog, and an evaluator for
//! the subset of PromQL that dashboards and alert rules over SLOs use.
//!
//! Queries are parsed by `promql-parser`. Evaluation has two phases: every selector is
//! fetched first (the SLO minutes it needs, from memory and storage; asynchronous), then
//! the expression is evaluated over all steps at once (synchronous), series by series.
//! Series are computed at minute resolution: the sample at `m × 60 s` is the SLO's
//! state with minute `m` as its newest, as `/api/v1/slos` answers during that minute.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::label::Matchers;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Expr, LabelModifier, Offset,
    VectorMatchCardinality, VectorSelector,
};
use slotel_compute::Engine;
use slotel_compute::engine::window_units;
use slotel_compute::latency;
use slotel_compute::math;
use slotel_compute::window::MinuteSeries;
use slotel_model::SloDef;
use slotel_model::names::label_name;
use slotel_model::{BURN_RATE_WINDOWS, format_minutes};

use crate::side::SideSeries;
use crate::source::{MinutesWanted, QueryEngine};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const MS_PER_MINUTE: i64 = 60_000;
/// Most points per series a query may ask for, as Prometheus.
pub const MAX_POINTS: usize = 11_000;
/// Most minutes a query may read per selector (800 days, the longest retention): a few
/// points with a huge step must not make the server hold years of minutes.
pub const MAX_RANGE_MINUTES: i64 = 800 * 1440;

/// Label sets, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// A failed query, with Prometheus' error type.
#[derive(Debug, Clone, PartialEq)]
pub enum PromError {
    /// The query or its parameters are invalid, or use PromQL slotel does not evaluate.
    BadData(String),
    /// The query is valid but cannot be evaluated.
    Execution(String),
    /// The query ran past its time limit.
    Timeout,
}

impl PromError {
    /// Prometheus' `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromError::BadData(_) => "bad_data",
            PromError::Execution(_) => "execution",
            PromError::Timeout => "timeout",
        }
    }

    /// The message.
    pub fn message(&self) -> String {
        match self {
            PromError::BadData(m) | PromError::Execution(m) => m.clone(),
            PromError::Timeout => "query timed out in expression evaluation".into(),
        }
    }
}

fn bad(msg: impl Into<String>) -> PromError {
    PromError::BadData(msg.into())
}

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
    pub fn name(self) -> &'static str {
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
    fn windowed(self) -> bool {
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

/// Which window a series is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WindowSpec {
    /// A fixed number of minutes.
    Fixed(u32),
    /// The SLO's own window as it stands at the sample's time (calendar windows grow).
    Slo,
}

/// One SLO, or one group of a grouped SLO, whose series are served.
#[derive(Debug, Clone)]
pub struct Target {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// The group's labels (empty for the SLO as a whole).
    pub group: Vec<(String, String)>,
    /// The labels every series of the target carries.
    pub labels: Labels,
}

/// One series: its target, metric and window, and its labels.
#[derive(Debug, Clone)]
struct SeriesId {
    target: usize,
    metric: Metric,
    window: Option<WindowSpec>,
    /// The quantile of a latency series.
    quantile: Option<f64>,
    labels: Labels,
}

/// Targets whose minutes one storage pass reads (each holds its range's counts, 16 bytes
/// a minute, until its samples are computed).
const READ_TOGETHER: usize = 32;

/// The quantiles of `slotel_slo_latency_seconds`.
pub const LATENCY_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];
/// The windows of `slotel_slo_latency_seconds`, in minutes.
pub const LATENCY_WINDOWS: [u32; 3] = [1, 5, 60];

/// Labels that slotel sets and an SLO's own labels cannot replace.
const RESERVED: [&str; 6] = ["__name__", "slo", "service", "tenant", "window", "quantile"];

/// The targets of `tenant`: each SLO, and each group of the grouped ones.
pub fn targets(engine: &Engine, tenant: &str) -> Vec<Target> {
    let mut out = Vec::new();
    for def in engine.slos(tenant) {
        let mut base = Labels::new();
        for (k, v) in &def.labels {
            if let Some(k) = label_name(k).filter(|k| !RESERVED.contains(&k.as_str())) {
                base.insert(k, v.clone());
            }
        }
        base.insert("slo".into(), def.name.clone());
        base.insert("service".into(), def.service.clone());
        base.insert("tenant".into(), def.tenant.clone());
        let groups = engine.groups(tenant, &def.name);
        out.push(Target {
            def: Arc::clone(&def),
            group: Vec::new(),
            labels: base.clone(),
        });
        for group in groups {
            let mut labels = base.clone();
            for (k, v) in &group {
                if let Some(k) = label_name(k).filter(|k| !RESERVED.contains(&k.as_str())) {
                    labels.insert(k, v.clone());
                }
            }
            out.push(Target {
                def: Arc::clone(&def),
                group,
                labels,
            });
        }
    }
    out
}

/// The `window` label of the series over each SLO's own window, whatever its length: a
/// dashboard over SLOs of 7, 28 and 30 days selects them all with `window="slo"`.
pub const SLO_WINDOW: &str = "slo";

/// The windows of a target: the standard alert windows, the SLO's own, and the SLO's
/// own again as [`SLO_WINDOW`].
fn windows(def: &SloDef) -> Vec<(String, WindowSpec)> {
    let mut out: Vec<(String, WindowSpec)> = BURN_RATE_WINDOWS
        .iter()
        .map(|&w| (format_minutes(w), WindowSpec::Fixed(w)))
        .collect();
    let label = def.window.to_string();
    match out.iter_mut().find(|(l, _)| *l == label) {
        Some(slot) => slot.1 = WindowSpec::Slo,
        None => out.push((label, WindowSpec::Slo)),
    }
    out.push((SLO_WINDOW.to_string(), WindowSpec::Slo));
    out
}

/// Every series of `targets`.
fn catalog(targets: &[Target]) -> Vec<SeriesId> {
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let wins = windows(&t.def);
        for metric in Metric::ALL {
            let mut push_quantile = |window: Option<(String, WindowSpec)>,
                                     quantile: Option<f64>| {
                let mut labels = t.labels.clone();
                labels.insert("__name__".into(), metric.name().into());
                let spec = window.map(|(label, spec)| {
                    labels.insert("window".into(), label);
                    spec
                });
                if let Some(q) = quantile {
                    labels.insert("quantile".into(), format_value(q));
                }
                out.push(SeriesId {
                    target: i,
                    metric,
                    window: spec,
                    quantile,
                    labels,
                });
            };
            if metric == Metric::LatencySeconds {
                // Histograms are kept per SLO, not per group.
                if t.def.has_durations() && t.group.is_empty() {
                    for w in LATENCY_WINDOWS {
                        for q in LATENCY_QUANTILES {
                            push_quantile(Some((format_minutes(w), WindowSpec::Fixed(w))), Some(q));
                        }
                    }
                }
                continue;
            }
            let mut push = |window| push_quantile(window, None);
            if metric.windowed() {
                for w in &wins {
                    push(Some(w.clone()));
                }
            } else if metric == Metric::BudgetRemaining {
                push(Some((t.def.window.to_string(), WindowSpec::Slo)));
            } else {
                push(None);
            }
        }
    }
    out
}

/// Whether `labels` satisfy the selector's name and matchers.
fn selects(name: Option<&str>, matchers: &Matchers, labels: &Labels) -> bool {
    let get = |k: &str| labels.get(k).map_or("", String::as_str);
    if let Some(n) = name {
        if get("__name__") != n {
            return false;
        }
    }
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
    if matchers.or_matchers.is_empty() {
        all(&matchers.matchers)
    } else {
        all(&matchers.matchers) && matchers.or_matchers.iter().any(|g| all(g))
    }
}

/// The label sets of every series of `targets` and `side` that any of `selectors`
/// picks (all of them when there is none).
pub fn series_labels(
    targets: &[Target],
    side: &[SideSeries],
    selectors: &[VectorSelector],
) -> Vec<Labels> {
    catalog(targets)
        .into_iter()
        .map(|s| s.labels)
        .chain(side.iter().map(|s| s.labels.clone()))
        .filter(|labels| {
            selectors.is_empty()
                || selectors
                    .iter()
                    .any(|v| selects(v.name.as_deref(), &v.matchers, labels))
        })
        .collect()
}

/// The value of a series at minute `m` from the target's `series`.
fn sample(
    def: &SloDef,
    s: &MinuteSeries,
    metric: Metric,
    window: Option<WindowSpec>,
    m: i64,
) -> Option<f64> {
    let ratio = def.objective_ratio();
    let counted = def.counted();
    let minutes = match window {
        Some(WindowSpec::Fixed(w)) => w,
        Some(WindowSpec::Slo) | None => def.window.minutes_at(m * NANOS_PER_MINUTE).max(1),
    };
    match metric {
        Metric::Objective => Some(ratio),
        Metric::EventsTotal => Some(s.cumulative(m).1 as f64),
        Metric::GoodEventsTotal => {
            let (x, t) = s.cumulative(m);
            Some(counted.tally(x, t).good as f64)
        }
        _ => {
            let (slotel_model::Tally { good, total, .. }, (gu, tu)) =
                window_units(def, s, m, minutes);
            let seconds = f64::from(minutes) * 60.0;
            match metric {
                Metric::Sli => math::sli(gu, tu),
                Metric::ErrorRatio => (tu > 0.0).then(|| (tu - gu) / tu),
                Metric::BurnRate => math::burn_rate(gu, tu, ratio),
                Metric::BudgetRemaining => math::budget_remaining(gu, tu, ratio),
                Metric::EventsRate => Some(total as f64 / seconds),
                Metric::GoodEventsRate => Some(good as f64 / seconds),
                _ => None,
            }
        }
    }
}

/// The latency series `ids` of SLO `name` at minutes `lo..=hi` (only the `wanted` ones
/// when given): each window's histogram slides over the minutes, one minute added and
/// one taken away per step.
async fn latency_series(
    source: &QueryEngine,
    tenant: &str,
    name: &str,
    ids: &[&SeriesId],
    lo: i64,
    hi: i64,
    wanted: Option<&HashSet<i64>>,
) -> Vec<Fetched> {
    let width = |id: &SeriesId| match id.window {
        Some(WindowSpec::Fixed(w)) => i64::from(w),
        _ => 1,
    };
    let longest = ids.iter().map(|id| width(id)).max().unwrap_or(1);
    let Some(minutes) = source.latency(tenant, name, lo - longest + 1, hi).await else {
        return Vec::new();
    };
    let mut out: Vec<Fetched> = ids
        .iter()
        .map(|id| Fetched {
            labels: id.labels.clone(),
            lo,
            samples: vec![None; (hi - lo + 1) as usize],
        })
        .collect();
    let mut widths: Vec<i64> = ids.iter().map(|id| width(id)).collect();
    widths.sort_unstable();
    widths.dedup();
    for w in widths {
        let mut running = latency::histogram();
        for (_, h) in minutes.range(lo - w + 1..lo) {
            latency::merge(&mut running, h);
        }
        for m in lo..=hi {
            if let Some(h) = minutes.get(&m) {
                latency::merge(&mut running, h);
            }
            if let Some(h) = minutes.get(&(m - w)) {
                // `running` holds every count of `h`: this cannot fail.
                let _ = running.subtract(h);
            }
            if wanted.is_some_and(|set| !set.contains(&m)) {
                continue;
            }
            for (f, id) in out.iter_mut().zip(ids).filter(|(_, id)| width(id) == w) {
                f.samples[(m - lo) as usize] = id
                    .quantile
                    .and_then(|q| latency::quantile_seconds(&running, q));
            }
        }
    }
    out
}

/// One fetched series: its labels and samples at minutes `lo..`, `None` where absent.
#[derive(Debug, Clone)]
struct Fetched {
    labels: Labels,
    lo: i64,
    samples: Vec<Option<f64>>,
}

impl Fetched {
    fn at(&self, minute: i64) -> Option<f64> {
        let i = usize::try_from(minute - self.lo).ok()?;
        self.samples.get(i).copied().flatten()
    }
}

/// What the evaluator works on: scalars and instant vectors over every step.
#[derive(Debug, Clone)]
pub enum Value {
    /// One number per step.
    Scalar(Vec<f64>),
    /// Series with one optional value per step.
    Vector(Vec<Series>),
    /// A string literal.
    String(String),
    /// A range vector, for an instant query of a range selector: series of
    /// (timestamp ms, value) samples.
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
}

/// An instant-vector series over the steps.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its labels.
    pub labels: Labels,
    /// Its value at each step, `None` where absent.
    pub values: Vec<Option<f64>>,
}

/// A selector's identity in the fetched map: its address in the parsed expression.
fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn check_at(at: &Option<AtModifier>) -> Result<(), PromError> {
    match at {
        Some(_) => Err(bad("the @ modifier is not supported by slotel")),
        None => Ok(()),
    }
}

/// A query's evaluation: the steps (ms), the fetched selectors, a deadline.
pub struct Evaluation {
    steps: Vec<i64>,
    fetched: HashMap<usize, Vec<Fetched>>,
    deadline: Instant,
}

impl std::fmt::Debug for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluation")
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

/// The selectors of `expr`, with the lookback (range, ms) each needs, checking that no
/// unsupported construct is used.
fn selectors<'a>(
    expr: &'a Expr,
    out: &mut Vec<(&'a VectorSelector, i64)>,
) -> Result<(), PromError> {
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selectors(p, out)?;
            }
            selectors(&a.expr, out)
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out)?;
            selectors(&b.rhs, out)
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(_) => Err(bad("subqueries are not supported by slotel")),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(v) => {
            check_at(&v.at)?;
            out.push((v, 0));
            Ok(())
        }
        Expr::MatrixSelector(m) => {
            check_at(&m.vs.at)?;
            out.push((&m.vs, m.range.as_millis() as i64));
            Ok(())
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out)?;
            }
            Ok(())
        }
        Expr::Extension(_) => Err(bad("extension expressions are not supported")),
    }
}

/// The steps of a range query, `start..=end` by `step` (ms).
pub fn steps(start: i64, end: i64, step: i64) -> Result<Vec<i64>, PromError> {
    if end < start {
        return Err(bad("end timestamp must not be before start time"));
    }
    if step <= 0 {
        return Err(bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let n = end.saturating_sub(start) / step + 1;
    if n as usize > MAX_POINTS {
        return Err(bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((0..n).map(|i| start + i * step).collect())
}

impl Evaluation {
    /// Fetches what `expr` needs over `steps` (ms) for `tenant`.
    pub async fn prepare(
        source: &QueryEngine,
        tenant: &str,
        expr: &Expr,
        steps: Vec<i64>,
        timeout: Duration,
    ) -> Result<Self, PromError> {
        let deadline = Instant::now() + timeout;
        let mut sels = Vec::new();
        selectors(expr, &mut sels)?;
        let targets = targets(&source.engine, tenant);
        let all = catalog(&targets);
        let names: Vec<Option<&str>> = sels.iter().map(|(vs, _)| vs.name.as_deref()).collect();
        let side = source.side_series(tenant, &names);
        let mut fetched = HashMap::new();
        let (first, last) = (*steps.first().unwrap_or(&0), *steps.last().unwrap_or(&0));
        for (vs, range) in sels {
            let off = offset_ms(&vs.offset);
            // Minutes whose samples the selector may read.
            let hi = (last - off).div_euclid(MS_PER_MINUTE);
            let lo = if range > 0 {
                (first - off - range).div_euclid(MS_PER_MINUTE) + 1
            } else {
                (first - off).div_euclid(MS_PER_MINUTE)
            };
            if hi.saturating_sub(lo) > MAX_RANGE_MINUTES {
                return Err(bad(
                    "the query reads more than 800 days: shorten the range, the range selector or the offset",
                ));
            }
            // For instant selectors only the steps' minutes are computed.
            let wanted: Option<HashSet<i64>> = (range == 0).then(|| {
                steps
                    .iter()
                    .map(|t| (t - off).div_euclid(MS_PER_MINUTE))
                    .collect()
            });
            let picked: Vec<&SeriesId> = all
                .iter()
                .filter(|s| selects(vs.name.as_deref(), &vs.matchers, &s.labels))
                .collect();
            let mut by_target: BTreeMap<usize, Vec<&SeriesId>> = BTreeMap::new();
            for s in picked {
                by_target.entry(s.target).or_default().push(s);
            }
            let mut out: Vec<Fetched> = side
                .iter()
                .filter(|s| selects(vs.name.as_deref(), &vs.matchers, &s.labels))
                .map(|s| Fetched {
                    labels: s.labels.clone(),
                    lo,
                    samples: (lo..=hi).map(|minute| s.at(minute)).collect(),
                })
                .collect();
            // Counts are read for up to `READ_TOGETHER` targets at a time: one pass over
            // the stored minutes serves them all, and memory stays bounded.
            let by_target: Vec<(usize, Vec<&SeriesId>)> = by_target.into_iter().collect();
            for chunk in by_target.chunks(READ_TOGETHER) {
                if Instant::now() > deadline {
                    return Err(PromError::Timeout);
                }
                let mut wants = Vec::new();
                let mut owners = Vec::new();
                for (ti, ids) in chunk {
                    let t = &targets[*ti];
                    let (latency_ids, ids): (Vec<&SeriesId>, Vec<&SeriesId>) = ids
                        .iter()
                        .partition(|id| id.metric == Metric::LatencySeconds);
                    if !latency_ids.is_empty() {
                        out.extend(
                            latency_series(
                                source,
                                tenant,
                                &t.def.name,
                                &latency_ids,
                                lo,
                                hi,
                                wanted.as_ref(),
                            )
                            .await,
                        );
                    }
                    if ids.is_empty() {
                        continue;
                    }
                    let lookback = i64::from(
                        t.def
                            .window
                            .max_minutes()
                            .max(*BURN_RATE_WINDOWS.last().unwrap_or(&0)),
                    );
                    wants.push(MinutesWanted {
                        name: &t.def.name,
                        group: (!t.group.is_empty()).then_some(t.group.as_slice()),
                        lo: lo - lookback,
                    });
                    owners.push(ids);
                }
                let read = source.minutes_many(tenant, &wants, hi).await;
                for (ids, m) in owners.into_iter().zip(read) {
                    let Some(m) = m else { continue };
                    for id in ids {
                        let samples = (lo..=hi)
                            .map(|minute| match &wanted {
                                Some(w) if !w.contains(&minute) => None,
                                _ => sample(&m.def, &m.series, id.metric, id.window, minute),
                            })
                            .collect();
                        out.push(Fetched {
                            labels: id.labels.clone(),
                            lo,
                            samples,
                        });
                    }
                }
            }
            fetched.insert(key(vs), out);
        }
        Ok(Self {
            steps,
            fetched,
            deadline,
        })
    }

    fn check_deadline(&self) -> Result<(), PromError> {
        if Instant::now() > self.deadline {
            Err(PromError::Timeout)
        } else {
            Ok(())
        }
    }

    /// Evaluates `expr` (the one given to [`Evaluation::prepare`]).
    pub fn eval(&self, expr: &Expr) -> Result<Value, PromError> {
        self.check_deadline()?;
        let n = self.steps.len();
        match expr {
            Expr::NumberLiteral(x) => Ok(Value::Scalar(vec![x.val; n])),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Value::Scalar(v) => Ok(Value::Scalar(v.into_iter().map(|x| -x).collect())),
                Value::Vector(series) => Ok(Value::Vector(
                    series
                        .into_iter()
                        .map(|mut s| {
                            s.labels.remove("__name__");
                            s.values = s.values.into_iter().map(|v| v.map(|x| -x)).collect();
                            s
                        })
                        .collect(),
                )),
                _ => Err(bad("unary minus needs a scalar or an instant vector")),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.select(vs))),
            Expr::MatrixSelector(m) => {
                if n != 1 {
                    return Err(bad(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
                    ));
                }
                let range = m.range.as_millis() as i64;
                let out = self
                    .range_samples(&m.vs, range)
                    .into_iter()
                    .map(|(labels, per_step)| {
                        (labels, per_step.into_iter().next().unwrap_or_default())
                    })
                    .filter(|(_, s)| !s.is_empty())
                    .collect();
                Ok(Value::Matrix(out))
            }
            Expr::Call(c) => self.call(c),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Subquery(_) => Err(bad("subqueries are not supported by slotel")),
            Expr::Extension(_) => Err(bad("extension expressions are not supported")),
        }
    }

    fn select(&self, vs: &VectorSelector) -> Vec<Series> {
        let off = offset_ms(&vs.offset);
        let Some(fetched) = self.fetched.get(&key(vs)) else {
            return Vec::new();
        };
        fetched
            .iter()
            .map(|f| Series {
                labels: f.labels.clone(),
                values: self
                    .steps
                    .iter()
                    .map(|t| f.at((t - off).div_euclid(MS_PER_MINUTE)))
                    .collect(),
            })
            .collect()
    }

    /// For each series of the selector, its samples `(ms, value)` in `(t - range, t]` at
    /// each step `t`.
    #[allow(clippy::type_complexity)]
    fn range_samples(
        &self,
        vs: &VectorSelector,
        range: i64,
    ) -> Vec<(Labels, Vec<Vec<(i64, f64)>>)> {
        let off = offset_ms(&vs.offset);
        let Some(fetched) = self.fetched.get(&key(vs)) else {
            return Vec::new();
        };
        fetched
            .iter()
            .map(|f| {
                let per_step = self
                    .steps
                    .iter()
                    .map(|t| {
                        let end = t - off;
                        let first = (end - range).div_euclid(MS_PER_MINUTE) + 1;
                        let last = end.div_euclid(MS_PER_MINUTE);
                        (first..=last)
                            .filter_map(|m| f.at(m).map(|v| (m * MS_PER_MINUTE + off, v)))
                            .collect()
                    })
                    .collect();
                (f.labels.clone(), per_step)
            })
            .collect()
    }

    fn vector_arg(&self, c: &Call, i: usize) -> Result<Vec<Series>, PromError> {
        match c.args.args.get(i).map(|a| self.eval(a)).transpose()? {
            Some(Value::Vector(v)) => Ok(v),
            _ => Err(bad(format!(
                "function {} needs an instant vector as argument {}",
                c.func.name,
                i + 1
            ))),
        }
    }

    fn scalar_arg(&self, c: &Call, i: usize) -> Result<Vec<f64>, PromError> {
        match c.args.args.get(i).map(|a| self.eval(a)).transpose()? {
            Some(Value::Scalar(v)) => Ok(v),
            _ => Err(bad(format!(
                "function {} needs a scalar as argument {}",
                c.func.name,
                i + 1
            ))),
        }
    }

    fn call(&self, c: &Call) -> Result<Value, PromError> {
        let name = c.func.name;
        let n = self.steps.len();
        let map = |series: Vec<Series>, f: &dyn Fn(f64, usize) -> f64| {
            Value::Vector(
                series
                    .into_iter()
                    .map(|mut s| {
                        s.labels.remove("__name__");
                        s.values = s
                            .values
                            .iter()
                            .enumerate()
                            .map(|(i, v)| v.map(|x| f(x, i)))
                            .collect();
                        s
                    })
                    .collect(),
            )
        };
        match name {
            "time" => Ok(Value::Scalar(
                self.steps.iter().map(|t| *t as f64 / 1000.0).collect(),
            )),
            "vector" => {
                let v = self.scalar_arg(c, 0)?;
                Ok(Value::Vector(vec![Series {
                    labels: Labels::new(),
                    values: v.into_iter().map(Some).collect(),
                }]))
            }
            "scalar" => {
                let v = self.vector_arg(c, 0)?;
                Ok(Value::Scalar(
                    (0..n)
                        .map(|i| {
                            let present: Vec<f64> = v.iter().filter_map(|s| s.values[i]).collect();
                            if present.len() == 1 {
                                present[0]
                            } else {
                                f64::NAN
                            }
                        })
                        .collect(),
                ))
            }
            "clamp_min" | "clamp_max" => {
                let v = self.vector_arg(c, 0)?;
                let bound = self.scalar_arg(c, 1)?;
                Ok(if name == "clamp_min" {
                    map(v, &|x, i| x.max(bound[i]))
                } else {
                    map(v, &|x, i| x.min(bound[i]))
                })
            }
            "clamp" => {
                let v = self.vector_arg(c, 0)?;
                let (lo, hi) = (self.scalar_arg(c, 1)?, self.scalar_arg(c, 2)?);
                Ok(map(v, &|x, i| {
                    if lo[i] > hi[i] {
                        f64::NAN
                    } else {
                        x.max(lo[i]).min(hi[i])
                    }
                }))
            }
            "abs" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.abs())),
            "ceil" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.ceil())),
            "floor" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.floor())),
            "sqrt" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.sqrt())),
            "exp" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.exp())),
            "ln" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.ln())),
            "round" if c.args.args.len() == 1 => {
                Ok(map(self.vector_arg(c, 0)?, &|x, _| (x + 0.5).floor()))
            }
            "sort" | "sort_desc" => {
                let mut v = self.vector_arg(c, 0)?;
                let key = |s: &Series| s.values.last().copied().flatten().unwrap_or(f64::NAN);
                v.sort_by(|a, b| key(a).total_cmp(&key(b)));
                if name == "sort_desc" {
                    v.reverse();
                }
                Ok(Value::Vector(v))
            }
            "rate" | "increase" | "delta" | "sum_over_time" | "avg_over_time" | "max_over_time"
            | "min_over_time" | "count_over_time" | "last_over_time" => {
                let Some(Expr::MatrixSelector(m)) = c.args.args.first().map(|a| a.as_ref()) else {
                    return Err(bad(format!("function {name} needs a range vector")));
                };
                let range = m.range.as_millis() as i64;
                let mut out = Vec::new();
                for (mut labels, per_step) in self.range_samples(&m.vs, range) {
                    self.check_deadline()?;
                    if name != "last_over_time" {
                        labels.remove("__name__");
                    }
                    let values = per_step
                        .iter()
                        .zip(&self.steps)
                        .map(|(samples, t)| {
                            over_time(name, samples, *t - offset_ms(&m.vs.offset), range)
                        })
                        .collect::<Vec<_>>();
                    if values.iter().any(Option::is_some) {
                        out.push(Series { labels, values });
                    }
                }
                Ok(Value::Vector(out))
            }
            other => Err(bad(format!(
                "function {other}() is not supported by slotel"
            ))),
        }
    }

    fn aggregate(&self, a: &AggregateExpr) -> Result<Value, PromError> {
        let op = a.op.to_string();
        if !matches!(op.as_str(), "sum" | "avg" | "min" | "max" | "count") {
            return Err(bad(format!("aggregation {op} is not supported by slotel")));
        }
        let Value::Vector(input) = self.eval(&a.expr)? else {
            return Err(bad(format!("{op} needs an instant vector")));
        };
        let key = |labels: &Labels| project(labels, a.modifier.as_ref(), |_| Labels::new());
        let mut groups: BTreeMap<Labels, Vec<&Series>> = BTreeMap::new();
        for s in &input {
            groups.entry(key(&s.labels)).or_default().push(s);
        }
        let n = self.steps.len();
        let out = groups
            .into_iter()
            .map(|(labels, members)| {
                let values = (0..n)
                    .map(|i| {
                        let xs: Vec<f64> = members.iter().filter_map(|s| s.values[i]).collect();
                        if xs.is_empty() {
                            return None;
                        }
                        Some(match op.as_str() {
                            "sum" => xs.iter().sum(),
                            "avg" => xs.iter().sum::<f64>() / xs.len() as f64,
                            "min" => xs.iter().copied().fold(f64::INFINITY, |m, x| {
                                if x < m || m.is_nan() { x } else { m }
                            }),
                            "max" => xs.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
                                if x > m || m.is_nan() { x } else { m }
                            }),
                            _ => xs.len() as f64,
                        })
                    })
                    .collect();
                Series { labels, values }
            })
            .filter(|s| s.values.iter().any(Option::is_some))
            .collect();
        Ok(Value::Vector(out))
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Value, PromError> {
        let op = b.op.to_string();
        let return_bool = b.return_bool();
        let comparison = b.op.is_comparison_operator();
        let (lhs, rhs) = (self.eval(&b.lhs)?, self.eval(&b.rhs)?);
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&x, &y)| sample_of(&op, x, y, x, comparison, true).unwrap_or(0.0))
                    .collect(),
            )),
            (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(scalar_op(
                v,
                &s,
                &op,
                comparison,
                return_bool,
                false,
            ))),
            (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(scalar_op(
                v,
                &s,
                &op,
                comparison,
                return_bool,
                true,
            ))),
            (Value::Vector(l), Value::Vector(r)) => {
                self.vector_op(b, &op, l, r, comparison, return_bool)
            }
            _ => Err(bad(format!(
                "operator {op} needs scalars or instant vectors"
            ))),
        }
    }

    fn vector_op(
        &self,
        b: &BinaryExpr,
        op: &str,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        comparison: bool,
        return_bool: bool,
    ) -> Result<Value, PromError> {
        let modifier = b.modifier.as_ref();
        let matching = modifier.and_then(|m| m.matching.as_ref());
        if let Some(m) = modifier {
            if matches!(
                m.card,
                VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_)
            ) {
                return Err(bad(
                    "group_left and group_right are not supported by slotel",
                ));
            }
        }
        let signature = |labels: &Labels| {
            project(labels, matching, |l| {
                l.iter()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
        };
        let n = self.steps.len();
        if b.op.is_set_operator() {
            let mut right: HashMap<Labels, Vec<&Series>> = HashMap::new();
            for s in &rhs {
                right.entry(signature(&s.labels)).or_default().push(s);
            }
            let present = |sig: &Labels, i: usize| {
                right
                    .get(sig)
                    .is_some_and(|ss| ss.iter().any(|s| s.values[i].is_some()))
            };
            let mut out: Vec<Series> = lhs
                .iter()
                .map(|s| {
                    let sig = signature(&s.labels);
                    let values = (0..n)
                        .map(|i| match op {
                            "and" => s.values[i].filter(|_| present(&sig, i)),
                            "unless" => s.values[i].filter(|_| !present(&sig, i)),
                            _ => s.values[i],
                        })
                        .collect();
                    Series {
                        labels: s.labels.clone(),
                        values,
                    }
                })
                .collect();
            if op == "or" {
                let mut left: HashMap<Labels, Vec<usize>> = HashMap::new();
                for (j, s) in lhs.iter().enumerate() {
                    left.entry(signature(&s.labels)).or_default().push(j);
                }
                for s in &rhs {
                    let sig = signature(&s.labels);
                    let values = (0..n)
                        .map(|i| {
                            let taken = left
                                .get(&sig)
                                .is_some_and(|js| js.iter().any(|&j| lhs[j].values[i].is_some()));
                            if taken { None } else { s.values[i] }
                        })
                        .collect();
                    out.push(Series {
                        labels: s.labels.clone(),
                        values,
                    });
                }
            }
            out.retain(|s| s.values.iter().any(Option::is_some));
            return Ok(Value::Vector(out));
        }
        let mut right: HashMap<Labels, &Series> = HashMap::new();
        for s in &rhs {
            if right.insert(signature(&s.labels), s).is_some() {
                return Err(PromError::Execution(
                    "found duplicate series for the match group on the right hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side".into(),
                ));
            }
        }
        let mut seen: HashSet<Labels> = HashSet::new();
        let mut out = Vec::new();
        for l in &lhs {
            let sig = signature(&l.labels);
            let Some(r) = right.get(&sig) else { continue };
            if !seen.insert(sig) {
                return Err(PromError::Execution(
                    "found duplicate series for the match group on the left hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side".into(),
                ));
            }
            let mut labels = l.labels.clone();
            if !comparison || return_bool {
                labels.remove("__name__");
            }
            match matching {
                Some(LabelModifier::Include(ls)) => labels.retain(|k, _| ls.labels.contains(k)),
                Some(LabelModifier::Exclude(ls)) => labels.retain(|k, _| !ls.labels.contains(k)),
                None => {}
            }
            let values = (0..n)
                .map(|i| match (l.values[i], r.values[i]) {
                    (Some(x), Some(y)) => sample_of(op, x, y, x, comparison, return_bool),
                    _ => None,
                })
                .collect();
            out.push(Series { labels, values });
        }
        out.retain(|s| s.values.iter().any(Option::is_some));
        Ok(Value::Vector(out))
    }
}

/// The labels a `by`/`on` modifier keeps (the listed ones), or a `without`/`ignoring`
/// modifier keeps (all but the listed ones and the name); `otherwise` without one.
fn project(
    labels: &Labels,
    modifier: Option<&LabelModifier>,
    otherwise: impl FnOnce(&Labels) -> Labels,
) -> Labels {
    match modifier {
        Some(LabelModifier::Include(ls)) => labels
            .iter()
            .filter(|(k, _)| ls.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ls)) => labels
            .iter()
            .filter(|(k, _)| !ls.labels.contains(k) && k.as_str() != "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => otherwise(labels),
    }
}

/// `x op y`: the arithmetic result, and for comparisons whether it holds.
fn apply(op: &str, x: f64, y: f64) -> Option<(f64, bool)> {
    Some(match op {
        "+" => (x + y, true),
        "-" => (x - y, true),
        "*" => (x * y, true),
        "/" => (x / y, true),
        "%" => (x % y, true),
        "^" => (x.powf(y), true),
        "atan2" => (x.atan2(y), true),
        "==" => (x, x == y),
        "!=" => (x, x != y),
        ">" => (x, x > y),
        "<" => (x, x < y),
        ">=" => (x, x >= y),
        "<=" => (x, x <= y),
        _ => return None,
    })
}

/// The sample `a op b` gives: the arithmetic result; for a comparison, `kept` (the
/// vector's value) where it holds and nothing where not, or 1/0 with `bool`.
fn sample_of(
    op: &str,
    a: f64,
    b: f64,
    kept: f64,
    comparison: bool,
    return_bool: bool,
) -> Option<f64> {
    let (v, holds) = apply(op, a, b)?;
    match (comparison, return_bool) {
        (false, _) => Some(v),
        (true, true) => Some(f64::from(u8::from(holds))),
        (true, false) => holds.then_some(kept),
    }
}

fn scalar_op(
    series: Vec<Series>,
    s: &[f64],
    op: &str,
    comparison: bool,
    return_bool: bool,
    scalar_left: bool,
) -> Vec<Series> {
    series
        .into_iter()
        .filter_map(|mut v| {
            if !comparison || return_bool {
                v.labels.remove("__name__");
            }
            v.values = v
                .values
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = (*x)?;
                    let (a, b) = if scalar_left { (s[i], x) } else { (x, s[i]) };
                    sample_of(op, a, b, x, comparison, return_bool)
                })
                .collect();
            v.values.iter().any(Option::is_some).then_some(v)
        })
        .collect()
}

/// A `*_over_time`, `rate`, `increase` or `delta` of `samples` in `(end - range, end]`.
fn over_time(name: &str, samples: &[(i64, f64)], end: i64, range: i64) -> Option<f64> {
    let first = samples.first()?;
    match name {
        "sum_over_time" => Some(samples.iter().map(|s| s.1).sum()),
        "avg_over_time" => Some(samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64),
        "max_over_time" => samples.iter().map(|s| s.1).reduce(f64::max),
        "min_over_time" => samples.iter().map(|s| s.1).reduce(f64::min),
        "count_over_time" => Some(samples.len() as f64),
        "last_over_time" => samples.last().map(|s| s.1),
        _ => {
            // Prometheus' extrapolatedRate.
            if samples.len() < 2 {
                return None;
            }
            let last = samples[samples.len() - 1];
            let counter = name != "delta";
            let mut result = last.1 - first.1;
            if counter {
                let mut prev = first.1;
                for s in &samples[1..] {
                    if s.1 < prev {
                        result += prev;
                    }
                    prev = s.1;
                }
            }
            let range_start = end - range;
            let mut to_start = (first.0 - range_start) as f64 / 1000.0;
            let to_end = (end - last.0) as f64 / 1000.0;
            let sampled = (last.0 - first.0) as f64 / 1000.0;
            let avg_step = sampled / (samples.len() - 1) as f64;
            if counter && result > 0.0 && first.1 >= 0.0 {
                let to_zero = sampled * (first.1 / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            let threshold = avg_step * 1.1;
            let mut interval = sampled;
            interval += if to_start < threshold {
                to_start
            } else {
                avg_step / 2.0
            };
            interval += if to_end < threshold {
                to_end
            } else {
                avg_step / 2.0
            };
            let mut factor = interval / sampled;
            if name == "rate" {
                factor /= range as f64 / 1000.0;
            }
            Some(result * factor)
        }
    }
}

/// Formats a sample value as Prometheus does.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Parses a PromQL expression; errors are `bad_data`.
pub fn parse(query: &str) -> Result<Expr, PromError> {
    promql_parser::parser::parse(query)
        .map_err(|e| bad(format!("invalid parameter \"query\": {e}")))
}

/// Parses a selector of `match[]`.
pub fn parse_selector(s: &str) -> Result<VectorSelector, PromError> {
    match parse(s)? {
        Expr::VectorSelector(v) => Ok(v),
        _ => Err(bad(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ))),
    }
}
