//! Status math: the SLI, budget, burn rates and groups of an SLO from its rings, for
//! every budgeting method.

use super::*;

/// (good, total) budgeting units: events or slices.
pub(super) type Units = (f64, f64);

/// Good and total units of a window: events (occurrences), or slices.
pub(super) fn slice_units(
    ring: &dyn MinuteCounts,
    now_minute: i64,
    minutes: u32,
    slice: u32,
    counted: Counted,
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
            good += score(counted.tally(x, t).good, t);
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
) -> (Tally, Units) {
    let counted = def.counted();
    let (x, total) = counts.range(now_minute - i64::from(minutes) + 1, now_minute);
    let tally = counted.tally(x, total);
    let units = match def.budgeting {
        Budgeting::Occurrences => (tally.good as f64, total as f64),
        Budgeting::Timeslices {
            slice_minutes,
            slice_target,
        } => slice_units(
            counts,
            now_minute,
            minutes,
            slice_minutes,
            counted,
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
            counted,
            |g, t| g as f64 / t as f64,
        ),
    };
    (tally, units)
}

/// The windows (minutes, ascending: the standard ones and the SLO's) and their
/// (good, total) events and budgeting units, from one ring.
pub(super) fn figures(
    def: &SloDef,
    ring: &dyn MinuteCounts,
    now: i64,
) -> (Vec<u32>, Vec<Tally>, Vec<Units>) {
    let mut windows: Vec<u32> = BURN_RATE_WINDOWS.to_vec();
    windows.push(def.window.minutes_at(now));
    figures_over(def, ring, now, windows)
}

/// The events and the units of the SLO's budgeting (events, or slices) over `windows`,
/// shortest first. The status, the series and the alert rules all read their burn rates
/// from here.
pub(super) fn figures_over(
    def: &SloDef,
    ring: &dyn MinuteCounts,
    now: i64,
    mut windows: Vec<u32>,
) -> (Vec<u32>, Vec<Tally>, Vec<Units>) {
    let now_minute = now.div_euclid(NANOS_PER_MINUTE);
    windows.sort_unstable();
    windows.dedup();
    // A bad/total metric SLI keeps bad events where others keep good ones.
    let counted = def.counted();
    let events: Vec<Tally> = ring
        .sums(now_minute, &windows)
        .into_iter()
        .map(|(x, total)| counted.tally(x, total))
        .collect();
    let units = windows
        .iter()
        .zip(&events)
        .map(
            |(
                &w,
                &Tally {
                    good: g, total: t, ..
                },
            )| match def.budgeting {
                Budgeting::Occurrences => (g as f64, t as f64),
                Budgeting::Timeslices {
                    slice_minutes,
                    slice_target,
                } => slice_units(ring, now_minute, w, slice_minutes, counted, |g, t| {
                    if g as f64 >= slice_target * t as f64 {
                        1.0
                    } else {
                        0.0
                    }
                }),
                Budgeting::RatioTimeslices { slice_minutes } => {
                    slice_units(ring, now_minute, w, slice_minutes, counted, |g, t| {
                        g as f64 / t as f64
                    })
                }
            },
        )
        .collect();
    (windows, events, units)
}

/// The status of each group of a grouped SLO, by its primary objective.
pub(super) fn group_statuses(entry: &SloEntry, now: i64) -> Vec<GroupStatus> {
    let def = &entry.def;
    if def.group_by.is_empty() {
        return Vec::new();
    }
    let groups = entry.groups.lock().unwrap_or_else(|e| e.into_inner());
    let out: Vec<GroupStatus> = groups
        .rings
        .iter()
        .enumerate()
        .map(|(id, ring)| {
            group_status_of(
                def,
                ring as &dyn MinuteCounts,
                group_labels(def, &groups, id).into_iter().collect(),
                now,
            )
        })
        .collect();
    sort_groups(out)
}

/// The groups spending their budget fastest first.
fn sort_groups(mut groups: Vec<GroupStatus>) -> Vec<GroupStatus> {
    groups.sort_by(|a, b| {
        let key = |g: &GroupStatus| g.error_budget_remaining.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    groups
}

/// The status of one group of `def` (its `group` labels) from its per-minute `counts`.
fn group_status_of(
    def: &SloDef,
    counts: &dyn MinuteCounts,
    group: BTreeMap<String, String>,
    now: i64,
) -> GroupStatus {
    let ratio = def.objective_ratio();
    let window_minutes = def.window.minutes_at(now);
    let (windows, events, units) = figures(def, counts, now);
    let at = |m: u32| windows.binary_search(&m).unwrap_or(0);
    let Tally { good, total, .. } = events[at(window_minutes)];
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
        group,
        good_events: good,
        total_events: total,
        sli: math::sli(gu, tu),
        error_budget_remaining: math::budget_remaining(gu, tu, ratio),
        burn_rates: BurnRates(burn_rates),
    }
}

/// A group's labels (in `group_by` order) and its (counted, total) sums over some ranges.
pub type GroupSums = (Vec<(String, String)>, Vec<(u64, u64)>);

/// The minute ranges whose sums a group's status of `def` reads at `now`, in order.
pub fn group_ranges(def: &SloDef, now: i64) -> Vec<(i64, i64)> {
    let recorder = Recorder::default();
    group_status_of(def, &recorder, BTreeMap::new(), now);
    recorder.ranges()
}

/// The groups' statuses of `def` at `now` from each group's sums over the ranges of
/// [`group_ranges`]`(def, now)` (every engine's added up), the fastest-burning first.
pub fn group_statuses_from_sums(
    def: &SloDef,
    ranges: &[(i64, i64)],
    groups: &[GroupSums],
    now: i64,
) -> Vec<GroupStatus> {
    sort_groups(
        groups
            .iter()
            .map(|(labels, sums)| {
                let replayer = Replayer::new(ranges, sums);
                group_status_of(def, &replayer, labels.iter().cloned().collect(), now)
            })
            .collect(),
    )
}

/// The histogram bound stored as `f64` bits (0: none yet).
pub(super) fn threshold_of(bits: &AtomicU64) -> Option<f64> {
    match bits.load(Ordering::Relaxed) {
        0 => None,
        bits => Some(f64::from_bits(bits)),
    }
}

pub(super) fn status_of(entry: &SloEntry, now: i64) -> SloStatus {
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
    let Tally { good, total, .. } = events[at(window_minutes)];
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
        .filter(|(_, w)| events[at(*w)].total < def.min_events)
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
        in_maintenance: None,
        diagnosis: None,
        evaluated_at: rfc3339(now),
    }
}

impl Engine {
    /// The status of every SLO of `tenant`, by name.
    pub fn statuses(&self, tenant: &str) -> Vec<SloStatus> {
        let set = self.current();
        let now = self.clock.now_nanos();
        let mut out: Vec<_> = set
            .slos
            .iter()
            .filter(|e| e.def.tenant == tenant)
            .map(|e| self.with_maintenance(status_of(e, now), now))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The status of one SLO.
    pub fn status(&self, tenant: &str, name: &str) -> Result<SloStatus> {
        let set = self.current();
        let entry = set.entry(tenant, name)?;
        let now = self.clock.now_nanos();
        let mut status = self.with_maintenance(status_of(entry, now), now);
        status.groups = group_statuses(entry, now);
        if status.state == "no_data" {
            status.diagnosis = self
                .explanation(&set, entry, &status)
                .findings
                .into_iter()
                .next();
        }
        Ok(status)
    }

    fn with_maintenance(&self, mut status: SloStatus, now: i64) -> SloStatus {
        status.in_maintenance =
            self.maintenance
                .silences(&status.tenant, &status.name, &status.service, now);
        status
    }
}

/// Counts that answer nothing and note the ranges asked, in order.
#[derive(Default)]
pub(super) struct Recorder(std::cell::RefCell<Vec<(i64, i64)>>);

impl Recorder {
    /// The ranges asked so far.
    pub(super) fn ranges(self) -> Vec<(i64, i64)> {
        self.0.into_inner()
    }
}

impl MinuteCounts for Recorder {
    fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        self.0.borrow_mut().push((lo, hi));
        (0, 0)
    }
}

/// Counts that answer the ranges of a [`Recorder`] with sums given for them, in order.
pub(super) struct Replayer<'a> {
    ranges: &'a [(i64, i64)],
    sums: &'a [(u64, u64)],
    next: std::cell::Cell<usize>,
}

impl<'a> Replayer<'a> {
    /// Answers `ranges`, in order, with `sums`.
    pub(super) fn new(ranges: &'a [(i64, i64)], sums: &'a [(u64, u64)]) -> Self {
        Replayer {
            ranges,
            sums,
            next: std::cell::Cell::new(0),
        }
    }
}

impl MinuteCounts for Replayer<'_> {
    fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        let i = self.next.get();
        self.next.set(i + 1);
        match (self.ranges.get(i), self.sums.get(i)) {
            (Some(&asked), Some(&sum)) if asked == (lo, hi) => sum,
            // Another sequence of questions than recorded: a bug, never a wrong count.
            _ => panic!("status_from_sums: the status asked for {lo}..={hi} out of order"),
        }
    }
}

/// The minute ranges whose (counted, total) sums [`status_at`] reads for `def` at `now`,
/// in the order it reads them: what a status summed over many engines (the partitions of
/// a cluster) asks each of them for. They depend on `def` and `now` only.
pub fn status_ranges(def: &SloDef, now: i64) -> Vec<(i64, i64)> {
    let recorder = Recorder::default();
    status_at(def, &recorder, None, now);
    recorder.ranges()
}

/// The status of `def` at `now` from `sums`, the (counted, total) sums over the ranges of
/// [`status_ranges`]`(def, now)` in their order (the sums of every engine added up).
pub fn status_from_sums(
    def: &SloDef,
    ranges: &[(i64, i64)],
    sums: &[(u64, u64)],
    effective_threshold: Option<f64>,
    now: i64,
) -> SloStatus {
    let replayer = Replayer::new(ranges, sums);
    status_at(def, &replayer, effective_threshold, now)
}

/// An engine's part of a status summed over many: the (counted, total) sums over the
/// asked ranges, and the histogram bound its latency SLI counts at.
pub type RangeSums = (Vec<(u64, u64)>, Option<f64>);

impl Engine {
    /// The (counted, total) sums over `ranges` of `tenant`'s SLO `name` as this engine
    /// holds them, and the histogram bound its latency SLI counts at: this engine's part
    /// of a status summed over many engines ([`status_from_sums`]).
    pub fn range_sums(&self, tenant: &str, name: &str, ranges: &[(i64, i64)]) -> Result<RangeSums> {
        let set = self.current();
        let entry = set.entry(tenant, name)?;
        let ring = entry.ring.lock().unwrap_or_else(|e| e.into_inner());
        let sums = ranges.iter().map(|&(lo, hi)| ring.range(lo, hi)).collect();
        Ok((sums, threshold_of(&entry.effective_threshold)))
    }

    /// Each group's (labels, sums over `ranges`) of `tenant`'s SLO `name`: this engine's
    /// part of the groups' statuses summed over many ([`group_statuses_from_sums`]).
    pub fn group_range_sums(
        &self,
        tenant: &str,
        name: &str,
        ranges: &[(i64, i64)],
    ) -> Result<Vec<GroupSums>> {
        let set = self.current();
        let entry = set.entry(tenant, name)?;
        let groups = entry.groups.lock().unwrap_or_else(|e| e.into_inner());
        Ok(groups
            .rings
            .iter()
            .enumerate()
            .map(|(id, ring)| {
                let sums = ranges.iter().map(|&(lo, hi)| ring.range(lo, hi)).collect();
                (group_labels(&entry.def, &groups, id), sums)
            })
            .collect())
    }

    /// `status` with whether a maintenance window silences it at `now`.
    pub fn in_maintenance_at(&self, status: SloStatus, now: i64) -> SloStatus {
        self.with_maintenance(status, now)
    }
}
