//! Every field of the shipped examples counts: changing any scalar value of
//! `examples/slos.yaml`, `examples/openslo/` or `examples/sloth/` either changes the SLOs
//! slotel reads or is refused. A value slotel would ignore fails the test, naming it.

use std::path::{Path, PathBuf};

use slotel_model::SloDef;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(dir: &Path, name: &str, text: &str) -> Result<Vec<SloDef>, String> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    slotel_spec::load_paths(&[path]).map_err(|e| e.to_string())
}

/// Another value of the same kind as `value` (a scalar as YAML writes it).
fn mutate(value: &str) -> String {
    let v = value.trim();
    if v == "true" {
        return "false".into();
    }
    if v == "false" {
        return "true".into();
    }
    if let Ok(n) = v.parse::<f64>() {
        // Objectives and targets stay in range: nudge by a little.
        let step = if n.fract() != 0.0 || n < 1.0 {
            10f64.powi(-(v.split('.').nth(1).map_or(0, str::len) as i32))
        } else {
            1.0
        };
        let m = if n - step > 0.0 { n - step } else { n + step };
        return format!("{m}");
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return format!("\"{inner}x\"");
    }
    format!("{v}x")
}

/// The lines that hold one `key: scalar` (flow maps and lists are left whole: their
/// fields are selectors, which the spec tests cover one by one).
fn scalar_lines(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        let trimmed = code.trim_start().trim_start_matches("- ");
        if trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(": ") else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.starts_with(['{', '[', '|', '>']) || key.contains(' ') {
            continue;
        }
        out.push((i, key.to_string(), value.to_string()));
    }
    out
}

fn check(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let dir = tempfile::tempdir().unwrap();
    let original = load(dir.path(), &name, &text).expect("the example is valid");
    let mut ignored = Vec::new();
    for (i, key, value) in scalar_lines(&text) {
        let changed: String = text
            .lines()
            .enumerate()
            .map(|(j, l)| {
                if j == i {
                    let at = l.find(&format!("{key}: ")).unwrap() + key.len() + 2;
                    let rest = &l[at..];
                    let comment = rest.find(" #").map_or("", |c| &rest[c..]);
                    format!("{}{}{comment}", &l[..at], mutate(&value))
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        match load(dir.path(), &name, &changed) {
            Err(_) => {}
            Ok(defs) if defs != original => {}
            Ok(_) => ignored.push(format!("{name}:{}: {key}: {value}", i + 1)),
        }
    }
    ignored
}

#[test]
fn every_field_of_the_shipped_examples_is_reflected_or_refused() {
    let mut files = vec![root().join("examples/slos.yaml")];
    for dir in ["examples/openslo", "examples/sloth"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        found.sort();
        files.extend(found);
    }
    let ignored: Vec<String> = files.iter().flat_map(|f| check(f)).collect();
    assert!(
        ignored.is_empty(),
        "fields whose change slotel ignores:\n{}",
        ignored.join("\n")
    );
}

#[test]
fn the_sloth_alerting_block_names_labels_and_disables_the_alerts() {
    let defs = slotel_spec::load_paths(&[root().join("examples/sloth/api.yaml")]).unwrap();
    let tiers = |def: &SloDef| slotel_model::tiers_for(def, 30 * 1440);
    let all = tiers(&defs[0]);
    assert_eq!(all.len(), 4);
    for t in &all {
        assert_eq!(t.labels["alertname"], "ApiHighErrorRate", "{}", t.name);
        assert_eq!(t.labels["category"], "availability");
        let severity = if t.name.starts_with("page") {
            "critical"
        } else {
            "warning"
        };
        assert_eq!(t.labels["severity"], severity, "{}", t.name);
    }
    // `disable: true` on the ticket alert leaves the page tiers only.
    let text = std::fs::read_to_string(root().join("examples/sloth/api.yaml"))
        .unwrap()
        .replace(
            "      ticket_alert:\n",
            "      ticket_alert:\n        disable: true\n",
        );
    let dir = tempfile::tempdir().unwrap();
    let defs = load(dir.path(), "api.yaml", &text).unwrap();
    let names: Vec<String> = tiers(&defs[0]).into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["page-fast", "page-slow"]);
}
