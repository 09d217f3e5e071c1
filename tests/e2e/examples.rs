//! The examples of the README and docs, run as written: the Python SDK program sends over
//! gRPC and HTTP, every SQL `curl` command runs against a server holding known traffic
//! (`examples/slos.yaml`, the README's first command), and each result is checked against
//! what the test sent. A new SQL example without an expectation here fails the test.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use slotel_proto::otlp::common::v1::KeyValue;

pub use crate::harness::attr;
use crate::harness::{Server, eventually, now_nanos, python, root, span};

/// The API address the examples are written for.
const EXAMPLE_API: &str = "http://127.0.0.1:8080";

/// A fenced block of a Markdown file: its language and text.
fn blocks(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The shell commands of a `sh` block, each whole: continued lines, quoted newlines and
/// here-documents joined, comments dropped.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut single, mut double) = (false, false);
    let mut heredoc: Option<String> = None;
    for line in block.lines() {
        if let Some(end) = &heredoc {
            current.push_str(line);
            current.push('\n');
            if line == end {
                heredoc = None;
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if current.is_empty() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            continue;
        }
        let mut escaped = false;
        let mut comment_at = None;
        for (i, c) in line.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if !single => escaped = true,
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '#' if !single && !double && line[..i].ends_with(' ') => {
                    comment_at = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let line = comment_at.map_or(line, |i| &line[..i]);
        current.push_str(line);
        current.push('\n');
        if !single && !double && !line.trim_end().ends_with('\\') {
            if let Some((_, word)) = line.split_once("<<") {
                heredoc = Some(word.trim().trim_matches('\'').to_string());
            } else {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// The fenced blocks in `lang` of the README and of `docs/*.md`: (file name, text).
fn doc_blocks(lang: &str) -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (l, body) in blocks(&file) {
            if l == lang {
                out.push((name.clone(), body));
            }
        }
    }
    out
}

/// Every `sh` command of the README and of `docs/*.md`, in order: (file name, command).
fn shell_commands() -> Vec<(String, String)> {
    doc_blocks("sh")
        .into_iter()
        .flat_map(|(file, body)| commands(&body).into_iter().map(move |c| (file.clone(), c)))
        .collect()
}

/// Every `sh` command of the README and of `docs/*.md` that posts SQL.
fn sql_examples() -> Vec<(String, String)> {
    shell_commands()
        .into_iter()
        .filter(|(_, c)| c.contains("/api/v1/sql"))
        .collect()
}

/// One server span ending now: `(failed, duration in ms, attributes, name)`.
pub type SpanPlan<'a> = (bool, u64, Vec<KeyValue>, &'a str);

/// Sends `spans` of `service` in one request, each with ids of its own.
pub async fn send(server: &Server, service: &str, first_id: u64, spans: Vec<SpanPlan<'_>>) {
    let now = now_nanos();
    let spans = spans
        .into_iter()
        .enumerate()
        .map(|(i, (failed, ms, attributes, name))| {
            span(first_id + i as u64, name, 2, now, ms, failed, attributes)
        })
        .collect();
    server.post_spans(service, spans).await;
}

/// Runs a README command as written, against `api`, in `dir`; returns its stdout.
fn run_as_written(command: &str, api: &str, dir: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(command.replace(EXAMPLE_API, api))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn by_slo(rows: &Value) -> std::collections::BTreeMap<String, &Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["slo"].as_str().unwrap().to_string(), r))
        .collect()
}

/// What the test sent, per SLO of examples/slos.yaml: (total, bad).
const SENT: [(&str, u64, u64); 4] = [
    // 200 fast spans from the README's Python program, 20 failed, 10 slow (500 ms).
    ("checkout-availability", 230, 20),
    ("checkout-latency", 230, 10),
    // 40 of customer tier gold (4 failed, 3 slow: 200 ms), 10 without a tier (1 failed).
    ("catalog-availability", 50, 5),
    ("catalog-fast-and-correct", 50, 3),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_readme_and_docs_example_runs_and_agrees_with_the_traffic_sent() {
    let slos = std::fs::read_to_string(root().join("examples/slos.yaml")).unwrap();
    let server = Server::start_with(&slos, "alerting:\n  evaluation_interval: 200ms\n");

    // The README's Python program, over gRPC and over HTTP, as its variables say.
    let (_, program) = blocks(&root().join("README.md"))
        .into_iter()
        .find(|(lang, _)| lang == "python")
        .expect("the README has a Python example");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("send.py");
    std::fs::write(&script, program).unwrap();
    for (protocol, endpoint) in [
        ("grpc", &server.otlp_grpc),
        ("http/protobuf", &server.otlp_http),
    ] {
        let out = Command::new(python())
            .arg(&script)
            .env("OTEL_SERVICE_NAME", "checkout")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.wait_applied().await;
    let status = server.slo("checkout-availability").await;
    assert_eq!(status["total_events"], 200, "{status}");
    assert_eq!(status["good_events"], 200, "{status}");

    let post = || attr("http.request.method", "POST");
    let checkout = "POST /api/checkout";
    let mut spans: Vec<SpanPlan> = (0..20).map(|_| (true, 1, vec![post()], checkout)).collect();
    spans.extend((0..10).map(|_| (false, 500, vec![post()], checkout)));
    send(&server, "checkout", 1, spans).await;
    let route = || attr("http.route", "/api/items/{id}");
    let mut spans: Vec<SpanPlan> = (0..40)
        .map(|i| {
            let ms = if (4..7).contains(&i) { 200 } else { 1 };
            (
                i < 4,
                ms,
                vec![route(), attr("customer.tier", "gold")],
                "GET",
            )
        })
        .collect();
    spans.extend((0..10).map(|i| (i == 0, 1, vec![route()], "GET")));
    send(&server, "catalog", 1000, spans).await;
    server.wait_applied().await;

    // The alerts the traffic calls for, with the default tiers (a 2% budget over 1h, 5%
    // over 6h, 10% over 1d and over 3d, against the window) and the default low-traffic
    // guard of 100 events: checkout-availability burns 20/230 of a 0.1% budget (87x),
    // all four tiers; checkout-latency 10/230 of 1% over 28 days (4.3x), the ticket tiers
    // (2.8x and 0.93x); the catalog SLOs have 50 events, under the guard.
    let expected_alerts = [
        ("checkout-availability", "page-fast"),
        ("checkout-availability", "page-slow"),
        ("checkout-availability", "ticket-fast"),
        ("checkout-availability", "ticket-slow"),
        ("checkout-latency", "ticket-fast"),
        ("checkout-latency", "ticket-slow"),
    ];
    eventually("the expected alerts fire", || async {
        let (_, body) = server.get_as(None, "/api/v1/alerts").await;
        let mut firing: Vec<(String, String)> = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let l = &a["labels"];
                (
                    l["slo"].as_str().unwrap().to_string(),
                    l["burnrate_tier"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        firing.sort();
        let want: Vec<(String, String)> = expected_alerts
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect();
        (firing == want).then_some(())
    })
    .await;

    let examples = sql_examples();
    assert!(examples.len() >= 6, "{examples:?}");
    let work = tempfile::tempdir().unwrap();
    for (file, command) in &examples {
        let out = run_as_written(command, &server.api, work.path());
        let what = format!("{file}: {command}");
        if command.contains("vnd.apache.arrow.stream") {
            // Every row of sli_minute: the SLOs' rows and the group rows.
            let bytes = std::fs::read(work.path().join("rows.arrow")).unwrap();
            assert_eq!(&bytes[..4], &[0xff; 4], "{what}");
            let total = arrow_column_sum(&bytes, "total");
            let slo_rows: u64 = SENT.iter().map(|s| s.1).sum();
            // catalog-availability's groups: gold (40) and spans without a tier (10).
            assert_eq!(total, slo_rows + 50, "{what}");
            continue;
        }
        let rows: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {out}"));
        assert!(rows.is_array(), "{what}: {rows}");
        if command.contains("FROM alert_events") {
            let mut want: std::collections::BTreeMap<&str, u64> = Default::default();
            for (_, tier) in expected_alerts {
                *want.entry(tier).or_default() += 1;
            }
            let got: std::collections::BTreeMap<&str, u64> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["tier"].as_str().unwrap(), r["pages"].as_u64().unwrap()))
                .collect();
            assert_eq!(got, want, "{what}");
        } else if command.contains("latency_quantile") {
            let got = by_slo(&rows);
            assert_eq!(got.len(), 4, "{what}: {rows}");
            let within = |v: &Value, x: f64| {
                let v = v.as_f64().unwrap();
                v >= x && v <= x * 1.01
            };
            for slo in ["checkout-availability", "checkout-latency"] {
                // 200 spans of microseconds, 20 of 1 ms, 10 of 500 ms.
                assert!(got[slo]["p50"].as_f64().unwrap() < 0.001, "{what}: {rows}");
                assert!(within(&got[slo]["p99"], 0.5), "{what}: {rows}");
            }
            for slo in ["catalog-availability", "catalog-fast-and-correct"] {
                // 47 spans of 1 ms, 3 of 200 ms.
                assert!(within(&got[slo]["p50"], 0.001), "{what}: {rows}");
                assert!(within(&got[slo]["p99"], 0.2), "{what}: {rows}");
            }
        } else if command.contains("FROM sli_hour") {
            // The hours of today: per SLO, the bad events sent (in one hour, or two when
            // the test ran across an hour).
            let mut bad: std::collections::BTreeMap<String, u64> = Default::default();
            for r in rows.as_array().unwrap() {
                *bad.entry(r["slo"].as_str().unwrap().into()).or_default() +=
                    r["bad"].as_u64().unwrap();
                let objective = r["objective"].as_f64().unwrap();
                assert!(
                    [99.9, 99.0, 99.5, 95.0].contains(&objective),
                    "{what}: {rows}"
                );
            }
            let want: std::collections::BTreeMap<String, u64> =
                SENT.iter().map(|(s, _, b)| (s.to_string(), *b)).collect();
            assert_eq!(bad, want, "{what}: {rows}");
            let order: Vec<u64> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["bad"].as_u64().unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] >= w[1]), "{what}: {rows}");
        } else if command.contains("slo = 'catalog-availability'") {
            assert_eq!(
                rows,
                json!([
                    { "group": "{\"customer.tier\":\"__missing__\"}", "good": 9, "total": 10 },
                    { "group": "{\"customer.tier\":\"gold\"}", "good": 36, "total": 40 },
                ]),
                "{what}"
            );
        } else if command.contains("WHERE \"group\" = '' AND minute > now() - INTERVAL 1 DAY") {
            let got = by_slo(&rows);
            assert_eq!(got.len(), SENT.len(), "{what}: {rows}");
            for (slo, total, bad) in SENT {
                let r = got[slo];
                assert_eq!(r["total"], total, "{what}: {slo}");
                assert_eq!(r["good"], total - bad, "{what}: {slo}");
                let sli = 1.0 - bad as f64 / total as f64;
                assert!((r["sli"].as_f64().unwrap() - sli).abs() < 1e-12, "{what}");
            }
            let slis: Vec<f64> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["sli"].as_f64().unwrap())
                .collect();
            assert!(slis.windows(2).all(|w| w[0] <= w[1]), "{what}: {rows}");
        } else {
            panic!("no expectation for the example in {what}: add one to tests/e2e/examples.rs");
        }
    }

    // Every other command of the README and docs that talks to slotel or comes with it,
    // run as written: it succeeds, and no JSON reply is an error.
    std::os::unix::fs::symlink(root().join("examples"), work.path().join("examples")).unwrap();
    let bin = env!("CARGO_BIN_EXE_slotel");
    let mut ran = 0;
    for (file, command) in shell_commands() {
        let c = command.trim_start();
        let talks = c.starts_with("curl ") || c.starts_with("promtool ");
        let ours = c.starts_with("slotel ")
            && !c.starts_with("slotel alerts test")
            && !c.starts_with("slotel explain");
        if command.contains("/api/v1/sql") || command.contains("Authorization: Bearer") {
            continue; // run above, and with a token server below
        }
        if !(talks || ours) {
            continue;
        }
        let command = if ours {
            command.replacen("slotel ", &format!("{bin} "), 1)
        } else {
            command.clone()
        };
        let out = run_as_written(&command, &server.api, work.path());
        if let Ok(v) = serde_json::from_str::<Value>(&out) {
            assert_ne!(v["status"], "error", "{file}: {command}: {out}");
        }
        ran += 1;
    }
    assert!(ran >= 20, "{ran}");
}

/// The sum of the UInt64 column `name` over an Arrow IPC stream.
fn arrow_column_sum(bytes: &[u8], name: &str) -> u64 {
    use arrow::array::{Array, UInt64Array};
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    let mut sum = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name(name).unwrap();
        let values = column.as_any().downcast_ref::<UInt64Array>().unwrap();
        sum += (0..values.len()).map(|i| values.value(i)).sum::<u64>();
    }
    sum
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tokens_the_readme_curl_query_answers_where_promtool_cannot() {
    // The README's tokens, and its curl line for a Prometheus query with one.
    let config = "auth:\n  tokens:\n    - { token: \"4c1d8f0e2b7a4e55b9d3\", tenant: team-a }\n";
    let slos = "slos:\n  - { name: api, tenant: team-a, service: api, objective: 99, window: 1d, sli: { spans: { good: { status: not_error } } } }\n";
    let server = Server::start_with(slos, config);
    let command = blocks(&root().join("README.md"))
        .into_iter()
        .filter(|(lang, _)| lang == "sh")
        .flat_map(|(_, b)| commands(&b))
        .find(|c| c.contains("Authorization: Bearer") && c.contains("/prometheus/api/v1/query"))
        .expect("the README shows a Prometheus query with a token");
    let dir = tempfile::tempdir().unwrap();
    let out = run_as_written(&command, &server.api, dir.path());
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["status"], "success", "{reply}");
    assert_eq!(reply["data"]["resultType"], "vector");
    // Without the token, as promtool asks: 401.
    let out = Command::new("promtool")
        .args([
            "query",
            "instant",
            &format!("{}/prometheus", server.api),
            "up",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A native SLO around an `alerting:` fragment of one.
const NATIVE_AROUND: &str = "slos:\n  - name: fragment\n    service: api\n    objective: 99\n    window: 30d\n    sli: { spans: { good: { status: ok } } }\n";
/// A Sloth SLO around an `alerting:` fragment of one.
const SLOTH_AROUND: &str = "version: \"prometheus/v1\"\nservice: api\nslos:\n  - name: fragment\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum(rate(http_server_requests_total{job=\"api\",code=~\"5..\"}[{{.window}}]))\n        total_query: sum(rate(http_server_requests_total{job=\"api\"}[{{.window}}]))\n";

#[test]
fn every_yaml_example_of_the_readme_and_docs_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_slotel");
    let mut checked = 0;
    for (n, (file, body)) in doc_blocks("yaml").into_iter().enumerate() {
        let first = body.lines().next().unwrap_or_default().trim_start();
        // The configuration of other tools: the Collector's, Alertmanager's.
        if first.starts_with("exporters:") || first.starts_with("inhibit_rules:") {
            continue;
        }
        let path = dir.path().join(format!("block-{n}.yaml"));
        let slo_file = body.starts_with("slos:\n  -")
            || body.contains("apiVersion: openslo/v1")
            || body.contains("version: \"prometheus/v1\"")
            || first.starts_with("- name:");
        let fragment = first.starts_with("alerting:") && body.starts_with("    ");
        let mut cmd = Command::new(bin);
        cmd.arg("validate");
        if fragment {
            let around = if body.contains("page_alert") || body.contains("ticket_alert") {
                SLOTH_AROUND
            } else {
                NATIVE_AROUND
            };
            std::fs::write(&path, format!("{around}{body}")).unwrap();
            cmd.arg(&path);
        } else if slo_file {
            let text = if first.starts_with("- name:") {
                format!("slos:\n{body}")
            } else {
                body.clone()
            };
            std::fs::write(&path, text).unwrap();
            cmd.arg(&path);
        } else {
            std::fs::write(&path, &body).unwrap();
            cmd.arg("--config")
                .arg(&path)
                .arg(root().join("examples/slos.yaml"));
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // OpenSLO documents of other kinds alone hold no SLO: valid, nothing to count.
        let no_slos = stderr.starts_with("no SLOs in ") && stderr.lines().count() == 1;
        assert!(
            out.status.success() || (no_slos && body.contains("apiVersion: openslo/v1")),
            "{file}: this example does not validate:\n{body}\n{stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}
