//! The memory budget of the requests in flight: every body (as sent, after
//! decompression, and decoded from JSON or protobuf) reserves its bytes from one
//! semaphore shared by both transports before it is held, and gives them back when its
//! request ends. A
//! request the budget cannot take is refused as retryable ([`Refusal::OverBudget`]), so
//! the sum of what all requests hold stays under `limits.max_inflight_bytes` however many
//! arrive at once.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::reply::Refusal;

/// The budget's unit: a permit is this many bytes.
const UNIT: usize = 1024;

/// The bytes requests in flight may hold, over both transports.
#[derive(Debug, Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    bytes: usize,
    /// The bytes reserved now, for `/metrics`.
    held: Gauge,
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
    held: Gauge,
}

impl Reserved {
    /// The bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.held.dec_by(self.bytes as i64);
        self.permits.clear();
    }
}

impl Budget {
    /// A budget of `bytes` (at least one unit), counting what is reserved into `held`.
    pub fn new(bytes: usize, held: Gauge) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(units)),
            bytes,
            held,
        }
    }

    /// A request's reservation, empty.
    pub fn reservation(&self) -> Reserved {
        Reserved {
            permits: Vec::new(),
            bytes: 0,
            held: self.held.clone(),
        }
    }

    /// Adds `bytes` to `reserved`, or refuses when the budget does not have them now.
    pub fn reserve(&self, reserved: &mut Reserved, bytes: usize) -> Result<(), Refusal> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).map_err(|_| self.over())?;
        if units == 0 {
            return Ok(());
        }
        let permit = Arc::clone(&self.permits)
            .try_acquire_many_owned(units)
            .map_err(|_| self.over())?;
        let taken = units as usize * UNIT;
        reserved.permits.push(permit);
        reserved.bytes += taken;
        self.held.inc_by(taken as i64);
        Ok(())
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    fn over(&self) -> Refusal {
        Refusal::OverBudget(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let held = Gauge::default();
        let budget = Budget::new(4 * 1024, held.clone());
        let mut a = budget.reservation();
        budget.reserve(&mut a, 3000).unwrap();
        assert_eq!(
            (a.bytes(), budget.available(), held.get()),
            (3072, 1024, 3072)
        );
        let mut b = budget.reservation();
        assert!(matches!(
            budget.reserve(&mut b, 2000),
            Err(Refusal::OverBudget(4096))
        ));
        budget.reserve(&mut b, 1).unwrap();
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!((budget.available(), held.get()), (3072, 1024));
        assert!(budget.reserve(&mut b, usize::MAX).is_err());
        drop(b);
        assert_eq!((budget.available(), held.get()), (4096, 0));
    }
}
