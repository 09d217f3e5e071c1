//! Read-only SQL over one tenant's tables with DataFusion: the Parquet files and the
//! unflushed tail through one set of tables, with a time limit, a memory limit and a
//! row limit.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use slotel_compute::MinuteRow;
use slotel_model::SloDef;

use crate::alert_events::{self, ALERT_EVENTS, AlertEvent};
use crate::{SLI_HOUR, SLI_MINUTE, Store, date_of_day, file_schema};

/// The URL the tables are registered under, whatever store holds them.
const TABLES_URL: &str = "slotel://tables/";

/// Limits of a SQL query.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// A query running longer is cancelled.
    pub timeout: Duration,
    /// Memory a query's operators may hold (sorts, joins, aggregations).
    pub memory_bytes: usize,
    /// Rows a reply may hold.
    pub max_rows: usize,
}

/// Why a query did not run.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is not valid, not read-only, or failed.
    #[error("{0}")]
    Invalid(String),
    /// The query ran past the time limit and was cancelled.
    #[error("the query ran longer than {0:?} and was cancelled")]
    Timeout(Duration),
    /// The reply would hold more rows than allowed.
    #[error("the result has more than {0} rows: add a LIMIT or aggregate")]
    TooManyRows(usize),
    /// Some of the tables' rows cannot be read now (a cluster's partition has no owner
    /// answering); retrying later can succeed.
    #[error("{0}")]
    Unavailable(String),
}

fn invalid(e: impl std::fmt::Display) -> SqlError {
    SqlError::Invalid(e.to_string())
}

/// The tables a tenant's queries see.
fn tail_batch(tail: &[MinuteRow]) -> datafusion::error::Result<RecordBatch> {
    let refs: Vec<&MinuteRow> = tail.iter().collect();
    let batch = crate::rows_to_batch(&refs)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let dates: Vec<String> = tail
        .iter()
        .map(|r| date_of_day(r.minute.div_euclid(MINUTES_PER_DAY)))
        .collect();
    let mut cols = batch.columns().to_vec();
    cols.push(Arc::new(StringArray::from(dates)) as ArrayRef);
    Ok(RecordBatch::try_new(table_schema(), cols)?)
}

/// `sli_minute`'s columns as queries see them: the file's, and the date partition.
fn table_schema() -> Arc<Schema> {
    with_date(&file_schema())
}

/// A file schema with the `date` partition column after its columns.
fn with_date(schema: &Schema) -> Arc<Schema> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("date", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

fn definitions_batch(defs: &[Arc<SloDef>]) -> datafusion::error::Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("slo", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("objective", DataType::Float64, false),
        Field::new("window", DataType::Utf8, false),
        Field::new("budgeting", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("group_by", DataType::Utf8, false),
    ]));
    let text = |f: &dyn Fn(&SloDef) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(defs.iter().map(|d| f(d))))
    };
    let cols = vec![
        text(&|d| d.name.clone()),
        text(&|d| d.service.clone()),
        text(&|d| d.description.clone().unwrap_or_default()),
        Arc::new(Float64Array::from_iter_values(
            defs.iter().map(|d| d.objective),
        )) as ArrayRef,
        text(&|d| d.window.to_string()),
        text(&|d| d.budgeting.name().to_string()),
        text(&|d| serde_json::to_string(&d.labels).unwrap_or_default()),
        text(&|d| d.group_by.join(",")),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

const MINUTES_PER_DAY: i64 = 1440;
const MS_PER_DAY: i64 = 86_400_000;

fn events_batch(events: &[AlertEvent]) -> datafusion::error::Result<RecordBatch> {
    let refs: Vec<&AlertEvent> = events.iter().collect();
    let batch = alert_events::to_batch(&refs)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let mut cols = batch.columns().to_vec();
    cols.push(Arc::new(StringArray::from_iter_values(
        events
            .iter()
            .map(|e| date_of_day(e.time_ms.div_euclid(MS_PER_DAY))),
    )) as ArrayRef);
    Ok(RecordBatch::try_new(
        with_date(&alert_events::schema()),
        cols,
    )?)
}

/// What a tenant's queries read: the unflushed rows and events, and the definitions.
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    /// The engine's minutes not yet flushed.
    pub tail: &'a [MinuteRow],
    /// More unflushed minutes, as [`tail_ipc`] encoded them elsewhere (the other shards
    /// of a cluster), decoded.
    pub more_tail: &'a [RecordBatch],
    /// Alert events not yet flushed.
    pub events: &'a [AlertEvent],
    /// The loaded SLOs.
    pub defs: &'a [Arc<SloDef>],
}

/// Where a query's flushed rows are.
#[derive(Clone, Copy)]
pub enum Flushed<'a> {
    /// Nowhere: no storage.
    Nothing,
    /// The tenant's folders of one store.
    Store(&'a Store),
    /// Exactly these files of `objects` (paths): the `sli_minute` and `sli_hour` files a
    /// cluster's shards listed together with their unflushed minutes, so that a flush
    /// meanwhile neither adds rows twice nor loses them.
    Files {
        /// The store the paths are in.
        objects: &'a Arc<dyn object_store::ObjectStore>,
        /// `sli_minute` files.
        minute: &'a [String],
        /// `sli_hour` files.
        hour: &'a [String],
        /// `alert_events` files.
        events: &'a [String],
    },
}

impl<'a> From<Option<&'a Store>> for Flushed<'a> {
    fn from(store: Option<&'a Store>) -> Self {
        store.map_or(Flushed::Nothing, Flushed::Store)
    }
}

/// The Parquet files of `table` for `tenant` in `objects` (under `dir/`, when given), as
/// paths of `objects`: what [`Flushed::Files`] names.
pub async fn table_files(
    objects: &dyn object_store::ObjectStore,
    dir: Option<&str>,
    table: &str,
    tenant: &str,
) -> Result<Vec<String>, SqlError> {
    use futures::TryStreamExt;
    let prefix = match dir {
        Some(d) => format!("{d}/{table}/tenant={tenant}"),
        None => format!("{table}/tenant={tenant}"),
    };
    let listed: Vec<_> = objects
        .list(Some(&object_store::path::Path::from(prefix)))
        .try_collect()
        .await
        .map_err(|e| SqlError::Unavailable(format!("cannot list the files of {table}: {e}")))?;
    Ok(listed
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|p| p.ends_with(".parquet"))
        .collect())
}

/// A tenant's tables in `store` at one instant, for [`run`] over [`Flushed::Files`]: the
/// files listed, and the engine's unflushed minutes and events, all under the store's
/// read gate (no flush moves rows between them meanwhile), which is given back before
/// any query runs: a query never holds up a flush.
#[derive(Debug)]
pub struct Snapshot {
    /// `sli_minute` files.
    pub minute: Vec<String>,
    /// `sli_hour` files.
    pub hour: Vec<String>,
    /// `alert_events` files.
    pub events: Vec<String>,
    /// The engine's unflushed minutes of the tenant.
    pub tail: Vec<MinuteRow>,
    /// Alert events not yet written.
    pub unflushed_events: Vec<AlertEvent>,
}

impl Snapshot {
    /// `tenant`'s tables in `store`, with `engine`'s unflushed minutes.
    pub async fn take(
        store: &Store,
        engine: &slotel_compute::Engine,
        tenant: &str,
    ) -> Result<Self, SqlError> {
        let _gate = store.read_gate().await;
        let objects = store.objects().as_ref();
        Ok(Snapshot {
            minute: table_files(objects, None, SLI_MINUTE, tenant).await?,
            hour: table_files(objects, None, SLI_HOUR, tenant).await?,
            events: table_files(objects, None, ALERT_EVENTS, tenant).await?,
            tail: engine.peek_tail_of(tenant),
            unflushed_events: store.unflushed_events(tenant),
        })
    }
}

/// The unflushed minutes `tail` as an Arrow IPC stream of the `sli_minute` columns: what
/// a cluster's shard sends for another node's SQL ([`Tables::more_tail`]).
pub fn tail_ipc(tail: &[MinuteRow]) -> Result<Vec<u8>, SqlError> {
    to_arrow_ipc(&[tail_batch(tail).map_err(invalid)?])
}

/// The batches of an IPC stream written by [`tail_ipc`].
pub fn read_tail_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>, SqlError> {
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(bytes, None).map_err(invalid)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(invalid)
}

/// A session over `tenant`'s tables, with the memory limit of `limits`.
pub async fn context(
    flushed: Flushed<'_>,
    tenant: &str,
    tables: Tables<'_>,
    limits: &SqlLimits,
) -> datafusion::error::Result<SessionContext> {
    let Tables {
        tail,
        more_tail,
        events,
        defs,
    } = tables;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .build_arc()?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(2);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_udaf(crate::sql_latency::merge_udaf());
    ctx.register_udf(crate::sql_latency::quantile_udf());
    let mut tails = vec![tail_batch(tail)?];
    tails.extend(more_tail.iter().cloned());
    let tail = MemTable::try_new(table_schema(), vec![tails])?;
    ctx.register_table("sli_minute_unflushed", Arc::new(tail))?;
    let unflushed = MemTable::try_new(
        with_date(&alert_events::schema()),
        vec![vec![events_batch(events)?]],
    )?;
    ctx.register_table("alert_events_unflushed", Arc::new(unflushed))?;
    let empty = |schema: Arc<Schema>| MemTable::try_new(schema, vec![vec![]]);
    match flushed {
        Flushed::Store(store) => {
            let url = url::Url::parse(TABLES_URL)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            ctx.register_object_store(&url, Arc::clone(store.objects()));
            for (name, table, schema) in [
                ("sli_minute_flushed", SLI_MINUTE, file_schema()),
                ("sli_hour_rolled", SLI_HOUR, file_schema()),
                ("alert_events_flushed", ALERT_EVENTS, alert_events::schema()),
            ] {
                // Only this tenant's folder: other tenants' files are not reachable.
                let path = ListingTableUrl::parse(format!("{TABLES_URL}{table}/tenant={tenant}/"))?;
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet")
                    .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
                let config = ListingTableConfig::new(path)
                    .with_listing_options(options)
                    .with_schema(schema);
                ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
            }
        }
        Flushed::Files {
            objects,
            minute,
            hour,
            events,
        } => {
            let url = url::Url::parse(TABLES_URL)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            ctx.register_object_store(&url, Arc::new(AskedLocations(Arc::clone(objects))));
            for (name, files, schema, time) in [
                ("sli_minute_flushed", minute, file_schema(), "minute"),
                ("sli_hour_rolled", hour, file_schema(), "minute"),
                (
                    "alert_events_flushed",
                    events,
                    alert_events::schema(),
                    "time",
                ),
            ] {
                if files.is_empty() {
                    ctx.register_table(name, Arc::new(empty(with_date(&schema))?))?;
                    continue;
                }
                // Listed files, not folders: their `date` comes from their times.
                let urls = files
                    .iter()
                    .map(|f| ListingTableUrl::parse(format!("{TABLES_URL}{f}")))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(schema);
                let files_table = format!("{name}_files");
                ctx.register_table(
                    files_table.as_str(),
                    Arc::new(ListingTable::try_new(config)?),
                )?;
                ctx.sql(&format!(
                    "CREATE VIEW {name} AS SELECT *, to_char({time}, '%Y-%m-%d') AS date FROM {files_table}"
                ))
                .await?;
            }
        }
        Flushed::Nothing => {
            ctx.register_table("sli_minute_flushed", Arc::new(empty(table_schema())?))?;
            ctx.register_table("sli_hour_rolled", Arc::new(empty(table_schema())?))?;
            let events = with_date(&alert_events::schema());
            ctx.register_table("alert_events_flushed", Arc::new(empty(events)?))?;
        }
    }
    ctx.sql(
        "CREATE VIEW alert_events AS \
         SELECT * FROM alert_events_flushed UNION ALL SELECT * FROM alert_events_unflushed",
    )
    .await?;
    ctx.sql(
        "CREATE VIEW sli_minute AS \
         SELECT * FROM sli_minute_flushed UNION ALL SELECT * FROM sli_minute_unflushed",
    )
    .await?;
    // The days not rolled up yet (today, and a day over until its compaction) are
    // rolled up as they are read, so `sli_hour` covers every day `sli_minute` has.
    ctx.sql(&format!(
        "CREATE VIEW {SLI_HOUR} AS \
         SELECT * FROM sli_hour_rolled UNION ALL \
         SELECT slo, \"group\", arrow_cast(date_trunc('hour', minute), 'Timestamp(Second, Some(\"UTC\"))') AS minute, \
                sum(good) AS good, sum(bad) AS bad, sum(total) AS total, \
                latency_merge(latency) AS latency, date \
         FROM sli_minute WHERE date NOT IN (SELECT DISTINCT date FROM sli_hour_rolled) \
         GROUP BY slo, \"group\", date_trunc('hour', minute), date"
    ))
    .await?;
    let defs = definitions_batch(defs)?;
    let defs = MemTable::try_new(defs.schema(), vec![vec![defs]])?;
    ctx.register_table("slo_definitions", Arc::new(defs))?;
    Ok(ctx)
}

/// Runs the read-only `query` over `tenant`'s tables: the stored files, the unflushed
/// rows and events, and the loaded SLO definitions.
pub async fn run(
    flushed: Flushed<'_>,
    tenant: &str,
    tables: Tables<'_>,
    query: &str,
    limits: SqlLimits,
) -> Result<Vec<RecordBatch>, SqlError> {
    let ctx = context(flushed, tenant, tables, &limits)
        .await
        .map_err(invalid)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let work = async {
        let df = ctx
            .sql_with_options(query, options)
            .await
            .map_err(invalid)?;
        let df = df.limit(0, Some(limits.max_rows + 1)).map_err(invalid)?;
        df.collect().await.map_err(invalid)
    };
    let batches = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| SqlError::Timeout(limits.timeout))??;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows > limits.max_rows {
        return Err(SqlError::TooManyRows(limits.max_rows));
    }
    Ok(batches)
}

/// Batches as a JSON array of row objects.
pub fn to_json(batches: &[RecordBatch]) -> Result<Vec<u8>, SqlError> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(invalid)?;
    writer.finish().map_err(invalid)?;
    let mut out = writer.into_inner();
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
}

/// Batches as an Arrow IPC stream.
pub fn to_arrow_ipc(batches: &[RecordBatch]) -> Result<Vec<u8>, SqlError> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let mut writer = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)
        .map_err(invalid)?;
    for b in batches {
        writer.write(b).map_err(invalid)?;
    }
    writer.finish().map_err(invalid)?;
    writer.into_inner().map_err(invalid)
}

/// A store whose reads name the object asked for. object_store 0.13's `PrefixStore`
/// (which an `s3://bucket/prefix` storage is) answers a head request with the location
/// inside its prefix (`prefix/table/…`), so DataFusion, which checks that a listed file
/// is under its table's path, drops every file named one by one.
#[derive(Debug)]
struct AskedLocations(Arc<dyn object_store::ObjectStore>);

impl std::fmt::Display for AskedLocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for AskedLocations {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        let mut got = self.0.get_opts(location, options).await?;
        got.meta.location = location.clone();
        Ok(got)
    }

    async fn get_ranges(
        &self,
        location: &object_store::path::Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.0.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&object_store::path::Path>,
        offset: &object_store::path::Path,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::RenameOptions,
    ) -> object_store::Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use slotel_model::Tally;

    fn row(slo: &str, minute: i64, good: u64, total: u64) -> MinuteRow {
        MinuteRow {
            tenant: "acme".into(),
            slo: slo.into(),
            group: crate::parse_group_column("").unwrap(),
            minute,
            tally: Tally::new(good, total),
            latency: None,
        }
    }

    #[tokio::test]
    async fn listed_files_and_remote_tails_read_as_the_store_and_its_tail_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), StoreOptions::default()).unwrap();
        let now = 29_000_000;
        // Two flushes, two days: files of two folders.
        assert!(
            store
                .write_minutes(vec![row("a", now - 2, 9, 10), row("b", now - 1, 1, 2)])
                .await
                .is_empty()
        );
        assert!(
            store
                .write_minutes(vec![row("b", now - 3000, 5, 5)])
                .await
                .is_empty()
        );
        // Alert events of two days.
        let event = |time_ms: i64, to: &str| AlertEvent {
            tenant: "acme".into(),
            time_ms,
            slo: "a".into(),
            tier: "page-fast".into(),
            severity: "page".into(),
            from: "inactive".into(),
            to: to.into(),
            burn_rate_long: Some(14.5),
            burn_rate_short: None,
            silenced: false,
            labels: "{}".into(),
        };
        store.record_events([event(now * 60_000 - 1000, "firing")]);
        store.write_events().await;
        store.record_events([event((now - 3000) * 60_000, "pending")]);
        store.write_events().await;
        let tail = vec![row("a", now, 3, 4)];
        let limits = SqlLimits {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            max_rows: 100,
        };
        let query = "SELECT slo, CAST(sum(good) AS BIGINT) AS good, CAST(sum(total) AS BIGINT) AS total, min(date) AS date \
                     FROM sli_minute GROUP BY slo ORDER BY slo";
        let tables = Tables {
            tail: &tail,
            more_tail: &[],
            events: &[],
            defs: &[],
        };
        let direct = run(Flushed::Store(&store), "acme", tables, query, limits)
            .await
            .unwrap();
        let events_query =
            "SELECT time, slo, to_state, burn_rate_long, date FROM alert_events ORDER BY time";
        let direct_events = run(Flushed::Store(&store), "acme", tables, events_query, limits)
            .await
            .unwrap();
        // The same rows as a cluster reads them: the files by name, the tail as IPC.
        use futures::TryStreamExt;
        let listed = |table: &'static str| {
            store
                .objects()
                .list(Some(&object_store::path::Path::from(format!(
                    "{table}/tenant=acme"
                ))))
                .map_ok(|m| m.location.to_string())
                .try_collect::<Vec<String>>()
        };
        let files = listed("sli_minute").await.unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        let event_files = listed("alert_events").await.unwrap();
        assert_eq!(event_files.len(), 2, "{event_files:?}");
        let more = read_tail_ipc(&tail_ipc(&tail).unwrap()).unwrap();
        let tables = Tables {
            tail: &[],
            more_tail: &more,
            events: &[],
            defs: &[],
        };
        let flushed = Flushed::Files {
            objects: store.objects(),
            minute: &files,
            hour: &[],
            events: &event_files,
        };
        let listed = run(flushed, "acme", tables, query, limits).await.unwrap();
        let json = |b: &[RecordBatch]| String::from_utf8(to_json(b).unwrap()).unwrap();
        assert_eq!(json(&listed), json(&direct));
        let listed_events = run(flushed, "acme", tables, events_query, limits)
            .await
            .unwrap();
        assert_eq!(json(&listed_events), json(&direct_events));
        assert!(
            json(&direct_events).contains(r#""to_state":"firing","burn_rate_long":14.5"#),
            "{}",
            json(&direct_events)
        );
        assert!(
            json(&direct).contains(r#""slo":"b","good":6,"total":7"#),
            "{}",
            json(&direct)
        );
    }
}
