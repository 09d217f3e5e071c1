//! PromQL functions.

use super::*;

/// A `*_over_time`, `rate`, `increase` or `delta` of `samples` in `(end - range, end]`.
pub(super) fn over_time(name: &str, samples: &[(i64, f64)], end: i64, range: i64) -> Option<f64> {
    let first = samples.first()?;
    match name {
        "sum_over_time" => Some(samples.iter().map(|s| s.1).sum()),
        "avg_over_time" => Some(samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64),
        "max_over_time" => samples.iter().map(|s| s.1).reduce(f64::max),
        "min_over_time" => samples.iter().map(|s| s.1).reduce(f64::min),
        "count_over_time" => Some(samples.len() as f64),
        "last_over_time" => samples.last().map(|s| s.1),
        _ => {
            // Prometheus' extrapolatedRate.
            if samples.len() < 2 {
                return None;
            }
            let last = samples[samples.len() - 1];
            let counter = name != "delta";
            let mut result = last.1 - first.1;
            if counter {
                let mut prev = first.1;
                for s in &samples[1..] {
                    if s.1 < prev {
                        result += prev;
                    }
                    prev = s.1;
                }
            }
            let range_start = end - range;
            let mut to_start = (first.0 - range_start) as f64 / 1000.0;
            let to_end = (end - last.0) as f64 / 1000.0;
            let sampled = (last.0 - first.0) as f64 / 1000.0;
            let avg_step = sampled / (samples.len() - 1) as f64;
            if counter && result > 0.0 && first.1 >= 0.0 {
                let to_zero = sampled * (first.1 / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            let threshold = avg_step * 1.1;
            let mut interval = sampled;
            interval += if to_start < threshold {
                to_start
            } else {
                avg_step / 2.0
            };
            interval += if to_end < threshold {
                to_end
            } else {
                avg_step / 2.0
            };
            let mut factor = interval / sampled;
            if name == "rate" {
                factor /= range as f64 / 1000.0;
            }
            Some(result * factor)
        }
    }
}

impl Evaluation {
    pub(super) fn vector_arg(&self, c: &Call, i: usize) -> Result<Vec<Series>, PromError> {
        match c.args.args.get(i).map(|a| self.eval(a)).transpose()? {
            Some(Value::Vector(v)) => Ok(v),
            _ => Err(bad(format!(
                "function {} needs an instant vector as argument {}",
                c.func.name,
                i + 1
            ))),
        }
    }

    pub(super) fn scalar_arg(&self, c: &Call, i: usize) -> Result<Vec<f64>, PromError> {
        match c.args.args.get(i).map(|a| self.eval(a)).transpose()? {
            Some(Value::Scalar(v)) => Ok(v),
            _ => Err(bad(format!(
                "function {} needs a scalar as argument {}",
                c.func.name,
                i + 1
            ))),
        }
    }

    pub(super) fn call(&self, c: &Call) -> Result<Value, PromError> {
        let name = c.func.name;
        let n = self.steps.len();
        let map = |series: Vec<Series>, f: &dyn Fn(f64, usize) -> f64| {
            Value::Vector(
                series
                    .into_iter()
                    .map(|mut s| {
                        s.labels.remove("__name__");
                        s.values = s
                            .values
                            .iter()
                            .enumerate()
                            .map(|(i, v)| v.map(|x| f(x, i)))
                            .collect();
                        s
                    })
                    .collect(),
            )
        };
        match name {
            "time" => Ok(Value::Scalar(
                self.steps.iter().map(|t| *t as f64 / 1000.0).collect(),
            )),
            "vector" => {
                let v = self.scalar_arg(c, 0)?;
                Ok(Value::Vector(vec![Series {
                    labels: Labels::new(),
                    values: v.into_iter().map(Some).collect(),
                }]))
            }
            "scalar" => {
                let v = self.vector_arg(c, 0)?;
                Ok(Value::Scalar(
                    (0..n)
                        .map(|i| {
                            let present: Vec<f64> = v.iter().filter_map(|s| s.values[i]).collect();
                            if present.len() == 1 {
                                present[0]
                            } else {
                                f64::NAN
                            }
                        })
                        .collect(),
                ))
            }
            "clamp_min" | "clamp_max" => {
                let v = self.vector_arg(c, 0)?;
                let bound = self.scalar_arg(c, 1)?;
                Ok(if name == "clamp_min" {
                    map(v, &|x, i| x.max(bound[i]))
                } else {
                    map(v, &|x, i| x.min(bound[i]))
                })
            }
            "clamp" => {
                let v = self.vector_arg(c, 0)?;
                let (lo, hi) = (self.scalar_arg(c, 1)?, self.scalar_arg(c, 2)?);
                Ok(map(v, &|x, i| {
                    if lo[i] > hi[i] {
                        f64::NAN
                    } else {
                        x.max(lo[i]).min(hi[i])
                    }
                }))
            }
            "abs" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.abs())),
            "ceil" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.ceil())),
            "floor" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.floor())),
            "sqrt" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.sqrt())),
            "exp" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.exp())),
            "ln" => Ok(map(self.vector_arg(c, 0)?, &|x, _| x.ln())),
            "round" if c.args.args.len() == 1 => {
                Ok(map(self.vector_arg(c, 0)?, &|x, _| (x + 0.5).floor()))
            }
            "sort" | "sort_desc" => {
                let mut v = self.vector_arg(c, 0)?;
                let key = |s: &Series| s.values.last().copied().flatten().unwrap_or(f64::NAN);
                v.sort_by(|a, b| key(a).total_cmp(&key(b)));
                if name == "sort_desc" {
                    v.reverse();
                }
                Ok(Value::Vector(v))
            }
            "rate" | "increase" | "delta" | "sum_over_time" | "avg_over_time" | "max_over_time"
            | "min_over_time" | "count_over_time" | "last_over_time" => {
                let Some(Expr::MatrixSelector(m)) = c.args.args.first().map(|a| a.as_ref()) else {
                    return Err(bad(format!("function {name} needs a range vector")));
                };
                let range = m.range.as_millis() as i64;
                let off = offset_ms(&m.vs.offset);
                let mut out = Vec::new();
                for (mut labels, samples) in self.range_samples(&m.vs) {
                    self.check_deadline()?;
                    if name != "last_over_time" {
                        labels.remove("__name__");
                    }
                    let values = self
                        .steps
                        .iter()
                        .map(|t| over_time(name, window(&samples, *t, range, off), t - off, range))
                        .collect::<Vec<_>>();
                    if values.iter().any(Option::is_some) {
                        out.push(Series { labels, values });
                    }
                }
                Ok(Value::Vector(out))
            }
            other => Err(bad(format!(
                "function {other}() is not supported by slotel"
            ))),
        }
    }
}
