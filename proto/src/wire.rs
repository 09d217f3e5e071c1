//! A wire-level reader of OTLP trace exports: the fields slotel reads, straight from the
//! protobuf bytes, with no allocation per span.
//!
//! [`scan_traces`] walks an `ExportTraceServiceRequest` once and hands each resource and
//! each span to a [`TraceVisitor`] as borrowed views ([`Resource`], [`Span`], [`Kv`]):
//! ids, name, kind, times, status code, and the attributes of the span and of its
//! resource. Everything else is checked and skipped. The walk accepts exactly the bytes
//! `prost` decodes into the `opentelemetry-proto` types, and sees what `prost` would
//! decode (the property tests in `tests/wire.rs` hold the two equal):
//!
//! - every field `prost` knows is checked for its wire type, every string for UTF-8,
//!   every nested message for its bounds, the nesting for `prost`'s limit of 100;
//! - unknown fields are skipped as `prost` skips them (groups included);
//! - a scalar or string seen twice is its last value, a message seen twice is the two
//!   merged (a span's status, a key-value's value, a resource's attributes appended),
//!   a oneof is its last member.
//!
//! The attributes of one span and one resource are collected into two vectors the walk
//! owns and reuses, so a batch allocates them once.

use crate::otlp::common::v1::{AnyValue, KeyValue, any_value};

/// `prost`'s recursion limit: a message nested deeper does not decode.
const RECURSION_LIMIT: u32 = 100;

/// Why bytes are not a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(&'static str);

type Result<T> = std::result::Result<T, WireError>;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// An attribute value as read from the wire (the `AnyValue` oneof).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`, `kvlist_value` or `string_value_strindex`: values no selector
    /// compares.
    Other,
    /// An `AnyValue` with no member set.
    Empty,
}

impl<'a> Value<'a> {
    /// The view of a decoded value.
    pub fn of(value: &'a AnyValue) -> Self {
        use any_value::Value as V;
        match &value.value {
            Some(V::StringValue(s)) => Value::Str(s),
            Some(V::BoolValue(b)) => Value::Bool(*b),
            Some(V::IntValue(i)) => Value::Int(*i),
            Some(V::DoubleValue(d)) => Value::Double(*d),
            Some(V::BytesValue(b)) => Value::Bytes(b),
            Some(V::ArrayValue(_) | V::KvlistValue(_) | V::StringValueStrindex(_)) => Value::Other,
            None => Value::Empty,
        }
    }
}

/// One key-value attribute: its key, and its value (`None` when the key-value has none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kv<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: Option<Value<'a>>,
    /// The key-value message, for the rare reader that needs the value whole
    /// ([`Kv::to_key_value`]).
    raw: &'a [u8],
}

impl Kv<'_> {
    /// The attribute decoded, as `prost` decodes it.
    pub fn to_key_value(&self) -> KeyValue {
        use prost::Message;
        KeyValue::decode(self.raw).unwrap_or_default()
    }
}

/// Attributes by key, as the selectors read them: the value of the first attribute of
/// that key (`None` when there is no such attribute, or it has no value).
pub trait Attributes {
    /// The value of `key`.
    fn attribute(&self, key: &str) -> Option<Value<'_>>;

    /// The string value of `key`, if it is a string.
    fn str_attribute(&self, key: &str) -> Option<&str> {
        match self.attribute(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<T: Attributes + ?Sized> Attributes for &T {
    fn attribute(&self, key: &str) -> Option<Value<'_>> {
        (**self).attribute(key)
    }
}

impl Attributes for [KeyValue] {
    fn attribute(&self, key: &str) -> Option<Value<'_>> {
        self.iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(Value::of)
    }
}

impl Attributes for [Kv<'_>] {
    fn attribute(&self, key: &str) -> Option<Value<'_>> {
        self.iter().find(|kv| kv.key == key).and_then(|kv| kv.value)
    }
}

/// One resource of the request: its attributes, all of them (`dropped_attributes_count`
/// and entity references are checked and skipped).
#[derive(Debug)]
pub struct Resource<'s, 'a> {
    /// The resource's attributes, in wire order.
    pub attributes: &'s [Kv<'a>],
}

impl<'a> Resource<'_, 'a> {
    /// The `service.name` attribute, if it is a string.
    pub fn service_name(&self) -> Option<&'a str> {
        match self
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")?
            .value?
        {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One span, as far as slotel reads it.
#[derive(Debug)]
pub struct Span<'s, 'a> {
    /// `trace_id`.
    pub trace_id: &'a [u8],
    /// `span_id`.
    pub span_id: &'a [u8],
    /// `name`.
    pub name: &'a str,
    /// `kind`.
    pub kind: i32,
    /// `start_time_unix_nano`.
    pub start_time_unix_nano: u64,
    /// `end_time_unix_nano`.
    pub end_time_unix_nano: u64,
    /// `status.code` (0, unset, without a status).
    pub status_code: i32,
    /// The span's attributes, in wire order.
    pub attributes: &'s [Kv<'a>],
}

/// What [`scan_traces`] calls, in request order.
pub trait TraceVisitor<'a> {
    /// A resource begins (every `ResourceSpans`, with or without spans).
    fn resource(&mut self, resource: &Resource<'_, 'a>);
    /// A span of the current resource.
    fn span(&mut self, resource: &Resource<'_, 'a>, span: &Span<'_, 'a>);
    /// The current resource's spans are done.
    fn end_resource(&mut self, resource: &Resource<'_, 'a>) {
        let _ = resource;
    }
}

/// Walks the `ExportTraceServiceRequest` in `buf`, calling `visitor` for each resource
/// and span, and returns the number of spans. An error means `prost` would not decode
/// the bytes either; the visitor may have seen a part of them by then.
pub fn scan_traces<'a>(buf: &'a [u8], visitor: &mut impl TraceVisitor<'a>) -> Result<usize> {
    scan(buf, None, visitor)
}

fn scan<'a>(
    buf: &'a [u8],
    keep: Option<&dyn Fn(&str) -> bool>,
    visitor: &mut impl TraceVisitor<'a>,
) -> Result<usize> {
    let mut scan = Scan {
        resource: Vec::new(),
        span: Vec::new(),
        spans: 0,
        keep,
    };
    let mut r = Reader::new(buf);
    let ctx = RECURSION_LIMIT;
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => {
                let b = message(&mut r, wt, ctx)?;
                scan.resource_spans(b, ctx - 1, visitor)?;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(scan.spans)
}

/// [`scan_traces`] for bytes [`scan_traces`] already accepted (a receiver checked them
/// before they were logged): span attributes whose key `keep` refuses are skipped
/// unread and left out of [`Span::attributes`], which spares decoding the values no
/// SLO reads. Everything read is still bounds-checked; damage inside a skipped value
/// goes unnoticed.
pub fn scan_checked_traces<'a>(
    buf: &'a [u8],
    keep: &dyn Fn(&str) -> bool,
    visitor: &mut impl TraceVisitor<'a>,
) -> Result<usize> {
    scan(buf, Some(keep), visitor)
}

/// The number of spans in a well-formed request (0 for bytes that do not decode).
pub fn span_count(buf: &[u8]) -> usize {
    struct Count;
    impl<'a> TraceVisitor<'a> for Count {
        fn resource(&mut self, _: &Resource<'_, 'a>) {}
        fn span(&mut self, _: &Resource<'_, 'a>, _: &Span<'_, 'a>) {}
    }
    scan_traces(buf, &mut Count).unwrap_or(0)
}

/// The `service.name` of the first resource of an OTLP export request of any signal
/// (`ExportTraceServiceRequest`, `ExportMetricsServiceRequest` and
/// `ExportLogsServiceRequest` share the shape: field 1 holds resource-level messages
/// whose field 1 is the `Resource`), reading nothing else. `None` when the first
/// resource has no string `service.name`, or for bytes that do not decode as far as it.
/// Kafka keys records by it.
pub fn first_service_name(buf: &[u8]) -> Option<&str> {
    let ctx = RECURSION_LIMIT;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key().ok()?;
        if tag != 1 {
            r.skip(tag, wt, ctx).ok()?;
            continue;
        }
        let mut level = Reader::new(message(&mut r, wt, ctx).ok()?);
        // A resource in several parts merges as `prost` merges it: attributes appended.
        let mut attrs = Vec::new();
        while !level.done() {
            let (tag, wt) = level.key().ok()?;
            if tag == 1 {
                resource(message(&mut level, wt, ctx - 1).ok()?, ctx - 2, &mut attrs).ok()?;
            } else {
                level.skip(tag, wt, ctx - 1).ok()?;
            }
        }
        return (Resource { attributes: &attrs }).service_name();
    }
    None
}

struct Scan<'a, 'k> {
    resource: Vec<Kv<'a>>,
    span: Vec<Kv<'a>>,
    spans: usize,
    /// Which span attributes to read (all without it).
    keep: Option<&'k dyn Fn(&str) -> bool>,
}

impl<'a> Scan<'a, '_> {
    fn resource_spans(
        &mut self,
        buf: &'a [u8],
        ctx: u32,
        visitor: &mut impl TraceVisitor<'a>,
    ) -> Result<()> {
        // The resource first, wherever it is: its spans are read with it.
        self.resource.clear();
        let mut r = Reader::new(buf);
        while !r.done() {
            let (tag, wt) = r.key()?;
            match tag {
                1 => {
                    let b = message(&mut r, wt, ctx)?;
                    resource(b, ctx - 1, &mut self.resource)?;
                }
                2 => {
                    message(&mut r, wt, ctx)?;
                }
                3 => {
                    string(&mut r, wt)?;
                }
                _ => r.skip(tag, wt, ctx)?,
            }
        }
        let mut span_attrs = std::mem::take(&mut self.span);
        let res = Resource {
            attributes: &self.resource,
        };
        visitor.resource(&res);
        let mut r = Reader::new(buf);
        let mut result = Ok(());
        while !r.done() {
            let (tag, wt) = r.key()?;
            let b = r.value(tag, wt, ctx)?;
            if tag == 2 {
                result = scope_spans(
                    b,
                    ctx - 1,
                    &res,
                    &mut span_attrs,
                    &mut self.spans,
                    self.keep,
                    visitor,
                );
                if result.is_err() {
                    break;
                }
            }
        }
        visitor.end_resource(&res);
        self.span = span_attrs;
        result
    }
}

fn resource<'a>(buf: &'a [u8], ctx: u32, attrs: &mut Vec<Kv<'a>>) -> Result<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => {
                let b = message(&mut r, wt, ctx)?;
                attrs.push(key_value(b, ctx - 1)?);
            }
            2 => {
                r.varint_field(wt)?;
            }
            3 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, ENTITY_REF)?;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(())
}

fn scope_spans<'a>(
    buf: &'a [u8],
    ctx: u32,
    resource: &Resource<'_, 'a>,
    attrs: &mut Vec<Kv<'a>>,
    spans: &mut usize,
    keep: Option<&dyn Fn(&str) -> bool>,
    visitor: &mut impl TraceVisitor<'a>,
) -> Result<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, SCOPE)?;
            }
            2 => {
                let b = message(&mut r, wt, ctx)?;
                attrs.clear();
                let span = span(b, ctx - 1, attrs, keep)?;
                *spans += 1;
                visitor.span(
                    resource,
                    &Span {
                        attributes: attrs,
                        ..span
                    },
                );
            }
            3 => {
                string(&mut r, wt)?;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(())
}

fn span<'a>(
    buf: &'a [u8],
    ctx: u32,
    attrs: &mut Vec<Kv<'a>>,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Span<'a, 'a>> {
    let mut s = Span {
        trace_id: &[],
        span_id: &[],
        name: "",
        kind: 0,
        start_time_unix_nano: 0,
        end_time_unix_nano: 0,
        status_code: 0,
        attributes: &[],
    };
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => s.trace_id = bytes(&mut r, wt)?,
            2 => s.span_id = bytes(&mut r, wt)?,
            3 => {
                string(&mut r, wt)?;
            }
            4 => {
                bytes(&mut r, wt)?;
            }
            5 => s.name = string(&mut r, wt)?,
            6 => s.kind = r.varint_field(wt)? as i32,
            7 => s.start_time_unix_nano = r.fixed64_field(wt)?,
            8 => s.end_time_unix_nano = r.fixed64_field(wt)?,
            9 => {
                let b = message(&mut r, wt, ctx)?;
                match keep {
                    Some(keep) if !keep(key_of(b)?) => {}
                    _ => attrs.push(key_value(b, ctx - 1)?),
                }
            }
            10 | 12 | 14 => {
                r.varint_field(wt)?;
            }
            11 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, EVENT)?;
            }
            13 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, LINK)?;
            }
            15 => {
                let b = message(&mut r, wt, ctx)?;
                status(b, ctx - 1, &mut s.status_code)?;
            }
            16 => {
                r.fixed32_field(wt)?;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(s)
}

fn status(buf: &[u8], ctx: u32, code: &mut i32) -> Result<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            2 => {
                string(&mut r, wt)?;
            }
            3 => *code = r.varint_field(wt)? as i32,
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(())
}

/// A key-value; a value in several parts (the field repeated) is merged as `prost`
/// merges it: the last member of the oneof wins.
fn key_value(buf: &[u8], ctx: u32) -> Result<Kv<'_>> {
    let mut kv = Kv {
        key: "",
        value: None,
        raw: buf,
    };
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => kv.key = string(&mut r, wt)?,
            2 => {
                let b = message(&mut r, wt, ctx)?;
                let current = kv.value.unwrap_or(Value::Empty);
                kv.value = Some(any_value(b, ctx - 1, current)?);
            }
            3 => {
                r.varint_field(wt)?;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(kv)
}

/// The key of a key-value message (its last `key` field), nothing else read.
fn key_of(buf: &[u8]) -> Result<&str> {
    let mut key = "";
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        // Checked bytes: the nesting limit was enforced when they were.
        let b = r.value(tag, wt, RECURSION_LIMIT)?;
        if tag == 1 {
            if wt != LEN {
                return Err(WireError("a string field with the wrong wire type"));
            }
            key = utf8(b)?;
        }
    }
    Ok(key)
}

/// An `AnyValue` merged into `value`: its last member, or `value` without one.
fn any_value<'a>(buf: &'a [u8], ctx: u32, mut value: Value<'a>) -> Result<Value<'a>> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => value = Value::Str(string(&mut r, wt)?),
            2 => value = Value::Bool(r.varint_field(wt)? != 0),
            3 => value = Value::Int(r.varint_field(wt)? as i64),
            4 => value = Value::Double(f64::from_bits(r.fixed64_field(wt)?)),
            5 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, ARRAY_VALUE)?;
                value = Value::Other;
            }
            6 => {
                let b = message(&mut r, wt, ctx)?;
                check(b, ctx - 1, KEY_VALUE_LIST)?;
                value = Value::Other;
            }
            7 => value = Value::Bytes(bytes(&mut r, wt)?),
            8 => {
                r.varint_field(wt)?;
                value = Value::Other;
            }
            _ => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(value)
}

/// What a field of a message the scanner only checks holds.
#[derive(Clone, Copy)]
enum Field {
    Str,
    Bytes,
    Varint,
    Fixed32,
    Fixed64,
    KeyValue,
    AnyValue,
}

/// The fields of the messages the scanner checks and skips, by number (any other
/// number is an unknown field).
const ARRAY_VALUE: &[(u32, Field)] = &[(1, Field::AnyValue)];
const KEY_VALUE_LIST: &[(u32, Field)] = &[(1, Field::KeyValue)];
const SCOPE: &[(u32, Field)] = &[
    (1, Field::Str),
    (2, Field::Str),
    (3, Field::KeyValue),
    (4, Field::Varint),
];
const ENTITY_REF: &[(u32, Field)] = &[
    (1, Field::Str),
    (2, Field::Str),
    (3, Field::Str),
    (4, Field::Str),
];
const EVENT: &[(u32, Field)] = &[
    (1, Field::Fixed64),
    (2, Field::Str),
    (3, Field::KeyValue),
    (4, Field::Varint),
];
const LINK: &[(u32, Field)] = &[
    (1, Field::Bytes),
    (2, Field::Bytes),
    (3, Field::Str),
    (4, Field::KeyValue),
    (5, Field::Varint),
    (6, Field::Fixed32),
];

/// Checks a message of these `fields` as `prost` would decode it, reading nothing out.
fn check(buf: &[u8], ctx: u32, fields: &[(u32, Field)]) -> Result<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wt) = r.key()?;
        match fields.iter().find(|(t, _)| *t == tag).map(|(_, f)| *f) {
            Some(Field::Str) => {
                string(&mut r, wt)?;
            }
            Some(Field::Bytes) => {
                bytes(&mut r, wt)?;
            }
            Some(Field::Varint) => {
                r.varint_field(wt)?;
            }
            Some(Field::Fixed32) => {
                r.fixed32_field(wt)?;
            }
            Some(Field::Fixed64) => {
                r.fixed64_field(wt)?;
            }
            Some(Field::KeyValue) => {
                let b = message(&mut r, wt, ctx)?;
                key_value(b, ctx - 1)?;
            }
            Some(Field::AnyValue) => {
                let b = message(&mut r, wt, ctx)?;
                any_value(b, ctx - 1, Value::Empty)?;
            }
            None => r.skip(tag, wt, ctx)?,
        }
    }
    Ok(())
}

/// A nested message's bytes, in a message whose fields decode with `ctx`.
#[inline]
fn message<'a>(r: &mut Reader<'a>, wt: u8, ctx: u32) -> Result<&'a [u8]> {
    if wt != LEN {
        return Err(WireError("a message field with the wrong wire type"));
    }
    if ctx == 0 {
        return Err(WireError("recursion limit reached"));
    }
    r.len_delimited()
}

#[inline]
fn bytes<'a>(r: &mut Reader<'a>, wt: u8) -> Result<&'a [u8]> {
    if wt != LEN {
        return Err(WireError("a bytes field with the wrong wire type"));
    }
    r.len_delimited()
}

#[inline]
fn string<'a>(r: &mut Reader<'a>, wt: u8) -> Result<&'a str> {
    if wt != LEN {
        return Err(WireError("a string field with the wrong wire type"));
    }
    utf8(r.len_delimited()?)
}

/// `bytes` as a string, if they are UTF-8 (as `prost` requires of every string field).
#[inline]
#[allow(unsafe_code)]
fn utf8(bytes: &[u8]) -> Result<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8. OTLP strings (keys, names, most values) are ASCII, and
        // `from_utf8` costs a call per string: with this test inlined instead, the
        // `hot_path` bench's `wide_512_spans/scan` (20 strings a span) took 316 µs instead of 596 µs per 512 spans.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
        .map_err(|_| WireError("invalid string value: data is not UTF-8 encoded"))
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A varint as `prost` reads it: at most ten bytes, the tenth at most 1.
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        match rest.first() {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            None => return Err(WireError("invalid varint")),
            _ => {}
        }
        let mut value = 0u64;
        for (i, &b) in rest.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                if i == 9 && b >= 2 {
                    return Err(WireError("invalid varint"));
                }
                self.pos += i + 1;
                return Ok(value);
            }
        }
        Err(WireError("invalid varint"))
    }

    #[inline]
    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("invalid key value"));
        }
        let wt = (key & 7) as u8;
        if wt > FIXED32 {
            return Err(WireError("invalid wire type value"));
        }
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(WireError("invalid tag value: 0"));
        }
        Ok((tag, wt))
    }

    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let left = self.buf.len() - self.pos;
        if len > left as u64 {
            return Err(WireError("buffer underflow"));
        }
        let out = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(out)
    }

    #[inline]
    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        self.take(len)
    }

    #[inline]
    fn varint_field(&mut self, wt: u8) -> Result<u64> {
        if wt != VARINT {
            return Err(WireError("a varint field with the wrong wire type"));
        }
        self.varint()
    }

    #[inline]
    fn fixed64_field(&mut self, wt: u8) -> Result<u64> {
        if wt != FIXED64 {
            return Err(WireError("a fixed64 field with the wrong wire type"));
        }
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    #[inline]
    fn fixed32_field(&mut self, wt: u8) -> Result<u32> {
        if wt != FIXED32 {
            return Err(WireError("a fixed32 field with the wrong wire type"));
        }
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// A field's value bytes, skipped as `prost` skips unknown fields, for a second
    /// walk over fields already checked.
    fn value(&mut self, tag: u32, wt: u8, ctx: u32) -> Result<&'a [u8]> {
        let start = self.pos;
        self.skip(tag, wt, ctx)?;
        let field = &self.buf[start..self.pos];
        if wt == LEN {
            let mut r = Reader::new(field);
            return r.len_delimited();
        }
        Ok(field)
    }

    /// Skips an unknown field as `prost` does, groups included, in a message whose
    /// fields decode with `ctx`.
    fn skip(&mut self, tag: u32, wt: u8, ctx: u32) -> Result<()> {
        if ctx == 0 {
            return Err(WireError("recursion limit reached"));
        }
        match wt {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            LEN => {
                self.len_delimited()?;
            }
            START_GROUP => loop {
                let (inner, inner_wt) = self.key()?;
                if inner_wt == END_GROUP {
                    if inner != tag {
                        return Err(WireError("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(inner, inner_wt, ctx - 1)?;
            },
            _ => return Err(WireError("unexpected end group tag")),
        }
        Ok(())
    }
}
