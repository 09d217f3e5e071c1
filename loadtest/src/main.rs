//! `loadtest`: sends seeded OTLP span traffic to slotel at a given rate and writes the
//! ground truth of what the server acknowledged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use slotel_loadtest::{BatchTruth, Generator, Route, Scenario, SignalOf, TruthBook, logs_for};
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

/// Sends seeded OTLP spans to an OTLP endpoint and records what was acknowledged.
#[derive(Parser, Debug)]
#[command(name = "loadtest", version, about)]
struct Args {
    /// The OTLP endpoint (gRPC: the server address; HTTP: the base URL, `/v1/traces` is added).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// The OTLP transport.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    protocol: Protocol,
    /// Spans per second; 0 sends as fast as the server takes them.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to send (e.g. 10s, 2m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Send exactly this many spans instead of rate × duration.
    #[arg(long)]
    spans: Option<u64>,
    /// The traffic: `routes` sends the `--route`s with three attributes a span; `wide`
    /// sends 90 routes over 20 services with the ten attributes of an instrumented HTTP
    /// server (write its 200 SLOs with `--write-slos`).
    #[arg(long, value_enum, default_value_t = Workload::Routes)]
    workload: Workload,
    /// Generate this many batches before sending and then send them again and again,
    /// each time with fresh span ids written into the encoded bytes: the generator then
    /// costs a copy per batch, so one core can offer a server far more than it could
    /// generate (traces only).
    #[arg(long)]
    prepared: Option<usize>,
    /// Write the SLO file of the `--workload` to this path and exit (`wide` only).
    #[arg(long)]
    write_slos: Option<PathBuf>,
    /// Date the batches evenly over this long before now, oldest first (a month of
    /// history arriving late), instead of now: every minute of an SLO's window then
    /// holds events, as after a month of traffic.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "prepared")]
    spread: Option<Duration>,
    /// With `--write-slos`: write this many SLOs grouped by route and status code (ten
    /// groups each, all receiving events) instead of the wide workload's 200, for
    /// measuring memory.
    #[arg(long, requires = "write_slos")]
    grouped_slos: Option<usize>,
    /// A route to send, as `service:METHOD /path` (repeat for several; picked uniformly).
    #[arg(long = "route", default_values = ["checkout:POST /api/checkout", "catalog:GET /api/items/{id}"])]
    routes: Vec<String>,
    /// Fraction of spans with status ERROR.
    #[arg(long, default_value_t = 0.01)]
    error_ratio: f64,
    /// Median span duration (log-normal distribution).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    latency_median: Duration,
    /// 99th-percentile span duration.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "400ms")]
    latency_p99: Duration,
    /// Latency thresholds the ground truth counts spans at or below (repeatable).
    #[arg(long = "threshold", value_parser = humantime::parse_duration)]
    thresholds: Vec<Duration>,
    /// Spans per request, as an SDK's batch processor sends them.
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the traffic: the same seed sends the same spans.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The tenant (`X-Scope-OrgID`).
    #[arg(long)]
    tenant: Option<String>,
    /// Retries of a batch refused with a retryable code, before it counts as failed.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Write the ground truth of acknowledged spans here, as JSON.
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// Write the throughput and latency report here, as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The signals to send: `traces`, and for each batch of spans also `logs` (a log
    /// record per span) and `metrics` (cumulative request and error counters per route).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["traces"])]
    signals: Vec<SignalArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Workload {
    Routes,
    Wide,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SignalArg {
    Traces,
    Logs,
    Metrics,
}

/// One export request of a batch.
enum Export {
    Traces(ExportTraceServiceRequest),
    /// An encoded `ExportTraceServiceRequest`.
    TraceBytes(bytes::Bytes),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Export {
    fn signal(&self) -> SignalOf {
        match self {
            Export::Traces(_) | Export::TraceBytes(_) => SignalOf::Traces,
            Export::Logs(_) => SignalOf::Logs,
            Export::Metrics(_) => SignalOf::Metrics,
        }
    }

    fn http_path(&self) -> &'static str {
        match self {
            Export::Traces(_) | Export::TraceBytes(_) => "/v1/traces",
            Export::Logs(_) => "/v1/logs",
            Export::Metrics(_) => "/v1/metrics",
        }
    }

    fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(match self {
            Export::TraceBytes(b) => return b.clone(),
            Export::Traces(r) => r.encode_to_vec(),
            Export::Logs(r) => r.encode_to_vec(),
            Export::Metrics(r) => r.encode_to_vec(),
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Protocol {
    Grpc,
    Http,
}

enum Client {
    Grpc(Box<GrpcClients>),
    Http(reqwest::Client, String),
}

struct GrpcClients {
    channel: Channel,
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
}

/// Sends encoded trace bytes over gRPC as they are.
async fn raw_export(
    channel: &Channel,
    body: bytes::Bytes,
    tenant: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary(with_tenant(body, tenant), path, RawCodec)
        .await
        .map(drop)
}

/// A gRPC codec that sends bytes as they are and decodes the trace export's reply.
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = slotel_proto::otlp::collector::trace::v1::ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = slotel_proto::otlp::collector::trace::v1::ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        Message::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

/// Whether an exporter retries after `s`: the codes the OTLP specification calls
/// retryable, and a connection that broke before the reply (tonic reports those as
/// `UNKNOWN` with the transport error as source), whose outcome is not known.
fn retryable(s: &tonic::Status) -> bool {
    use tonic::Code;
    match s.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss
        | Code::ResourceExhausted => true,
        Code::Unknown | Code::Internal => {
            let m = s.message();
            m.contains("transport error")
                || m.contains("h2 protocol error")
                || m.contains("connection")
        }
        _ => false,
    }
}

fn with_tenant<T>(req: T, tenant: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(req);
    if let Some(t) = tenant
        && let Ok(v) = t.parse()
    {
        r.metadata_mut().insert("x-scope-orgid", v);
    }
    r
}

/// The outcome of one request attempt.
enum Attempt {
    Ok,
    Retry(Option<Duration>, String),
    Fail(String),
}

impl Client {
    async fn send(&self, req: &Export, tenant: Option<&str>) -> Attempt {
        match self {
            Client::Grpc(clients) => {
                let GrpcClients {
                    channel,
                    traces,
                    logs,
                    metrics,
                } = &**clients;
                let result = match req {
                    Export::TraceBytes(b) => raw_export(channel, b.clone(), tenant).await,
                    Export::Traces(r) => traces
                        .clone()
                        .export(with_tenant(r.clone(), tenant))
                        .await
                        .map(drop),
                    Export::Logs(r) => logs
                        .clone()
                        .export(with_tenant(r.clone(), tenant))
                        .await
                        .map(drop),
                    Export::Metrics(r) => metrics
                        .clone()
                        .export(with_tenant(r.clone(), tenant))
                        .await
                        .map(drop),
                };
                match result {
                    Ok(()) => Attempt::Ok,
                    Err(s) if retryable(&s) => Attempt::Retry(None, s.to_string()),
                    Err(s) => Attempt::Fail(s.to_string()),
                }
            }
            Client::Http(c, base) => {
                let mut r = c
                    .post(format!("{base}{}", req.http_path()))
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode());
                if let Some(t) = tenant {
                    r = r.header("x-scope-orgid", t);
                }
                match r.send().await {
                    Ok(resp) if resp.status().is_success() => Attempt::Ok,
                    Ok(resp) if matches!(resp.status().as_u16(), 429 | 502 | 503 | 504) => {
                        let hint = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok())
                            .map(Duration::from_secs);
                        Attempt::Retry(hint, format!("HTTP {}", resp.status()))
                    }
                    Ok(resp) => Attempt::Fail(format!("HTTP {}", resp.status())),
                    Err(e) => Attempt::Retry(None, e.to_string()),
                }
            }
        }
    }
}

struct Shared {
    book: Mutex<TruthBook>,
    latency_us: Mutex<Histogram<u64>>,
    last_error: Mutex<Option<String>>,
    last_failure: Mutex<Option<String>>,
    retries: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The outcomes so far, for the progress line.
    fn outcomes(&self) -> String {
        let (acknowledged, failed) = self.book.lock().expect("book").span_outcomes();
        format!(
            "{acknowledged} acknowledged, {failed} failed, {} retries",
            self.retries.load(std::sync::atomic::Ordering::Relaxed)
        )
    }
}

/// Batches generated once and sent again with fresh span ids.
struct Prepared {
    batches: Vec<(Vec<u8>, Vec<usize>, BatchTruth)>,
    next: usize,
    span_id: u64,
}

impl Prepared {
    fn new(generator: &mut Generator, count: usize, size: usize, end_ns: u64) -> Self {
        let batches = (0..count)
            .map(|_| {
                let (req, truth) = generator.batch(size, end_ns);
                let body = req.encode_to_vec();
                let offsets = slotel_loadtest::span_id_offsets(&body);
                (body, offsets, truth)
            })
            .collect();
        Self {
            batches,
            next: 0,
            span_id: 0,
        }
    }

    /// The next batch's bytes, with span ids never sent before, and its truth.
    fn next(&mut self) -> (bytes::Bytes, BatchTruth) {
        let (body, offsets, truth) = &self.batches[self.next % self.batches.len()];
        self.next += 1;
        let mut body = body.clone();
        for &at in offsets {
            self.span_id += 1;
            body[at..at + 8].copy_from_slice(&self.span_id.to_be_bytes());
        }
        (bytes::Bytes::from(body), truth.clone())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let routes = args
        .routes
        .iter()
        .map(|r| Route::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let base = match args.workload {
        Workload::Routes => Scenario {
            routes,
            ..Scenario::benchmark()
        },
        Workload::Wide => Scenario::wide(),
    };
    let scenario = Scenario {
        error_ratio: args.error_ratio,
        latency_median_ns: args.latency_median.as_nanos() as f64,
        latency_p99_ns: args.latency_p99.as_nanos() as f64,
        thresholds_ns: args
            .thresholds
            .iter()
            .map(|d| d.as_nanos() as u64)
            .collect(),
        ..base
    };
    if let Some(path) = &args.write_slos {
        if args.workload != Workload::Wide {
            bail!("--write-slos writes the SLOs of --workload wide");
        }
        let slos = match args.grouped_slos {
            Some(n) => slotel_loadtest::grouped_slos(&scenario, n),
            None => slotel_loadtest::wide_slos(&scenario),
        };
        std::fs::write(path, slos).with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    let total = match (args.spans, args.rate) {
        (Some(n), _) => n,
        (None, 0) => bail!("--rate 0 needs --spans"),
        (None, rate) => (rate as f64 * args.duration.as_secs_f64()).round() as u64,
    };
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut generator = Generator::new(scenario.clone(), args.seed).map_err(anyhow::Error::msg)?;
    let client = Arc::new(match args.protocol {
        Protocol::Grpc => {
            let channel = tonic::transport::Endpoint::from_shared(args.endpoint.clone())
                .context("invalid --endpoint")?
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", args.endpoint))?;
            Client::Grpc(Box::new(GrpcClients {
                channel: channel.clone(),
                traces: TraceServiceClient::new(channel.clone())
                    .max_decoding_message_size(64 << 20),
                logs: LogsServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
                metrics: MetricsServiceClient::new(channel).max_decoding_message_size(64 << 20),
            }))
        }
        Protocol::Http => Client::Http(
            reqwest::Client::new(),
            args.endpoint.trim_end_matches('/').to_string(),
        ),
    });
    let shared = Arc::new(Shared {
        book: Mutex::new(TruthBook::new(&scenario, args.seed)),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        last_error: Mutex::new(None),
        last_failure: Mutex::new(None),
        retries: Default::default(),
    });
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} {bar:40} {pos}/{len} spans {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The bar's message counts the outcomes; where stderr is no terminal (CI logs, a
    // file), the bar is hidden and a line every ten seconds says the same.
    let reporter = {
        let (shared, progress) = (Arc::clone(&shared), progress.clone());
        let plain = progress.is_hidden();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for second in 0u64.. {
                tick.tick().await;
                let msg = shared.outcomes();
                if plain && second > 0 && second % 10 == 0 {
                    eprintln!(
                        "{}s: {}/{} spans sent; {msg}",
                        second,
                        progress.position(),
                        progress.length().unwrap_or_default()
                    );
                }
                progress.set_message(msg);
            }
        })
    };
    let mut prepared = match args.prepared {
        Some(_) if args.signals != [SignalArg::Traces] => {
            bail!("--prepared sends traces only")
        }
        Some(0) => bail!("--prepared needs at least 1 batch"),
        Some(count) => Some(Prepared::new(
            &mut generator,
            count,
            args.batch_size,
            now_ns(),
        )),
        None => None,
    };
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started_ns = now_ns();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while sent < total {
        if args.rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let n = (total - sent).min(args.batch_size as u64) as usize;
        let now = match args.spread {
            Some(d) => {
                let d = d.as_nanos() as u64;
                now_ns() - d + (d as u128 * u128::from(sent) / u128::from(total)) as u64
            }
            None => now_ns(),
        };
        let (exports, truth) = match prepared.as_mut().filter(|_| n == args.batch_size) {
            Some(p) => {
                let (body, truth) = p.next();
                (vec![Export::TraceBytes(body)], truth)
            }
            None => {
                let (req, truth) = generator.batch(n, now);
                let mut exports = Vec::new();
                if args.signals.contains(&SignalArg::Logs) {
                    exports.push(Export::Logs(logs_for(&req)));
                }
                if args.signals.contains(&SignalArg::Metrics) {
                    exports.push(Export::Metrics(generator.counters(started_ns, now)));
                }
                if args.signals.contains(&SignalArg::Traces) {
                    exports.insert(0, Export::Traces(req));
                }
                (exports, truth)
            }
        };
        sent += n as u64;
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let (client, shared, progress) =
            (Arc::clone(&client), Arc::clone(&shared), progress.clone());
        let tenant = args.tenant.clone();
        let max_retries = args.max_retries;
        tasks.spawn(async move {
            for export in &exports {
                send_batch(
                    &client,
                    export,
                    &truth,
                    tenant.as_deref(),
                    max_retries,
                    &shared,
                )
                .await;
            }
            progress.inc(n as u64);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    reporter.abort();
    progress.finish_and_clear();

    let truth = shared.book.lock().expect("book").truth();
    let h = shared.latency_us.lock().expect("histogram").clone();
    let ms = |us: u64| us as f64 / 1000.0;
    let rate = truth.spans_acknowledged as f64 / elapsed.as_secs_f64();
    println!(
        "sent {sent} spans in {:.2}s: {rate:.0} spans/s acknowledged ({} acknowledged, {} failed, {} retries)",
        elapsed.as_secs_f64(),
        truth.spans_acknowledged,
        truth.spans_failed,
        shared.retries.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!(
        "request latency: p50 {:.2}ms p90 {:.2}ms p99 {:.2}ms max {:.2}ms over {} requests",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    );
    if let Some(e) = shared.last_error.lock().expect("error").as_ref() {
        println!("last error: {e}");
    }
    if let Some(e) = shared.last_failure.lock().expect("failure").as_ref() {
        eprintln!("last failure (not retried): {e}");
    }
    if let Some(path) = &args.ground_truth {
        std::fs::write(path, serde_json::to_string_pretty(&truth)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        let report = serde_json::json!({
            "spans_sent": sent,
            "spans_acknowledged": truth.spans_acknowledged,
            "spans_failed": truth.spans_failed,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "spans_per_second": rate,
            "requests": h.len(),
            "latency_ms": {
                "p50": ms(h.value_at_quantile(0.5)),
                "p90": ms(h.value_at_quantile(0.9)),
                "p99": ms(h.value_at_quantile(0.99)),
                "max": ms(h.max()),
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn send_batch(
    client: &Client,
    req: &Export,
    truth: &BatchTruth,
    tenant: Option<&str>,
    max_retries: u32,
    shared: &Shared,
) {
    let mut attempt = 0;
    loop {
        let t0 = Instant::now();
        let outcome = client.send(req, tenant).await;
        let us = t0.elapsed().as_micros() as u64;
        let _ = shared
            .latency_us
            .lock()
            .expect("histogram")
            .record(us.clamp(1, 60_000_000));
        match outcome {
            Attempt::Ok => {
                shared
                    .book
                    .lock()
                    .expect("book")
                    .acknowledged_signal(req.signal(), truth);
                return;
            }
            Attempt::Retry(hint, e) if attempt < max_retries => {
                attempt += 1;
                shared
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *shared.last_error.lock().expect("error") = Some(e);
                // Exponential backoff from 50 ms, or the server's hint.
                let backoff = hint.unwrap_or(Duration::from_millis(50 << attempt.min(6)));
                tokio::time::sleep(backoff).await;
            }
            Attempt::Retry(_, e) | Attempt::Fail(e) => {
                *shared.last_failure.lock().expect("failure") = Some(e);
                shared
                    .book
                    .lock()
                    .expect("book")
                    .failed_signal(req.signal(), truth);
                return;
            }
        }
    }
}
