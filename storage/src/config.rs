//! The `storage:` section of the configuration file, its defaults and its resolution.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use slotel_model::time::optional_duration as duration;

use crate::{StorageConfig, StoreOptions};

/// `storage:` — the Parquet tables.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    url: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    flush_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    maintenance_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    minute_retention: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    hour_retention: Option<Duration>,
    compact_min_files: Option<usize>,
    flush_max_rows: Option<usize>,
}

fn days(d: Duration) -> u32 {
    u32::try_from(d.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX)
}

impl StorageFile {
    /// The settings: what is set here, the defaults elsewhere. A relative directory is
    /// relative to `base` (the configuration file's folder); the default is
    /// `DATA_DIR/tables`.
    pub fn resolve(self, data_dir: &Path, base: &Path) -> StorageConfig {
        let ds = StoreOptions::default();
        StorageConfig {
            url: match self.url {
                Some(u) if u.contains("://") => u,
                Some(dir) => if Path::new(&dir).is_absolute() {
                    PathBuf::from(dir)
                } else {
                    base.join(dir)
                }
                .display()
                .to_string(),
                None => data_dir.join("tables").display().to_string(),
            },
            flush_interval: self
                .flush_interval
                .unwrap_or(Duration::from_secs(60))
                .max(Duration::from_millis(100)),
            flush_max_rows: self.flush_max_rows.unwrap_or(100_000).max(1),
            maintenance_interval: self
                .maintenance_interval
                .unwrap_or(Duration::from_secs(600))
                .max(Duration::from_secs(1)),
            options: StoreOptions {
                minute_retention_days: self.minute_retention.map_or(ds.minute_retention_days, days),
                hour_retention_days: self.hour_retention.map_or(ds.hour_retention_days, days),
                compact_min_files: self.compact_min_files.unwrap_or(ds.compact_min_files),
            },
        }
    }
}
