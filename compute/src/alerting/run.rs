//! The alert loop: evaluate, log, save, record, silence and notify, every interval.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::maintenance::Maintenance;
use super::notify::Router;
use super::{Evaluator, Transition};
use crate::{BurnSnapshot, Engine};

/// A future the alert loop awaits, boxed so that its sources can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the alert loop evaluates: one process's engine, or a cluster's partitions summed.
pub trait BurnSource: Send + Sync {
    /// The instant and the burn snapshots to evaluate at it; `None` while the counts are
    /// incomplete (the log still replaying, a partition whose owner does not answer):
    /// a window missing minutes could resolve an alert that still fires, so nothing is
    /// evaluated then.
    fn burn_snapshot(&self) -> BoxFuture<'_, Option<(i64, Vec<BurnSnapshot>)>>;

    /// The maintenance windows that silence alerts.
    fn maintenance(&self) -> Arc<Maintenance>;
}

impl BurnSource for Engine {
    fn burn_snapshot(&self) -> BoxFuture<'_, Option<(i64, Vec<BurnSnapshot>)>> {
        // Not before the log is replayed.
        let snapshot = self.is_ready().then(|| Engine::burn_snapshot(self));
        Box::pin(std::future::ready(snapshot))
    }

    fn maintenance(&self) -> Arc<Maintenance> {
        Arc::clone(Engine::maintenance(self))
    }
}

/// Where the evaluator's states are kept ([`Evaluator::to_json`]) after every change.
pub trait StatePlace: Send + Sync {
    /// Keeps `json` durably, replacing what was kept before.
    fn save(&self, json: Vec<u8>) -> BoxFuture<'_, std::io::Result<()>>;

    /// Where, for messages.
    fn describe(&self) -> String;
}

/// A local state file, written aside, synced and renamed ([`Evaluator::save`]).
#[derive(Debug, Clone)]
pub struct StateFile(pub PathBuf);

impl StatePlace for StateFile {
    fn save(&self, json: Vec<u8>) -> BoxFuture<'_, std::io::Result<()>> {
        let path = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || super::rules::write_durably(&path, &json))
                .await
                .map_err(std::io::Error::other)?
        })
    }

    fn describe(&self) -> String {
        self.0.display().to_string()
    }
}

/// Where alert state changes are recorded (storage's `alert_events` table).
pub trait TransitionLog: Send + Sync {
    /// Keeps `transitions`; `silenced` tells whether an alert's labels are silenced by a
    /// maintenance window now.
    fn record(
        &self,
        transitions: &[Transition],
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
    );

    /// Makes what was recorded durable before anyone is told of it; by default the
    /// log's own flush does, later.
    fn persist(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What the alert loop works with.
pub struct AlertLoop {
    /// What is evaluated.
    pub source: Arc<dyn BurnSource>,
    /// Where alert state changes are recorded.
    pub log: Arc<dyn TransitionLog>,
    /// The rules' state, shared with the API.
    pub evaluator: Arc<Mutex<Evaluator>>,
    /// Where alerts go.
    pub notifiers: Router,
    /// Where the states are kept.
    pub state: Arc<dyn StatePlace>,
    /// How often the rules are evaluated.
    pub interval: Duration,
    /// The base of links in alerts.
    pub external_url: String,
}

impl std::fmt::Debug for AlertLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertLoop")
            .field("state", &self.state.describe())
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl AlertLoop {
    /// Evaluates the alert rules every `interval`, logs and saves every change, records
    /// it and hands the alerts to the notifiers, until `stop` completes; then gives the
    /// notifiers five seconds to deliver what is queued.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let AlertLoop {
            source,
            log,
            evaluator,
            notifiers,
            state,
            interval,
            external_url,
        } = self;
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticks.tick() => {}
            }
            let Some((now, snapshot)) = source.burn_snapshot().await else {
                continue;
            };
            let (transitions, json) = {
                let mut ev = evaluator.lock().unwrap_or_else(|e| e.into_inner());
                let transitions = ev.evaluate(now, &snapshot);
                let json = (!transitions.is_empty()).then(|| ev.to_json());
                (transitions, json)
            };
            for t in &transitions {
                tracing::warn!(tenant = %t.tenant, slo = %t.slo, tier = %t.tier, state = t.to.as_str(), "Alert changed state.");
            }
            // Kept before anyone is told: a page sent is a page whose state survives a
            // crash (or moves to the next evaluator of a cluster).
            if let Some(json) = json
                && let Err(e) = state.save(json).await
            {
                tracing::error!(error = %e, place = %state.describe(), "Cannot save the alert state.");
            }
            // Valid for four intervals, as Prometheus does, so that a missed resend does
            // not resolve the alert.
            let valid = (interval * 4).max(Duration::from_secs(60));
            let maintenance = source.maintenance();
            let silenced = |labels: &BTreeMap<String, String>| {
                let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
                maintenance
                    .silences(get("tenant"), get("slo"), get("service"), now)
                    .is_some()
            };
            if !transitions.is_empty() {
                log.record(&transitions, &silenced);
                log.persist().await;
            }
            let ev = evaluator.lock().unwrap_or_else(|e| e.into_inner());
            notifiers.notify(&ev, &transitions, now, valid, &external_url, &silenced);
        }
        notifiers.flush(Duration::from_secs(5)).await;
    }
}
