//! Selection: fetching the minutes a query reads, and instant and range selectors over
//! them.

use super::*;

/// One fetched series: its labels and samples at minutes `lo..`, `None` where absent.
#[derive(Debug, Clone)]
pub(super) struct Fetched {
    pub(super) labels: Labels,
    pub(super) lo: i64,
    pub(super) samples: Vec<Option<f64>>,
}

impl Fetched {
    pub(super) fn at(&self, minute: i64) -> Option<f64> {
        let i = usize::try_from(minute - self.lo).ok()?;
        self.samples.get(i).copied().flatten()
    }
}

/// A selector's identity in the fetched map: its address in the parsed expression.
pub(super) fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

pub(super) fn offset_ms(o: &Option<Offset>) -> i64 {
    // `selectors` refused offsets past `MAX_TIME_MS`; saturating all the same.
    let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match o {
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
        None => 0,
    }
}

/// A query's duration (a range or an offset) in ms, refused past
/// [`slotel_model::time::MAX_TIME_MS`]: no arithmetic on it can overflow.
fn bounded_ms(what: &str, d: &std::time::Duration) -> Result<i64, PromError> {
    let ms = d.as_millis();
    if ms > u128::from(slotel_model::time::MAX_TIME_MS) {
        return Err(bad(format!(
            "the {what} {} is longer than slotel reads",
            promql_parser::util::display_duration(d)
        )));
    }
    Ok(ms as i64)
}

/// Checks a selector's offset ([`bounded_ms`]).
fn check_offset(o: &Option<Offset>) -> Result<(), PromError> {
    match o {
        Some(Offset::Pos(d) | Offset::Neg(d)) => bounded_ms("offset", d).map(|_| ()),
        None => Ok(()),
    }
}

pub(super) fn check_at(at: &Option<AtModifier>) -> Result<(), PromError> {
    match at {
        Some(_) => Err(bad("the @ modifier is not supported by slotel")),
        None => Ok(()),
    }
}

/// The selectors of `expr`, with the lookback (range, ms) each needs, checking that no
/// unsupported construct is used.
pub(super) fn selectors<'a>(
    expr: &'a Expr,
    out: &mut Vec<(&'a VectorSelector, i64)>,
) -> Result<(), PromError> {
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selectors(p, out)?;
            }
            selectors(&a.expr, out)
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out)?;
            selectors(&b.rhs, out)
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(_) => Err(bad("subqueries are not supported by slotel")),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(v) => {
            check_at(&v.at)?;
            check_offset(&v.offset)?;
            out.push((v, 0));
            Ok(())
        }
        Expr::MatrixSelector(m) => {
            check_at(&m.vs.at)?;
            check_offset(&m.vs.offset)?;
            out.push((&m.vs, bounded_ms("range", &m.range)?));
            Ok(())
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out)?;
            }
            Ok(())
        }
        Expr::Extension(_) => Err(bad("extension expressions are not supported")),
    }
}

impl Evaluation {
    /// Fetches what `expr` needs over `steps` (ms) for `tenant`.
    pub async fn prepare(
        source: &QueryEngine,
        tenant: &str,
        expr: &Expr,
        steps: Vec<i64>,
        timeout: Duration,
    ) -> Result<Self, PromError> {
        let deadline = Instant::now() + timeout;
        let mut sels = Vec::new();
        selectors(expr, &mut sels)?;
        let targets = super::catalog::targets_of(source, tenant).await?;
        let all = catalog(&targets);
        let names: Vec<Option<&str>> = sels.iter().map(|(vs, _)| vs.name.as_deref()).collect();
        let side = source
            .side_series(tenant, &names)
            .await
            .map_err(|e| PromError::Unavailable(e.0))?;
        let mut fetched = HashMap::new();
        let mut loaded = 0usize;
        let (first, last) = (*steps.first().unwrap_or(&0), *steps.last().unwrap_or(&0));
        for (vs, range) in sels {
            let off = offset_ms(&vs.offset);
            // Minutes whose samples the selector may read.
            let hi = (last - off).div_euclid(MS_PER_MINUTE);
            let lo = if range > 0 {
                (first - off - range).div_euclid(MS_PER_MINUTE) + 1
            } else {
                (first - off).div_euclid(MS_PER_MINUTE)
            };
            if hi.saturating_sub(lo) > MAX_RANGE_MINUTES {
                return Err(bad(
                    "the query reads more than 800 days: shorten the range, the range selector or the offset",
                ));
            }
            // For instant selectors only the steps' minutes are computed.
            let wanted: Option<HashSet<i64>> = (range == 0).then(|| {
                steps
                    .iter()
                    .map(|t| (t - off).div_euclid(MS_PER_MINUTE))
                    .collect()
            });
            let picked: Vec<&SeriesId> = all
                .iter()
                .filter(|s| selects(vs.name.as_deref(), &vs.matchers, &s.labels))
                .collect();
            // What the selector loads of each series it picks: a sample a minute of the
            // range, or one a step for an instant selector.
            let series = picked.len()
                + side
                    .iter()
                    .filter(|s| selects(vs.name.as_deref(), &vs.matchers, &s.labels))
                    .count();
            let minutes = match &wanted {
                Some(w) => w.len(),
                None => usize::try_from(hi - lo + 1).unwrap_or(0),
            };
            loaded = loaded.saturating_add(series.saturating_mul(minutes));
            if loaded > source.options.max_samples {
                return Err(PromError::Execution(format!(
                    "query processing would load too many samples into memory in query execution (more than api.max_samples, {})",
                    source.options.max_samples
                )));
            }
            let mut by_target: BTreeMap<usize, Vec<&SeriesId>> = BTreeMap::new();
            for s in picked {
                by_target.entry(s.target).or_default().push(s);
            }
            let mut out: Vec<Fetched> = side
                .iter()
                .filter(|s| selects(vs.name.as_deref(), &vs.matchers, &s.labels))
                .map(|s| Fetched {
                    labels: s.labels.clone(),
                    lo,
                    samples: (lo..=hi).map(|minute| s.at(minute)).collect(),
                })
                .collect();
            // Counts are read for up to `READ_TOGETHER` targets at a time: one pass over
            // the stored minutes serves them all, and memory stays bounded.
            let by_target: Vec<(usize, Vec<&SeriesId>)> = by_target.into_iter().collect();
            for chunk in by_target.chunks(READ_TOGETHER) {
                if Instant::now() > deadline {
                    return Err(PromError::Timeout);
                }
                let mut wants = Vec::new();
                let mut owners = Vec::new();
                for (ti, ids) in chunk {
                    let t = &targets[*ti];
                    let (latency_ids, ids): (Vec<&SeriesId>, Vec<&SeriesId>) = ids
                        .iter()
                        .partition(|id| id.metric == Metric::LatencySeconds);
                    if !latency_ids.is_empty() {
                        out.extend(
                            latency_series(
                                source,
                                tenant,
                                &t.def.name,
                                &latency_ids,
                                lo,
                                hi,
                                wanted.as_ref(),
                            )
                            .await,
                        );
                    }
                    if ids.is_empty() {
                        continue;
                    }
                    let lookback = i64::from(
                        t.def
                            .window
                            .max_minutes()
                            .max(*BURN_RATE_WINDOWS.last().unwrap_or(&0)),
                    );
                    wants.push(MinutesWanted {
                        name: &t.def.name,
                        group: (!t.group.is_empty()).then_some(t.group.as_slice()),
                        lo: lo - lookback,
                    });
                    owners.push(ids);
                }
                let read = source
                    .minutes_many(tenant, &wants, hi)
                    .await
                    .map_err(|e| PromError::Unavailable(e.0))?;
                for (ids, m) in owners.into_iter().zip(read) {
                    let Some(m) = m else { continue };
                    for id in ids {
                        let samples = (lo..=hi)
                            .map(|minute| match &wanted {
                                Some(w) if !w.contains(&minute) => None,
                                _ => sample(&m.def, &m.series, id.metric, id.window, minute),
                            })
                            .collect();
                        out.push(Fetched {
                            labels: id.labels.clone(),
                            lo,
                            samples,
                        });
                    }
                }
            }
            fetched.insert(key(vs), out);
        }
        Ok(Self {
            steps,
            fetched,
            deadline,
        })
    }

    pub(super) fn select(&self, vs: &VectorSelector) -> Vec<Series> {
        let off = offset_ms(&vs.offset);
        let Some(fetched) = self.fetched.get(&key(vs)) else {
            return Vec::new();
        };
        fetched
            .iter()
            .map(|f| Series {
                labels: f.labels.clone(),
                values: self
                    .steps
                    .iter()
                    .map(|t| f.at((t - off).div_euclid(MS_PER_MINUTE)))
                    .collect(),
            })
            .collect()
    }

    /// For each series of the selector, every sample `(ms, value)` it has in the
    /// minutes fetched, in time order: at most the samples `api.max_samples` let the
    /// query load. [`window`] is a step's `(t - range, t]` of them, without a copy, so
    /// that overlapping windows of many steps take no more memory than one.
    pub(super) fn range_samples(&self, vs: &VectorSelector) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let off = offset_ms(&vs.offset);
        let Some(fetched) = self.fetched.get(&key(vs)) else {
            return Vec::new();
        };
        fetched
            .iter()
            .map(|f| {
                let samples = f
                    .samples
                    .iter()
                    .zip(f.lo..)
                    .filter_map(|(v, m)| v.map(|v| (m * MS_PER_MINUTE + off, v)))
                    .collect();
                (f.labels.clone(), samples)
            })
            .collect()
    }
}

/// The samples of `samples` (in time order, as [`Evaluation::range_samples`] gives them)
/// whose minutes fall in `(t - range, t]` for the step `t` of a selector shifted by
/// `off` (ms).
pub(super) fn window(samples: &[(i64, f64)], t: i64, range: i64, off: i64) -> &[(i64, f64)] {
    let end = t - off;
    let first = ((end - range).div_euclid(MS_PER_MINUTE) + 1) * MS_PER_MINUTE + off;
    let last = end.div_euclid(MS_PER_MINUTE) * MS_PER_MINUTE + off;
    let lo = samples.partition_point(|s| s.0 < first);
    let hi = samples.partition_point(|s| s.0 <= last);
    &samples[lo..hi.max(lo)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_samples_of_its_minutes() {
        // Samples at minutes 0..100 but every third, shifted by a 30-minute offset.
        let off = 30 * MS_PER_MINUTE;
        let samples: Vec<(i64, f64)> = (0..100i64)
            .filter(|m| m % 3 != 0)
            .map(|m| (m * MS_PER_MINUTE + off, m as f64))
            .collect();
        for t in [
            0, 59_999, 60_000, 3_000_000, 5_400_000, 7_000_000, 9_000_000,
        ] {
            for range in [1, 60_000, 300_000, 90_000_000] {
                let end = t - off;
                let (first, last) = (
                    (end - range).div_euclid(MS_PER_MINUTE) + 1,
                    end.div_euclid(MS_PER_MINUTE),
                );
                let want: Vec<(i64, f64)> = samples
                    .iter()
                    .filter(|s| (first..=last).contains(&((s.0 - off) / MS_PER_MINUTE)))
                    .copied()
                    .collect();
                assert_eq!(window(&samples, t, range, off), &want[..], "{t} {range}");
            }
        }
    }
}
