//! Starts `slotel serve` on ephemeral ports and talks to its API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for the server to reach an expected state.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `slotel serve`, killed on drop.
pub struct Server {
    child: Child,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub api: String,
    /// The SLO file the server reads (tests may rewrite it and reload).
    pub slo_file: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    /// Environment variables the server is started with.
    env: Vec<(String, String)>,
    /// Fixed ports (gRPC, HTTP, API) kept across restarts, so that clients sending
    /// meanwhile find the server again; ephemeral ports when `None`.
    ports: Option<[u16; 3]>,
}

impl Server {
    /// Starts the binary with `slos` as its SLO file.
    pub fn start(slos: &str) -> Server {
        Self::start_with(slos, "")
    }

    /// Starts the binary with `slos` and a config file holding `config` (YAML).
    pub fn start_with(slos: &str, config: &str) -> Server {
        Self::start_with_env(slos, config, &[])
    }

    /// Starts the binary with `slos`, a config file holding `config` (YAML) and the
    /// environment variables `env` (kept for restarts).
    pub fn start_with_env(slos: &str, config: &str, env: &[(&str, &str)]) -> Server {
        Self::start_on(slos, config, env, None)
    }

    /// Starts the binary with `slos` and `config` on ports picked now and kept across
    /// restarts: clients that keep sending while it restarts reach it again.
    pub fn start_pinned(slos: &str, config: &str) -> Server {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (a, b, c) = (free(), free(), free());
        Self::start_on(slos, config, &[], Some([a, b, c]))
    }

    fn start_on(slos: &str, config: &str, env: &[(&str, &str)], ports: Option<[u16; 3]>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let slo_file = dir.path().join("slos.yaml");
        std::fs::write(&slo_file, slos).unwrap();
        let config_file = dir.path().join("slotel.yaml");
        std::fs::write(&config_file, config).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn(dir.path(), &env, ports);
        let mut server = Server {
            child,
            otlp_grpc: String::new(),
            otlp_http: String::new(),
            api: String::new(),
            slo_file: slo_file.clone(),
            _dir: dir,
            http: reqwest::Client::new(),
            env,
            ports,
        };
        server.read_addresses();
        server
    }

    /// Stops the server gracefully (SIGTERM) and starts it again on the same data
    /// directory and files; the addresses change.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self._dir.path(), &self.env, self.ports);
        self.read_addresses();
    }

    /// Stops the server gracefully (SIGTERM) and waits until it exits, which must be a
    /// success.
    pub fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "slotel exited with {exit} on SIGTERM");
        let _ = std::fs::remove_file(self._dir.path().join("listen.json"));
    }

    /// Kills the server with SIGKILL (no chance to flush or checkpoint) and starts it
    /// again on the same data directory and files; waits until it has replayed its log.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.start_again();
        self.wait_ready().await;
    }

    /// Kills the server with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let _ = std::fs::remove_file(self._dir.path().join("listen.json"));
    }

    /// Starts the server again (after [`Server::kill`]) on the same data directory and
    /// files, without waiting for its replay.
    pub fn start_again(&mut self) {
        self.start_again_with(&[]);
    }

    /// [`Server::start_again`] with extra flags for `slotel serve`.
    pub fn start_again_with(&mut self, flags: &[&str]) {
        self.child = spawn_with(
            self._dir.path(),
            &self.env,
            self.ports,
            flags,
            Stdio::inherit(),
        );
        self.read_addresses();
    }

    /// Runs `slotel serve` on the same files until it exits (it is expected to refuse to
    /// start), and returns what it printed.
    pub fn run_to_exit(&mut self) -> std::process::Output {
        spawn_with(self._dir.path(), &self.env, self.ports, &[], Stdio::piped())
            .wait_with_output()
            .unwrap()
    }

    /// Waits until `/readyz` answers 200: the log found at start is replayed.
    pub async fn wait_ready(&self) {
        eventually("the server to be ready", || async {
            let resp = self
                .http
                .get(format!("{}/readyz", self.api))
                .send()
                .await
                .ok()?;
            (resp.status() == 200).then_some(())
        })
        .await
    }

    /// Waits until the engine has applied everything the log holds: what was
    /// acknowledged is counted, and nothing more is on its way.
    pub async fn wait_applied(&self) {
        self.wait_ready().await;
        eventually("the log to be applied", || async {
            let text = self.metrics().await;
            (metric_value(&text, "slotel_wal_lag_bytes", &[]) == 0.0).then_some(())
        })
        .await
    }

    fn read_addresses(&mut self) {
        let listen = self._dir.path().join("listen.json");
        let addrs = self.wait_for_listen_file(&listen);
        let server = self;
        let scheme = if addrs["tls"] == true {
            "https"
        } else {
            "http"
        };
        // A compute node (`--role compute`) has no OTLP listeners.
        let at = |key: &str| addrs[key].as_str().map(|a| format!("{scheme}://{a}"));
        server.otlp_grpc = at("otlp_grpc").unwrap_or_default();
        server.otlp_http = at("otlp_http").unwrap_or_default();
        server.api = format!("{scheme}://{}", addrs["api"].as_str().unwrap());
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most memory the server has held at once, in KiB, since it started or the
    /// last [`Server::reset_peak_rss_kib`].
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resets the server's peak resident memory to what it holds now (Linux's
    /// `clear_refs`), and returns that.
    pub fn reset_peak_rss_kib(&self) -> u64 {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").unwrap();
        self.rss_kib()
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// The value of sample `name` whose labels include all of `labels`, 0 when absent.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics().await, name, labels)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn wait_for_listen_file(&mut self, path: &Path) -> Value {
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                return serde_json::from_str(&text).expect("listen file is JSON");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("slotel exited before listening: {status}");
            }
            assert!(start.elapsed() < DEADLINE, "slotel did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GETs an API path as `tenant` (`X-Scope-OrgID`); returns the status code and the
    /// JSON body.
    pub async fn get_as(&self, tenant: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.api));
        if let Some(t) = tenant {
            req = req.header("x-scope-orgid", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Sends `good` OK spans and `bad` ERROR spans of `service` ending now, each with
    /// ids never sent before, as `tenant`, over OTLP/HTTP.
    pub async fn send_spans(&self, tenant: Option<&str>, service: &str, good: usize, bad: usize) {
        let spans: Vec<(bool, u64)> = (0..good + bad).map(|i| (i < good, 1_000_000)).collect();
        self.send_spans_lasting(tenant, service, &spans).await;
    }

    /// Sends one span of `service` ending now per (OK, duration in nanoseconds) of
    /// `spans`, each with ids never sent before, as `tenant`, over OTLP/HTTP.
    pub async fn send_spans_lasting(
        &self,
        tenant: Option<&str>,
        service: &str,
        spans: &[(bool, u64)],
    ) {
        use prost::Message;
        use slotel_proto::otlp::trace::v1::{Span, Status};
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let first = NEXT.fetch_add(spans.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let spans = spans
            .iter()
            .enumerate()
            .map(|(i, &(ok, nanos))| {
                let id = first + i as u64 + (u64::from(std::process::id()) << 40);
                Span {
                    trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
                    span_id: id.to_be_bytes().to_vec(),
                    name: "GET /".into(),
                    start_time_unix_nano: now - nanos,
                    end_time_unix_nano: now,
                    status: Some(Status {
                        code: if ok { 1 } else { 2 },
                        message: String::new(),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let body = slotel_proto::traces_request(service, spans).encode_to_vec();
        let mut req = self
            .http
            .post(format!("{}/v1/traces", self.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(body);
        if let Some(t) = tenant {
            req = req.header("x-scope-orgid", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// POSTs `spans` of `service` over OTLP/HTTP in one request, fails the test unless
    /// it is acknowledged, and returns the reply's body.
    pub async fn post_spans(
        &self,
        service: &str,
        spans: Vec<slotel_proto::otlp::trace::v1::Span>,
    ) -> Vec<u8> {
        use prost::Message;
        let resp = self
            .http
            .post(format!("{}/v1/traces", self.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(slotel_proto::traces_request(service, spans).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }

    /// POSTs JSON to an API path as `tenant`; returns the status, content type and body.
    pub async fn post_as(
        &self,
        tenant: Option<&str>,
        path: &str,
        body: &Value,
        accept: Option<&str>,
    ) -> (u16, String, Vec<u8>) {
        let mut req = self.http.post(format!("{}{path}", self.api)).json(body);
        if let Some(t) = tenant {
            req = req.header("x-scope-orgid", t);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ctype, resp.bytes().await.unwrap().to_vec())
    }

    /// Runs SQL as `tenant`; returns the status and the JSON body.
    pub async fn sql_as(&self, tenant: Option<&str>, query: &str) -> (u16, Value) {
        let (status, _, body) = self
            .post_as(
                tenant,
                "/api/v1/sql",
                &serde_json::json!({ "query": query }),
                None,
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// The status of SLO `name` of the default tenant.
    pub async fn slo(&self, name: &str) -> Value {
        self.slo_as(None, name).await
    }

    /// The status of SLO `name` of `tenant`.
    pub async fn slo_as(&self, tenant: Option<&str>, name: &str) -> Value {
        let (status, body) = self.get_as(tenant, &format!("/api/v1/slos/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls SLO `name` until it has counted at least `total` events, then returns its
    /// status. Fails the test at the deadline.
    pub async fn slo_when_total(&self, name: &str, total: u64) -> Value {
        self.slo_when_total_as(None, name, total).await
    }

    /// [`Server::slo_when_total`] for `tenant`.
    pub async fn slo_when_total_as(&self, tenant: Option<&str>, name: &str, total: u64) -> Value {
        let start = Instant::now();
        loop {
            let body = self.slo_as(tenant, name).await;
            if body["total_events"].as_u64().unwrap() >= total {
                return body;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "SLO {name} reached {} of {total} events",
                body["total_events"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 20 ms until it gives a value, and returns it; fails the test with
/// `what` at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `loadtest` with `args` (and `--ground-truth`) until it exits successfully, and
/// returns its ground truth.
pub fn run_loadtest(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.json");
    let out = Command::new(loadtest_bin())
        .args(args)
        .arg("--ground-truth")
        .arg(&truth)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap()
}

/// Starts `slotel serve` on the files of `dir` (`slos.yaml`, `slotel.yaml`, `data/`).
fn spawn(dir: &Path, env: &[(String, String)], ports: Option<[u16; 3]>) -> Child {
    spawn_with(dir, env, ports, &[], Stdio::inherit())
}

fn spawn_with(
    dir: &Path,
    env: &[(String, String)],
    ports: Option<[u16; 3]>,
    flags: &[&str],
    stderr: Stdio,
) -> Child {
    let [grpc, http, api] = ports.unwrap_or([0; 3]);
    Command::new(env!("CARGO_BIN_EXE_slotel"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("serve")
        .arg("--config")
        .arg(dir.join("slotel.yaml"))
        .arg("--slos")
        .arg(dir.join("slos.yaml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--otlp-grpc-addr")
        .arg(format!("127.0.0.1:{grpc}"))
        .arg("--otlp-http-addr")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--api-addr")
        .arg(format!("127.0.0.1:{api}"))
        .arg("--listen-file")
        .arg(dir.join("listen.json"))
        .args(flags)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start slotel")
}

/// The value of sample `name` in Prometheus text `text` whose labels include all of
/// `labels`, summed over matching series; 0 when there is none.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Sends the telemetry of `plan` with the OpenTelemetry Python SDK
/// (`tests/python/send_otlp.py`); returns what the exporters acknowledged. Fails the test
/// when an export failed.
pub fn send_otlp(plan: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    // requests lets REQUESTS_CA_BUNDLE override the exporter's own certificate_file.
    let out = Command::new(python())
        .arg(root().join("tests/python/send_otlp.py"))
        .arg(&path)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SDK export failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Python interpreter of the test virtual environment (`./scripts/test` makes it).
pub fn python() -> PathBuf {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./scripts/test, which creates the Python environment",
        py.display()
    );
    py
}

/// `(bad / total) / (1 - objective)`, computed as the server does.
pub fn burn_rate(good: u64, total: u64, objective_percent: f64) -> f64 {
    ((total - good) as f64 / total as f64)
        / (1.0 - slotel_model::percent_to_ratio(objective_percent))
}

/// `1 - bad / total`, computed as the server does.
pub fn sli(good: u64, total: u64) -> f64 {
    1.0 - (total - good) as f64 / total as f64
}

/// `1 - bad / ((1 - objective) * total)`, computed as the server does.
pub fn budget_remaining(good: u64, total: u64, objective_percent: f64) -> f64 {
    1.0 - (total - good) as f64
        / ((1.0 - slotel_model::percent_to_ratio(objective_percent)) * total as f64)
}

/// The `loadtest` binary, built next to `slotel` (with the same profile) when needed.
pub fn loadtest_bin() -> PathBuf {
    let slotel = PathBuf::from(env!("CARGO_BIN_EXE_slotel"));
    let dir = slotel.parent().unwrap();
    let bin = dir.join("loadtest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "slotel-loadtest",
        "--bin",
        "loadtest",
    ])
    .current_dir(root());
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build for loadtest");
    assert!(status.success(), "building loadtest failed");
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// A server a test started (Prometheus, Alertmanager, moto's S3 server), with the
/// directory of its files; killed on drop.
pub struct Listening {
    child: Child,
    /// Its base URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a server told to listen on port 0 (Prometheus and Alertmanager, or the
/// Werkzeug-based moto S3 server), and reads the address it bound from its log; polls
/// `ready_path` until it answers. `dir` (its config and data) lives as long as it.
// The returned value kills and waits for the child on drop; a failed start ends the
// test process, which reaps it.
#[allow(clippy::zombie_processes)]
pub async fn spawn_listening(
    mut command: Command,
    ready_path: &str,
    dir: Option<tempfile::TempDir>,
) -> Listening {
    use std::io::BufRead;
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server runs (./scripts/test installs it)");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("msg=\"Listening on\"")
                && let Some(addr) = line.split("address=").nth(1)
            {
                let _ = tx.send(addr.trim().to_string());
            } else if let Some(addr) = line.split(" * Running on http://").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(DEADLINE)
        .expect("the server reported its address");
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}{ready_path}")).send().await
            && r.status().is_success()
        {
            return Listening {
                child,
                url,
                _dir: dir,
            };
        }
        assert!(start.elapsed() < DEADLINE, "{url} did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An S3 server (PyPI's `moto[server]`, installed in the test venv by `./scripts/test`)
/// holding an empty `bucket`, killed on drop.
pub async fn start_s3(bucket: &str) -> Listening {
    let mut cmd = Command::new(root().join(".venv/bin/moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", "0"]);
    let s3 = spawn_listening(cmd, "/", None).await;
    let made = reqwest::Client::new()
        .put(format!("{}/{bucket}", s3.url))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    s3
}

/// The environment variables that point an S3 client (`object_store`'s) at `s3`.
pub fn s3_env(s3: &Listening) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT", s3.url.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "slotel"),
        ("AWS_SECRET_ACCESS_KEY", "slotel-secret"),
        ("AWS_REGION", "us-east-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

/// The wall clock, in nanoseconds since the epoch.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A span with trace and span ids made of `id`: `name`, `kind` (0 unspecified, 2 server,
/// 3 client), ending at `end` (nanoseconds) after `ms` milliseconds, with status ERROR
/// when `failed` (else UNSET), and `attributes`.
pub fn span(
    id: u64,
    name: &str,
    kind: i32,
    end: u64,
    ms: u64,
    failed: bool,
    attributes: Vec<slotel_proto::otlp::common::v1::KeyValue>,
) -> slotel_proto::otlp::trace::v1::Span {
    use slotel_proto::otlp::trace::v1::{Span, Status};
    Span {
        trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
        span_id: id.to_be_bytes().to_vec(),
        name: name.into(),
        kind,
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes,
        status: Some(Status {
            code: if failed { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr(key: &str, value: &str) -> slotel_proto::otlp::common::v1::KeyValue {
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}
