//! The REST API under `/api/v1`, and its OpenAPI document, generated from these handlers
//! and types by `utoipa`.

use std::sync::{Arc, Mutex};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use slotel_compute::alerting::gate::{self, Gate};
use slotel_compute::alerting::maintenance::MaintenanceWindow;
use slotel_compute::alerting::{Alert, AlertState, Evaluator};
use slotel_compute::status::GroupStatus;
use slotel_compute::window::MinuteCounts;
use slotel_compute::{Engine, SloStatus, status_at};
use slotel_model::BURN_RATE_WINDOWS;
use slotel_proto::Tenant;
use std::collections::BTreeMap;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::source::QueryEngine;
use crate::{ApiError, Reload};
use slotel_storage::sql;

/// Most points a series reply holds.
const MAX_POINTS: i64 = 11_000;

/// An error reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    pub status: String,
    /// What went wrong.
    pub error: String,
}

fn bad_request(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e)
}

/// The SLOs of the caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SloList {
    /// Their statuses.
    pub slos: Vec<SloStatus>,
}

/// Filters and order of the SLO list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only SLOs of this service.
    pub service: Option<String>,
    /// Only SLOs in this state.
    pub state: Option<StateFilter>,
    /// Only SLOs with these labels: `key=value`, several separated by commas.
    #[param(pattern = "^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$")]
    pub label: Option<String>,
    /// The order (default: by name).
    pub sort: Option<SortKey>,
}

/// An SLO's state, as the list filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Budget left above the SLO's threshold.
    Ok,
    /// Less budget left than the freeze threshold (or 25%).
    AtRisk,
    /// No budget left.
    Exhausted,
    /// No events in the window.
    NoData,
}

impl StateFilter {
    fn as_str(self) -> &'static str {
        match self {
            StateFilter::Ok => "ok",
            StateFilter::AtRisk => "at_risk",
            StateFilter::Exhausted => "exhausted",
            StateFilter::NoData => "no_data",
        }
    }
}

/// The order of the SLO list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By name.
    Name,
    /// The least budget left first; SLOs without data last.
    BudgetRemaining,
    /// The fastest 1h burn first.
    BurnRate,
}

/// `GET /api/v1/slos`
#[utoipa::path(
    get, path = "/api/v1/slos", tag = "slos",
    params(ListParams),
    responses(
        (status = 200, description = "The SLOs of the caller's tenant", body = SloList),
        (status = 400, description = "Invalid parameters or tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    )
)]
pub async fn list_slos(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<SloList>, ApiError> {
    let Query(p) = params.map_err(bad_request)?;
    select_slos(engine.statuses(&t), &p).map(|slos| Json(SloList { slos }))
}

/// The statuses of `slos` that the list parameters `p` keep, in their order: what
/// `GET /api/v1/slos` answers, from one engine or summed over a cluster's.
pub fn select_slos(slos: Vec<SloStatus>, p: &ListParams) -> Result<Vec<SloStatus>, ApiError> {
    let labels: Vec<(&str, &str)> = match &p.label {
        Some(l) => l
            .split(',')
            .map(|kv| kv.split_once('=').ok_or(kv))
            .collect::<Result<_, _>>()
            .map_err(|kv| bad_request(format!("label {kv:?} is not key=value")))?,
        None => Vec::new(),
    };
    let mut slos: Vec<SloStatus> = slos
        .into_iter()
        .filter(|s| p.service.as_ref().is_none_or(|v| *v == s.service))
        .filter(|s| p.state.is_none_or(|v| v.as_str() == s.state))
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .collect();
    match p.sort.unwrap_or(SortKey::Name) {
        SortKey::Name => {}
        SortKey::BudgetRemaining => slos.sort_by(|a, b| {
            let k = |s: &SloStatus| s.error_budget_remaining.unwrap_or(f64::INFINITY);
            k(a).total_cmp(&k(b)).then_with(|| a.name.cmp(&b.name))
        }),
        SortKey::BurnRate => slos.sort_by(|a, b| {
            let k = |s: &SloStatus| s.burn_rates.get("1h").unwrap_or(f64::NEG_INFINITY);
            k(b).total_cmp(&k(a)).then_with(|| a.name.cmp(&b.name))
        }),
    }
    Ok(slos)
}

/// `GET /api/v1/slos/{name}`
#[utoipa::path(
    get, path = "/api/v1/slos/{name}", tag = "slos",
    params(("name" = String, Path, description = "The SLO's name")),
    responses(
        (status = 200, description = "The SLO's status, with its groups", body = SloStatus),
        (status = 400, description = "Invalid tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such SLO for the tenant", body = ErrorBody),
    )
)]
pub async fn get_slo(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<SloStatus>, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    engine
        .status(&t, &name)
        .map(Json)
        .map_err(|e| ApiError::NotFound(e.to_string()))
}

/// `GET /api/v1/slos/{name}/explain`
#[utoipa::path(
    get, path = "/api/v1/slos/{name}/explain", tag = "slos",
    params(("name" = String, Path, description = "The SLO's name")),
    responses(
        (status = 200, description = "What the SLO counts, what of its service it drops and why, near misses, and the tenant's services", body = slotel_compute::Explanation),
        (status = 400, description = "Invalid tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such SLO for the tenant", body = ErrorBody),
    )
)]
pub async fn explain_slo(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<slotel_compute::Explanation>, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    engine
        .explain(&t, &name)
        .map(Json)
        .map_err(|e| ApiError::NotFound(e.to_string()))
}

/// A grouped SLO's groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    /// The SLO.
    pub slo: String,
    /// Its `group_by` labels.
    pub group_by: Vec<String>,
    /// Each group, the least budget left first.
    pub groups: Vec<GroupStatus>,
}

/// `GET /api/v1/slos/{name}/groups`
#[utoipa::path(
    get, path = "/api/v1/slos/{name}/groups", tag = "slos",
    params(("name" = String, Path, description = "The SLO's name")),
    responses(
        (status = 200, description = "The per-group breakdown (empty when not grouped)", body = GroupList),
        (status = 400, description = "Invalid tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such SLO for the tenant", body = ErrorBody),
    )
)]
pub async fn slo_groups(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<GroupList>, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    let status = engine
        .status(&t, &name)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    let group_by = engine
        .slos(&t)
        .into_iter()
        .find(|d| d.name == name)
        .map(|d| d.group_by.clone())
        .unwrap_or_default();
    Ok(Json(GroupList {
        slo: name,
        group_by,
        groups: status.groups,
    }))
}

/// The range of a time series.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Start: RFC 3339 or Unix seconds (default: `to` minus the SLO window).
    pub from: Option<String>,
    /// End: RFC 3339 or Unix seconds (default: now).
    pub to: Option<String>,
    /// Step: a duration (`5m`, `1h`) or seconds, at least a minute (default: the range
    /// over 300 points, rounded up to whole minutes).
    pub step: Option<String>,
}

/// One point of an SLO's time series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// The instant (RFC 3339).
    pub time: String,
    /// The SLI over the SLO window ending here.
    pub sli: Option<f64>,
    /// The budget left over the SLO window ending here.
    pub error_budget_remaining: Option<f64>,
    /// Burn rates over the standard windows and the SLO's, ending here, shortest first.
    #[schema(value_type = std::collections::BTreeMap<String, Option<f64>>)]
    pub burn_rates: slotel_compute::status::BurnRates,
    /// Good events in the step ending here.
    pub good_events: u64,
    /// Events in the step ending here.
    pub total_events: u64,
}

/// An SLO's time series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SloSeries {
    /// The SLO.
    pub slo: String,
    /// The first point's time (RFC 3339).
    pub from: String,
    /// The last point's time (RFC 3339).
    pub to: String,
    /// Seconds between points.
    pub step_seconds: i64,
    /// The points, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// Seconds from RFC 3339 or Unix seconds.
fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    slotel_model::time::parse_time_ms(s)
        .map(|ms| ms.div_euclid(1000))
        .ok_or_else(|| {
            bad_request(format!(
                "{name}: {s:?} is neither RFC 3339 nor Unix seconds"
            ))
        })
}

fn rfc3339(secs: i64) -> String {
    slotel_model::time::rfc3339(secs.saturating_mul(1_000_000_000))
}

/// `GET /api/v1/slos/{name}/series`
#[utoipa::path(
    get, path = "/api/v1/slos/{name}/series", tag = "slos",
    params(("name" = String, Path, description = "The SLO's name"), RangeParams),
    responses(
        (status = 200, description = "SLI, budget left, burn rates and events over time", body = SloSeries),
        (status = 400, description = "Invalid range, tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such SLO for the tenant", body = ErrorBody),
    )
)]
pub async fn slo_series(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<SloSeries>, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    let Query(p) = params.map_err(bad_request)?;
    let def = source
        .engine
        .slos(&t)
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no SLO named {name:?} for tenant {:?}", &*t)))?;
    let to = match &p.to {
        Some(s) => parse_time("to", s)?,
        None => source.engine.now_nanos().div_euclid(1_000_000_000),
    };
    let window_secs = i64::from(def.window.max_minutes()) * 60;
    let from = match &p.from {
        Some(s) => parse_time("from", s)?,
        None => to - window_secs,
    };
    if from > to {
        return Err(bad_request("from is after to"));
    }
    let step = match &p.step {
        Some(s) => crate::promql::client_duration(s)
            .map(|d| d.as_secs_f64().ceil() as i64)
            .map_err(|e| {
                bad_request(format!(
                    "step: cannot parse {s:?} to a valid duration ({e})"
                ))
            })?,
        None => (to.saturating_sub(from) / 300).max(60),
    };
    // Minute resolution: steps are whole minutes.
    let step = (step.max(60) + 59) / 60 * 60;
    if to.saturating_sub(from) / step + 1 > MAX_POINTS {
        return Err(bad_request(format!(
            "more than {MAX_POINTS} points: use a larger step"
        )));
    }
    let (lo, hi) = (from.div_euclid(60), to.div_euclid(60));
    if hi.saturating_sub(lo) > crate::promql::MAX_RANGE_MINUTES {
        return Err(bad_request("the range is longer than 800 days"));
    }
    let lookback = i64::from(
        def.window
            .max_minutes()
            .max(*BURN_RATE_WINDOWS.last().unwrap_or(&0)),
    );
    let m = source
        .minutes(&t, &name, None, lo - lookback, hi)
        .await
        .map_err(|e| ApiError::Unavailable(e.0))?
        .ok_or_else(|| ApiError::NotFound(format!("no SLO named {name:?}")))?;
    let step_minutes = step / 60;
    let points = (0..=(to - from) / step)
        .map(|i| {
            let at = from + i * step;
            let minute = at.div_euclid(60);
            let s = status_at(&m.def, &m.series, m.effective_threshold, at * 1_000_000_000);
            let (x, total) = m.series.range(minute - step_minutes + 1, minute);
            let good = m.def.counted().tally(x, total).good;
            SeriesPoint {
                time: rfc3339(at),
                sli: s.sli,
                error_budget_remaining: s.error_budget_remaining,
                burn_rates: s.burn_rates,
                good_events: good,
                total_events: total,
            }
        })
        .collect();
    Ok(Json(SloSeries {
        slo: name,
        from: rfc3339(from),
        to: rfc3339(from + (to - from) / step * step),
        step_seconds: step,
        points,
    }))
}

/// The caller's active alerts, and how the receivers are doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Pending and firing alerts.
    pub alerts: Vec<ActiveAlert>,
    /// The tenant's SLOs that a maintenance window holds now: their alerts are not
    /// notified.
    pub in_maintenance: Vec<SloInMaintenance>,
    /// Every receiver's deliveries since start (all tenants' notifications).
    pub receivers: Vec<ReceiverStatus>,
}

/// A pending or firing alert, and the maintenance window that holds its notifications
/// back, if one does.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveAlert {
    /// `pending` or `firing`.
    pub state: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// `alertname`, `slo`, `service`, `tenant`, `severity`, `burnrate_tier`, and the
    /// SLO's own labels.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, the burn rates seen, and the SLO's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The maintenance window in force for the alert's SLO, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_maintenance: Option<String>,
}

impl ActiveAlert {
    /// `alert` as the API lists it; `in_maintenance`, the window holding its SLO.
    pub fn of(alert: slotel_compute::alerting::Alert, in_maintenance: Option<String>) -> Self {
        let (state, since) = match alert.state {
            AlertState::Pending { since } => ("pending", since),
            AlertState::Firing { since } => ("firing", since),
            AlertState::Inactive => ("inactive", 0),
        };
        ActiveAlert {
            state: state.into(),
            since: slotel_model::time::rfc3339(since),
            labels: alert.labels,
            annotations: alert.annotations,
            in_maintenance,
        }
    }
}

/// An SLO that a maintenance window holds now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SloInMaintenance {
    /// The SLO.
    pub slo: String,
    /// Its service.
    pub service: String,
    /// The window's name.
    pub window: String,
}

/// One receiver's deliveries since start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiverStatus {
    /// `alertmanager`, `webhook-1`, `pagerduty`, `slack`, `route-1/webhook-1`, …
    pub name: String,
    /// Notifications delivered.
    pub sent: u64,
    /// Notifications that failed after every attempt.
    pub failed: u64,
    /// Notifications dropped because the receiver's outbox was full.
    pub dropped: u64,
}

/// The receivers' counters, by name.
pub type Receivers = Arc<Vec<(String, Arc<slotel_compute::alerting::notify::NotifyStats>)>>;

/// `GET /api/v1/alerts`
#[utoipa::path(
    get, path = "/api/v1/alerts", tag = "alerts",
    responses(
        (status = 200, description = "Pending and firing alerts of the tenant", body = AlertList),
        (status = 400, description = "Invalid tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    )
)]
pub async fn list_alerts(
    State((engine, alerts, receivers)): State<(Arc<Engine>, Arc<Mutex<Evaluator>>, Receivers)>,
    Extension(t): Extension<Tenant>,
) -> Json<AlertList> {
    use std::sync::atomic::Ordering::Relaxed;
    let in_maintenance: Vec<SloInMaintenance> = engine
        .statuses(&t)
        .into_iter()
        .filter_map(|s| {
            Some(SloInMaintenance {
                window: s.in_maintenance?,
                slo: s.name,
                service: s.service,
            })
        })
        .collect();
    let active = active_alerts(&alerts, &t)
        .into_iter()
        .map(|alert| {
            let held = alert.labels.get("slo").and_then(|slo| {
                in_maintenance
                    .iter()
                    .find(|m| &m.slo == slo)
                    .map(|m| m.window.clone())
            });
            ActiveAlert::of(alert, held)
        })
        .collect();
    let receivers = receivers
        .iter()
        .map(|(name, s)| ReceiverStatus {
            name: name.clone(),
            sent: s.sent.load(Relaxed),
            failed: s.failed.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
        })
        .collect();
    Json(AlertList {
        alerts: active,
        in_maintenance,
        receivers,
    })
}

/// Which alert events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only this SLO's events.
    pub slo: Option<String>,
    /// From: RFC 3339 or Unix seconds (default: 7 days before `to`).
    pub from: Option<String>,
    /// To: RFC 3339 or Unix seconds (default: now).
    pub to: Option<String>,
    /// Most events, newest first (default 1,000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// One alert state change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertEventOut {
    /// When (RFC 3339).
    pub time: String,
    /// The SLO.
    pub slo: String,
    /// The rule tier.
    pub tier: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// The state before: `inactive`, `pending`, `firing`.
    pub from_state: String,
    /// The state after.
    pub to_state: String,
    /// The burn rate over the tier's long window.
    #[serde(default)]
    pub burn_rate_long: Option<f64>,
    /// The burn rate over the tier's short window.
    #[serde(default)]
    pub burn_rate_short: Option<f64>,
    /// Whether a maintenance window held the notification back.
    pub silenced: bool,
    /// The alert's labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Alert history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertHistory {
    /// The events, newest first.
    pub events: Vec<AlertEventOut>,
}

/// `GET /api/v1/alerts/history`: the `alert_events` table.
#[utoipa::path(
    get, path = "/api/v1/alerts/history", tag = "alerts",
    params(HistoryParams),
    responses(
        (status = 200, description = "Alert state changes, newest first", body = AlertHistory),
        (status = 400, description = "Invalid parameters or tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    )
)]
pub async fn alert_history(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<AlertHistory>, ApiError> {
    let Query(p) = params.map_err(bad_request)?;
    let to = match &p.to {
        Some(s) => Some(parse_time("to", s)?),
        None => None,
    };
    let from = match &p.from {
        Some(s) => parse_time("from", s)?,
        None => {
            to.unwrap_or_else(|| source.engine.now_nanos().div_euclid(1_000_000_000)) - 7 * 86_400
        }
    };
    // Without `to`, up to now, this very millisecond included.
    let until = to
        .map(|t| format!(" AND time < to_timestamp_seconds({})", t.saturating_add(1)))
        .unwrap_or_default();
    let limit = p.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit is {limit}: it must be 1 to 10000"
        )));
    }
    // A string literal: quotes doubled.
    let slo = p
        .slo
        .as_ref()
        .map(|s| format!(" AND slo = '{}'", s.replace('\'', "''")))
        .unwrap_or_default();
    let query = format!(
        "SELECT CAST(time AS VARCHAR) AS time, slo, tier, severity, from_state, to_state, \
         burn_rate_long, burn_rate_short, silenced, labels FROM alert_events \
         WHERE time >= to_timestamp_seconds({from}){until}{slo} \
         ORDER BY time DESC LIMIT {limit}"
    );
    let batches = source.sql(&t, &query).await.map_err(bad_request)?;
    let json = sql::to_json(&batches).map_err(bad_request)?;
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&json).map_err(bad_request)?;
    let events = rows
        .into_iter()
        .map(|mut r| {
            let labels = r
                .remove("labels")
                .and_then(|l| l.as_str().and_then(|s| serde_json::from_str(s).ok()))
                .unwrap_or(serde_json::Value::Object(Default::default()));
            r.insert("labels".into(), labels);
            serde_json::from_value(serde_json::Value::Object(r))
        })
        .collect::<Result<Vec<AlertEventOut>, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(AlertHistory { events }))
}

/// The tenant's maintenance windows.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceList {
    /// The windows.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// `GET /api/v1/maintenance`
#[utoipa::path(
    get, path = "/api/v1/maintenance", tag = "maintenance",
    responses(
        (status = 200, description = "The tenant's maintenance windows", body = MaintenanceList),
        (status = 400, description = "Invalid tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    )
)]
pub async fn list_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
) -> Json<MaintenanceList> {
    Json(MaintenanceList {
        maintenance: engine.maintenance().list(&t),
    })
}

/// `POST /api/v1/maintenance`: adds or replaces a window of the caller's tenant (a
/// tenant in the body is ignored).
#[utoipa::path(
    post, path = "/api/v1/maintenance", tag = "maintenance",
    request_body = MaintenanceWindow,
    responses(
        (status = 200, description = "The window as stored", body = MaintenanceWindow),
        (status = 400, description = "Invalid window or tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    )
)]
pub async fn put_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    body: Result<Json<MaintenanceWindow>, JsonRejection>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    let Json(mut window) = body.map_err(|e| bad_request(e.body_text()))?;
    window.tenant = t.to_string();
    engine
        .maintenance()
        .put_checked(window.clone(), engine.now_nanos(), &engine.slos(&t))
        .map_err(bad_request)?;
    Ok(Json(window))
}

/// `DELETE /api/v1/maintenance/{name}`
#[utoipa::path(
    delete, path = "/api/v1/maintenance/{name}", tag = "maintenance",
    params(("name" = String, Path, description = "The window's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Invalid tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such window", body = ErrorBody),
    )
)]
pub async fn delete_maintenance(
    State(engine): State<Arc<Engine>>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    if engine.maintenance().remove(&t, &name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no maintenance window named {name:?} for tenant {:?}",
            &*t
        )))
    }
}

/// The pending and firing alerts of `tenant`.
fn active_alerts(alerts: &Mutex<Evaluator>, tenant: &str) -> Vec<Alert> {
    alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active(Some(tenant))
}

/// State of the gate handlers.
pub type GateState = (Arc<Engine>, Arc<Mutex<Evaluator>>);

/// `GET /api/v1/slos/{name}/gate`
#[utoipa::path(
    get, path = "/api/v1/slos/{name}/gate", tag = "gates",
    params(("name" = String, Path, description = "The SLO's name")),
    responses(
        (status = 200, description = "Whether a release may proceed, and why", body = Gate),
        (status = 400, description = "Invalid tenant or name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such SLO for the tenant", body = ErrorBody),
    )
)]
pub async fn slo_gate(
    State((engine, alerts)): State<GateState>,
    Extension(t): Extension<Tenant>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Gate>, ApiError> {
    let Path(name) = name.map_err(bad_request)?;
    let status = engine
        .status(&t, &name)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    let active = active_alerts(&alerts, &t);
    Ok(Json(gate::decide(&status, &active)))
}

/// A service's release gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceGate {
    /// The service.
    pub service: String,
    /// Whether every SLO of the service allows a release.
    pub allowed: bool,
    /// Each SLO's gate.
    pub slos: Vec<Gate>,
}

/// `GET /api/v1/services/{service}/gate`
#[utoipa::path(
    get, path = "/api/v1/services/{service}/gate", tag = "gates",
    params(("service" = String, Path, description = "The service (`service.name`)")),
    responses(
        (status = 200, description = "Whether a release of the service may proceed", body = ServiceGate),
        (status = 400, description = "Invalid tenant or service", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No SLO of the service for the tenant", body = ErrorBody),
    )
)]
pub async fn service_gate(
    State((engine, alerts)): State<GateState>,
    Extension(t): Extension<Tenant>,
    service: Result<Path<String>, PathRejection>,
) -> Result<Json<ServiceGate>, ApiError> {
    let Path(service) = service.map_err(bad_request)?;
    let statuses: Vec<SloStatus> = engine
        .statuses(&t)
        .into_iter()
        .filter(|s| s.service == service)
        .collect();
    if statuses.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no SLO of service {service:?} for tenant {:?}",
            &*t
        )));
    }
    let active = active_alerts(&alerts, &t);
    let slos: Vec<Gate> = statuses.iter().map(|s| gate::decide(s, &active)).collect();
    let allowed = slos.iter().all(|g| g.allowed);
    Ok(Json(ServiceGate {
        service,
        allowed,
        slos,
    }))
}

/// The reply of a reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// Always `ok`.
    pub status: String,
    /// SLOs loaded now.
    pub slos: usize,
}

/// What `POST /api/v1/reload` runs with: the reload, and who may call it.
pub type ReloadState = (Option<Reload>, Arc<slotel_proto::auth::Auth>);

/// `POST /api/v1/reload`
#[utoipa::path(
    post, path = "/api/v1/reload", tag = "slos",
    responses(
        (status = 200, description = "The SLO files were read again", body = Reloaded),
        (status = 400, description = "Invalid tenant", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 403, description = "With tokens, only an admin token reloads", body = ErrorBody),
        (status = 404, description = "This server has no files to reload", body = ErrorBody),
        (status = 422, description = "The files are invalid; the previous SLOs stay", body = ErrorBody),
    )
)]
pub async fn reload_slos(
    State((reload, auth)): State<ReloadState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Reloaded>, ApiError> {
    let reload = reload.ok_or_else(|| ApiError::NotFound("reload is not available".into()))?;
    // The files hold every tenant's SLOs: with tokens, only an admin token reloads them.
    if !auth.is_admin(
        headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    ) {
        return Err(ApiError::Forbidden(
            "reloading the SLO files (every tenant's) needs an admin token (auth.tokens[].admin: true); SIGHUP reloads too".into(),
        ));
    }
    // Reading and parsing files blocks: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || reload())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match result {
        Ok(n) => Ok(Json(Reloaded {
            status: "ok".into(),
            slos: n,
        })),
        Err(problems) => Err(ApiError::Unprocessable(format!(
            "the SLO files are invalid; the previous SLOs stay loaded:\n{problems}"
        ))),
    }
}

/// The body of `POST /api/v1/sql`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only SQL statement over `sli_minute`, `sli_hour`, `slo_definitions`.
    #[schema(min_length = 1)]
    pub query: String,
}

/// The Arrow IPC stream media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The media type of a request body that is the SQL statement itself.
pub const SQL_MEDIA_TYPE: &str = "application/sql";

/// `POST /api/v1/sql`: JSON rows, or an Arrow IPC stream when `Accept` asks for it. The
/// statement comes as JSON (`{"query": ...}`) or as the body itself (`application/sql`,
/// which keeps a multi-line statement readable in a shell).
#[utoipa::path(
    post, path = "/api/v1/sql", tag = "sql",
    request_body(content(
        (SqlRequest = "application/json"),
        (String = "application/sql"),
    )),
    responses(
        (status = 200, description = "The rows",
            content(
                (Vec<serde_json::Map<String, serde_json::Value>> = "application/json"),
                (String = "application/vnd.apache.arrow.stream"),
            )),
        (status = 400, description = "Invalid, not read-only, or too many rows", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 408, description = "Cancelled at the time limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor application/sql", body = ErrorBody),
    )
)]
pub async fn run_sql(
    State(source): State<QueryEngine>,
    Extension(t): Extension<Tenant>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body = match media.as_str() {
        SQL_MEDIA_TYPE => match std::str::from_utf8(&body) {
            Ok(q) if !q.trim().is_empty() => SqlRequest {
                query: q.to_string(),
            },
            Ok(_) => return bad_request("the body holds no SQL statement").into_response(),
            Err(_) => return bad_request("the SQL statement is not UTF-8").into_response(),
        },
        "application/json" => match serde_json::from_slice::<SqlRequest>(&body) {
            Ok(b) => b,
            Err(e) => {
                return bad_request(format!("Failed to parse the request body as JSON: {e}"))
                    .into_response();
            }
        },
        _ => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(serde_json::json!({
                    "status": "error",
                    "error": format!(
                        "send the statement as application/json ({{\"query\": ...}}) or as {SQL_MEDIA_TYPE}"
                    ),
                })),
            )
                .into_response();
        }
    };
    let arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    let batches = match source.sql(&t, &body.query).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (body, content_type) = if arrow {
        (sql::to_arrow_ipc(&batches), ARROW_STREAM)
    } else {
        (sql::to_json(&batches), "application/json")
    };
    match body {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// The health check's reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the last checkpoint could not be published (storage is
    /// failing: the write-ahead log keeps everything meanwhile).
    pub status: String,
    /// What storage has been through since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageHealth>,
}

/// Storage's part of the health check.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageHealth {
    /// Checkpoints published.
    pub checkpoints: u64,
    /// Checkpoints not published because a write failed (retried at the next flush).
    pub checkpoint_errors: u64,
    /// Whether the last checkpoint failed.
    pub checkpoint_behind: bool,
    /// Partition writes that failed.
    pub write_errors: u64,
    /// Reads the object store failed (retried with backoff).
    pub read_errors: u64,
    /// Damaged files moved to quarantine.
    pub corrupt_files: u64,
}

/// `GET /healthz`: 200 while the process is alive, with storage's error counts.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn healthz(State(store): State<Option<Arc<slotel_storage::Store>>>) -> Json<Health> {
    use std::sync::atomic::Ordering::Relaxed;
    let storage = store.map(|s| {
        let st = s.stats();
        StorageHealth {
            checkpoints: st.checkpoints.load(Relaxed),
            checkpoint_errors: st.checkpoint_errors.load(Relaxed),
            checkpoint_behind: s.checkpoint_behind(),
            write_errors: st.write_errors.load(Relaxed),
            read_errors: st.read_errors.load(Relaxed),
            corrupt_files: st.corrupt_files.load(Relaxed),
        }
    });
    let degraded = storage.as_ref().is_some_and(|s| s.checkpoint_behind);
    Json(Health {
        status: if degraded { "degraded" } else { "ok" }.into(),
        storage,
    })
}

/// `GET /`: where things are, until the web UI lands: a short HTML page for browsers,
/// JSON for everyone else.
pub async fn index(headers: HeaderMap) -> Response {
    const LINKS: [(&str, &str); 8] = [
        ("/api/v1/slos", "the SLOs of your tenant, with status"),
        ("/api/v1/alerts", "the alerts firing now"),
        (
            "/prometheus",
            "the Prometheus-compatible API: a Grafana data source URL",
        ),
        (
            "/api/v1/openapi.json",
            "the OpenAPI document of the REST API",
        ),
        ("/api/v1/sql", "read-only SQL over the tables (POST)"),
        ("/metrics", "slotel's own metrics"),
        ("/healthz", "alive, with storage's counters"),
        ("/readyz", "200 once the write-ahead log is replayed"),
    ];
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if html {
        let items: String = LINKS
            .iter()
            .map(|(p, what)| format!("<li><a href=\"{p}\">{p}</a>: {what}</li>"))
            .collect();
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>slotel</title></head>\
             <body><h1>slotel {}</h1><ul>{items}</ul></body></html>",
            env!("CARGO_PKG_VERSION")
        );
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let links: serde_json::Map<String, serde_json::Value> = LINKS
        .iter()
        .map(|(p, what)| (p.to_string(), serde_json::Value::from(*what)))
        .collect();
    Json(serde_json::json!({
        "name": "slotel",
        "version": env!("CARGO_PKG_VERSION"),
        "links": links,
    }))
    .into_response()
}

/// The readiness check's reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `replaying` while the write-ahead log found at start is applied.
    pub status: String,
    /// The log position applied so far.
    pub applied_position: u64,
}

/// `GET /readyz`: 200 once the write-ahead log found at start has been replayed (the
/// answers are then complete), 503 before. `/healthz` only says the process is alive.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Replayed: answers are complete", body = Readiness),
        (status = 503, description = "Still replaying the write-ahead log", body = Readiness),
    )
)]
pub async fn readyz(State(engine): State<Arc<Engine>>) -> Response {
    let ready = engine.is_ready();
    let body = Readiness {
        status: if ready { "ready" } else { "replaying" }.into(),
        applied_position: engine.applied(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The OpenAPI document of the REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slotel",
        description = "SLIs, error budgets, burn rates and alerts computed from OpenTelemetry data. \
            The caller's tenant comes from a bearer token when tokens are configured, else from \
            the X-Scope-OrgID header (default: `default`). The Prometheus-compatible API is \
            under /prometheus and follows Prometheus' HTTP API.",
    ),
    paths(
        list_slos,
        get_slo,
        explain_slo,
        slo_groups,
        slo_series,
        slo_gate,
        service_gate,
        list_alerts,
        alert_history,
        list_maintenance,
        put_maintenance,
        delete_maintenance,
        reload_slos,
        run_sql,
        healthz,
        readyz,
    ),
    components(schemas(ErrorBody, SortKey, StateFilter))
)]
pub struct ApiDoc;

/// The whole OpenAPI document: the REST API and the Prometheus API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(crate::prometheus::PrometheusDoc::openapi())
}

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}
