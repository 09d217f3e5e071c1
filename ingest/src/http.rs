//! The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf or
//! JSON bodies, optionally gzip- or zstd-compressed, and CORS for browser SDKs.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router, middleware};
use bytes::Buf;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::{Consumer, Tenant};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::guard::{self, Guard};
use crate::metrics::Transport;
use crate::receiver::{Body, Receiver};
use crate::reply::{Encoding, Refusal};
use crate::signal::Signal;

/// The OTLP/HTTP protobuf content type.
pub const PROTOBUF: &str = "application/x-protobuf";
/// The OTLP/HTTP JSON content type.
pub const JSON: &str = "application/json";

/// The OTLP/HTTP routes, behind `guard`, with CORS for `cors_origins` (`*` for any).
pub fn router<C: Consumer>(
    receiver: Arc<Receiver<C>>,
    guard: Guard,
    cors_origins: &[String],
) -> Router {
    let router = Router::new()
        .route(
            ExportTraceServiceRequest::HTTP_PATH,
            post(export::<C, ExportTraceServiceRequest>),
        )
        .route(
            ExportMetricsServiceRequest::HTTP_PATH,
            post(export::<C, ExportMetricsServiceRequest>),
        )
        .route(
            ExportLogsServiceRequest::HTTP_PATH,
            post(export::<C, ExportLogsServiceRequest>),
        )
        // The handler reads the body itself, with the limit, to answer in OTLP's format.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(receiver);
    if cors_origins.is_empty() {
        return router;
    }
    let origins = if cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    router.layer(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::AUTHORIZATION,
                header::HeaderName::from_static(slotel_proto::TENANT_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// The body encoding named by `Content-Type`.
fn encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if ct.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Encoding::Protobuf)
    } else if ct.eq_ignore_ascii_case(JSON) {
        Ok(Encoding::Json)
    } else {
        Err(Refusal::Unsupported(format!(
            "unsupported content type {ct:?}: send {PROTOBUF} or {JSON}"
        )))
    }
}

/// Decompresses `body` as `encoding` says (`Content-Encoding`, or gRPC's
/// `grpc-encoding`; none is the body as it is), reading at most `max` bytes of output: a
/// decompression bomb is refused after `max + 1` bytes, whatever it claims. The
/// output's memory is reserved with `reserve` (the memory budget) before it is
/// allocated: as the stream declares its size (gzip's trailer, zstd's frame header),
/// else [`DECOMPRESS_CHUNK`] first and then as much again as it holds each time it is
/// full. A refusal of `reserve` ends the decompression.
pub fn decompress(
    body: Bytes,
    encoding: Option<&str>,
    max: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), Refusal>,
) -> Result<Bytes, Refusal> {
    let encoding = encoding.map(|v| v.trim().to_ascii_lowercase());
    // The decoder, and the size the stream declares when it does.
    let (reader, declared): (Box<dyn Read>, Option<u64>) = match encoding.as_deref() {
        None | Some("" | "identity") => return Ok(body),
        Some("gzip" | "x-gzip") => {
            let declared = gzip_size(&body);
            (
                Box::new(flate2::read::MultiGzDecoder::new(body.reader())),
                declared,
            )
        }
        Some("zstd") => {
            let declared = zstd::zstd_safe::get_frame_content_size(&body)
                .ok()
                .flatten();
            let decoder = zstd::stream::read::Decoder::new(body.reader())
                .map_err(|e| Refusal::Invalid(format!("invalid zstd body: {e}")))?;
            (Box::new(decoder), declared)
        }
        Some(other) => {
            return Err(Refusal::Unsupported(format!(
                "unsupported content encoding {other:?}: send gzip, zstd or none"
            )));
        }
    };
    let too_large = || {
        Refusal::TooLarge(format!(
            "the decompressed body is larger than the limit of {max} bytes"
        ))
    };
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    // One byte past the declared size, so that the end is found without growing.
    let first = declared.map_or(DECOMPRESS_CHUNK, |n| n as usize + 1);
    let mut reader = reader.take(max as u64 + 1);
    let mut out = Vec::new();
    loop {
        if out.len() == out.capacity() {
            let grow = if out.capacity() == 0 {
                first
            } else {
                out.capacity().max(DECOMPRESS_CHUNK)
            };
            let grow = grow.min(max + 1 - out.len());
            reserve(grow)?;
            out.reserve_exact(grow);
        }
        let room = out.capacity() - out.len();
        let read = (&mut reader)
            .take(room as u64)
            .read_to_end(&mut out)
            .map_err(|e| Refusal::Invalid(format!("cannot decompress the body: {e}")))?;
        if out.len() > max {
            return Err(too_large());
        }
        if read < room {
            break;
        }
    }
    Ok(Bytes::from(out))
}

/// The size a gzip body declares in its (last member's) trailer: a hint, as it is the
/// size modulo 2^32 and says nothing of earlier members.
fn gzip_size(body: &[u8]) -> Option<u64> {
    if body.len() < 18 || body[..2] != [0x1f, 0x8b] {
        return None;
    }
    let trailer: [u8; 4] = body[body.len() - 4..].try_into().ok()?;
    Some(u64::from(u32::from_le_bytes(trailer)))
}

/// How much decompressed output is reserved from the memory budget at a time.
pub const DECOMPRESS_CHUNK: usize = 1 << 20;

/// The body's length as its `Content-Length` declares it.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads at most `max` bytes of body; a larger one (declared or sent) is refused.
async fn read_body(
    body: axum::body::Body,
    headers: &HeaderMap,
    max: usize,
) -> Result<Bytes, Refusal> {
    let too_large =
        || Refusal::TooLarge(format!("the body is larger than the limit of {max} bytes"));
    if declared_length(headers).is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let is_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large()
        } else {
            Refusal::Invalid(format!("cannot read the body: {e}"))
        }
    })
}

/// The request as the receiver takes it: protobuf as bytes (the receiver checks and, if
/// need be, decodes them), JSON decoded.
fn decode<S: Signal>(body: Bytes, encoding: Encoding) -> Result<Body<S>, Refusal> {
    match encoding {
        Encoding::Protobuf => Ok(Body::Protobuf(body)),
        Encoding::Json => serde_json::from_slice(&body)
            .map(Body::Decoded)
            .map_err(|e| Refusal::Invalid(format!("malformed OTLP/JSON: {e}"))),
    }
}

fn encode<M: prost::Message + serde::Serialize>(reply: &M, encoding: Encoding) -> Response {
    let body = match encoding {
        Encoding::Protobuf => reply.encode_to_vec(),
        // Unset fields (a full success has no partialSuccess) are left out, not null.
        Encoding::Json => match serde_json::to_value(reply) {
            Ok(serde_json::Value::Object(mut fields)) => {
                fields.retain(|_, v| !v.is_null());
                serde_json::to_vec(&fields).unwrap_or_else(|_| b"{}".to_vec())
            }
            _ => b"{}".to_vec(),
        },
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

async fn export<C: Consumer, S: Signal>(
    State(receiver): State<Arc<Receiver<C>>>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let enc = match encoding(&headers) {
        Ok(e) => e,
        // A client that sent neither encoding reads the refusal best as JSON.
        Err(r) => return refuse::<C, S>(&receiver, r, Encoding::Json),
    };
    let result = async {
        // What the request holds, reserved from the memory budget before it is read and
        // given back when it ends: the body as it declares it (or the most it may be),
        // its decompressed bytes, and the structures decoded from JSON.
        let (budget, limits) = (&receiver.budget, &receiver.limits);
        let mut held = budget.reservation();
        let declared = declared_length(&headers).map_or(limits.max_request_bytes, |n| {
            n.min(limits.max_request_bytes as u64) as usize
        });
        budget.reserve(&mut held, declared)?;
        let body = read_body(body, &headers, limits.max_request_bytes).await?;
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let body = decompress(body, encoding, limits.max_decompressed_bytes, &mut |n| {
            budget.reserve(&mut held, n)
        })?;
        if enc == Encoding::Json {
            budget.reserve(
                &mut held,
                body.len().saturating_mul(slotel_proto::DECODED_FACTOR),
            )?;
        }
        let size = body.len();
        let request = decode::<S>(body, enc)?;
        let reply = receiver
            .accept(tenant, request, size, Transport::Http, &mut held)
            .await;
        drop(held);
        reply
    }
    .await;
    match result {
        Ok(reply) => encode(&reply, enc),
        Err(r) => {
            if matches!(r, Refusal::Stage(_)) {
                r.to_http(enc) // counted by the receiver
            } else {
                refuse::<C, S>(&receiver, r, enc)
            }
        }
    }
}

fn refuse<C, S: Signal>(receiver: &Receiver<C>, r: Refusal, enc: Encoding) -> Response {
    receiver
        .metrics
        .refused_request(S::NAME, Transport::Http, r.reason());
    r.to_http(enc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::IngestMetrics;
    use crate::{IngestConfig, receivers};
    use axum::http::Request;
    use slotel_proto::Batch;
    use tower::ServiceExt;

    struct Sink;

    impl Consumer for Sink {
        async fn consume(&self, _batch: Batch) -> slotel_proto::Result<()> {
            Ok(())
        }
    }

    fn app(origins: &[&str]) -> Router {
        let config = IngestConfig {
            cors_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..IngestConfig::default()
        };
        receivers(
            Arc::new(Sink),
            &config,
            Arc::new(IngestMetrics::default()),
            Arc::new(slotel_model::SystemClock),
        )
        .http
    }

    fn preflight(origin: &str) -> Request<axum::body::Body> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/traces")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-scope-orgid",
            )
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn cors_preflight_for_configured_origins_only() {
        let resp = app(&["https://app.example.com"])
            .oneshot(preflight("https://app.example.com"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "POST");
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("x-scope-orgid"), "{allowed}");

        let resp = app(&["https://app.example.com"])
            .oneshot(preflight("https://evil.example.com"))
            .await
            .unwrap();
        assert!(
            resp.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );

        // Off by default: no CORS headers at all.
        let resp = app(&[])
            .oneshot(preflight("https://app.example.com"))
            .await
            .unwrap();
        assert!(
            resp.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_browser_post_gets_the_allow_origin_header() {
        let req = Request::post("/v1/traces")
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::CONTENT_TYPE, JSON)
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let resp = app(&["*"]).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}
