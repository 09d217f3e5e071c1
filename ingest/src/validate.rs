//! What the receivers check before acknowledging: items the server refuses are removed
//! and counted (the OTLP partial success), oversized attributes are cut as the SDKs'
//! limits would. Pure functions over the decoded request, allocation-free; trace exports
//! are checked on their protobuf bytes first ([`trace_bytes`]), and decoded only when
//! checking has to change them.

use std::fmt::Write;

use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::otlp::common::v1::{KeyValue, any_value::Value};
use slotel_proto::otlp::metrics::v1::metric::Data;
use slotel_proto::wire;

/// Limits on single items.
#[derive(Debug, Clone, Copy)]
pub struct ItemLimits {
    /// Attributes kept per item (span, log record, data point, resource); the rest are
    /// dropped and counted.
    pub max_attributes: usize,
    /// Bytes kept of a string attribute value; longer values are cut at a character
    /// boundary and counted.
    pub max_attribute_value_bytes: usize,
    /// Items dated further ahead of the server's clock are refused.
    pub max_future_nanos: u64,
}

impl Default for ItemLimits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_attribute_value_bytes: 4096,
            max_future_nanos: 300 * 1_000_000_000,
        }
    }
}

/// What checking a request found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Spans refused for an invalid trace or span id.
    pub invalid_ids: u64,
    /// Items refused for a timestamp too far in the future.
    pub future: u64,
    /// Spans refused for ending before they start.
    pub bad_times: u64,
    /// Attributes dropped over the per-item limit.
    pub attributes_dropped: u64,
    /// String attribute values cut to the length limit.
    pub values_truncated: u64,
}

impl Checked {
    /// Items refused.
    pub fn rejected(&self) -> u64 {
        self.invalid_ids + self.future + self.bad_times
    }

    /// Whether checking changed the request (removed items, dropped or cut attributes).
    pub fn changed(&self) -> bool {
        self.rejected() > 0 || self.attributes_dropped > 0 || self.values_truncated > 0
    }

    /// The partial-success message: what was refused and why.
    pub fn message(&self, items: &str, limits: &ItemLimits) -> String {
        let mut parts = Vec::new();
        if self.invalid_ids > 0 {
            parts.push(format!(
                "{} with an invalid trace or span id",
                self.invalid_ids
            ));
        }
        if self.future > 0 {
            parts.push(format!(
                "{} with a timestamp more than {}s in the future",
                self.future,
                limits.max_future_nanos / 1_000_000_000
            ));
        }
        if self.bad_times > 0 {
            parts.push(format!("{} ending before they start", self.bad_times));
        }
        let mut msg = format!("rejected {} {items}: ", self.rejected());
        let _ = write!(msg, "{}", parts.join(", "));
        msg
    }
}

/// Cuts `attrs` to the limits, counting what it cuts as [`attribute_limits`] counts it.
fn limit_attributes(attrs: &mut Vec<KeyValue>, limits: &ItemLimits, c: &mut Checked) {
    let values = attrs
        .iter()
        .map(|kv| kv.value.as_ref().map(wire::Value::of));
    attribute_limits(values, limits, c);
    attrs.truncate(limits.max_attributes);
    for kv in attrs.iter_mut() {
        if let Some(Value::StringValue(s)) = kv.value.as_mut().and_then(|v| v.value.as_mut())
            && s.len() > limits.max_attribute_value_bytes
        {
            let mut cut = limits.max_attribute_value_bytes;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
    }
}

/// Counts what the limits cut from attributes of these values: those past the count
/// limit, and string values over the length limit among the rest.
fn attribute_limits<'a>(
    values: impl ExactSizeIterator<Item = Option<wire::Value<'a>>>,
    limits: &ItemLimits,
    c: &mut Checked,
) {
    let n = values.len();
    if n > limits.max_attributes {
        c.attributes_dropped += (n - limits.max_attributes) as u64;
    }
    for v in values.take(limits.max_attributes) {
        if let Some(wire::Value::Str(s)) = v
            && s.len() > limits.max_attribute_value_bytes
        {
            c.values_truncated += 1;
        }
    }
}

/// Checks a trace export on its protobuf bytes as [`traces`] checks it decoded: the
/// spans in the request and what [`traces`] would find, or why the bytes do not decode.
pub fn trace_bytes(
    body: &[u8],
    now_nanos: u64,
    limits: &ItemLimits,
) -> Result<(u64, Checked), String> {
    struct Check<'l> {
        c: Checked,
        latest: u64,
        limits: &'l ItemLimits,
    }
    impl<'a> wire::TraceVisitor<'a> for Check<'_> {
        fn resource(&mut self, resource: &wire::Resource<'_, 'a>) {
            let values = resource.attributes.iter().map(|kv| kv.value);
            attribute_limits(values, self.limits, &mut self.c);
        }
        fn span(&mut self, _: &wire::Resource<'_, 'a>, s: &wire::Span<'_, 'a>) {
            let c = &mut self.c;
            if !valid_id(s.trace_id, 16) || !valid_id(s.span_id, 8) {
                c.invalid_ids += 1;
            } else if s.end_time_unix_nano > self.latest {
                c.future += 1;
            } else if s.end_time_unix_nano < s.start_time_unix_nano {
                c.bad_times += 1;
            } else {
                let values = s.attributes.iter().map(|kv| kv.value);
                attribute_limits(values, self.limits, c);
            }
        }
    }
    let mut check = Check {
        c: Checked::default(),
        latest: now_nanos.saturating_add(limits.max_future_nanos),
        limits,
    };
    let spans = wire::scan_traces(body, &mut check).map_err(|e| e.to_string())?;
    Ok((spans as u64, check.c))
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|&b| b != 0)
}

/// Checks a trace export: ids must be valid (16 and 8 bytes, not all zero), spans must
/// not end before they start nor too far in the future.
pub fn traces(req: &mut ExportTraceServiceRequest, now_nanos: u64, limits: &ItemLimits) -> Checked {
    let mut c = Checked::default();
    let latest = now_nanos.saturating_add(limits.max_future_nanos);
    for rs in &mut req.resource_spans {
        if let Some(r) = rs.resource.as_mut() {
            limit_attributes(&mut r.attributes, limits, &mut c);
        }
        for ss in &mut rs.scope_spans {
            ss.spans.retain_mut(|s| {
                if !valid_id(&s.trace_id, 16) || !valid_id(&s.span_id, 8) {
                    c.invalid_ids += 1;
                    return false;
                }
                if s.end_time_unix_nano > latest {
                    c.future += 1;
                    return false;
                }
                if s.end_time_unix_nano < s.start_time_unix_nano {
                    c.bad_times += 1;
                    return false;
                }
                limit_attributes(&mut s.attributes, limits, &mut c);
                true
            });
        }
    }
    c
}

/// Checks a logs export: records must not be dated too far in the future (by their
/// time, or their observed time when the time is unset).
pub fn logs(req: &mut ExportLogsServiceRequest, now_nanos: u64, limits: &ItemLimits) -> Checked {
    let mut c = Checked::default();
    let latest = now_nanos.saturating_add(limits.max_future_nanos);
    for rl in &mut req.resource_logs {
        if let Some(r) = rl.resource.as_mut() {
            limit_attributes(&mut r.attributes, limits, &mut c);
        }
        for sl in &mut rl.scope_logs {
            sl.log_records.retain_mut(|l| {
                let t = if l.time_unix_nano != 0 {
                    l.time_unix_nano
                } else {
                    l.observed_time_unix_nano
                };
                if t > latest {
                    c.future += 1;
                    return false;
                }
                limit_attributes(&mut l.attributes, limits, &mut c);
                true
            });
        }
    }
    c
}

/// Checks a metrics export: data points must not be dated too far in the future.
pub fn metrics(
    req: &mut ExportMetricsServiceRequest,
    now_nanos: u64,
    limits: &ItemLimits,
) -> Checked {
    let mut c = Checked::default();
    let latest = now_nanos.saturating_add(limits.max_future_nanos);
    macro_rules! points {
        ($points:expr) => {
            $points.retain_mut(|p| {
                if p.time_unix_nano > latest {
                    c.future += 1;
                    return false;
                }
                limit_attributes(&mut p.attributes, limits, &mut c);
                true
            })
        };
    }
    for rm in &mut req.resource_metrics {
        if let Some(r) = rm.resource.as_mut() {
            limit_attributes(&mut r.attributes, limits, &mut c);
        }
        for sm in &mut rm.scope_metrics {
            for m in &mut sm.metrics {
                match m.data.as_mut() {
                    Some(Data::Gauge(g)) => points!(g.data_points),
                    Some(Data::Sum(s)) => points!(s.data_points),
                    Some(Data::Histogram(h)) => points!(h.data_points),
                    Some(Data::ExponentialHistogram(h)) => points!(h.data_points),
                    Some(Data::Summary(s)) => points!(s.data_points),
                    None => {}
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotel_proto::otlp::common::v1::AnyValue;
    use slotel_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn span(trace: Vec<u8>, span: Vec<u8>, start: u64, end: u64) -> Span {
        Span {
            trace_id: trace,
            span_id: span,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    #[test]
    fn refuses_bad_ids_future_and_reversed_spans() {
        let ok = || span(vec![1; 16], vec![2; 8], NOW - 10, NOW);
        let mut req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        ok(),
                        span(vec![0; 16], vec![2; 8], NOW - 10, NOW),
                        span(vec![1; 15], vec![2; 8], NOW - 10, NOW),
                        span(vec![1; 16], vec![], NOW - 10, NOW),
                        span(vec![1; 16], vec![2; 8], NOW, NOW + 301_000_000_000),
                        span(vec![1; 16], vec![2; 8], NOW, NOW - 1),
                        ok(),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let limits = ItemLimits::default();
        let c = traces(&mut req, NOW, &limits);
        assert_eq!((c.invalid_ids, c.future, c.bad_times), (3, 1, 1));
        assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 2);
        assert_eq!(
            c.message("spans", &limits),
            "rejected 5 spans: 3 with an invalid trace or span id, 1 with a timestamp more than 300s in the future, 1 ending before they start"
        );
    }

    #[test]
    fn attributes_are_cut_to_the_limits() {
        let kv = |k: String, v: &str| KeyValue {
            key: k,
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let mut attrs: Vec<KeyValue> = (0..5).map(|i| kv(format!("k{i}"), "short")).collect();
        attrs[0] = kv("k0".into(), "ééééé"); // 10 bytes
        let limits = ItemLimits {
            max_attributes: 3,
            max_attribute_value_bytes: 5,
            ..ItemLimits::default()
        };
        let mut c = Checked::default();
        limit_attributes(&mut attrs, &limits, &mut c);
        assert_eq!(attrs.len(), 3);
        assert_eq!(c.attributes_dropped, 2);
        assert_eq!(c.values_truncated, 1);
        // Cut at a character boundary: two é (4 bytes), not a broken third.
        assert_eq!(
            attrs[0].value,
            Some(AnyValue {
                value: Some(Value::StringValue("éé".into()))
            })
        );
    }
}
