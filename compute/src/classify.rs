//! The SLO index and the span classifier: which SLOs a span counts for, and whether it
//! is good for each of them.
//!
//! The index is built once per reload. A span costs one hash lookup per resource (tenant
//! and `service.name`) plus one per span (its name, or its `http.route` where an SLO
//! selects by route); only the SLOs found there test their remaining predicates. Spans
//! are read as the wire scanner's views ([`slotel_proto::wire`]); the matchers read
//! attributes through [`Attributes`], so decoded attributes (log records, metric points,
//! the explain sample) are matched by the same code.

use std::collections::HashMap as StdMap;

/// The index's maps: looked up per resource and per span, with keys from the SLO files.
type HashMap<K, V> = StdMap<K, V, foldhash::fast::RandomState>;

use slotel_proto::otlp::logs::v1::{LogRecord, ResourceLogs};
use slotel_proto::otlp::resource::v1::Resource;
use slotel_proto::otlp::trace::v1::status::StatusCode;
use slotel_proto::wire::{self, Attributes, Kv, Value};

use slotel_model::{AttrMatch, AttrValue, GoodRule, Sli, SloDef, SpanKind, StatusRule};

/// The resource attribute naming the service.
pub const SERVICE_NAME: &str = "service.name";
/// The span attribute holding the matched HTTP route.
pub const HTTP_ROUTE: &str = "http.route";
/// The `service.name` OpenTelemetry SDKs report when none is set.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// A log SLO's compiled predicates.
#[derive(Debug)]
struct CompiledLogs {
    id: u32,
    attributes: Vec<(String, AttrMatch)>,
    max_severity: i32,
}

/// One span SLO's compiled predicates.
#[derive(Debug)]
struct Compiled {
    kind: Option<SpanKind>,
    /// Set when the SLO is indexed by route but also names the span.
    span_name: Option<String>,
    /// Set when the SLO is indexed by name but also names the route.
    http_route: Option<String>,
    attributes: Vec<(String, AttrMatch)>,
    resource: Vec<(String, AttrMatch)>,
    good: GoodRule,
}

#[derive(Debug, Default)]
struct ServiceSlos {
    by_name: HashMap<String, Vec<u32>>,
    by_route: HashMap<String, Vec<u32>>,
    any: Vec<u32>,
}

/// The SLOs of every tenant and service, ready to classify spans and log records.
#[derive(Debug, Default)]
pub struct SloIndex {
    tenants: HashMap<String, HashMap<String, ServiceSlos>>,
    logs: HashMap<String, HashMap<String, Vec<CompiledLogs>>>,
    /// Span SLO predicates by SLO id (`None` for SLOs of other signals).
    compiled: Vec<Option<Compiled>>,
    /// The span attribute keys some span SLO reads (selector, good rule, `group_by`):
    /// the scanner skips the others.
    keys: Vec<Box<str>>,
}

pub(crate) fn service_of(resource: Option<&Resource>) -> &str {
    resource
        .and_then(|r| r.attributes.str_attribute(SERVICE_NAME))
        .unwrap_or(UNKNOWN_SERVICE)
}

/// The span SLOs one resource's spans are tested against.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSlos<'i> {
    index: &'i SloIndex,
    slos: Option<&'i ServiceSlos>,
}

impl SloIndex {
    /// Builds the index; SLO `i` of `slos` is reported as id `i`.
    pub fn build<'a>(slos: impl IntoIterator<Item = &'a SloDef>) -> Self {
        let mut index = SloIndex::default();
        for (id, def) in slos.into_iter().enumerate() {
            let id = id as u32;
            let (selector, good) = match &def.sli {
                Sli::Spans { selector, good } => (selector, good),
                Sli::Logs {
                    attributes,
                    max_severity,
                } => {
                    index
                        .logs
                        .entry(def.tenant.clone())
                        .or_default()
                        .entry(def.service.clone())
                        .or_default()
                        .push(CompiledLogs {
                            id,
                            attributes: attributes.clone(),
                            max_severity: *max_severity,
                        });
                    index.compiled.push(None);
                    continue;
                }
                Sli::MetricRatio { .. } | Sli::MetricLatency { .. } => {
                    index.compiled.push(None);
                    continue;
                }
            };
            let entry = index
                .tenants
                .entry(def.tenant.clone())
                .or_default()
                .entry(def.service.clone())
                .or_default();
            let mut compiled = Compiled {
                kind: selector.kind,
                span_name: None,
                http_route: None,
                attributes: selector.attributes.clone(),
                resource: selector.resource.clone(),
                good: good.clone(),
            };
            match (&selector.span_name, &selector.http_route) {
                (Some(name), route) => {
                    entry.by_name.entry(name.clone()).or_default().push(id);
                    compiled.http_route = route.clone();
                }
                (None, Some(route)) => {
                    entry.by_route.entry(route.clone()).or_default().push(id);
                }
                (None, None) => entry.any.push(id),
            }
            index.compiled.push(Some(compiled));
            let reads = selector
                .attributes
                .iter()
                .map(|(k, _)| k.as_str())
                .chain(def.group_by.iter().map(String::as_str))
                .chain([HTTP_ROUTE])
                .chain(HTTP_STATUS_KEYS);
            for key in reads {
                if !index.reads(key) {
                    index.keys.push(key.into());
                }
            }
        }
        index
    }

    /// Whether some span SLO reads the span attribute `key`.
    pub fn reads(&self, key: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.len() == key.len() && **k == *key)
    }

    /// Classifies every log record of `rl` for `tenant`, calling `emit(slo_id,
    /// time_nanos, good)` once per (record, matching SLO). A record's time is its
    /// `time_unix_nano`, or its observed time when that is unset. Returns the number of
    /// records looked at.
    pub fn classify_logs(
        &self,
        tenant: &str,
        rl: &ResourceLogs,
        mut emit: impl FnMut(u32, &LogRecord, u64, bool),
    ) -> usize {
        let records = rl.scope_logs.iter().map(|sl| sl.log_records.len()).sum();
        let Some(slos) = self
            .logs
            .get(tenant)
            .and_then(|services| services.get(service_of(rl.resource.as_ref())))
        else {
            return records;
        };
        for record in rl.scope_logs.iter().flat_map(|sl| sl.log_records.iter()) {
            let time = if record.time_unix_nano != 0 {
                record.time_unix_nano
            } else {
                record.observed_time_unix_nano
            };
            for slo in slos {
                if matches_all(&record.attributes[..], &slo.attributes) {
                    emit(
                        slo.id,
                        record,
                        time,
                        record.severity_number <= slo.max_severity,
                    );
                }
            }
        }
        records
    }

    /// The SLOs that spans of `resource` for `tenant` can count for: one lookup per
    /// resource.
    pub fn for_resource(
        &self,
        tenant: &str,
        resource: &wire::Resource<'_, '_>,
    ) -> ResourceSlos<'_> {
        let service = resource.service_name().unwrap_or(UNKNOWN_SERVICE);
        ResourceSlos {
            index: self,
            slos: self.tenants.get(tenant).and_then(|s| s.get(service)),
        }
    }
}

impl ResourceSlos<'_> {
    /// Whether no span of this resource can count for any SLO.
    pub fn is_empty(&self) -> bool {
        self.slos.is_none()
    }

    /// Classifies `span` of `resource`, calling `emit(slo_id, good)` once per SLO it
    /// counts for.
    pub fn classify(
        &self,
        resource: &[Kv<'_>],
        span: &wire::Span<'_, '_>,
        mut emit: impl FnMut(u32, bool),
    ) {
        let Some(slos) = self.slos else {
            return;
        };
        let by_name = slos.by_name.get(span.name);
        let by_route = if slos.by_route.is_empty() {
            None
        } else {
            span.attributes
                .str_attribute(HTTP_ROUTE)
                .and_then(|r| slos.by_route.get(r))
        };
        let candidates = by_name
            .into_iter()
            .flatten()
            .chain(by_route.into_iter().flatten())
            .chain(slos.any.iter());
        for &id in candidates {
            let Some(c) = &self.index.compiled[id as usize] else {
                continue;
            };
            if c.selects(span, resource) {
                emit(id, is_good(&c.good, span));
            }
        }
    }
}

impl Compiled {
    fn selects(&self, span: &wire::Span<'_, '_>, resource: &[Kv<'_>]) -> bool {
        if let Some(kind) = self.kind
            && !kind.matches(span.kind)
        {
            return false;
        }
        if let Some(name) = &self.span_name
            && span.name != *name
        {
            return false;
        }
        if let Some(route) = &self.http_route
            && span.attributes.str_attribute(HTTP_ROUTE) != Some(route.as_str())
        {
            return false;
        }
        matches_all(span.attributes, &self.attributes) && matches_all(resource, &self.resource)
    }
}

/// The span attributes holding the HTTP response status code, current and older.
const HTTP_STATUS_KEYS: [&str; 2] = ["http.response.status_code", "http.status_code"];

fn http_status_code(span: &wire::Span<'_, '_>) -> Option<i64> {
    HTTP_STATUS_KEYS
        .iter()
        .find_map(|k| match span.attributes.attribute(k)? {
            Value::Int(i) => Some(i),
            Value::Str(s) => s.parse().ok(),
            Value::Double(d) => Some(d as i64),
            _ => None,
        })
}

/// Whether `span` is a good event under `rule` (every rule set must hold).
pub fn is_good(rule: &GoodRule, span: &wire::Span<'_, '_>) -> bool {
    let code = span.status_code;
    let status_ok = match rule.status {
        None => true,
        Some(StatusRule::NotError) => code != StatusCode::Error as i32,
        Some(StatusRule::Ok) => code == StatusCode::Ok as i32,
    };
    let fast_enough = match rule.max_duration_nanos {
        None => true,
        Some(max) => {
            span.end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano)
                <= max
        }
    };
    if !(status_ok && fast_enough) {
        return false;
    }
    if rule.http_status.is_some() || rule.not_http_status.is_some() {
        let code = http_status_code(span);
        // Without a status code, an allow list fails and a deny list holds.
        if let Some(allow) = &rule.http_status
            && !code.is_some_and(|c| allow.iter().any(|s| s.matches(c)))
        {
            return false;
        }
        if let Some(deny) = &rule.not_http_status
            && code.is_some_and(|c| deny.iter().any(|s| s.matches(c)))
        {
            return false;
        }
    }
    rule.all_of.iter().all(|r| is_good(r, span))
        && (rule.any_of.is_empty() || rule.any_of.iter().any(|r| is_good(r, span)))
}

/// Whether every matcher holds on `attrs`.
pub(crate) fn matches_all<A: Attributes + ?Sized>(
    attrs: &A,
    matchers: &[(String, AttrMatch)],
) -> bool {
    matchers
        .iter()
        .all(|(key, m)| attr_matches(attrs.attribute(key), m))
}

/// Whether one matcher holds on an attribute value (`None`: the attribute is absent).
pub(crate) fn attr_matches(value: Option<Value<'_>>, m: &AttrMatch) -> bool {
    match m {
        AttrMatch::Eq(want) => value.is_some_and(|v| attr_eq(v, want)),
        AttrMatch::Ne(want) => !value.is_some_and(|v| attr_eq(v, want)),
        AttrMatch::In(wants) => value.is_some_and(|v| wants.iter().any(|w| attr_eq(v, w))),
        AttrMatch::Regex(re) => match value {
            Some(Value::Str(s)) => re.is_match(s),
            _ => false,
        },
        AttrMatch::NotRegex(re) => match value {
            Some(Value::Str(s)) => !re.is_match(s),
            _ => true,
        },
        AttrMatch::Exists(want) => value.is_some() == *want,
    }
}

/// Compares an OTLP attribute value with a selector value. Numbers compare by value
/// (an int attribute equals `200` and `200.0`); strings and booleans exactly.
pub(crate) fn attr_eq(value: Value<'_>, want: &AttrValue) -> bool {
    match (value, want) {
        (Value::Str(s), AttrValue::String(w)) => s == w,
        (Value::Bool(b), AttrValue::Bool(w)) => b == *w,
        (Value::Int(i), AttrValue::Int(w)) => i == *w,
        (Value::Int(i), AttrValue::Double(w)) => (i as f64) == *w,
        (Value::Double(d), AttrValue::Double(w)) => d == *w,
        (Value::Double(d), AttrValue::Int(w)) => d == (*w as f64),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
    use slotel_proto::otlp::resource::v1::Resource;
    use slotel_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use slotel_spec::parse_native;
    use std::path::Path;

    /// `(slo, good)` of every span of `rs`, in order, read from its encoded bytes.
    fn classify_with(index: &SloIndex, tenant: &str, rs: &ResourceSpans) -> Vec<(u32, bool)> {
        struct V<'i> {
            index: &'i SloIndex,
            tenant: &'i str,
            slos: Option<ResourceSlos<'i>>,
            out: Vec<(u32, bool)>,
        }
        impl<'a> wire::TraceVisitor<'a> for V<'_> {
            fn resource(&mut self, r: &wire::Resource<'_, 'a>) {
                self.slos = Some(self.index.for_resource(self.tenant, r));
            }
            fn span(&mut self, r: &wire::Resource<'_, 'a>, s: &wire::Span<'_, 'a>) {
                let out = &mut self.out;
                if let Some(slos) = self.slos {
                    slos.classify(r.attributes, s, |id, good| out.push((id, good)));
                }
            }
        }
        let bytes = ExportTraceServiceRequest {
            resource_spans: vec![rs.clone()],
        }
        .encode_to_vec();
        let mut v = V {
            index,
            tenant,
            slos: None,
            out: Vec::new(),
        };
        wire::scan_traces(&bytes, &mut v).unwrap();
        v.out
    }

    /// Whether `span` is good under `rule`, read from its encoded bytes.
    fn good(rule: &GoodRule, span: &Span) -> bool {
        struct V<'r>(&'r GoodRule, Option<bool>);
        impl<'a> wire::TraceVisitor<'a> for V<'_> {
            fn resource(&mut self, _: &wire::Resource<'_, 'a>) {}
            fn span(&mut self, _: &wire::Resource<'_, 'a>, s: &wire::Span<'_, 'a>) {
                self.1 = Some(is_good(self.0, s));
            }
        }
        let bytes = slotel_proto::traces_request("x", vec![span.clone()]).encode_to_vec();
        let mut v = V(rule, None);
        wire::scan_traces(&bytes, &mut v).unwrap();
        v.1.unwrap()
    }

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn span(name: &str, kind: i32, code: i32, dur_ms: u64, attrs: Vec<KeyValue>) -> Span {
        Span {
            name: name.into(),
            kind,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_000_000_000 + dur_ms * 1_000_000,
            status: Some(Status {
                code,
                message: String::new(),
            }),
            attributes: attrs,
            ..Default::default()
        }
    }

    fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(SERVICE_NAME, Value::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    const SLOS: &str = r#"
slos:
  - name: avail
    service: checkout
    objective: 99.9
    window: 30d
    sli: { spans: { match: { span_kind: server, span_name: "POST /api/checkout" }, good: { status: not_error } } }
  - name: latency
    service: checkout
    objective: 99
    window: 28d
    sli: { spans: { match: { span_name: "POST /api/checkout", attributes: { "http.request.method": "POST" } }, good: { max_duration: 300ms } } }
  - name: route
    service: checkout
    objective: 99
    window: 7d
    sli: { spans: { match: { http_route: "/api/items/{id}" }, good: { status: ok, max_duration: 100ms } } }
  - name: all-of-search
    service: search
    objective: 95
    window: 1d
    sli: { spans: { good: { status: not_error } } }
"#;

    fn classify(rs: &ResourceSpans, tenant: &str) -> Vec<(u32, bool)> {
        let defs = parse_native(Path::new("t.yaml"), SLOS).unwrap();
        classify_with(&SloIndex::build(&defs), tenant, rs)
    }

    #[test]
    fn selects_by_name_kind_attribute_and_route() {
        let post = kv("http.request.method", Value::StringValue("POST".into()));
        let rs = resource_spans(
            "checkout",
            vec![
                span("POST /api/checkout", 2, 0, 300, vec![post.clone()]),
                span("POST /api/checkout", 2, 2, 301, vec![post.clone()]),
                span("POST /api/checkout", 3, 1, 10, vec![]),
                span("GET /other", 2, 0, 1, vec![]),
                span(
                    "GET",
                    2,
                    1,
                    100,
                    vec![kv(HTTP_ROUTE, Value::StringValue("/api/items/{id}".into()))],
                ),
                span(
                    "GET",
                    2,
                    0,
                    100,
                    vec![kv(HTTP_ROUTE, Value::StringValue("/api/items/{id}".into()))],
                ),
            ],
        );
        assert_eq!(
            classify(&rs, "default"),
            vec![
                (0, true),  // server, unset status
                (1, true),  // exactly 300ms is good
                (0, false), // error
                (1, false), // 301ms
                // the client span has no method attribute and is not server: no SLO
                (2, true),  // OK and 100ms
                (2, false), // UNSET is not OK
            ]
        );
    }

    #[test]
    fn other_services_and_tenants_match_nothing() {
        let rs = resource_spans(
            "payments",
            vec![span("POST /api/checkout", 2, 0, 1, vec![])],
        );
        assert!(classify(&rs, "default").is_empty());
        let rs = resource_spans(
            "checkout",
            vec![span("POST /api/checkout", 2, 0, 1, vec![])],
        );
        assert!(classify(&rs, "other").is_empty());
        let rs = resource_spans("search", vec![span("anything", 0, 2, 1, vec![])]);
        assert_eq!(classify(&rs, "default"), vec![(3, false)]);
    }

    #[test]
    fn matchers_and_http_status_rules() {
        let text = r#"
slos:
  - name: m
    service: checkout
    objective: 99
    window: 1d
    sli:
      spans:
        match:
          attributes: { route: { regex: "/api/.*" }, env: { in: [prod, staging] }, region: { not: eu } }
          resource: { tier: { exists: true } }
        good:
          not_http_status: [5xx]
          any_of: [ { status: ok }, { http_status: [2xx, 404] } ]
"#;
        let defs = parse_native(Path::new("t.yaml"), text).unwrap();
        let index = SloIndex::build(&defs);
        let s = |route: &str, env: &str, region: Option<&str>, code: i64, status: i32| {
            let mut attrs = vec![
                kv("route", Value::StringValue(route.into())),
                kv("env", Value::StringValue(env.into())),
                kv("http.response.status_code", Value::IntValue(code)),
            ];
            if let Some(r) = region {
                attrs.push(kv("region", Value::StringValue(r.into())));
            }
            span("x", 2, status, 1, attrs)
        };
        let mut rs = resource_spans(
            "checkout",
            vec![
                s("/api/a", "prod", None, 200, 0),          // selected, 2xx: good
                s("/api/a", "staging", Some("us"), 404, 0), // selected, 404: good
                s("/api/a", "prod", None, 503, 1),          // selected, 5xx: bad though OK
                s("/api/a", "prod", None, 401, 0),          // selected, neither OK nor allowed
                s("/api/a", "prod", None, 401, 1),          // selected, OK: good
                s("/web", "prod", None, 200, 0),            // regex is anchored: not selected
                s("/api/a", "dev", None, 200, 0),           // env not in list
                s("/api/a", "prod", Some("eu"), 200, 0),    // region is eu
            ],
        );
        // The resource has no tier attribute yet: nothing is selected.
        assert!(classify_with(&index, "default", &rs).is_empty());
        rs.resource
            .as_mut()
            .unwrap()
            .attributes
            .push(kv("tier", Value::StringValue("gold".into())));
        assert_eq!(
            classify_with(&index, "default", &rs),
            vec![(0, true), (0, true), (0, false), (0, false), (0, true)]
        );
        // The older attribute name counts too; without any code, the allow list fails.
        let mut old = span(
            "x",
            2,
            0,
            1,
            vec![kv("http.status_code", Value::StringValue("500".into()))],
        );
        let Sli::Spans { good, .. } = &defs[0].sli else {
            panic!()
        };
        assert!(!self::good(good, &old));
        old.attributes.clear();
        assert!(!self::good(good, &old));
    }

    #[test]
    fn numeric_attributes_compare_by_value() {
        let v = wire::Value::Int(200);
        assert!(attr_eq(v, &AttrValue::Int(200)));
        assert!(attr_eq(v, &AttrValue::Double(200.0)));
        assert!(!attr_eq(v, &AttrValue::String("200".into())));
    }
}
