//! The engine: holds the loaded SLOs and their per-minute state, takes batches, and
//! answers status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use slotel_proto::{Batch, Consumer, Payload};

use crate::classify::SloIndex;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::math;
use crate::model::{BURN_RATE_WINDOWS, SloDef, format_minutes};
use crate::status::{BurnRates, SloStatus};
use crate::window::{AddOutcome, MinuteRing};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Events dated further ahead than this are refused by default.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(300);

/// Counters of what the engine did with the spans it was given.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Spans looked at.
    pub spans_seen: AtomicU64,
    /// (span, SLO) events counted.
    pub events_counted: AtomicU64,
    /// Events older than the SLO's horizon, not counted.
    pub events_too_old: AtomicU64,
    /// Events dated too far in the future, not counted.
    pub events_in_future: AtomicU64,
}

struct SloEntry {
    def: Arc<SloDef>,
    ring: Arc<Mutex<MinuteRing>>,
}

#[derive(Default)]
struct SloSet {
    index: SloIndex,
    slos: Vec<SloEntry>,
    by_name: HashMap<(String, String), usize>,
}

/// The SLO engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    clock: Arc<dyn Clock>,
    max_future_nanos: i64,
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
        .minutes
        .max(*BURN_RATE_WINDOWS.last().unwrap_or(&0))
}

impl Engine {
    /// An engine with no SLOs, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            max_future_nanos: DEFAULT_MAX_FUTURE.as_nanos() as i64,
            set: RwLock::new(Arc::default()),
            stats: EngineStats::default(),
        }
    }

    /// The engine's counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    fn current(&self) -> Arc<SloSet> {
        Arc::clone(&self.set.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the loaded SLOs. An SLO whose definition did not change keeps its counts;
    /// a new or changed one starts empty.
    pub fn load(&self, defs: Vec<SloDef>) {
        let old = self.current();
        let mut set = SloSet {
            index: SloIndex::build(&defs),
            ..SloSet::default()
        };
        for (i, def) in defs.into_iter().enumerate() {
            let key = (def.tenant.clone(), def.name.clone());
            let ring = match old.by_name.get(&key).map(|&j| &old.slos[j]) {
                Some(prev) if *prev.def == def => Arc::clone(&prev.ring),
                _ => Arc::new(Mutex::new(MinuteRing::new(horizon_minutes(&def)))),
            };
            set.by_name.insert(key, i);
            set.slos.push(SloEntry {
                def: Arc::new(def),
                ring,
            });
        }
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Classifies and counts every span of `batch`.
    pub fn ingest(&self, batch: &Batch) {
        let set = self.current();
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let latest = now.saturating_add(self.max_future_nanos);
        let mut acc = Accumulator::default();
        let mut in_future = 0u64;
        let mut seen = 0usize;
        match &batch.payload {
            Payload::Traces(req) => {
                for rs in &req.resource_spans {
                    seen += set.index.classify(&batch.tenant, rs, |id, end, good| {
                        match i64::try_from(end) {
                            Ok(end) if end <= latest => {
                                acc.add(id, end.div_euclid(NANOS_PER_MINUTE), good)
                            }
                            _ => in_future += 1,
                        }
                    });
                }
            }
        }
        let (mut counted, mut too_old) = (0u64, 0u64);
        for cell in &acc.cells {
            let entry = &set.slos[cell.slo as usize];
            let mut ring = entry.ring.lock().unwrap_or_else(|e| e.into_inner());
            match ring.add(cell.minute, cell.good, cell.total, now_minute) {
                AddOutcome::Added => counted += cell.total,
                AddOutcome::TooOld => too_old += cell.total,
            }
        }
        let s = &self.stats;
        s.spans_seen.fetch_add(seen as u64, Ordering::Relaxed);
        s.events_counted.fetch_add(counted, Ordering::Relaxed);
        s.events_too_old.fetch_add(too_old, Ordering::Relaxed);
        s.events_in_future.fetch_add(in_future, Ordering::Relaxed);
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
        Ok(status_of(entry, self.clock.now_nanos()))
    }

    /// Heap bytes of window state held for `tenant`'s SLO `name`, for measurements.
    pub fn state_bytes(&self, tenant: &str, name: &str) -> Option<usize> {
        let set = self.current();
        let i = *set.by_name.get(&(tenant.to_string(), name.to_string()))?;
        let ring = set.slos[i].ring.lock().unwrap_or_else(|e| e.into_inner());
        Some(std::mem::size_of::<MinuteRing>() + ring.heap_bytes())
    }
}

fn status_of(entry: &SloEntry, now: i64) -> SloStatus {
    let def = &entry.def;
    let objective = def.objective_ratio();
    let mut windows: Vec<u32> = BURN_RATE_WINDOWS.to_vec();
    windows.push(def.window.minutes);
    windows.sort_unstable();
    windows.dedup();
    let sums = {
        let ring = entry.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.sums(now.div_euclid(NANOS_PER_MINUTE), &windows)
    };
    let sum_of = |minutes: u32| sums[windows.binary_search(&minutes).unwrap_or(0)];
    let (good, total) = sum_of(def.window.minutes);
    let mut burn_rates: Vec<(String, Option<f64>)> = BURN_RATE_WINDOWS
        .iter()
        .map(|&w| {
            let (g, t) = sum_of(w);
            (format_minutes(w), math::burn_rate(g, t, objective))
        })
        .collect();
    let label = def.window.to_string();
    if !burn_rates.iter().any(|(w, _)| *w == label) {
        burn_rates.push((label.clone(), math::burn_rate(good, total, objective)));
    }
    SloStatus {
        name: def.name.clone(),
        tenant: def.tenant.clone(),
        service: def.service.clone(),
        description: def.description.clone(),
        objective: def.objective,
        window: label,
        good_events: good,
        bad_events: total - good,
        total_events: total,
        sli: math::sli(good, total),
        error_budget_remaining: math::budget_remaining(good, total, objective),
        burn_rates: BurnRates(burn_rates),
        evaluated_at: rfc3339(now),
    }
}

fn rfc3339(nanos: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
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
}

impl Accumulator {
    fn add(&mut self, slo: u32, minute: i64, good: bool) {
        let hit = |c: &Cell| c.slo == slo && c.minute == minute;
        let i = match self.cells.get(self.last) {
            Some(c) if hit(c) => self.last,
            _ => match self.cells.iter().position(hit) {
                Some(i) => i,
                None => {
                    self.cells.push(Cell {
                        slo,
                        minute,
                        good: 0,
                        total: 0,
                    });
                    self.cells.len() - 1
                }
            },
        };
        let c = &mut self.cells[i];
        c.good += u64::from(good);
        c.total += 1;
        self.last = i;
    }
}
