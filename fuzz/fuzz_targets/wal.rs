//! A write-ahead log's segment as the next start finds it on disk, whatever a crash or a
//! damaged disk left there: opened (checked, and cut after a torn tail) and read back
//! from the start, each record decoded as compute decodes it. An error is fine; a panic
//! or a record read back that the check did not pass is not.
//!
//! The first byte picks the form: odd, the rest is the segment's bytes as they are;
//! even, the rest is a list of payloads (a little-endian u16 length before each) that
//! are framed here with their lengths and checksums, so that the fuzzer reaches the
//! records' contents past the checksum.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slotel_ingest::wal::{Fsync, HEADER_BYTES, Wal, WalOptions};

fn frame(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        out.extend_from_slice(payload);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let segment = if mode & 1 == 1 {
        rest.to_vec()
    } else {
        frame(rest)
    };
    let dir = DIR
        .get_or_init(|| {
            tempfile::tempdir_in("/dev/shm")
                .or_else(|_| tempfile::tempdir())
                .expect("a folder")
        })
        .path()
        .join("wal");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder");
    std::fs::write(dir.join(format!("{:020}.wal", 0)), &segment).expect("written");
    let options = WalOptions {
        // No background syncer: one per input would outlive the run's inputs.
        fsync: Fsync::Never,
        repair: mode & 2 == 2,
        ..WalOptions::default()
    };
    let Ok((wal, report)) = Wal::open(&dir, options) else {
        return;
    };
    assert!(report.end <= segment.len() as u64);
    let entries = wal
        .read_sync(0, usize::MAX)
        .expect("what open checked reads back");
    let mut at = 0;
    for e in &entries {
        assert_eq!(e.offset, at);
        assert!(e.next > e.offset + HEADER_BYTES);
        at = e.next;
        let _ = e.record.decode();
    }
    assert_eq!(at, report.end);
});
