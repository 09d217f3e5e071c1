//! The engine against hand-computed windows and a brute-force model.

#[cfg(test)]
mod test_support {
    //! Batches of spans for the engine's tests.
    use super::super::*;
    use slotel_proto::otlp::trace::v1::Status;

    /// A span with ids from `id`, ending at `end`, OK or ERROR.
    pub(super) fn span(id: u64, end: i64, good: bool) -> Span {
        Span {
            trace_id: [id.to_be_bytes(), id.to_be_bytes()].concat(),
            span_id: id.to_be_bytes().to_vec(),
            name: "GET /".into(),
            start_time_unix_nano: (end - 1_000_000) as u64,
            end_time_unix_nano: end as u64,
            status: Some(Status {
                code: if good { 1 } else { 2 },
                message: String::new(),
            }),
            ..Default::default()
        }
    }

    /// A batch of `spans` of service `api`, tenant `default`.
    pub(super) fn api_batch(spans: Vec<Span>) -> Batch {
        Batch::traces("default".into(), slotel_proto::traces_request("api", spans))
    }
}

#[cfg(test)]
mod cases {
    use super::super::*;
    use super::test_support;
    use slotel_model::time::ManualClock;
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
    use slotel_spec::parse_native;
    use std::path::Path;

    const MIN: i64 = NANOS_PER_MINUTE;
    /// A minute boundary, to keep the arithmetic readable.
    const T0: i64 = 28_000_000 * MIN;

    const SLOS: &str = "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: not_error } } }\n";

    fn engine() -> (Engine, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock.clone());
        engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
        (engine, clock)
    }

    /// An engine at T0 as the server runs it: old minutes paged in from storage.
    fn paged_engine() -> Engine {
        let config = EngineConfig {
            dense_minutes: Some(PAGED_DENSE_MINUTES),
            ..EngineConfig::default()
        };
        Engine::with_config(Arc::new(ManualClock::new(T0)), config)
    }

    /// [`batch`] with each span's `route` attribute set to `route`.
    fn routed(route: &str, end: i64, good: usize, bad: usize) -> Batch {
        use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
        let mut b = batch(end, good, bad);
        let Payload::Traces(body) = &b.payload else {
            unreachable!()
        };
        let mut req = <ExportTraceServiceRequest as prost::Message>::decode(&body[..]).unwrap();
        for span in &mut req.resource_spans[0].scope_spans[0].spans {
            span.attributes.push(KeyValue {
                key: "route".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(route.into())),
                }),
                ..Default::default()
            });
        }
        b.payload = Payload::Traces(prost::Message::encode_to_vec(&req).into());
        b
    }

    /// `good` OK spans and `bad` ERROR spans of service `api` ending at `end`, each new.
    fn batch(end: i64, good: usize, bad: usize) -> Batch {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let span = |ok| test_support::span(NEXT.fetch_add(1, Ordering::Relaxed), end, ok);
        let spans = (0..good)
            .map(|_| span(true))
            .chain((0..bad).map(|_| span(false)))
            .collect();
        test_support::api_batch(spans)
    }

    #[test]
    fn span_durations_fill_minute_histograms_that_leave_with_the_tail() {
        let (engine, clock) = engine();
        engine.ingest(&batch(T0 + 5, 9, 1));
        clock.set(T0 + 3 * MIN);
        engine.ingest(&batch(T0 + 3 * MIN + 5, 5, 0));
        // Four days old: past the horizon, neither counted nor recorded.
        engine.ingest(&batch(T0 - 4 * 1440 * MIN, 3, 0));
        let counts = |h: &BTreeMap<i64, hdrhistogram::Histogram<u64>>| -> Vec<(i64, u64)> {
            h.iter().map(|(&m, h)| (m - T0 / MIN, h.len())).collect()
        };
        let tail = engine.latency_tail("default", "api").unwrap();
        assert_eq!(counts(&tail), [(0, 10), (3, 5)]);
        // Every span lasted 1 ms: the bucket's upper end is within 1 % above.
        let max = latency::quantile_seconds(&tail[&(T0 / MIN)], 1.0).unwrap();
        assert!((0.001..=0.00101).contains(&max), "{max}");
        let rows = engine.take_tail();
        let latencies: Vec<(i64, u64)> = rows
            .iter()
            .map(|r| {
                let h = latency::deserialize(r.latency.as_ref().unwrap()).unwrap();
                (r.minute - T0 / MIN, h.len())
            })
            .collect();
        assert_eq!(latencies, [(0, 10), (3, 5)]);
        assert!(engine.latency_tail("default", "api").unwrap().is_empty());
        // A failed flush hands them back.
        engine.untake_tail(rows);
        assert_eq!(
            counts(&engine.latency_tail("default", "api").unwrap()),
            [(0, 10), (3, 5)]
        );
        assert_eq!(engine.stats().events_too_old.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn events_dated_ahead_leave_the_window_as_it_is_and_count_when_their_minute_comes() {
        let slos = "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 3d\n    sli: { spans: { good: { status: not_error } } }\n";
        for (ahead, into) in [(1, 5), (2, 59), (5, 0), (4, 30)] {
            let clock = Arc::new(ManualClock::new(T0));
            let engine = Engine::new(clock.clone());
            engine.load(parse_native(Path::new("t.yaml"), slos).unwrap());
            let now = T0 + 3 * 1440 * MIN + into * 1_000_000_000;
            clock.set(now);
            // Ground truth: 3 events in the window's oldest minute, 5 in the current one.
            let oldest = (now / MIN - 4319) * MIN + 1;
            engine.ingest(&batch(oldest, 3, 0));
            engine.ingest(&batch(now, 4, 1));
            let total = |e: &Engine| e.status("default", "api").unwrap().total_events;
            assert_eq!(total(&engine), 8);
            // A client whose clock runs ahead: within max_future, ahead of a boundary.
            engine.ingest(&batch(now + ahead * MIN, 1, 0));
            assert_eq!(
                total(&engine),
                8,
                "{ahead} min ahead, {into} s into the minute"
            );
            // A late event for the oldest minute is still counted.
            engine.ingest(&batch(oldest + 1, 1, 0));
            assert_eq!(
                total(&engine),
                9,
                "{ahead} min ahead, {into} s into the minute"
            );
            // When its minute comes the early event counts, once; the oldest minute left.
            clock.set(now + ahead * MIN);
            assert_eq!(
                total(&engine),
                6,
                "{ahead} min ahead, {into} s into the minute"
            );
            assert_eq!(engine.stats().events_too_old.load(Ordering::Relaxed), 0);
        }
    }

    #[test]
    fn burn_rates_per_window_hand_computed() {
        let (engine, clock) = engine();
        // 2h ago: 100 events, 10 bad. 40 minutes ago: 100 events, 2 bad. Now: 50 events, 5 bad.
        clock.set(T0 + 240 * MIN);
        engine.ingest(&batch(T0 + 120 * MIN + 5, 90, 10));
        engine.ingest(&batch(T0 + 200 * MIN + 5, 98, 2));
        engine.ingest(&batch(T0 + 240 * MIN + 5, 45, 5));
        let s = engine.status("default", "api").unwrap();
        assert_eq!(
            (s.good_events, s.total_events, s.bad_events),
            (233, 250, 17)
        );
        // 5m and 30m hold the last batch: 10% errors on a 1% budget.
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(s.burn_rates.get("5m"), 10.0));
        assert!(close(s.burn_rates.get("30m"), 10.0));
        // 1h holds the last two: 7 of 150.
        assert!(close(s.burn_rates.get("1h"), 7.0 / 150.0 / 0.01));
        // 2h covers minutes 121..=240: the batch at minute 120 is just outside.
        assert!(close(s.burn_rates.get("2h"), 7.0 / 150.0 / 0.01));
        assert!(close(s.burn_rates.get("6h"), 17.0 / 250.0 / 0.01));
        assert!(close(s.burn_rates.get("1d"), 17.0 / 250.0 / 0.01));
        assert!(close(s.sli, 233.0 / 250.0));
        assert!(close(s.error_budget_remaining, 1.0 - 17.0 / 2.5));
        // The 1d window is also a standard window: it is listed once.
        assert_eq!(s.burn_rates.0.len(), 7);
        // Budget: 1% of 250 events = 2.5; 17 bad spent 6.8 of it.
        assert!(close(Some(s.error_budget_events), 2.5));
        assert!(close(s.error_budget_consumed, 6.8));
        // Overspent: exhaustion is now.
        assert_eq!(s.budget_exhaustion_seconds.get("1h"), Some(0.0));
        // The default guard of 100 events: 5m and 30m hold 50.
        assert_eq!(s.low_traffic, ["5m", "30m"]);

        // A day later the 1d window is empty again: no data, not an outage.
        clock.set(T0 + 240 * MIN + 1440 * MIN);
        let s = engine.status("default", "api").unwrap();
        assert_eq!(s.total_events, 0);
        assert_eq!(s.sli, None);
        // The 3d burn rate still sees everything.
        assert!(close(s.burn_rates.get("3d"), 17.0 / 250.0 / 0.01));
    }

    #[test]
    fn burn_snapshots_summed_over_engines_equal_one_engine_s() {
        // One engine counts everything; two count halves of it (a cluster's partitions).
        const SLICED: &str = "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: not_error } } }\n  - name: sliced\n    service: api\n    objective: 95\n    window: 1d\n    budgeting: { timeslices: { slice: 5m, target: 90 } }\n    sli: { spans: { good: { status: not_error } } }\n";
        let clock = Arc::new(ManualClock::new(T0 + 300 * MIN));
        let engines: Vec<Engine> = (0..3)
            .map(|_| {
                let e = Engine::new(clock.clone());
                e.load(parse_native(Path::new("t.yaml"), SLICED).unwrap());
                e
            })
            .collect();
        for (i, (at, good, bad)) in [(10, 90, 10), (200, 40, 1), (290, 7, 3), (299, 50, 0)]
            .into_iter()
            .enumerate()
        {
            let b = batch(T0 + at * MIN + 5, good, bad);
            engines[0].ingest(&b);
            engines[1 + i % 2].ingest(&b);
        }
        let (now, whole) = engines[0].burn_snapshot();
        for one in &whole {
            let ranges = burn_ranges(&one.def, now);
            let mut sums = vec![(0u64, 0u64); ranges.len()];
            for part in &engines[1..] {
                let (got, _) = part.range_sums("default", &one.def.name, &ranges).unwrap();
                for (s, (x, t)) in sums.iter_mut().zip(got) {
                    *s = (s.0 + x, s.1 + t);
                }
            }
            let summed = burn_snapshot_from_sums(&one.def, &ranges, &sums, now);
            assert_eq!(
                format!("{:?}", summed.windows),
                format!("{:?}", one.windows)
            );
            assert_eq!(format!("{:?}", summed.units), format!("{:?}", one.units));
            assert!(
                one.window(5).is_some_and(|t| t.total == 50),
                "{:?}",
                one.windows
            );
        }
    }

    #[test]
    fn forecast_and_low_traffic() {
        let (engine, clock) = engine();
        let slos = SLOS.replace("window: 1d", "window: 1d\n    min_events: 100");
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        clock.set(T0 + 1000 * MIN);
        // 2000 events 3 hours ago with 2 bad, 60 in the last minute with 1 bad.
        engine.ingest(&batch(T0 + 820 * MIN, 1998, 2));
        engine.ingest(&batch(T0 + 1000 * MIN, 59, 1));
        let s = engine.status("default", "api").unwrap();
        // Budget: 1% of 2060 = 20.6 events; 3 spent.
        let remaining = 1.0 - 3.0 / (0.01 * 2060.0);
        let burn_1h = (1.0 / 60.0) / 0.01;
        let want = remaining * 86_400.0 / burn_1h;
        assert!((s.budget_exhaustion_seconds.get("1h").unwrap() - want).abs() < 1e-6);
        // 6h sees everything: 3 of 2060.
        let burn_6h = (3.0 / 2060.0) / 0.01;
        let want = remaining * 86_400.0 / burn_6h;
        assert!((s.budget_exhaustion_seconds.get("6h").unwrap() - want).abs() < 1e-6);
        // 60 events in the last 5m, 30m, 1h and 2h: under min_events 100.
        assert_eq!(s.low_traffic, ["5m", "30m", "1h", "2h"]);
    }

    #[test]
    fn explanations_merged_over_engines_equal_one_engine_s() {
        // `api` selects a span name its service's spans do not have; `web` names a
        // service whose spans arrive as `Web`.
        const EXPLAINED: &str = "slos:\n  - name: api\n    service: api\n    objective: 99\n    window: 1d\n    sli: { spans: { match: { span_name: \"GET /users\" }, good: { status: not_error } } }\n  - name: web\n    service: web\n    objective: 99\n    window: 1d\n    sli: { spans: { good: { status: not_error } } }\n";
        let engines: Vec<Engine> = (0..3)
            .map(|_| {
                let e = Engine::new(Arc::new(ManualClock::new(T0 + 10 * MIN)));
                e.load(parse_native(Path::new("t.yaml"), EXPLAINED).unwrap());
                e
            })
            .collect();
        let web = |first: u64, n: u64| {
            let spans = (first..first + n)
                .map(|id| test_support::span(id, T0 + 5 * MIN, true))
                .collect();
            Batch::traces("default".into(), slotel_proto::traces_request("Web", spans))
        };
        for (i, b) in [
            batch(T0 + MIN, 3, 1),
            batch(T0 + 2 * MIN, 2, 0),
            web(900, 4),
        ]
        .into_iter()
        .enumerate()
        {
            engines[0].ingest(&b);
            engines[1 + i % 2].ingest(&b);
        }
        for slo in ["api", "web"] {
            let one = engines[0].explain("default", slo).unwrap();
            let def = engines[0]
                .slos("default")
                .into_iter()
                .find(|d| d.name == slo)
                .unwrap();
            let status = engines[0].status("default", slo).unwrap();
            let merged = Observed::merge(
                engines[1..]
                    .iter()
                    .map(|e| e.observed("default", &def.service)),
            );
            let defs = engines[0].slos("default");
            let summed = explain_observed(defs.iter().map(|d| &**d), &def, &status, &merged);
            assert_eq!(
                serde_json::to_value(&summed).unwrap(),
                serde_json::to_value(&one).unwrap()
            );
        }
        let api = engines[0].explain("default", "api").unwrap();
        assert_eq!(
            (
                api.service_spans,
                api.sample.spans,
                api.sample.dropped_by_span_name
            ),
            (6, 6, 6)
        );
        let web = engines[0].explain("default", "web").unwrap();
        assert!(web.findings[0].contains("\"Web\""), "{:?}", web.findings);
    }

    #[test]
    fn group_statuses_summed_over_engines_equal_one_engine_s() {
        let slos = SLOS.replace("window: 1d", "window: 1d\n    group_by: [route]");
        let engines: Vec<Engine> = (0..3)
            .map(|_| {
                let e = Engine::new(Arc::new(ManualClock::new(T0 + 90 * MIN)));
                e.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
                e
            })
            .collect();
        // /a on both parts, /b and /c on one each.
        for (i, (route, at, good, bad)) in [
            ("/a", 10, 9, 1),
            ("/a", 80, 3, 3),
            ("/b", 85, 4, 0),
            ("/c", 89, 1, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let b = routed(route, T0 + at * MIN + 5, good, bad);
            engines[0].ingest(&b);
            engines[1 + i % 2].ingest(&b);
        }
        let whole = engines[0].status("default", "api").unwrap();
        let def = engines[0].slos("default").pop().unwrap();
        let now = T0 + 90 * MIN;
        let ranges = group_ranges(&def, now);
        let mut by_group = BTreeMap::new();
        for part in &engines[1..] {
            for (labels, sums) in part.group_range_sums("default", "api", &ranges).unwrap() {
                let total = by_group
                    .entry(labels)
                    .or_insert_with(|| vec![(0, 0); ranges.len()]);
                for (t, (x, n)) in total.iter_mut().zip(sums) {
                    *t = (t.0 + x, t.1 + n);
                }
            }
        }
        let groups: Vec<_> = by_group.into_iter().collect();
        let summed = group_statuses_from_sums(&def, &ranges, &groups, now);
        assert_eq!(
            serde_json::to_string(&summed).unwrap(),
            serde_json::to_string(&whole.groups).unwrap()
        );
        assert_eq!(whole.groups.len(), 3);
        // The groups' burn snapshots, too.
        let branges = group_burn_ranges(&def, now);
        let (_, snapshots) = engines[0].burn_snapshot();
        let mut checked = 0;
        for one in snapshots.iter().filter(|b| !b.group.is_empty()) {
            let mut sums = vec![(0u64, 0u64); branges.len()];
            for part in &engines[1..] {
                for (labels, got) in part.group_range_sums("default", "api", &branges).unwrap() {
                    if labels == one.group {
                        for (t, (x, n)) in sums.iter_mut().zip(got) {
                            *t = (t.0 + x, t.1 + n);
                        }
                    }
                }
            }
            let summed =
                group_burn_snapshot_from_sums(&def, one.group.clone(), &branges, &sums, now);
            assert_eq!(
                format!("{:?}", summed.windows),
                format!("{:?}", one.windows)
            );
            assert_eq!(format!("{:?}", summed.units), format!("{:?}", one.units));
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn groups_split_the_slo_and_overflow_is_counted() {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock);
        let slos = SLOS.replace(
            "window: 1d",
            "window: 1d\n    group_by: [route]\n    max_groups: 2",
        );
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        engine.ingest(&routed("/a", T0, 9, 1));
        engine.ingest(&routed("/b", T0, 4, 0));
        engine.ingest(&routed("/c", T0, 1, 2));
        engine.ingest(&routed("/d", T0, 3, 0));
        let s = engine.status("default", "api").unwrap();
        assert_eq!((s.good_events, s.total_events), (17, 20));
        let groups: Vec<_> = s
            .groups
            .iter()
            .map(|g| (g.group["route"].as_str(), g.good_events, g.total_events))
            .collect();
        // Lowest budget first: the overflow group (/c and /d) has 2 bad of 6.
        assert_eq!(
            groups,
            [("__overflow__", 4, 6), ("/a", 9, 10), ("/b", 4, 4)]
        );
        assert_eq!(
            engine.stats().group_overflow_events.load(Ordering::Relaxed),
            6
        );
        // The list does not carry groups.
        assert!(engine.statuses("default")[0].groups.is_empty());

        // The tail holds the SLO's minute and each group's; a fresh engine restored from
        // it answers the same, groups included, and has nothing left to flush.
        let cells = || engine.stats().tail_cells.load(Ordering::Relaxed);
        assert_eq!(cells(), 4, "the rows the next flush writes");
        let rows = engine.take_tail();
        assert_eq!(cells(), 0);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].group, GroupKey::WHOLE);
        assert_eq!(
            (rows[0].tally.good, rows[0].tally.bad, rows[0].tally.total),
            (17, 3, 20)
        );
        assert!(
            rows.iter()
                .any(|r| r.group == GroupKey(vec![("route".into(), OVERFLOW_GROUP.into())]))
        );
        assert!(engine.take_tail().is_empty());
        // Rows handed back after a failed write count again.
        engine.untake_tail(rows.clone());
        assert_eq!(cells(), 4);
        assert_eq!(engine.take_tail().len(), 4);
        let fresh = Engine::new(Arc::new(ManualClock::new(T0)));
        fresh.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        let stats = fresh.restore(rows.clone());
        assert_eq!(
            stats,
            RestoreStats {
                rows: 4,
                unknown: 0,
                too_old: 0
            }
        );
        let (a, b) = (
            engine.status("default", "api").unwrap(),
            fresh.status("default", "api").unwrap(),
        );
        assert_eq!(
            serde_json::to_value(&a.groups).unwrap(),
            serde_json::to_value(&b.groups).unwrap()
        );
        assert_eq!((b.good_events, b.total_events), (17, 20));
        assert!(fresh.take_tail().is_empty());
        // Rows handed back are flushed next time.
        engine.untake_tail(rows.clone());
        assert_eq!(engine.take_tail(), rows);
    }

    #[test]
    fn a_retried_batch_counts_once() {
        let (engine, clock) = engine();
        let b = batch(T0, 7, 3);
        engine.ingest(&b);
        engine.ingest(&b);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 10);
        assert_eq!(engine.stats().spans_duplicate.load(Ordering::Relaxed), 10);
        // Past the 10-minute horizon the same spans count again.
        clock.set(T0 + 10 * MIN);
        engine.ingest(&b);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 20);
    }

    #[test]
    fn late_and_future_events_are_counted_apart() {
        let (engine, clock) = engine();
        clock.set(T0 + 10_000 * MIN);
        // Older than the 3d horizon: dropped; 10 minutes ahead: refused.
        engine.ingest(&batch(T0, 3, 0));
        engine.ingest(&batch(T0 + 10_010 * MIN, 4, 0));
        engine.ingest(&batch(T0 + 10_000 * MIN, 5, 0));
        let st = engine.stats();
        assert_eq!(st.events_too_old.load(Ordering::Relaxed), 3);
        assert_eq!(st.events_in_future.load(Ordering::Relaxed), 4);
        assert_eq!(st.events_counted.load(Ordering::Relaxed), 5);
        assert_eq!(st.spans_seen.load(Ordering::Relaxed), 12);
        assert_eq!(engine.status("default", "api").unwrap().total_events, 5);
    }

    #[test]
    fn reload_keeps_unchanged_slos_and_resets_changed_ones() {
        let (engine, _) = engine();
        engine.ingest(&batch(T0, 7, 1));
        engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
        assert_eq!(engine.status("default", "api").unwrap().total_events, 8);
        // A new objective keeps the counts and applies to them.
        let changed = SLOS.replace("objective: 99", "objective: 99.5");
        engine.load(parse_native(Path::new("t.yaml"), &changed).unwrap());
        let s = engine.status("default", "api").unwrap();
        assert_eq!((s.total_events, s.objective), (8, 99.5));
        // A new SLI starts empty.
        let changed = changed.replace("status: not_error", "status: ok");
        engine.load(parse_native(Path::new("t.yaml"), &changed).unwrap());
        assert_eq!(engine.status("default", "api").unwrap().total_events, 0);
        assert!(matches!(
            engine.status("default", "nope"),
            Err(Error::UnknownSlo { .. })
        ));
    }

    #[test]
    fn grouped_rings_page_their_edges_from_stored_rows() {
        // Groups /a and /b and the overflow group (/c).
        let engine = paged_engine();
        let slos = SLOS.replace(
            "window: 1d",
            "window: 30d\n    group_by: [route]\n    max_groups: 2",
        );
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        // The 30-day window's first minute is 41 minutes into its hour: spans 5 minutes
        // after it count, spans 5 minutes before it (same hour) do not.
        let edge = (T0 / MIN - 43_199) * MIN;
        assert_eq!((edge / MIN).rem_euclid(60), 41);
        for (route, good, bad) in [("/a", 3, 1), ("/b", 2, 0), ("/c", 0, 4)] {
            engine.ingest(&routed(route, edge + 5 * MIN, good, bad));
            engine.ingest(&routed(route, edge - 5 * MIN, 7, 7));
            engine.ingest(&routed(route, T0, 1, 0));
        }
        let rows = engine.take_tail();
        let wanted = engine.pages_wanted();
        assert!(wanted.contains(&(edge / MIN).div_euclid(60)), "{wanted:?}");
        for hour in wanted {
            let mut pages = HourPages::new(hour);
            pages.add(&engine, rows.iter().cloned());
            assert_eq!(engine.install_pages(&pages).refused, 0, "hour {hour}");
        }
        assert!(engine.pages_wanted().is_empty());
        let s = engine.status("default", "api").unwrap();
        assert_eq!((s.good_events, s.total_events), (5 + 3, 10 + 3));
        let mut groups: Vec<_> = s
            .groups
            .iter()
            .map(|g| (g.group["route"].clone(), g.good_events, g.total_events))
            .collect();
        groups.sort();
        assert_eq!(
            groups,
            [
                ("/a".to_string(), 4, 5),
                ("/b".to_string(), 3, 3),
                (OVERFLOW_GROUP.to_string(), 1, 5),
            ]
        );
        assert_eq!(
            engine.stats().window_edge_estimates.load(Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn state_bytes_of_a_30_day_slo() {
        let engine = paged_engine();
        let slos = SLOS.replace("window: 1d", "window: 30d");
        engine.load(parse_native(Path::new("t.yaml"), &slos).unwrap());
        // Events in every minute of the 30 days, and the pages of the 3-day and 30-day
        // windows' edge hours (two each) in place.
        for m in 0..30 * 1440 {
            engine.ingest(&batch(T0 - m * MIN, 1, 0));
        }
        let rows = engine.take_tail();
        for hour in engine.pages_wanted() {
            let mut pages = HourPages::new(hour);
            pages.add(&engine, rows.iter().cloned());
            assert_eq!(engine.install_pages(&pages).installed, 1);
        }
        assert!(engine.pages_wanted().is_empty());
        // Two u32 counts per minute of 26 hours and of the 6 minutes of room for events
        // dated ahead (max_future 5m and the boundary), two u64 sums per hour of the
        // horizon (and three more), four pages of 60 minutes (in room for four).
        let bytes = engine.state_bytes("default", "api").unwrap();
        let horizon = 30 * 1440 + 6;
        assert_eq!(
            bytes,
            std::mem::size_of::<MinuteRing>()
                + (26 * 60 + 6) * 8
                + (horizon / 60 + 3) * 16
                + 4 * (std::mem::size_of::<usize>() * 2 + 60 * 8)
        );
        assert!(bytes <= 32 * 1024, "{bytes}");
        assert_eq!(
            engine.status("default", "api").unwrap().total_events,
            30 * 1440
        );
    }
}

#[cfg(test)]
mod model_tests {
    //! The engine against a brute-force model over random event streams: every event
    //! kept, every window summed by scanning, for rolling and calendar windows.
    use super::super::*;
    use super::test_support;
    use proptest::prelude::*;
    use slotel_model::time::ManualClock;
    use slotel_spec::parse_native;
    use std::path::Path;

    const MIN: i64 = NANOS_PER_MINUTE;

    const SLOS: &str = r#"
slos:
  - name: rolling
    service: api
    objective: 99
    window: 7d
    sli: { spans: { good: { status: not_error } } }
  - name: month
    service: api
    objective: 99
    window: { calendar: month, time_zone: Europe/Berlin }
    sli: { spans: { good: { status: not_error } } }
  - name: week
    service: api
    objective: 99
    window: { calendar: week, time_zone: America/New_York }
    sli: { spans: { good: { status: not_error } } }
  - name: slices
    service: api
    objective: 99
    budgeting: { timeslices: { slice: 7m, target: 60 } }
    window: 2d
    sli: { spans: { good: { status: not_error } } }
  - name: ratio-slices
    service: api
    objective: 99
    budgeting: { ratio_timeslices: { slice: 1h } }
    window: { calendar: month, time_zone: Asia/Kolkata }
    sli: { spans: { good: { status: not_error } } }
"#;

    fn batch(events: &[(i64, bool)], first_id: u64) -> Batch {
        let spans = events
            .iter()
            .enumerate()
            .map(|(i, &(t, good))| test_support::span(first_id + i as u64, t, good))
            .collect();
        test_support::api_batch(spans)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn statuses_equal_brute_force(
            // Around the turn of March 2026 in Berlin (and a DST change in New York).
            start_minute in 29_520_000i64..29_540_000,
            steps in prop::collection::vec((0i64..3000, 0i64..600, any::<bool>(), 1usize..4), 1..40),
            // Two hours of minutes one by one, older ones paged in from "storage": the
            // rows the engine's flushes hand over.
            paged in any::<bool>(),
        ) {
            let clock = Arc::new(ManualClock::new(start_minute * MIN));
            let config = EngineConfig {
                dense_minutes: paged.then_some(120),
                ..EngineConfig::default()
            };
            let engine = Engine::with_config(clock.clone(), config);
            engine.load(parse_native(Path::new("t.yaml"), SLOS).unwrap());
            let mut stored: Vec<MinuteRow> = Vec::new();
            let mut now = start_minute * MIN;
            let mut kept: Vec<(i64, bool)> = Vec::new();
            let mut id = 1;
            for (advance, late, good, n) in steps {
                now += advance * MIN + 7;
                clock.set(now);
                // Events up to ten hours late, each a distinct span.
                let t = now - late * MIN;
                let events = vec![(t, good); n];
                engine.ingest(&batch(&events, id));
                id += n as u64;
                kept.extend(events);
                stored.extend(engine.take_tail());
                for hour in engine.pages_wanted() {
                    let mut pages = HourPages::new(hour);
                    pages.add(&engine, stored.iter().cloned());
                    let st = engine.install_pages(&pages);
                    prop_assert_eq!(st.refused, 0);
                }
            }
            let defs = parse_native(Path::new("t.yaml"), SLOS).unwrap();
            for def in &defs {
                let start = def.window.start_nanos(now);
                let (good, total) = kept
                    .iter()
                    .filter(|(t, _)| *t >= start && *t <= now)
                    .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                let s = engine.status("default", &def.name).unwrap();
                prop_assert_eq!((s.good_events, s.total_events), (good, total), "{}", def.name);
                // Slices: aligned to the epoch, cut by the window's start.
                let slice = |minutes: i64, score: &dyn Fn(u64, u64) -> f64| {
                    let lo = start.div_euclid(MIN);
                    let hi = now.div_euclid(MIN);
                    let mut k = lo.div_euclid(minutes);
                    let (mut g_sum, mut n) = (0.0, 0u64);
                    while k * minutes <= hi {
                        let (a, b) = ((k * minutes).max(lo), (k * minutes + minutes - 1).min(hi));
                        let (g, t) = kept
                            .iter()
                            .filter(|(t, _)| (a..=b).contains(&t.div_euclid(MIN)))
                            .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                        if t > 0 {
                            g_sum += score(g, t);
                            n += 1;
                        }
                        k += 1;
                    }
                    (g_sum, n)
                };
                match def.budgeting {
                    Budgeting::Occurrences => prop_assert_eq!(s.total_slices, None),
                    Budgeting::Timeslices { slice_minutes, slice_target } => {
                        let (g, n) = slice(i64::from(slice_minutes), &|g, t| {
                            if g as f64 >= slice_target * t as f64 { 1.0 } else { 0.0 }
                        });
                        prop_assert_eq!((s.good_slices, s.total_slices), (Some(g), Some(n)));
                    }
                    Budgeting::RatioTimeslices { slice_minutes } => {
                        let (g, n) = slice(i64::from(slice_minutes), &|g, t| g as f64 / t as f64);
                        prop_assert_eq!(s.total_slices, Some(n));
                        prop_assert!((s.good_slices.unwrap() - g).abs() < 1e-9);
                        prop_assert_eq!(s.sli, math::sli(s.good_slices.unwrap(), n as f64));
                    }
                }
                // Standard windows too: 1h and 1d as burn rates (events).
                if def.budgeting != Budgeting::Occurrences {
                    continue;
                }
                for (label, minutes) in [("1h", 60i64), ("1d", 1440)] {
                    let lo = (now.div_euclid(MIN) - minutes + 1) * MIN;
                    let (g, n) = kept
                        .iter()
                        .filter(|(t, _)| *t >= lo && *t <= now)
                        .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                    prop_assert_eq!(s.burn_rates.get(label), math::burn_rate(g as f64, n as f64, 0.99), "{} {}", def.name, label);
                }
            }
            // The alert rules' windows, to the 3-day one, equal it too.
            let (_, snapshot) = engine.burn_snapshot();
            for snap in snapshot.iter().filter(|s| s.def.budgeting == Budgeting::Occurrences) {
                for &minutes in &BURN_RATE_WINDOWS {
                    let lo = (now.div_euclid(MIN) - i64::from(minutes) + 1) * MIN;
                    let (good, total) = kept
                        .iter()
                        .filter(|(t, _)| *t >= lo && *t <= now)
                        .fold((0u64, 0u64), |(g, n), (_, ok)| (g + u64::from(*ok), n + 1));
                    let t = snap.window(minutes).unwrap();
                    prop_assert_eq!((t.good, t.total), (good, total), "{} {}", snap.def.name, minutes);
                }
            }
            engine.pages_wanted();
            prop_assert_eq!(engine.stats().window_edge_estimates.load(Ordering::Relaxed), 0);
        }
    }
}

mod histogram_count {
    use super::super::*;
    use slotel_model::time::ManualClock;
    use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    use slotel_proto::otlp::metrics::v1::{
        AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics,
        ScopeMetrics, metric::Data,
    };
    use slotel_proto::otlp::resource::v1::Resource;

    const MIN: i64 = 60_000_000_000;
    const T0: i64 = 29_000_000 * MIN;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    /// A delta histogram `http.server.request.duration` (seconds) of service `api`: one
    /// point per (status code, count).
    fn batch(points: &[(&str, u64)], time: i64) -> Batch {
        let data_points = points
            .iter()
            .map(|&(code, count)| HistogramDataPoint {
                attributes: vec![kv("http.response.status_code", code)],
                start_time_unix_nano: (time - MIN) as u64,
                time_unix_nano: time as u64,
                count,
                ..Default::default()
            })
            .collect();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "api")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "http.server.request.duration".into(),
                        unit: "s".into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points,
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Batch {
            tenant: "default".into(),
            size_bytes: 0,
            payload: Payload::Metrics(request),
            raw: None,
            received_nanos: 0,
        }
    }

    #[test]
    fn a_sloth_query_on_a_histograms_count_counts_its_observations() {
        let sloth = r#"version: "prometheus/v1"
service: api
slos:
  - name: requests
    objective: 99
    sli:
      events:
        error_query: sum(rate(http_server_request_duration_seconds_count{job="api",http_response_status_code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_server_request_duration_seconds_count{job="api"}[{{.window}}]))
"#;
        let dir = std::env::temp_dir().join(format!("slotel-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("api.yaml");
        std::fs::write(&file, sloth).unwrap();
        let defs = slotel_spec::load_paths(&[file]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(clock.clone());
        engine.load(defs);
        engine.ingest(&batch(&[("200", 95), ("503", 5)], T0 - MIN / 2));
        let s = engine.status("default", "api-requests").unwrap();
        assert_eq!((s.total_events, s.bad_events), (100, 5));
    }
}
