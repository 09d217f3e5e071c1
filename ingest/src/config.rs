//! The ingest crate's sections of the configuration file: `tls:`, `auth:`, `cors:`,
//! `limits:`, `queue:` and `wal:`, with their defaults and validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use slotel_model::time::optional_duration as duration;
use slotel_proto::Tenant;
use slotel_proto::auth::Auth;

use crate::wal::{Fsync, WalOptions};
use crate::{ItemLimits, Limits};

/// A configuration value that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `tls:` — PEM files; when set, every listener speaks TLS.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The private key, PEM.
    pub key_file: PathBuf,
}

/// `auth:` — bearer tokens and the tenant each one writes and reads as.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The tokens; none leaves the receivers and the API open.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

impl AuthConfig {
    /// Checks every token (at least 16 characters, a valid tenant).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for t in &self.tokens {
            if t.token.len() < 16 {
                return Err(ConfigError(format!(
                    "auth.tokens: the token of tenant {:?} is shorter than 16 characters",
                    t.tenant
                )));
            }
            slotel_proto::parse_tenant(Some(t.tenant.as_bytes()))
                .map_err(|_| ConfigError(format!("auth.tokens: invalid tenant {:?}", t.tenant)))?;
        }
        Ok(())
    }

    /// The tenant resolver these tokens describe: open without tokens.
    pub fn auth(&self) -> Auth {
        if self.tokens.is_empty() {
            Auth::open()
        } else {
            Auth::with_tokens(
                self.tokens
                    .iter()
                    .map(|t| (t.token.clone(), Tenant::from(t.tenant.as_str()))),
            )
            .with_admins(
                self.tokens
                    .iter()
                    .filter(|t| t.admin)
                    .map(|t| t.token.clone()),
            )
        }
    }
}

/// One token.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The bearer token.
    pub token: String,
    /// The tenant it writes and reads as.
    pub tenant: String,
    /// Whether it may also act for every tenant: `POST /api/v1/reload` (the SLO files
    /// hold every tenant's SLOs).
    #[serde(default)]
    pub admin: bool,
}

/// `cors:` — browser origins allowed to send OTLP/HTTP.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed (`*` for any).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// `limits:` — every field optional; defaults in [`Limits::default`].
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    max_request_bytes: Option<usize>,
    max_decompressed_bytes: Option<usize>,
    max_attributes: Option<usize>,
    max_attribute_value_bytes: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    max_future: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    request_timeout: Option<Duration>,
    max_concurrent_requests: Option<usize>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    header_read_timeout: Option<Duration>,
    max_inflight_bytes: Option<usize>,
}

impl LimitsFile {
    /// The limits: what is set here, the defaults elsewhere.
    pub fn resolve(self) -> Limits {
        let d = Limits::default();
        let di = ItemLimits::default();
        Limits {
            max_request_bytes: self.max_request_bytes.unwrap_or(d.max_request_bytes),
            max_decompressed_bytes: self
                .max_decompressed_bytes
                .unwrap_or(d.max_decompressed_bytes),
            items: ItemLimits {
                max_attributes: self.max_attributes.unwrap_or(di.max_attributes),
                max_attribute_value_bytes: self
                    .max_attribute_value_bytes
                    .unwrap_or(di.max_attribute_value_bytes),
                max_future_nanos: self
                    .max_future
                    .map_or(di.max_future_nanos, |f| f.as_nanos() as u64),
            },
            request_timeout: self.request_timeout.unwrap_or(d.request_timeout),
            max_concurrent_requests: self
                .max_concurrent_requests
                .unwrap_or(d.max_concurrent_requests),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            header_read_timeout: self.header_read_timeout.unwrap_or(d.header_read_timeout),
            max_inflight_bytes: self.max_inflight_bytes.unwrap_or(d.max_inflight_bytes),
        }
    }
}

/// `queue:` — the in-memory feed from the log to compute (past it, compute reads the
/// records back from the log).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueFile {
    capacity_batches: Option<usize>,
    max_bytes: Option<usize>,
}

/// The resolved `queue:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Logged batches held in memory for compute.
    pub capacity_batches: usize,
    /// Bytes of logged batches held in memory for compute.
    pub max_bytes: usize,
}

impl QueueFile {
    /// The queue's bounds: what is set here, the defaults elsewhere.
    pub fn resolve(self) -> QueueConfig {
        QueueConfig {
            capacity_batches: self.capacity_batches.unwrap_or(1024),
            max_bytes: self.max_bytes.unwrap_or(256 << 20),
        }
    }
}

/// `wal:` — the write-ahead log every acknowledged request is in.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct WalFile {
    fsync: Option<FsyncMode>,
    #[serde(default, deserialize_with = "duration")]
    fsync_interval: Option<Duration>,
    segment_bytes: Option<u64>,
    max_bytes: Option<u64>,
    checkpoint_bytes: Option<u64>,
}

/// `wal.fsync`: when appends reach the disk.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FsyncMode {
    Never,
    Interval,
    Always,
}

/// The resolved `wal:` settings.
#[derive(Debug, Clone, Copy)]
pub struct WalConfig {
    /// The log's settings (without `repair`, which only the command line sets).
    pub options: WalOptions,
    /// A checkpoint is taken early once the log past the last one holds this many bytes
    /// (default: 256 MiB, or half of `max_bytes` when that is less; at `max_bytes` or
    /// more, the log fills and receivers refuse until the next timed checkpoint).
    pub checkpoint_bytes: u64,
}

impl WalFile {
    /// The log's settings: what is set here, the defaults elsewhere (`fsync: interval`
    /// every second, 64 MiB segments, 4 GiB at most, a checkpoint every 256 MiB).
    pub fn resolve(self) -> WalConfig {
        let d = WalOptions::default();
        let every = self.fsync_interval.unwrap_or(Duration::from_secs(1));
        let fsync = match self.fsync {
            Some(FsyncMode::Never) => Fsync::Never,
            Some(FsyncMode::Always) => Fsync::Always,
            Some(FsyncMode::Interval) | None => Fsync::Interval(every),
        };
        let max_bytes = self.max_bytes.unwrap_or(d.max_bytes);
        WalConfig {
            options: WalOptions {
                segment_bytes: self.segment_bytes.unwrap_or(d.segment_bytes).max(1),
                fsync,
                max_bytes,
                repair: false,
            },
            checkpoint_bytes: self
                .checkpoint_bytes
                .unwrap_or((256 << 20).min(max_bytes / 2))
                .max(1),
        }
    }
}

/// `kafka:` — the brokers, topics and headers of the Kafka log between ingest and
/// compute nodes (`--role ingest` and `--role compute`; the `kafka` feature). Every
/// field but `brokers` has a default.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct KafkaFile {
    /// `host:port,…` of the brokers (`bootstrap.servers`).
    pub brokers: Option<String>,
    #[serde(default)]
    topics: TopicsFile,
    tenant_header: Option<String>,
    partition_key: Option<PartitionKey>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    produce_timeout: Option<Duration>,
    ready_lag: Option<u64>,
    advertised_api: Option<String>,
    /// librdkafka settings passed through as they are (`security.protocol`,
    /// `sasl.*`, `compression.type`, …); they win over slotel's own.
    #[serde(default)]
    client: std::collections::BTreeMap<String, String>,
}

/// `kafka.topics:` — one topic per signal.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    spans: Option<String>,
    metrics: Option<String>,
    logs: Option<String>,
}

/// `kafka.partition_key:` — what an ingest node keys a record by, which decides its
/// partition.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKey {
    /// The tenant and the `service.name` of the request's first resource: a retried
    /// request lands where the first one did, so de-duplication sees both.
    #[default]
    Service,
    /// The tenant only.
    Tenant,
    /// No key: the producer spreads records over the partitions (a hot service on
    /// every partition; a retried request may land on another partition than the first).
    None,
}

/// The resolved `kafka:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic of spans (default `otlp_spans`, as the Collector's Kafka exporter).
    pub spans_topic: String,
    /// The topic of metrics (default `otlp_metrics`).
    pub metrics_topic: String,
    /// The topic of logs (default `otlp_logs`).
    pub logs_topic: String,
    /// The header that names a record's tenant (default `X-Scope-OrgID`); a record
    /// without it belongs to the default tenant.
    pub tenant_header: String,
    /// What records are keyed by.
    pub partition_key: PartitionKey,
    /// Headers added to every record an ingest node writes.
    pub headers: Vec<(String, String)>,
    /// The consumer group of the compute nodes (default `slotel`).
    pub group: String,
    /// How long an ingest node waits for the brokers to acknowledge a record before it
    /// refuses the request as retryable (default 10 s).
    pub produce_timeout: Duration,
    /// A compute node is ready once every partition it owns is at most this many records
    /// behind the brokers' end (default 1,000).
    pub ready_lag: u64,
    /// The URL other compute nodes reach this one's API at (default: `http://` and the
    /// address the API listens on, which must then be one they can reach).
    pub advertised_api: Option<String>,
    /// librdkafka settings passed through.
    pub client: Vec<(String, String)>,
}

impl KafkaFile {
    /// Whether the section names brokers.
    pub fn is_set(&self) -> bool {
        self.brokers.is_some()
    }

    /// The settings, or what is wrong with them.
    pub fn resolve(self) -> Result<KafkaConfig, ConfigError> {
        let brokers = self
            .brokers
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                ConfigError(
                    "kafka.brokers: required for --role ingest and --role compute (or set --kafka-brokers)".into(),
                )
            })?;
        let topic = |key: &str, value: Option<String>, default: &str| {
            let t = value.unwrap_or_else(|| default.to_string());
            // Kafka's own rule for topic names.
            let ok = !t.is_empty()
                && t.len() <= 249
                && t != "."
                && t != ".."
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if ok {
                Ok(t)
            } else {
                Err(ConfigError(format!(
                    "kafka.topics.{key}: {t:?} is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')"
                )))
            }
        };
        let spans_topic = topic("spans", self.topics.spans, "otlp_spans")?;
        let metrics_topic = topic("metrics", self.topics.metrics, "otlp_metrics")?;
        let logs_topic = topic("logs", self.topics.logs, "otlp_logs")?;
        if spans_topic == metrics_topic || spans_topic == logs_topic || metrics_topic == logs_topic
        {
            return Err(ConfigError(
                "kafka.topics: each signal needs a topic of its own".into(),
            ));
        }
        let tenant_header = self.tenant_header.unwrap_or_else(|| "X-Scope-OrgID".into());
        if tenant_header.is_empty() {
            return Err(ConfigError("kafka.tenant_header: empty".into()));
        }
        let group = self.group.unwrap_or_else(|| "slotel".into());
        if group.is_empty() {
            return Err(ConfigError("kafka.group: empty".into()));
        }
        Ok(KafkaConfig {
            brokers,
            spans_topic,
            metrics_topic,
            logs_topic,
            tenant_header,
            partition_key: self.partition_key.unwrap_or_default(),
            headers: self.headers.into_iter().collect(),
            group,
            produce_timeout: self.produce_timeout.unwrap_or(Duration::from_secs(10)),
            ready_lag: self.ready_lag.unwrap_or(1_000),
            advertised_api: self
                .advertised_api
                .map(|u| u.trim_end_matches('/').to_string()),
            client: self.client.into_iter().collect(),
        })
    }
}

impl KafkaConfig {
    /// The topic of `signal`.
    pub fn topic(&self, signal: slotel_proto::log::SignalKind) -> &str {
        use slotel_proto::log::SignalKind;
        match signal {
            SignalKind::Traces => &self.spans_topic,
            SignalKind::Metrics => &self.metrics_topic,
            SignalKind::Logs => &self.logs_topic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(yaml: &str) -> Result<KafkaConfig, ConfigError> {
        serde_saphyr::from_str::<KafkaFile>(yaml).unwrap().resolve()
    }

    #[test]
    fn kafka_defaults_are_the_collector_s_topics_and_header() {
        let c = kafka("brokers: k1:9092,k2:9092\n").unwrap();
        assert_eq!(
            c,
            KafkaConfig {
                brokers: "k1:9092,k2:9092".into(),
                spans_topic: "otlp_spans".into(),
                metrics_topic: "otlp_metrics".into(),
                logs_topic: "otlp_logs".into(),
                tenant_header: "X-Scope-OrgID".into(),
                partition_key: PartitionKey::Service,
                headers: vec![],
                group: "slotel".into(),
                produce_timeout: Duration::from_secs(10),
                ready_lag: 1_000,
                advertised_api: None,
                client: vec![],
            }
        );
        let c = kafka(
            "brokers: k:1\ntopics: { spans: s }\ntenant_header: tenant\npartition_key: none\nheaders: { source: edge }\nclient: { compression.type: lz4 }\nproduce_timeout: 3s\n",
        )
        .unwrap();
        assert_eq!(
            (
                c.spans_topic.as_str(),
                c.metrics_topic.as_str(),
                c.tenant_header.as_str()
            ),
            ("s", "otlp_metrics", "tenant")
        );
        assert_eq!(c.partition_key, PartitionKey::None);
        assert_eq!(c.headers, vec![("source".into(), "edge".into())]);
        assert_eq!(c.client, vec![("compression.type".into(), "lz4".into())]);
        assert_eq!(c.produce_timeout, Duration::from_secs(3));
    }

    #[test]
    fn kafka_settings_that_cannot_work_are_refused_by_name() {
        let err = |yaml| kafka(yaml).unwrap_err().0;
        assert_eq!(
            err("topics: { spans: s }\n"),
            "kafka.brokers: required for --role ingest and --role compute (or set --kafka-brokers)"
        );
        assert_eq!(
            err("brokers: k:1\ntopics: { logs: 'a b' }\n"),
            "kafka.topics.logs: \"a b\" is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')"
        );
        assert_eq!(
            err("brokers: k:1\ntopics: { metrics: otlp_spans }\n"),
            "kafka.topics: each signal needs a topic of its own"
        );
        assert!(serde_saphyr::from_str::<KafkaFile>("brokers: k:1\nbroker: x\n").is_err());
    }
}
