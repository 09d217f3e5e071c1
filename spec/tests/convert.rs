//! `export::to_native` of every shipped example reads back as the same SLOs.

use std::path::Path;

#[test]
fn every_shipped_example_round_trips_through_native_yaml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    for example in [
        "examples/slos.yaml",
        "examples/openslo",
        "examples/sloth",
        "spec/tests/corpus/openslo/valid",
        "spec/tests/corpus/sloth/valid",
    ] {
        let defs = slotel_spec::load_paths(&[root.join(example)]).unwrap();
        let text = slotel_spec::export::to_native(&defs);
        let file = dir.path().join("converted.yaml");
        std::fs::write(&file, &text).unwrap();
        let back = slotel_spec::load_paths(&[file]).unwrap_or_else(|e| {
            panic!("{example}: the converted file does not read:\n{e}\n{text}")
        });
        assert_eq!(back, defs, "{example}:\n{text}");
    }
}
