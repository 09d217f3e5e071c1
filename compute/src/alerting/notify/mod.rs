//! Notifiers: where alerts go.
//!
//! - Alertmanager's API v2 (`POST /api/v2/alerts`), as Prometheus sends to it: firing
//!   alerts again on every evaluation with an `endsAt` a few intervals ahead, a resolved
//!   alert once with `endsAt` now.
//! - Webhooks, with Alertmanager's webhook payload (version 4), on every change.
//! - PagerDuty Events API v2: `trigger` when an alert fires, `resolve` when it stops,
//!   with a stable `dedup_key` per (tenant, SLO, tier).
//! - Slack incoming webhooks: a line of text per change.
//!
//! Each kind is a [`Notifier`] in a file of its own. Every destination has its own
//! bounded outbox drained by its own task, which posts
//! with a timeout and retries with backoff: a dead or slow receiver delays only itself,
//! never evaluation, ingestion or the other receivers. A full outbox drops the new
//! delivery and counts it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::alerting::{AlertKey, AlertState, Evaluator, Resolved, Severity, Transition};

mod alertmanager;
mod pagerduty;
mod slack;
mod webhook;

pub use alertmanager::{Alertmanager, AmAlert, alertmanager_batch};
pub use pagerduty::{PAGERDUTY_EVENTS_URL, PagerDuty, dedup_key, pagerduty_event};
pub use slack::{Slack, slack_message};
pub use webhook::{Webhook, webhook_payload};

/// What one evaluation hands the notifiers.
#[derive(Clone, Copy)]
pub struct Evaluation<'a> {
    /// The rules' state after the evaluation.
    pub evaluator: &'a Evaluator,
    /// The changes the evaluation made.
    pub transitions: &'a [Transition],
    /// When (nanoseconds since the epoch).
    pub now: i64,
    /// How long a firing alert stays valid without being sent again.
    pub valid_for: Duration,
    /// The base of links in alerts.
    pub external_url: &'a str,
    /// Whether an alert's labels are silenced by a maintenance window now.
    pub silenced: &'a dyn Fn(&BTreeMap<String, String>) -> bool,
}

/// One destination of alerts: what it sends after an evaluation and for a test, through
/// its own [`Outbox`].
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The kind, for receiver names and logs: `alertmanager`, `webhook`, `pagerduty`,
    /// `slack`.
    fn kind(&self) -> &'static str;
    /// Sends what `evaluation` calls for. Never waits.
    fn notify(&self, evaluation: &Evaluation<'_>);
    /// Sends a test notification for `alert` (a firing test transition) at `now`.
    fn test(&self, alert: &Transition, external_url: &str, now: i64);
    /// The destination's outbox.
    fn outbox(&self) -> &Outbox;
    /// The outbox, to drain it at shutdown.
    fn into_outbox(self: Box<Self>) -> Outbox;
    /// What the receiver has been told, for receivers that hear of changes only.
    fn ledger(&self) -> Option<&Ledger> {
        None
    }
}

/// The link to an alert's SLO, for the alert's tenant: the API takes the tenant from
/// `?tenant=` when a request has no `X-Scope-OrgID`, as a followed link has not.
pub(crate) fn generator_url(base: &str, labels: &BTreeMap<String, String>) -> String {
    let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
    let slo: String = url::form_urlencoded::byte_serialize(get("slo").as_bytes()).collect();
    let tenant: String = url::form_urlencoded::byte_serialize(get("tenant").as_bytes()).collect();
    format!(
        "{}/api/v1/slos/{slo}?tenant={tenant}",
        base.trim_end_matches('/'),
    )
}

/// The configured notifiers of one route, in the order their counters are listed.
#[derive(Debug, Default)]
pub struct Notifiers {
    all: Vec<Box<dyn Notifier>>,
}

impl Notifiers {
    /// Starts a sender per destination. Within a Tokio runtime.
    pub fn start(config: &Receivers, delivery: Delivery) -> Self {
        let outbox =
            |name, url: String| Outbox::start(name, url, delivery.timeout, delivery.attempts);
        let mut all: Vec<Box<dyn Notifier>> = Vec::new();
        if let Some(u) = &config.alertmanager_url {
            all.push(Box::new(Alertmanager(outbox(
                "alertmanager",
                format!("{}/api/v2/alerts", u.trim_end_matches('/')),
            ))));
        }
        for u in &config.webhook_urls {
            all.push(Box::new(Webhook(
                outbox("webhook", u.clone()),
                Ledger::default(),
            )));
        }
        if let Some((key, url)) = &config.pagerduty {
            all.push(Box::new(PagerDuty {
                routing_key: key.clone(),
                outbox: outbox("pagerduty", url.clone()),
                ledger: Ledger::default(),
            }));
        }
        if let Some(u) = &config.slack_url {
            all.push(Box::new(Slack(
                outbox("slack", u.clone()),
                Ledger::default(),
            )));
        }
        Self { all }
    }

    /// Stops taking notifications and waits up to `timeout` for the queued ones to be
    /// delivered, so that a graceful shutdown does not lose a page or a resolve.
    pub async fn flush(self, timeout: Duration) {
        let tasks: Vec<_> = self
            .all
            .into_iter()
            .map(|n| {
                let o = n.into_outbox();
                drop(o.tx);
                o.task
            })
            .collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("Some notifications were not delivered before shutdown.");
        }
    }

    /// The counters of every destination, by receiver: `alertmanager`, `webhook-1`,
    /// `webhook-2`, … (in configuration order), `pagerduty`, `slack`.
    pub fn stats(&self) -> Vec<(String, Arc<NotifyStats>)> {
        let mut webhooks = 0;
        self.all
            .iter()
            .map(|n| {
                let name = match n.kind() {
                    "webhook" => {
                        webhooks += 1;
                        format!("webhook-{webhooks}")
                    }
                    kind => kind.to_string(),
                };
                (name, Arc::clone(n.outbox().stats()))
            })
            .collect()
    }

    /// Counts the `resolved` alerts as told, so the first evaluation resolves them
    /// again at every receiver that hears of changes.
    pub fn seed(&self, resolved: &BTreeMap<AlertKey, Resolved>) {
        for n in &self.all {
            if let Some(l) = n.ledger() {
                l.seed(resolved);
            }
        }
    }

    /// Sends what `evaluation` calls for, except for alerts its `silenced` holds back.
    /// Never waits.
    pub fn notify(&self, evaluation: &Evaluation<'_>) {
        for n in &self.all {
            n.notify(evaluation);
        }
    }

    /// A test notification through every configured destination.
    pub fn test(&self, external_url: &str, now: i64) {
        let labels: BTreeMap<String, String> = [
            ("alertname", "SLOTelTest"),
            ("slo", "slotel-test"),
            ("service", "slotel"),
            ("tenant", "default"),
            ("severity", "ticket"),
            ("burnrate_tier", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let annotations: BTreeMap<String, String> = [(
            "summary".to_string(),
            "A test notification from slotel: this route works.".to_string(),
        )]
        .into();
        let t = Transition {
            tenant: "default".into(),
            slo: "slotel-test".into(),
            tier: "test".into(),
            severity: crate::alerting::Severity::Ticket,
            from: AlertState::Inactive,
            to: AlertState::Firing { since: now },
            at: now,
            burn_rates: (None, None),
            labels,
            annotations,
        };
        for n in &self.all {
            n.test(&t, external_url, now);
        }
    }
}

/// Counters of one destination.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Deliveries that succeeded.
    pub sent: AtomicU64,
    /// Deliveries that failed after every attempt.
    pub failed: AtomicU64,
    /// Deliveries dropped because the outbox was full.
    pub dropped: AtomicU64,
}

/// Deliveries an outbox holds.
const OUTBOX: usize = 256;

/// Called with whether a delivery succeeded (after its last attempt).
pub type OnDone = Box<dyn FnOnce(bool) + Send>;

/// One destination's outbox and sender task.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<(Value, Option<OnDoneBox>)>,
    stats: Arc<NotifyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// The destination's counters.
    pub fn stats(&self) -> &Arc<NotifyStats> {
        &self.stats
    }

    /// Starts a task posting every queued JSON body to `url`. Within a Tokio runtime.
    pub fn start(name: &'static str, url: String, timeout: Duration, attempts: u32) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Value, Option<OnDoneBox>)>(OUTBOX);
        let stats = Arc::new(NotifyStats::default());
        let task_stats = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default();
            while let Some((body, done)) = rx.recv().await {
                let mut delivered = false;
                for attempt in 0..attempts.max(1) {
                    match client.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            delivered = true;
                            break;
                        }
                        Ok(r) => {
                            tracing::warn!(receiver = name, status = %r.status(), attempt, "A receiver refused a notification.")
                        }
                        Err(e) => {
                            tracing::warn!(receiver = name, error = %e, attempt, "Cannot reach a receiver.")
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
                let counter = if delivered {
                    &task_stats.sent
                } else {
                    &task_stats.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(OnDoneBox(done)) = done {
                    done(delivered);
                }
            }
        });
        Self { tx, stats, task }
    }

    /// Queues `body` for delivery; a full outbox drops it and counts the drop.
    pub fn send(&self, body: Value) {
        if self.tx.try_send((body, None)).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `body` for delivery and calls `done` with whether it was delivered (with
    /// `false` at once when the outbox is full).
    pub fn send_then(&self, body: Value, done: OnDone) {
        if let Err(e) = self.tx.try_send((body, Some(OnDoneBox(done)))) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            let (_, done) = match e {
                mpsc::error::TrySendError::Full(x) | mpsc::error::TrySendError::Closed(x) => x,
            };
            if let Some(OnDoneBox(done)) = done {
                done(false);
            }
        }
    }
}

/// An [`OnDone`] that can sit in a channel of a `Debug` type.
struct OnDoneBox(OnDone);

impl std::fmt::Debug for OnDoneBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnDone")
    }
}

/// What a receiver that hears of changes (webhook, PagerDuty, Slack) has been told is
/// firing. Every evaluation brings it to the evaluator's state: a firing alert it was
/// not told of is announced (after a restart, when the maintenance window that held it
/// back ends, after a delivery that failed), and a told alert that no longer fires is
/// resolved (also one that resolved just before a restart). Deliveries carry the
/// receivers' idempotency keys (PagerDuty's `dedup_key`, the webhook's fingerprint), so
/// announcing an alert again never pages twice.
#[derive(Debug, Default, Clone)]
pub struct Ledger(Arc<std::sync::Mutex<BTreeMap<AlertKey, Transition>>>);

/// One announcement of [`Ledger::reconcile`].
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The alert's key.
    pub key: AlertKey,
    /// The change, as a transition (firing or resolved).
    pub transition: Transition,
    /// Whether it fired (else it resolved).
    pub fired: bool,
    /// When it started firing.
    pub since: i64,
}

fn severity_of(labels: &BTreeMap<String, String>) -> Severity {
    match labels.get("severity").map(String::as_str) {
        Some("page") => Severity::Page,
        _ => Severity::Ticket,
    }
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<AlertKey, Transition>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `resolved` as told firing, so that the first evaluation resolves them again.
    pub fn seed(&self, resolved: &BTreeMap<AlertKey, Resolved>) {
        let mut told = self.lock();
        for (key, r) in resolved {
            told.insert(
                key.clone(),
                Transition {
                    tenant: key.0.clone(),
                    slo: key.1.clone(),
                    tier: key.2.clone(),
                    severity: severity_of(&r.labels),
                    from: AlertState::Inactive,
                    to: AlertState::Firing { since: r.since },
                    at: r.since,
                    burn_rates: (None, None),
                    labels: r.labels.clone(),
                    annotations: r.annotations.clone(),
                },
            );
        }
    }

    /// The alerts of `tenant`'s SLO `slo` told firing: key, alert, since when.
    pub fn firing_of(&self, tenant: &str, slo: &str) -> Vec<(AlertKey, Transition, i64)> {
        self.lock()
            .iter()
            .filter(|(k, _)| k.0 == tenant && k.1 == slo)
            .filter_map(|(k, t)| match t.to {
                AlertState::Firing { since } => Some((k.clone(), t.clone(), since)),
                _ => None,
            })
            .collect()
    }

    /// The fires and resolves that bring the receiver to `e`'s state; they count as
    /// told until [`Ledger::done`] says a delivery failed.
    pub fn reconcile(&self, e: &Evaluation<'_>) -> Vec<Announcement> {
        let firing = e.evaluator.firing();
        let mut told = self.lock();
        let mut out = Vec::new();
        for (key, alert) in &firing {
            let AlertState::Firing { since } = alert.state else {
                continue;
            };
            if (e.silenced)(&alert.labels) {
                continue; // held back; announced when the window ends
            }
            if told
                .get(key)
                .is_some_and(|t| t.to == AlertState::Firing { since })
            {
                continue;
            }
            let fresh = e
                .transitions
                .iter()
                .find(|t| (&t.tenant, &t.slo, &t.tier) == (&key.0, &key.1, &key.2));
            let transition = Transition {
                tenant: key.0.clone(),
                slo: key.1.clone(),
                tier: key.2.clone(),
                severity: fresh.map_or_else(|| severity_of(&alert.labels), |t| t.severity),
                from: fresh.map_or(AlertState::Inactive, |t| t.from),
                to: AlertState::Firing { since },
                at: e.now,
                burn_rates: fresh.map_or((None, None), |t| t.burn_rates),
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
            };
            told.insert(key.clone(), transition.clone());
            out.push(Announcement {
                key: key.clone(),
                transition,
                fired: true,
                since,
            });
        }
        let gone: Vec<AlertKey> = told
            .keys()
            .filter(|k| !firing.iter().any(|(f, _)| f == *k))
            .cloned()
            .collect();
        for key in gone {
            let Some(t) = told.remove(&key) else { continue };
            let AlertState::Firing { since } = t.to else {
                continue;
            };
            out.push(Announcement {
                key,
                transition: Transition {
                    from: t.to,
                    to: AlertState::Inactive,
                    at: e.now,
                    ..t
                },
                fired: false,
                since,
            });
        }
        // An alert that stopped firing in this evaluation but that this ledger was never
        // told of (it fired before a restart, and resolved before the first evaluation
        // after it): the receiver may have heard the fire from the previous process, so
        // it hears the resolve too. A resolve of an unknown incident is harmless.
        for t in e.transitions {
            let AlertState::Firing { since } = t.from else {
                continue;
            };
            let key = (t.tenant.clone(), t.slo.clone(), t.tier.clone());
            if matches!(t.to, AlertState::Firing { .. })
                || out.iter().any(|a| a.key == key)
                || (e.silenced)(&t.labels)
            {
                continue;
            }
            out.push(Announcement {
                key,
                transition: t.clone(),
                fired: false,
                since,
            });
        }
        out
    }

    /// Queues on `outbox` the body `payload` makes of each announcement that brings the
    /// receiver to `e`'s state, with [`Ledger::done`] as its callback.
    pub fn announce(
        &self,
        e: &Evaluation<'_>,
        outbox: &Outbox,
        payload: impl Fn(&Announcement) -> Value,
    ) {
        for a in self.reconcile(e) {
            outbox.send_then(payload(&a), self.done(&a));
        }
    }

    /// What to call when the delivery of `a` is over: a fire that failed is forgotten
    /// (announced again at the next evaluation), a resolve that failed is told firing
    /// again (resolved again at the next evaluation).
    pub fn done(&self, a: &Announcement) -> OnDone {
        let ledger = self.clone();
        let (key, fired, since) = (a.key.clone(), a.fired, a.since);
        let firing = Transition {
            from: AlertState::Inactive,
            to: AlertState::Firing { since },
            ..a.transition.clone()
        };
        Box::new(move |delivered| {
            if delivered {
                return;
            }
            let mut told = ledger.lock();
            if fired {
                if told
                    .get(&key)
                    .is_some_and(|t| t.to == AlertState::Firing { since })
                {
                    told.remove(&key);
                }
            } else {
                told.entry(key).or_insert(firing);
            }
        })
    }
}

/// Where alerts go: the one description of a set of receivers, used for the default
/// receivers and for each route's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receivers {
    /// Alertmanager's base URL.
    pub alertmanager_url: Option<String>,
    /// Webhook URLs (Alertmanager's webhook payload).
    pub webhook_urls: Vec<String>,
    /// PagerDuty: the integration's routing key, and the events URL.
    pub pagerduty: Option<(String, String)>,
    /// A Slack incoming webhook URL.
    pub slack_url: Option<String>,
}

/// How deliveries are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per delivery.
    pub attempts: u32,
}

impl Delivery {
    /// Ten seconds per request, `attempts` attempts.
    pub fn attempts(attempts: u32) -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts,
        }
    }
}

/// Where the alerts whose labels match go: Alertmanager's routing, one level deep.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// Labels an alert must have, all with these values (`tenant` routes per tenant).
    pub matchers: BTreeMap<String, String>,
    /// Whether alerts matched here also try the routes after this one.
    pub continue_matching: bool,
    /// The receivers of the route.
    pub receivers: Receivers,
}

impl RouteConfig {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

/// The receivers of every route, and the default ones for alerts no route matches.
pub struct Router {
    routes: Vec<(RouteConfig, Notifiers)>,
    default: Notifiers,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Starts the senders of `default` and of every route. Within a Tokio runtime.
    pub fn start(default: &Receivers, routes: &[RouteConfig], delivery: Delivery) -> Self {
        Self {
            routes: routes
                .iter()
                .map(|r| (r.clone(), Notifiers::start(&r.receivers, delivery)))
                .collect(),
            default: Notifiers::start(default, delivery),
        }
    }

    /// Which routes an alert with `labels` goes to (the first that matches, and the
    /// ones after it while matched routes say `continue`), and whether it goes to the
    /// default receivers (when no route matches).
    pub fn destinations(&self, labels: &BTreeMap<String, String>) -> (Vec<bool>, bool) {
        let mut to = vec![false; self.routes.len()];
        let mut matched = false;
        for (i, (route, _)) in self.routes.iter().enumerate() {
            if route.matches(labels) {
                to[i] = true;
                matched = true;
                if !route.continue_matching {
                    break;
                }
            }
        }
        (to, !matched)
    }

    /// Sends what an evaluation calls for through the receivers each alert is routed
    /// to (see [`Notifiers::notify`]).
    pub fn notify(
        &self,
        evaluator: &Evaluator,
        transitions: &[Transition],
        now: i64,
        valid_for: Duration,
        external_url: &str,
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
    ) {
        let all = Evaluation {
            evaluator,
            transitions,
            now,
            valid_for,
            external_url,
            silenced,
        };
        for (i, (_, n)) in self.routes.iter().enumerate() {
            let held = |l: &BTreeMap<String, String>| silenced(l) || !self.destinations(l).0[i];
            n.notify(&Evaluation {
                silenced: &held,
                ..all
            });
        }
        let held = |l: &BTreeMap<String, String>| silenced(l) || !self.destinations(l).1;
        self.default.notify(&Evaluation {
            silenced: &held,
            ..all
        });
    }

    /// Seeds every receiver with the alerts that resolved lately (see
    /// [`Notifiers::seed`]).
    pub fn seed(&self, resolved: &BTreeMap<AlertKey, Resolved>) {
        self.default.seed(resolved);
        for (_, n) in &self.routes {
            n.seed(resolved);
        }
    }

    /// Sends a test notification through every receiver, of every route.
    pub fn test(&self, external_url: &str, now: i64) {
        self.default.test(external_url, now);
        for (_, n) in &self.routes {
            n.test(external_url, now);
        }
    }

    /// The counters of every receiver: the default ones by name (see
    /// [`Notifiers::stats`]), a route's as `route-N/name`.
    pub fn stats(&self) -> Vec<(String, Arc<NotifyStats>)> {
        let mut out = self.default.stats();
        for (i, (_, n)) in self.routes.iter().enumerate() {
            out.extend(
                n.stats()
                    .into_iter()
                    .map(|(name, s)| (format!("route-{}/{name}", i + 1), s)),
            );
        }
        out
    }

    /// Flushes every receiver (see [`Notifiers::flush`]) at once, within `timeout`.
    pub async fn flush(self, timeout: Duration) {
        let mut all = tokio::task::JoinSet::new();
        all.spawn(self.default.flush(timeout));
        for (_, n) in self.routes {
            all.spawn(n.flush(timeout));
        }
        while all.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod router_tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn route(pairs: &[(&str, &str)], continue_matching: bool) -> RouteConfig {
        RouteConfig {
            matchers: labels(pairs),
            continue_matching,
            receivers: Receivers::default(),
        }
    }

    #[tokio::test]
    async fn the_first_matching_route_wins_unless_it_continues() {
        let router = Router::start(
            &Receivers::default(),
            &[
                route(&[("tenant", "team-b"), ("severity", "page")], true),
                route(&[("tenant", "team-b")], false),
                route(&[("severity", "page")], false),
            ],
            Delivery::attempts(1),
        );
        let d = |pairs: &[(&str, &str)]| router.destinations(&labels(pairs));
        assert_eq!(
            d(&[("tenant", "team-b"), ("severity", "page")]),
            (vec![true, true, false], false)
        );
        assert_eq!(
            d(&[("tenant", "team-b"), ("severity", "ticket")]),
            (vec![false, true, false], false)
        );
        assert_eq!(
            d(&[("tenant", "default"), ("severity", "page")]),
            (vec![false, false, true], false)
        );
        assert_eq!(
            d(&[("tenant", "default"), ("severity", "ticket")]),
            (vec![false, false, false], true)
        );
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::*;

    #[test]
    fn a_resolve_of_an_alert_fired_before_a_restart_is_announced() {
        // A fresh ledger (a new process) whose first evaluation sees page-fast stop
        // firing: it never told the receiver of the fire, the previous process did.
        let ledger = Ledger::default();
        let evaluator = Evaluator::new();
        let resolved = Transition {
            tenant: "default".into(),
            slo: "api".into(),
            tier: "page-fast".into(),
            severity: Severity::Page,
            from: AlertState::Firing { since: 5 },
            to: AlertState::Inactive,
            at: 10,
            burn_rates: (None, None),
            labels: BTreeMap::from([("slo".to_string(), "api".to_string())]),
            annotations: BTreeMap::new(),
        };
        let silenced = |_: &BTreeMap<String, String>| false;
        let e = Evaluation {
            evaluator: &evaluator,
            transitions: std::slice::from_ref(&resolved),
            now: 10,
            valid_for: Duration::from_secs(60),
            external_url: "",
            silenced: &silenced,
        };
        let out = ledger.reconcile(&e);
        assert_eq!(out.len(), 1);
        assert!(!out[0].fired);
        assert_eq!(out[0].since, 5);
        assert_eq!(out[0].key.2, "page-fast");
        // Once: the next evaluation has nothing to say.
        let e = Evaluation {
            transitions: &[],
            ..e
        };
        assert!(ledger.reconcile(&e).is_empty());
    }
}
