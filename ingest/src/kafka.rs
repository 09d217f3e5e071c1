//! Kafka as the log between ingest nodes and compute nodes (feature `kafka`): the
//! producer an ingest node hands its batches to ([`KafkaSink`]), and the client settings
//! producer and consumers share ([`client_config`]).
//!
//! A record is what the OpenTelemetry Collector's Kafka exporter writes with encoding
//! `otlp_proto`: its value is the export request's protobuf bytes (an
//! `ExportTraceServiceRequest` on the spans topic, and so on), so Collectors and slotel
//! ingest nodes can feed the same topics and other consumers can read them. slotel adds
//! the tenant in a header (`kafka.tenant_header`, default `X-Scope-OrgID`) and the
//! receive time as the record's timestamp. A request is acknowledged once every in-sync
//! replica has the record (`acks=all`, the idempotent producer): a crash of the ingest
//! node after the reply loses nothing.

use std::time::Duration;

/// The Kafka client crate, for the compute nodes' consumer.
pub use rdkafka;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use slotel_proto::log::SignalKind;
use slotel_proto::{Batch, Consumer, Error, Result, wire};

use crate::config::{ConfigError, KafkaConfig, PartitionKey};

/// The librdkafka settings of `config`: the brokers, then slotel's `defaults` for the
/// client at hand, then `kafka.client`, which wins.
pub fn client_config(config: &KafkaConfig, defaults: &[(&str, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    for (k, v) in defaults {
        c.set(*k, v);
    }
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    topic: String,
    reason: &'static str,
}

/// Counts of what the producer wrote and what the brokers did not take, by topic.
#[derive(Debug, Default, Clone)]
struct ProduceMetrics {
    records: Family<TopicLabels, Counter>,
    bytes: Family<TopicLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
}

/// One signal's topic and its counters, looked up once.
#[derive(Debug)]
struct Topic {
    name: String,
    records: Counter,
    bytes: Counter,
}

/// Writes each batch as one record to its signal's topic and returns once the brokers
/// acknowledged it.
pub struct KafkaSink {
    /// Replaced when it fails fatally (an idempotent producer the brokers fenced).
    producer: std::sync::RwLock<FutureProducer>,
    /// What new producers are made from.
    client: ClientConfig,
    /// Producers replaced after a fatal error.
    recreated: Counter,
    config: KafkaConfig,
    metrics: ProduceMetrics,
    /// By [`SignalKind`] code.
    topics: [Topic; 3],
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.config.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A producer to `config`'s brokers for records of up to `max_record_bytes` (the
    /// largest request the receivers accept). Connecting happens in the background:
    /// brokers that are down make requests fail as retryable, not the start.
    pub fn new(config: KafkaConfig, max_record_bytes: usize) -> Result<Self, ConfigError> {
        let c = client_config(
            &config,
            &[
                ("acks", "all".into()),
                ("enable.idempotence", "true".into()),
                (
                    "message.timeout.ms",
                    config.produce_timeout.as_millis().max(1).to_string(),
                ),
                // Requests in flight at once go out together.
                ("linger.ms", "5".into()),
                (
                    "message.max.bytes",
                    (max_record_bytes + (64 << 10))
                        .min(1_000_000_000)
                        .to_string(),
                ),
            ],
        );
        let producer: FutureProducer = c
            .create()
            .map_err(|e| ConfigError(format!("kafka: cannot create the producer: {e}")))?;
        let metrics = ProduceMetrics::default();
        let topic = |signal| {
            let name = config.topic(signal).to_string();
            let labels = TopicLabels {
                topic: name.clone(),
            };
            Topic {
                records: metrics.records.get_or_create(&labels).clone(),
                bytes: metrics.bytes.get_or_create(&labels).clone(),
                name,
            }
        };
        let topics = [
            topic(SignalKind::Traces),
            topic(SignalKind::Metrics),
            topic(SignalKind::Logs),
        ];
        Ok(Self {
            producer: std::sync::RwLock::new(producer),
            client: c,
            recreated: Counter::default(),
            config,
            metrics,
            topics,
        })
    }

    /// The brokers it writes to.
    pub fn brokers(&self) -> &str {
        &self.config.brokers
    }

    /// Whether the brokers answer a metadata request within `timeout` (blocking).
    pub fn brokers_answer(&self, timeout: Duration) -> bool {
        self.producer()
            .client()
            .fetch_metadata(Some(&self.config.spans_topic), timeout)
            .is_ok()
    }

    /// The producer now.
    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a refusal `e` by `failed`: if the producer cannot send again (a fatal
    /// error, or the brokers fenced its producer id), puts a new producer in its place,
    /// once however many requests saw it fail.
    fn recover(&self, failed: &FutureProducer, e: &KafkaError) {
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
            )
        );
        let Some((code, reason)) = failed
            .client()
            .fatal_error()
            .or_else(|| fenced.then(|| (e.rdkafka_error_code().expect("matched"), e.to_string())))
        else {
            return;
        };
        let mut current = self.producer.write().unwrap_or_else(|e| e.into_inner());
        if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
            return; // replaced already
        }
        match self.client.create::<FutureProducer>() {
            Ok(fresh) => {
                *current = fresh;
                self.recreated.inc();
                tracing::warn!(error = ?code, reason, "The Kafka producer cannot send again; a new one takes its place.");
            }
            Err(e) => {
                tracing::error!(error = %e, "The Kafka producer failed fatally and a new one cannot be made; requests are refused until one can.");
            }
        }
    }

    /// Registers the producer's counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.metrics;
        registry.register(
            "kafka_produced_records",
            "Records the Kafka brokers acknowledged, by topic",
            m.records.clone(),
        );
        registry.register_with_unit(
            "kafka_produced",
            "Bytes of record values the Kafka brokers acknowledged, by topic",
            Unit::Bytes,
            m.bytes.clone(),
        );
        registry.register(
            "kafka_produce_failures",
            "Records the Kafka brokers did not acknowledge (the request was refused), by topic and reason",
            m.failures.clone(),
        );
        registry.register(
            "kafka_producers_recreated",
            "Kafka producers replaced after a fatal error (for example, fenced by the brokers)",
            self.recreated.clone(),
        );
    }

    /// The record key of a request: see [`PartitionKey`].
    fn key(&self, tenant: &str, body: &[u8], out: &mut Vec<u8>) -> bool {
        match self.config.partition_key {
            PartitionKey::None => false,
            PartitionKey::Tenant => {
                out.extend_from_slice(tenant.as_bytes());
                true
            }
            PartitionKey::Service => {
                out.extend_from_slice(tenant.as_bytes());
                out.push(b'/');
                out.extend_from_slice(wire::first_service_name(body).unwrap_or("").as_bytes());
                true
            }
        }
    }
}

/// What a refused record means for the client.
fn refusal(e: &KafkaError) -> (Error, &'static str) {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => (
            Error::Full {
                what: "the Kafka producer's queue",
                retry_after: Duration::from_secs(1),
            },
            "queue_full",
        ),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => (
            Error::Invalid(
                "the request is larger than the Kafka topic accepts (its max.message.bytes)".into(),
            ),
            "too_large",
        ),
        Some(RDKafkaErrorCode::MessageTimedOut) => {
            (Error::Unavailable("the Kafka brokers"), "timed_out")
        }
        _ => (Error::Unavailable("the Kafka brokers"), "error"),
    }
}

impl Consumer for KafkaSink {
    async fn consume(&self, batch: Batch) -> Result<()> {
        let body = batch.encoded();
        let topic = &self.topics[batch.signal() as usize];
        let mut headers =
            OwnedHeaders::new_with_capacity(1 + self.config.headers.len()).insert(Header {
                key: &self.config.tenant_header,
                value: Some(batch.tenant.as_bytes()),
            });
        for (k, v) in &self.config.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut key = Vec::new();
        let keyed = self.key(&batch.tenant, &body, &mut key);
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic.name)
            .payload(&body[..])
            .headers(headers)
            .timestamp(batch.received_nanos.div_euclid(1_000_000));
        if keyed {
            record = record.key(&key[..]);
        }
        // Not waiting for room in the producer's queue: a full queue is a refusal.
        let producer = self.producer();
        match producer.send(record, Duration::ZERO).await {
            Ok(_) => {
                topic.records.inc();
                topic.bytes.inc_by(body.len() as u64);
                Ok(())
            }
            Err((e, _)) => {
                let (error, reason) = refusal(&e);
                self.recover(&producer, &e);
                self.metrics
                    .failures
                    .get_or_create(&FailureLabels {
                        topic: topic.name.clone(),
                        reason,
                    })
                    .inc();
                tracing::warn!(topic = %topic.name, error = %e, "The Kafka brokers did not take a record; the request is refused.");
                Err(error)
            }
        }
    }

    async fn shutdown(&self) -> Result<()> {
        // Every record sent was awaited by its request; this only drains stragglers.
        let producer = self.producer();
        let timeout = self.config.produce_timeout;
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        Ok(())
    }
}

/// Why a Kafka record is not a log record slotel can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// It is on a topic that is not one of the three signals' topics.
    #[error("record on topic {0:?}, which is none of kafka.topics")]
    Topic(String),
    /// Its tenant header is not a valid tenant.
    #[error("{0}")]
    Tenant(String),
    /// It has no timestamp to date it by.
    #[error("record without a timestamp")]
    NoTimestamp,
}

/// The log record a Kafka record holds: its signal from its topic, its tenant from the
/// `kafka.tenant_header` header (matched without regard to ASCII case, as HTTP headers
/// are; the default tenant without one), its receive time from its timestamp, its body
/// from its value. Records of the Collector's Kafka exporter and of slotel's ingest nodes
/// read alike. Nothing is decoded here: a body that is not the signal's protobuf is
/// refused where it is applied, as a damaged log record is.
pub fn record_of<'h>(
    config: &KafkaConfig,
    topic: &str,
    mut headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
    timestamp_ms: Option<i64>,
    value: Option<&[u8]>,
) -> std::result::Result<slotel_proto::log::Record, Unreadable> {
    let signal = [SignalKind::Traces, SignalKind::Metrics, SignalKind::Logs]
        .into_iter()
        .find(|s| config.topic(*s) == topic)
        .ok_or_else(|| Unreadable::Topic(topic.to_string()))?;
    let tenant = headers
        .find(|(k, _)| k.eq_ignore_ascii_case(&config.tenant_header))
        .map(|(_, v)| v.unwrap_or_default());
    let tenant = slotel_proto::parse_tenant(tenant).map_err(Unreadable::Tenant)?;
    let received_nanos = timestamp_ms
        .ok_or(Unreadable::NoTimestamp)?
        .saturating_mul(1_000_000);
    Ok(slotel_proto::log::Record {
        tenant,
        signal,
        received_nanos,
        body: bytes::Bytes::copy_from_slice(value.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaFile;

    fn config() -> KafkaConfig {
        serde_saphyr::from_str::<KafkaFile>("brokers: k:1\ntopics: { logs: app_logs }\n")
            .unwrap()
            .resolve()
            .unwrap()
    }

    #[test]
    fn a_collector_record_is_a_log_record_of_its_topic_tenant_and_time() {
        let c = config();
        let h = [("x-scope-orgid", Some(&b"acme"[..])), ("other", None)];
        let r = record_of(
            &c,
            "otlp_spans",
            h.into_iter(),
            Some(1_700_000_000_123),
            Some(b"\x0a\x00"),
        )
        .unwrap();
        assert_eq!(r.signal, SignalKind::Traces);
        assert_eq!(&*r.tenant, "acme");
        assert_eq!(r.received_nanos, 1_700_000_000_123_000_000);
        assert_eq!(&r.body[..], b"\x0a\x00");
        let r = record_of(&c, "app_logs", std::iter::empty(), Some(5), None).unwrap();
        assert_eq!(
            (r.signal, &*r.tenant, r.body.len()),
            (SignalKind::Logs, slotel_proto::DEFAULT_TENANT, 0)
        );
        let r = record_of(&c, "otlp_metrics", std::iter::empty(), Some(5), None).unwrap();
        assert_eq!(r.signal, SignalKind::Metrics);
    }

    #[test]
    fn records_slotel_cannot_date_or_place_are_refused_with_the_reason() {
        let c = config();
        let none = || std::iter::empty();
        assert_eq!(
            record_of(&c, "otlp_logs", none(), Some(1), None),
            Err(Unreadable::Topic("otlp_logs".into()))
        );
        assert_eq!(
            record_of(&c, "otlp_spans", none(), None, None),
            Err(Unreadable::NoTimestamp)
        );
        let bad = [("X-Scope-OrgID", Some(&b"a b"[..]))];
        assert!(matches!(
            record_of(&c, "otlp_spans", bad.into_iter(), Some(1), None),
            Err(Unreadable::Tenant(_))
        ));
    }
}
