//! What a careless or hostile client sends: non-finite, negative or far-off durations,
//! steps, timeouts and times get a 400 naming the parameter; trickling and surplus
//! connections are closed; the server answers the next good request.

use crate::harness::Server;
use crate::reload::ONE as SLOS;

#[tokio::test(flavor = "multi_thread")]
async fn non_finite_and_far_off_numbers_in_queries_get_400_and_the_server_keeps_answering() {
    let server = Server::start(SLOS);
    let range = "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=0&end=100";
    let instant = "/prometheus/api/v1/query?query=slotel_slo_sli";
    let series = "/api/v1/slos/api/series";
    // (path, the parameter the error names; on the Prometheus API, its message).
    let cases = [
        (
            format!("{range}&step=inf"),
            "\"step\": cannot parse \"inf\"",
        ),
        (
            format!("{range}&step=NaN"),
            "\"step\": cannot parse \"NaN\"",
        ),
        (
            format!("{range}&step=1e400"),
            "\"step\": cannot parse \"1e400\"",
        ),
        (
            format!("{range}&step=-1"),
            "zero or negative query resolution step",
        ),
        (
            format!("{range}&step=60&timeout=inf"),
            "\"timeout\": cannot parse \"inf\"",
        ),
        (
            format!("{instant}&timeout=inf"),
            "\"timeout\": cannot parse \"inf\"",
        ),
        (
            format!("{instant}&timeout=-5"),
            "\"timeout\": cannot parse \"-5\"",
        ),
        (
            format!("{instant}&time=1e300"),
            "\"time\": cannot parse \"1e300\"",
        ),
        (
            format!("{instant}&time=inf"),
            "\"time\": cannot parse \"inf\"",
        ),
        (
            "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=0&end=1e300&step=60".into(),
            "\"end\": cannot parse \"1e300\"",
        ),
        (format!("{series}?step=-1"), "step: cannot parse \"-1\""),
        (format!("{series}?step=inf"), "step: cannot parse \"inf\""),
        (
            format!("{series}?step=1e400"),
            "step: cannot parse \"1e400\"",
        ),
        (format!("{series}?to=1e300"), "to: \"1e300\""),
        (
            "/prometheus/api/v1/query?query=slotel_slo_sli%20offset%204000000y".into(),
            "the offset 4000000y is longer",
        ),
        (
            "/prometheus/api/v1/query?query=slotel_slo_sli%20offset%20-4000000y".into(),
            "the offset 4000000y is longer",
        ),
        (
            "/prometheus/api/v1/query?query=rate(slotel_slo_good_events_total%5B4000000y%5D)"
                .into(),
            "the range 4000000y is longer",
        ),
    ];
    for (path, names) in &cases {
        let (code, body) = server.get_as(None, path).await;
        assert_eq!(code, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(names), "{path}: {body}");
        if path.starts_with("/prometheus") {
            assert_eq!(body["errorType"], "bad_data", "{path}: {body}");
        }
        // The next good request is answered.
        let (code, body) = server.get_as(None, &format!("{instant}&time=100")).await;
        assert_eq!(
            (code, &body["status"]),
            (200, &"success".into()),
            "after {path}: {body}"
        );
    }
}

/// Connects to `addr`; the stream.
async fn connect(addr: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits until the server closes `stream` (end of stream or a reset), reading what it
/// sends meanwhile; panics past 10 s.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server did not close the connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_are_cut_at_the_timeout_while_a_normal_client_is_served() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start_with(SLOS, "limits:\n  header_read_timeout: 1s\n");
    // 200 clients trickle a request line, a byte every 100 ms, on both HTTP ports.
    const SLOW: usize = 200;
    let mut slow = Vec::new();
    for i in 0..SLOW {
        let addr = if i % 2 == 0 {
            &server.api
        } else {
            &server.otlp_http
        };
        let stream = connect(addr).await;
        slow.push(tokio::spawn(async move {
            let mut stream = stream;
            let line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1111111111111111111111111";
            for b in line {
                if stream.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            closed_by_server(&mut stream).await;
        }));
    }
    // A normal client is served meanwhile.
    let (code, _) = server.get_as(None, "/api/v1/slos").await;
    assert_eq!(code, 200);
    for s in slow {
        s.await.unwrap();
    }
    let cut = server
        .metric(
            "slotel_connections_refused_total",
            &[("reason", "header_timeout")],
        )
        .await;
    assert_eq!(cut, SLOW as f64);
    let (code, _) = server.get_as(None, "/api/v1/slos").await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_as_they_are_accepted() {
    let server = Server::start_with(
        SLOS,
        "limits:\n  max_connections: 20\n  header_read_timeout: 60s\n",
    );
    // The OTLP/HTTP listener holds 20 idle connections; 5 more are closed at once.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect(&server.otlp_http).await);
    }
    for _ in 0..5 {
        let mut extra = connect(&server.otlp_http).await;
        closed_by_server(&mut extra).await;
    }
    // The API listener has its own connections.
    let refused = server
        .metric("slotel_connections_refused_total", &[("reason", "limit")])
        .await;
    assert_eq!(refused, 5.0);
    // Once the 20 go, OTLP/HTTP serves again.
    drop(held);
    let http = reqwest::Client::new();
    crate::harness::eventually("OTLP/HTTP to take a request again", || async {
        let resp = http
            .post(format!("{}/v1/traces", server.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(Vec::new())
            .send()
            .await
            .ok()?;
        (resp.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_past_the_sample_and_point_limits_get_the_documented_errors() {
    let server = Server::start_with(SLOS, "api:\n  max_samples: 10000\n");
    let query = |q: &str| format!("/prometheus/api/v1/query?query={q}&time=1800000000");
    // The SLI of every window of `api` over an hour: 60 samples a series, within the
    // limit; over a day, 1,440 a series, past it.
    let (_, listed) = server
        .get_as(None, "/prometheus/api/v1/series?match[]=slotel_slo_sli")
        .await;
    let series = listed["data"].as_array().unwrap().len();
    assert!(series * 1440 > 10_000 && series * 60 <= 10_000, "{listed}");
    let (code, body) = server.get_as(None, &query("slotel_slo_sli%5B1h%5D")).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = server.get_as(None, &query("slotel_slo_sli%5B1d%5D")).await;
    assert_eq!(
        (code, &body["errorType"]),
        (422, &"execution".into()),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("too many samples"),
        "{body}"
    );
    // 400 days at a one-minute step: more points than a series may have.
    let (code, body) = server
        .get_as(
            None,
            "/prometheus/api/v1/query_range?query=slotel_slo_sli&start=1765440000&end=1800000000&step=60",
        )
        .await;
    assert_eq!(
        (code, &body["errorType"]),
        (400, &"bad_data".into()),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("maximum resolution of 11,000 points"),
        "{body}"
    );
    let (code, _) = server.get_as(None, &query("slotel_slo_objective")).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_past_the_memory_budget_are_refused_as_retryable() {
    use prost::Message;
    use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    use tokio::io::AsyncWriteExt;
    const BUDGET: usize = 4 << 20;
    let server = Server::start_with(SLOS, &format!("limits:\n  max_inflight_bytes: {BUDGET}\n"));
    // Two HTTP requests declare 1 MiB bodies and a gRPC call's prefix declares a 2 MiB
    // message (less its 5-byte prefix); all send a byte and wait: together they hold
    // the budget, reserved before their bytes arrive.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&server.otlp_http).await;
        stream
            .write_all(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
                  Content-Length: 1048576\r\n\r\n\x0a",
            )
            .await
            .unwrap();
        slow.push(stream);
    }
    let tcp = connect(&server.otlp_grpc).await;
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let call = axum::http::Request::post(format!(
        "{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        server.otlp_grpc
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (_reply, mut message) = h2.send_request(call, false).unwrap();
    let declared = (2u32 << 20) - 5;
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&declared.to_be_bytes());
    prefix.push(0x0a);
    message.send_data(prefix.into(), false).unwrap();
    let held = || server.metric("slotel_ingest_held_bytes", &[]);
    crate::harness::eventually("the slow requests to hold the budget", || async {
        (held().await == BUDGET as f64).then_some(())
    })
    .await;
    // Meanwhile requests over either transport are refused, retryable, and counted.
    let http = reqwest::Client::new();
    let post = || {
        http.post(format!("{}/v1/traces", server.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(crate::malformed::request(3).encode_to_vec())
            .send()
    };
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let mut grpc = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap();
    let refused = grpc.export(crate::malformed::request(3)).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    for transport in ["http", "grpc"] {
        let n = server
            .metric(
                "slotel_ingest_requests_total",
                &[("outcome", "memory"), ("transport", transport)],
            )
            .await;
        assert_eq!(n, 1.0, "{transport}");
    }
    // Once they end, the budget is whole again and requests are taken.
    drop(slow);
    drop(message);
    connection.abort();
    crate::harness::eventually("the budget to be given back", || async {
        (held().await == 0.0).then_some(())
    })
    .await;
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(
        grpc.export(crate::malformed::request(3))
            .await
            .map(|_| ())
            .map_err(|e| e.code()),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_large_bodies_at_once_stay_within_the_memory_budget() {
    use prost::Message;
    use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
    use std::io::Write;
    // One request holds about 32 MiB (8 MiB decompressed, three times that decoded):
    // the budget takes one at a time.
    const BUDGET: usize = 40 << 20;
    const PER_TRANSPORT: usize = 32;
    let server = Server::start_with(SLOS, &format!("limits:\n  max_inflight_bytes: {BUDGET}\n"));
    // One span with an 8 MiB attribute: about 8 KiB gzip-compressed, 8 MiB once
    // decompressed, and decoded to be cut to the attribute limit.
    let mut request = crate::malformed::request(1);
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue {
            key: "blob".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue("a".repeat(8 << 20))),
            }),
            ..Default::default()
        });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&request.encode_to_vec()).unwrap();
    let body = gz.finish().unwrap();
    let http = reqwest::Client::new();
    let post = || {
        http.post(format!("{}/v1/traces", server.otlp_http))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(body.clone())
            .send()
    };
    let grpc = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    // One of each first, so that what the server keeps after a request (the allocator's
    // arenas, the connections) is in the baseline; then the peak is reset.
    assert_eq!(post().await.unwrap().status(), 200);
    grpc.clone().export(request.clone()).await.unwrap();
    let baseline = server.reset_peak_rss_kib();

    let https = futures::future::join_all((0..PER_TRANSPORT).map(|_| async {
        let resp = post().await.unwrap();
        let retryable = resp.headers().contains_key("retry-after");
        (resp.status().as_u16(), retryable)
    }));
    let grpcs = futures::future::join_all((0..PER_TRANSPORT).map(|_| {
        let mut grpc = grpc.clone();
        let request = request.clone();
        async move { grpc.export(request).await.map(|_| ()).map_err(|e| e.code()) }
    }));
    let (https, grpcs) = tokio::join!(https, grpcs);
    let peak = server.peak_rss_kib();

    let mut http_ok = 1; // the first request
    for (code, retryable) in &https {
        match code {
            200 => http_ok += 1,
            429 => assert!(retryable),
            other => panic!("HTTP {other}"),
        }
    }
    let mut grpc_ok = 1;
    for r in &grpcs {
        match r {
            Ok(()) => grpc_ok += 1,
            Err(tonic::Code::ResourceExhausted) => {}
            Err(other) => panic!("gRPC {other:?}"),
        }
    }
    // Every request's outcome is counted as its client saw it.
    for (transport, ok) in [("http", http_ok), ("grpc", grpc_ok)] {
        for (outcome, want) in [("ok", ok), ("memory", PER_TRANSPORT + 1 - ok)] {
            let labels = [("outcome", outcome), ("transport", transport)];
            let n = server.metric("slotel_ingest_requests_total", &labels).await;
            assert_eq!(n, want as f64, "{transport} {outcome}");
        }
    }
    // The 64 bodies would need 2 GiB decompressed and decoded at once; the server's
    // memory grew by no more than the budget, and a little for the allocator.
    let grown = peak.saturating_sub(baseline);
    // The measurement, for docs/benchmarks.md (`cargo test --test e2e -- --nocapture
    // hostile::many_large`).
    eprintln!(
        "peak RSS grew by {grown} KiB over {baseline} KiB under a {} KiB budget; \
         taken: {http_ok} HTTP, {grpc_ok} gRPC of {} each",
        BUDGET >> 10,
        PER_TRANSPORT + 1
    );
    assert!(
        grown <= (BUDGET as u64 >> 10) + 16 * 1024,
        "peak RSS grew by {grown} KiB over {baseline} KiB; the budget is {} KiB",
        BUDGET >> 10
    );
    assert_eq!(server.metric("slotel_ingest_held_bytes", &[]).await, 0.0);
}
