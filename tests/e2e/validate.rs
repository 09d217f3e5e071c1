//! `slotel validate` on the shipped examples and on broken files, and `serve` refusing
//! to start on a broken file.

use std::process::Command;

use crate::harness::root;

fn slotel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slotel"))
}

#[test]
fn every_shipped_example_is_valid() {
    let out = slotel()
        .arg("validate")
        .arg(root().join("examples/slos.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4 SLOs are valid\n");
}

const BROKEN: &str = "slos:
  - name: a
    service: s
    objective: 100
    window: 90s
    sli:
      spans:
        good: {}
  - name: a
    service: s
    objective: 99
    window: 1d
    sli: { spans: { good: { status: ok } } }
  - name: a
    service: s
    objective: 99
    window: 1d
    sli: { spans: { good: { status: ok } } }
";

#[test]
fn every_problem_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, BROKEN).unwrap();
    let out = slotel().arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let f = file.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{f}:4:16: objective 100 is out of range: it is a percentage above 0 and below 100, e.g. 99.9\n\
             {f}:5:13: window 90s must be a whole number of minutes, at least 1m\n\
             {f}:8:15: good needs at least one rule: status, max_duration, http_status, not_http_status, all_of or any_of\n\
             {f}:14:11: SLO \"a\" of tenant \"default\" is already defined at {f}:9:11\n"
        )
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "slos:\n  - name: a\n    servce: s\n").unwrap();
    let out = slotel()
        .args([
            "serve",
            "--api-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .args(["--otlp-http-addr", "127.0.0.1:0", "--slos"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid SLO files, not starting"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:3:5: ", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("servce"), "{stderr}");
}

#[test]
fn an_empty_file_is_not_valid_and_a_config_error_names_its_position_once() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let out = slotel().arg("validate").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("no SLOs in {}: nothing to validate\n", empty.display())
    );
    let config = dir.path().join("slotel.yaml");
    std::fs::write(&config, "data_dir: x\nnope: 1\n").unwrap();
    let out = slotel()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--slos")
        .arg(root().join("examples/slos.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {}:2:1: unknown field `nope`, expected one of",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_wrong_type_in_one_slo_does_not_hide_the_problems_of_the_others() {
    let text = "slos:
  - name: a
    service: api
    objective: \"high\"
    window: 30d
    sli: { spans: { good: { status: ok } } }
  - name: b
    service: api
    objective: 100
    window: 90s
    sli: { spans: { good: { status: ok } } }
  # a comment between SLOs
  - name: c
    service: api
    objective: 99
    window: 30d
    sli: { spans: { good: { status: okay } } }
  - name: a
    service: api
    objective: 99
    window: 30d
    sli: { spans: { good: { status: ok } } }
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("layers.yaml");
    std::fs::write(&file, text).unwrap();
    let out = slotel().arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let f = file.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{f}:4:16: invalid floating point\n\
             {f}:9:16: objective 100 is out of range: it is a percentage above 0 and below 100, e.g. 99.9\n\
             {f}:10:13: window 90s must be a whole number of minutes, at least 1m\n\
             {f}:17:37: unknown variant `okay`, expected one of not_error, ok\n"
        )
    );
}

#[test]
fn convert_writes_a_native_file_of_the_same_slos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("converted.yaml");
    let run = slotel()
        .arg("convert")
        .arg(root().join("examples/openslo"))
        .arg(root().join("examples/sloth"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!("Wrote 3 SLOs to {}\n", out.display())
    );
    let check = slotel().arg("validate").arg(&out).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout), "3 SLOs are valid\n");
}
