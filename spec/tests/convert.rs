//! `export::to_native` and `export::to_openslo` of every shipped example read back as
//! the same SLOs.

use std::path::Path;

#[test]
fn every_shipped_example_round_trips_through_native_yaml_and_openslo() {
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
        for (to, text) in [
            ("native", slotel_spec::export::to_native(&defs)),
            ("openslo", slotel_spec::export::to_openslo(&defs)),
        ] {
            let file = dir.path().join(format!("converted-{to}.yaml"));
            std::fs::write(&file, &text).unwrap();
            let back = slotel_spec::load_paths(&[file]).unwrap_or_else(|e| {
                panic!("{example} as {to}: the converted file does not read:\n{e}\n{text}")
            });
            assert_eq!(back, defs, "{example} as {to}:\n{text}");
        }
    }
}
