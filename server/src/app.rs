//! [`App`]: everything `slotel serve` runs, wired in one place: receivers, queue, engine,
//! storage loop, alert loop, notifiers, health sampler and the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use slotel_compute::alerting::{AlertCollector, AlertLoop, Evaluator};
use slotel_compute::{Engine, EngineCollector};
use slotel_ingest::buffer::LogBuffer;
use slotel_ingest::wal::Wal;
use slotel_ingest::{IngestConfig, IngestMetrics};
use slotel_model::{Clock, SloDef, SystemClock};
use slotel_proto::Consumer;
use slotel_query::side::HealthHistory;
use slotel_storage::{CheckpointPlace, CheckpointTarget, Store, StoreCollector};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServeConfig;

/// Where a running [`App`] listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// OTLP/gRPC.
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP.
    pub otlp_http: SocketAddr,
    /// The query API, `/metrics` and the health check.
    pub api: SocketAddr,
    /// Whether the listeners speak TLS.
    pub tls: bool,
}

impl Addresses {
    /// What a user needs to start, as lines: where to send OTLP, where the API, the
    /// Grafana data source and the OpenAPI document are.
    pub fn to_text(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let api = format!("{scheme}://{}", self.api);
        format!(
            "OTLP/gRPC:   {scheme}://{grpc}   (OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://{grpc}, protocol grpc)\n\
             OTLP/HTTP:   {scheme}://{http}   (/v1/traces, /v1/metrics, /v1/logs; protocol http/protobuf)\n\
             API:         {api}/api/v1/slos\n\
             Grafana:     {api}/prometheus   (a Prometheus data source)\n\
             OpenAPI:     {api}/api/v1/openapi.json\n\
             Health:      {api}/healthz, {api}/readyz, {api}/metrics",
            grpc = self.otlp_grpc,
            http = self.otlp_http,
        )
    }

    /// The `listening` event printed at start and written to the listen file.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "listening",
            "otlp_grpc": self.otlp_grpc.to_string(),
            "otlp_http": self.otlp_http.to_string(),
            "api": self.api.to_string(),
            "tls": self.tls,
        })
    }
}

/// A running slotel: listening, counting, flushing and alerting until [`App::run`]'s
/// shutdown future completes.
pub struct App {
    addresses: Addresses,
    engine: Arc<Engine>,
    store: Arc<Store>,
    buffer: Arc<LogBuffer>,
    slo_paths: Vec<PathBuf>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    loops: Vec<JoinHandle<()>>,
    /// Stops the pipeline once the receivers are closed, so it applies all they logged.
    stop_pipeline: watch::Sender<bool>,
    pipeline: JoinHandle<()>,
    shutdown_timeout: Duration,
    /// Held while the app runs: no other slotel uses the data directory meanwhile.
    _data_lock: std::fs::File,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

/// The TLS acceptor of `config`'s certificate, if it has one.
pub(crate) fn tls_of(
    config: &ServeConfig,
) -> anyhow::Result<Option<slotel_ingest::server::TlsAcceptor>> {
    config
        .tls
        .as_ref()
        .map(|t| slotel_ingest::tls_acceptor(&t.cert_file, &t.key_file))
        .transpose()
        .context("cannot set up TLS")
}

/// The connection limits of `config`'s `limits:`.
pub(crate) fn connections_of(config: &ServeConfig) -> Arc<slotel_ingest::server::Connections> {
    Arc::new(slotel_ingest::server::Connections::new(
        config.limits.max_connections,
        config.limits.header_read_timeout,
    ))
}

/// A server's three listeners (OTLP/gRPC, OTLP/HTTP, the API), bound.
pub(crate) struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
    api: TcpListener,
    tls: Option<slotel_ingest::server::TlsAcceptor>,
    /// The connection limits they share, and their counts.
    pub(crate) connections: Arc<slotel_ingest::server::Connections>,
    /// Where they listen.
    pub(crate) addresses: Addresses,
}

impl Listeners {
    /// Binds the addresses of `config` (with its TLS), logging where; `what` names the
    /// node.
    pub(crate) async fn bind(config: &ServeConfig, what: &str) -> anyhow::Result<Self> {
        let tls = tls_of(config)?;
        let grpc = bind("OTLP/gRPC", config.otlp_grpc_addr).await?;
        let http = bind("OTLP/HTTP", config.otlp_http_addr).await?;
        let api = bind("the API", config.api_addr).await?;
        let addresses = Addresses {
            otlp_grpc: grpc.local_addr()?,
            otlp_http: http.local_addr()?,
            api: api.local_addr()?,
            tls: tls.is_some(),
        };
        tracing::info!(
            otlp_grpc = %addresses.otlp_grpc,
            otlp_http = %addresses.otlp_http,
            api = %addresses.api,
            tls = addresses.tls,
            "Listening as {what}."
        );
        Ok(Self {
            grpc,
            http,
            api,
            tls,
            connections: connections_of(config),
            addresses,
        })
    }

    /// Serves the receivers and `api` until `stop` turns true.
    pub(crate) fn serve(
        self,
        receivers: slotel_ingest::Receivers,
        api: axum::Router,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<std::io::Result<()>>> {
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        [
            (self.grpc, receivers.grpc),
            (self.http, receivers.http),
            (self.api, api),
        ]
        .into_iter()
        .map(|(listener, router)| {
            tokio::spawn(slotel_ingest::serve(
                listener,
                router,
                self.tls.clone(),
                Arc::clone(&self.connections),
                stopped(stop.clone()),
            ))
        })
        .collect()
    }
}

/// Runs `stopping` for at most `timeout`; past it, says so with `safe` (why stopping
/// now loses nothing) and returns.
pub(crate) async fn stop_within(
    timeout: Duration,
    stopping: impl std::future::Future<Output = anyhow::Result<()>>,
    safe: &str,
) -> anyhow::Result<()> {
    match tokio::time::timeout(timeout, stopping).await {
        Ok(result) => {
            result?;
            tracing::info!("Stopped.");
        }
        Err(_) => tracing::warn!(
            timeout_ms = timeout.as_millis() as u64,
            "The graceful stop took too long; stopping now. {safe}"
        ),
    }
    Ok(())
}

/// An engine on `clock` with `defs` loaded and the configured maintenance windows.
pub(crate) fn engine_of(
    clock: &Arc<dyn Clock>,
    config: slotel_compute::EngineConfig,
    defs: Vec<SloDef>,
    maintenance: &[slotel_compute::alerting::maintenance::MaintenanceWindow],
) -> anyhow::Result<Engine> {
    let engine = Engine::with_config(Arc::clone(clock), config);
    engine.load(defs);
    for w in maintenance {
        engine
            .maintenance()
            .put(w.clone())
            .map_err(|e| anyhow::anyhow!("maintenance: {e}"))?;
    }
    Ok(engine)
}

/// `/metrics` of a node's `registry`, in the OpenMetrics text format (the ingest and
/// compute nodes', built with Kafka).
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) fn metrics_reply(registry: &Registry) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Waits for the servers to finish their requests in flight, logging any that failed.
pub(crate) async fn join_servers(servers: Vec<JoinHandle<std::io::Result<()>>>) {
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "A server failed."),
            Err(e) => tracing::error!(error = %e, "A server task panicked."),
        }
    }
}

/// Takes the data directory's lock (`DATA_DIR/lock`, an advisory lock the kernel drops
/// when the process ends, however it ends), or says which process holds it: two servers
/// on one write-ahead log and one set of files would corrupt both.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "the data directory {} is in use by another slotel (pid {}); give each server \
                 its own --data-dir",
                dir.display(),
                holder.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(file)
}

/// Reloads the SLO files into `engine`; on any problem the loaded SLOs stay.
fn reload_slos(engine: &Engine, paths: &[PathBuf]) -> Result<usize, slotel_spec::Error> {
    match slotel_spec::load_paths(paths) {
        Ok(defs) => {
            let n = defs.len();
            tracing::info!(slos = n, "Reloaded SLOs.");
            engine.load(defs);
            Ok(n)
        }
        Err(e) => {
            tracing::error!(error = %e, "Reload failed; the previous SLOs stay loaded.");
            Err(e)
        }
    }
}

impl App {
    /// Loads `defs`, restores the windows from storage, binds every listener and starts
    /// every loop; on the system clock.
    pub async fn build(config: ServeConfig, defs: Vec<SloDef>) -> anyhow::Result<App> {
        Self::build_with_clock(config, defs, Arc::new(SystemClock)).await
    }

    /// [`App::build`] on `clock`.
    pub async fn build_with_clock(
        config: ServeConfig,
        defs: Vec<SloDef>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let data_lock = lock_data_dir(&config.data_dir)?;
        tracing::info!(slos = defs.len(), "Loaded SLOs.");
        let engine = Arc::new(engine_of(&clock, config.engine, defs, &config.maintenance)?);
        let store = Arc::new(
            Store::open(&config.storage.url, config.storage.options.clone())
                .with_context(|| format!("cannot open the storage at {}", config.storage.url))?,
        );
        let wal_dir = config.data_dir.join("wal");
        let (wal, report) = Wal::open(&wal_dir, config.wal.options)
            .with_context(|| format!("cannot open the write-ahead log in {}", wal_dir.display()))?;
        tracing::info!(
            segments = report.segments,
            bytes = report.end - report.start,
            torn_bytes = report.torn_bytes,
            "Opened the write-ahead log."
        );
        if let Some(at) = report.repaired_at {
            tracing::warn!(
                position = at,
                dropped_bytes = report.repaired_bytes,
                "--wal-repair dropped the damaged record and everything after it."
            );
        }
        let checkpoint_path = config.data_dir.join("state").join("checkpoint");
        let place = CheckpointPlace::File(checkpoint_path.clone());
        let checkpoint = place.load().await?;
        if let Some(c) = &checkpoint {
            let dropped = store
                .drop_unpublished(c.committed_seq)
                .await
                .context("cannot clean up the files of an unpublished checkpoint")?;
            if dropped > 0 {
                tracing::info!(
                    files = dropped,
                    "Deleted the files of a checkpoint a crash left unpublished; the log replays them."
                );
            }
        }
        let started = std::time::Instant::now();
        let (scan, restored) = store
            .restore(&engine)
            .await
            .context("cannot read the stored SLO data")?;
        let pages = store
            .load_pages(&engine)
            .await
            .context("cannot read the stored minutes of the SLO windows' edges")?;
        tracing::info!(
            files = scan.files,
            corrupt_files = scan.corrupt,
            rows = restored.rows,
            rows_of_unknown_slos = restored.unknown,
            edge_pages = pages.installed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Restored SLO windows from storage."
        );
        let from = match &checkpoint {
            Some(c) => {
                if c.position < wal.start() {
                    anyhow::bail!(
                        "the write-ahead log in {} starts at {} but the checkpoint needs it from {}: \
                         records were removed by hand",
                        wal_dir.display(),
                        wal.start(),
                        c.position
                    );
                }
                if c.position > wal.end() {
                    tracing::warn!(
                        checkpoint = c.position,
                        log_end = wal.end(),
                        "The write-ahead log ends before the checkpoint (it was repaired or cut): \
                         what it lost was checkpointed; new records go after the checkpoint."
                    );
                    wal.advance_to(c.position).with_context(|| {
                        format!(
                            "cannot move the write-ahead log in {} on",
                            wal_dir.display()
                        )
                    })?;
                }
                engine
                    .restore_state(c.position, &c.state)
                    .with_context(|| {
                        format!("cannot use the checkpoint {}", checkpoint_path.display())
                    })?;
                c.position
            }
            None => {
                if wal.end() > wal.start() {
                    tracing::warn!("No checkpoint: replaying the whole write-ahead log.");
                }
                engine.start_at(wal.start());
                wal.start()
            }
        };
        engine.set_ready(false);
        let last_checkpoint = Arc::new(std::sync::atomic::AtomicU64::new(from));
        store.set_checkpoint_target(CheckpointTarget {
            place,
            release: {
                let (wal, last) = (wal.clone(), Arc::clone(&last_checkpoint));
                Box::new(move |position| {
                    last.store(position, std::sync::atomic::Ordering::Release);
                    slotel_proto::log::Log::release(&wal, position);
                })
            },
            pending_bytes: {
                let (wal, last) = (wal.clone(), Arc::clone(&last_checkpoint));
                Box::new(move || {
                    wal.end()
                        .saturating_sub(last.load(std::sync::atomic::Ordering::Acquire))
                })
            },
            max_pending_bytes: config.wal.checkpoint_bytes,
        });
        if checkpoint.is_none() {
            // The first checkpoint says which files were there before the log.
            store.flush(&engine).await;
        }

        let auth = config.auth.auth();

        let mut registry = Registry::with_prefix("slotel");
        let (buffer, feed) = LogBuffer::new(
            wal.clone(),
            config.queue.capacity_batches,
            config.queue.max_bytes,
        );
        let buffer = Arc::new(buffer);
        buffer.register(&mut registry);
        wal.register(&mut registry);
        registry.register_collector(Box::new(crate::pipeline::LogCollector {
            engine: Arc::clone(&engine),
            wal: wal.clone(),
        }));
        let (stop_pipeline, stop_pipeline_rx) = watch::channel(false);
        let pipeline = tokio::spawn(crate::pipeline::run(
            Arc::clone(&engine),
            wal,
            feed,
            from,
            async move {
                let mut rx = stop_pipeline_rx;
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        let ingest_metrics = Arc::new(IngestMetrics::default());
        ingest_metrics.register(&mut registry);
        registry.register_collector(Box::new(EngineCollector(Arc::clone(&engine))));
        registry.register_collector(Box::new(StoreCollector(Arc::clone(&store))));
        let receivers = slotel_ingest::receivers(
            Arc::clone(&buffer),
            &IngestConfig {
                limits: config.limits,
                auth: auth.clone(),
                cors_origins: config.cors.allowed_origins.clone(),
            },
            ingest_metrics,
            clock,
        );

        let listeners = Listeners::bind(&config, "one process").await?;
        registry.register_collector(Box::new(slotel_ingest::server::ConnectionCollector(
            Arc::clone(&listeners.connections),
        )));
        let addresses = listeners.addresses;
        for line in addresses.to_text().lines() {
            tracing::info!("{line}");
        }

        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let alerts_path = config.data_dir.join("state").join("alerts.json");
        let evaluator = Arc::new(Mutex::new(Evaluator::load(&alerts_path)?));
        let notifiers = config.alerting.router(3);
        notifiers.seed(
            evaluator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recently_resolved(),
        );
        let alert_receivers = Arc::new(notifiers.stats());
        registry.register_collector(Box::new(AlertCollector {
            evaluator: Arc::clone(&evaluator),
            notifiers: notifiers.stats(),
        }));
        let external_url = config.alerting.external_url(&addresses.api.to_string());
        let alert_loop = tokio::spawn(
            AlertLoop {
                source: Arc::clone(&engine) as Arc<dyn slotel_compute::alerting::BurnSource>,
                log: Arc::clone(&store) as Arc<dyn slotel_compute::alerting::TransitionLog>,
                evaluator: Arc::clone(&evaluator),
                notifiers,
                state: Arc::new(slotel_compute::alerting::StateFile(alerts_path)),
                interval: config.alerting.evaluation_interval,
                external_url,
            }
            .run(stopped(stop_rx.clone())),
        );
        let reload: slotel_query::Reload = {
            let (engine, paths) = (Arc::clone(&engine), config.slos.clone());
            Arc::new(move || reload_slos(&engine, &paths))
        };
        let flusher = tokio::spawn(slotel_storage::run::run(
            Arc::clone(&engine),
            Arc::clone(&store),
            config.storage.clone(),
            stopped(stop_rx.clone()),
        ));
        let registry = Arc::new(registry);
        let health = Arc::new(HealthHistory::new(Arc::clone(&registry)));
        let health_sampler =
            tokio::spawn(Arc::clone(&health).run(Arc::clone(&engine), stopped(stop_rx.clone())));
        let api_router = slotel_query::router(slotel_query::ApiContext {
            engine: Arc::clone(&engine),
            auth,
            registry,
            reload: Some(reload),
            alerts: Arc::clone(&evaluator),
            store: Some(Arc::clone(&store)),
            options: config.api,
            health,
            receivers: alert_receivers,
        });
        let servers = listeners.serve(receivers, api_router, &stop_rx);
        Ok(App {
            addresses,
            engine,
            store,
            buffer,
            slo_paths: config.slos,
            stop,
            servers,
            // Stopped in this order: alerts, then (after the pipeline drains) storage.
            loops: vec![alert_loop, health_sampler, flusher],
            stop_pipeline,
            pipeline,
            shutdown_timeout: config.shutdown_timeout,
            _data_lock: data_lock,
        })
    }

    /// Where the app listens.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Reloads the SLO files the app was started with (as SIGHUP does) when called; on
    /// any problem the loaded SLOs stay.
    pub fn reloader(
        &self,
    ) -> impl Fn() -> Result<usize, slotel_spec::Error> + Send + Sync + 'static {
        let (engine, paths) = (Arc::clone(&self.engine), self.slo_paths.clone());
        move || reload_slos(&engine, &paths)
    }

    /// Runs until `shutdown` completes, then stops gracefully within the shutdown
    /// timeout: requests in flight finish, the pipeline applies everything logged, the
    /// alert loop hands its last alerts on, and a last checkpoint is written. Past the
    /// timeout it returns anyway: everything acknowledged is in the log.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        shutdown.await;
        tracing::info!("Shutting down: finishing requests in flight.");
        stop_within(
            self.shutdown_timeout,
            self.stop(),
            "Everything acknowledged is in the write-ahead log and is replayed at the next start.",
        )
        .await
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        join_servers(self.servers).await;
        self.buffer.shutdown().await?;
        let _ = self.stop_pipeline.send(true);
        let _ = self.pipeline.await;
        for l in self.loops {
            let _ = l.await;
        }
        // Every logged batch is counted now: the last checkpoint writes what is left.
        self.store.flush(&self.engine).await;
        Ok(())
    }
}

/// Sends a test alert to every configured receiver and reports, per receiver, whether it
/// was delivered within 15 seconds (`slotel alerts test`).
pub async fn test_receivers(config: &ServeConfig) -> Vec<(String, bool)> {
    let notifiers = config.alerting.router(1);
    let stats = notifiers.stats();
    if stats.is_empty() {
        return Vec::new();
    }
    let external_url = config.alerting.external_url(&config.api_addr.to_string());
    notifiers.test(&external_url, SystemClock.now_nanos());
    notifiers.flush(Duration::from_secs(15)).await;
    stats
        .iter()
        .map(|(receiver, s)| {
            (
                receiver.clone(),
                s.sent.load(std::sync::atomic::Ordering::Relaxed) > 0,
            )
        })
        .collect()
}
