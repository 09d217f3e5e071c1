//! The HTTP query API: SLO list and status as JSON, slotel's own metrics, and the health
//! check.
//!
//! Flow: a middleware resolves the caller's tenant (bearer token or `X-Scope-OrgID`,
//! through [`slotel_proto::auth::Auth`]); handlers ask the [`slotel_compute::Engine`]
//! for that tenant's [`slotel_compute::SloStatus`]es. `/metrics` encodes the shared
//! Prometheus registry.

pub mod error;
pub mod source;
pub mod sql;
pub mod store;

pub mod exposition;
pub mod prometheus;
pub mod promql;

pub use source::{ApiOptions, QueryEngine};

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use prometheus_client::registry::Registry;
use serde_json::json;
use slotel_compute::alert::Evaluator;
use slotel_compute::gate::{self, Gate};
use slotel_compute::maintenance::MaintenanceWindow;
use slotel_compute::{Engine, SloStatus};
use slotel_proto::auth::{Auth, AuthError};
use slotel_proto::{TENANT_HEADER, Tenant};
use std::sync::Mutex;

/// Reloads the SLO files: the number of SLOs loaded, or every problem found.
pub type Reload = Arc<dyn Fn() -> Result<usize, String> + Send + Sync>;

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
    pub store: Option<Arc<store::Store>>,
    /// The API's settings.
    pub options: ApiOptions,
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
    } = ctx;
    let source = QueryEngine {
        engine: Arc::clone(&engine),
        store,
        options,
    };
    let api = Router::new()
        .route("/api/v1/slos", get(list_slos))
        .route("/api/v1/slos/{name}", get(get_slo))
        .with_state(Arc::clone(&engine))
        .route("/api/v1/reload", post(reload_slos).with_state(reload))
        .route(
            "/api/v1/alerts",
            get(list_alerts).with_state(Arc::clone(&alerts)),
        )
        .route(
            "/api/v1/slos/{name}/gate",
            get(slo_gate).with_state((Arc::clone(&engine), Arc::clone(&alerts))),
        )
        .route(
            "/api/v1/services/{service}/gate",
            get(service_gate).with_state((Arc::clone(&engine), alerts)),
        )
        .route(
            "/api/v1/maintenance",
            get(list_maintenance)
                .post(put_maintenance)
                .with_state(Arc::clone(&engine)),
        )
        .route(
            "/api/v1/maintenance/{name}",
            axum::routing::delete(delete_maintenance).with_state(Arc::clone(&engine)),
        )
        .route("/api/v1/sql", post(run_sql).with_state(source.clone()))
        .nest("/prometheus", prometheus::routes(source.clone()))
        .layer(middleware::from_fn_with_state(Arc::new(auth), tenant));
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/metrics",
            get(metrics).with_state((registry, options.slo_series_in_metrics.then_some(source))),
        )
        .merge(api)
        .fallback(not_found)
}

/// An API error: a status code and a JSON body `{"status": "error", "error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "status": "error", "error": self.message })),
        )
            .into_response()
    }
}

async fn tenant(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    let resolved = auth.tenant(
        h.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        h.get(TENANT_HEADER).map(|v| v.as_bytes()),
    );
    match resolved {
        Ok(t) => {
            req.extensions_mut().insert(t);
            next.run(req).await
        }
        Err(e @ AuthError::Unauthenticated) => {
            ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()).into_response()
        }
        Err(AuthError::InvalidTenant(m)) => {
            ApiError::new(StatusCode::BAD_REQUEST, m).into_response()
        }
    }
}

/// The OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(
    State((registry, slo_series)): State<(Arc<Registry>, Option<QueryEngine>)>,
) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &registry) {
        tracing::error!(error = %e, "Cannot encode the metrics.");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        )
        .into_response();
    }
    if let Some(source) = slo_series {
        let series = exposition::slo_series(&source).await;
        // The SLO families go before the end marker.
        let end = body.rfind("# EOF").unwrap_or(body.len());
        body.insert_str(end, &series);
    }
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    resp
}

/// `POST /api/v1/sql` with `{"query": "..."}`: JSON rows, or an Arrow IPC stream when
/// the `Accept` header asks for `application/vnd.apache.arrow.stream`.
async fn run_sql(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    headers: axum::http::HeaderMap,
    Json(body): Json<SqlRequest>,
) -> Response {
    let arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    let batches = match source.sql(&t, &body.query).await {
        Ok(b) => b,
        Err(e) => {
            let status = match e {
                sql::SqlError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
                _ => StatusCode::BAD_REQUEST,
            };
            return ApiError::new(status, e.to_string()).into_response();
        }
    };
    let (body, content_type) = if arrow {
        (sql::to_arrow_ipc(&batches), ARROW_STREAM)
    } else {
        (sql::to_json(&batches), "application/json")
    };
    match body {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The Arrow IPC stream media type.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The body of `POST /api/v1/sql`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn reload_slos(
    State(reload): State<Option<Reload>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reload =
        reload.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "reload is not available"))?;
    // Reading and parsing files blocks: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || reload())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match result {
        Ok(n) => Ok(Json(json!({ "status": "ok", "slos": n }))),
        Err(problems) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the SLO files are invalid; the previous SLOs stay loaded:\n{problems}"),
        )),
    }
}

async fn list_alerts(
    State(alerts): State<Arc<Mutex<Evaluator>>>,
    Extension(t): Extension<Tenant>,
) -> Json<serde_json::Value> {
    let active = alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active(Some(&t));
    Json(json!({ "alerts": active }))
}

async fn list_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
) -> Json<serde_json::Value> {
    Json(json!({ "maintenance": engine.maintenance().list(&t) }))
}

/// Adds or replaces a window of the caller's tenant (a tenant in the body is ignored).
async fn put_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    Json(mut window): Json<MaintenanceWindow>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    window.tenant = t.to_string();
    engine
        .maintenance()
        .put(window.clone())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(window))
}

async fn delete_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if engine.maintenance().remove(&t, &name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no maintenance window named {name:?} for tenant {:?}", &*t),
        ))
    }
}

type GateState = (Arc<Engine>, Arc<Mutex<Evaluator>>);

async fn slo_gate(
    State((engine, alerts)): State<GateState>,
    Extension(t): Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<Json<Gate>, ApiError> {
    let status = engine
        .status(&t, &name)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let active = alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active(Some(&t));
    Ok(Json(gate::decide(&status, &active)))
}

async fn service_gate(
    State((engine, alerts)): State<GateState>,
    Extension(t): Extension<Tenant>,
    Path(service): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let statuses: Vec<SloStatus> = engine
        .statuses(&t)
        .into_iter()
        .filter(|s| s.service == service)
        .collect();
    if statuses.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no SLO of service {service:?} for tenant {:?}", &*t),
        ));
    }
    let active = alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active(Some(&t));
    let gates: Vec<Gate> = statuses.iter().map(|s| gate::decide(s, &active)).collect();
    let allowed = gates.iter().all(|g| g.allowed);
    Ok(Json(
        json!({ "service": service, "allowed": allowed, "slos": gates }),
    ))
}

async fn list_slos(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
) -> Json<serde_json::Value> {
    Json(json!({ "slos": engine.statuses(&t) }))
}

async fn get_slo(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<Json<SloStatus>, ApiError> {
    engine
        .status(&t, &name)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use slotel_compute::{ManualClock, spec::parse_native};
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
        // Health and metrics stay open for probes and scrapers.
        let (status, _) = get(app, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
    }
}
