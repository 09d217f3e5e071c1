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
        .route("/api/v1/query_exemplars", get(empty_list).post(empty_list))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(source)
}

/// A Prometheus error reply.
fn error(e: PromError) -> Response {
    let status = match e {
        PromError::BadData(_) => StatusCode::BAD_REQUEST,
        PromError::Execution(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PromError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
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

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A time: Unix seconds (with a fraction) or RFC 3339, in milliseconds.
fn parse_time(name: &str, s: &str) -> Result<i64, PromError> {
    timestamp_ms(s).ok_or_else(|| {
        PromError::BadData(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    })
}

/// Unix seconds (with a fraction) or RFC 3339, in milliseconds (saturating).
pub(crate) fn timestamp_ms(s: &str) -> Option<i64> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => Some((secs * 1000.0).round() as i64),
        _ => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
    }
}

/// A duration: seconds (with a fraction) or a Prometheus duration (`5m`), in ms.
fn parse_duration(name: &str, s: &str) -> Result<i64, PromError> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    promql_parser::util::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| {
            PromError::BadData(format!(
                "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid duration"
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
            None => now_ms(),
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
        let step = parse_duration("step", p.get("step").ok_or_else(|| missing("step"))?)?;
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

fn matched(source: &QueryEngine, tenant: &str, p: &Params) -> Result<Vec<Labels>, PromError> {
    let selectors = p
        .all("match[]")
        .into_iter()
        .map(promql::parse_selector)
        .collect::<Result<Vec<_>, _>>()?;
    let targets = promql::targets(&source.engine, tenant);
    let names: Vec<Option<&str>> = if selectors.is_empty() {
        vec![None]
    } else {
        selectors.iter().map(|v| v.name.as_deref()).collect()
    };
    let side = source.side_series(tenant, &names);
    Ok(promql::series_labels(&targets, &side, &selectors))
}

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
    reply(matched(&source, &t, &p).map(|series| json!(series)))
}

async fn labels(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    match matched(&source, &t, &p) {
        Ok(series) => {
            let names: BTreeSet<&String> = series.iter().flat_map(|s| s.keys()).collect();
            success(json!(names))
        }
        Err(e) => error(e),
    }
}

async fn label_values(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::new(q, &headers, &Bytes::new());
    match matched(&source, &t, &p) {
        Ok(series) => {
            let values: BTreeSet<&String> = series.iter().filter_map(|s| s.get(&name)).collect();
            success(json!(values))
        }
        Err(e) => error(e),
    }
}

async fn metadata(RawQuery(q): RawQuery) -> Response {
    let p = Params::new(q, &HeaderMap::new(), &Bytes::new());
    let only = p.get("metric");
    let mut out = serde_json::Map::new();
    for m in Metric::ALL {
        if only.is_some_and(|o| o != m.name()) {
            continue;
        }
        out.insert(
            m.name().into(),
            json!([{ "type": m.kind(), "help": m.help(), "unit": "" }]),
        );
    }
    success(Json_::Object(out))
}

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

async fn empty_list() -> Response {
    success(json!([]))
}

async fn rules() -> Response {
    success(json!({ "groups": [] }))
}

async fn alerts() -> Response {
    success(json!({ "alerts": [] }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{Value as J, json};
    use slotel_compute::Engine;
    use slotel_model::ManualClock;
    use slotel_spec::parse_native;
    use tower::ServiceExt;

    use crate::{ApiContext, router};

    const MIN: i64 = 60_000_000_000;
    /// A minute boundary.
    const T0: i64 = 29_000_000 * MIN;
    const T0_S: i64 = T0 / 1_000_000_000;

    const SLOS: &str = "slos:
  - name: a
    service: s
    objective: 99
    window: 7d
    labels: { team: pay }
    sli: { spans: { good: { status: not_error } } }
  - name: b
    service: s
    objective: 90
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: c
    service: other
    objective: 99.9
    window: 30d
    sli: { spans: { good: { status: not_error } } }
";

    fn spans(service: &str, good: usize, bad: usize, end: i64, first: u64) -> slotel_proto::Batch {
        use slotel_proto::otlp::trace::v1::{Span, Status};
        let spans = (0..good + bad)
            .map(|i| {
                let id = first + i as u64;
                Span {
                    trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
                    span_id: id.to_be_bytes().to_vec(),
                    start_time_unix_nano: end as u64 - 1,
                    end_time_unix_nano: end as u64,
                    status: Some(Status {
                        code: if i < good { 1 } else { 2 },
                        message: String::new(),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        slotel_proto::Batch::traces(
            "default".into(),
            slotel_proto::traces_request(service, spans),
        )
    }

    /// An app whose service `s` saw, 10 minutes before T0 + 20 min, 100 events (10 bad),
    /// and at T0 + 20 min 50 events (5 bad).
    fn app() -> axum::Router {
        let engine = Engine::new(Arc::new(ManualClock::new(T0 + 20 * MIN)));
        engine.load(parse_native(std::path::Path::new("t.yaml"), SLOS).unwrap());
        engine.ingest(&spans("s", 90, 10, T0 + 10 * MIN, 1));
        engine.ingest(&spans("s", 45, 5, T0 + 20 * MIN, 1000));
        router(ApiContext::new(Arc::new(engine)))
    }

    async fn call(app: axum::Router, req: Request<Body>) -> (u16, J) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn get(uri: &str) -> (u16, J) {
        call(app(), Request::get(uri).body(Body::empty()).unwrap()).await
    }

    fn q(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    /// An instant query at T0 + 20 min: (labels, value) of each result.
    async fn instant(expr: &str) -> Vec<(J, String)> {
        let at = T0_S + 20 * 60;
        let (status, body) = get(&format!(
            "/prometheus/api/v1/query?query={}&time={at}",
            q(expr)
        ))
        .await;
        assert_eq!(status, 200, "{expr}: {body}");
        assert_eq!(body["data"]["resultType"], "vector", "{body}");
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["value"][0], json!(at as f64));
                (
                    r["metric"].clone(),
                    r["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn one(expr: &str) -> String {
        let r = instant(expr).await;
        assert_eq!(r.len(), 1, "{expr}: {r:?}");
        r[0].1.clone()
    }

    fn burn(bad: f64, total: f64, objective: f64) -> String {
        crate::promql::format_value(
            slotel_compute::math::burn_rate(total - bad, total, objective).unwrap(),
        )
    }

    #[tokio::test]
    async fn selectors_return_the_exact_slo_series() {
        // 5m holds only the last batch; 1h both.
        assert_eq!(one(r#"slotel_slo_sli{slo="a",window="5m"}"#).await, "0.9");
        assert_eq!(
            one(r#"slotel_slo_error_ratio{slo="a",window="1h"}"#).await,
            "0.1"
        );
        assert_eq!(
            one(r#"slotel_slo_burn_rate{slo="a",window="1h"}"#).await,
            burn(15.0, 150.0, 0.99)
        );
        assert_eq!(one(r#"slotel_slo_objective{slo="a"}"#).await, "0.99");
        assert_eq!(
            one(r#"slotel_slo_events_rate{slo="a",window="5m"}"#).await,
            format!("{}", 50.0 / 300.0)
        );
        assert_eq!(
            one(r#"slotel_slo_good_events_rate{slo="b",window="1d"}"#).await,
            format!("{}", 135.0 / 86400.0)
        );
        // 90% objective: 15 bad of 150 spends the whole budget.
        let remaining = slotel_compute::math::budget_remaining(135.0, 150.0, 0.9).unwrap();
        assert_eq!(
            one(r#"slotel_slo_error_budget_remaining{slo="b"}"#).await,
            crate::promql::format_value(remaining)
        );
        let labels = &instant(r#"slotel_slo_sli{slo="a",window="7d"}"#).await[0].0;
        assert_eq!(
            labels,
            &json!({"__name__": "slotel_slo_sli", "service": "s", "slo": "a", "team": "pay", "tenant": "default", "window": "7d"})
        );
        // Matchers of every kind.
        assert_eq!(
            instant(r#"slotel_slo_objective{service="s"}"#).await.len(),
            2
        );
        assert_eq!(
            instant(r#"slotel_slo_objective{service!="s"}"#).await.len(),
            1
        );
        assert_eq!(
            instant(r#"slotel_slo_objective{slo=~"a|c"}"#).await.len(),
            2
        );
        assert_eq!(
            instant(r#"slotel_slo_objective{slo!~"a.*"}"#).await.len(),
            2
        );
        assert_eq!(
            instant(r#"{__name__=~"slotel_slo_(sli|error_ratio)",slo="a",window="5m"}"#)
                .await
                .len(),
            2
        );
        // No traffic is no data: c has no sample.
        assert!(instant(r#"slotel_slo_sli{slo="c"}"#).await.is_empty());
        // Another tenant sees nothing.
        let (_, body) = call(
            app(),
            Request::get(format!(
                "/prometheus/api/v1/query?query={}&time={}",
                q("slotel_slo_objective"),
                T0_S
            ))
            .header("x-scope-orgid", "team-b")
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(body["data"]["result"], json!([]));
    }

    #[tokio::test]
    async fn functions_aggregations_and_operators() {
        assert_eq!(
            one(r#"1 - slotel_slo_sli{slo="a",window="5m"}"#).await,
            format!("{}", 1.0 - 0.9)
        );
        assert_eq!(
            one(r#"slotel_slo_sli{slo="a",window="5m"} < bool 0.95"#).await,
            "1"
        );
        assert!(
            instant(r#"slotel_slo_sli{slo="a",window="5m"} > 0.95"#)
                .await
                .is_empty()
        );
        assert_eq!(
            one(r#"clamp_max(slotel_slo_burn_rate{slo="a",window="5m"}, 5)"#).await,
            "5"
        );
        assert_eq!(
            one(r#"clamp_min(slotel_slo_sli{slo="a",window="5m"}, 0.95)"#).await,
            "0.95"
        );
        assert_eq!(
            one(r#"sum(slotel_slo_objective)"#).await,
            format!("{}", 0.99 + 0.9 + 0.999)
        );
        let by = instant(r#"count by (service) (slotel_slo_objective)"#).await;
        assert_eq!(by.len(), 2);
        assert_eq!(by[0].0, json!({"service": "other"}));
        assert_eq!(by[1], (json!({"service": "s"}), "2".to_string()));
        let without = instant(r#"max without (slo, team) (slotel_slo_objective)"#).await;
        assert_eq!(
            without[1],
            (
                json!({"service": "s", "tenant": "default"}),
                "0.99".to_string()
            )
        );
        assert_eq!(one(r#"min(slotel_slo_objective)"#).await, "0.9");
        assert_eq!(
            one(r#"avg(slotel_slo_objective{service="s"})"#).await,
            format!("{}", (0.99 + 0.9) / 2.0)
        );
        // Vector to vector, matched on labels other than the name.
        assert_eq!(
            one(r#"slotel_slo_error_ratio{slo="a",window="1h"} / on (slo) (1 - slotel_slo_objective{slo="a"})"#).await,
            format!("{}", 0.1 / (1.0 - 0.99))
        );
        assert_eq!(
            instant(r#"slotel_slo_objective and on (slo) slotel_slo_sli{window="5m"}"#)
                .await
                .len(),
            2
        );
        assert_eq!(
            one(r#"slotel_slo_objective unless on (slo) slotel_slo_sli{window="5m"}"#).await,
            "0.999"
        );
        // Events over a range: 50 in the last 5 minutes, all 150 over 15.
        assert_eq!(
            one(r#"sum_over_time(slotel_slo_events_rate{slo="a",window="5m"}[1m])"#).await,
            format!("{}", 50.0 / 300.0)
        );
        assert_eq!(
            one(r#"max_over_time(slotel_slo_sli{slo="a",window="5m"}[15m])"#).await,
            "0.9"
        );
        assert_eq!(
            one(r#"min_over_time(slotel_slo_sli{slo="a",window="1h"}[15m])"#).await,
            "0.9"
        );
        assert_eq!(
            one(r#"avg_over_time(slotel_slo_objective{slo="a"}[10m])"#).await,
            "0.99"
        );
        // The counter is 0 until minute 10, 100 until 20, then 150. Over 15m (samples at
        // minutes 6..=20) it rises by 150 from zero: Prometheus extrapolates no further
        // back than zero, so increase is exactly 150. Over 5m (16..=20) it rises by 50
        // over 4 sampled minutes, extrapolated to 5.
        assert_eq!(
            one(r#"increase(slotel_slo_events_total{slo="a"}[15m])"#).await,
            "150"
        );
        assert_eq!(
            one(r#"rate(slotel_slo_events_total{slo="a"}[15m])"#).await,
            format!("{}", 150.0 / 900.0)
        );
        assert_eq!(
            one(r#"increase(slotel_slo_good_events_total{slo="a"}[5m])"#).await,
            format!("{}", 45.0 * 300.0 / 240.0)
        );
        assert_eq!(one("vector(1) + 1").await, "2");
        let (_, body) = get(&format!(
            "/prometheus/api/v1/query?query={}&time=120",
            q("time() * 2")
        ))
        .await;
        assert_eq!(
            body["data"],
            json!({"resultType": "scalar", "result": [120.0, "240"]})
        );
    }

    #[tokio::test]
    async fn query_range_steps_over_the_minutes() {
        let (start, end) = (T0_S + 9 * 60, T0_S + 21 * 60);
        let (status, body) = get(&format!(
            "/prometheus/api/v1/query_range?query={}&start={start}&end={end}&step=180",
            q(r#"slotel_slo_events_rate{slo="a",window="5m"} * 300"#)
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["resultType"], "matrix");
        let values = &body["data"]["result"][0]["values"];
        // At 9 min: nothing yet; 12 and 15: the first batch's 100; 18: out of the 5m
        // window; 21: the second batch's 50.
        assert_eq!(
            values,
            &json!([
                [start as f64, "0"],
                [(start + 180) as f64, "100"],
                [(start + 360) as f64, "0"],
                [(start + 540) as f64, "0"],
                [(start + 720) as f64, "50"],
            ])
        );
        // Grafana posts forms.
        let form = format!(
            "query={}&start={start}&end={end}&step=3m",
            q(r#"slotel_slo_sli{slo="a",window="1h"}"#)
        );
        let (status, body) = call(
            app(),
            Request::post("/prometheus/api/v1/query_range")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let values: Vec<&str> = body["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[1].as_str().unwrap())
            .collect();
        assert_eq!(values, ["0.9", "0.9", "0.9", "0.9"]);
    }

    #[tokio::test]
    async fn unsupported_and_invalid_queries_are_bad_data() {
        for (expr, needle) in [
            (
                "histogram_quantile(0.9, slotel_slo_sli)",
                "histogram_quantile",
            ),
            ("slotel_slo_sli[5m:1m]", "subqueries"),
            ("slotel_slo_sli @ 100", "@ modifier"),
            ("topk(1, slotel_slo_sli)", "topk"),
            ("slotel_slo_sli{", "invalid parameter \"query\""),
            (
                "slotel_slo_sli * on (slo) group_left slotel_slo_objective",
                "group_left",
            ),
        ] {
            let (status, body) = get(&format!(
                "/prometheus/api/v1/query?query={}&time=1",
                q(expr)
            ))
            .await;
            assert_eq!(status, 400, "{expr}: {body}");
            assert_eq!(body["status"], "error");
            assert_eq!(body["errorType"], "bad_data");
            assert!(
                body["error"].as_str().unwrap().contains(needle),
                "{expr}: {body}"
            );
        }
        let (status, body) =
            get("/prometheus/api/v1/query_range?query=1&start=10&end=1&step=1").await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data"))
        );
        let (status, _) =
            get("/prometheus/api/v1/query_range?query=1&start=0&end=100000&step=1").await;
        assert_eq!(status, 400);
        // Few points with a huge step would read years of minutes.
        let (status, body) = get(
            "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=0&end=100000000000&step=100000000",
        )
        .await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data")),
            "{body}"
        );
        let (status, _) =
            get("/prometheus/api/v1/query_range?query=1&start=-1e300&end=1e300&step=1").await;
        assert_eq!(status, 400);
        let (status, body) = get("/prometheus/api/v1/query?query=1&time=yesterday").await;
        assert_eq!(status, 400, "{body}");
    }

    #[tokio::test]
    async fn series_labels_values_metadata_and_buildinfo() {
        let (status, body) = get(&format!(
            "/prometheus/api/v1/series?match[]={}",
            q(r#"slotel_slo_burn_rate{slo="a"}"#)
        ))
        .await;
        assert_eq!(status, 200);
        let windows: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["window"].as_str().unwrap())
            .collect();
        assert_eq!(
            windows,
            ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d", "slo"]
        );
        let (_, body) = get("/prometheus/api/v1/labels").await;
        // The SLO series' labels, and those of the alert tiers' states.
        assert_eq!(
            body["data"],
            json!([
                "__name__",
                "alertname",
                "burnrate_tier",
                "factor",
                "long_window",
                "quantile",
                "service",
                "severity",
                "short_window",
                "slo",
                "team",
                "tenant",
                "window"
            ])
        );
        let (_, body) = get("/prometheus/api/v1/label/slo/values").await;
        assert_eq!(body["data"], json!(["a", "b", "c"]));
        let (_, body) = get("/prometheus/api/v1/label/__name__/values").await;
        assert_eq!(body["data"].as_array().unwrap().len(), 11);
        let (_, body) = get("/prometheus/api/v1/metadata?metric=slotel_slo_events_total").await;
        assert_eq!(
            body["data"]["slotel_slo_events_total"][0]["type"],
            "counter"
        );
        let (_, body) = get("/prometheus/api/v1/status/buildinfo").await;
        assert_eq!(body["data"]["version"], super::PROMETHEUS_VERSION);
        let (status, body) = get("/prometheus/api/v1/series").await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data"))
        );
    }

    /// The latency quantile of `ms` spans recorded in slotel's histograms, as served.
    fn quantile_of(ms: &[u64], q: f64) -> String {
        let mut h = slotel_compute::latency::histogram();
        for m in ms {
            slotel_compute::latency::record(&mut h, m * 1000);
        }
        crate::promql::format_value(slotel_compute::latency::quantile_seconds(&h, q).unwrap())
    }

    #[tokio::test]
    async fn latency_quantiles_slide_over_their_window() {
        let engine = Engine::new(Arc::new(ManualClock::new(T0 + 20 * MIN)));
        engine.load(parse_native(std::path::Path::new("t.yaml"), SLOS).unwrap());
        // At 10 min, ten spans of 10..=100 ms; at 20 min, ten of 200 ms.
        let lasting = |ms: u64, end: i64, id: u64| {
            let mut b = spans("s", 1, 0, end, id);
            if let slotel_proto::Payload::Traces(req) = &mut b.payload {
                let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
                span.start_time_unix_nano = span.end_time_unix_nano - ms * 1_000_000;
            }
            b
        };
        let first: Vec<u64> = (1..=10).map(|i| i * 10).collect();
        for (i, &ms) in first.iter().enumerate() {
            engine.ingest(&lasting(ms, T0 + 10 * MIN, i as u64 + 1));
            engine.ingest(&lasting(200, T0 + 20 * MIN, i as u64 + 100));
        }
        let app = router(ApiContext::new(Arc::new(engine)));
        let (start, end) = (T0_S + 9 * 60, T0_S + 21 * 60);
        let range = |expr: &str| {
            let app = app.clone();
            let uri = format!(
                "/prometheus/api/v1/query_range?query={}&start={start}&end={end}&step=180",
                q(expr)
            );
            async move { call(app, Request::get(uri).body(Body::empty()).unwrap()).await }
        };
        let (status, body) =
            range(r#"slotel_slo_latency_seconds{slo="a",window="5m",quantile="0.9"}"#).await;
        assert_eq!(status, 200, "{body}");
        let result = &body["data"]["result"];
        assert_eq!(result.as_array().unwrap().len(), 1, "{body}");
        assert_eq!(
            result[0]["metric"],
            json!({"__name__": "slotel_slo_latency_seconds", "quantile": "0.9", "service": "s",
                   "slo": "a", "team": "pay", "tenant": "default", "window": "5m"})
        );
        // At 12 min the first ten; at 15 and 18 min the window has slid past them (no
        // sample); at 21 min the second ten.
        assert_eq!(
            result[0]["values"],
            json!([
                [(start + 180) as f64, quantile_of(&first, 0.9)],
                [(start + 720) as f64, quantile_of(&[200; 10], 0.9)],
            ])
        );
        // The hour holds both: half of the spans are 200 ms.
        let mut both = first.clone();
        both.extend([200; 10]);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let (_, body) = range(&format!(
                r#"slotel_slo_latency_seconds{{slo="b",window="1h",quantile="{q}"}}"#
            ))
            .await;
            let values = body["data"]["result"][0]["values"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(
                values.last().unwrap()[1],
                json!(quantile_of(&both, q)),
                "q{q}"
            );
            assert_eq!(values.len(), 4, "{values:?}");
        }
        // p50 of both: 100 ms, reported at its bucket's upper end, within 1 %.
        let p50: f64 = quantile_of(&both, 0.5).parse().unwrap();
        assert!((0.1..=0.101).contains(&p50), "{p50}");
        // Every span SLO has 3 windows × 4 quantiles; groups have none.
        let (_, body) = get(&format!(
            "/prometheus/api/v1/series?match[]={}",
            q("slotel_slo_latency_seconds")
        ))
        .await;
        assert_eq!(body["data"].as_array().unwrap().len(), 3 * 12);
    }
}
