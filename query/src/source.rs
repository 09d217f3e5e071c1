//! The one door the HTTP handlers read SLO data through: the engine's in-memory minutes
//! and, for what the engine no longer holds, the Parquet tables.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use slotel_compute::alert::Evaluator;
use slotel_compute::latency::{self, Histogram};
use slotel_compute::window::MinuteSeries;
use slotel_compute::{Engine, SloDef};

use crate::side::{self, HealthHistory, SideSeries};
use crate::sql::{self, SqlError, SqlLimits};
use crate::store::{SLI_MINUTE, Store};

/// Settings of the query API.
#[derive(Debug, Clone, Copy)]
pub struct ApiOptions {
    /// A SQL query running longer is cancelled.
    pub sql_timeout: Duration,
    /// Memory a SQL query may use.
    pub sql_memory_bytes: usize,
    /// Rows a SQL reply may hold.
    pub sql_max_rows: usize,
    /// Whether `/metrics` also carries the SLO series.
    pub slo_series_in_metrics: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            sql_timeout: Duration::from_secs(30),
            sql_memory_bytes: 256 << 20,
            sql_max_rows: 100_000,
            slo_series_in_metrics: false,
        }
    }
}

/// An SLO's (or group's) minutes over a range, from memory and storage.
#[derive(Debug, Clone)]
pub struct SloMinutes {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// Its counts, as the engine's rings hold them.
    pub series: MinuteSeries,
    /// The histogram bound a latency SLI last counted at.
    pub effective_threshold: Option<f64>,
}

/// Reads SLO data for the API: hot minutes from the engine, cold ones from storage.
#[derive(Clone)]
pub struct QueryEngine {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The Parquet tables, when storage is on.
    pub store: Option<Arc<Store>>,
    /// The API's settings.
    pub options: ApiOptions,
    /// The alert rules' state, for the active-alert series.
    pub alerts: Arc<Mutex<Evaluator>>,
    /// slotel's own metrics by minute.
    pub health: Arc<HealthHistory>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// The series served beside the SLO series for `tenant` (active alerts, tier states,
    /// slotel's own health) that selectors with metric `names` may pick: only those kinds
    /// are built, and all of them when a selector names no metric (`None`).
    pub fn side_series(&self, tenant: &str, names: &[Option<&str>]) -> Vec<SideSeries> {
        let wants = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| n.is_none_or(f));
        let now = self.engine.now_nanos();
        let mut out = Vec::new();
        if wants(&|n| n == side::ALERT_METRIC) {
            out.extend(side::alert_series(&self.alerts, tenant, now));
        }
        if wants(&|n| n == side::TIER_STATE_METRIC) {
            out.extend(side::tier_state_series(
                &self.engine,
                &self.alerts,
                tenant,
                now,
            ));
        }
        if wants(&|n| side::HEALTH_METRICS.contains(&n)) {
            out.extend(self.health.series(tenant, now));
        }
        out
    }

    /// The minutes `lo..=hi` of `tenant`'s SLO `name` (or its group with `labels`);
    /// `None` for an unknown SLO or group.
    pub async fn minutes(
        &self,
        tenant: &str,
        name: &str,
        labels: Option<&[(String, String)]>,
        lo: i64,
        hi: i64,
    ) -> Option<SloMinutes> {
        let m = self.engine.minutes(tenant, name, labels, lo, hi)?;
        let mut counts = m.counts;
        if let Some(store) = self.store.as_ref().filter(|_| lo < m.oldest_held) {
            let key = slotel_compute::engine::group_key(labels.unwrap_or_default());
            let counts_bad = m.def.counts_bad();
            let upto = hi.min(m.oldest_held - 1);
            let scanned = store
                .scan(SLI_MINUTE, Some(tenant), lo, upto, |rows| {
                    for r in rows.iter().filter(|r| r.slo == name && r.group == key) {
                        let c = &mut counts[(r.minute - lo) as usize];
                        c.0 += if counts_bad { r.bad } else { r.good };
                        c.1 += r.total;
                    }
                })
                .await;
            if let Err(e) = scanned {
                tracing::warn!(error = %e, slo = name, "Cannot read stored minutes; answering from memory.");
            }
        }
        Some(SloMinutes {
            def: m.def,
            series: MinuteSeries::new(lo, counts),
            effective_threshold: m.effective_threshold,
        })
    }

    /// The latency histograms of `tenant`'s SLO `name` at minutes `lo..=hi`, from storage
    /// and the engine's unflushed tail; `None` for an unknown SLO or one without
    /// durations.
    pub async fn latency(
        &self,
        tenant: &str,
        name: &str,
        lo: i64,
        hi: i64,
    ) -> Option<BTreeMap<i64, Histogram<u64>>> {
        // No flush moves histograms from the tail to a file while both are read.
        let _gate = match &self.store {
            Some(s) => Some(s.read_gate().await),
            None => None,
        };
        let mut out = self.engine.latency_tail(tenant, name)?;
        out.retain(|m, _| (lo..=hi).contains(m));
        if let Some(store) = &self.store {
            let scanned = store
                .scan_latency(SLI_MINUTE, Some(tenant), lo, hi, |rows| {
                    let ours = rows.iter().filter(|r| r.slo == name && r.group.is_empty());
                    for (minute, bytes) in ours.filter_map(|r| Some((r.minute, r.latency.as_ref()?))) {
                        match latency::deserialize(bytes) {
                            Ok(h) => latency::merge(out.entry(minute).or_insert_with(latency::histogram), &h),
                            Err(e) => tracing::warn!(error = %e, slo = name, minute, "A stored latency histogram is skipped."),
                        }
                    }
                })
                .await;
            if let Err(e) = scanned {
                tracing::warn!(error = %e, slo = name, "Cannot read stored latency; answering from memory.");
            }
        }
        Some(out)
    }

    /// Runs read-only SQL over `tenant`'s tables.
    pub async fn sql(&self, tenant: &str, query: &str) -> Result<Vec<RecordBatch>, SqlError> {
        // No flush moves rows from the tail to a file while the query reads both.
        let _gate = match &self.store {
            Some(s) => Some(s.read_gate().await),
            None => None,
        };
        let tail: Vec<_> = self
            .engine
            .peek_tail()
            .into_iter()
            .filter(|r| r.tenant == tenant)
            .collect();
        let defs = self.engine.slos(tenant);
        let events = self
            .store
            .as_ref()
            .map(|s| s.unflushed_events(tenant))
            .unwrap_or_default();
        let tables = sql::Tables {
            tail: &tail,
            events: &events,
            defs: &defs,
        };
        sql::run(
            self.store.as_deref(),
            tenant,
            tables,
            query,
            self.sql_limits(),
        )
        .await
    }

    /// The SQL limits of the options.
    pub fn sql_limits(&self) -> SqlLimits {
        SqlLimits {
            timeout: self.options.sql_timeout,
            memory_bytes: self.options.sql_memory_bytes,
            max_rows: self.options.sql_max_rows,
        }
    }
}
