//! The golden set: spec files (native, OpenSLO, Sloth) and the normalized model they
//! produce, and invalid files with the exact error messages expected. Snapshots live in
//! `tests/snapshots/`; after an intended change, review and accept them with
//! `INSTA_UPDATE=always cargo test -p slotel-spec --test golden`.

use std::path::{Path, PathBuf};

use slotel_spec::load_paths;

fn specs(kind: &str) -> Vec<PathBuf> {
    // Relative paths keep the file names in messages stable.
    let dir = Path::new("tests/specs").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn valid_specs_normalize_to_the_model() {
    let files = specs("valid");
    assert_eq!(files.len(), 3);
    for file in files {
        let defs = load_paths(std::slice::from_ref(&file)).unwrap_or_else(|e| panic!("{e}"));
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(
            format!("valid-{name}"),
            serde_json::to_string_pretty(&defs).unwrap()
        );
    }
}

#[test]
fn invalid_specs_report_every_problem_with_its_position() {
    let files = specs("invalid");
    assert_eq!(files.len(), 4);
    for file in files {
        let err = load_paths(std::slice::from_ref(&file))
            .unwrap_err()
            .to_string();
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(format!("invalid-{name}"), err);
    }
}

#[test]
fn openslo_alert_policies_replace_the_default_tiers() {
    use slotel_model::{Severity, tiers_for};
    let defs = load_paths(&[Path::new("tests/specs/valid/openslo.yaml").to_path_buf()]).unwrap();
    let tiers = tiers_for(&defs[0], 30 * 1440);
    assert_eq!(tiers.len(), 1, "{tiers:?}");
    let t = &tiers[0];
    assert_eq!(t.name, "fast-burn");
    assert_eq!((t.long_minutes, t.short_minutes), (60, 5));
    assert_eq!((t.factor, t.for_seconds), (14.4, 300));
    assert_eq!(t.severity, Severity::Page);
    let tiers = tiers_for(&defs[1], 31 * 1440);
    let names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["slow-burn"]);
    assert_eq!(tiers[0].severity, Severity::Ticket);
    assert_eq!(
        defs[1].budget_alerts.no_data_minutes,
        Some((1440, Severity::Ticket))
    );
}
