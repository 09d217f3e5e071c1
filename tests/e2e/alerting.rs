//! Burn-rate alerts from OTLP traffic to a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on a free port): an outage arrives there as a
//! firing page with slotel's labels, tickets are inhibited on `severity` while it fires,
//! the API lists the alerts, and after a restart the resolve is still delivered.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;

use crate::harness::{DEADLINE, Server};
use crate::malformed::request;

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99.9
    window: 30d
    labels: { team: payments }
    annotations: { runbook_url: "https://runbooks.example.com/api" }
    sli: { spans: { good: { status: ok } } }
"#;

/// A running Alertmanager, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_by: [slo]\nreceivers:\n  - name: blackhole\n\
         inhibit_rules:\n  - source_matchers: [severity=\"page\"]\n    target_matchers: [severity=\"ticket\"]\n    equal: [slo, tenant]\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager runs (./scripts/test installs it)");
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{}/-/ready", am.url)).send().await
            && r.status().is_success()
        {
            return am;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "Alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls Alertmanager until an alert with these labels is there; returns it.
async fn wait_for_alert(am: &Alertmanager, tier: &str) -> Value {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let alerts: Value = http
            .get(format!("{}/api/v2/alerts", am.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(a) = alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["burnrate_tier"] == tier)
        {
            return a.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no {tier} alert in Alertmanager: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(request(50).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

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
            .ends_with("/api/v1/slos/api")
    );
    // Every tier fires on a total outage; the tickets arrive too, with their own tier,
    // and Alertmanager's inhibition rule on severity mutes them while the page fires.
    let ticket = wait_for_alert(&am, "ticket-slow").await;
    assert_eq!(ticket["labels"]["severity"], "ticket");
    let start = Instant::now();
    loop {
        let t = wait_for_alert(&am, "ticket-slow").await;
        if t["status"]["state"] == "suppressed" {
            assert!(
                !t["status"]["inhibitedBy"].as_array().unwrap().is_empty(),
                "{t}"
            );
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the ticket was not inhibited: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let (_, other) = server.get_as(Some("team-b"), "/api/v1/alerts").await;
    assert_eq!(other["alerts"].as_array().unwrap().len(), 0);

    // A restart reads the saved state: the alert is still known as firing, so its
    // resolve is delivered. (The restarted server holds no counts yet, so the burn stops.)
    let state = std::fs::read_to_string(server.data_dir().join("state/alerts.json")).unwrap();
    assert!(
        state.contains("page-fast") && state.contains("firing"),
        "{state}"
    );
    server.restart();
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let alerts: Value = http
            .get(format!("{}/api/v2/alerts", am.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["burnrate_tier"] == "page-fast")
            .cloned();
        // Resolved: gone from the active list, or ended already.
        let ended = match &page {
            None => true,
            Some(a) => a["status"]["state"] != "active",
        };
        if ended {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the page was not resolved: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = std::fs::read_to_string(server.data_dir().join("state/alerts.json")).unwrap();
    assert!(!state.contains("firing"), "{state}");
}
