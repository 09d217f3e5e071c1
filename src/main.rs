//! The `slotel` binary: command line, configuration, and the wiring of the stages
//! (receivers → queue → engine, and the query API over the engine).

mod config;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use slotel_compute::Engine;
use slotel_compute::alert::{AlertState, Evaluator};
use slotel_compute::notify::Router;
use slotel_ingest::buffer::MemoryQueue;
use slotel_ingest::{IngestConfig, IngestMetrics};
use slotel_model::{Clock, SystemClock};
use slotel_proto::auth::Auth;
use slotel_proto::{Consumer, Tenant};
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ServeArgs, ServeConfig, StorageConfig};
use slotel_storage::alert_events::AlertEvent;
use slotel_storage::{SLI_MINUTE, Store};

/// SLIs, error budgets and burn-rate alerts computed from raw OpenTelemetry data.
#[derive(Parser, Debug)]
#[command(name = "slotel", version, about)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLOTEL_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Receive OTLP, compute SLOs, and serve the API.
    Serve(Box<ServeArgs>),
    /// Check SLO files without starting a server; reports every problem with its file,
    /// line and column. Exits 1 when any file is invalid.
    Validate {
        /// SLO files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Alerting tools.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Grafana dashboards from SLO files.
    #[command(subcommand)]
    Dashboards(DashboardsCommand),
    /// Prometheus rules from SLO files.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand, Debug)]
enum DashboardsCommand {
    /// Writes the executive, on-call, overview and detail dashboards, and Grafana
    /// provisioning for them and for a data source on slotel, under `--out`.
    Generate(Box<DashboardsArgs>),
}

#[derive(clap::Args, Debug)]
struct DashboardsArgs {
    /// SLO files or folders of them.
    #[arg(long, required = true, num_args = 1..)]
    slos: Vec<PathBuf>,
    /// The folder to write into (created when missing).
    #[arg(long)]
    out: PathBuf,
    /// slotel's Prometheus API, for the provisioned data source.
    #[arg(long, default_value = "http://127.0.0.1:8080/prometheus")]
    prometheus_url: String,
    /// The provisioned data source's name and uid.
    #[arg(long, default_value = "slotel")]
    datasource: String,
    /// The tenant the data source reads (sent as X-Scope-OrgID).
    #[arg(long)]
    tenant: Option<String>,
    /// The SLO label the executive view groups by.
    #[arg(long, default_value = "team")]
    team_label: String,
    /// One detail dashboard per service or per SLO.
    #[arg(long, value_enum, default_value = "service")]
    detail: DetailArg,
    /// The Grafana folder of the dashboards.
    #[arg(long, default_value = "SLOs")]
    folder: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DetailArg {
    Service,
    Slo,
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Writes Prometheus recording and alerting rules equivalent to the SLOs: span SLIs
    /// on the Collector's spanmetrics, metric SLIs on their own series. SLOs that
    /// Prometheus cannot compute are listed on stderr and in the file's header.
    Generate {
        /// SLO files or folders of them.
        #[arg(long, required = true, num_args = 1..)]
        slos: Vec<PathBuf>,
        /// The rule file to write (`-` for stdout).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum AlertsCommand {
    /// Sends a test notification through every receiver of the configuration's
    /// `alerting:` section, and says which received it. Exits 1 when any failed.
    Test(Box<ServeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Validate { paths } => validate(&paths),
        Command::Alerts(AlertsCommand::Test(args)) => alerts_test(*args),
        Command::Dashboards(DashboardsCommand::Generate(args)) => dashboards_generate(*args),
        Command::Rules(RulesCommand::Generate { slos, out }) => rules_generate(&slos, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn alerts_test(mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.slos.is_empty() {
        // The SLO files are not needed to test receivers.
        args.slos.push(PathBuf::from("-"));
    }
    let config = ServeConfig::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let notifiers = Router::start(
            &config.alerting.notify_config(1),
            &config.alerting.routes(1),
        );
        let stats = notifiers.stats();
        if stats.is_empty() {
            println!("no receivers are configured under alerting:");
            return Ok(ExitCode::FAILURE);
        }
        let external_url = config.alerting.external_url(&config.api_addr.to_string());
        let now = SystemClock.now_nanos();
        notifiers.test(&external_url, now);
        notifiers.flush(Duration::from_secs(15)).await;
        let mut ok = true;
        for (receiver, s) in &stats {
            let sent = s.sent.load(std::sync::atomic::Ordering::Relaxed) > 0;
            ok &= sent;
            println!("{receiver}: {}", if sent { "delivered" } else { "FAILED" });
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match slotel_spec::load_paths(paths) {
        Ok(defs) => {
            println!("{} SLOs are valid", defs.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn load_or_report(paths: &[PathBuf]) -> Option<Vec<slotel_model::SloDef>> {
    match slotel_spec::load_paths(paths) {
        Ok(defs) => Some(defs),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

fn dashboards_generate(args: DashboardsArgs) -> anyhow::Result<ExitCode> {
    let Some(defs) = load_or_report(&args.slos) else {
        return Ok(ExitCode::FAILURE);
    };
    let opts = slotel_dashboards::Options {
        prometheus_url: args.prometheus_url,
        datasource_name: args.datasource,
        tenant: args.tenant,
        team_label: args.team_label,
        detail: match args.detail {
            DetailArg::Service => slotel_dashboards::Detail::PerService,
            DetailArg::Slo => slotel_dashboards::Detail::PerSlo,
        },
        folder: args.folder,
    };
    let files = slotel_dashboards::dashboards(&defs, &opts);
    let dashboards_dir = args.out.join(slotel_dashboards::DASHBOARD_DIR);
    // Dashboards of SLOs that no longer exist must not linger.
    if dashboards_dir.is_dir() {
        for entry in std::fs::read_dir(&dashboards_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    for f in &files {
        let path = args.out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "Wrote {} files for {} SLOs under {}",
        files.len(),
        defs.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn rules_generate(paths: &[PathBuf], out: &Path) -> anyhow::Result<ExitCode> {
    let Some(defs) = load_or_report(paths) else {
        return Ok(ExitCode::FAILURE);
    };
    let (text, skipped) = slotel_dashboards::rules::generate(&defs);
    for s in &skipped {
        eprintln!("Left out {}: {}", s.slo, s.reason);
    }
    if out == Path::new("-") {
        print!("{text}");
    } else {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!(
            "Wrote rules for {} of {} SLOs to {}",
            defs.len() - skipped.len(),
            defs.len(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig::resolve(args)?;
    let defs = slotel_spec::load_paths(&config.slos)
        .map_err(|e| anyhow::anyhow!("invalid SLO files, not starting:\n{e}"))?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, defs))?;
    Ok(ExitCode::SUCCESS)
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

async fn run(config: ServeConfig, defs: Vec<slotel_model::SloDef>) -> anyhow::Result<()> {
    let engine = Arc::new(Engine::with_config(Arc::new(SystemClock), config.engine));
    tracing::info!(slos = defs.len(), "Loaded SLOs.");
    engine.load(defs);
    for w in &config.maintenance {
        engine
            .maintenance()
            .put(w.clone())
            .map_err(|e| anyhow::anyhow!("maintenance: {e}"))?;
    }
    let store = Arc::new(
        Store::open(&config.storage.url, config.storage.options.clone())
            .with_context(|| format!("cannot open the storage at {}", config.storage.url))?,
    );
    restore(&engine, &store).await?;

    let tls = match &config.tls {
        Some(t) => Some(
            slotel_ingest::tls_acceptor(&t.cert_file, &t.key_file).context("cannot set up TLS")?,
        ),
        None => None,
    };
    let auth = if config.auth.tokens.is_empty() {
        Auth::open()
    } else {
        Auth::with_tokens(
            config
                .auth
                .tokens
                .iter()
                .map(|t| (t.token.clone(), Tenant::from(t.tenant.as_str()))),
        )
    };

    let mut registry = Registry::with_prefix("slotel");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let queue = Arc::new(MemoryQueue::start(
        config.queue_capacity_batches,
        config.queue_max_bytes,
        workers,
        Arc::clone(&engine),
    ));
    queue.register(&mut registry);
    let ingest_metrics = Arc::new(IngestMetrics::default());
    ingest_metrics.register(&mut registry);
    registry.register_collector(Box::new(EngineCollector(Arc::clone(&engine))));
    registry.register_collector(Box::new(StoreCollector(Arc::clone(&store))));
    let receivers = slotel_ingest::receivers(
        Arc::clone(&queue),
        &IngestConfig {
            limits: config.limits,
            auth: auth.clone(),
            cors_origins: config.cors.allowed_origins.clone(),
        },
        ingest_metrics,
    );

    let grpc = bind("OTLP/gRPC", config.otlp_grpc_addr).await?;
    let http = bind("OTLP/HTTP", config.otlp_http_addr).await?;
    let api = bind("the API", config.api_addr).await?;
    let addrs = serde_json::json!({
        "event": "listening",
        "otlp_grpc": grpc.local_addr()?.to_string(),
        "otlp_http": http.local_addr()?.to_string(),
        "api": api.local_addr()?.to_string(),
        "tls": tls.is_some(),
    });
    tracing::info!(
        otlp_grpc = %addrs["otlp_grpc"].as_str().unwrap_or_default(),
        otlp_http = %addrs["otlp_http"].as_str().unwrap_or_default(),
        api = %addrs["api"].as_str().unwrap_or_default(),
        tls = tls.is_some(),
        "Listening."
    );
    println!("{addrs}");
    if let Some(path) = &config.listen_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addrs.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write the listen file {}", path.display()))?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let alerts_path = config.data_dir.join("state").join("alerts.json");
    let evaluator = Arc::new(Mutex::new(Evaluator::load(&alerts_path).with_context(
        || format!("cannot read the alert state {}", alerts_path.display()),
    )?));
    let notifiers = Router::start(
        &config.alerting.notify_config(3),
        &config.alerting.routes(3),
    );
    let alert_receivers = Arc::new(notifiers.stats());
    registry.register_collector(Box::new(AlertCollector {
        evaluator: Arc::clone(&evaluator),
        notifiers: notifiers.stats(),
    }));
    let external_url = config
        .alerting
        .external_url(addrs["api"].as_str().unwrap_or_default());
    let alert_loop = tokio::spawn(run_alerting(
        AlertLoop {
            engine: Arc::clone(&engine),
            store: Arc::clone(&store),
            evaluator: Arc::clone(&evaluator),
            notifiers,
            state_path: alerts_path,
            interval: config.alerting.evaluation_interval,
            external_url,
        },
        stopped(stop_rx.clone()),
    ));
    let reload: slotel_query::Reload = {
        let (engine, paths) = (Arc::clone(&engine), config.slos.clone());
        Arc::new(move || reload_slos(&engine, &paths))
    };
    let flusher = tokio::spawn(run_storage(
        Arc::clone(&engine),
        Arc::clone(&store),
        config.storage.clone(),
        stopped(stop_rx.clone()),
    ));
    let registry = Arc::new(registry);
    let health = Arc::new(slotel_query::side::HealthHistory::new(Arc::clone(
        &registry,
    )));
    let health_sampler = tokio::spawn(sample_health(
        Arc::clone(&engine),
        Arc::clone(&health),
        stopped(stop_rx.clone()),
    ));
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
    let servers = [
        tokio::spawn(slotel_ingest::serve(
            grpc,
            receivers.grpc,
            tls.clone(),
            stopped(stop_rx.clone()),
        )),
        tokio::spawn(slotel_ingest::serve(
            http,
            receivers.http,
            tls.clone(),
            stopped(stop_rx.clone()),
        )),
        tokio::spawn(slotel_ingest::serve(
            api,
            api_router,
            tls,
            stopped(stop_rx.clone()),
        )),
    ];

    wait_for_signals(&engine, &config.slos).await;
    tracing::info!("Shutting down: finishing requests in flight.");
    let _ = stop_tx.send(true);
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "A server failed."),
            Err(e) => tracing::error!(error = %e, "A server task panicked."),
        }
    }
    let _ = alert_loop.await;
    queue.shutdown().await?;
    // Every batch is counted now: the last flush writes what is left.
    let _ = flusher.await;
    let _ = health_sampler.await;
    store.flush(&engine).await;
    tracing::info!("Stopped.");
    Ok(())
}

/// Rebuilds the engine's windows from the stored minutes of every loaded SLO.
async fn restore(engine: &Engine, store: &Store) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let now_minute = jiff::Timestamp::now().as_second().div_euclid(60);
    let horizon = engine
        .tenants()
        .iter()
        .flat_map(|t| engine.slos(t))
        .map(|d| i64::from(d.window.max_minutes()))
        .max()
        .unwrap_or(0)
        .max(4320);
    let mut stats = slotel_compute::RestoreStats::default();
    let scan = store
        .scan(
            SLI_MINUTE,
            None,
            now_minute - horizon,
            now_minute + 60,
            |rows| {
                let s = engine.restore(rows);
                stats.rows += s.rows;
                stats.unknown += s.unknown;
                stats.too_old += s.too_old;
            },
        )
        .await
        .context("cannot read the stored SLO data")?;
    tracing::info!(
        files = scan.files,
        corrupt_files = scan.corrupt,
        rows = stats.rows,
        rows_of_unknown_slos = stats.unknown,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Restored SLO windows from storage."
    );
    Ok(())
}

/// Flushes every `flush_interval` and runs compaction, rollups and retention every
/// `maintenance_interval`, until `stop` completes.
async fn run_storage(
    engine: Arc<Engine>,
    store: Arc<Store>,
    config: StorageConfig,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut flush_tick = tokio::time::interval(config.flush_interval);
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut maintain_tick = tokio::time::interval(config.maintenance_interval);
    maintain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Flush early when the unflushed tail grows past `flush_max_rows`.
    let mut size_tick = tokio::time::interval(Duration::from_millis(500));
    size_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_rows = config.flush_max_rows as u64;
    let pending = || {
        engine
            .stats()
            .tail_cells
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // After a flush that left rows behind (a failing store), size waits for the interval.
    let mut size_blocked = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = flush_tick.tick() => {
                store.flush(&engine).await;
                size_blocked = false;
            }
            _ = size_tick.tick(), if !size_blocked => {
                if pending() >= max_rows {
                    store.flush(&engine).await;
                    size_blocked = pending() >= max_rows;
                }
            }
            _ = maintain_tick.tick() => {
                let today = jiff::Timestamp::now().as_second().div_euclid(86_400);
                if let Err(e) = store.maintain(today).await {
                    tracing::error!(error = %e, "Storage maintenance failed; it runs again later.");
                }
            }
        }
    }
}

/// Samples slotel's own metrics into the health history every 15 seconds (the last
/// sample of each minute is kept), until `stop` completes.
async fn sample_health(
    engine: Arc<Engine>,
    health: Arc<slotel_query::side::HealthHistory>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => health.record(engine.now_nanos()),
        }
    }
}

/// Evaluates the alert rules every `interval`, logs and saves every change, and hands
/// the alerts to the notifiers, until `stop` completes.
/// What the alert loop works with.
struct AlertLoop {
    engine: Arc<Engine>,
    /// Where alert state changes are recorded (`alert_events`).
    store: Arc<Store>,
    evaluator: Arc<Mutex<Evaluator>>,
    notifiers: Router,
    /// The alert state file.
    state_path: PathBuf,
    interval: Duration,
    /// The base of links in alerts.
    external_url: String,
}

async fn run_alerting(l: AlertLoop, stop: impl std::future::Future<Output = ()>) {
    let AlertLoop {
        engine,
        store,
        evaluator,
        notifiers,
        state_path,
        interval,
        external_url,
    } = l;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        let (now, snapshot) = engine.burn_snapshot();
        let mut ev = evaluator.lock().unwrap_or_else(|e| e.into_inner());
        let transitions = ev.evaluate(now, &snapshot);
        for t in &transitions {
            let to = match t.to {
                AlertState::Firing { .. } => "firing",
                AlertState::Pending { .. } => "pending",
                AlertState::Inactive => "inactive",
            };
            tracing::warn!(tenant = %t.tenant, slo = %t.slo, tier = %t.tier, state = to, "Alert changed state.");
        }
        if !transitions.is_empty()
            && let Err(e) = ev.save(&state_path)
        {
            tracing::error!(error = %e, path = %state_path.display(), "Cannot save the alert state.");
        }
        // Valid for four intervals, as Prometheus does, so that a missed resend does not
        // resolve the alert.
        let valid = (interval * 4).max(Duration::from_secs(60));
        let maintenance = engine.maintenance();
        let silenced = |labels: &std::collections::BTreeMap<String, String>| {
            let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
            maintenance
                .silences(get("tenant"), get("slo"), get("service"), now)
                .is_some()
        };
        store.record(transitions.iter().map(|t| {
            let state = |s: &AlertState| match s {
                AlertState::Firing { .. } => "firing",
                AlertState::Pending { .. } => "pending",
                AlertState::Inactive => "inactive",
            };
            AlertEvent {
                tenant: t.tenant.clone(),
                time_ms: t.at.div_euclid(1_000_000),
                slo: t.slo.clone(),
                tier: t.tier.clone(),
                severity: t.severity.as_str().to_string(),
                from: state(&t.from).to_string(),
                to: state(&t.to).to_string(),
                burn_rate_long: t.burn_rates.0,
                burn_rate_short: t.burn_rates.1,
                silenced: silenced(&t.labels),
                labels: serde_json::to_string(&t.labels).unwrap_or_default(),
            }
        }));
        notifiers.notify(&ev, &transitions, now, valid, &external_url, &silenced);
    }
    notifiers.flush(Duration::from_secs(5)).await;
}

/// Exposes the alerts and the notifiers' counters on `/metrics`.
#[derive(Debug)]
struct AlertCollector {
    evaluator: Arc<Mutex<Evaluator>>,
    notifiers: Vec<(String, Arc<slotel_compute::notify::NotifyStats>)>,
}

impl Collector for AlertCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let active = self
            .evaluator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active(None);
        let firing = active
            .iter()
            .filter(|a| matches!(a.state, AlertState::Firing { .. }))
            .count();
        let gauge = ConstGauge::new(firing as i64);
        let metric = encoder.encode_descriptor(
            "alerts_firing",
            "Burn-rate alerts firing now",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)?;
        for (what, help) in [
            ("sent", "Notifications delivered, by receiver"),
            (
                "failed",
                "Notifications that failed after every attempt, by receiver",
            ),
            (
                "dropped",
                "Notifications dropped because the receiver's outbox was full",
            ),
        ] {
            let name = format!("notifications_{what}");
            let mut family = encoder.encode_descriptor(
                &name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (receiver, stats) in &self.notifiers {
                let value = match what {
                    "sent" => stats.sent.load(Relaxed),
                    "failed" => stats.failed.load(Relaxed),
                    _ => stats.dropped.load(Relaxed),
                };
                let labels = [("receiver", receiver.as_str())];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(value).encode(metric)?;
            }
        }
        Ok(())
    }
}

/// Exposes the engine's counters on `/metrics`.
#[derive(Debug)]
struct EngineCollector(Arc<Engine>);

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.0.stats();
        let counters = [
            (
                "engine_spans_seen",
                "Spans the engine classified",
                &s.spans_seen,
            ),
            (
                "engine_log_records_seen",
                "Log records the engine classified",
                &s.log_records_seen,
            ),
            (
                "engine_data_points_seen",
                "Metric data points the engine received",
                &s.data_points_seen,
            ),
            (
                "engine_events_counted",
                "(item, SLO) events counted into SLO windows",
                &s.events_counted,
            ),
            (
                "engine_events_too_old",
                "Events older than their SLO's horizon, not counted",
                &s.events_too_old,
            ),
            (
                "engine_events_in_future",
                "Events dated too far in the future, not counted",
                &s.events_in_future,
            ),
            (
                "engine_spans_duplicate",
                "Spans seen again within the de-duplication horizon, not counted again",
                &s.spans_duplicate,
            ),
            (
                "engine_group_overflow_events",
                "Events of grouped SLOs counted in the __overflow__ group",
                &s.group_overflow_events,
            ),
            (
                "engine_events_in_maintenance",
                "Events left out of their SLI by a maintenance window",
                &s.events_in_maintenance,
            ),
            (
                "engine_series_over_cap",
                "Metric points not counted because their SLO tracks too many series",
                &s.series_over_cap,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let newest = s.newest_event_nanos.load(Relaxed);
        if newest > 0 {
            let age = (self.0.now_nanos() - newest) as f64 / 1e9;
            let gauge = ConstGauge::new(age);
            let metric = encoder.encode_descriptor(
                "engine_newest_event_age_seconds",
                "How far the newest event counted lies behind the clock: the ingestion lag",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The storage counters, for `/metrics`.
#[derive(Debug)]
struct StoreCollector(Arc<Store>);

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.0.stats();
        let counters = [
            (
                "storage_files_written",
                "Parquet files written by flushes",
                &s.files_written,
            ),
            (
                "storage_rows_written",
                "Rows written by flushes",
                &s.rows_written,
            ),
            (
                "storage_bytes_written",
                "Bytes written by flushes",
                &s.bytes_written,
            ),
            (
                "storage_write_errors",
                "Flushes of a partition that failed; their rows stay in memory and are retried",
                &s.write_errors,
            ),
            (
                "storage_corrupt_files",
                "Stored files that could not be read and were skipped",
                &s.corrupt_files,
            ),
            (
                "storage_compactions",
                "Partitions merged into one file",
                &s.compactions,
            ),
            (
                "storage_partitions_expired",
                "Partitions deleted by retention",
                &s.partitions_expired,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Reloads the SLO files into `engine`; on any problem the loaded SLOs stay.
fn reload_slos(engine: &Engine, paths: &[PathBuf]) -> Result<usize, String> {
    match slotel_spec::load_paths(paths) {
        Ok(defs) => {
            let n = defs.len();
            tracing::info!(slos = n, "Reloaded SLOs.");
            engine.load(defs);
            Ok(n)
        }
        Err(e) => {
            tracing::error!(error = %e, "Reload failed; the previous SLOs stay loaded.");
            Err(e.to_string())
        }
    }
}

/// Waits for SIGINT or SIGTERM; reloads the SLO files on SIGHUP in the meantime.
async fn wait_for_signals(engine: &Engine, slo_paths: &[PathBuf]) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("Cannot install signal handlers; stopping on Ctrl-C only.");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                let _ = reload_slos(engine, slo_paths);
            }
        }
    }
}
