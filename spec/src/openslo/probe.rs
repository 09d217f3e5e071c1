//! A first, lenient read of SLO and SLI documents that finds their metric sources'
//! types, so that a source slotel cannot compute (a Prometheus or vendor query) is
//! refused for that reason before its `spec` is read as slotel's own selectors.

use super::*;

#[derive(Deserialize)]
pub(super) struct ProbeDoc {
    #[serde(default)]
    spec: Option<ProbeSpec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ProbeSpec {
    #[serde(default)]
    indicator: Option<Box<ProbeInline>>,
    #[serde(default)]
    threshold_metric: Option<ProbeHolder>,
    #[serde(default)]
    ratio_metric: Option<ProbeRatio>,
}

#[derive(Deserialize)]
struct ProbeInline {
    #[serde(default)]
    spec: Option<ProbeSpec>,
}

#[derive(Deserialize)]
struct ProbeRatio {
    #[serde(default)]
    good: Option<ProbeHolder>,
    #[serde(default)]
    bad: Option<ProbeHolder>,
    #[serde(default)]
    total: Option<ProbeHolder>,
    #[serde(default)]
    raw: Option<ProbeHolder>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeHolder {
    #[serde(default)]
    metric_source: Option<ProbeSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeSource {
    #[serde(rename = "type", default)]
    source_type: Option<Spanned<String>>,
    #[serde(default)]
    metric_source_ref: Option<Spanned<String>>,
    #[serde(default)]
    spec: Option<ProbeQuery>,
}

/// The query fields vendors' sources use, to name the metric a query reads.
#[derive(Deserialize, Default)]
struct ProbeQuery {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    promql: Option<String>,
}

/// The problems of the metric sources of `doc` whose type slotel cannot compute (given
/// inline, or by a DataSource of `sources`): one per source, at its type. Empty when
/// every source is slotel's (or unresolved, which the full read reports).
pub(super) fn foreign_sources(
    file: &Path,
    offset: u64,
    doc: &str,
    sources: &HashMap<String, String>,
) -> Vec<SpecError> {
    let Ok(probe) = serde_saphyr::from_str::<ProbeDoc>(doc) else {
        return Vec::new();
    };
    let mut holders: Vec<&ProbeHolder> = Vec::new();
    let mut specs: Vec<&ProbeSpec> = probe.spec.iter().collect();
    while let Some(s) = specs.pop() {
        if let Some(i) = s.indicator.as_ref().and_then(|i| i.spec.as_ref()) {
            specs.push(i);
        }
        holders.extend(s.threshold_metric.iter());
        if let Some(r) = &s.ratio_metric {
            holders.extend([&r.good, &r.bad, &r.total, &r.raw].into_iter().flatten());
        }
    }
    let mut ctx = Ctx {
        file,
        errors: Vec::new(),
        line_offset: offset,
    };
    for source in holders.iter().filter_map(|h| h.metric_source.as_ref()) {
        let (kind, at) = match (&source.source_type, &source.metric_source_ref) {
            (Some(t), _) => (t.value.clone(), t),
            (None, Some(r)) => match sources.get(&r.value) {
                Some(t) => (t.clone(), r),
                None => continue,
            },
            (None, None) => continue,
        };
        if kind == "slotel" {
            continue;
        }
        let query = source
            .spec
            .as_ref()
            .and_then(|q| q.query.as_deref().or(q.promql.as_deref()));
        let reads = query
            .and_then(crate::sloth::metric_name)
            .map(|name| {
                format!(
                    "; the query reads {name}: if slotel receives that metric over OTLP, select it with type: slotel and spec: {{ metric: <its OTLP name>, attributes: {{...}} }}"
                )
            })
            .unwrap_or_default();
        ctx.err(
            at,
            format!(
                "metric source type {kind:?} is not supported: slotel computes SLIs from the OTLP data it receives, not from another system's queries; use type: slotel with spec: {{ spans: ... }} for requests it sees as spans, or {{ metric: NAME }} for an OTLP counter or histogram{reads}"
            ),
        );
    }
    ctx.errors
}

/// An `openslo/v1alpha` document, as far as slotel reads it: the sources of an SLO.
#[derive(Deserialize)]
struct AlphaDoc {
    kind: Spanned<String>,
    metadata: AlphaMeta,
    #[serde(default)]
    spec: Option<AlphaSpec>,
}

#[derive(Deserialize)]
struct AlphaMeta {
    name: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AlphaSpec {
    #[serde(default)]
    indicator: Option<AlphaIndicator>,
    #[serde(default)]
    objectives: Vec<AlphaObjective>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlphaIndicator {
    #[serde(default)]
    threshold_metric: Option<AlphaQuery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlphaObjective {
    #[serde(default)]
    ratio_metrics: Option<AlphaRatio>,
}

#[derive(Deserialize)]
struct AlphaRatio {
    #[serde(default)]
    good: Option<AlphaQuery>,
    #[serde(default)]
    bad: Option<AlphaQuery>,
    #[serde(default)]
    total: Option<AlphaQuery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlphaQuery {
    source: Spanned<String>,
    #[serde(default)]
    query: Option<String>,
}

/// The problems of an `openslo/v1alpha` document: v1alpha names its sources by a query
/// string only (`source`, `queryType`, `query`), which slotel cannot compute; a Service
/// has nothing slotel needs. Its SLOs are refused at each source, saying so.
pub(super) fn alpha(file: &Path, offset: u64, doc: &str) -> Vec<SpecError> {
    let mut ctx = Ctx {
        file,
        errors: Vec::new(),
        line_offset: offset,
    };
    let parsed: AlphaDoc = match serde_saphyr::from_str(doc) {
        Ok(d) => d,
        Err(e) => {
            let mut err = yaml_error(file, &e);
            if err.line > 0 {
                err.line += offset;
            }
            return vec![err];
        }
    };
    match parsed.kind.value.as_str() {
        "Service" => {}
        "SLO" => {
            let spec = parsed.spec.unwrap_or_default();
            let mut queries: Vec<&AlphaQuery> = Vec::new();
            queries.extend(
                spec.indicator
                    .iter()
                    .filter_map(|i| i.threshold_metric.as_ref()),
            );
            for o in &spec.objectives {
                if let Some(r) = &o.ratio_metrics {
                    queries.extend([&r.good, &r.bad, &r.total].into_iter().flatten());
                }
            }
            if queries.is_empty() {
                ctx.err(
                    &parsed.metadata.name,
                    "an openslo/v1alpha SLO needs an indicator's thresholdMetric or its objectives' ratioMetrics",
                );
            }
            for q in queries {
                let reads = q
                    .query
                    .as_deref()
                    .and_then(crate::sloth::metric_name)
                    .map(|n| format!(" (the query reads {n})"))
                    .unwrap_or_default();
                ctx.err(
                    &q.source,
                    format!(
                        "openslo/v1alpha source {:?} is a query slotel cannot compute{reads}: slotel computes from the OTLP data it receives, and v1alpha cannot name its selectors; write the SLO as openslo/v1 with type: slotel sources",
                        q.source.value
                    ),
                );
            }
        }
        other => ctx.err(
            &parsed.kind,
            format!("kind {other:?}: openslo/v1alpha has SLO and Service"),
        ),
    }
    ctx.errors
}
