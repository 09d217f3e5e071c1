//! Notifiers: where alerts go. Alertmanager's API v2 (`POST /api/v2/alerts`), as
//! Prometheus sends to it: firing alerts are sent again on every resend interval with an
//! `endsAt` a few intervals ahead, and a resolved alert is sent once with `endsAt` now.
//!
//! Sending never blocks evaluation: alerts go into a bounded outbox drained by a task
//! that posts with a timeout and retries with backoff; when the outbox is full the
//! oldest batch is dropped and counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::alert::{AlertState, Evaluator, Transition};

/// An alert in Alertmanager's API v2 form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    pub starts_at: String,
    /// When it ends: ahead for a firing alert, now for a resolved one.
    pub ends_at: String,
    /// A link back to the SLO.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// Counters of the notifiers.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Batches delivered.
    pub sent: AtomicU64,
    /// Batches that failed after every retry.
    pub failed: AtomicU64,
    /// Batches dropped because the outbox was full.
    pub dropped: AtomicU64,
}

/// Where to send alerts.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per batch.
    pub attempts: u32,
}

/// Sends alerts to Alertmanager from a bounded outbox.
#[derive(Debug, Clone)]
pub struct Alertmanager {
    tx: mpsc::Sender<Vec<AmAlert>>,
    stats: Arc<NotifyStats>,
}

/// Batches the outbox holds.
const OUTBOX: usize = 64;

fn rfc3339(nanos: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

impl Alertmanager {
    /// Starts the sender task. Must be called within a Tokio runtime.
    pub fn start(config: AlertmanagerConfig) -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<AmAlert>>(OUTBOX);
        let stats = Arc::new(NotifyStats::default());
        let task_stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(config.timeout)
                .build()
                .unwrap_or_default();
            let url = format!("{}/api/v2/alerts", config.url.trim_end_matches('/'));
            while let Some(batch) = rx.recv().await {
                let mut delivered = false;
                for attempt in 0..config.attempts.max(1) {
                    match client.post(&url).json(&batch).send().await {
                        Ok(r) if r.status().is_success() => {
                            delivered = true;
                            break;
                        }
                        Ok(r) => {
                            tracing::warn!(status = %r.status(), attempt, "Alertmanager refused alerts.")
                        }
                        Err(e) => tracing::warn!(error = %e, attempt, "Cannot reach Alertmanager."),
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
                let counter = if delivered {
                    &task_stats.sent
                } else {
                    &task_stats.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self { tx, stats }
    }

    /// The notifier's counters.
    pub fn stats(&self) -> &NotifyStats {
        &self.stats
    }

    /// Queues a batch; never waits. When the outbox is full the batch is dropped and
    /// counted (the next resend carries the same firing alerts).
    pub fn send(&self, batch: Vec<AmAlert>) {
        if batch.is_empty() {
            return;
        }
        if self.tx.try_send(batch).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The alerts to send after an evaluation at `now`: every firing alert with `endsAt`
/// `valid_for` ahead, and every alert that stopped firing with `endsAt` now.
pub fn alertmanager_batch(
    evaluator: &Evaluator,
    transitions: &[Transition],
    now: i64,
    valid_for: Duration,
    generator_base: &str,
) -> Vec<AmAlert> {
    let url = |labels: &BTreeMap<String, String>| {
        format!(
            "{}/api/v1/slos/{}",
            generator_base.trim_end_matches('/'),
            labels.get("slo").map(String::as_str).unwrap_or_default()
        )
    };
    let mut out: Vec<AmAlert> = evaluator
        .active(None)
        .into_iter()
        .filter_map(|a| match a.state {
            AlertState::Firing { since } => Some(AmAlert {
                generator_url: url(&a.labels),
                labels: a.labels,
                annotations: a.annotations,
                starts_at: rfc3339(since),
                ends_at: rfc3339(now + valid_for.as_nanos() as i64),
            }),
            _ => None,
        })
        .collect();
    for t in transitions {
        if let (AlertState::Firing { since }, AlertState::Inactive) = (t.from, t.to) {
            out.push(AmAlert {
                generator_url: url(&t.labels),
                labels: t.labels.clone(),
                annotations: t.annotations.clone(),
                starts_at: rfc3339(since),
                ends_at: rfc3339(now),
            });
        }
    }
    out
}
