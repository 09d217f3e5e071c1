//! Alert quality in simulated time: the scenarios of the SRE workbook's "Alerting on
//! SLOs" chapter, on a 99.9% SLO over 30 days, with the default four-tier rules
//! evaluated every 30 seconds. Each asserts when alerts fire and resolve, and that
//! nothing else fires. The measured times are in docs/alerting.md.

use std::sync::Arc;
use std::time::Duration;

use slotel_compute::alerting::{AlertState, Evaluator, Transition};
use slotel_compute::{Engine, EngineConfig};
use slotel_model::ManualClock;
use slotel_proto::Batch;
use slotel_proto::otlp::trace::v1::{Span, Status};
use slotel_spec::parse_native;

const SLOS: &str = r#"
slos:
  - name: api
    service: api
    objective: 99.9
    window: 30d
    min_events: 0
    sli: { spans: { good: { status: not_error } } }
  - name: api-guarded
    service: api
    objective: 99.9
    window: 30d
    min_events: 100
    sli: { spans: { good: { status: not_error } } }
"#;

const MIN: i64 = 60_000_000_000;
const T0: i64 = 29_000_000 * MIN;

/// A simulation: traffic sent every 30 seconds, then the rules evaluated.
struct Sim {
    clock: Arc<ManualClock>,
    engine: Engine,
    evaluator: Evaluator,
    /// (minutes since the start, transition)
    log: Vec<(f64, Transition)>,
    requests: u64,
}

impl Sim {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let config = EngineConfig {
            dedup_horizon: Duration::ZERO,
            ..EngineConfig::default()
        };
        let engine = Engine::with_config(clock.clone(), config);
        engine.load(parse_native(std::path::Path::new("t.yaml"), SLOS).unwrap());
        Self {
            clock,
            engine,
            evaluator: Evaluator::new(),
            log: Vec::new(),
            requests: 0,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_nanos_for_tests()
    }

    /// Runs `minutes` of traffic: `per_minute` requests a minute, request number `n`
    /// failing when `bad(n)`.
    fn run(&mut self, minutes: u32, per_minute: u64, mut bad: impl FnMut(u64) -> bool) {
        for step in 0..minutes * 2 {
            self.clock.advance(30_000_000_000);
            let now = self.now();
            let count = if step % 2 == 0 {
                per_minute / 2
            } else {
                per_minute - per_minute / 2
            };
            let spans = (0..count)
                .map(|_| {
                    self.requests += 1;
                    let n = self.requests;
                    Span {
                        trace_id: [n.to_be_bytes(), n.to_be_bytes()].concat(),
                        span_id: n.to_be_bytes().to_vec(),
                        start_time_unix_nano: (now - 1_000_000) as u64,
                        end_time_unix_nano: now as u64,
                        status: Some(Status {
                            code: if bad(n) { 2 } else { 1 },
                            message: String::new(),
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            self.engine.ingest(&batch(spans));
            let (at, snapshot) = self.engine.burn_snapshot();
            for t in self.evaluator.evaluate(at, &snapshot) {
                self.log.push(((at - T0) as f64 / MIN as f64, t));
            }
        }
    }

    /// (minute, slo, tier, fired?) of every transition into or out of firing; printed
    /// (`--nocapture`) for docs/alerting.md.
    fn events(&self) -> Vec<(f64, String, String, bool)> {
        let events: Vec<_> = self
            .log
            .iter()
            .map(|(m, t)| {
                (
                    *m,
                    t.slo.clone(),
                    t.tier.clone(),
                    matches!(t.to, AlertState::Firing { .. }),
                )
            })
            .collect();
        for (m, slo, tier, fired) in &events {
            eprintln!(
                "minute {m:>8.1}  {slo:<12} {tier:<12} {}",
                if *fired { "fires" } else { "resolves" }
            );
        }
        events
    }
}

trait NowForTests {
    fn now_nanos_for_tests(&self) -> i64;
}

impl NowForTests for ManualClock {
    fn now_nanos_for_tests(&self) -> i64 {
        slotel_model::Clock::now_nanos(self)
    }
}

fn batch(spans: Vec<Span>) -> Batch {
    Batch::traces("default".into(), slotel_proto::traces_request("api", spans))
}

/// The first time `tier` of SLO `api` fired at or after minute `after`, and when it
/// resolved next.
fn fired(
    events: &[(f64, String, String, bool)],
    tier: &str,
    after: f64,
) -> Option<(f64, Option<f64>)> {
    let mine = |e: &&(f64, String, String, bool)| e.1 == "api" && e.2 == tier && e.0 >= after;
    let start = events.iter().filter(mine).find(|e| e.3)?.0;
    let end = events
        .iter()
        .filter(mine)
        .find(|e| !e.3 && e.0 > start)
        .map(|e| e.0);
    Some((start, end))
}

#[test]
fn a_steady_burn_at_half_the_budget_for_seven_days_alerts_nothing() {
    let mut sim = Sim::new();
    // 100 requests a minute, 1 in 2,000 failing: 0.05%, half of the 0.1% budget.
    sim.run(7 * 1440, 100, |n| n % 2000 == 0);
    assert_eq!(sim.events(), [], "{:#?}", sim.log);
}

#[test]
fn a_ten_minute_total_outage_pages_within_two_minutes_and_resolves() {
    let mut sim = Sim::new();
    sim.run(24 * 60, 100, |_| false);
    let start = 24.0 * 60.0;
    sim.run(10, 100, |_| true);
    sim.run(8 * 60, 100, |_| false);
    let events = sim.events();
    let (fire, resolve) = fired(&events, "page-fast", start).expect("page-fast fired");
    assert!(
        fire - start <= 2.0,
        "detected after {} minutes",
        fire - start
    );
    // Resolved once the 5m window is clean: 5 minutes after the outage's last minute.
    let resolve = resolve.expect("page-fast resolved");
    assert!(
        resolve - (start + 10.0) <= 6.0,
        "resolved {} minutes after the end",
        resolve - (start + 10.0)
    );
    // The outage spent a quarter of the 30-day budget: the slow page fires too, and so do
    // both tickets (1d: 10 bad minutes of 1,440 is a 6.9x burn; 3d: 2.3x); every alert
    // resolves when its short window is clean. The guarded SLO saw enough traffic to
    // page as well.
    for tier in ["page-slow", "ticket-fast", "ticket-slow"] {
        let (_, end) = fired(&events, tier, start).unwrap_or_else(|| panic!("{tier} fired"));
        assert!(end.is_some(), "{tier} resolved");
    }
    assert!(events.iter().all(|e| e.1 == "api" || e.1 == "api-guarded"));
}

#[test]
fn errors_at_two_percent_for_an_hour_page_after_43_minutes() {
    let mut sim = Sim::new();
    sim.run(24 * 60, 100, |_| false);
    let start = 24.0 * 60.0;
    // 2% errors: a 20x burn. The 1h window passes 14.4x after 43.2 minutes.
    sim.run(60, 100, |n| n % 50 == 0);
    sim.run(6 * 60, 100, |_| false);
    let events = sim.events();
    let (fire, resolve) = fired(&events, "page-fast", start).expect("page-fast fired");
    assert!(
        (43.0..=45.0).contains(&(fire - start)),
        "detected after {} minutes",
        fire - start
    );
    assert!(resolve.expect("resolved") - (start + 60.0) <= 6.0);
    // Nothing else: 6h (3.3x) stays under the slow page's 6x; the fast ticket needs 1d
    // over 3x (it reaches 0.83x) as well as 2h (10x); 3d stays under 1x.
    for tier in ["page-slow", "ticket-fast", "ticket-slow"] {
        assert!(fired(&events, tier, start).is_none(), "{tier}: {events:?}");
    }
    assert!(events.iter().all(|e| e.2 == "page-fast"), "{events:?}");
}

#[test]
fn a_slow_burn_at_one_and_a_half_times_for_three_days_tickets_and_never_pages() {
    let mut sim = Sim::new();
    sim.run(3 * 1440, 100, |_| false);
    let start = 3.0 * 1440.0;
    // 1 in 667 failing: 0.15%, a 1.5x burn.
    sim.run(3 * 1440, 100, |n| n % 667 == 0);
    let events = sim.events();
    assert!(
        events.iter().all(|e| !e.2.starts_with("page")),
        "{events:?}"
    );
    // The 3d window reaches 1x after two days of the three.
    let (fire, _) = fired(&events, "ticket-slow", start).expect("ticket-slow fired");
    assert!(
        (47.0 * 60.0..=49.0 * 60.0).contains(&(fire - start)),
        "ticket after {} hours",
        (fire - start) / 60.0
    );
    assert!(fired(&events, "ticket-fast", start).is_none(), "{events:?}");
}

#[test]
fn three_failures_in_five_requests_at_night_page_only_without_the_traffic_guard() {
    let mut sim = Sim::new();
    // A quiet night: 5 requests in an hour, 3 of them failing.
    let mut n = 0;
    for minute in 0..60 {
        let per_minute = if minute % 12 == 0 { 1 } else { 0 };
        sim.run(1, per_minute, |_| {
            n += 1;
            n <= 3
        });
    }
    let events = sim.events();
    assert!(events.iter().all(|e| e.1 != "api-guarded"), "{events:?}");
    // Without the guard the same five requests page.
    assert!(fired(&events, "page-fast", 0.0).is_some());
}

#[test]
fn a_failing_group_pages_on_its_own_with_its_labels() {
    use slotel_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    const GROUPED: &str = "slos:
  - name: api
    service: api
    objective: 99.9
    window: 30d
    min_events: 0
    group_by: [customer.tier]
    sli: { spans: { good: { status: not_error } } }
";
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Engine::with_config(
        clock.clone(),
        EngineConfig {
            dedup_horizon: Duration::ZERO,
            ..EngineConfig::default()
        },
    );
    engine.load(parse_native(std::path::Path::new("t.yaml"), GROUPED).unwrap());
    let span = |n: u64, tier: &str, bad: bool| Span {
        trace_id: [n.to_be_bytes(), n.to_be_bytes()].concat(),
        span_id: n.to_be_bytes().to_vec(),
        start_time_unix_nano: (T0 - 1_000_000) as u64,
        end_time_unix_nano: T0 as u64,
        status: Some(Status {
            code: if bad { 2 } else { 1 },
            message: String::new(),
        }),
        attributes: vec![KeyValue {
            key: "customer.tier".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(tier.into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    // gold: 100,000 good; silver: 50 bad. The SLO as a whole burns at 0.5 (50 of
    // 100,050 on a 0.1% budget): no alert. silver burns at 1,000: every tier fires.
    let mut spans: Vec<Span> = (1..=100_000).map(|n| span(n, "gold", false)).collect();
    spans.extend((100_001..=100_050).map(|n| span(n, "silver", true)));
    engine.ingest(&batch(spans));
    let (at, snapshot) = engine.burn_snapshot();
    assert_eq!(snapshot.len(), 3, "the SLO and its two groups");
    let mut evaluator = Evaluator::new();
    let transitions = evaluator.evaluate(at, &snapshot);
    let mut fired: Vec<(String, String, String)> = transitions
        .iter()
        .filter(|t| matches!(t.to, AlertState::Firing { .. }))
        .map(|t| {
            (
                t.tier.clone(),
                t.labels["burnrate_tier"].clone(),
                t.labels["customer_tier"].clone(),
            )
        })
        .collect();
    fired.sort();
    let want: Vec<(String, String, String)> =
        ["page-fast", "page-slow", "ticket-fast", "ticket-slow"]
            .iter()
            .map(|t| {
                (
                    format!("{t}{{customer_tier=\"silver\"}}"),
                    t.to_string(),
                    "silver".to_string(),
                )
            })
            .collect();
    assert_eq!(fired, want);
    assert_eq!(transitions.len(), 4, "{transitions:#?}");
    assert_eq!(evaluator.active(Some("default")).len(), 4);
    // Evaluated again, nothing changes: no second page.
    assert!(evaluator.evaluate(at, &snapshot).is_empty());
}
