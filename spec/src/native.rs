//! slotel's native SLO format: validation of the raw documents into [`SloDef`]s.

use super::*;

/// Parses one native SLO document. `file` is only used in error messages.
pub fn parse_native(file: &Path, text: &str) -> std::result::Result<Vec<SloDef>, Vec<SpecError>> {
    let (defs, errors) = parse_with_origin(file, text);
    if errors.is_empty() {
        Ok(defs.into_iter().map(|(d, _)| d).collect())
    } else {
        Err(errors)
    }
}

/// The valid SLOs of a document, with their origins, and the problems of the others.
pub(crate) type Parsed = (Vec<(SloDef, Origin)>, Vec<SpecError>);

/// The valid SLOs of a document and the problems of the others, so that later checks
/// (duplicate names) can still look at the valid ones.
pub(crate) fn parse_with_origin(file: &Path, text: &str) -> Parsed {
    let raw: RawFile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let whole = yaml_error(file, &e);
            return match item_by_item(file, text) {
                // Every SLO reads on its own: the problem is outside them.
                Some((_, errors)) if errors.is_empty() => (Vec::new(), vec![whole]),
                Some(found) => found,
                None => (Vec::new(), vec![whole]),
            };
        }
    };
    let mut ctx = Ctx {
        file,
        errors: Vec::new(),
        line_offset: 0,
    };
    let mut out = Vec::with_capacity(raw.slos.len());
    for slo in raw.slos {
        if let Some(def) = validate(&mut ctx, slo) {
            out.push(def);
        }
    }
    (out, ctx.errors)
}

/// Reads a block list of SLOs one item at a time, so that a value of the wrong type in
/// one SLO does not hide the problems of the others: every SLO's problems, with their
/// positions in the file. `None` when the file has no block list under `slos:`.
fn item_by_item(file: &Path, text: &str) -> Option<Parsed> {
    let lines: Vec<&str> = text.lines().collect();
    let list = lines.iter().position(|l| l.trim_end() == "slos:")?;
    let first = (list + 1..lines.len()).find(|&i| {
        let t = lines[i].trim_start();
        !t.is_empty() && !t.starts_with('#')
    })?;
    let indent = lines[first].len() - lines[first].trim_start().len();
    if !lines[first][indent..].starts_with("- ") {
        return None;
    }
    // Item starts, and where the list ends (a line indented less than its items).
    let mut starts = Vec::new();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(first) {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let at = line.len() - t.len();
        if at < indent {
            end = i;
            break;
        }
        if at == indent && t.starts_with("- ") {
            starts.push(i);
        }
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let stop = starts.get(n + 1).copied().unwrap_or(end);
        // The item under a `slos:` line of its own: line 2 of `chunk` is line
        // `start + 1` (1-based) of the file.
        let chunk = format!("slos:\n{}\n", lines[start..stop].join("\n"));
        let offset = start as u64 - 1;
        match serde_saphyr::from_str::<RawFile>(&chunk) {
            Ok(raw) => {
                let mut ctx = Ctx {
                    file,
                    errors: Vec::new(),
                    line_offset: offset,
                };
                for slo in raw.slos {
                    if let Some(def) = validate(&mut ctx, slo) {
                        out.push(def);
                    }
                }
                errors.append(&mut ctx.errors);
            }
            Err(e) => {
                let mut err = yaml_error(file, &e);
                if err.line > 0 {
                    err.line += offset;
                }
                errors.push(err);
            }
        }
    }
    Some((out, errors))
}

pub(crate) fn slice_minutes<T>(ctx: &mut Ctx<'_>, at: &Spanned<T>, slice: Duration) -> u32 {
    let minutes = slice.as_secs() / 60;
    if !slice.as_nanos().is_multiple_of(60_000_000_000) || minutes == 0 || minutes > 1440 {
        ctx.err(
            at,
            format!("the slice {slice:?} must be whole minutes, from 1m to 1d"),
        );
        return 1;
    }
    minutes as u32
}

/// The model of a `window:` value.
pub(crate) fn window_of(ctx: &mut Ctx<'_>, window: &Spanned<RawWindow>) -> Window {
    match &window.value {
        RawWindow::Rolling(length) => {
            let length = *length;
            let minutes = length.as_secs() / 60;
            if length.as_nanos() % 60_000_000_000 != 0 || minutes == 0 {
                ctx.err(
                    window,
                    format!("window {length:?} must be a whole number of minutes, at least 1m"),
                );
            } else if minutes > u64::from(MAX_WINDOW_MINUTES) {
                ctx.err(window, "window is longer than the maximum of 400d");
            }
            Window::rolling(minutes as u32)
        }
        RawWindow::Calendar { unit, time_zone } => {
            let name = time_zone.as_deref().unwrap_or("UTC");
            match jiff::tz::TimeZone::get(name)
                .ok()
                .map(|tz| NamedTz::new(name, tz))
            {
                Some(tz) => Window::Calendar { unit: *unit, tz },
                None => {
                    ctx.err(
                        window,
                        format!(
                            "unknown time zone {name:?}: use an IANA name such as Europe/Berlin"
                        ),
                    );
                    Window::rolling(1)
                }
            }
        }
    }
}

/// The model of an `sli:` value; errors are reported at `at` when no part fits.
pub(crate) fn sli_of(ctx: &mut Ctx<'_>, at: &Spanned<String>, sli: RawSli) -> Option<Sli> {
    match (sli.spans, sli.logs, sli.metrics, sli.histogram) {
        (Some(spans), None, None, None) => {
            let good = spans.good.value.to_rule();
            if good.is_empty() {
                ctx.err(
                    &spans.good,
                    "good needs at least one rule: status, max_duration, http_status, not_http_status, all_of or any_of",
                );
            }
            let sel = spans.selector;
            Some(Sli::Spans {
                selector: SpanSelector {
                    kind: sel.span_kind,
                    span_name: sel.span_name,
                    http_route: sel.http_route,
                    attributes: sel.attributes.into_iter().collect(),
                    resource: sel.resource.into_iter().collect(),
                },
                good,
            })
        }
        (None, None, Some(m), None) => match (m.good, m.bad) {
            (Some(good), None) => Some(Sli::MetricRatio {
                good: Some(good.into_model()),
                bad: None,
                total: m.total.into_model(),
            }),
            (None, Some(bad)) => Some(Sli::MetricRatio {
                good: None,
                bad: Some(bad.into_model()),
                total: m.total.into_model(),
            }),
            _ => {
                ctx.err(
                    &m.total.metric,
                    "a metrics SLI needs exactly one of good or bad beside total",
                );
                None
            }
        },
        (None, None, None, Some(h)) => {
            let t = h.threshold.value.0;
            if t.is_zero() {
                ctx.err(&h.threshold, "the threshold must be above zero");
            }
            Some(Sli::MetricLatency {
                metric: MetricSelector {
                    name: h.metric.value,
                    prometheus: false,
                    attributes: h.attributes.into_iter().collect(),
                    job: None,
                },
                threshold_seconds: t.as_secs_f64(),
            })
        }
        (None, Some(logs), None, None) => match parse_severity(&logs.good.value.max_severity.value)
        {
            Some(max_severity) => Some(Sli::Logs {
                attributes: logs.selector.attributes.into_iter().collect(),
                max_severity,
            }),
            None => {
                ctx.err(
                    &logs.good.value.max_severity,
                    format!(
                        "unknown severity {:?}: use trace, debug, info, warn, error or fatal, optionally with 1-4 (e.g. warn2)",
                        logs.good.value.max_severity.value
                    ),
                );
                None
            }
        },
        _ => {
            ctx.err(
                at,
                "sli needs exactly one of spans, logs, metrics or histogram",
            );
            None
        }
    }
}

pub(crate) fn validate(ctx: &mut Ctx<'_>, raw: RawSlo) -> Option<(SloDef, Origin)> {
    let before = ctx.errors.len();
    if !is_valid_name(&raw.name.value) {
        ctx.err(
            &raw.name,
            format!(
                "invalid SLO name {:?}: use 1 to 128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit",
                raw.name.value
            ),
        );
    }
    let tenant = match &raw.tenant {
        Some(t) if !is_valid_name(&t.value) => {
            ctx.err(t, format!("invalid tenant {:?}", t.value));
            String::new()
        }
        Some(t) => t.value.clone(),
        None => slotel_model::DEFAULT_TENANT.to_string(),
    };
    if raw.service.value.trim().is_empty() {
        ctx.err(&raw.service, "service must not be empty");
    }
    let mut objectives = Vec::new();
    let check_target = |ctx: &mut Ctx<'_>, at: &Spanned<f64>| {
        let o = at.value;
        if !(o > 0.0 && o < 100.0) {
            ctx.err(
                at,
                format!(
                    "objective {o} is out of range: it is a percentage above 0 and below 100, e.g. 99.9"
                ),
            );
        }
        o
    };
    match (&raw.objective, &raw.objectives) {
        (Some(o), None) => objectives.push(Objective {
            name: "default".into(),
            target: check_target(ctx, o),
        }),
        (None, Some(list)) if !list.value.is_empty() => {
            for (i, o) in list.value.iter().enumerate() {
                let name = o
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("objective-{}", i + 1));
                if objectives.iter().any(|x: &Objective| x.name == name) {
                    ctx.err(&o.target, format!("objective {name:?} is named twice"));
                }
                objectives.push(Objective {
                    name,
                    target: check_target(ctx, &o.target),
                });
            }
        }
        _ => ctx.err(
            &raw.name,
            "an SLO needs objective: PERCENT, or objectives: a non-empty list of {name, target}",
        ),
    }
    let budgeting = match &raw.budgeting {
        None => Budgeting::Occurrences,
        Some(b) => match &b.value {
            RawBudgeting::Occurrences => Budgeting::Occurrences,
            RawBudgeting::Timeslices { slice, target } => {
                if !(*target > 0.0 && *target <= 100.0) {
                    ctx.err(
                        b,
                        format!("the slice target {target} is a percentage above 0, at most 100"),
                    );
                }
                Budgeting::Timeslices {
                    slice_minutes: slice_minutes(ctx, b, slice.0),
                    slice_target: target / 100.0,
                }
            }
            RawBudgeting::RatioTimeslices { slice } => Budgeting::RatioTimeslices {
                slice_minutes: slice_minutes(ctx, b, slice.0),
            },
        },
    };
    let window = window_of(ctx, &raw.window);
    let sli = sli_of(ctx, &raw.name, raw.sli);
    let group_by = raw
        .group_by
        .as_ref()
        .map(|g| g.value.clone())
        .unwrap_or_default();
    if let Some(g) = &raw.group_by
        && (g.value.is_empty() || g.value.len() > MAX_GROUP_BY)
    {
        ctx.err(
            g,
            format!("group_by takes 1 to {MAX_GROUP_BY} attribute names"),
        );
    }
    let freeze_below = raw.policy.as_ref().map_or(0.0, |p| p.freeze_below.value);
    if let Some(p) = &raw.policy
        && !(0.0..1.0).contains(&p.freeze_below.value)
    {
        ctx.err(
            &p.freeze_below,
            "freeze_below is the fraction of the budget left below which releases stop: from 0 up to 1",
        );
    }
    let mut alert_tiers = BTreeMap::new();
    for (name, t) in raw.alerting.iter().flat_map(|a| a.tiers.iter()) {
        let standard = |d: &Option<HumanDuration>| -> Option<Option<u32>> {
            match d {
                None => Some(None),
                Some(d) => {
                    let m = (d.0.as_secs() / 60) as u32;
                    (d.0.as_secs() % 60 == 0 && BURN_RATE_WINDOWS.contains(&m)).then_some(Some(m))
                }
            }
        };
        let (Some(long), Some(short)) = (standard(&t.value.long), standard(&t.value.short)) else {
            ctx.err(t, format!("the windows of tier {name:?} must be standard burn-rate windows: 5m, 30m, 1h, 2h, 6h, 1d or 3d"));
            continue;
        };
        let custom = !slotel_model::DEFAULT_TIER_NAMES.contains(&name.as_str());
        if custom
            && (long.is_none()
                || short.is_none()
                || t.value.factor.is_none()
                || t.value.severity.is_none())
        {
            ctx.err(t, format!("tier {name:?} is not a default tier ({}): it needs long, short, factor and severity", slotel_model::DEFAULT_TIER_NAMES.join(", ")));
            continue;
        }
        if t.value.factor.is_some_and(|f| f.is_nan() || f <= 0.0) {
            ctx.err(t, format!("the factor of tier {name:?} must be above 0"));
        }
        alert_tiers.insert(
            name.clone(),
            TierOverride {
                disabled: t.value.disabled,
                factor: t.value.factor,
                severity: t.value.severity,
                long_minutes: long,
                short_minutes: short,
                for_seconds: t.value.for_duration.map(|d| d.0.as_secs() as i64),
                labels: t.value.labels.clone(),
                annotations: t.value.annotations.clone(),
            },
        );
    }
    let mut budget_alerts = BudgetAlerts::default();
    if let Some(a) = &raw.alerting {
        budget_alerts.exhaustion_within_seconds = a.exhaustion.as_ref().map(|e| {
            (
                e.within.0.as_secs() as i64,
                e.severity.unwrap_or(Severity::Ticket),
            )
        });
        budget_alerts.exhausted = a
            .budget_exhausted
            .as_ref()
            .map(|b| b.severity.unwrap_or(Severity::Ticket));
        if let Some(n) = &a.no_data {
            let minutes = n.value.after.0.as_secs() / 60;
            if n.value.after.0.as_secs() % 60 != 0 || minutes == 0 || minutes > 4320 {
                ctx.err(n, "no_data.after must be whole minutes, from 1m to 3d");
            }
            budget_alerts.no_data_minutes =
                Some((minutes as u32, n.value.severity.unwrap_or(Severity::Ticket)));
        }
    }
    let max_groups = raw
        .max_groups
        .as_ref()
        .map_or(DEFAULT_MAX_GROUPS, |m| m.value);
    if let Some(m) = &raw.max_groups
        && !(1..=MAX_MAX_GROUPS).contains(&m.value)
    {
        ctx.err(
            m,
            format!("max_groups must be between 1 and {MAX_MAX_GROUPS}"),
        );
    }
    if ctx.errors.len() > before {
        return None;
    }
    let sli = sli?;
    let def = SloDef {
        name: raw.name.value.clone(),
        tenant,
        service: raw.service.value,
        description: raw.description,
        labels: raw.labels,
        annotations: raw.annotations,
        objective: objectives.first().map_or(0.0, |o| o.target),
        objectives,
        budgeting,
        window,
        min_events: raw.min_events,
        freeze_below,
        alert_tiers,
        budget_alerts,
        group_by,
        max_groups,
        sli,
    };
    let origin = Origin {
        file: ctx.file.to_path_buf(),
        line: raw.name.referenced.line(),
        column: raw.name.referenced.column(),
    };
    Some((def, origin))
}
