//! The storage-tail protocol: the counts since the last flush as rows for storage
//! (taken, peeked or handed back), and rows read back on restart.

use super::*;

/// Counts not yet flushed: (group id, minute) → (good, total).
pub(super) type Tail = HashMap<(u32, i64), (u64, u64)>;

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
    /// The group; [`GroupKey::WHOLE`] for the SLO as a whole.
    pub group: GroupKey,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    /// The minute's events. For bad/total metric SLIs the counted columns are `bad` and
    /// `total` (their counters may land in different minutes), elsewhere `good` and
    /// `total`; see [`slotel_model::Counted`].
    pub tally: Tally,
    /// The minute's latency histogram, serialized (see [`crate::latency`]): SLIs with
    /// durations, SLO rows only (no group).
    pub latency: Option<Vec<u8>>,
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
    /// Raw counts of each minute of the range asked, as `MinuteRow::tally.good` (or `bad` for
    /// bad/total metric SLIs) and `total`.
    pub counts: Vec<(u64, u64)>,
    /// The oldest minute the engine holds one by one: of older ones `counts` has only
    /// what is not flushed yet, storage the rest.
    pub oldest_held: i64,
    /// The histogram bound a latency SLI last counted at.
    pub effective_threshold: Option<f64>,
}

impl Engine {
    /// Takes the counts added since the last call: the rows storage must write. If the
    /// write fails, hand them back with [`Engine::untake_tail`].
    pub fn take_tail(&self) -> Vec<MinuteRow> {
        self.tail_rows(true, None)
    }

    /// The counts not yet taken, left in place: the unflushed tail queries must see.
    pub fn peek_tail(&self) -> Vec<MinuteRow> {
        self.tail_rows(false, None)
    }

    /// [`Engine::peek_tail`] of `tenant`'s SLOs only.
    pub fn peek_tail_of(&self, tenant: &str) -> Vec<MinuteRow> {
        self.tail_rows(false, Some(tenant))
    }

    /// The tail's rows (of `tenant`'s SLOs only, when given), taken or left in place.
    pub(super) fn tail_rows(&self, take: bool, tenant: Option<&str>) -> Vec<MinuteRow> {
        if take {
            // Cells counted while this runs are either taken now (the next size check
            // sees a few too many) or left for the next flush (and counted).
            self.stats.tail_cells.store(0, Ordering::Relaxed);
        }
        let set = self.current();
        let mut out = Vec::new();
        for e in &set.slos {
            if tenant.is_some_and(|t| t != e.def.tenant) {
                continue;
            }
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
            let keys: Vec<GroupKey> = {
                let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
                (0..groups.keys.len())
                    .map(|id| GroupKey(group_labels(&e.def, &groups, id)))
                    .collect()
            };
            let counted = e.def.counted();
            for ((group, minute), (x, total)) in cells {
                out.push(MinuteRow {
                    tenant: e.def.tenant.clone(),
                    slo: e.def.name.clone(),
                    group: if group == NO_GROUP {
                        GroupKey::WHOLE
                    } else {
                        keys.get(group as usize).cloned().unwrap_or_default()
                    },
                    minute,
                    tally: counted.tally(x, total),
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

    pub(super) fn apply_rows(
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
            let x = def.counted().raw(&row.tally);
            let group = if row.group.is_whole() {
                NO_GROUP
            } else {
                let labels = row.group.labels();
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
                    groups.resolve(&values, 0, self.ring_size(def))
                } else {
                    groups.resolve(&values, def.max_groups, self.ring_size(def))
                };
                if to_rings {
                    let ring = &mut groups.rings[id as usize];
                    ring.add(row.minute, x, row.tally.total, now_minute);
                }
                id
            };
            if to_rings && group == NO_GROUP {
                let mut ring = entry.ring.lock().unwrap_or_else(|p| p.into_inner());
                if ring.add(row.minute, x, row.tally.total, now_minute) == AddOutcome::TooOld {
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
                c.1 += row.tally.total;
                if tail.len() > before {
                    self.stats.tail_cells.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats.rows += 1;
        }
        stats
    }

    /// The per-minute counts of `tenant`'s SLO `name` (or of its group with `labels`)
    /// over minutes `lo..=hi`, as held in memory; `None` for an unknown SLO or group.
    ///
    /// Minutes older than [`Minutes::oldest_held`] hold only what is not yet flushed:
    /// storage has the rest. Read both under storage's read gate, so that no flush
    /// moves a count from one to the other in between.
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
        let (mut counts, oldest_held, group) = match labels.filter(|l| !l.is_empty()) {
            None => {
                let ring = e.ring.lock().unwrap_or_else(|p| p.into_inner());
                (ring.minutes(lo, hi), ring.oldest(now_minute), NO_GROUP)
            }
            Some(labels) => {
                let groups = e.groups.lock().unwrap_or_else(|p| p.into_inner());
                let id = (0..groups.keys.len())
                    .find(|&id| group_labels(&e.def, &groups, id) == labels)?;
                let ring = &groups.rings[id];
                (ring.minutes(lo, hi), ring.oldest(now_minute), id as u32)
            }
        };
        // The unflushed counts of the minutes the ring no longer holds one by one.
        let old_hi = hi.min(oldest_held - 1);
        if old_hi >= lo {
            let tail = e.tail.lock().unwrap_or_else(|p| p.into_inner());
            for (&(g, minute), &(x, total)) in tail.iter() {
                if g == group && (lo..=old_hi).contains(&minute) {
                    let c = &mut counts[(minute - lo) as usize];
                    c.0 += x;
                    c.1 += total;
                }
            }
        }
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
}
