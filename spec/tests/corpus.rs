//! The corpus of OpenSLO and Sloth files written for these tests (`tests/corpus`): every
//! layout and kind slotel reads, the sources it refuses with the reason, and the
//! invalid variants the schemas reject. A valid file (or folder, read as one set) is
//! accepted and its model is in the golden file; a refused or invalid one fails with
//! every problem at its position, word for word in the golden file.

use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The cases under `dir`: its files and its folders, each one case, in name order.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

#[test]
fn the_corpus_reads_as_the_golden_file_says() {
    let root = corpus();
    let mut report = String::new();
    for format in ["openslo", "sloth"] {
        for outcome in ["valid", "refused", "invalid"] {
            for case in cases(&root.join(format).join(outcome)) {
                let name = case.strip_prefix(&root).unwrap().display().to_string();
                let (result, notes) = slotel_spec::load_paths_noting(
                    std::slice::from_ref(&case),
                    &slotel_spec::DEFAULT_EXTENSIONS,
                );
                report.push_str(&format!("== {name}\n"));
                for n in &notes {
                    let n = n.to_string().replace(&format!("{}/", root.display()), "");
                    report.push_str(&format!("{n}\n"));
                }
                match (outcome, result) {
                    ("valid", Ok(defs)) => {
                        assert!(!defs.is_empty(), "{name}: no SLOs");
                        report.push_str(&serde_json::to_string_pretty(&defs).unwrap());
                        report.push('\n');
                    }
                    ("valid", Err(e)) => panic!("{name} is valid, and was refused:\n{e}"),
                    (_, Ok(defs)) => panic!("{name} should be refused, and read as {defs:?}"),
                    (_, Err(e)) => {
                        let text = e.to_string().replace(&format!("{}/", root.display()), "");
                        // Every problem has its position.
                        for line in text.lines() {
                            let mut parts = line.splitn(4, ':');
                            let (_, l, c) = (parts.next(), parts.next(), parts.next());
                            assert!(
                                l.is_some_and(|l| l.parse::<u64>().is_ok_and(|l| l > 0))
                                    && c.is_some_and(|c| c.parse::<u64>().is_ok_and(|c| c > 0)),
                                "{name}: a problem without its position: {line}"
                            );
                        }
                        report.push_str(&text);
                        report.push('\n');
                    }
                }
            }
        }
    }
    insta::assert_snapshot!("corpus", report);
}
