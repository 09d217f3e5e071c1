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
//! Every destination has its own bounded outbox drained by its own task, which posts
//! with a timeout and retries with backoff: a dead or slow receiver delays only itself,
//! never evaluation, ingestion or the other receivers. A full outbox drops the new
//! delivery and counts it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::alerting::{Alert, AlertState, Evaluator, Transition};
use slotel_model::time::rfc3339;

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

/// One destination's outbox and sender task.
#[derive(Debug)]
struct Outbox {
    tx: mpsc::Sender<Value>,
    stats: Arc<NotifyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// Starts a task posting every queued JSON body to `url`. Within a Tokio runtime.
    fn start(name: &'static str, url: String, timeout: Duration, attempts: u32) -> Self {
        let (tx, mut rx) = mpsc::channel::<Value>(OUTBOX);
        let stats = Arc::new(NotifyStats::default());
        let task_stats = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default();
            while let Some(body) = rx.recv().await {
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
            }
        });
        Self { tx, stats, task }
    }

    fn send(&self, body: Value) {
        if self.tx.try_send(body).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where alerts go.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// Alertmanager's base URL.
    pub alertmanager_url: Option<String>,
    /// Webhook URLs (Alertmanager's webhook payload).
    pub webhook_urls: Vec<String>,
    /// PagerDuty: the integration's routing key, and the events URL.
    pub pagerduty: Option<(String, String)>,
    /// A Slack incoming webhook URL.
    pub slack_url: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per delivery.
    pub attempts: u32,
}

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The configured notifiers.
#[derive(Debug, Default)]
pub struct Notifiers {
    alertmanager: Option<Outbox>,
    webhooks: Vec<Outbox>,
    pagerduty: Option<(String, Outbox)>,
    slack: Option<Outbox>,
}

fn generator_url(base: &str, labels: &BTreeMap<String, String>) -> String {
    format!(
        "{}/api/v1/slos/{}",
        base.trim_end_matches('/'),
        labels.get("slo").map(String::as_str).unwrap_or_default()
    )
}

impl Notifiers {
    /// Starts a sender per destination. Within a Tokio runtime.
    pub fn start(config: &NotifyConfig) -> Self {
        let outbox = |name, url: String| Outbox::start(name, url, config.timeout, config.attempts);
        Self {
            alertmanager: config.alertmanager_url.as_ref().map(|u| {
                outbox(
                    "alertmanager",
                    format!("{}/api/v2/alerts", u.trim_end_matches('/')),
                )
            }),
            webhooks: config
                .webhook_urls
                .iter()
                .map(|u| outbox("webhook", u.clone()))
                .collect(),
            pagerduty: config
                .pagerduty
                .as_ref()
                .map(|(key, url)| (key.clone(), outbox("pagerduty", url.clone()))),
            slack: config
                .slack_url
                .as_ref()
                .map(|u| outbox("slack", u.clone())),
        }
    }

    /// Stops taking notifications and waits up to `timeout` for the queued ones to be
    /// delivered, so that a graceful shutdown does not lose a page or a resolve.
    pub async fn flush(self, timeout: Duration) {
        let mut tasks = Vec::new();
        let mut take = |o: Outbox| {
            drop(o.tx);
            tasks.push(o.task);
        };
        self.alertmanager.into_iter().for_each(&mut take);
        self.webhooks.into_iter().for_each(&mut take);
        self.pagerduty
            .into_iter()
            .map(|(_, o)| o)
            .for_each(&mut take);
        self.slack.into_iter().for_each(&mut take);
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
        let mut out = Vec::new();
        if let Some(o) = &self.alertmanager {
            out.push(("alertmanager".to_string(), Arc::clone(&o.stats)));
        }
        for (i, o) in self.webhooks.iter().enumerate() {
            out.push((format!("webhook-{}", i + 1), Arc::clone(&o.stats)));
        }
        if let Some((_, o)) = &self.pagerduty {
            out.push(("pagerduty".to_string(), Arc::clone(&o.stats)));
        }
        if let Some(o) = &self.slack {
            out.push(("slack".to_string(), Arc::clone(&o.stats)));
        }
        out
    }

    /// Sends what an evaluation at `now` calls for, except for alerts `silenced` says to
    /// hold back (a maintenance window). Never waits.
    pub fn notify(
        &self,
        evaluator: &Evaluator,
        transitions: &[Transition],
        now: i64,
        valid_for: Duration,
        external_url: &str,
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
    ) {
        if let Some(am) = &self.alertmanager {
            let mut batch =
                alertmanager_batch(evaluator, transitions, now, valid_for, external_url);
            batch.retain(|a| !silenced(&a.labels));
            if !batch.is_empty() {
                am.send(serde_json::to_value(batch).unwrap_or_default());
            }
        }
        // The others hear of changes between firing and not firing only.
        for t in transitions.iter().filter(|t| !silenced(&t.labels)) {
            let (fired, resolved) = match (t.from, t.to) {
                (_, AlertState::Firing { .. }) => (true, false),
                (AlertState::Firing { .. }, AlertState::Inactive) => (false, true),
                _ => continue,
            };
            let since = match (t.from, t.to) {
                (_, AlertState::Firing { since }) | (AlertState::Firing { since }, _) => since,
                _ => now,
            };
            for w in &self.webhooks {
                w.send(webhook_payload(t, fired, since, now, external_url));
            }
            if let Some((key, pd)) = &self.pagerduty {
                pd.send(pagerduty_event(key, t, fired, external_url));
            }
            if let Some(slack) = &self.slack {
                slack.send(slack_message(t, fired, resolved, external_url));
            }
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
            labels: labels.clone(),
            annotations: annotations.clone(),
        };
        if let Some(am) = &self.alertmanager {
            let alert = AmAlert {
                generator_url: generator_url(external_url, &labels),
                labels,
                annotations,
                starts_at: rfc3339(now),
                ends_at: rfc3339(now + 300_000_000_000),
            };
            am.send(serde_json::to_value(vec![alert]).unwrap_or_default());
        }
        for w in &self.webhooks {
            w.send(webhook_payload(&t, true, now, now, external_url));
        }
        if let Some((key, pd)) = &self.pagerduty {
            pd.send(pagerduty_event(key, &t, true, external_url));
        }
        if let Some(slack) = &self.slack {
            slack.send(slack_message(&t, true, false, external_url));
        }
    }
}

/// The alerts to send Alertmanager after an evaluation at `now`: every firing alert with
/// `endsAt` `valid_for` ahead, and every alert that stopped firing with `endsAt` now.
pub fn alertmanager_batch(
    evaluator: &Evaluator,
    transitions: &[Transition],
    now: i64,
    valid_for: Duration,
    external_url: &str,
) -> Vec<AmAlert> {
    let mut out: Vec<AmAlert> = evaluator
        .active(None)
        .into_iter()
        .filter_map(|a: Alert| match a.state {
            AlertState::Firing { since } => Some(AmAlert {
                generator_url: generator_url(external_url, &a.labels),
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
                generator_url: generator_url(external_url, &t.labels),
                labels: t.labels.clone(),
                annotations: t.annotations.clone(),
                starts_at: rfc3339(since),
                ends_at: rfc3339(now),
            });
        }
    }
    out
}

/// A stable identity of an alert: `slotel/TENANT/SLO/TIER`.
pub fn dedup_key(t: &Transition) -> String {
    format!("slotel/{}/{}/{}", t.tenant, t.slo, t.tier)
}

/// Alertmanager's webhook payload (version 4) for one alert's change.
pub fn webhook_payload(
    t: &Transition,
    firing: bool,
    since: i64,
    now: i64,
    external_url: &str,
) -> Value {
    let status = if firing { "firing" } else { "resolved" };
    let ends_at = if firing {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        rfc3339(now)
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{slo=\"{}\", tenant=\"{}\"}}", t.slo, t.tenant),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "slotel",
        "groupLabels": { "slo": t.slo, "tenant": t.tenant },
        "commonLabels": t.labels,
        "commonAnnotations": t.annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": t.labels,
            "annotations": t.annotations,
            "startsAt": rfc3339(since),
            "endsAt": ends_at,
            "generatorURL": generator_url(external_url, &t.labels),
            "fingerprint": format!("{:016x}", fingerprint(&dedup_key(t))),
        }],
    })
}

fn fingerprint(s: &str) -> u64 {
    // FNV-1a: stable across runs and machines, unlike the std hasher.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A PagerDuty Events API v2 event: `trigger` when firing, `resolve` when not.
pub fn pagerduty_event(
    routing_key: &str,
    t: &Transition,
    firing: bool,
    external_url: &str,
) -> Value {
    let key = dedup_key(t);
    if !firing {
        return json!({ "routing_key": routing_key, "event_action": "resolve", "dedup_key": key });
    }
    let severity = match t.severity {
        crate::alerting::Severity::Page => "critical",
        crate::alerting::Severity::Ticket => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": t.annotations.get("summary").cloned().unwrap_or_else(|| format!("{} is burning its error budget", t.slo)),
            "severity": severity,
            "source": "slotel",
            "component": t.labels.get("service"),
            "group": t.slo,
            "class": t.tier,
            "custom_details": { "labels": t.labels, "annotations": t.annotations },
        },
        "links": [{ "href": generator_url(external_url, &t.labels), "text": format!("SLO {}", t.slo) }],
        "client": "slotel",
        "client_url": external_url,
    })
}

/// A Slack incoming-webhook message for one alert's change.
pub fn slack_message(t: &Transition, firing: bool, resolved: bool, external_url: &str) -> Value {
    let summary = t.annotations.get("summary").cloned().unwrap_or_default();
    let head = if firing {
        format!("[FIRING] {} {} ({:?})", t.slo, t.tier, t.severity).to_lowercase()
    } else if resolved {
        format!("[RESOLVED] {} {}", t.slo, t.tier).to_lowercase()
    } else {
        String::new()
    };
    json!({
        "text": format!("{head}: {summary} <{}|details>", generator_url(external_url, &t.labels)),
    })
}

/// Where the alerts whose labels match go: Alertmanager's routing, one level deep.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// Labels an alert must have, all with these values (`tenant` routes per tenant).
    pub matchers: BTreeMap<String, String>,
    /// Whether alerts matched here also try the routes after this one.
    pub continue_matching: bool,
    /// The receivers of the route.
    pub receivers: NotifyConfig,
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
    pub fn start(default: &NotifyConfig, routes: &[RouteConfig]) -> Self {
        Self {
            routes: routes
                .iter()
                .map(|r| (r.clone(), Notifiers::start(&r.receivers)))
                .collect(),
            default: Notifiers::start(default),
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
        for (i, (_, n)) in self.routes.iter().enumerate() {
            let held = |l: &BTreeMap<String, String>| silenced(l) || !self.destinations(l).0[i];
            n.notify(evaluator, transitions, now, valid_for, external_url, &held);
        }
        let held = |l: &BTreeMap<String, String>| silenced(l) || !self.destinations(l).1;
        self.default
            .notify(evaluator, transitions, now, valid_for, external_url, &held);
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
            receivers: NotifyConfig::default(),
        }
    }

    #[tokio::test]
    async fn the_first_matching_route_wins_unless_it_continues() {
        let router = Router::start(
            &NotifyConfig::default(),
            &[
                route(&[("tenant", "team-b"), ("severity", "page")], true),
                route(&[("tenant", "team-b")], false),
                route(&[("severity", "page")], false),
            ],
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
