//! Paging old minutes in: the hours whose minutes windows' edges need, and the pages
//! storage reads for them.

use super::*;

/// The minutes of one hour as storage holds them, per (tenant, SLO, group): what
/// [`Engine::install_pages`] checks against its hour sums and installs.
#[derive(Debug)]
pub struct HourPages {
    hour: i64,
    counts: HashMap<(String, String, GroupKey), [[u64; 2]; 60]>,
}

impl HourPages {
    /// Empty pages of `hour` (hours since the Unix epoch).
    pub fn new(hour: i64) -> Self {
        Self {
            hour,
            counts: HashMap::new(),
        }
    }

    /// The hour, as hours since the Unix epoch.
    pub fn hour(&self) -> i64 {
        self.hour
    }

    /// The minutes of the hour, `minute_lo..=minute_hi`: what storage is read for.
    pub fn minutes(&self) -> (i64, i64) {
        (self.hour * 60, self.hour * 60 + 59)
    }

    /// Adds stored rows (deltas: several may hold one minute); rows of other hours are
    /// left out. `engine` says how each SLO counts (good or bad beside the total).
    pub fn add(&mut self, engine: &Engine, rows: impl IntoIterator<Item = MinuteRow>) {
        let set = engine.current();
        let (lo, hi) = self.minutes();
        for row in rows {
            if row.minute < lo || row.minute > hi {
                continue;
            }
            let key = (row.tenant, row.slo);
            let Some(e) = set.by_name.get(&key).map(|&i| &set.slos[i]) else {
                continue;
            };
            let x = e.def.counted().raw(&row.tally);
            let (tenant, slo) = key;
            let page = self
                .counts
                .entry((tenant, slo, row.group))
                .or_insert([[0; 2]; 60]);
            let c = &mut page[(row.minute - lo) as usize];
            c[0] += x;
            c[1] += row.tally.total;
        }
    }
}

/// What [`Engine::install_pages`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageStats {
    /// Pages installed.
    pub installed: u64,
    /// Pages whose minutes did not add up to the hour the engine holds (events on their
    /// way to storage): asked for again.
    pub refused: u64,
}

impl Engine {
    /// Every ring of every SLO: the SLO's, and each group's, with a function giving the
    /// labels of its group (empty for the SLO's own).
    fn each_ring(&self, mut f: impl FnMut(&SloEntry, &dyn Fn() -> GroupKey, &mut MinuteRing)) {
        let set = self.current();
        for e in &set.slos {
            let whole = || GroupKey::WHOLE;
            f(
                e,
                &whole,
                &mut e.ring.lock().unwrap_or_else(|p| p.into_inner()),
            );
            if e.def.group_by.is_empty() {
                continue;
            }
            let mut groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
            let Groups {
                keys,
                rings,
                overflow,
                ..
            } = &mut *groups;
            for (id, ring) in rings.iter_mut().enumerate() {
                let key = || GroupKey(labels_of(&e.def, keys, *overflow, id));
                f(e, &key, ring);
            }
        }
    }

    /// The hours (since the Unix epoch, oldest first) whose minutes some SLO's windows
    /// need within the hour and no ring holds yet: what storage should read and hand to
    /// [`Engine::install_pages`]. Pages no window needs any more are dropped, rings
    /// with nothing left in their horizon give their memory back, and the window sums
    /// answered without their edge's page since the last call are counted.
    pub fn pages_wanted(&self) -> Vec<i64> {
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let (mut hours, mut estimates, mut missing) = (Vec::new(), 0, 0u64);
        self.each_ring(|e, _, ring| {
            ring.release_if_idle(now_minute);
            estimates += ring.take_estimates();
            let wanted = ring.pages_wanted(now_minute, &status_windows(&e.def, now));
            missing += wanted.len() as u64;
            hours.extend(wanted);
        });
        hours.sort_unstable();
        hours.dedup();
        let s = &self.stats;
        s.window_edge_estimates
            .fetch_add(estimates, Ordering::Relaxed);
        s.window_pages_missing.store(missing, Ordering::Relaxed);
        hours
    }

    /// Installs the pages storage read for one hour in every ring that wants them.
    pub fn install_pages(&self, pages: &HourPages) -> PageStats {
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let empty = [[0u64; 2]; 60];
        let mut stats = PageStats::default();
        self.each_ring(|e, group, ring| {
            let windows = status_windows(&e.def, now);
            if !ring
                .pages_wanted(now_minute, &windows)
                .contains(&pages.hour)
            {
                return;
            }
            let key = (e.def.tenant.clone(), e.def.name.clone(), group());
            let counts = pages.counts.get(&key).unwrap_or(&empty);
            if ring.install_page(pages.hour, counts) {
                stats.installed += 1;
            } else {
                stats.refused += 1;
            }
        });
        let s = &self.stats;
        s.window_pages_installed
            .fetch_add(stats.installed, Ordering::Relaxed);
        s.window_pages_refused
            .fetch_add(stats.refused, Ordering::Relaxed);
        let _ = s
            .window_pages_missing
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some(m.saturating_sub(stats.installed))
            });
        stats
    }
}

/// The windows (minutes) an SLO's status, groups and alert rules read at `now`: the
/// standard ones, its own, and its no-data windows.
pub(super) fn status_windows(def: &SloDef, now: i64) -> Vec<u32> {
    let mut windows: Vec<u32> = BURN_RATE_WINDOWS.to_vec();
    windows.push(def.window.minutes_at(now));
    windows.extend(def.budget_alerts.no_data_minutes.iter().map(|x| x.0));
    windows
}
