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
