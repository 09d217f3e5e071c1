//! The Prometheus-compatible HTTP API under `/prometheus`: what Grafana's Prometheus data
//! source and `promtool` call, with Prometheus' JSON shapes and error types.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value as Json_, json};
use slotel_proto::Tenant;

use crate::promql::{self, Evaluation, Labels, Metric, PromError, Value, format_value};
use crate::source::QueryEngine;
use slotel_model::catalog;

/// The Prometheus API version slotel answers as (what Grafana reads from buildinfo).
pub const PROMETHEUS_VERSION: &str = "2.45.0";
/// Default time limit of a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The routes, to nest under `/prometheus`.
pub fn routes(source: QueryEngine) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(source)
}

/// The Prometheus API's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    query,
    query_range,
    series,
    labels,
    label_values,
    metadata,
    buildinfo,
    query_exemplars,
    rules,
    alerts
))]
pub struct PrometheusDoc;

/// A Prometheus error reply.
fn error(e: PromError) -> Response {
    let status = match e {
        PromError::BadData(_) => StatusCode::BAD_REQUEST,
        PromError::Execution(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PromError::Timeout | PromError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        status,
        Json(json!({ "status": "error", "errorType": e.kind(), "error": e.message() })),
    )
        .into_response()
}

fn success(data: Json_) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

/// The success or error reply of `result`.
fn reply(result: Result<Json_, PromError>) -> Response {
    match result {
        Ok(data) => success(data),
        Err(e) => error(e),
    }
}

/// The parameters of a request: the URL's and, for a form POST, the body's.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Self {
        let mut out: Vec<(String, String)> = query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            out.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Self(out)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A time: Unix seconds (with a fraction) or RFC 3339, in milliseconds.
fn parse_time(name: &str, s: &str) -> Result<i64, PromError> {
    slotel_model::time::parse_time_ms(s).ok_or_else(|| {
        PromError::BadData(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    })
}

/// A duration: seconds (with a fraction) or a Prometheus duration (`5m`), in ms.
fn parse_duration(name: &str, s: &str) -> Result<i64, PromError> {
    promql::client_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| {
            PromError::BadData(format!(
                "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid duration ({e})"
            ))
        })
}

fn timeout(p: &Params) -> Result<Duration, PromError> {
    match p.get("timeout") {
        Some(t) => Ok(
            Duration::from_millis(parse_duration("timeout", t)?.max(1) as u64).min(QUERY_TIMEOUT),
        ),
        None => Ok(QUERY_TIMEOUT),
    }
}

fn ts(ms: i64) -> Json_ {
    json!(ms as f64 / 1000.0)
}

async fn run(
    source: &QueryEngine,
    tenant: &str,
    query: &str,
    steps: Vec<i64>,
    limit: Duration,
) -> Result<(Value, Vec<i64>), PromError> {
    let expr = promql::parse(query)?;
    let work = async {
        let eval = Evaluation::prepare(source, tenant, &expr, steps.clone(), limit).await?;
        eval.eval(&expr)
    };
    let value = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| PromError::Timeout)??;
    Ok((value, steps))
}

#[utoipa::path(
    method(get, post), path = "/prometheus/api/v1/query", tag = "prometheus",
    params(
        ("query" = String, Query, description = "The PromQL expression"),
        ("time" = Option<String>, Query, description = "Evaluation time: RFC 3339 or Unix seconds (default: now)"),
        ("timeout" = Option<String>, Query, description = "Time limit, a Prometheus duration (default 60s)"),
    ),
    responses(
        (status = 200, description = "An instant query: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 422, description = "The expression cannot be evaluated (`errorType` `execution`)", body = Object),
        (status = 503, description = "The query ran past its time limit (`errorType` `timeout`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn query(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    let result = async {
        let query = p
            .get("query")
            .ok_or_else(|| PromError::BadData("invalid parameter \"query\": missing".into()))?;
        let time = match p.get("time") {
            Some(s) => parse_time("time", s)?,
            None => source.engine.now_nanos().div_euclid(1_000_000),
        };
        let (value, _) = run(&source, &t, query, vec![time], timeout(&p)?).await?;
        Ok::<_, PromError>(match value {
            Value::Scalar(v) => json!({
                "resultType": "scalar",
                "result": [ts(time), format_value(v[0])],
            }),
            Value::String(s) => json!({ "resultType": "string", "result": [ts(time), s] }),
            Value::Vector(series) => json!({
                "resultType": "vector",
                "result": series
                    .into_iter()
                    .filter_map(|s| {
                        let v = s.values[0]?;
                        Some(json!({ "metric": s.labels, "value": [ts(time), format_value(v)] }))
                    })
                    .collect::<Vec<_>>(),
            }),
            Value::Matrix(m) => json!({
                "resultType": "matrix",
                "result": m
                    .into_iter()
                    .map(|(labels, samples)| json!({
                        "metric": labels,
                        "values": samples.into_iter().map(|(t, v)| json!([ts(t), format_value(v)])).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>(),
            }),
        })
    }
    .await;
    reply(result)
}

#[utoipa::path(
    method(get, post), path = "/prometheus/api/v1/query_range", tag = "prometheus",
    params(
        ("query" = String, Query, description = "The PromQL expression"),
        ("start" = String, Query, description = "Start: RFC 3339 or Unix seconds"),
        ("end" = String, Query, description = "End: RFC 3339 or Unix seconds"),
        ("step" = String, Query, description = "Resolution: a Prometheus duration or seconds"),
        ("timeout" = Option<String>, Query, description = "Time limit, a Prometheus duration (default 60s)"),
    ),
    responses(
        (status = 200, description = "A range query: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 422, description = "The expression cannot be evaluated (`errorType` `execution`)", body = Object),
        (status = 503, description = "The query ran past its time limit (`errorType` `timeout`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn query_range(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    let result = async {
        let missing = |n: &str| PromError::BadData(format!("invalid parameter \"{n}\": missing"));
        let query = p.get("query").ok_or_else(|| missing("query"))?;
        let start = parse_time("start", p.get("start").ok_or_else(|| missing("start"))?)?;
        let end = parse_time("end", p.get("end").ok_or_else(|| missing("end"))?)?;
        let step = p.get("step").ok_or_else(|| missing("step"))?;
        // Zero or negative seconds get Prometheus' own message, from `steps`.
        let step = match step.parse::<f64>() {
            Ok(secs) if secs <= 0.0 => 0,
            _ => parse_duration("step", step)?,
        };
        let steps = promql::steps(start, end, step)?;
        let (value, steps) = run(&source, &t, query, steps, timeout(&p)?).await?;
        let series = match value {
            Value::Scalar(v) => vec![(Labels::new(), v.into_iter().map(Some).collect())],
            Value::Vector(series) => series.into_iter().map(|s| (s.labels, s.values)).collect(),
            Value::String(_) | Value::Matrix(_) => {
                return Err(PromError::BadData(
                    "invalid expression type for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        };
        let result: Vec<Json_> = series
            .into_iter()
            .filter_map(|(labels, values)| {
                let points: Vec<Json_> = steps
                    .iter()
                    .zip(values)
                    .filter_map(|(t, v)| v.map(|v| json!([ts(*t), format_value(v)])))
                    .collect();
                (!points.is_empty()).then(|| json!({ "metric": labels, "values": points }))
            })
            .collect();
        Ok::<_, PromError>(json!({ "resultType": "matrix", "result": result }))
    }
    .await;
    reply(result)
}

async fn matched(source: &QueryEngine, tenant: &str, p: &Params) -> Result<Vec<Labels>, PromError> {
    let selectors = p
        .all("match[]")
        .into_iter()
        .map(promql::parse_selector)
        .collect::<Result<Vec<_>, _>>()?;
    let targets = promql::targets_of(source, tenant).await?;
    let names: Vec<Option<&str>> = if selectors.is_empty() {
        vec![None]
    } else {
        selectors.iter().map(|v| v.name.as_deref()).collect()
    };
    let side = source
        .side_series(tenant, &names)
        .await
        .map_err(|e| PromError::Unavailable(e.0))?;
    Ok(promql::series_labels(&targets, &side, &selectors))
}

#[utoipa::path(
    method(get, post), path = "/prometheus/api/v1/series", tag = "prometheus",
    params(
        ("match[]" = Vec<String>, Query, description = "Series selectors (at least one)"),
        ("start" = Option<String>, Query, description = "Start: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End: RFC 3339 or Unix seconds"),
    ),
    responses(
        (status = 200, description = "The series that match the selectors: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn series(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    if p.all("match[]").is_empty() {
        return error(PromError::BadData("no match[] parameter provided".into()));
    }
    reply(matched(&source, &t, &p).await.map(|series| json!(series)))
}

#[utoipa::path(
    method(get, post), path = "/prometheus/api/v1/labels", tag = "prometheus",
    params(
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors (default: every series)"),
    ),
    responses(
        (status = 200, description = "The label names of the matching series: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn labels(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    match matched(&source, &t, &p).await {
        Ok(series) => {
            let names: BTreeSet<&String> = series.iter().flat_map(|s| s.keys()).collect();
            success(json!(names))
        }
        Err(e) => error(e),
    }
}

#[utoipa::path(
    get, path = "/prometheus/api/v1/label/{name}/values", tag = "prometheus",
    params(
        ("name" = String, Path, description = "The label name"),
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors (default: every series)"),
    ),
    responses(
        (status = 200, description = "The values of one label: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn label_values(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::new(q, &headers, &Bytes::new());
    match matched(&source, &t, &p).await {
        Ok(series) => {
            let values: BTreeSet<&String> = series.iter().filter_map(|s| s.get(&name)).collect();
            success(json!(values))
        }
        Err(e) => error(e),
    }
}

#[utoipa::path(
    get, path = "/prometheus/api/v1/metadata", tag = "prometheus",
    params(
        ("metric" = Option<String>, Query, description = "Only this metric"),
    ),
    responses(
        (status = 200, description = "Type and help of every metric: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 400, description = "A bad parameter (`errorType` `bad_data`)", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn metadata(State(source): State<QueryEngine>, RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q, &HeaderMap::new(), &Bytes::new());
    let only = p.get("metric");
    let mut out = serde_json::Map::new();
    let mut add = |name: &str, kind: &str, help: &str| {
        if only.is_none_or(|o| o == name) {
            out.insert(
                name.into(),
                json!([{ "type": kind, "help": help, "unit": "" }]),
            );
        }
    };
    for m in Metric::ALL {
        add(m.name(), m.kind(), m.help());
    }
    add(
        catalog::ALERT_METRIC,
        "gauge",
        "1 for each pending or firing burn-rate alert, with label alertstate (as Prometheus' ALERTS)",
    );
    add(
        catalog::TIER_STATE_METRIC,
        "gauge",
        "The state of each burn-rate tier: 0 inactive, 1 pending, 2 firing",
    );
    for (name, (kind, help)) in source.health.metadata() {
        add(name, &kind, &help);
    }
    success(Json_::Object(out))
}

#[utoipa::path(
    get, path = "/prometheus/api/v1/status/buildinfo", tag = "prometheus",
    responses(
        (status = 200, description = "The Prometheus version slotel answers as: Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn buildinfo() -> Response {
    success(json!({
        "version": PROMETHEUS_VERSION,
        "revision": format!("slotel-{}", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "slotel",
    }))
}

#[utoipa::path(
    method(get, post), path = "/prometheus/api/v1/query_exemplars", tag = "prometheus",
    responses(
        (status = 200, description = "No exemplars (slotel keeps none yet): Prometheus' reply with an empty list, which Grafana's exemplar queries expect", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn query_exemplars() -> Response {
    success(json!([]))
}

#[utoipa::path(
    get, path = "/prometheus/api/v1/rules", tag = "prometheus",
    responses(
        (status = 200, description = "Recording and alerting rules (none are served yet): Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn rules() -> Response {
    success(json!({ "groups": [] }))
}

#[utoipa::path(
    get, path = "/prometheus/api/v1/alerts", tag = "prometheus",
    responses(
        (status = 200, description = "Active alerts in Prometheus form (none are served yet): Prometheus' reply, `{\"status\": \"success\", \"data\": ...}`", body = Object),
        (status = 401, description = "A bearer token is required", body = Object),
    )
)]
async fn alerts() -> Response {
    success(json!({ "alerts": [] }))
}

#[cfg(test)]
mod tests;
