//! Parquet storage of the SLO tables through `object_store`: the writer, the reader the
//! restart and the query API use, compaction, hourly rollups and retention.
//!
//! Layout under the store's root (the data directory's `tables/`, or an S3 prefix):
//! `<table>/tenant=<t>/date=<yyyy-mm-dd>/<name>.parquet`. A flush writes files named
//! `<seq>.parquet`; compaction writes `<seq>-<first>.parquet`, which holds every file of
//! the partition numbered `first..=seq`, before it deletes them. Readers skip a file whose
//! numbers another file covers, so a crash between the two steps never counts twice, and
//! `object_store` writes each file whole (a staged file renamed, or one S3 PUT), so a
//! crash mid-write leaves no half file visible.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, RecordBatch, StringArray, TimestampSecondArray,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::PageIndexPolicy;
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use slotel_compute::MinuteRow;
use slotel_compute::latency;

use crate::alert_events::{self, ALERT_EVENTS, AlertEvent};
use crate::error::{Error, Result};

/// The per-minute table.
pub const SLI_MINUTE: &str = "sli_minute";
/// The hourly rollup of `sli_minute`, for long ranges.
pub const SLI_HOUR: &str = "sli_hour";

const SECONDS_PER_DAY: i64 = 86_400;
/// Where unreadable files are moved.
pub const QUARANTINE: &str = "quarantine";

/// The columns of `sli_minute` and `sli_hour` as stored in each file (the tenant and date
/// are in the path).
pub fn file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("slo", DataType::Utf8, false),
        Field::new("group", DataType::Utf8, false),
        Field::new(
            "minute",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            false,
        ),
        Field::new("good", DataType::UInt64, false),
        Field::new("bad", DataType::UInt64, false),
        Field::new("total", DataType::UInt64, false),
        Field::new("latency", DataType::Binary, true),
    ]))
}

/// The count columns: what every reader but the latency one needs.
const COUNT_COLUMNS: [&str; 6] = ["slo", "group", "minute", "good", "bad", "total"];

/// How much each table keeps, and when small files are merged.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Days of `sli_minute` kept.
    pub minute_retention_days: u32,
    /// Days of `sli_hour` kept.
    pub hour_retention_days: u32,
    /// A partition with at least this many files is compacted.
    pub compact_min_files: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            minute_retention_days: 90,
            hour_retention_days: 800,
            compact_min_files: 16,
        }
    }
}

/// Counters of the store, for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Files written by flushes.
    pub files_written: AtomicU64,
    /// Rows written by flushes.
    pub rows_written: AtomicU64,
    /// Bytes written by flushes.
    pub bytes_written: AtomicU64,
    /// Writes that failed (the rows stay in memory for the next flush).
    pub write_errors: AtomicU64,
    /// Files that could not be read (corrupt or truncated) and were skipped.
    pub corrupt_files: AtomicU64,
    /// Partitions compacted.
    pub compactions: AtomicU64,
    /// Partitions deleted by retention.
    pub partitions_expired: AtomicU64,
}

/// What a scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Files read.
    pub files: u64,
    /// Files skipped because they could not be read.
    pub corrupt: u64,
    /// Rows handed on.
    pub rows: u64,
}

/// The Parquet tables of one data directory or bucket.
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    /// Where the tables live, for messages.
    location: String,
    options: StoreOptions,
    seq: AtomicU64,
    stats: StoreStats,
    /// Held for writing while a flush moves rows from the engine's tail to a file, and
    /// for reading by a query over both: a query sees each row exactly once.
    gate: tokio::sync::RwLock<()>,
    /// Alert events not yet written.
    events: std::sync::Mutex<Vec<AlertEvent>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Which columns a read decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Every column.
    All,
    /// The counts, not the latency histograms.
    Counts,
}

/// A file's place in its partition: the numbers it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileRange {
    first: u64,
    last: u64,
}

fn file_range(path: &Path) -> Option<FileRange> {
    let name = path.filename()?.strip_suffix(".parquet")?;
    match name.split_once('-') {
        None => {
            let n = name.parse().ok()?;
            Some(FileRange { first: n, last: n })
        }
        Some((last, first)) => Some(FileRange {
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        }),
    }
}

/// The files of a partition that are not covered by another (compacted) file.
fn live_files(files: &[(Path, FileRange)]) -> Vec<(Path, FileRange)> {
    files
        .iter()
        .filter(|(_, r)| {
            !files
                .iter()
                .any(|(_, o)| o != r && o.first <= r.first && r.last <= o.last)
        })
        .cloned()
        .collect()
}

/// `yyyy-mm-dd` of a Unix day: the `date` partition.
pub(crate) fn date_of_day(day: i64) -> String {
    let d = jiff::civil::Date::new(1970, 1, 1)
        .expect("the epoch is a date")
        .checked_add(jiff::Span::new().days(day))
        .unwrap_or(jiff::civil::Date::MAX);
    d.to_string()
}

/// The Unix day of `yyyy-mm-dd`.
fn day_of_date(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let epoch = jiff::civil::Date::new(1970, 1, 1).ok()?;
    Some(i64::from(epoch.until(d).ok()?.get_days()))
}

/// The `key=value` value of a path segment.
fn segment_value<'a>(segment: &'a str, key: &str) -> Option<&'a str> {
    segment.strip_prefix(key)?.strip_prefix('=')
}

/// Rows as one record batch of [`file_schema`].
pub fn rows_to_batch(rows: &[&MinuteRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.slo))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.group))),
        Arc::new(
            TimestampSecondArray::from_iter_values(rows.iter().map(|r| r.minute * 60))
                .with_timezone("UTC"),
        ),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.good))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.bad))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.total))),
        Arc::new(BinaryArray::from_iter(
            rows.iter().map(|r| r.latency.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(file_schema(), cols)?)
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

    fn keeps(&self, slo: &str, group: &str, minute: i64) -> bool {
        minute >= self.lo && minute <= self.hi && self.keep.is_none_or(|k| k(slo, group))
    }
}

/// The rows of `batch` that `filter` keeps, as a mask.
fn selected(batch: &RecordBatch, filter: &RowFilter<'_>) -> Result<BooleanArray> {
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

/// The rows of a record batch of [`file_schema`], for `tenant`, that `filter` keeps.
fn batch_to_rows(
    tenant: &str,
    batch: &RecordBatch,
    filter: &RowFilter<'_>,
    out: &mut Vec<MinuteRow>,
) -> Result<()> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Corrupt(format!("no column {name:?}")))
    };
    let strings = |name: &str| -> Result<StringArray> {
        col(name)?
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| Error::Corrupt(format!("column {name:?} is not text")))
    };
    let numbers = |name: &str| -> Result<UInt64Array> {
        col(name)?
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| Error::Corrupt(format!("column {name:?} is not UInt64")))
    };
    let (slo, group) = (strings("slo")?, strings("group")?);
    let (good, bad, total) = (numbers("good")?, numbers("bad")?, numbers("total")?);
    let minute = col("minute")?
        .as_any()
        .downcast_ref::<TimestampSecondArray>()
        .cloned()
        .ok_or_else(|| Error::Corrupt("column \"minute\" is not a timestamp".into()))?;
    // Files written before histograms were kept, and count-only reads, have none.
    let latency = match batch.column_by_name("latency") {
        None => None,
        Some(c) => Some(
            c.as_any()
                .downcast_ref::<BinaryArray>()
                .cloned()
                .ok_or_else(|| Error::Corrupt("column \"latency\" is not binary".into()))?,
        ),
    };
    for i in 0..batch.num_rows() {
        if slo.is_null(i) || group.is_null(i) || minute.is_null(i) {
            return Err(Error::Corrupt(format!("row {i} has nulls")));
        }
        let m = minute.value(i).div_euclid(60);
        if !filter.keeps(slo.value(i), group.value(i), m) {
            continue;
        }
        out.push(MinuteRow {
            tenant: tenant.to_string(),
            slo: slo.value(i).to_string(),
            group: group.value(i).to_string(),
            minute: m,
            good: good.value(i),
            bad: bad.value(i),
            total: total.value(i),
            latency: latency
                .as_ref()
                .filter(|l| l.is_valid(i))
                .map(|l| l.value(i).to_vec()),
        });
    }
    Ok(())
}

/// Sums rows with the same key (tenant, SLO, group, minute), minutes rounded down to
/// multiples of `bucket` minutes; their latency histograms are merged.
pub fn merge_rows(rows: impl IntoIterator<Item = MinuteRow>, bucket: i64) -> Vec<MinuteRow> {
    /// (tenant, SLO, group, minute) → (good, bad, total, serialized histograms).
    type Sums = BTreeMap<(String, String, String, i64), (u64, u64, u64, Vec<Vec<u8>>)>;
    let mut merged = Sums::new();
    for r in rows {
        let m = r.minute.div_euclid(bucket) * bucket;
        let c = merged.entry((r.tenant, r.slo, r.group, m)).or_default();
        c.0 += r.good;
        c.1 += r.bad;
        c.2 += r.total;
        c.3.extend(r.latency);
    }
    merged
        .into_iter()
        .map(
            |((tenant, slo, group, minute), (good, bad, total, latency))| MinuteRow {
                tenant,
                slo,
                group,
                minute,
                good,
                bad,
                total,
                latency: merge_latency(latency),
            },
        )
        .collect()
}

/// One serialized histogram holding all of `parts`; unreadable parts are left out.
fn merge_latency(mut parts: Vec<Vec<u8>>) -> Option<Vec<u8>> {
    if parts.len() <= 1 {
        return parts.pop();
    }
    let mut sum = latency::histogram();
    for p in &parts {
        match latency::deserialize(p) {
            Ok(h) => latency::merge(&mut sum, &h),
            Err(e) => {
                tracing::warn!(error = %e, "A stored latency histogram is left out of a merge.")
            }
        }
    }
    Some(latency::serialize(&sum))
}

fn encode_parquet(batch: &RecordBatch) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buf))
}

impl Store {
    /// A store over `objects`; `location` names it in messages.
    pub fn new(objects: Arc<dyn ObjectStore>, location: String, options: StoreOptions) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            objects,
            location,
            options,
            seq: AtomicU64::new(now),
            stats: StoreStats::default(),
            gate: tokio::sync::RwLock::new(()),
            events: std::sync::Mutex::default(),
        }
    }

    /// The store at `url`: `s3://bucket/prefix` (credentials and region from the
    /// `AWS_*` environment variables) or a local directory.
    pub fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let objects: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| Error::Storage(format!("cannot open {url}: {e}")))?;
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        } else if url.contains("://") && !url.starts_with("file://") {
            return Err(Error::Storage(format!(
                "unsupported storage URL {url:?}: use a directory or s3://bucket/prefix"
            )));
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("cannot create {dir}: {e}")))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| Error::Storage(format!("cannot open {dir}: {e}")))?
                    .with_automatic_cleanup(true),
            )
        };
        Ok(Self::new(objects, url.to_string(), options))
    }

    /// The object store the tables are in (for DataFusion).
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// The store's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn partition(table: &str, tenant: &str, day: i64) -> Path {
        Path::from(format!("{table}/tenant={tenant}/date={}", date_of_day(day)))
    }

    /// Held by a query that reads both the engine's tail and the files: no flush moves
    /// rows between them meanwhile.
    pub async fn read_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Keeps alert events for the next flush.
    pub fn record(&self, events: impl IntoIterator<Item = AlertEvent>) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(events);
    }

    /// `tenant`'s alert events not yet written.
    pub fn unflushed_events(&self, tenant: &str) -> Vec<AlertEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.tenant == tenant)
            .cloned()
            .collect()
    }

    async fn flush_events(&self) {
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
                self.record(events);
            }
        }
    }

    /// Writes the minutes `engine` counted since the last flush, and the alert events
    /// recorded; what cannot be written is kept for the next flush. Returns the minute
    /// rows written.
    pub async fn flush(&self, engine: &slotel_compute::Engine) -> usize {
        let _gate = self.gate.write().await;
        self.flush_events().await;
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
    async fn write_file(&self, dir: &Path, rows: &[MinuteRow], first: Option<u64>) -> Result<u64> {
        let refs: Vec<&MinuteRow> = rows.iter().collect();
        self.write_batch(dir, &rows_to_batch(&refs)?, first).await
    }

    /// Writes one Parquet file holding `batch` in `dir`.
    async fn write_batch(
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

    /// The partitions of `table` (per tenant, when given) and their Unix day.
    async fn partitions(
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

    async fn files(&self, dir: &Path) -> Result<Vec<(Path, FileRange)>> {
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
    async fn read_file(
        &self,
        tenant: &str,
        path: &Path,
        columns: Columns,
        filter: &RowFilter<'_>,
    ) -> Result<Vec<MinuteRow>> {
        let bytes = self
            .objects
            .get(path)
            .await
            .map_err(|e| Error::Storage(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
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
                match self.read_file(&t, &path, columns, filter).await {
                    Ok(rows) => {
                        stats.files += 1;
                        stats.rows += rows.len() as u64;
                        each(rows);
                    }
                    Err(e) => {
                        stats.corrupt += 1;
                        self.quarantine(&path, &e).await;
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Merges partitions of `sli_minute` with many files into one, refreshes the hourly
    /// rollup of the days it merged, and deletes partitions past their retention.
    /// `today` is the current Unix day.
    pub async fn maintain(&self, today: i64) -> Result<()> {
        for (tenant, day, dir) in self.partitions(SLI_MINUTE, None).await? {
            if day < today - i64::from(self.options.minute_retention_days) {
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

    async fn compact(
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
    async fn quarantine(&self, path: &Path, e: &Error) {
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

    async fn expire(&self, dir: &Path) -> Result<()> {
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

    /// Bytes and files per table, for reports.
    pub async fn usage(&self) -> Result<HashMap<String, (u64, u64)>> {
        let metas: Vec<_> = self
            .objects
            .list(None)
            .try_collect()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        let mut out: HashMap<String, (u64, u64)> = HashMap::new();
        for m in metas {
            if let Some(table) = m.location.parts().next() {
                let e = out.entry(table.as_ref().to_string()).or_default();
                e.0 += 1;
                e.1 += m.size;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(slo: &str, minute: i64, good: u64, total: u64) -> MinuteRow {
        MinuteRow {
            tenant: "t1".into(),
            slo: slo.into(),
            group: String::new(),
            minute,
            good,
            bad: total - good,
            total,
            latency: None,
        }
    }

    fn store(dir: &std::path::Path, compact_min_files: usize) -> Store {
        Store::open(
            dir.to_str().unwrap(),
            StoreOptions {
                compact_min_files,
                ..StoreOptions::default()
            },
        )
        .unwrap()
    }

    async fn read_all(s: &Store) -> (Vec<MinuteRow>, ScanStats) {
        let mut rows = Vec::new();
        let stats = s
            .scan(SLI_MINUTE, None, 0, i64::MAX / 120, |r| rows.extend(r))
            .await
            .unwrap();
        (merge_rows(rows, 1), stats)
    }

    const DAY: i64 = 1440;
    const D0: i64 = 20_000 * DAY;

    #[tokio::test]
    async fn latency_histograms_round_trip_merge_and_are_left_out_of_count_scans() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 16);
        let with_ms = |minute: i64, ms: &[u64]| {
            let mut h = latency::histogram();
            for m in ms {
                latency::record(&mut h, m * 1000);
            }
            MinuteRow {
                latency: Some(latency::serialize(&h)),
                ..row("a", minute, ms.len() as u64, ms.len() as u64)
            }
        };
        let rows = vec![
            with_ms(D0, &[10, 20]),
            with_ms(D0, &[30]),
            with_ms(D0 + 1, &[40]),
            row("b", D0, 1, 1),
        ];
        assert!(s.write_minutes(rows).await.is_empty());
        // Count scans do not decode the histograms.
        let (counted, _) = read_all(&s).await;
        assert!(counted.iter().all(|r| r.latency.is_none()));
        let mut read = Vec::new();
        let filter = RowFilter::minutes(D0, D0 + 1);
        s.scan_where(SLI_MINUTE, Some("t1"), &filter, Columns::All, |r| {
            read.extend(r)
        })
        .await
        .unwrap();
        let merged = merge_rows(read, 60);
        assert_eq!(merged.len(), 2);
        let h = latency::deserialize(merged[0].latency.as_ref().unwrap()).unwrap();
        assert_eq!(
            (merged[0].slo.as_str(), merged[0].total, h.len()),
            ("a", 4, 4)
        );
        let max = latency::quantile_seconds(&h, 1.0).unwrap();
        assert!((0.04..=0.0404).contains(&max), "{max}");
        assert_eq!(merged[1].latency, None);
    }

    #[tokio::test]
    async fn rows_round_trip_by_tenant_and_date() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 16);
        let mut other = row("b", D0 + 5, 1, 1);
        other.tenant = "t2".into();
        let rows = vec![row("a", D0 + 1, 9, 10), row("a", D0 + DAY + 1, 5, 5), other];
        assert!(s.write_minutes(rows.clone()).await.is_empty());
        assert!(
            dir.path()
                .join("sli_minute/tenant=t1/date=2024-10-04")
                .is_dir()
        );
        assert!(
            dir.path()
                .join("sli_minute/tenant=t1/date=2024-10-05")
                .is_dir()
        );
        let (got, stats) = read_all(&s).await;
        assert_eq!(stats.files, 3);
        let mut want = rows;
        want.sort_by(|a, b| (&a.tenant, a.minute).cmp(&(&b.tenant, b.minute)));
        assert_eq!(got, want);
        // Only the tenant asked for, and only the minutes asked for.
        let mut only = Vec::new();
        s.scan(SLI_MINUTE, Some("t1"), D0, D0 + 10, |r| only.extend(r))
            .await
            .unwrap();
        assert_eq!(only, vec![row("a", D0 + 1, 9, 10)]);
    }

    #[tokio::test]
    async fn compaction_merges_files_without_changing_sums_and_rolls_up_closed_days() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 3);
        for i in 0..5 {
            s.write_minutes(vec![row("a", D0 + 61, 1, 2), row("a", D0 + i, 1, 1)])
                .await;
        }
        let (before, _) = read_all(&s).await;
        s.maintain(D0 / DAY).await.unwrap();
        let (after, stats) = read_all(&s).await;
        assert_eq!(before, after);
        assert_eq!(stats.files, 1);
        assert_eq!(
            after.iter().find(|r| r.minute == D0 + 61).unwrap().total,
            10
        );
        // The day closes: one file stays, and the hours are rolled up.
        s.maintain(D0 / DAY + 1).await.unwrap();
        let mut hours = Vec::new();
        s.scan(SLI_HOUR, None, 0, i64::MAX / 120, |r| hours.extend(r))
            .await
            .unwrap();
        let hours: Vec<_> = hours
            .iter()
            .map(|r| (r.minute - D0, r.good, r.total))
            .collect();
        assert_eq!(hours, [(0, 5, 5), (60, 5, 10)]);
    }

    #[tokio::test]
    async fn a_crash_between_compaction_and_delete_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 16);
        for _ in 0..3 {
            s.write_minutes(vec![row("a", D0, 1, 1)]).await;
        }
        // What compaction writes before it deletes: the merged file, with the originals
        // still there.
        let part = Path::from("sli_minute/tenant=t1/date=2024-10-04");
        let files = s.files(&part).await.unwrap();
        let first = files[0].1.first;
        s.write_file(&part, &[row("a", D0, 3, 3)], Some(first))
            .await
            .unwrap();
        let (got, stats) = read_all(&s).await;
        assert_eq!(stats.files, 1);
        assert_eq!(got, vec![row("a", D0, 3, 3)]);
    }

    #[tokio::test]
    async fn corrupt_files_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 2);
        s.write_minutes(vec![row("a", D0, 1, 1)]).await;
        s.write_minutes(vec![row("a", D0, 2, 2)]).await;
        let part = dir.path().join("sli_minute/tenant=t1/date=2024-10-04");
        let mut names: Vec<_> = std::fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        // Truncate the first file.
        let bytes = std::fs::read(&names[0]).unwrap();
        std::fs::write(&names[0], &bytes[..bytes.len() / 2]).unwrap();
        let (got, stats) = read_all(&s).await;
        assert_eq!((stats.files, stats.corrupt), (1, 1));
        assert_eq!(got, vec![row("a", D0, 2, 2)]);
        assert_eq!(s.stats().corrupt_files.load(Ordering::Relaxed), 1);
        // It was moved aside: the next read does not meet it, and compaction goes on.
        assert!(
            dir.path()
                .join("quarantine")
                .join(names[0].strip_prefix(dir.path()).unwrap())
                .is_file()
        );
        assert_eq!(read_all(&s).await.1.corrupt, 0);
        s.maintain(D0 / DAY).await.unwrap();
        assert_eq!(read_all(&s).await.0, vec![row("a", D0, 2, 2)]);
    }

    #[tokio::test]
    async fn failed_writes_hand_the_rows_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 16);
        // A file where the tenant's directory must go: the write fails.
        std::fs::create_dir_all(dir.path().join("sli_minute")).unwrap();
        std::fs::write(dir.path().join("sli_minute/tenant=t1"), b"x").unwrap();
        let rows = vec![row("a", D0, 1, 1)];
        assert_eq!(s.write_minutes(rows.clone()).await, rows);
        assert_eq!(s.stats().write_errors.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn retention_deletes_old_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 16);
        s.write_minutes(vec![row("a", D0, 1, 1), row("a", D0 + 100 * DAY, 1, 1)])
            .await;
        s.maintain(D0 / DAY + 100).await.unwrap();
        let (got, _) = read_all(&s).await;
        assert_eq!(got, vec![row("a", D0 + 100 * DAY, 1, 1)]);
        assert_eq!(s.stats().partitions_expired.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn dates_and_days() {
        assert_eq!(date_of_day(0), "1970-01-01");
        assert_eq!(date_of_day(20_000), "2024-10-04");
        assert_eq!(day_of_date("2024-10-04"), Some(20_000));
        assert_eq!(day_of_date("nope"), None);
    }
}
