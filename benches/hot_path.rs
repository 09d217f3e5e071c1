//! The hot path on a realistic 512-span OTLP batch: protobuf decode, the receiver's
//! checks (partial success, attribute limits), and classification + aggregation into
//! the SLO windows, apart and together.
//!
//! Run: `cargo bench --bench hot_path`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use slotel_compute::{Engine, SystemClock, spec};
use slotel_ingest::validate::{self, ItemLimits};
use slotel_loadtest::{Generator, Route, Scenario};
use slotel_proto::Batch;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

const SPANS: usize = 512;

fn batch() -> ExportTraceServiceRequest {
    let scenario = Scenario {
        routes: vec![
            Route::parse("checkout:POST /api/checkout").unwrap(),
            Route::parse("catalog:GET /api/items/{id}").unwrap(),
            Route::parse("catalog:GET /api/search").unwrap(),
            Route::parse("payments:POST /api/pay").unwrap(),
        ],
        error_ratio: 0.01,
        latency_median_ns: 50e6,
        latency_p99_ns: 400e6,
        thresholds_ns: vec![],
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Generator::new(scenario, 1).unwrap().batch(SPANS, now).0
}

fn engine() -> Engine {
    let engine = Engine::new(Arc::new(SystemClock));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    engine.load(spec::load_paths(&[root.join("examples/slos.yaml")]).unwrap());
    engine
}

fn hot_path(c: &mut Criterion) {
    let request = batch();
    let bytes = request.encode_to_vec();
    let limits = ItemLimits::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let engine = engine();

    let mut g = c.benchmark_group("batch_512_spans");
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
    g.bench_function("classify_aggregate", |b| {
        let batch = Batch::traces("default".into(), request.clone());
        b.iter(|| engine.ingest(black_box(&batch)))
    });
    g.bench_function("decode_check_classify_aggregate", |b| {
        b.iter(|| {
            let mut r = ExportTraceServiceRequest::decode(black_box(&bytes[..])).unwrap();
            validate::traces(&mut r, now, &limits);
            engine.ingest(&Batch::traces("default".into(), r));
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
