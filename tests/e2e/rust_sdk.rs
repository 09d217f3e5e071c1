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
