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

#![warn(missing_docs, unreachable_pub)]

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
use slotel_model::{GroupKey, Tally};

use crate::alert_events::{ALERT_EVENTS, AlertEvent};
use crate::error::{Error, Result};

pub mod alert_events;
pub mod checkpoint;
pub mod config;
pub mod error;
mod layout;
mod maintain;
mod metrics;
mod read;
pub mod run;
mod schema;
pub mod sql;
pub mod sql_latency;
mod write;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointPlace, CheckpointTarget};
use layout::*;
pub use metrics::StoreCollector;
pub use read::{Columns, KeepSlo, RowFilter};
pub use run::StorageConfig;
use schema::*;
pub use schema::{file_schema, group_column, merge_rows, parse_group_column, rows_to_batch};

/// The per-minute table.
pub const SLI_MINUTE: &str = "sli_minute";
/// The hourly rollup of `sli_minute`, for long ranges.
pub const SLI_HOUR: &str = "sli_hour";

const SECONDS_PER_DAY: i64 = 86_400;
/// Where unreadable files are moved.
pub const QUARANTINE: &str = "quarantine";

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
    /// Files that are damaged (checksum, Parquet decode) and were moved to quarantine.
    pub corrupt_files: AtomicU64,
    /// Partitions compacted.
    pub compactions: AtomicU64,
    /// Partitions deleted by retention.
    pub partitions_expired: AtomicU64,
    /// Reads the object store failed (retried, then reported to the caller).
    pub read_errors: AtomicU64,
    /// Checkpoints published.
    pub checkpoints: AtomicU64,
    /// Checkpoints not published (a write failed; the log keeps the records).
    pub checkpoint_errors: AtomicU64,
    /// The log position of the last checkpoint published.
    pub checkpoint_position: AtomicU64,
    /// Bytes of engine state in the last checkpoint published.
    pub checkpoint_bytes: AtomicU64,
    /// How long the last checkpoint took, from the cut to the rename, in microseconds.
    pub checkpoint_micros: AtomicU64,
}

/// What a scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Files read.
    pub files: u64,
    /// Files skipped because they are damaged (moved to quarantine).
    pub corrupt: u64,
    /// Files deleted by a concurrent compaction between listing and reading.
    pub vanished: u64,
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
    /// Where flushes publish checkpoints, when the engine reads a log.
    checkpoint: std::sync::Mutex<Option<Arc<CheckpointTarget>>>,
    /// The last checkpoint could not be published: files above it are not yet covered,
    /// so compaction waits.
    checkpoint_behind: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
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
            checkpoint: std::sync::Mutex::default(),
            checkpoint_behind: std::sync::atomic::AtomicBool::new(false),
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

    /// Held by a query that reads both the engine's tail and the files: no flush moves
    /// rows between them meanwhile.
    pub async fn read_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Keeps alert events for the next flush.
    pub fn record_events(&self, events: impl IntoIterator<Item = AlertEvent>) {
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
mod tests;
