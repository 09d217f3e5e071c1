//! SQL functions over the `latency` column of `sli_minute` and `sli_hour`: the
//! histograms are HdrHistogram V2 bytes, which these functions merge and read.
//!
//! - `latency_merge(latency)`: aggregate; one histogram holding every row's (NULL when
//!   no row has one).
//! - `latency_quantile(latency, q)`: the duration at quantile `q` (0 to 1) of a
//!   histogram, in seconds: the upper end of its bucket, at most 1% above the true value.
//!
//! ```sql
//! SELECT slo, latency_quantile(latency_merge(latency), 0.99) AS p99
//! FROM sli_minute WHERE minute > now() - INTERVAL '1 hour' GROUP BY slo
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, ColumnarValue, ScalarUDF, Volatility, create_udaf, create_udf,
};
use slotel_compute::latency::{self, Histogram};

fn decode(bytes: &[u8]) -> Result<Histogram<u64>> {
    latency::deserialize(bytes).map_err(|e| DataFusionError::Execution(e.to_string()))
}

/// `latency_merge(latency)`.
pub fn merge_udaf() -> AggregateUDF {
    create_udaf(
        "latency_merge",
        vec![DataType::Binary],
        Arc::new(DataType::Binary),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Merge::default()))),
        Arc::new(vec![DataType::Binary]),
    )
}

/// The running merge of `latency_merge`.
#[derive(Debug, Default)]
struct Merge {
    sum: Option<Histogram<u64>>,
}

impl Accumulator for Merge {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        for bytes in values.as_binary::<i32>().iter().flatten() {
            let h = decode(bytes)?;
            latency::merge(self.sum.get_or_insert_with(latency::histogram), &h);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(
            self.sum.as_ref().map(latency::serialize),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .sum
                .as_ref()
                .map_or(0, |h| h.distinct_values() * std::mem::size_of::<u64>())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

/// `latency_quantile(latency, q)`.
pub fn quantile_udf() -> ScalarUDF {
    create_udf(
        "latency_quantile",
        vec![DataType::Binary, DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (hists, qs) = (
                arrays[0].as_binary::<i32>(),
                arrays[1].as_primitive::<Float64Type>(),
            );
            let mut out = Vec::with_capacity(hists.len());
            for i in 0..hists.len() {
                if hists.is_null(i) || qs.is_null(i) {
                    out.push(None);
                    continue;
                }
                let q = qs.value(i);
                if !(0.0..=1.0).contains(&q) {
                    return Err(DataFusionError::Execution(format!(
                        "latency_quantile: the quantile must be between 0 and 1, not {q}"
                    )));
                }
                out.push(latency::quantile_seconds(&decode(hists.value(i))?, q));
            }
            Ok(ColumnarValue::Array(Arc::new(Float64Array::from(out))))
        }),
    )
}
