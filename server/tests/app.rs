//! The whole server in-process: `App::build` on ephemeral ports, OTLP/HTTP in, a
//! graceful stop, and the counts in the engine and in storage.

use prost::Message;
use slotel_proto::otlp::trace::v1::{Span, Status};
use slotel_server::{App, ServeArgs, ServeConfig};

fn span(id: u64, now: u64, ok: bool) -> Span {
    Span {
        trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
        span_id: id.to_be_bytes().to_vec(),
        name: "GET /".into(),
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        status: Some(Status {
            code: if ok { 1 } else { 2 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_built_in_process_counts_what_it_acknowledged_and_flushes_it_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos.yaml");
    std::fs::write(
        &slos,
        "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: not_error } } }\n",
    )
    .unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let config = ServeConfig::resolve(ServeArgs {
        slos: vec![slos.clone()],
        data_dir: Some(dir.path().join("data")),
        otlp_grpc_addr: Some(any),
        otlp_http_addr: Some(any),
        api_addr: Some(any),
        ..Default::default()
    })
    .unwrap();
    let defs = slotel_spec::load_paths(&config.slos).unwrap();
    let app = App::build(config, defs).await.unwrap();
    let addrs = app.addresses();
    assert_ne!(addrs.otlp_http.port(), 0);

    // Ground truth: 7 good and 3 bad spans, in two requests.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans: Vec<Span> = (0..10).map(|i| span(i + 1, now, i % 10 < 7)).collect();
    let http = reqwest::Client::new();
    for part in spans.chunks(5) {
        let body = slotel_proto::traces_request("api", part.to_vec()).encode_to_vec();
        let reply = http
            .post(format!("http://{}/v1/traces", addrs.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let health = http
        .get(format!("http://{}/healthz", addrs.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // Stopping drains the queue into the engine and flushes it: quiescent after this.
    let engine = std::sync::Arc::clone(app.engine());
    app.run(async {}).await.unwrap();
    let s = engine.status("default", "api").unwrap();
    assert_eq!((s.good_events, s.total_events), (7, 10));
    assert_eq!(
        engine.peek_tail(),
        Vec::new(),
        "the last flush took the tail"
    );
    let tables = dir.path().join("data/tables/sli_minute/tenant=default");
    let files = walk(&tables);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
