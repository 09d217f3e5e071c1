//! The OTLP/gRPC receiver: `TraceService/Export`, served by axum over HTTP/2 with
//! tonic's gRPC framing and a codec that reports malformed protobuf as
//! `INVALID_ARGUMENT` (tonic's own codec says `INTERNAL`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use slotel_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use slotel_proto::{Batch, Consumer};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, UnaryService};

use crate::Limits;
use crate::reply::Refusal;
use crate::tenant;

/// The gRPC path of the OTLP trace export.
pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct Shared<C> {
    next: Arc<C>,
    limits: Limits,
}

/// The OTLP/gRPC routes, handing decoded batches to `next`.
pub fn router<C: Consumer>(next: Arc<C>, limits: Limits) -> Router {
    Router::new()
        .route(TRACE_EXPORT, post(export_traces::<C>))
        .fallback(unimplemented)
        .with_state(Arc::new(Shared { next, limits }))
}

async fn unimplemented() -> Response {
    tonic::Status::unimplemented("slotel serves the OTLP TraceService")
        .into_http::<axum::body::Body>()
}

async fn export_traces<C: Consumer>(
    State(shared): State<Arc<Shared<C>>>,
    req: Request,
) -> Response {
    let mut accept = EnabledCompressionEncodings::default();
    accept.enable(CompressionEncoding::Gzip);
    let mut grpc = Grpc::new(OtlpCodec::<
        ExportTraceServiceResponse,
        ExportTraceServiceRequest,
    >::default())
    .apply_compression_config(accept, EnabledCompressionEncodings::default())
    .apply_max_message_size_config(Some(shared.limits.max_request_bytes), None);
    let svc = TraceExport {
        next: Arc::clone(&shared.next),
    };
    grpc.unary(svc, req)
        .await
        .map(axum::body::Body::new)
        .into_response()
}

struct TraceExport<C> {
    next: Arc<C>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send>>;

impl<C: Consumer> UnaryService<ExportTraceServiceRequest> for TraceExport<C> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let next = Arc::clone(&self.next);
        Box::pin(async move {
            let (metadata, _, message) = request.into_parts();
            let headers = metadata.into_headers();
            let tenant =
                tenant::from_headers(&headers).map_err(|m| Refusal::Invalid(m).to_grpc())?;
            next.consume(Batch::traces(tenant, message))
                .await
                .map_err(|e| Refusal::from(e).to_grpc())?;
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        })
    }
}

/// A prost codec whose decode errors are `INVALID_ARGUMENT`.
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
    type Decode = D;
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
    type Item = D;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Self::Error> {
        D::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::invalid_argument(format!("malformed OTLP protobuf: {e}")))
    }
}
