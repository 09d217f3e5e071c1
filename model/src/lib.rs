//! The SLO model every part of slotel shares, free of any runtime: the validated SLO
//! ([`SloDef`]) with its selectors and windows, the burn-rate alert tiers, the count
//! triple ([`Tally`]) and group keys ([`GroupKey`]) the engine, storage and query agree
//! on, the catalog of the series slotel serves, and the clock.
//!
//! Flow: the spec parsers (`slotel-spec`) build [`SloDef`]s; the engine (`slotel-compute`)
//! counts events into [`Tally`]s per SLO and [`GroupKey`]; storage writes them; query and
//! the dashboards name them through [`catalog`].

#![warn(missing_docs, unreachable_pub)]

pub mod catalog;
pub mod group;
pub mod names;
pub mod selector;
pub mod slo;
pub mod tally;
pub mod tiers;
pub mod time;
pub mod window;

pub use group::GroupKey;
pub use selector::{
    AttrMatch, AttrValue, GoodRule, HttpStatus, SpanKind, SpanSelector, StatusRule, anchored_regex,
    unanchored,
};
pub use slo::{
    BudgetAlerts, Budgeting, DEFAULT_MIN_EVENTS, DEFAULT_TENANT, MAX_GROUP_BY, MetricSelector,
    Objective, Severity, Sli, SloDef, TierOverride, parse_severity, percent_to_ratio,
    severity_name,
};
pub use tally::{Counted, Tally};
pub use tiers::{
    DEFAULT_TIER_NAMES, Tier, WINDOW_PAIRS, default_tiers, tier_window_minutes, tiers_for,
};
pub use time::{Clock, ManualClock, SystemClock};
pub use window::{
    BURN_RATE_WINDOWS, CalendarUnit, NamedTz, Window, calendar_bounds, format_minutes,
};
