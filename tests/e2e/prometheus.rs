//! The Prometheus-compatible API, checked with Prometheus' own tools: `promtool query`
//! against `/prometheus`, and a real Prometheus (Debian's) scraping `/metrics` with the
//! SLO series on, whose answers must equal slotel's.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Listening, Server, budget_remaining, eventually, spawn_listening};

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 30d
    labels: { team: payments }
    sli: { spans: { good: { status: not_error } } }
"#;

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs (./scripts/test installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The values of promtool's output lines `VALUE @[TIME]` (range) or `… => VALUE @[TIME]`
/// (instant), with their times.
fn values(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|l| {
            let (left, time) = l.split_once(" @[")?;
            let value = left.rsplit("=> ").next()?.trim().to_string();
            Some((value, time.trim_end_matches(']').parse().ok()?))
        })
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_queries_get_exact_values() {
    let server = Server::start(SLOS);
    let before = now_s();
    server.send_spans(None, "api", 90, 10).await;
    let after = now_s();
    server.slo_when_total("api", 100).await;
    let url = format!("{}/prometheus", server.api);

    let out = promtool(&[
        "query",
        "instant",
        &url,
        r#"slotel_slo_sli{slo="api",window="30d"}"#,
    ]);
    assert!(
        out.starts_with(r#"slotel_slo_sli{service="api", slo="api", team="payments", tenant="default", window="30d"} => 0.9 @["#),
        "{out}"
    );
    let out = promtool(&[
        "query",
        "instant",
        &url,
        r#"slotel_slo_error_budget_remaining{slo="api"}"#,
    ]);
    assert_eq!(
        values(&out)[0].0,
        format!("{}", budget_remaining(90, 100, 99.0))
    );
    let out = promtool(&[
        "query",
        "instant",
        &url,
        r#"sum by (team) (slotel_slo_events_rate{window="30d"}) * 2592000"#,
    ]);
    assert!(out.starts_with(r#"{team="payments"} => 100 @["#), "{out}");

    // A range over the minutes around the traffic: zero before its minute, 100 from it.
    let end = after.ceil();
    let start = end - 180.0;
    let out = promtool(&[
        "query",
        "range",
        &format!("--start={start}"),
        &format!("--end={end}"),
        "--step=1m",
        &url,
        r#"slotel_slo_events_rate{slo="api",window="30d"} * 2592000"#,
    ]);
    let points = values(&out);
    assert_eq!(points.len(), 4, "{out}");
    let minute = |t: f64| (t / 60.0).floor();
    for (value, t) in points {
        if minute(t) >= minute(after) {
            assert_eq!(value, "100", "at {t}: {out}");
        } else if minute(t) < minute(before) {
            assert_eq!(value, "0", "at {t}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_quantiles_merge_stored_and_unflushed_histograms() {
    // No flush but at shutdown: the first half reaches Parquet by a restart, the second
    // stays in the engine's tail.
    let mut server = Server::start_with(SLOS, "storage: { flush_interval: 1h }\n");
    let ms: Vec<u64> = (1..=100).map(|i| i * 10).collect();
    let spans = |part: &[u64]| -> Vec<(bool, u64)> {
        part.iter().map(|&m| (true, m * 1_000_000)).collect()
    };
    server
        .send_spans_lasting(None, "api", &spans(&ms[..50]))
        .await;
    server.slo_when_total("api", 50).await;
    server.restart();
    server.slo_when_total("api", 50).await;
    server
        .send_spans_lasting(None, "api", &spans(&ms[50..]))
        .await;
    server.slo_when_total("api", 100).await;
    let (_, body) = server
        .sql_as(
            None,
            "SELECT (SELECT count(*) FROM sli_minute_flushed WHERE latency IS NOT NULL) AS flushed, \
             (SELECT count(*) FROM sli_minute_unflushed WHERE latency IS NOT NULL) AS unflushed",
        )
        .await;
    // Each half's spans end in one minute: one histogram each.
    assert_eq!(body, serde_json::json!([{ "flushed": 1, "unflushed": 1 }]));

    // What slotel's histograms hold for the 100 spans.
    let mut h = slotel_compute::latency::histogram();
    for m in &ms {
        slotel_compute::latency::record(&mut h, m * 1000);
    }
    let expected = |q: f64| slotel_compute::latency::quantile_seconds(&h, q).unwrap();
    let quantiles = |server: &Server| {
        let url = format!("{}/prometheus", server.api);
        let out = promtool(&[
            "query",
            "instant",
            &url,
            r#"slotel_slo_latency_seconds{slo="api",window="1h"}"#,
        ]);
        let mut got: Vec<(f64, f64)> = out
            .lines()
            .map(|l| {
                let q = l
                    .split("quantile=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let v = l.split("=> ").nth(1).unwrap().split(' ').next().unwrap();
                (q.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        got
    };
    let got = quantiles(&server);
    assert_eq!(
        got,
        [0.5, 0.9, 0.95, 0.99].map(|q| (q, expected(q))),
        "every quantile over both halves"
    );
    // Against the truth: 500, 900, 950 and 990 ms, reported at most 1 % above.
    for ((_, v), truth) in got.iter().zip([0.5, 0.9, 0.95, 0.99]) {
        assert!(*v >= truth && *v <= truth * 1.01, "{v} vs {truth}");
    }
    // SQL merges the flushed and unflushed histograms alike.
    let (status, body) = server
        .sql_as(
            None,
            "SELECT latency_quantile(latency_merge(latency), 0.99) AS p99, \
             latency_quantile(latency_merge(latency), 0.5) AS p50 \
             FROM sli_minute WHERE slo = 'api'",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!([{ "p99": expected(0.99), "p50": expected(0.5) }])
    );
    let (status, body) = server
        .sql_as(
            None,
            "SELECT latency_quantile(latency, 2.0) FROM sli_minute",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("between 0 and 1"),
        "{body}"
    );
    // All from Parquet after another restart: the same.
    server.restart();
    server.slo_when_total("api", 100).await;
    assert_eq!(quantiles(&server), got);
}

/// A running Prometheus scraping `target`, killed on drop.
async fn start_prometheus(target: &str) -> Listening {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: slotel\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0");
    spawn_listening(cmd, "/-/ready", Some(dir)).await
}

async fn instant(base: &str, expr: &str) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_slo_series_and_agrees_with_slotel() {
    let server = Server::start_with(SLOS, "api:\n  slo_series_in_metrics: true\n");
    server.send_spans(None, "api", 97, 3).await;
    let status = server.slo_when_total("api", 100).await;
    let prometheus = start_prometheus(server.api.trim_start_matches("http://")).await;

    // Windows that the traffic stays in while the test runs.
    for expr in [
        r#"slotel_slo_sli{slo="api",window="30d"}"#,
        r#"slotel_slo_error_budget_remaining{slo="api"}"#,
        r#"slotel_slo_burn_rate{slo="api",window="3d"}"#,
        r#"slotel_slo_objective{slo="api"}"#,
    ] {
        let scraped = eventually(&format!("Prometheus has no {expr}"), || async {
            instant(&prometheus.url, expr).await.into_iter().next()
        })
        .await;
        let own = instant(&format!("{}/prometheus", server.api), expr).await;
        assert_eq!(own.len(), 1, "{expr}");
        assert_eq!(scraped["metric"]["__name__"], own[0]["metric"]["__name__"]);
        for label in ["slo", "service", "tenant", "team"] {
            assert_eq!(scraped["metric"][label], own[0]["metric"][label], "{expr}");
        }
        assert_eq!(scraped["value"][1], own[0]["value"][1], "{expr}");
    }
    // And the same numbers as the REST status.
    let sli = instant(&prometheus.url, r#"slotel_slo_sli{slo="api",window="30d"}"#).await;
    assert_eq!(
        sli[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
        status["sli"].as_f64().unwrap()
    );
    let remaining = instant(
        &prometheus.url,
        r#"slotel_slo_error_budget_remaining{slo="api"}"#,
    )
    .await;
    assert_eq!(
        remaining[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        status["error_budget_remaining"].as_f64().unwrap()
    );
    // The scrape itself is healthy.
    let up = instant(&prometheus.url, r#"up{job="slotel"}"#).await;
    assert_eq!(up[0]["value"][1], "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grouped_slos_series_with_and_without_the_attribute_are_distinct_and_all_scraped() {
    use crate::examples::{SpanPlan, attr, send};
    let slos = "slos:\n  - { name: by-tier, service: shop, objective: 99, window: 30d, group_by: [customer.tier], sli: { spans: { good: { status: not_error } } } }\n";
    let server = Server::start_with(slos, "api:\n  slo_series_in_metrics: true\n");
    // Gold: 6 spans, 1 failed. Without the attribute: 4 spans, 1 failed; with it empty:
    // 2 spans, 1 failed. Both of the latter are the group of a missing value.
    let mut spans: Vec<SpanPlan> = (0..6)
        .map(|i| (i == 0, 1, vec![attr("customer.tier", "gold")], "GET"))
        .collect();
    spans.extend((0..4).map(|i| (i == 0, 1, vec![], "GET")));
    spans.extend((0..2).map(|i| (i == 0, 1, vec![attr("customer.tier", "")], "GET")));
    send(&server, "shop", 1, spans).await;
    server.wait_applied().await;
    let want = [
        (None, 12.0, 3.0),
        (Some("__missing__"), 6.0, 2.0),
        (Some("gold"), 6.0, 1.0),
    ];
    let prometheus = start_prometheus(server.api.trim_start_matches("http://")).await;
    let expr = r#"slotel_slo_sli{slo="by-tier",window="30d"}"#;
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|s| s["metric"]["customer_tier"].as_str().map(String::from));
        v
    };
    let scraped = eventually("Prometheus has all three series", || async {
        let v = instant(&prometheus.url, expr).await;
        (v.len() == 3).then_some(v)
    })
    .await;
    let own = instant(&format!("{}/prometheus", server.api), expr).await;
    for series in [sorted(scraped), sorted(own)] {
        assert_eq!(series.len(), 3, "{series:?}");
        for (s, (tier, total, bad)) in series.iter().zip(want) {
            assert_eq!(s["metric"]["customer_tier"].as_str(), tier, "{s}");
            let sli: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            assert_eq!(sli, 1.0 - bad / total, "{s}");
        }
    }
    // The dashboards' selector of the SLO's own series finds exactly one.
    let whole = instant(
        &format!("{}/prometheus", server.api),
        r#"slotel_slo_sli{slo="by-tier",window="30d",customer_tier=""}"#,
    )
    .await;
    assert_eq!(whole.len(), 1, "{whole:?}");
}
