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

const MINUTES_PER_HOUR: i64 = 60;

/// How many minutes a ring keeps: the horizon behind the clock, room for events dated
/// ahead of it, and how much of it is kept minute by minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSize {
    /// Minutes behind (and including) the clock's minute that a window may read.
    pub horizon: u32,
    /// Minutes ahead of the clock an event may be dated (`limits.max_future`, rounded
    /// up, and one more for the minute boundary).
    pub future: u32,
    /// Minutes behind the newest one kept one by one; older minutes are kept as hour
    /// sums, and the minutes of an old hour a window's edge cuts are loaded into
    /// [pages](MinuteRing::install_page) from storage. `None` keeps every minute.
    pub dense: Option<u32>,
}

/// The minutes of one old hour, loaded from storage for a window's edge.
#[derive(Debug, Clone)]
struct Page {
    hour: i64,
    minutes: Box<[[u32; 2]; 60]>,
}

/// Good and total event counts over the last `horizon` minutes: the recent minutes one
/// by one, every hour as its sum, and the minutes of the old hours that windows' edges
/// cut.
///
/// Minutes are whole minutes since the Unix epoch. A ring takes the events of every
/// hour its horizon touches (events of the part of the oldest hour before the horizon
/// are in no window, but keep that hour's sum whole, as storage has it). It is
/// allocated on first use and costs 8 bytes per minute kept one by one (two `u32`s; a
/// minute's count saturates at `u32::MAX`, 71 million events per second for one SLO),
/// 16 bytes per hour of the horizon, and 480 bytes per page. A window sum costs at most
/// two partial hours of minutes and one lookup per whole hour (a 30-day window: under
/// 840 reads instead of 43,200).
///
/// With [`RingSize::dense`] set, a 30-day ring holds 26 hours of minutes (12.5 KiB),
/// 723 hour sums (11.3 KiB) and the pages of the 3-day and 30-day windows' edge hours:
/// about 26 KiB instead of 357. A window whose edge hour has no page (storage could not
/// be read yet) counts that hour whole and says so in [`MinuteRing::take_estimates`].
#[derive(Debug, Clone)]
pub struct MinuteRing {
    capacity: usize,
    /// Minutes behind the clock's minute still accepted (at most `capacity`).
    horizon: usize,
    /// Minutes kept one by one, behind and including the newest.
    dense: usize,
    /// The newest minute written, `None` before the first write.
    head: Option<i64>,
    /// (good, total) per minute slot (`minute mod dense`), side by side.
    minutes: Vec<[u32; 2]>,
    /// (good, total) per hour (slot `hour mod hours.len()`): every minute of the hour.
    hours: Vec<[u64; 2]>,
    /// Minute detail of old hours a window's edge cuts.
    pages: Vec<Page>,
    /// Window sums answered from an hour without its minutes, since last taken.
    estimates: std::cell::Cell<u64>,
}

impl MinuteRing {
    /// A ring covering `capacity` minutes (at least one), every one kept, with no room
    /// for the future.
    pub fn new(capacity: u32) -> Self {
        Self::sized(RingSize {
            horizon: capacity,
            future: 0,
            dense: None,
        })
    }

    /// A ring holding `size.horizon` minutes behind the clock and `size.future` ahead
    /// of it: an event dated ahead never pushes out a minute the horizon still holds.
    pub fn sized(size: RingSize) -> Self {
        let horizon = size.horizon.max(1) as usize;
        let capacity = horizon + size.future as usize;
        // Every minute of every hour held, when all are kept; otherwise the recent ones
        // (never fewer than two hours, so a window's newest partial hour is always here).
        let all = capacity + MINUTES_PER_HOUR as usize;
        let dense = match size.dense {
            None => all,
            Some(d) => (d as usize + size.future as usize)
                .max(2 * MINUTES_PER_HOUR as usize)
                .min(all),
        };
        Self {
            capacity,
            horizon,
            dense,
            head: None,
            minutes: Vec::new(),
            hours: Vec::new(),
            pages: Vec::new(),
            estimates: std::cell::Cell::new(0),
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
            + self.pages.capacity() * std::mem::size_of::<Page>()
            + self.pages.len() * std::mem::size_of::<[[u32; 2]; 60]>()
    }

    /// Hour slots: more than the hours the held minutes can touch, so no two held hours
    /// share a slot.
    fn hour_slots(&self) -> usize {
        self.capacity / MINUTES_PER_HOUR as usize + 3
    }

    fn slot(&self, minute: i64) -> usize {
        minute.rem_euclid(self.dense as i64) as usize
    }

    fn hour_slot(&self, hour: i64) -> usize {
        hour.rem_euclid(self.hours.len() as i64) as usize
    }

    /// The first minute of the oldest hour held when `newest` is the newest minute.
    fn held_from(&self, newest: i64) -> i64 {
        hour_of(newest - self.capacity as i64 + 1) * MINUTES_PER_HOUR
    }

    /// Adds counts to `minute`. `now_minute` decides what is too old: anything before
    /// the hour of `now_minute - horizon + 1` (or no longer held because minutes
    /// further ahead than the ring's room for the future were added).
    pub fn add(&mut self, minute: i64, good: u64, total: u64, now_minute: i64) -> AddOutcome {
        let newest = self.head.map_or(now_minute, |h| h.max(now_minute));
        let horizon_from = hour_of(now_minute - self.horizon as i64 + 1) * MINUTES_PER_HOUR;
        if minute < horizon_from || minute < self.held_from(newest) {
            return AddOutcome::TooOld;
        }
        match self.head {
            None => {
                self.minutes = vec![[0; 2]; self.dense];
                self.hours = vec![[0; 2]; self.hour_slots()];
                self.head = Some(minute);
            }
            Some(head) if minute > head => self.advance(head, minute),
            Some(_) => {}
        }
        let head = self.head.unwrap_or(minute);
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        // What the minute holds grows by the counts, to at most u32::MAX; the hour grows
        // by what the minute did, so that it always sums its minutes.
        let add = |c: &mut [u32; 2]| {
            let before = *c;
            c[0] = c[0].saturating_add(sat(good));
            c[1] = c[1].saturating_add(sat(total));
            [c[0] - before[0], c[1] - before[1]]
        };
        let mut grown = None;
        if minute > head - self.dense as i64 {
            let s = self.slot(minute);
            grown = Some(add(&mut self.minutes[s]));
        }
        let hour = hour_of(minute);
        if let Some(p) = self.pages.iter_mut().find(|p| p.hour == hour) {
            let paged = add(&mut p.minutes[minute.rem_euclid(MINUTES_PER_HOUR) as usize]);
            grown.get_or_insert(paged);
        }
        let [g, t] = grown.unwrap_or([sat(good), sat(total)]);
        let h = self.hour_slot(hour);
        self.hours[h][0] += u64::from(g);
        self.hours[h][1] += u64::from(t);
        AddOutcome::Added
    }

    /// Moves the newest minute from `head` to `minute`: the slots of the minutes and
    /// hours it passes held the ones a whole ring before them.
    fn advance(&mut self, head: i64, minute: i64) {
        if minute - head >= self.dense as i64 {
            self.minutes.fill([0; 2]);
        } else {
            for m in head + 1..=minute {
                let s = self.slot(m);
                self.minutes[s] = [0; 2];
            }
        }
        let (from, to) = (hour_of(head), hour_of(minute));
        if to - from >= self.hours.len() as i64 {
            self.hours.fill([0; 2]);
        } else {
            for h in from + 1..=to {
                let s = self.hour_slot(h);
                self.hours[s] = [0; 2];
            }
        }
        let held = hour_of(self.held_from(minute));
        self.pages.retain(|p| p.hour >= held);
        self.head = Some(minute);
    }

    /// The oldest minute the ring holds one by one, given the clock's `now_minute`:
    /// older ones are read from storage.
    pub fn oldest(&self, now_minute: i64) -> i64 {
        self.head.map_or(now_minute, |h| h.max(now_minute)) - self.dense as i64 + 1
    }

    /// The (good, total) of `minute`, if the ring has its detail (`head` is the newest
    /// minute written; `minute` is held).
    fn minute(&self, head: i64, minute: i64) -> Option<[u32; 2]> {
        if minute > head {
            return Some([0; 2]);
        }
        if minute > head - self.dense as i64 {
            return Some(self.minutes[self.slot(minute)]);
        }
        let hour = hour_of(minute);
        self.pages
            .iter()
            .find(|p| p.hour == hour)
            .map(|p| p.minutes[minute.rem_euclid(MINUTES_PER_HOUR) as usize])
    }

    /// The raw (good, total) counts of minutes `lo..=hi`, zero where none are held one
    /// by one.
    pub fn minutes(&self, lo: i64, hi: i64) -> Vec<(u64, u64)> {
        (lo..=hi)
            .map(|m| match self.head {
                Some(head) if m <= head && m > head - self.dense as i64 => {
                    let [g, t] = self.minutes[self.slot(m)];
                    (u64::from(g), u64::from(t))
                }
                _ => (0, 0),
            })
            .collect()
    }

    /// The sums of minutes `lo..=hi`, all held, within one or two neighbouring hours;
    /// the sums of the hours they touch where a minute's detail is missing.
    fn minute_sum(&self, head: i64, lo: i64, hi: i64) -> (u64, u64) {
        let (mut good, mut total) = (0u64, 0u64);
        for m in lo..=hi {
            let Some([g, t]) = self.minute(head, m) else {
                let whole = (hour_of(lo)..=hour_of(hi)).fold((0, 0), |(g, t), h| {
                    let [hg, ht] = self.hours[self.hour_slot(h)];
                    (g + hg, t + ht)
                });
                // An hour with no events needs no minutes to be exact.
                if whole != (0, 0) {
                    self.estimates.set(self.estimates.get() + 1);
                }
                return whole;
            };
            good += u64::from(g);
            total += u64::from(t);
        }
        (good, total)
    }

    /// The sums of (good, total) over minutes `lo..=hi`: whole hours from the hour sums,
    /// the partial hours at both ends minute by minute.
    pub fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        let Some(head) = self.head else {
            return (0, 0);
        };
        let lo = lo.max(self.held_from(head));
        let hi = hi.min(head);
        if hi < lo {
            return (0, 0);
        }
        // The first and last minutes of the whole hours inside lo..=hi.
        let first_whole = hour_of(lo + MINUTES_PER_HOUR - 1) * MINUTES_PER_HOUR;
        let end_whole = hour_of(hi + 1) * MINUTES_PER_HOUR;
        if end_whole - first_whole < MINUTES_PER_HOUR {
            // No whole hour inside: lo and hi are in one hour or in two neighbours.
            return self.minute_sum(head, lo, hi);
        }
        let (mut good, mut total) = if lo < first_whole {
            self.minute_sum(head, lo, first_whole - 1)
        } else {
            (0, 0)
        };
        if end_whole <= hi {
            let (g, t) = self.minute_sum(head, end_whole, hi);
            good += g;
            total += t;
        }
        let mut hour = first_whole;
        while hour < end_whole {
            let [g, t] = self.hours[self.hour_slot(hour_of(hour))];
            good += g;
            total += t;
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

    /// The old hours whose minutes windows of `windows` (lengths in minutes) ending at
    /// `now_minute` need within the next hour and the ring lacks, oldest first. Pages
    /// no window needs any more are dropped.
    pub fn pages_wanted(&mut self, now_minute: i64, windows: &[u32]) -> Vec<i64> {
        let Some(head) = self.head else {
            self.pages = Vec::new();
            return Vec::new();
        };
        let newest = head.max(now_minute);
        let (held, dense_from) = (self.held_from(newest), head - self.dense as i64 + 1);
        let mut wanted: Vec<i64> = Vec::new();
        for &w in windows {
            let lo = (now_minute - i64::from(w) + 1).max(held);
            for hour in [hour_of(lo), hour_of(lo) + 1] {
                // An hour with events and a minute older than the dense ones (an hour
                // without events is exact without its minutes).
                if hour * MINUTES_PER_HOUR < dense_from
                    && self.hours[self.hour_slot(hour)] != [0; 2]
                    && !wanted.contains(&hour)
                {
                    wanted.push(hour);
                }
            }
        }
        self.pages.retain(|p| wanted.contains(&p.hour));
        wanted.retain(|h| !self.pages.iter().any(|p| p.hour == *h));
        wanted.sort_unstable();
        wanted
    }

    /// Installs the minutes of `hour` read from storage, if they add up to the hour's
    /// sum (storage has every event the ring counted in it); otherwise (some are still
    /// on their way to storage) leaves the hour without a page and returns false.
    pub fn install_page(&mut self, hour: i64, counts: &[[u64; 2]; 60]) -> bool {
        let Some(head) = self.head else {
            return false;
        };
        if hour < hour_of(self.held_from(head)) || hour > hour_of(head) {
            return false;
        }
        let sum = counts
            .iter()
            .fold([0u64; 2], |[g, t], c| [g + c[0], t + c[1]]);
        if sum != self.hours[self.hour_slot(hour)] {
            return false;
        }
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let mut minutes = Box::new([[0u32; 2]; 60]);
        for (m, c) in minutes.iter_mut().zip(counts) {
            *m = [sat(c[0]), sat(c[1])];
        }
        self.pages.retain(|p| p.hour != hour);
        self.pages.push(Page { hour, minutes });
        true
    }

    /// How many window sums counted an edge hour whole for want of its page, since the
    /// last call.
    pub fn take_estimates(&self) -> u64 {
        self.estimates.replace(0)
    }

    /// Frees the ring's memory once nothing it holds is within the horizon of
    /// `now_minute` (it is allocated again by the next event).
    pub fn release_if_idle(&mut self, now_minute: i64) {
        if self
            .head
            .is_some_and(|h| h < hour_of(now_minute - self.horizon as i64 + 1) * MINUTES_PER_HOUR)
        {
            self.head = None;
            self.minutes = Vec::new();
            self.hours = Vec::new();
            self.pages = Vec::new();
        }
    }
}

fn hour_of(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_HOUR)
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
        // Ground truth: one event a minute for the ten minutes of the window, which
        // starts on an hour (minute 1200).
        let size = RingSize {
            horizon: 10,
            future: 6,
            dense: None,
        };
        for ahead in 1..=5i64 {
            let mut r = MinuteRing::sized(size);
            let now = 1209;
            for m in 1200..=now {
                r.add(m, 1, 1, now);
            }
            assert_eq!(r.add(now + ahead, 1, 1, now), AddOutcome::Added);
            // The window at now still holds all ten, and a late event for its oldest
            // minute is still taken.
            assert_eq!(r.sums(now, &[10]), vec![(10, 10)], "{ahead} ahead");
            assert_eq!(r.add(1200, 1, 1, now), AddOutcome::Added);
            assert_eq!(r.sums(now, &[10]), vec![(11, 11)], "{ahead} ahead");
            assert_eq!(r.add(1199, 1, 1, now), AddOutcome::TooOld);
            // When its minute comes, the event counts once, in it.
            let then = now + ahead;
            let want = (1200 + ahead..=now).count() as u64 + 1;
            assert_eq!(r.sums(then, &[10]), vec![(want, want)], "{ahead} ahead");
            assert_eq!(r.minutes(then, then), vec![(1, 1)]);
        }
    }

    #[test]
    fn counts_past_a_minutes_range_saturate_and_hours_still_sum_their_minutes() {
        // Found by the otlp_metrics fuzz target: a counter's delta near u64::MAX
        // overflowed the hour's sum.
        let mut r = MinuteRing::new(180);
        let max = u64::from(u32::MAX);
        assert_eq!(r.add(120, u64::MAX, u64::MAX, 125), AddOutcome::Added);
        assert_eq!(r.add(120, u64::MAX, u64::MAX, 125), AddOutcome::Added);
        assert_eq!(r.add(121, 1, 2, 125), AddOutcome::Added);
        assert_eq!(r.minutes(120, 121), vec![(max, max), (1, 2)]);
        // The hour's sum, read for a window past the minutes held one by one, is theirs.
        let h = r.hour_slot(2);
        assert_eq!(r.hours[h], [max + 1, max + 2]);
        assert_eq!(r.sums(125, &[6]), vec![(max + 1, max + 2)]);
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
    fn the_oldest_hour_is_taken_whole_and_older_ones_refused() {
        // A 10-minute horizon at minute 672 reaches back to 663, in the hour of 660.
        let mut r = MinuteRing::new(10);
        r.add(665, 5, 5, 665);
        r.add(672, 1, 1, 672);
        assert_eq!(r.sums(672, &[10]), vec![(6, 6)]);
        // Before the horizon but in its oldest hour: taken, in no window.
        assert_eq!(r.add(661, 1, 1, 672), AddOutcome::Added);
        assert_eq!(r.sums(672, &[10]), vec![(6, 6)]);
        assert_eq!(r.range(600, 700), (7, 7));
        // The hour before: refused.
        assert_eq!(r.add(659, 1, 1, 672), AddOutcome::TooOld);
        r.add(675, 1, 1, 675); // 666..=675 now: minute 665 left the window
        assert_eq!(r.sums(675, &[10]), vec![(2, 2)]);
        // A jump past the whole horizon clears it.
        r.add(5000, 1, 1, 5000);
        assert_eq!(r.sums(5000, &[10]), vec![(1, 1)]);
        assert_eq!(r.range(0, 5000), (1, 1));
    }

    #[test]
    fn first_write_too_old_for_the_clock_is_refused() {
        let mut r = MinuteRing::new(10);
        assert_eq!(r.add(50, 1, 1, 100), AddOutcome::TooOld);
        assert_eq!(r.sums(100, &[10]), vec![(0, 0)]);
        assert_eq!(r.heap_bytes(), 0);
    }

    /// A 30-day ring with 26 hours of minutes, and a minute boundary to start from.
    fn paged() -> MinuteRing {
        MinuteRing::sized(RingSize {
            horizon: 30 * 1440,
            future: 6,
            dense: Some(26 * 60),
        })
    }

    #[test]
    fn an_edge_hour_is_read_from_its_page_and_counted_whole_without_one() {
        let mut r = paged();
        let now = 1_000_000 * 60 + 25; // 25 minutes into an hour
        // Ground truth: 1 event a minute for 4 days, 2 bad ones 3 days ago.
        let mut stored = std::collections::BTreeMap::new();
        for m in now - 4 * 1440..=now {
            r.add(m, 1, 1, now);
            *stored.entry(m).or_insert([0u64; 2]) = [1, 1];
        }
        let edge = now - 4320 + 1; // the 3-day window's first minute
        r.add(edge - 1, 0, 2, now);
        stored.get_mut(&(edge - 1)).unwrap()[1] += 2;
        // The 3-day edge hour and the next one are wanted; nothing younger.
        let hour = edge.div_euclid(60);
        assert_eq!(r.pages_wanted(now, &[60, 1440, 4320]), vec![hour, hour + 1]);
        // Without its page, the edge hour counts whole (and says so).
        // (The edge is 26 minutes into its hour: 26 minutes and 2 bad before it.)
        let whole = 4320 + 26 + 2;
        assert_eq!(r.sums(now, &[4320]), vec![(whole - 2, whole)]);
        assert_eq!(r.take_estimates(), 1);
        let page = |h: i64| {
            let mut p = [[0u64; 2]; 60];
            for (i, c) in p.iter_mut().enumerate() {
                *c = stored
                    .get(&(h * 60 + i as i64))
                    .copied()
                    .unwrap_or_default();
            }
            p
        };
        // A page short of an event the ring counted is refused.
        let mut short = page(hour);
        short[3][1] -= 1;
        assert!(!r.install_page(hour, &short));
        assert!(r.install_page(hour, &page(hour)));
        assert!(r.install_page(hour + 1, &page(hour + 1)));
        assert_eq!(r.pages_wanted(now, &[60, 1440, 4320]), Vec::<i64>::new());
        assert_eq!(
            r.sums(now, &[4320, 1440, 60]),
            vec![(4320, 4320), (1440, 1440), (60, 60)]
        );
        assert_eq!(r.take_estimates(), 0);
        // A late event in a paged hour lands in the page too.
        r.add(edge + 1, 0, 1, now);
        assert_eq!(r.sums(now, &[4320]), vec![(4320, 4321)]);
        // 26 hours of minutes, 723 hours, and two pages (in room for four).
        assert_eq!(
            r.heap_bytes(),
            (26 * 60 + 6) * 8 + (43206 / 60 + 3) * 16 + 4 * 16 + 2 * 480
        );
        assert!(r.heap_bytes() <= 32 * 1024);
        // An hour later the page that was next is the edge's, and the old one is gone.
        let later = now + 60;
        r.add(later, 1, 1, later);
        assert_eq!(r.pages_wanted(later, &[4320]), vec![hour + 2]);
        // (No events in the 59 minutes between now and later.)
        assert_eq!(r.sums(later, &[4320]), vec![(4261, 4261)]);
        assert_eq!(r.take_estimates(), 0);
    }

    #[test]
    fn an_idle_ring_gives_its_memory_back() {
        let mut r = paged();
        r.add(100_000, 1, 1, 100_000);
        r.release_if_idle(100_000 + 30 * 1440 - 1);
        assert!(r.heap_bytes() > 0);
        // Once the horizon's oldest hour is past the event, nothing is held.
        r.release_if_idle(100_000 + 30 * 1440 + 60);
        assert_eq!(r.heap_bytes(), 0);
        assert_eq!(r.sums(100_000 + 30 * 1440 + 60, &[43200]), vec![(0, 0)]);
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
                // The ring holds the hours of the horizon before its newest minute.
                let head = kept.iter().map(|e| e.0).max().unwrap_or(lo);
                let held = (head - i64::from(cap) + 1).div_euclid(60) * 60;
                let want = kept.iter()
                    .filter(|(m, _, _)| *m >= lo.max(held) && *m <= lo + i64::from(w))
                    .fold((0, 0), |(g, t), (_, eg, et)| (g + eg, t + et));
                prop_assert_eq!(ring.range(lo, lo + i64::from(w)), want, "range {}..={}", lo, lo + i64::from(w));
            }
            prop_assert_eq!(ring.take_estimates(), 0);
        }

        #[test]
        fn paged_ring_sums_equal_brute_force(
            dense in 1u32..300,
            events in prop::collection::vec((0i64..90, 0i64..2000, any::<bool>(), 1u64..5), 0..200),
            windows in prop::collection::vec(1u32..3000, 1..6),
        ) {
            // A 50-hour horizon with a few hours of minutes; storage holds every event
            // taken, as the engine's flushes write them.
            let size = RingSize { horizon: 3000, future: 6, dense: Some(dense) };
            let mut ring = MinuteRing::sized(size);
            let mut stored: std::collections::HashMap<i64, [u64; 2]> = Default::default();
            let mut clock = 100_000i64;
            for (advance, late, good, n) in events {
                clock += advance;
                let minute = clock - late;
                let g = if good { n } else { 0 };
                if ring.add(minute, g, n, clock) == AddOutcome::Added {
                    let c = stored.entry(minute).or_default();
                    c[0] += g;
                    c[1] += n;
                } else {
                    prop_assert!(minute <= clock - 3000);
                }
                // Pages are loaded as the windows ask for them, between events.
                for hour in ring.pages_wanted(clock, &windows) {
                    let mut page = [[0u64; 2]; 60];
                    for (i, c) in page.iter_mut().enumerate() {
                        *c = stored.get(&(hour * 60 + i as i64)).copied().unwrap_or_default();
                    }
                    prop_assert!(ring.install_page(hour, &page));
                }
            }
            for (i, &w) in windows.iter().enumerate() {
                let lo = clock - i64::from(w);
                let want = stored
                    .iter()
                    .filter(|(m, _)| **m > lo && **m <= clock)
                    .fold((0, 0), |(g, t), (_, c)| (g + c[0], t + c[1]));
                prop_assert_eq!(ring.sums(clock, &windows)[i], want, "window {} at {}", w, clock);
            }
            prop_assert_eq!(ring.take_estimates(), 0);
        }
    }
}
