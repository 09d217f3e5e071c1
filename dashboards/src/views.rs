//! The dashboards: executive, on-call, overview, and one detail dashboard per service
//! (or per SLO), every query on slotel's Prometheus-compatible series.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use slotel_model::SloDef;
use slotel_model::catalog::{ALERT_METRIC, Metric, SLO_WINDOW, TIER_STATE_METRIC};
use slotel_model::tiers_for;
use slotel_model::{BURN_RATE_WINDOWS, GoodRule, Sli, format_minutes};

use crate::grafana::{Board, Dashboard, Panel, Query, label_variable, thresholds, uid};
use crate::{Detail, Options};

/// The burn-rate windows every SLO has a series for, shortest first.
// The series the dashboards read, by their catalog names.
const OBJECTIVE: &str = Metric::Objective.name();
const SLI: &str = Metric::Sli.name();
const BUDGET: &str = Metric::BudgetRemaining.name();
const BURN_RATE: &str = Metric::BurnRate.name();
const EVENTS_RATE: &str = Metric::EventsRate.name();
const GOOD_EVENTS_RATE: &str = Metric::GoodEventsRate.name();
const LATENCY: &str = Metric::LatencySeconds.name();
const ALERT: &str = ALERT_METRIC;
const TIER_STATE: &str = TIER_STATE_METRIC;

/// The standard burn-rate windows as one regular expression (`5m|30m|…|3d`).
fn burn_windows() -> String {
    BURN_RATE_WINDOWS.map(format_minutes).join("|")
}

/// The Prometheus label name of an attribute (`http.route` → `http_route`), as the
/// series carry it.
pub fn label_name(s: &str) -> String {
    slotel_model::names::prometheus_label(s)
}

/// A PromQL string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The group label names of `slos`, sorted.
fn group_labels<'a>(slos: impl IntoIterator<Item = &'a SloDef>) -> BTreeSet<String> {
    slos.into_iter()
        .flat_map(|d| d.group_by.iter().map(|g| label_name(g)))
        .collect()
}

/// Matchers that keep the SLO-level series of `slos`: every group label empty.
fn whole_slo(groups: &BTreeSet<String>) -> String {
    groups.iter().map(|g| format!(", {g}=\"\"")).collect()
}

/// `{service=~"$service", slo=~"$slo"}` and the group exclusion, without braces.
fn filtered(groups: &BTreeSet<String>) -> String {
    format!("service=~\"$service\", slo=~\"$slo\"{}", whole_slo(groups))
}

/// The `service` and `slo` variables of the dashboards over many SLOs.
fn service_and_slo_variables() -> Vec<Value> {
    vec![
        label_variable(
            "service",
            "service",
            OBJECTIVE,
            ".*",
            "The services whose SLOs are shown.",
        ),
        label_variable(
            "slo",
            "slo",
            &format!("{OBJECTIVE}{{service=~\"$service\"}}"),
            ".*",
            "The SLOs shown, among those of the chosen services.",
        ),
    ]
}

/// A dashboard over many SLOs, tagged `slotel` and `slo`, with the `service` and `slo`
/// variables.
fn slo_set_dashboard(
    name: &str,
    title: &str,
    description: &str,
    from: String,
    refresh: &str,
    board: Board,
    opts: &Options,
) -> Value {
    Dashboard {
        uid: uid(&[name]),
        title: title.into(),
        description: description.into(),
        tags: vec!["slotel".into(), "slo".into()],
        from,
        refresh: refresh.into(),
        variables: service_and_slo_variables(),
        board,
    }
    .to_json(&opts.datasource_name)
}

/// Budget remaining: red when spent, orange when a quarter or less is left.
fn budget_thresholds() -> Value {
    thresholds("red", &[(0.0, "orange"), (0.25, "yellow"), (0.5, "green")])
}

/// Burn rate: green below 1 (the budget lasts the window), red from 14.4 (the fast page).
fn burn_thresholds() -> Value {
    thresholds("green", &[(1.0, "yellow"), (6.0, "orange"), (14.4, "red")])
}

/// A table joining instant queries by SLO: one row per SLO, one column per query.
fn slo_table(
    title: &str,
    description: &str,
    columns: &[(&str, String)],
    sort_by: &str,
    desc: bool,
) -> Panel {
    let rename: serde_json::Map<String, Value> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let key = if columns.len() == 1 {
                "Value".to_string()
            } else {
                format!("Value #{}", (b'A' + i as u8) as char)
            };
            (key, json!(name))
        })
        .collect();
    Panel::new("table", title, description)
        .queries(
            columns
                .iter()
                .map(|(_, expr)| Query::instant(expr.clone(), ""))
                .collect(),
        )
        .transformations(vec![
            json!({ "id": "merge", "options": {} }),
            json!({ "id": "organize", "options": {
                "excludeByName": { "Time": true, "tenant": true },
                "renameByName": rename,
                "indexByName": {},
            }}),
        ])
        .options(json!({
            "showHeader": true,
            "cellHeight": "sm",
            "sortBy": [{ "displayName": sort_by, "desc": desc }],
        }))
}

/// The overview: every SLO with objective, SLI, budget left, fastest burn and alerts,
/// sorted by budget left.
pub fn overview(slos: &[SloDef], opts: &Options) -> Value {
    let f = filtered(&group_labels(slos));
    let by = "tenant, service, slo";
    let mut board = Board::new();
    board.row("Summary");
    board.add(
        Panel::new("stat", "SLOs", "How many SLOs the chosen services have.")
            .queries(vec![Query::instant(
                format!("count({OBJECTIVE}{{{f}}})"),
                "SLOs",
            )])
            .size(6, 4),
    );
    board.add(
        Panel::new(
            "stat",
            "Meeting their objective",
            "SLOs whose SLI over their own window is at or above the objective now.",
        )
        .queries(vec![Query::instant(
            format!(
                "count({SLI}{{{f}, window=\"{SLO_WINDOW}\"}} >= ignoring(window) {OBJECTIVE}{{{f}}}) or vector(0)"
            ),
            "meeting",
        )])
        .size(6, 4),
    );
    board.add(
        Panel::new(
            "stat",
            "Budget spent",
            "SLOs with no error budget left over their window: every further error breaks the objective. Red above zero.",
        )
        .queries(vec![Query::instant(
            format!("count({BUDGET}{{{f}}} <= 0) or vector(0)"),
            "spent",
        )])
        .thresholds(thresholds("green", &[(1.0, "red")]))
        .size(6, 4),
    );
    board.add(
        Panel::new(
            "stat",
            "Alerts firing",
            "Burn-rate and budget alerts firing now for the chosen SLOs. Red above zero.",
        )
        .queries(vec![Query::instant(
            format!("count({ALERT}{{service=~\"$service\", slo=~\"$slo\", alertstate=\"firing\"}}) or vector(0)"),
            "firing",
        )])
        .thresholds(thresholds("green", &[(1.0, "red")]))
        .size(6, 4),
    );
    board.row("Every SLO");
    board.add(
        slo_table(
            "SLOs by budget remaining",
            "One row per SLO, the least budget left first. SLI is over the SLO's own window; budget remaining is the fraction of the window's error budget not yet spent (negative when overspent); fastest burn is the highest burn rate over the 5m to 3d windows (1 spends the budget exactly over the window); alerts counts the alerts firing.",
            &[
                ("Objective", format!("max by ({by}) ({OBJECTIVE}{{{f}}})")),
                ("SLI", format!("max by ({by}) ({SLI}{{{f}, window=\"{SLO_WINDOW}\"}})")),
                (
                    "Budget remaining",
                    format!("max by ({by}) ({BUDGET}{{{f}}})"),
                ),
                (
                    "Fastest burn",
                    format!("max by ({by}) ({BURN_RATE}{{{f}, window=~\"{}\"}})", burn_windows()),
                ),
                (
                    "Alerts firing",
                    format!(
                        "count by ({by}) ({ALERT}{{service=~\"$service\", slo=~\"$slo\", alertstate=\"firing\"}}) or 0 * count by ({by}) ({OBJECTIVE}{{{f}}})"
                    ),
                ),
            ],
            "Budget remaining",
            false,
        )
        .unit("percentunit")
        .decimals(4)
        .thresholds(budget_thresholds())
        .size(24, 10),
    );
    board.add(
        Panel::new(
            "timeseries",
            "Error budget remaining",
            "Each SLO's budget left over its window, minute by minute: a falling line is budget being spent; below zero the objective is broken.",
        )
        .queries(vec![Query::range(
            format!("{BUDGET}{{{f}}}"),
            "{{slo}}",
        )])
        .unit("percentunit")
        .thresholds(budget_thresholds())
        .threshold_lines()
        .size(24, 9),
    );
    slo_set_dashboard(
        "overview",
        "SLO overview",
        "Every SLO slotel computes: objective, SLI, error budget and burn.",
        format!("now-{}", longest_window(slos)),
        "1m",
        board,
        opts,
    )
}

/// The longest SLO window of `slos`, for the time range.
fn longest_window(slos: &[SloDef]) -> String {
    let minutes = slos
        .iter()
        .map(|d| d.window.max_minutes())
        .max()
        .unwrap_or(30 * 1440);
    format_minutes(minutes)
}

/// The executive view: compliance and budget per team and service, SLOs at risk, trends.
pub fn executive(slos: &[SloDef], opts: &Options) -> Value {
    let f = filtered(&group_labels(slos));
    let team = label_name(&opts.team_label);
    let meeting = |by: &str| {
        format!(
            "count by ({by}) ({SLI}{{{f}, window=\"{SLO_WINDOW}\"}} >= ignoring(window) {OBJECTIVE}{{{f}}}) or 0 * count by ({by}) ({OBJECTIVE}{{{f}}})"
        )
    };
    let mut board = Board::new();
    board.row("Compliance");
    board.add(
        Panel::new(
            "stat",
            "SLO compliance",
            "The share of SLOs whose SLI over their own window meets the objective now. 100% means every promise is kept.",
        )
        .queries(vec![Query::instant(
            format!(
                "(count({SLI}{{{f}, window=\"{SLO_WINDOW}\"}} >= ignoring(window) {OBJECTIVE}{{{f}}}) or vector(0)) / count({OBJECTIVE}{{{f}}})"
            ),
            "compliance",
        )])
        .unit("percentunit")
        .thresholds(thresholds("red", &[(0.9, "orange"), (0.99, "green")]))
        .size(8, 6),
    );
    board.add(
        Panel::new(
            "bargauge",
            format!("Compliance by {team}"),
            format!(
                "For each value of the SLO label `{}`, the share of its SLOs meeting their objective now. SLOs without the label count under an empty name.",
                opts.team_label
            ),
        )
        .queries(vec![Query::instant(
            format!("({}) / count by ({team}) ({OBJECTIVE}{{{f}}})", meeting(&team)),
            format!("{{{{{team}}}}}"),
        )])
        .unit("percentunit")
        .thresholds(thresholds("red", &[(0.9, "orange"), (0.99, "green")]))
        .size(8, 6),
    );
    board.add(
        Panel::new(
            "bargauge",
            "Budget consumed by service",
            "For each service, the most error budget any of its SLOs has spent over its window: 100% or more means an objective is broken.",
        )
        .queries(vec![Query::instant(
            format!("max by (service) (1 - {BUDGET}{{{f}}})"),
            "{{service}}",
        )])
        .unit("percentunit")
        .thresholds(thresholds("green", &[(0.5, "yellow"), (0.75, "orange"), (1.0, "red")]))
        .size(8, 6),
    );
    board.row("At risk");
    board.add(
        Panel::new(
            "table",
            "SLOs at risk",
            "SLOs with less than a quarter of their error budget left (negative: overspent), least first. An empty table means no SLO is at risk.",
        )
        .queries(vec![Query::instant(
            format!("sort({BUDGET}{{{f}}} < 0.25)"),
            "",
        )])
        .transformations(vec![json!({ "id": "organize", "options": {
            "excludeByName": { "Time": true, "tenant": true, "__name__": true },
            "renameByName": { "Value": "Budget remaining" },
            "indexByName": {},
        }})])
        .unit("percentunit")
        .thresholds(budget_thresholds())
        .size(24, 7),
    );
    board.row("Trends");
    board.add(
        Panel::new(
            "timeseries",
            format!("Worst budget remaining by {team}"),
            format!(
                "For each value of `{}`, the least budget left among its SLOs over the dashboard's range: the trend a team's reliability takes.",
                opts.team_label
            ),
        )
        .queries(vec![Query::range(
            format!("min by ({team}) ({BUDGET}{{{f}}})"),
            format!("{{{{{team}}}}}"),
        )])
        .unit("percentunit")
        .thresholds(budget_thresholds())
        .threshold_lines()
        .size(12, 9),
    );
    board.add(
        Panel::new(
            "timeseries",
            "SLI over each SLO's window",
            "Each SLO's SLI over its own window (30 days, a month, …) minute by minute; compare with the objectives in the overview.",
        )
        .queries(vec![Query::range(
            format!("{SLI}{{{f}, window=\"{SLO_WINDOW}\"}}"),
            "{{slo}}",
        )])
        .unit("percentunit")
        .decimals(4)
        .size(12, 9),
    );
    slo_set_dashboard(
        "executive",
        "SLO executive summary",
        "Reliability by team and service: compliance, budget consumption, risks and trends.",
        format!("now-{}", longest_window(slos)),
        "5m",
        board,
        opts,
    )
}

/// The on-call view: what burns now, the alerts, and slotel's own ingestion health.
pub fn oncall(slos: &[SloDef], opts: &Options) -> Value {
    let f = filtered(&group_labels(slos));
    let by = "tenant, service, slo";
    let mut board = Board::new();
    board.row("Burning now");
    board.add(
        slo_table(
            "SLOs burning fastest",
            "One row per SLO, the fastest 1h burn first. A burn rate of 1 spends the error budget exactly over the SLO window; the default pages fire when both 1h and 5m exceed 14.4, or both 6h and 30m exceed 6 (for a 30-day window).",
            &[
                ("5m", format!("max by ({by}) ({BURN_RATE}{{{f}, window=\"5m\"}})")),
                ("1h", format!("max by ({by}) ({BURN_RATE}{{{f}, window=\"1h\"}})")),
                ("6h", format!("max by ({by}) ({BURN_RATE}{{{f}, window=\"6h\"}})")),
                ("3d", format!("max by ({by}) ({BURN_RATE}{{{f}, window=\"3d\"}})")),
            ],
            "1h",
            true,
        )
        .decimals(2)
        .thresholds(burn_thresholds())
        .size(12, 9),
    );
    board.add(
        Panel::new(
            "table",
            "Active and pending alerts",
            "Alerts slotel holds now: pending ones wait for their `for` duration, firing ones have been sent to the receivers. `burnrate_tier` names the tier (page-fast, page-slow, ticket-fast, ticket-slow). Empty when all is quiet.",
        )
        .queries(vec![Query::instant(
            format!("{ALERT}{{service=~\"$service\", slo=~\"$slo\"}}"),
            "",
        )])
        .transformations(vec![json!({ "id": "organize", "options": {
            "excludeByName": { "Time": true, "Value": true, "__name__": true, "tenant": true },
            "renameByName": {},
            "indexByName": { "alertstate": 0, "severity": 1, "slo": 2, "burnrate_tier": 3, "alertname": 4 },
        }})])
        .size(12, 9),
    );
    board.add(
        Panel::new(
            "timeseries",
            "Burn rate over 1 hour",
            "Each SLO's burn rate over the last hour, minute by minute. Above the red line (14.4) a 30-day SLO spends 2% of its budget per hour: the fast page.",
        )
        .queries(vec![Query::range(
            format!("{BURN_RATE}{{{f}, window=\"1h\"}}"),
            "{{slo}}",
        )])
        .thresholds(burn_thresholds())
        .threshold_lines()
        .size(24, 8),
    );
    board.row("slotel ingestion health");
    let health = [
        (
            "Items accepted per second",
            "Spans, data points and log records slotel accepted, per second over 5 minutes. A drop to zero while services run means the SLOs are blind.",
            "sum(rate(slotel_ingest_items_accepted_total[5m])) or vector(0)",
            "reqps",
        ),
        (
            "Items refused per second",
            "Items refused (invalid, too large, log full, …) per second over 5 minutes; anything above zero is data the SLIs do not see.",
            "sum(rate(slotel_ingest_items_refused_total[5m])) or vector(0)",
            "reqps",
        ),
        (
            "Export requests refused per second",
            "OTLP export requests answered with an error (429, 503, 400, …) per second over 5 minutes: exporters retry the retryable ones.",
            "sum(rate(slotel_ingest_requests_total{outcome!~\"ok|partial\"}[5m])) or vector(0)",
            "reqps",
        ),
        (
            "Write-ahead log fill",
            "The share of the write-ahead log's capacity (wal.max_bytes) holding records no checkpoint has released yet. Near 100% slotel refuses exports with 429 until a checkpoint releases the log: storage is failing or slow.",
            "slotel_wal_bytes / slotel_wal_capacity_bytes",
            "percentunit",
        ),
        (
            "Ingestion lag",
            "How far the newest event counted lies behind now: exporters' batching delay in normal times; growing steadily when data stops arriving.",
            "slotel_engine_newest_event_age_seconds",
            "s",
        ),
        (
            "Events dropped for their time",
            "Events per second not counted because they were older than their SLO's horizon or dated in the future (clock skew).",
            "(sum(rate(slotel_engine_events_too_old_total[5m])) + sum(rate(slotel_engine_events_in_future_total[5m]))) or vector(0)",
            "reqps",
        ),
        (
            "Notification failures",
            "Notifications that failed after every retry, per second over 5 minutes: pages that did not reach a receiver.",
            "sum(rate(slotel_notifications_failed_total[5m])) or vector(0)",
            "reqps",
        ),
        (
            "Storage write errors",
            "Parquet partition writes that failed in the last hour (their rows stay in memory and are retried).",
            "sum(increase(slotel_storage_write_errors_total[1h])) or vector(0)",
            "none",
        ),
    ];
    for (title, description, expr, unit) in health {
        board.add(
            Panel::new("timeseries", title, description)
                .queries(vec![Query::range(expr, title)])
                .unit(unit)
                .size(6, 6),
        );
    }
    slo_set_dashboard(
        "oncall",
        "SLO on-call",
        "What burns now, the alerts, and whether slotel itself sees the data.",
        "now-6h".into(),
        "30s",
        board,
        opts,
    )
}

/// The panels of one SLO in a detail dashboard.
fn slo_rows(board: &mut Board, def: &SloDef, all_groups: &BTreeSet<String>) {
    let name = quote(&def.name);
    let s = format!(
        "slo={name}, service={}{}",
        quote(&def.service),
        whole_slo(all_groups)
    );
    let window = def.window.to_string();
    board.row(format!("{} ({}% over {window})", def.name, def.objective));
    board.add(
        Panel::new(
            "timeseries",
            "SLI and objective",
            format!(
                "The SLI over the SLO's window ({window}) minute by minute, and the objective ({}%). Below the objective line the SLO is broken.",
                def.objective
            ),
        )
        .queries(vec![
            Query::range(format!("{SLI}{{{s}, window=\"{SLO_WINDOW}\"}}"), "SLI"),
            Query::range(format!("{OBJECTIVE}{{{s}}}"), "objective"),
        ])
        .unit("percentunit")
        .decimals(4)
        .size(12, 8),
    );
    board.add(
        Panel::new(
            "timeseries",
            "Error budget remaining",
            format!(
                "The burn-down of the error budget over the window ({window}): 100% is untouched, 0 is spent, below 0 the objective is broken. Its slope is the burn rate."
            ),
        )
        .queries(vec![Query::range(
            format!("{BUDGET}{{{s}}}"),
            "budget remaining",
        )])
        .unit("percentunit")
        .thresholds(budget_thresholds())
        .threshold_lines()
        .size(12, 8),
    );
    let tiers = tiers_for(def, def.window.max_minutes());
    let mut windows: Vec<u32> = tiers
        .iter()
        .flat_map(|t| [t.short_minutes, t.long_minutes])
        .collect();
    windows.sort_unstable();
    windows.dedup();
    let window_re: Vec<String> = windows.iter().map(|&m| format_minutes(m)).collect();
    let mut queries = vec![Query::range(
        format!("{BURN_RATE}{{{s}, window=~\"{}\"}}", window_re.join("|")),
        "{{window}}",
    )];
    let mut tier_text = Vec::new();
    for t in &tiers {
        queries.push(Query::range(
            format!("vector({})", t.factor_shown()),
            format!("{} threshold", t.name),
        ));
        tier_text.push(format!(
            "{} ({}): {} and {} above {}×{}",
            t.name,
            t.severity.as_str(),
            format_minutes(t.long_minutes),
            format_minutes(t.short_minutes),
            t.factor_shown(),
            if t.for_seconds > 0 {
                format!(" for {}s", t.for_seconds)
            } else {
                String::new()
            }
        ));
    }
    board.add(
        Panel::new(
            "timeseries",
            "Burn rates and alert thresholds",
            format!(
                "The burn rate over every window an alert tier reads, with each tier's threshold as a flat line. A tier fires when both its windows are above its line. Tiers: {}.",
                if tier_text.is_empty() { "none".to_string() } else { tier_text.join("; ") }
            ),
        )
        .queries(queries)
        .size(12, 8),
    );
    board.add(
        Panel::new(
            "timeseries",
            "Good and bad events per second",
            "Events counted by the SLI per second, averaged over 5 minutes, split into good and bad.",
        )
        .queries(vec![
            Query::range(
                format!("{GOOD_EVENTS_RATE}{{{s}, window=\"5m\"}}"),
                "good",
            ),
            Query::range(
                format!(
                    "{EVENTS_RATE}{{{s}, window=\"5m\"}} - {GOOD_EVENTS_RATE}{{{s}, window=\"5m\"}}"
                ),
                "bad",
            ),
        ])
        .unit("reqps")
        .size(12, 8),
    );
    let latency = def.has_durations();
    if latency {
        let threshold = latency_threshold_seconds(def);
        let mut queries = vec![Query::range(
            format!("{LATENCY}{{{s}, window=\"5m\"}}"),
            "p{{quantile}}",
        )];
        if let Some(t) = threshold {
            queries.push(Query::range(format!("vector({t})"), "threshold"));
        }
        board.add(
            Panel::new(
                "timeseries",
                "Latency quantiles",
                format!(
                    "The span duration at the 50th, 90th, 95th and 99th percentiles over the last 5 minutes, from slotel's per-minute histograms: each value is at most 1% above the true one.{}",
                    match threshold {
                        Some(t) => format!(" The flat line is the SLI's latency threshold ({t}s): spans above it are bad, counted exactly, not from the histogram."),
                        None => String::new(),
                    }
                ),
            )
            .queries(queries)
            .unit("s")
            .size(12, 8),
        );
    }
    board.add(
        Panel::new(
            "table",
            "Alert tiers",
            format!(
                "Every burn-rate alert tier of the SLO with its windows, factor and state now: inactive, pending (waiting for its `for` duration) or firing. Tiers: {}.",
                if tier_text.is_empty() { "none".to_string() } else { tier_text.join("; ") }
            ),
        )
        .queries(vec![Query::instant(
            format!("{TIER_STATE}{{slo={name}, service={}}}", quote(&def.service)),
            "",
        )])
        .transformations(vec![json!({ "id": "organize", "options": {
            "excludeByName": { "Time": true, "__name__": true, "tenant": true, "slo": true, "service": true, "alertname": true },
            "renameByName": { "Value": "state" },
            "indexByName": { "burnrate_tier": 0, "severity": 1, "long_window": 2, "short_window": 3, "factor": 4, "Value": 5 },
        }})])
        .mappings(&[("0", "inactive", "green"), ("1", "pending", "orange"), ("2", "firing", "red")])
        .thresholds(thresholds("green", &[(1.0, "orange"), (2.0, "red")]))
        .size(if def.group_by.is_empty() && !latency { 24 } else { 12 }, 6),
    );
    if !def.group_by.is_empty() {
        let labels: Vec<String> = def.group_by.iter().map(|g| label_name(g)).collect();
        let matchers: String = labels
            .iter()
            .map(|l| format!(", {l}=~\"${l}\", {l}!=\"\""))
            .collect();
        let legend: Vec<String> = labels.iter().map(|l| format!("{{{{{l}}}}}")).collect();
        board.add(
            Panel::new(
                "bargauge",
                "Budget remaining per group",
                format!(
                    "The error budget left over the window for each group (by {}), least first: a group can break its objective while the SLO as a whole keeps it.",
                    def.group_by.join(", ")
                ),
            )
            .queries(vec![Query::instant(
                format!(
                    "sort({BUDGET}{{slo={name}, service={}{matchers}}})",
                    quote(&def.service)
                ),
                legend.join(" "),
            )])
            .unit("percentunit")
            .thresholds(budget_thresholds())
            .size(if latency { 24 } else { 12 }, 6),
        );
    }
}

/// The latency threshold of a span SLI whose good rule is a duration (alone or among
/// rules that must all hold), in seconds.
fn latency_threshold_seconds(def: &SloDef) -> Option<f64> {
    fn of(rule: &GoodRule) -> Option<u64> {
        rule.max_duration_nanos
            .or_else(|| rule.all_of.iter().find_map(of))
    }
    match &def.sli {
        Sli::Spans { good, .. } => of(good).map(|n| n as f64 / 1e9),
        _ => None,
    }
}

/// A detail dashboard for `slos` (one service's, or one SLO).
fn detail(title: &str, uid_parts: &[&str], slos: &[&SloDef], opts: &Options) -> Value {
    let all_groups = group_labels(slos.iter().copied());
    let mut board = Board::new();
    for def in slos {
        slo_rows(&mut board, def, &all_groups);
    }
    let variables = all_groups
        .iter()
        .map(|g| {
            label_variable(
                g,
                g,
                &format!("{BUDGET}{{{g}!=\"\"}}"),
                ".+",
                &format!("The groups (by `{g}`) shown in the per-group panels."),
            )
        })
        .collect();
    let longest = slos
        .iter()
        .map(|d| d.window.max_minutes())
        .max()
        .unwrap_or(43200);
    Dashboard {
        uid: uid(uid_parts),
        title: title.to_string(),
        description: "SLI against objective, budget burn-down, burn rates with the alert thresholds, events, alerts and groups.".into(),
        tags: vec!["slotel".into(), "slo".into(), "slo-detail".into()],
        from: format!("now-{}", format_minutes(longest)),
        refresh: "1m".into(),
        variables,
        board,
    }
    .to_json(&opts.datasource_name)
}

/// The detail dashboards, by file name: one per service, or one per SLO.
pub fn details(slos: &[SloDef], opts: &Options) -> Vec<(String, Value)> {
    match opts.detail {
        Detail::PerService => {
            let services: BTreeSet<(&str, &str)> = slos
                .iter()
                .map(|d| (d.tenant.as_str(), d.service.as_str()))
                .collect();
            services
                .into_iter()
                .map(|(tenant, service)| {
                    let mine: Vec<&SloDef> = slos
                        .iter()
                        .filter(|d| d.tenant == tenant && d.service == service)
                        .collect();
                    let parts: Vec<&str> = if tenant == "default" {
                        vec!["service", service]
                    } else {
                        vec!["service", tenant, service]
                    };
                    let value = detail(&format!("SLOs of {service}"), &parts, &mine, opts);
                    (
                        format!("{}.json", value["uid"].as_str().unwrap_or(service)),
                        value,
                    )
                })
                .collect()
        }
        Detail::PerSlo => slos
            .iter()
            .map(|d| {
                let parts: Vec<&str> = if d.tenant == "default" {
                    vec!["slo", &d.name]
                } else {
                    vec!["slo", &d.tenant, &d.name]
                };
                let value = detail(&format!("SLO {}", d.name), &parts, &[d], opts);
                (
                    format!("{}.json", value["uid"].as_str().unwrap_or(&d.name)),
                    value,
                )
            })
            .collect(),
    }
}
