//! The log between ingest and compute: the [`Log`] contract (append on the ingest side,
//! read from a position on the compute side) and the [`Record`] it carries.
//!
//! A record is what a receiver acknowledged: the tenant, the signal, the receive time
//! and the request's validated OTLP protobuf bytes. The log gives each record a
//! position; compute applies records in log order and knows the position it has
//! applied, so a restart resumes exactly where the last checkpoint left off. The local
//! write-ahead log is the embedded implementation.

use std::future::Future;

use bytes::Bytes;
use prost::Message;

use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::{Batch, Payload, Result, Tenant};

/// Which OTLP signal a record holds, as the log numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SignalKind {
    /// An `ExportTraceServiceRequest`.
    Traces = 0,
    /// An `ExportMetricsServiceRequest`.
    Metrics = 1,
    /// An `ExportLogsServiceRequest`.
    Logs = 2,
}

impl SignalKind {
    /// The signal numbered `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Traces),
            1 => Some(Self::Metrics),
            2 => Some(Self::Logs),
            _ => None,
        }
    }
}

/// One record of the log, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Whose data this is.
    pub tenant: Tenant,
    /// What the body is.
    pub signal: SignalKind,
    /// When the request was received, in nanoseconds since the epoch: compute counts
    /// the record as of this time, whenever it applies it.
    pub received_nanos: i64,
    /// The request's validated protobuf bytes.
    pub body: Bytes,
}

/// A record read back with its place in the log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The record's position.
    pub offset: u64,
    /// The position after it: what has been applied once it is.
    pub next: u64,
    /// The record.
    pub record: Record,
}

/// A batch just appended to the log, handed to compute in memory as decoded so that
/// the live path does not read or decode it again.
#[derive(Debug)]
pub struct Logged {
    /// The record's position.
    pub offset: u64,
    /// The position after it.
    pub next: u64,
    /// The batch the record holds.
    pub batch: Batch,
}

impl Record {
    /// The batch this record holds, decoded; a body that does not decode is an
    /// [`crate::Error::Invalid`] (the receiver validated it, so it means damage).
    pub fn decode(&self) -> Result<Batch> {
        let invalid = |e: prost::DecodeError| crate::Error::Invalid(format!("log record: {e}"));
        let payload = match self.signal {
            // Compute reads trace bytes as they are (and refuses them there if damaged).
            SignalKind::Traces => Payload::Traces(self.body.clone()),
            SignalKind::Metrics => {
                Payload::Metrics(ExportMetricsServiceRequest::decode(&*self.body).map_err(invalid)?)
            }
            SignalKind::Logs => {
                Payload::Logs(ExportLogsServiceRequest::decode(&*self.body).map_err(invalid)?)
            }
        };
        Ok(Batch {
            tenant: Tenant::clone(&self.tenant),
            size_bytes: payload.held_bytes(self.body.len()),
            payload,
            raw: (self.signal != SignalKind::Traces).then(|| self.body.clone()),
            received_nanos: self.received_nanos,
        })
    }
}

/// The log between ingest and compute.
///
/// Positions are opaque and increase along the log; [`Log::append`] returns the
/// position after the record, which is what [`Log::read`] resumes from.
pub trait Log: Send + Sync + 'static {
    /// Appends a record of `body` and returns the position after it, once the record is
    /// durable by the log's policy. A full log refuses with [`crate::Error::Full`].
    fn append(
        &self,
        tenant: &str,
        signal: SignalKind,
        received_nanos: i64,
        body: &[u8],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The records from position `from` on, up to about `max_bytes` of them (at least one
    /// when there is one), in log order.
    fn read(&self, from: u64, max_bytes: usize) -> impl Future<Output = Result<Vec<Entry>>> + Send;

    /// The position the next record gets.
    fn end(&self) -> u64;

    /// Everything before `position` is checkpointed and need not be kept.
    fn release(&self, position: u64);
}
