//! [`ComputeNode`]: `slotel serve --role compute`, a member of the compute nodes'
//! consumer group (`kafka.group`).
//!
//! Each partition of the three topics it is assigned is a *shard*: an engine of its own
//! over that partition, as one process runs an engine over its write-ahead log, with the
//! partition's offsets as the log positions. A shard keeps its rows and its checkpoint
//! in the shared storage under `shards/<topic>-<partition>/`; every flush publishes a
//! checkpoint (the engine's state and the offset it covers) and only then commits that
//! offset to the group, as Tempo commits after its upload. A shard given to a node
//! restores the rows and the checkpoint found there and reads on from the checkpoint's
//! offset, so a rebalance or a `kill -9` neither loses a record nor counts one twice:
//! what the checkpoint covers is never read again, and what it does not is read again
//! by the next owner, whose engine state is the checkpoint's.
//!
//! The group uses Kafka's eager rebalance: before a partition moves, its owner flushes
//! and checkpoints it inside the revocation (the rebalance waits for it). A node keeps
//! the shards it gave up until the assignment that follows, and takes them back as they
//! are when they come back to it unchanged, rather than reading them from storage again.
//!
//! The API port serves `/healthz`, `/readyz` (ready once the node joined the group and
//! each shard it owns is within `kafka.ready_lag` records of the partition's end),
//! `/metrics` and `/api/v1/shards` (each owned shard's offsets and the counts of the
//! request tenant's SLOs in it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use slotel_compute::alerting::maintenance::MaintenanceWindow;
use slotel_compute::{Engine, EngineConfig};
use slotel_ingest::config::KafkaConfig;
use slotel_ingest::kafka::rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext,
};
use slotel_ingest::kafka::rdkafka::message::{BorrowedMessage, Headers, Message};
use slotel_ingest::kafka::rdkafka::types::RDKafkaRespErr;
use slotel_ingest::kafka::rdkafka::{ClientContext, Offset, TopicPartitionList};
use slotel_model::{Clock, SloDef, SystemClock};
use slotel_proto::Tenant;
use slotel_storage::{CheckpointPlace, CheckpointTarget, StorageConfig, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod alerts;
mod cluster;
mod maintenance;

use crate::app::{Addresses, bind, engine_of, join_servers, metrics_reply, stop_within, tls_of};
use crate::config::ServeConfig;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ShardId {
    topic: String,
    partition: i32,
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The state of one owned partition.
struct Shard {
    id: ShardId,
    engine: Arc<Engine>,
    store: Arc<Store>,
    /// The partition's end (the offset its next record gets) as last asked; -1 unknown.
    end: AtomicI64,
    /// Record bytes applied, and as of the last checkpoint: when to checkpoint early.
    applied_bytes: Arc<AtomicU64>,
    checkpointed_bytes: Arc<AtomicU64>,
    /// The storage loop while the shard is owned.
    flusher: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl Shard {
    /// Whether the shard is within `bound` records of its partition's end.
    fn is_caught_up(&self, bound: u64) -> bool {
        self.lag().is_some_and(|l| l <= bound)
    }

    /// Records between what the engine applied and the partition's end; `None` while
    /// the end is unknown.
    fn lag(&self) -> Option<u64> {
        let end = self.end.load(Ordering::Acquire);
        (end >= 0).then(|| (end as u64).saturating_sub(self.engine.applied()))
    }
}

/// Counters of the node, for `/metrics`.
#[derive(Debug, Default)]
struct NodeStats {
    /// Records that are not a request of their topic's signal (skipped).
    unreadable: AtomicU64,
    /// Rebalances that assigned partitions to this node.
    assignments: AtomicU64,
    /// Shards restored from storage, and shards taken back unchanged.
    restored: AtomicU64,
    kept: AtomicU64,
    /// Offset commits that failed (the checkpoint is what counts; the next one commits).
    commit_errors: AtomicU64,
}

/// What the consumer thread, its rebalance callbacks and the API share.
struct Node {
    /// This node's name among the compute nodes.
    id: String,
    /// Where the other nodes reach this one's API.
    api_url: String,
    /// Asks the other nodes for their partitions' counts.
    http: reqwest::Client,
    /// The SLOs and maintenance windows, without counts: what a status summed over the
    /// partitions is computed for.
    view: Arc<Engine>,
    /// Every partition of the three topics, as the brokers last said.
    partitions: RwLock<std::collections::BTreeSet<ShardId>>,
    kafka: KafkaConfig,
    /// The shared storage's root; each shard lives under `shards/<topic>-<partition>/`.
    root: Arc<dyn ObjectStore>,
    url: String,
    storage: StorageConfig,
    engine: EngineConfig,
    defs: RwLock<Vec<SloDef>>,
    maintenance: Vec<MaintenanceWindow>,
    clock: Arc<dyn Clock>,
    checkpoint_bytes: u64,
    runtime: tokio::runtime::Handle,
    shards: RwLock<BTreeMap<ShardId, Arc<Shard>>>,
    /// Shards given up in the last revocation, kept until the next assignment.
    parked: Mutex<BTreeMap<ShardId, Arc<Shard>>>,
    /// Offsets to commit, sent once their checkpoint is published.
    commits_tx: Mutex<mpsc::Sender<(ShardId, u64)>>,
    commits_rx: Mutex<mpsc::Receiver<(ShardId, u64)>>,
    /// Whether the node has had an assignment (it joined the group).
    joined: AtomicBool,
    stopping: AtomicBool,
    stats: NodeStats,
    /// The `alerting:` settings, for the node that evaluates the alerts.
    alerting: slotel_compute::alerting::config::AlertingConfig,
    /// The configured tokens: what this node presents to the others for a tenant.
    tokens: Vec<slotel_ingest::config::TokenConfig>,
    /// The alert evaluation term, while this node owns the control partition.
    term: Mutex<Option<alerts::Term>>,
    /// The term's alert states, for `/api/v1/alerts`.
    alerts: Mutex<Option<Arc<Mutex<slotel_compute::alerting::Evaluator>>>>,
    /// Serializes this node's changes of the shared maintenance windows.
    window_changes: tokio::sync::Mutex<()>,
}

/// The bytes of the object at `path` of `root`; none when there is no such object.
async fn read_object(root: &dyn ObjectStore, path: &ObjectPath) -> Result<Option<Vec<u8>>, String> {
    use object_store::ObjectStoreExt;
    match root.get(path).await {
        Ok(got) => got
            .bytes()
            .await
            .map(|b| Some(b.to_vec()))
            .map_err(|e| format!("cannot read {path}: {e}")),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

impl Node {
    /// The bytes of the shared storage's object at `path`; none when there is none.
    async fn object(&self, path: &ObjectPath) -> Result<Option<Vec<u8>>, String> {
        read_object(self.root.as_ref(), path).await
    }

    fn shards(&self) -> Vec<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn shard(&self, id: &ShardId) -> Option<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Ready once the node joined the group and every shard it owns is caught up.
    fn is_ready(&self) -> bool {
        self.joined.load(Ordering::Acquire)
            && self
                .shards()
                .iter()
                .all(|s| s.is_caught_up(self.kafka.ready_lag))
    }

    /// Opens shard `id` from the shared storage: its rows, then its checkpoint's state.
    async fn open(&self, id: &ShardId) -> anyhow::Result<Arc<Shard>> {
        let prefix = format!("shards/{id}");
        let objects: Arc<dyn ObjectStore> =
            Arc::new(PrefixStore::new(Arc::clone(&self.root), prefix.as_str()));
        let store = Arc::new(Store::new(
            Arc::clone(&objects),
            format!("{}/{prefix}", self.url.trim_end_matches('/')),
            self.storage.options.clone(),
        ));
        let defs = self.defs.read().unwrap_or_else(|e| e.into_inner()).clone();
        // The node's windows: the configured ones and those posted to any node.
        let engine = Arc::new(engine_of(
            &self.clock,
            self.engine,
            defs,
            &self.view.maintenance().all(),
        )?);
        let place = CheckpointPlace::Object {
            objects,
            path: ObjectPath::from("checkpoint"),
        };
        let checkpoint = place.load().await?;
        if let Some(c) = &checkpoint {
            store
                .drop_unpublished(c.committed_seq)
                .await
                .context("cannot clean up the files of an unpublished checkpoint")?;
        }
        store
            .restore(&engine)
            .await
            .context("cannot read the shard's stored SLO data")?;
        store
            .load_pages(&engine)
            .await
            .context("cannot read the stored minutes of the SLO windows' edges")?;
        match &checkpoint {
            Some(c) => engine
                .restore_state(c.position, &c.state)
                .with_context(|| format!("cannot use the checkpoint of {id}"))?,
            None => engine.start_at(0),
        }
        let shard = Arc::new(Shard {
            id: id.clone(),
            engine,
            store,
            end: AtomicI64::new(-1),
            applied_bytes: Arc::new(AtomicU64::new(0)),
            checkpointed_bytes: Arc::new(AtomicU64::new(0)),
            flusher: Mutex::new(None),
        });
        self.target(&shard, place);
        if checkpoint.is_none() {
            // The first checkpoint says which files were there before the partition.
            shard.store.flush(&shard.engine).await;
        }
        tracing::info!(
            shard = %id,
            offset = shard.engine.applied(),
            "Restored a partition from the shared storage."
        );
        self.stats.restored.fetch_add(1, Ordering::Relaxed);
        Ok(shard)
    }

    /// Points `shard`'s checkpoints at `place`; each published one commits its offset.
    fn target(&self, shard: &Shard, place: CheckpointPlace) {
        let commits = self
            .commits_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let id = shard.id.clone();
        let (applied, checkpointed) = (
            Arc::clone(&shard.applied_bytes),
            Arc::clone(&shard.checkpointed_bytes),
        );
        let (applied2, checkpointed2) = (Arc::clone(&applied), Arc::clone(&checkpointed));
        shard.store.set_checkpoint_target(CheckpointTarget {
            place,
            release: Box::new(move |position| {
                checkpointed.store(applied.load(Ordering::Acquire), Ordering::Release);
                let _ = commits.send((id.clone(), position));
            }),
            pending_bytes: Box::new(move || {
                applied2
                    .load(Ordering::Acquire)
                    .saturating_sub(checkpointed2.load(Ordering::Acquire))
            }),
            max_pending_bytes: self.checkpoint_bytes,
        });
    }

    /// Starts `shard`'s storage loop.
    fn start_flusher(&self, shard: &Shard) {
        let (stop, mut stop_rx) = watch::channel(false);
        let task = self.runtime.spawn(slotel_storage::run::run(
            Arc::clone(&shard.engine),
            Arc::clone(&shard.store),
            self.storage.clone(),
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        ));
        *shard.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some((stop, task));
    }

    /// Stops `shard`'s storage loop and publishes a last checkpoint: after it, nothing
    /// of this node writes to the shard's storage.
    async fn close(&self, shard: &Shard) {
        let flusher = shard
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((stop, task)) = flusher {
            let _ = stop.send(true);
            let _ = task.await;
        }
        shard.store.flush(&shard.engine).await;
    }

    /// Counts `msg` into its shard.
    fn apply(&self, msg: &BorrowedMessage<'_>) {
        let id = ShardId {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
        };
        let Some(shard) = self.shard(&id) else {
            tracing::error!(shard = %id, offset = msg.offset(), "A record of a partition this node does not own; its owner counts it.");
            return;
        };
        let next = (msg.offset() + 1) as u64;
        if next <= shard.engine.applied() {
            return; // covered by the checkpoint already
        }
        let headers = msg
            .headers()
            .into_iter()
            .flat_map(|h| h.iter())
            .map(|h| (h.key, h.value));
        let batch = slotel_ingest::kafka::record_of(
            &self.kafka,
            msg.topic(),
            headers,
            msg.timestamp().to_millis(),
            msg.payload(),
        )
        .map_err(|e| e.to_string())
        .and_then(|r| r.decode().map_err(|e| e.to_string()));
        shard
            .applied_bytes
            .fetch_add(msg.payload_len() as u64, Ordering::Relaxed);
        match batch {
            Ok(batch) => shard.engine.apply(&batch, next),
            Err(reason) => {
                tracing::warn!(shard = %id, offset = msg.offset(), %reason, "A record that is no request of its topic's signal; skipped.");
                self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
                shard.engine.start_at(next);
            }
        }
    }

    /// Takes the partitions of `tpl`: each one's shard, kept from the last revocation
    /// or opened from storage, and the offset to read it from.
    fn assign(&self, tpl: &mut TopicPartitionList) {
        self.stats.assignments.fetch_add(1, Ordering::Relaxed);
        let ids: Vec<ShardId> = tpl
            .elements()
            .iter()
            .map(|e| ShardId {
                topic: e.topic().to_string(),
                partition: e.partition(),
            })
            .collect();
        let mut parked =
            std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()));
        let opened = self
            .runtime
            .block_on(futures::future::join_all(ids.iter().map(|id| {
                let kept = parked.remove(id);
                async move {
                    if let Some(shard) = kept {
                        self.stats.kept.fetch_add(1, Ordering::Relaxed);
                        return shard;
                    }
                    self.open_retrying(id).await
                }
            })));
        drop(parked); // shards not given back: another node owns them now
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        for shard in opened {
            let offset = shard.engine.applied() as i64;
            if let Err(e) = tpl.set_partition_offset(
                &shard.id.topic,
                shard.id.partition,
                Offset::Offset(offset),
            ) {
                tracing::error!(shard = %shard.id, error = %e, "Cannot set the offset to read from.");
            }
            self.start_flusher(&shard);
            shards.insert(shard.id.clone(), shard);
        }
        self.joined.store(true, Ordering::Release);
        tracing::info!(
            partitions = ?ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "Assigned partitions."
        );
    }

    /// Opens `id`, retrying while the storage fails: the partition cannot be read before
    /// its state is there.
    async fn open_retrying(&self, id: &ShardId) -> Arc<Shard> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.open(id).await {
                Ok(s) => return s,
                Err(e) => {
                    tracing::error!(shard = %id, error = format!("{e:#}"), "Cannot restore a partition; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Gives up the partitions of `tpl` (all of them when `tpl` is `None`): each shard
    /// is flushed and checkpointed, and its offset committed, before this returns.
    /// Unless `lost` (the group went on without this node), the shards are kept for the
    /// next assignment.
    fn revoke(&self, consumer: &BaseConsumer<Ctx>, tpl: Option<&TopicPartitionList>, lost: bool) {
        let control = self.control();
        let gives_control = tpl.is_none_or(|tpl| {
            tpl.elements()
                .iter()
                .any(|e| e.topic() == control.topic && e.partition() == control.partition)
        });
        if gives_control {
            // Before the partition can go to another node, whose term reads the states
            // this one leaves.
            self.end_term();
        }
        let revoked: Vec<Arc<Shard>> = {
            let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
            match tpl {
                None => std::mem::take(&mut *shards).into_values().collect(),
                Some(tpl) => tpl
                    .elements()
                    .iter()
                    .filter_map(|e| {
                        shards.remove(&ShardId {
                            topic: e.topic().to_string(),
                            partition: e.partition(),
                        })
                    })
                    .collect(),
            }
        };
        if revoked.is_empty() {
            return;
        }
        if lost {
            // Another node may own them already: this one writes nothing more there.
            for shard in &revoked {
                if let Some((stop, _)) = shard
                    .flusher
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    let _ = stop.send(true);
                }
            }
            tracing::warn!(
                shards = revoked.len(),
                "Lost the partitions' ownership; their new owners replay what was not checkpointed."
            );
            return;
        }
        self.runtime.block_on(futures::future::join_all(
            revoked.iter().map(|s| self.close(s)),
        ));
        self.commit_released(consumer, CommitMode::Sync);
        tracing::info!(
            partitions = ?revoked.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
            "Gave up partitions, each checkpointed."
        );
        if !self.stopping.load(Ordering::Acquire) {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            for shard in revoked {
                parked.insert(shard.id.clone(), shard);
            }
        }
    }

    /// Commits the offsets of the checkpoints published since the last call.
    fn commit_released(&self, consumer: &BaseConsumer<Ctx>, mode: CommitMode) {
        let mut latest: BTreeMap<ShardId, u64> = BTreeMap::new();
        {
            let rx = self.commits_rx.lock().unwrap_or_else(|e| e.into_inner());
            while let Ok((id, position)) = rx.try_recv() {
                let p = latest.entry(id).or_default();
                *p = (*p).max(position);
            }
        }
        if latest.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (id, position) in &latest {
            if let Err(e) =
                tpl.add_partition_offset(&id.topic, id.partition, Offset::Offset(*position as i64))
            {
                tracing::warn!(shard = %id, error = %e, "Cannot commit an offset.");
            }
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            self.stats.commit_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "Cannot commit the checkpointed offsets; the next checkpoint commits them.");
        }
    }
}

/// The consumer's callbacks: the rebalance takes and gives up shards.
struct Ctx {
    node: Arc<Node>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.node.assign(tpl);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "Cannot take the assigned partitions.");
                }
                alerts::begin_term(&self.node);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.node
                    .revoke(consumer, Some(tpl), consumer.assignment_lost());
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "Cannot give up the revoked partitions.");
                }
            }
            other => {
                tracing::error!(error = ?other, "The group's rebalance failed; giving up every partition.");
                self.node.revoke(consumer, None, true);
                let _ = consumer.unassign();
            }
        }
    }
}

/// Polls the consumer until the node stops: records into their shards, checkpointed
/// offsets committed; then checkpoints every shard and leaves the group.
fn consume(node: Arc<Node>, consumer: BaseConsumer<Ctx>) {
    while !node.stopping.load(Ordering::Acquire) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(msg)) => node.apply(&msg),
            Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error."),
        }
        node.commit_released(&consumer, CommitMode::Async);
    }
    node.revoke(&consumer, None, false);
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!("Left the consumer group.");
}

/// Asks the brokers for each owned partition's end every second, for the lag, and for
/// the topics' partitions every few seconds, for the cluster's answers.
async fn probe_ends(node: Arc<Node>, probe: Arc<BaseConsumer>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if ticks.is_multiple_of(5)
            || node
                .partitions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            let (p, topics) = (
                Arc::clone(&probe),
                [
                    node.kafka.spans_topic.clone(),
                    node.kafka.metrics_topic.clone(),
                    node.kafka.logs_topic.clone(),
                ],
            );
            let found = tokio::task::spawn_blocking(move || {
                let mut found = std::collections::BTreeSet::new();
                for topic in topics {
                    let meta = p.fetch_metadata(Some(&topic), Duration::from_secs(2))?;
                    for t in meta.topics() {
                        for part in t.partitions() {
                            found.insert(ShardId {
                                topic: t.name().to_string(),
                                partition: part.id(),
                            });
                        }
                    }
                }
                Ok::<_, slotel_ingest::kafka::rdkafka::error::KafkaError>(found)
            })
            .await;
            match found {
                Ok(Ok(found)) => {
                    *node.partitions.write().unwrap_or_else(|e| e.into_inner()) = found
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "Cannot ask for the topics' partitions."),
                Err(_) => {}
            }
        }
        ticks += 1;
        for shard in node.shards() {
            let probe = Arc::clone(&probe);
            let id = shard.id.clone();
            let end = tokio::task::spawn_blocking(move || {
                probe.fetch_watermarks(&id.topic, id.partition, Duration::from_secs(2))
            })
            .await;
            match end {
                Ok(Ok((_, high))) => shard.end.store(high, Ordering::Release),
                Ok(Err(e)) => {
                    tracing::debug!(shard = %shard.id, error = %e, "Cannot ask for a partition's end.")
                }
                Err(_) => {}
            }
        }
    }
}

/// A running compute node.
pub struct ComputeNode {
    addresses: Addresses,
    node: Arc<Node>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    consumer: Option<std::thread::JoinHandle<()>>,
    probe: JoinHandle<()>,
    announce: JoinHandle<()>,
    slo_paths: Vec<std::path::PathBuf>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for ComputeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeNode")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl ComputeNode {
    /// Joins the group (in the background), binds the API and starts serving.
    pub async fn build(config: ServeConfig, defs: Vec<SloDef>) -> anyhow::Result<Self> {
        Self::build_with_clock(config, defs, Arc::new(SystemClock)).await
    }

    /// [`ComputeNode::build`] on `clock`.
    pub async fn build_with_clock(
        config: ServeConfig,
        defs: Vec<SloDef>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let kafka = config
            .kafka
            .clone()
            .context("--role compute needs kafka.brokers")?;
        let root = Store::open(&config.storage.url, config.storage.options.clone())
            .with_context(|| format!("cannot open the storage at {}", config.storage.url))?
            .objects()
            .clone();
        if !config.storage.url.contains("://") {
            tracing::warn!(
                storage = %config.storage.url,
                "The storage is a local directory: compute nodes on other machines cannot take over its partitions. Give every compute node the same s3:// storage."
            );
        }
        let tls = tls_of(&config)?;
        let api = bind("the API", config.api_addr).await?;
        let api_addr = api.local_addr()?;
        let addresses = Addresses {
            otlp_grpc: api_addr,
            otlp_http: api_addr,
            api: api_addr,
            tls: tls.is_some(),
        };
        tracing::info!(api = %api_addr, tls = addresses.tls, "Listening as a compute node.");
        let scheme = if addresses.tls { "https" } else { "http" };
        let api_url = kafka
            .advertised_api
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{api_addr}"));
        if kafka.advertised_api.is_none() && api_addr.ip().is_unspecified() {
            tracing::warn!(
                api = %api_addr,
                "The API listens on every address: set kafka.advertised_api to the URL other compute nodes reach this one at."
            );
        }
        let view = Arc::new(engine_of(
            &clock,
            config.engine,
            defs.clone(),
            &config.maintenance,
        )?);
        let (commits_tx, commits_rx) = mpsc::channel();
        let node = Arc::new(Node {
            id: format!(
                "{:x}-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
                std::process::id()
            ),
            api_url,
            // Idle connections are dropped before the other nodes' header-read timeout
            // (`limits.header_read_timeout`, which closes idle HTTP/1 connections) can
            // close them under a request.
            http: reqwest::Client::builder()
                .pool_idle_timeout(
                    (config.limits.header_read_timeout / 2).max(Duration::from_secs(1)),
                )
                .build()
                .context("cannot build the HTTP client that asks the other nodes")?,
            view,
            partitions: RwLock::default(),
            kafka: kafka.clone(),
            root,
            url: config.storage.url.clone(),
            storage: config.storage.clone(),
            engine: config.engine,
            defs: RwLock::new(defs),
            maintenance: config.maintenance.clone(),
            clock,
            checkpoint_bytes: config.wal.checkpoint_bytes,
            runtime: tokio::runtime::Handle::current(),
            shards: RwLock::default(),
            parked: Mutex::default(),
            commits_tx: Mutex::new(commits_tx),
            commits_rx: Mutex::new(commits_rx),
            joined: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stats: NodeStats::default(),
            alerting: config.alerting.clone(),
            tokens: config.auth.tokens.clone(),
            term: Mutex::default(),
            alerts: Mutex::default(),
            window_changes: tokio::sync::Mutex::default(),
        });
        let consumer: BaseConsumer<Ctx> = slotel_ingest::kafka::client_config(
            &kafka,
            &[
                ("group.id", kafka.group.clone()),
                ("client.id", "slotel-compute".into()),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
                ("auto.offset.reset", "earliest".into()),
                ("partition.assignment.strategy", "range".into()),
                // A fetch that finds too little waits at most this long: a partition
                // that is caught up is counted within ~10 ms of its records' arrival,
                // and brokers that hold a fetch for its whole wait (tansu does) still
                // serve about half a million spans a second to a catching-up node.
                ("fetch.wait.max.ms", "10".into()),
            ],
        )
        .create_with_context(Ctx {
            node: Arc::clone(&node),
        })
        .context("cannot create the Kafka consumer")?;
        let topics = [
            kafka.spans_topic.as_str(),
            kafka.metrics_topic.as_str(),
            kafka.logs_topic.as_str(),
        ];
        consumer
            .subscribe(&topics)
            .context("cannot subscribe to the topics")?;
        let probe: BaseConsumer = slotel_ingest::kafka::client_config(
            &kafka,
            &[("client.id", "slotel-compute-lag".into())],
        )
        .create()
        .context("cannot create the Kafka client that asks for the partitions' ends")?;
        let consumer = {
            let node = Arc::clone(&node);
            std::thread::Builder::new()
                .name("slotel-kafka".into())
                .spawn(move || consume(node, consumer))
                .context("cannot start the consumer thread")?
        };
        tracing::info!(
            brokers = %kafka.brokers,
            group = %kafka.group,
            topics = ?topics,
            "Joining the compute nodes' consumer group."
        );

        let mut registry = Registry::with_prefix("slotel");
        registry.register_collector(Box::new(NodeCollector(Arc::clone(&node))));
        let connections = crate::app::connections_of(&config);
        registry.register_collector(Box::new(slotel_ingest::server::ConnectionCollector(
            Arc::clone(&connections),
        )));
        let (stop, stop_rx) = watch::channel(false);
        let probe = tokio::spawn(probe_ends(
            Arc::clone(&node),
            Arc::new(probe),
            stop_rx.clone(),
        ));
        let announce = tokio::spawn(cluster::announce(Arc::clone(&node), stop_rx.clone()));
        let registry = Arc::new(registry);
        // The query API over the cluster: the view's SLOs, every partition's minutes.
        let source = slotel_query::QueryEngine {
            engine: Arc::clone(&node.view),
            store: None,
            options: config.api,
            alerts: Arc::default(),
            health: Arc::new(slotel_query::side::HealthHistory::new(Arc::clone(
                &registry,
            ))),
            remote: Some(Arc::new(cluster::ClusterMinutes(Arc::clone(&node)))),
            sql_slots: config.api.sql_slots(),
        };
        let shards_api = slotel_query::with_tenant(
            Router::new()
                .route("/api/v1/shards", get(shards))
                .route("/api/v1/slos", get(cluster::list_slos))
                .route("/api/v1/slos/{name}", get(cluster::get_slo))
                .route("/api/v1/slos/{name}/groups", get(cluster::get_groups))
                .route("/api/v1/slos/{name}/explain", get(cluster::explain_slo))
                .route("/api/v1/slos/{name}/gate", get(cluster::slo_gate))
                .route(
                    "/api/v1/services/{service}/gate",
                    get(cluster::service_gate),
                )
                .route("/api/v1/alerts", get(alerts::list_alerts))
                .route(
                    "/api/v1/maintenance",
                    get(maintenance::list).post(maintenance::put),
                )
                .route(
                    "/api/v1/maintenance/{name}",
                    axum::routing::delete(maintenance::delete),
                )
                .route(
                    "/internal/v1/range_sums",
                    axum::routing::post(cluster::range_sums),
                )
                .route(
                    "/internal/v1/minutes",
                    axum::routing::post(cluster::minutes),
                )
                .route(
                    "/internal/v1/sql_parts",
                    axum::routing::post(cluster::sql_parts),
                )
                .route("/internal/v1/groups", axum::routing::post(cluster::groups))
                .route(
                    "/internal/v1/observed",
                    axum::routing::post(cluster::observed),
                )
                .route(
                    "/internal/v1/latency",
                    axum::routing::post(cluster::latency),
                )
                .with_state(Arc::clone(&node))
                .route(
                    "/api/v1/slos/{name}/series",
                    get(slotel_query::rest::slo_series).with_state(source.clone()),
                )
                .route(
                    "/api/v1/sql",
                    axum::routing::post(slotel_query::rest::run_sql).with_state(source.clone()),
                )
                .route(
                    "/api/v1/alerts/history",
                    get(slotel_query::rest::alert_history).with_state(source.clone()),
                )
                .route(
                    "/api/v1/reload",
                    axum::routing::post(slotel_query::rest::reload_slos).with_state((
                        Some(Arc::new(reload_of(Arc::clone(&node), config.slos.clone()))
                            as slotel_query::Reload),
                        Arc::new(config.auth.auth()),
                    )),
                )
                .nest("/prometheus", slotel_query::prometheus::routes(source)),
            config.auth.auth(),
        );
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz).with_state(Arc::clone(&node)))
            .route("/metrics", get(metrics).with_state(registry))
            .merge(shards_api);
        let mut stopped = stop_rx.clone();
        let servers = vec![tokio::spawn(slotel_ingest::serve(
            api,
            router,
            tls,
            connections,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ))];
        Ok(Self {
            addresses,
            node,
            stop,
            servers,
            consumer: Some(consumer),
            probe,
            announce,
            slo_paths: config.slos,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// Where the node's API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.addresses.api
    }

    /// The `listening` event printed at start and written to the listen file.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "listening",
            "role": "compute",
            "api": self.addresses.api.to_string(),
            "tls": self.addresses.tls,
        })
    }

    /// Reloads the SLO files into every shard when called (as SIGHUP does); on any
    /// problem the loaded SLOs stay.
    pub fn reloader(
        &self,
    ) -> impl Fn() -> Result<usize, slotel_spec::Error> + Send + Sync + 'static {
        reload_of(Arc::clone(&self.node), self.slo_paths.clone())
    }

    /// Runs until `shutdown` completes, then stops within the shutdown timeout: each
    /// owned partition is checkpointed and its offset committed, and the node leaves the
    /// group. Past the timeout it returns anyway: what no checkpoint covers is read again
    /// by the partition's next owner.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        shutdown.await;
        tracing::info!("Shutting down: checkpointing the owned partitions.");
        let _ = self.stop.send(true);
        self.node.stopping.store(true, Ordering::Release);
        let consumer = self.consumer.take();
        let stopping = async {
            join_servers(self.servers).await;
            let _ = self.probe.await;
            let _ = self.announce.await;
            if let Some(c) = consumer {
                let _ = tokio::task::spawn_blocking(move || c.join()).await;
            }
            Ok(())
        };
        stop_within(
            self.shutdown_timeout,
            stopping,
            "What no checkpoint covers is read again by the partitions' next owners.",
        )
        .await
    }
}

/// Reloads the SLO files at `paths` into `node`'s view and every shard's engine: the
/// number of SLOs loaded, or every problem found (the previous SLOs stay).
fn reload_of(
    node: Arc<Node>,
    paths: Vec<std::path::PathBuf>,
) -> impl Fn() -> Result<usize, slotel_spec::Error> + Send + Sync + 'static {
    move || {
        let defs = slotel_spec::load_paths(&paths).inspect_err(|e| {
            tracing::error!(error = %e, "Reload failed; the previous SLOs stay loaded.");
        })?;
        let n = defs.len();
        *node.defs.write().unwrap_or_else(|e| e.into_inner()) = defs.clone();
        node.view.load(defs.clone());
        for shard in node.shards() {
            shard.engine.load(defs.clone());
        }
        tracing::info!(slos = n, "Reloaded SLOs.");
        Ok(n)
    }
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let behind: Vec<String> = node
        .shards()
        .iter()
        .filter(|s| !s.is_caught_up(node.kafka.ready_lag))
        .map(|s| s.id.to_string())
        .collect();
    if node.is_ready() {
        (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response()
    } else if !node.joined.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "joining the consumer group"})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "catching up", "partitions": behind})),
        )
            .into_response()
    }
}

/// `GET /api/v1/shards`: the partitions this node owns, where each one's engine is, and
/// the request tenant's SLO counts in it.
async fn shards(State(node): State<Arc<Node>>, Extension(t): Extension<Tenant>) -> Response {
    let shards: Vec<serde_json::Value> = node
        .shards()
        .iter()
        .map(|s| {
            // The offset first: the counts read after it hold at least every record
            // before it (a record is counted before its offset is applied), so a
            // caller that sees the partition's end applied sees every record counted.
            let applied = s.engine.applied();
            let slos: Vec<serde_json::Value> = s
                .engine
                .statuses(&t)
                .into_iter()
                .map(|st| {
                    serde_json::json!({
                        "name": st.name,
                        "good_events": st.good_events,
                        "total_events": st.total_events,
                    })
                })
                .collect();
            serde_json::json!({
                "topic": s.id.topic,
                "partition": s.id.partition,
                "applied_offset": applied,
                "end_offset": s.end.load(Ordering::Acquire).max(-1),
                "lag": s.lag(),
                "checkpoint_offset": s.store.stats().checkpoint_position.load(Ordering::Relaxed),
                "slos": slos,
            })
        })
        .collect();
    Json(serde_json::json!({
        "ready": node.is_ready(),
        "evaluates_alerts": node.evaluates_alerts(),
        "shards": shards,
    }))
    .into_response()
}

async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    metrics_reply(&registry)
}

/// The node's and each owned shard's figures, for `/metrics`.
struct NodeCollector(Arc<Node>);

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeCollector")
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let node = &self.0;
        let shards = node.shards();
        let gauges = [
            (
                "ready",
                "1 once the node joined the group and every partition it owns is caught up",
                i64::from(node.is_ready()),
            ),
            (
                "kafka_partitions_owned",
                "Partitions this compute node owns",
                shards.len() as i64,
            ),
            (
                "alerts_evaluating",
                "1 while this node evaluates the alert rules (it owns the control partition)",
                i64::from(node.evaluates_alerts()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let s = &node.stats;
        let counters = [
            (
                "kafka_unreadable_records",
                "Records that are no request of their topic's signal, skipped",
                &s.unreadable,
            ),
            (
                "kafka_assignments",
                "Rebalances that assigned partitions to this node",
                &s.assignments,
            ),
            (
                "kafka_partitions_restored",
                "Partitions restored from the shared storage",
                &s.restored,
            ),
            (
                "kafka_partitions_kept",
                "Partitions given back to this node unchanged, kept as they were",
                &s.kept,
            ),
            (
                "kafka_commit_errors",
                "Offset commits that failed (the next checkpoint commits again)",
                &s.commit_errors,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        type PerShard = fn(&Shard) -> Option<i64>;
        let per_shard: [(&str, &str, PerShard); 3] = [
            (
                "kafka_applied_offset",
                "The offset of the next record each owned partition's engine counts",
                |s| Some(s.engine.applied() as i64),
            ),
            (
                "kafka_lag_records",
                "Records of each owned partition not yet counted",
                |s| s.lag().map(|l| l as i64),
            ),
            (
                "kafka_checkpoint_offset",
                "The offset each owned partition's last checkpoint covers",
                |s| Some(s.store.stats().checkpoint_position.load(Ordering::Relaxed) as i64),
            ),
        ];
        for (name, help, value) in per_shard {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for shard in &shards {
                let Some(v) = value(shard) else { continue };
                let partition = shard.id.partition.to_string();
                let labels = [
                    ("topic", shard.id.topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
