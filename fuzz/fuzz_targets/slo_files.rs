//! SLO files in every format slotel reads (native, OpenSLO, Sloth; told apart by their
//! text, as `--slos` tells them), several at once when the input holds `\n#---\n`
//! between them (OpenSLO documents refer to each other across files). A set that loads
//! compiles into an engine, and its export as a native file loads again to as many SLOs.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use slotel_compute::Engine;
use slotel_fuzz::NOW_NANOS;
use slotel_model::ManualClock;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let texts: Vec<(PathBuf, String)> = text
        .split("\n#---\n")
        .enumerate()
        .map(|(i, t)| (PathBuf::from(format!("slos-{i}.yaml")), t.to_string()))
        .collect();
    let Ok(defs) = slotel_spec::load_texts(&texts).0 else {
        return;
    };
    // One engine, reloaded with every set that loads, as `slotel serve` reloads files.
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| Engine::new(Arc::new(ManualClock::new(NOW_NANOS as i64))));
    engine.load(defs.clone());
    let native = slotel_spec::export::to_native(&defs);
    let again = slotel_spec::load_texts(&[(PathBuf::from("export.yaml"), native.clone())]).0;
    match again {
        Ok(again) => assert_eq!(again.len(), defs.len()),
        Err(e) => panic!("the export of loaded SLOs does not load: {e}\n{native}"),
    }
});
