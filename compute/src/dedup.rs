//! De-duplication of spans by (tenant, trace id, span id), and of log records by their
//! times, severity, trace context and body, within a horizon, so that a batch retried
//! by an SDK or a Collector (or after a crash between the log and the reply) counts
//! once.
//!
//! Keys are 64-bit hashes (SipHash-1-3 under a random key, so crafted ids cannot force
//! collisions; the key is kept in checkpoints so that keys stay valid across restarts)
//! in one hash set per minute of arrival; a lookup asks the sets of the
//! horizon. A span costs about 9 to 18 bytes (an 8-byte key and hashbrown's control
//! byte, at its load factor). The number of keys is capped: past the cap the oldest
//! minutes are forgotten early, and that is counted, so memory stays bounded at any
//! rate and the horizon shrinks instead.

use std::collections::{HashSet, VecDeque};
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

/// The hasher of the sets: a key is a SipHash already, uniform over 64 bits, so it is
/// its own hash (hashing it again, as the standard set would with SipHash, cost a hash
/// per generation looked at).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; anything else still spreads.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of keys hashed by [`KeyHasher`]: 8 bytes a key and a control byte, at the
/// table's load factor.
type KeySet = HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// Remembers the spans seen within the horizon.
#[derive(Debug)]
pub struct Dedup {
    horizon_minutes: i64,
    max_keys: usize,
    generations: VecDeque<(i64, KeySet)>,
    keys: usize,
    hasher: SipKey,
    /// Keys forgotten before the end of the horizon because of the cap.
    pub forgotten_early: u64,
}

impl Dedup {
    /// Remembers spans for `horizon_minutes` (0 turns de-duplication off), holding at
    /// most `max_keys`.
    pub fn new(horizon_minutes: u32, max_keys: usize) -> Self {
        Self {
            horizon_minutes: i64::from(horizon_minutes),
            max_keys: max_keys.max(1),
            generations: VecDeque::new(),
            keys: 0,
            hasher: SipKey::random(),
            forgotten_early: 0,
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
        if self
            .generations
            .back()
            .is_none_or(|(m, _)| *m != now_minute)
        {
            self.generations.push_back((now_minute, KeySet::default()));
        }
        while let Some((m, set)) = self.generations.front() {
            if *m > now_minute - self.horizon_minutes {
                break;
            }
            self.keys -= set.len();
            self.generations.pop_front();
        }
        if self.generations.iter().any(|(_, set)| set.contains(&key)) {
            return true;
        }
        while self.keys >= self.max_keys && self.generations.len() > 1 {
            if let Some((_, set)) = self.generations.pop_front() {
                self.keys -= set.len();
                self.forgotten_early += set.len() as u64;
            }
        }
        if self.keys >= self.max_keys {
            // One minute alone exceeds the cap: start it afresh.
            if let Some((_, set)) = self.generations.back_mut() {
                self.forgotten_early += set.len() as u64;
                self.keys -= set.len();
                set.clear();
            }
        }
        if let Some((_, set)) = self.generations.back_mut() {
            set.insert(key);
            self.keys += 1;
        }
        false
    }

    /// The hash key and the keys held, by minute of arrival: what a checkpoint keeps.
    pub fn snapshot(&self) -> (SipKey, Vec<(i64, Vec<u64>)>) {
        let generations = self
            .generations
            .iter()
            .map(|(m, set)| (*m, set.iter().copied().collect()))
            .collect();
        (self.hasher, generations)
    }

    /// Takes the state of a [`Dedup::snapshot`] (within this one's cap).
    pub fn restore(&mut self, key: SipKey, generations: Vec<(i64, Vec<u64>)>) {
        self.hasher = key;
        self.generations.clear();
        self.keys = 0;
        for (minute, keys) in generations {
            self.keys += keys.len();
            self.generations
                .push_back((minute, keys.into_iter().collect()));
        }
        while self.keys > self.max_keys && self.generations.len() > 1 {
            if let Some((_, set)) = self.generations.pop_front() {
                self.keys -= set.len();
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
