//! Where files live: `<table>/tenant=<t>/date=<yyyy-mm-dd>/<seq>[-<first>].parquet`,
//! and which files of a partition are live.

use super::*;

/// A file's place in its partition: the numbers it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

pub(crate) fn file_range(path: &Path) -> Option<FileRange> {
    let name = path.filename()?.strip_suffix(".parquet")?;
    match name.split_once('-') {
        None => {
            let n = name.parse().ok()?;
            Some(FileRange { first: n, last: n })
        }
        Some((last, first)) => Some(FileRange {
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        }),
    }
}

/// The files of a partition that are not covered by another (compacted) file.
pub(crate) fn live_files(files: &[(Path, FileRange)]) -> Vec<(Path, FileRange)> {
    files
        .iter()
        .filter(|(_, r)| {
            !files
                .iter()
                .any(|(_, o)| o != r && o.first <= r.first && r.last <= o.last)
        })
        .cloned()
        .collect()
}

/// `yyyy-mm-dd` of a Unix day: the `date` partition.
pub(crate) fn date_of_day(day: i64) -> String {
    let d = jiff::civil::Date::new(1970, 1, 1)
        .expect("the epoch is a date")
        .checked_add(jiff::Span::new().days(day))
        .unwrap_or(jiff::civil::Date::MAX);
    d.to_string()
}

/// The Unix day of `yyyy-mm-dd`.
pub(crate) fn day_of_date(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let epoch = jiff::civil::Date::new(1970, 1, 1).ok()?;
    Some(i64::from(epoch.until(d).ok()?.get_days()))
}

/// The `key=value` value of a path segment.
pub(crate) fn segment_value<'a>(segment: &'a str, key: &str) -> Option<&'a str> {
    segment.strip_prefix(key)?.strip_prefix('=')
}

impl Store {
    pub(crate) fn partition(table: &str, tenant: &str, day: i64) -> Path {
        Path::from(format!("{table}/tenant={tenant}/date={}", date_of_day(day)))
    }
}
