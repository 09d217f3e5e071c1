//! Burn snapshots: every SLO's counts over its windows at one instant, for the alert
//! rules.

use super::*;

/// An SLO's (or a group's) events over each standard burn-rate window, and for an SLO as
/// a whole its own window and its no-data window.
#[derive(Debug, Clone)]
pub struct BurnSnapshot {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// The group's (attribute, value) pairs, in `group_by` order; empty for the SLO as a
    /// whole.
    pub group: Vec<(String, String)>,
    /// (window minutes, events), shortest window first: the standard windows, and for
    /// the SLO as a whole its window as it stands now and its no-data window.
    pub windows: Vec<(u32, Tally)>,
    /// (window minutes, good units, total units) over the same windows, in the units of
    /// the SLO's budgeting (slices for timeslices); empty means the events' counts.
    pub units: Vec<(u32, f64, f64)>,
}

impl BurnSnapshot {
    /// The events over the window of `minutes`, if it is one of the snapshot's.
    pub fn window(&self, minutes: u32) -> Option<Tally> {
        self.windows
            .iter()
            .find(|(w, _)| *w == minutes)
            .map(|&(_, t)| t)
    }

    /// Good and total units (events or slices, by the SLO's budgeting) over the window of
    /// `minutes`: what burn rates and the budget are computed from.
    pub fn units(&self, minutes: u32) -> Option<(f64, f64)> {
        if self.units.is_empty() {
            return self
                .window(minutes)
                .map(|t| (t.good as f64, t.total as f64));
        }
        self.units
            .iter()
            .find(|(w, _, _)| *w == minutes)
            .map(|&(_, g, t)| (g, t))
    }
}

impl Engine {
    /// The events of every SLO and group (all tenants) over the standard burn-rate
    /// windows (and, for an SLO as a whole, its own window and its no-data window) at the
    /// engine's now, in events
    /// and in units of the SLO's budgeting (by the computation the status uses): what
    /// alert rules read.
    pub fn burn_snapshot(&self) -> (i64, Vec<BurnSnapshot>) {
        let set = self.current();
        let now = self.clock.now_nanos();
        let mut out = Vec::with_capacity(set.slos.len());
        for e in &set.slos {
            // The SLO as a whole also needs its own window and its no-data window (for
            // the budget and no-data alerts); a group, only the tiers' standard windows.
            let whole = status_windows(&e.def, now);
            let ring = e.ring.lock().unwrap_or_else(|p| p.into_inner());
            out.push(snapshot_of(&e.def, &*ring, now, whole, Vec::new()));
            drop(ring);
            if e.def.group_by.is_empty() {
                continue;
            }
            // Every group alerts on its own; the overflow group mixes many, so it does not.
            let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
            for (id, ring) in groups.rings.iter().enumerate() {
                if groups.overflow == Some(id as u32) {
                    continue;
                }
                out.push(snapshot_of(
                    &e.def,
                    ring,
                    now,
                    BURN_RATE_WINDOWS.to_vec(),
                    group_labels(&e.def, &groups, id),
                ));
            }
        }
        (now, out)
    }
}

/// The snapshot of `def` (or of one of its groups, `group`) over `windows` from `counts`.
fn snapshot_of(
    def: &Arc<SloDef>,
    counts: &dyn MinuteCounts,
    now: i64,
    windows: Vec<u32>,
    group: Vec<(String, String)>,
) -> BurnSnapshot {
    let (windows, events, units) = status::figures_over(def, counts, now, windows);
    BurnSnapshot {
        def: Arc::clone(def),
        group,
        windows: windows.iter().copied().zip(events).collect(),
        units: windows
            .iter()
            .zip(units)
            .map(|(&w, (g, t))| (w, g, t))
            .collect(),
    }
}

/// The minute ranges whose (counted, total) sums the burn snapshot of `def` as a whole
/// reads at `now`, in the order it reads them: what an alert evaluator summing many
/// engines (the partitions of a cluster) asks each of them for.
pub fn burn_ranges(def: &Arc<SloDef>, now: i64) -> Vec<(i64, i64)> {
    let recorder = status::Recorder::default();
    snapshot_of(def, &recorder, now, status_windows(def, now), Vec::new());
    recorder.ranges()
}

/// The burn snapshot of `def` as a whole at `now` from `sums`, the (counted, total) sums
/// over the ranges of [`burn_ranges`]`(def, now)` in their order (every engine's added
/// up).
pub fn burn_snapshot_from_sums(
    def: &Arc<SloDef>,
    ranges: &[(i64, i64)],
    sums: &[(u64, u64)],
    now: i64,
) -> BurnSnapshot {
    let replayer = status::Replayer::new(ranges, sums);
    snapshot_of(def, &replayer, now, status_windows(def, now), Vec::new())
}

/// The minute ranges whose sums the burn snapshot of one group of `def` reads at `now`
/// (the standard windows), in order.
pub fn group_burn_ranges(def: &Arc<SloDef>, now: i64) -> Vec<(i64, i64)> {
    let recorder = status::Recorder::default();
    snapshot_of(def, &recorder, now, BURN_RATE_WINDOWS.to_vec(), Vec::new());
    recorder.ranges()
}

/// The burn snapshot of `def`'s group `group` at `now` from its sums over the ranges of
/// [`group_burn_ranges`]`(def, now)`, in their order.
pub fn group_burn_snapshot_from_sums(
    def: &Arc<SloDef>,
    group: Vec<(String, String)>,
    ranges: &[(i64, i64)],
    sums: &[(u64, u64)],
    now: i64,
) -> BurnSnapshot {
    let replayer = status::Replayer::new(ranges, sums);
    snapshot_of(def, &replayer, now, BURN_RATE_WINDOWS.to_vec(), group)
}
