//! The columns of `sli_minute` and `sli_hour` and the conversion between rows and
//! record batches.

use super::*;

/// The `group` column of a group key: a JSON object of its labels in `group_by` order
/// (`{"region":"eu"}`); empty for the SLO as a whole.
pub fn group_column(key: &GroupKey) -> String {
    if key.is_whole() {
        return String::new();
    }
    let map: serde_json::Map<String, serde_json::Value> = key
        .labels()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The group key of a `group` column made by [`group_column`]; `None` when it is not one.
pub fn parse_group_column(column: &str) -> Option<GroupKey> {
    if column.is_empty() {
        return Some(GroupKey::WHOLE);
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(column).ok()?;
    map.into_iter()
        .map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect::<Option<Vec<_>>>()
        .map(GroupKey)
}

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
pub(crate) const COUNT_COLUMNS: [&str; 6] = ["slo", "group", "minute", "good", "bad", "total"];

/// Rows as one record batch of [`file_schema`].
pub fn rows_to_batch(rows: &[&MinuteRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.slo))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| group_column(&r.group)),
        )),
        Arc::new(
            TimestampSecondArray::from_iter_values(rows.iter().map(|r| r.minute * 60))
                .with_timezone("UTC"),
        ),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.tally.good),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.tally.bad),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.tally.total),
        )),
        Arc::new(BinaryArray::from_iter(
            rows.iter().map(|r| r.latency.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(file_schema(), cols)?)
}

/// The rows of a record batch of [`file_schema`], for `tenant`, that `filter` keeps.
pub(crate) fn batch_to_rows(
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
            group: parse_group_column(group.value(i)).ok_or_else(|| {
                Error::Corrupt(format!("row {i} has an invalid group {:?}", group.value(i)))
            })?,
            minute: m,
            tally: Tally {
                good: good.value(i),
                bad: bad.value(i),
                total: total.value(i),
            },
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
    /// (tenant, SLO, group, minute) → (events, serialized histograms).
    type Sums = BTreeMap<(String, String, GroupKey, i64), (Tally, Vec<Vec<u8>>)>;
    let mut merged = Sums::new();
    for r in rows {
        let m = r.minute.div_euclid(bucket) * bucket;
        let c = merged.entry((r.tenant, r.slo, r.group, m)).or_default();
        c.0 += r.tally;
        c.1.extend(r.latency);
    }
    merged
        .into_iter()
        .map(
            |((tenant, slo, group, minute), (tally, latency))| MinuteRow {
                tenant,
                slo,
                group,
                minute,
                tally,
                latency: merge_latency(latency),
            },
        )
        .collect()
}

/// One serialized histogram holding all of `parts`; unreadable parts are left out.
pub(crate) fn merge_latency(mut parts: Vec<Vec<u8>>) -> Option<Vec<u8>> {
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

pub(crate) fn encode_parquet(batch: &RecordBatch) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buf))
}
