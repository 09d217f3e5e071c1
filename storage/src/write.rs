//! The flush: the engine's tail and the alert events into new files.

use super::*;

impl Store {
    /// Writes the alert events recorded ([`Store::record_events`]) now; what cannot be
    /// written is kept for the next call.
    pub async fn write_events(&self) {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        let mut parts: BTreeMap<(String, i64), Vec<AlertEvent>> = BTreeMap::new();
        for e in events {
            let day = e.time_ms.div_euclid(SECONDS_PER_DAY * 1000);
            parts.entry((e.tenant.clone(), day)).or_default().push(e);
        }
        for ((tenant, day), events) in parts {
            let dir = Self::partition(ALERT_EVENTS, &tenant, day);
            let refs: Vec<&AlertEvent> = events.iter().collect();
            let written = match alert_events::to_batch(&refs) {
                Ok(batch) => self.write_batch(&dir, &batch, None).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(partition = %dir, error = %e, "Cannot write alert events; the next flush retries.");
                self.record_events(events);
            }
        }
    }

    /// Writes the minutes `engine` counted since the last flush, and the alert events
    /// recorded; what cannot be written is kept for the next flush. Returns the minute
    /// rows written.
    ///
    /// With a checkpoint target, the flush is a checkpoint: the rows of a consistent cut
    /// of the log, then the checkpoint published and the log before it released.
    pub async fn flush(&self, engine: &slotel_compute::Engine) -> usize {
        let _gate = self.gate.write().await;
        self.write_events().await;
        if let Some(target) = self.checkpoint_target() {
            let (written, published) = self.write_cut(engine, &target).await;
            self.checkpoint_behind.store(!published, Ordering::Release);
            return written;
        }
        let rows = engine.take_tail();
        let n = rows.len();
        if n == 0 {
            return 0;
        }
        let failed = self.write_minutes(rows).await;
        let written = n - failed.len();
        if !failed.is_empty() {
            engine.untake_tail(failed);
        }
        written
    }

    /// Writes `rows` to `sli_minute`, one file per (tenant, date). Returns the rows of the
    /// partitions that could not be written: the caller keeps them for the next flush.
    pub async fn write_minutes(&self, rows: Vec<MinuteRow>) -> Vec<MinuteRow> {
        let mut parts: BTreeMap<(String, i64), Vec<MinuteRow>> = BTreeMap::new();
        for r in rows {
            let day = (r.minute * 60).div_euclid(SECONDS_PER_DAY);
            parts.entry((r.tenant.clone(), day)).or_default().push(r);
        }
        let mut failed = Vec::new();
        for ((tenant, day), rows) in parts {
            let dir = Self::partition(SLI_MINUTE, &tenant, day);
            match self.write_file(&dir, &rows, None).await {
                Ok(bytes) => {
                    self.stats.files_written.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .rows_written
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    self.stats.bytes_written.fetch_add(bytes, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        partition = %dir, error = %e,
                        "Cannot write SLO data; it stays in memory and the next flush retries."
                    );
                    failed.extend(rows);
                }
            }
        }
        failed
    }

    /// Writes one file of minute rows in `dir`: numbered fresh, or covering `first..`
    /// for compaction.
    pub(crate) async fn write_file(
        &self,
        dir: &Path,
        rows: &[MinuteRow],
        first: Option<u64>,
    ) -> Result<u64> {
        let refs: Vec<&MinuteRow> = rows.iter().collect();
        self.write_batch(dir, &rows_to_batch(&refs)?, first).await
    }

    /// Writes one Parquet file holding `batch` in `dir`.
    pub(crate) async fn write_batch(
        &self,
        dir: &Path,
        batch: &RecordBatch,
        first: Option<u64>,
    ) -> Result<u64> {
        let bytes = encode_parquet(batch)?;
        let seq = self.next_seq();
        let name = match first {
            None => format!("{seq:020}.parquet"),
            Some(first) => format!("{seq:020}-{first:020}.parquet"),
        };
        let len = bytes.len() as u64;
        self.objects
            .put(&dir.clone().join(name), PutPayload::from(bytes))
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        Ok(len)
    }
}
