//! From the log to the engine: at start, the replay of every record after the last
//! checkpoint (the engine reports ready once it is done); then the live batches in log
//! order, from the in-memory feed where it holds them and from the log where it does
//! not. Each record is applied exactly once: the engine knows the position it reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use slotel_compute::Engine;
use slotel_ingest::buffer::Feed;
use slotel_ingest::wal::Wal;
use slotel_proto::log::{Log, Logged};

/// How much of the log one read takes.
const READ_BYTES: usize = 8 << 20;

/// Applies every record from `wal` to `engine`, from position `from`: first the replay
/// up to the end of the log as found, then the live feed, until `stop` completes; then
/// whatever the feed and the log still hold.
pub async fn run(
    engine: Arc<Engine>,
    wal: Wal,
    mut feed: Feed,
    from: u64,
    stop: impl std::future::Future<Output = ()>,
) {
    let started = Instant::now();
    let target = wal.end();
    engine.set_ready(false);
    let mut next = catch_up(&engine, &wal, from, target).await;
    engine.set_ready(true);
    tracing::info!(
        bytes = target.saturating_sub(from),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Replayed the write-ahead log; ready."
    );
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            logged = feed.rx.recv() => {
                let Some(logged) = logged else { break };
                next = apply_logged(&engine, &wal, &feed, next, logged).await;
            }
            _ = feed.gap.notified() => {
                next = catch_up(&engine, &wal, next, wal.end()).await;
            }
            _ = &mut stop => break,
        }
    }
    // Stopping: what the feed holds, then the rest of the log.
    feed.rx.close();
    while let Ok(logged) = feed.rx.try_recv() {
        next = apply_logged(&engine, &wal, &feed, next, logged).await;
    }
    catch_up(&engine, &wal, next, wal.end()).await;
}

/// Applies a batch from the feed at position `next`: after the records the feed left
/// out before it, and not at all if the log was read past it. Returns the new position.
async fn apply_logged(engine: &Engine, wal: &Wal, feed: &Feed, next: u64, logged: Logged) -> u64 {
    feed.taken(&logged.batch);
    if logged.offset < next {
        return next; // read from the log already
    }
    if logged.offset > next && catch_up(engine, wal, next, logged.offset).await != logged.offset {
        // The log ended before the batch: impossible for a logged batch.
        tracing::error!(
            position = logged.offset,
            "The write-ahead log ends before a logged batch."
        );
    }
    engine.apply(&logged.batch, logged.next);
    logged.next
}

/// Applies the records of `wal` from `from` up to `to`; returns the position reached.
/// A read that fails is retried (the records are in the log: nothing is skipped).
async fn catch_up(engine: &Engine, wal: &Wal, mut from: u64, to: u64) -> u64 {
    let mut backoff = Duration::from_millis(100);
    while from < to {
        let entries = match Log::read(wal, from, READ_BYTES).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, position = from, "Cannot read the write-ahead log; retrying.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            if entry.offset >= to {
                return from;
            }
            match entry.record.decode() {
                Ok(batch) => engine.apply(&batch, entry.next),
                Err(e) => {
                    // The receiver validated it and the CRC held: this cannot be a
                    // request, so it cannot be counted.
                    tracing::error!(error = %e, position = entry.offset, "A write-ahead log record does not decode; skipped.");
                    engine
                        .stats()
                        .undecodable_records
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            from = entry.next;
        }
        tokio::task::yield_now().await;
    }
    from
}

/// The log's position and lag, for `/metrics`.
#[derive(Debug)]
pub struct LogCollector {
    /// The engine applying the log.
    pub engine: Arc<Engine>,
    /// The log.
    pub wal: Wal,
}

impl Collector for LogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let end = self.wal.end();
        let applied = self.engine.applied();
        let gauges = [
            (
                "wal_end_position",
                "The position the next write-ahead log record gets",
                end as i64,
            ),
            (
                "wal_applied_position",
                "The write-ahead log position the engine has applied",
                applied as i64,
            ),
            (
                "wal_lag_bytes",
                "Bytes of the write-ahead log not yet applied by the engine (during a replay: what is left)",
                end.saturating_sub(applied) as i64,
            ),
            (
                "ready",
                "1 once the write-ahead log found at start is replayed (what /readyz reports)",
                i64::from(self.engine.is_ready()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
