//! The `slotel` binary: the command line. `serve` runs [`slotel_server::App`]; the
//! other commands validate SLO files, generate dashboards and rules, and test receivers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slotel_server::{Addresses, App, Role, ServeArgs, ServeConfig};

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
    /// Check SLO files (and a configuration file) without starting a server; reports
    /// every problem with its file, line and column. Exits 1 when any file is invalid.
    Validate {
        /// SLO files or folders of them (default: those the configuration names).
        #[arg(required_unless_present = "config")]
        paths: Vec<PathBuf>,
        /// A configuration file for `slotel serve --config`, checked too.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// The file name endings read in folders (which are walked with their
        /// subfolders); files named directly are read whatever their name.
        #[arg(long, value_delimiter = ',', default_value = "yaml,yml")]
        extensions: Vec<String>,
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
    /// Writes the SLOs of native, OpenSLO or Sloth files as one native or OpenSLO file,
    /// which reads back as the same SLOs.
    Convert {
        /// SLO files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The format to write.
        #[arg(long, value_enum, default_value = "native")]
        to: ConvertTo,
        /// The file to write (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Asks a running slotel why an SLO counts what it counts, or nothing: the spans of
    /// its service, the selector step that drops the others, near misses (case, a
    /// trailing slash) and the services the tenant's spans come from.
    Explain(ExplainArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ConvertTo {
    /// slotel's own YAML.
    Native,
    /// OpenSLO v1 documents (`type: slotel` sources; what OpenSLO has no field for in
    /// the annotation `slotel.native`).
    Openslo,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    /// The SLO's name.
    slo: String,
    /// slotel's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The tenant (sent as X-Scope-OrgID).
    #[arg(long)]
    tenant: Option<String>,
    /// A bearer token, when slotel has `auth.tokens`.
    #[arg(long, env = "SLOTEL_TOKEN")]
    token: Option<String>,
    /// Print the API's JSON instead of sentences.
    #[arg(long)]
    json: bool,
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
        /// The bounds of the spanmetrics duration histogram, in milliseconds (the
        /// connector's `histogram.explicit.buckets`; default: its defaults). A latency
        /// threshold that is not a bound is counted at the bound below it, with a note.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        buckets: Option<Vec<f64>>,
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
        Command::Validate {
            paths,
            config,
            extensions,
        } => validate(paths, config, &extensions),
        Command::Alerts(AlertsCommand::Test(args)) => alerts_test(*args),
        Command::Dashboards(DashboardsCommand::Generate(args)) => dashboards_generate(*args),
        Command::Rules(RulesCommand::Generate { slos, out, buckets }) => {
            rules_generate(&slos, &out, buckets)
        }
        Command::Explain(args) => explain(&args),
        Command::Convert { paths, to, out } => convert(&paths, to, out.as_deref()),
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
    let results = runtime()?.block_on(slotel_server::test_receivers(&config));
    if results.is_empty() {
        println!("no receivers are configured under alerting:");
        return Ok(ExitCode::FAILURE);
    }
    for (receiver, sent) in &results {
        println!("{receiver}: {}", if *sent { "delivered" } else { "FAILED" });
    }
    Ok(if results.iter().all(|(_, sent)| *sent) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn validate(
    mut paths: Vec<PathBuf>,
    config: Option<PathBuf>,
    extensions: &[String],
) -> anyhow::Result<ExitCode> {
    if let Some(file) = config {
        let args = ServeArgs {
            config: Some(file.clone()),
            slos: paths.clone(),
            ..ServeArgs::default()
        };
        match ServeConfig::resolve(args) {
            Ok(c) => {
                println!("{} is a valid configuration", file.display());
                paths = c.slos;
            }
            Err(e) => {
                eprintln!("{e:#}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let paths = &paths[..];
    let extensions: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let (result, notes) = slotel_spec::load_paths_noting(paths, &extensions);
    for n in &notes {
        eprintln!("{n}");
    }
    match result {
        Ok(defs) if defs.is_empty() => {
            eprintln!("no SLOs in {}: nothing to validate", list(paths));
            Ok(ExitCode::FAILURE)
        }
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

/// The paths, for messages.
fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
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
    slotel_dashboards::write(&files, &args.out)?;
    println!(
        "Wrote {} files for {} SLOs under {}",
        files.len(),
        defs.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn convert(paths: &[PathBuf], to: ConvertTo, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(defs) = load_or_report(paths) else {
        return Ok(ExitCode::FAILURE);
    };
    let text = match to {
        ConvertTo::Native => slotel_spec::export::to_native(&defs),
        ConvertTo::Openslo => slotel_spec::export::to_openslo(&defs),
    };
    match out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("Wrote {} SLOs to {}", defs.len(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut url = reqwest::Url::parse(&args.api)
        .with_context(|| format!("--api {:?} is not a URL", args.api))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("--api {:?} cannot take a path", args.api))?
        .pop_if_empty()
        .extend(["api", "v1", "slos", &args.slo, "explain"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = &args.tenant {
            req = req.header("x-scope-orgid", t);
        }
        if let Some(t) = &args.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach slotel at {}", args.api))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.context("slotel's reply is not JSON")?;
        anyhow::Ok((status, body))
    })?;
    if !status.is_success() {
        eprintln!(
            "error: {}",
            body["error"]
                .as_str()
                .unwrap_or("slotel refused the request")
        );
        return Ok(ExitCode::FAILURE);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} (tenant {}, service {:?})",
        body["slo"].as_str().unwrap_or_default(),
        body["tenant"].as_str().unwrap_or_default(),
        body["service"].as_str().unwrap_or_default()
    );
    println!("  events in its window: {}", body["events_in_window"]);
    println!(
        "  spans of service {:?} since slotel started: {}",
        body["service"].as_str().unwrap_or_default(),
        body["service_spans"]
    );
    for f in body["findings"].as_array().into_iter().flatten() {
        println!("  - {}", f.as_str().unwrap_or_default());
    }
    let services = body["tenant_services"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !services.is_empty() {
        println!("  services of the tenant (spans since start):");
        for s in services {
            println!(
                "    {:?} {}{}",
                s["service"].as_str().unwrap_or_default(),
                s["spans"],
                if s["has_slos"] == true {
                    ""
                } else {
                    " (no SLO)"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rules_generate(
    paths: &[PathBuf],
    out: &Path,
    buckets: Option<Vec<f64>>,
) -> anyhow::Result<ExitCode> {
    use slotel_dashboards::rules;
    let mut options = rules::Options::default();
    if let Some(mut b) = buckets {
        if let Some(bad) = b.iter().find(|x| !x.is_finite() || **x <= 0.0) {
            anyhow::bail!("--buckets: {bad} is not a positive number of milliseconds");
        }
        b.sort_by(f64::total_cmp);
        b.dedup();
        options.buckets_ms = b;
    }
    let Some(defs) = load_or_report(paths) else {
        return Ok(ExitCode::FAILURE);
    };
    let rules::Generated {
        text,
        skipped,
        notes,
    } = rules::generate(&defs, &options);
    for s in &skipped {
        eprintln!("Left out {}: {}", s.slo, s.reason);
    }
    for s in &notes {
        eprintln!("Note on {}: {}", s.slo, s.reason);
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
    if config.role == Role::Ingest {
        return serve_ingest(config);
    }
    let (defs, notes) =
        slotel_spec::load_paths_noting(&config.slos, &slotel_spec::DEFAULT_EXTENSIONS);
    let defs = defs.map_err(|e| anyhow::anyhow!("invalid SLO files, not starting:\n{e}"))?;
    for n in &notes {
        tracing::warn!(note = %n, "An SLO file says something slotel does not use.");
    }
    if config.role == Role::Compute {
        return serve_compute(config, defs);
    }
    let listen_file = config.listen_file.clone();
    runtime()?.block_on(async {
        let app = App::build(config, defs).await?;
        announce(app.addresses(), listen_file.as_deref())?;
        let reload = app.reloader();
        app.run(wait_for_signals(reload)).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--role ingest`.
#[cfg(feature = "kafka")]
fn serve_ingest(config: ServeConfig) -> anyhow::Result<ExitCode> {
    let listen_file = config.listen_file.clone();
    runtime()?.block_on(async {
        let node = slotel_server::IngestNode::build(config).await?;
        announce(node.addresses(), listen_file.as_deref())?;
        // An ingest node has no SLO files to reload.
        node.run(wait_for_signals(|| Ok(0))).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--role ingest` in a build without Kafka.
#[cfg(not(feature = "kafka"))]
fn serve_ingest(_: ServeConfig) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "--role ingest writes to Kafka, and this slotel was built without it: build with \
         `cargo build --release --features kafka`"
    )
}

/// `--role compute`.
#[cfg(feature = "kafka")]
fn serve_compute(config: ServeConfig, defs: Vec<slotel_model::SloDef>) -> anyhow::Result<ExitCode> {
    let listen_file = config.listen_file.clone();
    runtime()?.block_on(async {
        let node = slotel_server::ComputeNode::build(config, defs).await?;
        announce_json(node.to_json(), listen_file.as_deref())?;
        let reload = node.reloader();
        node.run(wait_for_signals(reload)).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--role compute` in a build without Kafka.
#[cfg(not(feature = "kafka"))]
fn serve_compute(_: ServeConfig, _: Vec<slotel_model::SloDef>) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "--role compute reads from Kafka, and this slotel was built without it: build with \
         `cargo build --release --features kafka`"
    )
}

/// Prints where the server listens, and writes it to the listen file.
fn announce(addresses: Addresses, listen_file: Option<&Path>) -> anyhow::Result<()> {
    announce_json(addresses.to_json(), listen_file)
}

/// Prints the `listening` event `addrs`, and writes it to the listen file.
fn announce_json(addrs: serde_json::Value, listen_file: Option<&Path>) -> anyhow::Result<()> {
    println!("{addrs}");
    if let Some(path) = listen_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addrs.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write the listen file {}", path.display()))?;
    }
    Ok(())
}

/// Waits for SIGINT or SIGTERM; reloads the SLO files on SIGHUP in the meantime.
async fn wait_for_signals(reload: impl Fn() -> Result<usize, slotel_spec::Error>) {
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
                let _ = reload();
            }
        }
    }
}
