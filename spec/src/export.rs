//! Writing the model back as a file: slotel's native YAML, which reads back as the same
//! SLOs (`slotel convert`). Every field of [`SloDef`] has its place; defaults are left
//! out.

use serde_json::{Map, Value, json};
use slotel_model::{
    AttrMatch, BudgetAlerts, Budgeting, CalendarUnit, GoodRule, MetricSelector, Sli, SloDef,
    SpanSelector, TierOverride, Window, format_minutes,
};

/// `defs` as a native SLO file.
pub fn to_native(defs: &[SloDef]) -> String {
    let slos: Vec<Value> = defs.iter().map(native_slo).collect();
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut out = serde_saphyr::to_string_with_options(&json!({ "slos": slos }), options)
        .expect("JSON values serialize as YAML");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn native_slo(d: &SloDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(d.name));
    if d.tenant != slotel_model::DEFAULT_TENANT {
        m.insert("tenant".into(), json!(d.tenant));
    }
    m.insert("service".into(), json!(d.service));
    if let Some(text) = &d.description {
        m.insert("description".into(), json!(text));
    }
    if !d.labels.is_empty() {
        m.insert("labels".into(), json!(d.labels));
    }
    if !d.annotations.is_empty() {
        m.insert("annotations".into(), json!(d.annotations));
    }
    match d.objectives.as_slice() {
        [only] if only.name == "default" => {
            m.insert("objective".into(), json!(only.target));
        }
        all => {
            let list: Vec<Value> = all
                .iter()
                .map(|o| json!({ "name": o.name, "target": o.target }))
                .collect();
            m.insert("objectives".into(), json!(list));
        }
    }
    match d.budgeting {
        Budgeting::Occurrences => {}
        Budgeting::Timeslices {
            slice_minutes,
            slice_target,
        } => {
            let target = (slice_target * 100.0 * 1e9).round() / 1e9;
            m.insert(
                "budgeting".into(),
                json!({ "timeslices": { "slice": format_minutes(slice_minutes), "target": target } }),
            );
        }
        Budgeting::RatioTimeslices { slice_minutes } => {
            m.insert(
                "budgeting".into(),
                json!({ "ratio_timeslices": { "slice": format_minutes(slice_minutes) } }),
            );
        }
    }
    m.insert("window".into(), window(&d.window));
    if d.min_events != slotel_model::DEFAULT_MIN_EVENTS {
        m.insert("min_events".into(), json!(d.min_events));
    }
    if d.freeze_below > 0.0 {
        m.insert("policy".into(), json!({ "freeze_below": d.freeze_below }));
    }
    if let Some(a) = alerting(d) {
        m.insert("alerting".into(), a);
    }
    if !d.group_by.is_empty() {
        m.insert("group_by".into(), json!(d.group_by));
        if d.max_groups != crate::DEFAULT_MAX_GROUPS {
            m.insert("max_groups".into(), json!(d.max_groups));
        }
    }
    m.insert("sli".into(), sli(&d.sli));
    Value::Object(m)
}

fn window(w: &Window) -> Value {
    match w {
        Window::Rolling { minutes } => json!(format_minutes(*minutes)),
        Window::Calendar { unit, tz } => json!({ "calendar": unit, "time_zone": tz.name }),
    }
}

fn seconds(s: i64) -> String {
    if s > 0 && s % 60 == 0 {
        format_minutes((s / 60) as u32)
    } else {
        format!("{s}s")
    }
}

fn alerting(d: &SloDef) -> Option<Value> {
    let mut m = Map::new();
    if !d.alert_tiers.is_empty() {
        let tiers: Map<String, Value> = d
            .alert_tiers
            .iter()
            .map(|(name, t)| (name.clone(), tier(t)))
            .collect();
        m.insert("tiers".into(), Value::Object(tiers));
    }
    let BudgetAlerts {
        exhaustion_within_seconds,
        exhausted,
        no_data_minutes,
    } = &d.budget_alerts;
    if let Some((within, severity)) = exhaustion_within_seconds {
        m.insert(
            "exhaustion".into(),
            json!({ "within": seconds(*within), "severity": severity.as_str() }),
        );
    }
    if let Some(severity) = exhausted {
        m.insert(
            "budget_exhausted".into(),
            json!({ "severity": severity.as_str() }),
        );
    }
    if let Some((minutes, severity)) = no_data_minutes {
        m.insert(
            "no_data".into(),
            json!({ "after": format_minutes(*minutes), "severity": severity.as_str() }),
        );
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn tier(t: &TierOverride) -> Value {
    let mut m = Map::new();
    if t.disabled {
        m.insert("disabled".into(), json!(true));
    }
    if let Some(f) = t.factor {
        m.insert("factor".into(), json!(f));
    }
    if let Some(s) = t.severity {
        m.insert("severity".into(), json!(s.as_str()));
    }
    if let Some(l) = t.long_minutes {
        m.insert("long".into(), json!(format_minutes(l)));
    }
    if let Some(s) = t.short_minutes {
        m.insert("short".into(), json!(format_minutes(s)));
    }
    if let Some(f) = t.for_seconds {
        m.insert("for".into(), json!(seconds(f)));
    }
    if !t.labels.is_empty() {
        m.insert("labels".into(), json!(t.labels));
    }
    if !t.annotations.is_empty() {
        m.insert("annotations".into(), json!(t.annotations));
    }
    Value::Object(m)
}

fn sli(s: &Sli) -> Value {
    match s {
        Sli::Spans { selector, good } => {
            json!({ "spans": { "match": span_match(selector), "good": good_rule(good) } })
        }
        Sli::Logs {
            attributes,
            max_severity,
        } => json!({ "logs": {
            "match": { "attributes": matchers(attributes) },
            "good": { "max_severity": slotel_model::severity_name(*max_severity) },
        } }),
        Sli::MetricRatio { good, bad, total } => {
            let mut m = Map::new();
            if let Some(g) = good {
                m.insert("good".into(), metric(g));
            }
            if let Some(b) = bad {
                m.insert("bad".into(), metric(b));
            }
            m.insert("total".into(), metric(total));
            json!({ "metrics": m })
        }
        Sli::MetricLatency {
            metric: sel,
            threshold_seconds,
        } => {
            let mut h = match metric(sel) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            h.insert(
                "threshold".into(),
                json!(duration_nanos((threshold_seconds * 1e9).round() as u64)),
            );
            json!({ "histogram": h })
        }
    }
}

fn metric(m: &MetricSelector) -> Value {
    let mut out = Map::new();
    out.insert("metric".into(), json!(m.name));
    if m.prometheus {
        out.insert("prometheus".into(), json!(true));
    }
    if let Some(job) = &m.job {
        out.insert("job".into(), json!(job));
    }
    if !m.attributes.is_empty() {
        out.insert("attributes".into(), matchers(&m.attributes));
    }
    Value::Object(out)
}

fn span_match(s: &SpanSelector) -> Value {
    let mut m = Map::new();
    if let Some(kind) = s.kind {
        m.insert("span_kind".into(), json!(kind));
    }
    if let Some(n) = &s.span_name {
        m.insert("span_name".into(), json!(n));
    }
    if let Some(r) = &s.http_route {
        m.insert("http_route".into(), json!(r));
    }
    if !s.attributes.is_empty() {
        m.insert("attributes".into(), matchers(&s.attributes));
    }
    if !s.resource.is_empty() {
        m.insert("resource".into(), matchers(&s.resource));
    }
    Value::Object(m)
}

fn good_rule(g: &GoodRule) -> Value {
    let mut m = Map::new();
    if let Some(s) = g.status {
        m.insert("status".into(), json!(s));
    }
    if let Some(n) = g.max_duration_nanos {
        m.insert("max_duration".into(), json!(duration_nanos(n)));
    }
    if let Some(c) = &g.http_status {
        m.insert("http_status".into(), json!(c));
    }
    if let Some(c) = &g.not_http_status {
        m.insert("not_http_status".into(), json!(c));
    }
    if !g.all_of.is_empty() {
        m.insert("all_of".into(), g.all_of.iter().map(good_rule).collect());
    }
    if !g.any_of.is_empty() {
        m.insert("any_of".into(), g.any_of.iter().map(good_rule).collect());
    }
    Value::Object(m)
}

fn duration_nanos(n: u64) -> String {
    if n.is_multiple_of(1_000_000_000) {
        format!("{}s", n / 1_000_000_000)
    } else if n.is_multiple_of(1_000_000) {
        format!("{}ms", n / 1_000_000)
    } else if n.is_multiple_of(1_000) {
        format!("{}us", n / 1_000)
    } else {
        format!("{n}ns")
    }
}

fn matchers(m: &[(String, AttrMatch)]) -> Value {
    let out: Map<String, Value> = m
        .iter()
        .map(|(k, a)| {
            // The model's own form, with regexes as written (without the anchors).
            let v = match a {
                AttrMatch::Regex(r) => json!({ "regex": slotel_model::unanchored(r.as_str()) }),
                AttrMatch::NotRegex(r) => {
                    json!({ "not_regex": slotel_model::unanchored(r.as_str()) })
                }
                other => json!(other),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(out)
}

/// The annotation that carries, in an OpenSLO file, what OpenSLO has no field for:
/// slotel's alert tiers and budget alerts, the low-traffic guard, groups, the release
/// policy and the tenant, as the native fields (JSON).
pub const NATIVE_ANNOTATION: &str = "slotel.native";

/// `defs` as OpenSLO v1 documents: an `SLO` per SLO with its SLI inline (`type:
/// slotel` sources with slotel's selectors), and the `Service`s their annotations
/// describe. What OpenSLO cannot say travels in the [`NATIVE_ANNOTATION`].
pub fn to_openslo(defs: &[SloDef]) -> String {
    let mut docs: Vec<Value> = Vec::new();
    // Services, when an SLO carries a Service's description: then every service of the
    // file is defined, as OpenSLO readers check.
    let described = defs.iter().any(|d| {
        d.annotations.contains_key("service_description")
            || d.annotations.contains_key("service_display_name")
    });
    if described {
        let mut services: Vec<&str> = defs.iter().map(|d| d.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        for service in services {
            let of = |key: &str| {
                defs.iter()
                    .filter(|d| d.service == service)
                    .find_map(|d| d.annotations.get(key).cloned())
            };
            let mut metadata = json!({ "name": service });
            if let Some(n) = of("service_display_name") {
                metadata["displayName"] = json!(n);
            }
            let mut spec = Map::new();
            if let Some(text) = of("service_description") {
                spec.insert("description".into(), json!(text));
            }
            docs.push(json!({
                "apiVersion": "openslo/v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": spec,
            }));
        }
    }
    docs.extend(defs.iter().map(openslo_slo));
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = serde_saphyr::to_string_with_options(doc, options.clone())
            .expect("JSON values serialize as YAML");
        out.push_str(&text);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn openslo_slo(d: &SloDef) -> Value {
    let native = match native_slo(d) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // What OpenSLO has no field for, in native form.
    let extra: Map<String, Value> = native
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "tenant" | "min_events" | "policy" | "alerting" | "group_by" | "max_groups"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut annotations = d.annotations.clone();
    let display = annotations.remove("display_name");
    let indicator = annotations
        .remove("indicator")
        .unwrap_or_else(|| d.name.clone());
    annotations.remove("service_description");
    annotations.remove("service_display_name");
    if !extra.is_empty() {
        annotations.insert(
            NATIVE_ANNOTATION.into(),
            serde_json::to_string(&Value::Object(extra)).unwrap_or_default(),
        );
    }
    let mut metadata = json!({ "name": d.name });
    if let Some(n) = display {
        metadata["displayName"] = json!(n);
    }
    if !d.labels.is_empty() {
        metadata["labels"] = json!(d.labels);
    }
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    let source = |spec: Value| json!({ "metricSource": { "type": "slotel", "spec": spec } });
    let (indicator_spec, threshold) = match &d.sli {
        Sli::Spans { selector, good } => (
            json!({ "ratioMetric": {
                "counter": true,
                "good": source(json!({ "spans": { "good": good_rule(good) } })),
                "total": source(json!({ "spans": { "match": span_match(selector) } })),
            } }),
            None,
        ),
        Sli::Logs {
            attributes,
            max_severity,
        } => (
            json!({ "ratioMetric": {
                "counter": true,
                "good": source(json!({ "logs": { "good": { "max_severity": slotel_model::severity_name(*max_severity) } } })),
                "total": source(json!({ "logs": { "match": { "attributes": matchers(attributes) } } })),
            } }),
            None,
        ),
        Sli::MetricRatio { good, bad, total } => {
            let mut r = Map::new();
            r.insert("counter".into(), json!(true));
            if let Some(g) = good {
                r.insert("good".into(), source(metric(g)));
            }
            if let Some(b) = bad {
                r.insert("bad".into(), source(metric(b)));
            }
            r.insert("total".into(), source(metric(total)));
            (json!({ "ratioMetric": r }), None)
        }
        Sli::MetricLatency {
            metric: sel,
            threshold_seconds,
        } => {
            let mut h = Map::new();
            h.insert("histogram".into(), json!(sel.name));
            if !sel.attributes.is_empty() {
                h.insert("attributes".into(), matchers(&sel.attributes));
            }
            (
                json!({ "thresholdMetric": source(Value::Object(h)) }),
                Some(*threshold_seconds),
            )
        }
    };
    let objectives: Vec<Value> = d
        .objectives
        .iter()
        .map(|o| {
            let mut v = json!({ "displayName": o.name, "targetPercent": o.target });
            if let Some(t) = threshold {
                v["op"] = json!("lte");
                v["value"] = json!(t);
            }
            match d.budgeting {
                Budgeting::Occurrences => {}
                Budgeting::Timeslices {
                    slice_minutes,
                    slice_target,
                } => {
                    v["timeSliceTarget"] = json!(slice_target);
                    v["timeSliceWindow"] = json!(format_minutes(slice_minutes));
                }
                Budgeting::RatioTimeslices { slice_minutes } => {
                    v["timeSliceWindow"] = json!(format_minutes(slice_minutes));
                }
            }
            v
        })
        .collect();
    let time_window = match &d.window {
        Window::Rolling { minutes } => {
            json!({ "duration": format_minutes(*minutes), "isRolling": true })
        }
        Window::Calendar { unit, tz } => {
            // A period's start, as OpenSLO asks for one: 2024-01-01 was a Monday.
            let (duration, start) = match unit {
                CalendarUnit::Week => ("1w", "2024-01-01 00:00:00"),
                CalendarUnit::Month => ("1M", "2024-01-01 00:00:00"),
                CalendarUnit::Quarter => ("1Q", "2024-01-01 00:00:00"),
            };
            json!({
                "duration": duration,
                "isRolling": false,
                "calendar": { "startTime": start, "timeZone": tz.name },
            })
        }
    };
    let mut spec = Map::new();
    if let Some(text) = &d.description {
        spec.insert("description".into(), json!(text));
    }
    spec.insert("service".into(), json!(d.service));
    spec.insert(
        "indicator".into(),
        json!({ "metadata": { "name": indicator }, "spec": indicator_spec }),
    );
    spec.insert("timeWindow".into(), json!([time_window]));
    spec.insert(
        "budgetingMethod".into(),
        json!(match d.budgeting {
            Budgeting::Occurrences => "Occurrences",
            Budgeting::Timeslices { .. } => "Timeslices",
            Budgeting::RatioTimeslices { .. } => "RatioTimeslices",
        }),
    );
    spec.insert("objectives".into(), json!(objectives));
    json!({
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": metadata,
        "spec": spec,
    })
}
