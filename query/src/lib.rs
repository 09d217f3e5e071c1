//! The HTTP query API: SLO list and status as JSON, slotel's own metrics, and the health
//! check.
//!
//! Flow: a middleware resolves the caller's tenant (bearer token or `X-Scope-OrgID`,
//! through [`slotel_proto::auth::Auth`]); handlers ask the [`slotel_compute::Engine`]
//! for that tenant's [`slotel_compute::SloStatus`]es. `/metrics` encodes the shared
//! Prometheus registry.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;
pub mod source;

pub mod exposition;
pub mod prometheus;
pub mod promql;
pub mod rest;
pub mod side;

pub use error::ApiError;
pub use source::{ApiOptions, QueryEngine};

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use slotel_compute::Engine;
use slotel_compute::alerting::Evaluator;
use slotel_proto::TENANT_HEADER;
use slotel_proto::auth::Auth;
use std::sync::Mutex;

/// Reloads the SLO files: the number of SLOs loaded, or every problem found.
pub type Reload = Arc<dyn Fn() -> Result<usize, slotel_spec::Error> + Send + Sync>;

/// What the API serves from.
pub struct ApiContext {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Resolves the caller's tenant.
    pub auth: Auth,
    /// slotel's own metrics.
    pub registry: Arc<Registry>,
    /// Reloads the SLO files (`POST /api/v1/reload`).
    pub reload: Option<Reload>,
    /// The alert rules' state.
    pub alerts: Arc<Mutex<Evaluator>>,
    /// The Parquet tables, when storage is on.
    pub store: Option<Arc<slotel_storage::Store>>,
    /// The API's settings.
    pub options: ApiOptions,
    /// slotel's own metrics by minute, served through the Prometheus API.
    pub health: Arc<side::HealthHistory>,
    /// The notification receivers' counters, for the alerts API.
    pub receivers: rest::Receivers,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext").finish_non_exhaustive()
    }
}

impl ApiContext {
    /// A context over `engine` with no storage, open auth and default settings.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            auth: Auth::open(),
            registry: Arc::default(),
            reload: None,
            alerts: Arc::default(),
            store: None,
            options: ApiOptions::default(),
            health: Arc::default(),
            receivers: Arc::default(),
        }
    }
}

/// The API routes: `/api` and `/prometheus` ask `auth` for the tenant, `/metrics`
/// encodes the registry (and the SLO series when asked), `POST /api/v1/reload` calls
/// `reload`.
pub fn router(ctx: ApiContext) -> Router {
    let ApiContext {
        engine,
        auth,
        registry,
        reload,
        alerts,
        store,
        options,
        health,
        receivers,
    } = ctx;
    let store_for_health = store.clone();
    let source = QueryEngine {
        engine: Arc::clone(&engine),
        store,
        options,
        alerts: Arc::clone(&alerts),
        health,
        remote: None,
        sql_slots: options.sql_slots(),
    };
    let gates = (Arc::clone(&engine), Arc::clone(&alerts));
    let api = Router::new()
        .route("/api/v1/slos", get(rest::list_slos))
        .route("/api/v1/slos/{name}", get(rest::get_slo))
        .route("/api/v1/slos/{name}/groups", get(rest::slo_groups))
        .route("/api/v1/slos/{name}/explain", get(rest::explain_slo))
        .route(
            "/api/v1/maintenance",
            get(rest::list_maintenance).post(rest::put_maintenance),
        )
        .route(
            "/api/v1/maintenance/{name}",
            axum::routing::delete(rest::delete_maintenance),
        )
        .with_state(Arc::clone(&engine))
        .route(
            "/api/v1/slos/{name}/series",
            get(rest::slo_series).with_state(source.clone()),
        )
        .route(
            "/api/v1/reload",
            post(rest::reload_slos).with_state((reload, Arc::new(auth.clone()))),
        )
        .route(
            "/api/v1/alerts",
            get(rest::list_alerts).with_state((
                Arc::clone(&engine),
                Arc::clone(&alerts),
                receivers,
            )),
        )
        .route(
            "/api/v1/slos/{name}/gate",
            get(rest::slo_gate).with_state(gates.clone()),
        )
        .route(
            "/api/v1/services/{service}/gate",
            get(rest::service_gate).with_state(gates),
        )
        .route(
            "/api/v1/sql",
            post(rest::run_sql).with_state(source.clone()),
        )
        .route(
            "/api/v1/alerts/history",
            get(rest::alert_history).with_state(source.clone()),
        )
        .nest("/prometheus", prometheus::routes(source.clone()));
    let api = with_tenant(api, auth.clone());
    Router::new()
        .route("/", get(rest::index))
        .route("/healthz", get(rest::healthz).with_state(store_for_health))
        .route("/readyz", get(rest::readyz).with_state(Arc::clone(&engine)))
        .route("/api/v1/openapi.json", get(rest::openapi))
        .route(
            "/metrics",
            get(metrics).with_state((
                registry,
                options.slo_series_in_metrics.then_some(source),
                Arc::new(auth.clone()),
            )),
        )
        .merge(api)
        .fallback(not_found)
}

/// `router` with each request's tenant resolved by `auth` (the `X-Scope-OrgID` header,
/// or the token's tenant) and handed to the handlers as an `Extension<Tenant>`; a request
/// `auth` refuses gets 401.
pub fn with_tenant(router: Router, auth: Auth) -> Router {
    router.layer(middleware::from_fn_with_state(Arc::new(auth), tenant))
}

async fn tenant(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    // A link (an alert's, the index page's) cannot carry a header: `?tenant=` names the
    // tenant when the header does not. With tokens the token decides, and a link for
    // another tenant is refused rather than answered for the token's.
    let asked = tenant_parameter(req.uri().query());
    let org_id = h
        .get(TENANT_HEADER)
        .map(|v| v.as_bytes())
        .or(asked.as_deref().map(str::as_bytes));
    let resolved = auth.tenant(h.get(header::AUTHORIZATION).map(|v| v.as_bytes()), org_id);
    match resolved {
        Ok(t) if asked.as_deref().is_some_and(|a| a != &*t) => ApiError::Unauthorized(format!(
            "this request's credentials are for tenant {:?}, not for tenant {:?}",
            &*t,
            asked.unwrap_or_default()
        ))
        .into_response(),
        Ok(t) => {
            req.extensions_mut().insert(t);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The `tenant` query parameter, decoded.
fn tenant_parameter(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.into_owned())
}

/// The OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/metrics`: slotel's own metrics, and with `api.slo_series_in_metrics` the SLO
/// series: every tenant's without tokens; with tokens, only those of the tenant whose
/// token the scrape presents (a scrape without one gets slotel's own metrics only).
async fn metrics(
    State((registry, slo_series, auth)): State<(Arc<Registry>, Option<QueryEngine>, Arc<Auth>)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &registry) {
        tracing::error!(error = %e, "Cannot encode the metrics.");
        return ApiError::Internal("cannot encode the metrics".into()).into_response();
    }
    let only = if auth.requires_token() {
        auth.tenant(
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            None,
        )
        .ok()
        .map(|t| t.to_string())
    } else {
        None
    };
    let slo_series = slo_series.filter(|_| !auth.requires_token() || only.is_some());
    if let Some(source) = slo_series {
        let series = exposition::slo_series(&source, only.as_deref()).await;
        // The SLO families go before the end marker.
        let end = body.rfind("# EOF").unwrap_or(body.len());
        body.insert_str(end, &series);
    }
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    resp
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use slotel_model::ManualClock;
    use slotel_proto::Tenant;
    use slotel_spec::parse_native;
    use tower::ServiceExt;

    fn app() -> Router {
        let engine = Engine::new(Arc::new(ManualClock::new(1_700_000_000_000_000_000)));
        let slos = "slos:\n  - name: a\n    service: s\n    objective: 99\n    window: 7d\n    sli: { spans: { good: { status: not_error } } }\n";
        engine.load(parse_native(std::path::Path::new("t.yaml"), slos).unwrap());
        router(ApiContext::new(Arc::new(engine)))
    }

    async fn get(app: Router, uri: &str, tenant: Option<&str>) -> (StatusCode, serde_json::Value) {
        let mut req = Request::get(uri);
        if let Some(t) = tenant {
            req = req.header(TENANT_HEADER, t);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn no_traffic_is_no_data() {
        let (status, body) = get(app(), "/api/v1/slos/a", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "a");
        assert_eq!(body["objective"], 99.0);
        assert_eq!(body["window"], "7d");
        assert_eq!(body["total_events"], 0);
        assert!(body["sli"].is_null());
        assert!(body["error_budget_remaining"].is_null());
        assert!(body["burn_rates"]["1h"].is_null());
        let keys: Vec<_> = body["burn_rates"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d"]);
    }

    #[tokio::test]
    async fn unknown_slo_and_other_tenants_get_404() {
        let (status, body) = get(app(), "/api/v1/slos/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body["error"],
            "no SLO named \"nope\" for tenant \"default\""
        );
        let (status, _) = get(app(), "/api/v1/slos/a", Some("team-b")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = get(app(), "/api/v1/slos", Some("team-b")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["slos"].as_array().unwrap().len(), 0);
        let (status, _) = get(app(), "/api/v1/slos", Some("bad tenant")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    fn spans(n: usize, bad: usize, now: u64, first: u64) -> slotel_proto::Batch {
        use slotel_proto::otlp::trace::v1::{Span, Status};
        let spans = (0..n)
            .map(|i| {
                let id = first + i as u64;
                Span {
                    trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
                    span_id: id.to_be_bytes().to_vec(),
                    start_time_unix_nano: now - 1,
                    end_time_unix_nano: now,
                    status: Some(Status {
                        code: if i < bad { 2 } else { 1 },
                        message: String::new(),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        slotel_proto::Batch::traces("default".into(), slotel_proto::traces_request("s", spans))
    }

    #[tokio::test]
    async fn release_gates_follow_the_budget_policy_and_firing_pages() {
        let now = 1_700_000_000_000_000_000u64;
        let engine = Arc::new(Engine::new(Arc::new(ManualClock::new(now as i64))));
        let slos = "slos:\n  - name: a\n    service: s\n    objective: 99\n    window: 7d\n    policy: { freeze_below: 0.5 }\n    sli: { spans: { good: { status: not_error } } }\n";
        engine.load(parse_native(std::path::Path::new("t.yaml"), slos).unwrap());
        let alerts: Arc<Mutex<Evaluator>> = Arc::default();
        let app = || {
            router(ApiContext {
                alerts: Arc::clone(&alerts),
                ..ApiContext::new(Arc::clone(&engine))
            })
        };
        let (status, body) = get(app(), "/api/v1/slos/a/gate", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["allowed"], true);
        assert_eq!(
            body["reasons"][0],
            "no traffic in the window: no data is not an outage"
        );

        // 6 bad of 1,000 on a 1% budget: 40% left, under the 50% threshold.
        engine.ingest(&spans(1000, 6, now, 1));
        let (_, body) = get(app(), "/api/v1/slos/a/gate", None).await;
        assert_eq!(body["allowed"], false);
        assert_eq!(
            body["reasons"][0],
            "40.0% of the error budget is left, below the freeze threshold of 50.0%"
        );
        assert_eq!(body["freeze_below"], 0.5);

        // A burst of errors fires the pages; the gate names them.
        engine.ingest(&spans(100, 100, now, 10_000));
        let (at, snapshot) = engine.burn_snapshot();
        alerts.lock().unwrap().evaluate(at, &snapshot);
        let (_, body) = get(app(), "/api/v1/slos/a/gate", None).await;
        assert_eq!(
            body["firing_pages"],
            serde_json::json!(["page-fast", "page-slow"])
        );
        let (status, body) = get(app(), "/api/v1/services/s/gate", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["allowed"], false);
        assert_eq!(body["slos"].as_array().unwrap().len(), 1);
        let (status, _) = get(app(), "/api/v1/services/nope/gate", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn tokens_are_required_when_configured() {
        let engine = Engine::new(Arc::new(ManualClock::new(0)));
        let auth = Auth::with_tokens([("t0k".to_string(), Tenant::from("default"))]);
        let app = router(ApiContext {
            auth,
            ..ApiContext::new(Arc::new(engine))
        });
        let (status, body) = get(app.clone(), "/api/v1/slos", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "missing or invalid bearer token");
        let req = Request::get("/api/v1/slos")
            .header("authorization", "Bearer t0k")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.clone().oneshot(req).await.unwrap().status(),
            StatusCode::OK
        );
        // Health and metrics stay open for probes and scrapers, and so does the index.
        let (status, _) = get(app.clone(), "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, index) = get(app.clone(), "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(index["name"], "slotel");
        assert_eq!(
            index["links"]["/prometheus"],
            "the Prometheus-compatible API: a Grafana data source URL"
        );
        let req = Request::get("/")
            .header("accept", "text/html,application/xhtml+xml")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        let page = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&page).contains("<a href=\"/api/v1/slos\">"));
    }

    #[tokio::test]
    async fn the_list_filters_and_sorts_and_the_series_steps_over_time() {
        let now = 1_700_000_040_000_000_000u64; // a minute boundary
        let engine = Arc::new(Engine::new(Arc::new(ManualClock::new(now as i64))));
        let slos = "slos:
  - { name: a, service: s, objective: 99, window: 1d, labels: { team: x }, sli: { spans: { good: { status: not_error } } } }
  - { name: b, service: s2, objective: 99, window: 1d, sli: { spans: { good: { status: not_error } } } }
  - { name: c, service: s, objective: 99, window: 1d, sli: { spans: { good: { status: not_error } } } }
";
        engine.load(parse_native(std::path::Path::new("t.yaml"), slos).unwrap());
        let min = 60_000_000_000u64;
        // a: 10 minutes ago 100 events, 1 bad; now 100 events, none bad.
        engine.ingest(&spans(100, 1, now - 10 * min, 1));
        engine.ingest(&spans(100, 0, now, 1000));
        let app = || router(ApiContext::new(Arc::clone(&engine)));
        let names = |body: &serde_json::Value| -> Vec<String> {
            body["slos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        };
        // c counts the same spans as a (service s); b has no data.
        let (_, body) = get(app(), "/api/v1/slos?service=s", None).await;
        assert_eq!(names(&body), ["a", "c"]);
        let (_, body) = get(app(), "/api/v1/slos?state=no_data", None).await;
        assert_eq!(names(&body), ["b"]);
        let (_, body) = get(app(), "/api/v1/slos?label=team=x", None).await;
        assert_eq!(names(&body), ["a"]);
        assert_eq!(body["slos"][0]["state"], "ok");
        let (_, body) = get(app(), "/api/v1/slos?sort=budget_remaining", None).await;
        assert_eq!(names(&body), ["a", "c", "b"]);
        let (status, _) = get(app(), "/api/v1/slos?sort=random", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let to = now / 1_000_000_000;
        let uri = format!(
            "/api/v1/slos/a/series?from={}&to={to}&step=5m",
            to - 20 * 60
        );
        let (status, body) = get(app(), &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["step_seconds"], 300);
        let points = body["points"].as_array().unwrap();
        let events: Vec<(u64, u64)> = points
            .iter()
            .map(|p| {
                (
                    p["good_events"].as_u64().unwrap(),
                    p["total_events"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(events, [(0, 0), (0, 0), (99, 100), (0, 0), (100, 100)]);
        let slis: Vec<Option<f64>> = points.iter().map(|p| p["sli"].as_f64()).collect();
        assert_eq!(slis, [None, None, Some(0.99), Some(0.99), Some(0.995)]);
        assert_eq!(points[4]["burn_rates"]["5m"], 0.0);
        let (status, _) = get(app(), "/api/v1/slos/nope/series", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(app(), "/api/v1/slos/a/series?from=0&to=1e11&step=1e8", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = get(app(), "/api/v1/slos/a/series?from=tomorrow", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
