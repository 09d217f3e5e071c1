//! The one door the HTTP handlers read SLO data through: the engine's in-memory minutes
//! and, for what the engine no longer holds, the Parquet tables.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use slotel_compute::alerting::Evaluator;
use slotel_compute::latency::{self, Histogram};
use slotel_compute::window::MinuteSeries;
use slotel_compute::{Engine, Minutes};
use slotel_model::catalog;
use slotel_model::{GroupKey, SloDef};

use crate::side::{self, HealthHistory, SideSeries};
use slotel_storage::sql::{self, SqlError, SqlLimits};
use slotel_storage::{Columns, RowFilter, SLI_MINUTE, Store};

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
    /// Samples (series times minutes) one PromQL query may load, as Prometheus'
    /// `--query.max-samples`; past it the query fails.
    pub max_samples: usize,
    /// SQL queries running at once; more are refused as retryable.
    pub sql_concurrency: usize,
}

impl ApiOptions {
    /// The permits of [`QueryEngine::sql_slots`] for these options.
    pub fn sql_slots(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(self.sql_concurrency.max(1)))
    }
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            sql_timeout: Duration::from_secs(30),
            sql_memory_bytes: 256 << 20,
            sql_max_rows: 100_000,
            slo_series_in_metrics: false,
            max_samples: 10_000_000,
            sql_concurrency: 4,
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

/// One SLO (or one group of it) whose minutes a read needs, from minute `lo` on.
#[derive(Debug, Clone, Copy)]
pub struct MinutesWanted<'a> {
    /// The SLO's name.
    pub name: &'a str,
    /// The group's labels, `None` (or empty) for the SLO as a whole.
    pub group: Option<&'a [(String, String)]>,
    /// The first minute needed.
    pub lo: i64,
}

/// A future of [`RemoteMinutes`], boxed so that the source can be a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Per-minute (counted, total) counts of one want, and the histogram bound its latency
/// SLI counts at.
pub type WantCounts = (Vec<(u64, u64)>, Option<f64>);

/// The minutes of SLOs whose counts other processes hold: a compute node's view of its
/// cluster, whose partitions' owners each count a part of every SLO.
pub trait RemoteMinutes: Send + Sync {
    /// The counts of minutes `want.lo..=hi` of each of `wants` (as the engine's rings
    /// hold them) summed over every partition, in their order; `None` for an SLO or
    /// group no partition has. An error (saying why) when some partition has no owner
    /// answering: an exact answer or none.
    fn counts<'a>(
        &'a self,
        tenant: &'a str,
        wants: &'a [MinutesWanted<'a>],
        hi: i64,
    ) -> BoxFuture<'a, Result<Vec<Option<WantCounts>>, String>>;

    /// Every partition's stored files and unflushed minutes of `tenant`, each owner's
    /// listed at one instant (no flush between), for SQL; an error when some partition
    /// has no owner answering.
    fn sql_tables<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<RemoteTables, String>>;

    /// The latency histograms of `tenant`'s SLO `name` at minutes `lo..=hi`, every
    /// partition's merged; `None` for an unknown SLO or one without durations.
    fn latency<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        lo: i64,
        hi: i64,
    ) -> BoxFuture<'a, Result<Option<MinuteHistograms>, String>>;

    /// The groups of `tenant`'s grouped SLOs that any partition has, by SLO name.
    fn groups<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<SloGroups, String>>;

    /// The alert rules' states, as the node evaluating them last saved them (for the
    /// active-alert and tier-state series); an error when they cannot be read.
    fn alert_states(&self) -> BoxFuture<'_, Result<Evaluator, String>>;
}

/// Latency histograms by minute.
pub type MinuteHistograms = BTreeMap<i64, Histogram<u64>>;

/// A group's labels, in `group_by` order.
pub type GroupLabels = Vec<(String, String)>;

/// Each grouped SLO's groups, by SLO name.
pub type SloGroups = BTreeMap<String, Vec<GroupLabels>>;

/// A cluster's tables for one tenant's SQL.
pub struct RemoteTables {
    /// The store the files are in.
    pub objects: Arc<dyn object_store::ObjectStore>,
    /// `sli_minute` files (paths in `objects`).
    pub minute_files: Vec<String>,
    /// `sli_hour` files.
    pub hour_files: Vec<String>,
    /// `alert_events` files.
    pub event_files: Vec<String>,
    /// Unflushed minutes (`sli_minute`'s columns).
    pub tail: Vec<RecordBatch>,
}

/// The counts a read needs are not all available now (a cluster's partition has no
/// owner answering); the text says which and why.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

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
    /// On a compute node: where the SLOs' counts are (the engine then holds only the
    /// SLOs' definitions).
    pub remote: Option<Arc<dyn RemoteMinutes>>,
    /// SQL queries that may run at once (`options.sql_concurrency` permits).
    pub sql_slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// The series served beside the SLO series for `tenant` (active alerts, tier states,
    /// slotel's own health) that selectors with metric `names` may pick: only those kinds
    /// are built, and all of them when a selector names no metric (`None`). On a compute
    /// node the alert states are those the evaluating node saved; unavailable when they
    /// cannot be read.
    pub async fn side_series(
        &self,
        tenant: &str,
        names: &[Option<&str>],
    ) -> Result<Vec<SideSeries>, Unavailable> {
        let wants = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| n.is_none_or(f));
        let now = self.engine.now_nanos();
        let mut out = Vec::new();
        let (alert, tier) = (
            wants(&|n| n == catalog::ALERT_METRIC),
            wants(&|n| n == catalog::TIER_STATE_METRIC),
        );
        if alert || tier {
            let remote_states = match &self.remote {
                Some(remote) => Some(Mutex::new(
                    remote.alert_states().await.map_err(Unavailable)?,
                )),
                _ => None,
            };
            let states = remote_states.as_ref().unwrap_or(&self.alerts);
            if alert {
                out.extend(side::alert_series(states, tenant, now));
            }
            if tier {
                out.extend(side::tier_state_series(&self.engine, states, tenant, now));
            }
        }
        if wants(&|n| catalog::HEALTH_METRICS.contains(&n)) {
            out.extend(self.health.series(tenant, now));
        }
        Ok(out)
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
    ) -> Result<Option<SloMinutes>, Unavailable> {
        let want = MinutesWanted {
            name,
            group: labels,
            lo,
        };
        Ok(self
            .minutes_many(tenant, &[want], hi)
            .await?
            .pop()
            .flatten())
    }

    /// The minutes `want.lo..=hi` of each of `wants`, in their order (`None` for an
    /// unknown SLO or group): from this process's engine and storage
    /// ([`read_minutes`]), or on a compute node summed over the cluster's partitions.
    pub async fn minutes_many(
        &self,
        tenant: &str,
        wants: &[MinutesWanted<'_>],
        hi: i64,
    ) -> Result<Vec<Option<SloMinutes>>, Unavailable> {
        let Some(remote) = &self.remote else {
            return Ok(read_minutes(&self.engine, self.store.as_deref(), tenant, wants, hi).await);
        };
        let defs = self.engine.slos(tenant);
        let counts = remote
            .counts(tenant, wants, hi)
            .await
            .map_err(Unavailable)?;
        Ok(wants
            .iter()
            .zip(counts)
            .map(|(w, c)| {
                let (counts, effective_threshold) = c?;
                let def = defs.iter().find(|d| d.name == w.name)?;
                Some(SloMinutes {
                    def: Arc::clone(def),
                    series: MinuteSeries::new(w.lo, counts),
                    effective_threshold,
                })
            })
            .collect())
    }

    /// The latency histograms of `tenant`'s SLO `name` at minutes `lo..=hi`, from storage
    /// and the engine's unflushed tail (on a compute node, every partition's, merged);
    /// `None` for an unknown SLO or one without durations, and on a compute node when
    /// some partition has no owner answering.
    pub async fn latency(
        &self,
        tenant: &str,
        name: &str,
        lo: i64,
        hi: i64,
    ) -> Option<BTreeMap<i64, Histogram<u64>>> {
        let Some(remote) = &self.remote else {
            return read_latency(&self.engine, self.store.as_deref(), tenant, name, lo, hi).await;
        };
        match remote.latency(tenant, name, lo, hi).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, slo = name, "No latency: the cluster's histograms are incomplete.");
                None
            }
        }
    }

    /// Runs read-only SQL over `tenant`'s tables.
    pub async fn sql(&self, tenant: &str, query: &str) -> Result<Vec<RecordBatch>, SqlError> {
        let Ok(_slot) = self.sql_slots.try_acquire() else {
            return Err(SqlError::Unavailable(format!(
                "{} SQL queries are running (api.sql_concurrency); retry",
                self.options.sql_concurrency.max(1)
            )));
        };
        let defs = self.engine.slos(tenant);
        if let Some(remote) = &self.remote {
            let t = remote
                .sql_tables(tenant)
                .await
                .map_err(SqlError::Unavailable)?;
            let tables = sql::Tables {
                tail: &[],
                more_tail: &t.tail,
                events: &[],
                defs: &defs,
            };
            let flushed = sql::Flushed::Files {
                objects: &t.objects,
                minute: &t.minute_files,
                hour: &t.hour_files,
                events: &t.event_files,
            };
            return sql::run(flushed, tenant, tables, query, self.sql_limits()).await;
        }
        let Some(store) = &self.store else {
            let tail = self.engine.peek_tail_of(tenant);
            let tables = sql::Tables {
                tail: &tail,
                more_tail: &[],
                events: &[],
                defs: &defs,
            };
            return sql::run(
                sql::Flushed::Nothing,
                tenant,
                tables,
                query,
                self.sql_limits(),
            )
            .await;
        };
        // The files and the unflushed rows as of one instant (no flush in between); the
        // query then runs over exactly those, without holding up the next flush.
        let snapshot = sql::Snapshot::take(store, &self.engine, tenant).await?;
        let tables = sql::Tables {
            tail: &snapshot.tail,
            more_tail: &[],
            events: &snapshot.unflushed_events,
            defs: &defs,
        };
        let flushed = sql::Flushed::Files {
            objects: store.objects(),
            minute: &snapshot.minute,
            hour: &snapshot.hour,
            events: &snapshot.events,
        };
        sql::run(flushed, tenant, tables, query, self.sql_limits()).await
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

/// The latency histograms of `tenant`'s SLO `name` at minutes `lo..=hi` that `engine`
/// and `store` hold; `None` for an unknown SLO or one without durations.
pub async fn read_latency(
    engine: &Engine,
    store: Option<&Store>,
    tenant: &str,
    name: &str,
    lo: i64,
    hi: i64,
) -> Option<BTreeMap<i64, Histogram<u64>>> {
    // No flush moves histograms from the tail to a file while both are read.
    let _gate = match store {
        Some(s) => Some(s.read_gate().await),
        None => None,
    };
    let mut out = engine.latency_tail(tenant, name)?;
    out.retain(|m, _| (lo..=hi).contains(m));
    if let Some(store) = store {
        let keep = |slo: &str, group: &str| slo == name && group.is_empty();
        let filter = RowFilter {
            lo,
            hi,
            keep: Some(&keep),
        };
        let scanned = store
            .scan_where(SLI_MINUTE, Some(tenant), &filter, Columns::All, |rows| {
                let ours = rows.iter().filter(|r| r.slo == name && r.group.is_whole());
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

/// The minutes `want.lo..=hi` of each of `wants` that `engine` and `store` hold, in
/// their order (`None` for an unknown SLO or group). What the engine no longer holds is
/// read from storage in one pass for all of them, keeping only their rows.
pub async fn read_minutes(
    engine: &Engine,
    store: Option<&Store>,
    tenant: &str,
    wants: &[MinutesWanted<'_>],
    hi: i64,
) -> Vec<Option<SloMinutes>> {
    // No flush moves minutes from the engine's unflushed tail to a file while both
    // are read: each is counted once.
    let _gate = match store {
        Some(s) => Some(s.read_gate().await),
        None => None,
    };
    let mut held: Vec<Option<(Minutes, i64)>> = wants
        .iter()
        .map(|w| {
            let m = engine.minutes(tenant, w.name, w.group, w.lo, hi)?;
            Some((m, w.lo))
        })
        .collect();
    if let Some(store) = store {
        // SLO → group → the wants reading it from storage; the row filter tests the
        // stored column form, the rows read are matched by key.
        let mut need: HashMap<&str, HashMap<GroupKey, Vec<usize>>> = HashMap::new();
        let mut columns: HashMap<&str, HashSet<String>> = HashMap::new();
        let (mut scan_lo, mut scan_hi) = (i64::MAX, i64::MIN);
        for (i, (w, h)) in wants.iter().zip(&held).enumerate() {
            let Some((m, lo)) = h.as_ref().filter(|(m, lo)| *lo < m.oldest_held) else {
                continue;
            };
            let key = GroupKey(w.group.unwrap_or_default().to_vec());
            columns
                .entry(w.name)
                .or_default()
                .insert(slotel_storage::group_column(&key));
            need.entry(w.name)
                .or_default()
                .entry(key)
                .or_default()
                .push(i);
            scan_lo = scan_lo.min(*lo);
            scan_hi = scan_hi.max(hi.min(m.oldest_held - 1));
        }
        if !need.is_empty() {
            let keep = |slo: &str, group: &str| {
                columns
                    .get(slo)
                    .is_some_and(|groups| groups.contains(group))
            };
            let filter = RowFilter {
                lo: scan_lo,
                hi: scan_hi,
                keep: Some(&keep),
            };
            let scanned = store
                .scan_where(SLI_MINUTE, Some(tenant), &filter, Columns::Counts, |rows| {
                    for r in rows {
                        let Some(ids) = need.get(r.slo.as_str()).and_then(|g| g.get(&r.group))
                        else {
                            continue;
                        };
                        for &i in ids {
                            let Some((m, lo)) = held[i].as_mut() else {
                                continue;
                            };
                            if r.minute < *lo || r.minute >= m.oldest_held || r.minute > hi {
                                continue;
                            }
                            let c = &mut m.counts[(r.minute - *lo) as usize];
                            c.0 += m.def.counted().raw(&r.tally);
                            c.1 += r.tally.total;
                        }
                    }
                })
                .await;
            if let Err(e) = scanned {
                tracing::warn!(error = %e, "Cannot read stored minutes; answering from memory.");
            }
        }
    }
    held.into_iter()
        .map(|h| {
            let (m, lo) = h?;
            Some(SloMinutes {
                def: m.def,
                series: MinuteSeries::new(lo, m.counts),
                effective_threshold: m.effective_threshold,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotel_compute::MinuteRow;
    use slotel_model::{ManualClock, Tally};
    use slotel_spec::parse_native;

    use slotel_storage::StoreOptions;

    const MIN: i64 = 60_000_000_000;
    /// A minute boundary.
    const NOW_MINUTE: i64 = 29_000_000;

    #[tokio::test]
    async fn sql_past_its_concurrency_is_refused_as_retryable() {
        let engine = Arc::new(Engine::new(Arc::new(ManualClock::new(NOW_MINUTE * MIN))));
        let options = ApiOptions {
            sql_concurrency: 1,
            ..ApiOptions::default()
        };
        let source = QueryEngine {
            engine,
            store: None,
            options,
            alerts: Arc::default(),
            health: Arc::default(),
            remote: None,
            sql_slots: options.sql_slots(),
        };
        let running = source.sql_slots.try_acquire().unwrap();
        match source.sql("default", "SELECT 1 AS one").await {
            Err(SqlError::Unavailable(m)) => {
                assert!(m.contains("1 SQL queries are running"), "{m}")
            }
            other => panic!("{:?}", other.map(|b| b.len())),
        }
        drop(running);
        let batches = source.sql("default", "SELECT 1 AS one").await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }

    fn row(slo: &str, group: &str, minute: i64, good: u64, total: u64) -> MinuteRow {
        MinuteRow {
            tenant: "default".into(),
            slo: slo.into(),
            group: slotel_storage::parse_group_column(group).unwrap(),
            minute,
            tally: Tally::new(good, total),
            latency: None,
        }
    }

    #[tokio::test]
    async fn one_storage_pass_serves_many_slos_and_groups() {
        let engine = Arc::new(Engine::new(Arc::new(ManualClock::new(NOW_MINUTE * MIN))));
        let slos = "slos:
  - { name: a, service: s, objective: 99, window: 1d, sli: { spans: { good: { status: not_error } } } }
  - { name: b, service: s, objective: 99, window: 1d, sli: { spans: { good: { status: not_error } } } }
  - { name: c, service: s, objective: 99, window: 1d, group_by: [region], sli: { spans: { good: { status: not_error } } } }
";
        engine.load(parse_native(std::path::Path::new("t.yaml"), slos).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), StoreOptions::default()).unwrap();
        // Five days ago, past the 3-day rings: only storage has these.
        let old = NOW_MINUTE - 5 * 1440;
        let eu = r#"{"region":"eu"}"#;
        let rows = vec![
            row("a", "", old, 9, 10),
            row("a", "", old + 1, 5, 5),
            row("b", "", old, 1, 2),
            row("c", "", old, 7, 7),
            row("c", eu, old, 3, 4),
            row("gone", "", old, 100, 100),
        ];
        assert!(store.write_minutes(rows).await.is_empty());
        let source = QueryEngine {
            engine,
            store: Some(Arc::new(store)),
            options: ApiOptions::default(),
            alerts: Arc::default(),
            health: Arc::default(),
            remote: None,
            sql_slots: ApiOptions::default().sql_slots(),
        };
        let region = vec![("region".to_string(), "eu".to_string())];
        // A restart makes the stored group known (its minute is too old for the ring).
        source.engine.restore(vec![row("c", eu, old, 3, 4)]);
        let want = |name, group, lo| MinutesWanted { name, group, lo };
        let lo = old - 10;
        let wants = [
            want("a", None, lo),
            want("b", None, old + 1),
            want("c", None, lo),
            want("c", Some(region.as_slice()), lo),
            want("gone", None, lo),
        ];
        let got = source
            .minutes_many("default", &wants, NOW_MINUTE)
            .await
            .unwrap();
        let sums: Vec<Option<(u64, u64)>> = got
            .iter()
            .map(|m| {
                m.as_ref()
                    .map(|m| slotel_compute::window::MinuteCounts::range(&m.series, lo, NOW_MINUTE))
            })
            .collect();
        // b starts after its only stored minute; the unloaded SLO is unknown.
        assert_eq!(
            sums,
            [
                Some((14, 15)),
                Some((0, 0)),
                Some((7, 7)),
                Some((3, 4)),
                None
            ]
        );
        assert_eq!(
            source
                .minutes("default", "a", None, old + 1, NOW_MINUTE)
                .await
                .unwrap()
                .unwrap()
                .series
                .first(),
            old + 1
        );
    }
}
