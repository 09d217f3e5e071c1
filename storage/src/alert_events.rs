//! The `alert_events` table: every alert state change, for history and audits.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::Result;

use slotel_compute::alerting::{Transition, TransitionLog};

/// The table's name.
pub const ALERT_EVENTS: &str = "alert_events";

/// One alert state change.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// The SLO's tenant (a path partition, not a column).
    pub tenant: String,
    /// When, in milliseconds since the epoch.
    pub time_ms: i64,
    /// The SLO.
    pub slo: String,
    /// The rule tier (`page-fast`, `budget-exhausted`, …).
    pub tier: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// The state before: `inactive`, `pending` or `firing`.
    pub from: String,
    /// The state after.
    pub to: String,
    /// The burn rate over the tier's long window.
    pub burn_rate_long: Option<f64>,
    /// The burn rate over the tier's short window.
    pub burn_rate_short: Option<f64>,
    /// Whether a maintenance window held the notification back.
    pub silenced: bool,
    /// The alert's labels, as a JSON object.
    pub labels: String,
}

impl AlertEvent {
    /// The event of transition `t`; `silenced` when a maintenance window held it back.
    pub fn of(t: &Transition, silenced: bool) -> Self {
        AlertEvent {
            tenant: t.tenant.clone(),
            time_ms: t.at.div_euclid(1_000_000),
            slo: t.slo.clone(),
            tier: t.tier.clone(),
            severity: t.severity.as_str().to_string(),
            from: t.from.as_str().to_string(),
            to: t.to.as_str().to_string(),
            burn_rate_long: t.burn_rates.0,
            burn_rate_short: t.burn_rates.1,
            silenced,
            labels: serde_json::to_string(&t.labels).unwrap_or_default(),
        }
    }
}

impl TransitionLog for crate::Store {
    fn record(
        &self,
        transitions: &[Transition],
        silenced: &dyn Fn(&std::collections::BTreeMap<String, String>) -> bool,
    ) {
        self.record_events(
            transitions
                .iter()
                .map(|t| AlertEvent::of(t, silenced(&t.labels))),
        );
    }
}

/// The columns of `alert_events` files.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("slo", DataType::Utf8, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("from_state", DataType::Utf8, false),
        Field::new("to_state", DataType::Utf8, false),
        Field::new("burn_rate_long", DataType::Float64, true),
        Field::new("burn_rate_short", DataType::Float64, true),
        Field::new("silenced", DataType::Boolean, false),
        Field::new("labels", DataType::Utf8, false),
    ]))
}

/// Events as one record batch of [`schema`].
pub fn to_batch(events: &[&AlertEvent]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&AlertEvent) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| f(e))))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(events.iter().map(|e| e.time_ms))
                .with_timezone("UTC"),
        ),
        text(&|e| &e.slo),
        text(&|e| &e.tier),
        text(&|e| &e.severity),
        text(&|e| &e.from),
        text(&|e| &e.to),
        Arc::new(Float64Array::from_iter(
            events.iter().map(|e| e.burn_rate_long),
        )),
        Arc::new(Float64Array::from_iter(
            events.iter().map(|e| e.burn_rate_short),
        )),
        Arc::new(BooleanArray::from_iter(
            events.iter().map(|e| Some(e.silenced)),
        )),
        text(&|e| &e.labels),
    ];
    Ok(RecordBatch::try_new(schema(), cols)?)
}
