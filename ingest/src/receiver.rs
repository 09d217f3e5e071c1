//! The core both transports share: validate a decoded request, hand it to the next
//! stage, count it, and build the reply.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use slotel_proto::{Consumer, Tenant};

use crate::Limits;
use crate::metrics::{IngestMetrics, RequestRecord, Transport};
use crate::reply::Refusal;
use crate::signal::Signal;

/// A receiver's shared state: where batches go, the limits, the metrics.
#[derive(Debug)]
pub struct Receiver<C> {
    pub(crate) next: Arc<C>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<IngestMetrics>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl<C: Consumer> Receiver<C> {
    /// A receiver handing batches to `next`.
    pub fn new(next: Arc<C>, limits: Limits, metrics: Arc<IngestMetrics>) -> Self {
        Self {
            next,
            limits,
            metrics,
        }
    }

    /// Takes one decoded request of `size_bytes` for `tenant`.
    pub async fn accept<S: Signal>(
        &self,
        tenant: Tenant,
        mut request: S,
        size_bytes: usize,
        transport: Transport,
    ) -> Result<S::Response, Refusal> {
        let start = Instant::now();
        let items = request.item_count() as u64;
        let checked = request.check(now_nanos(), &self.limits.items);
        let rejected = checked.rejected();
        let result = if items > rejected {
            let batch = request.into_batch(Tenant::clone(&tenant), size_bytes);
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
