//! The dashboards and rules generated for `examples/slos.yaml`: golden files, lint rules
//! every dashboard must pass, and every query parsed as PromQL.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use slotel_dashboards::{Detail, GeneratedFile, Options, dashboards, rules};
use slotel_model::SloDef;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_slos() -> Vec<SloDef> {
    slotel_spec::load_paths(&[root().join("examples/slos.yaml")]).expect("valid examples")
}

fn dashboard_files(detail: Detail) -> Vec<(GeneratedFile, Value)> {
    let opts = Options {
        detail,
        ..Options::default()
    };
    dashboards(&example_slos(), &opts)
        .into_iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "json"))
        .map(|f| {
            let v = serde_json::from_str(&f.contents).expect("valid JSON");
            (f, v)
        })
        .collect()
}

#[test]
fn golden_dashboards_and_rules() {
    let files = dashboards(&example_slos(), &Options::default());
    let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "provisioning/dashboards/slotel/slotel-executive.json",
            "provisioning/dashboards/slotel/slotel-oncall.json",
            "provisioning/dashboards/slotel/slotel-overview.json",
            "provisioning/dashboards/slotel/slotel-service-catalog.json",
            "provisioning/dashboards/slotel/slotel-service-checkout.json",
            "provisioning/datasources/slotel.yaml",
            "provisioning/dashboards/slotel.yaml",
        ]
    );
    for f in &files {
        let name = f
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "_");
        let dir = f
            .path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        insta::assert_snapshot!(format!("{dir}__{name}"), f.contents);
    }
    let rules::Generated {
        text,
        skipped,
        notes,
    } = rules::generate(&example_slos(), &rules::Options::default());
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].slo, "catalog-fast-and-correct");
    // 300 ms is not a bound of the Collector's default buckets: the rules say so and
    // count at 200 ms rather than match no series.
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].slo, "checkout-latency");
    assert!(
        notes[0].reason.contains("300 ms is not a bucket bound"),
        "{notes:?}"
    );
    assert!(!text.contains("le=\"300\""));
    assert!(text.contains("le=\"200\""));
    // With the connector's bounds given, 300 is one, and is used.
    let mut with_300 = rules::Options::default();
    with_300.buckets_ms.push(300.0);
    with_300.buckets_ms.sort_by(f64::total_cmp);
    let exact = rules::generate(&example_slos(), &with_300);
    assert!(exact.notes.is_empty(), "{:?}", exact.notes);
    assert!(exact.text.contains("le=\"300\""));
    insta::assert_snapshot!("rules", text);
}

/// Every panel of a dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Every `datasource` object anywhere in `v`.
fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "datasource" {
                    out.push(x);
                }
                datasources(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| datasources(x, out)),
        _ => {}
    }
}

#[test]
fn every_dashboard_passes_the_lint_rules() {
    for detail in [Detail::PerService, Detail::PerSlo] {
        let files = dashboard_files(detail);
        let mut uids = HashSet::new();
        for (f, d) in &files {
            let name = f.path.display();
            let uid = d["uid"].as_str().expect("uid");
            assert!((8..=40).contains(&uid.len()), "{name}: uid {uid}");
            assert!(uids.insert(uid.to_string()), "{name}: uid {uid} twice");
            let mut ids = HashSet::new();
            let mut cells: Vec<(u64, u64, u64, u64, String)> = Vec::new();
            for p in panels(d) {
                let title = p["title"].as_str().unwrap_or("").to_string();
                let id = p["id"].as_u64().expect("panel id");
                assert!(ids.insert(id), "{name}: panel id {id} twice");
                if p["type"] != "row" {
                    let desc = p["description"].as_str().unwrap_or("");
                    assert!(
                        desc.len() >= 20,
                        "{name}: panel {title:?} has no description"
                    );
                    assert!(
                        !p["targets"].as_array().expect("targets").is_empty(),
                        "{name}: panel {title:?} has no query"
                    );
                }
                let g = &p["gridPos"];
                let (x, y, w, h) = (
                    g["x"].as_u64().expect("x"),
                    g["y"].as_u64().expect("y"),
                    g["w"].as_u64().expect("w"),
                    g["h"].as_u64().expect("h"),
                );
                assert!(
                    w >= 1 && h >= 1 && x + w <= 24,
                    "{name}: panel {title:?} at {g}"
                );
                for (ox, oy, ow, oh, other) in &cells {
                    let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
                    assert!(apart, "{name}: panels {title:?} and {other:?} overlap");
                }
                cells.push((x, y, w, h, title));
            }
            let mut sources = Vec::new();
            datasources(d, &mut sources);
            assert!(!sources.is_empty());
            for s in sources {
                assert_eq!(s["uid"], "${datasource}", "{name}: a fixed data source {s}");
            }
            let vars = d["templating"]["list"].as_array().expect("variables");
            assert_eq!(vars[0]["name"], "datasource");
            assert_eq!(vars[0]["type"], "datasource");
            assert_eq!(vars[0]["query"], "prometheus");
        }
    }
}

/// The queries of a dashboard with the variables set to All, as the test of the panels
/// against a server runs them.
fn queries(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let mut expr = t["expr"].as_str().expect("expr").to_string();
            for v in d["templating"]["list"].as_array().expect("variables") {
                if let (Some(n), Some(all)) = (v["name"].as_str(), v["allValue"].as_str()) {
                    expr = expr.replace(&format!("${n}"), all);
                }
            }
            out.push(expr);
        }
    }
    out
}

#[test]
fn every_query_is_promql() {
    for detail in [Detail::PerService, Detail::PerSlo] {
        for (f, d) in dashboard_files(detail) {
            for q in queries(&d) {
                assert!(
                    !q.contains('$'),
                    "{}: a variable left in {q}",
                    f.path.display()
                );
                if let Err(e) = promql_parser::parser::parse(&q) {
                    panic!("{}: {q}: {e}", f.path.display());
                }
            }
        }
    }
}

#[test]
fn rules_of_a_sloth_spec_keep_its_selectors_and_its_alerting_block() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut defs = slotel_spec::load_paths(&[root.join("examples/sloth/api.yaml")]).expect("valid");
    let text = rules::generate(&defs, &rules::Options::default()).text;
    // The spec's own job matcher, and its alert name, labels and severities.
    assert!(
        text.contains(r#"http_server_requests_total{job="api", code=~"(5..|429)"}"#),
        "{text}"
    );
    assert_eq!(text.matches("alert: ApiHighErrorRate").count(), 4, "{text}");
    assert!(!text.contains("alertname"), "{text}");
    assert_eq!(text.matches("severity: critical").count(), 2, "{text}");
    assert_eq!(text.matches("severity: warning").count(), 2, "{text}");
    // A disabled ticket alert writes no ticket rules.
    for tier in ["ticket-fast", "ticket-slow"] {
        defs[0].alert_tiers.get_mut(tier).unwrap().disabled = true;
    }
    let text = rules::generate(&defs, &rules::Options::default()).text;
    assert_eq!(text.matches("alert: ApiHighErrorRate").count(), 2, "{text}");
    assert!(!text.contains("ticket-"), "{text}");
}
