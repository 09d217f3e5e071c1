//! The OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf` bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use slotel_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use slotel_proto::{Batch, Consumer};

use crate::Limits;
use crate::reply::Refusal;
use crate::tenant;

/// The OTLP/HTTP protobuf content type.
pub const PROTOBUF: &str = "application/x-protobuf";

/// The OTLP/HTTP routes, handing decoded batches to `next`.
pub fn router<C: Consumer>(next: Arc<C>, limits: Limits) -> Router {
    Router::new()
        .route("/v1/traces", post(traces::<C>))
        .layer(DefaultBodyLimit::max(limits.max_request_bytes))
        .with_state(next)
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(PROTOBUF))
}

async fn traces<C: Consumer>(
    State(next): State<Arc<C>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_protobuf(&headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type: send {PROTOBUF}"),
        )
            .into_response();
    }
    let tenant = match tenant::from_headers(&headers) {
        Ok(t) => t,
        Err(msg) => return Refusal::Invalid(msg).to_http(),
    };
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => {
            return Refusal::Invalid(format!("malformed OTLP protobuf: {e}")).to_http();
        }
    };
    match next.consume(Batch::traces(tenant, request)).await {
        Ok(()) => protobuf(ExportTraceServiceResponse::default().encode_to_vec()),
        Err(e) => Refusal::from(e).to_http(),
    }
}

fn protobuf(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    resp
}
