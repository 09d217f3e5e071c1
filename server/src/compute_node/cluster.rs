//! One answer from any compute node: an SLO's status summed over every partition of the
//! cluster, whichever node owns it.
//!
//! A status reads a fixed list of minute ranges of the SLO's counts
//! ([`slotel_compute::status_ranges`]: its windows, or its slices). The node answering
//! asks each shard for its (counted, total) sums over those ranges: its own shards
//! directly, the other nodes' through `POST /internal/v1/range_sums`. Each owner answers
//! from its engine, which holds its partition's whole window (the rows restored from
//! storage and everything counted since), so no minute is read twice or missed. Sums
//! add up; the status is computed from the total as one process computes it from its
//! own counts ([`slotel_compute::status_from_sums`]). If some partition has no owner
//! answering (a rebalance is under way, or a node died and its session has not expired
//! yet), the answer is 503 and names the partitions: an exact answer or none.
//!
//! Nodes find each other in the shared storage: each writes `cluster/nodes/<id>.json`
//! (its API's URL) every few seconds and deletes it when it stops; entries not rewritten
//! for 30 seconds are ignored.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Query;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use slotel_compute::alerting::Evaluator;
use slotel_compute::alerting::gate::{self, Gate};
use slotel_compute::{Explanation, GroupSums, Observed, RangeSums, SloStatus};
use slotel_query::ApiError;
use slotel_query::rest::{ListParams, SloList};
use slotel_query::source::SloGroups;

use super::*;

/// Where the members are listed.
const MEMBERS: &str = "cluster/nodes";
/// How often a node rewrites its entry.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
/// An entry not rewritten for this long is a node that is gone.
const STALE_MS: i64 = 30_000;
/// How long a node waits for another's sums.
pub(super) const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// A compute node's entry in the shared storage.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Member {
    id: String,
    pub(super) api: String,
    updated_at_ms: i64,
    /// Whether the node evaluates the alerts (it owns the control partition).
    #[serde(default)]
    pub(super) alerts: bool,
}

/// One SLO's ranges, asked of every shard.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Ask {
    pub(super) slo: String,
    pub(super) ranges: Vec<(i64, i64)>,
    /// The ranges of a group's status, asked of each group; none: no groups.
    #[serde(default)]
    pub(super) group_ranges: Vec<(i64, i64)>,
}

/// The ranges `ranges_of` says each of `defs` reads (with its SLO's name), and the asks
/// carrying them.
pub(super) fn asks<T>(
    defs: &[T],
    ranges_of: impl Fn(&T) -> (String, Vec<(i64, i64)>),
) -> (Vec<Vec<(i64, i64)>>, Vec<Ask>) {
    defs.iter()
        .map(|d| {
            let (slo, ranges) = ranges_of(d);
            (
                ranges.clone(),
                Ask {
                    slo,
                    ranges,
                    group_ranges: Vec::new(),
                },
            )
        })
        .unzip()
}

/// The body of `POST /internal/v1/range_sums`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Asks {
    asks: Vec<Ask>,
}

/// One shard's sums of one SLO; `sums` is empty when the shard does not have the SLO.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SloSums {
    slo: String,
    sums: Vec<(u64, u64)>,
    threshold: Option<f64>,
    /// Each group's labels and sums over the ask's `group_ranges`.
    #[serde(default)]
    groups: Vec<GroupSums>,
}

/// One shard's part of an answer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ShardPart<T> {
    topic: String,
    partition: i32,
    /// Whether the shard is within `kafka.ready_lag` records of its partition's end.
    #[serde(default)]
    ready: bool,
    part: T,
}

/// The reply of the `/internal/v1/` endpoints: the parts of this node's shards.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Parts<T> {
    shards: Vec<ShardPart<T>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn member_path(id: &str) -> ObjectPath {
    ObjectPath::from(format!("{MEMBERS}/{id}.json"))
}

/// Writes this node's entry every few seconds until `stop`, then deletes it.
pub(super) async fn announce(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let path = member_path(&node.id);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let member = Member {
            id: node.id.clone(),
            api: node.api_url.clone(),
            updated_at_ms: now_ms(),
            alerts: node.evaluates_alerts(),
        };
        let body = serde_json::to_vec(&member).expect("a member serializes");
        if let Err(e) = node.root.put(&path, PutPayload::from(body)).await {
            tracing::warn!(error = %e, "Cannot write this node's entry in the shared storage; other nodes cannot ask it for its partitions' counts.");
        }
        // The maintenance windows other nodes were given.
        if let Err(e) = node.sync_windows().await {
            tracing::warn!(error = %e, "Cannot read the shared maintenance windows; the node's stay as they were.");
        }
    }
    if let Err(e) = node.root.delete(&path).await {
        tracing::debug!(error = %e, "Cannot delete this node's entry.");
    }
}

/// The other nodes' API URLs, from their fresh entries.
async fn peers(node: &Node) -> Result<Vec<String>, ApiError> {
    Ok(members(node).await?.into_iter().map(|m| m.api).collect())
}

/// The other nodes' fresh entries.
pub(super) async fn members(node: &Node) -> Result<Vec<Member>, ApiError> {
    use futures::TryStreamExt;
    let prefix = ObjectPath::from(MEMBERS);
    let listed: Vec<_> = node
        .root
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot list the compute nodes: {e}")))?;
    let now = now_ms();
    let mut out = Vec::new();
    for meta in listed {
        let Ok(got) = node.root.get(&meta.location).await else {
            continue; // deleted meanwhile: a node that stopped
        };
        let Ok(bytes) = got.bytes().await else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<Member>(&bytes) else {
            continue;
        };
        if m.id != node.id && now - m.updated_at_ms <= STALE_MS {
            out.push(m);
        }
    }
    Ok(out)
}

impl<T> ShardPart<T> {
    /// `part`, the answer of `shard` of `node`.
    fn of(node: &Node, shard: &Shard, part: T) -> Self {
        ShardPart {
            topic: shard.id.topic.clone(),
            partition: shard.id.partition,
            ready: shard.is_caught_up(node.kafka.ready_lag),
            part,
        }
    }
}

/// `part` of each shard this node owns.
fn local_parts<T>(node: &Node, part: impl Fn(&Shard) -> T) -> Vec<ShardPart<T>> {
    node.shards()
        .iter()
        .map(|shard| ShardPart::of(node, shard, part(shard)))
        .collect()
}

/// The sums of `asks` over the shards this node owns, for `tenant`.
fn local_sums(node: &Node, tenant: &str, asks: &[Ask]) -> Vec<ShardPart<Vec<SloSums>>> {
    local_parts(node, |shard| {
        asks.iter()
            .map(|ask| {
                let (sums, threshold) = shard
                    .engine
                    .range_sums(tenant, &ask.slo, &ask.ranges)
                    .unwrap_or_default();
                let groups = if ask.group_ranges.is_empty() {
                    Vec::new()
                } else {
                    shard
                        .engine
                        .group_range_sums(tenant, &ask.slo, &ask.group_ranges)
                        .unwrap_or_default()
                };
                SloSums {
                    slo: ask.slo.clone(),
                    sums,
                    threshold,
                    groups,
                }
            })
            .collect()
    })
}

/// `POST /internal/v1/range_sums`: this node's shards' sums, for another node's answer.
pub(super) async fn range_sums(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    Json(asks): Json<Asks>,
) -> Json<Parts<Vec<SloSums>>> {
    Json(Parts {
        shards: local_sums(&node, &t, &asks.asks),
    })
}

/// Every partition's part of an answer for `tenant`: `local` (this node's shards') and
/// the other nodes' replies to `POST {path}` with `body` (asked with the tenant's
/// credentials, [`Node::credentials`]), by partition, and whether every owner is caught
/// up. An error when some partition has no answer, or two.
pub(super) async fn gather<T: serde::de::DeserializeOwned>(
    node: &Node,
    tenant: &str,
    path: &str,
    body: &(impl Serialize + Sync),
    local: Vec<ShardPart<T>>,
) -> Result<(BTreeMap<ShardId, T>, bool), ApiError> {
    let wanted = node
        .partitions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if wanted.is_empty() {
        return Err(ApiError::Unavailable(
            "the topics' partitions are not known yet; retry in a few seconds".into(),
        ));
    }
    let mut answers: BTreeMap<ShardId, ShardPart<T>> = BTreeMap::new();
    let mut conflicts = BTreeSet::new();
    let mut add = |shards: Vec<ShardPart<T>>| {
        for s in shards {
            let id = ShardId {
                topic: s.topic.clone(),
                partition: s.partition,
            };
            if answers.insert(id.clone(), s).is_some() {
                conflicts.insert(id);
            }
        }
    };
    add(local);
    let credentials = node.credentials(tenant);
    let replies = futures::future::join_all(peers(node).await?.into_iter().map(|api| {
        let request = node
            .http
            .post(format!("{api}{path}"))
            .headers(credentials.clone())
            .timeout(PEER_TIMEOUT)
            .json(body);
        async move {
            let reply = request.send().await.ok()?.error_for_status().ok()?;
            reply.json::<Parts<T>>().await.ok()
        }
    }))
    .await;
    // A node that does not answer owns nothing as far as this answer goes: if it owns
    // a partition, that partition is missing below.
    for reply in replies.into_iter().flatten() {
        add(reply.shards);
    }
    if !conflicts.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "partitions {} are claimed by two nodes (a rebalance is under way); retry",
            names(&conflicts)
        )));
    }
    let missing: BTreeSet<ShardId> = wanted
        .iter()
        .filter(|id| !answers.contains_key(*id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "no compute node answers for partitions {} (a rebalance is under way, or their \
             owner stopped and the group has not moved them yet); retry",
            names(&missing)
        )));
    }
    let caught_up = answers.values().all(|s| s.ready);
    Ok((
        answers.into_iter().map(|(id, s)| (id, s.part)).collect(),
        caught_up,
    ))
}

/// Sums of the same ranges over every partition of the cluster.
pub(super) struct Summed {
    /// Per ask, in order: the (counted, total) sums over its ranges and the histogram
    /// bound its latency SLI counts at.
    pub(super) sums: Vec<RangeSums>,
    /// Per ask, each group's sums over its `group_ranges`, summed by labels.
    pub(super) groups: Vec<Vec<GroupSums>>,
    /// Whether every partition's owner is caught up (within `kafka.ready_lag`).
    pub(super) caught_up: bool,
}

/// `asks` of `tenant`'s SLOs summed over every partition: this node's shards directly,
/// the others' through their owners. An error when some partition has no answer, or
/// two.
pub(super) async fn sums(node: &Node, tenant: &str, asks: Vec<Ask>) -> Result<Summed, ApiError> {
    let local = local_sums(node, tenant, &asks);
    let body = Asks { asks };
    let (answers, caught_up) =
        gather(node, tenant, "/internal/v1/range_sums", &body, local).await?;
    let mut out = Vec::with_capacity(body.asks.len());
    let mut groups_out = Vec::with_capacity(body.asks.len());
    for ask in &body.asks {
        let mut sums = vec![(0u64, 0u64); ask.ranges.len()];
        let mut threshold = None;
        let mut groups = BTreeMap::new();
        for (id, slos) in &answers {
            let Some(part) = slos.iter().find(|s| s.slo == ask.slo) else {
                return Err(ApiError::Unavailable(format!(
                    "partition {id} did not answer for SLO {:?}",
                    ask.slo
                )));
            };
            if part.sums.len() != sums.len() {
                return Err(ApiError::Unavailable(format!(
                    "the owner of partition {id} does not have SLO {:?} loaded (an SLO reload \
                     is under way?)",
                    ask.slo
                )));
            }
            for (total, (x, t)) in sums.iter_mut().zip(&part.sums) {
                total.0 += x;
                total.1 += t;
            }
            threshold = threshold.or(part.threshold);
            for (labels, part_sums) in &part.groups {
                let total = groups
                    .entry(labels.clone())
                    .or_insert_with(|| vec![(0, 0); ask.group_ranges.len()]);
                for (t, (x, n)) in total.iter_mut().zip(part_sums) {
                    t.0 += x;
                    t.1 += n;
                }
            }
        }
        out.push((sums, threshold));
        groups_out.push(groups.into_iter().collect());
    }
    Ok(Summed {
        sums: out,
        groups: groups_out,
        caught_up,
    })
}

/// The statuses of `defs` at `now`, summed over every partition (with their groups'
/// when `with_groups`).
async fn statuses(
    node: &Node,
    tenant: &str,
    defs: &[SloDef],
    with_groups: bool,
) -> Result<Vec<SloStatus>, ApiError> {
    let now = node.clock.now_nanos();
    let (ranges, mut asks) = asks(defs, |d| {
        (d.name.clone(), slotel_compute::status_ranges(d, now))
    });
    if with_groups {
        for (ask, def) in asks.iter_mut().zip(defs) {
            if !def.group_by.is_empty() {
                ask.group_ranges = slotel_compute::group_ranges(def, now);
            }
        }
    }
    let group_ranges: Vec<Vec<(i64, i64)>> = asks.iter().map(|a| a.group_ranges.clone()).collect();
    let summed = sums(node, tenant, asks).await?;
    Ok(defs
        .iter()
        .zip(&ranges)
        .zip(summed.sums)
        .zip(summed.groups.iter().zip(&group_ranges))
        .map(
            |(((def, ranges), (sums, threshold)), (groups, group_ranges))| {
                let status = slotel_compute::status_from_sums(def, ranges, &sums, threshold, now);
                let mut status = node.view.in_maintenance_at(status, now);
                if !group_ranges.is_empty() {
                    status.groups =
                        slotel_compute::group_statuses_from_sums(def, group_ranges, groups, now);
                }
                status
            },
        )
        .collect())
}

fn names(ids: &BTreeSet<ShardId>) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The loaded SLOs of `tenant`, by name.
fn defs_of(node: &Node, tenant: &str) -> Vec<SloDef> {
    let mut defs: Vec<SloDef> = node
        .defs
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|d| d.tenant == tenant)
        .cloned()
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    defs
}

/// `GET /api/v1/slos` over the whole cluster.
pub(super) async fn list_slos(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    Query(p): Query<ListParams>,
) -> Result<Json<SloList>, ApiError> {
    let all = statuses(&node, &t, &defs_of(&node, &t), false).await?;
    let slos = slotel_query::rest::select_slos(all, &p)?;
    Ok(Json(SloList { slos }))
}

/// `tenant`'s loaded SLO `name`; not found otherwise.
fn def_named(node: &Node, tenant: &str, name: &str) -> Result<SloDef, ApiError> {
    defs_of(node, tenant)
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no SLO {name:?} for tenant {tenant:?}")))
}

/// The status of `def` (of `tenant`) summed over every partition, with its groups when
/// `with_groups`.
async fn status_of(
    node: &Node,
    tenant: &str,
    def: &SloDef,
    with_groups: bool,
) -> Result<SloStatus, ApiError> {
    let mut one = statuses(node, tenant, std::slice::from_ref(def), with_groups).await?;
    Ok(one.remove(0))
}

/// `GET /api/v1/slos/{name}` over the whole cluster; an SLO without data says why, as
/// in one process.
pub(super) async fn get_slo(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<SloStatus>, ApiError> {
    let def = def_named(&node, &t, &name)?;
    let mut status = status_of(&node, &t, &def, true).await?;
    if status.state == "no_data" {
        let explanation = explanation(&node, &t, &def, &status).await?;
        status.diagnosis = explanation.findings.into_iter().next();
    }
    Ok(Json(status))
}

/// `GET /api/v1/slos/{name}/groups` over the whole cluster.
pub(super) async fn get_groups(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<slotel_query::rest::GroupList>, ApiError> {
    let def = def_named(&node, &t, &name)?;
    let group_by = def.group_by.clone();
    let mut statuses = statuses(&node, &t, &[def], true).await?;
    Ok(Json(slotel_query::rest::GroupList {
        slo: name,
        group_by,
        groups: std::mem::take(&mut statuses[0].groups),
    }))
}

/// The body of `POST /internal/v1/observed`: whose sample is wanted.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ObservedAsk {
    service: String,
}

/// What this node's shards saw of `tenant`'s spans, with the sample of `service`.
fn local_observed(node: &Node, tenant: &str, service: &str) -> Vec<ShardPart<Observed>> {
    local_parts(node, |shard| shard.engine.observed(tenant, service))
}

/// `POST /internal/v1/observed`: this node's shards' part of another node's
/// explanation.
pub(super) async fn observed(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    Json(ask): Json<ObservedAsk>,
) -> Json<Parts<Observed>> {
    Json(Parts {
        shards: local_observed(&node, &t, &ask.service),
    })
}

/// Why `def` (of `tenant`, with cluster-wide status `status`) counts what it counts,
/// from what every partition's owner saw of the tenant's spans.
async fn explanation(
    node: &Node,
    tenant: &str,
    def: &SloDef,
    status: &SloStatus,
) -> Result<Explanation, ApiError> {
    let ask = ObservedAsk {
        service: def.service.clone(),
    };
    let local = local_observed(node, tenant, &def.service);
    let (parts, _) = gather(node, tenant, "/internal/v1/observed", &ask, local).await?;
    Ok(slotel_compute::explain_observed(
        &defs_of(node, tenant),
        def,
        status,
        &Observed::merge(parts.into_values()),
    ))
}

/// `GET /api/v1/slos/{name}/explain` over the whole cluster.
pub(super) async fn explain_slo(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<Explanation>, ApiError> {
    let def = def_named(&node, &t, &name)?;
    let status = status_of(&node, &t, &def, false).await?;
    Ok(Json(explanation(&node, &t, &def, &status).await?))
}

/// `tenant`'s active alerts, as the evaluating node saved them.
async fn active_alerts(
    node: &Node,
    tenant: &str,
) -> Result<Vec<slotel_compute::alerting::Alert>, ApiError> {
    let states = super::alerts::saved_states(node)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the alert states: {e}")))?;
    Ok(states.active(Some(tenant)))
}

/// `GET /api/v1/slos/{name}/gate` over the whole cluster: the summed status, and the
/// alerts of the node that evaluates them.
pub(super) async fn slo_gate(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<Gate>, ApiError> {
    let def = def_named(&node, &t, &name)?;
    let status = status_of(&node, &t, &def, true).await?;
    let active = active_alerts(&node, &t).await?;
    Ok(Json(gate::decide(&status, &active)))
}

/// `GET /api/v1/services/{service}/gate` over the whole cluster.
pub(super) async fn service_gate(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    axum::extract::Path(service): axum::extract::Path<String>,
) -> Result<Json<slotel_query::rest::ServiceGate>, ApiError> {
    let defs: Vec<SloDef> = defs_of(&node, &t)
        .into_iter()
        .filter(|d| d.service == service)
        .collect();
    if defs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no SLO of service {service:?} for tenant {:?}",
            &*t
        )));
    }
    let statuses = statuses(&node, &t, &defs, false).await?;
    let active = active_alerts(&node, &t).await?;
    let slos: Vec<Gate> = statuses.iter().map(|s| gate::decide(s, &active)).collect();
    Ok(Json(slotel_query::rest::ServiceGate {
        service,
        allowed: slos.iter().all(|g| g.allowed),
        slos,
    }))
}

/// One want of `POST /internal/v1/minutes`: an SLO (or one of its groups) from minute
/// `lo` on.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WantedMinutes {
    slo: String,
    group: Option<Vec<(String, String)>>,
    lo: i64,
}

/// The body of `POST /internal/v1/minutes`: the wants, each up to minute `hi`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MinutesAsk {
    wants: Vec<WantedMinutes>,
    hi: i64,
}

/// A want's minutes in one shard: only those with events, as (minute - lo, counted,
/// total), and the histogram bound its latency SLI counts at.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SparseMinutes {
    minutes: Vec<(u32, u64, u64)>,
    threshold: Option<f64>,
}

/// The minutes of `ask` in each shard this node owns (its engine's and its storage's),
/// for `tenant`.
async fn local_minutes(
    node: &Node,
    tenant: &str,
    ask: &MinutesAsk,
) -> Vec<ShardPart<Vec<Option<SparseMinutes>>>> {
    use slotel_compute::window::MinuteCounts;
    let wants: Vec<slotel_query::source::MinutesWanted<'_>> = ask
        .wants
        .iter()
        .map(|w| slotel_query::source::MinutesWanted {
            name: &w.slo,
            group: w.group.as_deref(),
            lo: w.lo,
        })
        .collect();
    let mut out = Vec::new();
    for shard in node.shards() {
        let read = slotel_query::source::read_minutes(
            &shard.engine,
            Some(&shard.store),
            tenant,
            &wants,
            ask.hi,
        )
        .await;
        let part = read
            .into_iter()
            .zip(&ask.wants)
            .map(|(m, w)| {
                let m = m?;
                let minutes = (w.lo..=ask.hi)
                    .filter_map(|minute| {
                        let (x, t) = m.series.range(minute, minute);
                        (t > 0 || x > 0).then(|| ((minute - w.lo) as u32, x, t))
                    })
                    .collect();
                Some(SparseMinutes {
                    minutes,
                    threshold: m.effective_threshold,
                })
            })
            .collect();
        out.push(ShardPart::of(node, &shard, part));
    }
    out
}

/// `POST /internal/v1/minutes`: this node's shards' minutes, for another node's series.
pub(super) async fn minutes(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    Json(ask): Json<MinutesAsk>,
) -> Json<Parts<Vec<Option<SparseMinutes>>>> {
    Json(Parts {
        shards: local_minutes(&node, &t, &ask).await,
    })
}

/// The query API's minutes on a compute node: every partition's, summed.
pub(super) struct ClusterMinutes(pub(super) Arc<Node>);

impl ClusterMinutes {
    /// Every partition's part for `tenant`: `local`, and the other owners' replies to
    /// `POST {path}` with `body`, asked with the tenant's credentials.
    async fn ask_all<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &str,
        path: &str,
        body: &(impl Serialize + Sync),
        local: Vec<ShardPart<T>>,
    ) -> Result<BTreeMap<ShardId, T>, String> {
        let node = &self.0;
        let (answers, _) = gather(node, tenant, path, body, local)
            .await
            .map_err(|e| e.to_string())?;
        Ok(answers)
    }
}

impl slotel_query::source::RemoteMinutes for ClusterMinutes {
    fn counts<'a>(
        &'a self,
        tenant: &'a str,
        wants: &'a [slotel_query::source::MinutesWanted<'a>],
        hi: i64,
    ) -> slotel_query::source::BoxFuture<
        'a,
        Result<Vec<Option<slotel_query::source::WantCounts>>, String>,
    > {
        Box::pin(async move {
            let node = &self.0;
            let ask = MinutesAsk {
                wants: wants
                    .iter()
                    .map(|w| WantedMinutes {
                        slo: w.name.to_string(),
                        group: w.group.map(<[(String, String)]>::to_vec),
                        lo: w.lo,
                    })
                    .collect(),
                hi,
            };
            let local = local_minutes(node, tenant, &ask).await;
            let answers = self
                .ask_all(tenant, "/internal/v1/minutes", &ask, local)
                .await?;
            let mut out = Vec::with_capacity(ask.wants.len());
            for (i, w) in ask.wants.iter().enumerate() {
                let len = usize::try_from(hi - w.lo + 1).unwrap_or(0);
                let mut counts = vec![(0u64, 0u64); len];
                let (mut threshold, mut known) = (None, false);
                for part in answers.values() {
                    let Some(Some(m)) = part.get(i) else { continue };
                    known = true;
                    for &(at, x, t) in &m.minutes {
                        if let Some(c) = counts.get_mut(at as usize) {
                            c.0 += x;
                            c.1 += t;
                        }
                    }
                    threshold = threshold.or(m.threshold);
                }
                out.push(known.then_some((counts, threshold)));
            }
            Ok(out)
        })
    }

    fn sql_tables<'a>(
        &'a self,
        tenant: &'a str,
    ) -> slotel_query::source::BoxFuture<'a, Result<slotel_query::source::RemoteTables, String>>
    {
        Box::pin(async move {
            let node = &self.0;
            let local = local_sql_parts(node, tenant).await?;
            let answers = self
                .ask_all(
                    tenant,
                    "/internal/v1/sql_parts",
                    &serde_json::json!({}),
                    local,
                )
                .await?;
            let mut t = slotel_query::source::RemoteTables {
                objects: Arc::clone(&node.root),
                minute_files: Vec::new(),
                hour_files: Vec::new(),
                event_files: event_files(node, tenant).await?,
                tail: Vec::new(),
            };
            for part in answers.into_values() {
                t.minute_files.extend(part.minute);
                t.hour_files.extend(part.hour);
                t.tail.extend(
                    slotel_storage::sql::read_tail_ipc(&part.tail).map_err(|e| e.to_string())?,
                );
            }
            Ok(t)
        })
    }

    fn latency<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        lo: i64,
        hi: i64,
    ) -> slotel_query::source::BoxFuture<
        'a,
        Result<Option<slotel_query::source::MinuteHistograms>, String>,
    > {
        Box::pin(async move {
            let node = &self.0;
            let ask = LatencyAsk {
                slo: name.to_string(),
                lo,
                hi,
            };
            let local = local_latency(node, tenant, &ask).await;
            let answers = self
                .ask_all(tenant, "/internal/v1/latency", &ask, local)
                .await?;
            let mut out: Option<slotel_query::source::MinuteHistograms> = None;
            for part in answers.into_values().flatten() {
                let merged = out.get_or_insert_with(Default::default);
                for (minute, bytes) in part {
                    let h = slotel_compute::latency::deserialize(&bytes)
                        .map_err(|e| format!("a partition's histogram does not decode: {e}"))?;
                    slotel_compute::latency::merge(
                        merged
                            .entry(minute)
                            .or_insert_with(slotel_compute::latency::histogram),
                        &h,
                    );
                }
            }
            Ok(out)
        })
    }

    fn groups<'a>(
        &'a self,
        tenant: &'a str,
    ) -> slotel_query::source::BoxFuture<'a, Result<SloGroups, String>> {
        Box::pin(async move {
            let node = &self.0;
            let local = local_groups(node, tenant);
            let answers = self
                .ask_all(tenant, "/internal/v1/groups", &serde_json::json!({}), local)
                .await?;
            let mut all: BTreeMap<String, BTreeSet<slotel_query::source::GroupLabels>> =
                BTreeMap::new();
            for part in answers.into_values() {
                for (slo, groups) in part {
                    all.entry(slo).or_default().extend(groups);
                }
            }
            Ok(all
                .into_iter()
                .map(|(slo, groups)| (slo, groups.into_iter().collect()))
                .collect())
        })
    }

    fn alert_states(&self) -> slotel_query::source::BoxFuture<'_, Result<Evaluator, String>> {
        Box::pin(super::alerts::saved_states(&self.0))
    }
}

/// The files of `tenant`'s `alert_events` in the shared storage (written by whichever
/// node evaluated the alerts when they changed).
async fn event_files(node: &Node, tenant: &str) -> Result<Vec<String>, String> {
    slotel_storage::sql::table_files(
        node.root.as_ref(),
        Some(super::alerts::EVENTS),
        slotel_storage::alert_events::ALERT_EVENTS,
        tenant,
    )
    .await
    .map_err(|e| e.to_string())
}

/// One shard's tables for another node's SQL: its stored files and unflushed minutes of
/// the tenant, listed at one instant.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SqlPart {
    /// `sli_minute` files, as paths of the shared storage.
    minute: Vec<String>,
    /// `sli_hour` files.
    hour: Vec<String>,
    /// The unflushed minutes, as an Arrow IPC stream.
    tail: Vec<u8>,
}

/// The tables of every shard this node owns, for `tenant`: each shard's files (as paths
/// of the shared storage) and unflushed minutes, listed at one instant
/// ([`slotel_storage::sql::Snapshot`]).
async fn local_sql_parts(node: &Node, tenant: &str) -> Result<Vec<ShardPart<SqlPart>>, String> {
    let mut out = Vec::new();
    for shard in node.shards() {
        let snapshot = slotel_storage::sql::Snapshot::take(&shard.store, &shard.engine, tenant)
            .await
            .map_err(|e| format!("{}: {e}", shard.id))?;
        let in_shared = |files: Vec<String>| -> Vec<String> {
            files
                .into_iter()
                .map(|f| format!("shards/{}/{f}", shard.id))
                .collect()
        };
        let part = SqlPart {
            minute: in_shared(snapshot.minute),
            hour: in_shared(snapshot.hour),
            tail: slotel_storage::sql::tail_ipc(&snapshot.tail).map_err(|e| e.to_string())?,
        };
        out.push(ShardPart::of(node, &shard, part));
    }
    Ok(out)
}

/// `POST /internal/v1/sql_parts`: this node's shards' tables, for another node's SQL.
pub(super) async fn sql_parts(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
) -> Result<Json<Parts<SqlPart>>, ApiError> {
    let shards = local_sql_parts(&node, &t)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(Parts { shards }))
}

/// Each grouped SLO's groups in the shards this node owns, for `tenant`.
fn local_groups(node: &Node, tenant: &str) -> Vec<ShardPart<SloGroups>> {
    local_parts(node, |shard| {
        shard
            .engine
            .slos(tenant)
            .iter()
            .filter(|d| !d.group_by.is_empty())
            .map(|d| (d.name.clone(), shard.engine.groups(tenant, &d.name)))
            .collect()
    })
}

/// `POST /internal/v1/groups`: the groups this node's shards have, for another node's
/// series.
pub(super) async fn groups(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
) -> Json<Parts<SloGroups>> {
    Json(Parts {
        shards: local_groups(&node, &t),
    })
}

/// The body of `POST /internal/v1/latency`: an SLO's histograms over minutes `lo..=hi`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LatencyAsk {
    slo: String,
    lo: i64,
    hi: i64,
}

/// One shard's histograms of an SLO, serialized, by minute; `None` when the shard does
/// not have the SLO or the SLO has no durations.
type ShardLatency = Option<Vec<(i64, Vec<u8>)>>;

/// The histograms of `ask` in each shard this node owns, for `tenant`.
async fn local_latency(
    node: &Node,
    tenant: &str,
    ask: &LatencyAsk,
) -> Vec<ShardPart<ShardLatency>> {
    let mut out = Vec::new();
    for shard in node.shards() {
        let read = slotel_query::source::read_latency(
            &shard.engine,
            Some(&shard.store),
            tenant,
            &ask.slo,
            ask.lo,
            ask.hi,
        )
        .await;
        let part = read.map(|h| {
            h.iter()
                .map(|(m, h)| (*m, slotel_compute::latency::serialize(h)))
                .collect()
        });
        out.push(ShardPart::of(node, &shard, part));
    }
    out
}

/// `POST /internal/v1/latency`: this node's shards' histograms, for another node's
/// quantiles.
pub(super) async fn latency(
    State(node): State<Arc<Node>>,
    Extension(t): Extension<Tenant>,
    Json(ask): Json<LatencyAsk>,
) -> Json<Parts<ShardLatency>> {
    Json(Parts {
        shards: local_latency(&node, &t, &ask).await,
    })
}
