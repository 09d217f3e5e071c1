//! OTLP ingest: the gRPC and HTTP receivers and the buffer between them and compute.
//!
//! Flow: the [`server`] accepts connections (optionally TLS); the [`guard`] caps
//! concurrency, authenticates and finds the tenant; a receiver ([`grpc`], [`http`])
//! decompresses and decodes an OTLP request of one [`signal`]; the shared
//! [`receiver::Receiver`] checks it ([`validate`]: partial success), hands the
//! [`slotel_proto::Batch`] to the next [`slotel_proto::Consumer`] (normally the
//! [`buffer::LogBuffer`], which appends it to the write-ahead log, [`wal`], before the
//! reply and then feeds it to compute), counts it ([`metrics`]) and replies. Refusals
//! become protocol replies in one place ([`reply`]). Ingest never depends on compute:
//! the server wires the feed to it. [`config`] holds ingest's configuration sections.

#![warn(missing_docs, unreachable_pub)]

pub mod budget;
pub mod buffer;
pub mod config;
pub mod grpc;
pub mod guard;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod receiver;
pub mod reply;
pub mod server;
pub mod signal;
pub mod validate;
pub mod wal;

use std::sync::Arc;
use std::time::Duration;

use slotel_model::Clock;
use slotel_proto::Consumer;
use slotel_proto::auth::Auth;
use tokio::sync::Semaphore;

pub use metrics::{IngestMetrics, Transport};
pub use receiver::Receiver;
pub use server::{serve, tls_acceptor};
pub use validate::ItemLimits;

/// Limits the receivers enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body accepted as sent (compressed or not), in bytes.
    pub max_request_bytes: usize,
    /// The largest request accepted after decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Limits on single items.
    pub items: ItemLimits,
    /// The longest a request may take, from its headers to the reply.
    pub request_timeout: Duration,
    /// Requests served at once, over both transports; more are refused as retryable.
    pub max_concurrent_requests: usize,
    /// Connections each listener (OTLP/gRPC, OTLP/HTTP, the API) serves at once.
    pub max_connections: usize,
    /// How long a connection has to send a request's headers, from its start or (HTTP/1)
    /// from the reply before.
    pub header_read_timeout: Duration,
    /// Bytes all requests in flight may hold together (bodies as sent, decompressed,
    /// and decoded from JSON); past it, retryable refusals.
    pub max_inflight_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            items: ItemLimits::default(),
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(60),
            max_inflight_bytes: 512 << 20,
        }
    }
}

/// How the receivers are set up.
#[derive(Debug, Clone, Default)]
pub struct IngestConfig {
    /// Limits on requests and items.
    pub limits: Limits,
    /// Who may send, and as which tenant.
    pub auth: Auth,
    /// Origins allowed to send OTLP/HTTP from browsers (`*` for any); none by default.
    pub cors_origins: Vec<String>,
}

/// The two receivers' routers, ready to [`serve`].
#[derive(Debug)]
pub struct Receivers {
    /// OTLP/gRPC.
    pub grpc: axum::Router,
    /// OTLP/HTTP.
    pub http: axum::Router,
}

/// Builds both receivers, handing batches to `next`, counting into `metrics`, and
/// dating requests by `clock`.
pub fn receivers<C: Consumer>(
    next: Arc<C>,
    config: &IngestConfig,
    metrics: Arc<IngestMetrics>,
    clock: Arc<dyn Clock>,
) -> Receivers {
    let receiver = Arc::new(Receiver::new(
        next,
        config.limits,
        Arc::clone(&metrics),
        clock,
    ));
    let permits = Arc::new(Semaphore::new(config.limits.max_concurrent_requests.max(1)));
    let guard = |transport| guard::Guard {
        auth: config.auth.clone(),
        permits: Arc::clone(&permits),
        timeout: config.limits.request_timeout,
        transport,
        metrics: Arc::clone(&metrics),
    };
    Receivers {
        grpc: grpc::router(Arc::clone(&receiver), guard(Transport::Grpc)),
        http: http::router(receiver, guard(Transport::Http), &config.cors_origins),
    }
}
