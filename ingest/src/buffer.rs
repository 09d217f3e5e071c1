//! The buffer between the receivers and compute: every batch is appended to the
//! write-ahead log before the receiver acknowledges it, then handed to compute in
//! memory, as decoded, through a bounded feed. When the feed is full the in-memory copy
//! is left out and compute reads the record back from the log: memory stays bounded and
//! nothing acknowledged depends on it. Only a full log refuses, retryably.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use slotel_proto::log::Logged;
use slotel_proto::{Batch, Consumer, Error, Result};
use tokio::sync::{Notify, mpsc};

use crate::wal::Wal;

/// The compute side of the in-memory feed.
#[derive(Debug)]
pub struct Feed {
    /// Batches in log order (some may be missing: read those from the log).
    pub rx: mpsc::Receiver<Logged>,
    /// Notified when a batch was left out of the feed, so compute reads the log.
    pub gap: Arc<Notify>,
    /// Bytes of the batches in the feed; compute gives back what it takes.
    pub bytes: Arc<AtomicI64>,
    gauges: FeedGauges,
}

impl Feed {
    /// Accounts for a batch taken off the feed.
    pub fn taken(&self, batch: &Batch) {
        let size = batch.size_bytes as i64;
        self.bytes.fetch_sub(size, Ordering::AcqRel);
        self.gauges.bytes.dec_by(size);
        self.gauges.batches.dec();
    }
}

#[derive(Debug, Default, Clone)]
struct FeedGauges {
    batches: Gauge,
    bytes: Gauge,
    left_out: Counter,
}

/// Appends batches to the log and feeds them to compute.
pub struct LogBuffer {
    wal: Wal,
    tx: mpsc::Sender<Logged>,
    max_bytes: i64,
    bytes: Arc<AtomicI64>,
    gap: Arc<Notify>,
    gauges: FeedGauges,
    closed: AtomicBool,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("wal", &self.wal)
            .finish_non_exhaustive()
    }
}

impl LogBuffer {
    /// A buffer over `wal` whose feed holds at most `capacity` batches and `max_bytes`
    /// bytes of requests.
    pub fn new(wal: Wal, capacity: usize, max_bytes: usize) -> (Self, Feed) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let bytes = Arc::new(AtomicI64::new(0));
        let gap = Arc::new(Notify::new());
        let gauges = FeedGauges::default();
        (
            Self {
                wal,
                tx,
                max_bytes: max_bytes as i64,
                bytes: Arc::clone(&bytes),
                gap: Arc::clone(&gap),
                gauges: gauges.clone(),
                closed: AtomicBool::new(false),
            },
            Feed {
                rx,
                gap,
                bytes,
                gauges,
            },
        )
    }

    /// The log.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Registers the feed's metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let g = &self.gauges;
        registry.register(
            "queue_batches",
            "Logged batches waiting in memory for compute",
            g.batches.clone(),
        );
        registry.register_with_unit(
            "queue",
            "Bytes of logged batches waiting in memory for compute",
            Unit::Bytes,
            g.bytes.clone(),
        );
        registry.register(
            "queue_left_out",
            "Logged batches not kept in memory (the feed was full): compute reads them back from the log",
            g.left_out.clone(),
        );
    }
}

impl Consumer for LogBuffer {
    async fn consume(&self, batch: Batch) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Unavailable("the write-ahead log"));
        }
        let body = batch.encoded();
        let signal = batch.signal();
        let tenant = Arc::clone(&batch.tenant);
        let received = batch.received_nanos;
        let size = batch.size_bytes as i64;
        let mut batch = Some(batch);
        let next = self
            .wal
            .write_then(&tenant, signal, received, &body, |offset, next| {
                // In log order: reserve the bytes, then try the feed; a batch that does
                // not fit is read back from the log.
                let before = self.bytes.fetch_add(size, Ordering::AcqRel);
                let fits = before == 0 || before + size <= self.max_bytes;
                let logged = Logged {
                    offset,
                    next,
                    batch: batch.take().expect("called once"),
                };
                if fits && self.tx.try_send(logged).is_ok() {
                    self.gauges.batches.inc();
                    self.gauges.bytes.inc_by(size);
                } else {
                    self.bytes.fetch_sub(size, Ordering::AcqRel);
                    self.gauges.left_out.inc();
                    self.gap.notify_one();
                }
            })?;
        self.wal.durable(next).await
    }

    /// Takes no more batches.
    async fn shutdown(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
