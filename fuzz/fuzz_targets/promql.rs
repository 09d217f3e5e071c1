//! The Prometheus API's query path, from the query string to the JSON answer: a
//! PromQL expression (and, after NUL bytes, the parameters `time`, or `start`, `end`,
//! `step` and `timeout`) against an engine holding an hour of spans of the fuzz SLOs.
//! Every answer is Prometheus' JSON with a status code Prometheus uses; none panics.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use slotel_fuzz::{NOW_NANOS, TENANT, new_engine};
use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
use slotel_proto::otlp::trace::v1::{Span, Status, span::SpanKind};
use slotel_query::{ApiContext, router};
use tower::ServiceExt;

const MINUTE: u64 = 60_000_000_000;

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Per minute of the last hour, ten spans of the checkout route, one in five failed
/// and every third slow.
fn app() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static APP: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    APP.get_or_init(|| {
        let engine = new_engine();
        let mut id = 1u64;
        for minute in 1..=60 {
            let end = NOW_NANOS - minute * MINUTE + 1;
            let spans = (0..10)
                .map(|i| {
                    id += 1;
                    Span {
                        trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
                        span_id: id.to_be_bytes().to_vec(),
                        name: "POST /api/checkout".into(),
                        kind: SpanKind::Server as i32,
                        start_time_unix_nano: end
                            - if i % 3 == 0 {
                                2_000_000_000
                            } else {
                                50_000_000
                            },
                        end_time_unix_nano: end,
                        attributes: vec![
                            attribute("http.route", "/api/checkout"),
                            attribute("http.request.method", "POST"),
                        ],
                        status: Some(Status {
                            code: if i % 5 == 0 { 2 } else { 1 },
                            message: String::new(),
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let request = slotel_proto::traces_request("checkout", spans);
            engine.ingest(&slotel_proto::Batch::traces(TENANT.into(), request));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        (runtime, router(ApiContext::new(Arc::new(engine))))
    })
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\0').collect();
    let now_s = NOW_NANOS / 1_000_000_000;
    let uri = match parts.as_slice() {
        [query] => format!(
            "/prometheus/api/v1/query?query={}&time={now_s}",
            encode(query)
        ),
        [query, time] => format!(
            "/prometheus/api/v1/query?query={}&time={}",
            encode(query),
            encode(time)
        ),
        [query, start, end, step, rest @ ..] => format!(
            "/prometheus/api/v1/query_range?query={}&start={}&end={}&step={}&timeout={}",
            encode(query),
            encode(start),
            encode(end),
            encode(step),
            encode(rest.first().copied().unwrap_or("10s"))
        ),
        [query, start, end] => format!(
            "/prometheus/api/v1/query_range?query={}&start={}&end={}&step=60",
            encode(query),
            encode(start),
            encode(end)
        ),
        [] => return,
    };
    let (runtime, app) = app();
    let request = Request::get(&uri).body(Body::empty()).expect("a request");
    let (status, body) = runtime.block_on(async {
        let resp = app.clone().oneshot(request).await.expect("infallible");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, body)
    });
    assert!(
        matches!(status, 200 | 400 | 422 | 503),
        "{uri}: HTTP {status}"
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON answer");
    let expected = if status == 200 { "success" } else { "error" };
    assert_eq!(json["status"], expected, "{uri}: {json}");
});
