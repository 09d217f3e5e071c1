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

mod aggregation;
mod binary;
mod catalog;
mod functions;
mod selection;

use binary::*;
use catalog::*;
pub use catalog::{Target, series_labels, targets, targets_of};
use selection::*;
pub use slotel_model::catalog::{LATENCY_QUANTILES, LATENCY_WINDOWS, Metric, RESERVED, SLO_WINDOW};

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
    /// The data the query reads is not all available now (a cluster's partition has no
    /// owner answering); retrying later can succeed.
    Unavailable(String),
}

impl PromError {
    /// Prometheus' `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromError::BadData(_) => "bad_data",
            PromError::Execution(_) => "execution",
            PromError::Timeout => "timeout",
            PromError::Unavailable(_) => "unavailable",
        }
    }

    /// The message.
    pub fn message(&self) -> String {
        match self {
            PromError::BadData(m) | PromError::Execution(m) | PromError::Unavailable(m) => {
                m.clone()
            }
            PromError::Timeout => "query timed out in expression evaluation".into(),
        }
    }
}

fn bad(msg: impl Into<String>) -> PromError {
    PromError::BadData(msg.into())
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
    slotel_spec::parse_promql(query).map_err(|e| bad(format!("invalid parameter \"query\": {e}")))
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

impl Evaluation {
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
                let (t, off) = (
                    self.steps.first().copied().unwrap_or(0),
                    offset_ms(&m.vs.offset),
                );
                let out = self
                    .range_samples(&m.vs)
                    .into_iter()
                    .map(|(labels, samples)| (labels, window(&samples, t, range, off).to_vec()))
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
}

/// The longest duration a client may give: about 100 years.
pub const MAX_DURATION_SECONDS: f64 = 3.2e9;

/// A duration from a client: seconds (with a fraction), or a Prometheus duration such as
/// `5m` or `1h30m`. Seconds must be finite, positive and at most
/// [`MAX_DURATION_SECONDS`] (the parser's own conversion panics on anything else). The
/// error says why, to follow `cannot parse "…" to a valid duration`.
pub fn client_duration(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECONDS) {
            return Err(format!(
                "give positive seconds up to {MAX_DURATION_SECONDS:e}, or a duration such as 5m"
            ));
        }
        return Ok(std::time::Duration::from_secs_f64(secs));
    }
    let d = promql_parser::util::parse_duration(s)?;
    if d.as_secs_f64() > MAX_DURATION_SECONDS {
        return Err(format!("longer than {MAX_DURATION_SECONDS:e} seconds"));
    }
    Ok(d)
}
