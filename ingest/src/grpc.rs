//! The OTLP/gRPC receiver: `TraceService`, `MetricsService` and `LogsService` `Export`,
//! served by axum over HTTP/2.
//!
//! A unary call carries one length-prefixed message (gRPC's framing), optionally gzip-
//! or zstd-compressed. The receiver reads it itself, as the HTTP receiver reads a body,
//! so that the memory budget holds every byte before it is buffered: the message as its
//! prefix declares it (at most `limits.max_request_bytes`), then its decompressed buffer
//! as it grows (at most `limits.max_decompressed_bytes`). Malformed protobuf is
//! `INVALID_ARGUMENT`; replies and refusals are encoded as tonic encodes them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Router, middleware};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use prost::Message;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::{Consumer, Tenant};

use crate::budget::Reserved;
use crate::guard::{self, Guard};
use crate::http::decompress;
use crate::metrics::Transport;
use crate::receiver::{Body, Receiver};
use crate::reply::Refusal;
use crate::signal::Signal;

/// The OTLP/gRPC routes, behind `guard`.
pub fn router<C: Consumer>(receiver: Arc<Receiver<C>>, guard: Guard) -> Router {
    Router::new()
        .route(
            ExportTraceServiceRequest::GRPC_PATH,
            post(export::<C, ExportTraceServiceRequest>),
        )
        .route(
            ExportMetricsServiceRequest::GRPC_PATH,
            post(export::<C, ExportMetricsServiceRequest>),
        )
        .route(
            ExportLogsServiceRequest::GRPC_PATH,
            post(export::<C, ExportLogsServiceRequest>),
        )
        .fallback(unimplemented)
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(receiver)
}

async fn unimplemented() -> Response {
    tonic::Status::unimplemented(
        "slotel serves the OTLP TraceService, MetricsService and LogsService",
    )
    .into_http::<axum::body::Body>()
}

async fn export<C: Consumer, S: Signal>(
    State(receiver): State<Arc<Receiver<C>>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Some(tenant) = parts.extensions.get::<Tenant>().cloned() else {
        return tonic::Status::internal("no tenant").into_http::<axum::body::Body>();
    };
    let result = async {
        // What the call holds, reserved from the memory budget before it is read and
        // given back when it ends.
        let mut held = receiver.budget.reservation();
        let message = read_message(&receiver, &parts.headers, body, &mut held).await?;
        let size = message.len();
        let reply = receiver
            .accept::<S>(
                tenant,
                Body::Protobuf(message),
                size,
                Transport::Grpc,
                &mut held,
            )
            .await;
        drop(held);
        reply
    }
    .await;
    match result {
        Ok(reply) => respond(&reply),
        Err(r) => {
            if !matches!(r, Refusal::Stage(_)) {
                // A stage's refusal is counted by the receiver.
                receiver
                    .metrics
                    .refused_request(S::NAME, Transport::Grpc, r.reason());
            }
            r.to_grpc().into_http::<axum::body::Body>()
        }
    }
}

/// gRPC's message prefix: a compressed flag and the message's length, big-endian.
const PREFIX: usize = 5;

/// The encodings a compressed message may use, as `grpc-accept-encoding` names them.
const ACCEPT_ENCODING: &str = "gzip,zstd";

/// Reads a unary call's one message, decompressed: its bytes are reserved into `held`
/// as the prefix declares them (before any but the first frame is buffered), and its
/// decompressed buffer as it grows ([`decompress`]).
async fn read_message<C>(
    receiver: &Receiver<C>,
    headers: &HeaderMap,
    mut body: axum::body::Body,
    held: &mut Reserved,
) -> Result<Bytes, Refusal> {
    let (budget, limits) = (&receiver.budget, &receiver.limits);
    let mut buf = BytesMut::new();
    // The prefix and the message, once the prefix is in.
    let mut whole = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refusal::Invalid(format!("cannot read the request: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // the request's trailers, which say nothing slotel reads
        };
        buf.extend_from_slice(&data);
        if whole.is_none() && buf.len() >= PREFIX {
            let len = u32::from_be_bytes(buf[1..PREFIX].try_into().expect("4 bytes")) as usize;
            if len > limits.max_request_bytes {
                return Err(Refusal::TooLarge(format!(
                    "the message of {len} bytes is larger than the limit of {} bytes",
                    limits.max_request_bytes
                )));
            }
            budget.reserve(held, PREFIX + len)?;
            buf.reserve((PREFIX + len).saturating_sub(buf.len()));
            whole = Some(PREFIX + len);
        }
        if whole.is_some_and(|n| buf.len() > n) {
            return Err(Refusal::Invalid(
                "a unary call carries one message; bytes follow it".to_string(),
            ));
        }
    }
    match whole {
        Some(n) if buf.len() == n => {}
        _ => {
            return Err(Refusal::Invalid(format!(
                "the call ends inside its message ({} bytes received)",
                buf.len()
            )));
        }
    }
    let compressed = match buf[0] {
        0 => false,
        1 => true,
        flag => {
            return Err(Refusal::Invalid(format!(
                "invalid gRPC message flag {flag}"
            )));
        }
    };
    let message = buf.freeze().slice(PREFIX..);
    if !compressed {
        return Ok(message);
    }
    let encoding = headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .filter(|e| !e.trim().eq_ignore_ascii_case("identity"))
        .ok_or_else(|| {
            Refusal::Invalid("a compressed message without grpc-encoding".to_string())
        })?;
    decompress(
        message,
        Some(encoding),
        limits.max_decompressed_bytes,
        &mut |n| budget.reserve(held, n),
    )
}

/// A successful call's response: the reply as one uncompressed message, and
/// `grpc-status: 0` in the trailers.
fn respond<M: Message>(reply: &M) -> Response {
    let len = reply.encoded_len();
    let mut frame = BytesMut::with_capacity(PREFIX + len);
    frame.put_u8(0);
    frame.put_u32(len as u32);
    reply
        .encode(&mut frame)
        .expect("the buffer holds the encoded length");
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let body = Full::new(frame.freeze()).with_trailers(async move { Some(Ok(trailers)) });
    let mut resp = axum::body::Body::new(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    resp
}
