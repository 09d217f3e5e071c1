//! The engine's counters on `/metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Engine;

/// Exposes the engine's counters on `/metrics`.
#[derive(Debug)]
pub struct EngineCollector(pub Arc<Engine>);

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.0.stats();
        let counters = [
            (
                "engine_spans_seen",
                "Spans the engine classified",
                &s.spans_seen,
            ),
            (
                "engine_log_records_seen",
                "Log records the engine classified",
                &s.log_records_seen,
            ),
            (
                "engine_data_points_seen",
                "Metric data points the engine received",
                &s.data_points_seen,
            ),
            (
                "engine_events_counted",
                "(item, SLO) events counted into SLO windows",
                &s.events_counted,
            ),
            (
                "engine_events_too_old",
                "Events older than their SLO's horizon, not counted",
                &s.events_too_old,
            ),
            (
                "engine_events_in_future",
                "Events dated too far in the future, not counted",
                &s.events_in_future,
            ),
            (
                "engine_spans_duplicate",
                "Spans seen again within the de-duplication horizon, not counted again",
                &s.spans_duplicate,
            ),
            (
                "engine_batches_malformed",
                "Trace batches whose bytes do not decode (damage, not input), not counted",
                &s.batches_malformed,
            ),
            (
                "engine_log_records_duplicate",
                "Log records seen again within the de-duplication horizon, not counted again",
                &s.log_records_duplicate,
            ),
            (
                "engine_log_records_undecodable",
                "Write-ahead log records that did not decode, not counted",
                &s.undecodable_records,
            ),
            (
                "engine_group_overflow_events",
                "Events of grouped SLOs counted in the __overflow__ group",
                &s.group_overflow_events,
            ),
            (
                "engine_events_in_maintenance",
                "Events left out of their SLI by a maintenance window",
                &s.events_in_maintenance,
            ),
            (
                "engine_window_pages_installed",
                "Old hours' minutes read from storage for the edges of SLO windows",
                &s.window_pages_installed,
            ),
            (
                "engine_window_pages_refused",
                "Pages read from storage that did not add up to the hour held, read again later",
                &s.window_pages_refused,
            ),
            (
                "engine_window_edge_estimates",
                "Window sums that counted their oldest hour whole for want of its minutes",
                &s.window_edge_estimates,
            ),
            (
                "engine_series_over_cap",
                "Metric points not counted because their SLO tracks too many series",
                &s.series_over_cap,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        // Spans of services that no SLO of their tenant names: a typo in
        // OTEL_SERVICE_NAME, or a service waiting for its SLOs.
        let unmatched = self.0.unmatched_services();
        if !unmatched.is_empty() {
            let mut family = encoder.encode_descriptor(
                "engine_unmatched_spans",
                "Spans from services that no SLO of their tenant selects, by tenant and service",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (tenant, service, spans) in &unmatched {
                let labels = [("tenant", tenant.as_str()), ("service", service.as_str())];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(*spans).encode(metric)?;
            }
        }
        let missing = ConstGauge::new(s.window_pages_missing.load(Relaxed) as i64);
        let metric = encoder.encode_descriptor(
            "engine_window_pages_missing",
            "Pages of old hours that SLO windows need and storage has not given yet",
            None,
            missing.metric_type(),
        )?;
        missing.encode(metric)?;
        let newest = s.newest_event_nanos.load(Relaxed);
        if newest > 0 {
            let age = (self.0.now_nanos() - newest) as f64 / 1e9;
            let gauge = ConstGauge::new(age);
            let metric = encoder.encode_descriptor(
                "engine_newest_event_age_seconds",
                "How far the newest event counted lies behind the clock: the ingestion lag",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
