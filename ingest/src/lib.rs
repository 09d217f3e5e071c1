//! OTLP ingest: the gRPC and HTTP receivers and the buffer between them and compute.
//!
//! Flow: a receiver ([`grpc`], [`http`]) takes an OTLP request, finds its tenant
//! ([`tenant`]), decodes it into a [`slotel_proto::Batch`] and hands it to the next
//! [`slotel_proto::Consumer`], normally the [`buffer::MemoryQueue`]. Refusals become
//! protocol replies in one place ([`reply`]). Ingest never depends on compute: the
//! binary wires the queue to it.

pub mod buffer;
pub mod grpc;
pub mod http;
pub mod reply;
pub mod tenant;

use std::future::Future;

use tokio::net::TcpListener;

/// Limits the receivers enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Serves `router` on `listener` (HTTP/1.1 and HTTP/2 without TLS, as gRPC clients
/// speak it) until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
