//! The HTTP query API: SLO list and status as JSON, and the health check.
//!
//! Flow: handlers read the tenant from `X-Scope-OrgID` and ask the
//! [`slotel_compute::Engine`] for [`slotel_compute::SloStatus`]es.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use slotel_compute::{Engine, SloStatus};
use slotel_proto::{TENANT_HEADER, Tenant, parse_tenant};

/// The API routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/slos", get(list_slos))
        .route("/api/v1/slos/{name}", get(get_slo))
        .fallback(not_found)
        .with_state(engine)
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

fn tenant(headers: &HeaderMap) -> Result<Tenant, ApiError> {
    parse_tenant(headers.get(TENANT_HEADER).map(|v| v.as_bytes()))
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn list_slos(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = tenant(&headers)?;
    Ok(Json(json!({ "slos": engine.statuses(&t) })))
}

async fn get_slo(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<SloStatus>, ApiError> {
    let t = tenant(&headers)?;
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
        router(Arc::new(engine))
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
}
