//! The native format's parser and the loader, on documents written here.

use super::*;

use slotel_model::AttrValue;

const ISSUE_EXAMPLE: &str = r#"
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9          # percent
    window: 30d              # rolling
    sli:
      spans:
        match: { span_kind: server, span_name: "POST /api/checkout" }
        good: { status: not_error }
  - name: checkout-latency
    service: checkout
    objective: 99
    window: 28d
    sli:
      spans:
        match: { span_name: "POST /api/checkout", attributes: { "http.request.method": "POST" } }
        good: { max_duration: 300ms }   # good when duration <= 300ms
"#;

#[test]
fn parses_the_documented_example() {
    let defs = parse_native(Path::new("slos.yaml"), ISSUE_EXAMPLE).unwrap();
    assert_eq!(defs.len(), 2);
    assert_eq!(defs[0].name, "checkout-availability");
    assert_eq!(defs[0].tenant, "default");
    assert_eq!(defs[0].objective, 99.9);
    assert_eq!(defs[0].window, Window::rolling(30 * 1440));
    let Sli::Spans { selector, good } = &defs[0].sli else {
        panic!("a span SLI")
    };
    assert_eq!(selector.kind, Some(SpanKind::Server));
    assert_eq!(selector.span_name.as_deref(), Some("POST /api/checkout"));
    assert_eq!(good.status, Some(StatusRule::NotError));
    assert_eq!(good.max_duration_nanos, None);
    let Sli::Spans { selector, good } = &defs[1].sli else {
        panic!("a span SLI")
    };
    assert_eq!(
        selector.attributes,
        vec![(
            "http.request.method".to_string(),
            AttrMatch::Eq(AttrValue::String("POST".into()))
        )]
    );
    assert_eq!(good.max_duration_nanos, Some(300_000_000));
    assert_eq!(defs[1].window.to_string(), "28d");
}

#[test]
fn log_slis_and_severities() {
    let text = "slos:\n  - name: l\n    service: s\n    objective: 99\n    window: 1d\n    sli: { logs: { match: { attributes: { event: payment } }, good: { max_severity: warn } } }\n";
    let defs = parse_native(Path::new("f.yaml"), text).unwrap();
    assert_eq!(
        defs[0].sli,
        Sli::Logs {
            attributes: vec![(
                "event".into(),
                AttrMatch::Eq(AttrValue::String("payment".into()))
            )],
            max_severity: 16
        }
    );
    assert_eq!(parse_severity("info"), Some(12));
    assert_eq!(parse_severity("ERROR"), Some(20));
    assert_eq!(parse_severity("warn2"), Some(14));
    assert_eq!(parse_severity("warn5"), None);
    assert_eq!(parse_severity("loud"), None);
    let bad = text.replace("max_severity: warn", "max_severity: loud");
    assert_eq!(
        errors(&bad),
        vec![
            "f.yaml:6:85: unknown severity \"loud\": use trace, debug, info, warn, error or fatal, optionally with 1-4 (e.g. warn2)"
        ]
    );
}

#[test]
fn matchers_and_good_rules() {
    let text = r#"
slos:
  - name: m
    service: s
    objective: 99
    window: 1d
    sli:
      spans:
        match:
          attributes:
            method: GET
            route: { regex: "/api/.*" }
            env: { in: [prod, staging] }
            user: { exists: true }
            region: { not: eu }
          resource: { k8s.namespace.name: shop }
        good:
          any_of:
            - { status: ok }
            - { http_status: [2xx, 404], max_duration: 1s }
"#;
    let defs = parse_native(Path::new("f.yaml"), text).unwrap();
    let Sli::Spans { selector, good } = &defs[0].sli else {
        panic!("a span SLI")
    };
    assert_eq!(selector.attributes.len(), 5);
    assert!(
        matches!(&selector.attributes[3].1, AttrMatch::Regex(r) if r.as_str() == "^(?:/api/.*)$")
    );
    assert_eq!(selector.resource.len(), 1);
    assert_eq!(good.any_of.len(), 2);
    assert_eq!(
        good.any_of[1].http_status,
        Some(vec![HttpStatus::Class(2), HttpStatus::Code(404)])
    );
    let bad = text.replace("\"/api/.*\"", "\"/api/(\"");
    let e = errors(&bad);
    assert_eq!(
        e,
        ["f.yaml:12:20: invalid regular expression \"/api/(\": unclosed group"]
    );
    let bad = text.replace("2xx, 404", "2xx, 6xx");
    let e = errors(&bad);
    assert!(e[0].contains("invalid HTTP status \"6xx\""), "{e:?}");
    let bad = text.replace("{ exists: true }", "{ exist: true }");
    let e = errors(&bad);
    assert!(e[0].contains("unknown matcher \"exist\""), "{e:?}");
}

#[test]
fn calendar_windows() {
    let text = "slos:\n  - name: c\n    service: s\n    objective: 99\n    window: { calendar: month, time_zone: Europe/Berlin }\n    sli: { spans: { good: { status: ok } } }\n";
    let defs = parse_native(Path::new("f.yaml"), text).unwrap();
    assert!(
        matches!(&defs[0].window, Window::Calendar { unit: CalendarUnit::Month, tz } if tz.name == "Europe/Berlin")
    );
    assert_eq!(defs[0].window.to_string(), "month");
    let bad = text.replace("Europe/Berlin", "Mars/Olympus");
    assert_eq!(
        errors(&bad),
        ["f.yaml:5:13: unknown time zone \"Mars/Olympus\": use an IANA name such as Europe/Berlin"]
    );
    let bad = text.replace("month", "fortnight");
    assert!(errors(&bad)[0].contains("fortnight"), "{:?}", errors(&bad));
}

#[test]
fn objectives_and_budgeting() {
    let text = "slos:\n  - name: o\n    service: s\n    objectives: [ { name: strict, target: 99.9 }, { target: 99 } ]\n    budgeting: { timeslices: { slice: 5m, target: 95 } }\n    window: 7d\n    sli: { spans: { good: { status: ok } } }\n";
    let defs = parse_native(Path::new("f.yaml"), text).unwrap();
    assert_eq!(defs[0].objective, 99.9);
    assert_eq!(
        defs[0].objectives[1],
        Objective {
            name: "objective-2".into(),
            target: 99.0
        }
    );
    assert_eq!(
        defs[0].budgeting,
        Budgeting::Timeslices {
            slice_minutes: 5,
            slice_target: 0.95
        }
    );
    let both = text.replace("    objectives:", "    objective: 99\n    objectives:");
    assert!(
        errors(&both)[0].contains("an SLO needs objective"),
        "{:?}",
        errors(&both)
    );
    let bad = text.replace("slice: 5m", "slice: 90s");
    assert_eq!(
        errors(&bad),
        ["f.yaml:5:16: the slice 90s must be whole minutes, from 1m to 1d"]
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert!(
        parse_duration("30")
            .unwrap_err()
            .to_string()
            .contains("needs a unit")
    );
    assert!(
        parse_duration("3x")
            .unwrap_err()
            .to_string()
            .contains("unknown unit \"x\"")
    );
}

fn errors(text: &str) -> Vec<String> {
    parse_native(Path::new("f.yaml"), text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn semantic_errors_name_file_line_and_column_all_at_once() {
    let text = "slos:\n  - name: a\n    service: s\n    objective: 100\n    window: 90s\n    sli:\n      spans:\n        good: {}\n";
    assert_eq!(
        errors(text),
        vec![
            "f.yaml:4:16: objective 100 is out of range: it is a percentage above 0 and below 100, e.g. 99.9",
            "f.yaml:5:13: window 90s must be a whole number of minutes, at least 1m",
            "f.yaml:8:15: good needs at least one rule: status, max_duration, http_status, not_http_status, all_of or any_of",
        ]
    );
}

#[test]
fn syntax_and_type_errors_have_positions() {
    let e = errors("slos:\n  - name: a\n    service: s\n    objective: 99\n    window: 3x\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("f.yaml:5:13: "), "{}", e[0]);
    assert!(e[0].contains("unknown unit"), "{}", e[0]);
    let e = errors("slos:\n  - name: a\n    servce: s\n");
    assert!(e[0].starts_with("f.yaml:3:5: "), "{}", e[0]);
    assert!(e[0].contains("servce"), "{}", e[0]);
}

#[test]
fn promql_durations_too_large_for_the_parser_are_errors_not_panics() {
    // The promql fuzz target's crash: promql-parser panics on this duration.
    let query = "sum(rate(x[3033333333333333333333333333:33333333333333m]))";
    assert_eq!(
        crate::parse_promql(query).unwrap_err(),
        "the duration \"3033333333333333333333333333\" is out of range"
    );
    let offset = "x offset 99999999999999999999y";
    assert!(
        crate::parse_promql(offset)
            .unwrap_err()
            .contains("out of range")
    );
    // Long digits in strings, names and plain numbers are not durations.
    for fine in [
        "sum(rate(x[5m]))",
        "x{route=\"/1234567890123456789m\"}",
        "x1234567890123456789m",
        "12345678901234567890",
        "x[1h30m] offset 1w",
    ] {
        assert!(crate::parse_promql(fine).is_ok(), "{fine}");
    }
}
