//! Storage and query benchmark: 1,000 SLOs with 30 days of per-minute history written as
//! Parquet, then the release `slotel` binary started on it. Reports the Parquet bytes per
//! SLO per day (with and without latency histograms), the restart time (windows rebuilt
//! from storage), and p50/p99 latencies of the SLO list, of a 30-day `query_range` at a
//! 5-minute step, and of a day of latency quantiles at a 1-minute step.
//!
//! `cargo bench --bench storage` (set `SLOTEL_BENCH_SLOS` / `SLOTEL_BENCH_DAYS` to scale).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slotel_compute::MinuteRow;
use slotel_compute::latency;
use slotel_model::{GroupKey, Tally};
use slotel_storage::{Store, StoreOptions};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn timed(http: &reqwest::Client, url: &str, n: usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let start = Instant::now();
        let resp = http.get(url).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        bytes = resp.bytes().await.unwrap().len();
        times.push(start.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), bytes)
}

fn main() {
    let slos = env_or("SLOTEL_BENCH_SLOS", 1000);
    let days = env_or("SLOTEL_BENCH_DAYS", 30) as i64;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("slos:\n");
    for i in 0..slos {
        yaml.push_str(&format!(
            "  - {{ name: slo-{i:04}, service: svc-{:02}, objective: 99.9, window: 30d, labels: {{ team: team-{:02} }}, sli: {{ spans: {{ good: {{ status: not_error }} }} }} }}\n",
            i % 50,
            i % 10
        ));
    }
    let slo_file = dir.path().join("slos.yaml");
    std::fs::write(&slo_file, yaml).unwrap();
    let data = dir.path().join("data");
    let tables = data.join("tables");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let now_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60;
    let first = now_minute - days * 1440 + 1;
    let store = Store::open(tables.to_str().unwrap(), StoreOptions::default()).unwrap();
    let write_start = Instant::now();
    let mut rows_total = 0u64;
    // One flush per day of history: what a day of minute flushes compacts to.
    rt.block_on(async {
        let mut day_start = first;
        while day_start <= now_minute {
            let day_end = ((day_start.div_euclid(1440) + 1) * 1440 - 1).min(now_minute);
            let mut rows = Vec::new();
            for s in 0..slos {
                for m in day_start..=day_end {
                    let bad = u64::from((m + s as i64) % 97 == 0);
                    rows.push(MinuteRow {
                        tenant: "default".into(),
                        slo: format!("slo-{s:04}"),
                        group: GroupKey::WHOLE,
                        minute: m,
                        tally: Tally::new(600 - bad, 600),
                        latency: None,
                    });
                }
            }
            rows_total += rows.len() as u64;
            assert!(store.write_minutes(rows).await.is_empty());
            day_start = day_end + 1;
        }
    });
    let write_secs = write_start.elapsed().as_secs_f64();
    let usage = rt.block_on(store.usage()).unwrap();
    let (files, bytes) = usage["sli_minute"];
    let per_slo_day = bytes as f64 / slos as f64 / days as f64;
    println!(
        "wrote {rows_total} rows in {files} files, {bytes} bytes in {write_secs:.1} s: {per_slo_day:.0} bytes per SLO per day"
    );

    // A day of latency histograms: 600 durations a minute per SLO (a skewed spread from
    // 5 ms to about 1 s), serialized as slotel keeps them. Written alone to measure their
    // bytes, then as count-free delta rows into the main store for the latency queries.
    let lat_start = Instant::now();
    let mut rows = Vec::with_capacity(slos * 1440);
    for s in 0..slos {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (s as u64 + 1);
        for m in now_minute - 1439..=now_minute {
            let mut h = latency::histogram();
            for _ in 0..600 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
                latency::record(&mut h, 5_000 + (1_000_000.0 * u.powi(6)) as u64);
            }
            rows.push(MinuteRow {
                tenant: "default".into(),
                slo: format!("slo-{s:04}"),
                group: GroupKey::WHOLE,
                minute: m,
                tally: Tally::default(),
                latency: Some(latency::serialize(&h)),
            });
        }
    }
    let lat_dir = tempfile::tempdir().unwrap();
    let lat_store = Store::open(lat_dir.path().to_str().unwrap(), StoreOptions::default()).unwrap();
    rt.block_on(async {
        assert!(lat_store.write_minutes(rows.clone()).await.is_empty());
        assert!(store.write_minutes(rows).await.is_empty());
    });
    let (_, lat_bytes) = rt.block_on(lat_store.usage()).unwrap()["sli_minute"];
    println!(
        "a day of latency histograms: {lat_bytes} bytes, {:.0} bytes per SLO per day (built and written twice in {:.1} s)",
        lat_bytes as f64 / slos as f64,
        lat_start.elapsed().as_secs_f64()
    );

    let listen = dir.path().join("listen.json");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotel"))
        .args(["serve", "--slos"])
        .arg(&slo_file)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--api-addr",
            "127.0.0.1:0",
            "--listen-file",
        ])
        .arg(&listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addrs: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&listen) {
            break serde_json::from_str(&text).unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "slotel exited");
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "slotel did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let restore_secs = start.elapsed().as_secs_f64();
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!(
        "restart: windows rebuilt and listening after {restore_secs:.1} s; RSS {} MiB",
        rss_kib / 1024
    );
    let api = format!("http://{}", addrs["api"].as_str().unwrap());
    rt.block_on(async {
        let http = reqwest::Client::new();
        let one: serde_json::Value = http
            .get(format!("{api}/api/v1/slos/slo-0001"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The window has slid by the minutes since the history was written (the status
        // is read in a minute at most one past `now`).
        let slid = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            / 60
            - now_minute;
        let want = ((days * 1440).min(30 * 1440) - slid) as u64 * 600;
        assert!(
            one["total_events"].as_u64().unwrap() + 600 >= want,
            "restored {} of about {want} events",
            one["total_events"]
        );
        // Warm up, then measure.
        timed(&http, &format!("{api}/api/v1/slos"), 3).await;
        let (p50, p99, size) = timed(&http, &format!("{api}/api/v1/slos"), 200).await;
        println!(
            "GET /api/v1/slos ({slos} SLOs, {size} bytes): p50 {:.1} ms, p99 {:.1} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        let (p50, p99, size) =
            timed(&http, &format!("{api}/api/v1/slos?sort=budget_remaining&state=ok"), 100).await;
        println!(
            "GET /api/v1/slos?sort=budget_remaining&state=ok ({size} bytes): p50 {:.1} ms, p99 {:.1} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        let end = now_minute * 60;
        let begin = end - 30 * 86_400;
        for expr in [
            r#"slotel_slo_sli{slo="slo-0001",window="30d"}"#,
            r#"slotel_slo_burn_rate{slo="slo-0001",window="1h"}"#,
            r#"sum by (service) (slotel_slo_events_rate{service="svc-01",window="1h"})"#,
        ] {
            let url = format!(
                "{api}/prometheus/api/v1/query_range?query={}&start={begin}&end={end}&step=300",
                url_escape(expr)
            );
            let (p50, p99, size) = timed(&http, &url, 20).await;
            println!(
                "query_range 30d step 5m {expr} ({size} bytes): p50 {:.1} ms, p99 {:.1} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
        let begin = end - 86_400;
        for expr in [
            r#"slotel_slo_latency_seconds{slo="slo-0001",window="5m"}"#,
            r#"slotel_slo_latency_seconds{slo="slo-0001",window="1h",quantile="0.99"}"#,
        ] {
            let url = format!(
                "{api}/prometheus/api/v1/query_range?query={}&start={begin}&end={end}&step=60",
                url_escape(expr)
            );
            let (p50, p99, size) = timed(&http, &url, 20).await;
            assert!(size > 10_000, "{expr}: {size} bytes");
            println!(
                "query_range 1d step 1m {expr} ({size} bytes): p50 {:.1} ms, p99 {:.1} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
