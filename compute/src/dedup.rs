//! De-duplication of spans by (tenant, trace id, span id), and of log records by their
//! times, severity, trace context and body, within a horizon, so that a batch retried
//! by an SDK or a Collector (or after a crash between the log and the reply) counts
//! once.
//!
//! Keys are 64-bit hashes (SipHash-1-3 under a random key, so crafted ids cannot force
//! collisions; the key is kept in checkpoints so that keys stay valid across restarts),
//! held with their minute of arrival in one table (see [`Dedup`]): 8 bytes a key at the
//! table's fill: 9.1 bytes a key at the cap, up to 18.3 while it grows. The number of keys is capped:
//! past the cap the oldest minutes are forgotten early, and that is counted, so memory
//! stays bounded at any rate and the horizon shrinks instead.

use std::hash::BuildHasher;

use slotel_proto::otlp::common::v1::any_value::Value;
use slotel_proto::otlp::logs::v1::LogRecord;

/// SipHash-1-3 under a 128-bit key: the hash of the de-duplication keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipKey(pub u64, pub u64);

impl SipKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let r = std::collections::hash_map::RandomState::new();
        Self(r.hash_one(1u64), r.hash_one(2u64))
    }
}

impl BuildHasher for SipKey {
    type Hasher = siphasher::sip::SipHasher13;

    fn build_hasher(&self) -> Self::Hasher {
        siphasher::sip::SipHasher13::new_with_keys(self.0, self.1)
    }
}

/// Bits of a slot holding the minute of arrival (modulo [`TAG_MINUTES`], plus one, so
/// that no occupied slot is zero).
const TAG_BITS: u32 = 16;
const TAG_MINUTES: i64 = (1 << TAG_BITS) - 1;

/// The longest horizon: the minute of a key is told from its tag within this many.
pub const MAX_HORIZON_MINUTES: u32 = 60_000;

/// Most keys a table holds for its size before it grows (7/8 of its slots).
fn fill_limit(slots: usize) -> usize {
    slots - slots / 8
}

/// Remembers the spans seen within the horizon.
///
/// One open-addressing table of `u64` slots with Robin Hood linear probing: a slot
/// holds the 48 high bits of a key's hash (which also pick its home slot) and 16 bits
/// of its minute of arrival, 8 bytes a slot; the table is at most 7/8 full, then it
/// doubles (never past 8/7 of the cap); under 1/4 full after an expiry, it shrinks. A lookup reads one or two
/// cache lines however long the horizon. Two different spans are taken for one only if
/// their hashes agree in all 48 bits and they probe the same run of slots: about one
/// lookup in 10^13. Each new minute removes the keys that left the horizon in one pass
/// over the table.
#[derive(Debug)]
pub struct Dedup {
    horizon_minutes: i64,
    max_keys: usize,
    /// 0 for an empty slot; else `fingerprint << 16 | tag`.
    slots: Vec<u64>,
    /// Keys held, by minute of arrival.
    minutes: std::collections::BTreeMap<i64, usize>,
    /// The newest minute of arrival: tags are read relative to it.
    newest: i64,
    keys: usize,
    hasher: SipKey,
    /// Keys forgotten before the end of the horizon because of the cap.
    pub forgotten_early: u64,
}

/// The 48 high bits of a key's hash.
fn fingerprint(key: u64) -> u64 {
    key >> TAG_BITS
}

impl Dedup {
    /// Remembers spans for `horizon_minutes` (0 turns de-duplication off; at most
    /// [`MAX_HORIZON_MINUTES`]), holding at most `max_keys`.
    pub fn new(horizon_minutes: u32, max_keys: usize) -> Self {
        Self {
            horizon_minutes: i64::from(horizon_minutes.min(MAX_HORIZON_MINUTES)),
            max_keys: max_keys.max(1),
            slots: Vec::new(),
            minutes: std::collections::BTreeMap::new(),
            newest: i64::MIN,
            keys: 0,
            hasher: SipKey::random(),
            forgotten_early: 0,
        }
    }

    /// Bytes of heap the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u64>()
    }

    fn home(&self, fp: u64) -> usize {
        // The fingerprint's 48 bits scaled to the table: any size, no modulo.
        ((u128::from(fp) * self.slots.len() as u128) >> (64 - TAG_BITS)) as usize
    }

    /// How far the entry in slot `i` sits from its home.
    fn distance(&self, i: usize, slot: u64) -> usize {
        let (n, home) = (self.slots.len(), self.home(slot >> TAG_BITS));
        if i >= home { i - home } else { i + n - home }
    }

    fn find(&self, fp: u64) -> bool {
        let n = self.slots.len();
        if n == 0 {
            return false;
        }
        let (mut i, mut d) = (self.home(fp), 0);
        loop {
            let s = self.slots[i];
            // Robin Hood order: an entry closer to its home than we are to ours means
            // the key is not in the table.
            if s == 0 || self.distance(i, s) < d {
                return false;
            }
            if s >> TAG_BITS == fp {
                return true;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
            d += 1;
        }
    }

    fn insert(&mut self, mut slot: u64) {
        let n = self.slots.len();
        let (mut i, mut d) = (self.home(slot >> TAG_BITS), 0);
        loop {
            let s = self.slots[i];
            if s == 0 {
                self.slots[i] = slot;
                return;
            }
            let ds = self.distance(i, s);
            if ds < d {
                self.slots[i] = slot;
                slot = s;
                d = ds;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
            d += 1;
        }
    }

    /// Empties slot `i`, shifting the entries after it back towards their homes.
    fn remove_at(&mut self, mut i: usize) {
        let n = self.slots.len();
        loop {
            let j = if i + 1 == n { 0 } else { i + 1 };
            let next = self.slots[j];
            if next == 0 || self.distance(j, next) == 0 {
                self.slots[i] = 0;
                return;
            }
            self.slots[i] = next;
            i = j;
        }
    }

    /// The tag of a minute: its remainder modulo [`TAG_MINUTES`], plus one.
    fn tag(minute: i64) -> u64 {
        (minute.rem_euclid(TAG_MINUTES) + 1) as u64
    }

    /// The minute of arrival of an occupied slot.
    fn minute_of(&self, slot: u64) -> i64 {
        let tag = (slot & ((1 << TAG_BITS) - 1)) as i64 - 1;
        self.newest - (self.newest - tag).rem_euclid(TAG_MINUTES)
    }

    /// Moves every key to a table of `slots` slots.
    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots.max(8)]);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.insert(s);
        }
    }

    /// Forgets the keys that arrived at or before minute `through`.
    fn forget_through(&mut self, through: i64) {
        let mut gone = 0;
        // The tags of the minutes forgotten, as a bitmap: no division per slot.
        let mut expired = vec![0u64; 1 << (TAG_BITS - 6)];
        while let Some(entry) = self.minutes.first_entry() {
            if *entry.key() > through {
                break;
            }
            let tag = Self::tag(*entry.key()) as usize;
            expired[tag >> 6] |= 1 << (tag & 63);
            gone += entry.remove();
        }
        if gone == 0 {
            return;
        }
        self.keys -= gone;
        let is_expired = |s: u64| {
            let tag = (s & ((1 << TAG_BITS) - 1)) as usize;
            expired[tag >> 6] & (1 << (tag & 63)) != 0
        };
        let mut i = 0;
        while i < self.slots.len() {
            let s = self.slots[i];
            if s != 0 && is_expired(s) {
                // The next entry may have moved into this slot: look at it again.
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        if self.slots.len() > 1024 && self.keys < self.slots.len() / 4 {
            self.resize(self.keys * 2);
        }
    }

    /// Whether the span was seen within the horizon; remembers it if not.
    pub fn seen(&mut self, now_minute: i64, tenant: &str, trace_id: &[u8], span_id: &[u8]) -> bool {
        if self.horizon_minutes == 0 {
            return false;
        }
        let key = self.hasher.hash_one((tenant, trace_id, span_id));
        self.seen_key(now_minute, key)
    }

    /// Whether the log record was seen within the horizon; remembers it if not. A
    /// record is known by its times, severity, trace context and body: a retried export
    /// sends the same record again, and two records alike in all of these cannot be
    /// told apart anyway.
    pub fn seen_log(&mut self, now_minute: i64, tenant: &str, r: &LogRecord) -> bool {
        if self.horizon_minutes == 0 {
            return false;
        }
        let body: &[u8] = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => s.as_bytes(),
            Some(Value::BytesValue(b)) => b,
            _ => &[],
        };
        let key = self.hasher.hash_one((
            tenant,
            1u8, // apart from span keys
            r.time_unix_nano,
            r.observed_time_unix_nano,
            r.severity_number,
            &r.trace_id,
            &r.span_id,
            body,
            r.attributes.len(),
        ));
        self.seen_key(now_minute, key)
    }

    fn seen_key(&mut self, now_minute: i64, key: u64) -> bool {
        self.newest = self.newest.max(now_minute);
        if self
            .minutes
            .first_key_value()
            .is_some_and(|(&m, _)| m <= now_minute - self.horizon_minutes)
        {
            self.forget_through(now_minute - self.horizon_minutes);
        }
        let fp = fingerprint(key);
        if self.find(fp) {
            return true;
        }
        if self.keys >= self.max_keys {
            // Past the cap: forget the oldest minutes (not this one) early.
            let mut gone = 0;
            let mut through = None;
            for (&m, &n) in &self.minutes {
                if m == now_minute || self.keys - gone < self.max_keys {
                    break;
                }
                gone += n;
                through = Some(m);
            }
            if let Some(m) = through {
                self.forgotten_early += gone as u64;
                self.forget_through(m);
            }
            if self.keys >= self.max_keys {
                // This minute alone exceeds the cap: start it afresh.
                self.forgotten_early += self.keys as u64;
                self.keys = 0;
                self.minutes.clear();
                self.slots.fill(0);
            }
        }
        self.remember(now_minute, fp);
        false
    }

    /// The slots the cap needs: room for `max_keys` within the fill limit.
    fn most_slots(&self) -> usize {
        self.max_keys
            .saturating_add(self.max_keys / 7)
            .saturating_add(8)
    }

    /// Adds a key (not held) that arrived at `minute`.
    fn remember(&mut self, minute: i64, fp: u64) {
        if self.keys + 1 > fill_limit(self.slots.len()) {
            let grown = (self.slots.len() * 2).max(1024);
            // Never more slots than the cap needs.
            self.resize(grown.min(self.most_slots()));
        }
        self.insert(fp << TAG_BITS | Self::tag(minute));
        *self.minutes.entry(minute).or_default() += 1;
        self.keys += 1;
    }

    /// The hash key and the keys held, by minute of arrival: what a checkpoint keeps.
    /// A key's low 16 bits are not kept (they are zero here).
    pub fn snapshot(&self) -> (SipKey, Vec<(i64, Vec<u64>)>) {
        let mut by_minute: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
        for &s in self.slots.iter().filter(|&&s| s != 0) {
            by_minute
                .entry(self.minute_of(s))
                .or_default()
                .push(s >> TAG_BITS << TAG_BITS);
        }
        (self.hasher, by_minute.into_iter().collect())
    }

    /// Takes the state of a [`Dedup::snapshot`] (within this one's cap).
    pub fn restore(&mut self, key: SipKey, generations: Vec<(i64, Vec<u64>)>) {
        self.hasher = key;
        self.slots = Vec::new();
        self.minutes.clear();
        self.keys = 0;
        // The newest minutes first, so the cap keeps them.
        let mut generations = generations;
        generations.sort_by_key(|(m, _)| std::cmp::Reverse(*m));
        self.newest = generations.first().map_or(i64::MIN, |(m, _)| *m);
        // The table at its final size before the first key: a snapshot lists keys in
        // the order of their homes, and that order poured into a small table (homes
        // scaled to its size) piles them all up at its start, which costs a probe per
        // key held for every key added.
        let total: usize = generations.iter().map(|(_, k)| k.len()).sum();
        let want = total.min(self.max_keys);
        let mut slots = 1024;
        while fill_limit(slots) < want {
            slots *= 2;
        }
        self.slots = vec![0; slots.min(self.most_slots()).max(want + 1)];
        for (minute, keys) in generations {
            if self.keys + keys.len() > self.max_keys && self.keys > 0 {
                break;
            }
            for k in keys {
                let fp = fingerprint(k);
                if self.keys < self.max_keys && !self.find(fp) {
                    self.remember(minute, fp);
                }
            }
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_snapshot_restores_every_key() {
        // 300,000 keys: poured into a growing table in the snapshot's order, restoring
        // them took minutes (every key probed past all before it).
        let mut d = Dedup::new(10, 1_000_000);
        let ids: Vec<u64> = (0..300_000u64).collect();
        for id in &ids {
            assert!(!d.seen(100 + (*id % 3) as i64, "t", &id.to_be_bytes(), &[1; 8]));
        }
        let (key, generations) = d.snapshot();
        let mut back = Dedup::new(10, 1_000_000);
        back.restore(key, generations);
        assert_eq!(back.len(), 300_000);
        for id in &ids {
            assert!(back.seen(102, "t", &id.to_be_bytes(), &[1; 8]));
        }
        assert_eq!(back.len(), 300_000);
    }

    #[test]
    fn within_the_horizon_a_span_counts_once() {
        let mut d = Dedup::new(10, 1000);
        assert!(!d.seen(100, "t", &[1; 16], &[1; 8]));
        assert!(d.seen(100, "t", &[1; 16], &[1; 8]));
        assert!(d.seen(109, "t", &[1; 16], &[1; 8]));
        // Another tenant, another span id: different spans.
        assert!(!d.seen(109, "u", &[1; 16], &[1; 8]));
        assert!(!d.seen(109, "t", &[1; 16], &[2; 8]));
        // Ten minutes later the first is forgotten.
        assert!(!d.seen(110, "t", &[1; 16], &[1; 8]));
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn the_cap_forgets_the_oldest_minutes_first() {
        let mut d = Dedup::new(10, 3);
        for (minute, id) in [(1, 1u8), (2, 2), (3, 3)] {
            assert!(!d.seen(minute, "t", &[id; 16], &[id; 8]));
        }
        assert!(!d.seen(4, "t", &[4; 16], &[4; 8]));
        assert_eq!(d.forgotten_early, 1);
        assert!(!d.seen(4, "t", &[1; 16], &[1; 8])); // forgotten, counts again
        assert!(d.seen(4, "t", &[3; 16], &[3; 8]));
        assert!(d.len() <= 3);
        let mut off = Dedup::new(0, 3);
        assert!(!off.seen(1, "t", &[1; 16], &[1; 8]));
        assert!(!off.seen(1, "t", &[1; 16], &[1; 8]));
    }
}

#[cfg(test)]
mod model_tests {
    //! The table against a model that keeps every key with its minute of arrival.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_table_answers_as_a_map_of_every_key(
            horizon in 1u32..20,
            steps in prop::collection::vec((0i64..3, 0u16..3000, any::<bool>()), 1..3000),
        ) {
            let mut d = Dedup::new(horizon, usize::MAX);
            let mut model: HashMap<u16, i64> = HashMap::new();
            let mut minute = 1_000_000i64;
            for (i, (advance, id, checkpoint)) in steps.into_iter().enumerate() {
                minute += advance;
                let span = id.to_be_bytes();
                model.retain(|_, m| *m > minute - i64::from(horizon));
                let want = model.contains_key(&id);
                if !want {
                    model.insert(id, minute);
                }
                prop_assert_eq!(d.seen(minute, "t", &[7; 16], &span), want, "step {}", i);
                prop_assert_eq!(d.len(), model.len());
                // Now and then a checkpoint and a restart.
                if checkpoint && i % 97 == 0 {
                    let (key, generations) = d.snapshot();
                    let mut again = Dedup::new(horizon, usize::MAX);
                    again.restore(key, generations);
                    prop_assert_eq!(again.len(), d.len());
                    d = again;
                }
            }
        }
    }

    #[test]
    fn at_the_cap_a_key_costs_about_nine_bytes_and_the_oldest_minutes_go_first() {
        let cap = 100_000;
        let mut d = Dedup::new(10, cap);
        let mut id = 0u64;
        for minute in 0..10 {
            for _ in 0..cap / 5 {
                id += 1;
                assert!(!d.seen(minute, "t", &id.to_be_bytes(), &[1; 8]));
            }
        }
        // Twice the cap offered: the table holds the cap, in at most cap × 8/7 slots.
        assert!(d.len() <= cap);
        assert!(d.forgotten_early >= cap as u64);
        assert!(
            d.heap_bytes() <= (cap + cap / 7 + 8) * 8,
            "{}",
            d.heap_bytes()
        );
        // The newest keys are still known, the oldest not.
        assert!(d.seen(9, "t", &id.to_be_bytes(), &[1; 8]));
        assert!(!d.seen(9, "t", &1u64.to_be_bytes(), &[1; 8]));
    }
}
