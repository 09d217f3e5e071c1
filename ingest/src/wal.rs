//! The local write-ahead log: segmented files under `DATA_DIR/wal/`, each a run of
//! records `[len: u32 LE][crc32c: u32 LE][payload]`, the payload being the tenant, the
//! signal, the receive time and the request's validated OTLP protobuf bytes as received.
//!
//! An offset is a record's byte position in the whole log: segment files are named by
//! the offset of their first byte (`00000000000000000000.wal`), so an offset finds its
//! segment by name. Appends go to the last segment, which rolls over at
//! `segment_bytes`; `Fsync` says when they reach the disk. On open, a torn record at
//! the end of the last segment (a crash mid-write) is cut off and counted; a bad record
//! anywhere else is reported with its segment and offset, never skipped silently.
//!
//! This is the first part of the log: the format, append, read from an offset,
//! repair of a torn tail and removal of segments below a checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The bytes before a record's payload: its length and its CRC32C.
pub const HEADER_BYTES: u64 = 8;

/// The largest payload a record may hold (a request is far smaller).
pub const MAX_RECORD_BYTES: u32 = 256 << 20;

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never forced: written to the kernel before `append` returns (survives `kill -9`,
    /// not power loss).
    #[default]
    Never,
    /// `fdatasync` before every `append` returns (survives power loss).
    Always,
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The tenant the request belongs to.
    pub tenant: String,
    /// Which OTLP signal the body is (traces, metrics, logs), as the receivers number them.
    pub signal: u8,
    /// When the request was received, in nanoseconds since the epoch.
    pub received_nanos: i64,
    /// The request's protobuf bytes, as received.
    pub body: Vec<u8>,
}

impl Record {
    fn encode_payload(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let tenant = self.tenant.as_bytes();
        let tenant_len = u16::try_from(tenant.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "tenant too long"))?;
        out.extend_from_slice(&tenant_len.to_le_bytes());
        out.extend_from_slice(tenant);
        out.push(self.signal);
        out.extend_from_slice(&self.received_nanos.to_le_bytes());
        out.extend_from_slice(&self.body);
        Ok(())
    }

    fn decode_payload(p: &[u8]) -> Option<Record> {
        let tenant_len = usize::from(u16::from_le_bytes(p.get(..2)?.try_into().ok()?));
        let tenant = std::str::from_utf8(p.get(2..2 + tenant_len)?).ok()?;
        let rest = p.get(2 + tenant_len..)?;
        let signal = *rest.first()?;
        let received_nanos = i64::from_le_bytes(rest.get(1..9)?.try_into().ok()?);
        Some(Record {
            tenant: tenant.to_string(),
            signal,
            received_nanos,
            body: rest.get(9..)?.to_vec(),
        })
    }
}

/// Why the log cannot be read.
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
    #[error("write-ahead log segment {} is damaged at offset {offset}: {reason}", segment.display())]
    Corrupt {
        /// The segment.
        segment: PathBuf,
        /// The log offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What opening the log found and repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments found.
    pub segments: usize,
    /// Bytes of a torn record cut off the end of the last segment.
    pub torn_bytes: u64,
    /// The offset the next record gets.
    pub end: u64,
}

/// Settings of the log.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// A segment rolls over once it holds this many bytes.
    pub segment_bytes: u64,
    /// When appends reach the disk.
    pub fsync: Fsync,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            fsync: Fsync::default(),
        }
    }
}

struct Active {
    file: File,
    /// The offset of the segment's first byte.
    base: u64,
    /// The offset the next record gets.
    end: u64,
    buf: Vec<u8>,
}

/// The local, segmented write-ahead log.
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    active: Mutex<Active>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
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

/// The outcome of reading one record at a position.
enum Next {
    Record(Record, u64),
    /// The file ends here.
    End,
    /// The record does not fit in what is left of the file: a torn write.
    Torn,
    /// The record is whole but damaged.
    Bad(&'static str),
}

fn read_record(r: &mut impl Read) -> io::Result<Next> {
    let mut header = [0u8; HEADER_BYTES as usize];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..])? {
            0 if got == 0 => return Ok(Next::End),
            0 => return Ok(Next::Torn),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD_BYTES {
        return Ok(Next::Bad("record length out of range"));
    }
    let mut payload = vec![0; len as usize];
    let mut got = 0;
    while got < payload.len() {
        match r.read(&mut payload[got..])? {
            0 => return Ok(Next::Torn),
            n => got += n,
        }
    }
    if crc32c::crc32c(&payload) != crc {
        return Ok(Next::Bad("checksum mismatch"));
    }
    match Record::decode_payload(&payload) {
        Some(rec) => Ok(Next::Record(rec, HEADER_BYTES + u64::from(len))),
        None => Ok(Next::Bad("payload does not decode")),
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, cutting a torn record off the end of the
    /// last segment. A damaged record before the end is an error: nothing is dropped
    /// without the operator's say.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, OpenReport), WalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segs = segments(dir)?;
        let mut report = OpenReport {
            segments: segs.len(),
            ..Default::default()
        };
        let (base, path) = match segs.last() {
            Some((base, path)) => (*base, path.clone()),
            None => (0, dir.join(segment_name(0))),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // Find the end of the last whole record.
        let len = file.metadata().map_err(io_err(&path))?.len();
        let mut valid = 0u64;
        {
            let mut r = BufReader::new(&mut file);
            r.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
            loop {
                match read_record(&mut r).map_err(io_err(&path))? {
                    Next::Record(_, n) => valid += n,
                    Next::End => break,
                    Next::Torn => break,
                    Next::Bad(reason) => {
                        return Err(WalError::Corrupt {
                            segment: path,
                            offset: base + valid,
                            reason,
                        });
                    }
                }
            }
        }
        if valid < len {
            report.torn_bytes = len - valid;
            file.set_len(valid).map_err(io_err(&path))?;
            file.sync_data().map_err(io_err(&path))?;
            tracing::warn!(segment = %path.display(), bytes = report.torn_bytes, "Cut a torn record off the end of the write-ahead log.");
        }
        report.end = base + valid;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                options,
                active: Mutex::new(Active {
                    file,
                    base,
                    end: base + valid,
                    buf: Vec::new(),
                }),
            },
            report,
        ))
    }

    /// Appends `record`; returns its offset once it is durable by the log's [`Fsync`]
    /// policy.
    pub fn append(&self, record: &Record) -> Result<u64, WalError> {
        let mut a = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if a.end > a.base && a.end - a.base >= self.options.segment_bytes {
            let path = self.dir.join(segment_name(a.end));
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            a.file = file;
            a.base = a.end;
        }
        let Active {
            file,
            end,
            buf,
            base,
        } = &mut *a;
        // The segment's path is built only for an error: appends allocate nothing.
        let base = *base;
        let fail = |source| WalError::Io {
            path: self.dir.join(segment_name(base)),
            source,
        };
        buf.clear();
        buf.extend_from_slice(&[0; HEADER_BYTES as usize]);
        record.encode_payload(buf).map_err(fail)?;
        let payload_len = buf.len() - HEADER_BYTES as usize;
        let len = u32::try_from(payload_len)
            .ok()
            .filter(|l| *l <= MAX_RECORD_BYTES)
            .ok_or_else(|| {
                fail(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "record too large",
                ))
            })?;
        let crc = crc32c::crc32c(&buf[HEADER_BYTES as usize..]);
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        file.write_all(buf).map_err(fail)?;
        if self.options.fsync == Fsync::Always {
            file.sync_data().map_err(fail)?;
        }
        let offset = *end;
        *end += buf.len() as u64;
        Ok(offset)
    }

    /// The offset the next record gets.
    pub fn end(&self) -> u64 {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).end
    }

    /// Every record from `offset` (a record's offset, or the end) to the end of the
    /// log, with its offset.
    pub fn read_from(&self, offset: u64) -> Result<Vec<(u64, Record)>, WalError> {
        let end = self.end();
        let mut out = Vec::new();
        let segs = segments(&self.dir)?;
        for (i, (base, path)) in segs.iter().enumerate() {
            let next_base = segs.get(i + 1).map_or(end, |s| s.0);
            if next_base <= offset {
                continue;
            }
            let file = File::open(path).map_err(io_err(path))?;
            let mut r = BufReader::new(file);
            let mut at = *base;
            if offset > at {
                r.seek(SeekFrom::Start(offset - at)).map_err(io_err(path))?;
                at = offset;
            }
            while at < next_base {
                match read_record(&mut r).map_err(io_err(path))? {
                    Next::Record(rec, n) => {
                        out.push((at, rec));
                        at += n;
                    }
                    Next::End => break,
                    Next::Torn | Next::Bad(_) => {
                        return Err(WalError::Corrupt {
                            segment: path.clone(),
                            offset: at,
                            reason: "damaged record",
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Deletes the segments that end at or before `offset` (what a checkpoint covers);
    /// the segment being written stays. Returns how many were deleted.
    pub fn remove_before(&self, offset: u64) -> Result<usize, WalError> {
        let active_base = self.active.lock().unwrap_or_else(|e| e.into_inner()).base;
        let segs = segments(&self.dir)?;
        let mut removed = 0;
        for (i, (base, path)) in segs.iter().enumerate() {
            let Some(next) = segs.get(i + 1).map(|s| s.0) else {
                break;
            };
            if *base < active_base && next <= offset {
                std::fs::remove_file(path).map_err(io_err(path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            tenant: if i % 2 == 0 { "default" } else { "team-b" }.into(),
            signal: (i % 3) as u8,
            received_nanos: 1_700_000_000_000_000_000 + i as i64,
            body: vec![i as u8; (i % 50) as usize],
        }
    }

    fn options(segment_bytes: u64) -> WalOptions {
        WalOptions {
            segment_bytes,
            fsync: Fsync::Never,
        }
    }

    #[test]
    fn records_read_back_from_any_offset_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, report) = Wal::open(dir.path(), options(200)).unwrap();
        assert_eq!(
            report,
            OpenReport {
                segments: 0,
                torn_bytes: 0,
                end: 0
            }
        );
        let offsets: Vec<u64> = (0..40).map(|i| wal.append(&rec(i)).unwrap()).collect();
        assert!(segments(dir.path()).unwrap().len() > 1);
        let all = wal.read_from(0).unwrap();
        assert_eq!(all.len(), 40);
        for (i, (off, r)) in all.iter().enumerate() {
            assert_eq!((*off, r), (offsets[i], &rec(i as u64)));
        }
        let tail = wal.read_from(offsets[25]).unwrap();
        assert_eq!(tail.len(), 15);
        assert_eq!(tail[0].1, rec(25));
        let end = wal.end();
        drop(wal);
        let (wal, report) = Wal::open(dir.path(), options(200)).unwrap();
        assert_eq!((report.end, report.torn_bytes), (end, 0));
        assert_eq!(wal.append(&rec(40)).unwrap(), end);
        assert_eq!(wal.read_from(0).unwrap().len(), 41);
    }

    #[test]
    fn a_tail_cut_at_any_byte_reopens_with_exactly_the_whole_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        let offsets: Vec<u64> = (0..6).map(|i| wal.append(&rec(i)).unwrap()).collect();
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
            let read = wal.read_from(0).unwrap();
            assert_eq!(read.len(), kept, "cut at {cut}");
            for (i, (_, r)) in read.iter().enumerate() {
                assert_eq!(r, &rec(i as u64));
            }
        }
    }

    #[test]
    fn a_damaged_record_before_the_end_is_an_error_naming_segment_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(u64::MAX)).unwrap();
        let offsets: Vec<u64> = (0..5).map(|i| wal.append(&rec(i)).unwrap()).collect();
        drop(wal);
        let seg = dir.path().join(segment_name(0));
        let mut bytes = std::fs::read(&seg).unwrap();
        // Flip a payload byte of the third record.
        let at = (offsets[2] + HEADER_BYTES + 3) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        match Wal::open(dir.path(), options(u64::MAX)) {
            Err(WalError::Corrupt {
                segment,
                offset,
                reason,
            }) => {
                assert_eq!(
                    (segment, offset, reason),
                    (seg, offsets[2], "checksum mismatch")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn segments_wholly_below_a_checkpoint_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(100)).unwrap();
        let offsets: Vec<u64> = (0..30).map(|i| wal.append(&rec(i)).unwrap()).collect();
        let before = segments(dir.path()).unwrap();
        let cut = offsets[20];
        let removed = wal.remove_before(cut).unwrap();
        let after = segments(dir.path()).unwrap();
        assert_eq!(before.len() - removed, after.len());
        // Every record from the checkpoint on is still there, and nothing before the
        // first kept segment.
        let read = wal.read_from(cut).unwrap();
        assert_eq!(read.len(), 10);
        assert!(after[0].0 <= cut);
        assert!(removed > 0);
    }
}
