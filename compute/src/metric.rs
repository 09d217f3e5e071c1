//! Metric SLIs: which OTLP data points an SLO counts, and how cumulative series become
//! per-minute deltas.
//!
//! A ratio SLI counts monotonic Sums (good or bad, over total); a latency SLI counts the
//! observations of a Histogram or ExponentialHistogram at or below a threshold. Delta
//! points count as they are. Cumulative points count their increase over the previous
//! point of the same series; a lower value or a new start time is a reset, after which the
//! new value is the increase. The first point of a series counts in full when its start
//! time lies within the SLO's horizon (the counter began while the window could see it),
//! and is only a baseline otherwise.
//!
//! A histogram threshold between two bucket bounds is not interpolated: the bucket that
//! holds it counts as bad, so the SLI never claims more good events than happened. The
//! bound actually used is reported in the SLO's status.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use slotel_proto::otlp::common::v1::{KeyValue, any_value::Value};
use slotel_proto::otlp::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, ResourceMetrics,
    metric::Data, number_data_point,
};

use crate::classify::{attr_matches, matches_all, service_of};
use slotel_model::names::prometheus_name;
use slotel_model::{AttrMatch, MetricSelector, Sli, SloDef};

/// What a data point means to an SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    /// A counter of good events.
    Good,
    /// A counter of bad events.
    Bad,
    /// A counter of all events.
    Total,
    /// A histogram of durations, good at or below the threshold (seconds).
    Latency(f64),
}

#[derive(Debug)]
struct Rule {
    slo: u32,
    role: Role,
    attributes: Vec<(String, AttrMatch)>,
    /// The attribute keys are Prometheus label names.
    prometheus: bool,
    /// The selector names a histogram's `_count` series (Prometheus' name for the count
    /// of a histogram's observations): read the count of the histogram's points as a
    /// counter.
    count: bool,
}

/// A service's rules by metric name: OTLP names, and Prometheus names of OTLP metrics.
#[derive(Debug, Default)]
struct ServiceRules {
    by_name: HashMap<String, Vec<Rule>>,
    by_prometheus_name: HashMap<String, Vec<Rule>>,
}

/// Metric rules by tenant, service and metric name.
#[derive(Debug, Default)]
pub struct MetricIndex {
    tenants: HashMap<String, HashMap<String, ServiceRules>>,
}

/// Whether OTLP attribute key `otlp` is Prometheus label `label` (invalid characters
/// read as `_`), without allocating.
fn prometheus_key_eq(otlp: &str, label: &str) -> bool {
    otlp.len() == label.len()
        && otlp.chars().zip(label.chars()).all(|(o, l)| {
            let o = if o.is_ascii_alphanumeric() || o == '_' {
                o
            } else {
                '_'
            };
            o == l
        })
}

fn rule_matches(rule: &Rule, attrs: &[KeyValue]) -> bool {
    if !rule.prometheus {
        return matches_all(attrs, &rule.attributes);
    }
    rule.attributes.iter().all(|(label, m)| {
        let value = attrs
            .iter()
            .find(|kv| prometheus_key_eq(&kv.key, label))
            .and_then(|kv| kv.value.as_ref());
        attr_matches(value.map(slotel_proto::wire::Value::of), m)
    })
}

/// One data point's counts, before delta conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The series' start time (0 when unknown).
    pub start: u64,
    /// The point's time.
    pub time: u64,
    /// Good events (latency SLIs) or the counter value (ratio SLIs).
    pub good: f64,
    /// All events (latency SLIs); equal to `good` for counters.
    pub total: f64,
    /// Whether the values are cumulative.
    pub cumulative: bool,
    /// For latency SLIs, the largest bucket bound at or below the threshold (seconds).
    pub effective_threshold: Option<f64>,
}

impl MetricIndex {
    /// Builds the index; SLO `i` of `slos` is id `i`.
    pub fn build<'a>(slos: impl IntoIterator<Item = &'a SloDef>) -> Self {
        let mut index = MetricIndex::default();
        for (id, def) in slos.into_iter().enumerate() {
            let mut add = |sel: &MetricSelector, role| {
                let service = index
                    .tenants
                    .entry(def.tenant.clone())
                    .or_default()
                    .entry(def.service.clone())
                    .or_default();
                let map = if sel.prometheus {
                    &mut service.by_prometheus_name
                } else {
                    &mut service.by_name
                };
                let count = sel.prometheus && sel.name.ends_with("_count");
                let name = if count {
                    sel.name.trim_end_matches("_count")
                } else {
                    sel.name.as_str()
                };
                map.entry(name.to_string()).or_default().push(Rule {
                    slo: id as u32,
                    role,
                    attributes: sel.attributes.clone(),
                    prometheus: sel.prometheus,
                    count,
                });
            };
            match &def.sli {
                Sli::MetricRatio { good, bad, total } => {
                    if let Some(g) = good {
                        add(g, Role::Good);
                    }
                    if let Some(b) = bad {
                        add(b, Role::Bad);
                    }
                    add(total, Role::Total);
                }
                Sli::MetricLatency {
                    metric,
                    threshold_seconds,
                } => add(metric, Role::Latency(*threshold_seconds)),
                Sli::Spans { .. } | Sli::Logs { .. } => {}
            }
        }
        index
    }

    /// Classifies every data point of `rm` for `tenant`: `emit(slo, role, series_key,
    /// observation, point attributes)` once per (point, matching rule). Returns the points looked at.
    pub fn classify(
        &self,
        tenant: &str,
        rm: &ResourceMetrics,
        mut emit: impl FnMut(u32, Role, u64, Observation, &[KeyValue]),
    ) -> usize {
        let Some(service) = self
            .tenants
            .get(tenant)
            .and_then(|s| s.get(service_of(rm.resource.as_ref())))
        else {
            return 0;
        };
        let resource_attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let mut seen = 0;
        let no_rules: Vec<Rule> = Vec::new();
        for metric in rm.scope_metrics.iter().flat_map(|sm| sm.metrics.iter()) {
            let by_name = service.by_name.get(metric.name.as_str());
            // Prometheus names are computed only where an SLO uses them.
            let by_prometheus = if service.by_prometheus_name.is_empty() {
                None
            } else {
                let monotonic = matches!(&metric.data, Some(Data::Sum(s)) if s.is_monotonic);
                let name = prometheus_name(&metric.name, &metric.unit, monotonic);
                service.by_prometheus_name.get(name.as_str())
            };
            if by_name.is_none() && by_prometheus.is_none() {
                continue;
            }
            let rules = by_name
                .unwrap_or(&no_rules)
                .iter()
                .chain(by_prometheus.unwrap_or(&no_rules).iter());
            let unit = metric.unit.as_str();
            let mut each = |attrs: &[KeyValue], obs: &dyn Fn(&Rule) -> Option<Observation>| {
                seen += 1;
                for rule in rules.clone() {
                    if !rule_matches(rule, attrs) {
                        continue;
                    }
                    if let Some(o) = obs(rule) {
                        let key = series_key(&metric.name, rule.role, resource_attrs, attrs);
                        emit(rule.slo, rule.role, key, o, attrs);
                    }
                }
            };
            match &metric.data {
                Some(Data::Sum(sum)) if sum.is_monotonic => {
                    let cumulative =
                        sum.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                    for p in &sum.data_points {
                        let value = match p.value {
                            Some(number_data_point::Value::AsInt(v)) => v as f64,
                            Some(number_data_point::Value::AsDouble(v)) => v,
                            None => continue,
                        };
                        each(&p.attributes, &|rule| {
                            (!matches!(rule.role, Role::Latency(_)) && !rule.count).then_some(
                                Observation {
                                    start: p.start_time_unix_nano,
                                    time: p.time_unix_nano,
                                    good: value,
                                    total: value,
                                    cumulative,
                                    effective_threshold: None,
                                },
                            )
                        });
                    }
                }
                Some(Data::Histogram(h)) => {
                    let cumulative =
                        h.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                    for p in &h.data_points {
                        each(&p.attributes, &|rule| match rule.role {
                            Role::Latency(t) => histogram(p, unit, t, cumulative),
                            _ if rule.count => Some(count_of(
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.count,
                                cumulative,
                            )),
                            _ => None,
                        });
                    }
                }
                Some(Data::ExponentialHistogram(h)) => {
                    let cumulative =
                        h.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                    for p in &h.data_points {
                        each(&p.attributes, &|rule| match rule.role {
                            Role::Latency(t) => exponential(p, unit, t, cumulative),
                            _ if rule.count => Some(count_of(
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.count,
                                cumulative,
                            )),
                            _ => None,
                        });
                    }
                }
                _ => {}
            }
        }
        seen
    }
}

/// A histogram point's count of observations, read as a counter.
fn count_of(start: u64, time: u64, count: u64, cumulative: bool) -> Observation {
    Observation {
        start,
        time,
        good: count as f64,
        total: count as f64,
        cumulative,
        effective_threshold: None,
    }
}

/// Seconds per unit of a duration metric (UCUM units as OTel uses them); an empty unit
/// is taken as seconds, the unit OTel's semantic conventions prescribe.
pub fn seconds_per_unit(unit: &str) -> Option<f64> {
    match unit {
        "" | "s" => Some(1.0),
        "ms" => Some(1e-3),
        "us" | "µs" => Some(1e-6),
        "ns" => Some(1e-9),
        "min" => Some(60.0),
        "h" => Some(3600.0),
        _ => None,
    }
}

fn histogram(
    p: &HistogramDataPoint,
    unit: &str,
    threshold_s: f64,
    cumulative: bool,
) -> Option<Observation> {
    let threshold = threshold_s / seconds_per_unit(unit)?;
    // Summed as the observation holds them: a client's counts cannot overflow a float.
    let mut good = 0f64;
    let mut effective = None;
    for (i, &count) in p.bucket_counts.iter().enumerate() {
        // Bucket i holds (bounds[i-1], bounds[i]]; the last one is unbounded.
        match p.explicit_bounds.get(i) {
            Some(&upper) if upper <= threshold => {
                good += count as f64;
                effective = Some(upper * seconds_per_unit(unit)?);
            }
            _ => break,
        }
    }
    Some(Observation {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        good,
        total: p.count as f64,
        cumulative,
        effective_threshold: effective,
    })
}

fn exponential(
    p: &ExponentialHistogramDataPoint,
    unit: &str,
    threshold_s: f64,
    cumulative: bool,
) -> Option<Observation> {
    let threshold = threshold_s / seconds_per_unit(unit)?;
    let base = 2f64.powf(2f64.powi(-p.scale));
    // Zero and negative observations are below any positive threshold.
    let mut good = p.zero_count as f64
        + p.negative
            .as_ref()
            .map_or(0.0, |n| n.bucket_counts.iter().map(|&c| c as f64).sum());
    let mut effective = None;
    if let Some(pos) = &p.positive {
        for (i, &count) in pos.bucket_counts.iter().enumerate() {
            // Bucket index k holds (base^k, base^(k+1)].
            let k = pos.offset as f64 + i as f64;
            let upper = base.powf(k + 1.0);
            if upper <= threshold {
                good += count as f64;
                effective = Some(upper * seconds_per_unit(unit)?);
            } else {
                break;
            }
        }
    }
    Some(Observation {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        good,
        total: p.count as f64,
        cumulative,
        effective_threshold: effective,
    })
}

fn hash_value(h: &mut impl Hasher, v: Option<&Value>) {
    match v {
        Some(Value::StringValue(s)) => (0u8, s).hash(h),
        Some(Value::BoolValue(b)) => (1u8, b).hash(h),
        Some(Value::IntValue(i)) => (2u8, i).hash(h),
        Some(Value::DoubleValue(d)) => (3u8, d.to_bits()).hash(h),
        Some(Value::BytesValue(b)) => (4u8, b).hash(h),
        Some(Value::ArrayValue(a)) => {
            5u8.hash(h);
            for v in &a.values {
                hash_value(h, v.value.as_ref());
            }
        }
        Some(Value::KvlistValue(kv)) => {
            6u8.hash(h);
            hash_attrs(h, &kv.values);
        }
        _ => 7u8.hash(h),
    }
}

fn hash_attrs(h: &mut impl Hasher, attrs: &[KeyValue]) {
    // Attribute order carries no meaning: combine per-attribute hashes commutatively.
    let mut acc = 0u64;
    for kv in attrs {
        let mut one = std::collections::hash_map::DefaultHasher::new();
        kv.key.hash(&mut one);
        hash_value(&mut one, kv.value.as_ref().and_then(|v| v.value.as_ref()));
        acc = acc.wrapping_add(one.finish());
    }
    (attrs.len(), acc).hash(h);
}

/// Identifies a series: metric, role, resource and point attributes.
fn series_key(metric: &str, role: Role, resource: &[KeyValue], attrs: &[KeyValue]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    metric.hash(&mut h);
    match role {
        Role::Good => 0u8.hash(&mut h),
        Role::Bad => 1u8.hash(&mut h),
        Role::Total => 2u8.hash(&mut h),
        Role::Latency(_) => 3u8.hash(&mut h),
    }
    hash_attrs(&mut h, resource);
    hash_attrs(&mut h, attrs);
    h.finish()
}

/// The last point seen of a cumulative series.
#[derive(Debug, Clone, Copy)]
struct Last {
    start: u64,
    time: u64,
    good: f64,
    total: f64,
}

/// Most series an SLO tracks; points of further series are counted as dropped.
pub const MAX_SERIES_PER_SLO: usize = 100_000;

/// The most events one data point counts (a minute holds at most this many per SLO):
/// a counter's jump past it is counted as it, so that no sum of counts can overflow.
pub const MAX_POINT_EVENTS: u64 = u32::MAX as u64;

/// The cumulative series of one SLO.
#[derive(Debug, Default)]
pub struct SeriesState {
    last: HashMap<u64, Last>,
}

impl SeriesState {
    /// Every series' last point, as (key, start, time, good, total): what a checkpoint
    /// keeps.
    pub fn snapshot(&self) -> Vec<(u64, u64, u64, f64, f64)> {
        self.last
            .iter()
            .map(|(&k, l)| (k, l.start, l.time, l.good, l.total))
            .collect()
    }

    /// Takes the series of a [`SeriesState::snapshot`].
    pub fn restore(&mut self, series: impl IntoIterator<Item = (u64, u64, u64, f64, f64)>) {
        self.last = series
            .into_iter()
            .take(MAX_SERIES_PER_SLO)
            .map(|(k, start, time, good, total)| {
                (
                    k,
                    Last {
                        start,
                        time,
                        good,
                        total,
                    },
                )
            })
            .collect();
    }

    /// Turns an observation into (good, total) increases, each at most
    /// [`MAX_POINT_EVENTS`]. `horizon_start` is the oldest time the SLO's windows reach.
    /// `None` when the series cap is reached.
    pub fn delta(&mut self, key: u64, o: &Observation, horizon_start: u64) -> Option<(u64, u64)> {
        let round = |v: f64| {
            if v > 0.0 {
                v.round().min(MAX_POINT_EVENTS as f64) as u64
            } else {
                0
            }
        };
        if !o.cumulative {
            return Some((round(o.good), round(o.total)));
        }
        let now = Last {
            start: o.start,
            time: o.time,
            good: o.good,
            total: o.total,
        };
        match self.last.get_mut(&key) {
            None => {
                if self.last.len() >= MAX_SERIES_PER_SLO {
                    return None;
                }
                self.last.insert(key, now);
                if o.start != 0 && o.start >= horizon_start {
                    Some((round(o.good), round(o.total)))
                } else {
                    Some((0, 0))
                }
            }
            Some(prev) => {
                if o.time <= prev.time && o.start == prev.start {
                    // A repeated or out-of-order point adds nothing.
                    return Some((0, 0));
                }
                let reset = (o.start != 0 && o.start != prev.start)
                    || o.total < prev.total
                    || o.good < prev.good;
                let d = if reset {
                    (round(o.good), round(o.total))
                } else {
                    (round(o.good - prev.good), round(o.total - prev.total))
                };
                *prev = now;
                Some(d)
            }
        }
    }

    /// Series tracked.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(start: u64, time: u64, v: f64) -> Observation {
        Observation {
            start,
            time,
            good: v,
            total: v,
            cumulative: true,
            effective_threshold: None,
        }
    }

    #[test]
    fn prometheus_keys_of_otlp_attributes() {
        assert!(prometheus_key_eq(
            "http.response.status_code",
            "http_response_status_code"
        ));
        assert!(!prometheus_key_eq("http.route", "http_routes"));
    }

    #[test]
    fn one_point_counts_at_most_a_minutes_worth() {
        // Found by the otlp_metrics fuzz target: a counter of 1e30 made sums overflow.
        let mut s = SeriesState::default();
        assert_eq!(
            s.delta(1, &obs(100, 200, 1e30), 50),
            Some((MAX_POINT_EVENTS, MAX_POINT_EVENTS))
        );
        assert_eq!(
            s.delta(1, &obs(100, 300, f64::MAX), 50),
            Some((MAX_POINT_EVENTS, MAX_POINT_EVENTS))
        );
        let mut d = obs(0, 0, f64::INFINITY);
        d.cumulative = false;
        assert_eq!(
            s.delta(2, &d, 50),
            Some((MAX_POINT_EVENTS, MAX_POINT_EVENTS))
        );
        // Bucket counts whose sum passes u64::MAX (found by the same target).
        let p = HistogramDataPoint {
            bucket_counts: vec![u64::MAX, u64::MAX, 1],
            explicit_bounds: vec![0.1, 0.2],
            count: u64::MAX,
            ..Default::default()
        };
        let o = histogram(&p, "s", 0.25, false).unwrap();
        assert_eq!(o.good, 2.0 * u64::MAX as f64);
        assert_eq!(
            s.delta(3, &o, 50),
            Some((MAX_POINT_EVENTS, MAX_POINT_EVENTS))
        );
    }

    #[test]
    fn cumulative_series_count_increases_and_resets() {
        let mut s = SeriesState::default();
        // Started within the horizon: the first value counts in full.
        assert_eq!(s.delta(1, &obs(100, 200, 10.0), 50), Some((10, 10)));
        assert_eq!(s.delta(1, &obs(100, 300, 25.0), 50), Some((15, 15)));
        // The same point again adds nothing.
        assert_eq!(s.delta(1, &obs(100, 300, 25.0), 50), Some((0, 0)));
        // A lower value is a reset: the new value is the increase.
        assert_eq!(s.delta(1, &obs(100, 400, 4.0), 50), Some((4, 4)));
        // So is a new start time, even with a higher value.
        assert_eq!(s.delta(1, &obs(350, 500, 30.0), 50), Some((30, 30)));
        // A series that started before the horizon is a baseline at first.
        assert_eq!(s.delta(2, &obs(10, 200, 1000.0), 50), Some((0, 0)));
        assert_eq!(s.delta(2, &obs(10, 300, 1003.0), 50), Some((3, 3)));
        // Delta points count as they are.
        let mut d = obs(0, 0, 7.0);
        d.cumulative = false;
        assert_eq!(s.delta(3, &d, 50), Some((7, 7)));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn histogram_thresholds_never_interpolate() {
        let p = HistogramDataPoint {
            count: 100,
            // (-inf,0.1] (0.1,0.25] (0.25,0.5] (0.5,1] (1,+inf)
            explicit_bounds: vec![0.1, 0.25, 0.5, 1.0],
            bucket_counts: vec![40, 30, 20, 7, 3],
            ..Default::default()
        };
        let o = histogram(&p, "s", 0.25, false).unwrap();
        assert_eq!(
            (o.good, o.total, o.effective_threshold),
            (70.0, 100.0, Some(0.25))
        );
        // 300 ms lies inside (0.25, 0.5]: that bucket counts as bad.
        let o = histogram(&p, "s", 0.3, false).unwrap();
        assert_eq!((o.good, o.effective_threshold), (70.0, Some(0.25)));
        // Milliseconds: bounds are 100, 250, 500, 1000 ms.
        let ms = HistogramDataPoint {
            explicit_bounds: vec![100.0, 250.0, 500.0, 1000.0],
            ..p.clone()
        };
        let o = histogram(&ms, "ms", 0.5, false).unwrap();
        assert_eq!((o.good, o.effective_threshold), (90.0, Some(0.5)));
        assert!(histogram(&p, "By", 0.5, false).is_none());
    }

    #[test]
    fn exponential_histograms_count_whole_buckets() {
        use slotel_proto::otlp::metrics::v1::exponential_histogram_data_point::Buckets;
        // Scale 0: base 2, bucket k holds (2^k, 2^(k+1)]. Offset -4: (1/16,1/8], (1/8,1/4], ...
        let p = ExponentialHistogramDataPoint {
            scale: 0,
            count: 16,
            zero_count: 1,
            positive: Some(Buckets {
                offset: -4,
                bucket_counts: vec![2, 3, 4, 5, 1],
            }),
            ..Default::default()
        };
        // Threshold 0.5 s: buckets up to (1/4, 1/2] are good: 1 + 2 + 3 + 4.
        let o = exponential(&p, "s", 0.5, false).unwrap();
        assert_eq!(
            (o.good, o.total, o.effective_threshold),
            (10.0, 16.0, Some(0.5))
        );
        let o = exponential(&p, "s", 0.3, false).unwrap();
        assert_eq!((o.good, o.effective_threshold), (6.0, Some(0.25)));
    }
}
