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

/// Two tenants with tokens, and an admin token: team-a's SLO carries a label only its
/// own answers may show.
const SCOPED_SLOS: &str = r#"
slos:
  - name: a-only
    tenant: team-a
    service: svc-a
    objective: 97.125
    window: 1d
    labels: { team: secret-a }
    sli: { spans: { good: { status: not_error } } }
  - name: b-only
    tenant: team-b
    service: svc-b
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

const TOKEN_A: &str = "4c1d8f0e2b7a4e55b9d3";
const TOKEN_B: &str = "9e0a3b6c1f2d4a87c5e1";
const TOKEN_ADMIN: &str = "77aa0c2e9b814f6d8e30";

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_answers_only_for_the_tokens_tenant() {
    let config = format!(
        "auth:\n  tokens:\n    - {{ token: \"{TOKEN_A}\", tenant: team-a }}\n    \
         - {{ token: \"{TOKEN_B}\", tenant: team-b }}\n    \
         - {{ token: \"{TOKEN_ADMIN}\", tenant: ops, admin: true }}\n"
    );
    let server = Server::start_with(SCOPED_SLOS, &config);
    let http = reqwest::Client::new();
    let call = |method: &str, path: &str, token: Option<&str>| {
        let url = format!("{}{path}", server.api);
        let mut r = match method {
            "post" => http.post(url).json(&serde_json::json!({
                "query": "SELECT * FROM slo_definitions",
            })),
            "delete" => http.delete(url),
            _ => http.get(url),
        };
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (code, doc) = call("get", "/api/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    // What each templated path is called with: team-a's names, and queries that select.
    let concrete = |path: &str| -> String {
        let path = path
            .replace("/label/{name}/", "/label/team/")
            .replace("{name}", "a-only")
            .replace("{service}", "svc-a");
        let query = match path.as_str() {
            "/prometheus/api/v1/query" => "?query=slotel_slo_objective",
            "/prometheus/api/v1/query_range" => {
                "?query=slotel_slo_objective&start=1765000000&end=1765003600&step=60"
            }
            "/prometheus/api/v1/series" => "?match[]=slotel_slo_objective",
            _ => "",
        };
        format!("{path}{query}")
    };
    let public = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
    ];
    let mut walked = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        walked.insert(path.clone());
        for method in item.as_object().unwrap().keys() {
            let path = concrete(path);
            for token in [None, Some("not-a-token-of-anyone")] {
                let (code, body) = call(method, &path, token).await;
                if !public.contains(&path.as_str()) {
                    assert_eq!(code, 401, "{method} {path} with {token:?}: {body}");
                }
                assert!(!body.contains("secret-a"), "{method} {path}: {body}");
            }
            // Team b's token never shows team-a's SLO, whatever it asks.
            let (code, body) = call(method, &path, Some(TOKEN_B)).await;
            assert!(
                !body.contains("secret-a") && !body.contains("97.125"),
                "{method} {path} as team-b ({code}): {body}"
            );
        }
    }
    for route in [
        "/api/v1/slos/{name}",
        "/api/v1/sql",
        "/api/v1/maintenance/{name}",
        "/api/v1/alerts/history",
        "/prometheus/api/v1/query_range",
    ] {
        assert!(
            walked.contains(route),
            "{route} is not documented: {walked:?}"
        );
    }
    // Team a's own token sees it (so the walk above would see a leak).
    let (code, body) = call("get", "/api/v1/slos/a-only", Some(TOKEN_A)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("secret-a"), "{body}");
    // The SLO files are every tenant's: only the admin token reloads them.
    for (token, want) in [(TOKEN_A, 403), (TOKEN_B, 403), (TOKEN_ADMIN, 200)] {
        let (code, body) = call("post", "/api/v1/reload", Some(token)).await;
        assert_eq!(code, want, "{body}");
    }
}
