//! Why an SLO has no data: what arrived from which services, and which step of an SLO's
//! selector the spans of its service failed.
//!
//! The engine counts every span by (tenant, service) and keeps a small sample of the
//! spans of each service (every span until the sample is full, then one in
//! [`SAMPLE_EVERY`]), once per resource: a lock and an add per resource, an allocation
//! only for the rare sampled span. [`Engine::explain`] replays an SLO's selector step by
//! step over the sample of its service and looks for near misses: a service, span name
//! or route that differs only in case or a trailing slash.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use slotel_model::{Sli, SloDef, SpanSelector};
use slotel_proto::otlp::common::v1::KeyValue;
use slotel_proto::wire::{self, Attributes};

use super::*;
use crate::classify::{HTTP_ROUTE, UNKNOWN_SERVICE, matches_all};

/// Spans kept per service.
const SAMPLE: usize = 256;
/// Once the sample is full, one span in this many replaces the oldest.
const SAMPLE_EVERY: u64 = 1024;
/// Services tracked; spans of further services are only counted in total.
const MAX_SERVICES: usize = 1000;
/// Attributes kept per sampled span.
const MAX_ATTRIBUTES: usize = 32;

/// One sampled span: what an SLO's selector reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shape {
    kind: i32,
    name: String,
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Default)]
struct Seen {
    spans: u64,
    resource: Vec<KeyValue>,
    sample: VecDeque<Shape>,
}

/// What one engine saw of a tenant's spans: each service's span count, and the first
/// resource and the sample of one service. A cluster's partitions each see a part;
/// [`Observed::merge`] sums them, and [`explain_observed`] explains an SLO from the sum.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observed {
    /// Spans by service, most first.
    services: Vec<(String, u64)>,
    /// The service's first resource's attributes.
    resource: Vec<KeyValue>,
    /// The service's sampled spans, oldest first.
    sample: Vec<Shape>,
}

impl Observed {
    /// The parts summed: spans by service added, the first resource found, and up to
    /// 256 sampled spans in all (as one engine keeps), taken from the parts in turn, the
    /// most recent first (so that every part is represented).
    pub fn merge(parts: impl IntoIterator<Item = Observed>) -> Observed {
        let mut services: HashMap<String, u64> = HashMap::new();
        let mut resource = Vec::new();
        let mut samples = Vec::new();
        for part in parts {
            for (service, spans) in part.services {
                *services.entry(service).or_default() += spans;
            }
            if resource.is_empty() {
                resource = part.resource;
            }
            samples.push(part.sample);
        }
        let mut sample = Vec::new();
        while sample.len() < SAMPLE && samples.iter().any(|s| !s.is_empty()) {
            for part in &mut samples {
                if sample.len() < SAMPLE
                    && let Some(shape) = part.pop()
                {
                    sample.push(shape);
                }
            }
        }
        sample.reverse();
        Observed {
            services: by_count(services.into_iter()),
            resource,
            sample,
        }
    }
}

/// `services` with their span counts, most first, then by name.
fn by_count(services: impl Iterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = services.collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// One resource's spans while the engine reads them: counted, and the few the sample
/// takes copied (every span until the sample is full, then one in [`SAMPLE_EVERY`]).
#[derive(Debug)]
pub(super) struct Observing<'a> {
    service: &'a str,
    spans_before: u64,
    sampled: usize,
    spans: u64,
    shapes: Vec<Shape>,
}

impl Observing<'_> {
    /// Counts `span`, and copies it when the sample takes it.
    pub(super) fn span(&mut self, span: &wire::Span<'_, '_>) {
        self.spans += 1;
        if self.sampled < SAMPLE || (self.spans_before + self.spans).is_multiple_of(SAMPLE_EVERY) {
            self.sampled = (self.sampled + 1).min(SAMPLE);
            self.shapes.push(Shape {
                kind: span.kind,
                name: span.name.to_string(),
                attributes: span
                    .attributes
                    .iter()
                    .take(MAX_ATTRIBUTES)
                    .map(wire::Kv::to_key_value)
                    .collect(),
            });
        }
    }
}

/// What the engine saw, by (tenant, service).
#[derive(Debug, Default)]
pub(super) struct Diagnostics {
    /// By tenant, then service: looked up without allocating.
    seen: Mutex<HashMap<String, HashMap<String, Seen>>>,
    /// Services tracked, all tenants.
    services: AtomicU64,
    /// Spans of services past [`MAX_SERVICES`].
    untracked: AtomicU64,
    /// Tenants whose data was logged as matching no SLO.
    told: Mutex<HashSet<String>>,
}

impl Diagnostics {
    /// Starts observing the spans of `resource`: one lock, to learn how far the
    /// service's sample has come.
    pub(super) fn begin<'a>(
        &self,
        tenant: &str,
        resource: &wire::Resource<'_, 'a>,
    ) -> Observing<'a> {
        let service = resource.service_name().unwrap_or(UNKNOWN_SERVICE);
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (spans_before, sampled) = seen
            .get(tenant)
            .and_then(|s| s.get(service))
            .map_or((0, 0), |e| (e.spans, e.sample.len()));
        Observing {
            service,
            spans_before,
            sampled,
            spans: 0,
            shapes: Vec::new(),
        }
    }

    /// Ends observing a resource's spans: one lock, to count them and add the sampled
    /// ones.
    pub(super) fn end(
        &self,
        tenant: &str,
        resource: &wire::Resource<'_, '_>,
        seen_now: Observing<'_>,
    ) {
        let Observing {
            service,
            spans,
            shapes,
            ..
        } = seen_now;
        if spans == 0 {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains_key(tenant) {
            seen.insert(tenant.to_string(), HashMap::new());
        }
        let Some(of_tenant) = seen.get_mut(tenant) else {
            return;
        };
        if !of_tenant.contains_key(service) {
            if self.services.load(Ordering::Relaxed) >= MAX_SERVICES as u64 {
                self.untracked.fetch_add(spans, Ordering::Relaxed);
                return;
            }
            self.services.fetch_add(1, Ordering::Relaxed);
            of_tenant.insert(service.to_string(), Seen::default());
        }
        let Some(entry) = of_tenant.get_mut(service) else {
            return;
        };
        if entry.resource.is_empty() {
            entry.resource = resource
                .attributes
                .iter()
                .take(MAX_ATTRIBUTES)
                .map(wire::Kv::to_key_value)
                .collect();
        }
        entry.spans += spans;
        for shape in shapes {
            if entry.sample.len() >= SAMPLE {
                entry.sample.pop_front();
            }
            entry.sample.push_back(shape);
        }
    }

    /// Whether `tenant`'s data matching no SLO was not yet logged (and now is).
    pub(super) fn first_unmatched(&self, tenant: &str) -> bool {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        !told.contains(tenant) && told.insert(tenant.to_string())
    }

    /// What was seen of `tenant`: spans by service, and the resource and sample of
    /// `service`.
    fn observed(&self, tenant: &str, service: &str) -> Observed {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let of_tenant = seen.get(tenant);
        let services = by_count(
            of_tenant
                .into_iter()
                .flatten()
                .map(|(s, v)| (s.clone(), v.spans)),
        );
        let (resource, sample) = of_tenant
            .and_then(|t| t.get(service))
            .map(|s| (s.resource.clone(), s.sample.iter().cloned().collect()))
            .unwrap_or_default();
        Observed {
            services,
            resource,
            sample,
        }
    }

    /// Spans by (tenant, service) for services no SLO of theirs names.
    pub(super) fn unmatched(&self, set: &SloSet) -> Vec<(String, String, u64)> {
        let named: HashSet<(&str, &str)> = set
            .slos
            .iter()
            .map(|e| (e.def.tenant.as_str(), e.def.service.as_str()))
            .collect();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, String, u64)> = seen
            .iter()
            .flat_map(|(t, services)| services.iter().map(move |(s, v)| (t, s, v)))
            .filter(|(t, s, _)| !named.contains(&(t.as_str(), s.as_str())))
            .map(|(t, s, v)| (t.clone(), s.clone(), v.spans))
            .collect();
        out.sort();
        out
    }
}

/// Why an SLO counts what it counts, or nothing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The SLO.
    pub slo: String,
    /// Its tenant.
    pub tenant: String,
    /// The service it selects (`service.name`).
    pub service: String,
    /// Events in the SLO's window.
    pub events_in_window: u64,
    /// Spans of the SLO's service received since slotel started.
    pub service_spans: u64,
    /// Of the sampled spans of the service (up to 256, the most recent), how many the
    /// SLO's selector kept, and how many each step dropped first.
    pub sample: SampleVerdict,
    /// Services of the tenant spans came from, with their span counts, most first.
    pub tenant_services: Vec<ServiceSpans>,
    /// What the explanation comes to, in sentences.
    pub findings: Vec<String>,
}

/// The sampled spans of a service through one SLO's selector.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SampleVerdict {
    /// Spans in the sample.
    pub spans: u64,
    /// Selected by the SLO.
    pub selected: u64,
    /// Dropped by the span kind.
    pub dropped_by_kind: u64,
    /// Dropped by the span name.
    pub dropped_by_span_name: u64,
    /// Dropped by `http.route`.
    pub dropped_by_http_route: u64,
    /// Dropped by a span attribute matcher.
    pub dropped_by_attributes: u64,
    /// Dropped by a resource attribute matcher.
    pub dropped_by_resource: u64,
}

/// A service and the spans received from it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceSpans {
    /// `service.name`.
    pub service: String,
    /// Spans received.
    pub spans: u64,
    /// Whether an SLO of the tenant selects this service.
    pub has_slos: bool,
}

/// Whether `a` and `b` differ only in case or in a trailing slash.
fn near(a: &str, b: &str) -> bool {
    a != b
        && a.trim_end_matches('/')
            .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

impl Engine {
    /// Why SLO `name` of `tenant` counts what it counts: the spans of its service, the
    /// selector step that drops the others, near misses, and the tenant's services.
    pub fn explain(&self, tenant: &str, name: &str) -> Result<Explanation> {
        let set = self.current();
        let entry = set.entry(tenant, name)?;
        let status = status_of(entry, self.clock.now_nanos());
        Ok(self.explanation(&set, entry, &status))
    }

    /// [`Engine::explain`] for an SLO of `set` whose status is `status`.
    pub(super) fn explanation(
        &self,
        set: &SloSet,
        entry: &SloEntry,
        status: &SloStatus,
    ) -> Explanation {
        let def = &entry.def;
        explain_observed(
            set.slos.iter().map(|e| &*e.def),
            def,
            status,
            &self.observed(&def.tenant, &def.service),
        )
    }

    /// What this engine saw of `tenant`'s spans, with the sample of `service`: one
    /// partition's part of a cluster's explanation.
    pub fn observed(&self, tenant: &str, service: &str) -> Observed {
        self.diagnostics.observed(tenant, service)
    }

    /// Spans by (tenant, service) of services that no SLO of the tenant names.
    pub fn unmatched_services(&self) -> Vec<(String, String, u64)> {
        self.diagnostics.unmatched(&self.current())
    }
}

/// Why SLO `def` (one of `defs`, the loaded SLOs) counts what it counts, with status
/// `status`, from what was `observed` of its tenant's spans: one engine's, or a
/// cluster's parts merged ([`Observed::merge`]).
pub fn explain_observed<'a>(
    defs: impl IntoIterator<Item = &'a SloDef>,
    def: &SloDef,
    status: &SloStatus,
    observed: &Observed,
) -> Explanation {
    let tenant = def.tenant.as_str();
    let named: HashSet<&str> = defs
        .into_iter()
        .filter(|d| d.tenant == tenant)
        .map(|d| d.service.as_str())
        .collect();
    let tenant_services: Vec<ServiceSpans> = observed
        .services
        .iter()
        .map(|(service, spans)| ServiceSpans {
            has_slos: named.contains(service.as_str()),
            service: service.clone(),
            spans: *spans,
        })
        .collect();
    let service_spans = tenant_services
        .iter()
        .find(|s| s.service == def.service)
        .map_or(0, |s| s.spans);
    let mut findings = Vec::new();
    let mut sample = SampleVerdict::default();
    match &def.sli {
        Sli::Spans { selector, .. } => {
            judge(selector, observed, &mut sample, &mut findings);
        }
        _ => findings.push(format!(
            "{} is not a span SLI: its events come from {}",
            def.name,
            match def.sli {
                Sli::Logs { .. } => "log records",
                _ => "metric data points",
            }
        )),
    }
    if service_spans == 0 && matches!(def.sli, Sli::Spans { .. }) {
        let mut found = false;
        for s in &tenant_services {
            if near(&s.service, &def.service) {
                found = true;
                findings.push(format!(
                    "no spans from service {:?}, but {} from {:?}, which differs only in case or a trailing slash: service names are compared exactly (set OTEL_SERVICE_NAME={} or the SLO's service: {})",
                    def.service, s.spans, s.service, def.service, s.service
                ));
            }
        }
        if !found {
            if tenant_services.is_empty() {
                findings.push(format!(
                    "no spans have arrived for tenant {tenant:?} since slotel started (is the exporter pointed at slotel, with this tenant's X-Scope-OrgID or token?)"
                ));
            } else {
                let names: Vec<String> = tenant_services
                    .iter()
                    .take(10)
                    .map(|s| format!("{:?} ({})", s.service, s.spans))
                    .collect();
                findings.push(format!(
                    "no spans from service {:?}; spans arrived from {}",
                    def.service,
                    names.join(", ")
                ));
            }
        }
    }
    if status.total_events > 0 {
        findings.insert(
            0,
            format!(
                "{} counts {} events in its window ({} good)",
                def.name, status.total_events, status.good_events
            ),
        );
    }
    Explanation {
        slo: def.name.clone(),
        tenant: tenant.to_string(),
        service: def.service.clone(),
        events_in_window: status.total_events,
        service_spans,
        sample,
        tenant_services,
        findings,
    }
}

/// Runs `selector` step by step over the sample of a service.
fn judge(
    selector: &SpanSelector,
    seen: &Observed,
    verdict: &mut SampleVerdict,
    findings: &mut Vec<String>,
) {
    let mut near_names: Vec<String> = Vec::new();
    let mut near_routes: Vec<String> = Vec::new();
    let mut kinds: Vec<&'static str> = Vec::new();
    for shape in &seen.sample {
        verdict.spans += 1;
        let span = Span {
            kind: shape.kind,
            name: shape.name.clone(),
            attributes: shape.attributes.clone(),
            ..Default::default()
        };
        if let Some(kind) = selector.kind
            && !kind.matches(span.kind)
        {
            verdict.dropped_by_kind += 1;
            let k = kind_name(span.kind);
            if !kinds.contains(&k) {
                kinds.push(k);
            }
            continue;
        }
        if let Some(name) = &selector.span_name
            && span.name != *name
        {
            verdict.dropped_by_span_name += 1;
            if near(&span.name, name) && !near_names.contains(&span.name) {
                near_names.push(span.name.clone());
            }
            continue;
        }
        if let Some(route) = &selector.http_route {
            let got = span.attributes.str_attribute(HTTP_ROUTE);
            if got != Some(route.as_str()) {
                verdict.dropped_by_http_route += 1;
                if let Some(g) = got
                    && near(g, route)
                    && !near_routes.iter().any(|r| r == g)
                {
                    near_routes.push(g.to_string());
                }
                continue;
            }
        }
        if !matches_all(&span.attributes[..], &selector.attributes) {
            verdict.dropped_by_attributes += 1;
            continue;
        }
        if !matches_all(&seen.resource[..], &selector.resource) {
            verdict.dropped_by_resource += 1;
            continue;
        }
        verdict.selected += 1;
    }
    if verdict.spans == 0 || verdict.selected == verdict.spans {
        return;
    }
    let of = verdict.spans;
    if verdict.dropped_by_kind > 0 {
        findings.push(format!(
            "{} of {of} sampled spans of the service are not of the selected kind (they are {})",
            verdict.dropped_by_kind,
            kinds.join(", ")
        ));
    }
    let with_near = |head: String, near: &[String]| {
        if near.is_empty() {
            head
        } else {
            format!("{head}; near misses (case or a trailing slash): {near:?}")
        }
    };
    if verdict.dropped_by_span_name > 0 {
        findings.push(with_near(
            format!(
                "{} of {of} sampled spans have another span name than {:?}",
                verdict.dropped_by_span_name,
                selector.span_name.as_deref().unwrap_or_default()
            ),
            &near_names,
        ));
    }
    if verdict.dropped_by_http_route > 0 {
        findings.push(with_near(
            format!(
                "{} of {of} sampled spans have no http.route {:?}",
                verdict.dropped_by_http_route,
                selector.http_route.as_deref().unwrap_or_default()
            ),
            &near_routes,
        ));
    }
    for (n, what) in [
        (verdict.dropped_by_attributes, "an attribute"),
        (verdict.dropped_by_resource, "a resource"),
    ] {
        if n > 0 {
            findings.push(format!(
                "{n} of {of} sampled spans fail {what} matcher of the selector"
            ));
        }
    }
}
