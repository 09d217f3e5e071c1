//! The series slotel serves: which exist for a tenant, their labels, and one sample
//! of each at a minute.

use super::*;

/// Which window a series is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum WindowSpec {
    /// A fixed number of minutes.
    Fixed(u32),
    /// The SLO's own window as it stands at the sample's time (calendar windows grow).
    Slo,
}

/// One SLO, or one group of a grouped SLO, whose series are served.
#[derive(Debug, Clone)]
pub struct Target {
    /// The SLO.
    pub def: Arc<SloDef>,
    /// The group's labels (empty for the SLO as a whole).
    pub group: Vec<(String, String)>,
    /// The labels every series of the target carries.
    pub labels: Labels,
}

/// One series: its target, metric and window, and its labels.
#[derive(Debug, Clone)]
pub(super) struct SeriesId {
    pub(super) target: usize,
    pub(super) metric: Metric,
    pub(super) window: Option<WindowSpec>,
    /// The quantile of a latency series.
    pub(super) quantile: Option<f64>,
    pub(super) labels: Labels,
}

/// Targets whose minutes one storage pass reads (each holds its range's counts, 16 bytes
/// a minute, until its samples are computed).
pub(super) const READ_TOGETHER: usize = 32;

/// The targets of `tenant`: each SLO, and each group of the grouped ones.
pub fn targets(engine: &Engine, tenant: &str) -> Vec<Target> {
    targets_with(engine, tenant, &|name| engine.groups(tenant, name))
}

/// [`targets`] over `source`: on a compute node, with the groups every partition has.
pub async fn targets_of(source: &QueryEngine, tenant: &str) -> Result<Vec<Target>, PromError> {
    let Some(remote) = &source.remote else {
        return Ok(targets(&source.engine, tenant));
    };
    let groups = remote
        .groups(tenant)
        .await
        .map_err(PromError::Unavailable)?;
    Ok(targets_with(&source.engine, tenant, &|name| {
        groups.get(name).cloned().unwrap_or_default()
    }))
}

/// [`targets`] with each SLO's groups from `groups_of` (by SLO name).
fn targets_with(
    engine: &Engine,
    tenant: &str,
    groups_of: &dyn Fn(&str) -> Vec<crate::source::GroupLabels>,
) -> Vec<Target> {
    let mut out = Vec::new();
    for def in engine.slos(tenant) {
        let mut base = Labels::new();
        for (k, v) in &def.labels {
            if let Some(k) = label_name(k).filter(|k| !RESERVED.contains(&k.as_str())) {
                base.insert(k, v.clone());
            }
        }
        base.insert("slo".into(), def.name.clone());
        base.insert("service".into(), def.service.clone());
        base.insert("tenant".into(), def.tenant.clone());
        let groups = groups_of(&def.name);
        out.push(Target {
            def: Arc::clone(&def),
            group: Vec::new(),
            labels: base.clone(),
        });
        for group in groups {
            let mut labels = base.clone();
            for (k, v) in &group {
                if let Some(k) = label_name(k).filter(|k| !RESERVED.contains(&k.as_str())) {
                    labels.insert(k, v.clone());
                }
            }
            out.push(Target {
                def: Arc::clone(&def),
                group,
                labels,
            });
        }
    }
    out
}

/// The windows of a target: the standard alert windows, the SLO's own, and the SLO's
/// own again as [`SLO_WINDOW`].
pub(super) fn windows(def: &SloDef) -> Vec<(String, WindowSpec)> {
    let mut out: Vec<(String, WindowSpec)> = BURN_RATE_WINDOWS
        .iter()
        .map(|&w| (format_minutes(w), WindowSpec::Fixed(w)))
        .collect();
    let label = def.window.to_string();
    match out.iter_mut().find(|(l, _)| *l == label) {
        Some(slot) => slot.1 = WindowSpec::Slo,
        None => out.push((label, WindowSpec::Slo)),
    }
    out.push((SLO_WINDOW.to_string(), WindowSpec::Slo));
    out
}

/// Every series of `targets`.
pub(super) fn catalog(targets: &[Target]) -> Vec<SeriesId> {
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let wins = windows(&t.def);
        for metric in Metric::ALL {
            let mut push_quantile = |window: Option<(String, WindowSpec)>,
                                     quantile: Option<f64>| {
                let mut labels = t.labels.clone();
                labels.insert("__name__".into(), metric.name().into());
                let spec = window.map(|(label, spec)| {
                    labels.insert("window".into(), label);
                    spec
                });
                if let Some(q) = quantile {
                    labels.insert("quantile".into(), format_value(q));
                }
                out.push(SeriesId {
                    target: i,
                    metric,
                    window: spec,
                    quantile,
                    labels,
                });
            };
            if metric == Metric::LatencySeconds {
                // Histograms are kept per SLO, not per group.
                if t.def.has_durations() && t.group.is_empty() {
                    for w in LATENCY_WINDOWS {
                        for q in LATENCY_QUANTILES {
                            push_quantile(Some((format_minutes(w), WindowSpec::Fixed(w))), Some(q));
                        }
                    }
                }
                continue;
            }
            let mut push = |window| push_quantile(window, None);
            if metric.windowed() {
                for w in &wins {
                    push(Some(w.clone()));
                }
            } else if metric == Metric::BudgetRemaining {
                push(Some((t.def.window.to_string(), WindowSpec::Slo)));
            } else {
                push(None);
            }
        }
    }
    out
}

/// Whether `labels` satisfy the selector's name and matchers.
pub(super) fn selects(name: Option<&str>, matchers: &Matchers, labels: &Labels) -> bool {
    let get = |k: &str| labels.get(k).map_or("", String::as_str);
    if let Some(n) = name
        && get("__name__") != n
    {
        return false;
    }
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
    if matchers.or_matchers.is_empty() {
        all(&matchers.matchers)
    } else {
        all(&matchers.matchers) && matchers.or_matchers.iter().any(|g| all(g))
    }
}

/// The label sets of every series of `targets` and `side` that any of `selectors`
/// picks (all of them when there is none).
pub fn series_labels(
    targets: &[Target],
    side: &[SideSeries],
    selectors: &[VectorSelector],
) -> Vec<Labels> {
    catalog(targets)
        .into_iter()
        .map(|s| s.labels)
        .chain(side.iter().map(|s| s.labels.clone()))
        .filter(|labels| {
            selectors.is_empty()
                || selectors
                    .iter()
                    .any(|v| selects(v.name.as_deref(), &v.matchers, labels))
        })
        .collect()
}

/// The value of a series at minute `m` from the target's `series`.
pub(super) fn sample(
    def: &SloDef,
    s: &MinuteSeries,
    metric: Metric,
    window: Option<WindowSpec>,
    m: i64,
) -> Option<f64> {
    let ratio = def.objective_ratio();
    let counted = def.counted();
    let minutes = match window {
        Some(WindowSpec::Fixed(w)) => w,
        Some(WindowSpec::Slo) | None => def.window.minutes_at(m * NANOS_PER_MINUTE).max(1),
    };
    match metric {
        Metric::Objective => Some(ratio),
        Metric::EventsTotal => Some(s.cumulative(m).1 as f64),
        Metric::GoodEventsTotal => {
            let (x, t) = s.cumulative(m);
            Some(counted.tally(x, t).good as f64)
        }
        _ => {
            let (slotel_model::Tally { good, total, .. }, (gu, tu)) =
                window_units(def, s, m, minutes);
            let seconds = f64::from(minutes) * 60.0;
            match metric {
                Metric::Sli => math::sli(gu, tu),
                Metric::ErrorRatio => (tu > 0.0).then(|| (tu - gu) / tu),
                Metric::BurnRate => math::burn_rate(gu, tu, ratio),
                Metric::BudgetRemaining => math::budget_remaining(gu, tu, ratio),
                Metric::EventsRate => Some(total as f64 / seconds),
                Metric::GoodEventsRate => Some(good as f64 / seconds),
                _ => None,
            }
        }
    }
}

/// The latency series `ids` of SLO `name` at minutes `lo..=hi` (only the `wanted` ones
/// when given): each window's histogram slides over the minutes, one minute added and
/// one taken away per step.
pub(super) async fn latency_series(
    source: &QueryEngine,
    tenant: &str,
    name: &str,
    ids: &[&SeriesId],
    lo: i64,
    hi: i64,
    wanted: Option<&HashSet<i64>>,
) -> Vec<Fetched> {
    let width = |id: &SeriesId| match id.window {
        Some(WindowSpec::Fixed(w)) => i64::from(w),
        _ => 1,
    };
    let longest = ids.iter().map(|id| width(id)).max().unwrap_or(1);
    let Some(minutes) = source.latency(tenant, name, lo - longest + 1, hi).await else {
        return Vec::new();
    };
    let mut out: Vec<Fetched> = ids
        .iter()
        .map(|id| Fetched {
            labels: id.labels.clone(),
            lo,
            samples: vec![None; (hi - lo + 1) as usize],
        })
        .collect();
    let mut widths: Vec<i64> = ids.iter().map(|id| width(id)).collect();
    widths.sort_unstable();
    widths.dedup();
    for w in widths {
        let mut running = latency::histogram();
        for (_, h) in minutes.range(lo - w + 1..lo) {
            latency::merge(&mut running, h);
        }
        for m in lo..=hi {
            if let Some(h) = minutes.get(&m) {
                latency::merge(&mut running, h);
            }
            if let Some(h) = minutes.get(&(m - w)) {
                // `running` holds every count of `h`: this cannot fail.
                let _ = running.subtract(h);
            }
            if wanted.is_some_and(|set| !set.contains(&m)) {
                continue;
            }
            for (f, id) in out.iter_mut().zip(ids).filter(|(_, id)| width(id) == w) {
                f.samples[(m - lo) as usize] = id
                    .quantile
                    .and_then(|q| latency::quantile_seconds(&running, q));
            }
        }
    }
    out
}
