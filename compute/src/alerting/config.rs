//! The `alerting:` section of the configuration file: rule evaluation, the default
//! receivers and the routes, resolved into [`AlertingConfig`].

use std::time::Duration;

use serde::Deserialize;
use slotel_model::time::optional_duration as duration;

use super::notify::{Delivery, Receivers, RouteConfig, Router};

/// `alerting:` — rule evaluation and where alerts go.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertingFile {
    #[serde(default, deserialize_with = "duration")]
    evaluation_interval: Option<Duration>,
    alertmanager_url: Option<String>,
    external_url: Option<String>,
    #[serde(default)]
    webhook_urls: Vec<String>,
    pagerduty: Option<PagerDutyFile>,
    slack_webhook_url: Option<String>,
    /// Receivers for the alerts whose labels match, before the ones above.
    #[serde(default)]
    routes: Vec<RouteFile>,
}

/// One `alerting.routes` entry.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    #[serde(rename = "match", default)]
    matchers: std::collections::BTreeMap<String, String>,
    #[serde(rename = "continue", default)]
    continue_matching: bool,
    alertmanager_url: Option<String>,
    #[serde(default)]
    webhook_urls: Vec<String>,
    pagerduty: Option<PagerDutyFile>,
    slack_webhook_url: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
/// `pagerduty:` — an integration's routing key, and the events URL.
pub struct PagerDutyFile {
    routing_key: String,
    events_url: Option<String>,
}

impl PagerDutyFile {
    /// The routing key and the events URL (PagerDuty's own by default).
    pub fn resolve(self) -> (String, String) {
        let url = self
            .events_url
            .unwrap_or_else(|| super::notify::PAGERDUTY_EVENTS_URL.to_string());
        (self.routing_key, url)
    }
}

impl AlertingFile {
    /// The settings: what is set here, the defaults elsewhere.
    pub fn resolve(self) -> AlertingConfig {
        AlertingConfig {
            evaluation_interval: self
                .evaluation_interval
                .unwrap_or(Duration::from_secs(30))
                .max(Duration::from_millis(100)),
            external_url: self.external_url,
            receivers: Receivers {
                alertmanager_url: self.alertmanager_url,
                webhook_urls: self.webhook_urls,
                pagerduty: self.pagerduty.map(PagerDutyFile::resolve),
                slack_url: self.slack_webhook_url,
            },
            routes: self
                .routes
                .into_iter()
                .map(|r| RouteConfig {
                    matchers: r.matchers,
                    continue_matching: r.continue_matching,
                    receivers: Receivers {
                        alertmanager_url: r.alertmanager_url,
                        webhook_urls: r.webhook_urls,
                        pagerduty: r.pagerduty.map(PagerDutyFile::resolve),
                        slack_url: r.slack_webhook_url,
                    },
                })
                .collect(),
        }
    }
}

impl AlertingConfig {
    /// Starts the notifiers of the default receivers and of every route, with
    /// `attempts` per delivery. Within a Tokio runtime.
    pub fn router(&self, attempts: u32) -> Router {
        Router::start(&self.receivers, &self.routes, Delivery::attempts(attempts))
    }

    /// The base of links in alerts: `external_url`, or the API address.
    pub fn external_url(&self, api: &str) -> String {
        self.external_url
            .clone()
            .unwrap_or_else(|| format!("http://{api}"))
    }
}

/// The resolved `alerting:` settings.
#[derive(Debug, Clone)]
pub struct AlertingConfig {
    /// How often the rules run.
    pub evaluation_interval: Duration,
    /// The URL people reach slotel's API at, for links in alerts (default: the API
    /// address).
    pub external_url: Option<String>,
    /// The receivers of alerts no route matches.
    pub receivers: Receivers,
    /// Routes by labels, tried in order before the default receivers.
    pub routes: Vec<RouteConfig>,
}
