//! Burn-rate alerts from OTLP traffic to a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on a free port): an outage arrives there as a
//! firing page with slotel's labels, tickets are inhibited on `severity` while it fires,
//! the API lists the alerts, and after a restart the resolve is still delivered.

use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;

use crate::harness::{DEADLINE, Listening, Server, eventually, spawn_listening};
use crate::malformed::request;

/// The outages here are 50 spans: under the default low-traffic guard, so the SLOs
/// turn it off.
const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99.9
    window: 30d
    min_events: 0
    labels: { team: payments }
    annotations: { runbook_url: "https://runbooks.example.com/api" }
    sli: { spans: { good: { status: ok } } }
"#;

/// A running Alertmanager, killed on drop.
async fn start_alertmanager() -> Listening {
    start_alertmanager_on("127.0.0.1:0").await
}

/// A running Alertmanager listening on `addr`, killed on drop.
async fn start_alertmanager_on(addr: &str) -> Listening {
    start_alertmanager_with(
        addr,
        "route:\n  receiver: blackhole\n  group_by: [slo]\nreceivers:\n  - name: blackhole\n\
         inhibit_rules:\n  - source_matchers: [severity=\"page\"]\n    target_matchers: [severity=\"ticket\"]\n    equal: [slo, tenant]\n",
    )
    .await
}

/// A running Alertmanager listening on `addr` with configuration `yaml`, killed on drop.
pub(crate) async fn start_alertmanager_with(addr: &str, yaml: &str) -> Listening {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, yaml).unwrap();
    let mut cmd = Command::new("prometheus-alertmanager");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=");
    spawn_listening(cmd, "/-/ready", Some(dir)).await
}

/// Fifty spans of service `api` with status UNSET, which the SLOs here count as bad: a
/// total outage.
async fn send_outage(server: &Server) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(request(50).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Good traffic enough to bring the 5m burn rate of the 50 bad spans under 14.4
/// (50 / 4,050 / 0.001 = 12.3).
async fn end_outage(server: &Server) {
    server.send_spans(None, "api", 4000, 0).await;
    server.slo_when_total("api", 4050).await;
}

/// Alertmanager's alerts now.
async fn am_alerts(am: &Listening) -> Vec<Value> {
    let alerts: Value = reqwest::get(format!("{}/api/v2/alerts", am.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    alerts.as_array().unwrap().clone()
}

/// Polls Alertmanager until an alert of `tier` is there; returns it.
async fn wait_for_alert(am: &Listening, tier: &str) -> Value {
    eventually(&format!("no {tier} alert in Alertmanager"), || async {
        am_alerts(am)
            .await
            .into_iter()
            .find(|a| a["labels"]["burnrate_tier"] == tier)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_pages_through_a_real_alertmanager() {
    let am = start_alertmanager().await;
    let config = format!(
        "alerting:\n  evaluation_interval: 200ms\n  alertmanager_url: {}\n",
        am.url
    );
    let mut server = Server::start_with(SLOS, &config);
    // Every span of the request has status UNSET, not OK: all bad, a total outage.
    send_outage(&server).await;

    let alert = wait_for_alert(&am, "page-fast").await;
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "SLOBurnRate");
    assert_eq!(labels["slo"], "api");
    assert_eq!(labels["service"], "api");
    assert_eq!(labels["tenant"], "default");
    assert_eq!(labels["severity"], "page");
    assert_eq!(labels["team"], "payments");
    assert_eq!(alert["status"]["state"], "active");
    let annotations = &alert["annotations"];
    assert_eq!(
        annotations["runbook_url"],
        "https://runbooks.example.com/api"
    );
    assert_eq!(annotations["burn_rate_1h"], "1000.00x");
    assert!(
        annotations["summary"]
            .as_str()
            .unwrap()
            .starts_with("api is burning its error budget"),
        "{annotations}"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/slos/api?tenant=default")
    );
    // Every tier fires on a total outage; the tickets arrive too, with their own tier,
    // and Alertmanager's inhibition rule on severity mutes them while the page fires.
    let ticket = wait_for_alert(&am, "ticket-slow").await;
    assert_eq!(ticket["labels"]["severity"], "ticket");
    let t = eventually("the ticket was not inhibited", || async {
        let t = wait_for_alert(&am, "ticket-slow").await;
        (t["status"]["state"] == "suppressed").then_some(t)
    })
    .await;
    assert!(
        !t["status"]["inhibitedBy"].as_array().unwrap().is_empty(),
        "{t}"
    );
    assert_eq!(
        wait_for_alert(&am, "page-fast").await["status"]["state"],
        "active"
    );

    // slotel's own API lists the firing alerts of the tenant.
    let (status, body) = server.get_as(None, "/api/v1/alerts").await;
    assert_eq!(status, 200);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 4, "{body}");
    assert!(alerts.iter().all(|a| a["state"] == "firing"), "{body}");
    // Times are RFC 3339, as everywhere in the API.
    for a in alerts {
        let since = a["since"].as_str().unwrap();
        assert!(since.parse::<jiff::Timestamp>().is_ok(), "{since}");
    }
    let (_, other) = server.get_as(Some("team-b"), "/api/v1/alerts").await;
    assert_eq!(other["alerts"].as_array().unwrap().len(), 0);

    // A restart reads the saved state and the stored counts: the alert is still firing
    // and is not sent as new; once good traffic brings the 5m burn under 14.4, its
    // resolve is delivered.
    let state = std::fs::read_to_string(server.data_dir().join("state/alerts.json")).unwrap();
    assert!(
        state.contains("page-fast") && state.contains("firing"),
        "{state}"
    );
    server.restart();
    let (_, body) = server.get_as(None, "/api/v1/alerts").await;
    assert!(
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["burnrate_tier"] == "page-fast" && a["state"] == "firing"),
        "{body}"
    );
    assert_eq!(server.slo("api").await["total_events"], 50);
    end_outage(&server).await;
    // Resolved: gone from the active list, or ended already.
    eventually("the page was not resolved", || async {
        let page = am_alerts(&am)
            .await
            .into_iter()
            .find(|a| a["labels"]["burnrate_tier"] == "page-fast");
        page.is_none_or(|a| a["status"]["state"] != "active")
            .then_some(())
    })
    .await;
    // The slower tiers still see 12.3x over their windows and keep firing.
    let (_, body) = server.get_as(None, "/api/v1/alerts").await;
    let mut tiers: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["burnrate_tier"].as_str().unwrap())
        .collect();
    tiers.sort();
    assert_eq!(tiers, ["page-slow", "ticket-fast", "ticket-slow"]);

    // The history holds every change, from before and after the restart, newest first.
    let (status, history) = server.get_as(None, "/api/v1/alerts/history?slo=api").await;
    assert_eq!(status, 200, "{history}");
    let page: Vec<(&str, &str)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tier"] == "page-fast")
        .map(|e| {
            (
                e["from_state"].as_str().unwrap(),
                e["to_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(page.first(), Some(&("firing", "inactive")), "{history}");
    assert!(page[1..].iter().any(|(_, to)| *to == "firing"), "{history}");
    let first = &history["events"].as_array().unwrap()[0];
    assert_eq!(first["labels"]["team"], "payments");
    assert_eq!(first["severity"], "page");
    let (_, fired) = server
        .sql_as(
            None,
            "SELECT count(DISTINCT tier) AS tiers FROM alert_events WHERE to_state = 'firing'",
        )
        .await;
    assert_eq!(fired, serde_json::json!([{ "tiers": 4 }]));
}

/// Every JSON body posted to a [`Receiver`], with the path it came to.
pub(crate) type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A local receiver that records every JSON body posted to it, by path.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Received,
}

pub(crate) async fn start_receiver() -> Receiver {
    start_receiver_on("127.0.0.1:0".parse().unwrap()).await
}

async fn start_receiver_on(addr: std::net::SocketAddr) -> Receiver {
    use axum::extract::{Path, State};
    let got: Received = Default::default();
    let app = axum::Router::new()
        .route(
            "/{kind}",
            axum::routing::post(
                |State(got): State<Received>,
                 Path(kind): Path<String>,
                 axum::Json(body): axum::Json<Value>| async move {
                    got.lock().unwrap().push((kind, body));
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

impl Receiver {
    /// Polls until a body posted to `kind` satisfies `pred`; returns it.
    pub(crate) async fn wait(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("nothing matching arrived at /{kind}"), || async {
            let got = self.got.lock().unwrap();
            got.iter()
                .find(|(k, v)| k == kind && pred(v))
                .map(|(_, v)| v.clone())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_pagerduty_and_slack_payloads_and_a_dead_receiver() {
    let live = start_receiver().await;
    // A receiver that accepts connections and never answers.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/hang", dead.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = dead.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let config = format!(
        "alerting:
  evaluation_interval: 200ms
  external_url: https://slotel.example.com
  webhook_urls: [{dead_url}, {live}/webhook]
  pagerduty: {{ routing_key: R0UT1NGKEY0123456789, events_url: {live}/pagerduty }}
  slack_webhook_url: {live}/slack
",
        live = live.url
    );
    let mut server = Server::start_with(SLOS, &config);
    send_outage(&server).await;

    // Alertmanager's webhook payload, field by field: the four tiers of the outage
    // fire together, so they come in one notification of the SLO's group.
    let hook = live
        .wait("webhook", |v| {
            v["alerts"][0]["labels"]["burnrate_tier"] == "page-fast"
        })
        .await;
    assert_eq!(hook["version"], "4");
    assert_eq!(hook["status"], "firing");
    let tiers: Vec<&str> = hook["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["burnrate_tier"].as_str().unwrap())
        .collect();
    assert_eq!(
        tiers,
        ["page-fast", "page-slow", "ticket-fast", "ticket-slow"]
    );
    assert_eq!(hook["groupKey"], "{}:{slo=\"api\", tenant=\"default\"}");
    // The labels all four share; not the tier's own.
    assert_eq!(hook["commonLabels"]["slo"], "api");
    assert!(
        hook["commonLabels"].get("burnrate_tier").is_none(),
        "{hook}"
    );
    assert_eq!(hook["receiver"], "slotel");
    assert_eq!(hook["groupLabels"]["slo"], "api");
    assert_eq!(hook["externalURL"], "https://slotel.example.com");
    let alert = &hook["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        alert["generatorURL"],
        "https://slotel.example.com/api/v1/slos/api?tenant=default"
    );
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);

    // PagerDuty Events v2: the documented required fields.
    let trigger = live
        .wait("pagerduty", |v| {
            v["dedup_key"] == "slotel/default/api/page-fast"
        })
        .await;
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0123456789");
    assert_eq!(trigger["event_action"], "trigger");
    let payload = &trigger["payload"];
    assert!(
        payload["summary"]
            .as_str()
            .unwrap()
            .starts_with("api is burning its error budget")
    );
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["source"], "slotel");
    assert_eq!(payload["component"], "api");
    assert_eq!(
        trigger["links"][0]["href"],
        "https://slotel.example.com/api/v1/slos/api?tenant=default"
    );
    let ticket = live
        .wait("pagerduty", |v| {
            v["dedup_key"] == "slotel/default/api/ticket-slow"
        })
        .await;
    assert_eq!(ticket["payload"]["severity"], "warning");

    // Slack: one line per change.
    let slack = live
        .wait("slack", |v| {
            v["text"].as_str().unwrap_or("").contains("page-fast")
        })
        .await;
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("[firing] api page-fast (page)"),
        "{slack}"
    );

    // The dead receiver was tried, and held up nobody.
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(server.metric("slotel_alerts_firing", &[]).await, 4.0);
    let sent = |receiver| [("receiver", receiver)];
    // webhook-2 gets the incident in one notification (polled: its outbox runs on its
    // own); webhook-1 hangs.
    let start = Instant::now();
    while server
        .metric("slotel_notifications_sent_total", &sent("webhook-2"))
        .await
        < 1.0
    {
        assert!(
            start.elapsed() < DEADLINE,
            "webhook-2 did not get its notification"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hooks = live
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == "webhook")
        .count();
    assert_eq!(hooks, 1, "one incident, one webhook notification");
    let hung = server
        .metric("slotel_notifications_sent_total", &sent("webhook-1"))
        .await;
    assert_eq!(hung, 0.0);

    // Every tier triggered once.
    for tier in ["page-fast", "page-slow", "ticket-fast", "ticket-slow"] {
        let key = format!("slotel/default/api/{tier}");
        live.wait("pagerduty", |v| v["dedup_key"] == key.as_str())
            .await;
    }
    // After a restart the saved firing alerts and the stored counts are back; when good
    // traffic ends the fast burn, PagerDuty gets a resolve with the same dedup key, the
    // webhook a resolved payload.
    server.restart();
    end_outage(&server).await;
    let resolve = live
        .wait("pagerduty", |v| {
            v["event_action"] == "resolve" && v["dedup_key"] == "slotel/default/api/page-fast"
        })
        .await;
    assert_eq!(resolve["routing_key"], "R0UT1NGKEY0123456789");
    let resolved = live
        .wait("webhook", |v| {
            alert_in(v, |a| {
                a["status"] == "resolved" && a["labels"]["burnrate_tier"] == "page-fast"
            })
            .is_some()
        })
        .await;
    let page = alert_in(&resolved, |a| a["labels"]["burnrate_tier"] == "page-fast").unwrap();
    assert_ne!(page["endsAt"], "0001-01-01T00:00:00Z");
    // A restart announces the firing alerts again, with the same dedup keys: PagerDuty
    // keeps one incident per key (a trigger for an open incident adds to it), so each
    // tier paged once.
    let got = live.got.lock().unwrap();
    assert_eq!(incidents(&got), 4, "{got:?}");
}

/// The alert of a webhook notification that `pred` holds for.
fn alert_in(v: &Value, pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    v["alerts"].as_array()?.iter().find(|a| pred(a))
}

/// The incidents PagerDuty would open from the events received: a trigger opens one
/// for its dedup key unless one is open; a resolve closes it.
pub(crate) fn incidents(got: &[(String, Value)]) -> usize {
    let mut open = std::collections::BTreeSet::new();
    let mut opened = 0;
    for (_, v) in got.iter().filter(|(k, _)| k == "pagerduty") {
        let key = v["dedup_key"].as_str().unwrap().to_string();
        match v["event_action"].as_str() {
            Some("trigger") if open.insert(key.clone()) => opened += 1,
            Some("resolve") => {
                open.remove(&key);
            }
            _ => {}
        }
    }
    opened
}

/// A local address nobody listens on yet.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_decided_before_a_crash_is_delivered_after_it_exactly_once() {
    // The receivers are not up yet: the page is decided and cannot be delivered.
    let (am_addr, hook_addr) = (free_addr(), free_addr());
    let config = format!(
        "alerting:
  evaluation_interval: 200ms
  alertmanager_url: http://{am_addr}
  webhook_urls: [http://{hook_addr}/webhook]
  pagerduty: {{ routing_key: R0UT1NGKEY0123456789, events_url: http://{hook_addr}/pagerduty }}
"
    );
    let mut server = Server::start_with(SLOS, &config);
    send_outage(&server).await;
    eventually("the page to be decided and saved", || async {
        let (_, body) = server.get_as(None, "/api/v1/alerts").await;
        let firing = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["burnrate_tier"] == "page-fast" && a["state"] == "firing");
        let saved = std::fs::read_to_string(server.data_dir().join("state/alerts.json"))
            .is_ok_and(|s| s.contains("page-fast"));
        (firing && saved).then_some(())
    })
    .await;
    server.kill();
    // Now the receivers come up, and slotel again.
    let am = start_alertmanager_on(&am_addr.to_string()).await;
    let live = start_receiver_on(hook_addr).await;
    server.start_again();
    server.wait_ready().await;
    let page = wait_for_alert(&am, "page-fast").await;
    assert_eq!(page["status"]["state"], "active");
    assert_eq!(page["labels"]["slo"], "api");
    let pages = am_alerts(&am)
        .await
        .into_iter()
        .filter(|a| a["labels"]["burnrate_tier"] == "page-fast")
        .count();
    assert_eq!(pages, 1);
    live.wait("pagerduty", |v| {
        v["event_action"] == "trigger" && v["dedup_key"] == "slotel/default/api/page-fast"
    })
    .await;
    let fired = live
        .wait("webhook", |v| {
            v["status"] == "firing" && v["alerts"][0]["labels"]["burnrate_tier"] == "page-fast"
        })
        .await;
    let fingerprint = fired["alerts"][0]["fingerprint"].clone();
    // The outage ends: the resolves come after every firing notification, so counting
    // then is counting all of them.
    end_outage(&server).await;
    live.wait("pagerduty", |v| {
        v["event_action"] == "resolve" && v["dedup_key"] == "slotel/default/api/page-fast"
    })
    .await;
    live.wait("webhook", |v| {
        alert_in(v, |a| {
            a["status"] == "resolved" && a["fingerprint"] == fingerprint
        })
        .is_some()
    })
    .await;
    let got = live.got.lock().unwrap().clone();
    let page_triggers = got
        .iter()
        .filter(|(k, v)| {
            k == "pagerduty"
                && v["event_action"] == "trigger"
                && v["dedup_key"] == "slotel/default/api/page-fast"
        })
        .count();
    assert_eq!(page_triggers, 1, "{got:?}");
    let page_fired = got
        .iter()
        .filter(|(k, v)| {
            k == "webhook"
                && alert_in(v, |a| {
                    a["status"] == "firing" && a["fingerprint"] == fingerprint
                })
                .is_some()
        })
        .count();
    assert_eq!(page_fired, 1, "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_test_sends_through_every_receiver_and_names_the_failures() {
    let live = start_receiver().await;
    // A port nobody listens on: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slotel.yaml");
    std::fs::write(
        &config,
        format!(
            "alerting:\n  webhook_urls: [http://{closed}/nobody, {live}/webhook]\n  pagerduty: {{ routing_key: R0UT1NGKEY0123456789, events_url: {live}/pagerduty }}\n  slack_webhook_url: {live}/slack\n",
            live = live.url
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_slotel"))
            .args(["alerts", "test", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "webhook-1: FAILED\nwebhook-2: delivered\npagerduty: delivered\nslack: delivered\n"
    );
    let trigger = live.wait("pagerduty", |_| true).await;
    assert_eq!(trigger["dedup_key"], "slotel/default/slotel-test/test");
    assert_eq!(trigger["event_action"], "trigger");
    let hook = live.wait("webhook", |_| true).await;
    assert_eq!(hook["alerts"][0]["labels"]["alertname"], "SLOTelTest");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_maintenance_window_holds_back_notifications_and_can_exclude_events() {
    let live = start_receiver().await;
    let slos = r#"
slos:
  - name: a-in-maintenance
    service: api
    objective: 99.9
    window: 30d
    min_events: 0
    sli: { spans: { good: { status: ok } } }
  - name: b-not
    service: api
    objective: 99.9
    window: 30d
    min_events: 0
    sli: { spans: { good: { status: ok } } }
"#;
    let config = format!(
        "alerting:\n  evaluation_interval: 200ms\n  pagerduty: {{ routing_key: R0UT1NGKEY0123456789, events_url: {}/pagerduty }}\n\
         maintenance:\n  - {{ name: upgrade, start: \"2020-01-01T00:00:00Z\", end: \"2099-01-01T00:00:00Z\", slos: [a-in-maintenance] }}\n",
        live.url
    );
    let server = Server::start_with(slos, &config);
    let (status, body) = server.get_as(None, "/api/v1/maintenance").await;
    assert_eq!(status, 200);
    assert_eq!(body["maintenance"][0]["name"], "upgrade");
    send_outage(&server).await;
    // Both SLOs fire; notifications go out in SLO order through one outbox, so once b's
    // page arrived, a's would have arrived before it had it not been held back.
    live.wait("pagerduty", |v| {
        v["dedup_key"] == "slotel/default/b-not/page-fast"
    })
    .await;
    let got = live.got.lock().unwrap().clone();
    assert!(
        got.iter().all(|(_, v)| !v["dedup_key"]
            .as_str()
            .unwrap()
            .contains("a-in-maintenance")),
        "{got:?}"
    );
    let (_, alerts) = server.get_as(None, "/api/v1/alerts").await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 8, "{alerts}");
    // The alerts list says which alerts a window holds back, and which SLOs it holds.
    for a in alerts["alerts"].as_array().unwrap() {
        let held = a["labels"]["slo"] == "a-in-maintenance";
        assert_eq!(a.get("in_maintenance").is_some(), held, "{a}");
        if held {
            assert_eq!(a["in_maintenance"], "upgrade");
        }
    }
    assert_eq!(
        alerts["in_maintenance"],
        serde_json::json!([{ "slo": "a-in-maintenance", "service": "api", "window": "upgrade" }])
    );
    // The status says which window holds the SLO's notifications back.
    assert_eq!(
        server.slo("a-in-maintenance").await["in_maintenance"],
        "upgrade"
    );
    assert!(server.slo("b-not").await.get("in_maintenance").is_none());

    // A window that excludes events, posted to the API: new events in it do not count.
    let http = reqwest::Client::new();
    let window = serde_json::json!({
        "name": "excluded", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z",
        "services": ["api"], "exclude_events": true,
    });
    let resp = http
        .post(format!("{}/api/v1/maintenance", server.api))
        .json(&window)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut more = request(60);
    for (i, s) in more.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        s.span_id = (1000 + i as u64).to_be_bytes().to_vec();
    }
    let resp = http
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(more.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let start = Instant::now();
    while server
        .metric("slotel_engine_events_in_maintenance_total", &[])
        .await
        < 120.0
    {
        assert!(start.elapsed() < DEADLINE, "the events were not excluded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.slo("b-not").await["total_events"], 50);
    let resp = http
        .delete(format!("{}/api/v1/maintenance/excluded", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = http
        .delete(format!("{}/api/v1/maintenance/excluded", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Windows for SLOs or services that are not loaded, or already over, are refused.
    for (window, message) in [
        (
            serde_json::json!({"name": "typo", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z", "slos": ["b-nto"]}),
            "maintenance window \"typo\" names SLO \"b-nto\", which has no SLO loaded",
        ),
        (
            serde_json::json!({"name": "typo", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z", "services": ["API"]}),
            "maintenance window \"typo\" names service \"API\", which has no SLO loaded",
        ),
        (
            serde_json::json!({"name": "past", "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z", "slos": ["b-not"]}),
            "maintenance window \"past\" is over already",
        ),
    ] {
        let resp = http
            .post(format!("{}/api/v1/maintenance", server.api))
            .json(&window)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], message);
    }
    let bad = serde_json::json!({"name": "x", "start": "soon", "end": "later", "slos": ["b-not"]});
    let resp = http
        .post(format!("{}/api/v1/maintenance", server.api))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // The window that held a's alerts back ends: they are delivered now, and b's page,
    // told already, is not sent again.
    let resp = http
        .delete(format!("{}/api/v1/maintenance/upgrade", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    live.wait("pagerduty", |v| {
        v["event_action"] == "trigger"
            && v["dedup_key"] == "slotel/default/a-in-maintenance/page-fast"
    })
    .await;
    let got = live.got.lock().unwrap().clone();
    let b_page = got
        .iter()
        .filter(|(_, v)| v["dedup_key"] == "slotel/default/b-not/page-fast")
        .count();
    assert_eq!(b_page, 1, "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_send_each_tenants_pages_to_its_own_receivers() {
    let live = start_receiver().await;
    let slos = format!(
        "{SLOS}  - {{ name: api, tenant: team-b, service: api, objective: 99.9, window: 30d, min_events: 0, sli: {{ spans: {{ good: {{ status: ok }} }} }} }}\n"
    );
    // team-b's pages go to its own webhook and its tickets to the default one; the
    // default tenant's alerts all go to the default webhook.
    let config = format!(
        "alerting:
  evaluation_interval: 200ms
  webhook_urls: [{live}/default]
  routes:
    - match: {{ tenant: team-b, severity: page }}
      webhook_urls: [{live}/team-b]
",
        live = live.url
    );
    let server = Server::start_with(&slos, &config);
    for tenant in ["default", "team-b"] {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/traces", server.otlp_http))
            .header("content-type", "application/x-protobuf")
            .header("x-scope-orgid", tenant)
            .body(request(50).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let tier_of = |tenant: &str, tier: &str| {
        let (tenant, tier) = (tenant.to_string(), tier.to_string());
        move |v: &Value| {
            alert_in(v, |a| {
                a["labels"]["tenant"] == tenant.as_str()
                    && a["labels"]["burnrate_tier"] == tier.as_str()
            })
            .is_some()
        }
    };
    let page = live.wait("team-b", tier_of("team-b", "page-fast")).await;
    // The alert's link opens team-b's SLO as it is followed: with no header.
    let link = page["alerts"][0]["generatorURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        link,
        format!("{}/api/v1/slos/api?tenant=team-b", server.api)
    );
    let opened = reqwest::get(&link).await.unwrap();
    assert_eq!(opened.status(), 200);
    let opened: Value = opened.json().await.unwrap();
    assert_eq!(opened["name"], "api");
    assert_eq!(opened["tenant"], "team-b");
    live.wait("team-b", tier_of("team-b", "page-slow")).await;
    live.wait("default", tier_of("team-b", "ticket-fast")).await;
    live.wait("default", tier_of("default", "page-fast")).await;
    live.wait("default", tier_of("default", "ticket-slow"))
        .await;
    // All eight alerts fired (four tiers, two tenants), in three notifications (one per
    // SLO and receiver, as each tenant's tiers fire together); each alert went to one
    // place only.
    eventually("every alert was sent", || async {
        (live.got.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    let got = live.got.lock().unwrap().clone();
    let mut alerts = 0;
    for (kind, body) in &got {
        for alert in body["alerts"].as_array().unwrap() {
            let labels = &alert["labels"];
            let routed = labels["tenant"] == "team-b" && labels["severity"] == "page";
            assert_eq!(kind == "team-b", routed, "{kind}: {labels}");
            alerts += 1;
        }
    }
    assert_eq!((got.len(), alerts), (3, 8), "{got:?}");
    // The alerts API says how every receiver is doing, once the deliveries are counted.
    let body = eventually("the deliveries were not counted", || async {
        let (_, body) = server.get_as(Some("team-b"), "/api/v1/alerts").await;
        let sent: Vec<u64> = body["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sent"].as_u64().unwrap())
            .collect();
        (sent == [2, 1]).then_some(body)
    })
    .await;
    assert_eq!(body["alerts"].as_array().unwrap().len(), 4, "{body}");
    let receivers = body["receivers"].as_array().unwrap();
    let names: Vec<&str> = receivers
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["webhook-1", "route-1/webhook-1"]);
    assert_eq!(receivers[1]["failed"], 0);
    // And /metrics counts the route's receiver under its own name.
    let sent = server
        .metric(
            "slotel_notifications_sent_total",
            &[("receiver", "route-1/webhook-1")],
        )
        .await;
    assert_eq!(sent, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_status_series_and_exposition_agree_on_burn_rates_for_every_budgeting() {
    let slos = "slos:
  - { name: by-events, service: api, objective: 99, window: 30d, sli: { spans: { good: { status: ok } } } }
  - { name: by-slices, service: api, objective: 99, window: 30d, budgeting: { timeslices: { slice: 1m, target: 95 } }, sli: { spans: { good: { status: ok } } } }
  - { name: by-slice-ratios, service: api, objective: 99, window: 30d, budgeting: { ratio_timeslices: { slice: 1m } }, sli: { spans: { good: { status: ok } } } }
";
    let server = Server::start_with(slos, "alerting:\n  evaluation_interval: 200ms\n");
    // One request, one minute: 100 spans, 10 failed (the harness marks failures as
    // ERROR and the rest OK).
    server.send_spans(None, "api", 90, 10).await;
    server.wait_applied().await;
    // The burn rate over every window that holds the minute, on a 1% budget: events
    // 10/100; one slice, bad (90% < 95%); one slice whose ratio is 0.9.
    let want = [
        ("by-events", 0.1 / 0.01),
        ("by-slices", 1.0 / 0.01),
        ("by-slice-ratios", 0.1 / 0.01),
    ];
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.max(1.0);
    for (slo, rate) in want {
        let status = server.slo(slo).await;
        for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
            let got = status["burn_rates"][w].as_f64().unwrap();
            assert!(close(got, rate), "{slo} status {w}: {got} != {rate}");
        }
        // The series endpoint, at its last point (now, over the last ten minutes).
        let from = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 600;
        let (_, series) = server
            .get_as(
                None,
                &format!("/api/v1/slos/{slo}/series?from={from}&step=60"),
            )
            .await;
        let last = series["points"].as_array().unwrap().last().unwrap().clone();
        let got = last["burn_rates"]["1h"].as_f64().unwrap();
        assert!(close(got, rate), "{slo} series 1h: {got} != {rate}");
        // The Prometheus API.
        let (_, reply) = server
            .get_as(
                None,
                &format!(
                    "/prometheus/api/v1/query?query=slotel_slo_burn_rate%7Bslo%3D%22{slo}%22%7D"
                ),
            )
            .await;
        let result = reply["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 9, "{reply}");
        for r in result {
            let got: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            assert!(
                close(got, rate),
                "{slo} exposition {}: {got} != {rate}",
                r["metric"]["window"]
            );
        }
    }
    // The alerts: by-events burns 10x (page-slow at 6x and both tickets fire, page-fast at
    // 14.4x does not); by-slices 100x, every tier; by-slice-ratios 10x, as by-events.
    let expected: Vec<(String, String)> = [
        ("by-events", "page-slow"),
        ("by-events", "ticket-fast"),
        ("by-events", "ticket-slow"),
        ("by-slice-ratios", "page-slow"),
        ("by-slice-ratios", "ticket-fast"),
        ("by-slice-ratios", "ticket-slow"),
        ("by-slices", "page-fast"),
        ("by-slices", "page-slow"),
        ("by-slices", "ticket-fast"),
        ("by-slices", "ticket-slow"),
    ]
    .iter()
    .map(|(s, t)| (s.to_string(), t.to_string()))
    .collect();
    let alerts = eventually("the expected alerts fire", || async {
        let (_, body) = server.get_as(None, "/api/v1/alerts").await;
        let alerts = body["alerts"].as_array().unwrap().clone();
        let mut firing: Vec<(String, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a["labels"]["slo"].as_str().unwrap().to_string(),
                    a["labels"]["burnrate_tier"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        firing.sort();
        (firing == expected).then_some(alerts)
    })
    .await;
    for a in alerts {
        let slo = a["labels"]["slo"].as_str().unwrap();
        let rate = want.iter().find(|(s, _)| *s == slo).unwrap().1;
        let shown = format!("{rate:.2}x");
        let burn: Vec<&str> = a["annotations"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("burn_rate_"))
            .map(|(_, v)| v.as_str().unwrap())
            .collect();
        assert_eq!(burn, [shown.as_str(), shown.as_str()], "{a}");
    }
}
