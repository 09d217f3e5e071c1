//! slotel over a real Kafka-protocol broker (tansu, which `./scripts/test` installs):
//! ingest nodes write what the Collector's Kafka exporter writes, acknowledge only what
//! the brokers have, and refuse retryably while the brokers are down.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use slotel_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use slotel_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use slotel_proto::otlp::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use slotel_proto::otlp::resource::v1::Resource;

use crate::harness::{
    DEADLINE, Listening, Server, attr, budget_remaining, eventually, now_nanos, python, root,
    s3_env, span, start_s3,
};

/// The tansu binary: `SLOTEL_TANSU`, or where `./scripts/test` installs it.
fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("SLOTEL_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/slotel-tools/tansu-0.6.0/bin/tansu")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker on a port of its own, killed on drop.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    storage: String,
    env: Vec<(String, String)>,
    /// The S3 server a persistent broker keeps its records in.
    _s3: Option<Listening>,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// A broker keeping its records in memory (`persistent: false`) or in an S3 bucket
    /// (moto's server) that outlives a restart. (tansu 0.6's SQLite storage fails the
    /// idempotent producer's sequence check; its object-store storage does not.)
    pub async fn start(persistent: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let (storage, env, s3) = if persistent {
            let s3 = start_s3("tansu").await;
            let env = s3_env(&s3);
            ("s3://tansu/".to_string(), env, Some(s3))
        } else {
            ("memory://tansu/".to_string(), Vec::new(), None)
        };
        let mut broker = Broker {
            child: None,
            port: free_port(),
            storage,
            env,
            _s3: s3,
            _dir: dir,
        };
        broker.start_again().await;
        broker
    }

    /// `host:port`, as `bootstrap.servers` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again, after [`Broker::kill`]) on its port and storage, and
    /// waits until it accepts connections.
    pub async fn start_again(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &self.storage])
            // tansu reads this for its own telemetry.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu runs (./scripts/test installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < DEADLINE, "tansu did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the broker with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", topic])
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--partitions")
            .arg(partitions.to_string())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates the three topics of the Collector's Kafka exporter.
    pub fn create_otlp_topics(&self, span_partitions: u32) {
        self.create_topic("otlp_spans", span_partitions);
        self.create_topic("otlp_metrics", 1);
        self.create_topic("otlp_logs", 1);
    }

    /// Every record of `topics`, read by a consumer that is not slotel's
    /// (`tests/python/kafka_records.py`, confluent-kafka).
    pub fn records(&self, topics: &[&str]) -> Vec<Record> {
        let out = Command::new(python())
            .arg(root().join("tests/python/kafka_records.py"))
            .arg(self.address())
            .args(topics)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reading the topics failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                Record {
                    topic: v["topic"].as_str().unwrap().to_string(),
                    partition: v["partition"].as_i64().unwrap(),
                    key: v["key"].as_str().map(str::to_string),
                    headers: v["headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| {
                            (
                                h[0].as_str().unwrap().to_string(),
                                h[1].as_str().unwrap().to_string(),
                            )
                        })
                        .collect(),
                    timestamp_ms: v["timestamp"].as_i64().unwrap(),
                    value: hex(v["value"].as_str().unwrap()),
                }
            })
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One record as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timestamp_ms: i64,
    pub value: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An ingest node writing to `broker`, with `extra` YAML under `kafka:`.
fn ingest_node(broker: &Broker, extra: &str) -> Server {
    Server::start_with(
        "",
        &format!(
            "role: ingest\nkafka:\n  brokers: {}\n{extra}",
            broker.address()
        ),
    )
}

fn traces(service: &str, first_id: u64, n: u64) -> ExportTraceServiceRequest {
    traces_failing(service, first_id, n, |id| id % 3 == 0)
}

/// Spans `first_id..first_id + n` of `service`, failed where `fails` says.
fn traces_failing(
    service: &str,
    first_id: u64,
    n: u64,
    fails: impl Fn(u64) -> bool,
) -> ExportTraceServiceRequest {
    let end = now_nanos();
    let spans = (first_id..first_id + n)
        .map(|id| {
            span(
                id,
                "GET /cart",
                2,
                end,
                12,
                fails(id),
                vec![attr("http.route", "/cart")],
            )
        })
        .collect();
    slotel_proto::traces_request(service, spans)
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![attr("service.name", service)],
        ..Default::default()
    })
}

fn metrics(service: &str) -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: now_nanos(),
        value: Some(number_data_point::Value::AsInt(7)),
        attributes: vec![attr("outcome", "ok")],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope::default()),
                metrics: vec![Metric {
                    name: "requests".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![point],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(service: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: now_nanos(),
                    severity_number: 17,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("payment failed".into())),
                    }),
                    attributes: vec![KeyValue {
                        key: "code".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::IntValue(502)),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs protobuf `body` to `path` as `tenant`; returns the status and `Retry-After`.
async fn post(
    node: &Server,
    path: &str,
    tenant: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", node.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("x-scope-orgid", t);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), retry)
}

fn now_ms() -> i64 {
    (now_nanos() / 1_000_000) as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_nodes_write_what_the_collector_s_kafka_exporter_writes() {
    let broker = Broker::start(false).await;
    broker.create_otlp_topics(3);
    let mut node = ingest_node(&broker, "");
    node.wait_ready().await;

    let before = now_ms();
    let checkout = traces("checkout", 1, 5);
    let cart = traces("cart", 100, 4);
    let anonymous = traces("search", 200, 3);
    let (m, l) = (metrics("checkout"), logs("checkout"));
    assert_eq!(
        post(&node, "/v1/traces", Some("acme"), checkout.encode_to_vec()).await,
        (200, None)
    );
    assert_eq!(
        post(&node, "/v1/traces", Some("acme"), cart.encode_to_vec()).await,
        (200, None)
    );
    assert_eq!(
        post(&node, "/v1/metrics", Some("acme"), m.encode_to_vec()).await,
        (200, None)
    );
    assert_eq!(
        post(&node, "/v1/logs", Some("acme"), l.encode_to_vec()).await,
        (200, None)
    );
    // Over gRPC, without a tenant: the default tenant.
    let mut client = TraceServiceClient::connect(node.otlp_grpc.clone())
        .await
        .unwrap();
    client.export(anonymous.clone()).await.unwrap();
    let after = now_ms();
    // Acknowledged means the brokers have it: the node may die at once.
    node.kill();

    let records = broker.records(&["otlp_spans", "otlp_metrics", "otlp_logs"]);
    assert_eq!(records.len(), 5, "{records:?}");
    let find = |key: &str, topic: &str| {
        let found: Vec<&Record> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(key) && r.topic == topic)
            .collect();
        assert_eq!(found.len(), 1, "{key} on {topic}: {records:?}");
        found[0].clone()
    };
    let tenant = |r: &Record| r.headers.clone();
    let acme = vec![("X-Scope-OrgID".to_string(), "acme".to_string())];

    // The values are the requests' protobuf bytes as sent: what `otlp_proto` holds.
    let r = find("acme/checkout", "otlp_spans");
    assert_eq!(r.value, checkout.encode_to_vec());
    assert_eq!(tenant(&r), acme);
    assert!((before..=after).contains(&r.timestamp_ms), "{r:?}");
    let r = find("acme/cart", "otlp_spans");
    assert_eq!(r.value, cart.encode_to_vec());
    assert_eq!(tenant(&r), acme);
    let r = find(
        &format!("{}/search", slotel_proto::DEFAULT_TENANT),
        "otlp_spans",
    );
    assert_eq!(
        ExportTraceServiceRequest::decode(&r.value[..]).unwrap(),
        anonymous
    );
    assert_eq!(
        tenant(&r),
        vec![(
            "X-Scope-OrgID".to_string(),
            slotel_proto::DEFAULT_TENANT.to_string()
        )]
    );
    let r = find("acme/checkout", "otlp_metrics");
    assert_eq!(
        ExportMetricsServiceRequest::decode(&r.value[..]).unwrap(),
        m
    );
    assert_eq!(tenant(&r), acme);
    let r = find("acme/checkout", "otlp_logs");
    assert_eq!(ExportLogsServiceRequest::decode(&r.value[..]).unwrap(), l);
    assert_eq!(tenant(&r), acme);
    // Keyed by tenant and service: every record of a key on one partition.
    assert!(records.iter().all(|r| (0..3).contains(&r.partition)));
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_refuses_retryably_while_the_brokers_are_down_and_loses_nothing_it_acknowledged() {
    let mut broker = Broker::start(true).await;
    broker.create_otlp_topics(1);
    let node = ingest_node(&broker, "  produce_timeout: 2s\n");
    node.wait_ready().await;

    let first = traces("checkout", 1, 4);
    assert_eq!(
        post(&node, "/v1/traces", Some("acme"), first.encode_to_vec()).await,
        (200, None)
    );

    broker.kill();
    let refused = traces("checkout", 10, 4);
    assert_eq!(
        post(&node, "/v1/traces", Some("acme"), refused.encode_to_vec()).await,
        (503, Some("1".to_string()))
    );
    let mut client = TraceServiceClient::connect(node.otlp_grpc.clone())
        .await
        .unwrap();
    let status = client.export(refused.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    // The node saw the brokers gone before they come back, so that ready again means
    // it reached the restarted broker.
    eventually("the ingest node to report the brokers down", || async {
        let status = reqwest::get(format!("{}/readyz", node.api))
            .await
            .ok()?
            .status();
        (status == 503).then_some(())
    })
    .await;
    broker.start_again().await;
    node.wait_ready().await;
    // As an exporter does: resend on a retryable refusal. The first record after the
    // restart may find the producer fenced by the new broker (tansu does not keep the
    // idempotent producer's epoch); the node replaces it and the resend goes through.
    let last = traces("checkout", 20, 4);
    let start = Instant::now();
    let mut resent = 0;
    loop {
        match post(&node, "/v1/traces", Some("acme"), last.encode_to_vec()).await {
            (200, None) => break,
            (503, Some(_)) => resent += 1,
            other => panic!("the request after the restart: {other:?}"),
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no request accepted after the restart"
        );
    }
    // Exactly what was acknowledged, in order; nothing refused.
    let values: Vec<Vec<u8>> = broker
        .records(&["otlp_spans"])
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, vec![first.encode_to_vec(), last.encode_to_vec()]);
    let failures = node
        .metric(
            "slotel_kafka_produce_failures_total",
            &[("topic", "otlp_spans")],
        )
        .await;
    assert_eq!(failures, 2.0 + f64::from(resent));
}

/// The compute nodes' SLOs: each service's spans are good unless their status is an
/// error (`traces` fails every span whose id is a multiple of 3).
const CLUSTER_SLOS: &str = r#"
slos:
  - name: checkout-availability
    tenant: acme
    service: checkout
    objective: 99
    window: 30d
    group_by: [http.route]
    sli: { spans: { good: { status: not_error } } }
  - name: cart-availability
    tenant: acme
    service: cart
    objective: 99.5
    window: 7d
    sli: { spans: { good: { status: not_error } } }
"#;

/// A compute node of the group on `broker`, its storage (shared by every node) in the
/// bucket of `s3`. A killed node's partitions move after the 6 s session timeout.
fn compute_node(broker: &Broker, s3: &Listening) -> Server {
    compute_node_with(broker, s3, CLUSTER_SLOS, "")
}

/// [`compute_node`] with `slos` and `extra` configuration.
fn compute_node_with(broker: &Broker, s3: &Listening, slos: &str, extra: &str) -> Server {
    let env = s3_env(s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = format!(
        "role: compute\n\
         storage:\n  url: s3://slotel/cluster\n  flush_interval: 300ms\n\
         kafka:\n  brokers: {}\n  client:\n    session.timeout.ms: \"6000\"\n    \
         heartbeat.interval.ms: \"500\"\n    max.poll.interval.ms: \"30000\"\n{extra}",
        broker.address()
    );
    Server::start_with_env(slos, &config, &env)
}

/// The partitions of the compute nodes' tests: `create_otlp_topics(4)`'s.
const PARTITIONS: [(&str, i64); 6] = [
    ("otlp_spans", 0),
    ("otlp_spans", 1),
    ("otlp_spans", 2),
    ("otlp_spans", 3),
    ("otlp_metrics", 0),
    ("otlp_logs", 0),
];

/// What the test wrote: each partition's end, and each SLO's (good, total) events.
#[derive(Default)]
struct Sent {
    ends: std::collections::BTreeMap<(String, i64), u64>,
    events: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Sent {
    fn new(partitions: &[(&str, i64)]) -> Sent {
        let mut sent = Sent::default();
        for (t, p) in partitions {
            sent.ends.insert((t.to_string(), *p), 0);
        }
        sent
    }

    /// Writes `requests` (service, first span id, spans, partition) to `otlp_spans` as
    /// the Collector's Kafka exporter does, for tenant `acme`, and notes what they hold.
    fn produce(&mut self, broker: &Broker, requests: &[(&str, u64, u64, i64)]) {
        self.produce_failing(broker, requests, |id| id % 3 == 0)
    }

    /// [`Sent::produce`] with the spans failed where `fails` says.
    fn produce_failing(
        &mut self,
        broker: &Broker,
        requests: &[(&str, u64, u64, i64)],
        fails: impl Fn(u64) -> bool + Copy,
    ) {
        let mut input = String::new();
        for &(service, first, n, partition) in requests {
            let record = serde_json::json!({
                "topic": "otlp_spans",
                "partition": partition,
                "value": hex_of(&traces_failing(service, first, n, fails).encode_to_vec()),
                "headers": [["X-Scope-OrgID", "acme"]],
            });
            input.push_str(&record.to_string());
            input.push('\n');
            let good = (first..first + n).filter(|&id| !fails(id)).count() as u64;
            let e = self
                .events
                .entry(format!("{service}-availability"))
                .or_default();
            *e = (e.0 + good, e.1 + n);
        }
        let mut child = Command::new(python())
            .arg(root().join("tests/python/kafka_produce.py"))
            .arg(broker.address())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "producing failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(written.len(), requests.len());
        for w in written {
            let key = (
                w["topic"].as_str().unwrap().to_string(),
                w["partition"].as_i64().unwrap(),
            );
            let end = self.ends.get_mut(&key).expect("a known partition");
            *end = (*end).max(w["offset"].as_u64().unwrap() + 1);
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until `nodes` are ready and own every partition of `sent` once between them,
/// each counted up to its end (nothing is on its way), and, with `checkpointed`, each
/// covered by a checkpoint; returns each SLO's (good, total) summed over the partitions.
async fn settled(
    nodes: &[&Server],
    sent: &Sent,
    checkpointed: bool,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    eventually(
        "the compute nodes to own and count every partition",
        || async {
            let mut owned = std::collections::BTreeMap::new();
            for node in nodes {
                let (status, body) = node.get_as(Some("acme"), "/api/v1/shards").await;
                if status != 200 || body["ready"] != true {
                    return None;
                }
                for shard in body["shards"].as_array().unwrap() {
                    let key = (
                        shard["topic"].as_str().unwrap().to_string(),
                        shard["partition"].as_i64().unwrap(),
                    );
                    if owned.insert(key, shard.clone()).is_some() {
                        return None; // owned twice: a rebalance is under way
                    }
                }
            }
            if !owned.keys().eq(sent.ends.keys()) {
                return None;
            }
            let mut events = std::collections::BTreeMap::<String, (u64, u64)>::new();
            for (key, shard) in &owned {
                let end = sent.ends[key];
                if shard["applied_offset"].as_u64() != Some(end) {
                    return None;
                }
                if checkpointed && shard["checkpoint_offset"].as_u64() != Some(end) {
                    return None;
                }
                for slo in shard["slos"].as_array().unwrap() {
                    let e = events
                        .entry(slo["name"].as_str().unwrap().to_string())
                        .or_default();
                    e.0 += slo["good_events"].as_u64().unwrap();
                    e.1 += slo["total_events"].as_u64().unwrap();
                }
            }
            Some(events)
        },
    )
    .await
}

/// Requests of `services`, `n` spans each from span id `first` on, spread over the
/// partitions `0..4` of the spans topic (a hot service lands on every partition).
fn spread(
    services: &[&'static str],
    first: u64,
    per_service: u64,
    n: u64,
) -> Vec<(&'static str, u64, u64, i64)> {
    let mut out = Vec::new();
    let mut id = first;
    for (i, service) in services.iter().enumerate() {
        for r in 0..per_service {
            out.push((*service, id, n, ((i as u64 + r) % 4) as i64));
            id += n;
        }
    }
    out
}

/// The values of the instant vector PromQL `query` (URL-encoded) gives on `node` for
/// tenant `acme`, in the reply's order.
async fn instant(node: &Server, query: &str) -> Vec<f64> {
    let (code, body) = node
        .get_as(
            Some("acme"),
            &format!("/prometheus/api/v1/query?query={query}"),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Asks each of `nodes` for every SLO's status, which each one sums over every
/// partition of the cluster, and checks it against `truth`.
async fn every_node_answers(
    nodes: &[&Server],
    truth: &std::collections::BTreeMap<String, (u64, u64)>,
) {
    let objective = |slo: &str| if slo.starts_with("cart") { 99.5 } else { 99.0 };
    for node in nodes {
        for (slo, &(good, total)) in truth {
            let (code, body) = node
                .get_as(Some("acme"), &format!("/api/v1/slos/{slo}"))
                .await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(
                (
                    body["good_events"].as_u64(),
                    body["bad_events"].as_u64(),
                    body["total_events"].as_u64()
                ),
                (Some(good), Some(total - good), Some(total)),
                "{slo} on {}",
                node.api
            );
            assert_eq!(
                body["error_budget_remaining"].as_f64(),
                Some(budget_remaining(good, total, objective(slo))),
                "{body}"
            );
        }
        // A grouped SLO's groups, summed by group over the partitions, hold its events.
        for (slo, &(good, total)) in truth {
            let (code, body) = node
                .get_as(Some("acme"), &format!("/api/v1/slos/{slo}/groups"))
                .await;
            assert_eq!(code, 200, "{body}");
            if body["group_by"].as_array().unwrap().is_empty() {
                assert_eq!(body["groups"], serde_json::json!([]), "{body}");
                continue;
            }
            let groups = body["groups"].as_array().unwrap();
            assert!(!groups.is_empty(), "{body}");
            let sum = |k: &str| groups.iter().map(|g| g[k].as_u64().unwrap()).sum::<u64>();
            assert_eq!(
                (sum("good_events"), sum("total_events")),
                (good, total),
                "{body}"
            );
        }
        // The Prometheus API sums the same partitions, minute by minute.
        for (slo, &(good, total)) in truth {
            for (metric, want) in [
                ("slotel_slo_good_events_total", good),
                ("slotel_slo_events_total", total),
            ] {
                let values = instant(
                    node,
                    &format!("{metric}%7Bslo%3D%22{slo}%22%2Chttp_route%3D%22%22%7D"),
                )
                .await;
                assert_eq!(values, [want as f64], "{metric} of {slo} on {}", node.api);
            }
        }
        // SQL reads every partition's stored minutes and unflushed ones.
        let (code, rows) = node
            .sql_as(
                Some("acme"),
                "SELECT slo, CAST(sum(good) AS BIGINT) AS good, CAST(sum(total) AS BIGINT) AS total \
                 FROM sli_minute WHERE \"group\" = '' GROUP BY slo ORDER BY slo",
            )
            .await;
        assert_eq!(code, 200, "{rows}");
        let want: Vec<Value> = truth
            .iter()
            .map(|(slo, (good, total))| serde_json::json!({"slo": slo, "good": good, "total": total}))
            .collect();
        assert_eq!(rows, Value::Array(want), "SQL on {}", node.api);
        // The grouped SLO's group series add up to it.
        let values = instant(
            node,
            "sum(slotel_slo_events_total%7Bslo%3D%22checkout-availability%22%2Chttp_route!%3D%22%22%7D)",
        )
        .await;
        assert_eq!(values, [truth["checkout-availability"].1 as f64]);
        let (code, body) = node.get_as(Some("acme"), "/api/v1/slos").await;
        assert_eq!(code, 200, "{body}");
        let listed: Vec<(String, u64)> = body["slos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["total_events"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, u64)> = truth.iter().map(|(k, v)| (k.clone(), v.1)).collect();
        assert_eq!(listed, want);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compute_nodes_count_every_record_once_through_a_kill_and_rebalances() {
    let broker = Broker::start(false).await;
    broker.create_otlp_topics(4);
    let s3 = start_s3("slotel").await;
    let mut sent = Sent::new(&PARTITIONS);
    let expected = |sent: &Sent| sent.events.clone();

    // One node owns every partition; what a Collector writes is counted once.
    let mut a = compute_node(&broker, &s3);
    a.wait_ready().await;
    sent.produce(&broker, &spread(&["checkout", "cart"], 1, 8, 5));
    assert_eq!(settled(&[&a], &sent, true).await, expected(&sent));
    every_node_answers(&[&a], &expected(&sent)).await;

    // More records, then SIGKILL: whatever the node had not checkpointed is read again
    // by the partitions' next owners, from the checkpoints' offsets.
    sent.produce(&broker, &spread(&["checkout", "cart"], 1_000, 8, 7));
    assert_eq!(settled(&[&a], &sent, false).await, expected(&sent));
    a.kill();

    // Two new nodes share the partitions once the dead one's session expires; records
    // written meanwhile wait in Kafka.
    let b = compute_node(&broker, &s3);
    let mut c = compute_node(&broker, &s3);
    sent.produce(&broker, &spread(&["checkout", "cart"], 2_000, 8, 3));
    assert_eq!(settled(&[&b, &c], &sent, false).await, expected(&sent));
    // Either node answers for the whole cluster (the dead node's entry is still listed:
    // it does not answer, and owns nothing any more).
    every_node_answers(&[&b, &c], &expected(&sent)).await;
    // Every span lasted 12 ms: the median of the merged histograms is 12 ms, to the
    // histograms' precision (1% here).
    for node in [&b, &c] {
        let median = instant(
            node,
            "slotel_slo_latency_seconds%7Bslo%3D%22cart-availability%22%2Cwindow%3D%221h%22%2Cquantile%3D%220.5%22%7D",
        )
        .await;
        assert_eq!(median.len(), 1);
        let median = median[0];
        assert!((median - 0.012).abs() <= 0.012 * 0.01, "{median}");
    }

    // A maintenance window posted to one node is the cluster's: the other lists it and
    // shows the SLO in maintenance, and cart's spans sent in it are left out on every
    // partition, whichever node owns it.
    let window = serde_json::json!({
        "name": "cart-deploy", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z",
        "services": ["cart"], "exclude_events": true,
    });
    let (code, _, body) = b
        .post_as(Some("acme"), "/api/v1/maintenance", &window, None)
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let (code, list) = c.get_as(Some("acme"), "/api/v1/maintenance").await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["maintenance"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["maintenance"][0]["name"], "cart-deploy", "{list}");
    let (_, cart) = c
        .get_as(Some("acme"), "/api/v1/slos/cart-availability")
        .await;
    assert_eq!(cart["in_maintenance"], "cart-deploy", "{cart}");
    let cart_before = sent.events["cart-availability"];
    sent.produce(&broker, &spread(&["cart", "checkout"], 2_500, 8, 2));
    sent.events.insert("cart-availability".into(), cart_before);
    assert_eq!(settled(&[&b, &c], &sent, true).await, expected(&sent));
    every_node_answers(&[&b, &c], &expected(&sent)).await;
    let delete = |node: &Server| {
        reqwest::Client::new()
            .delete(format!("{}/api/v1/maintenance/cart-deploy", node.api))
            .header("x-scope-orgid", "acme")
            .send()
    };
    assert_eq!(delete(&c).await.unwrap().status(), 204);
    assert_eq!(delete(&b).await.unwrap().status(), 404);
    let (_, list) = b.get_as(Some("acme"), "/api/v1/maintenance").await;
    assert_eq!(list["maintenance"], serde_json::json!([]), "{list}");
    // A node reloads its SLO files when asked, as one process does.
    let (code, _, body) = c
        .post_as(Some("acme"), "/api/v1/reload", &serde_json::json!({}), None)
        .await;
    let reloaded: Value = serde_json::from_slice(&body).unwrap();
    let slos = CLUSTER_SLOS.matches("- name:").count();
    assert_eq!(
        (code, reloaded),
        (200, serde_json::json!({ "status": "ok", "slos": slos }))
    );

    // A node that leaves checkpoints its partitions before they move.
    c.stop();
    sent.produce(&broker, &spread(&["checkout"], 3_000, 4, 2));
    assert_eq!(settled(&[&b], &sent, true).await, expected(&sent));
    every_node_answers(&[&b], &expected(&sent)).await;
    let truth = expected(&sent);
    assert_eq!(
        truth["checkout-availability"].1,
        8 * 5 + 8 * 7 + 8 * 3 + 8 * 2 + 4 * 2
    );
    assert_eq!(truth["cart-availability"].1, 8 * 5 + 8 * 7 + 8 * 3);
}

/// The alert test's SLO: every outage counts, however small; its group (every span has
/// `http.route: /cart`) alerts on its own.
const ALERT_SLOS: &str = r#"
slos:
  - name: checkout-availability
    tenant: acme
    service: checkout
    objective: 99
    window: 30d
    min_events: 0
    group_by: [http.route]
    sli: { spans: { good: { status: not_error } } }
"#;

/// The nodes' answers to `/api/v1/shards`: whether each evaluates the alerts.
async fn evaluators(nodes: &[&Server]) -> Vec<bool> {
    let mut out = Vec::new();
    for node in nodes {
        let (code, body) = node.get_as(Some("acme"), "/api/v1/shards").await;
        assert_eq!(code, 200, "{body}");
        out.push(body["evaluates_alerts"] == true);
    }
    out
}

/// Waits until PagerDuty got `action` for dedup key `key` and Alertmanager notified the
/// page-fast group as `status`.
async fn page_told(hooks: &crate::alerting::Receiver, key: &str, action: &str, status: &str) {
    hooks
        .wait("pagerduty", |v| {
            v["event_action"] == action && v["dedup_key"] == key
        })
        .await;
    hooks
        .wait("am", |v| {
            v["status"] == status && v["groupLabels"]["burnrate_tier"] == "page-fast"
        })
        .await;
}

/// The page-fast alert of `checkout-availability` in a node's `/api/v1/alerts`.
async fn page_of(node: &Server) -> Option<Value> {
    let (code, body) = node.get_as(Some("acme"), "/api/v1/alerts").await;
    if code != 200 {
        return None;
    }
    body["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["burnrate_tier"] == "page-fast")
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_pages_once_while_the_node_evaluating_it_is_killed() {
    use crate::alerting::{incidents, start_alertmanager_with, start_receiver};
    let broker = Broker::start(false).await;
    broker.create_otlp_topics(4);
    let s3 = start_s3("slotel").await;
    // Alertmanager notifies the receiver of every change of the page's group at once,
    // and repeats nothing within the test.
    let hooks = start_receiver().await;
    let am = start_alertmanager_with(
        "127.0.0.1:0",
        &format!(
            "route:\n  receiver: hook\n  group_by: [slo, burnrate_tier, http_route]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    \
             webhook_configs: [{{ url: \"{}/am\" }}]\n",
            hooks.url
        ),
    )
    .await;
    let alerting = format!(
        "alerting:\n  evaluation_interval: 200ms\n  alertmanager_url: {}\n  \
         pagerduty: {{ routing_key: R0UT1NGKEY0123456789, events_url: {}/pagerduty }}\n",
        am.url, hooks.url
    );
    let mut a = compute_node_with(&broker, &s3, ALERT_SLOS, &alerting);
    let mut b = compute_node_with(&broker, &s3, ALERT_SLOS, &alerting);
    let mut sent = Sent::new(&PARTITIONS);
    // Both nodes own partitions before anything is sent, so that each owner sees the
    // spans of its partitions arrive (what explanations count).
    eventually("both nodes to own partitions", || async {
        for node in [&a, &b] {
            let (_, body) = node.get_as(Some("acme"), "/api/v1/shards").await;
            body["shards"].as_array().filter(|s| !s.is_empty())?;
        }
        Some(())
    })
    .await;
    settled(&[&a, &b], &sent, false).await;
    // An outage on every partition: a third of checkout's 120 spans fail, 33 times the
    // budget's rate, over every window.
    sent.produce(&broker, &spread(&["checkout"], 1, 4, 30));
    assert_eq!(settled(&[&a, &b], &sent, false).await, sent.events);
    assert_eq!(sent.events["checkout-availability"], (80, 120));
    let key = "slotel/acme/checkout-availability/page-fast";
    page_told(&hooks, key, "trigger", "firing").await;
    // One node evaluates; the other answers for it.
    let roles = evaluators(&[&a, &b]).await;
    assert_eq!(roles.iter().filter(|e| **e).count(), 1, "{roles:?}");
    let (evaluator, survivor) = if roles[0] { (&mut a, &b) } else { (&mut b, &a) };
    let before = page_of(survivor).await.expect("the page, from either node");
    assert_eq!(before["state"], "firing");
    assert_eq!(page_of(evaluator).await.as_ref(), Some(&before));
    // Both nodes serve the pages (the SLO's and its group's) as Prometheus series, from
    // the states the evaluating node saved; hold releases back; and explain the SLO from
    // every partition's spans (all 120 seen by the partitions' owners).
    for node in [&*evaluator, survivor] {
        let firing =
            "slotel_slo_alert%7Bburnrate_tier%3D%22page-fast%22%2Calertstate%3D%22firing%22%7D";
        assert_eq!(instant(node, firing).await, [1.0, 1.0]);
        let state = "slotel_slo_alert_state%7Bburnrate_tier%3D%22page-fast%22%7D";
        assert_eq!(instant(node, state).await, [2.0]);
        for gate in [
            "/api/v1/slos/checkout-availability/gate",
            "/api/v1/services/checkout/gate",
        ] {
            let (code, body) = node.get_as(Some("acme"), gate).await;
            assert_eq!(
                (code, &body["allowed"]),
                (200, &Value::Bool(false)),
                "{body}"
            );
        }
        let (code, body) = node
            .get_as(Some("acme"), "/api/v1/slos/checkout-availability/explain")
            .await;
        assert_eq!(code, 200, "{body}");
        let counts = [
            &body["events_in_window"],
            &body["service_spans"],
            &body["sample"]["spans"],
            &body["sample"]["selected"],
        ];
        assert_eq!(counts, [&Value::from(120); 4], "{body}");
    }

    // SIGKILL the evaluating node. Once its session expired (the survivor saw the
    // rebalance), a third node joins: tansu 0.6 leaves the dead member's partitions
    // unassigned in the rebalance of an expiry, and a join assigns them. The control
    // partition goes to one of the two, which goes on from the saved states: the same
    // alert, firing since the same instant, not a new one.
    let assignments = survivor.metric("slotel_kafka_assignments_total", &[]).await;
    evaluator.kill();
    eventually("the dead node's session to expire", || async {
        (survivor.metric("slotel_kafka_assignments_total", &[]).await > assignments).then_some(())
    })
    .await;
    let c = compute_node_with(&broker, &s3, ALERT_SLOS, &alerting);
    let nodes = [survivor, &c];
    let now_evaluating = eventually("one of the nodes to evaluate the alerts", || async {
        let roles = evaluators(&nodes).await;
        (roles.iter().filter(|e| **e).count() == 1).then_some(roles)
    })
    .await;
    assert_eq!(settled(&nodes, &sent, false).await, sent.events);
    let new_evaluator = nodes[now_evaluating.iter().position(|e| *e).unwrap()];
    for node in nodes {
        let after = eventually("the page, from either node", || page_of(node)).await;
        assert_eq!(after["since"], before["since"], "{after}");
        assert_eq!(after["state"], "firing");
    }
    // The outage ends: 180 good spans bring the 1h and 5m burn rates to 40/300/1% =
    // 13.3x, under the page's 14.4x (the slower tiers' 6x and less still fire).
    sent.produce_failing(&broker, &spread(&["checkout"], 1_000, 4, 45), |_| false);
    assert_eq!(sent.events["checkout-availability"], (260, 300));
    assert_eq!(settled(&nodes, &sent, false).await, sent.events);
    page_told(&hooks, key, "resolve", "resolved").await;
    let group_key = format!("{key}{{http_route=\"/cart\"}}");
    hooks
        .wait("pagerduty", |v| {
            v["event_action"] == "resolve" && v["dedup_key"] == group_key.as_str()
        })
        .await;
    hooks
        .wait("am", |v| {
            v["status"] == "resolved"
                && v["groupLabels"]["burnrate_tier"] == "page-fast"
                && v["groupLabels"]["http_route"] == "/cart"
        })
        .await;
    // The resolves come after every firing notification: counting now counts them all,
    // for the SLO's page and for its group's.
    let got = hooks.got.lock().unwrap().clone();
    for (route, key) in [(Value::Null, key.to_string()), ("/cart".into(), group_key)] {
        let am_notifications: Vec<&str> = got
            .iter()
            .filter(|(k, v)| {
                k == "am"
                    && v["groupLabels"]["burnrate_tier"] == "page-fast"
                    && v["groupLabels"]["http_route"] == route
            })
            .map(|(_, v)| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(am_notifications, ["firing", "resolved"], "{route}: {got:?}");
        let page_events: Vec<(String, Value)> = got
            .iter()
            .filter(|(k, v)| k == "pagerduty" && v["dedup_key"] == key.as_str())
            .cloned()
            .collect();
        assert_eq!(incidents(&page_events), 1, "{page_events:?}");
        let resolves = page_events
            .iter()
            .filter(|(_, v)| v["event_action"] == "resolve")
            .count();
        assert_eq!(resolves, 1, "{page_events:?}");
    }
    assert_eq!(evaluators(&[new_evaluator]).await, [true]);
    // The history, from either node, holds each page's two changes, from both terms:
    // newest first, nothing repeated by the move.
    for node in nodes {
        let (code, history) = node
            .get_as(
                Some("acme"),
                "/api/v1/alerts/history?slo=checkout-availability",
            )
            .await;
        assert_eq!(code, 200, "{history}");
        for tier in ["page-fast", "page-fast{http_route=\"/cart\"}"] {
            let changes: Vec<(&str, &str)> = history["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["tier"] == tier)
                .map(|e| {
                    (
                        e["from_state"].as_str().unwrap(),
                        e["to_state"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                changes,
                [("firing", "inactive"), ("inactive", "firing")],
                "{tier}: {history}"
            );
        }
    }
}

/// Runs `loadtest` at 2,000 spans/s against `endpoint` for tenant `acme` (in the
/// background); its ground truth when it ends.
fn load(endpoint: &str, protocol: &str, seed: u64) -> tokio::task::JoinHandle<Value> {
    let (endpoint, protocol) = (endpoint.to_string(), protocol.to_string());
    tokio::task::spawn_blocking(move || {
        crate::harness::run_loadtest(&[
            "--endpoint",
            &endpoint,
            "--protocol",
            &protocol,
            "--spans",
            "24000",
            "--rate",
            "2000",
            "--batch-size",
            "200",
            "--concurrency",
            "2",
            "--route",
            "checkout:POST /api/checkout",
            "--route",
            "cart:GET /cart",
            "--error-ratio",
            "0.05",
            "--tenant",
            "acme",
            "--seed",
            &seed.to_string(),
        ])
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_cluster_counts_loadtest_traffic_exactly_through_a_kill_and_a_join() {
    let broker = Broker::start(false).await;
    broker.create_otlp_topics(4);
    let s3 = start_s3("slotel").await;
    // The second ingest node spreads its records over the partitions: each service's
    // spans are on every partition.
    let (i1, i2) = (
        ingest_node(&broker, ""),
        ingest_node(&broker, "  partition_key: none\n"),
    );
    let mut a = compute_node(&broker, &s3);
    let b = compute_node(&broker, &s3);
    for node in [&i1, &i2, &a, &b] {
        node.wait_ready().await;
    }
    // Both transports, both ingest nodes, at once.
    let loads = [
        load(&i1.otlp_grpc, "grpc", 11),
        load(&i2.otlp_http, "http", 12),
    ];
    // Under load: SIGKILL a compute node; once the group noticed (tansu rebalances the
    // survivor alone first), a third node joins and takes partitions.
    eventually("the compute nodes to count the load", || async {
        let mut applied = 0;
        for node in [&a, &b] {
            let (_, body) = node.get_as(Some("acme"), "/api/v1/shards").await;
            applied += body["shards"]
                .as_array()?
                .iter()
                .map(|s| s["applied_offset"].as_u64().unwrap_or(0))
                .sum::<u64>();
        }
        (applied > 0).then_some(())
    })
    .await;
    let assignments = b.metric("slotel_kafka_assignments_total", &[]).await;
    a.kill();
    eventually("the killed node's session to expire", || async {
        (b.metric("slotel_kafka_assignments_total", &[]).await > assignments).then_some(())
    })
    .await;
    let c = compute_node(&broker, &s3);
    let mut truth = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for l in loads {
        let t = l.await.unwrap();
        assert_eq!(t["spans_failed"], 0, "{t}");
        for g in t["groups"].as_array().unwrap() {
            let (total, errors) = (g["total"].as_u64().unwrap(), g["errors"].as_u64().unwrap());
            let e = truth
                .entry(format!("{}-availability", g["service"].as_str().unwrap()))
                .or_default();
            *e = (e.0 + total - errors, e.1 + total);
        }
    }
    assert_eq!(truth.values().map(|v| v.1).sum::<u64>(), 48_000);
    // Every record the ingest nodes acknowledged is in the log: its partitions' ends.
    let mut sent = Sent::new(&PARTITIONS);
    for r in broker.records(&["otlp_spans", "otlp_metrics", "otlp_logs"]) {
        *sent.ends.get_mut(&(r.topic.clone(), r.partition)).unwrap() += 1;
    }
    assert_eq!(settled(&[&b, &c], &sent, false).await, truth);
    // The joining node took its share (which share depends on the members' order).
    let mut owned = Vec::new();
    for node in [&b, &c] {
        let (_, body) = node.get_as(Some("acme"), "/api/v1/shards").await;
        owned.push(body["shards"].as_array().unwrap().len());
    }
    assert_eq!(owned.iter().sum::<usize>(), 6, "{owned:?}");
    assert!(owned.iter().all(|n| *n > 0), "{owned:?}");
    every_node_answers(&[&b, &c], &truth).await;
}
