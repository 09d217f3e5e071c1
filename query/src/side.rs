//! Series served beside the SLO series: the active alerts (`slotel_slo_alert`, as
//! Prometheus' `ALERTS`) and a minute-by-minute history of slotel's own health metrics,
//! so that a dashboard on the Prometheus API alone can show when the SLO pipeline itself
//! is blind (refusals, queue depth, ingestion lag).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use slotel_compute::Engine;
use slotel_compute::alerting::{ALERT_NAME, AlertState, Evaluator, tier_window_minutes, tiers_for};
use slotel_model::format_minutes;

use crate::promql::Labels;
use slotel_model::names::label_name;

use slotel_model::catalog::{ALERT_METRIC, HEALTH_METRICS, TIER_STATE_METRIC};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// A series given as samples by minute.
#[derive(Debug, Clone)]
pub struct SideSeries {
    /// Its labels, `__name__` included.
    pub labels: Labels,
    /// Its samples by minute.
    pub samples: BTreeMap<i64, f64>,
    /// How many minutes a sample stands for when later ones are missing (Prometheus'
    /// lookback for gauges read between scrapes); 0 for exact series.
    pub lookback_minutes: i64,
}

impl SideSeries {
    /// Its value at `minute`: the sample of that minute, or the newest within the
    /// lookback.
    pub fn at(&self, minute: i64) -> Option<f64> {
        self.samples
            .range(minute - self.lookback_minutes..=minute)
            .next_back()
            .map(|(_, v)| *v)
    }
}

/// The minutes of the health history kept: one day.
const HEALTH_MINUTES: usize = 1440;

/// Staleness: a health sample stands for up to five minutes, as in Prometheus.
const HEALTH_LOOKBACK_MINUTES: i64 = 5;

/// slotel's own metrics, sampled into one value per minute (the last one taken): by a
/// periodic task, and at every read so the current minute is fresh.
#[derive(Default)]
pub struct HealthHistory {
    registry: Option<std::sync::Arc<Registry>>,
    series: Mutex<BTreeMap<Labels, VecDeque<(i64, f64)>>>,
}

impl std::fmt::Debug for HealthHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthHistory").finish_non_exhaustive()
    }
}

impl HealthHistory {
    /// A history of the metrics of `registry`.
    pub fn new(registry: std::sync::Arc<Registry>) -> Self {
        Self {
            registry: Some(registry),
            series: Mutex::default(),
        }
    }

    /// Takes a sample of the metrics of [`HEALTH_METRICS`] at `now_nanos`, replacing an
    /// earlier sample of the same minute.
    pub fn record(&self, now_nanos: i64) {
        let Some(registry) = &self.registry else {
            return;
        };
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
            return;
        }
        let minute = now_nanos.div_euclid(NANOS_PER_MINUTE);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            let Some((labels, value)) = parse_sample(line) else {
                continue;
            };
            let ring = series.entry(labels).or_default();
            if ring.back().is_some_and(|(m, _)| *m == minute) {
                ring.pop_back();
            }
            ring.push_back((minute, value));
            while ring.len() > HEALTH_MINUTES {
                ring.pop_front();
            }
        }
    }

    /// Samples slotel's own metrics every 15 seconds at `engine`'s now (the last sample
    /// of each minute is kept), until `stop` completes.
    pub async fn run(
        self: Arc<Self>,
        engine: Arc<slotel_compute::Engine>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => self.record(engine.now_nanos()),
            }
        }
    }

    /// The type and help of each kept metric, by sample name, as the registry
    /// describes its family (`counter` families name their samples `_total`).
    pub fn metadata(&self) -> BTreeMap<&'static str, (String, String)> {
        let mut text = String::new();
        let Some(registry) = &self.registry else {
            return BTreeMap::new();
        };
        if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
            return BTreeMap::new();
        }
        let mut help: BTreeMap<&str, &str> = BTreeMap::new();
        let mut kind: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            let (map, rest) = if let Some(r) = line.strip_prefix("# HELP ") {
                (&mut help, r)
            } else if let Some(r) = line.strip_prefix("# TYPE ") {
                (&mut kind, r)
            } else {
                continue;
            };
            if let Some((family, what)) = rest.split_once(' ') {
                map.insert(family, what);
            }
        }
        HEALTH_METRICS
            .iter()
            .filter_map(|&sample| {
                let family = kind
                    .get_key_value(sample)
                    .or_else(|| kind.get_key_value(sample.strip_suffix("_total")?))?
                    .0;
                let help = help.get(family).copied().unwrap_or_default();
                Some((
                    sample,
                    (kind[family].to_string(), help.replace("\\n", "\n")),
                ))
            })
            .collect()
    }

    /// The health series `tenant` may read, with a sample taken at `now_nanos`.
    pub fn series(&self, tenant: &str, now_nanos: i64) -> Vec<SideSeries> {
        self.record(now_nanos);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .iter()
            .filter(|(labels, _)| labels.get("tenant").is_none_or(|t| t == tenant))
            .map(|(labels, ring)| SideSeries {
                labels: labels.clone(),
                samples: ring.iter().copied().collect(),
                lookback_minutes: HEALTH_LOOKBACK_MINUTES,
            })
            .collect()
    }
}

/// One sample line of the text exposition format, when its name is kept.
fn parse_sample(line: &str) -> Option<(Labels, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !HEALTH_METRICS.contains(&name) {
        return None;
    }
    let mut labels = Labels::new();
    labels.insert("__name__".into(), name.into());
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        };
        rest = &body[end + 1..];
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((labels, value))
}

/// The active alerts of `tenant` as `slotel_slo_alert` series: value 1 from the minute
/// the alert became pending or firing to `now_nanos`, with label `alertstate`.
pub fn alert_series(evaluator: &Mutex<Evaluator>, tenant: &str, now_nanos: i64) -> Vec<SideSeries> {
    let active = evaluator
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active(Some(tenant));
    let now = now_nanos.div_euclid(NANOS_PER_MINUTE);
    active
        .into_iter()
        .filter_map(|alert| {
            let (state, since) = match alert.state {
                AlertState::Pending { since } => ("pending", since),
                AlertState::Firing { since } => ("firing", since),
                AlertState::Inactive => return None,
            };
            let mut labels = Labels::new();
            for (k, v) in &alert.labels {
                if let Some(k) = label_name(k) {
                    labels.insert(k, v.clone());
                }
            }
            labels.insert("__name__".into(), ALERT_METRIC.into());
            labels.insert("alertstate".into(), state.into());
            let from = since.div_euclid(NANOS_PER_MINUTE).max(now - 1440 * 31);
            Some(SideSeries {
                labels,
                samples: (from..=now).map(|m| (m, 1.0)).collect(),
                lookback_minutes: 0,
            })
        })
        .collect()
}

/// Every burn-rate tier of `tenant`'s SLOs as a `slotel_slo_alert_state` series: 0
/// inactive, 1 pending, 2 firing, at the current minute (it stands for five minutes),
/// with the tier's windows and factor as labels.
pub fn tier_state_series(
    engine: &Engine,
    evaluator: &Mutex<Evaluator>,
    tenant: &str,
    now_nanos: i64,
) -> Vec<SideSeries> {
    let evaluator = evaluator.lock().unwrap_or_else(|e| e.into_inner());
    let now = now_nanos.div_euclid(NANOS_PER_MINUTE);
    let mut out = Vec::new();
    for def in engine.slos(tenant) {
        for tier in tiers_for(&def, tier_window_minutes(&def, now_nanos)) {
            let state = match evaluator.state(tenant, &def.name, &tier.name) {
                AlertState::Inactive => 0.0,
                AlertState::Pending { .. } => 1.0,
                AlertState::Firing { .. } => 2.0,
            };
            let mut labels = Labels::new();
            for (k, v) in [
                ("__name__", TIER_STATE_METRIC.to_string()),
                ("alertname", ALERT_NAME.to_string()),
                ("slo", def.name.clone()),
                ("service", def.service.clone()),
                ("tenant", def.tenant.clone()),
                ("severity", tier.severity.as_str().to_string()),
                ("burnrate_tier", tier.name.clone()),
                ("long_window", format_minutes(tier.long_minutes)),
                ("short_window", format_minutes(tier.short_minutes)),
                ("factor", tier.factor_shown().to_string()),
            ] {
                labels.insert(k.to_string(), v);
            }
            // Also at the minute before: a query evaluated just before the minute turned
            // (the caller's clock a little behind this one) still finds the state.
            out.push(SideSeries {
                labels,
                samples: BTreeMap::from([(now - 1, state), (now, state)]),
                lookback_minutes: HEALTH_LOOKBACK_MINUTES,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kept_samples_with_escaped_labels() {
        let (labels, v) = parse_sample(
            r#"slotel_ingest_items_refused_total{tenant="a\"b",reason="queue_full"} 7"#,
        )
        .expect("kept");
        assert_eq!(v, 7.0);
        assert_eq!(labels["tenant"], "a\"b");
        assert_eq!(labels["reason"], "queue_full");
        assert_eq!(labels["__name__"], "slotel_ingest_items_refused_total");
        let (labels, v) = parse_sample("slotel_queue_batches 3").expect("kept");
        assert_eq!((labels.len(), v), (1, 3.0));
        assert!(parse_sample("slotel_engine_spans_seen_total 5").is_none());
        assert!(parse_sample("# TYPE slotel_queue_batches gauge").is_none());
    }

    #[test]
    fn keeps_one_sample_per_minute_and_filters_tenants() {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::family::Family;
        let mut registry = Registry::with_prefix("slotel");
        let refused = Family::<Vec<(String, String)>, Counter>::default();
        registry.register("ingest_items_refused", "refused", refused.clone());
        let history = HealthHistory::new(std::sync::Arc::new(registry));
        refused
            .get_or_create(&vec![("tenant".into(), "a".into())])
            .inc_by(2);
        refused
            .get_or_create(&vec![("tenant".into(), "b".into())])
            .inc();
        history.record(10 * NANOS_PER_MINUTE);
        refused
            .get_or_create(&vec![("tenant".into(), "a".into())])
            .inc();
        history.record(10 * NANOS_PER_MINUTE + 30_000_000_000);
        let a = history.series("a", 12 * NANOS_PER_MINUTE);
        assert_eq!(a.len(), 1);
        let samples: Vec<(i64, f64)> = a[0].samples.iter().map(|(m, v)| (*m, *v)).collect();
        assert_eq!(samples, vec![(10, 3.0), (12, 3.0)]);
        assert_eq!(a[0].at(11), Some(3.0));
        assert_eq!(a[0].at(18), None);
        assert_eq!(history.series("c", 12 * NANOS_PER_MINUTE).len(), 0);
    }
}
