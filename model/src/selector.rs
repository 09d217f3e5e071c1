//! Which events an SLO counts and which of them are good: span selectors, attribute
//! matchers and good rules.

use std::fmt;

impl serde::Serialize for AttrMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            AttrMatch::Eq(v) => m.serialize_entry("eq", v)?,
            AttrMatch::Ne(v) => m.serialize_entry("not", v)?,
            AttrMatch::In(v) => m.serialize_entry("in", v)?,
            AttrMatch::Regex(r) => m.serialize_entry("regex", r.as_str())?,
            AttrMatch::NotRegex(r) => m.serialize_entry("not_regex", r.as_str())?,
            AttrMatch::Exists(b) => m.serialize_entry("exists", b)?,
        }
        m.end()
    }
}

impl serde::Serialize for HttpStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HttpStatus::Code(c) => s.serialize_str(&c.to_string()),
            HttpStatus::Class(c) => s.serialize_str(&format!("{c}xx")),
        }
    }
}

/// OTLP span kinds, as their protobuf values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// `SPAN_KIND_INTERNAL` (and `UNSPECIFIED`, which receivers may treat as internal).
    Internal,
    /// `SPAN_KIND_SERVER`.
    Server,
    /// `SPAN_KIND_CLIENT`.
    Client,
    /// `SPAN_KIND_PRODUCER`.
    Producer,
    /// `SPAN_KIND_CONSUMER`.
    Consumer,
}

impl SpanKind {
    /// Whether the OTLP `kind` value is this kind.
    pub fn matches(self, kind: i32) -> bool {
        match self {
            SpanKind::Internal => kind == 1 || kind == 0,
            SpanKind::Server => kind == 2,
            SpanKind::Client => kind == 3,
            SpanKind::Producer => kind == 4,
            SpanKind::Consumer => kind == 5,
        }
    }
}

/// Which spans of the SLO's service count.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SpanSelector {
    /// The span kind, any when unset.
    pub kind: Option<SpanKind>,
    /// The exact span name.
    pub span_name: Option<String>,
    /// The exact `http.route` attribute.
    pub http_route: Option<String>,
    /// Span attribute matchers; all must hold.
    pub attributes: Vec<(String, AttrMatch)>,
    /// Resource attribute matchers; all must hold.
    pub resource: Vec<(String, AttrMatch)>,
}

/// A test on one attribute.
#[derive(Debug, Clone)]
pub enum AttrMatch {
    /// Present and equal (`key: value`, or `{eq: value}`).
    Eq(AttrValue),
    /// Absent or different (`{not: value}`).
    Ne(AttrValue),
    /// Present and equal to one of the values (`{in: [a, b]}`).
    In(Vec<AttrValue>),
    /// A string matching the whole regular expression (`{regex: "^/api/.*"}`, anchored
    /// at both ends as in PromQL).
    Regex(regex::Regex),
    /// Absent, or a value that is not a string matching the whole regular expression
    /// (`{not_regex: "..."}`).
    NotRegex(regex::Regex),
    /// Present (`{exists: true}`) or absent (`{exists: false}`).
    Exists(bool),
}

/// The pattern [`anchored_regex`] was given, from the regex it made: as a user wrote it,
/// and as PromQL (which anchors every regex itself) takes it.
pub fn unanchored(regex: &str) -> &str {
    regex
        .strip_prefix("^(?:")
        .and_then(|r| r.strip_suffix(")$"))
        .unwrap_or(regex)
}

/// Compiles a regular expression anchored at both ends, as PromQL does; the error is a
/// sentence for people.
pub fn anchored_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The regex crate draws the pattern over several lines; the last says what is wrong.
        let e = e.to_string();
        let why = e.lines().last().unwrap_or_default();
        let why = why.trim().trim_start_matches("error: ");
        format!("invalid regular expression {pattern:?}: {why}")
    })
}

impl PartialEq for AttrMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AttrMatch::Eq(a), AttrMatch::Eq(b)) | (AttrMatch::Ne(a), AttrMatch::Ne(b)) => a == b,
            (AttrMatch::In(a), AttrMatch::In(b)) => a == b,
            (AttrMatch::Regex(a), AttrMatch::Regex(b))
            | (AttrMatch::NotRegex(a), AttrMatch::NotRegex(b)) => a.as_str() == b.as_str(),
            (AttrMatch::Exists(a), AttrMatch::Exists(b)) => a == b,
            _ => false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for AttrMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AttrMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, or one of {eq: v}, {not: v}, {in: [v, ...]}, {regex: \"...\"}, {not_regex: \"...\"}, {exists: true|false}")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Int(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AttrMatch, E> {
                i64::try_from(v)
                    .map(|v| AttrMatch::Eq(AttrValue::Int(v)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::Double(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AttrMatch, E> {
                Ok(AttrMatch::Eq(AttrValue::String(v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AttrMatch, A::Error> {
                use serde::de::Error;
                let Some(op) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "an empty matcher: use one of eq, not, in, regex, exists",
                    ));
                };
                let m = match op.as_str() {
                    "eq" => AttrMatch::Eq(map.next_value()?),
                    "not" => AttrMatch::Ne(map.next_value()?),
                    "in" => AttrMatch::In(map.next_value()?),
                    "exists" => AttrMatch::Exists(map.next_value()?),
                    "regex" => {
                        let pattern: String = map.next_value()?;
                        AttrMatch::Regex(anchored_regex(&pattern).map_err(A::Error::custom)?)
                    }
                    "not_regex" => {
                        let pattern: String = map.next_value()?;
                        AttrMatch::NotRegex(anchored_regex(&pattern).map_err(A::Error::custom)?)
                    }
                    other => {
                        return Err(A::Error::custom(format!(
                            "unknown matcher {other:?}: use one of eq, not, in, regex, not_regex, exists"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(
                        "a matcher takes exactly one of eq, not, in, regex, exists",
                    ));
                }
                Ok(m)
            }
        }
        d.deserialize_any(V)
    }
}

/// An attribute value in a selector.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    String(String),
}

/// What makes a span good. Every rule that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GoodRule {
    /// The span status rule, if any.
    pub status: Option<StatusRule>,
    /// Good only when the duration (end − start) is at most this many nanoseconds.
    pub max_duration_nanos: Option<u64>,
    /// Good only when the HTTP response status code matches one of these.
    pub http_status: Option<Vec<HttpStatus>>,
    /// Good only when the HTTP response status code (if any) matches none of these.
    pub not_http_status: Option<Vec<HttpStatus>>,
    /// Good only when every one of these holds.
    pub all_of: Vec<GoodRule>,
    /// Good only when at least one of these holds (when not empty).
    pub any_of: Vec<GoodRule>,
}

impl GoodRule {
    /// Whether the rule tests anything at all.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.max_duration_nanos.is_none()
            && self.http_status.is_none()
            && self.not_http_status.is_none()
            && self.all_of.is_empty()
            && self.any_of.is_empty()
    }
}

/// An HTTP status code (`404`) or class (`4xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpStatus {
    /// One code.
    Code(u16),
    /// A class: 1 for 1xx … 5 for 5xx.
    Class(u8),
}

impl HttpStatus {
    /// Parses `404` or `4xx`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(c) = s.strip_suffix("xx") {
            return match c.parse::<u8>() {
                Ok(c @ 1..=5) if s.len() == 3 => Some(HttpStatus::Class(c)),
                _ => None,
            };
        }
        match s.parse::<u16>() {
            Ok(code @ 100..=599) => Some(HttpStatus::Code(code)),
            _ => None,
        }
    }

    /// Whether `code` is this code or in this class.
    pub fn matches(self, code: i64) -> bool {
        match self {
            HttpStatus::Code(c) => code == i64::from(c),
            HttpStatus::Class(c) => code / 100 == i64::from(c),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HttpStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HttpStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status code (404) or class (4xx)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HttpStatus, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HttpStatus, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HttpStatus, E> {
                HttpStatus::parse(v).ok_or_else(|| {
                    E::custom(format!("invalid HTTP status {v:?}: use a code from 100 to 599 or a class 1xx to 5xx"))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Span status rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusRule {
    /// Good unless the status is `ERROR` (so `UNSET` and `OK` are good).
    NotError,
    /// Good only when the status is `OK`.
    Ok,
}
