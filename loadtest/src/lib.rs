//! The load generator's traffic model: seeded span generation and the ground truth of
//! what was generated.
//!
//! Flow: a [`Generator`] turns a [`Scenario`] and a seed into OTLP batches; every span it
//! makes is recorded in a [`GroundTruth`] from the generated values themselves (never
//! from slotel's classifier), so comparing the two catches classification mistakes.

#![warn(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Serialize;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use slotel_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use slotel_proto::otlp::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use slotel_proto::otlp::resource::v1::Resource;
use slotel_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};

/// One kind of request the generator sends: a service, a route and a span kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `service.name`.
    pub service: String,
    /// The HTTP method (`http.request.method`).
    pub method: String,
    /// The route (`http.route`); the span is named `"{method} {route}"`.
    pub route: String,
}

impl Route {
    /// Parses `service:METHOD /route`, e.g. `checkout:POST /api/checkout`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (service, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("route {s:?} must look like service:METHOD /path"))?;
        let (method, route) = rest
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("route {s:?} must look like service:METHOD /path"))?;
        if service.is_empty() || method.is_empty() || !route.starts_with('/') {
            return Err(format!("route {s:?} must look like service:METHOD /path"));
        }
        Ok(Self {
            service: service.to_string(),
            method: method.to_string(),
            route: route.trim().to_string(),
        })
    }

    /// The span name: `"{method} {route}"`.
    pub fn span_name(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}

/// What traffic to generate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The routes, picked uniformly at random per span.
    pub routes: Vec<Route>,
    /// The fraction of spans with status ERROR.
    pub error_ratio: f64,
    /// Median span duration, in nanoseconds.
    pub latency_median_ns: f64,
    /// 99th-percentile span duration, in nanoseconds (log-normal between the two).
    pub latency_p99_ns: f64,
    /// Latency thresholds the ground truth counts spans at or below, in nanoseconds.
    pub thresholds_ns: Vec<u64>,
    /// Whether spans carry the ten attributes of an instrumented HTTP server (method,
    /// route, status code, scheme, server address and port, protocol version, user
    /// agent, client address, a request id: about 450 bytes a span) rather than three.
    pub rich_attributes: bool,
}

impl Scenario {
    /// The benchmarks' traffic: four routes over three services (`checkout`, `catalog`,
    /// `payments`), 1% errors, durations log-normal with median 50 ms and p99 400 ms.
    pub fn benchmark() -> Self {
        Self {
            routes: [
                "checkout:POST /api/checkout",
                "catalog:GET /api/items/{id}",
                "catalog:GET /api/search",
                "payments:POST /api/pay",
            ]
            .iter()
            .map(|r| Route::parse(r).expect("a valid route"))
            .collect(),
            error_ratio: 0.01,
            latency_median_ns: 50e6,
            latency_p99_ns: 400e6,
            thresholds_ns: vec![],
            rich_attributes: false,
        }
    }

    /// The wide workload: 90 routes over 20 services (`svc-00` to `svc-19`, route `r`
    /// in service `r % 20`), spans with the ten attributes of an instrumented HTTP
    /// server, 1% errors, the benchmark's latencies. [`wide_slos`] writes its 200 SLOs,
    /// of which every span matches exactly 3.
    pub fn wide() -> Self {
        let methods = ["GET", "POST", "PUT", "DELETE"];
        Self {
            routes: (0..WIDE_ROUTES)
                .map(|r| Route {
                    service: format!("svc-{:02}", r % WIDE_SERVICES),
                    method: methods[r % methods.len()].to_string(),
                    route: format!("/api/v1/resource-{r:02}/{{id}}"),
                })
                .collect(),
            rich_attributes: true,
            ..Self::benchmark()
        }
    }
}

const WIDE_ROUTES: usize = 90;
const WIDE_SERVICES: usize = 20;

/// The SLO file of [`Scenario::wide`]'s traffic: per route an availability SLO selected
/// by span name (good: no 5xx status code) and a latency SLO selected by route and
/// method (good: within 300 ms), and per service one SLO over all its server spans
/// (good: status not ERROR), all over rolling 30 days. 2 × 90 + 20 = 200 SLOs; each
/// span matches its route's two and its service's one.
pub fn wide_slos(scenario: &Scenario) -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "# The wide workload's SLOs: `loadtest --workload wide --write-slos FILE`.\nslos:\n",
    );
    let mut services: Vec<&str> = Vec::new();
    for (i, r) in scenario.routes.iter().enumerate() {
        let _ = write!(
            out,
            "  - name: route-{i:02}-availability\n    service: {svc}\n    objective: 99.9\n    window: 30d\n    sli:\n      spans:\n        match: {{ span_kind: server, span_name: \"{name}\" }}\n        good: {{ not_http_status: [5xx] }}\n  - name: route-{i:02}-latency\n    service: {svc}\n    objective: 99\n    window: 30d\n    sli:\n      spans:\n        match: {{ http_route: \"{route}\", attributes: {{ \"http.request.method\": \"{method}\" }} }}\n        good: {{ max_duration: 300ms }}\n",
            svc = r.service,
            name = r.span_name(),
            route = r.route,
            method = r.method,
        );
        if !services.contains(&r.service.as_str()) {
            services.push(&r.service);
        }
    }
    for svc in services {
        let _ = write!(
            out,
            "  - name: {svc}-server\n    service: {svc}\n    objective: 99.5\n    window: 30d\n    sli:\n      spans:\n        match: {{ span_kind: server }}\n        good: {{ status: not_error }}\n",
        );
    }
    out
}

/// `n` grouped SLOs over [`Scenario::wide`]'s traffic, for measuring memory: spread
/// over the services with five routes (`svc-00` to `svc-09`), each over all of its
/// service's server spans (good: status not ERROR), rolling 30 days, grouped by
/// `http.route` and `http.response.status_code`: ten groups (five routes, 200 and 500),
/// every one of them receiving events.
pub fn grouped_slos(scenario: &Scenario, n: usize) -> String {
    use std::fmt::Write;
    let mut services: Vec<&str> = Vec::new();
    for r in &scenario.routes {
        let routes = scenario
            .routes
            .iter()
            .filter(|o| o.service == r.service)
            .count();
        if routes == 5 && !services.contains(&r.service.as_str()) {
            services.push(&r.service);
        }
    }
    let mut out = format!(
        "# {n} grouped SLOs over the wide workload: `loadtest --workload wide --grouped-slos {n} --write-slos FILE`.\nslos:\n"
    );
    for i in 0..n {
        let svc = services[i % services.len()];
        let _ = write!(
            out,
            "  - name: grouped-{i:04}\n    service: {svc}\n    objective: 99.5\n    window: 30d\n    group_by: [http.route, http.response.status_code]\n    sli:\n      spans:\n        match: {{ span_kind: server }}\n        good: {{ status: not_error }}\n",
        );
    }
    out
}

/// What was generated for one (service, span name, kind).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupTruth {
    /// `service.name`.
    pub service: String,
    /// The span name.
    pub span_name: String,
    /// The span kind.
    pub span_kind: &'static str,
    /// Spans generated.
    pub total: u64,
    /// Spans with status ERROR.
    pub errors: u64,
    /// Spans whose duration is at or below each threshold, keyed by threshold label.
    pub within: BTreeMap<String, u64>,
    /// Spans that are not ERROR and at or below each threshold.
    pub ok_within: BTreeMap<String, u64>,
    /// Log records acknowledged (one per span, with `--signals logs`).
    pub log_records: u64,
    /// Of them, with severity ERROR.
    pub log_errors: u64,
    /// The highest value of the cumulative request counter acknowledged (with
    /// `--signals metrics`): requests of the route so far.
    pub counter_total: u64,
    /// The same for the cumulative error counter.
    pub counter_errors: u64,
}

/// The ground truth of a run: what was generated (and acknowledged), per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroundTruth {
    /// The seed of the run.
    pub seed: u64,
    /// Spans acknowledged by the server.
    pub spans_acknowledged: u64,
    /// Spans the server refused or that could not be sent.
    pub spans_failed: u64,
    /// Log records acknowledged.
    pub log_records_acknowledged: u64,
    /// Log records refused or not sent.
    pub log_records_failed: u64,
    /// Metrics requests refused or not sent.
    pub metric_requests_failed: u64,
    /// Per (service, span name, kind), ordered.
    pub groups: Vec<GroupTruth>,
}

/// Counts for one batch, to be merged into the ground truth once acknowledged.
#[derive(Debug, Clone, Default)]
pub struct BatchTruth {
    per_route: Vec<(u64, u64, Vec<u64>, Vec<u64>)>,
    spans: u64,
    /// The cumulative counters (requests, errors) per route after this batch.
    cumulative: Vec<(u64, u64)>,
}

/// Which signal of a batch an outcome is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOf {
    /// The spans.
    Traces,
    /// The log records made from them.
    Logs,
    /// The cumulative counters after them.
    Metrics,
}

impl BatchTruth {
    /// Spans in the batch.
    pub fn spans(&self) -> u64 {
        self.spans
    }
}

/// Formats a threshold for keys: `300ms`, `1.5s`, `250us`.
pub fn threshold_label(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// Accumulates batch truths into the run's ground truth.
#[derive(Debug)]
pub struct TruthBook {
    scenario: Scenario,
    seed: u64,
    per_route: Vec<(u64, u64, Vec<u64>, Vec<u64>)>,
    acknowledged: u64,
    failed: u64,
    logs: Vec<(u64, u64)>,
    logs_acknowledged: u64,
    logs_failed: u64,
    counters: Vec<(u64, u64)>,
    metric_requests_failed: u64,
}

impl TruthBook {
    /// An empty book for `scenario`.
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let n = scenario.thresholds_ns.len();
        Self {
            scenario: scenario.clone(),
            seed,
            per_route: vec![(0, 0, vec![0; n], vec![0; n]); scenario.routes.len()],
            acknowledged: 0,
            failed: 0,
            logs: vec![(0, 0); scenario.routes.len()],
            logs_acknowledged: 0,
            logs_failed: 0,
            counters: vec![(0, 0); scenario.routes.len()],
            metric_requests_failed: 0,
        }
    }

    /// Records that the server acknowledged `signal` of a batch.
    pub fn acknowledged_signal(&mut self, signal: SignalOf, b: &BatchTruth) {
        match signal {
            SignalOf::Traces => self.acknowledged(b),
            SignalOf::Logs => {
                self.logs_acknowledged += b.spans;
                for (acc, add) in self.logs.iter_mut().zip(&b.per_route) {
                    acc.0 += add.0;
                    acc.1 += add.1;
                }
            }
            SignalOf::Metrics => {
                // Cumulative: the highest value acknowledged is what was counted.
                for (acc, c) in self.counters.iter_mut().zip(&b.cumulative) {
                    acc.0 = acc.0.max(c.0);
                    acc.1 = acc.1.max(c.1);
                }
            }
        }
    }

    /// Records that `signal` of a batch was not acknowledged.
    pub fn failed_signal(&mut self, signal: SignalOf, b: &BatchTruth) {
        match signal {
            SignalOf::Traces => self.failed(b),
            SignalOf::Logs => self.logs_failed += b.spans,
            SignalOf::Metrics => self.metric_requests_failed += 1,
        }
    }

    /// Records a batch the server acknowledged.
    pub fn acknowledged(&mut self, b: &BatchTruth) {
        self.acknowledged += b.spans;
        for (acc, add) in self.per_route.iter_mut().zip(&b.per_route) {
            acc.0 += add.0;
            acc.1 += add.1;
            for (a, x) in acc.2.iter_mut().zip(&add.2) {
                *a += x;
            }
            for (a, x) in acc.3.iter_mut().zip(&add.3) {
                *a += x;
            }
        }
    }

    /// Records a batch that was not acknowledged.
    pub fn failed(&mut self, b: &BatchTruth) {
        self.failed += b.spans;
    }

    /// Spans acknowledged and spans failed so far, without building the whole truth.
    pub fn span_outcomes(&self) -> (u64, u64) {
        (self.acknowledged, self.failed)
    }

    /// The ground truth so far.
    pub fn truth(&self) -> GroundTruth {
        let labels: Vec<String> = self
            .scenario
            .thresholds_ns
            .iter()
            .map(|&t| threshold_label(t))
            .collect();
        let mut groups: Vec<GroupTruth> = self
            .scenario
            .routes
            .iter()
            .zip(&self.per_route)
            .zip(self.logs.iter().zip(&self.counters))
            .map(
                |((r, (total, errors, within, ok_within)), (logs, counters))| GroupTruth {
                    service: r.service.clone(),
                    span_name: r.span_name(),
                    span_kind: "server",
                    total: *total,
                    errors: *errors,
                    within: labels.iter().cloned().zip(within.iter().copied()).collect(),
                    ok_within: labels
                        .iter()
                        .cloned()
                        .zip(ok_within.iter().copied())
                        .collect(),
                    log_records: logs.0,
                    log_errors: logs.1,
                    counter_total: counters.0,
                    counter_errors: counters.1,
                },
            )
            .collect();
        groups.sort_by(|a, b| (&a.service, &a.span_name).cmp(&(&b.service, &b.span_name)));
        GroundTruth {
            seed: self.seed,
            spans_acknowledged: self.acknowledged,
            spans_failed: self.failed,
            log_records_acknowledged: self.logs_acknowledged,
            log_records_failed: self.logs_failed,
            metric_requests_failed: self.metric_requests_failed,
            groups,
        }
    }
}

/// Generates seeded OTLP batches. The same seed and scenario give the same spans (names,
/// statuses, durations, ids); only the timestamps follow the wall clock.
#[derive(Debug)]
pub struct Generator {
    scenario: Scenario,
    rng: ChaCha8Rng,
    latency: LogNormal<f64>,
    span_names: Vec<String>,
    /// Requests and errors generated so far per route: the cumulative counters.
    cumulative: Vec<(u64, u64)>,
}

/// The z-score of the 99th percentile of a standard normal distribution.
const Z99: f64 = 2.326_347_874_040_841;

impl Generator {
    /// A generator for `scenario` from `seed`.
    pub fn new(scenario: Scenario, seed: u64) -> Result<Self, String> {
        if scenario.routes.is_empty() {
            return Err("at least one route is needed".into());
        }
        if !(0.0..=1.0).contains(&scenario.error_ratio) {
            return Err("the error ratio must be between 0 and 1".into());
        }
        if !(scenario.latency_median_ns > 0.0
            && scenario.latency_p99_ns >= scenario.latency_median_ns)
        {
            return Err("latency needs 0 < median <= p99".into());
        }
        let mu = scenario.latency_median_ns.ln();
        let sigma = (scenario.latency_p99_ns.ln() - mu) / Z99;
        let latency = LogNormal::new(mu, sigma).map_err(|e| format!("latency: {e}"))?;
        let span_names = scenario.routes.iter().map(Route::span_name).collect();
        Ok(Self {
            cumulative: vec![(0, 0); scenario.routes.len()],
            scenario,
            rng: ChaCha8Rng::seed_from_u64(seed),
            latency,
            span_names,
        })
    }

    /// Makes a batch of `n` spans ending at `end_ns`, and its truth.
    pub fn batch(&mut self, n: usize, end_ns: u64) -> (ExportTraceServiceRequest, BatchTruth) {
        let routes = &self.scenario.routes;
        let thresholds = &self.scenario.thresholds_ns;
        let mut truth = BatchTruth {
            per_route: vec![
                (0, 0, vec![0; thresholds.len()], vec![0; thresholds.len()]);
                routes.len()
            ],
            spans: n as u64,
            cumulative: Vec::new(),
        };
        let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
        for _ in 0..n {
            let r = self.rng.random_range(0..routes.len());
            let route = &routes[r];
            let error = self.rng.random_bool(self.scenario.error_ratio);
            let duration = (self.latency.sample(&mut self.rng).round() as u64).max(1);
            let trace_id: [u8; 16] = self.rng.random();
            let span_id: [u8; 8] = self.rng.random();
            let t = &mut truth.per_route[r];
            t.0 += 1;
            t.1 += u64::from(error);
            self.cumulative[r].0 += 1;
            self.cumulative[r].1 += u64::from(error);
            for (i, &th) in thresholds.iter().enumerate() {
                let within = duration <= th;
                t.2[i] += u64::from(within);
                t.3[i] += u64::from(within && !error);
            }
            by_service.entry(&route.service).or_default().push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                name: self.span_names[r].clone(),
                kind: 2, // SERVER
                start_time_unix_nano: end_ns - duration.min(end_ns),
                end_time_unix_nano: end_ns,
                attributes: {
                    let mut a = vec![
                        string_kv("http.request.method", &route.method),
                        string_kv("http.route", &route.route),
                        int_kv("http.response.status_code", if error { 500 } else { 200 }),
                    ];
                    if self.scenario.rich_attributes {
                        let client: [u8; 4] = self.rng.random();
                        let request: u128 = self.rng.random();
                        a.extend([
                            string_kv("url.scheme", "https"),
                            string_kv("server.address", &route.service),
                            int_kv("server.port", 8443),
                            string_kv("network.protocol.version", "1.1"),
                            string_kv(
                                "user_agent.original",
                                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                            ),
                            string_kv(
                                "client.address",
                                &format!("10.{}.{}.{}", client[0], client[1], client[2]),
                            ),
                            string_kv("http.request.header.x-request-id", &format!("{request:032x}")),
                        ]);
                    }
                    a
                },
                status: Some(Status {
                    code: if error {
                        StatusCode::Error as i32
                    } else {
                        StatusCode::Unset as i32
                    },
                    message: String::new(),
                }),
                ..Default::default()
            });
        }
        let resource_spans = by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_kv("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "slotel-loadtest".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        truth.cumulative = self.cumulative.clone();
        (ExportTraceServiceRequest { resource_spans }, truth)
    }

    /// The cumulative counters after the batches so far, as of `time_ns`: per route a
    /// monotonic Sum `loadtest.requests` with `outcome` `ok` and `error`, started at
    /// `start_ns`.
    pub fn counters(&self, start_ns: u64, time_ns: u64) -> ExportMetricsServiceRequest {
        let mut by_service: BTreeMap<&str, Vec<NumberDataPoint>> = BTreeMap::new();
        for (route, &(total, errors)) in self.scenario.routes.iter().zip(&self.cumulative) {
            for (outcome, value) in [("ok", total - errors), ("error", errors)] {
                by_service
                    .entry(&route.service)
                    .or_default()
                    .push(NumberDataPoint {
                        attributes: vec![
                            string_kv("http.route", &route.route),
                            string_kv("outcome", outcome),
                        ],
                        start_time_unix_nano: start_ns,
                        time_unix_nano: time_ns,
                        value: Some(number_data_point::Value::AsInt(value as i64)),
                        ..Default::default()
                    });
            }
        }
        ExportMetricsServiceRequest {
            resource_metrics: by_service
                .into_iter()
                .map(|(service, data_points)| ResourceMetrics {
                    resource: Some(Resource {
                        attributes: vec![string_kv("service.name", service)],
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![Metric {
                            name: "loadtest.requests".into(),
                            data: Some(Data::Sum(Sum {
                                data_points,
                                aggregation_temporality: 2, // cumulative
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }
}

/// One log record per span of `spans`, as an application logs each request: at the
/// span's end, with its trace context, severity ERROR for an ERROR span and INFO
/// otherwise, the span name as body.
pub fn logs_for(spans: &ExportTraceServiceRequest) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: spans
            .resource_spans
            .iter()
            .map(|rs| ResourceLogs {
                resource: rs.resource.clone(),
                scope_logs: rs
                    .scope_spans
                    .iter()
                    .map(|ss| ScopeLogs {
                        scope: ss.scope.clone(),
                        log_records: ss
                            .spans
                            .iter()
                            .map(|span| {
                                let error = span
                                    .status
                                    .as_ref()
                                    .is_some_and(|s| s.code == StatusCode::Error as i32);
                                LogRecord {
                                    time_unix_nano: span.end_time_unix_nano,
                                    observed_time_unix_nano: span.end_time_unix_nano,
                                    severity_number: if error { 17 } else { 9 },
                                    severity_text: if error { "ERROR" } else { "INFO" }.into(),
                                    body: Some(AnyValue {
                                        value: Some(Value::StringValue(span.name.clone())),
                                    }),
                                    attributes: span.attributes.clone(),
                                    trace_id: span.trace_id.clone(),
                                    span_id: span.span_id.clone(),
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// Where each span's 8-byte id sits in an encoded trace export: writing fresh ids there
/// makes the same bytes new spans.
pub fn span_id_offsets(body: &[u8]) -> Vec<usize> {
    struct Ids(usize, Vec<usize>);
    impl<'a> slotel_proto::wire::TraceVisitor<'a> for Ids {
        fn resource(&mut self, _: &slotel_proto::wire::Resource<'_, 'a>) {}
        fn span(
            &mut self,
            _: &slotel_proto::wire::Resource<'_, 'a>,
            s: &slotel_proto::wire::Span<'_, 'a>,
        ) {
            if s.span_id.len() == 8 {
                self.1.push(s.span_id.as_ptr() as usize - self.0);
            }
        }
    }
    let mut ids = Ids(body.as_ptr() as usize, Vec::new());
    let _ = slotel_proto::wire::scan_traces(body, &mut ids);
    ids.1
}

fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario {
            routes: vec![
                Route::parse("checkout:POST /api/checkout").unwrap(),
                Route::parse("catalog:GET /api/items/{id}").unwrap(),
            ],
            error_ratio: 0.1,
            latency_median_ns: 50e6,
            latency_p99_ns: 400e6,
            thresholds_ns: vec![50_000_000, 300_000_000],
            rich_attributes: false,
        }
    }

    #[test]
    fn same_seed_same_traffic() {
        let mut a = Generator::new(scenario(), 7).unwrap();
        let mut b = Generator::new(scenario(), 7).unwrap();
        let mut c = Generator::new(scenario(), 8).unwrap();
        let (ra, _) = a.batch(100, 1_000_000_000_000);
        let (rb, _) = b.batch(100, 1_000_000_000_000);
        let (rc, _) = c.batch(100, 1_000_000_000_000);
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
    }

    #[test]
    fn truth_is_counted_from_the_generated_spans() {
        let mut g = Generator::new(scenario(), 1).unwrap();
        let (req, truth) = g.batch(5000, 1_000_000_000_000);
        let mut book = TruthBook::new(&scenario(), 1);
        book.acknowledged(&truth);
        let t = book.truth();
        // Recount from the request itself.
        for group in &t.groups {
            let spans: Vec<&Span> = req
                .resource_spans
                .iter()
                .filter(|rs| {
                    rs.resource.as_ref().unwrap().attributes[0].value
                        == Some(AnyValue {
                            value: Some(Value::StringValue(group.service.clone())),
                        })
                })
                .flat_map(|rs| rs.scope_spans[0].spans.iter())
                .filter(|s| s.name == group.span_name)
                .collect();
            assert_eq!(spans.len() as u64, group.total);
            let errors = spans
                .iter()
                .filter(|s| s.status.as_ref().unwrap().code == 2)
                .count();
            assert_eq!(errors as u64, group.errors);
            let within = spans
                .iter()
                .filter(|s| s.end_time_unix_nano - s.start_time_unix_nano <= 300_000_000)
                .count();
            assert_eq!(within as u64, group.within["300ms"]);
        }
        assert_eq!(t.spans_acknowledged, 5000);
        let total: u64 = t.groups.iter().map(|g| g.total).sum();
        assert_eq!(total, 5000);
        // With a median of 50 ms about half the spans are within 50 ms.
        let half: u64 = t.groups.iter().map(|g| g.within["50ms"]).sum();
        assert!((2300..2700).contains(&half), "{half}");
    }

    #[test]
    fn routes_parse() {
        assert!(Route::parse("checkout").is_err());
        assert!(Route::parse("checkout:POST api").is_err());
        let r = Route::parse("catalog:GET /api/items/{id}").unwrap();
        assert_eq!(r.span_name(), "GET /api/items/{id}");
        assert_eq!(threshold_label(1_500_000_000), "1500ms");
    }
}
