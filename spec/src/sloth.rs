//! Sloth `prometheus/v1` input. An SLO whose `error_query` and `total_query` are each
//! `sum(rate(COUNTER{matchers}[{{.window}}]))` (or `increase`) becomes a bad/total
//! metric SLI over the OTLP counters whose Prometheus names (as the Collector's
//! Prometheus exporters write them) are the queries' names, e.g. `http.server.requests`
//! for `http_server_requests_total`. A `job="…"` matcher names the service (it is
//! `service.name` in OTLP); other matchers select data point attributes by their
//! Prometheus label names. Anything else is rejected with the query and the reason.
//! Sloth's period is not in its spec: slotel uses 30 days, Sloth's default.

use std::collections::BTreeMap;
use std::path::Path;

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::{Ctx, Origin, is_valid_name, yaml_error};
use crate::error::SpecError;
use slotel_model::{
    AttrMatch, AttrValue, Budgeting, MetricSelector, Objective, Sli, SloDef, Window,
};

/// Whether a text is a Sloth spec: `version: prometheus/v1` at the top, or Sloth's
/// Kubernetes resource (`apiVersion: sloth.slok.dev/v1`).
pub(crate) fn is_sloth(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        (l.starts_with("version:") && l.contains("prometheus/v1"))
            || (l.starts_with("apiVersion:") && l.contains("sloth.slok.dev/"))
    })
}

/// Sloth's spec. The same struct reads the Kubernetes form's `spec` (camelCase field
/// names, no `version`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    version: Option<Spanned<String>>,
    service: Spanned<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, alias = "sloPlugins", alias = "plugins")]
    slo_plugins: Option<Spanned<IgnoredAny>>,
    slos: Vec<SlothSlo>,
}

/// Sloth's Kubernetes resource: `PrometheusServiceLevel`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Resource {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: ResourceMeta,
    spec: Spec,
}

/// The resource's metadata: its name and namespace become annotations of its SLOs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceMeta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSlo {
    name: Spanned<String>,
    objective: Spanned<f64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sli: SlothSli,
    #[serde(default)]
    alerting: Option<SlothAlerting>,
    #[serde(default, alias = "sloPlugins", alias = "plugins")]
    slo_plugins: Option<Spanned<IgnoredAny>>,
}

/// Sloth's `alerting`: the alert name, labels and annotations of all its alerts, and of
/// the page alert (slotel's `page-fast` and `page-slow` tiers) and the ticket alert
/// (`ticket-fast`, `ticket-slow`), either of which may be disabled.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SlothAlerting {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default, alias = "pageAlert")]
    page_alert: Option<SlothAlert>,
    #[serde(default, alias = "ticketAlert")]
    ticket_alert: Option<SlothAlert>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SlothAlert {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The tier overrides that give slotel's burn-rate tiers what Sloth's `alerting` says:
/// Sloth's page alert is slotel's two page tiers, its ticket alert the two ticket tiers.
fn alert_tiers(
    alerting: &SlothAlerting,
    ctx: &mut Ctx<'_>,
) -> BTreeMap<String, slotel_model::TierOverride> {
    let mut tiers = BTreeMap::new();
    if let Some(name) = &alerting.name
        && !is_valid_alert_name(&name.value)
    {
        ctx.err(
            name,
            format!(
                "invalid alert name {:?}: letters, digits and '_', not starting with a digit",
                name.value
            ),
        );
    }
    for (alert, names) in [
        (&alerting.page_alert, ["page-fast", "page-slow"]),
        (&alerting.ticket_alert, ["ticket-fast", "ticket-slow"]),
    ] {
        let own = alert.as_ref();
        for tier in names {
            let mut labels = alerting.labels.clone();
            if let Some(name) = &alerting.name {
                labels.insert("alertname".into(), name.value.clone());
            }
            let mut annotations = alerting.annotations.clone();
            if let Some(a) = own {
                labels.extend(a.labels.clone());
                annotations.extend(a.annotations.clone());
            }
            tiers.insert(
                tier.to_string(),
                slotel_model::TierOverride {
                    disabled: own.is_some_and(|a| a.disable),
                    labels,
                    annotations,
                    ..Default::default()
                },
            );
        }
    }
    tiers
}

/// A Prometheus metric name, as an alert name must be.
fn is_valid_alert_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSli {
    #[serde(default)]
    events: Option<Events>,
    #[serde(default)]
    raw: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    plugin: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Events {
    #[serde(alias = "errorQuery")]
    error_query: Spanned<String>,
    #[serde(alias = "totalQuery")]
    total_query: Spanned<String>,
}

/// A counter selected by a query: its Prometheus name, the `job`, other matchers.
#[derive(Debug, PartialEq)]
struct Counter {
    name: String,
    job: Option<String>,
    matchers: Vec<(String, AttrMatch)>,
}

/// The metric a simple counter query reads, for messages about queries slotel cannot
/// run.
pub(crate) fn metric_name(query: &str) -> Option<String> {
    counter(query).ok().map(|c| c.name)
}

/// Reads `sum(rate(NAME{matchers}[{{.window}}]))`, or says why it cannot.
fn counter(query: &str) -> Result<Counter, String> {
    let q = query
        .replace("{{.window}}", "5m")
        .replace("{{ .window }}", "5m");
    let expr = crate::parse_promql(&q).map_err(|e| format!("it is not valid PromQL: {e}"))?;
    let not_simple = "slotel imports sum(rate(COUNTER{...}[{{.window}}])) or sum(increase(...)) over one counter";
    let unparen = |e: Expr| match e {
        Expr::Paren(p) => *p.expr,
        e => e,
    };
    let Expr::Aggregate(agg) = unparen(expr) else {
        return Err(format!("the query is not a sum: {not_simple}"));
    };
    if agg.op.to_string() != "sum" || agg.param.is_some() {
        return Err(format!(
            "the aggregation is {}, not sum: {not_simple}",
            agg.op
        ));
    }
    if agg.modifier.is_some() {
        return Err(format!(
            "sum by/without splits the ratio per label: {not_simple}"
        ));
    }
    let Expr::Call(call) = unparen(*agg.expr) else {
        return Err(format!(
            "sum does not wrap rate() or increase(): {not_simple}"
        ));
    };
    if !matches!(call.func.name, "rate" | "increase") {
        return Err(format!(
            "{}() is not rate() or increase(): {not_simple}",
            call.func.name
        ));
    }
    let [arg] = call.args.args.as_slice() else {
        return Err(not_simple.to_string());
    };
    let Expr::MatrixSelector(ms) = arg.as_ref() else {
        return Err(format!(
            "{}() does not take a plain range selector: {not_simple}",
            call.func.name
        ));
    };
    let vs = &ms.vs;
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("offset and @ modifiers cannot be mapped to live events".to_string());
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("\"or\" matchers cannot be mapped to one selector".to_string());
    }
    let mut name = vs.name.clone();
    let mut job = None;
    let mut matchers = Vec::new();
    for m in &vs.matchers.matchers {
        match (m.name.as_str(), &m.op) {
            ("__name__", MatchOp::Equal) => name = Some(m.value.clone()),
            ("__name__", _) => return Err("the metric name must be matched exactly".to_string()),
            ("job", MatchOp::Equal) => job = Some(m.value.clone()),
            ("job", _) => {
                return Err("job must be matched exactly: it names the service".to_string());
            }
            (label, op) => {
                let value = AttrValue::String(m.value.clone());
                let matcher = match op {
                    MatchOp::Equal => AttrMatch::Eq(value),
                    MatchOp::NotEqual => AttrMatch::Ne(value),
                    MatchOp::Re(_) => AttrMatch::Regex(slotel_model::anchored_regex(&m.value)?),
                    MatchOp::NotRe(_) => {
                        AttrMatch::NotRegex(slotel_model::anchored_regex(&m.value)?)
                    }
                };
                matchers.push((label.to_string(), matcher));
            }
        }
    }
    let name = name.ok_or("the query names no metric")?;
    if name.ends_with("_bucket") {
        return Err(
            "histogram buckets cannot be mapped to a counter ratio; use a native histogram SLI"
                .to_string(),
        );
    }
    Ok(Counter {
        name,
        job,
        matchers,
    })
}

/// Parses one Sloth file into SLOs; problems go to `errors`.
pub(crate) fn parse_file(
    file: &Path,
    text: &str,
    errors: &mut Vec<SpecError>,
) -> Vec<(SloDef, Origin)> {
    let mut out = Vec::new();
    for (offset, doc) in crate::openslo::documents(text) {
        let shift = |mut e: SpecError| {
            if e.line > 0 {
                e.line += offset;
            }
            e
        };
        let mut ctx = Ctx {
            file,
            errors: Vec::new(),
            line_offset: offset,
        };
        let kubernetes = doc
            .lines()
            .any(|l| l.trim_start().starts_with("apiVersion:"));
        let (spec, meta) = if kubernetes {
            match serde_saphyr::from_str::<Resource>(&doc) {
                Ok(r) => {
                    if !r.api_version.value.starts_with("sloth.slok.dev/v1") {
                        ctx.err(
                            &r.api_version,
                            format!(
                                "unsupported apiVersion {:?}: slotel reads sloth.slok.dev/v1",
                                r.api_version.value
                            ),
                        );
                    }
                    if r.kind.value != "PrometheusServiceLevel" {
                        ctx.err(
                            &r.kind,
                            format!(
                                "kind {:?}: Sloth's resource is PrometheusServiceLevel",
                                r.kind.value
                            ),
                        );
                    }
                    (r.spec, Some(r.metadata))
                }
                Err(e) => {
                    errors.push(shift(yaml_error(file, &e)));
                    continue;
                }
            }
        } else {
            match serde_saphyr::from_str::<Spec>(&doc) {
                Ok(s) => (s, None),
                Err(e) => {
                    errors.push(shift(yaml_error(file, &e)));
                    continue;
                }
            }
        };
        match &spec.version {
            Some(v) if v.value != "prometheus/v1" => ctx.err(
                v,
                format!(
                    "unsupported Sloth version {:?}: slotel reads prometheus/v1",
                    v.value
                ),
            ),
            None if !kubernetes => ctx.errors.push(SpecError {
                file: file.to_path_buf(),
                line: offset + 1,
                column: 1,
                message: "a Sloth spec needs version: prometheus/v1".into(),
            }),
            _ => {}
        }
        out.extend(translate(&mut ctx, spec, meta));
        errors.append(&mut ctx.errors);
    }
    out
}

/// The SLOs of one Sloth spec (of a resource with `meta`).
fn translate(ctx: &mut Ctx<'_>, spec: Spec, meta: Option<ResourceMeta>) -> Vec<(SloDef, Origin)> {
    const PLUGINS: &str = "SLO plugins rewrite the Prometheus rules Sloth generates; slotel computes from the events themselves and runs no plugins: remove slo_plugins (or plugins)";
    if let Some(p) = &spec.slo_plugins {
        ctx.err(p, PLUGINS);
    }
    // A resource's name and namespace say where the SLOs came from.
    let mut from = BTreeMap::new();
    if let Some(m) = &meta {
        from.insert("kubernetes_name".to_string(), m.name.clone());
        if let Some(ns) = &m.namespace {
            from.insert("kubernetes_namespace".to_string(), ns.clone());
        }
        for (k, v) in m.labels.iter().chain(&m.annotations) {
            from.insert(format!("kubernetes_{k}"), v.clone());
        }
    }
    let mut out = Vec::new();
    for slo in spec.slos {
        let before = ctx.errors.len();
        if let Some(p) = &slo.slo_plugins {
            ctx.err(p, PLUGINS);
        }
        let name = format!("{}-{}", spec.service.value, slo.name.value);
        if !is_valid_name(&name) {
            ctx.err(&slo.name, format!("invalid SLO name {name:?}"));
        }
        let o = slo.objective.value;
        if !(o > 0.0 && o < 100.0) {
            ctx.err(&slo.objective, format!("objective {o} is out of range: it is a percentage above 0 and below 100, e.g. 99.9"));
        }
        if let Some(raw) = &slo.sli.raw {
            ctx.err(raw, "raw error ratio queries cannot be mapped to events: use sli.events with error_query and total_query");
            continue;
        }
        if let Some(plugin) = &slo.sli.plugin {
            ctx.err(plugin, "SLI plugins cannot be mapped to events: use sli.events with error_query and total_query");
            continue;
        }
        let Some(events) = &slo.sli.events else {
            ctx.err(&slo.name, "sli needs events: error_query and total_query");
            continue;
        };
        let mut read = |q: &Spanned<String>| match counter(&q.value) {
            Ok(c) => Some(c),
            Err(why) => {
                ctx.err(q, format!("cannot import {:?}: {why}", q.value.trim()));
                None
            }
        };
        let (bad, total) = (read(&events.error_query), read(&events.total_query));
        let (Some(bad), Some(total)) = (bad, total) else {
            continue;
        };
        if bad.job != total.job {
            ctx.err(
                &events.error_query,
                "error_query and total_query must select the same job",
            );
        }
        if ctx.errors.len() > before {
            continue;
        }
        let service = total
            .job
            .clone()
            .unwrap_or_else(|| spec.service.value.clone());
        let selector = |c: Counter| MetricSelector {
            name: c.name,
            prometheus: true,
            attributes: c.matchers,
            job: c.job,
        };
        let alert_tiers = alert_tiers(&slo.alerting.unwrap_or_default(), ctx);
        if ctx.errors.len() > before {
            continue;
        }
        let mut labels = spec.labels.clone();
        labels.extend(slo.labels);
        out.push((
            SloDef {
                name,
                tenant: slotel_model::DEFAULT_TENANT.to_string(),
                service,
                description: slo.description,
                labels,
                annotations: from.clone(),
                objective: o,
                objectives: vec![Objective {
                    name: "default".into(),
                    target: o,
                }],
                budgeting: Budgeting::Occurrences,
                window: Window::rolling(30 * 1440),
                min_events: slotel_model::DEFAULT_MIN_EVENTS,
                freeze_below: 0.0,
                alert_tiers,
                budget_alerts: Default::default(),
                group_by: Vec::new(),
                max_groups: super::DEFAULT_MAX_GROUPS,
                sli: Sli::MetricRatio {
                    good: None,
                    bad: Some(selector(bad)),
                    total: selector(total),
                },
            },
            ctx.origin(&slo.name),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_counter_ratios_are_read() {
        let c = counter(r#"sum(rate(http_requests_total{job="api",code=~"(5..|429)",method!="OPTIONS"}[{{.window}}]))"#).unwrap();
        assert_eq!(c.name, "http_requests_total");
        assert_eq!(c.job.as_deref(), Some("api"));
        assert_eq!(c.matchers.len(), 2);
        assert!(matches!(&c.matchers[0].1, AttrMatch::Regex(r) if r.as_str() == "^(?:(5..|429))$"));
        assert!(counter("sum(increase(jobs_total[{{.window}}]))").is_ok());
    }

    #[test]
    fn anything_else_says_why() {
        let why = |q| counter(q).unwrap_err();
        assert!(why("rate(x_total[5m])").starts_with("the query is not a sum"));
        assert!(why("sum by (code) (rate(x_total[5m]))").starts_with("sum by/without splits"));
        assert!(why("sum(irate(x_total[5m]))").starts_with("irate() is not rate()"));
        assert!(why("sum(rate(x_bucket{le=\"0.3\"}[5m]))").starts_with("histogram buckets"));
        assert!(why("sum(rate(x_total[5m] offset 1h))").starts_with("offset and @"));
        assert!(why("max(rate(x_total[5m]))").starts_with("the aggregation is max"));
        assert!(why("sum(rate(").starts_with("it is not valid PromQL"));
    }
}
