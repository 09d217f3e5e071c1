//! OTLP ingest against the real binary: OTLP/JSON from curl, a Collector-shaped request,
//! partial success, every limit and refusal (each followed by a good request that is
//! served), overload, tenants with tokens, and TLS.

use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{Value, json};
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use slotel_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use slotel_proto::otlp::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value as V,
};
use slotel_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use slotel_proto::otlp::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use slotel_proto::otlp::resource::v1::Resource;
use slotel_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use slotel_proto::rpc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{DEADLINE, Server, root, run_loadtest, send_otlp};

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: web
    service: web
    objective: 99.9
    window: 1d
    sli: { spans: { match: { span_kind: server }, good: { status: not_error } } }
  - name: web-logs
    service: web
    objective: 99
    window: 1d
    sli: { logs: { good: { max_severity: warn } } }
"#;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(V::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: Option<&str>) -> Option<Resource> {
    Some(Resource {
        attributes: service
            .map(|s| vec![kv("service.name", s)])
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// A span with valid ids `n`, ending now.
fn span(n: u64, kind: i32, error: bool) -> Span {
    let t = now();
    let mut trace_id = vec![7u8; 16];
    trace_id[..8].copy_from_slice(&n.to_be_bytes());
    Span {
        trace_id,
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: "GET /x".into(),
        kind,
        start_time_unix_nano: t - 1_000_000,
        end_time_unix_nano: t,
        status: Some(Status {
            code: if error { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    slotel_proto::traces_request(service, spans)
}

async fn post(
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn post_traces(server: &Server, req: &ExportTraceServiceRequest) -> reqwest::Response {
    post(
        &format!("{}/v1/traces", server.otlp_http),
        "application/x-protobuf",
        &[],
        req.encode_to_vec(),
    )
    .await
}

async fn rpc_status(resp: reqwest::Response) -> rpc::Status {
    rpc::Status::decode(resp.bytes().await.unwrap()).unwrap()
}

/// Polls `/metrics` until sample `name` with `labels` equals `want`.
async fn wait_metric(server: &Server, name: &str, labels: &[(&str, &str)], want: f64) {
    let start = Instant::now();
    loop {
        let got = server.metric(name, labels).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{name} stayed at {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_json_from_curl_is_accepted_as_the_spec_encodes_it() {
    let server = Server::start(SLOS);
    let t = now();
    // As the OTLP specification's JSON examples write it: hex ids, lowerCamelCase names,
    // enums as integers, 64-bit integers as strings (and, equally valid, as numbers).
    let body = format!(
        r#"{{
  "resourceSpans": [{{
    "resource": {{ "attributes": [{{ "key": "service.name", "value": {{ "stringValue": "web" }} }}] }},
    "scopeSpans": [{{
      "scope": {{ "name": "my.library", "version": "1.0.0" }},
      "spans": [
        {{ "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
           "parentSpanId": "EEE19B7EC3C1B173", "name": "I'm a server span",
           "startTimeUnixNano": "{start}", "endTimeUnixNano": "{t}", "kind": 2,
           "attributes": [{{ "key": "my.span.attr", "value": {{ "stringValue": "some value" }} }}] }},
        {{ "traceId": "5B8EFFF798038103D269B633813FC60D", "spanId": "EEE19B7EC3C1B175",
           "name": "failed", "startTimeUnixNano": {start}, "endTimeUnixNano": {t}, "kind": 2,
           "status": {{ "code": 2, "message": "boom" }} }},
        {{ "traceId": "5B8EFFF798038103D269B633813FC60E", "spanId": "EEE19B7EC3C1B176",
           "name": "a client span", "startTimeUnixNano": "{start}", "endTimeUnixNano": "{t}", "kind": 3 }}
      ]
    }}]
  }}]
}}"#,
        start = t - 5_000_000,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traces.json");
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code} %{content_type}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(format!("{}/v1/traces", server.otlp_http))
        .output()
        .expect("curl runs");
    let out = String::from_utf8(out.stdout).unwrap();
    let (reply, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "200 application/json", "{out}");
    assert_eq!(serde_json::from_str::<Value>(reply).unwrap(), json!({}));
    let body = server.slo_when_total("web", 2).await;
    assert_eq!(
        (body["good_events"].as_u64(), body["total_events"].as_u64()),
        (Some(1), Some(2))
    );

    // Malformed JSON: 400 with a JSON google.rpc.Status.
    let resp = post(
        &format!("{}/v1/logs", server.otlp_http),
        "application/json",
        &[],
        br#"{"resourceLogs": [{"scopeLogs": 7}]}"#.to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["code"], 3);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed OTLP/JSON: "),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_shaped_batch_of_resources_scopes_and_signals() {
    let server = Server::start(SLOS);
    let channel = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // One trace request as a Collector's batch processor sends it: several resources
    // (one without service.name), each with several scopes.
    let scope = |name: &str, spans: Vec<Span>| ScopeSpans {
        scope: Some(InstrumentationScope {
            name: name.into(),
            ..Default::default()
        }),
        spans,
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(Some("api")),
                scope_spans: vec![
                    scope("http", vec![span(1, 2, false), span(2, 2, true)]),
                    scope(
                        "db",
                        vec![span(3, 3, false), span(4, 3, false), span(5, 3, true)],
                    ),
                ],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource(Some("web")),
                scope_spans: vec![
                    scope("http", vec![span(6, 2, false), span(7, 2, false)]),
                    scope("client", vec![span(8, 3, true)]),
                ],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource(None),
                scope_spans: vec![scope("x", vec![span(9, 2, true)])],
                ..Default::default()
            },
        ],
    };
    let reply = TraceServiceClient::new(channel.clone())
        .export(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success, None);
    // Logs and metrics of the same resources, as the Collector sends them on the same
    // connection.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(Some("web")),
            scope_logs: vec![ScopeLogs {
                log_records: [9, 13, 17, 21]
                    .into_iter()
                    .map(|sev| LogRecord {
                        time_unix_nano: now(),
                        severity_number: sev,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    LogsServiceClient::new(channel.clone())
        .export(logs)
        .await
        .unwrap();
    let point = |v| NumberDataPoint {
        time_unix_nano: now(),
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(Some("web")),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "requests".into(),
                    data: Some(Data::Sum(Sum {
                        data_points: vec![point(1), point(2), point(3)],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    MetricsServiceClient::new(channel)
        .export(metrics)
        .await
        .unwrap();

    let api = server.slo_when_total("api", 5).await;
    assert_eq!(api["good_events"], 3);
    let web = server.slo_when_total("web", 2).await;
    assert_eq!(
        (web["good_events"].as_u64(), web["total_events"].as_u64()),
        (Some(2), Some(2))
    );
    let web_logs = server.slo_when_total("web-logs", 4).await;
    assert_eq!(web_logs["good_events"], 2);
    let labels = [("signal", "metrics"), ("transport", "grpc")];
    assert_eq!(
        server
            .metric("slotel_ingest_items_accepted_total", &labels)
            .await,
        3.0
    );
    let labels = [("signal", "traces"), ("transport", "grpc")];
    assert_eq!(
        server
            .metric("slotel_ingest_items_received_total", &labels)
            .await,
        9.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_success_names_what_was_refused_on_both_transports() {
    let server = Server::start(SLOS);
    let mut future = span(100, 2, false);
    future.end_time_unix_nano += 3_600_000_000_000;
    let mut zero_ids = span(101, 2, false);
    zero_ids.trace_id = vec![0; 16];
    let mut short_id = span(102, 2, false);
    short_id.span_id = vec![1, 2, 3];
    let request = traces(
        "api",
        vec![
            span(1, 2, false),
            zero_ids,
            span(2, 2, false),
            future,
            short_id,
            span(3, 2, true),
        ],
    );
    let message = "rejected 3 spans: 2 with an invalid trace or span id, 1 with a timestamp more than 300s in the future";

    let resp = post_traces(&server, &request).await;
    assert_eq!(resp.status(), 200);
    let reply = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 3);
    assert_eq!(partial.error_message, message);

    let mut client = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap();
    let partial = client
        .export(request)
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (3, message)
    );

    // The gRPC export repeated the HTTP one span for span: it counts once.
    wait_metric(&server, "slotel_engine_spans_duplicate_total", &[], 3.0).await;
    let body = server.slo("api").await;
    assert_eq!(
        (body["good_events"].as_u64(), body["total_events"].as_u64()),
        (Some(2), Some(3))
    );
    let refused = |reason| [("signal", "traces"), ("reason", reason)];
    assert_eq!(
        server
            .metric("slotel_ingest_items_refused_total", &refused("invalid_id"))
            .await,
        4.0
    );
    assert_eq!(
        server
            .metric(
                "slotel_ingest_items_refused_total",
                &refused("future_timestamp")
            )
            .await,
        2.0
    );
    let outcome = [("signal", "traces"), ("outcome", "partial")];
    assert_eq!(
        server
            .metric("slotel_ingest_requests_total", &outcome)
            .await,
        2.0
    );
}

const TIGHT: &str = "limits:
  max_request_bytes: 65536
  max_decompressed_bytes: 1048576
  max_attributes: 4
  max_attribute_value_bytes: 16
  max_concurrent_requests: 1
  request_timeout: 3s
";

#[tokio::test(flavor = "multi_thread")]
async fn size_limits_and_decompression_bombs_are_refused_and_the_server_goes_on() {
    let mut server = Server::start_with(SLOS, TIGHT);
    let url = format!("{}/v1/traces", server.otlp_http);
    // Every good request carries a new span: a repeated one would count once.
    let next = std::sync::atomic::AtomicU64::new(1);
    let good = || {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        traces("api", vec![span(n, 2, false)]).encode_to_vec()
    };

    // A body over max_request_bytes, declared by Content-Length.
    let resp = post(&url, "application/x-protobuf", &[], vec![0u8; 70_000]).await;
    assert_eq!(resp.status(), 413);
    let st = rpc_status(resp).await;
    assert_eq!(st.code, rpc::code::INVALID_ARGUMENT);
    assert_eq!(
        st.message,
        "the body is larger than the limit of 65536 bytes"
    );
    assert_eq!(
        post(&url, "application/x-protobuf", &[], good())
            .await
            .status(),
        200
    );

    // A gzip bomb: 40 KiB that inflates to 64 MiB. Refused after 1 MiB of output.
    let rss_before = server.rss_kib();
    let bomb = Command::new(crate::harness::python())
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(bytes(64 << 20), 9))",
        ])
        .output()
        .unwrap()
        .stdout;
    assert!(bomb.len() < 65536, "{}", bomb.len());
    for _ in 0..5 {
        let resp = post(
            &url,
            "application/x-protobuf",
            &[("content-encoding", "gzip")],
            bomb.clone(),
        )
        .await;
        assert_eq!(resp.status(), 413);
        assert_eq!(
            rpc_status(resp).await.message,
            "the decompressed body is larger than the limit of 1048576 bytes"
        );
    }
    // Five bombs of 64 MiB each cost the server at most a few MiB.
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");

    // A zstd bomb likewise.
    let zbomb = zstd::encode_all(&vec![0u8; 8 << 20][..], 19).unwrap();
    let resp = post(
        &url,
        "application/x-protobuf",
        &[("content-encoding", "zstd")],
        zbomb,
    )
    .await;
    assert_eq!(resp.status(), 413);

    // gRPC: the same limit applies to the decompressed message.
    let mut big = span(5, 2, false);
    big.attributes = vec![kv("blob", &"a".repeat(2 << 20))];
    let mut client = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let err = client.export(traces("api", vec![big])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");

    // Gzip and zstd bodies within the limits are read.
    let gz = Command::new(crate::harness::python())
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&good())?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    let resp = post(
        &url,
        "application/x-protobuf",
        &[("content-encoding", "gzip")],
        gz,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let zs = zstd::encode_all(&good()[..], 3).unwrap();
    let resp = post(
        &url,
        "application/x-protobuf",
        &[("content-encoding", "zstd")],
        zs,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let ok = client.export(traces("api", vec![span(9, 2, false)])).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(server.slo_when_total("api", 4).await["total_events"], 4);

    // Unknown encodings and content types.
    let resp = post(
        &url,
        "application/x-protobuf",
        &[("content-encoding", "br")],
        good(),
    )
    .await;
    assert_eq!(resp.status(), 415);
    assert_eq!(
        rpc_status(resp).await.message,
        "unsupported content encoding \"br\": send gzip, zstd or none"
    );
    let resp = post(&url, "text/plain", &[], good()).await;
    assert_eq!(resp.status(), 415);
    // Neither protobuf nor JSON was sent: the refusal comes as JSON, readable.
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "unsupported content type \"text/plain\": send application/x-protobuf or application/json"
    );
    assert!(server.is_running());
    let resp = post(&url, "application/x-protobuf", &[], good()).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn attributes_over_the_limits_are_cut_and_counted() {
    let server = Server::start_with(SLOS, TIGHT);
    let mut s = span(1, 2, false);
    s.attributes = (0..10).map(|i| kv(&format!("k{i}"), "v")).collect();
    s.attributes[1] = kv("long", &"x".repeat(100));
    let resp = post_traces(&server, &traces("api", vec![s])).await;
    assert_eq!(resp.status(), 200);
    let reply = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(reply.partial_success, None);
    let labels = [("signal", "traces"), ("transport", "http")];
    assert_eq!(
        server
            .metric("slotel_ingest_attributes_dropped_total", &labels)
            .await,
        6.0
    );
    assert_eq!(
        server
            .metric("slotel_ingest_attribute_values_truncated_total", &labels)
            .await,
        1.0
    );
    assert_eq!(server.slo_when_total("api", 1).await["total_events"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_concurrency_cap_and_the_request_timeout_refuse_and_recover() {
    let server = Server::start_with(SLOS, TIGHT);
    let addr = server.otlp_http.trim_start_matches("http://").to_string();
    // A client that sends headers and part of its body, then stalls: it holds the one
    // request slot.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    wait_metric(&server, "slotel_ingest_requests_in_flight", &[], 1.0).await;
    let started = Instant::now();

    let url = format!("{}/v1/traces", server.otlp_http);
    let good = traces("api", vec![span(1, 2, false)]).encode_to_vec();
    let resp = post(&url, "application/x-protobuf", &[], good.clone()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let st = rpc_status(resp).await;
    assert_eq!(st.code, rpc::code::RESOURCE_EXHAUSTED);
    assert_eq!(st.details[0].type_url, rpc::RETRY_INFO_TYPE_URL);
    let mut client = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap();
    let err = client
        .export(traces("api", vec![span(2, 2, false)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    let st = rpc::Status::decode(err.details()).unwrap();
    let info = rpc::RetryInfo::decode(st.details[0].value.as_slice()).unwrap();
    assert_eq!(info.retry_delay.unwrap().seconds, 1);

    // The stalled request is cut off at the 3 s timeout with 408.
    let mut reply = Vec::new();
    slow.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_metric(&server, "slotel_ingest_requests_in_flight", &[], 0.0).await;

    // And the slot serves the next request.
    assert_eq!(
        post(&url, "application/x-protobuf", &[], good)
            .await
            .status(),
        200
    );
    assert!(
        client
            .export(traces("api", vec![span(3, 2, false)]))
            .await
            .is_ok()
    );
    assert_eq!(server.slo_when_total("api", 2).await["total_events"], 2);
    let busy = [("outcome", "too_many_requests")];
    assert_eq!(
        server.metric("slotel_ingest_requests_total", &busy).await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_log_refuses_retryably_and_every_acknowledged_span_counts_through_a_kill() {
    // A 2 MB write-ahead log that no checkpoint releases while the test runs (one an
    // hour, none early), flooded by 32 concurrent senders that do not retry.
    let config = "wal: { max_bytes: 2000000, segment_bytes: 250000, checkpoint_bytes: 100000000 }\n\
                  storage: { flush_interval: 1h }\n";
    let slos = r#"
slos:
  - name: checkout
    service: checkout
    objective: 99.9
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;
    let mut server = Server::start_with(slos, config);
    let truth = run_loadtest(&[
        "--endpoint",
        &server.otlp_grpc,
        "--protocol",
        "grpc",
        "--spans",
        "100000",
        "--rate",
        "0",
        "--batch-size",
        "512",
        "--concurrency",
        "32",
        "--max-retries",
        "0",
        "--seed",
        "5",
        "--route",
        "checkout:POST /api/checkout",
        "--error-ratio",
        "0.05",
    ]);
    let acked = truth["spans_acknowledged"].as_u64().unwrap();
    let failed = truth["spans_failed"].as_u64().unwrap();
    assert_eq!(acked + failed, 100_000);
    assert!(failed > 0, "the full log never refused: {truth}");
    assert!(acked > 0, "nothing was accepted: {truth}");
    assert!(server.is_running());
    // Accepted spans are counted exactly once; refused ones not at all.
    server.wait_applied().await;
    let body = server.slo("checkout").await;
    assert_eq!(body["total_events"], acked);
    let group = &truth["groups"][0];
    assert_eq!(body["total_events"], group["total"]);
    assert_eq!(
        body["bad_events"].as_u64().unwrap(),
        group["errors"].as_u64().unwrap()
    );
    let refused = [("signal", "traces"), ("reason", "log_full")];
    assert_eq!(
        server
            .metric("slotel_ingest_items_refused_total", &refused)
            .await,
        failed as f64
    );
    let rss = server.rss_kib();
    assert!(rss < 256 * 1024, "RSS {rss} KiB");

    // Killed, the server replays its log: the same counts, and the log is still full,
    // so OTLP/HTTP is refused with 429 and a retry hint.
    server.kill_and_restart().await;
    server.wait_applied().await;
    let body = server.slo("checkout").await;
    assert_eq!(body["total_events"], acked);
    assert_eq!(
        body["bad_events"].as_u64().unwrap(),
        group["errors"].as_u64().unwrap()
    );
    let resp = post_spans_http(&server, 1).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");

    // A graceful stop checkpoints and releases the log: exports are taken again.
    server.restart();
    server.wait_applied().await;
    let resp = post_spans_http(&server, 3).await;
    assert_eq!(resp.status(), 200);
    server.wait_applied().await;
    assert_eq!(server.slo("checkout").await["total_events"], acked + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_the_memory_feed_cannot_hold_are_read_back_from_the_log() {
    // A feed that holds almost nothing: compute reads most batches back from the log.
    let config = "queue: { capacity_batches: 1, max_bytes: 1000 }\n";
    let slos = r#"
slos:
  - name: checkout
    service: checkout
    objective: 99.9
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;
    let server = Server::start_with(slos, config);
    let truth = run_loadtest(&[
        "--endpoint",
        &server.otlp_http,
        "--protocol",
        "http",
        "--spans",
        "50000",
        "--rate",
        "0",
        "--batch-size",
        "250",
        "--concurrency",
        "8",
        "--seed",
        "9",
        "--route",
        "checkout:POST /api/checkout",
        "--error-ratio",
        "0.1",
    ]);
    assert_eq!(truth["spans_acknowledged"], 50_000, "{truth}");
    server.wait_applied().await;
    let body = server.slo("checkout").await;
    assert_eq!(body["total_events"], 50_000);
    assert_eq!(body["bad_events"], truth["groups"][0]["errors"]);
    assert!(server.metric("slotel_queue_left_out_total", &[]).await > 0.0);
    assert_eq!(server.metric("slotel_queue_bytes", &[]).await, 0.0);
}

/// Posts `n` OK spans of `checkout` ending now over OTLP/HTTP protobuf.
async fn post_spans_http(server: &Server, n: u64) -> reqwest::Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (0..n)
        .map(|i| Span {
            trace_id: [[7u8; 8], (now + i).to_be_bytes()].concat(),
            span_id: (now + i).to_be_bytes().to_vec(),
            name: "POST /api/checkout".into(),
            start_time_unix_nano: now - 1_000_000,
            end_time_unix_nano: now,
            ..Default::default()
        })
        .collect();
    let body = slotel_proto::traces_request("checkout", spans).encode_to_vec();
    reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_the_tenant_for_writes_and_reads() {
    let config = "auth:
  tokens:
    - { token: team-a-0123456789abcdef, tenant: team-a }
    - { token: team-b-0123456789abcdef, tenant: team-b }
";
    let slos = r#"
slos:
  - name: api
    tenant: team-a
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: api
    tenant: team-b
    service: api
    objective: 99.5
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;
    let server = Server::start_with(slos, config);
    let url = format!("{}/v1/traces", server.otlp_http);
    let body = || traces("api", vec![span(1, 2, false), span(2, 2, true)]).encode_to_vec();
    let a = ("authorization", "Bearer team-a-0123456789abcdef");
    let b = ("authorization", "Bearer team-b-0123456789abcdef");

    // No token or a wrong one: 401 / UNAUTHENTICATED, nothing counted.
    let resp = post(&url, "application/x-protobuf", &[], body()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(rpc_status(resp).await.code, rpc::code::UNAUTHENTICATED);
    let wrong = ("authorization", "Bearer team-a-0123456789abcdeX");
    assert_eq!(
        post(&url, "application/x-protobuf", &[wrong], body())
            .await
            .status(),
        401
    );
    let mut client = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap();
    let err = client
        .export(traces("api", vec![span(3, 2, false)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // Token A writes as team-a, whatever X-Scope-OrgID says.
    let resp = post(
        &url,
        "application/x-protobuf",
        &[a, ("x-scope-orgid", "team-b")],
        body(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut req = tonic::Request::new(traces("api", vec![span(4, 2, false)]));
    req.metadata_mut()
        .insert("authorization", a.1.parse().unwrap());
    client.export(req).await.unwrap();

    let api = |token: Option<(&'static str, &'static str)>| {
        let mut r = reqwest::Client::new().get(format!("{}/api/v1/slos/api", server.api));
        if let Some((k, v)) = token {
            r = r.header(k, v);
        }
        r.send()
    };
    let start = Instant::now();
    let team_a: Value = loop {
        let body: Value = api(Some(a)).await.unwrap().json().await.unwrap();
        if body["total_events"] == 3 {
            break body;
        }
        assert!(start.elapsed() < DEADLINE, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(team_a["tenant"], "team-a");
    assert_eq!(team_a["good_events"], 2);
    // Token B reads team-b's SLO of the same name, which saw nothing.
    let team_b: Value = api(Some(b)).await.unwrap().json().await.unwrap();
    assert_eq!(
        (team_b["tenant"].as_str(), team_b["total_events"].as_u64()),
        (Some("team-b"), Some(0))
    );
    assert_eq!(api(None).await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_on_every_listener_with_the_python_sdk_and_curl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let config = format!(
        "tls: {{ cert_file: {}, key_file: {} }}\n",
        cert.display(),
        key.display()
    );
    let server = Server::start_with(SLOS, &config);
    assert!(server.otlp_grpc.starts_with("https://"));
    for (protocol, endpoint) in [
        ("grpc", &server.otlp_grpc),
        ("http/protobuf", &server.otlp_http),
    ] {
        let plan = json!({
            "endpoint": endpoint,
            "protocol": protocol,
            "certificate": cert,
            "service": "api",
            "spans": (0..10).map(|i| json!({
                "name": "GET /", "kind": "server", "status": if i < 3 { "error" } else { "ok" },
                "duration_ns": 1000, "end_offset_ns": i * 1000,
            })).collect::<Vec<_>>(),
        });
        let acked = tokio::task::spawn_blocking(move || send_otlp(&plan))
            .await
            .unwrap();
        assert_eq!(acked["spans"], 10);
    }
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(format!("{}/api/v1/slos/api", server.api))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["good_events"].as_u64(), body["total_events"].as_u64()),
        (Some(14), Some(20))
    );
    // Plain HTTP to a TLS listener gets no OTLP reply.
    let plain = server.otlp_http.replace("https://", "http://");
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("{plain}/v1/traces"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");
    let _ = root();
}
