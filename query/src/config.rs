//! The `api:` section of the configuration file, its defaults and its resolution.

use std::time::Duration;

use serde::Deserialize;
use slotel_model::time::optional_duration as duration;

use crate::ApiOptions;

/// `api:` — the query API.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    #[serde(default, deserialize_with = "duration")]
    sql_timeout: Option<Duration>,
    sql_memory_bytes: Option<usize>,
    sql_max_rows: Option<usize>,
    slo_series_in_metrics: Option<bool>,
    max_samples: Option<usize>,
    sql_concurrency: Option<usize>,
}

impl ApiFile {
    /// The settings: what is set here, the defaults elsewhere.
    pub fn resolve(self) -> ApiOptions {
        let da = ApiOptions::default();
        ApiOptions {
            sql_timeout: self.sql_timeout.unwrap_or(da.sql_timeout),
            sql_memory_bytes: self.sql_memory_bytes.unwrap_or(da.sql_memory_bytes),
            sql_max_rows: self.sql_max_rows.unwrap_or(da.sql_max_rows),
            slo_series_in_metrics: self
                .slo_series_in_metrics
                .unwrap_or(da.slo_series_in_metrics),
            max_samples: self.max_samples.unwrap_or(da.max_samples),
            sql_concurrency: self.sql_concurrency.unwrap_or(da.sql_concurrency),
        }
    }
}
