//! One broker of a replicated deployment: leader of some partitions, follower of the others
//! (the protocol is in `replication`).
//!
//! Three kinds of task share one state under a lock: the request loop (group commit, as on the
//! single broker, plus produce replies that wait for the high watermark), the heartbeat loop
//! (leadership from the controller, and the leader's in-sync set changes), and one fetch loop
//! per partition (which fetches only while this replica follows the partition).
//!
//! Safety: a produce is acknowledged only once the high watermark covers it, and the high
//! watermark never passes what the leader and every follower it computes with (the controller's
//! ISR plus the replicas it asked to add) have synced, so every replica the controller may elect
//! holds every acknowledged batch.

mod epochs;
mod follower;
mod leader;
#[cfg(all(test, madsim))]
mod tests;

use crate::broker::{BrokerConfig, Partition};
use crate::bugs::Bug;
use crate::codec::{ErrorCode, PartitionState, Request, Response};
use crate::node::{NodeCtx, NodeError};
use crate::observe::Event;
use crate::replication::ReplicaConfig;
use crate::transport::Incoming;
use epochs::{epochs_file, Epochs};
use madsim::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The most requests handled under one group commit (as on the single broker).
const GROUP_COMMIT_MAX: usize = 64;

/// What this replica is for one partition, as the newest leadership it knows says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Leader,
    Follower {
        leader: u32,
    },
    /// No leadership known yet, or the partition has no leader.
    Neither,
}

/// A reply that leaves once the high watermark reaches `until`.
struct Waiting {
    incoming: Incoming,
    until: u64,
    response: Response,
}

/// A reply ready to leave.
type Outgoing = (Incoming, Response);

/// One partition on this replica.
struct Part {
    data: Partition,
    epochs: Epochs,
    /// The newest leader epoch learnt from the controller.
    leader_epoch: Option<u32>,
    role: Role,
    /// The controller's in-sync replicas, and their version (sent back with `AlterIsr`).
    isr: Vec<u32>,
    isr_version: u32,
    /// Replicas the leader asked the controller to add and has not heard back about.
    adding: BTreeSet<u32>,
    /// Leader: each follower's durable end, as its last fetch said.
    ends: BTreeMap<u32, u64>,
    /// Leader: when each follower last fetched from at least the leader's end at its fetch
    /// before.
    caught_up_at: BTreeMap<u32, Instant>,
    /// Leader: the leader's synced end at each follower's last fetch.
    end_at_fetch: BTreeMap<u32, u64>,
    /// The log end that is synced (what the leader serves and counts).
    synced_end: u64,
    /// What the partition's synced-end file says: never below anything this replica served,
    /// counted or reported as durable, so a recovered log shorter than it lost synced data.
    marked: u64,
    high_watermark: u64,
    /// Leader: where the current epoch's batches begin.
    epoch_start: u64,
    waiting: Vec<Waiting>,
    /// Leader: each producer's epoch as its `LastSeq` said (fences its older incarnations).
    fenced: BTreeMap<u64, u32>,
}

/// The replica's whole state.
struct Replica {
    cfg: BrokerConfig,
    rep: ReplicaConfig,
    parts: Vec<Part>,
}

/// Runs replica `replica.index` on this node until the node is killed.
pub async fn run_replica(
    ctx: NodeCtx,
    cfg: BrokerConfig,
    replica: ReplicaConfig,
) -> Result<(), NodeError> {
    let state = Arc::new(Mutex::new(Replica::recover(&ctx, cfg, replica).await?));
    resign_if_cut(&ctx, &state).await?;
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel::<NodeError>();
    let mut tasks = vec![spawn_task(&ctx, &state, &failed_tx, heartbeat_loop)];
    let partitions = state.lock().await.parts.len() as u32;
    for partition in 0..partitions {
        let (ctx, state, failed) = (ctx.clone(), state.clone(), failed_tx.clone());
        tasks.push(madsim::task::spawn(async move {
            if let Err(e) = follower::fetch_loop(&ctx, &state, partition).await {
                let _ = failed.send(e);
            }
        }));
    }
    if ctx.bug(Bug::AckBeforeSync) {
        tasks.push(spawn_task(&ctx, &state, &failed_tx, lazy_flusher));
    }
    let result = tokio::select! {
        biased;
        Some(e) = failed_rx.recv() => Err(e),
        r = request_loop(&ctx, &state) => r,
    };
    tasks.iter().for_each(|t| t.abort());
    result
}

/// Spawns one of the replica's loops; its fatal error ends the replica.
fn spawn_task<F, Fut>(
    ctx: &NodeCtx,
    state: &Arc<Mutex<Replica>>,
    failed: &tokio::sync::mpsc::UnboundedSender<NodeError>,
    task: F,
) -> madsim::task::JoinHandle<()>
where
    F: FnOnce(NodeCtx, Arc<Mutex<Replica>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), NodeError>> + Send + 'static,
{
    let fut = task(ctx.clone(), state.clone());
    let failed = failed.clone();
    madsim::task::spawn(async move {
        if let Err(e) = fut.await {
            let _ = failed.send(e);
        }
    })
}

/// The requests, a group at a time: handled in order, the touched logs synced once, then the
/// replies that may leave (a produce's waits for the high watermark).
async fn request_loop(ctx: &NodeCtx, state: &Arc<Mutex<Replica>>) -> Result<(), NodeError> {
    while let Some(first) = ctx.transport.next_request().await {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match ctx.transport.try_next_request() {
                Some(incoming) => group.push(incoming),
                None => break,
            }
        }
        if group.len() > 1 {
            ctx.probe(crate::observe::Probe::GroupCommit);
        }
        let mut out = Vec::with_capacity(group.len());
        {
            let mut r = state.lock().await;
            for incoming in group {
                r.handle(ctx, incoming, &mut out).await?;
            }
            r.commit(ctx, &mut out).await?;
        }
        send(ctx, out);
    }
    Ok(())
}

fn send(ctx: &NodeCtx, out: Vec<Outgoing>) {
    for (incoming, response) in out {
        ctx.transport.reply(&incoming, response.encode());
    }
}

/// Every `heartbeat_interval`: the leader's in-sync set changes (`AlterIsr`), then a heartbeat;
/// each answered with the leadership of every partition, which is applied. One call at a time,
/// so answers are applied in the order the controller gave them.
async fn heartbeat_loop(ctx: NodeCtx, state: Arc<Mutex<Replica>>) -> Result<(), NodeError> {
    let (controller, index, interval) = {
        let r = state.lock().await;
        (
            r.rep.controller,
            r.rep.index,
            r.rep.replication.heartbeat_interval,
        )
    };
    let timeout = interval * 2;
    loop {
        let alters = state.lock().await.isr_changes();
        for (partition, asked, request) in alters {
            let answer = ctx.call(controller, &request, timeout).await;
            let mut r = state.lock().await;
            if let Ok(Response::Leadership { partitions }) = answer {
                // Heard back: the controller's ISR now says whether they are in.
                let part = &mut r.parts[partition as usize];
                asked.iter().for_each(|a| {
                    part.adding.remove(a);
                });
                let out = r.apply_leadership(&ctx, &partitions).await?;
                send(&ctx, out);
            }
        }
        let heartbeat = Request::Heartbeat { broker: index };
        if let Ok(Response::Leadership { partitions }) =
            ctx.call(controller, &heartbeat, timeout).await
        {
            let out = state
                .lock()
                .await
                .apply_leadership(&ctx, &partitions)
                .await?;
            send(&ctx, out);
        }
        madsim::time::sleep(interval).await;
    }
}

/// A replica whose recovered log ends short of its synced-end mark lost synced, perhaps
/// committed, records (damage reached bytes it had synced): before it takes any role it asks
/// the controller to take it out of every in-sync set and its leaderships
/// (`Resign`), and then catches up from its leaders like any out-of-sync follower. Retried
/// until answered: leading with a log that lost committed records would lose them for good.
async fn resign_if_cut(ctx: &NodeCtx, state: &Arc<Mutex<Replica>>) -> Result<(), NodeError> {
    let (cut, controller, index, interval) = {
        let r = state.lock().await;
        let cut: Vec<u32> = (0..r.parts.len() as u32)
            .filter(|&p| {
                let part = &r.parts[p as usize];
                part.data.log.log_end() < part.marked
            })
            .collect();
        let rep = &r.rep;
        (
            cut,
            rep.controller,
            rep.index,
            rep.replication.heartbeat_interval,
        )
    };
    // The planted `damaged-replica-stays-in-sync` carries on as if its log were whole.
    if cut.is_empty() || ctx.bug(Bug::DamagedReplicaStaysInSync) {
        return Ok(());
    }
    let resign = Request::Resign {
        broker: index,
        partitions: cut,
    };
    loop {
        if let Ok(Response::Leadership { partitions }) =
            ctx.call(controller, &resign, interval * 2).await
        {
            let out = state
                .lock()
                .await
                .apply_leadership(ctx, &partitions)
                .await?;
            send(ctx, out);
            return Ok(());
        }
        madsim::time::sleep(interval).await;
    }
}

/// With the planted `ack-before-sync`, the logs are synced now and then in the background.
async fn lazy_flusher(ctx: NodeCtx, state: Arc<Mutex<Replica>>) -> Result<(), NodeError> {
    let interval = state.lock().await.cfg.lazy_flush_interval;
    loop {
        madsim::time::sleep(interval).await;
        let r = state.lock().await;
        for part in &r.parts {
            part.data.log.sync(ctx.storage.as_ref()).await?;
        }
    }
}

impl Replica {
    /// Recovery: every partition as on the single broker, plus its epoch file, whose epochs
    /// beginning at or beyond the recovered log end are dropped (durably: the log may grow back
    /// there under another epoch).
    async fn recover(
        ctx: &NodeCtx,
        cfg: BrokerConfig,
        rep: ReplicaConfig,
    ) -> Result<Replica, NodeError> {
        let mut parts = Vec::new();
        for partition in 0..cfg.partitions {
            let mut data = Partition::recover(ctx, &cfg, partition).await?;
            if ctx.bug(Bug::ProducerStateNotReplicated) {
                data.table = data.table.trusting();
            }
            let file = epochs_file(partition);
            let mut epochs = Epochs::decode(&ctx.storage.read(&file).await?)
                .map_err(crate::broker::corrupt(&file))?;
            let end = data.log.log_end();
            if epochs.truncate(end) {
                ctx.storage.replace(&file, &epochs.encode()).await?;
            }
            let marked_file = synced_file(partition);
            let marked = decode_synced(&ctx.storage.read(&marked_file).await?)
                .map_err(crate::broker::corrupt(&marked_file))?;
            parts.push(Part {
                data,
                epochs,
                leader_epoch: None,
                role: Role::Neither,
                isr: Vec::new(),
                isr_version: 0,
                adding: BTreeSet::new(),
                ends: BTreeMap::new(),
                caught_up_at: BTreeMap::new(),
                end_at_fetch: BTreeMap::new(),
                synced_end: end,
                marked,
                high_watermark: 0,
                epoch_start: end,
                waiting: Vec::new(),
                fenced: BTreeMap::new(),
            });
        }
        Ok(Replica { cfg, rep, parts })
    }

    /// Applies the controller's leadership: a newer epoch makes this replica leader, follower
    /// or neither; the same epoch brings the controller's ISR; an older one is stale. Returns
    /// the replies that may leave now (refusals of waiting produces, or ones the high watermark
    /// covers).
    async fn apply_leadership(
        &mut self,
        ctx: &NodeCtx,
        partitions: &[PartitionState],
    ) -> Result<Vec<Outgoing>, NodeError> {
        let mut out = Vec::new();
        for (p, state) in partitions.iter().enumerate().take(self.parts.len()) {
            let known = self.parts[p].leader_epoch;
            if known.is_some_and(|k| k > state.leader_epoch) {
                continue;
            }
            if known != Some(state.leader_epoch) {
                self.change_role(ctx, p as u32, state, &mut out).await?;
            }
            let part = &mut self.parts[p];
            // A replica the controller took out (it lagged, died or resigned) comes back only
            // on what it fetches from now on: its old end may predate a loss of its log.
            for gone in part.isr.iter().filter(|r| !state.isr.contains(r)) {
                if !part.adding.contains(gone) {
                    part.ends.remove(gone);
                    part.end_at_fetch.remove(gone);
                }
            }
            part.isr.clone_from(&state.isr);
            part.isr_version = state.isr_version;
            if part.role == Role::Leader {
                let min_insync = self.rep.replication.min_insync;
                part.advance_high_watermark(self.rep.index, min_insync, &mut out);
            }
        }
        Ok(out)
    }

    /// A new leader epoch for `partition`.
    async fn change_role(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        state: &PartitionState,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), NodeError> {
        let me = self.rep.index;
        let epoch = state.leader_epoch;
        let part = &mut self.parts[partition as usize];
        // Kafka checkpoints its high watermark; this replica does not, so after a restart it
        // knows none, and the planted `truncate-to-high-watermark` cuts only on a change of
        // leader it lives through (else a restart alone would empty every follower).
        let hw_known = part.leader_epoch.is_some();
        part.leader_epoch = Some(epoch);
        part.adding.clear();
        part.ends.clear();
        part.caught_up_at.clear();
        part.end_at_fetch.clear();
        let role = match state.leader {
            Some(l) if l == me => Role::Leader,
            Some(l) if (l as usize) < self.rep.replicas.len() => Role::Follower { leader: l },
            _ => Role::Neither,
        };
        if role != Role::Leader {
            for w in part.waiting.drain(..) {
                out.push((w.incoming, Response::Error(ErrorCode::NotLeader)));
            }
        }
        part.role = role;
        match role {
            Role::Leader => self.become_leader(ctx, partition, epoch).await?,
            Role::Follower { leader } => {
                tracing::debug!(partition, epoch, leader, "became follower");
                ctx.record(Event::BecameFollower {
                    partition,
                    leader_epoch: epoch,
                    leader,
                });
                if ctx.bug(Bug::TruncateToHighWatermark) && hw_known {
                    let to = part.high_watermark;
                    self.truncate(ctx, partition, to).await?;
                }
            }
            Role::Neither => {}
        }
        Ok(())
    }

    /// Leads `partition` from epoch `epoch`: the epoch's start is recorded durably before
    /// anything is appended under it.
    async fn become_leader(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        epoch: u32,
    ) -> Result<(), NodeError> {
        let part = &mut self.parts[partition as usize];
        let log_end = part.data.log.log_end();
        if part.epochs.begin(epoch, log_end) {
            ctx.storage
                .replace(&epochs_file(partition), &part.epochs.encode())
                .await?;
        }
        part.epoch_start = log_end;
        let now = Instant::now();
        for r in 0..self.rep.replication.brokers {
            part.caught_up_at.insert(r, now);
        }
        tracing::debug!(partition, epoch, log_end, "became leader");
        ctx.record(Event::BecameLeader {
            partition,
            leader_epoch: epoch,
            log_end,
        });
        Ok(())
    }

    /// Cuts `partition`'s log back to `to` durably (with its epochs), rebuilds its producer
    /// state from what is left, and records the cut if anything was cut.
    async fn truncate(&mut self, ctx: &NodeCtx, partition: u32, to: u64) -> Result<(), NodeError> {
        let window = crate::broker::dedup_window(ctx);
        let first_seq = self.cfg.first_seq;
        let part = &mut self.parts[partition as usize];
        let storage = ctx.storage.as_ref();
        let from = part.data.log.log_end();
        if to >= from {
            return Ok(());
        }
        let to = part.data.log.truncate(storage, to).await?;
        if part.epochs.truncate(to) {
            storage
                .replace(&epochs_file(partition), &part.epochs.encode())
                .await?;
        }
        let snapshot = storage
            .read(&crate::broker::snapshot_file(partition))
            .await?;
        let trust = ctx.bug(Bug::SnapshotAheadOfLog);
        let keep = ctx.bug(Bug::StaleSnapshotKept);
        let (table, _, _) = crate::broker::rebuild_producer_state(
            storage,
            &snapshot,
            &part.data.log,
            window,
            first_seq,
            trust,
            keep,
        )
        .await?;
        part.data.table = if ctx.bug(Bug::ProducerStateNotReplicated) {
            table.trusting()
        } else {
            table
        };
        part.mark_synced(ctx, partition).await?;
        part.high_watermark = part.high_watermark.min(to);
        tracing::debug!(partition, from, to, "follower truncated");
        ctx.record(Event::FollowerTruncated {
            partition,
            from,
            to,
        });
        ctx.probe(crate::observe::Probe::FollowerTruncated);
        Ok(())
    }

    /// Ends a group: syncs every partition appended to, then releases the replies the high
    /// watermark now covers.
    async fn commit(&mut self, ctx: &NodeCtx, out: &mut Vec<Outgoing>) -> Result<(), NodeError> {
        let me = self.rep.index;
        let min_insync = self.rep.replication.min_insync;
        for (p, part) in self.parts.iter_mut().enumerate() {
            part.data.commit(ctx, &self.cfg).await?;
            part.mark_synced(ctx, p as u32).await?;
            if part.role == Role::Leader {
                part.advance_high_watermark(me, min_insync, out);
            }
        }
        Ok(())
    }

    /// The `AlterIsr` requests the leader owes the controller now: followers lagging for
    /// `replica_lag_max` out, caught-up replicas in (counted at once: the "maximal ISR").
    /// Each comes with the replicas it asks to add.
    fn isr_changes(&mut self) -> Vec<(u32, Vec<u32>, Request)> {
        let me = self.rep.index;
        let brokers = self.rep.replication.brokers;
        let lag_max = self.rep.replication.replica_lag_max;
        let min_insync = self.rep.replication.min_insync;
        let now = Instant::now();
        let mut requests = Vec::new();
        for (p, part) in self.parts.iter_mut().enumerate() {
            let (Role::Leader, Some(epoch)) = (part.role, part.leader_epoch) else {
                continue;
            };
            let mut isr: BTreeSet<u32> = part.isr.iter().copied().collect();
            // Everything in `adding` is settled by this request's answer; until then a lagging
            // one is still computed with (the controller may have added it already).
            let mut asked: Vec<u32> = part.adding.iter().copied().collect();
            for r in (0..brokers).filter(|&r| r != me) {
                let end = part.ends.get(&r).copied();
                let in_sync = isr.contains(&r) || part.adding.contains(&r);
                let since = part.caught_up_at.get(&r).copied().unwrap_or(now);
                let lagging = end.unwrap_or(0) < part.synced_end && now - since >= lag_max;
                // Below `min_insync` a lagging member stays and holds commits up instead.
                if in_sync && lagging && isr.len() as u32 > min_insync {
                    isr.remove(&r);
                } else if !in_sync
                    && end.is_some_and(|e| e >= part.high_watermark && e >= part.epoch_start)
                {
                    isr.insert(r);
                    part.adding.insert(r);
                    asked.push(r);
                    // Caught up now: it is not lagging the moment it is added.
                    part.caught_up_at.insert(r, now);
                } else if part.adding.contains(&r) {
                    isr.insert(r);
                }
            }
            isr.insert(me);
            let isr: Vec<u32> = isr.into_iter().collect();
            if isr != part.isr || !asked.is_empty() {
                tracing::debug!(
                    partition = p,
                    ?isr,
                    "asking the controller to alter the ISR"
                );
                requests.push((
                    p as u32,
                    asked,
                    Request::AlterIsr {
                        partition: p as u32,
                        leader: me,
                        leader_epoch: epoch,
                        isr_version: part.isr_version,
                        isr,
                    },
                ));
            }
        }
        requests
    }
}

/// The file that marks how far a partition's log was synced, replaced after each sync that
/// moved it and before anything it covers is served, counted or reported.
pub(crate) fn synced_file(partition: u32) -> String {
    format!("partition-{partition}.synced")
}

fn decode_synced(bytes: &[u8]) -> Result<u64, crate::codec::DecodeError> {
    if bytes.is_empty() {
        return Ok(0);
    }
    let mut r = crate::codec::Reader::new(bytes);
    let end = r.u64()?;
    r.finish()?;
    Ok(end)
}

impl Part {
    /// The log as it is now is synced: moves the mark (durably) if it grew or shrank, then
    /// lets the leader serve and count it, or the follower report it.
    async fn mark_synced(&mut self, ctx: &NodeCtx, partition: u32) -> Result<(), NodeError> {
        let end = self.data.log.log_end();
        if end != self.marked {
            ctx.storage
                .replace(&synced_file(partition), &end.to_le_bytes())
                .await?;
            self.marked = end;
        }
        self.synced_end = end;
        Ok(())
    }
}

/// How long a follower's fetch may take before it backs off and asks again.
fn fetch_timeout(rep: &ReplicaConfig) -> Duration {
    rep.replication.heartbeat_interval * 2
}
