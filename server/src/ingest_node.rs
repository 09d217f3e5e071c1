//! [`IngestNode`]: `slotel serve --role ingest`, the OTLP receivers without compute. Every
//! accepted request goes to its signal's Kafka topic and is acknowledged once the
//! brokers have it; the node keeps nothing, so any number of them can run behind a load
//! balancer. Its API port serves `/healthz`, `/readyz` (ready while the brokers answer)
//! and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use slotel_ingest::kafka::KafkaSink;
use slotel_ingest::{IngestConfig, IngestMetrics};
use slotel_model::{Clock, SystemClock};
use slotel_proto::Consumer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{Addresses, Listeners, join_servers, metrics_reply, stop_within};
use crate::config::ServeConfig;

/// A running ingest node.
pub struct IngestNode {
    addresses: Addresses,
    sink: Arc<KafkaSink>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    probe: JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for IngestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestNode")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

/// What the node's API handlers read.
#[derive(Clone)]
struct NodeState {
    registry: Arc<Registry>,
    brokers_up: Arc<AtomicBool>,
}

impl IngestNode {
    /// Connects the producer (in the background), binds every listener and starts
    /// serving.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`IngestNode::build`] on `clock`.
    pub async fn build_with_clock(
        config: ServeConfig,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let kafka = config
            .kafka
            .clone()
            .context("--role ingest needs kafka.brokers")?;
        let sink = Arc::new(KafkaSink::new(kafka, config.limits.max_decompressed_bytes)?);
        let mut registry = Registry::with_prefix("slotel");
        sink.register(&mut registry);
        let ingest_metrics = Arc::new(IngestMetrics::default());
        ingest_metrics.register(&mut registry);
        let receivers = slotel_ingest::receivers(
            Arc::clone(&sink),
            &IngestConfig {
                limits: config.limits,
                auth: config.auth.auth(),
                cors_origins: config.cors.allowed_origins.clone(),
            },
            ingest_metrics,
            clock,
        );
        let listeners = Listeners::bind(&config, "an ingest node").await?;
        registry.register_collector(Box::new(slotel_ingest::server::ConnectionCollector(
            Arc::clone(&listeners.connections),
        )));
        let addresses = listeners.addresses;
        tracing::info!(brokers = %sink.brokers(), "Writing to Kafka.");
        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let brokers_up = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_brokers(
            Arc::clone(&sink),
            Arc::clone(&brokers_up),
            stopped(stop_rx.clone()),
        ));
        let api_router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(NodeState {
                registry: Arc::new(registry),
                brokers_up,
            });
        let servers = listeners.serve(receivers, api_router, &stop_rx);
        Ok(Self {
            addresses,
            sink,
            stop,
            servers,
            probe,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// Where the node listens.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// Runs until `shutdown` completes, then stops within the shutdown timeout: requests
    /// in flight finish (each waits for its record's acknowledgement).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        shutdown.await;
        tracing::info!("Shutting down: finishing requests in flight.");
        let _ = self.stop.send(true);
        let stopping = async {
            join_servers(self.servers).await;
            let _ = self.probe.await;
            self.sink.shutdown().await?;
            Ok(())
        };
        stop_within(
            self.shutdown_timeout,
            stopping,
            "Every acknowledged request is in Kafka.",
        )
        .await
    }
}

/// Asks the brokers for their metadata every few seconds; `/readyz` reports the answer.
async fn probe_brokers(
    sink: Arc<KafkaSink>,
    up: Arc<AtomicBool>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                let s = Arc::clone(&sink);
                let answered = tokio::task::spawn_blocking(move || s.brokers_answer(Duration::from_secs(2)))
                    .await
                    .unwrap_or(false);
                if answered != up.swap(answered, Ordering::AcqRel) {
                    if answered {
                        tracing::info!("The Kafka brokers answer; ready.");
                    } else {
                        tracing::warn!("The Kafka brokers do not answer; not ready.");
                    }
                }
            }
        }
    }
}

async fn readyz(State(state): State<NodeState>) -> Response {
    if state.brokers_up.load(Ordering::Acquire) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "brokers unreachable"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<NodeState>) -> Response {
    metrics_reply(&state.registry)
}
