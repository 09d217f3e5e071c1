//! The alert loop: evaluate, log, save, record, silence and notify, every interval.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::notify::Router;
use super::{Evaluator, Transition};
use crate::Engine;

/// Where alert state changes are recorded (storage's `alert_events` table).
pub trait TransitionLog: Send + Sync {
    /// Keeps `transitions`; `silenced` tells whether an alert's labels are silenced by a
    /// maintenance window now.
    fn record(
        &self,
        transitions: &[Transition],
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
    );
}

/// What the alert loop works with.
pub struct AlertLoop {
    /// The engine whose burn snapshots are evaluated; its clock is the loop's.
    pub engine: Arc<Engine>,
    /// Where alert state changes are recorded.
    pub log: Arc<dyn TransitionLog>,
    /// The rules' state, shared with the API.
    pub evaluator: Arc<Mutex<Evaluator>>,
    /// Where alerts go.
    pub notifiers: Router,
    /// The alert state file.
    pub state_path: PathBuf,
    /// How often the rules are evaluated.
    pub interval: Duration,
    /// The base of links in alerts.
    pub external_url: String,
}

impl std::fmt::Debug for AlertLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertLoop")
            .field("state_path", &self.state_path)
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
            engine,
            log,
            evaluator,
            notifiers,
            state_path,
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
            // Not before the log is replayed: a window missing its latest minutes could
            // resolve an alert that still fires.
            if !engine.is_ready() {
                continue;
            }
            let (now, snapshot) = engine.burn_snapshot();
            let mut ev = evaluator.lock().unwrap_or_else(|e| e.into_inner());
            let transitions = ev.evaluate(now, &snapshot);
            for t in &transitions {
                tracing::warn!(tenant = %t.tenant, slo = %t.slo, tier = %t.tier, state = t.to.as_str(), "Alert changed state.");
            }
            if !transitions.is_empty()
                && let Err(e) = ev.save(&state_path)
            {
                tracing::error!(error = %e, path = %state_path.display(), "Cannot save the alert state.");
            }
            // Valid for four intervals, as Prometheus does, so that a missed resend does
            // not resolve the alert.
            let valid = (interval * 4).max(Duration::from_secs(60));
            let maintenance = engine.maintenance();
            let silenced = |labels: &BTreeMap<String, String>| {
                let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
                maintenance
                    .silences(get("tenant"), get("slo"), get("service"), now)
                    .is_some()
            };
            log.record(&transitions, &silenced);
            notifiers.notify(&ev, &transitions, now, valid, &external_url, &silenced);
        }
        notifiers.flush(Duration::from_secs(5)).await;
    }
}
