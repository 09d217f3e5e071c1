//! `slotel serve` configuration: a YAML file whose keys mirror the flags; flags win.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use slotel_ingest::Limits;
use slotel_ingest::config::{
    AuthConfig, CorsConfig, KafkaConfig, KafkaFile, LimitsFile, QueueConfig, QueueFile, TlsConfig,
    WalConfig, WalFile,
};

/// What a `slotel serve` process does.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in one process, on the local write-ahead log (the default).
    #[default]
    All,
    /// The OTLP receivers only, stateless: each accepted request is written to Kafka
    /// (`kafka:`) and acknowledged once the brokers have it (feature `kafka`).
    Ingest,
    /// A member of the compute nodes' consumer group (`kafka.group`): owns partitions of
    /// the topics, counts their records, checkpoints each partition to the shared
    /// storage and serves the API (feature `kafka`).
    Compute,
}

/// Flags of `slotel serve`. Each can also be set in the `--config` file, under the same
/// name with `_` for `-`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// A YAML configuration file.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// SLO files or folders of them (repeat the flag for several).
    #[arg(long)]
    pub slos: Vec<PathBuf>,
    /// Where slotel keeps its data [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long)]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long)]
    pub otlp_http_addr: Option<SocketAddr>,
    /// API listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub api_addr: Option<SocketAddr>,
    /// Also write the bound addresses as JSON to this file once listening.
    #[arg(long)]
    pub listen_file: Option<PathBuf>,
    /// PEM certificate chain: serve every listener over TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Start even if the write-ahead log has a damaged record before its end: keep the
    /// records before it, drop it and everything after it, and say how much was
    /// dropped. Without it such a log stops the start with the segment and offset.
    #[arg(long)]
    pub wal_repair: bool,
    /// What this process does [default: all].
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// The Kafka brokers, `host:port,…` (`kafka.brokers`).
    #[arg(long)]
    pub kafka_brokers: Option<String>,
}

/// The configuration file. Relative paths in it are relative to the file's folder.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    slos: OneOrMany,
    data_dir: Option<PathBuf>,
    otlp_grpc_addr: Option<SocketAddr>,
    otlp_http_addr: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
    listen_file: Option<PathBuf>,
    #[serde(default)]
    tls: Option<TlsConfig>,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    cors: CorsConfig,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    queue: QueueFile,
    #[serde(default)]
    wal: WalFile,
    #[serde(default, deserialize_with = "slotel_model::time::optional_duration")]
    shutdown_timeout: Option<Duration>,
    #[serde(default)]
    compute: slotel_compute::config::ComputeFile,
    #[serde(default)]
    alerting: slotel_compute::alerting::config::AlertingFile,
    #[serde(default)]
    maintenance: Vec<slotel_compute::alerting::maintenance::MaintenanceWindow>,
    #[serde(default)]
    storage: slotel_storage::config::StorageFile,
    #[serde(default)]
    api: slotel_query::config::ApiFile,
    role: Option<Role>,
    #[serde(default)]
    kafka: KafkaFile,
}

#[derive(Deserialize, Debug, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// The resolved configuration of `slotel serve`.
#[derive(Debug)]
pub struct ServeConfig {
    /// What this process does.
    pub role: Role,
    /// The Kafka log, when the role uses it.
    pub kafka: Option<KafkaConfig>,
    /// The SLO files and folders (none for `--role ingest`).
    pub slos: Vec<PathBuf>,
    /// The data directory (tables, alert state).
    pub data_dir: PathBuf,
    /// Where OTLP/gRPC listens.
    pub otlp_grpc_addr: SocketAddr,
    /// Where OTLP/HTTP listens.
    pub otlp_http_addr: SocketAddr,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the bound addresses are written once listening.
    pub listen_file: Option<PathBuf>,
    /// TLS for every listener.
    pub tls: Option<TlsConfig>,
    /// Bearer tokens and their tenants.
    pub auth: AuthConfig,
    /// Browser origins allowed to send OTLP/HTTP.
    pub cors: CorsConfig,
    /// What the receivers accept.
    pub limits: Limits,
    /// The in-memory feed from the log to compute.
    pub queue: QueueConfig,
    /// The write-ahead log (under `data_dir/wal`).
    pub wal: WalConfig,
    /// The longest a graceful stop takes, end to end (default 10 s): past it the
    /// process exits, and the log makes that safe.
    pub shutdown_timeout: Duration,
    /// The engine's settings.
    pub engine: slotel_compute::EngineConfig,
    /// Rule evaluation and receivers.
    pub alerting: slotel_compute::alerting::config::AlertingConfig,
    /// Maintenance windows in force at start.
    pub maintenance: Vec<slotel_compute::alerting::maintenance::MaintenanceWindow>,
    /// The Parquet tables and their loops.
    pub storage: slotel_storage::StorageConfig,
    /// The query API's settings.
    pub api: slotel_query::ApiOptions,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML");
        anyhow::anyhow!("{}{at}: {}", path.display(), without_position(first))
    })
}

/// A YAML library message without the position it starts with (`error: line 5 column
/// 1: …`): the caller names the position once, as `file:line:column`.
fn without_position(msg: &str) -> &str {
    let rest = msg.strip_prefix("error: ").unwrap_or(msg);
    let Some(after) = rest.strip_prefix("line ") else {
        return rest;
    };
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n = digits(after);
    let Some(after) = after[n..].strip_prefix(" column ") else {
        return rest;
    };
    let m = digits(after);
    after[m..]
        .strip_prefix(": ")
        .filter(|_| n > 0 && m > 0)
        .unwrap_or(rest)
}

impl ServeConfig {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let (file, base) = match &args.config {
            Some(path) => (
                read_file(path)?,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => (FileConfig::default(), PathBuf::new()),
        };
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let slos = if !args.slos.is_empty() {
            args.slos
        } else {
            match file.slos {
                OneOrMany::None => Vec::new(),
                OneOrMany::One(p) => vec![rel(p)],
                OneOrMany::Many(ps) => ps.into_iter().map(rel).collect(),
            }
        };
        let role = args.role.or(file.role).unwrap_or_default();
        if slos.is_empty() && role != Role::Ingest {
            anyhow::bail!("no SLO files: pass --slos FILE (or set slos: in the config file)");
        }
        let mut kafka_file = file.kafka;
        if let Some(b) = args.kafka_brokers {
            kafka_file.brokers = Some(b);
        }
        let kafka = match role {
            Role::All if !kafka_file.is_set() => None,
            _ => Some(kafka_file.resolve()?),
        };
        let addr = |s: &str| s.parse::<SocketAddr>().expect("valid default address");
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert_file), Some(key_file)) => Some(TlsConfig {
                cert_file,
                key_file,
            }),
            _ => file.tls.map(|t| TlsConfig {
                cert_file: rel(t.cert_file),
                key_file: rel(t.key_file),
            }),
        };
        file.auth.validate()?;
        let limits = file.limits.resolve();
        let data_dir = args
            .data_dir
            .or(file.data_dir.map(rel))
            .unwrap_or_else(|| PathBuf::from("./data"));
        let storage = file.storage.resolve(&data_dir, &base);
        let api = file.api.resolve();
        Ok(Self {
            role,
            kafka,
            slos,
            storage,
            api,
            data_dir,
            otlp_grpc_addr: args
                .otlp_grpc_addr
                .or(file.otlp_grpc_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4317")),
            otlp_http_addr: args
                .otlp_http_addr
                .or(file.otlp_http_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4318")),
            api_addr: args
                .api_addr
                .or(file.api_addr)
                .unwrap_or_else(|| addr("127.0.0.1:8080")),
            listen_file: args.listen_file.or(file.listen_file.map(rel)),
            tls,
            auth: file.auth,
            cors: file.cors,
            queue: file.queue.resolve(),
            wal: {
                let mut wal = file.wal.resolve();
                wal.options.repair = args.wal_repair;
                wal
            },
            shutdown_timeout: file.shutdown_timeout.unwrap_or(Duration::from_secs(10)),
            engine: file
                .compute
                .resolve(Duration::from_nanos(limits.items.max_future_nanos)),
            limits,
            maintenance: file.maintenance,
            alerting: file.alerting.resolve(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_messages_lose_only_their_leading_position() {
        assert_eq!(
            without_position("error: line 5 column 1: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(without_position("line 12 column 30: bad"), "bad");
        assert_eq!(
            without_position("error: line five column 1: bad"),
            "line five column 1: bad"
        );
        assert_eq!(without_position("invalid type"), "invalid type");
    }

    #[test]
    fn flags_win_over_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("slotel.yaml");
        std::fs::write(
            &cfg,
            "slos: [slos.yaml]\ndata_dir: d\napi_addr: 127.0.0.1:9000\nqueue: { capacity_batches: 7 }\nlimits: { request_timeout: 5s, max_attributes: 9 }\ntls: { cert_file: c.pem, key_file: k.pem }\n",
        )
        .unwrap();
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.slos, vec![dir.path().join("slos.yaml")]);
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(c.api_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.otlp_grpc_addr, "127.0.0.1:4317".parse().unwrap());
        assert_eq!(c.queue.capacity_batches, 7);
        assert_eq!(c.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.items.max_attributes, 9);
        assert_eq!(c.limits.max_request_bytes, 16 << 20);
        assert_eq!(c.tls.unwrap().cert_file, dir.path().join("c.pem"));
    }

    #[test]
    fn unknown_keys_are_reported_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("slotel.yaml");
        std::fs::write(&cfg, "slos: a.yaml\napi_adr: 127.0.0.1:1\n").unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("{}:2:1: ", cfg.display())),
            "{err}"
        );
        assert!(err.contains("api_adr"), "{err}");
    }

    #[test]
    fn the_shipped_example_config_spells_out_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/slotel.yaml");
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        let d = Limits::default();
        assert_eq!(c.slos, vec![path.parent().unwrap().join("slos.yaml")]);
        assert_eq!(c.limits.max_request_bytes, d.max_request_bytes);
        assert_eq!(c.limits.max_decompressed_bytes, d.max_decompressed_bytes);
        assert_eq!(c.limits.request_timeout, d.request_timeout);
        assert_eq!(c.limits.max_concurrent_requests, d.max_concurrent_requests);
        assert_eq!(c.limits.items.max_attributes, d.items.max_attributes);
        assert_eq!(
            c.limits.items.max_attribute_value_bytes,
            d.items.max_attribute_value_bytes
        );
        assert_eq!(c.limits.items.max_future_nanos, d.items.max_future_nanos);
        assert_eq!(
            (c.queue.capacity_batches, c.queue.max_bytes),
            (1024, 256 << 20)
        );
        assert!(c.auth.tokens.is_empty() && c.cors.allowed_origins.is_empty() && c.tls.is_none());
        // And the default config without a file is the same.
        let bare = ServeConfig::resolve(ServeArgs {
            slos: vec!["x.yaml".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bare.queue.max_bytes, c.queue.max_bytes);
        let (ds, da) = (
            slotel_storage::StoreOptions::default(),
            slotel_query::ApiOptions::default(),
        );
        for cfg in [&c, &bare] {
            assert_eq!(cfg.storage.flush_interval, Duration::from_secs(60));
            assert_eq!(cfg.storage.flush_max_rows, 100_000);
            assert_eq!(cfg.storage.maintenance_interval, Duration::from_secs(600));
            let o = &cfg.storage.options;
            assert_eq!(
                (
                    o.minute_retention_days,
                    o.hour_retention_days,
                    o.compact_min_files
                ),
                (
                    ds.minute_retention_days,
                    ds.hour_retention_days,
                    ds.compact_min_files
                )
            );
            assert_eq!(cfg.api.sql_timeout, da.sql_timeout);
            assert_eq!(cfg.api.sql_memory_bytes, da.sql_memory_bytes);
            assert_eq!(cfg.api.sql_max_rows, da.sql_max_rows);
            assert_eq!(cfg.api.slo_series_in_metrics, da.slo_series_in_metrics);
        }
        assert_eq!(bare.storage.url, "./data/tables");
    }

    #[test]
    fn an_ingest_node_needs_brokers_but_no_slo_files() {
        let c = ServeConfig::resolve(ServeArgs {
            role: Some(Role::Ingest),
            kafka_brokers: Some("127.0.0.1:9092".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.role, Role::Ingest);
        assert!(c.slos.is_empty());
        assert_eq!(c.kafka.unwrap().brokers, "127.0.0.1:9092");
        let err = ServeConfig::resolve(ServeArgs {
            role: Some(Role::Ingest),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "kafka.brokers: required for --role ingest and --role compute (or set --kafka-brokers)"
        );
        // One process needs no Kafka.
        let all = ServeConfig::resolve(ServeArgs {
            slos: vec!["x.yaml".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!((all.role, all.kafka), (Role::All, None));
    }

    #[test]
    fn short_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("slotel.yaml");
        std::fs::write(
            &cfg,
            "slos: a.yaml\nauth: { tokens: [ { token: short, tenant: a } ] }\n",
        )
        .unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(cfg),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "auth.tokens: the token of tenant \"a\" is shorter than 16 characters"
        );
    }
}
