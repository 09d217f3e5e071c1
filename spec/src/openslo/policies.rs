//! OpenSLO alert policies and conditions as burn-rate tiers.

use super::*;

/// The tiers an alert policy sets, and whether it asks for a no-data alert (after its
/// longest lookback, at its highest severity).
pub(super) struct PolicyTiers {
    tiers: Vec<(String, TierOverride)>,
    no_data: Option<(u32, Severity)>,
}

/// The tier a `burnrate` alert condition describes: both its `lookbackWindow` and the
/// workbook's short window for it (a twelfth) must burn above `threshold`, for
/// `alertAfter`.
pub(super) fn condition_tier(
    ctx: &mut Ctx<'_>,
    name: &str,
    spec: &AlertConditionSpec,
) -> Option<(String, TierOverride)> {
    let before = ctx.errors.len();
    let c = &spec.condition;
    if c.kind.value != "burnrate" {
        ctx.err(
            &c.kind,
            format!(
                "condition kind {:?} is not supported: slotel evaluates burnrate conditions",
                c.kind.value
            ),
        );
    }
    if !matches!(c.op.value.as_str(), "gt" | "gte") {
        ctx.err(
            &c.op,
            format!(
                "op {:?}: a burn-rate alert fires above its threshold, use gt or gte",
                c.op.value
            ),
        );
    }
    if !(c.threshold.value > 0.0 && c.threshold.value.is_finite()) {
        ctx.err(&c.threshold, "threshold must be a burn rate above 0");
    }
    let long = match parse_duration(&c.lookback_window.value) {
        Ok(d) => {
            let minutes = (d.as_secs() / 60) as u32;
            match WINDOW_PAIRS.iter().find(|(l, _)| *l == minutes) {
                Some(pair) => Some(*pair),
                None => {
                    ctx.err(
                        &c.lookback_window,
                        format!(
                            "lookbackWindow {:?} is not one of 1h, 6h, 1d, 3d (the long windows slotel pairs with 5m, 30m, 2h, 6h)",
                            c.lookback_window.value
                        ),
                    );
                    None
                }
            }
        }
        Err(e) => {
            ctx.err(&c.lookback_window, e);
            None
        }
    };
    let for_seconds = match &c.alert_after {
        Some(a) => match parse_duration(&a.value) {
            Ok(d) => Some(d.as_secs() as i64),
            Err(e) => {
                ctx.err(a, e);
                None
            }
        },
        None => None,
    };
    let severity = match spec.severity.value.to_ascii_lowercase().as_str() {
        "page" | "critical" | "high" => Some(Severity::Page),
        "ticket" | "warning" | "medium" | "low" | "info" => Some(Severity::Ticket),
        other => {
            ctx.err(
                &spec.severity,
                format!(
                    "severity {other:?}: slotel pages on page, critical or high and opens tickets on ticket, warning, medium, low or info"
                ),
            );
            None
        }
    };
    if ctx.errors.len() > before {
        return None;
    }
    let (long_minutes, short_minutes) = long?;
    let mut annotations = BTreeMap::new();
    if let Some(d) = &spec.description {
        annotations.insert("condition".to_string(), d.clone());
    }
    Some((
        name.to_string(),
        TierOverride {
            disabled: false,
            factor: Some(c.threshold.value),
            severity,
            long_minutes: Some(long_minutes),
            short_minutes: Some(short_minutes),
            for_seconds,
            labels: BTreeMap::new(),
            annotations,
        },
    ))
}

/// The tiers of an alert policy; `None` when it or a condition it names is invalid.
pub(super) fn policy_tiers(
    ctx: &mut Ctx<'_>,
    spec: &AlertPolicySpec,
    conditions: &HashMap<String, Option<(String, TierOverride)>>,
    known_targets: &HashMap<String, String>,
) -> Option<PolicyTiers> {
    let mut tiers = Vec::new();
    let mut valid = true;
    for item in &spec.conditions {
        let tier = match (&item.condition_ref, &item.metadata, &item.spec) {
            (Some(r), None, None) => match conditions.get(&r.value) {
                Some(t) => t.clone(),
                None => {
                    ctx.err(
                        r,
                        format!("no AlertCondition named {:?} is defined", r.value),
                    );
                    None
                }
            },
            (None, Some(meta), Some(spec)) => condition_tier(ctx, &meta.name.value, spec),
            _ => {
                valid = false;
                ctx.errors.push(SpecError {
                    file: ctx.file.to_path_buf(),
                    line: ctx.line_offset + 1,
                    column: 1,
                    message: "an alert policy condition needs conditionRef, or metadata and spec"
                        .into(),
                });
                None
            }
        };
        match tier {
            Some(t) => tiers.push(t),
            None => valid = false,
        }
    }
    for (flag, what) in [
        (
            &spec.alert_when_resolved,
            "slotel always notifies when an alert resolves: alertWhenResolved: false is not supported",
        ),
        (
            &spec.alert_when_breaching,
            "slotel alerts while the budget burns: alertWhenBreaching: false would never alert (remove the policy instead)",
        ),
    ] {
        if let Some(f) = flag.as_ref().filter(|f| !f.value) {
            ctx.err(f, what);
            valid = false;
        }
    }
    if !valid {
        return None;
    }
    // The policy's description and targets travel with its alerts.
    let mut targets: Vec<String> = Vec::new();
    for t in &spec.notification_targets {
        match (&t.target_ref, &t.metadata) {
            (Some(r), _) => match known_targets.get(&r.value) {
                Some(shown) => targets.push(shown.clone()),
                None => {
                    ctx.err(
                        r,
                        format!("no AlertNotificationTarget named {:?} is defined", r.value),
                    );
                    return None;
                }
            },
            (None, Some(m)) => targets.push(m.name.value.clone()),
            (None, None) => {}
        }
    }
    for (_, tier) in &mut tiers {
        if let Some(d) = &spec.description {
            tier.annotations.insert("policy".into(), d.clone());
        }
        if !targets.is_empty() {
            tier.annotations
                .insert("notification_targets".into(), targets.join(","));
        }
    }
    let no_data = spec.alert_when_no_data.then(|| {
        let minutes = tiers
            .iter()
            .filter_map(|(_, t)| t.long_minutes)
            .max()
            .unwrap_or(60);
        let severity = if tiers
            .iter()
            .any(|(_, t)| t.severity == Some(Severity::Page))
        {
            Severity::Page
        } else {
            Severity::Ticket
        };
        (minutes, severity)
    });
    Some(PolicyTiers { tiers, no_data })
}

/// Replaces the default tiers of `def` by those of its alert policies (an SLO without
/// policies keeps the defaults).
pub(super) fn apply_policies(
    ctx: &mut Ctx<'_>,
    def: &mut SloDef,
    items: &[PolicyEntry],
    conditions: &HashMap<String, Option<(String, TierOverride)>>,
    policies: &HashMap<String, Option<PolicyTiers>>,
    targets: &HashMap<String, String>,
) {
    if items.is_empty() {
        return;
    }
    for name in DEFAULT_TIER_NAMES {
        def.alert_tiers.insert(
            name.to_string(),
            TierOverride {
                disabled: true,
                ..TierOverride::default()
            },
        );
    }
    let mut inline = Vec::new();
    for entry in items {
        let item = match entry {
            PolicyEntry::Item(item) => item,
            PolicyEntry::Name(name) => {
                match policies.get(name) {
                    Some(p) => apply(def, p.as_ref()),
                    None => ctx.errors.push(SpecError {
                        file: ctx.file.to_path_buf(),
                        line: ctx.line_offset + 1,
                        column: 1,
                        message: format!(
                            "SLO {}: no AlertPolicy named {name:?} is defined",
                            def.name
                        ),
                    }),
                }
                continue;
            }
        };
        let policy = match (&item.alert_policy_ref, &item.spec) {
            (Some(r), None) => match policies.get(&r.value) {
                Some(p) => p.as_ref(),
                None => {
                    ctx.err(r, format!("no AlertPolicy named {:?} is defined", r.value));
                    None
                }
            },
            (None, Some(spec)) => {
                inline.push(policy_tiers(ctx, spec, conditions, targets));
                inline.last().and_then(Option::as_ref)
            }
            _ => {
                ctx.errors.push(SpecError {
                    file: ctx.file.to_path_buf(),
                    line: ctx.line_offset + 1,
                    column: 1,
                    message: format!(
                        "SLO {}: an alert policy needs alertPolicyRef, or metadata and spec",
                        def.name
                    ),
                });
                None
            }
        };
        apply(def, policy);
    }
}

/// Gives `def` the tiers (and no-data alert) of `policy`.
fn apply(def: &mut SloDef, policy: Option<&PolicyTiers>) {
    if let Some(p) = policy {
        for (name, tier) in &p.tiers {
            def.alert_tiers.insert(name.clone(), tier.clone());
        }
        if let Some(no_data) = p.no_data {
            def.budget_alerts.no_data_minutes = Some(no_data);
        }
    }
}
