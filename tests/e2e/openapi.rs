//! The OpenAPI document against the running server, checked by schemathesis (PyPI):
//! every documented operation is called with generated valid and invalid input, and
//! each reply must match its documented status codes, content types and schemas.

use std::process::Command;

use crate::harness::{Server, python};

const SLOS: &str = r#"
slos:
  - name: checkout
    service: checkout
    objective: 99.5
    window: 7d
    labels: { team: payments }
    group_by: [http.route]
    sli: { spans: { good: { status: not_error } } }
  - name: search
    service: search
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_what_the_server_does() {
    let server = Server::start_with(SLOS, "api:\n  sql_timeout: 2s\n");
    server.send_spans(None, "checkout", 95, 5).await;
    server.send_spans(None, "search", 10, 0).await;
    server.slo_when_total("checkout", 100).await;

    let (status, doc) = server.get_as(None, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/slos/{name}/series",
        "/api/v1/alerts/history",
        "/prometheus/api/v1/query",
        "/prometheus/api/v1/query_range",
        "/prometheus/api/v1/series",
        "/prometheus/api/v1/labels",
        "/prometheus/api/v1/label/{name}/values",
        "/prometheus/api/v1/metadata",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is not documented"
        );
    }
    // Descriptions speak JSON: `null`, never Rust's `None`.
    let text = doc.to_string();
    assert!(!text.contains("`None`"), "a description says `None`");

    // Every series name the Prometheus API serves has its metadata, the alert and
    // health series included.
    let (_, names) = server
        .get_as(None, "/prometheus/api/v1/label/__name__/values")
        .await;
    let (_, meta) = server.get_as(None, "/prometheus/api/v1/metadata").await;
    let names = names["data"].as_array().unwrap();
    assert!(
        names
            .iter()
            .any(|n| n == "slotel_ingest_items_accepted_total"),
        "{names:?}"
    );
    for name in names {
        let name = name.as_str().unwrap();
        assert!(
            meta["data"][name][0]["help"].is_string(),
            "no metadata for {name}"
        );
    }
    for (name, kind) in [
        ("slotel_slo_alert", "gauge"),
        ("slotel_slo_alert_state", "gauge"),
        ("slotel_ingest_items_accepted_total", "counter"),
        ("slotel_wal_lag_bytes", "gauge"),
    ] {
        assert_eq!(meta["data"][name][0]["type"], kind, "{name}");
    }

    let bin = python().parent().unwrap().join("schemathesis");
    let report = tempfile::tempdir().unwrap();
    // Every check but "schema-valid input is accepted": a schema cannot say that SQL
    // must parse or that a window must end after it starts, and those get 400.
    let out = Command::new(&bin)
        .current_dir(report.path())
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", server.api),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ])
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("schemathesis runs (./scripts/test installs it in .venv)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Tested: 31"), "{stdout}");
    // The server is still up and unchanged in what it counted.
    assert_eq!(server.slo("checkout").await["total_events"], 100);
}
