//! Ingest's own metrics, exported on `/metrics` in the Prometheus text format.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::validate::Checked;

/// Distinct tenants labelled in metrics; the rest are counted as `__other__`, so that a
/// client inventing tenant names cannot grow `/metrics` without bound.
pub const MAX_TENANT_LABELS: usize = 1000;

/// The transport a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Transport {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    signal: &'static str,
    transport: &'static str,
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    signal: &'static str,
    transport: &'static str,
    tenant: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    signal: &'static str,
    transport: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
    transport: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Counters and histograms of the receivers.
#[derive(Debug)]
pub struct IngestMetrics {
    requests: Family<RequestLabels, Counter>,
    received: Family<ItemLabels, Counter>,
    accepted: Family<ItemLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    bytes: Family<SignalLabels, Counter>,
    duration: Family<SignalLabels, Histogram, fn() -> Histogram>,
    attributes_dropped: Family<SignalLabels, Counter>,
    values_truncated: Family<SignalLabels, Counter>,
    /// Requests past the concurrency cap and not yet answered, both transports.
    pub in_flight: Gauge,
    /// Bytes the requests in flight hold of the memory budget.
    pub held_bytes: Gauge,
    tenants: Mutex<HashSet<String>>,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            received: Family::default(),
            accepted: Family::default(),
            refused: Family::default(),
            bytes: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            attributes_dropped: Family::default(),
            values_truncated: Family::default(),
            in_flight: Gauge::default(),
            held_bytes: Gauge::default(),
            tenants: Mutex::new(HashSet::new()),
        }
    }
}

/// One request's outcome, as recorded by [`IngestMetrics::record`].
#[derive(Debug)]
pub struct RequestRecord<'a> {
    /// `traces`, `metrics` or `logs`.
    pub signal: &'static str,
    /// How it came.
    pub transport: Transport,
    /// Whose.
    pub tenant: &'a str,
    /// Items in the request.
    pub items: u64,
    /// What validation found.
    pub checked: Checked,
    /// Decoded request bytes.
    pub bytes: u64,
    /// `None` when accepted, else the refusal reason (all remaining items refused).
    pub refused: Option<&'static str>,
    /// Time spent on the request.
    pub elapsed: Duration,
}

impl IngestMetrics {
    /// Registers every metric in `registry` (names get the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "ingest_held",
            "Bytes the requests in flight hold of the memory budget (limits.max_inflight_bytes)",
            Unit::Bytes,
            self.held_bytes.clone(),
        );
        registry.register(
            "ingest_requests",
            "OTLP export requests by outcome (ok, partial, or the refusal reason)",
            self.requests.clone(),
        );
        registry.register(
            "ingest_items_received",
            "Spans, data points and log records received",
            self.received.clone(),
        );
        registry.register(
            "ingest_items_accepted",
            "Items accepted and handed to compute",
            self.accepted.clone(),
        );
        registry.register(
            "ingest_items_refused",
            "Items refused, by reason",
            self.refused.clone(),
        );
        registry.register_with_unit(
            "ingest_request",
            "Decoded (decompressed) size of export requests",
            Unit::Bytes,
            self.bytes.clone(),
        );
        registry.register_with_unit(
            "ingest_request_duration",
            "Time from a decoded request to its reply",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "ingest_requests_in_flight",
            "OTLP requests being served now, over both transports",
            self.in_flight.clone(),
        );
        registry.register(
            "ingest_attributes_dropped",
            "Attributes dropped over the per-item limit",
            self.attributes_dropped.clone(),
        );
        registry.register(
            "ingest_attribute_values_truncated",
            "String attribute values cut to the length limit",
            self.values_truncated.clone(),
        );
    }

    fn tenant_label(&self, tenant: &str) -> String {
        let mut known = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(tenant) {
            return tenant.to_string();
        }
        if known.len() < MAX_TENANT_LABELS {
            known.insert(tenant.to_string());
            return tenant.to_string();
        }
        "__other__".to_string()
    }

    /// Counts a request refused before it was decoded (auth, size, encoding, busy).
    pub fn refused_request(
        &self,
        signal: &'static str,
        transport: Transport,
        reason: &'static str,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                signal,
                transport: transport.as_str(),
                outcome: reason,
            })
            .inc();
    }

    /// Counts one decoded request.
    pub fn record(&self, r: &RequestRecord<'_>) {
        let transport = r.transport.as_str();
        let tenant = self.tenant_label(r.tenant);
        let sig = SignalLabels {
            signal: r.signal,
            transport,
        };
        let item = ItemLabels {
            signal: r.signal,
            transport,
            tenant: tenant.clone(),
        };
        self.received.get_or_create(&item).inc_by(r.items);
        self.bytes.get_or_create(&sig).inc_by(r.bytes);
        self.duration
            .get_or_create(&sig)
            .observe(r.elapsed.as_secs_f64());
        let c = &r.checked;
        if c.attributes_dropped > 0 {
            self.attributes_dropped
                .get_or_create(&sig)
                .inc_by(c.attributes_dropped);
        }
        if c.values_truncated > 0 {
            self.values_truncated
                .get_or_create(&sig)
                .inc_by(c.values_truncated);
        }
        let refuse = |reason, n: u64| {
            if n > 0 {
                self.refused
                    .get_or_create(&RefusedLabels {
                        signal: r.signal,
                        transport,
                        tenant: tenant.clone(),
                        reason,
                    })
                    .inc_by(n);
            }
        };
        refuse("invalid_id", c.invalid_ids);
        refuse("future_timestamp", c.future);
        refuse("end_before_start", c.bad_times);
        let remaining = r.items - c.rejected();
        let outcome = match r.refused {
            Some(reason) => {
                refuse(reason, remaining);
                reason
            }
            None => {
                self.accepted.get_or_create(&item).inc_by(remaining);
                if c.rejected() > 0 { "partial" } else { "ok" }
            }
        };
        self.requests
            .get_or_create(&RequestLabels {
                signal: r.signal,
                transport,
                outcome,
            })
            .inc();
    }
}
