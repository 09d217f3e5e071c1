//! SLOs from an OpenSLO file and from a Sloth file, loaded by the real server and fed by
//! the OpenTelemetry Python SDK, give the expected status.

use serde_json::json;

use crate::harness::{Server, root, send_otlp};

#[tokio::test(flavor = "multi_thread")]
async fn openslo_slos_fed_by_spans() {
    let text = std::fs::read_to_string(root().join("examples/openslo/checkout.yaml")).unwrap();
    let server = Server::start(&text);
    let spans: Vec<_> = (0..200)
        .map(|i| {
            let durations = [100_000_000u64, 300_000_000, 300_000_001, 2_000_000_000];
            json!({
                "name": "POST /api/checkout",
                "kind": "server",
                "status": if i % 40 == 0 { "error" } else { "unset" },
                "duration_ns": durations[i % 4],
                "end_offset_ns": i * 1000,
            })
        })
        .collect();
    let plan = json!({
        "endpoint": server.otlp_grpc, "protocol": "grpc", "service": "checkout", "spans": spans,
    });
    let acked = tokio::task::spawn_blocking(move || send_otlp(&plan))
        .await
        .unwrap();
    assert_eq!(acked["spans"], 200);

    // Ratio SLI: 5 errors of 200; two objectives, 99.9% (primary) and 99%.
    let avail = server
        .slo_when_total("checkout-availability-openslo", 200)
        .await;
    assert_eq!(avail["good_events"], 195);
    assert_eq!(avail["window"], "28d");
    assert_eq!(avail["labels"]["team"], "payments");
    let objectives = avail["objectives"].as_array().unwrap();
    assert_eq!(objectives.len(), 2);
    assert_eq!(objectives[0]["name"], "strict");
    assert_eq!(objectives[1]["name"], "relaxed");
    let burn = |target: f64| (5.0 / 200.0) / (1.0 - slotel_model::percent_to_ratio(target));
    assert_eq!(
        objectives[0]["burn_rates"]["1h"].as_f64().unwrap(),
        burn(99.9)
    );
    assert_eq!(
        objectives[1]["burn_rates"]["1h"].as_f64().unwrap(),
        burn(99.0)
    );

    // Threshold SLI: good at or below 0.3 s (half of them), timeslices over a calendar month.
    let latency = server.slo_when_total("checkout-latency-openslo", 200).await;
    assert_eq!(latency["good_events"], 100);
    assert_eq!(latency["budgeting"], "timeslices");
    assert_eq!(latency["window"], "month");
    assert!(latency["total_slices"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sloth_slos_fed_by_counters() {
    let text = std::fs::read_to_string(root().join("examples/sloth/api.yaml")).unwrap();
    let server = Server::start(&text);
    let plan = json!({
        "endpoint": server.otlp_http, "protocol": "http/protobuf", "service": "api",
        "metrics": {"counters": [{"name": "http.server.requests", "points": [
            {"attributes": {"code": "200"}, "value": 970},
            {"attributes": {"code": "503"}, "value": 20},
            {"attributes": {"code": "429"}, "value": 6},
            {"attributes": {"code": "404"}, "value": 4},
        ]}]},
    });
    let acked = tokio::task::spawn_blocking(move || send_otlp(&plan))
        .await
        .unwrap();
    assert_eq!(acked["data_points"], 4);
    // 26 of 1000 requests match code=~"(5..|429)".
    let body = server
        .slo_when_total("api-requests-availability", 1000)
        .await;
    assert_eq!(body["good_events"], 974);
    assert_eq!(body["service"], "api");
    assert_eq!(body["window"], "30d");
    assert_eq!(body["labels"]["owner"], "platform-team");
    assert_eq!(body["sli"].as_f64().unwrap(), 1.0 - 26.0 / 1000.0);
}
