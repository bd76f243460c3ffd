//! What nodes report about themselves: the events the harness records into its history.
//!
//! Nodes call [`Observer::record`] at the moments that matter to the checker (a payment made
//! durable in the outbox, an acknowledgement with its offset, a dedup hit, an apply, a commit,
//! a recovery). They never read anything back: observing must not change behaviour.

use crate::codec::{ErrorCode, Payment, PaymentId};
use crate::name::NodeName;
use crate::storage::IoOp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One thing a node did or saw. Offsets are log offsets; sequences are producer sequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    // --- producer ---
    /// The producer started and read its outbox back.
    ProducerStarted {
        boot: u64,
        outboxed: u32,
        batches: u32,
        torn_bytes: u64,
    },
    /// The payment is synced into the producer's outbox: from now on it is owed. A restarted
    /// producer announces its recovered, not yet batched payments again (some may have survived
    /// the crash unsynced and only now be synced).
    Outboxed { payment: Payment },
    /// A batch's partition, sequence and payments are synced into the outbox, before any send.
    BatchPersisted {
        partition: u32,
        base_seq: u32,
        payments: Vec<PaymentId>,
    },
    /// InitProducerId answered: the producer's id, new epoch and the broker's last sequences.
    ProducerInitialized {
        producer_id: u64,
        epoch: u32,
        last_seqs: Vec<Option<u32>>,
    },
    /// A produce request left (attempt 0 is the first send, higher ones are retries).
    ProduceSent {
        partition: u32,
        epoch: u32,
        base_seq: u32,
        count: u32,
        attempt: u32,
    },
    /// The broker acknowledged a batch at `base_offset`; payment `i` sits at `base_offset + i`.
    ProduceAcked {
        partition: u32,
        base_seq: u32,
        base_offset: u64,
        payments: Vec<PaymentId>,
    },
    /// A produce got no reply or an error and will be retried (or, if fenced, abandoned).
    ProduceFailed {
        partition: u32,
        base_seq: u32,
        error: String,
    },
    /// The broker's InitProducerId told us this batch is already in the log: acknowledged
    /// without an offset.
    BatchRecoveredAsAcked {
        partition: u32,
        base_seq: u32,
        payments: Vec<PaymentId>,
    },
    /// The payment is too large for any batch: refused before it was owed (its refusal is
    /// synced into the outbox in its place). `bytes` is its encoded size.
    PaymentRefused { payment: PaymentId, bytes: u64 },
    /// The broker refused the batch at `base_seq` as too large; it is replaced, durably, by
    /// consecutive parts of `parts` payments each, over the same sequences.
    BatchSplit {
        partition: u32,
        base_seq: u32,
        parts: Vec<u32>,
    },
    /// This producer incarnation learnt it is a zombie and stopped.
    ProducerFenced { epoch: u32 },

    // --- broker ---
    /// A partition's log was recovered at start: valid length, what was cut off, and how
    /// producer state was rebuilt.
    LogRecovered {
        partition: u32,
        log_end: u64,
        truncated_bytes: u64,
        tail: String,
        snapshot_offset: Option<u64>,
        batches_replayed: u32,
    },
    /// A batch was appended (and, unless a bug says otherwise, synced before the ack).
    BatchAppended {
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        base_offset: u64,
        count: u32,
    },
    /// A retried batch matched a retained one: answered with its original offset, not appended.
    DuplicateBatch {
        partition: u32,
        producer_id: u64,
        base_seq: u32,
        base_offset: u64,
    },
    /// A produce was refused.
    ProduceRejected {
        partition: u32,
        producer_id: u64,
        epoch: u32,
        base_seq: u32,
        error: ErrorCode,
    },
    /// InitProducerId bumped (or, for a retried init, re-answered) a producer's epoch.
    EpochBumped {
        producer_key: String,
        producer_id: u64,
        epoch: u32,
        boot: u64,
    },
    /// The broker wrote a producer-state snapshot covering the log up to `offset`.
    SnapshotWritten { partition: u32, offset: u64 },
    /// A request did not decode and got a `Malformed` error reply.
    MalformedRequest { error: String },

    // --- consumer ---
    /// The consumer (re)started on a partition from its committed offset.
    ConsumerResumed { partition: u32, offset: u64 },
    /// A fetch returned records `offsets` (in order) from the partition.
    Fetched {
        partition: u32,
        from: u64,
        records: Vec<(u64, PaymentId)>,
    },
    /// The store acknowledged applying the record at `offset`.
    ApplyAcked {
        partition: u32,
        offset: u64,
        payment: PaymentId,
        duplicate: bool,
    },
    /// The broker acknowledged the consumer's commit of `offset` (the next offset to read).
    OffsetCommitted { partition: u32, offset: u64 },

    // --- store ---
    /// The store recovered its applied payments at start.
    StoreRecovered { rows: u32, truncated_bytes: u64 },
    /// The store applied a payment durably (`duplicate == false`) or recognised it as applied.
    StoreApplied {
        payment: PaymentId,
        partition: u32,
        offset: u64,
        duplicate: bool,
    },

    // --- replication: controller ---
    /// The controller chose `leader` (or none: no eligible replica is alive) for the partition
    /// at `leader_epoch`, durably. `clean`: the leader came from the in-sync replicas.
    LeaderElected {
        partition: u32,
        leader: Option<u32>,
        leader_epoch: u32,
        isr: Vec<u32>,
        clean: bool,
    },
    /// The controller changed the partition's in-sync replicas, durably.
    IsrChanged {
        partition: u32,
        leader_epoch: u32,
        isr: Vec<u32>,
    },

    // --- replication: brokers ---
    /// This replica now leads the partition; its epoch starts at `log_end`.
    BecameLeader {
        partition: u32,
        leader_epoch: u32,
        log_end: u64,
    },
    /// This replica now follows `leader` on the partition.
    BecameFollower {
        partition: u32,
        leader_epoch: u32,
        leader: u32,
    },
    /// This replica cut its log of the partition from `from` back to `to`, to match its leader.
    FollowerTruncated { partition: u32, from: u64, to: u64 },

    // --- any node ---
    /// A storage operation failed with an I/O error, and the node crashes and restarts through
    /// recovery from its disk (what covered the failed operation was never acknowledged).
    StorageFailed { op: IoOp, file: String },
}

/// Receives a node's events. The harness's implementation stamps them with simulated time and
/// the node name; [`NullObserver`] discards them.
pub trait Observer: Send + Sync {
    fn record(&self, node: NodeName, event: Event);

    /// A "sometimes" assertion (FoundationDB's code probes, Antithesis's `sometimes`): the node
    /// took a rare path that matters. Probes are counted, not recorded in the history.
    fn probe(&self, _node: NodeName, _probe: Probe) {}
}

/// A "sometimes" assertion: a rare path that matters. A sweep that never hits one has not tested
/// that path. Variants are in catalogue order; the kebab-case [`Probe::name`] is the stable
/// spelling used in reports and JSON, so it must not change when a variant is renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    DuplicateBatchAnswered,
    OutOfOrderRejected,
    ZombieFenced,
    InitProducerIdRetried,
    GroupCommit,
    TornTailTruncated,
    SnapshotUsed,
    ProducerStateReplayedFromLog,
    OutboxTornTailDropped,
    BatchResentAfterRestart,
    BatchKnownInLogAfterRestart,
    ConsumerResumedFromCommit,
    StoreDedupHit,
    StoreTornRowDropped,
    ChecksumRejectedFrame,
    StaleSnapshotDeleted,
    SyncFailed,
    ReadFailed,
    WriteFailed,
    LeaderElected,
    IsrShrunk,
    IsrExpanded,
    FollowerTruncated,
    DedupAcrossFailover,
    NotLeaderRedirected,
    AckWaitedForReplication,
}

impl Probe {
    /// Every probe, in catalogue order.
    pub const ALL: [Probe; 26] = [
        Probe::DuplicateBatchAnswered,
        Probe::OutOfOrderRejected,
        Probe::ZombieFenced,
        Probe::InitProducerIdRetried,
        Probe::GroupCommit,
        Probe::TornTailTruncated,
        Probe::SnapshotUsed,
        Probe::ProducerStateReplayedFromLog,
        Probe::OutboxTornTailDropped,
        Probe::BatchResentAfterRestart,
        Probe::BatchKnownInLogAfterRestart,
        Probe::ConsumerResumedFromCommit,
        Probe::StoreDedupHit,
        Probe::StoreTornRowDropped,
        Probe::ChecksumRejectedFrame,
        Probe::StaleSnapshotDeleted,
        Probe::SyncFailed,
        Probe::ReadFailed,
        Probe::WriteFailed,
        Probe::LeaderElected,
        Probe::IsrShrunk,
        Probe::IsrExpanded,
        Probe::FollowerTruncated,
        Probe::DedupAcrossFailover,
        Probe::NotLeaderRedirected,
        Probe::AckWaitedForReplication,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Probe::DuplicateBatchAnswered => "duplicate-batch-answered",
            Probe::OutOfOrderRejected => "out-of-order-rejected",
            Probe::ZombieFenced => "zombie-fenced",
            Probe::InitProducerIdRetried => "init-producer-id-retried",
            Probe::GroupCommit => "group-commit",
            Probe::TornTailTruncated => "torn-tail-truncated",
            Probe::SnapshotUsed => "snapshot-used",
            Probe::ProducerStateReplayedFromLog => "producer-state-replayed-from-log",
            Probe::OutboxTornTailDropped => "outbox-torn-tail-dropped",
            Probe::BatchResentAfterRestart => "batch-resent-after-restart",
            Probe::BatchKnownInLogAfterRestart => "batch-known-in-log-after-restart",
            Probe::ConsumerResumedFromCommit => "consumer-resumed-from-commit",
            Probe::StoreDedupHit => "store-dedup-hit",
            Probe::StoreTornRowDropped => "store-torn-row-dropped",
            Probe::ChecksumRejectedFrame => "checksum-rejected-frame",
            Probe::StaleSnapshotDeleted => "stale-snapshot-deleted",
            Probe::SyncFailed => "sync-failed",
            Probe::ReadFailed => "read-failed",
            Probe::WriteFailed => "write-failed",
            Probe::LeaderElected => "leader-elected",
            Probe::IsrShrunk => "isr-shrunk",
            Probe::IsrExpanded => "isr-expanded",
            Probe::FollowerTruncated => "follower-truncated",
            Probe::DedupAcrossFailover => "dedup-across-failover",
            Probe::NotLeaderRedirected => "not-leader-redirected",
            Probe::AckWaitedForReplication => "ack-waited-for-replication",
        }
    }

    /// The path the probe marks, for the sweep's probe table.
    pub fn description(self) -> &'static str {
        match self {
            Probe::DuplicateBatchAnswered => {
                "broker: a retried batch matched a retained one and got its original offset"
            }
            Probe::OutOfOrderRejected => "broker: a batch with a sequence gap was rejected",
            Probe::ZombieFenced => {
                "broker: a produce of an older epoch (a dead incarnation's) was fenced"
            }
            Probe::InitProducerIdRetried => {
                "broker: a retried InitProducerId was answered without a second bump"
            }
            Probe::GroupCommit => "broker: several requests shared one sync",
            Probe::TornTailTruncated => "broker: recovery cut a torn or corrupt log tail",
            Probe::SnapshotUsed => "broker: recovery started from a producer-state snapshot",
            Probe::ProducerStateReplayedFromLog => {
                "broker: recovery replayed batches after the snapshot"
            }
            Probe::OutboxTornTailDropped => "producer: recovery cut a torn outbox tail",
            Probe::BatchResentAfterRestart => {
                "producer: a persisted batch above the broker's last sequence was resent"
            }
            Probe::BatchKnownInLogAfterRestart => {
                "producer: InitProducerId showed a persisted batch already in the log"
            }
            Probe::ConsumerResumedFromCommit => {
                "consumer: restarted from a committed offset past 0"
            }
            Probe::StoreDedupHit => "store: a re-delivered payment was recognised as applied",
            Probe::StoreTornRowDropped => "store: recovery cut a torn row",
            Probe::ChecksumRejectedFrame => {
                "any node: recovery cut a whole frame whose checksum failed (damage, not a tear)"
            }
            Probe::StaleSnapshotDeleted => {
                "broker: recovery deleted a producer-state snapshot beyond the recovered log end"
            }
            Probe::SyncFailed => "any node: a sync failed with an I/O error (never acknowledged)",
            Probe::ReadFailed => {
                "any node: a read failed with an I/O error (recovery restarted, never read as empty)"
            }
            Probe::WriteFailed => "any node: a write failed with an I/O error",
            Probe::LeaderElected => {
                "controller: a partition's leader failed and another replica was elected"
            }
            Probe::IsrShrunk => "controller: a lagging replica left a partition's in-sync set",
            Probe::IsrExpanded => "controller: a caught-up replica rejoined the in-sync set",
            Probe::FollowerTruncated => {
                "replica: a follower cut a divergent log suffix to its leader's epoch end"
            }
            Probe::DedupAcrossFailover => {
                "replica: a retry was answered as a duplicate of a batch from an earlier leader epoch"
            }
            Probe::NotLeaderRedirected => {
                "client: a request met a former leader and went on to the new one"
            }
            Probe::AckWaitedForReplication => {
                "replica: a produce acknowledgement waited for the in-sync followers"
            }
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: tables align probe names with `{:<34}`.
        f.pad(self.name())
    }
}

/// The error for a probe name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProbe(pub String);

impl fmt::Display for UnknownProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown probe '{}'", self.0)
    }
}

impl std::error::Error for UnknownProbe {}

impl FromStr for Probe {
    type Err = UnknownProbe;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Probe::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProbe(s.to_string()))
    }
}

// As the name string, so that a map keyed by probe is a JSON object keyed by name.
impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::serde_str::deserialize(deserializer)
    }
}

/// Discards every event.
pub struct NullObserver;

impl Observer for NullObserver {
    fn record(&self, _: NodeName, _: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_the_catalogue_spellings_and_round_trip() {
        // The names reports and JSON have always used; changing one breaks saved outputs.
        let names: Vec<&str> = Probe::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "duplicate-batch-answered",
                "out-of-order-rejected",
                "zombie-fenced",
                "init-producer-id-retried",
                "group-commit",
                "torn-tail-truncated",
                "snapshot-used",
                "producer-state-replayed-from-log",
                "outbox-torn-tail-dropped",
                "batch-resent-after-restart",
                "batch-known-in-log-after-restart",
                "consumer-resumed-from-commit",
                "store-dedup-hit",
                "store-torn-row-dropped",
                "checksum-rejected-frame",
                "stale-snapshot-deleted",
                "sync-failed",
                "read-failed",
                "write-failed",
                "leader-elected",
                "isr-shrunk",
                "isr-expanded",
                "follower-truncated",
                "dedup-across-failover",
                "not-leader-redirected",
                "ack-waited-for-replication",
            ]
        );
        for probe in Probe::ALL {
            assert_eq!(probe.name().parse::<Probe>(), Ok(probe));
            assert_eq!(probe.to_string(), probe.name());
        }
        assert!("no-such-probe".parse::<Probe>().is_err());
    }

    #[test]
    fn a_map_keyed_by_probe_is_a_json_object_keyed_by_name() {
        let hits: std::collections::BTreeMap<Probe, u64> =
            [(Probe::StoreDedupHit, 2), (Probe::GroupCommit, 5)].into();
        let json = serde_json::to_string(&hits).unwrap();
        assert_eq!(json, r#"{"group-commit":5,"store-dedup-hit":2}"#);
        let back: std::collections::BTreeMap<Probe, u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, hits);
        let err = serde_json::from_str::<Probe>(r#""nope""#).unwrap_err();
        assert!(err.to_string().contains("unknown probe 'nope'"), "{err}");
    }
}
