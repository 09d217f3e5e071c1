//! Malformed protobuf on both transports gets a clear INVALID_ARGUMENT / 400, and the
//! server keeps serving and counting afterwards.

use std::marker::PhantomData;

use bytes::{Buf, BufMut};
use prost::Message;
use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use slotel_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use slotel_proto::otlp::trace::v1::Span;
use slotel_proto::rpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::harness::Server;

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

/// Bytes that are not a valid `ExportTraceServiceRequest`: field 1 (resource_spans)
/// claims 0x3fff bytes that are not there.
const GARBAGE: &[u8] = &[0x0a, 0xff, 0x7f, 0x01, 0x02];

pub fn request(spans: usize) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "GET /".into(),
            start_time_unix_nano: now - 1_000_000,
            end_time_unix_nano: now,
            ..Default::default()
        })
        .collect();
    slotel_proto::traces_request("api", spans)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_http_gets_400_and_the_server_keeps_serving() {
    let server = Server::start(SLOS);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/traces", server.otlp_http);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(GARBAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let status = rpc::Status::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, rpc::code::INVALID_ARGUMENT);
    assert!(
        status.message.starts_with("malformed OTLP protobuf: "),
        "{}",
        status.message
    );

    // A body that is not protobuf at all is refused for its content type.
    let resp = http
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // The next good request is accepted and counted.
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(request(3).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(reply.partial_success, None);
    let body = server.slo_when_total("api", 3).await;
    assert_eq!(body["total_events"], 3);
    assert_eq!(body["good_events"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_grpc_gets_invalid_argument_and_the_server_keeps_serving() {
    let server = Server::start(SLOS);
    let channel = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let err = raw
        .unary(
            tonic::Request::new(GARBAGE.to_vec()),
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                .parse()
                .unwrap(),
            RawCodec::<ExportTraceServiceResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with("malformed OTLP protobuf: "),
        "{}",
        err.message()
    );

    // An unknown method is UNIMPLEMENTED, as gRPC servers answer it.
    raw.ready().await.unwrap();
    let err = raw
        .unary(
            tonic::Request::new(Vec::new()),
            "/opentelemetry.proto.collector.trace.v1.TraceService/Nope"
                .parse()
                .unwrap(),
            RawCodec::<ExportTraceServiceResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");

    // The same connection still serves a good export, which is counted.
    let mut client = TraceServiceClient::new(channel);
    let reply = client.export(request(5)).await.unwrap().into_inner();
    assert_eq!(reply.partial_success, None);
    let body = server.slo_when_total("api", 5).await;
    assert_eq!(body["total_events"], 5);
}

/// Sends raw bytes as the request message; decodes the reply as `T`.
struct RawCodec<T>(PhantomData<fn() -> T>);

impl<T> Default for RawCodec<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Message + Default + Send + 'static> Codec for RawCodec<T> {
    type Encode = Vec<u8>;
    type Decode = T;
    type Encoder = RawEncoder;
    type Decoder = MessageDecoder<T>;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

struct MessageDecoder<T>(PhantomData<fn() -> T>);

impl<T: Message + Default> Decoder for MessageDecoder<T> {
    type Item = T;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<T>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        T::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}
