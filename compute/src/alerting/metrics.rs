//! The alerts and the notifiers' counters on `/metrics`.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::notify::NotifyStats;
use super::{AlertState, Evaluator};

/// Exposes the alerts and the notifiers' counters on `/metrics`.
#[derive(Debug)]
pub struct AlertCollector {
    /// The rules' state.
    pub evaluator: Arc<Mutex<Evaluator>>,
    /// Each receiver's counters.
    pub notifiers: Vec<(String, Arc<NotifyStats>)>,
}

impl Collector for AlertCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let active = self
            .evaluator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active(None);
        let firing = active
            .iter()
            .filter(|a| matches!(a.state, AlertState::Firing { .. }))
            .count();
        let gauge = ConstGauge::new(firing as i64);
        let metric = encoder.encode_descriptor(
            "alerts_firing",
            "Burn-rate alerts firing now",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)?;
        for (what, help) in [
            ("sent", "Notifications delivered, by receiver"),
            (
                "failed",
                "Notifications that failed after every attempt, by receiver",
            ),
            (
                "dropped",
                "Notifications dropped because the receiver's outbox was full",
            ),
        ] {
            let name = format!("notifications_{what}");
            let mut family = encoder.encode_descriptor(
                &name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (receiver, stats) in &self.notifiers {
                let value = match what {
                    "sent" => stats.sent.load(Relaxed),
                    "failed" => stats.failed.load(Relaxed),
                    _ => stats.dropped.load(Relaxed),
                };
                let labels = [("receiver", receiver.as_str())];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(value).encode(metric)?;
            }
        }
        Ok(())
    }
}
