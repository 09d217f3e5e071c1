//! `loadtest` drives the real server; slotel's counts must equal loadtest's ground truth
//! exactly, which is computed from the generated spans, not by slotel's classifier.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Server, loadtest_bin};

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
  - name: catalog-fast-and-correct
    service: catalog
    objective: 95
    window: 7d
    sli:
      spans:
        match: { span_kind: server, http_route: "/api/items/{id}" }
        good: { status: not_error, max_duration: 120ms }
"#;

fn group<'a>(truth: &'a Value, service: &str) -> &'a Value {
    truth["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["service"] == service)
        .unwrap()
}

async fn run(protocol: &str, endpoint: &str, seed: u64, server: &Server, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let out = Command::new(loadtest_bin())
        .args(["--endpoint", endpoint, "--protocol", protocol])
        .args(["--spans", "20000", "--rate", "0", "--batch-size", "512"])
        .args(["--seed", &seed.to_string()])
        .args([
            "--error-ratio",
            "0.02",
            "--latency-median",
            "100ms",
            "--latency-p99",
            "900ms",
        ])
        .args(["--threshold", "300ms", "--threshold", "120ms"])
        .args(["--route", "checkout:POST /api/checkout"])
        .args(["--route", "catalog:GET /api/items/{id}"])
        .args(extra)
        .arg("--ground-truth")
        .arg(&truth_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
    assert_eq!(truth["seed"], seed);
    assert_eq!(truth["spans_acknowledged"], 20000, "{truth}");
    assert_eq!(truth["spans_failed"], 0);

    let checkout = group(&truth, "checkout");
    let catalog = group(&truth, "catalog");
    let total = checkout["total"].as_u64().unwrap();
    assert_eq!(total + catalog["total"].as_u64().unwrap(), 20000);
    // Both kinds of span were sent, with errors and slow spans among them.
    assert!(checkout["errors"].as_u64().unwrap() > 0);
    assert!(checkout["within"]["300ms"].as_u64().unwrap() < total);

    let avail = server.slo_when_total("checkout-availability", total).await;
    assert_eq!(avail["total_events"], checkout["total"]);
    assert_eq!(
        avail["good_events"].as_u64().unwrap(),
        total - checkout["errors"].as_u64().unwrap()
    );
    let latency = server.slo_when_total("checkout-latency", total).await;
    assert_eq!(latency["total_events"], checkout["total"]);
    assert_eq!(latency["good_events"], checkout["within"]["300ms"]);
    let fast = server
        .slo_when_total(
            "catalog-fast-and-correct",
            catalog["total"].as_u64().unwrap(),
        )
        .await;
    assert_eq!(fast["total_events"], catalog["total"]);
    assert_eq!(fast["good_events"], catalog["ok_within"]["120ms"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn loadtest_over_grpc_matches_the_ground_truth() {
    let server = Server::start(SLOS);
    run("grpc", &server.otlp_grpc, 11, &server, &[]).await;
}

/// Prepared batches sent again with fresh span ids: each span once, as generated.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_batches_over_grpc_and_http_match_the_ground_truth() {
    let server = Server::start(SLOS);
    run("grpc", &server.otlp_grpc, 13, &server, &["--prepared", "3"]).await;
    let server = Server::start(SLOS);
    run("http", &server.otlp_http, 14, &server, &["--prepared", "3"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loadtest_over_http_matches_the_ground_truth() {
    let server = Server::start(SLOS);
    run("http", &server.otlp_http, 12, &server, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_reports_progress_and_a_summary() {
    let server = Server::start(SLOS);
    // 11 seconds at 200 spans/s; stderr is a pipe, so progress comes as plain lines.
    let out = Command::new(loadtest_bin())
        .args(["--endpoint", &server.otlp_http, "--protocol", "http"])
        .args(["--spans", "2200", "--rate", "200", "--batch-size", "100"])
        .args(["--route", "checkout:POST /api/checkout"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("10s: "))
        .unwrap_or_else(|| panic!("no progress line after 10 s: {stderr}"));
    assert!(
        line.contains("/2200 spans sent; ") && line.ends_with(" acknowledged, 0 failed, 0 retries"),
        "{line}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("sent 2200 spans in ")
            && stdout.contains("(2200 acknowledged, 0 failed, 0 retries)"),
        "{stdout}"
    );
    server.slo_when_total("checkout-availability", 2200).await;
}

/// The wide workload's 200 SLOs count each span exactly three times, each SLO what the
/// generated spans say (route SLOs: their route's spans; service SLOs: the service's).
#[test]
fn the_wide_workload_matches_three_slos_a_span() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use slotel_compute::{Engine, EngineConfig};
    use slotel_loadtest::{Generator, Scenario, TruthBook, threshold_label, wide_slos};
    use slotel_model::{Clock, SystemClock};

    let scenario = Scenario {
        thresholds_ns: vec![300_000_000],
        ..Scenario::wide()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.yaml");
    std::fs::write(&path, wide_slos(&scenario)).unwrap();
    let defs = slotel_spec::load_paths(&[path]).unwrap();
    assert_eq!(defs.len(), 200);
    let engine = Engine::with_config(Arc::new(SystemClock), EngineConfig::default());
    engine.load(defs);
    let mut generator = Generator::new(scenario.clone(), 7).unwrap();
    let mut book = TruthBook::new(&scenario, 7);
    let now = SystemClock.now_nanos() as u64;
    for _ in 0..8 {
        let (request, truth) = generator.batch(512, now);
        let batch = slotel_proto::Batch::traces("default".into(), request);
        engine.ingest(&batch);
        book.acknowledged(&truth);
    }
    assert_eq!(
        engine
            .stats()
            .events_counted
            .load(std::sync::atomic::Ordering::Relaxed),
        3 * 8 * 512
    );
    // (good, total) per SLO, from the ground truth.
    let label = threshold_label(300_000_000);
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (i, route) in scenario.routes.iter().enumerate() {
        let g = book
            .truth()
            .groups
            .into_iter()
            .find(|g| g.service == route.service && g.span_name == route.span_name())
            .unwrap();
        expected.insert(
            format!("route-{i:02}-availability"),
            (g.total - g.errors, g.total),
        );
        expected.insert(format!("route-{i:02}-latency"), (g.within[&label], g.total));
        let s = expected
            .entry(format!("{}-server", route.service))
            .or_default();
        s.0 += g.total - g.errors;
        s.1 += g.total;
    }
    let mut counted: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in engine.peek_tail() {
        let c = counted.entry(row.slo).or_default();
        c.0 += row.tally.good;
        c.1 += row.tally.total;
    }
    assert_eq!(counted, expected);
}
