//! Webhooks, with Alertmanager's webhook payload (version 4): one notification per SLO
//! and evaluation that changed anything, holding all of the SLO's alerts.

use serde_json::{Value, json};

use super::pagerduty::dedup_key;
use std::collections::BTreeMap;

use super::{Announcement, Evaluation, Ledger, Notifier, OnDone, Outbox, generator_url};
use crate::alerting::Transition;
use slotel_model::time::rfc3339;

/// One alert of a webhook notification: its change (or its state, for an alert of the
/// group that still fires).
#[derive(Debug, Clone)]
pub struct WebhookAlert<'a> {
    /// The alert.
    pub transition: &'a Transition,
    /// Firing (else resolved).
    pub firing: bool,
    /// When it started firing.
    pub since: i64,
}

/// Alertmanager's webhook payload (version 4) for the alerts of one SLO (a group, as
/// Alertmanager groups by `slo` and `tenant`): one notification per incident, whose
/// `alerts` hold every tier that changed and every tier of the SLO that still fires.
pub fn webhook_payload(alerts: &[WebhookAlert<'_>], now: i64, external_url: &str) -> Value {
    let Some(first) = alerts.first() else {
        return Value::Null;
    };
    let (slo, tenant) = (&first.transition.slo, &first.transition.tenant);
    let status = |firing: bool| if firing { "firing" } else { "resolved" };
    let common = |of: &dyn Fn(&Transition) -> &BTreeMap<String, String>| {
        let mut common = of(first.transition).clone();
        for a in &alerts[1..] {
            let other = of(a.transition);
            common.retain(|k, v| other.get(k) == Some(v));
        }
        common
    };
    let items: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let t = a.transition;
            let ends_at = if a.firing {
                "0001-01-01T00:00:00Z".to_string()
            } else {
                rfc3339(now)
            };
            json!({
                "status": status(a.firing),
                "labels": t.labels,
                "annotations": t.annotations,
                "startsAt": rfc3339(a.since),
                "endsAt": ends_at,
                "generatorURL": generator_url(external_url, &t.labels),
                "fingerprint": format!("{:016x}", fingerprint(&dedup_key(t))),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{slo=\"{slo}\", tenant=\"{tenant}\"}}"),
        "truncatedAlerts": 0,
        "status": status(alerts.iter().any(|a| a.firing)),
        "receiver": "slotel",
        "groupLabels": { "slo": slo, "tenant": tenant },
        "commonLabels": common(&|t| &t.labels),
        "commonAnnotations": common(&|t| &t.annotations),
        "externalURL": external_url,
        "alerts": items,
    })
}

fn fingerprint(s: &str) -> u64 {
    // FNV-1a: stable across runs and machines, unlike the std hasher.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A webhook as a destination.
#[derive(Debug)]
pub struct Webhook(pub Outbox, pub Ledger);

impl Notifier for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn notify(&self, e: &Evaluation<'_>) {
        let mut incidents: BTreeMap<(String, String), Vec<Announcement>> = BTreeMap::new();
        for a in self.1.reconcile(e) {
            incidents
                .entry((a.key.0.clone(), a.key.1.clone()))
                .or_default()
                .push(a);
        }
        for ((tenant, slo), changed) in incidents {
            let still = self.1.firing_of(&tenant, &slo);
            let mut alerts: Vec<WebhookAlert<'_>> = changed
                .iter()
                .map(|a| WebhookAlert {
                    transition: &a.transition,
                    firing: a.fired,
                    since: a.since,
                })
                .collect();
            for (key, t, since) in &still {
                if !changed.iter().any(|a| &a.key == key) {
                    alerts.push(WebhookAlert {
                        transition: t,
                        firing: true,
                        since: *since,
                    });
                }
            }
            let body = webhook_payload(&alerts, e.now, e.external_url);
            let dones: Vec<OnDone> = changed.iter().map(|a| self.1.done(a)).collect();
            self.0.send_then(
                body,
                Box::new(move |delivered| {
                    for done in dones {
                        done(delivered);
                    }
                }),
            );
        }
    }

    fn test(&self, t: &Transition, external_url: &str, now: i64) {
        let alert = WebhookAlert {
            transition: t,
            firing: true,
            since: now,
        };
        self.0.send(webhook_payload(&[alert], now, external_url));
    }

    fn outbox(&self) -> &Outbox {
        &self.0
    }

    fn ledger(&self) -> Option<&Ledger> {
        Some(&self.1)
    }

    fn into_outbox(self: Box<Self>) -> Outbox {
        self.0
    }
}
