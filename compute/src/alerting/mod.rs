//! Alerting: the burn-rate and budget rules and their state machine ([`rules`]), the
//! alert loop that evaluates them on the engine's clock (`run`), release gates,
//! maintenance windows, and the notifiers that deliver alerts ([`notify`]).
//!
//! Flow: every interval the loop takes the engine's [`crate::BurnSnapshot`]s, the
//! [`Evaluator`] turns them into [`Transition`]s, the loop logs and saves them, records
//! them in a [`TransitionLog`] (storage's `alert_events`) and hands the active alerts to
//! the [`notify::Router`], which fans them out to Alertmanager, webhooks, PagerDuty and
//! Slack.

pub mod config;
pub mod gate;
pub mod maintenance;
mod metrics;
pub mod notify;
pub mod rules;
mod run;

pub use metrics::AlertCollector;
pub use rules::*;
pub use run::{AlertLoop, BoxFuture, BurnSource, StateFile, StatePlace, TransitionLog};
