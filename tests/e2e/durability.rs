//! Acknowledged means durable: the real binary killed with SIGKILL under load, over and
//! over, on the same data directory, counts exactly what the load generators were told
//! was accepted; a torn log tail and a damaged record are handled as documented; the
//! server is not ready until it has replayed its log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

use crate::harness::{Server, loadtest_bin, run_loadtest};

const SLOS: &str = r#"
slos:
  - name: checkout-spans
    service: checkout
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: checkout-logs
    service: checkout
    objective: 99
    window: 1d
    sli: { logs: { good: { max_severity: warn } } }
  - name: checkout-counter
    service: checkout
    objective: 99
    window: 1d
    sli:
      metrics:
        good: { metric: loadtest.requests, attributes: { outcome: ok } }
        total: { metric: loadtest.requests }
  - name: catalog-spans
    service: catalog
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: catalog-logs
    service: catalog
    objective: 99
    window: 1d
    sli: { logs: { good: { max_severity: warn } } }
  - name: catalog-counter
    service: catalog
    objective: 99
    window: 1d
    sli:
      metrics:
        good: { metric: loadtest.requests, attributes: { outcome: ok } }
        total: { metric: loadtest.requests }
"#;

/// Starts a load generator sending spans, a log record per span and cumulative
/// counters of `route` at `rate` for `duration`, retrying every refusal (and every
/// connection the kills break) until it is acknowledged.
fn generator(
    endpoint: &str,
    protocol: &str,
    route: &str,
    seed: u64,
    truth: &Path,
    seconds: u64,
) -> Child {
    Command::new(loadtest_bin())
        .args(["--endpoint", endpoint, "--protocol", protocol])
        .args(["--rate", "1500", "--batch-size", "100"])
        .args(["--duration", &format!("{seconds}s")])
        .args(["--concurrency", "4", "--max-retries", "1000000"])
        .args(["--signals", "traces,logs,metrics"])
        .args(["--route", route, "--error-ratio", "0.07"])
        .args(["--seed", &seed.to_string()])
        .arg("--ground-truth")
        .arg(truth)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start loadtest")
}

fn wait_ok(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "loadtest exited with {status}");
}

fn read_truth(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How many times the crash loop kills slotel: 5, or `SLOTEL_CRASH_KILLS` for a longer
/// run (`docs/benchmarks.md` has a run of 20).
fn kills() -> u64 {
    std::env::var("SLOTEL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_nothing_acknowledged_and_counts_nothing_twice() {
    // Checkpoints every second, so kills also land between a checkpoint's files and
    // its publication.
    let config = "storage: { flush_interval: 1s }\n";
    let kills = kills();
    // The generators send for longer than the kills take (about 1.4 s apart).
    let seconds = 12.max(kills * 2 + 2);
    let mut server = Server::start_pinned(SLOS, config);
    let dir = tempfile::tempdir().unwrap();
    let (grpc_truth, http_truth) = (dir.path().join("grpc.json"), dir.path().join("http.json"));
    let grpc = generator(
        &server.otlp_grpc,
        "grpc",
        "checkout:POST /api/checkout",
        11,
        &grpc_truth,
        seconds,
    );
    let http = generator(
        &server.otlp_http,
        "http",
        "catalog:GET /api/items/{id}",
        12,
        &http_truth,
        seconds,
    );
    // Kill at seeded pseudo-random moments while the generators send: the pauses are
    // the chaos schedule, not synchronization.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..kills {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokio::time::sleep(Duration::from_millis(700 + x % 1300)).await;
        server.kill_and_restart().await;
    }
    wait_ok(grpc);
    wait_ok(http);
    server.wait_applied().await;
    let mut checked = 0;
    for (truth_path, service) in [(&grpc_truth, "checkout"), (&http_truth, "catalog")] {
        let truth = read_truth(truth_path);
        assert_eq!(truth["spans_failed"], 0, "{truth}");
        assert_eq!(truth["log_records_failed"], 0, "{truth}");
        assert_eq!(truth["metric_requests_failed"], 0, "{truth}");
        let g = &truth["groups"][0];
        let (total, errors) = (g["total"].as_u64().unwrap(), g["errors"].as_u64().unwrap());
        assert!(total > 10_000, "{truth}");
        for (slo, want_total, want_bad) in [
            ("spans", total, errors),
            (
                "logs",
                g["log_records"].as_u64().unwrap(),
                g["log_errors"].as_u64().unwrap(),
            ),
            (
                "counter",
                g["counter_total"].as_u64().unwrap(),
                g["counter_errors"].as_u64().unwrap(),
            ),
        ] {
            // Every signal was acknowledged in full, so each equals the spans sent.
            assert_eq!((want_total, want_bad), (total, errors), "{slo}: {truth}");
            let body = server.slo(&format!("{service}-{slo}")).await;
            assert_eq!(body["total_events"], want_total, "{service}-{slo}: {body}");
            assert_eq!(
                body["good_events"].as_u64().unwrap(),
                want_total - want_bad,
                "{service}-{slo}: {body}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
    // Once more from the files and the log alone, after a graceful stop.
    server.restart();
    server.wait_applied().await;
    for (truth_path, service) in [(&grpc_truth, "checkout"), (&http_truth, "catalog")] {
        let truth = read_truth(truth_path);
        let g = &truth["groups"][0];
        for slo in ["spans", "logs", "counter"] {
            let body = server.slo(&format!("{service}-{slo}")).await;
            assert_eq!(body["total_events"], g["total"], "{service}-{slo}: {body}");
        }
    }
}

/// The records of a segment file, as the log's documented format lays them out:
/// `[len u32 LE][crc32c u32 LE][payload]`, the payload ending in the protobuf body
/// after `tenant_len u16, tenant, signal u8, received_nanos i64`. Returns each record's
/// end offset and its span count.
fn records(segment: &[u8]) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        let payload = &segment[at + 8..at + 8 + len];
        let tenant_len = u16::from_le_bytes([payload[0], payload[1]]) as usize;
        let body = &payload[2 + tenant_len + 9..];
        let req = ExportTraceServiceRequest::decode(body).unwrap();
        at += 8 + len;
        out.push((at, slotel_proto::span_count(&req) as u64));
    }
    out
}

fn only_segment(data: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

const ONE_SLO: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_cut_and_a_damaged_record_stops_the_start_until_wal_repair() {
    // No checkpoint while the test runs: the log holds every request.
    let config = "storage: { flush_interval: 1h }\n";
    let mut server = Server::start_with(ONE_SLO, config);
    for i in 0..6 {
        server.send_spans(None, "api", 3 + i, 1).await;
    }
    server.wait_applied().await;
    assert_eq!(server.slo("api").await["total_events"], 4 * 6 + 15);
    let data = server.data_dir();
    server.kill();
    let seg = only_segment(&data);
    let whole = std::fs::read(&seg).unwrap();
    let recs = records(&whole);
    assert_eq!(recs.len(), 6);
    // Cut inside the header of the fourth record, inside the payload of the fifth, and
    // at the end of the sixth: exactly the whole records before the cut count.
    let cuts = [recs[2].0 + 3, recs[4].0 - 10, recs[5].0];
    for cut in cuts {
        std::fs::write(&seg, &whole[..cut]).unwrap();
        let want: u64 = recs
            .iter()
            .filter(|(end, _)| *end <= cut)
            .map(|r| r.1)
            .sum();
        server.start_again();
        server.wait_applied().await;
        assert_eq!(
            server.slo("api").await["total_events"],
            want,
            "cut at {cut}"
        );
        let torn = server.metric("slotel_wal_torn_bytes_total", &[]).await;
        let kept_end = recs
            .iter()
            .map(|r| r.0)
            .filter(|e| *e <= cut)
            .max()
            .unwrap_or(0);
        assert_eq!(torn, (cut - kept_end) as f64, "cut at {cut}");
        server.kill();
    }
    // A flipped byte in the second record: the start stops, naming segment and offset.
    let mut damaged = whole.clone();
    damaged[recs[0].0 + 8 + 5] ^= 0xff;
    std::fs::write(&seg, &damaged).unwrap();
    let out = server.run_to_exit();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains(&format!("offset {}", recs[0].0)),
        "{stderr}"
    );
    assert!(stderr.contains("--wal-repair"), "{stderr}");
    // With --wal-repair it starts with the first record only, and says what it dropped.
    server.start_again_with(&["--wal-repair"]);
    server.wait_applied().await;
    assert_eq!(server.slo("api").await["total_events"], recs[0].1);
    assert_eq!(
        server
            .metric("slotel_wal_repair_dropped_bytes_total", &[])
            .await,
        (whole.len() - recs[0].0) as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_while_a_large_log_replays_and_200_with_exact_answers_after() {
    let config = "storage: { flush_interval: 1h }\n";
    let mut server = Server::start_with(ONE_SLO, config);
    let truth = run_loadtest(&[
        "--endpoint",
        &server.otlp_grpc,
        "--protocol",
        "grpc",
        "--spans",
        "200000",
        "--rate",
        "0",
        "--batch-size",
        "500",
        "--concurrency",
        "4",
        "--route",
        "api:GET /",
        "--seed",
        "3",
        "--error-ratio",
        "0.02",
    ]);
    let (total, errors) = (
        truth["groups"][0]["total"].as_u64().unwrap(),
        truth["groups"][0]["errors"].as_u64().unwrap(),
    );
    assert_eq!(total, 200_000);
    server.wait_applied().await;
    server.kill();
    server.start_again();
    // The first answer after the start comes while the replay runs.
    let (status, body) = server.get_as(None, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "replaying");
    assert_eq!(server.metric("slotel_ready", &[]).await, 0.0);
    assert!(server.metric("slotel_wal_lag_bytes", &[]).await > 0.0);
    server.wait_applied().await;
    let (status, body) = server.get_as(None, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let slo = server.slo("api").await;
    assert_eq!(slo["total_events"], total);
    assert_eq!(slo["good_events"].as_u64().unwrap(), total - errors);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let mut server = Server::start(ONE_SLO);
    server.send_spans(None, "api", 5, 0).await;
    let out = server.run_to_exit();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another slotel")
            && stderr.contains(&format!("pid {}", server.pid())),
        "{stderr}"
    );
    // The first one goes on, its log untouched.
    server.wait_applied().await;
    assert_eq!(server.slo("api").await["total_events"], 5);
}
