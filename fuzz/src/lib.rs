//! What the fuzz targets share: an engine over `slos.yaml` (every form of the native
//! spec) at a fixed time, and the receivers' default limits.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use slotel_compute::{Engine, EngineConfig};
use slotel_ingest::ItemLimits;
use slotel_model::ManualClock;
use slotel_proto::{Batch, Payload};

/// The engine's clock: 2026-01-01T00:00:00Z. Seeds date their items just before it.
pub const NOW_NANOS: u64 = 1_767_225_600_000_000_000;

/// The SLOs every engine here holds.
pub const SLOS: &str = include_str!("../slos.yaml");

/// The tenant of every batch.
pub const TENANT: &str = "default";

/// A new engine over [`SLOS`] at [`NOW_NANOS`], without de-duplication (its table
/// would grow with every input's ids for the whole run).
pub fn new_engine() -> Engine {
    let config = EngineConfig {
        dedup_horizon: std::time::Duration::ZERO,
        ..EngineConfig::default()
    };
    let engine = Engine::with_config(Arc::new(ManualClock::new(NOW_NANOS as i64)), config);
    let texts = [(PathBuf::from("slos.yaml"), SLOS.to_string())];
    let defs = slotel_spec::load_texts(&texts)
        .0
        .expect("slos.yaml is valid");
    engine.load(defs);
    engine
}

/// The engine the OTLP targets count into, made once per process.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(new_engine)
}

/// The receivers' default limits.
pub fn limits() -> ItemLimits {
    ItemLimits::default()
}

/// Counts a checked, decoded `request` (metrics or logs) into [`engine`] as the log would
/// hand it on, after checking that its encoding decodes to a request that encodes to the
/// same bytes (compared as bytes: a NaN value is not equal to itself).
pub fn count_decoded<M: prost::Message + Default>(request: M, payload: fn(M) -> Payload) {
    let bytes = request.encode_to_vec();
    let again = M::decode(&*bytes).expect("an encoded request decodes");
    assert_eq!(again.encode_to_vec(), bytes);
    engine().ingest(&Batch {
        tenant: TENANT.into(),
        size_bytes: bytes.len(),
        payload: payload(request),
        raw: None,
        received_nanos: NOW_NANOS as i64,
    });
}
