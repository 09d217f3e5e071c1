//! The three OTLP signals behind one trait, so that both transports run one code path:
//! decode, validate (partial success), hand off, reply.

use bytes::Bytes;
use slotel_proto::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use slotel_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use slotel_proto::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use slotel_proto::{Batch, Payload, Tenant};

use crate::reply::Refusal;
use crate::validate::{self, Checked, ItemLimits};

/// Reserves bytes of the memory budget for the request being read, or refuses.
pub type Reserve<'a> = dyn FnMut(usize) -> Result<(), Refusal> + 'a;

fn malformed(e: impl std::fmt::Display) -> Refusal {
    Refusal::Invalid(format!("malformed OTLP protobuf: {e}"))
}

/// A checked request, ready to become a batch.
#[derive(Debug)]
pub struct Accepted {
    /// What the batch carries.
    pub payload: Payload,
    /// The protobuf bytes as received, when they say exactly what a decoded `payload`
    /// holds (see [`slotel_proto::Batch::raw`]).
    pub raw: Option<Bytes>,
    /// Items in the request as received.
    pub items: u64,
    /// What checking found.
    pub checked: Checked,
}

impl Accepted {
    /// The batch handed to the next stage, of a request whose encoding was `size_bytes`.
    pub fn into_batch(self, tenant: Tenant, size_bytes: usize, received_nanos: i64) -> Batch {
        Batch {
            tenant,
            size_bytes: self.payload.held_bytes(size_bytes),
            payload: self.payload,
            raw: self.raw,
            received_nanos,
        }
    }
}

/// An OTLP export request type.
pub trait Signal:
    prost::Message + Default + serde::de::DeserializeOwned + Send + Sync + 'static
{
    /// Its reply.
    type Response: prost::Message + serde::Serialize + Default + Send + 'static;
    /// `traces`, `metrics` or `logs`, as in metrics labels and paths.
    const NAME: &'static str;
    /// What its items are called in messages: `spans`, `data points`, `log records`.
    const ITEMS: &'static str;
    /// The gRPC method path.
    const GRPC_PATH: &'static str;
    /// The OTLP/HTTP path.
    const HTTP_PATH: &'static str;

    /// Items in the request.
    fn item_count(&self) -> usize;
    /// Removes items the server refuses, truncates oversized attributes.
    fn check(&mut self, now_nanos: u64, limits: &ItemLimits) -> Checked;
    /// The request as the payload of a batch.
    fn into_payload(self) -> Payload;

    /// Checks a request received as protobuf `body`: the payload of its batch, what
    /// checking found, and the items it had. The memory a decoded request takes is
    /// reserved with `reserve` before it is decoded. A refusal says why the bytes do not
    /// decode, or that the budget cannot take them.
    fn from_protobuf(
        body: Bytes,
        now_nanos: u64,
        limits: &ItemLimits,
        reserve: &mut Reserve<'_>,
    ) -> Result<Accepted, Refusal> {
        reserve(body.len().saturating_mul(slotel_proto::DECODED_FACTOR))?;
        let mut request = Self::decode(&*body).map_err(malformed)?;
        let items = request.item_count() as u64;
        let checked = request.check(now_nanos, limits);
        // What checking changed must be encoded again; the rest goes as received.
        let raw = (!checked.changed()).then_some(body);
        Ok(Accepted {
            payload: request.into_payload(),
            raw,
            items,
            checked,
        })
    }

    /// Checks a decoded request (OTLP/JSON).
    fn checked(mut self, now_nanos: u64, limits: &ItemLimits) -> Accepted
    where
        Self: Sized,
    {
        let items = self.item_count() as u64;
        let checked = self.check(now_nanos, limits);
        Accepted {
            payload: self.into_payload(),
            raw: None,
            items,
            checked,
        }
    }

    /// A reply; with `rejected > 0` it carries a partial success.
    fn response(rejected: u64, message: String) -> Self::Response;
}

impl Signal for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const NAME: &'static str = "traces";
    const ITEMS: &'static str = "spans";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const HTTP_PATH: &'static str = "/v1/traces";

    fn item_count(&self) -> usize {
        slotel_proto::span_count(self)
    }

    fn check(&mut self, now_nanos: u64, limits: &ItemLimits) -> Checked {
        validate::traces(self, now_nanos, limits)
    }

    fn into_payload(self) -> Payload {
        Payload::Traces(Bytes::from(prost::Message::encode_to_vec(&self)))
    }

    /// The wire scanner checks the bytes; only a request that checking changes (spans
    /// refused, attributes cut) is decoded, changed and encoded again.
    fn from_protobuf(
        body: Bytes,
        now_nanos: u64,
        limits: &ItemLimits,
        reserve: &mut Reserve<'_>,
    ) -> Result<Accepted, Refusal> {
        let (items, checked) =
            validate::trace_bytes(&body, now_nanos, limits).map_err(malformed)?;
        if checked.changed() {
            reserve(body.len().saturating_mul(slotel_proto::DECODED_FACTOR))?;
            let mut request = <Self as prost::Message>::decode(&*body).map_err(malformed)?;
            let again = validate::traces(&mut request, now_nanos, limits);
            debug_assert_eq!(again, checked);
            return Ok(Accepted {
                payload: request.into_payload(),
                raw: None,
                items,
                checked,
            });
        }
        Ok(Accepted {
            payload: Payload::Traces(body),
            raw: None,
            items,
            checked,
        })
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: message,
            }),
        }
    }
}

impl Signal for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const NAME: &'static str = "metrics";
    const ITEMS: &'static str = "data points";
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const HTTP_PATH: &'static str = "/v1/metrics";

    fn item_count(&self) -> usize {
        slotel_proto::data_point_count(self)
    }

    fn check(&mut self, now_nanos: u64, limits: &ItemLimits) -> Checked {
        validate::metrics(self, now_nanos, limits)
    }

    fn into_payload(self) -> Payload {
        Payload::Metrics(self)
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message: message,
            }),
        }
    }
}

impl Signal for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const NAME: &'static str = "logs";
    const ITEMS: &'static str = "log records";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const HTTP_PATH: &'static str = "/v1/logs";

    fn item_count(&self) -> usize {
        slotel_proto::log_record_count(self)
    }

    fn check(&mut self, now_nanos: u64, limits: &ItemLimits) -> Checked {
        validate::logs(self, now_nanos, limits)
    }

    fn into_payload(self) -> Payload {
        Payload::Logs(self)
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: message,
            }),
        }
    }
}
