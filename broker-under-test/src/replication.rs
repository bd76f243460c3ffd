//! Replication: each partition on `brokers` replicas, one leader per partition, a controller
//! that elects leaders and keeps the in-sync sets, producer ids and consumer offsets.
//!
//! With `brokers == 1` none of this exists: the deployment is the single `broker` node of
//! before, byte for byte. With `brokers >= 2` the nodes are `broker-0..n`, the `controller`,
//! the store, the consumer and the producers.
//!
//! # The protocol (Kafka's, with a controller of its own instead of ZooKeeper or KRaft)
//!
//! - **Controller** (`controller.rs`), one node with durable state (replaced atomically,
//!   synced before any reply that depends on it), itself crashable. Per partition it keeps a
//!   [`PartitionState`]: the leader, a monotonic leader epoch and the in-sync replicas (ISR).
//!   It also owns what a single broker kept globally: the producer registry
//!   (`InitProducerId`) and committed consumer offsets (`OffsetCommit`, `OffsetFetch`).
//! - **Liveness** is decided on simulated time: each broker sends `Heartbeat` every
//!   `heartbeat_interval`; a broker not heard from for `session_timeout` is dead. A dead
//!   leader is replaced by an ISR member that is alive (epoch + 1, the old leader removed from
//!   the ISR unless that would leave fewer than `min_insync`), durably, before anyone is told. If no ISR member is alive the partition has no
//!   leader until one returns. A restarted controller treats every broker as just heard from
//!   (it cannot tell how long it was down), so it never elects in a panic.
//! - **Brokers learn leadership** from the `Leadership` reply to their heartbeats. A broker
//!   that becomes leader at epoch E records (E, its log end) in the partition's epoch file
//!   (durably, before it appends anything under E). A broker that becomes follower starts
//!   fetching from the leader.
//! - **Followers pull** with `ReplicaFetch { offset, last_epoch }`: `offset` is the follower's
//!   log end, all synced (it syncs what it appended before it fetches again). The leader first
//!   checks the follower's last epoch against its own epoch file (KIP-320): if the follower's
//!   log runs past where that epoch ends on the leader, it answers `Diverging { epoch,
//!   end_offset }` and the follower truncates to `min(its end, end_offset)` (never to its own
//!   high watermark: that is KIP-101's bug) and asks again. Otherwise it serves batches from
//!   `offset` (with the leader epoch each was appended under), never beyond what the leader
//!   itself has synced, and counts `offset` as the follower's durable end.
//! - **High watermark** = the minimum durable end over the leader and the in-sync followers.
//!   The ISR a leader computes with is the controller's, plus any replica it has asked to add
//!   and not yet heard back about (Kafka's "maximal ISR"), so the controller can never elect a
//!   replica the leader did not wait for. To drop a follower that has lagged for
//!   `replica_lag_max` the leader asks the controller (`AlterIsr`) and waits for its answer
//!   before computing without it. A follower rejoins once its durable end reaches the high
//!   watermark and it has kept up since. Every `AlterIsr` carries the `isr_version` it was
//!   computed from, and the controller refuses one made from an older set (Kafka's partition
//!   epoch), so a late or duplicated request never puts back a replica the leader stopped
//!   waiting for. No in-sync set is shrunk below `min_insync` (2) except by a `Resign`, and
//!   the high watermark does not move while the maximal ISR is smaller (Kafka's
//!   `min.insync.replicas`).
//! - **Damaged synced data**: each replica marks, durably, how far each log was synced before
//!   it serves, counts or reports any of it. A replica whose recovered log ends short of its
//!   mark lost synced records (bit rot, a lost write: the `rot` fault): before it takes any
//!   role it sends `Resign`, the controller takes it out of every in-sync set and its
//!   leaderships, and it repairs by fetching from the new leaders like any follower.
//! - **Produce** goes to the leader; the batch passes the same epoch and sequence checks as on a
//!   single broker, is appended and synced, and its acknowledgement waits until the high
//!   watermark covers it (so does a duplicate's answer, if its original is not yet committed).
//!   A broker that does not lead the partition answers `NotLeader`; one that loses leadership
//!   answers its waiting produces `NotLeader`.
//! - **Producer state** is rebuilt on every replica from the log it holds: followers feed
//!   replicated batches to their sequence tables (and snapshots) exactly as a leader does its
//!   appends, and rebuild after a truncation, so a retry that crosses a failover is answered as
//!   a duplicate at its original offset.
//! - **Producers** get id and epoch from the controller (`InitProducerId`, which answers
//!   `last_seqs` empty), then ask each partition's leader `LastSeq`: the last sequence in its
//!   committed log, answered only when the leader's whole log is committed (else `NotReady`),
//!   so that nothing at or below it can be lost in a failover. From then on they resend what lies
//!   above it with the original sequence numbers, as in the single-broker handshake.
//! - **Clients** (producers, consumer, the final read) learn leaders with `Metadata` from the
//!   controller, and look again on `NotLeader`, `NotReady` or a timeout. The consumer fetches
//!   from leaders only up to the high watermark (the `log_end` of a `Fetched` reply is the high
//!   watermark), and commits offsets to the controller.
//! - **Storage** for every replica goes through the same storage model and its faults as the
//!   single broker's: torn and damaged tails cut at recovery, I/O errors fatal to the node.

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::codec::{PartitionState, ReplicatedBatch};

/// The most replicas a deployment may have (their addresses are 10.0.0.10 onwards).
pub const REPLICAS_MAX: u32 = 100;

/// How a replicated deployment behaves in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Replicas of every partition (and brokers in the deployment); at least 2.
    pub brokers: u32,
    /// How often a broker tells the controller it is alive (and learns leadership).
    pub heartbeat_interval: Duration,
    /// A broker not heard from for this long is dead to the controller.
    pub session_timeout: Duration,
    /// A follower whose durable end has not reached the leader's end for this long is dropped
    /// from the in-sync replicas.
    pub replica_lag_max: Duration,
    /// How long a follower that is caught up waits before it fetches again.
    pub fetch_interval: Duration,
    /// The fewest in-sync replicas (leader included) a record must reach to be committed,
    /// Kafka's `min.insync.replicas`; below it the high watermark waits. Neither a death nor a
    /// lag drops a replica from an in-sync set that would fall below it (a dead or lagging
    /// member stays, holding up commits, until it returns); only a `Resign` does, since the
    /// resigning copy is no longer whole. So every committed record is on this many in-sync
    /// replicas, and one of them losing its synced data still leaves a whole copy to elect
    /// and repair from.
    pub min_insync: u32,
}

impl ReplicationConfig {
    /// The defaults for `brokers` replicas.
    pub fn new(brokers: u32) -> ReplicationConfig {
        assert!(
            (2..=REPLICAS_MAX).contains(&brokers),
            "a replicated deployment has 2..={REPLICAS_MAX} brokers"
        );
        ReplicationConfig {
            brokers,
            heartbeat_interval: Duration::from_millis(20),
            session_timeout: Duration::from_millis(150),
            replica_lag_max: Duration::from_millis(120),
            fetch_interval: Duration::from_millis(5),
            min_insync: 2,
        }
    }
}

/// What one replica of a replicated deployment needs besides the broker's own configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// This replica's index: it is node `broker-<index>`.
    pub index: u32,
    pub replication: ReplicationConfig,
    /// Where the controller listens.
    pub controller: SocketAddr,
    /// Where replica `i` listens, for every `i` (followers fetch from their leader).
    pub replicas: Vec<SocketAddr>,
}

/// What the controller needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    pub partitions: u32,
    pub replication: ReplicationConfig,
}
