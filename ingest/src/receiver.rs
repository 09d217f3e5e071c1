//! The core both transports share: validate a decoded request, hand it to the next
//! stage, count it, and build the reply.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use slotel_model::Clock;
use slotel_proto::{Consumer, Tenant};

use crate::Limits;
use crate::budget::Reserved;
use crate::metrics::{IngestMetrics, RequestRecord, Transport};
use crate::reply::Refusal;
use crate::signal::Signal;

/// A request as a transport hands it over.
#[derive(Debug)]
pub enum Body<S> {
    /// Protobuf bytes (decompressed), not yet decoded.
    Protobuf(Bytes),
    /// A request decoded from OTLP/JSON.
    Decoded(S),
}

/// A receiver's shared state: where batches go, the limits, the metrics, the clock.
pub struct Receiver<C> {
    pub(crate) next: Arc<C>,
    pub(crate) limits: Limits,
    /// What the requests in flight may hold, over both transports.
    pub(crate) budget: crate::budget::Budget,
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
            budget: crate::budget::Budget::new(
                limits.max_inflight_bytes,
                metrics.held_bytes.clone(),
            ),
            limits,
            metrics,
            clock,
        }
    }

    /// Takes one request of `size_bytes` for `tenant`, as protobuf bytes or decoded;
    /// the memory decoding it takes is added to `held`, the request's reservation.
    pub async fn accept<S: Signal>(
        &self,
        tenant: Tenant,
        body: Body<S>,
        size_bytes: usize,
        transport: Transport,
        held: &mut Reserved,
    ) -> Result<S::Response, Refusal> {
        let start = Instant::now();
        let now = self.clock.now_nanos();
        let now_u = u64::try_from(now).unwrap_or(0);
        let accepted = match body {
            Body::Protobuf(bytes) => {
                let budget = &self.budget;
                S::from_protobuf(bytes, now_u, &self.limits.items, &mut |n| {
                    budget.reserve(held, n)
                })?
            }
            Body::Decoded(request) => request.checked(now_u, &self.limits.items),
        };
        let (items, checked) = (accepted.items, accepted.checked);
        let rejected = checked.rejected();
        let result = if items > rejected {
            let batch = accepted.into_batch(Tenant::clone(&tenant), size_bytes, now);
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
