//! The Rust OpenTelemetry SDK's OTLP exporter (`opentelemetry-otlp`), over gRPC (with
//! gzip) and HTTP/protobuf, against the real server.

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, SpanKind, Status, Tracer, TracerProvider};
use opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::harness::Server;

const SLOS: &str = r#"
slos:
  - name: orders
    service: orders
    objective: 99.5
    window: 7d
    sli:
      spans:
        match: { span_kind: server, span_name: "POST /orders", attributes: { "http.request.method": "POST" } }
        good: { status: not_error }
"#;

/// Sends 100 server spans, 7 of them errors, plus 20 that no SLO selects.
fn send(exporter: SpanExporter) {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("orders").build())
        .build();
    let tracer = provider.tracer("slotel-tests");
    for i in 0..120 {
        let name = if i < 100 {
            "POST /orders"
        } else {
            "GET /orders"
        };
        let mut span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("http.request.method", "POST")])
            .start(&tracer);
        if i % 15 == 0 {
            span.set_status(Status::error("failed"));
        }
        span.end();
    }
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_otlp_exporter_over_grpc_and_http() {
    let server = Server::start(SLOS);
    let grpc = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(server.otlp_grpc.clone())
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .unwrap();
    tokio::task::spawn_blocking(move || send(grpc))
        .await
        .unwrap();
    // 100 selected spans, errors at 0, 15, ..., 90: 7.
    let body = server.slo_when_total("orders", 100).await;
    assert_eq!(
        (body["good_events"].as_u64(), body["total_events"].as_u64()),
        (Some(93), Some(100))
    );

    let endpoint = format!("{}/v1/traces", server.otlp_http);
    tokio::task::spawn_blocking(move || {
        let http = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers([("x-scope-orgid".to_string(), "default".to_string())].into())
            .build()
            .unwrap();
        send(http);
    })
    .await
    .unwrap();
    let body = server.slo_when_total("orders", 200).await;
    assert_eq!(
        (body["good_events"].as_u64(), body["total_events"].as_u64()),
        (Some(186), Some(200))
    );
}

/// What the Rust SDK's HTTP exporter really sends, read by slotel's wire scanner and by
/// `prost`: the same spans, fields and attributes, and the same check results. The spans
/// carry what SDKs send beyond what slotel reads: events, links, arrays, every value
/// type, status messages, several scopes.
#[tokio::test(flavor = "multi_thread")]
async fn the_wire_scanner_reads_real_sdk_payloads_as_prost_does() {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Array, StringValue, Value};
    use prost::Message;
    use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use slotel_proto::wire::{self, TraceVisitor};

    let bodies: Arc<Mutex<Vec<bytes::Bytes>>> = Arc::default();
    let app = {
        let bodies = Arc::clone(&bodies);
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: bytes::Bytes| {
                bodies.lock().unwrap().push(body);
                async {
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::task::spawn_blocking(move || {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("http://{addr}/v1/traces"))
            .build()
            .unwrap();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name("checkout")
                    .with_attribute(KeyValue::new("deployment.environment.name", "prod"))
                    .build(),
            )
            .build();
        for scope in ["frontend", "db"] {
            let tracer = provider.tracer(scope);
            for i in 0..60i64 {
                let link = Link::with_context(SpanContext::new(
                    TraceId::from(7u128 + i as u128),
                    SpanId::from(9u64 + i as u64),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::default(),
                ));
                let mut span = tracer
                    .span_builder(format!("GET /items/{}", i % 4))
                    .with_kind(if i % 3 == 0 {
                        SpanKind::Server
                    } else {
                        SpanKind::Client
                    })
                    .with_links(vec![link])
                    .with_attributes([
                        KeyValue::new("http.request.method", "GET"),
                        KeyValue::new("http.route", "/items/{id}"),
                        KeyValue::new("http.response.status_code", 200 + (i % 4) * 100),
                        KeyValue::new("server.port", 8080),
                        KeyValue::new("cache.hit", i % 2 == 0),
                        KeyValue::new("ratio", i as f64 / 7.0),
                        KeyValue::new("note", "naïve café ☕"),
                        KeyValue::new(
                            "tags",
                            Value::Array(Array::String(vec![
                                StringValue::from("a"),
                                StringValue::from("b"),
                            ])),
                        ),
                    ])
                    .start(&tracer);
                span.add_event("retry", vec![KeyValue::new("attempt", i)]);
                if i % 5 == 0 {
                    span.set_status(Status::error("upstream failed"));
                } else if i % 5 == 1 {
                    span.set_status(Status::Ok);
                }
                span.end();
            }
        }
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    })
    .await
    .unwrap();

    type Fields = (
        Vec<u8>,
        Vec<u8>,
        String,
        i32,
        u64,
        u64,
        i32,
        Vec<slotel_proto::otlp::common::v1::KeyValue>,
    );
    #[derive(Default)]
    struct Seen {
        resources: Vec<Vec<slotel_proto::otlp::common::v1::KeyValue>>,
        spans: Vec<Fields>,
    }
    impl<'a> TraceVisitor<'a> for Seen {
        fn resource(&mut self, r: &wire::Resource<'_, 'a>) {
            self.resources
                .push(r.attributes.iter().map(wire::Kv::to_key_value).collect());
        }
        fn span(&mut self, _: &wire::Resource<'_, 'a>, s: &wire::Span<'_, 'a>) {
            self.spans.push((
                s.trace_id.to_vec(),
                s.span_id.to_vec(),
                s.name.to_string(),
                s.kind,
                s.start_time_unix_nano,
                s.end_time_unix_nano,
                s.status_code,
                s.attributes.iter().map(wire::Kv::to_key_value).collect(),
            ));
        }
    }

    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty());
    let limits = slotel_ingest::validate::ItemLimits::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut spans = 0;
    for body in &bodies {
        let mut decoded = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let mut seen = Seen::default();
        let n = wire::scan_traces(body, &mut seen).unwrap();
        spans += n;
        let resources: Vec<_> = decoded
            .resource_spans
            .iter()
            .map(|rs| rs.resource.clone().unwrap_or_default().attributes)
            .collect();
        let expected: Vec<Fields> = decoded
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| {
                (
                    s.trace_id.clone(),
                    s.span_id.clone(),
                    s.name.clone(),
                    s.kind,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                    s.status.as_ref().map_or(0, |st| st.code),
                    s.attributes.clone(),
                )
            })
            .collect();
        assert_eq!(seen.resources, resources);
        assert_eq!(seen.spans, expected);
        assert!(expected.iter().all(|s| s.7.len() == 8));
        let (items, on_bytes) = slotel_ingest::validate::trace_bytes(body, now, &limits).unwrap();
        assert_eq!(items as usize, n);
        assert_eq!(
            on_bytes,
            slotel_ingest::validate::traces(&mut decoded, now, &limits)
        );
    }
    assert_eq!(spans, 120);
}
