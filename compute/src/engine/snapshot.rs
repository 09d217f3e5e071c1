//! Burn snapshots: every SLO's counts over the standard windows at one instant, for
//! the alert rules.

use super::*;

/// An SLO's events over each standard burn-rate window, its own window
/// and its no-data window.
#[derive(Debug, Clone)]
pub struct BurnSnapshot {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// The group's (attribute, value) pairs, in `group_by` order; empty for the SLO as a
    /// whole.
    pub group: Vec<(String, String)>,
    /// (window minutes, events), shortest window first: the standard windows, the SLO's
    /// window as it stands now, and its no-data window.
    pub windows: Vec<(u32, Tally)>,
}

impl BurnSnapshot {
    /// The events over the standard window of `minutes`, if it is one.
    pub fn window(&self, minutes: u32) -> Option<Tally> {
        self.windows
            .iter()
            .find(|(w, _)| *w == minutes)
            .map(|&(_, t)| t)
    }
}

impl Engine {
    /// The events of every SLO (all tenants) over the standard burn-rate windows at the
    /// engine's now, in units of the SLO's budgeting: what alert rules read. Scans at most
    /// the longest standard window (3 days) per SLO.
    pub fn burn_snapshot(&self) -> (i64, Vec<BurnSnapshot>) {
        let set = self.current();
        let now = self.clock.now_nanos();
        let now_minute = now.div_euclid(NANOS_PER_MINUTE);
        let mut out = Vec::with_capacity(set.slos.len());
        for e in &set.slos {
            let counted = e.def.counted();
            let windows = |ring: &MinuteRing| -> Vec<(u32, Tally)> {
                BURN_RATE_WINDOWS
                    .iter()
                    .zip(ring.sums(now_minute, &BURN_RATE_WINDOWS))
                    .map(|(&w, (x, total))| (w, counted.tally(x, total)))
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
}
