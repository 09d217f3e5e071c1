//! The local write-ahead log: segmented files under `DATA_DIR/wal/`, each a run of
//! records `[len: u32 LE][crc32c: u32 LE][payload]`, the payload being the tenant, the
//! signal, the receive time and the request's validated OTLP protobuf bytes as received.
//!
//! A position is a record's byte offset in the whole log: segment files are named by
//! the offset of their first byte (`00000000000000000000.wal`), so an offset finds its
//! segment by name. Appends go to the last segment, which rolls over at
//! `segment_bytes`; [`Fsync`] says when they reach the disk (`always` commits in
//! groups: many appends, one `fdatasync`). On open every segment is checked: a torn
//! record at the end of the last segment (a crash mid-write) is cut off and counted; a
//! bad record anywhere else stops the open with its segment and offset, unless the
//! operator asked for repair, which keeps what is before it and says what was dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use slotel_proto::log::{Entry, Log, Record, SignalKind};
use slotel_proto::{Error, Tenant};

/// The bytes before a record's payload: its length and its CRC32C.
pub const HEADER_BYTES: u64 = 8;

/// The largest payload a record may hold (a request is far smaller).
pub const MAX_RECORD_BYTES: u32 = 256 << 20;

/// How long a client is asked to wait when the log is full.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When appended records reach the disk. Every mode writes a record to the kernel
/// before its append returns, so an acknowledged request survives `kill -9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never forced by slotel (the kernel writes back within about 30 s): survives a
    /// crash of the process, not of the machine.
    Never,
    /// `fdatasync` every interval in the background: a power loss loses at most the
    /// last interval.
    Interval(Duration),
    /// `fdatasync` before an append returns, shared by the appends waiting at the same
    /// time (group commit): survives power loss.
    Always,
}

impl Default for Fsync {
    fn default() -> Self {
        Self::Interval(Duration::from_secs(1))
    }
}

/// Why the log cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file could not be read or written.
    #[error("write-ahead log {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A record before the end of the log is damaged.
    #[error(
        "write-ahead log segment {} is damaged at offset {offset}: {reason}; start with \
         --wal-repair to keep the records before it and drop the rest",
        segment.display()
    )]
    Corrupt {
        /// The segment.
        segment: PathBuf,
        /// The log offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The log holds `max_bytes` not yet checkpointed.
    #[error("the write-ahead log is full")]
    Full,
    /// A record is larger than [`MAX_RECORD_BYTES`], or its tenant longer than 65535 bytes.
    #[error("a write-ahead log record is too large")]
    TooLarge,
}

/// What opening the log found and repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments found.
    pub segments: usize,
    /// Bytes of a torn record cut off the end of the last segment.
    pub torn_bytes: u64,
    /// Bytes dropped by repair from a damaged record on (0 without damage).
    pub repaired_bytes: u64,
    /// The position of the damaged record repair cut at.
    pub repaired_at: Option<u64>,
    /// The position of the first record kept.
    pub start: u64,
    /// The position the next record gets.
    pub end: u64,
}

/// Settings of the log.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// A segment rolls over once it holds this many bytes.
    pub segment_bytes: u64,
    /// When appends reach the disk.
    pub fsync: Fsync,
    /// Appends are refused (retryably) while the log holds this many bytes not yet
    /// released by a checkpoint.
    pub max_bytes: u64,
    /// On a damaged record before the end, keep the records before it and drop the
    /// rest instead of refusing to open.
    pub repair: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            fsync: Fsync::default(),
            max_bytes: 4 << 30,
            repair: false,
        }
    }
}

/// Counters and gauges of the log.
#[derive(Debug, Default, Clone)]
struct WalMetrics {
    bytes: Gauge,
    capacity: Gauge,
    segments: Gauge,
    appended: Counter,
    appended_bytes: Counter,
    fsyncs: Counter,
    full: Counter,
    torn_bytes: Counter,
    repaired_bytes: Counter,
}

struct Active {
    file: Arc<File>,
    /// The offset of the segment's first byte.
    base: u64,
    /// The offset the next record gets.
    end: u64,
    buf: Vec<u8>,
}

struct Inner {
    dir: PathBuf,
    options: WalOptions,
    active: Mutex<Active>,
    /// The log is synced to disk up to here.
    synced: Mutex<u64>,
    /// The position of the first record kept (the first segment's base).
    start: AtomicU64,
    /// A copy of `active.end`, read without the lock.
    end: AtomicU64,
    metrics: WalMetrics,
}

/// The local, segmented write-ahead log. Cheap to clone: clones share the log.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn segment_name(base: u64) -> String {
    format!("{base:020}.wal")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The segments in `dir`, by base offset.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = e.map_err(io_err(dir))?.path();
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = base {
            out.push((base, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes a new or removed file in `dir` survive power loss.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The outcome of parsing one record at the start of `bytes`.
enum Parsed {
    /// A whole, valid record of this many bytes.
    Record(u64),
    /// Nothing left.
    End,
    /// The record does not fit in what is left: a torn write.
    Torn,
    /// The record is whole but damaged.
    Bad(&'static str),
}

fn parse(bytes: &[u8]) -> Parsed {
    if bytes.is_empty() {
        return Parsed::End;
    }
    let Some(header) = bytes.get(..HEADER_BYTES as usize) else {
        return Parsed::Torn;
    };
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD_BYTES {
        return Parsed::Bad("record length out of range");
    }
    let Some(payload) = bytes.get(HEADER_BYTES as usize..HEADER_BYTES as usize + len as usize)
    else {
        return Parsed::Torn;
    };
    if crc32c::crc32c(payload) != crc {
        return Parsed::Bad("checksum mismatch");
    }
    if payload_meta(payload).is_none() {
        return Parsed::Bad("payload does not decode");
    }
    Parsed::Record(HEADER_BYTES + u64::from(len))
}

/// What a record's payload says before its body: the tenant, the signal, the receive
/// time, and where the body starts; `None` when it does not decode.
fn payload_meta(p: &[u8]) -> Option<(&str, SignalKind, i64, usize)> {
    let tenant_len = usize::from(u16::from_le_bytes(p.get(..2)?.try_into().ok()?));
    let tenant = std::str::from_utf8(p.get(2..2 + tenant_len)?).ok()?;
    let rest = p.get(2 + tenant_len..)?;
    let signal = SignalKind::from_code(*rest.first()?)?;
    let received_nanos = i64::from_le_bytes(rest.get(1..9)?.try_into().ok()?);
    Some((tenant, signal, received_nanos, meta_len(tenant)))
}

/// The record of `payload`, its body a slice of it.
fn decode_payload(p: &Bytes) -> Option<Record> {
    let (tenant, signal, received_nanos, body_at) = payload_meta(p)?;
    Some(Record {
        tenant: Tenant::from(tenant),
        signal,
        received_nanos,
        body: p.slice(body_at..),
    })
}

/// Bytes of payload before the body: tenant length, tenant, signal, receive time.
fn meta_len(tenant: &str) -> usize {
    2 + tenant.len() + 1 + 8
}

/// What checking one segment found.
struct Checked {
    /// Bytes of whole, valid records from the start.
    valid: u64,
    /// Why the record at `valid` is bad, when it is damaged rather than torn.
    bad: Option<&'static str>,
}

fn check_segment(bytes: &[u8], last: bool) -> Checked {
    let mut at = 0usize;
    loop {
        match parse(&bytes[at..]) {
            Parsed::Record(n) => at += n as usize,
            Parsed::End => {
                return Checked {
                    valid: at as u64,
                    bad: None,
                };
            }
            Parsed::Torn if last => {
                return Checked {
                    valid: at as u64,
                    bad: None,
                };
            }
            Parsed::Torn => {
                return Checked {
                    valid: at as u64,
                    bad: Some("segment ends inside a record"),
                };
            }
            Parsed::Bad(reason) => {
                // At the end of the last segment, a record whose bytes were not all
                // written before a machine crash (the rest of the file is the record,
                // or zeros the file system allocated) is a torn write too.
                let rest = &bytes[at..];
                let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                let whole_last = HEADER_BYTES as usize + len == rest.len();
                let zeros = rest.iter().all(|b| *b == 0);
                if last && (whole_last || zeros) {
                    return Checked {
                        valid: at as u64,
                        bad: None,
                    };
                }
                return Checked {
                    valid: at as u64,
                    bad: Some(reason),
                };
            }
        }
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, checking every segment: a torn record at
    /// the end of the last one is cut off; a damaged record elsewhere is an error (or,
    /// with `options.repair`, the point the log is cut at).
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, OpenReport), WalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segs = segments(dir)?;
        let mut report = OpenReport {
            segments: segs.len(),
            ..Default::default()
        };
        let mut i = 0;
        while i < segs.len() {
            let (base, path) = segs[i].clone();
            let last = i + 1 == segs.len();
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            let checked = check_segment(&bytes, last);
            let cut = checked.valid;
            if let Some(reason) = checked.bad {
                if !options.repair {
                    return Err(WalError::Corrupt {
                        segment: path,
                        offset: base + cut,
                        reason,
                    });
                }
                let mut dropped = bytes.len() as u64 - cut;
                for (_, later) in segs.drain(i + 1..) {
                    dropped += std::fs::metadata(&later).map_err(io_err(&later))?.len();
                    std::fs::remove_file(&later).map_err(io_err(&later))?;
                }
                truncate(&path, cut)?;
                sync_dir(dir)?;
                report.repaired_bytes = dropped;
                report.repaired_at = Some(base + cut);
                tracing::warn!(
                    segment = %path.display(), offset = base + cut, reason, dropped_bytes = dropped,
                    "Repaired the write-ahead log: dropped the damaged record and everything after it."
                );
            } else if last && cut < bytes.len() as u64 {
                report.torn_bytes = bytes.len() as u64 - cut;
                truncate(&path, cut)?;
                tracing::warn!(
                    segment = %path.display(), bytes = report.torn_bytes,
                    "Cut a torn record off the end of the write-ahead log."
                );
            }
            i += 1;
        }
        let (base, path) = match segs.last() {
            Some((base, path)) => (*base, path.clone()),
            None => (0, dir.join(segment_name(0))),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let end = base + file.metadata().map_err(io_err(&path))?.len();
        if segs.is_empty() {
            sync_dir(dir)?;
        }
        report.start = segs.first().map_or(0, |s| s.0);
        report.end = end;
        let metrics = WalMetrics::default();
        metrics.torn_bytes.inc_by(report.torn_bytes);
        metrics.repaired_bytes.inc_by(report.repaired_bytes);
        metrics.segments.set(segs.len().max(1) as i64);
        metrics.bytes.set((end - report.start) as i64);
        metrics
            .capacity
            .set(i64::try_from(options.max_bytes).unwrap_or(i64::MAX));
        let wal = Wal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                options,
                active: Mutex::new(Active {
                    file: Arc::new(file),
                    base,
                    end,
                    buf: Vec::new(),
                }),
                synced: Mutex::new(end),
                start: AtomicU64::new(report.start),
                end: AtomicU64::new(end),
                metrics,
            }),
        };
        if let Fsync::Interval(every) = options.fsync {
            spawn_syncer(Arc::downgrade(&wal.inner), every);
        }
        Ok((wal, report))
    }

    /// Moves the end of the log on to `position` when it lies before it, so that new
    /// records are placed after everything a checkpoint covers (after a repair cut the
    /// log below the last checkpoint). The records in between were checkpointed.
    pub fn advance_to(&self, position: u64) -> Result<(), WalError> {
        let inner = &*self.inner;
        let mut a = inner.active.lock().unwrap_or_else(|e| e.into_inner());
        if a.end >= position {
            return Ok(());
        }
        self.start_segment(&mut a, position, true)?;
        *inner.synced.lock().unwrap_or_else(|e| e.into_inner()) = position;
        Ok(())
    }

    /// Returns once the log up to `next` is durable by the policy: at once, unless it is
    /// [`Fsync::Always`], which waits (off the async workers) for a sync that appends
    /// arriving meanwhile share.
    pub async fn durable(&self, next: u64) -> slotel_proto::Result<()> {
        if self.inner.options.fsync != Fsync::Always {
            return Ok(());
        }
        let wal = self.clone();
        tokio::task::spawn_blocking(move || wal.sync_to(next))
            .await
            .map_err(|_| Error::Unavailable("the write-ahead log"))??;
        Ok(())
    }

    /// Registers the log's metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.inner.metrics;
        for (name, help, gauge) in [
            (
                "wal",
                "Bytes in the write-ahead log not yet released by a checkpoint",
                &m.bytes,
            ),
            (
                "wal_capacity",
                "Bytes the write-ahead log holds before receivers refuse (wal.max_bytes)",
                &m.capacity,
            ),
        ] {
            registry.register_with_unit(name, help, Unit::Bytes, gauge.clone());
        }
        registry.register(
            "wal_segments",
            "Segment files of the write-ahead log",
            m.segments.clone(),
        );
        for (name, help, counter) in [
            (
                "wal_records_appended",
                "Records appended to the write-ahead log",
                &m.appended,
            ),
            (
                "wal_fsyncs",
                "fdatasync calls on the write-ahead log",
                &m.fsyncs,
            ),
            (
                "wal_full_refusals",
                "Appends refused because the write-ahead log held wal.max_bytes",
                &m.full,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        for (name, help, counter) in [
            (
                "wal_appended",
                "Bytes appended to the write-ahead log",
                &m.appended_bytes,
            ),
            (
                "wal_torn",
                "Bytes of torn records cut off the end of the write-ahead log at start",
                &m.torn_bytes,
            ),
            (
                "wal_repair_dropped",
                "Bytes dropped by --wal-repair from a damaged record on",
                &m.repaired_bytes,
            ),
        ] {
            registry.register_with_unit(name, help, Unit::Bytes, counter.clone());
        }
    }

    /// Appends a record and returns the position after it, once it is written to the
    /// kernel (and, with [`Fsync::Always`], synced). Allocates nothing once the log's
    /// buffer has grown to the size of a request.
    pub fn append_sync(
        &self,
        tenant: &str,
        signal: SignalKind,
        received_nanos: i64,
        body: &[u8],
    ) -> Result<u64, WalError> {
        let next = self.write(tenant, signal, received_nanos, body)?;
        if self.inner.options.fsync == Fsync::Always {
            self.sync_to(next)?;
        }
        Ok(next)
    }

    fn write(
        &self,
        tenant: &str,
        signal: SignalKind,
        received_nanos: i64,
        body: &[u8],
    ) -> Result<u64, WalError> {
        self.write_then(tenant, signal, received_nanos, body, |_, _| ())
    }

    /// Writes a record to the kernel and calls `then(offset, next)` while no other
    /// record can be written: what `then` does happens in log order. Returns `next`.
    pub fn write_then(
        &self,
        tenant: &str,
        signal: SignalKind,
        received_nanos: i64,
        body: &[u8],
        then: impl FnOnce(u64, u64),
    ) -> Result<u64, WalError> {
        let inner = &*self.inner;
        let tenant_len = u16::try_from(tenant.len()).map_err(|_| WalError::TooLarge)?;
        let payload_len = u32::try_from(meta_len(tenant) + body.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD_BYTES)
            .ok_or(WalError::TooLarge)?;
        let mut a = inner.active.lock().unwrap_or_else(|e| e.into_inner());
        if a.end - inner.start.load(Ordering::Acquire) >= inner.options.max_bytes {
            inner.metrics.full.inc();
            return Err(WalError::Full);
        }
        if a.end > a.base && a.end - a.base >= inner.options.segment_bytes {
            self.roll(&mut a)?;
        }
        let Active {
            file,
            end,
            buf,
            base,
        } = &mut *a;
        buf.clear();
        buf.extend_from_slice(&payload_len.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&tenant_len.to_le_bytes());
        buf.extend_from_slice(tenant.as_bytes());
        buf.push(signal as u8);
        buf.extend_from_slice(&received_nanos.to_le_bytes());
        buf.extend_from_slice(body);
        let crc = crc32c::crc32c(&buf[HEADER_BYTES as usize..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        if let Err(source) = (&**file).write_all(buf) {
            // A partial write would leave a torn record mid-log: cut it off again.
            let _ = file.set_len(*end - *base);
            return Err(WalError::Io {
                path: inner.dir.join(segment_name(*base)),
                source,
            });
        }
        let offset = *end;
        *end += buf.len() as u64;
        inner.end.store(*end, Ordering::Release);
        then(offset, *end);
        inner.metrics.appended.inc();
        inner.metrics.appended_bytes.inc_by(buf.len() as u64);
        inner
            .metrics
            .bytes
            .set((*end - inner.start.load(Ordering::Acquire)) as i64);
        Ok(*end)
    }

    /// Starts a new segment at the end; the old one is synced first unless the policy
    /// never syncs.
    fn roll(&self, a: &mut Active) -> Result<(), WalError> {
        let base = a.end;
        self.start_segment(a, base, self.inner.options.fsync != Fsync::Never)
    }

    /// Makes a new segment starting at `base` the one appended to (`sync`: the old one
    /// and the folder synced).
    fn start_segment(&self, a: &mut Active, base: u64, sync: bool) -> Result<(), WalError> {
        let inner = &*self.inner;
        if sync {
            a.file
                .sync_data()
                .map_err(io_err(&inner.dir.join(segment_name(a.base))))?;
        }
        let path = inner.dir.join(segment_name(base));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if sync {
            sync_dir(&inner.dir)?;
        }
        a.file = Arc::new(file);
        a.base = base;
        a.end = base;
        inner.end.store(base, Ordering::Release);
        inner.metrics.segments.inc();
        Ok(())
    }

    /// Syncs the log to disk up to at least `upto`. Callers that wait at the same time
    /// share one `fdatasync`: the first syncs everything written so far.
    pub fn sync_to(&self, upto: u64) -> Result<(), WalError> {
        let inner = &*self.inner;
        let mut synced = inner.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= upto {
            return Ok(());
        }
        let (file, base, end) = {
            let a = inner.active.lock().unwrap_or_else(|e| e.into_inner());
            (Arc::clone(&a.file), a.base, a.end)
        };
        file.sync_data()
            .map_err(io_err(&inner.dir.join(segment_name(base))))?;
        inner.metrics.fsyncs.inc();
        *synced = end;
        Ok(())
    }

    /// The position the next record gets.
    pub fn end(&self) -> u64 {
        self.inner.end.load(Ordering::Acquire)
    }

    /// The position of the first record kept.
    pub fn start(&self) -> u64 {
        self.inner.start.load(Ordering::Acquire)
    }

    /// The records from `offset` (a record's position, or the end) on, up to about
    /// `max_bytes` of them (at least one when there is one).
    pub fn read_sync(&self, offset: u64, max_bytes: usize) -> Result<Vec<Entry>, WalError> {
        let end = self.end();
        let mut out = Vec::new();
        if offset >= end {
            return Ok(out);
        }
        let segs = segments(&self.inner.dir)?;
        let mut read = 0usize;
        for (i, (base, path)) in segs.iter().enumerate() {
            let next_base = segs.get(i + 1).map_or(end, |s| s.0.min(end));
            if next_base <= offset {
                continue;
            }
            let file = File::open(path).map_err(io_err(path))?;
            let mut r = BufReader::with_capacity(1 << 20, file);
            let mut at = (*base).max(offset);
            r.seek(SeekFrom::Start(at - base)).map_err(io_err(path))?;
            while at < next_base {
                let damaged = || WalError::Corrupt {
                    segment: path.clone(),
                    offset: at,
                    reason: "damaged record",
                };
                let mut header = [0u8; HEADER_BYTES as usize];
                match r.read_exact(&mut header) {
                    Ok(()) => {}
                    // A segment may end before the next one's base (the log was moved
                    // on past a repaired part): go on with the next.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && next_base < end => break,
                    Err(_) => return Err(damaged()),
                }
                let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
                let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
                if len > MAX_RECORD_BYTES {
                    return Err(damaged());
                }
                let mut payload = vec![0; len as usize];
                r.read_exact(&mut payload).map_err(|_| damaged())?;
                if crc32c::crc32c(&payload) != crc {
                    return Err(damaged());
                }
                let n = HEADER_BYTES + u64::from(len);
                let record = decode_payload(&Bytes::from(payload)).ok_or_else(damaged)?;
                out.push(Entry {
                    offset: at,
                    next: at + n,
                    record,
                });
                at += n;
                read += n as usize;
                if read >= max_bytes {
                    return Ok(out);
                }
            }
            if next_base >= end {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes the segments that end at or before `offset` (what a checkpoint covers);
    /// the segment being written stays. Returns how many were deleted.
    pub fn remove_before(&self, offset: u64) -> Result<usize, WalError> {
        let inner = &*self.inner;
        let active_base = inner.active.lock().unwrap_or_else(|e| e.into_inner()).base;
        let segs = segments(&inner.dir)?;
        let mut removed = 0;
        for (i, (base, path)) in segs.iter().enumerate() {
            let Some(next) = segs.get(i + 1).map(|s| s.0) else {
                break;
            };
            if *base < active_base && next <= offset {
                std::fs::remove_file(path).map_err(io_err(path))?;
                removed += 1;
                inner.start.store(next, Ordering::Release);
            }
        }
        if removed > 0 {
            inner.metrics.segments.dec_by(removed as i64);
            inner.metrics.bytes.set((self.end() - self.start()) as i64);
        }
        Ok(removed)
    }
}

fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(len).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Syncs the log every `every` while it is open.
fn spawn_syncer(inner: Weak<Inner>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("slotel-wal-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(inner) = inner.upgrade() else { return };
                let wal = Wal { inner };
                if let Err(e) = wal.sync_to(wal.end()) {
                    tracing::error!(error = %e, "Cannot sync the write-ahead log; retrying.");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "Cannot start the write-ahead log's sync thread.");
    }
}

impl From<WalError> for Error {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Full => Error::Full {
                what: "the write-ahead log",
                retry_after: RETRY_AFTER,
            },
            WalError::TooLarge => Error::Invalid("the request is too large to log".into()),
            e => {
                tracing::error!(error = %e, "Cannot append to the write-ahead log.");
                Error::Unavailable("the write-ahead log")
            }
        }
    }
}

impl Log for Wal {
    async fn append(
        &self,
        tenant: &str,
        signal: SignalKind,
        received_nanos: i64,
        body: &[u8],
    ) -> slotel_proto::Result<u64> {
        let next = self.write(tenant, signal, received_nanos, body)?;
        self.durable(next).await?;
        Ok(next)
    }

    async fn read(&self, from: u64, max_bytes: usize) -> slotel_proto::Result<Vec<Entry>> {
        let wal = self.clone();
        tokio::task::spawn_blocking(move || wal.read_sync(from, max_bytes))
            .await
            .map_err(|_| Error::Unavailable("the write-ahead log"))?
            .map_err(|e| {
                tracing::error!(error = %e, "Cannot read the write-ahead log.");
                Error::Unavailable("the write-ahead log")
            })
    }

    fn end(&self) -> u64 {
        Wal::end(self)
    }

    fn release(&self, position: u64) {
        if let Err(e) = self.remove_before(position) {
            tracing::error!(error = %e, "Cannot delete checkpointed write-ahead log segments.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec {
        tenant: &'static str,
        signal: SignalKind,
        received_nanos: i64,
        body: Vec<u8>,
    }

    fn rec(i: u64) -> Rec {
        Rec {
            tenant: if i.is_multiple_of(2) {
                "default"
            } else {
                "team-b"
            },
            signal: SignalKind::from_code((i % 3) as u8).unwrap(),
            received_nanos: 1_700_000_000_000_000_000 + i as i64,
            body: vec![i as u8; (i % 50) as usize],
        }
    }

    fn append(wal: &Wal, i: u64) -> u64 {
        let r = rec(i);
        let offset = wal.end();
        wal.append_sync(r.tenant, r.signal, r.received_nanos, &r.body)
            .unwrap();
        offset
    }

    fn assert_is(e: &Entry, i: u64) {
        let r = rec(i);
        assert_eq!(&*e.record.tenant, r.tenant);
        assert_eq!(e.record.signal, r.signal);
        assert_eq!(e.record.received_nanos, r.received_nanos);
        assert_eq!(&e.record.body[..], &r.body[..]);
    }

    fn options(segment_bytes: u64) -> WalOptions {
        WalOptions {
            segment_bytes,
            fsync: Fsync::Never,
            ..WalOptions::default()
        }
    }

    fn read_all(wal: &Wal, from: u64) -> Vec<Entry> {
        wal.read_sync(from, usize::MAX).unwrap()
    }

    #[test]
    fn records_read_back_from_any_offset_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, report) = Wal::open(dir.path(), options(200)).unwrap();
        assert_eq!(report, OpenReport::default());
        let offsets: Vec<u64> = (0..40).map(|i| append(&wal, i)).collect();
        assert!(segments(dir.path()).unwrap().len() > 1);
        let all = read_all(&wal, 0);
        assert_eq!(all.len(), 40);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.offset, offsets[i]);
            assert_eq!(e.next, offsets.get(i + 1).copied().unwrap_or(wal.end()));
            assert_is(e, i as u64);
        }
        let tail = read_all(&wal, offsets[25]);
        assert_eq!(tail.len(), 15);
        assert_is(&tail[0], 25);
        // Reads in chunks resume where the last one stopped.
        let mut from = 0;
        let mut chunks = 0;
        let mut seen = 0;
        loop {
            let chunk = wal.read_sync(from, 100).unwrap();
            let Some(last) = chunk.last() else { break };
            from = last.next;
            seen += chunk.len();
            chunks += 1;
        }
        assert_eq!(seen, 40);
        assert!(chunks > 1);
        let end = wal.end();
        drop(wal);
        let (wal, report) = Wal::open(dir.path(), options(200)).unwrap();
        assert_eq!((report.end, report.torn_bytes), (end, 0));
        assert_eq!(append(&wal, 40), end);
        assert_eq!(read_all(&wal, 0).len(), 41);
    }

    #[test]
    fn a_tail_cut_at_any_byte_reopens_with_exactly_the_whole_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        let offsets: Vec<u64> = (0..6).map(|i| append(&wal, i)).collect();
        let end = wal.end();
        drop(wal);
        let seg = dir.path().join(segment_name(0));
        let whole = std::fs::read(&seg).unwrap();
        for cut in 0..=whole.len() as u64 {
            std::fs::write(&seg, &whole[..cut as usize]).unwrap();
            let (wal, report) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
            // Ground truth: the records whose last byte lies within the cut.
            let bounds: Vec<u64> = offsets.iter().copied().chain([end]).collect();
            let kept = bounds.windows(2).filter(|w| w[1] <= cut).count();
            let last_end = bounds[kept];
            assert_eq!(report.end, last_end, "cut at {cut}");
            assert_eq!(report.torn_bytes, cut - last_end, "cut at {cut}");
            let read = read_all(&wal, 0);
            assert_eq!(read.len(), kept, "cut at {cut}");
            for (i, e) in read.iter().enumerate() {
                assert_is(e, i as u64);
            }
        }
    }

    #[test]
    fn a_damaged_record_before_the_end_is_an_error_and_repair_keeps_what_precedes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(300)).unwrap();
        let offsets: Vec<u64> = (0..30).map(|i| append(&wal, i)).collect();
        let end = wal.end();
        drop(wal);
        // Flip a payload byte of the third record, in the first segment of several.
        let seg = dir.path().join(segment_name(0));
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = (offsets[2] + HEADER_BYTES + 3) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        match Wal::open(dir.path(), options(300)) {
            Err(WalError::Corrupt {
                segment,
                offset,
                reason,
            }) => {
                assert_eq!(
                    (segment, offset, reason),
                    (seg.clone(), offsets[2], "checksum mismatch")
                );
            }
            other => panic!("{other:?}"),
        }
        let repair = WalOptions {
            repair: true,
            ..options(300)
        };
        let (wal, report) = Wal::open(dir.path(), repair).unwrap();
        assert_eq!(report.repaired_at, Some(offsets[2]));
        assert_eq!(report.repaired_bytes, end - offsets[2]);
        assert_eq!(report.end, offsets[2]);
        let read = read_all(&wal, 0);
        assert_eq!(read.len(), 2);
        assert_eq!(append(&wal, 2), offsets[2]);
        drop(wal);
        // Repaired, the log opens cleanly.
        let (_, report) = Wal::open(dir.path(), options(300)).unwrap();
        assert_eq!(report.repaired_at, None);
    }

    #[test]
    fn a_damaged_last_record_or_a_zero_filled_tail_is_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        let offsets: Vec<u64> = (0..4).map(|i| append(&wal, i + 10)).collect();
        drop(wal);
        let seg = dir.path().join(segment_name(0));
        let whole = std::fs::read(&seg).unwrap();
        let mut bytes = whole.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&seg, &bytes).unwrap();
        let (_, report) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        assert_eq!(report.end, offsets[3]);
        let mut bytes = whole[..offsets[3] as usize].to_vec();
        bytes.extend_from_slice(&[0; 4096]);
        std::fs::write(&seg, &bytes).unwrap();
        let (wal, report) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        assert_eq!((report.end, report.torn_bytes), (offsets[3], 4096));
        assert_eq!(read_all(&wal, 0).len(), 3);
    }

    #[test]
    fn a_record_damaged_after_the_log_opened_is_an_error_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        let offsets: Vec<u64> = (0..3).map(|i| append(&wal, i + 10)).collect();
        // The second record's header becomes an empty record with a valid checksum
        // (CRC32C of nothing is 0): whole, but with no tenant or signal.
        let seg = dir.path().join(segment_name(0));
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = offsets[1] as usize;
        bytes[at..at + HEADER_BYTES as usize].fill(0);
        std::fs::write(&seg, &bytes).unwrap();
        let err = wal.read_sync(0, usize::MAX).unwrap_err();
        assert!(
            matches!(err, WalError::Corrupt { offset, .. } if offset == offsets[1]),
            "{err}"
        );
    }

    #[test]
    fn segments_wholly_below_a_checkpoint_are_removed_and_a_full_log_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let small = WalOptions {
            max_bytes: 1500,
            ..options(100)
        };
        let (wal, _) = Wal::open(dir.path(), small).unwrap();
        let mut offsets = Vec::new();
        let mut i = 0;
        loop {
            let r = rec(i);
            match wal.append_sync(r.tenant, r.signal, r.received_nanos, &r.body) {
                Ok(next) => offsets.push(next),
                Err(WalError::Full) => break,
                Err(e) => panic!("{e}"),
            }
            i += 1;
        }
        assert!(wal.end() - wal.start() >= 1500);
        let before = segments(dir.path()).unwrap();
        let cut = offsets[offsets.len() / 2];
        let removed = wal.remove_before(cut).unwrap();
        let after = segments(dir.path()).unwrap();
        assert!(removed > 0);
        assert_eq!(before.len() - removed, after.len());
        assert_eq!(wal.start(), after[0].0);
        assert!(after[0].0 <= cut);
        // Every record from the checkpoint on is still there.
        let read = read_all(&wal, cut);
        assert_eq!(read.len(), offsets.len() - offsets.len() / 2 - 1);
        // Released, the log takes appends again.
        append(&wal, i);
    }

    #[test]
    fn a_log_moved_on_past_a_gap_reads_across_it_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(1 << 20)).unwrap();
        append(&wal, 1);
        append(&wal, 2);
        wal.advance_to(10_000).unwrap();
        assert_eq!(append(&wal, 3), 10_000);
        let read = read_all(&wal, 0);
        assert_eq!(read.len(), 3);
        assert_eq!(read[2].offset, 10_000);
        assert_is(&read[2], 3);
        drop(wal);
        let (wal, report) = Wal::open(dir.path(), options(1 << 20)).unwrap();
        assert_eq!(report.segments, 2);
        assert_eq!(read_all(&wal, 0).len(), 3);
    }

    #[test]
    fn group_commit_syncs_every_append_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let always = WalOptions {
            fsync: Fsync::Always,
            ..options(1 << 20)
        };
        let (wal, _) = Wal::open(dir.path(), always).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let wal = wal.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        append(&wal, t * 50 + i);
                    }
                });
            }
        });
        assert_eq!(read_all(&wal, 0).len(), 200);
        assert_eq!(*wal.inner.synced.lock().unwrap(), wal.end());
    }
}
