//! The generated dashboards and rules as users meet them: every panel query run through
//! slotel's Prometheus API on known traffic, every dashboard validated against Grafana's
//! published dashboard model, and the rules checked and unit-tested by promtool.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use slotel_compute::math;
use slotel_model::percent_to_ratio;
use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use slotel_proto::otlp::trace::v1::{Span, Status};

use crate::harness::{Server, eventually, root};

/// Runs `slotel dashboards generate` on the example SLOs into `out`; returns the
/// dashboards with their paths.
fn generate(out: &Path, extra: &[&str]) -> Vec<(PathBuf, Value)> {
    let status = Command::new(env!("CARGO_BIN_EXE_slotel"))
        .args(["dashboards", "generate", "--slos"])
        .arg(root().join("examples/slos.yaml"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
    let dir = out.join("provisioning/dashboards/slotel");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// `n` server spans named `name` ending now, lasting `ms`, failed or not.
fn spans(
    first: u64,
    n: u64,
    name: &str,
    ms: u64,
    error: bool,
    attrs: &[(&str, &str)],
) -> Vec<Span> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (first..first + n)
        .map(|id| {
            let id = id + (u64::from(std::process::id()) << 40);
            Span {
                trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
                span_id: id.to_be_bytes().to_vec(),
                name: name.into(),
                kind: 2,
                start_time_unix_nano: now - ms * 1_000_000,
                end_time_unix_nano: now,
                status: Some(Status {
                    code: if error { 2 } else { 1 },
                    message: String::new(),
                }),
                attributes: attrs.iter().map(|(k, v)| attr(k, v)).collect(),
                ..Default::default()
            }
        })
        .collect()
}

async fn send(server: &Server, service: &str, spans: Vec<Span>) {
    use prost::Message;
    let body = slotel_proto::traces_request(service, spans).encode_to_vec();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Runs `expr` through `/prometheus/api/v1/query` (instant) or `query_range` (the last
/// ten minutes); returns the `result` array.
async fn prom(server: &Server, expr: &str, instant: bool) -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (path, params) = if instant {
        (
            "query",
            vec![("query", expr.to_string()), ("time", now.to_string())],
        )
    } else {
        (
            "query_range",
            vec![
                ("query", expr.to_string()),
                ("start", (now - 600).to_string()),
                ("end", now.to_string()),
                ("step", "60".to_string()),
            ],
        )
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/prometheus/api/v1/{path}", server.api))
        .form(&params)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{expr}: {body}");
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"].as_array().unwrap().clone()
}

/// The panels of a dashboard by title, in order.
fn panels<'a>(d: &'a Value, title: &str) -> Vec<&'a Value> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["title"] == title)
        .collect()
}

/// A target's expression with the dashboard's variables set to All.
fn expr(d: &Value, target: &Value) -> String {
    let mut e = target["expr"].as_str().unwrap().to_string();
    for v in d["templating"]["list"].as_array().unwrap() {
        if let (Some(n), Some(all)) = (v["name"].as_str(), v["allValue"].as_str()) {
            e = e.replace(&format!("${n}"), all);
        }
    }
    e
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// The value of the series of an instant result whose `label` is `want`.
fn value_of(result: &[Value], label: &str, want: &str) -> f64 {
    let s = result
        .iter()
        .find(|s| s["metric"][label] == want)
        .unwrap_or_else(|| panic!("no series with {label}={want} in {result:?}"));
    value(s)
}

fn budget(good: u64, total: u64, objective: f64) -> f64 {
    math::budget_remaining(good as f64, total as f64, percent_to_ratio(objective)).unwrap()
}

fn sli(good: u64, total: u64) -> f64 {
    math::sli(good as f64, total as f64).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_returns_data_and_slo_panels_the_exact_values() {
    let slos = std::fs::read_to_string(root().join("examples/slos.yaml")).unwrap();
    let server = Server::start_with(&slos, "alerting:\n  evaluation_interval: 200ms\n");
    let post = [("http.request.method", "POST")];
    let mut batch = spans(1, 800, "POST /api/checkout", 100, false, &post);
    batch.extend(spans(801, 150, "POST /api/checkout", 500, false, &post));
    batch.extend(spans(951, 50, "POST /api/checkout", 100, true, &post));
    send(&server, "checkout", batch).await;
    let gold = [("http.route", "/api/items/{id}"), ("customer.tier", "gold")];
    let silver = [
        ("http.route", "/api/items/{id}"),
        ("customer.tier", "silver"),
    ];
    let mut batch = spans(2001, 400, "GET /api/items/{id}", 50, false, &gold);
    batch.extend(spans(2401, 398, "GET /api/items/{id}", 50, false, &silver));
    batch.extend(spans(2799, 2, "GET /api/items/{id}", 50, true, &silver));
    send(&server, "catalog", batch).await;
    server.slo_when_total("checkout-availability", 1000).await;
    server.slo_when_total("catalog-availability", 800).await;
    // The fast page of checkout-availability (burn rate 50) fires.
    eventually("the checkout page fires", || async {
        let (_, alerts) = server.get_as(None, "/api/v1/alerts").await;
        alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["burnrate_tier"] == "page-fast" && a["state"] == "firing")
            .then_some(())
    })
    .await;

    // The health history samples slotel's metrics when read: the ingestion lag exists
    // from the first event on, so it is there once a read happens in the minute a query
    // asks about (the test's clock may still be in the minute before the server's).
    eventually("the ingestion lag was not sampled", || async {
        let lag = prom(&server, "slotel_engine_newest_event_age_seconds", true).await;
        (!lag.is_empty()).then_some(())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dashboards = generate(dir.path(), &[]);
    let names: Vec<String> = dashboards
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "slotel-executive.json",
            "slotel-oncall.json",
            "slotel-overview.json",
            "slotel-service-catalog.json",
            "slotel-service-checkout.json",
        ]
    );
    let mut queries = 0;
    for (path, d) in &dashboards {
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let e = expr(d, t);
                let instant = t["instant"] == true;
                let result = prom(&server, &e, instant).await;
                assert!(
                    !result.is_empty(),
                    "{}: panel {:?}: {e} returned no data",
                    path.display(),
                    p["title"]
                );
                queries += 1;
            }
        }
    }
    assert!(queries > 60, "{queries} queries");

    let by_name = |name: &str| {
        &dashboards
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap()
            .1
    };
    // The overview table's SLI column and the summary stats.
    let overview = by_name("slotel-overview.json");
    let table = panels(overview, "SLOs by budget remaining")[0];
    let sli_col = prom(&server, &expr(overview, &table["targets"][1]), true).await;
    assert_eq!(
        value_of(&sli_col, "slo", "checkout-availability"),
        sli(950, 1000)
    );
    assert_eq!(
        value_of(&sli_col, "slo", "checkout-latency"),
        sli(850, 1000)
    );
    assert_eq!(
        value_of(&sli_col, "slo", "catalog-availability"),
        sli(798, 800)
    );
    assert_eq!(value_of(&sli_col, "slo", "catalog-fast-and-correct"), 1.0);
    let budget_col = prom(&server, &expr(overview, &table["targets"][2]), true).await;
    assert_eq!(
        value_of(&budget_col, "slo", "checkout-availability"),
        budget(950, 1000, 99.9)
    );
    assert_eq!(
        value_of(&budget_col, "slo", "catalog-availability"),
        budget(798, 800, 99.5)
    );
    let alerts_col = prom(&server, &expr(overview, &table["targets"][4]), true).await;
    // Burn rates: checkout 50 and 15 (every tier); catalog-availability 0.5 as a whole
    // (above the 0.23 of ticket-slow on its 7-day window) and 1.0 in its silver group
    // (ticket-slow, and ticket-fast at 0.7); catalog-fast-and-correct 0.
    assert_eq!(value_of(&alerts_col, "slo", "checkout-availability"), 4.0);
    assert_eq!(value_of(&alerts_col, "slo", "checkout-latency"), 4.0);
    assert_eq!(value_of(&alerts_col, "slo", "catalog-availability"), 3.0);
    assert_eq!(
        value_of(&alerts_col, "slo", "catalog-fast-and-correct"),
        0.0
    );
    let stat = |title: &str| {
        let p = panels(overview, title)[0];
        expr(overview, &p["targets"][0])
    };
    assert_eq!(value(&prom(&server, &stat("SLOs"), true).await[0]), 4.0);
    assert_eq!(
        value(&prom(&server, &stat("Meeting their objective"), true).await[0]),
        2.0
    );
    assert_eq!(
        value(&prom(&server, &stat("Budget spent"), true).await[0]),
        2.0
    );

    // The executive compliance: two of four SLOs meet their objective.
    let exec = by_name("slotel-executive.json");
    let p = panels(exec, "SLO compliance")[0];
    assert_eq!(
        value(&prom(&server, &expr(exec, &p["targets"][0]), true).await[0]),
        0.5
    );
    let p = panels(exec, "Compliance by team")[0];
    let by_team = prom(&server, &expr(exec, &p["targets"][0]), true).await;
    assert_eq!(value_of(&by_team, "team", "payments"), 0.0);
    assert_eq!(value_of(&by_team, "team", "discovery"), 1.0);

    // Detail panels: SLI and budget per SLO (the newest point of the range), the tiers'
    // states, and the per-group budgets.
    let checkout = by_name("slotel-service-checkout.json");
    let expected = [(950, 1000, 99.9), (850, 1000, 99.0)];
    let sli_panels = panels(checkout, "SLI and objective");
    let budget_panels = panels(checkout, "Error budget remaining");
    assert_eq!((sli_panels.len(), budget_panels.len()), (2, 2));
    for (i, (good, total, objective)) in expected.into_iter().enumerate() {
        let r = prom(
            &server,
            &expr(checkout, &sli_panels[i]["targets"][0]),
            false,
        )
        .await;
        let last = r[0]["values"].as_array().unwrap().last().unwrap();
        assert_eq!(
            last[1].as_str().unwrap().parse::<f64>().unwrap(),
            sli(good, total)
        );
        let r = prom(&server, &expr(checkout, &sli_panels[i]["targets"][1]), true).await;
        assert_eq!(value(&r[0]), percent_to_ratio(objective));
        let r = prom(
            &server,
            &expr(checkout, &budget_panels[i]["targets"][0]),
            true,
        )
        .await;
        assert_eq!(value(&r[0]), budget(good, total, objective));
    }
    // Latency: 850 spans of 100 ms and 150 of 500 ms, in both checkout SLOs; the
    // latency SLO draws its 300 ms threshold.
    let mut h = slotel_compute::latency::histogram();
    for (n, ms) in [(850, 100), (150, 500)] {
        for _ in 0..n {
            slotel_compute::latency::record(&mut h, ms * 1000);
        }
    }
    let latency_panels = panels(checkout, "Latency quantiles");
    assert_eq!(latency_panels.len(), 2);
    for p in &latency_panels {
        let r = prom(&server, &expr(checkout, &p["targets"][0]), true).await;
        assert_eq!(r.len(), 4, "{r:?}");
        for q in [0.5, 0.9, 0.95, 0.99] {
            assert_eq!(
                value_of(&r, "quantile", &q.to_string()),
                slotel_compute::latency::quantile_seconds(&h, q).unwrap(),
                "p{q}"
            );
        }
    }
    assert_eq!(latency_panels[0]["targets"].as_array().unwrap().len(), 1);
    let r = prom(
        &server,
        &expr(checkout, &latency_panels[1]["targets"][1]),
        true,
    )
    .await;
    assert_eq!(value(&r[0]), 0.3);
    let tiers = panels(checkout, "Alert tiers")[0];
    let states = prom(&server, &expr(checkout, &tiers["targets"][0]), true).await;
    assert_eq!(states.len(), 4);
    assert!(states.iter().all(|s| value(s) == 2.0), "{states:?}");
    let catalog = by_name("slotel-service-catalog.json");
    let groups = panels(catalog, "Budget remaining per group")[0];
    let r = prom(&server, &expr(catalog, &groups["targets"][0]), true).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        value_of(&r, "customer_tier", "gold"),
        budget(400, 400, 99.5)
    );
    assert_eq!(
        value_of(&r, "customer_tier", "silver"),
        budget(398, 400, 99.5)
    );
    let tiers = panels(catalog, "Alert tiers");
    let states = prom(&server, &expr(catalog, &tiers[0]["targets"][0]), true).await;
    assert_eq!(states.len(), 4);
    assert_eq!(value_of(&states, "burnrate_tier", "ticket-slow"), 2.0);
    assert_eq!(value_of(&states, "burnrate_tier", "page-fast"), 0.0);
    let states = prom(&server, &expr(catalog, &tiers[1]["targets"][0]), true).await;
    assert_eq!(states.len(), 4);
    assert!(states.iter().all(|s| value(s) == 0.0), "{states:?}");
}

/// The node tools of `tests/grafana` (installed by `./scripts/test`).
fn node_tool(name: &str) -> PathBuf {
    let bin = root().join("tests/grafana/node_modules/.bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: ./scripts/test installs it (npm ci in tests/grafana)",
        bin.display()
    );
    bin
}

fn ajv_accepts(schema: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(node_tool("ajv"))
        .args([
            "validate",
            "--spec=draft7",
            "--strict=false",
            "--all-errors",
            "-s",
        ])
        .arg(schema)
        .arg("-d")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn dashboards_follow_grafanas_dashboard_model() {
    let dir = tempfile::tempdir().unwrap();
    let types = root().join(
        "tests/grafana/node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts",
    );
    let schema = dir.path().join("dashboard.schema.json");
    let out = Command::new(node_tool("ts-json-schema-generator"))
        .arg("--path")
        .arg(&types)
        .args(["--type", "Dashboard", "--no-type-check", "-o"])
        .arg(&schema)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut checked = 0;
    for detail in ["service", "slo"] {
        let out = dir.path().join(detail);
        for (path, d) in generate(&out, &["--detail", detail]) {
            assert_eq!(d["schemaVersion"], 42);
            let (ok, report) = ajv_accepts(&schema, &path);
            assert!(ok, "{}: {report}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 5 + 7);

    // The schema is strict: an unknown key or a wrong type is refused.
    let (path, d) = &generate(&dir.path().join("bad"), &[])[0];
    let mut unknown = d.clone();
    unknown["panels"][1]["colour"] = "red".into();
    let mut wrong = d.clone();
    wrong["panels"][1]["gridPos"]["w"] = "wide".into();
    for (what, bad) in [("an unknown key", unknown), ("a wrong type", wrong)] {
        std::fs::write(path, serde_json::to_vec(&bad).unwrap()).unwrap();
        let (ok, _) = ajv_accepts(&schema, path);
        assert!(!ok, "a dashboard with {what} passed");
    }
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (./scripts/test installs Debian's prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("slotel-rules.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_slotel"))
        .args(["rules", "generate", "--slos"])
        .arg(root().join("examples/slos.yaml"))
        .arg("--out")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Left out catalog-fast-and-correct: spanmetrics count status, duration and HTTP status separately, so only a good rule with exactly one of them has an exact equivalent\n\
             Note on checkout-latency: the latency threshold 300 ms is not a bucket bound of the spanmetrics histogram (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000 ms), so the rules count spans slower than 200 ms as slow (a stricter SLI than slotel's); add 300 to the connector's histogram.explicit.buckets and pass --buckets, or set the threshold to a bound\n\
             Wrote rules for 3 of 4 SLOs to {}\n",
            rules.display()
        )
    );
    let checked = promtool(&["check", "rules", "slotel-rules.yaml"], dir.path());
    assert!(checked.contains("SUCCESS: 57 rules found"), "{checked}");
    std::fs::copy(
        root().join("tests/promtool/slo_rules_test.yaml"),
        dir.path().join("slo_rules_test.yaml"),
    )
    .unwrap();
    let tested = promtool(&["test", "rules", "slo_rules_test.yaml"], dir.path());
    assert!(tested.contains("SUCCESS"), "{tested}");
}
