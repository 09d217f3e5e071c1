//! Prometheus names of OTLP metrics and attributes, as the OpenTelemetry Collector's
//! Prometheus exporters write them.

/// The Prometheus name of an OTLP metric, as the OpenTelemetry Collector's Prometheus
/// exporters write it: characters outside `[a-zA-Z0-9_:]` become `_`, the unit is added
/// (`_seconds`, `_milliseconds`, `_bytes`) unless the name ends with it, and monotonic
/// Sums end in `_total`.
pub fn prometheus_name(name: &str, unit: &str, monotonic_sum: bool) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "min" => "minutes",
        "h" => "hours",
        _ => "",
    };
    if !suffix.is_empty() && !out.ends_with(suffix) {
        out.push('_');
        out.push_str(suffix);
    }
    if monotonic_sum && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// The Prometheus label name of an OTLP attribute key, as OpenTelemetry's Prometheus
/// exporters write it: characters other than ASCII letters, digits and `_` become `_`,
/// and a leading digit gets a `_` before it (`http.route` → `http_route`).
pub fn prometheus_label(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// `s` as a Prometheus label name (see [`prometheus_label`]); `None` for the empty
/// string, which names no label.
pub fn label_name(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| prometheus_label(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_of_otlp_metrics() {
        assert_eq!(
            prometheus_name("http.server.requests", "", true),
            "http_server_requests_total"
        );
        assert_eq!(
            prometheus_name("http.server.requests", "{request}", true),
            "http_server_requests_total"
        );
        assert_eq!(
            prometheus_name("http.server.duration", "s", false),
            "http_server_duration_seconds"
        );
        assert_eq!(
            prometheus_name("rpc.duration_seconds", "s", false),
            "rpc_duration_seconds"
        );
        assert_eq!(prometheus_name("jobs_total", "", true), "jobs_total");
        assert_eq!(prometheus_label("http.route"), "http_route");
        assert_eq!(prometheus_label("2xx"), "_2xx");
        assert_eq!(label_name(""), None);
    }
}
