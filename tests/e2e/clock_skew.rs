//! A client whose clock runs ahead: events dated 1 to 5 minutes ahead, at several
//! distances from a minute boundary, leave every window as it is (REST, the Prometheus
//! API and SQL agree with what the test sent), the window's oldest minutes keep taking
//! late events, and the events count once in their own minute when it comes.

use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;

use crate::harness::{Server, now_nanos, span};

const SLOS: &str = r#"
slos:
  - { name: three-days, service: api, objective: 99, window: 3d, sli: { spans: { good: { status: not_error } } } }
  - { name: thirty-days, service: api, objective: 99, window: 30d, sli: { spans: { good: { status: not_error } } } }
"#;

const NANOS: u64 = 1_000_000_000;

/// Sends one span of service `api` ending at each of `ends`, ids from `first`; every
/// one is accepted (none refused as too far ahead).
async fn send_at(server: &Server, ends: &[u64], first: u64) {
    let spans = ends
        .iter()
        .enumerate()
        .map(|(i, &end)| span(first + i as u64, "GET /", 0, end, 1, false, Vec::new()))
        .collect();
    let body = server.post_spans("api", spans).await;
    let reply =
        slotel_proto::otlp::collector::trace::v1::ExportTraceServiceResponse::decode(&body[..])
            .unwrap();
    assert!(reply.partial_success.is_none_or(|p| p.rejected_spans == 0));
}

/// What REST, the Prometheus API and SQL say SLO `slo` holds now: (REST window total,
/// Prometheus events total, SQL rows up to now, SQL rows after now).
async fn views(server: &Server, slo: &str) -> (u64, f64, u64, u64) {
    let rest = server.slo(slo).await["total_events"].as_u64().unwrap();
    let (_, prom) = server
        .get_as(
            None,
            &format!(
                "/prometheus/api/v1/query?query=slotel_slo_events_total%7Bslo%3D%22{slo}%22%7D"
            ),
        )
        .await;
    let prom: f64 = prom["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sql = |when: &str| {
        format!(
            "SELECT CAST(COALESCE(sum(total), 0) AS BIGINT) AS n FROM sli_minute \
             WHERE slo = '{slo}' AND \"group\" = '' AND minute {when} date_trunc('minute', now())"
        )
    };
    let count = |v: &Value| v[0]["n"].as_u64().unwrap();
    let (_, past) = server.sql_as(None, &sql("<=")).await;
    let (_, ahead) = server.sql_as(None, &sql(">")).await;
    (rest, prom, count(&past), count(&ahead))
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_a_clock_ahead_never_change_the_window_and_count_in_their_minute() {
    let server = Server::start(SLOS);
    // The first checks compare the windows with the minute of "now": begin them early in
    // a minute, so that they end before it does (a slow run once crossed into the first
    // minute ahead, which then counted).
    let into = now_nanos() % (60 * NANOS);
    if into > 20 * NANOS {
        tokio::time::sleep(Duration::from_nanos(60 * NANOS - into)).await;
    }
    let now = now_nanos();
    let minute = now - now % (60 * NANOS);
    // 16 events now, and 2 late ones in the 3-day window's oldest minutes.
    let mut past: Vec<u64> = vec![now; 16];
    past.push(now - 3 * 86_400 * NANOS + 90 * NANOS);
    past.push(now - 3 * 86_400 * NANOS + 150 * NANOS);
    send_at(&server, &past, 1).await;
    // Ahead: 1 to 5 minutes, at 0, 1, 30 and 59 seconds into their minutes, within the
    // 5 minutes slotel accepts (less a second for the time this takes).
    let mut ahead: Vec<u64> = Vec::new();
    for k in 1..=5u64 {
        for d in [0, 1, 30, 59] {
            let t = minute + k * 60 * NANOS + d * NANOS;
            if t > now && t - now <= 299 * NANOS {
                ahead.push(t);
            }
        }
    }
    assert!(ahead.len() >= 16, "{}", ahead.len());
    send_at(&server, &ahead, 1000).await;
    server.wait_applied().await;

    let sent_past = past.len() as u64;
    for slo in ["three-days", "thirty-days"] {
        let (rest, prom, sql_past, sql_ahead) = views(&server, slo).await;
        assert_eq!(rest, sent_past, "{slo}: REST");
        assert_eq!(prom, sent_past as f64, "{slo}: Prometheus");
        assert_eq!(sql_past, sent_past, "{slo}: SQL up to now");
        assert_eq!(sql_ahead, ahead.len() as u64, "{slo}: SQL ahead");
    }
    assert_eq!(
        now_nanos() / (60 * NANOS),
        now / (60 * NANOS),
        "the checks above ran past the minute they compare with"
    );
    // The oldest minutes still take late events.
    let late = now - 3 * 86_400 * NANOS + 120 * NANOS;
    send_at(&server, &[late], 5000).await;
    server.wait_applied().await;
    assert_eq!(
        server.slo("three-days").await["total_events"],
        sent_past + 1
    );

    // The first minute ahead comes: its events count, once, and nothing else moved.
    let first = *ahead.iter().min().unwrap();
    let first_minute = first - first % (60 * NANOS);
    let in_first = ahead
        .iter()
        .filter(|&&t| t - t % (60 * NANOS) == first_minute)
        .count() as u64;
    let wait = Duration::from_nanos((first_minute + 60 * NANOS).saturating_sub(now_nanos()));
    let deadline = Instant::now() + wait + Duration::from_secs(30);
    let in_minute = |t: u64| t >= first_minute && t < first_minute + 60 * NANOS;
    let want = sent_past + 1 + in_first;
    loop {
        // Judged only when the whole exchange happened within the first minute ahead.
        let before = now_nanos();
        let (rest, prom, sql_past, _) = views(&server, "thirty-days").await;
        if in_minute(before) && in_minute(now_nanos()) {
            assert_eq!((rest, prom, sql_past), (want, want as f64, want));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first minute ahead never came"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
