//! The SLO series in the OpenMetrics text format, for `/metrics` when an existing
//! Prometheus scrapes slotel.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::promql::{self, Evaluation, Labels, Metric, Value, format_value};
use crate::source::QueryEngine;

/// The gauges exposed: every series but the counters, whose start depends on the query.
const SELECTOR: &str = r#"{__name__=~"slotel_slo_(objective|sli|error_ratio|burn_rate|error_budget_remaining|events_rate|good_events_rate|latency_seconds)"}"#;

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The SLO series of every tenant (of `only`, when given) at the current minute, one
/// family per metric.
pub async fn slo_series(source: &QueryEngine, only: Option<&str>) -> String {
    let Ok(expr) = promql::parse(SELECTOR) else {
        return String::new();
    };
    let now = source.engine.now_nanos().div_euclid(1_000_000);
    let mut families: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
    for tenant in source.engine.tenants() {
        if only.is_some_and(|t| t != tenant) {
            continue;
        }
        let eval = match Evaluation::prepare(
            source,
            &tenant,
            &expr,
            vec![now],
            Duration::from_secs(30),
        )
        .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(tenant, error = %e.message(), "Cannot compute the SLO series for /metrics.");
                continue;
            }
        };
        if let Ok(Value::Vector(series)) = eval.eval(&expr) {
            for mut s in series {
                let Some(v) = s.values[0] else { continue };
                let name = s.labels.remove("__name__").unwrap_or_default();
                families.entry(name).or_default().push((s.labels, v));
            }
        }
    }
    let mut out = String::new();
    for m in Metric::ALL {
        let Some(series) = families.get(m.name()) else {
            continue;
        };
        let _ = writeln!(out, "# HELP {} {}", m.name(), m.help());
        let _ = writeln!(out, "# TYPE {} {}", m.name(), m.kind());
        for (labels, v) in series {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(
                out,
                "{}{{{}}} {}",
                m.name(),
                labels.join(","),
                format_value(*v)
            );
        }
    }
    out
}
