//! The storage counters on `/metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Store;

/// The storage counters, for `/metrics`.
#[derive(Debug)]
pub struct StoreCollector(pub Arc<Store>);

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.0.stats();
        let counters = [
            (
                "storage_files_written",
                "Parquet files written by flushes",
                &s.files_written,
            ),
            (
                "storage_rows_written",
                "Rows written by flushes",
                &s.rows_written,
            ),
            (
                "storage_bytes_written",
                "Bytes written by flushes",
                &s.bytes_written,
            ),
            (
                "storage_write_errors",
                "Flushes of a partition that failed; their rows stay in memory and are retried",
                &s.write_errors,
            ),
            (
                "storage_corrupt_files",
                "Stored files found damaged (checksum, Parquet decode), skipped and moved to quarantine",
                &s.corrupt_files,
            ),
            (
                "storage_read_errors",
                "Reads the object store failed; retried with backoff, then reported (never quarantined)",
                &s.read_errors,
            ),
            (
                "storage_compactions",
                "Partitions merged into one file",
                &s.compactions,
            ),
            (
                "storage_partitions_expired",
                "Partitions deleted by retention",
                &s.partitions_expired,
            ),
            (
                "checkpoints",
                "Checkpoints published (minutes written, position of the log saved)",
                &s.checkpoints,
            ),
            (
                "checkpoint_errors",
                "Checkpoints not published because a write failed; the log keeps their records",
                &s.checkpoint_errors,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "checkpoint_position",
                "The log position the last published checkpoint covers",
                &s.checkpoint_position,
            ),
            (
                "checkpoint_state_bytes",
                "Bytes of engine state in the last published checkpoint",
                &s.checkpoint_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value.load(Relaxed) as i64);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let took = ConstGauge::new(s.checkpoint_micros.load(Relaxed) as f64 / 1e6);
        let metric = encoder.encode_descriptor(
            "checkpoint_duration_seconds",
            "How long the last published checkpoint took, from the cut to the rename",
            None,
            took.metric_type(),
        )?;
        took.encode(metric)?;
        Ok(())
    }
}
