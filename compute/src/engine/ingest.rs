//! The hot path: one batch classified and added to the SLOs' minute rings, with one
//! lock per SLO touched per batch.

use slotel_proto::wire::{self, Attributes};

use super::*;
use crate::classify::ResourceSlos;
use explain::Observing;

#[derive(Debug, Clone, Copy)]
pub(super) struct Cell {
    slo: u32,
    group: u32,
    minute: i64,
    good: u64,
    total: u64,
}

/// Per-batch counts by (SLO, group, minute). A batch touches few cells per SLO, so each
/// SLO keeps a chain of its cells (the head in a vector by SLO id): finding a span's
/// cell looks only at its SLO's cells, however many SLOs the batch touches.
#[derive(Default)]
pub(super) struct Accumulator {
    cells: Vec<Cell>,
    /// Per SLO id, the index of its newest cell in `cells` plus one (0: none).
    heads: Vec<u32>,
    /// Per cell, the index plus one of the same SLO's cell before it (0: none).
    next: Vec<u32>,
    /// (SLO, minute, duration) of the events of SLOs with latency histograms.
    durations: Vec<(u32, i64, u64)>,
    /// (SLO, minute) cells too old to count: their durations are not recorded either.
    too_old: Vec<(u32, i64)>,
}

impl Accumulator {
    /// An accumulator for a set of `slos` SLOs.
    fn new(slos: usize) -> Self {
        Self {
            heads: vec![0; slos],
            ..Self::default()
        }
    }

    pub(super) fn add_counts(&mut self, slo: u32, group: u32, minute: i64, good: u64, total: u64) {
        let Some(head) = self.heads.get_mut(slo as usize) else {
            return;
        };
        let mut at = *head;
        while at != 0 {
            let c = &mut self.cells[at as usize - 1];
            if c.group == group && c.minute == minute {
                c.good += good;
                c.total += total;
                return;
            }
            at = self.next[at as usize - 1];
        }
        self.cells.push(Cell {
            slo,
            group,
            minute,
            good,
            total,
        });
        self.next.push(*head);
        *head = self.cells.len() as u32;
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

/// The engine's walk over a trace batch: each resource looked up once, each span
/// observed for `explain`, classified, and de-duplicated once if any SLO counts it.
struct Spans<'e, F> {
    engine: &'e Engine,
    set: &'e SloSet,
    tenant: &'e str,
    now_minute: i64,
    dedup: &'e mut Dedup,
    slos: Option<ResourceSlos<'e>>,
    observing: Option<Observing<'e>>,
    duplicates: u64,
    emit: F,
}

impl<'e, F: FnMut(u32, &wire::Span<'_, '_>, bool)> wire::TraceVisitor<'e> for Spans<'e, F> {
    fn resource(&mut self, resource: &wire::Resource<'_, 'e>) {
        self.slos = Some(self.set.index.for_resource(self.tenant, resource));
        self.observing = Some(self.engine.diagnostics.begin(self.tenant, resource));
    }

    fn span(&mut self, resource: &wire::Resource<'_, 'e>, span: &wire::Span<'_, 'e>) {
        if let Some(o) = &mut self.observing {
            o.span(span);
        }
        let Some(slos) = self.slos.filter(|s| !s.is_empty()) else {
            return;
        };
        let (dedup, duplicates, emit) = (&mut *self.dedup, &mut self.duplicates, &mut self.emit);
        let (tenant, now_minute) = (self.tenant, self.now_minute);
        let mut dup = None;
        slos.classify(resource.attributes, span, |id, good| {
            let dup = *dup.get_or_insert_with(|| {
                let d = dedup.seen(now_minute, tenant, span.trace_id, span.span_id);
                *duplicates += u64::from(d);
                d
            });
            if !dup {
                emit(id, span, good);
            }
        });
    }

    fn end_resource(&mut self, resource: &wire::Resource<'_, 'e>) {
        if let Some(o) = self.observing.take() {
            self.engine.diagnostics.end(self.tenant, resource, o);
        }
    }
}

impl Engine {
    /// Classifies and counts every span and log record of `batch`, as of the time it
    /// was received (the clock's now when that is not known): a batch replayed from the
    /// log counts exactly as it did when it arrived.
    pub fn ingest(&self, batch: &Batch) {
        let set = self.current();
        let now = if batch.received_nanos > 0 {
            batch.received_nanos
        } else {
            self.clock.now_nanos()
        };
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let latest = now.saturating_add(self.max_future_nanos);
        let mut acc = Accumulator::new(set.slos.len());
        let mut in_future = 0u64;
        let s = &self.stats;
        let mut overflowed = 0u64;
        // The group of an event of SLO `id` with these attributes.
        let mut group_of = |id: u32, attrs: &dyn Attributes| -> u32 {
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
            let (g, over) = groups.resolve(&refs[..n], def.max_groups, self.ring_size(def));
            overflowed += u64::from(over);
            g
        };
        let maintenance = &self.maintenance;
        let mut excluded = 0u64;
        let mut newest = 0i64;
        // Counts an event of SLO `id` at `time`, with its duration when it has one.
        let mut emit = |id, time: u64, good: bool, attrs: &dyn Attributes, units: Option<u64>| {
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
        if !set.tenants.contains(&*batch.tenant) && self.diagnostics.first_unmatched(&batch.tenant)
        {
            tracing::info!(
                tenant = %&*batch.tenant,
                "Received data for a tenant with no SLOs; it is acknowledged and not counted."
            );
        }
        match &batch.payload {
            Payload::Traces(body) => {
                let mut dedup = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
                let mut spans = Spans {
                    engine: self,
                    set: &set,
                    tenant: &batch.tenant,
                    now_minute,
                    dedup: &mut dedup,
                    slos: None,
                    observing: None,
                    duplicates: 0,
                    emit: |id, span: &wire::Span<'_, '_>, good| {
                        let units =
                            latency::span_units(span.start_time_unix_nano, span.end_time_unix_nano);
                        emit(id, span.end_time_unix_nano, good, &span.attributes, units);
                    },
                };
                // Trace bytes reach compute checked (by a receiver, before the log), so
                // the attributes no SLO reads are skipped unread.
                let keep = |key: &str| set.index.reads(key);
                let scanned = wire::scan_checked_traces(body, &keep, &mut spans);
                let duplicates = spans.duplicates;
                drop(spans);
                drop(dedup);
                match scanned {
                    Ok(seen) => {
                        s.spans_seen.fetch_add(seen as u64, Ordering::Relaxed);
                        s.spans_duplicate.fetch_add(duplicates, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // The receivers checked these bytes: this is damage, not input.
                        tracing::error!(error = %e, tenant = %&*batch.tenant, "A trace batch does not decode; it is not counted.");
                        s.batches_malformed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            Payload::Logs(req) => {
                let mut seen = 0;
                let mut dedup = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
                let mut duplicates = 0u64;
                // A record's matches arrive one after another: test each record once.
                let mut last: Option<(*const LogRecord, bool)> = None;
                for rl in &req.resource_logs {
                    seen += set.index.classify_logs(
                        &batch.tenant,
                        rl,
                        |id, record: &LogRecord, t, good| {
                            let dup = match last {
                                Some((p, dup)) if std::ptr::eq(p, record) => dup,
                                _ => {
                                    let dup = dedup.seen_log(now_minute, &batch.tenant, record);
                                    duplicates += u64::from(dup);
                                    last = Some((std::ptr::from_ref(record), dup));
                                    dup
                                }
                            };
                            if !dup {
                                emit(id, t, good, &&record.attributes[..], None)
                            }
                        },
                    );
                }
                drop(dedup);
                s.log_records_seen.fetch_add(seen as u64, Ordering::Relaxed);
                s.log_records_duplicate
                    .fetch_add(duplicates, Ordering::Relaxed);
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
                                    let group = group_of(id, &attrs);
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
}
