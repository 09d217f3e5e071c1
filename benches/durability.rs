//! What the write-ahead log costs per batch: an append of a realistic 512-span request
//! (the bytes a receiver holds) under each fsync policy, and the replay of one record
//! (read back, decoded, applied to the engine).
//!
//! Run: `cargo bench --bench durability`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use slotel_compute::Engine;
use slotel_ingest::wal::{Fsync, Wal, WalOptions};
use slotel_loadtest::{Generator, Scenario};
use slotel_model::SystemClock;
use slotel_proto::log::SignalKind;

const SPANS: usize = 512;

fn body() -> Vec<u8> {
    let scenario = Scenario::benchmark();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Generator::new(scenario, 1)
        .unwrap()
        .batch(SPANS, now)
        .0
        .encode_to_vec()
}

fn open(dir: &Path, fsync: Fsync) -> Wal {
    let options = WalOptions {
        segment_bytes: 64 << 20,
        fsync,
        max_bytes: u64::MAX,
        repair: false,
    };
    Wal::open(dir, options).unwrap().0
}

fn durability(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("wal");
    g.throughput(Throughput::Elements(SPANS as u64));
    for (name, fsync) in [
        ("append, fsync never", Fsync::Never),
        (
            "append, fsync interval (1 s, in the background)",
            Fsync::Interval(Duration::from_secs(1)),
        ),
        ("append, fsync always (one writer)", Fsync::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), fsync);
        g.bench_function(name, |b| {
            b.iter(|| {
                let next = wal
                    .append_sync("default", SignalKind::Traces, 1, black_box(&body))
                    .unwrap();
                // What a checkpoint does: the disk holds a segment or two at most.
                if next % (256 << 20) < body.len() as u64 + 64 {
                    wal.remove_before(next).unwrap();
                }
            })
        });
    }
    // Replay: one record read back, decoded and applied, over and over.
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Fsync::Never);
    wal.append_sync("default", SignalKind::Traces, 0, &body)
        .unwrap();
    let engine = Engine::new(Arc::new(SystemClock));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    engine.load(slotel_spec::load_paths(&[root.join("examples/slos.yaml")]).unwrap());
    g.bench_function(
        "replay: read, decode, apply (de-duplicated after the first)",
        |b| {
            b.iter(|| {
                let entries = wal.read_sync(0, 1 << 20).unwrap();
                let batch = entries[0].record.decode().unwrap();
                engine.apply(&batch, entries[0].next);
            })
        },
    );
    g.finish();
}

criterion_group!(benches, durability);
criterion_main!(benches);
