//! PromQL binary operators, with vector matching.

use super::*;

/// The labels a `by`/`on` modifier keeps (the listed ones), or a `without`/`ignoring`
/// modifier keeps (all but the listed ones and the name); `otherwise` without one.
pub(super) fn project(
    labels: &Labels,
    modifier: Option<&LabelModifier>,
    otherwise: impl FnOnce(&Labels) -> Labels,
) -> Labels {
    match modifier {
        Some(LabelModifier::Include(ls)) => labels
            .iter()
            .filter(|(k, _)| ls.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ls)) => labels
            .iter()
            .filter(|(k, _)| !ls.labels.contains(k) && k.as_str() != "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => otherwise(labels),
    }
}

/// `x op y`: the arithmetic result, and for comparisons whether it holds.
pub(super) fn apply(op: &str, x: f64, y: f64) -> Option<(f64, bool)> {
    Some(match op {
        "+" => (x + y, true),
        "-" => (x - y, true),
        "*" => (x * y, true),
        "/" => (x / y, true),
        "%" => (x % y, true),
        "^" => (x.powf(y), true),
        "atan2" => (x.atan2(y), true),
        "==" => (x, x == y),
        "!=" => (x, x != y),
        ">" => (x, x > y),
        "<" => (x, x < y),
        ">=" => (x, x >= y),
        "<=" => (x, x <= y),
        _ => return None,
    })
}

/// The sample `a op b` gives: the arithmetic result; for a comparison, `kept` (the
/// vector's value) where it holds and nothing where not, or 1/0 with `bool`.
pub(super) fn sample_of(
    op: &str,
    a: f64,
    b: f64,
    kept: f64,
    comparison: bool,
    return_bool: bool,
) -> Option<f64> {
    let (v, holds) = apply(op, a, b)?;
    match (comparison, return_bool) {
        (false, _) => Some(v),
        (true, true) => Some(f64::from(u8::from(holds))),
        (true, false) => holds.then_some(kept),
    }
}

pub(super) fn scalar_op(
    series: Vec<Series>,
    s: &[f64],
    op: &str,
    comparison: bool,
    return_bool: bool,
    scalar_left: bool,
) -> Vec<Series> {
    series
        .into_iter()
        .filter_map(|mut v| {
            if !comparison || return_bool {
                v.labels.remove("__name__");
            }
            v.values = v
                .values
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = (*x)?;
                    let (a, b) = if scalar_left { (s[i], x) } else { (x, s[i]) };
                    sample_of(op, a, b, x, comparison, return_bool)
                })
                .collect();
            v.values.iter().any(Option::is_some).then_some(v)
        })
        .collect()
}

impl Evaluation {
    pub(super) fn binary(&self, b: &BinaryExpr) -> Result<Value, PromError> {
        let op = b.op.to_string();
        let return_bool = b.return_bool();
        let comparison = b.op.is_comparison_operator();
        let (lhs, rhs) = (self.eval(&b.lhs)?, self.eval(&b.rhs)?);
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&x, &y)| sample_of(&op, x, y, x, comparison, true).unwrap_or(0.0))
                    .collect(),
            )),
            (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(scalar_op(
                v,
                &s,
                &op,
                comparison,
                return_bool,
                false,
            ))),
            (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(scalar_op(
                v,
                &s,
                &op,
                comparison,
                return_bool,
                true,
            ))),
            (Value::Vector(l), Value::Vector(r)) => {
                self.vector_op(b, &op, l, r, comparison, return_bool)
            }
            _ => Err(bad(format!(
                "operator {op} needs scalars or instant vectors"
            ))),
        }
    }

    pub(super) fn vector_op(
        &self,
        b: &BinaryExpr,
        op: &str,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        comparison: bool,
        return_bool: bool,
    ) -> Result<Value, PromError> {
        let modifier = b.modifier.as_ref();
        let matching = modifier.and_then(|m| m.matching.as_ref());
        if let Some(m) = modifier
            && matches!(
                m.card,
                VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_)
            )
        {
            return Err(bad(
                "group_left and group_right are not supported by slotel",
            ));
        }
        let signature = |labels: &Labels| {
            project(labels, matching, |l| {
                l.iter()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
        };
        let n = self.steps.len();
        if b.op.is_set_operator() {
            let mut right: HashMap<Labels, Vec<&Series>> = HashMap::new();
            for s in &rhs {
                right.entry(signature(&s.labels)).or_default().push(s);
            }
            let present = |sig: &Labels, i: usize| {
                right
                    .get(sig)
                    .is_some_and(|ss| ss.iter().any(|s| s.values[i].is_some()))
            };
            let mut out: Vec<Series> = lhs
                .iter()
                .map(|s| {
                    let sig = signature(&s.labels);
                    let values = (0..n)
                        .map(|i| match op {
                            "and" => s.values[i].filter(|_| present(&sig, i)),
                            "unless" => s.values[i].filter(|_| !present(&sig, i)),
                            _ => s.values[i],
                        })
                        .collect();
                    Series {
                        labels: s.labels.clone(),
                        values,
                    }
                })
                .collect();
            if op == "or" {
                let mut left: HashMap<Labels, Vec<usize>> = HashMap::new();
                for (j, s) in lhs.iter().enumerate() {
                    left.entry(signature(&s.labels)).or_default().push(j);
                }
                for s in &rhs {
                    let sig = signature(&s.labels);
                    let values = (0..n)
                        .map(|i| {
                            let taken = left
                                .get(&sig)
                                .is_some_and(|js| js.iter().any(|&j| lhs[j].values[i].is_some()));
                            if taken { None } else { s.values[i] }
                        })
                        .collect();
                    out.push(Series {
                        labels: s.labels.clone(),
                        values,
                    });
                }
            }
            out.retain(|s| s.values.iter().any(Option::is_some));
            return Ok(Value::Vector(out));
        }
        let mut right: HashMap<Labels, &Series> = HashMap::new();
        for s in &rhs {
            if right.insert(signature(&s.labels), s).is_some() {
                return Err(PromError::Execution(
                    "found duplicate series for the match group on the right hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side".into(),
                ));
            }
        }
        let mut seen: HashSet<Labels> = HashSet::new();
        let mut out = Vec::new();
        for l in &lhs {
            let sig = signature(&l.labels);
            let Some(r) = right.get(&sig) else { continue };
            if !seen.insert(sig) {
                return Err(PromError::Execution(
                    "found duplicate series for the match group on the left hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side".into(),
                ));
            }
            let mut labels = l.labels.clone();
            if !comparison || return_bool {
                labels.remove("__name__");
            }
            match matching {
                Some(LabelModifier::Include(ls)) => labels.retain(|k, _| ls.labels.contains(k)),
                Some(LabelModifier::Exclude(ls)) => labels.retain(|k, _| !ls.labels.contains(k)),
                None => {}
            }
            let values = (0..n)
                .map(|i| match (l.values[i], r.values[i]) {
                    (Some(x), Some(y)) => sample_of(op, x, y, x, comparison, return_bool),
                    _ => None,
                })
                .collect();
            out.push(Series { labels, values });
        }
        out.retain(|s| s.values.iter().any(Option::is_some));
        Ok(Value::Vector(out))
    }
}
