//! Storage: counted minutes go to Parquet, a restart rebuilds the same status from them,
//! read-only SQL sees flushed and unflushed rows once each, storage faults (a corrupt
//! file, a failing write) are reported without losing data or stopping the server, and
//! an S3 bucket (moto's S3 server) holds the same tables as the local disk.

use serde_json::{Value, json};

use crate::harness::{
    Server, burn_rate, eventually, metric_value, now_nanos, s3_env, span, start_s3,
};

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 30d
    sli: { spans: { good: { status: not_error } } }
  - name: web
    service: web
    objective: 99.5
    window: 7d
    budgeting: { timeslices: { slice: 5m, target: 95 } }
    sli: { spans: { good: { status: not_error } } }
  - name: api
    tenant: team-a
    service: api
    objective: 99.9
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

const CONFIG: &str = "storage:\n  flush_interval: 200ms\napi:\n  sql_timeout: 2s\n";

/// The status without the fields that change with the clock.
fn stable(mut status: Value) -> Value {
    let o = status.as_object_mut().unwrap();
    o.remove("evaluated_at");
    status
}

async fn rows_written(server: &Server) -> f64 {
    server
        .metric("slotel_storage_rows_written_total", &[])
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn status_survives_a_restart_and_sql_reads_flushed_and_unflushed_rows() {
    let mut server = Server::start_with(SLOS, CONFIG);
    server.send_spans(None, "api", 90, 10).await;
    server.send_spans(None, "web", 40, 0).await;
    server.send_spans(Some("team-a"), "api", 7, 3).await;
    server.slo_when_total("api", 100).await;
    server.slo_when_total("web", 40).await;
    server.slo_when_total_as(Some("team-a"), "api", 10).await;

    // Flushed or not, SQL counts every event once.
    let q = "SELECT slo, sum(good) AS good, sum(bad) AS bad, sum(total) AS total \
             FROM sli_minute GROUP BY slo ORDER BY slo";
    let (status, rows) = server.sql_as(None, q).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows,
        json!([
            { "slo": "api", "good": 90, "bad": 10, "total": 100 },
            { "slo": "web", "good": 40, "bad": 0, "total": 40 },
        ])
    );
    eventually("nothing was flushed", || async {
        (rows_written(&server).await >= 3.0).then_some(())
    })
    .await;
    let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let part = server
        .data_dir()
        .join(format!("tables/sli_minute/tenant=default/date={day}"));
    assert!(
        std::fs::read_dir(&part)
            .unwrap()
            .any(|e| e.unwrap().path().extension().unwrap() == "parquet"),
        "no Parquet file in {}",
        part.display()
    );
    let (_, again) = server.sql_as(None, q).await;
    assert_eq!(again, rows);
    // Another tenant sees only its own rows.
    let (_, team_a) = server
        .sql_as(
            Some("team-a"),
            "SELECT sum(total) AS total, sum(bad) AS bad FROM sli_minute",
        )
        .await;
    assert_eq!(team_a, json!([{ "total": 10, "bad": 3 }]));
    let (_, nobody) = server
        .sql_as(Some("team-b"), "SELECT count(*) AS n FROM sli_minute")
        .await;
    assert_eq!(nobody, json!([{ "n": 0 }]));
    // The definitions join with the counts.
    let (_, joined) = server
        .sql_as(
            None,
            "SELECT d.slo, d.objective, d.window, sum(m.total) AS total \
             FROM slo_definitions d JOIN sli_minute m ON m.slo = d.slo \
             GROUP BY d.slo, d.objective, d.window ORDER BY d.slo",
        )
        .await;
    assert_eq!(
        joined,
        json!([
            { "slo": "api", "objective": 99.0, "window": "30d", "total": 100 },
            { "slo": "web", "objective": 99.5, "window": "7d", "total": 40 },
        ])
    );
    // Arrow IPC for clients that want columns.
    let (status, ctype, body) = server
        .post_as(
            None,
            "/api/v1/sql",
            &json!({ "query": "SELECT slo, total FROM sli_minute" }),
            Some("application/vnd.apache.arrow.stream"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/vnd.apache.arrow.stream");
    assert_eq!(
        &body[..4],
        &[0xff; 4],
        "an IPC stream starts with a continuation marker"
    );

    let before = (
        stable(server.slo("api").await),
        stable(server.slo("web").await),
        stable(server.slo_as(Some("team-a"), "api").await),
    );
    assert_eq!(before.0["total_events"], 100);
    server.restart();
    let after = (
        stable(server.slo("api").await),
        stable(server.slo("web").await),
        stable(server.slo_as(Some("team-a"), "api").await),
    );
    assert_eq!(before, after);
    let (_, rows_after) = server.sql_as(None, q).await;
    assert_eq!(rows_after, rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_is_read_only_and_limited() {
    let server = Server::start_with(SLOS, CONFIG);
    let refused = [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/'",
        "DROP VIEW sli_minute",
        "INSERT INTO sli_minute_unflushed SELECT * FROM sli_minute_unflushed",
        "COPY (SELECT 1) TO '/tmp/slotel-copy-test.csv'",
        "SELECT * FROM '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
    ];
    for q in refused {
        let (status, body) = server.sql_as(None, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["status"], "error", "{q}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{q}");
    }
    assert!(!std::path::Path::new("/tmp/slotel-copy-test.csv").exists());
    // A query past the time limit is cancelled, and the server goes on.
    let (status, body) = server
        .sql_as(
            None,
            "SELECT count(*) FROM generate_series(1, 100000000000) a",
        )
        .await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(
        body["error"],
        "the query ran longer than 2s and was cancelled"
    );
    let (status, body) = server.sql_as(None, "SELECT 1 + 1 AS two").await;
    assert_eq!((status, body), (200, json!([{ "two": 2 }])));
    let (status, body) = server.sql_as(None, "SELEC nonsense").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("SELEC"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_file_is_skipped_and_a_failing_write_keeps_the_rows() {
    let mut server = Server::start_with(SLOS, CONFIG);
    // Writes fail: where the tenant's folder must go there is a file.
    let tables = server.data_dir().join("tables/sli_minute");
    std::fs::create_dir_all(&tables).unwrap();
    let blocker = tables.join("tenant=default");
    std::fs::write(&blocker, b"not a folder").unwrap();
    server.send_spans(None, "api", 8, 2).await;
    server.slo_when_total("api", 10).await;
    eventually("the write did not fail", || async {
        (server
            .metric("slotel_storage_write_errors_total", &[])
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    // Reads go on: the API and SQL answer from memory.
    assert_eq!(server.slo("api").await["total_events"], 10);
    let (_, rows) = server
        .sql_as(None, "SELECT sum(total) AS total FROM sli_minute")
        .await;
    assert_eq!(rows, json!([{ "total": 10 }]));
    // Space again: the rows kept in memory are written by the next flush.
    std::fs::remove_file(&blocker).unwrap();
    eventually("the kept rows were not written", || async {
        (rows_written(&server).await >= 1.0).then_some(())
    })
    .await;

    // A file that is not Parquet in the partition: reported, moved aside, skipped.
    let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let part = tables.join(format!("tenant=default/date={day}"));
    std::fs::write(part.join("00000000000000000001.parquet"), b"PAR1 truncated").unwrap();
    server.restart();
    assert_eq!(server.slo("api").await["total_events"], 10);
    assert_eq!(
        server
            .metric("slotel_storage_corrupt_files_total", &[])
            .await,
        1.0
    );
    assert!(
        server
            .data_dir()
            .join(format!(
                "tables/quarantine/sli_minute/tenant=default/date={day}/00000000000000000001.parquet"
            ))
            .is_file()
    );
    let (status, rows) = server
        .sql_as(None, "SELECT sum(total) AS total FROM sli_minute")
        .await;
    assert_eq!((status, rows), (200, json!([{ "total": 10 }])));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_past_flush_max_rows_is_written_before_the_interval() {
    // An hour between flushes, but at most one unflushed row: the first spans are
    // written within a second.
    let server = Server::start_with(SLOS, "storage: { flush_interval: 1h, flush_max_rows: 1 }\n");
    // The interval's first flush runs at start, on an empty tail.
    assert_eq!(rows_written(&server).await, 0.0);
    server.send_spans(None, "api", 9, 1).await;
    server.slo_when_total("api", 10).await;
    eventually("the tail was not flushed on size", || async {
        (rows_written(&server).await >= 1.0).then_some(())
    })
    .await;
    let (_, body) = server
        .sql_as(
            None,
            "SELECT sum(total) AS total FROM sli_minute WHERE slo = 'api'",
        )
        .await;
    assert_eq!(body, json!([{ "total": 10 }]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_bucket_holds_the_tables_through_a_restart() {
    let s3 = start_s3("slotel-tables").await;
    let http = reqwest::Client::new();
    let env = s3_env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = "storage:\n  url: s3://slotel-tables/prod\n  flush_interval: 200ms\n";
    let mut server = Server::start_with_env(SLOS, config, &env);
    let spans: Vec<(bool, u64)> = (0..100).map(|i| (i >= 10, (i + 1) * 1_000_000)).collect();
    server.send_spans_lasting(None, "api", &spans).await;
    server.slo_when_total("api", 100).await;
    eventually("the rows did not reach the bucket", || async {
        (rows_written(&server).await >= 1.0).then_some(())
    })
    .await;
    // The files are in the bucket under the prefix, not on the local disk.
    let list = http
        .get(format!(
            "{}/slotel-tables?list-type=2&prefix=prod/sli_minute/",
            s3.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("<Key>prod/sli_minute/tenant=default/date="),
        "{list}"
    );
    assert!(!server.data_dir().join("tables").exists());
    // DataFusion reads them through the same object store.
    let (status, body) = server
        .sql_as(
            None,
            "SELECT sum(total) AS total, sum(bad) AS bad, \
             latency_quantile(latency_merge(latency), 1.0) >= 0.1 AS slowest_at_least_100ms \
             FROM sli_minute_flushed WHERE slo = 'api'",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([{ "total": 100, "bad": 10, "slowest_at_least_100ms": true }])
    );
    // A restart rebuilds the windows from the bucket.
    let before = stable(server.slo("api").await);
    server.restart();
    let after = stable(server.slo_when_total("api", 100).await);
    assert_eq!(after, before);
}

/// The pages of old hours the engine installed, and those its windows still lack.
async fn pages(server: &Server) -> (f64, f64) {
    let text = server.metrics().await;
    (
        metric_value(&text, "slotel_engine_window_pages_installed_total", &[]),
        metric_value(&text, "slotel_engine_window_pages_missing", &[]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn long_windows_read_their_edge_minutes_from_storage_through_a_kill() {
    const EDGE: &str = "slos:\n  - name: edge\n    service: edge\n    objective: 99\n    window: 30d\n    sli: { spans: { good: { status: not_error } } }\n";
    let mut server = Server::start_with(EDGE, CONFIG);
    // The 3-day window's first minute, now; spans five minutes either side of it (in
    // its edge hour, unless the edge is within five minutes of an hour's turn) and now.
    const MIN: u64 = 60_000_000_000;
    let now = now_nanos();
    let edge = (now / MIN - 4319) * MIN;
    let spans = |first: u64, n: u64, end: u64, failed: bool| {
        (first..first + n)
            .map(|id| span(id, "GET /", 2, end, 5, failed, Vec::new()))
            .collect::<Vec<_>>()
    };
    server
        .post_spans("edge", spans(1, 10, edge + 5 * MIN + MIN / 2, true))
        .await;
    server
        .post_spans("edge", spans(100, 50, edge - 5 * MIN + MIN / 2, false))
        .await;
    server
        .post_spans("edge", spans(1000, 100, now - 1_000_000_000, false))
        .await;
    // Ground truth: 160 spans in the 30 days, 110 of them (10 failed) in the 3 days.
    let check = |status: &Value| {
        assert_eq!(status["total_events"], 160, "{status}");
        assert_eq!(status["good_events"], 150, "{status}");
        assert_eq!(
            status["burn_rates"]["3d"].as_f64().unwrap(),
            burn_rate(100, 110, 99.0),
            "{status}"
        );
        assert_eq!(
            status["burn_rates"]["30d"].as_f64().unwrap(),
            burn_rate(150, 160, 99.0),
            "{status}"
        );
    };
    server.slo_when_total("edge", 160).await;
    // Quiescent: everything flushed and every page the windows need installed.
    eventually("the edge pages to be installed", || async {
        let (installed, missing) = pages(&server).await;
        (installed > 0.0 && missing == 0.0 && rows_written(&server).await >= 3.0).then_some(())
    })
    .await;
    check(&server.slo("edge").await);

    // Killed: the restart restores the hour sums and reads the edge pages again, before
    // any window is read.
    server.kill_and_restart().await;
    server.wait_applied().await;
    eventually("the edge pages to be installed again", || async {
        let (installed, missing) = pages(&server).await;
        (installed > 0.0 && missing == 0.0).then_some(())
    })
    .await;
    check(&server.slo("edge").await);
    assert_eq!(
        server
            .metric("slotel_engine_window_edge_estimates_total", &[])
            .await,
        0.0
    );
}
