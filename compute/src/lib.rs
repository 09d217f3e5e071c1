//! The SLO engine and alerting: the span classifier, the per-minute aggregator, the
//! window, budget and burn-rate math, and the alert rules, loop and notifiers.
//!
//! Flow: `slotel-spec` parses SLO files into [`slotel_model::SloDef`]s; [`Engine`] compiles them into a
//! [`classify::SloIndex`] and keeps one [`window::MinuteRing`] of good/total counts per
//! SLO; each [`slotel_proto::Batch`] is classified and added to those rings once per
//! batch; [`Engine::status`] sums the rings into an [`status::SloStatus`].

#![warn(missing_docs, unreachable_pub)]

pub mod alerting;
pub mod classify;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod error;
pub mod latency;
pub mod math;
pub mod metric;
pub mod status;
pub mod window;

pub use engine::{
    BurnSnapshot, Cut, Engine, EngineCollector, EngineConfig, EngineStats, Explanation, GroupSums,
    HourPages, MinuteRow, Minutes, Observed, PAGED_DENSE_MINUTES, PageStats, RangeSums,
    RestoreStats, SampleVerdict, ServiceSpans, StateError, burn_ranges, burn_snapshot_from_sums,
    explain_observed, group_burn_ranges, group_burn_snapshot_from_sums, group_ranges,
    group_statuses_from_sums, status_at, status_from_sums, status_ranges,
};
pub use error::{Error, Result};
pub use status::SloStatus;
