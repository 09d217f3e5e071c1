//! The in-memory buffer between the receivers and compute: a bounded queue drained by
//! worker tasks. When it is full, batches are refused with a retryable error rather than
//! held: memory stays bounded and the client retries.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use slotel_proto::{Batch, Consumer, Error, Result};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// How long a client is asked to wait when the queue is full.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A bounded queue of batches, drained into the next consumer by worker tasks.
pub struct MemoryQueue {
    tx: RwLock<Option<mpsc::Sender<Batch>>>,
    capacity: usize,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("capacity", &self.capacity)
            .field("depth", &self.depth())
            .finish()
    }
}

impl MemoryQueue {
    /// Starts a queue holding at most `capacity` batches, drained by `workers` tasks into
    /// `next`. Must be called within a Tokio runtime.
    pub fn start<C: Consumer>(capacity: usize, workers: usize, next: Arc<C>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..workers.max(1))
            .map(|_| {
                let rx = Arc::clone(&rx);
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    loop {
                        let batch = rx.lock().await.recv().await;
                        let Some(batch) = batch else { break };
                        if let Err(e) = next.consume(batch).await {
                            tracing::warn!(error = %e, "Compute refused a queued batch.");
                        }
                    }
                })
            })
            .collect();
        Self {
            tx: RwLock::new(Some(tx)),
            capacity: capacity.max(1),
            workers: std::sync::Mutex::new(handles),
        }
    }

    /// Batches waiting in the queue.
    pub fn depth(&self) -> usize {
        let tx = self.tx.read().unwrap_or_else(|e| e.into_inner());
        tx.as_ref().map_or(0, |tx| self.capacity - tx.capacity())
    }
}

impl Consumer for MemoryQueue {
    async fn consume(&self, batch: Batch) -> Result<()> {
        let tx = self.tx.read().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return Err(Error::Unavailable("the ingest queue"));
        };
        tx.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Full {
                what: "the ingest queue",
                retry_after: RETRY_AFTER,
            },
            mpsc::error::TrySendError::Closed(_) => Error::Unavailable("the ingest queue"),
        })
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize, tokio::sync::Semaphore);

    impl Consumer for Count {
        async fn consume(&self, _batch: Batch) -> Result<()> {
            // Each batch waits for a permit, so the test controls when the queue drains.
            self.1.acquire().await.expect("open").forget();
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn batch() -> Batch {
        Batch::traces("default".into(), ExportTraceServiceRequest::default())
    }

    #[tokio::test]
    async fn refuses_when_full_and_drains_on_shutdown() {
        let next = Arc::new(Count(AtomicUsize::new(0), tokio::sync::Semaphore::new(0)));
        let q = MemoryQueue::start(2, 1, Arc::clone(&next));
        // The worker takes one batch and blocks on it; two more fill the queue.
        q.consume(batch()).await.unwrap();
        while q.depth() != 0 {
            tokio::task::yield_now().await;
        }
        q.consume(batch()).await.unwrap();
        q.consume(batch()).await.unwrap();
        let err = q.consume(batch()).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(RETRY_AFTER));
        next.1.add_permits(3);
        q.shutdown().await.unwrap();
        assert_eq!(next.0.load(Ordering::SeqCst), 3);
        assert!(matches!(
            q.consume(batch()).await,
            Err(Error::Unavailable(_))
        ));
    }
}
