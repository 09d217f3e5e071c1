//! Webhooks, with Alertmanager's webhook payload (version 4), on every change.

use serde_json::{Value, json};

use super::pagerduty::dedup_key;
use super::{Evaluation, Ledger, Notifier, Outbox, generator_url};
use crate::alerting::Transition;
use slotel_model::time::rfc3339;

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

/// A webhook as a destination.
#[derive(Debug)]
pub struct Webhook(pub Outbox, pub Ledger);

impl Notifier for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn notify(&self, e: &Evaluation<'_>) {
        self.1.announce(e, &self.0, |a| {
            webhook_payload(&a.transition, a.fired, a.since, e.now, e.external_url)
        });
    }

    fn test(&self, t: &Transition, external_url: &str, now: i64) {
        self.0
            .send(webhook_payload(t, true, now, now, external_url));
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
