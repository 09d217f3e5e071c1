//! Alerts once: the burn-rate rules of every SLO run on one compute node at a time, the
//! owner of the *control partition* (partition 0 of the spans topic), over the counts
//! of the whole cluster.
//!
//! The consumer group gives that partition to exactly one member, so the role moves
//! with it: the node it is assigned to starts an evaluation *term*, and the revocation
//! ends the term (the rebalance waits for it) before the partition can go to another
//! node. A term reads the alert states from the shared storage (`alerts/state.json`),
//! evaluates every `alerting.evaluation_interval` with the windows summed over every
//! partition ([`super::cluster::sums`]), and writes the states back after every change,
//! before anyone is told of it. The next term, here or on the node the partition moves
//! to (after a rebalance or a `kill -9`), starts from those states: a firing alert is
//! neither paged again nor forgotten, and its resolve is delivered by whoever evaluates
//! when it ends. Nothing is evaluated while some partition has no owner answering or an
//! owner is still catching up: a window missing minutes could resolve an alert that
//! still fires.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue};
use object_store::{ObjectStoreExt, PutPayload};
use slotel_compute::BurnSnapshot;
use slotel_compute::alerting::maintenance::Maintenance;
use slotel_compute::alerting::{
    AlertLoop, BoxFuture, BurnSource, Evaluator, StatePlace, Transition, TransitionLog,
};

use super::cluster::{asks, sums};
use super::*;

/// The alert states of the cluster, in the shared storage.
const STATE: &str = "alerts/state.json";
/// Where the cluster's `alert_events` table is, in the shared storage.
pub(super) const EVENTS: &str = "alerts";

/// The evaluation term running on this node, if it owns the control partition.
pub(super) struct Term {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// How long a revocation waits for the term to end (its last save, and its notifiers'
/// queued deliveries).
const TERM_END: Duration = Duration::from_secs(10);

impl Node {
    /// The partition whose owner evaluates the alerts.
    pub(super) fn control(&self) -> ShardId {
        ShardId {
            topic: self.kafka.spans_topic.clone(),
            partition: 0,
        }
    }

    /// The alert states of the term running here, if this node evaluates the alerts.
    fn local_evaluator(&self) -> Option<Arc<Mutex<Evaluator>>> {
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether this node evaluates the alerts now.
    pub(super) fn evaluates_alerts(&self) -> bool {
        self.term
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Ends the evaluation term, if one runs here, and waits for it (blocking: called in
    /// the rebalance, on the consumer thread).
    pub(super) fn end_term(&self) {
        let term = self.term.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Term { stop, task }) = term else {
            return;
        };
        let _ = stop.send(true);
        let ended = self
            .runtime
            .block_on(async { tokio::time::timeout(TERM_END, task).await });
        if ended.is_err() {
            tracing::error!("The alert evaluation did not end in time; it is stopped.");
        }
        tracing::info!("Stopped evaluating alerts: the control partition moved.");
    }
}

/// Starts an evaluation term on `node` if it owns the control partition and none runs.
pub(super) fn begin_term(node: &Arc<Node>) {
    if node.shard(&node.control()).is_none() {
        return;
    }
    let mut term = node.term.lock().unwrap_or_else(|e| e.into_inner());
    if term.is_some() {
        return;
    }
    let (stop, stop_rx) = watch::channel(false);
    let task = node.runtime.spawn(run_term(Arc::clone(node), stop_rx));
    *term = Some(Term { stop, task });
    tracing::info!(control = %node.control(), "Evaluating the alerts: this node owns the control partition.");
}

/// One term: the states read from the shared storage, then the alert loop until `stop`.
async fn run_term(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let place = ObjectState::of(&node);
    let evaluator = loop {
        match place.load().await {
            Ok(e) => break e,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read the alert states; alerts are not evaluated until they can be read.");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    };
    let notifiers = node.alerting.router(3);
    notifiers.seed(evaluator.recently_resolved());
    let alerts = Arc::new(Mutex::new(evaluator));
    *node.alerts.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&alerts));
    let history = Arc::new(SharedHistory(Arc::new(Store::new(
        Arc::new(PrefixStore::new(Arc::clone(&node.root), EVENTS)),
        format!("{}/{EVENTS}", node.url.trim_end_matches('/')),
        node.storage.options.clone(),
    ))));
    AlertLoop {
        source: Arc::new(ClusterBurns(Arc::clone(&node))),
        log: Arc::clone(&history) as Arc<dyn TransitionLog>,
        evaluator: alerts,
        notifiers,
        state: Arc::new(place),
        interval: node.alerting.evaluation_interval,
        external_url: node
            .alerting
            .external_url
            .clone()
            .unwrap_or_else(|| node.api_url.clone()),
    }
    .run(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    *node.alerts.lock().unwrap_or_else(|e| e.into_inner()) = None;
    // What a failed write kept, before the role moves.
    history.0.write_events().await;
}

/// The alert states: this node's evaluator's while it evaluates, else as the evaluating
/// node last saved them (it saves every change before anyone is told of it).
pub(super) async fn saved_states(node: &Node) -> Result<Evaluator, String> {
    if let Some(evaluator) = node.local_evaluator() {
        let json = evaluator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .to_json();
        return Evaluator::from_json(&json);
    }
    let place = ObjectState::of(node);
    match place.bytes().await? {
        Some(bytes) => Evaluator::from_json(&bytes)
            .map_err(|reason| format!("{} is damaged: {reason}", place.path)),
        None => Ok(Evaluator::new()),
    }
}

/// The alert states as an object of the shared storage (a put replaces it whole).
struct ObjectState {
    root: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

impl ObjectState {
    /// The cluster's alert states.
    fn of(node: &Node) -> Self {
        ObjectState {
            root: Arc::clone(&node.root),
            path: ObjectPath::from(STATE),
        }
    }

    /// The saved states' bytes; none before the first save.
    async fn bytes(&self) -> Result<Option<Vec<u8>>, String> {
        read_object(self.root.as_ref(), &self.path).await
    }

    /// The states kept; none is a fresh start. Damaged states are an error (after a copy
    /// is kept beside them), never a silent reset that would page again.
    async fn load(&self) -> Result<Evaluator, String> {
        let Some(bytes) = self.bytes().await? else {
            return Ok(Evaluator::new());
        };
        Evaluator::from_json(&bytes).map_err(|reason| {
            let backup = ObjectPath::from(format!("{}.damaged", self.path));
            let root = Arc::clone(&self.root);
            let copy = bytes.clone();
            tokio::spawn(async move { root.put(&backup, PutPayload::from(copy)).await });
            format!(
                "{} is damaged ({reason}); a copy is kept as {}.damaged: fix or remove it",
                self.path, self.path
            )
        })
    }
}

impl StatePlace for ObjectState {
    fn save(&self, json: Vec<u8>) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            self.root
                .put(&self.path, PutPayload::from(json))
                .await
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
    }

    fn describe(&self) -> String {
        format!("object {}", self.path)
    }
}

/// The cluster's alert history: every change written to the shared storage's
/// `alert_events` table (under [`EVENTS`]) before anyone is told of it, which SQL on any
/// node reads.
struct SharedHistory(Arc<Store>);

impl TransitionLog for SharedHistory {
    fn record(
        &self,
        transitions: &[Transition],
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
    ) {
        self.0.record(transitions, silenced);
    }

    /// Written before anyone is told: a page's history survives the evaluating node.
    fn persist(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.write_events())
    }
}

/// Every SLO's burn snapshot summed over the cluster's partitions.
struct ClusterBurns(Arc<Node>);

impl BurnSource for ClusterBurns {
    fn burn_snapshot(&self) -> BoxFuture<'_, Option<(i64, Vec<BurnSnapshot>)>> {
        Box::pin(cluster_snapshot(&self.0))
    }

    fn maintenance(&self) -> Arc<Maintenance> {
        Arc::clone(self.0.view.maintenance())
    }
}

/// The burn snapshot of every SLO (as a whole) over every partition, or `None` while
/// some partition is not answered for or its owner is catching up.
async fn cluster_snapshot(node: &Node) -> Option<(i64, Vec<BurnSnapshot>)> {
    if !node.is_ready() {
        return None;
    }
    let now = node.clock.now_nanos();
    let mut out = Vec::new();
    for tenant in node.view.tenants() {
        let defs = node.view.slos(&tenant);
        let (ranges, mut asks) = asks(&defs, |d| {
            (d.name.clone(), slotel_compute::burn_ranges(d, now))
        });
        // Every group alerts on its own, over the standard windows.
        for (ask, def) in asks.iter_mut().zip(&defs) {
            if !def.group_by.is_empty() {
                ask.group_ranges = slotel_compute::group_burn_ranges(def, now);
            }
        }
        let group_ranges: Vec<Vec<(i64, i64)>> =
            asks.iter().map(|a| a.group_ranges.clone()).collect();
        let summed = match sums(node, &tenant, asks).await {
            Ok(s) if s.caught_up => s,
            Ok(_) => {
                tracing::debug!(%tenant, "Not evaluating alerts: a partition's owner is catching up.");
                return None;
            }
            Err(e) => {
                tracing::debug!(%tenant, error = %e, "Not evaluating alerts: the cluster's counts are incomplete.");
                return None;
            }
        };
        for (((def, ranges), (sums, _)), (groups, group_ranges)) in defs
            .iter()
            .zip(&ranges)
            .zip(summed.sums)
            .zip(summed.groups.into_iter().zip(&group_ranges))
        {
            out.push(slotel_compute::burn_snapshot_from_sums(
                def, ranges, &sums, now,
            ));
            // The overflow group mixes many, so it does not alert (as in one process).
            for (labels, sums) in groups {
                if labels
                    .iter()
                    .all(|(_, v)| v == slotel_compute::engine::OVERFLOW_GROUP)
                {
                    continue;
                }
                out.push(slotel_compute::group_burn_snapshot_from_sums(
                    def,
                    labels,
                    group_ranges,
                    &sums,
                    now,
                ));
            }
        }
    }
    Some((now, out))
}

impl Node {
    /// What this node presents to the others to ask for `tenant`'s counts: the tenant's
    /// token when tokens are configured, else the tenant header.
    pub(super) fn credentials(&self, tenant: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = match self.tokens.iter().find(|t| t.tenant == tenant) {
            Some(t) => HeaderValue::from_str(&format!("Bearer {}", t.token))
                .map(|v| (header::AUTHORIZATION, v)),
            None => HeaderValue::from_str(tenant).map(|v| {
                (
                    header::HeaderName::from_static(slotel_proto::TENANT_HEADER),
                    v,
                )
            }),
        };
        if let Ok((k, v)) = value {
            headers.insert(k, v);
        }
        headers
    }
}

/// `GET /api/v1/alerts`: the pending and firing alerts of the request's tenant, from the
/// node that evaluates them (this one, or the one whose entry says so).
pub(super) async fn list_alerts(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
) -> Result<Response, slotel_query::ApiError> {
    if let Some(evaluator) = node.local_evaluator() {
        let now = node.clock.now_nanos();
        let maintenance = node.view.maintenance();
        let active = evaluator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active(Some(&t));
        let alerts: Vec<slotel_query::rest::ActiveAlert> = active
            .into_iter()
            .map(|a| {
                let get = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or_default();
                let held = maintenance.silences(get("tenant"), get("slo"), get("service"), now);
                slotel_query::rest::ActiveAlert::of(a, held)
            })
            .collect();
        return Ok(Json(serde_json::json!({
            "alerts": alerts,
            "evaluated_by": node.api_url,
        }))
        .into_response());
    }
    let members = super::cluster::members(&node).await?;
    let Some(evaluator) = members.into_iter().find(|m| m.alerts) else {
        return Err(slotel_query::ApiError::Unavailable(format!(
            "no compute node evaluates the alerts now (the owner of partition {} is changing); retry",
            node.control()
        )));
    };
    let reply = node
        .http
        .get(format!("{}/api/v1/alerts", evaluator.api))
        .headers(node.credentials(&t))
        .timeout(super::cluster::PEER_TIMEOUT)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| {
            slotel_query::ApiError::Unavailable(format!(
                "the node evaluating the alerts ({}) does not answer: {e}",
                evaluator.api
            ))
        })?;
    let body: serde_json::Value = reply.json().await.map_err(|e| {
        slotel_query::ApiError::Unavailable(format!("the alerts' node answered badly: {e}"))
    })?;
    Ok(Json(body).into_response())
}
