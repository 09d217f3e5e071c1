//! One OpenSLO `SLO` document, with its SLI and data source, as an [`SloDef`].

use super::*;

pub(super) fn check_source(ctx: &mut Ctx<'_>, s: &MetricSource, sources: &HashMap<String, String>) {
    let declared = match (&s.source_type, &s.metric_source_ref) {
        (Some(t), _) => Some((t.value.clone(), t)),
        (None, Some(r)) => match sources.get(&r.value) {
            Some(t) => Some((t.clone(), r)),
            None => {
                ctx.err(r, format!("no DataSource named {:?} is defined", r.value));
                None
            }
        },
        (None, None) => None,
    };
    if let Some((t, at)) = declared
        && t != "slotel"
    {
        ctx.err(at, format!("metric source type {t:?} is not supported: slotel computes from its own OTLP data, use type: slotel"));
    }
}

pub(super) fn translate_slo(
    ctx: &mut Ctx<'_>,
    sli_ctx: &mut Ctx<'_>,
    slo: &Doc<SloSpec>,
    sli_meta: &Meta,
    sli_spec: &SliSpec,
    sources: &HashMap<String, String>,
) -> Option<SloDef> {
    let before = ctx.errors.len() + sli_ctx.errors.len();
    let name = &slo.metadata.name;
    if !is_valid_name(&name.value) {
        ctx.err(name, format!("invalid SLO name {:?}", name.value));
    }
    let spec = &slo.spec;
    // Objectives: target (0-1) or targetPercent.
    let mut objectives = Vec::new();
    let mut threshold: Option<(f64, &Spanned<f64>)> = None;
    let mut slices: Option<(Option<f64>, Option<u32>)> = None;
    if spec.objectives.value.is_empty() {
        ctx.err(&spec.objectives, "objectives must not be empty");
    }
    for (i, o) in spec.objectives.value.iter().enumerate() {
        let target = match (&o.target, &o.target_percent) {
            (Some(t), None) => {
                if !(t.value > 0.0 && t.value < 1.0) {
                    ctx.err(
                        t,
                        format!(
                            "target {} must be above 0 and below 1 (e.g. 0.999)",
                            t.value
                        ),
                    );
                }
                t.value * 100.0
            }
            (None, Some(p)) => {
                if !(p.value > 0.0 && p.value < 100.0) {
                    ctx.err(
                        p,
                        format!("targetPercent {} must be above 0 and below 100", p.value),
                    );
                }
                p.value
            }
            _ => {
                ctx.err(
                    &spec.objectives,
                    format!(
                        "objective {} needs exactly one of target or targetPercent",
                        i + 1
                    ),
                );
                continue;
            }
        };
        objectives.push(Objective {
            name: o
                .display_name
                .clone()
                .unwrap_or_else(|| format!("objective-{}", i + 1)),
            target,
        });
        if let Some(v) = &o.value {
            // Seconds, as a duration: finite, not negative, and at most a year.
            if !(v.value.is_finite() && (0.0..=MAX_THRESHOLD_SECONDS).contains(&v.value)) {
                ctx.err(
                    v,
                    format!(
                        "the threshold value {} is not a duration: give seconds from 0 to {MAX_THRESHOLD_SECONDS}",
                        v.value
                    ),
                );
            }
            match &o.op {
                Some(op) if op.value == "lte" => {}
                Some(op) => ctx.err(op, format!("op {:?} is not supported: slotel counts durations at or below the value, use lte", op.value)),
                None => ctx.err(v, "a threshold value needs op: lte"),
            }
            match threshold {
                Some((t, _)) if t != v.value => ctx.err(
                    v,
                    "objectives of one SLO must share the threshold value (one SLI per SLO)",
                ),
                _ => threshold = Some((v.value, v)),
            }
        }
        let this = (
            o.time_slice_target.as_ref().map(|t| t.value),
            o.time_slice_window
                .as_ref()
                .map(|w| match parse_duration(&w.value) {
                    Ok(d) => slice_minutes(ctx, w, d),
                    Err(e) => {
                        ctx.err(w, e);
                        1
                    }
                }),
        );
        match &slices {
            Some(prev) if *prev != this => ctx.err(
                &spec.objectives,
                "objectives of one SLO must share timeSliceTarget and timeSliceWindow",
            ),
            _ => slices = Some(this),
        }
    }
    let (slice_target, slice_window) = slices.unwrap_or((None, None));
    let budgeting = match spec.budgeting_method.value.as_str() {
        "Occurrences" => Budgeting::Occurrences,
        "Timeslices" => match (slice_target, slice_window) {
            (Some(t), Some(w)) if t > 0.0 && t <= 1.0 => Budgeting::Timeslices {
                slice_minutes: w,
                slice_target: t,
            },
            _ => {
                ctx.err(&spec.budgeting_method, "Timeslices needs timeSliceTarget (above 0, at most 1) and timeSliceWindow on the objectives");
                Budgeting::Occurrences
            }
        },
        "RatioTimeslices" => match slice_window {
            Some(w) => Budgeting::RatioTimeslices { slice_minutes: w },
            None => {
                ctx.err(
                    &spec.budgeting_method,
                    "RatioTimeslices needs timeSliceWindow on the objectives",
                );
                Budgeting::Occurrences
            }
        },
        other => {
            ctx.err(&spec.budgeting_method, format!("unknown budgetingMethod {other:?}: use Occurrences, Timeslices or RatioTimeslices"));
            Budgeting::Occurrences
        }
    };
    // Time window: exactly one.
    let window = match spec.time_window.value.as_slice() {
        [tw] => time_window(ctx, tw),
        _ => {
            ctx.err(&spec.time_window, "timeWindow must hold exactly one window");
            Window::rolling(1)
        }
    };
    // The SLI.
    let sli = sli_of_spec(
        sli_ctx,
        &sli_meta.name,
        sli_spec,
        threshold.map(|(v, _)| v),
        sources,
    );
    if threshold.is_none() && sli_spec.threshold_metric.is_some() {
        ctx.err(
            &spec.objectives,
            "a thresholdMetric SLI needs op: lte and value (seconds) on the objectives",
        );
    }
    if ctx.errors.len() + sli_ctx.errors.len() > before {
        return None;
    }
    let labels: BTreeMap<String, String> = slo
        .metadata
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.joined()))
        .collect();
    let mut annotations = slo.metadata.annotations.clone();
    let tenant = annotations
        .remove("slotel.tenant")
        .unwrap_or_else(|| slotel_model::DEFAULT_TENANT.to_string());
    if let Some(d) = &slo.metadata.display_name {
        annotations.insert("display_name".into(), d.clone());
    }
    Some(SloDef {
        name: name.value.clone(),
        tenant,
        service: spec.service.value.clone(),
        description: spec.description.clone(),
        labels,
        annotations,
        objective: objectives.first().map_or(0.0, |o| o.target),
        objectives,
        budgeting,
        window,
        min_events: slotel_model::DEFAULT_MIN_EVENTS,
        freeze_below: 0.0,
        alert_tiers: Default::default(),
        budget_alerts: Default::default(),
        group_by: Vec::new(),
        max_groups: crate::DEFAULT_MAX_GROUPS,
        sli: sli?,
    })
}

pub(super) fn time_window(ctx: &mut Ctx<'_>, tw: &TimeWindow) -> Window {
    let d = tw.duration.value.trim();
    if tw.is_rolling {
        // OpenSLO durations: m, h, d, w (M, Q and Y are calendar units).
        let normalized = match d.strip_suffix('w') {
            Some(n) => n
                .parse::<u64>()
                .map(|n| format!("{}d", n * 7))
                .unwrap_or_default(),
            None => d.to_string(),
        };
        let window = match parse_duration(&normalized) {
            Ok(len) => RawWindow::Rolling(len),
            Err(e) => {
                ctx.err(&tw.duration, e);
                return Window::rolling(1);
            }
        };
        return window_of(ctx, &respan(&tw.duration, window));
    }
    let unit = match d {
        "1w" => CalendarUnit::Week,
        "1M" => CalendarUnit::Month,
        "1Q" => CalendarUnit::Quarter,
        other => {
            ctx.err(
                &tw.duration,
                format!("calendar window {other:?} is not supported: use 1w, 1M or 1Q"),
            );
            return Window::rolling(1);
        }
    };
    let time_zone = tw.calendar.as_ref().and_then(|c| c.time_zone.clone());
    if let Some(start) = tw.calendar.as_ref().and_then(|c| c.start_time.as_ref())
        && let Err(why) = period_start(&start.value, unit)
    {
        ctx.err(start, why);
    }
    window_of(
        ctx,
        &respan(&tw.duration, RawWindow::Calendar { unit, time_zone }),
    )
}

/// Checks that `startTime` (`YYYY-MM-DD HH:MM:SS`) starts a period of `unit`: slotel's
/// calendar periods are the calendar's own (weeks from Monday, months, quarters), so a
/// start elsewhere would shift every period, which it cannot do.
fn period_start(start: &str, unit: CalendarUnit) -> Result<(), String> {
    let t = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", start.trim())
        .map_err(|_| format!("startTime {start:?} is not a time as YYYY-MM-DD HH:MM:SS"))?;
    let midnight = t.time() == jiff::civil::Time::midnight();
    let (ok, what) = match unit {
        CalendarUnit::Week => (
            midnight && t.weekday() == jiff::civil::Weekday::Monday,
            "a Monday at 00:00:00",
        ),
        CalendarUnit::Month => (midnight && t.day() == 1, "the 1st of a month at 00:00:00"),
        CalendarUnit::Quarter => (
            midnight && t.day() == 1 && matches!(t.month(), 1 | 4 | 7 | 10),
            "the 1st of January, April, July or October at 00:00:00",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "startTime {start:?}: slotel's calendar periods start at the calendar's own boundaries, so the start must be {what}"
        ))
    }
}

/// `value` carrying the position of `at`.
pub(super) fn respan<T, U>(at: &Spanned<T>, value: U) -> Spanned<U> {
    Spanned::new(value, at.referenced, at.defined)
}

/// The largest threshold value (seconds) an objective may give: a year.
const MAX_THRESHOLD_SECONDS: f64 = 365.0 * 86_400.0;

pub(super) fn sli_of_spec(
    ctx: &mut Ctx<'_>,
    name: &Spanned<String>,
    spec: &SliSpec,
    threshold: Option<f64>,
    sources: &HashMap<String, String>,
) -> Option<Sli> {
    let raw = match (&spec.ratio_metric, &spec.threshold_metric) {
        (Some(r), None) => {
            if let Some(raw) = &r.raw {
                let kind = r
                    .raw_type
                    .as_ref()
                    .map_or(String::new(), |t| format!(" (rawType: {})", t.value));
                ctx.err(
                    raw,
                    format!("ratioMetric.raw is a ratio computed elsewhere{kind}; slotel counts the events itself: give good (or bad) and total"),
                );
                return None;
            }
            let Some(total) = &r.total else {
                ctx.err(name, "ratioMetric needs total, and good or bad");
                return None;
            };
            for s in [Some(total), r.good.as_ref(), r.bad.as_ref()]
                .into_iter()
                .flatten()
            {
                check_source(ctx, &s.metric_source, sources);
            }
            if r.counter == Some(false) {
                ctx.err(
                    name,
                    "ratioMetric with counter: false is not supported: slotel counts events",
                );
            }
            ratio(ctx, name, r)?
        }
        (None, Some(t)) => {
            check_source(ctx, &t.metric_source, sources);
            let spec = &t.metric_source.spec;
            // Refused above when out of range; clamped so that a refused file's checks
            // go on without a panic.
            let threshold = threshold
                .filter(|t| t.is_finite())
                .unwrap_or(0.0)
                .clamp(0.0, MAX_THRESHOLD_SECONDS);
            if let Some(h) = &spec.value.histogram {
                RawSli {
                    histogram: Some(RawHistogram {
                        metric: h.clone(),
                        attributes: spec.value.attributes.clone(),
                        threshold: respan(
                            h,
                            HumanDuration(std::time::Duration::from_secs_f64(threshold)),
                        ),
                    }),
                    ..RawSli::default()
                }
            } else if let Some(spans) = &spec.value.spans {
                let good = RawGood {
                    max_duration: Some(HumanDuration(std::time::Duration::from_secs_f64(
                        threshold,
                    ))),
                    ..RawGood::default()
                };
                RawSli {
                    spans: Some(RawSpans {
                        selector: spans.selector.clone().unwrap_or_default(),
                        good: respan(spec, good),
                    }),
                    ..RawSli::default()
                }
            } else {
                ctx.err(
                    spec,
                    "a thresholdMetric source selects spans or a histogram",
                );
                return None;
            }
        }
        _ => {
            ctx.err(
                name,
                "an SLI needs exactly one of ratioMetric or thresholdMetric",
            );
            return None;
        }
    };
    sli_of(ctx, name, raw)
}

pub(super) fn ratio(ctx: &mut Ctx<'_>, name: &Spanned<String>, r: &RatioMetric) -> Option<RawSli> {
    let total = &r.total.as_ref()?.metric_source.spec;
    let (good, bad) = (
        r.good.as_ref().map(|g| &g.metric_source.spec),
        r.bad.as_ref().map(|b| &b.metric_source.spec),
    );
    if good.is_some() == bad.is_some() {
        ctx.err(
            name,
            "ratioMetric needs exactly one of good or bad beside total",
        );
        return None;
    }
    if let Some(spans) = &total.value.spans {
        let Some(good) = good.and_then(|g| g.value.spans.as_ref().map(|s| (g, s))) else {
            ctx.err(total, "a span ratio needs good.metricSource.spec.spans with a good rule (bad is not supported for spans)");
            return None;
        };
        if good.1.selector.is_some() && good.1.selector != spans.selector {
            ctx.err(
                good.0,
                "good must select the same spans as total; put what makes a span good under good:",
            );
        }
        let Some(rule) = &good.1.good else {
            ctx.err(good.0, "good.spans needs a good rule");
            return None;
        };
        return Some(RawSli {
            spans: Some(RawSpans {
                selector: spans.selector.clone().unwrap_or_default(),
                good: rule.clone(),
            }),
            ..RawSli::default()
        });
    }
    if let Some(logs) = &total.value.logs {
        let Some(rule) = good
            .and_then(|g| g.value.logs.as_ref())
            .and_then(|l| l.good.clone())
        else {
            ctx.err(
                total,
                "a log ratio needs good.metricSource.spec.logs with a good rule",
            );
            return None;
        };
        return Some(RawSli {
            logs: Some(RawLogs {
                selector: logs.selector.clone().unwrap_or_default(),
                good: rule,
            }),
            ..RawSli::default()
        });
    }
    let selector = |s: &Spanned<SourceSpec>| -> Option<RawMetricSelector> {
        s.value.metric.clone().map(|metric| RawMetricSelector {
            metric,
            prometheus: s.value.prometheus,
            job: s.value.job.clone(),
            attributes: s.value.attributes.clone(),
        })
    };
    match (selector(total), good.map(selector), bad.map(selector)) {
        (Some(total), Some(Some(good)), None) => Some(RawSli {
            metrics: Some(RawMetricRatio {
                good: Some(good),
                bad: None,
                total,
            }),
            ..RawSli::default()
        }),
        (Some(total), None, Some(Some(bad))) => Some(RawSli {
            metrics: Some(RawMetricRatio {
                good: None,
                bad: Some(bad),
                total,
            }),
            ..RawSli::default()
        }),
        _ => {
            ctx.err(total, "a metricSource spec selects spans, logs or a metric (all three of total, good/bad alike)");
            None
        }
    }
}
