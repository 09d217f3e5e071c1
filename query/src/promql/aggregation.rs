//! PromQL aggregation operators.

use super::*;

impl Evaluation {
    pub(super) fn aggregate(&self, a: &AggregateExpr) -> Result<Value, PromError> {
        let op = a.op.to_string();
        if !matches!(op.as_str(), "sum" | "avg" | "min" | "max" | "count") {
            return Err(bad(format!("aggregation {op} is not supported by slotel")));
        }
        let Value::Vector(input) = self.eval(&a.expr)? else {
            return Err(bad(format!("{op} needs an instant vector")));
        };
        let key = |labels: &Labels| project(labels, a.modifier.as_ref(), |_| Labels::new());
        let mut groups: BTreeMap<Labels, Vec<&Series>> = BTreeMap::new();
        for s in &input {
            groups.entry(key(&s.labels)).or_default().push(s);
        }
        let n = self.steps.len();
        let out = groups
            .into_iter()
            .map(|(labels, members)| {
                let values = (0..n)
                    .map(|i| {
                        let xs: Vec<f64> = members.iter().filter_map(|s| s.values[i]).collect();
                        if xs.is_empty() {
                            return None;
                        }
                        Some(match op.as_str() {
                            "sum" => xs.iter().sum(),
                            "avg" => xs.iter().sum::<f64>() / xs.len() as f64,
                            "min" => xs.iter().copied().fold(f64::INFINITY, |m, x| {
                                if x < m || m.is_nan() { x } else { m }
                            }),
                            "max" => xs.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
                                if x > m || m.is_nan() { x } else { m }
                            }),
                            _ => xs.len() as f64,
                        })
                    })
                    .collect();
                Series { labels, values }
            })
            .filter(|s| s.values.iter().any(Option::is_some))
            .collect();
        Ok(Value::Vector(out))
    }
}
