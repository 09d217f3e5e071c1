//! The core both transports share: validate a decoded request, hand it to the next
//! stage, count it, and build the reply.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use slotel_model::Clock;
use slotel_proto::{Consumer, Tenant};

use crate::Limits;
use crate::metrics::{IngestMetrics, RequestRecord, Transport};
use crate::reply::Refusal;
use crate::signal::Signal;

/// A receiver's shared state: where batches go, the limits, the metrics, the clock.
pub struct Receiver<C> {
    pub(crate) next: Arc<C>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<IngestMetrics>,
    clock: Arc<dyn Clock>,
}

impl<C> std::fmt::Debug for Receiver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<C: Consumer> Receiver<C> {
    /// A receiver handing batches to `next`, dating them by `clock`.
    pub fn new(
        next: Arc<C>,
        limits: Limits,
        metrics: Arc<IngestMetrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            next,
            limits,
            metrics,
            clock,
        }
    }

    /// Takes one decoded request of `size_bytes` for `tenant`; `raw` are its protobuf
    /// bytes when it came as protobuf.
    pub async fn accept<S: Signal>(
        &self,
        tenant: Tenant,
        mut request: S,
        size_bytes: usize,
        raw: Option<Bytes>,
        transport: Transport,
    ) -> Result<S::Response, Refusal> {
        let start = Instant::now();
        let now = self.clock.now_nanos();
        let items = request.item_count() as u64;
        let checked = request.check(u64::try_from(now).unwrap_or(0), &self.limits.items);
        let rejected = checked.rejected();
        let result = if items > rejected {
            // What validation changed must be encoded again; the rest goes as received.
            let raw = raw.filter(|_| !checked.changed());
            let batch = request.into_batch(Tenant::clone(&tenant), size_bytes, raw, now);
            self.next.consume(batch).await.map_err(Refusal::from)
        } else {
            Ok(())
        };
        self.metrics.record(&RequestRecord {
            signal: S::NAME,
            transport,
            tenant: &tenant,
            items,
            checked,
            bytes: size_bytes as u64,
            refused: result.as_ref().err().map(Refusal::reason),
            elapsed: start.elapsed(),
        });
        result?;
        let message = if rejected > 0 {
            checked.message(S::ITEMS, &self.limits.items)
        } else {
            String::new()
        };
        Ok(S::response(rejected, message))
    }
}
