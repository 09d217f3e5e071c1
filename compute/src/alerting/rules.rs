//! Burn-rate alert rules and their state machine, evaluated on the engine's clock so that
//! they run the same in simulated time.
//!
//! The default rules are the multi-window, multi-burn-rate table of the Google SRE
//! workbook ("Alerting on SLOs"), in the four-tier form: page when both the 1h and 5m
//! burn rates exceed the factor that spends 2% of the budget in an hour, or both 6h and
//! 30m exceed the one that spends 5% in six hours; ticket on 10% in a day (1d and 2h) and
//! 10% in three days (3d and 6h). For a 30-day window the factors are 14.4, 6, 3 and 1;
//! other windows scale them as Sloth does: `factor = budget fraction × window / long
//! window`. Both windows must exceed the factor; with `min_events` set, a long window
//! with fewer events cannot fire (a handful of requests at night cannot page).
//!
//! Each (SLO, tier) moves inactive → pending (while its `for` duration has not passed) →
//! firing → inactive again, and every move is returned as a [`Transition`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::engine::BurnSnapshot;
use crate::math;
use slotel_model::SloDef;
use slotel_model::names::prometheus_label;

pub use slotel_model::Severity;

pub use slotel_model::tiers::{
    DEFAULT_TIER_NAMES, Tier, WINDOW_PAIRS, default_tiers, tier_window_minutes, tiers_for,
};

/// One alert's state as saved on disk.
#[derive(Debug, Serialize, serde::Deserialize)]
struct SavedState {
    tenant: String,
    slo: String,
    tier: String,
    state: AlertState,
    /// The alert's labels and annotations, so that the API lists it right after a
    /// restart, before the first evaluation.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// Set for an alert that resolved lately (its `state` is the firing it left): a
    /// restart tells the receivers of the resolve again, in case it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_at: Option<i64>,
}

/// An alert that fired, resolved lately, and how it was labelled.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// When it started firing.
    pub since: i64,
    /// When it resolved.
    pub at: i64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// How long a resolved alert is remembered for receivers that may have missed it.
const RESOLVED_KEPT_NANOS: i64 = 3600 * 1_000_000_000;

/// Why the alert state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// It cannot be read.
    #[error("cannot read the alert state {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not what slotel writes; a copy is kept, and nothing was reset.
    #[error(
        "the alert state {} is damaged ({reason}); a copy is kept as {}. Move it away to start \
         with every alert inactive (receivers hear of firing alerts again at the next evaluation)",
        path.display(), backup.display()
    )]
    Damaged {
        /// The file.
        path: std::path::PathBuf,
        /// Where a copy was kept.
        backup: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, not yet for the tier's `for` duration.
    Pending {
        /// Since when (nanoseconds since the epoch).
        since: i64,
    },
    /// The alert fires.
    Firing {
        /// Since when.
        since: i64,
    },
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The SLO's tenant.
    pub tenant: String,
    /// The SLO.
    pub slo: String,
    /// The tier.
    pub tier: String,
    /// Page or ticket.
    pub severity: Severity,
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
    /// When (nanoseconds since the epoch).
    pub at: i64,
    /// The burn rates seen: long window, short window.
    pub burn_rates: (Option<f64>, Option<f64>),
    /// The alert's labels (as in [`Alert`]).
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations.
    pub annotations: BTreeMap<String, String>,
}

impl AlertState {
    /// Its name in logs and the `alert_events` table: `inactive`, `pending`, `firing`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending { .. } => "pending",
            AlertState::Firing { .. } => "firing",
        }
    }
}

/// An alert as notifiers and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// Firing or pending.
    #[serde(flatten)]
    pub state: AlertState,
    /// `alertname`, `slo`, `service`, `tenant`, `severity`, `burnrate_tier`, and the
    /// SLO's own labels.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, the burn rates seen, and the SLO's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The alert name every burn-rate alert carries.
pub const ALERT_NAME: &str = "SLOBurnRate";

/// The labels every alert of `def` carries: the SLO's own, `alertname`, `slo`, `service`,
/// `tenant` and `severity`.
fn base_labels(def: &SloDef, alertname: &str, severity: Severity) -> BTreeMap<String, String> {
    let mut labels = def.labels.clone();
    labels.insert("alertname".into(), alertname.into());
    labels.insert("slo".into(), def.name.clone());
    labels.insert("service".into(), def.service.clone());
    labels.insert("tenant".into(), def.tenant.clone());
    labels.insert("severity".into(), severity.as_str().into());
    labels
}

fn labels_of(def: &SloDef, tier: &Tier) -> BTreeMap<String, String> {
    let mut labels = base_labels(def, ALERT_NAME, tier.severity);
    labels.insert("burnrate_tier".into(), tier.name.clone());
    labels.extend(tier.labels.clone());
    labels
}

fn annotations_of(
    def: &SloDef,
    tier: &Tier,
    burn: (Option<f64>, Option<f64>),
) -> BTreeMap<String, String> {
    let mut annotations = def.annotations.clone();
    let rate = |r: Option<f64>| r.map_or_else(|| "no data".to_string(), |r| format!("{r:.2}x"));
    let (long, short) = (
        slotel_model::format_minutes(tier.long_minutes),
        slotel_model::format_minutes(tier.short_minutes),
    );
    annotations.insert(
        "summary".into(),
        format!("{} is burning its error budget {}", def.name, rate(burn.0)),
    );
    annotations.insert(
        "description".into(),
        format!(
            "SLO {} ({}% over {}) of service {}: burn rate {} over {long} and {} over {short}, above {:.2}x ({}).",
            def.name,
            def.objective,
            def.window,
            def.service,
            rate(burn.0),
            rate(burn.1),
            tier.factor,
            tier.name
        ),
    );
    annotations.insert(format!("burn_rate_{long}"), rate(burn.0));
    annotations.insert(format!("burn_rate_{short}"), rate(burn.1));
    annotations.extend(tier.annotations.clone());
    annotations
}

/// Labels and annotations of an alert on the budget (`kind`: `budget-exhaustion`,
/// `budget-exhausted`, `no-data`).
fn budget_alert(
    def: &SloDef,
    kind: &str,
    severity: Severity,
    summary: String,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let alertname = match kind {
        "budget-exhaustion" => "SLOBudgetExhaustion",
        "budget-exhausted" => "SLOBudgetExhausted",
        _ => "SLONoData",
    };
    let labels = base_labels(def, alertname, severity);
    let mut annotations = def.annotations.clone();
    annotations.insert("summary".into(), summary);
    (labels, annotations)
}

/// The alert states of every (SLO, tier).
#[derive(Debug, Default)]
pub struct Evaluator {
    /// When this evaluator first ran: no-data alerts wait until slotel has watched
    /// for their whole window.
    first_evaluation: Option<i64>,
    states: HashMap<(String, String, String), AlertState>,
    /// The latest alert of every (SLO, tier) that is pending or firing.
    active: HashMap<(String, String, String), Alert>,
    /// Alerts that resolved within the last hour.
    resolved: BTreeMap<(String, String, String), Resolved>,
}

/// An alert's key: tenant, SLO, tier.
pub type AlertKey = (String, String, String);

impl Evaluator {
    /// An evaluator with every alert inactive.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state of an alert.
    pub fn state(&self, tenant: &str, slo: &str, tier: &str) -> AlertState {
        self.states
            .get(&(tenant.to_string(), slo.to_string(), tier.to_string()))
            .copied()
            .unwrap_or(AlertState::Inactive)
    }

    /// Moves one alert's state; returns the transition when it changed.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        def: &SloDef,
        name: &str,
        severity: Severity,
        for_seconds: i64,
        holds: bool,
        now: i64,
        burn_rates: (Option<f64>, Option<f64>),
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Option<Transition> {
        let key = (def.tenant.clone(), def.name.clone(), name.to_string());
        let from = self
            .states
            .get(&key)
            .copied()
            .unwrap_or(AlertState::Inactive);
        let to = match (from, holds) {
            (AlertState::Inactive, true) if for_seconds <= 0 => AlertState::Firing { since: now },
            (AlertState::Inactive, true) => AlertState::Pending { since: now },
            (AlertState::Pending { since }, true) if now - since >= for_seconds * 1_000_000_000 => {
                AlertState::Firing { since: now }
            }
            (state, true) => state,
            (_, false) => AlertState::Inactive,
        };
        if matches!(to, AlertState::Inactive) {
            self.active.remove(&key);
        } else {
            self.active.insert(
                key.clone(),
                Alert {
                    state: to,
                    labels: labels.clone(),
                    annotations: annotations.clone(),
                },
            );
        }
        if to == from {
            return None;
        }
        self.states.insert(key, to);
        Some(Transition {
            tenant: def.tenant.clone(),
            slo: def.name.clone(),
            tier: name.to_string(),
            severity,
            from,
            to,
            at: now,
            burn_rates,
            labels,
            annotations,
        })
    }

    /// The pending and firing alerts of `tenant` (all tenants with `None`), by SLO and tier.
    pub fn active(&self, tenant: Option<&str>) -> Vec<Alert> {
        let mut out: Vec<(&(String, String, String), &Alert)> = self
            .active
            .iter()
            .filter(|((t, _, _), _)| tenant.is_none_or(|want| t == want))
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.into_iter().map(|(_, a)| a.clone()).collect()
    }

    /// The firing alerts, by key, in key order.
    pub fn firing(&self) -> Vec<(AlertKey, Alert)> {
        let mut out: Vec<(AlertKey, Alert)> = self
            .active
            .iter()
            .filter(|(_, a)| matches!(a.state, AlertState::Firing { .. }))
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The alerts that resolved within the last hour, by key.
    pub fn recently_resolved(&self) -> &BTreeMap<AlertKey, Resolved> {
        &self.resolved
    }

    /// The states as [`Evaluator::save`] writes them (JSON): what a new evaluator reads
    /// back ([`Evaluator::from_json`]) to neither page again nor forget an alert that
    /// fires.
    pub fn to_json(&self) -> Vec<u8> {
        let mut states: Vec<SavedState> = self
            .states
            .iter()
            .filter(|(_, s)| !matches!(s, AlertState::Inactive))
            .map(|(key, state)| {
                let alert = self.active.get(key);
                SavedState {
                    tenant: key.0.clone(),
                    slo: key.1.clone(),
                    tier: key.2.clone(),
                    state: *state,
                    labels: alert.map(|a| a.labels.clone()).unwrap_or_default(),
                    annotations: alert.map(|a| a.annotations.clone()).unwrap_or_default(),
                    resolved_at: None,
                }
            })
            .collect();
        states.extend(self.resolved.iter().map(|(key, r)| SavedState {
            tenant: key.0.clone(),
            slo: key.1.clone(),
            tier: key.2.clone(),
            state: AlertState::Firing { since: r.since },
            labels: r.labels.clone(),
            annotations: r.annotations.clone(),
            resolved_at: Some(r.at),
        }));
        serde_json::to_vec_pretty(&states).expect("alert states serialize")
    }

    /// Writes the states to `path` (JSON, written aside, synced and renamed, and the
    /// folder synced, so that a crash leaves the previous file or this one, whole): a
    /// restart reads them back and neither pages again nor forgets an alert that fires.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_durably(path, &self.to_json())
    }

    /// Reads states saved by [`Evaluator::save`]; a missing file is a fresh start. A
    /// file that does not parse is an error (after a copy is kept beside it), never a
    /// silent reset that would page again or forget a firing alert.
    pub fn load(path: &Path) -> Result<Self, StateFileError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(StateFileError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::from_json(&bytes).map_err(|reason| {
            let backup = path.with_extension("json.damaged");
            let _ = std::fs::copy(path, &backup);
            StateFileError::Damaged {
                path: path.to_path_buf(),
                backup,
                reason,
            }
        })
    }

    /// Reads states written by [`Evaluator::to_json`]; the error says why they do not
    /// parse.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let saved: Vec<SavedState> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let mut out = Self::default();
        for s in saved {
            let key = (s.tenant, s.slo, s.tier);
            if let (Some(at), AlertState::Firing { since }) = (s.resolved_at, s.state) {
                out.resolved.insert(
                    key,
                    Resolved {
                        since,
                        at,
                        labels: s.labels,
                        annotations: s.annotations,
                    },
                );
                continue;
            }
            if !s.labels.is_empty() {
                out.active.insert(
                    key.clone(),
                    Alert {
                        state: s.state,
                        labels: s.labels,
                        annotations: s.annotations,
                    },
                );
            }
            out.states.insert(key, s.state);
        }
        Ok(out)
    }

    /// Evaluates every SLO of `snapshot` (taken at `now`) against its tiers; returns the
    /// transitions, in SLO order.
    pub fn evaluate(&mut self, now: i64, snapshot: &[BurnSnapshot]) -> Vec<Transition> {
        let out = self.evaluate_rules(now, snapshot);
        self.resolved
            .retain(|_, r| now.saturating_sub(r.at) < RESOLVED_KEPT_NANOS);
        for t in &out {
            let key = (t.tenant.clone(), t.slo.clone(), t.tier.clone());
            match (t.from, t.to) {
                (AlertState::Firing { since }, AlertState::Inactive) => {
                    self.resolved.insert(
                        key,
                        Resolved {
                            since,
                            at: t.at,
                            labels: t.labels.clone(),
                            annotations: t.annotations.clone(),
                        },
                    );
                }
                (_, AlertState::Firing { .. }) => {
                    self.resolved.remove(&key);
                }
                _ => {}
            }
        }
        out
    }

    fn evaluate_rules(&mut self, now: i64, snapshot: &[BurnSnapshot]) -> Vec<Transition> {
        let mut out = Vec::new();
        for s in snapshot {
            let def: &SloDef = &s.def;
            let objective = def.objective_ratio();
            let window = tier_window_minutes(def, now);
            // In the units of the SLO's budgeting, as the status computes them.
            let rate = |minutes: u32| {
                s.units(minutes)
                    .and_then(|(good, total)| math::burn_rate(good, total, objective))
            };
            // A group's alerts carry its attributes as labels (`customer.tier` →
            // `customer_tier`), and its state is kept apart: `page-fast{customer_tier="gold"}`.
            let group: Vec<(String, String)> = s
                .group
                .iter()
                .map(|(k, v)| (prometheus_label(k), v.clone()))
                .collect();
            let suffix = if group.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!("{{{}}}", pairs.join(","))
            };
            for tier in tiers_for(def, window) {
                let (long, short) = (rate(tier.long_minutes), rate(tier.short_minutes));
                let enough = s
                    .window(tier.long_minutes)
                    .is_some_and(|t| t.total >= def.min_events);
                let holds = enough
                    && long.is_some_and(|r| r > tier.factor)
                    && short.is_some_and(|r| r > tier.factor);
                let mut labels = labels_of(def, &tier);
                labels.extend(group.iter().cloned());
                let mut annotations = annotations_of(def, &tier, (long, short));
                if !suffix.is_empty() {
                    annotations.insert("group".into(), suffix.clone());
                }
                out.extend(self.step(
                    def,
                    &format!("{}{suffix}", tier.name),
                    tier.severity,
                    tier.for_seconds,
                    holds,
                    now,
                    (long, short),
                    labels,
                    annotations,
                ));
            }
            // Alerts on the budget itself and on missing data: for the SLO as a whole.
            if !s.group.is_empty() {
                continue;
            }
            let (good, total) = s.units(def.window.minutes_at(now)).unwrap_or_default();
            let remaining = math::budget_remaining(good, total, objective);
            let burn_1h = rate(60);
            let b = &def.budget_alerts;
            if let Some((within, severity)) = b.exhaustion_within_seconds {
                let secs =
                    math::exhaustion_seconds(remaining, burn_1h, def.window.length_seconds(now));
                let holds = secs.is_some_and(|s| s > 0.0 && s <= within as f64);
                let (labels, annotations) = budget_alert(
                    def,
                    "budget-exhaustion",
                    severity,
                    format!(
                        "{} will spend its error budget within {} at the 1h burn rate ({} left).",
                        def.name,
                        secs.map_or("-".to_string(), |s| format!("{:.1}h", s / 3600.0)),
                        remaining.map_or("no data".to_string(), |r| format!("{:.1}%", r * 100.0)),
                    ),
                );
                out.extend(self.step(
                    def,
                    "budget-exhaustion",
                    severity,
                    0,
                    holds,
                    now,
                    (burn_1h, None),
                    labels,
                    annotations,
                ));
            }
            if let Some(severity) = b.exhausted {
                let holds = remaining.is_some_and(|r| r <= 0.0);
                let (labels, annotations) = budget_alert(
                    def,
                    "budget-exhausted",
                    severity,
                    format!(
                        "{} has spent its error budget ({} left).",
                        def.name,
                        remaining.map_or("no data".to_string(), |r| format!("{:.1}%", r * 100.0)),
                    ),
                );
                out.extend(self.step(
                    def,
                    "budget-exhausted",
                    severity,
                    0,
                    holds,
                    now,
                    (burn_1h, None),
                    labels,
                    annotations,
                ));
            }
            if let Some((minutes, severity)) = b.no_data_minutes {
                let first = *self.first_evaluation.get_or_insert(now);
                let quiet = s.window(minutes).is_some_and(|t| t.total == 0);
                // Not before slotel itself has watched for that long.
                let holds = quiet && now - first >= i64::from(minutes) * 60_000_000_000;
                let (labels, annotations) = budget_alert(
                    def,
                    "no-data",
                    severity,
                    format!(
                        "{} has received no events for {}.",
                        def.name,
                        slotel_model::format_minutes(minutes)
                    ),
                );
                out.extend(self.step(
                    def,
                    "no-data",
                    severity,
                    0,
                    holds,
                    now,
                    (None, None),
                    labels,
                    annotations,
                ));
            }
        }
        out
    }
}

/// Writes `bytes` to `path` aside, synced and renamed, and the folder synced: a crash
/// leaves the previous file or this one, whole.
pub(super) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("slotel-alert-{}", std::process::id()));
        let path = dir.join("alerts.json");
        let mut e = Evaluator::new();
        let key = (
            "default".to_string(),
            "api".to_string(),
            "page-fast".to_string(),
        );
        e.states
            .insert(key.clone(), AlertState::Firing { since: 42 });
        let labels = BTreeMap::from([("burnrate_tier".to_string(), "page-fast".to_string())]);
        e.active.insert(
            key.clone(),
            Alert {
                state: AlertState::Firing { since: 42 },
                labels: labels.clone(),
                annotations: BTreeMap::new(),
            },
        );
        e.save(&path).unwrap();
        let back = Evaluator::load(&path).unwrap();
        assert_eq!(
            back.state("default", "api", "page-fast"),
            AlertState::Firing { since: 42 }
        );
        // Listed as firing before any evaluation.
        let active = back.active(Some("default"));
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].labels, labels);
        assert_eq!(
            back.state("default", "api", "page-slow"),
            AlertState::Inactive
        );
        assert_eq!(
            Evaluator::load(&dir.join("none.json"))
                .unwrap()
                .states
                .len(),
            0
        );
        // A resolved alert is remembered for receivers that may have missed the resolve.
        let slow = (
            "default".to_string(),
            "api".to_string(),
            "page-slow".to_string(),
        );
        e.resolved.insert(
            slow.clone(),
            Resolved {
                since: 7,
                at: 50,
                labels: labels.clone(),
                annotations: BTreeMap::new(),
            },
        );
        e.save(&path).unwrap();
        let back = Evaluator::load(&path).unwrap();
        assert_eq!(back.recently_resolved()[&slow].since, 7);
        assert_eq!(back.recently_resolved()[&slow].at, 50);
        assert_eq!(
            back.state("default", "api", "page-slow"),
            AlertState::Inactive
        );
        assert_eq!(back.firing().len(), 1);
        // A damaged file stops the start with a copy kept; nothing is reset.
        std::fs::write(&path, b"[{\"tenant\": ").unwrap();
        match Evaluator::load(&path) {
            Err(StateFileError::Damaged { backup, .. }) => {
                assert_eq!(std::fs::read(backup).unwrap(), b"[{\"tenant\": ");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"[{\"tenant\": ");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn overrides_change_disable_and_add_tiers() {
        let text = r#"
slos:
  - name: api
    service: api
    objective: 99.9
    window: 30d
    alerting:
      tiers:
        page-fast: { factor: 20, for: 2m, labels: { team: core } }
        ticket-slow: { disabled: true }
        page-burst: { long: 5m, short: 5m, factor: 50, severity: page }
    sli: { spans: { good: { status: ok } } }
"#;
        let defs = slotel_spec::parse_native(Path::new("t.yaml"), text).unwrap();
        let tiers = tiers_for(&defs[0], 30 * 1440);
        let names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["page-fast", "page-slow", "ticket-fast", "page-burst"]
        );
        assert_eq!((tiers[0].factor, tiers[0].for_seconds), (20.0, 120));
        assert_eq!(tiers[0].labels["team"], "core");
        assert_eq!(
            (
                tiers[3].long_minutes,
                tiers[3].short_minutes,
                tiers[3].severity
            ),
            (5, 5, Severity::Page)
        );
        let bad = text.replace("long: 5m", "long: 4m");
        let e = slotel_spec::parse_native(Path::new("t.yaml"), &bad).unwrap_err();
        assert!(
            e[0].message.contains("must be standard burn-rate windows"),
            "{e:?}"
        );
        let bad = text.replace("long: 5m, short: 5m, ", "");
        let e = slotel_spec::parse_native(Path::new("t.yaml"), &bad).unwrap_err();
        assert!(
            e[0].message
                .contains("needs long, short, factor and severity"),
            "{e:?}"
        );
    }

    #[test]
    fn pending_until_for_has_passed() {
        let text = "slos:\n  - name: api\n    service: api\n    objective: 99.9\n    window: 30d\n    alerting: { tiers: { page-fast: { for: 2m } } }\n    sli: { spans: { good: { status: ok } } }\n";
        let defs = slotel_spec::parse_native(Path::new("t.yaml"), text).unwrap();
        let snapshot = |bad: u64| crate::engine::BurnSnapshot {
            def: std::sync::Arc::new(defs[0].clone()),
            group: Vec::new(),
            windows: slotel_model::BURN_RATE_WINDOWS
                .iter()
                .map(|&w| (w, slotel_model::Tally::new(100 - bad, 100)))
                .collect(),
            units: Vec::new(),
        };
        let mut e = Evaluator::new();
        let min = 60_000_000_000;
        let t = e.evaluate(0, &[snapshot(50)]);
        let page_fast = |t: &[Transition]| t.iter().find(|t| t.tier == "page-fast").map(|t| t.to);
        assert_eq!(page_fast(&t), Some(AlertState::Pending { since: 0 }));
        assert_eq!(page_fast(&e.evaluate(min, &[snapshot(50)])), None);
        assert_eq!(
            page_fast(&e.evaluate(2 * min, &[snapshot(50)])),
            Some(AlertState::Firing { since: 2 * min })
        );
        // A pending alert that stops holding goes back to inactive without firing.
        let mut e = Evaluator::new();
        e.evaluate(0, &[snapshot(50)]);
        assert_eq!(
            page_fast(&e.evaluate(min, &[snapshot(0)])),
            Some(AlertState::Inactive)
        );
    }

    #[test]
    fn budget_exhaustion_exhausted_and_no_data_alerts() {
        let text = "slos:\n  - name: api\n    service: api\n    objective: 99.9\n    window: 30d\n    alerting:\n      tiers: { page-fast: { disabled: true }, page-slow: { disabled: true }, ticket-fast: { disabled: true }, ticket-slow: { disabled: true } }\n      exhaustion: { within: 24h }\n      budget_exhausted: { severity: page }\n      no_data: { after: 30m }\n    sli: { spans: { good: { status: ok } } }\n";
        let defs = slotel_spec::parse_native(Path::new("t.yaml"), text).unwrap();
        let def = std::sync::Arc::new(defs[0].clone());
        // (1h: total, bad), (SLO window: total, bad), (30m: total)
        let snapshot = |h: (u64, u64), w: (u64, u64), m30: u64| crate::engine::BurnSnapshot {
            def: def.clone(),
            group: Vec::new(),
            windows: vec![
                (30, slotel_model::Tally::new(m30, m30)),
                (60, slotel_model::Tally::new(h.0 - h.1, h.0)),
                (43_200, slotel_model::Tally::new(w.0 - w.1, w.0)),
            ],
            units: Vec::new(),
        };
        let fired = |t: &[Transition]| -> Vec<(String, bool)> {
            t.iter()
                .map(|t| (t.tier.clone(), matches!(t.to, AlertState::Firing { .. })))
                .collect()
        };
        let min = 60_000_000_000i64;
        let mut e = Evaluator::new();
        // Half the budget left, burning at 20x: spent in 0.5 × 30d / 20 = 18 h.
        let t = e.evaluate(0, &[snapshot((1000, 20), (1_000_000, 500), 10)]);
        assert_eq!(fired(&t), [("budget-exhaustion".to_string(), true)]);
        let a = &e.active(None)[0];
        assert_eq!(a.labels["alertname"], "SLOBudgetExhaustion");
        assert!(
            a.annotations["summary"].contains("within 18.0h"),
            "{:?}",
            a.annotations
        );
        // At 5x it is 72 h away: resolved.
        let t = e.evaluate(min, &[snapshot((1000, 5), (1_000_000, 500), 10)]);
        assert_eq!(fired(&t), [("budget-exhaustion".to_string(), false)]);
        // Spent: the exhausted alert pages.
        let t = e.evaluate(2 * min, &[snapshot((1000, 0), (1_000_000, 1500), 10)]);
        assert_eq!(fired(&t), [("budget-exhausted".to_string(), true)]);
        assert_eq!(e.active(None)[0].labels["severity"], "page");
        // No events for 30 minutes fires only once slotel has watched that long.
        let t = e.evaluate(3 * min, &[snapshot((1000, 0), (1_000_000, 1500), 0)]);
        assert!(fired(&t).is_empty(), "{t:?}");
        let t = e.evaluate(30 * min, &[snapshot((1000, 0), (1_000_000, 1500), 0)]);
        assert_eq!(fired(&t), [("no-data".to_string(), true)]);
    }
}
