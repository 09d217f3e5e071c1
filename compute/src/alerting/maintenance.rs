//! Maintenance windows: scheduled or ad-hoc periods during which the notifications of
//! the SLOs they name are held back, and, where a window says so, the events in it do not
//! count toward the SLI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use slotel_model::SloDef;

/// A maintenance window as configured or posted to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Unique per tenant.
    pub name: String,
    /// The tenant whose SLOs it covers (`default` when not given).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Start, RFC 3339.
    #[schema(format = DateTime)]
    pub start: String,
    /// End, RFC 3339.
    #[schema(format = DateTime)]
    pub end: String,
    /// SLOs it covers, by name.
    #[serde(default)]
    pub slos: Vec<String>,
    /// Services whose SLOs it covers.
    #[serde(default)]
    pub services: Vec<String>,
    /// Whether events in the window are left out of the SLI.
    #[serde(default)]
    pub exclude_events: bool,
}

fn default_tenant() -> String {
    slotel_proto::DEFAULT_TENANT.to_string()
}

#[derive(Debug, Clone)]
struct Parsed {
    window: MaintenanceWindow,
    start: i64,
    end: i64,
}

impl Parsed {
    /// Whether the window names SLO `slo` of `service` and `tenant`.
    fn covers(&self, tenant: &str, slo: &str, service: &str) -> bool {
        self.window.tenant == tenant
            && (self.window.slos.iter().any(|s| s == slo)
                || self.window.services.iter().any(|s| s == service))
    }
}

/// The maintenance windows in force.
#[derive(Debug, Default)]
pub struct Maintenance {
    windows: RwLock<Vec<Parsed>>,
    any_exclusion: AtomicBool,
}

/// Why a maintenance window is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceError {
    /// `start` or `end` is not an RFC 3339 time.
    #[error("{time:?} is not an RFC 3339 time: {reason}")]
    Time {
        /// The time as given.
        time: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `end` is not after `start`.
    #[error("maintenance window {0:?} ends before it starts")]
    EndsBeforeStart(String),
    /// Neither `slos` nor `services` is set.
    #[error("maintenance window {0:?} names no SLO and no service")]
    NoTarget(String),
    /// `name` is empty.
    #[error("a maintenance window needs a name")]
    NoName,
    /// `end` has passed already.
    #[error("maintenance window {0:?} is over already")]
    Over(String),
    /// A target is not loaded for the tenant.
    #[error("maintenance window {window:?} names {what} {name:?}, which has no SLO loaded")]
    UnknownTarget {
        /// The window.
        window: String,
        /// `SLO` or `service`.
        what: &'static str,
        /// The name given.
        name: String,
    },
}

fn parse_time(s: &str) -> Result<i64, MaintenanceError> {
    slotel_model::time::parse_rfc3339(s).map_err(|e| MaintenanceError::Time {
        time: s.to_string(),
        reason: e.to_string(),
    })
}

impl Maintenance {
    /// Adds (or replaces, by tenant and name) a window.
    pub fn put(&self, window: MaintenanceWindow) -> Result<(), MaintenanceError> {
        let start = parse_time(&window.start)?;
        let end = parse_time(&window.end)?;
        if end <= start {
            return Err(MaintenanceError::EndsBeforeStart(window.name));
        }
        if window.slos.is_empty() && window.services.is_empty() {
            return Err(MaintenanceError::NoTarget(window.name));
        }
        if window.name.is_empty() {
            return Err(MaintenanceError::NoName);
        }
        let mut w = self.windows.write().unwrap_or_else(|e| e.into_inner());
        w.retain(|p| !(p.window.tenant == window.tenant && p.window.name == window.name));
        w.push(Parsed { window, start, end });
        self.any_exclusion
            .store(w.iter().any(|p| p.window.exclude_events), Ordering::Relaxed);
        Ok(())
    }

    /// [`Maintenance::put`] for a window posted now (at `now`) by a user of `known`
    /// (the tenant's loaded SLOs): one already over, or naming an SLO or a service
    /// that is not loaded, is refused, naming it.
    pub fn put_checked(
        &self,
        window: MaintenanceWindow,
        now: i64,
        known: &[Arc<SloDef>],
    ) -> Result<(), MaintenanceError> {
        if parse_time(&window.end)? <= now {
            return Err(MaintenanceError::Over(window.name));
        }
        if let Some(slo) = window
            .slos
            .iter()
            .find(|s| !known.iter().any(|d| &d.name == *s))
        {
            return Err(MaintenanceError::UnknownTarget {
                window: window.name.clone(),
                what: "SLO",
                name: slo.clone(),
            });
        }
        if let Some(service) = window
            .services
            .iter()
            .find(|s| !known.iter().any(|d| &d.service == *s))
        {
            return Err(MaintenanceError::UnknownTarget {
                window: window.name.clone(),
                what: "service",
                name: service.clone(),
            });
        }
        self.put(window)
    }

    /// Replaces every window with `windows` (all of them valid, or none replaced).
    pub fn replace_all(&self, windows: Vec<MaintenanceWindow>) -> Result<(), MaintenanceError> {
        let next = Maintenance::default();
        for w in windows {
            next.put(w)?;
        }
        let parsed = next.windows.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut w = self.windows.write().unwrap_or_else(|e| e.into_inner());
        *w = parsed;
        self.any_exclusion
            .store(w.iter().any(|p| p.window.exclude_events), Ordering::Relaxed);
        Ok(())
    }

    /// Every window, of every tenant.
    pub fn all(&self) -> Vec<MaintenanceWindow> {
        let w = self.windows.read().unwrap_or_else(|e| e.into_inner());
        w.iter().map(|p| p.window.clone()).collect()
    }

    /// Removes a window; whether it existed.
    pub fn remove(&self, tenant: &str, name: &str) -> bool {
        let mut w = self.windows.write().unwrap_or_else(|e| e.into_inner());
        let before = w.len();
        w.retain(|p| !(p.window.tenant == tenant && p.window.name == name));
        self.any_exclusion
            .store(w.iter().any(|p| p.window.exclude_events), Ordering::Relaxed);
        w.len() != before
    }

    /// The windows of `tenant`, by start.
    pub fn list(&self, tenant: &str) -> Vec<MaintenanceWindow> {
        let w = self.windows.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<&Parsed> = w.iter().filter(|p| p.window.tenant == tenant).collect();
        out.sort_by_key(|p| p.start);
        out.into_iter().map(|p| p.window.clone()).collect()
    }

    /// The window holding back `def`'s notifications at `now`, if any.
    pub fn silencing(&self, def: &SloDef, now: i64) -> Option<String> {
        self.silences(&def.tenant, &def.name, &def.service, now)
    }

    /// The window holding back the notifications of SLO `slo` (of `service`, `tenant`)
    /// at `now`, if any.
    pub fn silences(&self, tenant: &str, slo: &str, service: &str, now: i64) -> Option<String> {
        let w = self.windows.read().unwrap_or_else(|e| e.into_inner());
        w.iter()
            .find(|p| p.start <= now && now < p.end && p.covers(tenant, slo, service))
            .map(|p| p.window.name.clone())
    }

    /// Whether an event of `def` at `time` is left out of the SLI.
    pub fn excludes(&self, def: &SloDef, time: i64) -> bool {
        if !self.any_exclusion.load(Ordering::Relaxed) {
            return false;
        }
        let w = self.windows.read().unwrap_or_else(|e| e.into_inner());
        w.iter().any(|p| {
            p.window.exclude_events
                && p.start <= time
                && time < p.end
                && p.covers(&def.tenant, &def.name, &def.service)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotel_spec::parse_native;
    use std::path::Path;

    #[test]
    fn replace_all_takes_every_window_or_none() {
        let window = |name: &str, end: &str| MaintenanceWindow {
            name: name.into(),
            tenant: "default".into(),
            start: "2026-12-01T00:00:00Z".into(),
            end: end.into(),
            slos: vec!["api".into()],
            services: Vec::new(),
            exclude_events: false,
        };
        let m = Maintenance::default();
        m.put(window("old", "2026-12-02T00:00:00Z")).unwrap();
        m.replace_all(vec![
            window("a", "2026-12-02T00:00:00Z"),
            window("b", "2026-12-03T00:00:00Z"),
        ])
        .unwrap();
        let names =
            |m: &Maintenance| -> Vec<String> { m.all().into_iter().map(|w| w.name).collect() };
        assert_eq!(names(&m), ["a", "b"]);
        // One window ending before it starts: nothing changes.
        let err = m
            .replace_all(vec![
                window("c", "2026-12-02T00:00:00Z"),
                window("d", "2026-11-01T00:00:00Z"),
            ])
            .unwrap_err();
        assert_eq!(err, MaintenanceError::EndsBeforeStart("d".into()));
        assert_eq!(names(&m), ["a", "b"]);
    }

    #[test]
    fn windows_cover_their_slos_and_times() {
        let defs = parse_native(
            Path::new("t.yaml"),
            "slos:\n  - name: a\n    service: s\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: ok } } }\n",
        )
        .unwrap();
        let m = Maintenance::default();
        let w = |name: &str, exclude| MaintenanceWindow {
            name: name.into(),
            tenant: "default".into(),
            start: "2026-12-01T02:00:00Z".into(),
            end: "2026-12-01T04:00:00Z".into(),
            slos: vec![],
            services: vec!["s".into()],
            exclude_events: exclude,
        };
        let at = |s: &str| parse_time(s).unwrap();
        m.put(w("db", false)).unwrap();
        assert_eq!(
            m.silencing(&defs[0], at("2026-12-01T03:00:00Z")).as_deref(),
            Some("db")
        );
        assert_eq!(m.silencing(&defs[0], at("2026-12-01T04:00:00Z")), None);
        assert!(!m.excludes(&defs[0], at("2026-12-01T03:00:00Z")));
        m.put(w("db", true)).unwrap();
        assert!(m.excludes(&defs[0], at("2026-12-01T03:00:00Z")));
        assert_eq!(m.list("default").len(), 1);
        assert!(m.remove("default", "db"));
        assert!(!m.excludes(&defs[0], at("2026-12-01T03:00:00Z")));
        let mut bad = w("x", false);
        bad.end = "2026-12-01T01:00:00Z".into();
        assert!(
            m.put(bad)
                .unwrap_err()
                .to_string()
                .contains("ends before it starts")
        );
        let mut bad = w("x", false);
        bad.services.clear();
        assert!(
            m.put(bad)
                .unwrap_err()
                .to_string()
                .contains("names no SLO and no service")
        );
    }
}
