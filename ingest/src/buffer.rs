//! The in-memory buffer between the receivers and compute: a queue bounded both in
//! batches and in bytes, drained by worker tasks. When either bound is reached, batches
//! are refused with a retryable error rather than held: memory stays bounded and the
//! client retries.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use slotel_proto::{Batch, Consumer, Error, Result};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// How long a client is asked to wait when the queue is full.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Gauges of the queue.
#[derive(Debug, Default, Clone)]
struct QueueGauges {
    batches: Gauge,
    bytes: Gauge,
    capacity_batches: Gauge,
    capacity_bytes: Gauge,
}

/// A bounded queue of batches, drained into the next consumer by worker tasks.
pub struct MemoryQueue {
    tx: RwLock<Option<mpsc::Sender<Batch>>>,
    max_bytes: i64,
    bytes: Arc<AtomicI64>,
    gauges: QueueGauges,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("batches", &self.gauges.batches.get())
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish()
    }
}

impl MemoryQueue {
    /// Starts a queue holding at most `capacity` batches and `max_bytes` bytes of
    /// requests (their decoded wire size), drained by `workers` tasks into `next`.
    /// Must be called within a Tokio runtime.
    pub fn start<C: Consumer>(
        capacity: usize,
        max_bytes: usize,
        workers: usize,
        next: Arc<C>,
    ) -> Self {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel::<Batch>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let bytes = Arc::new(AtomicI64::new(0));
        let gauges = QueueGauges::default();
        gauges.capacity_batches.set(capacity as i64);
        gauges.capacity_bytes.set(max_bytes as i64);
        let handles = (0..workers.max(1))
            .map(|_| {
                let (rx, next, bytes, gauges) = (
                    Arc::clone(&rx),
                    Arc::clone(&next),
                    Arc::clone(&bytes),
                    gauges.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let batch = rx.lock().await.recv().await;
                        let Some(batch) = batch else { break };
                        let size = batch.size_bytes as i64;
                        gauges.batches.dec();
                        if let Err(e) = next.consume(batch).await {
                            tracing::warn!(error = %e, "Compute refused a queued batch.");
                        }
                        bytes.fetch_sub(size, Ordering::AcqRel);
                        gauges.bytes.dec_by(size);
                    }
                })
            })
            .collect();
        Self {
            tx: RwLock::new(Some(tx)),
            max_bytes: max_bytes as i64,
            bytes,
            gauges,
            workers: std::sync::Mutex::new(handles),
        }
    }

    /// Registers the queue's gauges in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let g = &self.gauges;
        registry.register(
            "queue_batches",
            "Batches waiting in the ingest queue",
            g.batches.clone(),
        );
        registry.register_with_unit(
            "queue",
            "Bytes of requests waiting in or being processed from the ingest queue",
            Unit::Bytes,
            g.bytes.clone(),
        );
        registry.register(
            "queue_capacity_batches",
            "Batches the ingest queue holds before refusing",
            g.capacity_batches.clone(),
        );
        registry.register_with_unit(
            "queue_capacity",
            "Bytes the ingest queue holds before refusing",
            Unit::Bytes,
            g.capacity_bytes.clone(),
        );
    }

    /// Batches waiting in the queue.
    pub fn depth(&self) -> usize {
        self.gauges.batches.get().max(0) as usize
    }

    /// Bytes of requests waiting or being processed.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire).max(0) as usize
    }

    fn full() -> Error {
        Error::Full {
            what: "the ingest queue",
            retry_after: RETRY_AFTER,
        }
    }
}

impl Consumer for MemoryQueue {
    async fn consume(&self, batch: Batch) -> Result<()> {
        let tx = self.tx.read().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return Err(Error::Unavailable("the ingest queue"));
        };
        let size = batch.size_bytes as i64;
        // Reserve the bytes first; give them back if the batch does not get in.
        let before = self.bytes.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > self.max_bytes {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(Self::full());
        }
        match tx.try_send(batch) {
            Ok(()) => {
                self.gauges.batches.inc();
                self.gauges.bytes.inc_by(size);
                Ok(())
            }
            Err(e) => {
                self.bytes.fetch_sub(size, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => Self::full(),
                    mpsc::error::TrySendError::Closed(_) => Error::Unavailable("the ingest queue"),
                })
            }
        }
    }

    /// Stops taking batches and waits until every queued batch reached the next consumer.
    async fn shutdown(&self) -> Result<()> {
        drop(self.tx.write().unwrap_or_else(|e| e.into_inner()).take());
        let handles = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize, tokio::sync::Semaphore);

    impl Consumer for Count {
        async fn consume(&self, _batch: Batch) -> Result<()> {
            // Each batch waits for a permit, so the test controls when the queue drains.
            self.1.acquire().await.expect("open").forget();
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn batch(size_bytes: usize) -> Batch {
        Batch {
            size_bytes,
            ..Batch::traces("default".into(), ExportTraceServiceRequest::default())
        }
    }

    fn counter() -> Arc<Count> {
        Arc::new(Count(AtomicUsize::new(0), tokio::sync::Semaphore::new(0)))
    }

    #[tokio::test]
    async fn refuses_when_full_and_drains_on_shutdown() {
        let next = counter();
        let q = MemoryQueue::start(2, 1 << 20, 1, Arc::clone(&next));
        // The worker takes one batch and blocks on it; two more fill the queue.
        q.consume(batch(10)).await.unwrap();
        while q.depth() != 0 {
            tokio::task::yield_now().await;
        }
        q.consume(batch(10)).await.unwrap();
        q.consume(batch(10)).await.unwrap();
        let err = q.consume(batch(10)).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(RETRY_AFTER));
        assert_eq!(q.bytes(), 30);
        next.1.add_permits(3);
        q.shutdown().await.unwrap();
        assert_eq!(next.0.load(Ordering::SeqCst), 3);
        assert_eq!(q.bytes(), 0);
        assert!(matches!(
            q.consume(batch(1)).await,
            Err(Error::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn the_byte_limit_refuses_before_the_batch_limit() {
        let next = counter();
        let q = MemoryQueue::start(100, 1000, 1, Arc::clone(&next));
        q.consume(batch(600)).await.unwrap();
        assert!(matches!(
            q.consume(batch(500)).await,
            Err(Error::Full { .. })
        ));
        q.consume(batch(400)).await.unwrap();
        assert_eq!(q.bytes(), 1000);
        // A single batch larger than the limit still gets in when the queue is empty,
        // or it could never be taken; the request size limit bounds it.
        next.1.add_permits(2);
        while q.bytes() != 0 {
            tokio::task::yield_now().await;
        }
        q.consume(batch(5000)).await.unwrap();
        next.1.add_permits(1);
        q.shutdown().await.unwrap();
        assert_eq!(next.0.load(Ordering::SeqCst), 3);
    }
}
