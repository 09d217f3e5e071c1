//! Tenants: data sent with `X-Scope-OrgID` counts only for that tenant's SLOs, and the
//! API shows a tenant only its own SLOs.

use prost::Message;

use crate::harness::Server;
use crate::malformed::request;

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
  - name: api
    tenant: team-a
    service: api
    objective: 99.5
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_counts_and_sees_only_its_own() {
    let server = Server::start(SLOS);
    let http = reqwest::Client::new();
    let send = |tenant: Option<&'static str>, spans: usize| {
        let mut r = http
            .post(format!("{}/v1/traces", server.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(request(spans).encode_to_vec());
        if let Some(t) = tenant {
            r = r.header("x-scope-orgid", t);
        }
        r.send()
    };
    assert_eq!(send(Some("team-a"), 4).await.unwrap().status(), 200);
    assert_eq!(send(None, 6).await.unwrap().status(), 200);
    assert_eq!(send(Some("team-b"), 9).await.unwrap().status(), 200);
    assert_eq!(send(Some("bad tenant!"), 1).await.unwrap().status(), 400);

    let default = server.slo_when_total("api", 6).await;
    assert_eq!(default["tenant"], "default");
    assert_eq!(default["total_events"], 6);
    let team_a = server.slo_when_total_as(Some("team-a"), "api", 4).await;
    assert_eq!(team_a["tenant"], "team-a");
    assert_eq!(team_a["objective"], 99.5);
    assert_eq!(team_a["total_events"], 4);
    // team-b has no SLOs: its list is empty and its data counted nowhere.
    let (status, list) = server.get_as(Some("team-b"), "/api/v1/slos").await;
    assert_eq!(status, 200);
    assert_eq!(list["slos"].as_array().unwrap().len(), 0);
    assert_eq!(server.slo("api").await["total_events"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tokens_metrics_show_slo_series_only_to_their_tenants_token() {
    let config = "api:\n  slo_series_in_metrics: true\nauth:\n  tokens:\n    \
                  - { token: \"4c1d8f0e2b7a4e55b9d3\", tenant: team-a }\n    \
                  - { token: \"9e0a3b6c1f2d4a87c5e1\", tenant: default }\n";
    let server = Server::start_with(SLOS, config);
    let http = reqwest::Client::new();
    let scrape = |token: Option<&'static str>| {
        let mut r = http.get(format!("{}/metrics", server.api));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        async move {
            let resp = r.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    // The objective series of each tenant's `api` SLO, as the scrape shows them.
    let objectives = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("slotel_slo_objective{"))
            .map(|l| {
                let tenant = l.split("tenant=\"").nth(1).unwrap_or_default();
                tenant.split('"').next().unwrap_or_default().to_string()
            })
            .collect()
    };
    // Without a token, or with a wrong one: slotel's own metrics, no tenant's SLOs.
    for token in [None, Some("not-a-token")] {
        let text = scrape(token).await;
        assert!(text.contains("slotel_queue_left_out_total"), "{text}");
        assert_eq!(objectives(&text), Vec::<String>::new(), "{token:?}");
    }
    assert_eq!(
        objectives(&scrape(Some("4c1d8f0e2b7a4e55b9d3")).await),
        ["team-a"]
    );
    assert_eq!(
        objectives(&scrape(Some("9e0a3b6c1f2d4a87c5e1")).await),
        ["default"]
    );
}
