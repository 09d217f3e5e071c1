//! The store against a local directory.

use super::*;

fn row(slo: &str, minute: i64, good: u64, total: u64) -> MinuteRow {
    MinuteRow {
        tenant: "t1".into(),
        slo: slo.into(),
        group: GroupKey::WHOLE,
        minute,
        tally: Tally::new(good, total),
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
        (merged[0].slo.as_str(), merged[0].tally.total, h.len()),
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
    s.maintain(D0 / DAY, 0).await.unwrap();
    let (after, stats) = read_all(&s).await;
    assert_eq!(before, after);
    assert_eq!(stats.files, 1);
    assert_eq!(
        after
            .iter()
            .find(|r| r.minute == D0 + 61)
            .unwrap()
            .tally
            .total,
        10
    );
    // The day closes: one file stays, and the hours are rolled up.
    s.maintain(D0 / DAY + 1, 0).await.unwrap();
    let mut hours = Vec::new();
    s.scan(SLI_HOUR, None, 0, i64::MAX / 120, |r| hours.extend(r))
        .await
        .unwrap();
    let hours: Vec<_> = hours
        .iter()
        .map(|r| (r.minute - D0, r.tally.good, r.tally.total))
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
    s.maintain(D0 / DAY, 0).await.unwrap();
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
    // An SLO window of 400 days keeps the minutes past the 90 days of retention.
    s.maintain(D0 / DAY + 100, 401).await.unwrap();
    let (got, _) = read_all(&s).await;
    assert_eq!(got.len(), 2);
    assert_eq!(s.stats().partitions_expired.load(Ordering::Relaxed), 0);
    s.maintain(D0 / DAY + 100, 0).await.unwrap();
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

/// An object store that fails `get` of paths ending in `target` with `error` (`None`:
/// not found) the first `times` times.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn ObjectStore>,
    target: String,
    times: std::sync::atomic::AtomicU32,
    not_found: bool,
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        if location.as_ref().ends_with(&self.target)
            && self
                .times
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(if self.not_found {
                object_store::Error::NotFound {
                    path: location.to_string(),
                    source: "deleted by a compaction".into(),
                }
            } else {
                object_store::Error::Generic {
                    store: "flaky",
                    source: "connection reset by peer".into(),
                }
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The file `name` is where it was written, and nothing went to quarantine.
fn assert_in_place(dir: &std::path::Path, name: &str) {
    assert!(!dir.join(QUARANTINE).exists());
    assert!(
        dir.join("sli_minute/tenant=t1/date=2024-10-04")
            .join(name)
            .is_file()
    );
}

/// A store over `dir` whose first file fails `times` reads (as not found, or as a
/// transient error), and that file's name.
async fn flaky_store(dir: &std::path::Path, times: u32, not_found: bool) -> (Store, String) {
    let local = store(dir, 100);
    local.write_minutes(vec![row("a", D0, 1, 1)]).await;
    local.write_minutes(vec![row("a", D0, 2, 2)]).await;
    let part = dir.join("sli_minute/tenant=t1/date=2024-10-04");
    let mut names: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let flaky = Flaky {
        inner: Arc::clone(local.objects()),
        target: names[0].clone(),
        times: std::sync::atomic::AtomicU32::new(times),
        not_found,
    };
    (
        Store::new(Arc::new(flaky), "flaky".into(), StoreOptions::default()),
        names[0].clone(),
    )
}

#[tokio::test]
async fn transient_read_errors_are_retried_and_never_quarantine_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = flaky_store(dir.path(), 2, false).await;
    let (got, stats) = read_all(&s).await;
    assert_eq!((stats.files, stats.corrupt, stats.vanished), (2, 0, 0));
    assert_eq!(got, vec![row("a", D0, 3, 3)]);
    assert_eq!(s.stats().read_errors.load(Ordering::Relaxed), 2);
    // A store that keeps failing is an error for the caller, and the file stays.
    let dir = tempfile::tempdir().unwrap();
    let (s, name) = flaky_store(dir.path(), 100, false).await;
    let err = s
        .scan(SLI_MINUTE, None, D0 - 10, D0 + 10, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    assert_eq!(s.stats().corrupt_files.load(Ordering::Relaxed), 0);
    assert_eq!(s.stats().read_errors.load(Ordering::Relaxed), 4);
    assert_in_place(dir.path(), &name);
}

#[tokio::test]
async fn a_file_that_vanished_under_a_compaction_is_skipped_not_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (s, name) = flaky_store(dir.path(), 1, true).await;
    let (got, stats) = read_all(&s).await;
    assert_eq!((stats.files, stats.corrupt, stats.vanished), (1, 0, 1));
    assert_eq!(got, vec![row("a", D0, 2, 2)]);
    assert_eq!(s.stats().corrupt_files.load(Ordering::Relaxed), 0);
    assert_in_place(dir.path(), &name);
}

#[test]
fn the_retention_floor_is_the_longest_window_and_a_day() {
    let engine = slotel_compute::Engine::new(Arc::new(slotel_model::time::ManualClock::new(0)));
    assert_eq!(crate::run::retention_floor_days(&engine), 1);
    let slos = "slos:
  - { name: a, service: a, objective: 99, window: 30d, sli: { spans: { good: { status: not_error } } } }
  - { name: b, service: b, objective: 99, window: 400d, sli: { spans: { good: { status: not_error } } } }
";
    engine.load(slotel_spec::parse_native(std::path::Path::new("t.yaml"), slos).unwrap());
    assert_eq!(crate::run::retention_floor_days(&engine), 401);
}
