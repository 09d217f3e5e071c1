//! The storage loop (flush on an interval or when the tail grows, maintenance on its
//! own interval) and the restore that rebuilds the engine's windows at start. Both read
//! time from the engine's clock.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use slotel_compute::{Engine, HourPages, PageStats, RestoreStats};

use crate::{SLI_MINUTE, ScanStats, Store, StoreOptions};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The resolved `storage:` settings.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// A directory or `s3://bucket/prefix` (default: `DATA_DIR/tables`).
    pub url: String,
    /// How often the unflushed minutes are written.
    pub flush_interval: Duration,
    /// The unflushed minutes are written early once they hold this many rows.
    pub flush_max_rows: usize,
    /// How often compaction, rollups and retention run.
    pub maintenance_interval: Duration,
    /// What the tables keep and when they merge files.
    pub options: StoreOptions,
}

impl Store {
    /// Rebuilds `engine`'s windows from the stored minutes of every loaded SLO (back to
    /// the longest window, at least three days for the burn-rate windows).
    pub async fn restore(&self, engine: &Engine) -> crate::Result<(ScanStats, RestoreStats)> {
        let now_minute = engine.now_nanos().div_euclid(NANOS_PER_MINUTE);
        let horizon = engine
            .tenants()
            .iter()
            .flat_map(|t| engine.slos(t))
            .map(|d| i64::from(d.window.max_minutes()))
            .max()
            .unwrap_or(0)
            .max(4320);
        let mut stats = RestoreStats::default();
        let scan = self
            .scan(
                SLI_MINUTE,
                None,
                now_minute - horizon,
                now_minute + 60,
                |rows| {
                    let s = engine.restore(rows);
                    stats.rows += s.rows;
                    stats.unknown += s.unknown;
                    stats.too_old += s.too_old;
                },
            )
            .await?;
        Ok((scan, stats))
    }

    /// Reads the minutes of the old hours the engine's windows need for their edges
    /// (one scan per hour, every SLO at once) and hands them to the engine.
    pub async fn load_pages(&self, engine: &Engine) -> crate::Result<PageStats> {
        let mut stats = PageStats::default();
        for hour in engine.pages_wanted() {
            let mut pages = HourPages::new(hour);
            let (lo, hi) = pages.minutes();
            self.scan(SLI_MINUTE, None, lo, hi, |rows| pages.add(engine, rows))
                .await?;
            let s = engine.install_pages(&pages);
            stats.installed += s.installed;
            stats.refused += s.refused;
        }
        Ok(stats)
    }
}

/// Loads the pages the engine's windows want, logging a failure (the windows count
/// their edge hours whole until a later load succeeds).
async fn load_pages(store: &Store, engine: &Engine) {
    if let Err(e) = store.load_pages(engine).await {
        tracing::warn!(error = %e, "Cannot read old minutes for the edges of SLO windows; reading them again after the next flush.");
    }
}

/// The days of minutes every loaded SLO needs kept: its longest window, and a day of
/// lateness.
pub fn retention_floor_days(engine: &Engine) -> u32 {
    let minutes = engine
        .tenants()
        .iter()
        .flat_map(|t| engine.slos(t))
        .map(|d| d.window.max_minutes())
        .max()
        .unwrap_or(0);
    minutes.div_ceil(1440) + 1
}

/// Flushes every `flush_interval` (and early once the tail holds `flush_max_rows`), and
/// runs compaction, rollups and retention every `maintenance_interval`, until `stop`
/// completes.
pub async fn run(
    engine: Arc<Engine>,
    store: Arc<Store>,
    config: StorageConfig,
    stop: impl std::future::Future<Output = ()>,
) {
    // The first flush comes one interval after the start, not at once.
    let mut flush_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + config.flush_interval,
        config.flush_interval,
    );
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut maintain_tick = tokio::time::interval(config.maintenance_interval);
    maintain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Flush early when the unflushed tail grows past `flush_max_rows`.
    let mut size_tick = tokio::time::interval(Duration::from_millis(500));
    size_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_rows = config.flush_max_rows as u64;
    let pending = || engine.stats().tail_cells.load(Ordering::Relaxed);
    let due = || pending() >= max_rows || store.checkpoint_due();
    // After a flush that left rows behind (a failing store), size waits for the interval.
    let mut size_blocked = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = flush_tick.tick() => {
                store.flush(&engine).await;
                size_blocked = false;
                // After the flush: what it wrote may complete a page refused before.
                load_pages(&store, &engine).await;
            }
            _ = size_tick.tick(), if !size_blocked => {
                if due() {
                    store.flush(&engine).await;
                    size_blocked = due();
                }
            }
            _ = maintain_tick.tick() => {
                let today = engine.now_nanos().div_euclid(NANOS_PER_DAY);
                if let Err(e) = store.maintain(today, retention_floor_days(&engine)).await {
                    tracing::error!(error = %e, "Storage maintenance failed; it runs again later.");
                }
            }
        }
    }
}
