//! The OTLP/gRPC receiver: `TraceService`, `MetricsService` and `LogsService` `Export`,
//! served by axum over HTTP/2 with tonic's gRPC framing (gzip and zstd) and a codec that
//! reports malformed protobuf as `INVALID_ARGUMENT` (tonic's own says `INTERNAL`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Router, middleware};
use prost::Message;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::{Consumer, Tenant};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, UnaryService};

use crate::guard::{self, Guard};
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
    let mut accept = EnabledCompressionEncodings::default();
    accept.enable(CompressionEncoding::Gzip);
    accept.enable(CompressionEncoding::Zstd);
    let max = receiver.limits.max_decompressed_bytes;
    let mut grpc = Grpc::new(OtlpCodec::<S::Response, S>::default())
        .apply_compression_config(accept, EnabledCompressionEncodings::default())
        .apply_max_message_size_config(Some(max), None);
    let svc = Export { receiver };
    grpc.unary(svc, req)
        .await
        .map(axum::body::Body::new)
        .into_response()
}

struct Export<C> {
    receiver: Arc<Receiver<C>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send>>;

impl<C: Consumer, S: Signal> UnaryService<Frame<S>> for Export<C> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<Self::Response>>;

    fn call(&mut self, request: tonic::Request<Frame<S>>) -> Self::Future {
        let receiver = Arc::clone(&self.receiver);
        Box::pin(async move {
            let tenant = request
                .extensions()
                .get::<Tenant>()
                .cloned()
                .ok_or_else(|| tonic::Status::internal("no tenant"))?;
            let Frame { bytes, .. } = request.into_inner();
            let size = bytes.len();
            // The message (decompressed by tonic, within max_decompressed_bytes) holds
            // its bytes of the memory budget until the request ends.
            let mut held = receiver.budget.reservation();
            let reply = async {
                receiver.budget.reserve(&mut held, size)?;
                receiver
                    .accept::<S>(tenant, Body::Protobuf(bytes), size, Transport::Grpc)
                    .await
            }
            .await;
            drop(held);
            reply.map(tonic::Response::new).map_err(|r: Refusal| {
                if !matches!(r, Refusal::Stage(_)) {
                    // A stage's refusal is counted by the receiver.
                    receiver
                        .metrics
                        .refused_request(S::NAME, Transport::Grpc, r.reason());
                }
                r.to_grpc()
            })
        })
    }
}

/// A request message's bytes on the wire (after decompression), decoded by the receiver.
struct Frame<S> {
    bytes: bytes::Bytes,
    _signal: PhantomData<fn() -> S>,
}

/// A codec that encodes replies with prost and hands requests on as bytes: the receiver
/// checks (and if need be decodes) them, and reports malformed ones as `INVALID_ARGUMENT`.
struct OtlpCodec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for OtlpCodec<E, D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<E, D> Codec for OtlpCodec<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = Frame<D>;
    type Encoder = ProtoEncoder<E>;
    type Decoder = ProtoDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProtoEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

struct ProtoEncoder<E>(PhantomData<fn(E)>);

impl<E: Message> Encoder for ProtoEncoder<E> {
    type Item = E;
    type Error = tonic::Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the reply: {e}")))
    }
}

struct ProtoDecoder<D>(PhantomData<fn() -> D>);

impl<D: Message + Default> Decoder for ProtoDecoder<D> {
    type Item = Frame<D>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Frame<D>>, Self::Error> {
        // The frame's bytes are kept (without a copy where the buffer allows it) for
        // the log, which stores them as received.
        let len = bytes::Buf::remaining(src);
        Ok(Some(Frame {
            bytes: bytes::Buf::copy_to_bytes(src, len),
            _signal: PhantomData,
        }))
    }
}
