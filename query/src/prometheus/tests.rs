//! The Prometheus API against an engine and a router, in-process.

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
        // promql-parser panicked on these durations (the promql fuzz target's crash).
        (
            "sum(rate(slotel_slo_events_total[3033333333333333333333333333:33333333333333m]))",
            "out of range",
        ),
        (
            "slotel_slo_sli offset 99999999999999999999999y",
            "invalid parameter \"query\"",
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
    let (status, body) = get("/prometheus/api/v1/query_range?query=1&start=10&end=1&step=1").await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );
    let (status, _) = get("/prometheus/api/v1/query_range?query=1&start=0&end=100000&step=1").await;
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
        if let slotel_proto::Payload::Traces(body) = &b.payload {
            use prost::Message;
            let mut req =
                slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest::decode(
                    &body[..],
                )
                .unwrap();
            let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
            span.start_time_unix_nano = span.end_time_unix_nano - ms * 1_000_000;
            b.payload = slotel_proto::Payload::Traces(req.encode_to_vec().into());
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
