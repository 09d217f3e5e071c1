//! The wire scanner against `prost`: for generated requests, requests merged from parts,
//! and bytes mutated at random, the scanner accepts exactly what `prost` decodes and
//! sees exactly what `prost` decodes.

use proptest::prelude::*;
use prost::Message;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::otlp::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use slotel_proto::otlp::resource::v1::Resource;
use slotel_proto::otlp::trace::v1::span::{Event, Link};
use slotel_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use slotel_proto::wire::{self, Attributes, Kv, TraceVisitor, Value};

/// A value as compared: owned, doubles by their bits.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(u64),
    Bytes(Vec<u8>),
    Other,
    Empty,
}

fn seen(v: Value<'_>) -> Seen {
    match v {
        Value::Str(s) => Seen::Str(s.to_string()),
        Value::Bool(b) => Seen::Bool(b),
        Value::Int(i) => Seen::Int(i),
        Value::Double(d) => Seen::Double(d.to_bits()),
        Value::Bytes(b) => Seen::Bytes(b.to_vec()),
        Value::Other => Seen::Other,
        Value::Empty => Seen::Empty,
    }
}

type Attrs = Vec<(String, Option<Seen>, KeyValue)>;

#[derive(Debug, Clone, PartialEq)]
struct SeenSpan {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    status: i32,
    attributes: Attrs,
    /// What `Attributes` finds for a few keys.
    lookups: Vec<Option<Seen>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct SeenResource {
    attributes: Attrs,
    service: Option<String>,
    spans: Vec<SeenSpan>,
}

const LOOKUPS: [&str; 4] = ["a", "b", "service.name", "http.route"];

fn from_wire(kvs: &[Kv<'_>]) -> Attrs {
    kvs.iter()
        .map(|kv| (kv.key.to_string(), kv.value.map(seen), kv.to_key_value()))
        .collect()
}

fn from_decoded(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(|v| seen(Value::of(v))),
                kv.clone(),
            )
        })
        .collect()
}

#[derive(Default)]
struct Collect {
    resources: Vec<SeenResource>,
    ended: usize,
}

impl<'a> TraceVisitor<'a> for Collect {
    fn resource(&mut self, r: &wire::Resource<'_, 'a>) {
        self.resources.push(SeenResource {
            attributes: from_wire(r.attributes),
            service: r.service_name().map(str::to_string),
            spans: Vec::new(),
        });
    }

    fn span(&mut self, _: &wire::Resource<'_, 'a>, s: &wire::Span<'_, 'a>) {
        let span = SeenSpan {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            name: s.name.to_string(),
            kind: s.kind,
            start: s.start_time_unix_nano,
            end: s.end_time_unix_nano,
            status: s.status_code,
            attributes: from_wire(s.attributes),
            lookups: LOOKUPS
                .iter()
                .map(|k| s.attributes.attribute(k).map(seen))
                .collect(),
        };
        self.resources.last_mut().unwrap().spans.push(span);
    }

    fn end_resource(&mut self, _: &wire::Resource<'_, 'a>) {
        self.ended += 1;
    }
}

fn expected(req: &ExportTraceServiceRequest) -> Vec<SeenResource> {
    req.resource_spans
        .iter()
        .map(|rs| {
            let attrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
            SeenResource {
                attributes: from_decoded(attrs),
                service: attrs.str_attribute("service.name").map(str::to_string),
                spans: rs
                    .scope_spans
                    .iter()
                    .flat_map(|ss| &ss.spans)
                    .map(|s| SeenSpan {
                        trace_id: s.trace_id.clone(),
                        span_id: s.span_id.clone(),
                        name: s.name.clone(),
                        kind: s.kind,
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        status: s.status.as_ref().map_or(0, |st| st.code),
                        attributes: from_decoded(&s.attributes),
                        lookups: LOOKUPS
                            .iter()
                            .map(|k| s.attributes[..].attribute(k).map(seen))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The scanner and `prost` agree on `bytes`: both refuse them, or both read the same.
fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let decoded = ExportTraceServiceRequest::decode(bytes);
    let mut collect = Collect::default();
    let scanned = wire::scan_traces(bytes, &mut collect);
    match (&decoded, &scanned) {
        (Ok(req), Ok(n)) => {
            prop_assert_eq!(*n, slotel_proto::span_count(req));
            prop_assert_eq!(&collect.resources, &expected(req));
            prop_assert_eq!(collect.ended, req.resource_spans.len());
            prop_assert_eq!(wire::span_count(bytes), *n);
            let first = req
                .resource_spans
                .first()
                .and_then(|rs| rs.resource.as_ref());
            prop_assert_eq!(
                wire::first_service_name(bytes),
                first.and_then(|r| r.attributes.str_attribute("service.name"))
            );
            // Accepted bytes read again keeping some keys: the same, less the rest.
            let keep = |k: &str| k == "a" || k == "http.route";
            let mut kept = Collect::default();
            prop_assert_eq!(wire::scan_checked_traces(bytes, &keep, &mut kept), Ok(*n));
            let mut want = collect.resources.clone();
            for span in want.iter_mut().flat_map(|r| r.spans.iter_mut()) {
                span.attributes.retain(|(k, _, _)| keep(k));
                span.lookups = LOOKUPS
                    .iter()
                    .map(|k| {
                        let first = span.attributes.iter().find(|(key, _, _)| key == k);
                        first.and_then(|(_, v, _)| v.clone())
                    })
                    .collect();
            }
            prop_assert_eq!(kept.resources, want);
        }
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "prost: {:?}, scanner: {:?}",
            decoded.as_ref().map(|_| ()),
            scanned
        ),
    }
    Ok(())
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        "[a-z]{0,6}".prop_map(V::StringValue),
        any::<bool>().prop_map(V::BoolValue),
        any::<i64>().prop_map(V::IntValue),
        any::<f64>().prop_map(V::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(V::BytesValue),
        any::<i32>().prop_map(V::StringValueStrindex),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    let leaf = prop_oneof![9 => leaf, 1 => Just(AnyValue { value: None })];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
            }),
            proptest::collection::vec(("[a-c]", inner), 0..3).prop_map(|kvs| AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| KeyValue {
                            key,
                            value: Some(v),
                            ..Default::default()
                        })
                        .collect(),
                })),
            }),
        ]
    })
}

fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("service.name"),
            Just("http.route"),
            Just("")
        ],
        proptest::option::weighted(0.9, any_value()),
        prop_oneof![9 => Just(0), 1 => any::<i32>()],
    )
        .prop_map(|(key, value, key_strindex)| KeyValue {
            key: key.to_string(),
            value,
            key_strindex,
        })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(key_value(), 0..5)
}

fn span() -> impl Strategy<Value = Span> {
    (
        (
            proptest::collection::vec(any::<u8>(), 0..17),
            proptest::collection::vec(any::<u8>(), 0..9),
            "[A-Z /a-z]{0,8}",
            -1i32..7,
            any::<u64>(),
            any::<u64>(),
        ),
        (
            attributes(),
            proptest::option::of((any::<i32>(), "[a-z]{0,3}")),
            proptest::collection::vec(("[a-z]{0,3}", attributes()), 0..2),
            proptest::collection::vec(attributes(), 0..2),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (trace_id, span_id, name, kind, start, end),
                (attributes, status, events, links, flags),
            )| {
                Span {
                    trace_id,
                    span_id,
                    name,
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    status: status.map(|(code, message)| Status { code, message }),
                    events: events
                        .into_iter()
                        .map(|(name, attributes)| Event {
                            name,
                            attributes,
                            time_unix_nano: 7,
                            dropped_attributes_count: 1,
                        })
                        .collect(),
                    links: links
                        .into_iter()
                        .map(|attributes| Link {
                            trace_id: vec![1; 16],
                            span_id: vec![2; 8],
                            attributes,
                            flags,
                            ..Default::default()
                        })
                        .collect(),
                    flags,
                    trace_state: "k=v".into(),
                    parent_span_id: vec![3; 8],
                    ..Default::default()
                }
            },
        )
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope_spans = (
        proptest::collection::vec(span(), 0..4),
        proptest::option::of(attributes()),
    )
        .prop_map(|(spans, scope)| ScopeSpans {
            scope: scope.map(|attributes| InstrumentationScope {
                name: "s".into(),
                version: "1".into(),
                attributes,
                dropped_attributes_count: 0,
            }),
            spans,
            schema_url: "u".into(),
        });
    let resource_spans = (
        proptest::option::of(attributes()),
        proptest::collection::vec(scope_spans, 0..3),
    )
        .prop_map(|(resource, scope_spans)| ResourceSpans {
            resource: resource.map(|attributes| Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans,
            schema_url: String::new(),
        });
    proptest::collection::vec(resource_spans, 0..3)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// `field` as a length-delimited field of number `tag`.
fn len_field(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_read_as_prost_reads_them(req in request()) {
        agree(&req.encode_to_vec())?;
    }

    /// Two encodings one after the other are one message, the two merged: at the top,
    /// and inside a span (scalars replaced, attributes appended, the status merged)
    /// and a key-value (its value merged, the last member winning).
    #[test]
    fn merged_messages_read_as_prost_merges_them(
        a in request(),
        b in request(),
        s1 in span(),
        s2 in span(),
        kv1 in key_value(),
        kv2 in key_value(),
    ) {
        agree(&[a.encode_to_vec(), b.encode_to_vec()].concat())?;
        let mut span_bytes = [s1.encode_to_vec(), s2.encode_to_vec()].concat();
        span_bytes.extend(len_field(9, &[kv1.encode_to_vec(), kv2.encode_to_vec()].concat()));
        let resource = len_field(1, &len_field(1, &[kv2.encode_to_vec(), kv1.encode_to_vec()].concat()));
        let scope_spans = len_field(2, &len_field(2, &span_bytes));
        // The resource after its spans, then again: it still applies to them.
        let rs = [scope_spans, resource.clone(), resource].concat();
        agree(&len_field(1, &rs))?;
    }

    /// Damaged bytes: a byte changed, bytes cut, inserted or removed anywhere.
    #[test]
    fn mutated_bytes_are_refused_or_read_as_prost_reads_them(
        req in request(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..4),
    ) {
        let mut bytes = req.encode_to_vec();
        for (at, op, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        agree(&bytes)?;
    }
}

/// Arrays nested `depth` deep in a span attribute: `prost` stops at 100 messages.
fn nested(depth: usize) -> Vec<u8> {
    let mut value = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for _ in 0..depth {
        value = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let span = Span {
        attributes: vec![KeyValue {
            key: "a".into(),
            value: Some(value),
            ..Default::default()
        }],
        ..Default::default()
    };
    slotel_proto::traces_request("s", vec![span]).encode_to_vec()
}

#[test]
fn the_nesting_limit_is_prost_s() {
    let mut refused = 0;
    for depth in 40..52 {
        let bytes = nested(depth);
        agree(&bytes).unwrap();
        refused += usize::from(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
    }
    // Both sides of the limit were tried.
    assert!(refused > 0 && refused < 12, "{refused}");
}

#[test]
fn unknown_fields_and_groups_are_skipped_as_prost_skips_them() {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "n".into(),
        ..Default::default()
    };
    let mut body = span.encode_to_vec();
    // Field 99 as a varint, fixed32, fixed64, bytes and a group holding a field.
    body.extend([0x98, 0x06, 0x05]);
    body.extend([0x9d, 0x06, 1, 2, 3, 4]);
    body.extend([0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    body.extend([0x9a, 0x06, 2, b'h', b'i']);
    body.extend([0x9b, 0x06, 0x08, 0x01, 0x9c, 0x06]);
    let bytes = len_field(1, &len_field(2, &len_field(2, &body)));
    agree(&bytes).unwrap();
    assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_ok());
    // A group closed by another field's end tag, and a stray end tag.
    for bad in [vec![0x9b, 0x06, 0xa4, 0x06], vec![0x9c, 0x06]] {
        let bytes = len_field(
            1,
            &len_field(2, &len_field(2, &[body.clone(), bad].concat())),
        );
        agree(&bytes).unwrap();
        assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
    }
    // Invalid UTF-8 in a field the scanner does not read (the span's trace state).
    let bytes = len_field(1, &len_field(2, &len_field(2, &len_field(3, &[0xff]))));
    agree(&bytes).unwrap();
    assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
}
