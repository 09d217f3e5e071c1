//! The types every slotel stage shares: the OTLP data model, the [`Batch`] that flows
//! from ingest to compute, and the [`Consumer`] contract each stage implements.
//!
//! Flow: a receiver decodes an OTLP request into a [`Batch`] and hands it to the next
//! [`Consumer`] (the buffer, then compute). A consumer either takes the batch or refuses
//! it with an [`Error`] that says whether the sender may retry.

#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod error;
pub mod log;
pub mod rpc;
pub mod wire;

use std::future::Future;

pub use error::{Error, Result};
/// The generated OTLP types (`collector`, `common`, `resource`, `trace`, `metrics`, `logs`).
pub use opentelemetry_proto::tonic as otlp;

use otlp::collector::logs::v1::ExportLogsServiceRequest;
use otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp::collector::trace::v1::ExportTraceServiceRequest;

/// The tenant a batch belongs to. Cheap to clone.
pub type Tenant = std::sync::Arc<str>;

/// The tenant used when a request names none.
pub use slotel_model::DEFAULT_TENANT;

/// The HTTP header (and gRPC metadata key) naming the tenant, as Mimir, Tempo and Loki
/// use it.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The tenant named by a `X-Scope-OrgID` value, or [`DEFAULT_TENANT`] without one. A
/// tenant is 1 to 128 letters, digits, `-`, `_`, `.` or `:`; anything else is an error
/// message for the client.
pub fn parse_tenant(header: Option<&[u8]>) -> std::result::Result<Tenant, String> {
    let Some(raw) = header else {
        return Ok(Tenant::from(DEFAULT_TENANT));
    };
    let valid = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'));
    match std::str::from_utf8(raw) {
        Ok(s) if valid => Ok(Tenant::from(s)),
        _ => Err(format!(
            "invalid {TENANT_HEADER} header: a tenant is 1 to 128 letters, digits, '-', '_', '.' or ':'"
        )),
    }
}

/// About how many bytes of memory a decoded OTLP request takes per byte of its
/// encoding: what the memory budget reserves before a request is decoded, and what the
/// queue to compute counts for a decoded batch.
pub const DECODED_FACTOR: usize = 3;

/// One decoded OTLP request, as it travels from ingest to compute.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Whose data this is.
    pub tenant: Tenant,
    /// The decoded request.
    pub payload: Payload,
    /// The memory the batch holds, in bytes, as the queue to compute counts it against
    /// its limit: a trace payload's bytes, or [`Payload::held_bytes`] of a decoded
    /// request's encoded size.
    pub size_bytes: usize,
    /// The request's protobuf bytes when they are at hand and say exactly what a
    /// decoded `payload` holds (received as protobuf and not changed by validation): the
    /// log stores them as they are instead of encoding `payload` again. Traces are
    /// bytes already and leave this unset.
    pub raw: Option<bytes::Bytes>,
    /// When the request was received (nanoseconds since the epoch); 0 when not known,
    /// and compute then counts it as of its own clock.
    pub received_nanos: i64,
}

/// The signal a [`Batch`] carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// An OTLP `ExportTraceServiceRequest` as its protobuf bytes, which compute reads
    /// with [`wire::scan_traces`] without decoding them: as received when the receiver's
    /// checks changed nothing, else the checked request encoded again.
    Traces(bytes::Bytes),
    /// An OTLP `ExportMetricsServiceRequest`.
    Metrics(ExportMetricsServiceRequest),
    /// An OTLP `ExportLogsServiceRequest`.
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    /// The memory this payload holds when its request's encoding is `encoded` bytes: a
    /// trace payload is those bytes, a decoded request about [`DECODED_FACTOR`] times
    /// them.
    pub fn held_bytes(&self, encoded: usize) -> usize {
        match self {
            Payload::Traces(body) => body.len(),
            Payload::Metrics(_) | Payload::Logs(_) => encoded.saturating_mul(DECODED_FACTOR),
        }
    }
}

impl Batch {
    /// A batch of traces for `tenant`, `request` encoded.
    pub fn traces(tenant: Tenant, request: ExportTraceServiceRequest) -> Self {
        use prost::Message;
        Self::trace_bytes(tenant, bytes::Bytes::from(request.encode_to_vec()))
    }

    /// A batch of traces for `tenant` from the protobuf bytes of an
    /// `ExportTraceServiceRequest`.
    pub fn trace_bytes(tenant: Tenant, body: bytes::Bytes) -> Self {
        Self {
            tenant,
            size_bytes: body.len(),
            payload: Payload::Traces(body),
            raw: None,
            received_nanos: 0,
        }
    }

    /// The signal of the payload.
    pub fn signal(&self) -> log::SignalKind {
        match &self.payload {
            Payload::Traces(_) => log::SignalKind::Traces,
            Payload::Metrics(_) => log::SignalKind::Metrics,
            Payload::Logs(_) => log::SignalKind::Logs,
        }
    }

    /// The payload's protobuf bytes: `raw` when set (no copy), else the payload encoded.
    pub fn encoded(&self) -> bytes::Bytes {
        use prost::Message;
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        bytes::Bytes::from(match &self.payload {
            Payload::Traces(body) => return body.clone(),
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
        })
    }

    /// The number of items (spans, data points or log records) in the batch.
    pub fn item_count(&self) -> usize {
        match &self.payload {
            Payload::Traces(body) => wire::span_count(body),
            Payload::Metrics(req) => data_point_count(req),
            Payload::Logs(req) => log_record_count(req),
        }
    }
}

/// An export request of `spans` from one service (its `service.name` resource
/// attribute), in one scope: the shape most tests and tools need.
pub fn traces_request(
    service: &str,
    spans: Vec<otlp::trace::v1::Span>,
) -> ExportTraceServiceRequest {
    use otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
    use otlp::resource::v1::Resource;
    use otlp::trace::v1::{ResourceSpans, ScopeSpans};
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Spans in a trace export.
pub fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum()
}

/// Log records in a logs export.
pub fn log_record_count(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|rl| rl.scope_logs.iter())
        .map(|sl| sl.log_records.len())
        .sum()
}

/// Data points in a metrics export (a histogram or summary point counts once).
pub fn data_point_count(req: &ExportMetricsServiceRequest) -> usize {
    use otlp::metrics::v1::metric::Data;
    req.resource_metrics
        .iter()
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter())
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

/// A stage that takes batches: the buffer, compute, or anything in between.
///
/// `consume` takes the batch by value. Returning `Ok` means the stage owns the batch
/// now (for a durable stage: it will not be lost); an error says whether the sender
/// may retry ([`Error::is_retryable`]).
pub trait Consumer: Send + Sync + 'static {
    /// Takes one batch.
    fn consume(&self, batch: Batch) -> impl Future<Output = Result<()>> + Send;

    /// Flushes what the stage holds and stops taking batches.
    fn shutdown(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}
