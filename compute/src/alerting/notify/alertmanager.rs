//! Alertmanager's API v2 (`POST /api/v2/alerts`), as Prometheus sends to it: firing
//! alerts again on every evaluation with an `endsAt` a few intervals ahead, a resolved
//! alert once with `endsAt` now.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Evaluation, Notifier, Outbox, generator_url};
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

/// Alertmanager as a destination.
#[derive(Debug)]
pub struct Alertmanager(pub Outbox);

impl Notifier for Alertmanager {
    fn kind(&self) -> &'static str {
        "alertmanager"
    }

    fn notify(&self, e: &Evaluation<'_>) {
        let mut batch = alertmanager_batch(
            e.evaluator,
            e.transitions,
            e.now,
            e.valid_for,
            e.external_url,
        );
        batch.retain(|a| !(e.silenced)(&a.labels));
        if !batch.is_empty() {
            self.0.send(serde_json::to_value(batch).unwrap_or_default());
        }
    }

    fn test(&self, t: &Transition, external_url: &str, now: i64) {
        let alert = AmAlert {
            generator_url: generator_url(external_url, &t.labels),
            labels: t.labels.clone(),
            annotations: t.annotations.clone(),
            starts_at: rfc3339(now),
            ends_at: rfc3339(now + 300_000_000_000),
        };
        self.0
            .send(serde_json::to_value(vec![alert]).unwrap_or_default());
    }

    fn outbox(&self) -> &Outbox {
        &self.0
    }

    fn into_outbox(self: Box<Self>) -> Outbox {
        self.0
    }
}
