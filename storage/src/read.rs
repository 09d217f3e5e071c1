//! Reading partitions back, with row selection.

use super::*;

/// Which columns a read decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Every column.
    All,
    /// The counts, not the latency histograms.
    Counts,
}

/// Which rows a read keeps: minutes `lo..=hi` of the (SLO, group) pairs `keep` accepts
/// (all when `None`). With `keep`, a file's key columns are read first and the other
/// columns are decoded only for the rows kept, skipping whole pages of other SLOs'
/// rows (files hold their rows sorted by SLO); rows are tested before they are built.
pub struct RowFilter<'a> {
    /// The first minute kept.
    pub lo: i64,
    /// The last minute kept.
    pub hi: i64,
    /// Whether rows of this SLO and group are kept; `None` keeps every SLO.
    pub keep: Option<&'a KeepSlo<'a>>,
}

/// Whether rows of an SLO (by name) and group (by key) are kept.
pub type KeepSlo<'a> = dyn Fn(&str, &str) -> bool + Sync + 'a;

impl RowFilter<'_> {
    /// Every row of minutes `lo..=hi`.
    pub fn minutes(lo: i64, hi: i64) -> RowFilter<'static> {
        RowFilter { lo, hi, keep: None }
    }

    pub(crate) fn keeps(&self, slo: &str, group: &str, minute: i64) -> bool {
        minute >= self.lo && minute <= self.hi && self.keep.is_none_or(|k| k(slo, group))
    }
}

/// The rows of `batch` that `filter` keeps, as a mask.
pub(crate) fn selected(batch: &RecordBatch, filter: &RowFilter<'_>) -> Result<BooleanArray> {
    let strings = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| Error::Corrupt(format!("column {name:?} is missing or not text")))
    };
    let (slo, group) = (strings("slo")?, strings("group")?);
    let minute = batch
        .column_by_name("minute")
        .and_then(|c| c.as_any().downcast_ref::<TimestampSecondArray>())
        .ok_or_else(|| Error::Corrupt("column \"minute\" is missing or not a timestamp".into()))?;
    Ok((0..batch.num_rows())
        .map(|i| {
            Some(
                slo.is_valid(i)
                    && group.is_valid(i)
                    && minute.is_valid(i)
                    && filter.keeps(slo.value(i), group.value(i), minute.value(i).div_euclid(60)),
            )
        })
        .collect())
}

/// Attempts at reading a file the object store fails to hand over, and the first pause.
const READ_ATTEMPTS: u32 = 4;
const READ_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

impl Store {
    /// The partitions of `table` (per tenant, when given) and their Unix day.
    pub(crate) async fn partitions(
        &self,
        table: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<(String, i64, Path)>> {
        let storage = |e: object_store::Error| Error::Storage(e.to_string());
        let mut out = Vec::new();
        let tenants = match tenant {
            Some(t) => vec![Path::from(format!("{table}/tenant={t}"))],
            None => {
                self.objects
                    .list_with_delimiter(Some(&Path::from(table)))
                    .await
                    .map_err(storage)?
                    .common_prefixes
            }
        };
        for tp in tenants {
            let Some(t) = tp.filename().and_then(|s| segment_value(s, "tenant")) else {
                continue;
            };
            let t = t.to_string();
            let dates = self
                .objects
                .list_with_delimiter(Some(&tp))
                .await
                .map_err(storage)?
                .common_prefixes;
            for dp in dates {
                if let Some(day) = dp
                    .filename()
                    .and_then(|s| segment_value(s, "date"))
                    .and_then(day_of_date)
                {
                    out.push((t.clone(), day, dp));
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn files(&self, dir: &Path) -> Result<Vec<(Path, FileRange)>> {
        let metas: Vec<_> = self
            .objects
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        let mut files: Vec<_> = metas
            .into_iter()
            .filter_map(|m| file_range(&m.location).map(|r| (m.location, r)))
            .collect();
        files.sort_by_key(|(_, r)| (r.last, r.first));
        Ok(files)
    }

    /// Reads one file's rows, with their histograms or only the counts; a file that
    /// cannot be read is an error naming it.
    pub(crate) async fn read_file(
        &self,
        tenant: &str,
        path: &Path,
        columns: Columns,
        filter: &RowFilter<'_>,
    ) -> Result<Vec<MinuteRow>> {
        let fetch_error = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => Error::Vanished(path.to_string()),
            e => Error::Storage(e.to_string()),
        };
        let bytes = self
            .objects
            .get(path)
            .await
            .map_err(fetch_error)?
            .bytes()
            .await
            .map_err(fetch_error)?;
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let mut builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options.clone())?;
        if filter.keep.is_some() {
            // The key columns first: which rows are kept.
            let keys = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?;
            let mask = ProjectionMask::columns(keys.parquet_schema(), ["slo", "group", "minute"]);
            let mut masks = Vec::new();
            for batch in keys.with_projection(mask).build()? {
                masks.push(selected(&batch?, filter)?);
            }
            if masks.iter().all(|m| m.true_count() == 0) {
                return Ok(Vec::new());
            }
            builder = builder.with_row_selection(RowSelection::from_filters(&masks));
        }
        let builder = match columns {
            Columns::All => builder,
            Columns::Counts => {
                let mask = ProjectionMask::columns(
                    builder.parquet_schema(),
                    COUNT_COLUMNS.iter().copied(),
                );
                builder.with_projection(mask)
            }
        };
        let reader = builder.build()?;
        let mut rows = Vec::new();
        for batch in reader {
            batch_to_rows(tenant, &batch?, filter, &mut rows)?;
        }
        Ok(rows)
    }

    /// Hands the rows of `table` with minutes in `lo..=hi` to `each`, a file at a time
    /// (for `tenant`, or every tenant), without their latency histograms. Unreadable
    /// files are logged, counted and skipped.
    pub async fn scan(
        &self,
        table: &str,
        tenant: Option<&str>,
        lo: i64,
        hi: i64,
        each: impl FnMut(Vec<MinuteRow>),
    ) -> Result<ScanStats> {
        let filter = RowFilter::minutes(lo, hi);
        self.scan_where(table, tenant, &filter, Columns::Counts, each)
            .await
    }

    /// Hands the rows of `table` that `filter` keeps to `each`, a file at a time (for
    /// `tenant`, or every tenant), with the `columns` asked for. Unreadable files are
    /// logged, counted and skipped.
    pub async fn scan_where(
        &self,
        table: &str,
        tenant: Option<&str>,
        filter: &RowFilter<'_>,
        columns: Columns,
        mut each: impl FnMut(Vec<MinuteRow>),
    ) -> Result<ScanStats> {
        let (lo, hi) = (filter.lo, filter.hi);
        let (lo_day, hi_day) = (
            (lo * 60).div_euclid(SECONDS_PER_DAY),
            (hi * 60).div_euclid(SECONDS_PER_DAY),
        );
        let mut stats = ScanStats::default();
        for (t, day, dir) in self.partitions(table, tenant).await? {
            if day < lo_day || day > hi_day {
                continue;
            }
            for (path, _) in live_files(&self.files(&dir).await?) {
                let mut backoff = READ_BACKOFF;
                let mut attempt = 1;
                loop {
                    match self.read_file(&t, &path, columns, filter).await {
                        Ok(rows) => {
                            stats.files += 1;
                            stats.rows += rows.len() as u64;
                            each(rows);
                        }
                        // Deleted by a compaction since the listing: its rows are in
                        // the merged file, which the next scan reads.
                        Err(Error::Vanished(_)) => stats.vanished += 1,
                        Err(e) if e.is_corruption() => {
                            stats.corrupt += 1;
                            self.quarantine(&path, &e).await;
                        }
                        Err(e) => {
                            self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                            if attempt >= READ_ATTEMPTS {
                                tracing::error!(file = %path, error = %e, attempts = attempt, "Cannot read a storage file.");
                                return Err(e);
                            }
                            tracing::warn!(file = %path, error = %e, "Cannot read a storage file; retrying.");
                            tokio::time::sleep(backoff).await;
                            backoff *= 4;
                            attempt += 1;
                            continue;
                        }
                    }
                    break;
                }
            }
        }
        Ok(stats)
    }
}
