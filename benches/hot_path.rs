//! The hot path on a realistic 512-span OTLP batch: protobuf decode, the receiver's
//! checks (partial success, attribute limits), and classification + aggregation into
//! the SLO windows (without and with span de-duplication), apart and together.
//!
//! Run: `cargo bench --bench hot_path`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use slotel_compute::{Engine, EngineConfig};
use slotel_ingest::validate::{self, ItemLimits};
use slotel_loadtest::{Generator, Scenario};
use slotel_model::SystemClock;
use slotel_proto::Batch;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_spec as spec;

const SPANS: usize = 512;

fn batch(scenario: Scenario) -> ExportTraceServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Generator::new(scenario, 1).unwrap().batch(SPANS, now).0
}

/// An engine over the SLO file `slos`; `dedup` turns span de-duplication on.
fn make_engine(slos: &Path, dedup: bool) -> Engine {
    let config = EngineConfig {
        dedup_horizon: if dedup {
            EngineConfig::default().dedup_horizon
        } else {
            std::time::Duration::ZERO
        },
        ..EngineConfig::default()
    };
    let engine = Engine::with_config(Arc::new(SystemClock), config);
    engine.load(spec::load_paths(&[slos.to_path_buf()]).unwrap());
    engine
}

/// The benchmark's four routes against `examples/slos.yaml`.
fn hot_path(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    steps(
        c,
        "batch_512_spans",
        Scenario::benchmark(),
        &root.join("examples/slos.yaml"),
    );
}

/// The wide workload: spans of ten attributes (about 450 bytes) against 200 SLOs, of
/// which each span matches 3.
fn wide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("wide.yaml");
    let scenario = Scenario::wide();
    std::fs::write(&slos, slotel_loadtest::wide_slos(&scenario)).unwrap();
    steps(c, "wide_512_spans", scenario, &slos);
}

fn steps(c: &mut Criterion, name: &str, scenario: Scenario, slos: &Path) {
    let request = batch(scenario);
    let bytes = request.encode_to_vec();
    let limits = ItemLimits::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // The same batch again and again would be all duplicates: without de-duplication,
    // or with fresh span ids for every iteration.
    let engine = make_engine(slos, false);
    let dedup_engine = make_engine(slos, true);
    // Where each span id sits in the bytes: fresh ids are written there.
    let span_ids = slotel_loadtest::span_id_offsets(&bytes);
    let mut next_id = 0u64;
    let fresh = |next_id: &mut u64| {
        let mut body = bytes.clone();
        for &at in &span_ids {
            *next_id += 1;
            body[at..at + 8].copy_from_slice(&next_id.to_be_bytes());
        }
        Batch::trace_bytes("default".into(), body.into())
    };

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(SPANS as u64));
    g.bench_function("decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&bytes[..])).unwrap())
    });
    g.bench_function("check", |b| {
        b.iter_batched(
            || request.clone(),
            |mut r| validate::traces(&mut r, now, &limits),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("check_bytes", |b| {
        b.iter(|| validate::trace_bytes(black_box(&bytes), now, &limits).unwrap())
    });
    g.bench_function("scan", |b| {
        b.iter(|| slotel_proto::wire::scan_traces(black_box(&bytes), &mut NoOp).unwrap())
    });
    g.bench_function("bare_walk", |b| b.iter(|| bare_walk(black_box(&bytes))));
    g.bench_function("classify_aggregate", |b| {
        let batch = Batch::traces("default".into(), request.clone());
        b.iter(|| engine.ingest(black_box(&batch)))
    });
    g.bench_function("classify_aggregate_dedup", |b| {
        b.iter_batched(
            || fresh(&mut next_id),
            |batch| dedup_engine.ingest(&batch),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("check_classify_aggregate", |b| {
        let body = bytes::Bytes::from(bytes.clone());
        b.iter(|| {
            validate::trace_bytes(black_box(&body), now, &limits).unwrap();
            engine.ingest(&Batch::trace_bytes("default".into(), body.clone()));
        })
    });
    g.finish();
}

/// A visitor that looks at nothing: the scanner's own cost.
struct NoOp;

impl<'a> slotel_proto::wire::TraceVisitor<'a> for NoOp {
    fn resource(&mut self, r: &slotel_proto::wire::Resource<'_, 'a>) {
        black_box(r.attributes.len());
    }
    fn span(
        &mut self,
        _: &slotel_proto::wire::Resource<'_, 'a>,
        s: &slotel_proto::wire::Span<'_, 'a>,
    ) {
        black_box(s.attributes.len());
    }
}

/// The floor: a walk over the same bytes that reads each span's name, kind, times,
/// status code and `http.route`, and checks nothing else (no UTF-8, no wire types, no
/// skipped message looked into).
fn bare_walk(buf: &[u8]) -> u64 {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        while *i < b.len() {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        v
    }
    /// Calls `f(tag, wire type, field bytes)` for each field of `b`.
    fn fields<'a>(b: &'a [u8], mut f: impl FnMut(u64, u64, &'a [u8])) {
        let mut i = 0;
        while i < b.len() {
            let key = varint(b, &mut i);
            let (tag, wt) = (key >> 3, key & 7);
            let len = match wt {
                0 => {
                    let start = i;
                    varint(b, &mut i);
                    f(tag, wt, &b[start..i]);
                    continue;
                }
                1 => 8,
                5 => 4,
                _ => varint(b, &mut i) as usize,
            };
            let end = (i + len).min(b.len());
            f(tag, wt, &b[i..end]);
            i = end;
        }
    }
    let mut sum = 0u64;
    fields(buf, |_, _, rs| {
        fields(rs, |tag, _, ss| {
            if tag != 2 {
                return;
            }
            fields(ss, |tag, _, span| {
                if tag != 2 {
                    return;
                }
                fields(span, |tag, _, v| match tag {
                    5 => sum += v.len() as u64,
                    6 => sum += varint(v, &mut 0),
                    7 | 8 => sum += u64::from_le_bytes(v.try_into().unwrap_or_default()),
                    9 => fields(v, |tag, _, kv| {
                        if tag == 1 && kv == b"http.route" {
                            sum += 1;
                        }
                    }),
                    15 => fields(v, |tag, _, c| {
                        if tag == 3 {
                            sum += varint(c, &mut 0);
                        }
                    }),
                    _ => {}
                });
            });
        });
    });
    sum
}

/// A de-duplication lookup of a fresh span past the first minutes: ten minutes of
/// 50,000 keys each, so a lookup asks every generation of the horizon before it inserts.
fn dedup_horizon(c: &mut Criterion) {
    use slotel_compute::dedup::Dedup;
    let mut d = Dedup::new(10, 8_000_000);
    let mut id = 0u64;
    let ids = |id: &mut u64| {
        *id += 1;
        (
            [id.to_be_bytes(), id.to_be_bytes()].concat(),
            id.to_be_bytes(),
        )
    };
    for minute in 0..10 {
        for _ in 0..50_000 {
            let (trace, span) = ids(&mut id);
            d.seen(minute, "default", &trace, &span);
        }
    }
    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fresh_span_over_10_generations", |b| {
        b.iter(|| {
            let (trace, span) = ids(&mut id);
            black_box(d.seen(9, "default", &trace, &span))
        })
    });
    g.finish();
}

/// The de-duplication table's turn of a minute with 8 million keys held (800,000 a
/// minute over ten minutes, under a cap of 9 million, so that the horizon and not the
/// cap expires them): the lookup that finds a new minute removes the keys that left the
/// horizon in one pass over the table. Each iteration times that lookup, then fills the
/// new minute's keys (not timed).
fn dedup_expiry(c: &mut Criterion) {
    use slotel_compute::dedup::Dedup;
    const CAP: u64 = 8_000_000;
    let mut d = Dedup::new(10, 9_000_000);
    let mut id = 0u64;
    let see = |d: &mut Dedup, minute: i64, id: &mut u64| {
        *id += 1;
        d.seen(minute, "default", &id.to_be_bytes(), &[1; 8])
    };
    let mut minute = 0i64;
    while minute < 10 {
        for _ in 0..CAP / 10 {
            see(&mut d, minute, &mut id);
        }
        minute += 1;
    }
    let mut g = c.benchmark_group("dedup");
    g.sample_size(10);
    g.bench_function("expiry_pass_with_8m_keys", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                let start = std::time::Instant::now();
                black_box(see(&mut d, minute, &mut id));
                timed += start.elapsed();
                for _ in 0..CAP / 10 {
                    see(&mut d, minute, &mut id);
                }
                minute += 1;
            }
            timed
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path, wide, dedup_horizon, dedup_expiry);
criterion_main!(benches);
