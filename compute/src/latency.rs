//! Per-minute latency histograms of span SLIs, for display quantiles.
//!
//! The SLI itself counts good and bad at the exact threshold per span; these histograms
//! only answer "what was the p99 over the last 5 minutes". A histogram is live
//! (`hdrhistogram`, 2 significant figures, grown to the largest value seen) only while
//! its minute is open; a closed minute is kept in the histogram's serialized V2 form
//! (run-length and LEB128 encoded counts, a few hundred bytes) until storage takes it
//! with the minute's row. Nothing here holds a window of histograms.

use std::collections::BTreeMap;

pub use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Significant figures of every histogram: a quantile is at most 1 % above the true
/// value, never below it.
pub const SIGNIFICANT_FIGURES: u8 = 2;

/// Durations are recorded in microseconds.
pub const NANOS_PER_UNIT: u64 = 1_000;

/// Serialized histograms larger than this are refused when read back (a V2 histogram at
/// 2 significant figures over any range of `u64` is far smaller).
const MAX_SERIALIZED_BYTES: usize = 1 << 20;

/// An empty histogram that grows to what is recorded into it.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_FIGURES).expect("2 significant figures are valid")
}

/// `h` in its serialized V2 form (the same bytes whatever the width of its counters).
pub fn serialize<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Vec<u8> {
    let mut out = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut out)
        .expect("a histogram serializes into a Vec");
    out
}

/// Why serialized histogram bytes cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid latency histogram: {0}")]
pub struct DecodeError(String);

/// The histogram serialized in `bytes`, as [`serialize`] wrote it.
pub fn deserialize(bytes: &[u8]) -> Result<Histogram<u64>, DecodeError> {
    if bytes.len() > MAX_SERIALIZED_BYTES {
        return Err(DecodeError(format!("{} bytes", bytes.len())));
    }
    // The header's precision bounds the counts array the reader allocates: only ours.
    match bytes.get(12..16) {
        Some(&[0, 0, 0, s]) if s == SIGNIFICANT_FIGURES => {}
        _ => {
            return Err(DecodeError(
                "not a 2-significant-figure V2 histogram".into(),
            ));
        }
    }
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| DecodeError(format!("{e:?}")))?;
    h.auto(true);
    Ok(h)
}

/// Records `units` into `h`, growing it as needed (values past what any growth can
/// hold, near `u64::MAX`, are clamped).
pub fn record<T: hdrhistogram::Counter>(h: &mut Histogram<T>, units: u64) {
    if h.record(units).is_err() {
        h.saturating_record(units);
    }
}

/// Adds `from` into `into`, growing `into` as needed.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Growing histograms take any range; the error is only for fixed ones.
    let _ = into.add(from);
}

/// The duration of a span in recording units, `None` when its times are unset or out of
/// order.
pub fn span_units(start_nanos: u64, end_nanos: u64) -> Option<u64> {
    (start_nanos > 0 && end_nanos >= start_nanos)
        .then(|| (end_nanos - start_nanos) / NANOS_PER_UNIT)
}

/// The value of `h` at `quantile`, in seconds: the upper end of the bucket holding it
/// (at most 1 % above the true value). `None` for an empty histogram.
pub fn quantile_seconds(h: &Histogram<u64>, quantile: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile) as f64 / 1e6)
}

/// A live histogram's counters: 32 bits (a bucket saturates at 4.29 billion
/// durations in one minute of one SLO), so that the counters recording touches take
/// half the cache; closed minutes are widened to 64 bits.
type Live = Histogram<u32>;

/// An empty live histogram.
fn live() -> Live {
    Histogram::new(SIGNIFICANT_FIGURES).expect("2 significant figures are valid")
}

/// A live histogram with 64-bit counters.
fn widen(h: &Live) -> Histogram<u64> {
    let mut wide = histogram();
    for v in h.iter_recorded() {
        let _ = wide.record_n(v.value_iterated_to(), v.count_at_value().into());
    }
    wide
}

/// One SLO's histograms not yet taken by storage: live for open minutes, serialized for
/// closed ones.
#[derive(Debug, Default)]
pub struct LatencyTail {
    /// (minute, histogram) of minutes still open; a handful at most.
    open: Vec<(i64, Live)>,
    /// Serialized histograms of closed minutes.
    closed: BTreeMap<i64, Vec<u8>>,
}

impl LatencyTail {
    /// Records a duration of `units` in `minute`.
    pub fn record(&mut self, minute: i64, units: u64) {
        let i = match self.open.iter().position(|(m, _)| *m == minute) {
            Some(i) => i,
            None => {
                self.open.push((minute, live()));
                self.open.len() - 1
            }
        };
        record(&mut self.open[i].1, units);
    }

    /// Serializes the histograms of minutes before `open_from`: they are closed.
    pub fn close_before(&mut self, open_from: i64) {
        if self.open.iter().all(|(m, _)| *m >= open_from) {
            return;
        }
        let (closing, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(m, _)| *m < open_from);
        self.open = open;
        for (minute, h) in closing {
            self.put_histogram(minute, widen(&h));
        }
    }

    fn put_histogram(&mut self, minute: i64, mut h: Histogram<u64>) {
        if let Some(prev) = self.closed.get(&minute).and_then(|b| deserialize(b).ok()) {
            merge(&mut h, &prev);
        }
        self.closed.insert(minute, serialize(&h));
    }

    /// Adds serialized `bytes` for `minute` back (a flush that failed).
    pub fn put_back(&mut self, minute: i64, bytes: &[u8]) {
        if let Ok(h) = deserialize(bytes) {
            self.put_histogram(minute, h);
        }
    }

    /// Takes every histogram, open minutes included (later records of an open minute
    /// start a new delta, which readers merge), serialized by minute.
    pub fn take(&mut self) -> BTreeMap<i64, Vec<u8>> {
        self.close_before(i64::MAX);
        std::mem::take(&mut self.closed)
    }

    /// The histograms not yet taken, by minute, for queries.
    pub fn peek(&self) -> BTreeMap<i64, Histogram<u64>> {
        let mut out: BTreeMap<i64, Histogram<u64>> = self
            .closed
            .iter()
            .filter_map(|(&m, b)| Some((m, deserialize(b).ok()?)))
            .collect();
        for (m, h) in &self.open {
            merge(out.entry(*m).or_insert_with(histogram), &widen(h));
        }
        out
    }

    /// The histograms not yet taken, serialized by minute: closed minutes as held, open
    /// ones (merged with their closed part, if any) serialized now.
    pub fn peek_serialized(&self) -> BTreeMap<i64, Vec<u8>> {
        let mut out = self.closed.clone();
        for (m, h) in &self.open {
            let mut sum = widen(h);
            if let Some(prev) = out.get(m).and_then(|b| deserialize(b).ok()) {
                merge(&mut sum, &prev);
            }
            out.insert(*m, serialize(&sum));
        }
        out
    }

    /// Heap bytes held, for measurements.
    pub fn heap_bytes(&self) -> usize {
        let open: usize = self
            .open
            .iter()
            .map(|(_, h)| h.distinct_values() * std::mem::size_of::<u32>())
            .sum();
        open + self.closed.values().map(Vec::capacity).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_at_most_one_percent_above_and_never_below() {
        let mut t = LatencyTail::default();
        // 1..=1000 ms, one each.
        for ms in 1..=1000u64 {
            t.record(5, ms * 1000);
        }
        let h = &t.peek()[&5];
        for q in [0.5, 0.9, 0.95, 0.99] {
            let truth = (q * 1000.0_f64).ceil() / 1000.0;
            let got = quantile_seconds(h, q).unwrap();
            assert!(
                got >= truth && got <= truth * 1.01,
                "q{q}: {got} vs {truth}"
            );
        }
        assert_eq!(h.len(), 1000);
    }

    #[test]
    fn closed_minutes_are_serialized_and_merge_with_late_records() {
        let mut t = LatencyTail::default();
        t.record(1, 100);
        t.record(2, 200);
        t.close_before(2);
        assert_eq!(t.open.len(), 1);
        assert_eq!(t.closed.len(), 1);
        // A late record of minute 1 opens it again; closing merges both.
        t.record(1, 300);
        t.close_before(2);
        let peeked = t.peek();
        assert_eq!(peeked[&1].len(), 2);
        assert_eq!(peeked[&2].len(), 1);
        let taken = t.take();
        assert_eq!(taken.len(), 2);
        assert!(t.peek().is_empty());
        // A failed flush puts them back, merged with what came since.
        t.record(2, 400);
        for (m, b) in &taken {
            t.put_back(*m, b);
        }
        let again = t.take();
        assert_eq!(deserialize(&again[&2]).unwrap().len(), 2);
        assert_eq!(deserialize(&again[&1]).unwrap().len(), 2);
    }

    #[test]
    fn garbage_is_refused_not_allocated() {
        assert!(deserialize(b"").is_err());
        assert!(deserialize(&[0u8; 40]).is_err());
        let mut h = histogram();
        record(&mut h, 1_000_000);
        let mut b = serialize(&h);
        assert_eq!(deserialize(&b).unwrap().len(), 1);
        b[15] = 5; // five significant figures: a large allocation, refused
        assert!(deserialize(&b).is_err());
        b.truncate(20);
        b[15] = SIGNIFICANT_FIGURES;
        assert!(deserialize(&b).is_err());
    }

    #[test]
    fn a_live_histogram_grows_to_what_it_holds() {
        let mut t = LatencyTail::default();
        t.record(0, 1_000_000); // one second
        assert_eq!(t.heap_bytes(), 1792 * 4);
        t.record(0, 3_600_000_000); // one hour
        assert_eq!(t.heap_bytes(), 3328 * 4);
        t.close_before(1);
        assert!(t.heap_bytes() < 200, "{}", t.heap_bytes());
    }

    #[test]
    fn span_durations() {
        assert_eq!(span_units(1_000, 251_000), Some(250));
        assert_eq!(span_units(0, 5_000), None);
        assert_eq!(span_units(9_000, 5_000), None);
    }
}
