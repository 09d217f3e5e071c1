//! The `compute:` section of the configuration file, its defaults and its resolution.

use std::time::Duration;

use serde::Deserialize;
use slotel_model::time::optional_duration as duration;

use crate::EngineConfig;

/// `compute:` — the engine, as the configuration file gives it.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ComputeFile {
    #[serde(default, deserialize_with = "duration")]
    dedup_horizon: Option<Duration>,
    dedup_max_spans: Option<usize>,
}

impl ComputeFile {
    /// The engine's settings: what is set here, the defaults elsewhere; events may be
    /// dated up to `max_future` ahead (the receivers' limit).
    pub fn resolve(self, max_future: Duration) -> EngineConfig {
        let d = EngineConfig::default();
        EngineConfig {
            max_future,
            dedup_horizon: self.dedup_horizon.unwrap_or(d.dedup_horizon),
            dedup_max_spans: self.dedup_max_spans.unwrap_or(d.dedup_max_spans),
            // The server always has storage to page old minutes from.
            dense_minutes: Some(crate::engine::PAGED_DENSE_MINUTES),
        }
    }
}
