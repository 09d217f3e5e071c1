//! The engine: holds the loaded SLOs and their per-minute state, takes batches, and
//! answers status.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use slotel_proto::{Batch, Consumer, Payload};

use crate::classify::SloIndex;
use crate::dedup::Dedup;
use crate::error::{Error, Result};
use crate::latency::{self, LatencyTail};
use crate::maintenance::Maintenance;
use crate::math;
use crate::metric::{MetricIndex, Role, SeriesState};
use crate::status::{BurnRates, GroupStatus, ObjectiveStatus, SloStatus};
use crate::window::{AddOutcome, MinuteCounts, MinuteRing};
use slotel_model::time::Clock;
use slotel_model::time::rfc3339;
use slotel_model::{BURN_RATE_WINDOWS, Budgeting, MAX_GROUP_BY, SloDef, format_minutes};
use slotel_proto::otlp::common::v1::{KeyValue, any_value::Value};
use slotel_proto::otlp::trace::v1::Span;

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Events dated further ahead than this are refused by default.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(300);

/// Settings of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Events dated further ahead of the clock are not counted.
    pub max_future: Duration,
    /// A span seen again within this horizon (by tenant, trace id and span id) counts
    /// once; zero turns de-duplication off.
    pub dedup_horizon: Duration,
    /// Most spans remembered for de-duplication.
    pub dedup_max_spans: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_future: DEFAULT_MAX_FUTURE,
            dedup_horizon: Duration::from_secs(600),
            dedup_max_spans: 8_000_000,
        }
    }
}

/// Counters of what the engine did with the spans it was given.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Spans looked at.
    pub spans_seen: AtomicU64,
    /// Log records looked at.
    pub log_records_seen: AtomicU64,
    /// Metric data points received.
    pub data_points_seen: AtomicU64,
    /// Metric points not counted because their SLO tracks too many series.
    pub series_over_cap: AtomicU64,
    /// (span, SLO) events counted.
    pub events_counted: AtomicU64,
    /// Events older than the SLO's horizon, not counted.
    pub events_too_old: AtomicU64,
    /// Events dated too far in the future, not counted.
    pub events_in_future: AtomicU64,
    /// Spans seen again within the de-duplication horizon, not counted again.
    pub spans_duplicate: AtomicU64,
    /// Events of grouped SLOs counted in the overflow group (past `max_groups`).
    pub group_overflow_events: AtomicU64,
    /// Events left out of their SLI by a maintenance window.
    pub events_in_maintenance: AtomicU64,
    /// (SLO, group, minute) cells counted since the tail was last taken: about the rows
    /// the next flush writes.
    pub tail_cells: AtomicU64,
    /// The newest event time counted (nanoseconds since the epoch; 0 before the first):
    /// how far behind the clock it is, is the ingestion lag.
    pub newest_event_nanos: AtomicI64,
}

struct SloEntry {
    def: Arc<SloDef>,
    ring: Arc<Mutex<MinuteRing>>,
    /// Cumulative metric series (metric SLIs only).
    series: Arc<Mutex<SeriesState>>,
    /// The histogram bound a latency SLI last counted at, as `f64` bits (0: none yet).
    effective_threshold: Arc<AtomicU64>,
    /// Per-group rings (grouped SLOs only).
    groups: Arc<Mutex<Groups>>,
    /// Counts added since the last [`Engine::take_tail`], by (group id, minute): the
    /// unflushed tail that storage has not seen yet.
    tail: Arc<Mutex<Tail>>,
    /// Latency histograms not yet taken with the tail (SLIs with durations only).
    latency: Option<Arc<Mutex<LatencyTail>>>,
}

/// Counts not yet flushed: (group id, minute) → (good, total).
type Tail = HashMap<(u32, i64), (u64, u64)>;

/// One SLO's counts for one minute (and group): the row of the `sli_minute` table.
///
/// Rows are deltas: several rows may hold the same key, and the counts of a key are
/// their sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRow {
    /// The tenant.
    pub tenant: String,
    /// The SLO's name.
    pub slo: String,
    /// The group, as a JSON object of its `group_by` labels (`{"region":"eu"}`); empty
    /// for the SLO as a whole.
    pub group: String,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    /// Good events.
    pub good: u64,
    /// Bad events.
    pub bad: u64,
    /// All events. For bad/total metric SLIs the counted columns are `bad` and `total`
    /// (their counters may land in different minutes), elsewhere `good` and `total`.
    pub total: u64,
    /// The minute's latency histogram, serialized (see [`crate::latency`]): SLIs with
    /// durations, SLO rows only (no group).
    pub latency: Option<Vec<u8>>,
}

/// The JSON key of a group's labels, as [`MinuteRow::group`] holds it.
pub fn group_key(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The labels of a group key made by [`group_key`]; `None` when it is not one.
pub fn parse_group_key(key: &str) -> Option<Vec<(String, String)>> {
    if key.is_empty() {
        return Some(Vec::new());
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(key).ok()?;
    map.into_iter()
        .map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect()
}

/// What [`Engine::restore`] did with the rows it was given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RestoreStats {
    /// Rows added to the windows.
    pub rows: u64,
    /// Rows of SLOs not loaded, or that do not fit their group.
    pub unknown: u64,
    /// Rows older than their SLO's horizon.
    pub too_old: u64,
}

/// The per-minute counts of one SLO (or one of its groups) that [`Engine::minutes`] reads.
#[derive(Debug, Clone)]
pub struct Minutes {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// Raw counts of each minute of the range asked, as [`MinuteRow::good`] (or `bad` for
    /// bad/total metric SLIs) and `total`.
    pub counts: Vec<(u64, u64)>,
    /// The oldest minute the engine still holds: older ones must come from storage.
    pub oldest_held: i64,
    /// The histogram bound a latency SLI last counted at.
    pub effective_threshold: Option<f64>,
}

/// An SLO's (minutes, good, total) over each standard burn-rate window, its own window
/// and its no-data window.
#[derive(Debug, Clone)]
pub struct BurnSnapshot {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// The group's (attribute, value) pairs, in `group_by` order; empty for the SLO as a
    /// whole.
    pub group: Vec<(String, String)>,
    /// (window minutes, good events, all events), shortest window first: the standard
    /// windows, the SLO's window as it stands now, and its no-data window.
    pub windows: Vec<(u32, u64, u64)>,
}

impl BurnSnapshot {
    /// (good, total) over the standard window of `minutes`, if it is one.
    pub fn window(&self, minutes: u32) -> Option<(u64, u64)> {
        self.windows
            .iter()
            .find(|(w, _, _)| *w == minutes)
            .map(|&(_, g, t)| (g, t))
    }
}

/// The group id of events of an SLO without grouping.
const NO_GROUP: u32 = u32::MAX;
/// The group that takes the events of groups past `max_groups`.
pub const OVERFLOW_GROUP: &str = "__overflow__";

/// The groups of a grouped SLO: one ring per combination of the `group_by` values.
#[derive(Default)]
struct Groups {
    by_hash: HashMap<u64, Vec<u32>>,
    keys: Vec<Vec<String>>,
    rings: Vec<MinuteRing>,
    overflow: Option<u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl Groups {
    /// The id of the group with `values`, made if new; the overflow group once `max`
    /// groups exist. The flag says whether the event overflowed.
    fn resolve(&mut self, values: &[&str], max: usize, horizon: u32) -> (u32, bool) {
        let h = self.hasher.hash_one(values);
        if let Some(ids) = self.by_hash.get(&h) {
            for &id in ids {
                if self.keys[id as usize]
                    .iter()
                    .map(String::as_str)
                    .eq(values.iter().copied())
                {
                    return (id, false);
                }
            }
        }
        let real_groups = self.keys.len() - usize::from(self.overflow.is_some());
        if real_groups >= max {
            let id = match self.overflow {
                Some(id) => id,
                None => {
                    let id = self.push(vec![OVERFLOW_GROUP.to_string()], horizon);
                    self.overflow = Some(id);
                    id
                }
            };
            return (id, true);
        }
        let id = self.push(values.iter().map(|v| v.to_string()).collect(), horizon);
        self.by_hash.entry(h).or_default().push(id);
        (id, false)
    }

    fn push(&mut self, key: Vec<String>, horizon: u32) -> u32 {
        self.keys.push(key);
        self.rings.push(MinuteRing::new(horizon));
        (self.keys.len() - 1) as u32
    }
}

/// The values of `keys` among `attrs` (strings as they are, other values formatted,
/// absent ones empty), into `out`.
fn group_values<'a>(attrs: &'a [KeyValue], keys: &[String], out: &mut [std::borrow::Cow<'a, str>]) {
    use std::borrow::Cow;
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = match attrs
            .iter()
            .find(|kv| kv.key == *key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
        {
            Some(Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
            Some(Value::IntValue(i)) => Cow::Owned(i.to_string()),
            Some(Value::BoolValue(b)) => Cow::Owned(b.to_string()),
            Some(Value::DoubleValue(d)) => Cow::Owned(d.to_string()),
            _ => Cow::Borrowed(""),
        };
    }
}

#[derive(Default)]
struct SloSet {
    index: SloIndex,
    metrics: MetricIndex,
    slos: Vec<SloEntry>,
    by_name: HashMap<(String, String), usize>,
}

/// The SLO engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    clock: Arc<dyn Clock>,
    max_future_nanos: i64,
    maintenance: Arc<Maintenance>,
    dedup: Mutex<Dedup>,
    set: RwLock<Arc<SloSet>>,
    stats: EngineStats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// The horizon an SLO's ring keeps: its window, and at least the longest burn-rate window.
fn horizon_minutes(def: &SloDef) -> u32 {
    def.window
        .max_minutes()
        .max(*BURN_RATE_WINDOWS.last().unwrap_or(&0))
}

impl Engine {
    /// An engine with no SLOs and the default settings, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_config(clock, EngineConfig::default())
    }

    /// An engine with no SLOs, reading time from `clock`.
    pub fn with_config(clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        Self {
            clock,
            max_future_nanos: config.max_future.as_nanos() as i64,
            maintenance: Arc::default(),
            dedup: Mutex::new(Dedup::new(
                (config.dedup_horizon.as_secs() / 60) as u32,
                config.dedup_max_spans,
            )),
            set: RwLock::new(Arc::default()),
            stats: EngineStats::default(),
        }
    }

    /// The engine's counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The engine's clock, in nanoseconds since the epoch.
    pub fn now_nanos(&self) -> i64 {
        self.clock.now_nanos()
    }

    /// The maintenance windows the engine honours (events they exclude are not counted).
    pub fn maintenance(&self) -> &Arc<Maintenance> {
        &self.maintenance
    }

    fn current(&self) -> Arc<SloSet> {
        Arc::clone(&self.set.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the loaded SLOs. An SLO that still counts the same events into the same
    /// window keeps its counts (its objective, labels or thresholds for flags may have
    /// changed); a new one, or one whose SLI or window changed, starts empty.
    pub fn load(&self, defs: Vec<SloDef>) {
        let old = self.current();
        let mut set = SloSet {
            index: SloIndex::build(&defs),
            metrics: MetricIndex::build(&defs),
            ..SloSet::default()
        };
        for (i, def) in defs.into_iter().enumerate() {
            let key = (def.tenant.clone(), def.name.clone());
            let entry = match old.by_name.get(&key).map(|&j| &old.slos[j]) {
                Some(prev) if prev.def.counts_like(&def) => SloEntry {
                    def: Arc::new(def),
                    ring: Arc::clone(&prev.ring),
                    series: Arc::clone(&prev.series),
                    effective_threshold: Arc::clone(&prev.effective_threshold),
                    groups: Arc::clone(&prev.groups),
                    tail: Arc::clone(&prev.tail),
                    latency: prev.latency.clone(),
                },
                _ => SloEntry {
                    ring: Arc::new(Mutex::new(MinuteRing::new(horizon_minutes(&def)))),
                    latency: def.has_durations().then(Arc::default),
                    def: Arc::new(def),
                    series: Arc::default(),
                    effective_threshold: Arc::default(),
                    groups: Arc::default(),
                    tail: Arc::default(),
                },
            };
            set.by_name.insert(key, i);
            set.slos.push(entry);
        }
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Classifies and counts every span and log record of `batch`.
    pub fn ingest(&self, batch: &Batch) {
        let set = self.current();
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let latest = now.saturating_add(self.max_future_nanos);
        let mut acc = Accumulator::default();
        let mut in_future = 0u64;
        let s = &self.stats;
        let mut overflowed = 0u64;
        // The group of an event of SLO `id` with these attributes.
        let mut group_of = |id: u32, attrs: &[KeyValue]| -> u32 {
            let def = &set.slos[id as usize].def;
            if def.group_by.is_empty() {
                return NO_GROUP;
            }
            let mut values: [std::borrow::Cow<'_, str>; MAX_GROUP_BY] = Default::default();
            let n = def.group_by.len().min(MAX_GROUP_BY);
            group_values(attrs, &def.group_by, &mut values[..n]);
            let mut refs: [&str; MAX_GROUP_BY] = [""; MAX_GROUP_BY];
            for (r, v) in refs.iter_mut().zip(&values) {
                *r = v.as_ref();
            }
            let mut groups = set.slos[id as usize]
                .groups
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let (g, over) = groups.resolve(&refs[..n], def.max_groups, horizon_minutes(def));
            overflowed += u64::from(over);
            g
        };
        let maintenance = &self.maintenance;
        let mut excluded = 0u64;
        let mut newest = 0i64;
        // Counts an event of SLO `id` at `time`, with its duration when it has one.
        let mut emit = |id, time: u64, good: bool, attrs: &[KeyValue], units: Option<u64>| {
            match i64::try_from(time) {
                Ok(t) if maintenance.excludes(&set.slos[id as usize].def, t) => excluded += 1,
                Ok(t) if t <= latest => {
                    newest = newest.max(t);
                    let group = group_of(id, attrs);
                    let minute = t.div_euclid(NANOS_PER_MINUTE);
                    acc.add_counts(id, group, minute, u64::from(good), 1);
                    if let Some(u) = units.filter(|_| set.slos[id as usize].latency.is_some()) {
                        acc.durations.push((id, minute, u));
                    }
                }
                _ => in_future += 1,
            }
        };
        match &batch.payload {
            Payload::Traces(req) => {
                let mut seen = 0;
                let mut dedup = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
                let mut duplicates = 0u64;
                // A span's matches arrive one after another: test each span once.
                let mut last: Option<(*const Span, bool)> = None;
                for rs in &req.resource_spans {
                    seen += set.index.classify(&batch.tenant, rs, |id, span, good| {
                        let dup = match last {
                            Some((p, dup)) if std::ptr::eq(p, span) => dup,
                            _ => {
                                let dup = dedup.seen(
                                    now_minute,
                                    &batch.tenant,
                                    &span.trace_id,
                                    &span.span_id,
                                );
                                duplicates += u64::from(dup);
                                last = Some((span, dup));
                                dup
                            }
                        };
                        if !dup {
                            let units = latency::span_units(
                                span.start_time_unix_nano,
                                span.end_time_unix_nano,
                            );
                            emit(id, span.end_time_unix_nano, good, &span.attributes, units);
                        }
                    });
                }
                drop(dedup);
                s.spans_seen.fetch_add(seen as u64, Ordering::Relaxed);
                s.spans_duplicate.fetch_add(duplicates, Ordering::Relaxed);
            }
            Payload::Logs(req) => {
                let mut seen = 0;
                for rl in &req.resource_logs {
                    seen += set
                        .index
                        .classify_logs(&batch.tenant, rl, |id, t, good, attrs| {
                            emit(id, t, good, attrs, None)
                        });
                }
                s.log_records_seen.fetch_add(seen as u64, Ordering::Relaxed);
            }
            Payload::Metrics(req) => {
                let points = slotel_proto::data_point_count(req) as u64;
                s.data_points_seen.fetch_add(points, Ordering::Relaxed);
                for rm in &req.resource_metrics {
                    set.metrics
                        .classify(&batch.tenant, rm, |id, role, key, obs, attrs| {
                            let entry = &set.slos[id as usize];
                            let horizon = i64::from(horizon_minutes(&entry.def)) * NANOS_PER_MINUTE;
                            let horizon_start = u64::try_from(now - horizon).unwrap_or(0);
                            let delta = entry
                                .series
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .delta(key, &obs, horizon_start);
                            let Some((good, total)) = delta else {
                                s.series_over_cap.fetch_add(1, Ordering::Relaxed);
                                return;
                            };
                            if let Some(t) = obs.effective_threshold {
                                entry
                                    .effective_threshold
                                    .store(t.to_bits(), Ordering::Relaxed);
                            }
                            let (good, total) = match role {
                                Role::Good | Role::Bad => (good, 0),
                                Role::Total => (0, total),
                                Role::Latency(_) => (good, total),
                            };
                            match i64::try_from(obs.time) {
                                Ok(t) if t <= latest => {
                                    newest = newest.max(t);
                                    let group = group_of(id, attrs);
                                    let minute = t.div_euclid(NANOS_PER_MINUTE);
                                    acc.add_counts(id, group, minute, good, total)
                                }
                                _ => in_future += total.max(good),
                            }
                        });
                }
            }
        }
        if newest > 0 {
            s.newest_event_nanos.fetch_max(newest, Ordering::Relaxed);
        }
        let (mut counted, mut too_old, mut new_cells) = (0u64, 0u64, 0u64);
        for cell in &acc.cells {
            let entry = &set.slos[cell.slo as usize];
            let mut ring = entry.ring.lock().unwrap_or_else(|e| e.into_inner());
            let added = ring.add(cell.minute, cell.good, cell.total, now_minute);
            drop(ring);
            match added {
                AddOutcome::Added => counted += cell.total,
                AddOutcome::TooOld => {
                    too_old += cell.total;
                    acc.too_old.push((cell.slo, cell.minute));
                    continue;
                }
            }
            {
                let mut tail = entry.tail.lock().unwrap_or_else(|e| e.into_inner());
                let before = tail.len();
                for key in [(NO_GROUP, cell.minute), (cell.group, cell.minute)] {
                    let c = tail.entry(key).or_default();
                    c.0 += cell.good;
                    c.1 += cell.total;
                    if cell.group == NO_GROUP {
                        break;
                    }
                }
                new_cells += (tail.len() - before) as u64;
            }
            if cell.group != NO_GROUP {
                let mut groups = entry.groups.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(ring) = groups.rings.get_mut(cell.group as usize) {
                    ring.add(cell.minute, cell.good, cell.total, now_minute);
                }
            }
        }
        acc.record_durations(&set, now_minute);
        s.group_overflow_events
            .fetch_add(overflowed, Ordering::Relaxed);
        s.events_in_maintenance
            .fetch_add(excluded, Ordering::Relaxed);
        s.events_counted.fetch_add(counted, Ordering::Relaxed);
        s.tail_cells.fetch_add(new_cells, Ordering::Relaxed);
        s.events_too_old.fetch_add(too_old, Ordering::Relaxed);
        s.events_in_future.fetch_add(in_future, Ordering::Relaxed);
    }

    /// The tenants that have SLOs loaded, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let set = self.current();
        let mut out: Vec<String> = set.slos.iter().map(|e| e.def.tenant.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The loaded SLOs of `tenant`, by name.
    pub fn slos(&self, tenant: &str) -> Vec<Arc<SloDef>> {
        let set = self.current();
        let mut defs: Vec<_> = set
            .slos
            .iter()
            .filter(|e| e.def.tenant == tenant)
            .map(|e| Arc::clone(&e.def))
            .collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        defs
    }

    /// The events of every SLO (all tenants) over the standard burn-rate windows at the
    /// engine's now, in units of the SLO's budgeting: what alert rules read. Scans at most
    /// the longest standard window (3 days) per SLO.
    pub fn burn_snapshot(&self) -> (i64, Vec<BurnSnapshot>) {
        let set = self.current();
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let mut out = Vec::with_capacity(set.slos.len());
        for e in &set.slos {
            let counts_bad = e.def.counts_bad();
            let windows = |ring: &MinuteRing| -> Vec<(u32, u64, u64)> {
                BURN_RATE_WINDOWS
                    .iter()
                    .zip(ring.sums(now_minute, &BURN_RATE_WINDOWS))
                    .map(|(&w, (x, total))| {
                        let good = if counts_bad {
                            total.saturating_sub(x)
                        } else {
                            x.min(total)
                        };
                        (w, good, total)
                    })
                    .collect()
            };
            let whole = windows(&e.ring.lock().unwrap_or_else(|p| p.into_inner()));
            out.push(BurnSnapshot {
                def: Arc::clone(&e.def),
                group: Vec::new(),
                windows: whole,
            });
            if e.def.group_by.is_empty() {
                continue;
            }
            // Every group alerts on its own; the overflow group mixes many, so it does not.
            let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
            for (id, ring) in groups.rings.iter().enumerate() {
                if groups.overflow == Some(id as u32) {
                    continue;
                }
                out.push(BurnSnapshot {
                    def: Arc::clone(&e.def),
                    group: group_labels(&e.def, &groups, id),
                    windows: windows(ring),
                });
            }
        }
        (now, out)
    }

    /// The status of every SLO of `tenant`, by name.
    pub fn statuses(&self, tenant: &str) -> Vec<SloStatus> {
        let set = self.current();
        let now = self.clock.now_nanos();
        let mut out: Vec<_> = set
            .slos
            .iter()
            .filter(|e| e.def.tenant == tenant)
            .map(|e| status_of(e, now))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The status of one SLO.
    pub fn status(&self, tenant: &str, name: &str) -> Result<SloStatus> {
        let set = self.current();
        let key = (tenant.to_string(), name.to_string());
        let entry = set
            .by_name
            .get(&key)
            .map(|&i| &set.slos[i])
            .ok_or_else(|| Error::UnknownSlo {
                tenant: tenant.to_string(),
                name: name.to_string(),
            })?;
        let now = self.clock.now_nanos();
        let mut status = status_of(entry, now);
        status.groups = group_statuses(entry, now);
        Ok(status)
    }

    /// Takes the counts added since the last call: the rows storage must write. If the
    /// write fails, hand them back with [`Engine::untake_tail`].
    pub fn take_tail(&self) -> Vec<MinuteRow> {
        self.tail_rows(true)
    }

    /// The counts not yet taken, left in place: the unflushed tail queries must see.
    pub fn peek_tail(&self) -> Vec<MinuteRow> {
        self.tail_rows(false)
    }

    fn tail_rows(&self, take: bool) -> Vec<MinuteRow> {
        if take {
            // Cells counted while this runs are either taken now (the next size check
            // sees a few too many) or left for the next flush (and counted).
            self.stats.tail_cells.store(0, Ordering::Relaxed);
        }
        let set = self.current();
        let mut out = Vec::new();
        for e in &set.slos {
            let mut cells: Vec<_> = {
                let mut tail = e.tail.lock().unwrap_or_else(|p| p.into_inner());
                if take {
                    std::mem::take(&mut *tail).into_iter().collect()
                } else {
                    tail.iter().map(|(&k, &v)| (k, v)).collect()
                }
            };
            let mut latency = match &e.latency {
                Some(l) => {
                    let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
                    if take { l.take() } else { l.peek_serialized() }
                }
                None => BTreeMap::new(),
            };
            // A histogram recorded after its counts were taken goes in a row of its own.
            for &minute in latency.keys() {
                if !cells.iter().any(|&(k, _)| k == (NO_GROUP, minute)) {
                    cells.push(((NO_GROUP, minute), (0, 0)));
                }
            }
            if cells.is_empty() {
                continue;
            }
            let keys: Vec<String> = {
                let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
                (0..groups.keys.len())
                    .map(|id| group_key(&group_labels(&e.def, &groups, id)))
                    .collect()
            };
            let counts_bad = e.def.counts_bad();
            for ((group, minute), (x, total)) in cells {
                let (good, bad) = if counts_bad {
                    (total.saturating_sub(x), x)
                } else {
                    (x, total.saturating_sub(x))
                };
                out.push(MinuteRow {
                    tenant: e.def.tenant.clone(),
                    slo: e.def.name.clone(),
                    group: if group == NO_GROUP {
                        String::new()
                    } else {
                        keys.get(group as usize).cloned().unwrap_or_default()
                    },
                    minute,
                    good,
                    bad,
                    total,
                    latency: if group == NO_GROUP {
                        latency.remove(&minute)
                    } else {
                        None
                    },
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.tenant, &a.slo, &a.group, a.minute).cmp(&(&b.tenant, &b.slo, &b.group, b.minute))
        });
        out
    }

    /// Puts rows taken by [`Engine::take_tail`] back, for the next flush to write.
    pub fn untake_tail(&self, rows: Vec<MinuteRow>) {
        self.apply_rows(rows, false, true);
    }

    /// Adds stored rows to the windows (not to the tail: storage has them): how a
    /// restart rebuilds the state it had.
    pub fn restore(&self, rows: impl IntoIterator<Item = MinuteRow>) -> RestoreStats {
        self.apply_rows(rows, true, false)
    }

    fn apply_rows(
        &self,
        rows: impl IntoIterator<Item = MinuteRow>,
        to_rings: bool,
        to_tail: bool,
    ) -> RestoreStats {
        let set = self.current();
        let now_minute = self.clock.now_nanos().div_euclid(NANOS_PER_MINUTE);
        let mut stats = RestoreStats::default();
        for row in rows {
            let key = (row.tenant, row.slo);
            let Some(entry) = set.by_name.get(&key).map(|&i| &set.slos[i]) else {
                stats.unknown += 1;
                continue;
            };
            let def = &entry.def;
            let x = if def.counts_bad() { row.bad } else { row.good };
            let group = if row.group.is_empty() {
                NO_GROUP
            } else {
                let labels = parse_group_key(&row.group).unwrap_or_default();
                let values: Option<Vec<&str>> = def
                    .group_by
                    .iter()
                    .map(|k| labels.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str()))
                    .collect();
                let Some(values) = values.filter(|_| !def.group_by.is_empty()) else {
                    stats.unknown += 1;
                    continue;
                };
                let mut groups = entry.groups.lock().unwrap_or_else(|p| p.into_inner());
                let overflow = values.iter().all(|v| *v == OVERFLOW_GROUP);
                let (id, _) = if overflow {
                    groups.resolve(&values, 0, horizon_minutes(def))
                } else {
                    groups.resolve(&values, def.max_groups, horizon_minutes(def))
                };
                if to_rings {
                    let ring = &mut groups.rings[id as usize];
                    ring.add(row.minute, x, row.total, now_minute);
                }
                id
            };
            if to_rings && group == NO_GROUP {
                let mut ring = entry.ring.lock().unwrap_or_else(|p| p.into_inner());
                if ring.add(row.minute, x, row.total, now_minute) == AddOutcome::TooOld {
                    stats.too_old += 1;
                    continue;
                }
            }
            if let (true, Some(bytes), Some(l)) = (to_tail, &row.latency, &entry.latency) {
                let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
                l.put_back(row.minute, bytes);
            }
            if to_tail {
                let mut tail = entry.tail.lock().unwrap_or_else(|p| p.into_inner());
                let before = tail.len();
                let c = tail.entry((group, row.minute)).or_default();
                c.0 += x;
                c.1 += row.total;
                if tail.len() > before {
                    self.stats.tail_cells.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats.rows += 1;
        }
        stats
    }

    /// The labels of every group of `tenant`'s SLO `name` (empty when it is not grouped).
    pub fn groups(&self, tenant: &str, name: &str) -> Vec<Vec<(String, String)>> {
        let set = self.current();
        let Some(&i) = set.by_name.get(&(tenant.to_string(), name.to_string())) else {
            return Vec::new();
        };
        let e = &set.slos[i];
        let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
        (0..groups.keys.len())
            .map(|id| group_labels(&e.def, &groups, id))
            .collect()
    }

    /// The per-minute counts of `tenant`'s SLO `name` (or of its group with `labels`)
    /// over minutes `lo..=hi`, as held in memory; `None` for an unknown SLO or group.
    pub fn minutes(
        &self,
        tenant: &str,
        name: &str,
        labels: Option<&[(String, String)]>,
        lo: i64,
        hi: i64,
    ) -> Option<Minutes> {
        let set = self.current();
        let e = &set.slos[*set.by_name.get(&(tenant.to_string(), name.to_string()))?];
        let now_minute = self.clock.now_nanos().div_euclid(NANOS_PER_MINUTE);
        let (counts, oldest_held) = match labels.filter(|l| !l.is_empty()) {
            None => {
                let ring = e.ring.lock().unwrap_or_else(|p| p.into_inner());
                (ring.minutes(lo, hi), ring.oldest(now_minute))
            }
            Some(labels) => {
                let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
                let id = (0..groups.keys.len())
                    .find(|&id| group_labels(&e.def, &groups, id) == labels)?;
                let ring = &groups.rings[id];
                (ring.minutes(lo, hi), ring.oldest(now_minute))
            }
        };
        Some(Minutes {
            def: Arc::clone(&e.def),
            counts,
            oldest_held,
            effective_threshold: threshold_of(&e.effective_threshold),
        })
    }

    /// The latency histograms of `tenant`'s SLO `name` not yet taken by storage, by
    /// minute; `None` for an unknown SLO or one without durations.
    pub fn latency_tail(
        &self,
        tenant: &str,
        name: &str,
    ) -> Option<BTreeMap<i64, hdrhistogram::Histogram<u64>>> {
        let set = self.current();
        let e = &set.slos[*set.by_name.get(&(tenant.to_string(), name.to_string()))?];
        let l = e.latency.as_ref()?;
        Some(l.lock().unwrap_or_else(|p| p.into_inner()).peek())
    }

    /// Heap bytes of window state held for `tenant`'s SLO `name`, for measurements.
    pub fn state_bytes(&self, tenant: &str, name: &str) -> Option<usize> {
        let set = self.current();
        let i = *set.by_name.get(&(tenant.to_string(), name.to_string()))?;
        let ring = set.slos[i].ring.lock().unwrap_or_else(|e| e.into_inner());
        Some(std::mem::size_of::<MinuteRing>() + ring.heap_bytes())
    }
}

/// (good, total) events.
type Counts = (u64, u64);
/// (good, total) budgeting units: events or slices.
type Units = (f64, f64);

/// Good and total units of a window: events (occurrences), or slices.
fn slice_units(
    ring: &dyn MinuteCounts,
    now_minute: i64,
    minutes: u32,
    slice: u32,
    counts_bad: bool,
    score: impl Fn(u64, u64) -> f64,
) -> (f64, f64) {
    let lo = now_minute - i64::from(minutes) + 1;
    let slice = i64::from(slice.max(1));
    let (mut good, mut slices) = (0.0, 0.0);
    // Slices are aligned to the epoch; the window's edges may cut the first one.
    let mut start = lo.div_euclid(slice) * slice;
    while start <= now_minute {
        let (x, t) = ring.range(start.max(lo), (start + slice - 1).min(now_minute));
        if t > 0 {
            let g = if counts_bad { t - x.min(t) } else { x.min(t) };
            good += score(g, t);
            slices += 1.0;
        }
        start += slice;
    }
    (good, slices)
}

/// The (good, total) events and budgeting units of `def` over the `minutes` ending at
/// minute `now_minute` of `counts` (as the rings hold them: bad for bad/total SLIs).
pub fn window_units(
    def: &SloDef,
    counts: &dyn MinuteCounts,
    now_minute: i64,
    minutes: u32,
) -> ((u64, u64), (f64, f64)) {
    let counts_bad = def.counts_bad();
    let (x, total) = counts.range(now_minute - i64::from(minutes) + 1, now_minute);
    let good = if counts_bad {
        total.saturating_sub(x)
    } else {
        x.min(total)
    };
    let units = match def.budgeting {
        Budgeting::Occurrences => (good as f64, total as f64),
        Budgeting::Timeslices {
            slice_minutes,
            slice_target,
        } => slice_units(
            counts,
            now_minute,
            minutes,
            slice_minutes,
            counts_bad,
            |g, t| {
                if g as f64 >= slice_target * t as f64 {
                    1.0
                } else {
                    0.0
                }
            },
        ),
        Budgeting::RatioTimeslices { slice_minutes } => slice_units(
            counts,
            now_minute,
            minutes,
            slice_minutes,
            counts_bad,
            |g, t| g as f64 / t as f64,
        ),
    };
    ((good, total), units)
}

/// The windows (minutes, ascending: the standard ones and the SLO's) and their
/// (good, total) events and budgeting units, from one ring.
fn figures(def: &SloDef, ring: &dyn MinuteCounts, now: i64) -> (Vec<u32>, Vec<Counts>, Vec<Units>) {
    let now_minute = now.div_euclid(NANOS_PER_MINUTE);
    let mut windows: Vec<u32> = BURN_RATE_WINDOWS.to_vec();
    windows.push(def.window.minutes_at(now));
    windows.sort_unstable();
    windows.dedup();
    // A bad/total metric SLI keeps bad events where others keep good ones.
    let counts_bad = def.counts_bad();
    let events: Vec<Counts> = ring
        .sums(now_minute, &windows)
        .into_iter()
        .map(|(x, total)| {
            let good = if counts_bad {
                total.saturating_sub(x)
            } else {
                x.min(total)
            };
            (good, total)
        })
        .collect();
    let units = windows
        .iter()
        .zip(&events)
        .map(|(&w, &(g, t))| match def.budgeting {
            Budgeting::Occurrences => (g as f64, t as f64),
            Budgeting::Timeslices {
                slice_minutes,
                slice_target,
            } => slice_units(ring, now_minute, w, slice_minutes, counts_bad, |g, t| {
                if g as f64 >= slice_target * t as f64 {
                    1.0
                } else {
                    0.0
                }
            }),
            Budgeting::RatioTimeslices { slice_minutes } => {
                slice_units(ring, now_minute, w, slice_minutes, counts_bad, |g, t| {
                    g as f64 / t as f64
                })
            }
        })
        .collect();
    (windows, events, units)
}

/// The `group_by` labels of group `id`: the overflow group has every label set to
/// [`OVERFLOW_GROUP`].
fn group_labels(def: &SloDef, groups: &Groups, id: usize) -> Vec<(String, String)> {
    let key = &groups.keys[id];
    if groups.overflow == Some(id as u32) {
        def.group_by
            .iter()
            .map(|k| (k.clone(), OVERFLOW_GROUP.to_string()))
            .collect()
    } else {
        def.group_by
            .iter()
            .cloned()
            .zip(key.iter().cloned())
            .collect()
    }
}

/// The status of each group of a grouped SLO, by its primary objective.
fn group_statuses(entry: &SloEntry, now: i64) -> Vec<GroupStatus> {
    let def = &entry.def;
    if def.group_by.is_empty() {
        return Vec::new();
    }
    let ratio = def.objective_ratio();
    let window_minutes = def.window.minutes_at(now);
    let groups = entry.groups.lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<GroupStatus> = groups
        .rings
        .iter()
        .enumerate()
        .map(|(id, ring)| {
            let (windows, events, units) = figures(def, ring as &dyn MinuteCounts, now);
            let at = |m: u32| windows.binary_search(&m).unwrap_or(0);
            let (good, total) = events[at(window_minutes)];
            let (gu, tu) = units[at(window_minutes)];
            let mut burn_rates: Vec<(String, Option<f64>)> = BURN_RATE_WINDOWS
                .iter()
                .map(|&w| {
                    let (g, t) = units[at(w)];
                    (format_minutes(w), math::burn_rate(g, t, ratio))
                })
                .collect();
            let label = def.window.to_string();
            if !burn_rates.iter().any(|(l, _)| *l == label) {
                burn_rates.push((label, math::burn_rate(gu, tu, ratio)));
            }
            GroupStatus {
                group: group_labels(def, &groups, id).into_iter().collect(),
                good_events: good,
                total_events: total,
                sli: math::sli(gu, tu),
                error_budget_remaining: math::budget_remaining(gu, tu, ratio),
                burn_rates: BurnRates(burn_rates),
            }
        })
        .collect();
    // The groups spending their budget fastest first.
    out.sort_by(|a, b| {
        let key = |g: &GroupStatus| g.error_budget_remaining.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    out
}

/// The histogram bound stored as `f64` bits (0: none yet).
fn threshold_of(bits: &AtomicU64) -> Option<f64> {
    match bits.load(Ordering::Relaxed) {
        0 => None,
        bits => Some(f64::from_bits(bits)),
    }
}

fn status_of(entry: &SloEntry, now: i64) -> SloStatus {
    let ring = entry.ring.lock().unwrap_or_else(|e| e.into_inner());
    let threshold = threshold_of(&entry.effective_threshold);
    status_at(&entry.def, &*ring, threshold, now)
}

/// The status of `def` at `now` (nanoseconds) from the per-minute `counts`: what
/// [`Engine::status`] answers, and what the query API computes at past instants.
pub fn status_at(
    def: &SloDef,
    counts: &dyn MinuteCounts,
    effective_threshold: Option<f64>,
    now: i64,
) -> SloStatus {
    let window_minutes = def.window.minutes_at(now);
    let (windows, events, units) = figures(def, counts, now);
    let at = |minutes: u32| windows.binary_search(&minutes).unwrap_or(0);
    let (good, total) = events[at(window_minutes)];
    let (good_units, total_units) = units[at(window_minutes)];
    let label = def.window.to_string();
    // The standard windows, then the SLO's own unless it is one of them.
    let mut labelled: Vec<(String, u32)> = BURN_RATE_WINDOWS
        .iter()
        .map(|&w| (format_minutes(w), w))
        .collect();
    if !labelled.iter().any(|(l, _)| *l == label) {
        labelled.push((label.clone(), window_minutes));
    }
    let low_traffic = labelled
        .iter()
        .filter(|(_, w)| events[at(*w)].1 < def.min_events)
        .map(|(l, _)| l.clone())
        .collect();
    let window_seconds = def.window.length_seconds(now);
    let objectives: Vec<ObjectiveStatus> = def
        .objectives
        .iter()
        .map(|o| {
            let ratio = slotel_model::percent_to_ratio(o.target);
            let burn_rates: Vec<(String, Option<f64>)> = labelled
                .iter()
                .map(|(l, w)| {
                    let (g, t) = units[at(*w)];
                    (l.clone(), math::burn_rate(g, t, ratio))
                })
                .collect();
            let remaining = math::budget_remaining(good_units, total_units, ratio);
            let rate = |w: &str| {
                burn_rates
                    .iter()
                    .find(|(l, _)| l == w)
                    .and_then(|(_, r)| *r)
            };
            let exhaustion = ["1h", "6h"]
                .iter()
                .map(|w| {
                    let secs = math::exhaustion_seconds(remaining, rate(w), window_seconds);
                    (w.to_string(), secs)
                })
                .collect();
            let budget = (1.0 - ratio) * total_units;
            ObjectiveStatus {
                name: o.name.clone(),
                objective: o.target,
                error_budget_remaining: remaining,
                error_budget_events: budget,
                error_budget_consumed: (total_units > 0.0)
                    .then(|| (total_units - good_units) / budget),
                burn_rates: BurnRates(burn_rates),
                budget_exhaustion_seconds: BurnRates(exhaustion),
            }
        })
        .collect();
    let primary = objectives.first().cloned().unwrap_or_default();
    let slices = !matches!(def.budgeting, Budgeting::Occurrences);
    SloStatus {
        name: def.name.clone(),
        tenant: def.tenant.clone(),
        service: def.service.clone(),
        description: def.description.clone(),
        labels: def.labels.clone(),
        annotations: def.annotations.clone(),
        objective: def.objective,
        window: label,
        window_start: rfc3339(def.window.start_nanos(now)),
        budgeting: def.budgeting.name(),
        good_events: good,
        bad_events: total - good,
        total_events: total,
        good_slices: slices.then_some(good_units),
        total_slices: slices.then_some(total_units as u64),
        sli: math::sli(good_units, total_units),
        error_budget_remaining: primary.error_budget_remaining,
        error_budget_events: primary.error_budget_events,
        error_budget_consumed: primary.error_budget_consumed,
        state: match primary.error_budget_remaining {
            None => "no_data",
            Some(r) if r <= 0.0 => "exhausted",
            Some(r)
                if r < if def.freeze_below > 0.0 {
                    def.freeze_below
                } else {
                    0.25
                } =>
            {
                "at_risk"
            }
            Some(_) => "ok",
        },
        burn_rates: primary.burn_rates,
        budget_exhaustion_seconds: primary.budget_exhaustion_seconds,
        objectives,
        freeze_below: def.freeze_below,
        low_traffic,
        groups: Vec::new(),
        effective_threshold_seconds: effective_threshold,
        evaluated_at: rfc3339(now),
    }
}

impl Consumer for Engine {
    async fn consume(&self, batch: Batch) -> slotel_proto::Result<()> {
        self.ingest(&batch);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    slo: u32,
    group: u32,
    minute: i64,
    good: u64,
    total: u64,
}

/// Per-batch counts by (SLO, minute): a batch touches few cells, so a short vector with
/// a hint to the last cell hit beats a hash map.
#[derive(Default)]
struct Accumulator {
    cells: Vec<Cell>,
    last: usize,
    /// (SLO, minute, duration) of the events of SLOs with latency histograms.
    durations: Vec<(u32, i64, u64)>,
    /// (SLO, minute) cells too old to count: their durations are not recorded either.
    too_old: Vec<(u32, i64)>,
}

impl Accumulator {
    fn add_counts(&mut self, slo: u32, group: u32, minute: i64, good: u64, total: u64) {
        let hit = |c: &Cell| c.slo == slo && c.group == group && c.minute == minute;
        let i = match self.cells.get(self.last) {
            Some(c) if hit(c) => self.last,
            _ => match self.cells.iter().position(hit) {
                Some(i) => i,
                None => {
                    self.cells.push(Cell {
                        slo,
                        group,
                        minute,
                        good: 0,
                        total: 0,
                    });
                    self.cells.len() - 1
                }
            },
        };
        let c = &mut self.cells[i];
        c.good += good;
        c.total += total;
        self.last = i;
    }

    /// Records the batch's durations into their SLOs' histograms, one lock per run of
    /// the same SLO, and closes the minutes before the last two.
    fn record_durations(&mut self, set: &SloSet, now_minute: i64) {
        if self.durations.is_empty() {
            return;
        }
        self.durations.sort_unstable_by_key(|&(slo, _, _)| slo);
        for run in self.durations.chunk_by(|a, b| a.0 == b.0) {
            let slo = run[0].0;
            let Some(l) = &set.slos[slo as usize].latency else {
                continue;
            };
            let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
            for &(_, minute, units) in run {
                if !self.too_old.contains(&(slo, minute)) {
                    l.record(minute, units);
                }
            }
            l.close_before(now_minute - 1);
        }
    }
}

#[cfg(test)]
mod test_support {
    //! Batches of spans for the engine's tests.
    use super::*;
    use slotel_proto::otlp::trace::v1::Status;

    /// A span with ids from `id`, ending at `end`, OK or ERROR.
    pub(super) fn span(id: u64, end: i64, good: bool) -> Span {
        Span {
            trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
            span_id: id.to_be_bytes().to_vec(),
            name: "GET /".into(),
            start_time_unix_nano: (end - 1_000_000) as u64,
            end_time_unix_nano: end as u64,
            status: Some(Status {
                code: if good { 1 } else { 2 },
                message: String::new(),
            }),
            ..Default::default()
        }
    }

    /// A batch of `spans` of service `api`, tenant `default`.
    pub(super) fn api_batch(spans: Vec<Span>) -> Batch {
        Batch::traces("default".into(), slotel_proto::traces_request("api", spans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotel_model::time::ManualClock;
    use slotel_proto::otlp::common::v1::AnyValue;
    use slotel_spec::parse_native;
    use std::path::Path;

    const MIN: i64 = NANOS_PER_MINUTE;
    /// A minute boundary, to keep the arithmetic readable.
    const T0: i64 = 28_000_000 * MIN;

    const SLOS: &str = "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: not_error } } }\n";

    fn engine() -> (Engine, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock.clone());
        engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
        (engine, clock)
    }

    /// `good` OK spans and `bad` ERROR spans of service `api` ending at `end`, each new.
    fn batch(end: i64, good: usize, bad: usize) -> Batch {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let span = |ok| test_support::span(NEXT.fetch_add(1, Ordering::Relaxed), end, ok);
        let spans = (0..good)
            .map(|_| span(true))
            .chain((0..bad).map(|_| span(false)))
            .collect();
        test_support::api_batch(spans)
    }

    #[test]
    fn span_durations_fill_minute_histograms_that_leave_with_the_tail() {
        let (engine, clock) = engine();
        engine.ingest(&batch(T0 + 5, 9, 1));
        clock.set(T0 + 3 * MIN);
        engine.ingest(&batch(T0 + 3 * MIN + 5, 5, 0));
        // Four days old: past the horizon, neither counted nor recorded.
        engine.ingest(&batch(T0 - 4 * 1440 * MIN, 3, 0));
        let counts = |h: &BTreeMap<i64, hdrhistogram::Histogram<u64>>| -> Vec<(i64, u64)> {
            h.iter().map(|(&m, h)| (m - T0 / MIN, h.len())).collect()
        };
        let tail = engine.latency_tail("default", "api").unwrap();
        assert_eq!(counts(&tail), [(0, 10), (3, 5)]);
        // Every span lasted 1 ms: the bucket's upper end is within 1 % above.
        let max = latency::quantile_seconds(&tail[&(T0 / MIN)], 1.0).unwrap();
        assert!((0.001..=0.00101).contains(&max), "{max}");
        let rows = engine.take_tail();
        let latencies: Vec<(i64, u64)> = rows
            .iter()
            .map(|r| {
                let h = latency::deserialize(r.latency.as_ref().unwrap()).unwrap();
                (r.minute - T0 / MIN, h.len())
            })
            .collect();
        assert_eq!(latencies, [(0, 10), (3, 5)]);
        assert!(engine.latency_tail("default", "api").unwrap().is_empty());
        // A failed flush hands them back.
        engine.untake_tail(rows);
        assert_eq!(
            counts(&engine.latency_tail("default", "api").unwrap()),
            [(0, 10), (3, 5)]
        );
        assert_eq!(engine.stats().events_too_old.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn burn_rates_per_window_hand_computed() {
        let (engine, clock) = engine();
        // 2h ago: 100 events, 10 bad. 40 minutes ago: 100 events, 2 bad. Now: 50 events, 5 bad.
        clock.set(T0 + 240 * MIN);
        engine.ingest(&batch(T0 + 120 * MIN + 5, 90, 10));
        engine.ingest(&batch(T0 + 200 * MIN + 5, 98, 2));
        engine.ingest(&batch(T0 + 240 * MIN + 5, 45, 5));
        let s = engine.status("default", "api").unwrap();
        assert_eq!(
            (s.good_events, s.total_events, s.bad_events),
            (233, 250, 17)
        );
        // 5m and 30m hold the last batch: 10% errors on a 1% budget.
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(s.burn_rates.get("5m"), 10.0));
        assert!(close(s.burn_rates.get("30m"), 10.0));
        // 1h holds the last two: 7 of 150.
        assert!(close(s.burn_rates.get("1h"), 7.0 / 150.0 / 0.01));
        // 2h covers minutes 121..=240: the batch at minute 120 is just outside.
        assert!(close(s.burn_rates.get("2h"), 7.0 / 150.0 / 0.01));
        assert!(close(s.burn_rates.get("6h"), 17.0 / 250.0 / 0.01));
        assert!(close(s.burn_rates.get("1d"), 17.0 / 250.0 / 0.01));
        assert!(close(s.sli, 233.0 / 250.0));
        assert!(close(s.error_budget_remaining, 1.0 - 17.0 / 2.5));
        // The 1d window is also a standard window: it is listed once.
        assert_eq!(s.burn_rates.0.len(), 7);
        // Budget: 1% of 250 events = 2.5; 17 bad spent 6.8 of it.
        assert!(close(Some(s.error_budget_events), 2.5));
        assert!(close(s.error_budget_consumed, 6.8));
        // Overspent: exhaustion is now.
        assert_eq!(s.budget_exhaustion_seconds.get("1h"), Some(0.0));
        assert!(s.low_traffic.is_empty());

        // A day later the 1d window is empty again: no data, not an outage.
        clock.set(T0 + 240 * MIN + 1440 * MIN);
        let s = engine.status("default", "api").unwrap();
        assert_eq!(s.total_events, 0);
        assert_eq!(s.sli, None);
        // The 3d burn rate still sees everything.
        assert!(close(s.burn_rates.get("3d"), 17.0 / 250.0 / 0.01));
    }

    #[test]
    fn forecast_and_low_traffic() {
        let (engine, clock) = engine();
        let slos = SLOS.replace("window: 1d", "window: 1d\n    min_events: 100");
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        clock.set(T0 + 1000 * MIN);
        // 2000 events 3 hours ago with 2 bad, 60 in the last minute with 1 bad.
        engine.ingest(&batch(T0 + 820 * MIN, 1998, 2));
        engine.ingest(&batch(T0 + 1000 * MIN, 59, 1));
        let s = engine.status("default", "api").unwrap();
        // Budget: 1% of 2060 = 20.6 events; 3 spent.
        let remaining = 1.0 - 3.0 / (0.01 * 2060.0);
        let burn_1h = (1.0 / 60.0) / 0.01;
        let want = remaining * 86_400.0 / burn_1h;
        assert!((s.budget_exhaustion_seconds.get("1h").unwrap() - want).abs() < 1e-6);
        // 6h sees everything: 3 of 2060.
        let burn_6h = (3.0 / 2060.0) / 0.01;
        let want = remaining * 86_400.0 / burn_6h;
        assert!((s.budget_exhaustion_seconds.get("6h").unwrap() - want).abs() < 1e-6);
        // 60 events in the last 5m, 30m, 1h and 2h: under min_events 100.
        assert_eq!(s.low_traffic, ["5m", "30m", "1h", "2h"]);
    }

    #[test]
    fn groups_split_the_slo_and_overflow_is_counted() {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock);
        let slos = SLOS.replace(
            "window: 1d",
            "window: 1d\n    group_by: [route]\n    max_groups: 2",
        );
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        let routed = |route: &str, good: usize, bad: usize| {
            let mut b = batch(T0, good, bad);
            let Payload::Traces(req) = &mut b.payload else {
                unreachable!()
            };
            for span in &mut req.resource_spans[0].scope_spans[0].spans {
                span.attributes.push(KeyValue {
                    key: "route".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(route.into())),
                    }),
                    ..Default::default()
                });
            }
            b
        };
        engine.ingest(&routed("/a", 9, 1));
        engine.ingest(&routed("/b", 4, 0));
        engine.ingest(&routed("/c", 1, 2));
        engine.ingest(&routed("/d", 3, 0));
        let s = engine.status("default", "api").unwrap();
        assert_eq!((s.good_events, s.total_events), (17, 20));
        let groups: Vec<_> = s
            .groups
            .iter()
            .map(|g| (g.group["route"].as_str(), g.good_events, g.total_events))
            .collect();
        // Lowest budget first: the overflow group (/c and /d) has 2 bad of 6.
        assert_eq!(
            groups,
            [("__overflow__", 4, 6), ("/a", 9, 10), ("/b", 4, 4)]
        );
        assert_eq!(
            engine.stats().group_overflow_events.load(Ordering::Relaxed),
            6
        );
        // The list does not carry groups.
        assert!(engine.statuses("default")[0].groups.is_empty());

        // The tail holds the SLO's minute and each group's; a fresh engine restored from
        // it answers the same, groups included, and has nothing left to flush.
        let cells = || engine.stats().tail_cells.load(Ordering::Relaxed);
        assert_eq!(cells(), 4, "the rows the next flush writes");
        let rows = engine.take_tail();
        assert_eq!(cells(), 0);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].group, "");
        assert_eq!((rows[0].good, rows[0].bad, rows[0].total), (17, 3, 20));
        assert!(
            rows.iter()
                .any(|r| r.group == r#"{"route":"__overflow__"}"#)
        );
        assert!(engine.take_tail().is_empty());
        // Rows handed back after a failed write count again.
        engine.untake_tail(rows.clone());
        assert_eq!(cells(), 4);
        assert_eq!(engine.take_tail().len(), 4);
        let fresh = Engine::new(Arc::new(ManualClock::new(T0)));
        fresh.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        let stats = fresh.restore(rows.clone());
        assert_eq!(
            stats,
            RestoreStats {
                rows: 4,
                unknown: 0,
                too_old: 0
            }
        );
        let (a, b) = (
            engine.status("default", "api").unwrap(),
            fresh.status("default", "api").unwrap(),
        );
        assert_eq!(
            serde_json::to_value(&a.groups).unwrap(),
            serde_json::to_value(&b.groups).unwrap()
        );
        assert_eq!((b.good_events, b.total_events), (17, 20));
        assert!(fresh.take_tail().is_empty());
        // Rows handed back are flushed next time.
        engine.untake_tail(rows.clone());
        assert_eq!(engine.take_tail(), rows);
    }

    #[test]
    fn a_retried_batch_counts_once() {
        let (engine, clock) = engine();
        let b = batch(T0, 7, 3);
        engine.ingest(&b);
        engine.ingest(&b);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 10);
        assert_eq!(engine.stats().spans_duplicate.load(Ordering::Relaxed), 10);
        // Past the 10-minute horizon the same spans count again.
        clock.set(T0 + 10 * MIN);
        engine.ingest(&b);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 20);
    }

    #[test]
    fn late_and_future_events_are_counted_apart() {
        let (engine, clock) = engine();
        clock.set(T0 + 10_000 * MIN);
        // Older than the 3d horizon: dropped; 10 minutes ahead: refused.
        engine.ingest(&batch(T0, 3, 0));
        engine.ingest(&batch(T0 + 10_010 * MIN, 4, 0));
        engine.ingest(&batch(T0 + 10_000 * MIN, 5, 0));
        let st = engine.stats();
        assert_eq!(st.events_too_old.load(Ordering::Relaxed), 3);
        assert_eq!(st.events_in_future.load(Ordering::Relaxed), 4);
        assert_eq!(st.events_counted.load(Ordering::Relaxed), 5);
        assert_eq!(st.spans_seen.load(Ordering::Relaxed), 12);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 5);
    }

    #[test]
    fn reload_keeps_unchanged_slos_and_resets_changed_ones() {
        let (engine, _) = engine();
        engine.ingest(&batch(T0, 7, 1));
        engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
        assert_eq!(engine.status("default", "api").unwrap().total_events, 8);
        // A new objective keeps the counts and applies to them.
        let changed = SLOS.replace("objective: 99", "objective: 99.5");
        engine.load(parse_native(Path::new("t.yaml"), &changed).unwrap());
        let s = engine.status("default", "api").unwrap();
        assert_eq!((s.total_events, s.objective), (8, 99.5));
        // A new SLI starts empty.
        let changed = changed.replace("status: not_error", "status: ok");
        engine.load(parse_native(Path::new("t.yaml"), &changed).unwrap());
        assert_eq!(engine.status("default", "api").unwrap().total_events, 0);
        assert!(matches!(
            engine.status("default", "nope"),
            Err(Error::UnknownSlo { .. })
        ));
    }

    #[test]
    fn state_bytes_of_a_30_day_slo() {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock);
        let slos = SLOS.replace("window: 1d", "window: 30d");
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        engine.ingest(&batch(T0, 1, 0));
        // Two u32 counts per minute of the 30-day horizon, two u64 sums per hour (and
        // two hours more).
        let bytes = engine.state_bytes("default", "api").unwrap();
        assert_eq!(
            bytes,
            std::mem::size_of::<MinuteRing>() + 30 * 1440 * 8 + (30 * 24 + 2) * 16
        );
    }
}

#[cfg(test)]
mod model_tests {
    //! The engine against a brute-force model over random event streams: every event
    //! kept, every window summed by scanning, for rolling and calendar windows.
    use super::*;
    use proptest::prelude::*;
    use slotel_model::time::ManualClock;
    use slotel_spec::parse_native;
    use std::path::Path;

    const MIN: i64 = NANOS_PER_MINUTE;

    const SLOS: &str = r#"
slos:
  - name: rolling
    service: api
    objective: 99
    window: 7d
    sli: { spans: { good: { status: not_error } } }
  - name: month
    service: api
    objective: 99
    window: { calendar: month, time_zone: Europe/Berlin }
    sli: { spans: { good: { status: not_error } } }
  - name: week
    service: api
    objective: 99
    window: { calendar: week, time_zone: America/New_York }
    sli: { spans: { good: { status: not_error } } }
  - name: slices
    service: api
    objective: 99
    budgeting: { timeslices: { slice: 7m, target: 60 } }
    window: 2d
    sli: { spans: { good: { status: not_error } } }
  - name: ratio-slices
    service: api
    objective: 99
    budgeting: { ratio_timeslices: { slice: 1h } }
    window: { calendar: month, time_zone: Asia/Kolkata }
    sli: { spans: { good: { status: not_error } } }
"#;

    fn batch(events: &[(i64, bool)], first_id: u64) -> Batch {
        let spans = events
            .iter()
            .enumerate()
            .map(|(i, &(t, good))| test_support::span(first_id + i as u64, t, good))
            .collect();
        test_support::api_batch(spans)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn statuses_equal_brute_force(
            // Around the turn of March 2026 in Berlin (and a DST change in New York).
            start_minute in 29_520_000i64..29_540_000,
            steps in prop::collection::vec((0i64..3000, 0i64..600, any::<bool>(), 1usize..4), 1..40),
        ) {
            let clock = Arc::new(ManualClock::new(start_minute * MIN));
            let engine = Engine::new(clock.clone());
            engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
            let mut now = start_minute * MIN;
            let mut kept: Vec<(i64, bool)> = Vec::new();
            let mut id = 1;
            for (advance, late, good, n) in steps {
                now += advance * MIN + 7;
                clock.set(now);
                // Events up to ten hours late, each a distinct span.
                let t = now - late * MIN;
                let events = vec![(t, good); n];
                engine.ingest(&batch(&events, id));
                id += n as u64;
                kept.extend(events);
            }
            let defs = parse_native(Path::new("t.yaml"), SLOS).unwrap();
            for def in &defs {
                let start = def.window.start_nanos(now);
                let (good, total) = kept
                    .iter()
                    .filter(|(t, _)| *t >= start && *t <= now)
                    .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                let s = engine.status("default", &def.name).unwrap();
                prop_assert_eq!((s.good_events, s.total_events), (good, total), "{}", def.name);
                // Slices: aligned to the epoch, cut by the window's start.
                let slice = |minutes: i64, score: &dyn Fn(u64, u64) -> f64| {
                    let lo = start.div_euclid(MIN);
                    let hi = now.div_euclid(MIN);
                    let mut k = lo.div_euclid(minutes);
                    let (mut g_sum, mut n) = (0.0, 0u64);
                    while k * minutes <= hi {
                        let (a, b) = ((k * minutes).max(lo), (k * minutes + minutes - 1).min(hi));
                        let (g, t) = kept
                            .iter()
                            .filter(|(t, _)| (a..=b).contains(&t.div_euclid(MIN)))
                            .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                        if t > 0 {
                            g_sum += score(g, t);
                            n += 1;
                        }
                        k += 1;
                    }
                    (g_sum, n)
                };
                match def.budgeting {
                    Budgeting::Occurrences => prop_assert_eq!(s.total_slices, None),
                    Budgeting::Timeslices { slice_minutes, slice_target } => {
                        let (g, n) = slice(i64::from(slice_minutes), &|g, t| {
                            if g as f64 >= slice_target * t as f64 { 1.0 } else { 0.0 }
                        });
                        prop_assert_eq!((s.good_slices, s.total_slices), (Some(g), Some(n)));
                    }
                    Budgeting::RatioTimeslices { slice_minutes } => {
                        let (g, n) = slice(i64::from(slice_minutes), &|g, t| g as f64 / t as f64);
                        prop_assert_eq!(s.total_slices, Some(n));
                        prop_assert!((s.good_slices.unwrap() - g).abs() < 1e-9);
                        prop_assert_eq!(s.sli, math::sli(s.good_slices.unwrap(), n as f64));
                    }
                }
                // Standard windows too: 1h and 1d as burn rates (events).
                if def.budgeting != Budgeting::Occurrences {
                    continue;
                }
                for (label, minutes) in [("1h", 60i64), ("1d", 1440)] {
                    let lo = (now.div_euclid(MIN) - minutes + 1) * MIN;
                    let (g, n) = kept
                        .iter()
                        .filter(|(t, _)| *t >= lo && *t <= now)
                        .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                    prop_assert_eq!(s.burn_rates.get(label), math::burn_rate(g as f64, n as f64, 0.99), "{} {}", def.name, label);
                }
            }
        }
    }
}
