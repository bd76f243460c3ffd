//! The controller of a replicated deployment: leader election, in-sync replicas, producer ids
//! and consumer offsets, all durable (the protocol is in `replication`).
//!
//! Safety: every change is written (atomically and durably, by `Storage::replace`) before any
//! reply or event that depends on it, so a restarted controller never forgets an epoch it
//! handed out and never elects a replica it had dropped from the in-sync set. A leader is
//! elected only from the in-sync replicas (the planted `unclean-leader-election` falls back to
//! any live one), and only the current leader's `AlterIsr`, at the current epoch and computed
//! from the current set (`isr_version`), changes them.
//!
//! Liveness is judged on simulated time: a broker not heard from for `session_timeout` is
//! dead. A restarted controller has no idea how long it was down, so it counts every broker as
//! just heard from and lets their heartbeats (or their absence) speak.

use crate::broker::{corrupt, decode_offsets, encode_offsets, OFFSETS_FILE, REGISTRY_FILE};
use crate::bugs::Bug;
use crate::codec::{DecodeError, ErrorCode, PartitionState, Reader, Request, Response, Writer};
use crate::node::{NodeCtx, NodeError};
use crate::observe::{Event, Probe};
use crate::producer_state::ProducerRegistry;
use crate::replication::ControllerConfig;
use madsim::time::Instant;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every partition's leadership, replaced atomically on every change.
pub const PARTITIONS_FILE: &str = "partitions.meta";

struct Controller {
    cfg: ControllerConfig,
    partitions: Vec<PartitionState>,
    registry: ProducerRegistry,
    offsets: BTreeMap<(String, u32), u64>,
    /// When each broker was last heard from.
    heard: Vec<Instant>,
    alive: Vec<bool>,
}

/// Runs the controller on this node until the node is killed.
pub async fn run_controller(ctx: NodeCtx, cfg: ControllerConfig) -> Result<(), NodeError> {
    let controller = Arc::new(tokio::sync::Mutex::new(
        Controller::recover(&ctx, cfg.clone()).await?,
    ));
    // Liveness is checked on a timer of its own: a dead broker sends nothing to react to.
    let _watchdog = {
        let (ctx, controller) = (ctx.clone(), controller.clone());
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(cfg.replication.heartbeat_interval).await;
                if let Err(e) = controller.lock().await.check_liveness(&ctx).await {
                    // Only a dead incarnation's storage fails here (an I/O error restarts
                    // the node on its own); this task dies with it.
                    tracing::debug!(error = %e, "controller watchdog stopped");
                    return;
                }
            }
        })
    };
    while let Some(incoming) = ctx.transport.next_request().await {
        let response = controller.lock().await.handle(&ctx, &incoming.body).await?;
        ctx.transport.reply(&incoming, response.encode());
    }
    Ok(())
}

/// The leadership file: every partition's state, encoded as the `Leadership` reply carries it.
pub fn encode_partitions(partitions: &[PartitionState]) -> Vec<u8> {
    let mut w = Writer::default();
    w.partition_states(partitions);
    w.buf
}

pub fn decode_partitions(bytes: &[u8]) -> Result<Vec<PartitionState>, DecodeError> {
    let mut r = Reader::new(bytes);
    let partitions = r.partition_states()?;
    r.finish()?;
    Ok(partitions)
}

/// The leadership of a fresh deployment: partition `p` led by replica `p % n` at epoch 0, every
/// replica in sync (all logs are empty).
pub fn initial_partitions(partitions: u32, brokers: u32) -> Vec<PartitionState> {
    (0..partitions)
        .map(|p| PartitionState {
            leader: Some(p % brokers),
            leader_epoch: 0,
            isr: (0..brokers).collect(),
            isr_version: 0,
        })
        .collect()
}

impl Controller {
    async fn recover(ctx: &NodeCtx, cfg: ControllerConfig) -> Result<Controller, NodeError> {
        let storage = ctx.storage.as_ref();
        let bytes = storage.read(PARTITIONS_FILE).await?;
        let brokers = cfg.replication.brokers;
        let partitions = if bytes.is_empty() {
            initial_partitions(cfg.partitions, brokers)
        } else {
            decode_partitions(&bytes).map_err(corrupt(PARTITIONS_FILE))?
        };
        // A state naming a replica that does not exist is as corrupt as one that does not decode.
        let strangers = partitions
            .iter()
            .any(|p| p.leader.is_some_and(|l| l >= brokers) || p.isr.iter().any(|&r| r >= brokers));
        if partitions.len() != cfg.partitions as usize || strangers {
            return Err(NodeError::Corrupt {
                file: PARTITIONS_FILE.to_string(),
                error: DecodeError::TooLarge(partitions.len() as u64),
            });
        }
        let registry = ProducerRegistry::decode(&storage.read(REGISTRY_FILE).await?)
            .map_err(corrupt(REGISTRY_FILE))?;
        let offsets =
            decode_offsets(&storage.read(OFFSETS_FILE).await?).map_err(corrupt(OFFSETS_FILE))?;
        let now = Instant::now();
        Ok(Controller {
            cfg,
            partitions,
            registry,
            offsets,
            heard: vec![now; brokers as usize],
            alive: vec![true; brokers as usize],
        })
    }

    fn brokers(&self) -> u32 {
        self.cfg.replication.brokers
    }

    fn leadership(&self) -> Response {
        Response::Leadership {
            partitions: self.partitions.clone(),
        }
    }

    async fn handle(&mut self, ctx: &NodeCtx, body: &[u8]) -> Result<Response, NodeError> {
        let request = match ctx.decode_request(body) {
            Ok(r) => r,
            Err(malformed) => return Ok(malformed),
        };
        Ok(match request {
            Request::Heartbeat { broker } if broker < self.brokers() => {
                self.heartbeat(ctx, broker).await?
            }
            Request::Resign { broker, partitions } if broker < self.brokers() => {
                self.resign(ctx, broker, &partitions).await?
            }
            Request::Metadata => self.leadership(),
            Request::AlterIsr {
                partition,
                leader,
                leader_epoch,
                isr_version,
                isr,
            } => {
                let at = (leader, leader_epoch, isr_version);
                self.alter_isr(ctx, partition, at, isr).await?
            }
            Request::InitProducerId { producer_key, boot } => {
                self.init_producer_id(ctx, producer_key, boot).await?
            }
            Request::OffsetCommit {
                group,
                partition,
                offset,
            } => {
                if partition >= self.cfg.partitions {
                    return Ok(Response::Error(ErrorCode::UnknownPartition));
                }
                self.offsets.insert((group, partition), offset);
                ctx.storage
                    .replace(OFFSETS_FILE, &encode_offsets(&self.offsets))
                    .await?;
                Response::OffsetCommitted
            }
            Request::OffsetFetch { group, partition } => {
                if partition >= self.cfg.partitions {
                    return Ok(Response::Error(ErrorCode::UnknownPartition));
                }
                Response::OffsetFetched {
                    offset: self.offsets.get(&(group, partition)).copied(),
                }
            }
            // A partition's data lives on its replicas, not here; a heartbeat from a broker
            // that is not in the deployment is garbage.
            Request::Heartbeat { .. }
            | Request::Resign { .. }
            | Request::Produce { .. }
            | Request::Fetch { .. }
            | Request::ReplicaFetch { .. }
            | Request::LastSeq { .. }
            | Request::Apply { .. }
            | Request::ListRows { .. } => Response::Error(ErrorCode::Malformed),
        })
    }

    /// Notes that `broker` is alive; a partition without a leader gets one if it can (also
    /// after a controller restart, which counts every broker as alive from the start).
    async fn heartbeat(&mut self, ctx: &NodeCtx, broker: u32) -> Result<Response, NodeError> {
        let b = broker as usize;
        self.heard[b] = Instant::now();
        if !self.alive[b] {
            self.alive[b] = true;
            tracing::debug!(broker, "broker is back");
        }
        let mut elected = Vec::new();
        for p in 0..self.partitions.len() {
            if self.partitions[p].leader.is_none() {
                if let Some(clean) = self.elect(ctx, p, None, usize::MAX) {
                    elected.push((p, clean));
                }
            }
        }
        self.persist_and_announce(ctx, &elected, &[]).await?;
        Ok(self.leadership())
    }

    /// A broker whose logs of `partitions` lost synced data may lack committed records there:
    /// it leaves those in-sync sets and leaderships, as if it had died for them, and is alive
    /// from now on (it catches up as a follower and rejoins through the leaders' `AlterIsr`).
    async fn resign(
        &mut self,
        ctx: &NodeCtx,
        broker: u32,
        partitions: &[u32],
    ) -> Result<Response, NodeError> {
        self.heard[broker as usize] = Instant::now();
        self.alive[broker as usize] = true;
        let damaged: Vec<usize> = partitions.iter().map(|&p| p as usize).collect();
        let (elected, shrunk) = self.fail(ctx, broker, Some(&damaged));
        self.persist_and_announce(ctx, &elected, &shrunk).await?;
        Ok(self.leadership())
    }

    /// Elects new leaders for the partitions `broker` led and takes it out of in-sync sets:
    /// the partitions elected (with whether cleanly) and shrunk. A dead broker leaves only sets
    /// larger than `min_insync` (it still holds every committed record of the others, and is
    /// elected again when it returns); a resigning one leaves every set it is not alone in (its
    /// log lost records, so it must not be elected before it has repaired).
    fn fail(
        &mut self,
        ctx: &NodeCtx,
        broker: u32,
        resigned: Option<&[usize]>,
    ) -> (Vec<(usize, bool)>, Vec<usize>) {
        let keep = if resigned.is_some() {
            1
        } else {
            self.cfg.replication.min_insync as usize
        };
        let (mut elected, mut shrunk) = (Vec::new(), Vec::new());
        for p in 0..self.partitions.len() {
            if resigned.is_some_and(|damaged| !damaged.contains(&p)) {
                continue;
            }
            let state = &self.partitions[p];
            if state.leader == Some(broker) {
                if let Some(clean) = self.elect(ctx, p, Some(broker), keep) {
                    elected.push((p, clean));
                }
            } else if state.isr.contains(&broker) && state.isr.len() > keep {
                self.partitions[p].isr.retain(|&r| r != broker);
                self.partitions[p].isr_version += 1;
                shrunk.push(p);
            }
        }
        (elected, shrunk)
    }

    /// Declares dead every broker not heard from for the session timeout: it leaves every
    /// in-sync set, and every partition it led gets a new leader.
    async fn check_liveness(&mut self, ctx: &NodeCtx) -> Result<(), NodeError> {
        let now = Instant::now();
        let timeout = self.cfg.replication.session_timeout;
        let (mut elected, mut shrunk) = (Vec::new(), Vec::new());
        for b in 0..self.brokers() {
            let i = b as usize;
            if !self.alive[i] || now.duration_since(self.heard[i]) <= timeout {
                continue;
            }
            self.alive[i] = false;
            tracing::debug!(broker = b, "broker declared dead");
            let (e, s) = self.fail(ctx, b, None);
            elected.extend(e);
            shrunk.extend(s);
        }
        self.persist_and_announce(ctx, &elected, &shrunk).await
    }

    /// Chooses a new leader for partition `p` (in memory; the caller persists and announces).
    /// `failed`: the leader that died (or resigned), if it did; it leaves the in-sync set only
    /// if more than `keep` members remain. Returns `None` if nothing changed, else whether the
    /// election was clean (the leader came from the in-sync set, or there is none).
    fn elect(&mut self, ctx: &NodeCtx, p: usize, failed: Option<u32>, keep: usize) -> Option<bool> {
        let n = self.brokers();
        let state = &self.partitions[p];
        let start = failed.or(state.leader).unwrap_or(n - 1);
        // Ring order after the failed leader, so leadership spreads rather than piles up.
        let ring: Vec<u32> = (1..=n).map(|k| (start + k) % n).collect();
        let eligible = |r: &u32| self.alive[*r as usize] && Some(*r) != failed;
        // The planted `unclean-leader-election` looks past the in-sync set at once.
        let clean = ring
            .iter()
            .copied()
            .find(|r| state.isr.contains(r) && eligible(r))
            .filter(|_| !ctx.bug(Bug::UncleanLeaderElection));
        let unclean = || {
            ctx.bug(Bug::UncleanLeaderElection)
                .then(|| ring.iter().copied().find(|r| eligible(r)))
                .flatten()
        };
        let mut survivors = state.isr.clone();
        if survivors.len() > keep {
            survivors.retain(|&x| Some(x) != failed);
        }
        let (leader, isr, was_clean) = match clean {
            Some(r) => (Some(r), survivors, true),
            None => match unclean() {
                Some(r) if state.isr.contains(&r) => (Some(r), survivors, true),
                // Kafka's unclean election: the new leader's log is the truth from now on.
                Some(r) => (Some(r), vec![r], false),
                // Nobody eligible: no leader until an in-sync replica returns (the failed
                // leader stays in the set if it is needed to make `keep`).
                None => (None, survivors, true),
            },
        };
        if leader.is_none() && state.leader.is_none() {
            return None;
        }
        let state = &mut self.partitions[p];
        state.leader = leader;
        state.leader_epoch += 1;
        state.isr_version += 1;
        state.isr = isr;
        Some(was_clean)
    }

    /// Writes the leadership, then tells the history what changed.
    async fn persist_and_announce(
        &mut self,
        ctx: &NodeCtx,
        elected: &[(usize, bool)],
        shrunk: &[usize],
    ) -> Result<(), NodeError> {
        if elected.is_empty() && shrunk.is_empty() {
            return Ok(());
        }
        ctx.storage
            .replace(PARTITIONS_FILE, &encode_partitions(&self.partitions))
            .await?;
        for &(p, clean) in elected {
            let state = &self.partitions[p];
            ctx.probe(Probe::LeaderElected);
            tracing::debug!(partition = p, leader = ?state.leader, epoch = state.leader_epoch, isr = ?state.isr, "leader elected");
            ctx.record(Event::LeaderElected {
                partition: p as u32,
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                isr: state.isr.clone(),
                clean,
            });
        }
        for &p in shrunk {
            self.announce_isr(ctx, p, true);
        }
        Ok(())
    }

    fn announce_isr(&self, ctx: &NodeCtx, p: usize, shrunk: bool) {
        let state = &self.partitions[p];
        ctx.probe(if shrunk {
            Probe::IsrShrunk
        } else {
            Probe::IsrExpanded
        });
        tracing::debug!(partition = p, epoch = state.leader_epoch, isr = ?state.isr, "isr changed");
        ctx.record(Event::IsrChanged {
            partition: p as u32,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
        });
    }

    /// A leader's request to change its in-sync set, applied only if it still leads at that
    /// epoch, computed it from the set as it is now (`isr_version`: a late or duplicated
    /// request, made from an older set, would put back a replica the leader stopped waiting
    /// for), and keeps itself in the set.
    async fn alter_isr(
        &mut self,
        ctx: &NodeCtx,
        partition: u32,
        (leader, leader_epoch, isr_version): (u32, u32, u32),
        mut isr: Vec<u32>,
    ) -> Result<Response, NodeError> {
        let Some(state) = self.partitions.get(partition as usize) else {
            return Ok(Response::Error(ErrorCode::UnknownPartition));
        };
        isr.sort_unstable();
        isr.dedup();
        // Never below `min_insync`, unless it was already (after a resignation).
        let floor = (self.cfg.replication.min_insync as usize).min(state.isr.len());
        let valid = state.leader == Some(leader)
            && state.leader_epoch == leader_epoch
            && state.isr_version == isr_version
            && isr.contains(&leader)
            && isr.len() >= floor
            && isr.iter().all(|&r| r < self.brokers());
        if valid && isr != state.isr {
            let shrunk = isr.iter().all(|r| state.isr.contains(r));
            let state = &mut self.partitions[partition as usize];
            state.isr = isr;
            state.isr_version += 1;
            ctx.storage
                .replace(PARTITIONS_FILE, &encode_partitions(&self.partitions))
                .await?;
            self.announce_isr(ctx, partition as usize, shrunk);
        }
        Ok(self.leadership())
    }

    /// Registers a producer as the single broker does; the last sequences are the partition
    /// leaders' to tell (`LastSeq`), so the reply carries none.
    async fn init_producer_id(
        &mut self,
        ctx: &NodeCtx,
        producer_key: String,
        boot: u64,
    ) -> Result<Response, NodeError> {
        Ok(match self.registry.init(&producer_key, boot) {
            Err(code) => Response::Error(code),
            Ok(outcome) => {
                if outcome.changed {
                    ctx.storage
                        .replace(REGISTRY_FILE, &self.registry.encode())
                        .await?;
                } else {
                    ctx.probe(Probe::InitProducerIdRetried);
                }
                let p = outcome.producer;
                ctx.record(Event::EpochBumped {
                    producer_key,
                    producer_id: p.producer_id,
                    epoch: p.epoch,
                    boot,
                });
                Response::InitProducerId {
                    producer_id: p.producer_id,
                    epoch: p.epoch,
                    last_seqs: Vec::new(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leadership_file_round_trips_and_rejects_garbage() {
        let partitions = vec![
            PartitionState {
                leader: Some(2),
                leader_epoch: 7,
                isr: vec![0, 2],
                isr_version: 3,
            },
            PartitionState {
                leader: None,
                leader_epoch: 3,
                isr: vec![1],
                isr_version: 3,
            },
        ];
        let bytes = encode_partitions(&partitions);
        assert_eq!(decode_partitions(&bytes), Ok(partitions));
        assert!(decode_partitions(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(decode_partitions(&encode_partitions(&[])), Ok(vec![]));
    }

    #[test]
    fn a_fresh_deployment_spreads_leadership_with_every_replica_in_sync() {
        let p = initial_partitions(4, 3);
        let leaders: Vec<_> = p.iter().map(|s| s.leader).collect();
        assert_eq!(leaders, vec![Some(0), Some(1), Some(2), Some(0)]);
        assert!(p.iter().all(|s| s.leader_epoch == 0 && s.isr == [0, 1, 2]));
    }
}
