//! Per-minute good/total counts over a rolling horizon, and the window sums read from them.

/// Per-minute (good, total) counts that window sums can be read from: the live
/// [`MinuteRing`], or a [`MinuteSeries`] loaded for a query.
pub trait MinuteCounts {
    /// The sums of (good, total) over minutes `lo..=hi`.
    fn range(&self, lo: i64, hi: i64) -> (u64, u64);

    /// Sums of (good, total) over windows ending at `now_minute` (inclusive), one per
    /// entry of `windows` (lengths in minutes, ascending).
    fn sums(&self, now_minute: i64, windows: &[u32]) -> Vec<(u64, u64)> {
        windows
            .iter()
            .map(|&w| self.range(now_minute - i64::from(w) + 1, now_minute))
            .collect()
    }
}

/// Counts of a contiguous run of minutes held as prefix sums: any window sum costs two
/// lookups, which is what a `query_range` over thousands of steps needs.
#[derive(Debug, Clone, Default)]
pub struct MinuteSeries {
    first: i64,
    /// `good[i]` = sum of the first `i` minutes' good counts (`len + 1` entries).
    good: Vec<u64>,
    total: Vec<u64>,
}

impl MinuteSeries {
    /// A series starting at minute `first` with per-minute (good, total) `counts`.
    pub fn new(first: i64, counts: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let (mut good, mut total) = (vec![0u64], vec![0u64]);
        let (mut g, mut t) = (0u64, 0u64);
        for (cg, ct) in counts {
            g += cg;
            t += ct;
            good.push(g);
            total.push(t);
        }
        Self { first, good, total }
    }

    /// The first minute held.
    pub fn first(&self) -> i64 {
        self.first
    }

    /// The last minute held (`first - 1` when empty).
    pub fn last(&self) -> i64 {
        self.first + self.good.len() as i64 - 2
    }

    /// The cumulative (good, total) from the first minute up to `minute` inclusive.
    pub fn cumulative(&self, minute: i64) -> (u64, u64) {
        let i = (minute - self.first + 1).clamp(0, self.good.len() as i64 - 1) as usize;
        (self.good[i], self.total[i])
    }
}

impl MinuteCounts for MinuteSeries {
    fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        if hi < lo {
            return (0, 0);
        }
        let (g1, t1) = self.cumulative(hi);
        let (g0, t0) = self.cumulative(lo - 1);
        (g1 - g0, t1 - t0)
    }
}

/// What happened to counts offered to a [`MinuteRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Counted.
    Added,
    /// Older than the ring's horizon: not counted.
    TooOld,
}

/// Good and total event counts for each of the last `capacity` minutes, with the sums of
/// each hour beside them.
///
/// Minutes are whole minutes since the Unix epoch. The ring is allocated on first use and
/// costs 8 bytes per minute of horizon (two `u32`s; a count saturates at `u32::MAX` per
/// minute, 71 million events per second for one SLO), plus 16 bytes per hour for the
/// hour sums, which make a window sum cost at most two partial hours of minutes and one
/// lookup per whole hour (a 30-day window: under 840 reads instead of 43,200).
#[derive(Debug, Clone)]
pub struct MinuteRing {
    capacity: usize,
    /// Minutes behind the clock's minute still accepted (at most `capacity`).
    horizon: usize,
    /// The newest minute written, `None` before the first write.
    head: Option<i64>,
    /// (good, total) per minute slot, side by side: adding to a minute touches one
    /// cache line of minutes and one of hours.
    minutes: Vec<[u32; 2]>,
    /// (good, total) sums of the minutes held, per hour (slot `hour mod hours.len()`).
    hours: Vec<[u64; 2]>,
}

const MINUTES_PER_HOUR: i64 = 60;

/// How many minutes a ring keeps: the horizon behind the clock, and room for events
/// dated ahead of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSize {
    /// Minutes behind (and including) the clock's minute that a window may read.
    pub horizon: u32,
    /// Minutes ahead of the clock an event may be dated (`limits.max_future`, rounded
    /// up, and one more for the minute boundary).
    pub future: u32,
}

impl MinuteRing {
    /// A ring covering `capacity` minutes (at least one), with no room for the future.
    pub fn new(capacity: u32) -> Self {
        Self::sized(RingSize {
            horizon: capacity,
            future: 0,
        })
    }

    /// A ring holding `size.horizon` minutes behind the clock and `size.future` ahead
    /// of it: an event dated ahead never pushes out a minute the horizon still holds.
    pub fn sized(size: RingSize) -> Self {
        let horizon = size.horizon.max(1);
        Self {
            capacity: (horizon + size.future) as usize,
            horizon: horizon as usize,
            head: None,
            minutes: Vec::new(),
            hours: Vec::new(),
        }
    }

    /// How many minutes the ring covers.
    pub fn capacity(&self) -> u32 {
        self.capacity as u32
    }

    /// Bytes of heap the ring holds.
    pub fn heap_bytes(&self) -> usize {
        self.minutes.capacity() * std::mem::size_of::<[u32; 2]>()
            + self.hours.capacity() * std::mem::size_of::<[u64; 2]>()
    }

    /// Hour slots: more than the hours the held minutes can touch, so no two held hours
    /// share a slot, and an hour's slot is empty again before it is reused.
    fn hours(capacity: usize) -> usize {
        capacity / MINUTES_PER_HOUR as usize + 2
    }

    fn slot(&self, minute: i64) -> usize {
        minute.rem_euclid(self.capacity as i64) as usize
    }

    fn hour_slot(&self, minute: i64) -> usize {
        minute
            .div_euclid(MINUTES_PER_HOUR)
            .rem_euclid(self.hours.len() as i64) as usize
    }

    /// Adds counts to `minute`. `now_minute` decides what is too old: anything at or
    /// before `now_minute - horizon` (or no longer held because minutes further ahead
    /// than the ring's room for the future were added).
    pub fn add(&mut self, minute: i64, good: u64, total: u64, now_minute: i64) -> AddOutcome {
        let cap = self.capacity as i64;
        let newest = self.head.map_or(now_minute, |h| h.max(now_minute));
        if minute <= now_minute - self.horizon as i64 || minute <= newest - cap {
            return AddOutcome::TooOld;
        }
        match self.head {
            None => {
                self.minutes = vec![[0; 2]; self.capacity];
                self.hours = vec![[0; 2]; Self::hours(self.capacity)];
                self.head = Some(minute);
            }
            Some(head) if minute > head => {
                if minute - head >= cap {
                    self.minutes.fill([0; 2]);
                    self.hours.fill([0; 2]);
                } else {
                    // Each new minute's slot held the minute one horizon before it.
                    for m in head + 1..=minute {
                        let (s, h) = (self.slot(m), self.hour_slot(m - cap));
                        let [g, t] = std::mem::take(&mut self.minutes[s]);
                        self.hours[h][0] -= u64::from(g);
                        self.hours[h][1] -= u64::from(t);
                    }
                }
                self.head = Some(minute);
            }
            Some(_) => {}
        }
        let (s, h) = (self.slot(minute), self.hour_slot(minute));
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let [g0, t0] = self.minutes[s];
        let (g1, t1) = (g0.saturating_add(sat(good)), t0.saturating_add(sat(total)));
        self.minutes[s] = [g1, t1];
        self.hours[h][0] += u64::from(g1 - g0);
        self.hours[h][1] += u64::from(t1 - t0);
        AddOutcome::Added
    }

    /// The oldest minute the ring can still hold, given the clock's `now_minute`.
    pub fn oldest(&self, now_minute: i64) -> i64 {
        self.head.map_or(now_minute, |h| h.max(now_minute)) - self.capacity as i64 + 1
    }

    /// The raw (good, total) counts of minutes `lo..=hi`, zero where none are held.
    pub fn minutes(&self, lo: i64, hi: i64) -> Vec<(u64, u64)> {
        (lo..=hi)
            .map(|m| match self.head {
                Some(head) if m <= head && m > head - self.capacity as i64 => {
                    let s = self.slot(m);
                    (u64::from(self.minutes[s][0]), u64::from(self.minutes[s][1]))
                }
                _ => (0, 0),
            })
            .collect()
    }

    /// The sums of minutes `lo..=hi`, all of them held.
    fn minute_sum(&self, lo: i64, hi: i64) -> (u64, u64) {
        let (mut good, mut total) = (0u64, 0u64);
        for m in lo..=hi {
            let s = self.slot(m);
            good += u64::from(self.minutes[s][0]);
            total += u64::from(self.minutes[s][1]);
        }
        (good, total)
    }

    /// The sums of (good, total) over minutes `lo..=hi`: whole hours from the hour sums,
    /// the partial hours at both ends minute by minute.
    pub fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        let Some(head) = self.head else {
            return (0, 0);
        };
        let lo = lo.max(head - self.capacity as i64 + 1);
        let hi = hi.min(head);
        if hi < lo {
            return (0, 0);
        }
        // The first and last minutes of the whole hours inside lo..=hi.
        let first_whole = lo.div_euclid(MINUTES_PER_HOUR) * MINUTES_PER_HOUR
            + if lo.rem_euclid(MINUTES_PER_HOUR) == 0 {
                0
            } else {
                MINUTES_PER_HOUR
            };
        let end_whole = (hi + 1).div_euclid(MINUTES_PER_HOUR) * MINUTES_PER_HOUR;
        if end_whole - first_whole < MINUTES_PER_HOUR {
            return self.minute_sum(lo, hi);
        }
        let (mut good, mut total) = self.minute_sum(lo, first_whole - 1);
        let (g, t) = self.minute_sum(end_whole, hi);
        good += g;
        total += t;
        let mut hour = first_whole;
        while hour < end_whole {
            let h = self.hour_slot(hour);
            good += self.hours[h][0];
            total += self.hours[h][1];
            hour += MINUTES_PER_HOUR;
        }
        (good, total)
    }

    /// Sums of (good, total) over windows ending at `now_minute` (inclusive), one per
    /// entry of `windows` (lengths in minutes). A window of `w` minutes covers minutes
    /// `now_minute - w + 1 ..= now_minute`.
    pub fn sums(&self, now_minute: i64, windows: &[u32]) -> Vec<(u64, u64)> {
        windows
            .iter()
            .map(|&w| self.range(now_minute - i64::from(w) + 1, now_minute))
            .collect()
    }
}

impl MinuteCounts for MinuteRing {
    fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        MinuteRing::range(self, lo, hi)
    }

    fn sums(&self, now_minute: i64, windows: &[u32]) -> Vec<(u64, u64)> {
        MinuteRing::sums(self, now_minute, windows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_sums_match_the_ring() {
        let mut r = MinuteRing::new(100);
        for m in 1000..1050 {
            r.add(m, (m % 3) as u64, 3, 1049);
        }
        let s = MinuteSeries::new(990, r.minutes(990, 1049));
        assert_eq!(s.last(), 1049);
        for w in [1u32, 5, 30, 60, 100] {
            assert_eq!(
                MinuteCounts::sums(&s, 1049, &[w]),
                MinuteCounts::sums(&r, 1049, &[w]),
                "{w}"
            );
        }
        assert_eq!(s.range(1040, 1030), (0, 0));
        assert_eq!(s.range(2000, 3000), (0, 0));
        assert_eq!(s.cumulative(1001), (1 + 2, 6));
    }

    #[test]
    fn events_dated_ahead_never_push_out_a_minute_the_window_holds() {
        // Ground truth: one event a minute for the ten minutes of the window.
        let size = RingSize {
            horizon: 10,
            future: 6,
        };
        for ahead in 1..=5i64 {
            let mut r = MinuteRing::sized(size);
            let now = 1009;
            for m in 1000..=now {
                r.add(m, 1, 1, now);
            }
            assert_eq!(r.add(now + ahead, 1, 1, now), AddOutcome::Added);
            // The window at now still holds all ten, and a late event for its oldest
            // minute is still taken.
            assert_eq!(r.sums(now, &[10]), vec![(10, 10)], "{ahead} ahead");
            assert_eq!(r.add(1000, 1, 1, now), AddOutcome::Added);
            assert_eq!(r.sums(now, &[10]), vec![(11, 11)], "{ahead} ahead");
            assert_eq!(r.add(999, 1, 1, now), AddOutcome::TooOld);
            // When its minute comes, the event counts once, in it.
            let then = now + ahead;
            let want = (1000 + ahead..=now).count() as u64 + 1;
            assert_eq!(r.sums(then, &[10]), vec![(want, want)], "{ahead} ahead");
            assert_eq!(r.minutes(then, then), vec![(1, 1)]);
        }
    }

    #[test]
    fn sums_cover_the_last_minutes_inclusive() {
        let mut r = MinuteRing::new(10);
        for m in 100..110 {
            assert_eq!(r.add(m, 1, 2, 109), AddOutcome::Added);
        }
        assert_eq!(r.sums(109, &[1, 5, 10]), vec![(1, 2), (5, 10), (10, 20)]);
        // Nothing was written after 109: at 111 the 5m window holds 107..=109 only.
        assert_eq!(r.sums(111, &[5]), vec![(3, 6)]);
        // Windows longer than the ring stop at its horizon.
        assert_eq!(r.sums(109, &[60]), vec![(10, 20)]);
    }

    #[test]
    fn old_minutes_are_evicted_and_late_data_refused() {
        let mut r = MinuteRing::new(10);
        r.add(100, 5, 5, 100);
        r.add(105, 1, 1, 105);
        // 100 is still inside the horizon (96..=105).
        assert_eq!(r.sums(105, &[10]), vec![(6, 6)]);
        r.add(112, 1, 1, 112); // horizon 103..=112 now: minute 100 is gone
        assert_eq!(r.sums(112, &[10]), vec![(2, 2)]);
        assert_eq!(r.add(102, 1, 1, 112), AddOutcome::TooOld);
        assert_eq!(r.add(103, 1, 1, 112), AddOutcome::Added);
        assert_eq!(r.sums(112, &[10]), vec![(3, 3)]);
        // A jump past the whole horizon clears it.
        r.add(500, 1, 1, 500);
        assert_eq!(r.sums(500, &[10]), vec![(1, 1)]);
    }

    #[test]
    fn first_write_too_old_for_the_clock_is_refused() {
        let mut r = MinuteRing::new(10);
        assert_eq!(r.add(90, 1, 1, 100), AddOutcome::TooOld);
        assert_eq!(r.sums(100, &[10]), vec![(0, 0)]);
        assert_eq!(r.heap_bytes(), 0);
    }
}

#[cfg(test)]
mod model_tests {
    //! The ring against a brute-force model: keep every event, sum by scanning.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn ring_sums_equal_brute_force(
            cap in 1u32..400,
            events in prop::collection::vec((-500i64..60, any::<bool>(), 1u64..5), 0..300),
            later in 0i64..300,
            windows in prop::collection::vec(1u32..200, 1..6),
        ) {
            let mut ring = MinuteRing::new(cap);
            let mut kept: Vec<(i64, u64, u64)> = Vec::new();
            let mut clock = 1_000i64;
            for (offset, good, n) in events {
                // Time moves forward; events may be late (or slightly early).
                clock += offset.rem_euclid(3);
                let minute = clock + offset.min(0) / 2 + offset.max(0) / 30;
                let now = clock.max(minute);
                clock = now;
                if ring.add(minute, if good { n } else { 0 }, n, now) == AddOutcome::Added {
                    kept.push((minute, if good { n } else { 0 }, n));
                } else {
                    // Refused only when older than every window the ring can answer.
                    prop_assert!(minute <= now - i64::from(cap));
                }
            }
            let query = clock + later;
            let mut windows: Vec<u32> = windows.into_iter().map(|w| w.min(cap)).collect();
            windows.sort_unstable();
            let got = ring.sums(query, &windows);
            for (i, &w) in windows.iter().enumerate() {
                let lo = query - i64::from(w);
                let want = kept
                    .iter()
                    .filter(|(m, _, _)| *m > lo && *m <= query)
                    .fold((0, 0), |(g, t), (_, eg, et)| (g + eg, t + et));
                prop_assert_eq!(got[i], want, "window {} at {}", w, query);
                // Any range, hours crossed or not.
                let lo = query - i64::from(w) - later;
                let want = kept
                    .iter()
                    .filter(|(m, _, _)| *m >= lo && *m <= lo + i64::from(w))
                    .fold((0, 0), |(g, t), (_, eg, et)| (g + eg, t + et));
                // The ring holds the horizon before its newest minute.
                let head = kept.iter().map(|e| e.0).max().unwrap_or(lo);
                let held = (head - i64::from(cap) + 1).max(lo);
                let want = if held > lo {
                    kept.iter()
                        .filter(|(m, _, _)| *m >= held && *m <= lo + i64::from(w))
                        .fold((0, 0), |(g, t), (_, eg, et)| (g + eg, t + et))
                } else {
                    want
                };
                prop_assert_eq!(ring.range(lo, lo + i64::from(w)), want, "range {}..={}", lo, lo + i64::from(w));
            }
        }
    }
}
