//! Silences explained: spans from `OTEL_SERVICE_NAME=Checkout` (capital C) leave the
//! SLO of service `checkout` without data, and `slotel explain`, the status and
//! `/metrics` say why; spans of the right service that the selector drops are counted
//! by the step that drops them.

use std::process::Command;

use crate::harness::{Server, now_nanos, span};

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
"#;

/// Sends `n` spans of `service`, of `kind` and `name`, ids from `first`.
async fn send(server: &Server, service: &str, kind: i32, name: &str, n: u64, first: u64) {
    let now = now_nanos();
    let spans = (first..first + n)
        .map(|id| span(id, name, kind, now, 1, false, Vec::new()))
        .collect();
    server.post_spans(service, spans).await;
}

fn explain(server: &Server, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotel"));
    cmd.args(["explain", "checkout-availability", "--api", &server.api]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_names_the_service_near_miss_and_the_steps_that_drop_spans() {
    let server = Server::start(SLOS);
    // 30 spans from "Checkout": no SLO selects that service.
    send(&server, "Checkout", 2, "POST /api/checkout", 30, 1).await;
    server.wait_applied().await;
    let out = explain(&server, false);
    assert!(out.contains("events in its window: 0"), "{out}");
    assert!(
        out.contains(r#"no spans from service "checkout", but 30 from "Checkout", which differs only in case"#),
        "{out}"
    );
    assert!(out.contains(r#""Checkout" 30 (no SLO)"#), "{out}");
    // The status says the same, and /metrics counts the spans of the unmatched service.
    let status = server.slo("checkout-availability").await;
    assert_eq!(status["state"], "no_data");
    assert!(
        status["diagnosis"]
            .as_str()
            .unwrap()
            .contains(r#"30 from "Checkout""#),
        "{status}"
    );
    let unmatched = server
        .metric(
            "slotel_engine_unmatched_spans_total",
            &[("tenant", "default"), ("service", "Checkout")],
        )
        .await;
    assert_eq!(unmatched, 30.0);

    // Spans of the right service: 5 selected, 7 client spans (the kind), 4 with a
    // trailing slash (the span name, a near miss).
    send(&server, "checkout", 2, "POST /api/checkout", 5, 100).await;
    send(&server, "checkout", 3, "POST /api/checkout", 7, 200).await;
    send(&server, "checkout", 2, "POST /api/checkout/", 4, 300).await;
    server.wait_applied().await;
    let body: serde_json::Value = serde_json::from_str(&explain(&server, true)).unwrap();
    assert_eq!(body["events_in_window"], 5);
    assert_eq!(body["service_spans"], 16);
    let sample = &body["sample"];
    assert_eq!(sample["spans"], 16);
    assert_eq!(sample["selected"], 5);
    assert_eq!(sample["dropped_by_kind"], 7);
    assert_eq!(sample["dropped_by_span_name"], 4);
    let findings: Vec<&str> = body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        findings,
        [
            "checkout-availability counts 5 events in its window (5 good)",
            "7 of 16 sampled spans of the service are not of the selected kind (they are client)",
            r#"4 of 16 sampled spans have another span name than "POST /api/checkout"; near misses (case or a trailing slash): ["POST /api/checkout/"]"#,
        ]
    );
    // The service has an SLO now; "Checkout" still has none.
    let services = body["tenant_services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    assert_eq!(services[0]["service"], "Checkout");
    assert_eq!(services[0]["has_slos"], false);
    assert_eq!(services[1]["service"], "checkout");
    assert_eq!(services[1]["has_slos"], true);
}
