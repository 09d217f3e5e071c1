//! What the fuzz targets share: an engine over `slos.yaml` (every form of the native
//! spec) at a fixed time, and the receivers' default limits.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use slotel_compute::{Engine, EngineConfig};
use slotel_ingest::ItemLimits;
use slotel_model::ManualClock;

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
