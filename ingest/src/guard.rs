//! What every request passes before its handler: the concurrency cap, authentication
//! and tenant, and the request timeout. Refusals are answered in the request's protocol.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::gauge::Gauge;
use slotel_proto::TENANT_HEADER;
use slotel_proto::auth::{Auth, AuthError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{IngestMetrics, Transport};
use crate::reply::{Encoding, Refusal};

/// The guard's settings and state, shared by every request of one receiver.
#[derive(Debug, Clone)]
pub struct Guard {
    pub(crate) auth: Auth,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) timeout: Duration,
    pub(crate) transport: Transport,
    pub(crate) metrics: Arc<IngestMetrics>,
}

/// The encoding an HTTP request's error replies use: JSON when it sent JSON.
pub(crate) fn http_encoding(headers: &HeaderMap) -> Encoding {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with(crate::http::JSON));
    if json {
        Encoding::Json
    } else {
        Encoding::Protobuf
    }
}

/// The signal a request path is for, as a metrics label.
fn signal_of(path: &str) -> &'static str {
    if path.ends_with("traces") || path.contains("TraceService") {
        "traces"
    } else if path.ends_with("metrics") || path.contains("MetricsService") {
        "metrics"
    } else if path.ends_with("logs") || path.contains("LogsService") {
        "logs"
    } else {
        "unknown"
    }
}

impl Guard {
    fn refuse(&self, refusal: Refusal, path: &str, headers: &HeaderMap) -> Response {
        self.metrics
            .refused_request(signal_of(path), self.transport, refusal.reason());
        match self.transport {
            Transport::Grpc => refusal.to_grpc().into_http(),
            Transport::Http => refusal.to_http(http_encoding(headers)),
        }
    }
}

/// A concurrency permit, counted in the in-flight gauge while held.
struct InFlight {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
}

impl InFlight {
    fn new(permit: OwnedSemaphorePermit, gauge: &Gauge) -> Self {
        gauge.inc();
        Self {
            _permit: permit,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(guard, guard::check)`.
pub async fn check(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let Ok(permit) = Arc::clone(&guard.permits).try_acquire_owned() else {
        return guard.refuse(Refusal::Busy, req.uri().path(), req.headers());
    };
    let headers = req.headers();
    let tenant = guard.auth.tenant(
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        headers.get(TENANT_HEADER).map(|v| v.as_bytes()),
    );
    let tenant = match tenant {
        Ok(t) => t,
        Err(AuthError::Unauthenticated) => {
            return guard.refuse(Refusal::Unauthenticated, req.uri().path(), req.headers());
        }
        Err(AuthError::InvalidTenant(m)) => {
            return guard.refuse(Refusal::Invalid(m), req.uri().path(), req.headers());
        }
    };
    req.extensions_mut().insert(tenant);
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    // Released when the request ends, however it ends (a dropped connection included).
    let in_flight = InFlight::new(permit, &guard.metrics.in_flight);
    let resp = tokio::time::timeout(guard.timeout, next.run(req)).await;
    drop(in_flight);
    match resp {
        Ok(r) => r,
        Err(_) => guard.refuse(Refusal::Timeout, &path, &headers),
    }
}
