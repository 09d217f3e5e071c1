//! Slack incoming webhooks: a line of text per change.

use serde_json::{Value, json};

use super::{Evaluation, Ledger, Notifier, Outbox, generator_url};
use crate::alerting::Transition;

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

/// A Slack incoming webhook as a destination.
#[derive(Debug)]
pub struct Slack(pub Outbox, pub Ledger);

impl Notifier for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn notify(&self, e: &Evaluation<'_>) {
        self.1.announce(e, &self.0, |a| {
            slack_message(&a.transition, a.fired, !a.fired, e.external_url)
        });
    }

    fn test(&self, t: &Transition, external_url: &str, _now: i64) {
        self.0.send(slack_message(t, true, false, external_url));
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
