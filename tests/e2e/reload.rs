//! Reloading SLO files, by API and by SIGHUP: unchanged counts survive, new SLOs appear,
//! and an invalid file keeps the previous SLOs and says why.

use std::time::{Duration, Instant};

use prost::Message;

use crate::harness::{DEADLINE, Server};
use crate::malformed::request;

/// One span SLO, `api` of service `api`.
pub(crate) const ONE: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn reload_by_api_and_sighup_keeps_counts_and_refuses_bad_files() {
    let server = Server::start(ONE);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(request(5).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.slo_when_total("api", 5).await;

    // A new objective and a second SLO.
    let two = format!(
        "{}\n  - name: api-fast\n    service: api\n    objective: 95\n    window: 1h\n    sli: {{ spans: {{ good: {{ max_duration: 10ms }} }} }}\n",
        ONE.replace("objective: 99", "objective: 99.9").trim_end()
    );
    std::fs::write(&server.slo_file, two).unwrap();
    let resp = http
        .post(format!("{}/api/v1/reload", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "slos": 2}));
    let api = server.slo("api").await;
    assert_eq!(
        (api["objective"].as_f64(), api["total_events"].as_u64()),
        (Some(99.9), Some(5))
    );
    assert_eq!(server.slo("api-fast").await["total_events"], 0);

    // An invalid file: 422 naming the problem; both SLOs stay.
    std::fs::write(&server.slo_file, ONE.replace("window: 1d", "window: 1x")).unwrap();
    let resp = http
        .post(format!("{}/api/v1/reload", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{}:6:13: ", server.slo_file.display())),
        "{msg}"
    );
    assert!(msg.contains("unknown unit \"x\""), "{msg}");
    assert_eq!(server.slo("api-fast").await["name"], "api-fast");

    // SIGHUP reloads too: back to the single SLO.
    std::fs::write(&server.slo_file, ONE).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        let (code, _) = server.get_as(None, "/api/v1/slos/api-fast").await;
        if code == 404 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let api = server.slo("api").await;
    assert_eq!(
        (api["objective"].as_f64(), api["total_events"].as_u64()),
        (Some(99.0), Some(5))
    );
}
