//! PagerDuty Events API v2: `trigger` when an alert fires, `resolve` when it stops,
//! with a stable `dedup_key` per (tenant, SLO, tier).

use serde_json::{Value, json};

use super::{Evaluation, Ledger, Notifier, Outbox, generator_url};
use crate::alerting::Transition;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A stable identity of an alert: `slotel/TENANT/SLO/TIER`.
pub fn dedup_key(t: &Transition) -> String {
    format!("slotel/{}/{}/{}", t.tenant, t.slo, t.tier)
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

/// PagerDuty as a destination: an integration's routing key and its outbox.
#[derive(Debug)]
pub struct PagerDuty {
    /// The integration's routing key.
    pub routing_key: String,
    /// Where events are posted.
    pub outbox: Outbox,
    /// What PagerDuty has been told.
    pub ledger: Ledger,
}

impl Notifier for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn notify(&self, e: &Evaluation<'_>) {
        self.ledger.announce(e, &self.outbox, |a| {
            pagerduty_event(&self.routing_key, &a.transition, a.fired, e.external_url)
        });
    }

    fn test(&self, t: &Transition, external_url: &str, _now: i64) {
        self.outbox
            .send(pagerduty_event(&self.routing_key, t, true, external_url));
    }

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn ledger(&self) -> Option<&Ledger> {
        Some(&self.ledger)
    }

    fn into_outbox(self: Box<Self>) -> Outbox {
        self.outbox
    }
}
