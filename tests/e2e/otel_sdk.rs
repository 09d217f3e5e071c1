//! The real OpenTelemetry Python SDK exports spans over gRPC and HTTP/protobuf; the API
//! must report exactly the counts, SLI, budget and burn rates of what was sent.

use serde_json::{Value, json};

use crate::harness::{Server, budget_remaining, burn_rate, send_otlp, sli};

const SLOS: &str = r#"
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9
    window: 30d
    sli:
      spans:
        match: { span_kind: server, span_name: "POST /api/checkout" }
        good: { status: not_error }
  - name: checkout-latency
    service: checkout
    objective: 99
    window: 28d
    sli:
      spans:
        match: { span_name: "POST /api/checkout", attributes: { "http.request.method": "POST" } }
        good: { max_duration: 300ms }
  - name: catalog-availability
    service: catalog
    objective: 99.5
    window: 7d
    sli:
      spans:
        match: { span_kind: server, http_route: "/api/items/{id}" }
        good: { status: ok, max_duration: 120ms }
"#;

/// One span of a plan, as `send_spans.py` takes it.
struct PlanSpan {
    name: &'static str,
    kind: &'static str,
    status: &'static str,
    duration_ns: u64,
    attributes: Value,
}

impl PlanSpan {
    fn to_json(&self, i: usize) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "duration_ns": self.duration_ns,
            "end_offset_ns": (i as u64) * 100_000,
            "attributes": self.attributes,
        })
    }
}

const MS: u64 = 1_000_000;

/// Checkout traffic: statuses and durations around the 300 ms threshold, plus spans no
/// SLO selects (other names, client kind, missing method attribute).
fn checkout_plan() -> Vec<PlanSpan> {
    let durations = [20 * MS, 300 * MS - 1, 300 * MS, 300 * MS + 1, 1_500 * MS];
    let mut spans = Vec::new();
    for i in 0..230 {
        let status = if i % 23 == 0 {
            "error"
        } else if i % 3 == 0 {
            "ok"
        } else {
            "unset"
        };
        spans.push(PlanSpan {
            name: "POST /api/checkout",
            kind: "server",
            status,
            duration_ns: durations[i % durations.len()],
            attributes: json!({"http.request.method": "POST", "http.route": "/api/checkout"}),
        });
    }
    for i in 0..17 {
        spans.push(PlanSpan {
            name: "GET /health",
            kind: "server",
            status: if i % 2 == 0 { "error" } else { "unset" },
            duration_ns: 5 * MS,
            attributes: json!({"http.request.method": "GET"}),
        });
    }
    for _ in 0..9 {
        spans.push(PlanSpan {
            name: "POST /api/checkout",
            kind: "client",
            status: "error",
            duration_ns: 900 * MS,
            attributes: json!({}),
        });
    }
    spans
}

/// Catalog traffic selected by route, good only when OK and within 120 ms.
fn catalog_plan() -> Vec<PlanSpan> {
    let mut spans = Vec::new();
    for i in 0..150 {
        spans.push(PlanSpan {
            name: "GET /api/items/{id}",
            kind: "server",
            status: ["ok", "ok", "unset", "error", "ok"][i % 5],
            duration_ns: [100 * MS, 120 * MS, 121 * MS][i % 3],
            attributes: json!({"http.route": "/api/items/{id}"}),
        });
    }
    for _ in 0..11 {
        spans.push(PlanSpan {
            name: "GET /api/items/{id}",
            kind: "server",
            status: "ok",
            duration_ns: MS,
            attributes: json!({"http.route": "/api/other"}),
        });
    }
    spans
}

fn send(endpoint: &str, protocol: &str, service: &str, spans: &[PlanSpan]) {
    send_otlp(&json!({
        "endpoint": endpoint,
        "protocol": protocol,
        "service": service,
        "spans": spans.iter().enumerate().map(|(i, s)| s.to_json(i)).collect::<Vec<_>>(),
    }));
}

/// Asserts every number of an SLO status against the expected good and total.
fn assert_status(body: &Value, good: u64, total: u64, objective: f64, window: &str) {
    assert_eq!(body["good_events"], good, "{body}");
    assert_eq!(body["total_events"], total, "{body}");
    assert_eq!(body["bad_events"], total - good, "{body}");
    assert_eq!(body["objective"], objective);
    assert_eq!(body["window"], window);
    assert_eq!(body["sli"].as_f64().unwrap(), sli(good, total));
    assert_eq!(
        body["error_budget_remaining"].as_f64().unwrap(),
        budget_remaining(good, total, objective)
    );
    // Every span ended within the last second, so every window holds all of them.
    let rates = body["burn_rates"].as_object().unwrap();
    let windows: Vec<&str> = rates.keys().map(String::as_str).collect();
    assert_eq!(windows, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", window]);
    for (w, rate) in rates {
        assert_eq!(
            rate.as_f64().unwrap(),
            burn_rate(good, total, objective),
            "{w}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_grpc_counts_exactly() {
    let server = Server::start(SLOS);
    let plan = checkout_plan();
    let endpoint = server.otlp_grpc.clone();
    tokio::task::spawn_blocking(move || send(&endpoint, "grpc", "checkout", &plan))
        .await
        .unwrap();
    let plan = checkout_plan();
    let selected = |s: &&PlanSpan| s.name == "POST /api/checkout";
    let avail: Vec<_> = plan
        .iter()
        .filter(selected)
        .filter(|s| s.kind == "server")
        .collect();
    let avail_good = avail.iter().filter(|s| s.status != "error").count() as u64;
    let latency: Vec<_> = plan
        .iter()
        .filter(selected)
        .filter(|s| s.attributes["http.request.method"] == "POST")
        .collect();
    let latency_good = latency.iter().filter(|s| s.duration_ns <= 300 * MS).count() as u64;
    // Hand-checked: 230 selected, 10 errors; 3 of every 5 durations within 300 ms.
    assert_eq!((avail.len(), avail_good), (230, 220));
    assert_eq!((latency.len(), latency_good), (230, 138));

    let body = server.slo_when_total("checkout-availability", 230).await;
    assert_status(&body, 220, 230, 99.9, "30d");
    let body = server.slo_when_total("checkout-latency", 230).await;
    assert_status(&body, 138, 230, 99.0, "28d");
    // The catalog SLO saw none of it: no data, not an outage.
    let body = server.slo("catalog-availability").await;
    assert_eq!(body["total_events"], 0);
    assert!(body["sli"].is_null());
    assert!(body["burn_rates"]["5m"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_http_protobuf_counts_exactly() {
    let server = Server::start(SLOS);
    let plan = catalog_plan();
    let endpoint = server.otlp_http.clone();
    tokio::task::spawn_blocking(move || send(&endpoint, "http/protobuf", "catalog", &plan))
        .await
        .unwrap();
    let plan = catalog_plan();
    let selected: Vec<_> = plan
        .iter()
        .filter(|s| s.attributes["http.route"] == "/api/items/{id}")
        .collect();
    let good = selected
        .iter()
        .filter(|s| s.status == "ok" && s.duration_ns <= 120 * MS)
        .count() as u64;
    // 150 selected; status ok on 3 of 5, within 120 ms on 2 of 3: 60 good.
    assert_eq!((selected.len(), good), (150, 60));
    let body = server.slo_when_total("catalog-availability", 150).await;
    assert_status(&body, 60, 150, 99.5, "7d");
    assert_eq!(server.slo("checkout-availability").await["total_events"], 0);
}

const LOG_SLOS: &str = r#"
slos:
  - name: charges
    service: payments
    objective: 99
    window: 7d
    sli:
      logs:
        match: { attributes: { event: charge } }
        good: { max_severity: warn }
"#;

/// Logs and metrics from the Python SDK over both transports, gzip on and off: every log
/// record is classified exactly, every data point acknowledged is counted.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_logs_and_metrics_over_both_transports_with_and_without_gzip() {
    let server = Server::start(LOG_SLOS);
    let severities = [9, 13, 17, 21, 5, 16];
    let logs: Vec<Value> = (0..60)
        .map(|i| {
            json!({
                "severity_number": severities[i % severities.len()],
                "body": format!("payment {i}"),
                "attributes": {"event": if i % 4 == 0 { "refund" } else { "charge" }},
                "offset_ns": i * 1000,
            })
        })
        .collect();
    let selected: Vec<usize> = (0..60).filter(|i| i % 4 != 0).collect();
    let good = selected
        .iter()
        .filter(|&&i| severities[i % severities.len()] <= 16)
        .count() as u64;
    // Hand-checked: 45 charges; 2 of every 6 severities (ERROR, FATAL) are bad.
    assert_eq!((selected.len(), good), (45, 30));
    let metrics = json!({
        "counters": [{"name": "http.server.requests", "points": [
            {"attributes": {"route": "/a"}, "value": 3},
            {"attributes": {"route": "/b"}, "value": 5},
            {"attributes": {"route": "/c"}, "value": 7},
        ]}],
        "histograms": [{"name": "http.server.duration", "points": [
            {"attributes": {"route": "/a"}, "value": 0.25},
            {"attributes": {"route": "/b"}, "value": 1.5},
        ]}],
    });
    let mut data_points = std::collections::HashMap::new();
    for (protocol, endpoint, compression) in [
        ("grpc", &server.otlp_grpc, None),
        ("grpc", &server.otlp_grpc, Some("gzip")),
        ("http/protobuf", &server.otlp_http, None),
        ("http/protobuf", &server.otlp_http, Some("gzip")),
    ] {
        let plan = json!({
            "endpoint": endpoint,
            "protocol": protocol,
            "compression": compression,
            "service": "payments",
            "logs": logs,
            "metrics": metrics,
        });
        let acked = tokio::task::spawn_blocking(move || send_otlp(&plan))
            .await
            .unwrap();
        assert_eq!(acked["logs"], 60);
        let points = acked["data_points"].as_u64().unwrap();
        assert!(points >= 5, "{acked}");
        let transport = if protocol == "grpc" { "grpc" } else { "http" };
        *data_points.entry(transport).or_insert(0) += points;
    }
    let body = server.slo_when_total("charges", 4 * 45).await;
    assert_status(&body, 4 * good, 4 * 45, 99.0, "7d");
    for (transport, points) in data_points {
        let labels = [
            ("signal", "metrics"),
            ("transport", transport),
            ("tenant", "default"),
        ];
        assert_eq!(
            server
                .metric("slotel_ingest_items_accepted_total", &labels)
                .await,
            points as f64,
            "{transport}"
        );
        let logs = [
            ("signal", "logs"),
            ("transport", transport),
            ("tenant", "default"),
        ];
        assert_eq!(
            server
                .metric("slotel_ingest_items_accepted_total", &logs)
                .await,
            120.0
        );
    }
}

const METRIC_SLOS: &str = r#"
slos:
  - name: requests-ok
    service: shop
    objective: 99
    window: 7d
    sli:
      metrics:
        good: { metric: app.requests, attributes: { outcome: ok } }
        total: { metric: app.requests }
  - name: requests-not-failed
    service: shop
    objective: 99
    window: 7d
    sli:
      metrics:
        bad: { metric: app.requests, attributes: { outcome: error } }
        total: { metric: app.requests }
  - name: request-latency
    service: shop
    objective: 95
    window: 7d
    sli:
      histogram: { metric: app.duration, threshold: 300ms }
"#;

/// Metric SLIs from the Python SDK's cumulative counters and histograms, sent by two
/// processes (so the second is a new series start): exact counts, and the histogram
/// bound the threshold was counted at.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_metric_slis_count_exactly() {
    let server = Server::start(METRIC_SLOS);
    let metrics = json!({
        "counters": [{"name": "app.requests", "points": [
            {"attributes": {"outcome": "ok", "route": "/a"}, "value": 90},
            {"attributes": {"outcome": "ok", "route": "/b"}, "value": 5},
            {"attributes": {"outcome": "error", "route": "/a"}, "value": 5},
        ]}],
        // The SDK's default bounds are 0, 5, 10, 25, 50, 75, 100, 250, 500, ... (ms).
        "histograms": [{"name": "app.duration", "unit": "ms", "points": [
            {"value": 100}, {"value": 200}, {"value": 250}, {"value": 260},
            {"value": 300}, {"value": 400}, {"value": 600},
        ]}],
    });
    for (protocol, endpoint) in [
        ("grpc", &server.otlp_grpc),
        ("http/protobuf", &server.otlp_http),
    ] {
        let plan = json!({
            "endpoint": endpoint, "protocol": protocol, "service": "shop", "metrics": metrics,
        });
        let acked = tokio::task::spawn_blocking(move || send_otlp(&plan))
            .await
            .unwrap();
        assert_eq!(acked["data_points"], 4, "{acked}");
    }
    let ok = server.slo_when_total("requests-ok", 200).await;
    assert_status(&ok, 190, 200, 99.0, "7d");
    let not_failed = server.slo_when_total("requests-not-failed", 200).await;
    assert_status(&not_failed, 190, 200, 99.0, "7d");
    // 300 ms lies in the (250, 500] ms bucket, which counts as bad: 100, 200 and 250 are
    // good; 260 and 300 are not counted as good although they are within 300 ms.
    let latency = server.slo_when_total("request-latency", 14).await;
    assert_status(&latency, 6, 14, 95.0, "7d");
    assert_eq!(latency["effective_threshold_seconds"], 0.25);
}
