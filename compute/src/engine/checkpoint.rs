//! The engine's side of the log and of checkpoints: batches applied in log order with
//! the position they reach, a consistent cut (the position, the unflushed rows and the
//! state that rows do not hold: de-duplication keys, cumulative series, latency
//! thresholds), and the restore of that state after a restart.

use super::*;

/// What a checkpoint takes from the engine at one position of the log.
#[derive(Debug)]
pub struct Cut {
    /// Every record before this position is counted in `rows` or in earlier
    /// checkpoints, and none after it.
    pub position: u64,
    /// The minutes counted since the last cut, for storage.
    pub rows: Vec<MinuteRow>,
    /// The rest of the state, encoded ([`Engine::restore_state`] reads it).
    pub state: Vec<u8>,
}

/// Why a checkpoint's engine state cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the checkpoint's engine state is damaged or of another version")]
pub struct StateError;

/// The version of the encoded state.
const STATE_VERSION: u32 = 1;

impl Engine {
    /// Counts `batch`, which the log holds just before position `next`.
    pub fn apply(&self, batch: &Batch, next: u64) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        self.ingest(batch);
        *applied = next;
    }

    /// Starts applying the log at `position` (with no checkpoint to restore).
    pub fn start_at(&self, position: u64) {
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = position;
    }

    /// The log position applied so far.
    pub fn applied(&self) -> u64 {
        *self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the log replayed (or not): what `/readyz` reports.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the log the engine started with has been replayed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Takes a consistent cut: no batch is applied meanwhile. If storage cannot write
    /// the rows, it hands them back with [`Engine::untake_tail`] and publishes nothing.
    pub fn cut(&self) -> Cut {
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let rows = self.take_tail();
        let state = self.encode_state();
        Cut {
            position: *applied,
            rows,
            state,
        }
    }

    /// Resumes from a checkpoint at `position` whose state is `state` (after its rows
    /// were restored).
    pub fn restore_state(&self, position: u64, state: &[u8]) -> Result<(), StateError> {
        let mut r = Reader(state);
        if r.u32()? != STATE_VERSION {
            return Err(StateError);
        }
        let key = crate::dedup::SipKey(r.u64()?, r.u64()?);
        let n = r.u32()?;
        let mut generations = Vec::new();
        for _ in 0..n {
            let minute = r.i64()?;
            let k = r.u32()? as usize;
            let mut keys = Vec::with_capacity(k.min(r.0.len() / 8));
            for _ in 0..k {
                keys.push(r.u64()?);
            }
            generations.push((minute, keys));
        }
        let set = self.current();
        let slos = r.u32()?;
        for _ in 0..slos {
            let tenant = r.str()?;
            let name = r.str()?;
            let threshold = r.u64()?;
            let k = r.u32()? as usize;
            let mut series = Vec::with_capacity(k.min(r.0.len() / 40));
            for _ in 0..k {
                series.push((
                    r.u64()?,
                    r.u64()?,
                    r.u64()?,
                    f64::from_bits(r.u64()?),
                    f64::from_bits(r.u64()?),
                ));
            }
            // An SLO no longer loaded starts afresh when it comes back.
            let Some(&i) = set.by_name.get(&(tenant.to_string(), name.to_string())) else {
                continue;
            };
            let e = &set.slos[i];
            e.effective_threshold.store(threshold, Ordering::Relaxed);
            e.series
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .restore(series);
        }
        if !r.0.is_empty() {
            return Err(StateError);
        }
        self.dedup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restore(key, generations);
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = position;
        Ok(())
    }

    fn encode_state(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        let (key, generations) = self
            .dedup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        put_u64(&mut out, key.0);
        put_u64(&mut out, key.1);
        put_u32(&mut out, generations.len());
        for (minute, keys) in generations {
            put_u64(&mut out, minute as u64);
            put_u32(&mut out, keys.len());
            for k in keys {
                put_u64(&mut out, k);
            }
        }
        let set = self.current();
        put_u32(&mut out, set.slos.len());
        for e in &set.slos {
            put_str(&mut out, &e.def.tenant);
            put_str(&mut out, &e.def.name);
            put_u64(&mut out, e.effective_threshold.load(Ordering::Relaxed));
            let series = e
                .series
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .snapshot();
            put_u32(&mut out, series.len());
            for (k, start, time, good, total) in series {
                for v in [k, start, time, good.to_bits(), total.to_bits()] {
                    put_u64(&mut out, v);
                }
            }
        }
        out
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.0.len() < n {
            return Err(StateError);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| StateError)?,
        ))
    }

    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| StateError)?,
        ))
    }

    fn i64(&mut self) -> Result<i64, StateError> {
        Ok(self.u64()? as i64)
    }

    fn str(&mut self) -> Result<&'a str, StateError> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| StateError)
    }
}
