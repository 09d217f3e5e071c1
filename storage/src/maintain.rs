//! Maintenance: compaction, hourly rollups, retention and quarantine.

use super::*;

impl Store {
    /// Merges partitions of `sli_minute` with many files into one, refreshes the hourly
    /// rollup of the days it merged, and deletes partitions past their retention.
    /// `today` is the current Unix day. Minutes are kept at least `floor_days` (the
    /// longest SLO window and the lateness allowed), whatever the retention says, so
    /// that a restart never changes a budget. While the last checkpoint is not
    /// published, nothing is merged.
    pub async fn maintain(&self, today: i64, floor_days: u32) -> Result<()> {
        if self.checkpoint_behind.load(Ordering::Acquire) {
            return Ok(());
        }
        let keep = self.options.minute_retention_days.max(floor_days);
        for (tenant, day, dir) in self.partitions(SLI_MINUTE, None).await? {
            if day < today - i64::from(keep) {
                self.expire(&dir).await?;
                continue;
            }
            let files = live_files(&self.files(&dir).await?);
            // A closed day is merged once into a single file, and rolled up.
            let merged_once = files.len() == 1 && files[0].1.first != files[0].1.last;
            let closed = day < today && !merged_once;
            if files.len() >= self.options.compact_min_files.max(2) || closed {
                self.compact(&tenant, day, &dir, &files).await?;
            }
        }
        for table in [SLI_HOUR, ALERT_EVENTS] {
            for (_, day, dir) in self.partitions(table, None).await? {
                if day < today - i64::from(self.options.hour_retention_days) {
                    self.expire(&dir).await?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn compact(
        &self,
        tenant: &str,
        day: i64,
        dir: &Path,
        files: &[(Path, FileRange)],
    ) -> Result<()> {
        let mut rows = Vec::new();
        let mut read = Vec::new();
        for (path, range) in files {
            let all = RowFilter::minutes(i64::MIN, i64::MAX);
            match self.read_file(tenant, path, Columns::All, &all).await {
                Ok(r) => {
                    rows.extend(r);
                    read.push((path.clone(), *range));
                }
                Err(e) => self.quarantine(path, &e).await,
            }
        }
        // Only a run of readable files with no unreadable file between them can be
        // covered by one range.
        let (Some(first), Some(_)) = (read.first().map(|(_, r)| r.first), read.last()) else {
            return Ok(());
        };
        let contiguous = files.iter().all(|(p, _)| read.iter().any(|(q, _)| q == p));
        if !contiguous {
            return Ok(());
        }
        let merged = merge_rows(rows, 1);
        self.write_file(dir, &merged, Some(first)).await?;
        for (path, _) in &read {
            if let Err(e) = self.objects.delete(path).await {
                tracing::warn!(file = %path, error = %e, "Cannot delete a compacted file; readers skip it.");
            }
        }
        // The hourly rollup of the day, rewritten whole.
        let hourly = merge_rows(merged, 60);
        let hour_dir = Self::partition(SLI_HOUR, tenant, day);
        let old = self.files(&hour_dir).await?;
        self.write_file(
            &hour_dir,
            &hourly,
            old.first().map(|(_, r)| r.first).or(Some(0)),
        )
        .await?;
        for (path, _) in old {
            let _ = self.objects.delete(&path).await;
        }
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Moves a file that cannot be read to `quarantine/` (same path below it), where no
    /// reader looks, and counts it.
    pub(crate) async fn quarantine(&self, path: &Path, e: &Error) {
        self.stats.corrupt_files.fetch_add(1, Ordering::Relaxed);
        let to = Path::from(format!("{QUARANTINE}/{path}"));
        match self.objects.rename(path, &to).await {
            Ok(()) => tracing::error!(
                file = %path, moved_to = %to, error = %e,
                "A storage file cannot be read; it is skipped and moved aside."
            ),
            Err(m) => tracing::error!(
                file = %path, error = %e, move_error = %m,
                "A storage file cannot be read; it is skipped."
            ),
        }
    }

    pub(crate) async fn expire(&self, dir: &Path) -> Result<()> {
        for (path, _) in self.files(dir).await? {
            self.objects
                .delete(&path)
                .await
                .map_err(|e| Error::Storage(e.to_string()))?;
        }
        self.stats
            .partitions_expired
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
