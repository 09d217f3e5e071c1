//! The accept loop both receivers and the API run on: HTTP/1.1 and HTTP/2 (cleartext
//! h2c, as gRPC clients speak it, or TLS with ALPN), graceful shutdown, HTTP/2 flow
//! control windows sized for OTLP batches, and the connection limits ([`Connections`]):
//! a cap on the connections each listener serves at once, and a deadline for a
//! connection's first request headers (a client that trickles them is cut off).

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
pub use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long a client has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every listener allows its connections, and what it counted.
#[derive(Debug, Default)]
pub struct Connections {
    /// Connections each listener serves at once; one more is closed as it is accepted.
    pub max_per_listener: usize,
    /// How long a connection has to send its first request's headers (TLS handshake
    /// included), and an HTTP/1 connection each next request's (from the reply before:
    /// an idle keep-alive connection is closed after it).
    pub header_read_timeout: Duration,
    /// Connections open now, over every listener.
    pub open: AtomicI64,
    /// Connections closed as they were accepted: the listener had its maximum.
    pub refused: AtomicU64,
    /// Connections closed because their headers did not arrive in time.
    pub timed_out: AtomicU64,
}

impl Connections {
    /// Limits of `max_per_listener` connections and `header_read_timeout`.
    pub fn new(max_per_listener: usize, header_read_timeout: Duration) -> Self {
        Self {
            max_per_listener: max_per_listener.max(1),
            header_read_timeout,
            ..Self::default()
        }
    }
}

/// [`Connections`]' counts for `/metrics`: `connections_open`, `connections_refused`.
#[derive(Debug)]
pub struct ConnectionCollector(pub Arc<Connections>);

impl prometheus_client::collector::Collector for ConnectionCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let c = &self.0;
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let open = ConstGauge::new(c.open.load(Ordering::Relaxed));
        open.encode(encoder.encode_descriptor(
            "connections_open",
            "Connections open now, over the three listeners",
            None,
            open.metric_type(),
        )?)?;
        let mut refused = encoder.encode_descriptor(
            "connections_refused",
            "Connections closed by slotel: reason limit (the listener had limits.max_connections open) or header_timeout (no request headers within limits.header_read_timeout)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, n) in [
            ("limit", c.refused.load(Ordering::Relaxed)),
            ("header_timeout", c.timed_out.load(Ordering::Relaxed)),
        ] {
            ConstCounter::new(n).encode(refused.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

/// Builds a TLS acceptor from PEM files (a certificate chain and its private key),
/// offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let invalid = |p: &Path, what: String| TlsError::Invalid {
        path: p.display().to_string(),
        what,
    };
    let cert_pem = read(cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(cert, "no certificate found".into()));
    }
    let key_pem = read(key)?;
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| invalid(key, format!("not a PEM private key: {e}")))?
        .ok_or_else(|| invalid(key, "no private key found".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| invalid(key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn builder(header_read_timeout: Duration) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    b.http2()
        // OTLP batches are large: default 64 KiB windows make a 1 MiB export wait for
        // many window updates.
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .max_concurrent_streams(256)
        .max_header_list_size(64 << 10);
    b.http1().max_buf_size(64 << 10);
    b
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish. With `tls`, every connection is TLS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(connections.max_per_listener));
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Closed at once: the client sees a reset and may try another node.
            connections.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "Too many connections; closed one as it was accepted.");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let (signal_tx, close_rx) = (signal_tx.clone(), close_rx.clone());
        let tls = tls.clone();
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            connections.open.fetch_add(1, Ordering::Relaxed);
            // The first request's headers are due by then, TLS handshake included.
            let deadline = tokio::time::Instant::now() + connections.header_read_timeout;
            let handshake = TLS_HANDSHAKE_TIMEOUT.min(connections.header_read_timeout);
            match tls {
                None => serve_connection(tcp, router, &signal_tx, deadline, &connections).await,
                Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(tcp)).await
                {
                    Ok(Ok(stream)) => {
                        serve_connection(stream, router, &signal_tx, deadline, &connections).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                    Err(_) => {
                        connections.timed_out.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "TLS handshake timed out.");
                    }
                },
            }
            connections.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// Serves one connection until it ends, the server drains, or no request headers came
/// by `deadline` (the version sniffing of a new connection has no timeout of its own;
/// HTTP/1's header-read timeout covers the requests after the first).
async fn serve_connection<IO>(
    io: IO,
    router: Router,
    signal_tx: &watch::Sender<()>,
    deadline: tokio::time::Instant,
    connections: &Connections,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requested = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&requested);
    let service = router.map_request(move |req: hyper::Request<Incoming>| {
        seen.store(true, Ordering::Relaxed);
        req.map(axum::body::Body::new)
    });
    let builder = builder(connections.header_read_timeout);
    let mut conn = pin!(
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
    );
    let mut closed = pin!(signal_tx.closed());
    let mut first_headers = pin!(tokio::time::sleep_until(deadline));
    let mut draining = false;
    let mut waiting = true;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // HTTP/1's own header-read timeout, before any request (after one,
                    // it closes a keep-alive connection left idle: not a refusal).
                    if !requested.load(Ordering::Relaxed)
                        && e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout)
                    {
                        connections.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(error = %e, "Connection ended with an error.");
                }
                break;
            }
            _ = &mut closed, if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut first_headers, if waiting => {
                if requested.load(Ordering::Relaxed) {
                    waiting = false;
                } else {
                    connections.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("No request headers in time; closing the connection.");
                    break;
                }
            }
        }
    }
}
