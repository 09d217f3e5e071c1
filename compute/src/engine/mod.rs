//! The engine: holds the loaded SLOs and their per-minute state, takes batches, and
//! answers status.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use slotel_proto::{Batch, Consumer, Payload};

use crate::alerting::maintenance::Maintenance;
use crate::classify::SloIndex;
use crate::dedup::Dedup;
use crate::error::{Error, Result};
use crate::latency::{self, LatencyTail};
use crate::math;
use crate::metric::{MetricIndex, Role, SeriesState};
use crate::status::{BurnRates, GroupStatus, ObjectiveStatus, SloStatus};
use crate::window::{AddOutcome, MinuteCounts, MinuteRing, RingSize};
use slotel_model::time::Clock;
use slotel_model::time::rfc3339;
use slotel_model::{
    BURN_RATE_WINDOWS, Budgeting, Counted, GroupKey, MAX_GROUP_BY, SloDef, Tally, format_minutes,
};

use slotel_proto::otlp::logs::v1::LogRecord;
use slotel_proto::otlp::trace::v1::Span;

mod checkpoint;
mod explain;
mod groups;
mod ingest;
mod metrics;
mod pages;
mod snapshot;
mod status;
mod tail;

pub use checkpoint::{Cut, StateError};
pub use explain::{Explanation, Observed, SampleVerdict, ServiceSpans, explain_observed};
use groups::*;
pub use groups::{MISSING_GROUP, OVERFLOW_GROUP};
pub use metrics::EngineCollector;
use pages::status_windows;
pub use pages::{HourPages, PageStats};
pub use snapshot::{
    BurnSnapshot, burn_ranges, burn_snapshot_from_sums, group_burn_ranges,
    group_burn_snapshot_from_sums,
};
use status::*;
pub use status::{
    GroupSums, RangeSums, group_ranges, group_statuses_from_sums, status_at, status_from_sums,
    status_ranges, window_units,
};
use tail::Tail;
pub use tail::{MinuteRow, Minutes, RestoreStats};

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
    /// Minutes an SLO's rings keep one by one; older minutes are kept as hour sums and
    /// the minutes of the hours that windows' edges cut are paged in from storage
    /// ([`Engine::pages_wanted`]). `None` keeps every minute of the horizon (an engine
    /// with no storage behind it). Timeslice SLOs always keep every minute.
    pub dense_minutes: Option<u32>,
}

/// Minutes kept one by one when the engine pages from storage: the longest standard
/// window of a day, and two hours for its edge.
pub const PAGED_DENSE_MINUTES: u32 = 26 * 60;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_future: DEFAULT_MAX_FUTURE,
            dedup_horizon: Duration::from_secs(600),
            dedup_max_spans: 8_000_000,
            dense_minutes: None,
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
    /// Trace batches whose bytes do not decode (damage: the receivers check them), not
    /// counted.
    pub batches_malformed: AtomicU64,
    /// Log records seen again within the de-duplication horizon, not counted again.
    pub log_records_duplicate: AtomicU64,
    /// Events of grouped SLOs counted in the overflow group (past `max_groups`).
    pub group_overflow_events: AtomicU64,
    /// Events left out of their SLI by a maintenance window.
    pub events_in_maintenance: AtomicU64,
    /// (SLO, group, minute) cells counted since the tail was last taken: about the rows
    /// the next flush writes.
    pub tail_cells: AtomicU64,
    /// Log records that did not decode (damage the checksum missed), not counted.
    pub undecodable_records: AtomicU64,
    /// Old hours' minutes installed from storage for windows' edges.
    pub window_pages_installed: AtomicU64,
    /// Pages read from storage that did not add up to the hour held (events on their
    /// way to storage), asked for again.
    pub window_pages_refused: AtomicU64,
    /// Pages windows need and do not have, as of the last [`Engine::pages_wanted`].
    pub window_pages_missing: AtomicU64,
    /// Window sums that counted their edge hour whole for want of its page.
    pub window_edge_estimates: AtomicU64,
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

#[derive(Default)]
struct SloSet {
    index: SloIndex,
    metrics: MetricIndex,
    slos: Vec<SloEntry>,
    by_name: HashMap<(String, String), usize>,
    /// The tenants with SLOs.
    tenants: std::collections::HashSet<String>,
}

impl SloSet {
    /// SLO `name` of `tenant`.
    fn entry(&self, tenant: &str, name: &str) -> Result<&SloEntry> {
        self.by_name
            .get(&(tenant.to_string(), name.to_string()))
            .map(|&i| &self.slos[i])
            .ok_or_else(|| Error::UnknownSlo {
                tenant: tenant.to_string(),
                name: name.to_string(),
            })
    }
}

/// The SLO engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    clock: Arc<dyn Clock>,
    max_future_nanos: i64,
    dense_minutes: Option<u32>,
    maintenance: Arc<Maintenance>,
    dedup: Mutex<Dedup>,
    set: RwLock<Arc<SloSet>>,
    stats: EngineStats,
    /// The log position applied so far; held while a batch is applied or a cut taken.
    applied: Mutex<u64>,
    /// Whether the log found at start has been replayed.
    ready: std::sync::atomic::AtomicBool,
    /// What arrived from which services, for [`Engine::explain`].
    diagnostics: explain::Diagnostics,
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

impl Consumer for Engine {
    async fn consume(&self, batch: Batch) -> slotel_proto::Result<()> {
        self.ingest(&batch);
        Ok(())
    }
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
            dense_minutes: config.dense_minutes,
            maintenance: Arc::default(),
            dedup: Mutex::new(Dedup::new(
                (config.dedup_horizon.as_secs() / 60) as u32,
                config.dedup_max_spans,
            )),
            set: RwLock::new(Arc::default()),
            stats: EngineStats::default(),
            applied: Mutex::new(0),
            ready: std::sync::atomic::AtomicBool::new(true),
            diagnostics: explain::Diagnostics::default(),
        }
    }

    /// The minutes an SLO's rings keep: its horizon, and room for events dated up to
    /// `max_future` ahead (rounded up to minutes, and one more for the boundary).
    pub(crate) fn ring_size(&self, def: &SloDef) -> RingSize {
        let future = (self.max_future_nanos.max(0) as u64).div_ceil(NANOS_PER_MINUTE as u64) + 1;
        RingSize {
            horizon: horizon_minutes(def),
            future: u32::try_from(future).unwrap_or(u32::MAX / 2),
            // Slices need every minute of the window; events, only its edges'.
            dense: match def.budgeting {
                Budgeting::Occurrences => self.dense_minutes,
                _ => None,
            },
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
            tenants: defs.iter().map(|d| d.tenant.clone()).collect(),
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
                    ring: Arc::new(Mutex::new(MinuteRing::sized(self.ring_size(&def)))),
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

    /// Heap bytes of window state held for `tenant`'s SLO `name`, for measurements.
    pub fn state_bytes(&self, tenant: &str, name: &str) -> Option<usize> {
        let set = self.current();
        let i = *set.by_name.get(&(tenant.to_string(), name.to_string()))?;
        let ring = set.slos[i].ring.lock().unwrap_or_else(|e| e.into_inner());
        Some(std::mem::size_of::<MinuteRing>() + ring.heap_bytes())
    }
}

#[cfg(test)]
mod tests;
